// The random workload of RunRandomSimulation and its checks
// (dtx/testing/random_workload.h). The model services are barrier-protected,
// as dtm's services are meant to be (docs/barrier.md): a repeated call has no
// second effect, a compensation or cancel that arrives before its action or
// try makes the late action or try a no-op ("null compensation" and
// "hanging" protection), so that what the checks see is what a correct
// service would keep.

#include "dtx/testing/random_workload.h"

#include "dtx/testing/simulation.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kBank[] = "sim://bank";
constexpr char kApp[] = "sim://app";

enum class Local { kUndecided, kCommitted, kRolledBack };

// One step or branch as its service keeps it.
struct BranchState {
  bool applied = false;      // saga action, msg step
  bool compensated = false;  // saga compensate (before or after the action)
  bool tried = false;        // tcc try took effect
  bool confirmed = false;
  bool cancelled = false;
};

struct Tx {
  std::string gid;
  TransType type = TransType::kSaga;
  int steps = 1;
  std::vector<bool> will_fail;  // saga action / tcc try fails for good
  // Saga: the steps each step waits for (concurrent), or the one before.
  bool concurrent = false;
  std::vector<std::vector<int>> prereqs;
  // Saga: steps whose action or compensation URL is empty (no call).
  std::vector<bool> empty_action, empty_compensate;
  bool prepared_ok = false;  // tcc, msg: Prepare answered OK
  bool submit_called = false;
  TimePoint submit_called_at{};
  bool submit_ok = false;
  bool abort_ok = false;
  std::set<std::string> registered_ok;  // tcc: RegisterBranch answered OK
  Local local = Local::kUndecided;      // msg
  bool prepared_first = true;           // msg: Prepare before Submit
  std::optional<TimePoint> committed_at;
  std::optional<TransOptions> msg_options;
  std::string msg_custom;
  std::map<std::string, BranchState> branches;
};

std::string BranchId(int i) {
  return (i < 9 ? "0" : "") + std::to_string(i + 1);
}

int StepOf(const std::string& branch_id) { return std::stoi(branch_id) - 1; }

class Run {
 public:
  Run(uint64_t seed, const WorkloadOptions& opts)
      : seed_(seed), opts_(opts), sim_(MakeOptions(seed, opts)) {}

  SimReport Go() {
    Serve();
    for (int i = 0; i < sim_.coordinators(); ++i) {
      if (Status s = sim_.Start(i); !s.ok()) {
        Violation("", "the coordinator did not start: " + s.ToString());
        return Report();
      }
    }
    sim_.service().set_crash_handler([this](const std::string& caller) {
      const int i = sim_.CoordinatorNamed(caller);
      if (i >= 0) CrashNow(i);
    });
    const TimePoint start = start_;
    SimRandom& r = sim_.random();
    // From a sixth of the phase to all of it: more or fewer at once.
    phase_ = r.Millis(opts_.fault_phase / 6, opts_.fault_phase);
    for (int i = 0; i < opts_.transactions; ++i) {
      const auto at = r.Millis(milliseconds(0), phase_);
      sim_.app()->PostAt(start + at, [this] { StartOne(); });
    }
    const int crashes =
        static_cast<int>(r.Between(0, 2 * static_cast<int64_t>(opts_.crashes)));
    for (int i = 0; i < crashes; ++i) {
      const auto at = r.Millis(milliseconds(0), phase_);
      const int which =
          static_cast<int>(r.Below(static_cast<uint64_t>(sim_.coordinators())));
      world_->PostAt(start + at, [this, which] { CrashNow(which); });
    }
    for (int i = 0; i < opts_.transactions / 10; ++i) {
      const auto at = r.Millis(milliseconds(0), phase_);
      sim_.app()->PostAt(start + at, [this] { RetryOne(); });
    }
    sim_.loop().RunUntil(start + phase_);
    // Faults stop; a coordinator down stays down only until its restart.
    sim_.StopFaults();
    sim_.service().ClearScripts();
    faults_on_ = false;
    for (int i = 0; i < sim_.coordinators(); ++i) {
      if (!sim_.running(i) && restarts_pending_.count(i) == 0)
        Restart(i, milliseconds(0));
    }
    const bool settled = sim_.loop().RunUntil(
        [this] {
          return flows_ == 0 && sim_.journal().unfinished() == 0 &&
                 restarts_pending_.empty();
        },
        sim_.loop().Now() + opts_.settle_bound);
    if (!settled) {
      Violation("", "not settled within " +
                        std::to_string(opts_.settle_bound.count()) +
                        " ms after the faults stopped: " +
                        std::to_string(sim_.journal().unfinished()) +
                        " unfinished, " + std::to_string(flows_) +
                        " application flows running");
    }
    for (int i = 0; i < sim_.coordinators(); ++i) sim_.Stop(i);
    Check();
    return Report();
  }

 private:
  static SimulationOptions MakeOptions(uint64_t seed,
                                       const WorkloadOptions& opts) {
    SimulationOptions o;
    o.seed = seed;
    o.coordinators = std::max(opts.coordinators, 1);
    o.log_level = opts.log_level;
    // The run's own parameters, from its own stream of the seed.
    SimRandom r(seed ^ 0x5eedf00dULL);
    Options& c = o.coordinator;
    c.retry.initial_interval = seconds(r.Between(1, 3));
    c.retry.max_interval = seconds(r.Between(4, 16));
    c.timeout_to_fail = seconds(r.Between(3, 20));
    c.request_timeout = seconds(r.Between(1, 2));
    c.cron_interval = seconds(r.Between(1, 3));
    if (opts.faults) {
      const double k = static_cast<double>(r.Between(1, 10)) / 10.0;
      o.network.drop = 0.03 * k;
      o.network.lose_reply = 0.05 * k;
      o.network.duplicate = 0.05 * k;
      o.network.error = 0.05 * k;
      o.network.ongoing = 0.05 * k;
      o.network.slow = 0.02 * k;
      o.network.delay_max = milliseconds(r.Between(1, 50));
      o.network.slow_max = milliseconds(r.Between(100, 4000));
      o.journal.write_error = 0.02 * k;
      o.journal.read_error = 0.01 * k;
      o.journal.commit_delay_max = milliseconds(r.Between(0, 50));
      o.journal.max_batch = static_cast<std::size_t>(r.Between(1, 16));
    }
    o.journal.torn_at_crash = 0.5;
    return o;
  }

  SimReport Report() {
    SimReport rep;
    rep.seed = seed_;
    rep.transactions = static_cast<int64_t>(txs_.size());
    rep.crashes = sim_.crashes();
    rep.clean_stops = clean_stops_;
    rep.steps = static_cast<int64_t>(sim_.loop().steps());
    rep.branch_calls = static_cast<int64_t>(sim_.service().sent().size());
    rep.journal_writes = sim_.journal().writes();
    rep.torn_writes = sim_.journal().torn_writes();
    rep.violations = violations_;
    rep.simulated =
        std::chrono::duration_cast<milliseconds>(sim_.loop().Now() - start_);
    return rep;
  }

  void Violation(const std::string& gid, const std::string& what) {
    violations_.push_back("seed=" + std::to_string(seed_) +
                          (gid.empty() ? "" : " gid=" + gid) + ": " + what);
  }

  // Crashes (or, one time in four, shuts down cleanly), restarting after a
  // random downtime.
  void CrashNow(int i) {
    if (!sim_.running(i) || !faults_on_) return;
    if (sim_.random().Chance(0.25)) {
      sim_.Stop(i);
      ++clean_stops_;
    } else {
      sim_.Crash(i);
    }
    Restart(i, sim_.random().Millis(milliseconds(0), opts_.max_downtime));
  }

  // An operator's RetryNow on a random transaction (only the schedule
  // changes).
  void RetryOne() {
    Coordinator* c = Up();
    if (c == nullptr || txs_.empty()) return;
    const std::string gid =
        "g" + std::to_string(1 + sim_.random().Below(txs_.size()));
    c->RetryNowAsync(gid, [](Status) {});
  }
  void Restart(int i, milliseconds downtime) {
    restarts_pending_.insert(i);
    world_->PostAfter(downtime, [this, i] {
      restarts_pending_.erase(i);
      if (sim_.running(i)) return;
      if (Status s = sim_.Start(i); !s.ok())
        Violation("", "the coordinator did not restart: " + s.ToString());
    });
  }

  Tx* TxOf(const std::string& gid) {
    auto it = txs_.find(gid);
    return it == txs_.end() ? nullptr : &it->second;
  }

  // Injected answers of the model services themselves (FAILURE only where
  // it is retried: a barrier-protected service never rejects an action it
  // already performed).
  std::optional<BranchResult> ServiceFault(BranchOp op) {
    if (!faults_on_ || !opts_.faults) return std::nullopt;
    SimRandom& r = sim_.random();
    if (op != BranchOp::kAction && op != BranchOp::kTry && r.Chance(0.03))
      return SimAnswer(BranchOutcome::kFailure, "sim: service said FAILURE");
    return std::nullopt;
  }

  void Serve() {
    sim_.service().Handle(
        kBank, [this](const BranchRequest& req) { return Bank(req); });
    sim_.service().Handle(
        kApp, [this](const BranchRequest& req) { return QueryPrepared(req); });
  }

  BranchResult Bank(const BranchRequest& req) {
    const TransInfo& info = req.info;
    Tx* tx = TxOf(info.gid);
    if (tx == nullptr) {
      Violation(info.gid, "a call for a transaction nobody started");
      return SimAnswer(BranchOutcome::kFailure);
    }
    if (auto f = ServiceFault(info.op)) return *f;
    BranchState& b = tx->branches[info.branch_id];
    const int step = StepOf(info.branch_id);
    switch (info.op) {
      case BranchOp::kAction:
        if (tx->type == TransType::kMsg) {
          if (tx->local != Local::kCommitted) {
            Violation(info.gid, "message step " + info.branch_id +
                                    " delivered while its local transaction "
                                    "is not committed");
          }
          b.applied = true;
          return SimAnswer(BranchOutcome::kSuccess);
        }
        if (b.compensated) return SimAnswer(BranchOutcome::kSuccess);
        if (tx->will_fail[static_cast<std::size_t>(step)])
          return SimAnswer(BranchOutcome::kFailure, "insufficient funds");
        b.applied = true;
        return SimAnswer(BranchOutcome::kSuccess);
      case BranchOp::kCompensate:
        b.compensated = true;
        return SimAnswer(BranchOutcome::kSuccess);
      case BranchOp::kTry:
        if (b.cancelled) return SimAnswer(BranchOutcome::kFailure, "cancelled");
        if (tx->will_fail[static_cast<std::size_t>(step)])
          return SimAnswer(BranchOutcome::kFailure, "insufficient funds");
        b.tried = true;
        return SimAnswer(BranchOutcome::kSuccess);
      case BranchOp::kConfirm:
        if (b.cancelled)
          Violation(info.gid, "confirm of branch " + info.branch_id +
                                  " after its cancel");
        if (!b.tried)
          Violation(info.gid, "confirm of branch " + info.branch_id +
                                  " whose try did not succeed");
        b.confirmed = true;
        return SimAnswer(BranchOutcome::kSuccess);
      case BranchOp::kCancel:
        if (b.confirmed)
          Violation(info.gid, "cancel of branch " + info.branch_id +
                                  " after its confirm");
        b.cancelled = true;
        return SimAnswer(BranchOutcome::kSuccess);
      default:
        Violation(info.gid, "unexpected op " + std::string(ToString(info.op)));
        return SimAnswer(BranchOutcome::kFailure);
    }
  }

  BranchResult QueryPrepared(const BranchRequest& req) {
    Tx* tx = TxOf(req.info.gid);
    if (tx == nullptr || tx->type != TransType::kMsg) {
      Violation(req.info.gid, "a check-back for no message");
      return SimAnswer(BranchOutcome::kFailure);
    }
    if (req.info.op != BranchOp::kMsg)
      Violation(req.info.gid,
                "a check-back with op " + std::string(ToString(req.info.op)));
    // The barrier of QueryPrepared: an undecided local transaction is
    // rolled back so that it can no longer commit.
    if (tx->local == Local::kUndecided) tx->local = Local::kRolledBack;
    return tx->local == Local::kCommitted
               ? SimAnswer(BranchOutcome::kSuccess)
               : SimAnswer(BranchOutcome::kFailure, "rolled back");
  }

  // The application.

  // Runs `fn` later on the application's process (never inside a
  // coordinator callback).
  void Later(std::function<void()> fn) {
    sim_.app()->PostAfter(
        sim_.random().Millis(milliseconds(0), milliseconds(30)), std::move(fn));
  }
  // Whether the application dies here (its flow ends).
  bool AppDies() { return faults_on_ && sim_.random().Chance(0.03); }

  void End() { --flows_; }

  void StartOne() {
    SimRandom& r = sim_.random();
    Tx tx;
    tx.gid = "g" + std::to_string(txs_.size() + 1);
    const auto kind = r.Below(3);
    tx.type = kind == 0   ? TransType::kSaga
              : kind == 1 ? TransType::kTcc
                          : TransType::kMsg;
    tx.steps = static_cast<int>(r.Between(1, 4));
    for (int i = 0; i < tx.steps; ++i) tx.will_fail.push_back(r.Chance(0.1));
    tx.prereqs.assign(static_cast<std::size_t>(tx.steps), {});
    for (int i = 0; i < tx.steps; ++i) {
      const bool saga = tx.type == TransType::kSaga;
      tx.empty_action.push_back(saga && r.Chance(0.1));
      tx.empty_compensate.push_back(saga && r.Chance(0.1));
    }
    if (tx.type == TransType::kSaga && tx.steps > 1 && r.Chance(0.3)) {
      tx.concurrent = true;
      for (int i = 1; i < tx.steps; ++i) {
        for (int p = 0; p < i; ++p) {
          if (r.Chance(0.4))
            tx.prereqs[static_cast<std::size_t>(i)].push_back(p);
        }
      }
    } else {
      for (int i = 1; i < tx.steps; ++i)
        tx.prereqs[static_cast<std::size_t>(i)].push_back(i - 1);
    }
    if (opts_.crash_point > 0 && r.Chance(opts_.crash_point)) {
      ScriptRule rule;
      rule.gid = tx.gid;
      const BranchOp ops[] = {BranchOp::kAction, BranchOp::kCompensate,
                              BranchOp::kConfirm, BranchOp::kCancel,
                              BranchOp::kMsg};
      rule.op = ops[r.Below(5)];
      rule.crash =
          r.Chance(0.5) ? CrashPoint::kBeforeApply : CrashPoint::kAfterApply;
      sim_.service().Script(rule);
    }
    const std::string gid = tx.gid;
    const TransType type = tx.type;
    txs_.emplace(gid, std::move(tx));
    ++flows_;
    switch (type) {
      case TransType::kSaga:
        return StartSaga(gid);
      case TransType::kTcc:
        return StartTcc(gid);
      default:
        return StartMsg(gid);
    }
  }

  TransRequest Request(const Tx& tx, bool with_steps) {
    TransRequest req;
    req.gid = tx.gid;
    req.trans_type = tx.type;
    if (with_steps) {
      for (int i = 0; i < tx.steps; ++i) {
        const auto k = static_cast<std::size_t>(i);
        TransStep s;
        if (!tx.empty_action[k]) s.action = std::string(kBank) + "/Action";
        if (tx.type == TransType::kSaga && !tx.empty_compensate[k])
          s.compensate = std::string(kBank) + "/Compensate";
        req.steps.push_back(s);
        req.payloads.push_back("p" + std::to_string(i));
      }
    }
    return req;
  }

  // A running coordinator, or null (its requests then fail as unavailable).
  Coordinator* Up() {
    const int n = sim_.coordinators();
    const int first =
        static_cast<int>(sim_.random().Below(static_cast<uint64_t>(n)));
    for (int k = 0; k < n; ++k) {
      if (Coordinator* c = sim_.coordinator((first + k) % n)) return c;
    }
    return nullptr;
  }

  void StartSaga(const std::string& gid) {
    Tx& tx = txs_[gid];
    TransRequest req = Request(tx, true);
    SimRandom& r = sim_.random();
    if (tx.concurrent) {
      std::string orders;
      for (std::size_t i = 0; i < tx.prereqs.size(); ++i) {
        if (tx.prereqs[i].empty()) continue;
        std::string list;
        for (int p : tx.prereqs[i])
          list += (list.empty() ? "" : ",") + std::to_string(p);
        orders += (orders.empty() ? "" : ",") + std::string("\"") +
                  std::to_string(i) + "\":[" + list + "]";
      }
      req.custom_data = "{\"orders\":{" + orders + "},\"concurrent\":true}";
    }
    if (r.Chance(0.2)) req.options.timeout_to_fail = seconds(r.Between(1, 10));
    if (r.Chance(0.2)) req.options.retry_limit = r.Between(1, 3);
    req.options.wait_result = r.Chance(0.3);
    Coordinator* c = Up();
    if (c == nullptr) return End();
    if (!tx.submit_called) tx.submit_called_at = sim_.loop().Now();
    tx.submit_called = true;
    c->SubmitAsync(std::move(req), [this, gid](Status s) {
      Later([this, gid, s] {
        if (Retry(s)) return AfterRestart([this, gid] { StartSaga(gid); });
        txs_[gid].submit_ok = txs_[gid].submit_ok || s.ok();
        End();
      });
    });
  }

  // Whether to send a request again that the coordinator did not answer
  // (it crashed): an application retries, the request is idempotent.
  bool Retry(const Status& s) {
    return s.code() == StatusCode::kUnavailable && faults_on_ &&
           sim_.random().Chance(0.5);
  }
  void AfterRestart(std::function<void()> fn) {
    sim_.app()->PostAfter(
        opts_.max_downtime +
            sim_.random().Millis(milliseconds(0), milliseconds(1000)),
        std::move(fn));
  }

  void StartTcc(const std::string& gid) {
    Coordinator* c = Up();
    if (c == nullptr) return End();
    c->PrepareAsync(Request(txs_[gid], false), [this, gid](Status s) {
      Later([this, gid, s] {
        if (Retry(s)) return AfterRestart([this, gid] { StartTcc(gid); });
        if (!s.ok() || AppDies()) return End();
        txs_[gid].prepared_ok = true;
        TccBranch(gid, 0);
      });
    });
  }

  void TccBranch(const std::string& gid, int i) {
    Tx& tx = txs_[gid];
    if (i == tx.steps) return TccFinish(gid, /*commit=*/true);
    Coordinator* c = Up();
    if (c == nullptr) return End();
    BranchRegistration b;
    b.gid = gid;
    b.branch_id = BranchId(i);
    b.confirm_url = std::string(kBank) + "/Confirm";
    b.cancel_url = std::string(kBank) + "/Cancel";
    b.payload = "p" + std::to_string(i);
    c->RegisterBranchAsync(b, [this, gid, i](Status s) {
      Later([this, gid, i, s] {
        if (!s.ok() || AppDies()) return End();
        txs_[gid].registered_ok.insert(BranchId(i));
        BranchRequest req;
        req.url = std::string(kBank) + "/Try";
        req.info.gid = gid;
        req.info.trans_type = TransType::kTcc;
        req.info.branch_id = BranchId(i);
        req.info.op = BranchOp::kTry;
        req.payload = "p" + std::to_string(i);
        req.timeout = seconds(1);
        auto on_app = [app = sim_.app()](std::function<void()> fn) {
          app->Post(std::move(fn));
        };
        sim_.app_client().Call(std::move(req), on_app,
                               [this, gid, i](BranchResult r) {
                                 if (AppDies()) return End();
                                 if (r.outcome == BranchOutcome::kSuccess) {
                                   TccBranch(gid, i + 1);
                                 } else {
                                   TccFinish(gid, /*commit=*/false);
                                 }
                               });
      });
    });
  }

  void TccFinish(const std::string& gid, bool commit) {
    Coordinator* c = Up();
    if (c == nullptr) return End();
    Tx& tx = txs_[gid];
    TransRequest req = Request(tx, false);
    auto done = [this, gid, commit](Status s) {
      Later([this, gid, commit, s] {
        if (Retry(s))
          return AfterRestart([this, gid, commit] { TccFinish(gid, commit); });
        if (commit) {
          txs_[gid].submit_ok = txs_[gid].submit_ok || s.ok();
        } else {
          txs_[gid].abort_ok = txs_[gid].abort_ok || s.ok();
        }
        End();
      });
    };
    req.options.wait_result = sim_.random().Chance(0.3);
    if (commit) {
      if (!tx.submit_called) tx.submit_called_at = sim_.loop().Now();
      tx.submit_called = true;
      c->SubmitAsync(std::move(req), done);
    } else {
      req.rollback_reason = "a try failed";
      c->AbortAsync(std::move(req), done);
    }
  }

  void StartMsg(const std::string& gid) {
    Tx& tx = txs_[gid];
    tx.prepared_first = sim_.random().Chance(0.8);
    if (!tx.prepared_first) {
      // Commit locally, then submit the message whole.
      tx.local = Local::kCommitted;
      tx.committed_at = sim_.loop().Now();
      return MsgSubmit(gid);
    }
    Coordinator* c = Up();
    if (c == nullptr) return End();
    TransRequest req = MsgRequest(tx);
    c->PrepareAsync(std::move(req), [this, gid](Status s) {
      Later([this, gid, s] {
        if (!s.ok() || AppDies()) return End();
        txs_[gid].prepared_ok = true;
        // The local transaction runs for a while.
        sim_.app()->PostAfter(
            sim_.random().Millis(milliseconds(0), milliseconds(4000)),
            [this, gid] { MsgLocal(gid); });
      });
    });
  }

  // The same request for Prepare and Submit (with the message's options,
  // drawn once).
  TransRequest MsgRequest(Tx& tx) {
    if (!tx.msg_options) {
      SimRandom& r = sim_.random();
      TransOptions o;
      o.concurrent = r.Chance(0.3);
      if (r.Chance(0.2)) o.timeout_to_fail = seconds(r.Between(1, 5));
      tx.msg_options = o;
      if (r.Chance(0.2))
        tx.msg_custom = "{\"delay\":" + std::to_string(r.Between(1, 3)) + "}";
    }
    TransRequest req = Request(tx, true);
    req.query_prepared = std::string(kApp) + "/QueryPrepared";
    req.options = *tx.msg_options;
    req.custom_data = tx.msg_custom;
    return req;
  }

  void MsgLocal(const std::string& gid) {
    Tx& tx = txs_[gid];
    SimRandom& r = sim_.random();
    if (tx.local == Local::kUndecided && r.Chance(0.8)) {
      tx.local = Local::kCommitted;
      tx.committed_at = sim_.loop().Now();
    } else if (tx.local == Local::kUndecided) {
      tx.local = Local::kRolledBack;
    }
    if (AppDies()) return End();  // committed or not: the check-back tells
    if (tx.local == Local::kCommitted) return MsgSubmit(gid);
    if (r.Chance(0.5)) return End();  // rolled back; left to the check-back
    Coordinator* c = Up();
    if (c == nullptr) return End();
    c->AbortAsync(Request(tx, false), [this, gid](Status s) {
      Later([this, gid, s] {
        txs_[gid].abort_ok = s.ok();
        End();
      });
    });
  }

  void MsgSubmit(const std::string& gid) {
    Coordinator* c = Up();
    if (c == nullptr) return End();
    Tx& tx = txs_[gid];
    TransRequest req = MsgRequest(tx);
    if (!tx.submit_called) tx.submit_called_at = sim_.loop().Now();
    tx.submit_called = true;
    c->SubmitAsync(std::move(req), [this, gid](Status s) {
      Later([this, gid, s] {
        if (Retry(s)) return AfterRestart([this, gid] { MsgSubmit(gid); });
        txs_[gid].submit_ok = txs_[gid].submit_ok || s.ok();
        End();
      });
    });
  }

  // The checks.

  struct Calls {
    std::vector<const SentCall*> sent;
    std::vector<const ArrivedCall*> arrived;
  };

  static bool Legal(TransType type, const std::vector<TransStatus>& h) {
    using S = TransStatus;
    if (h.empty()) return false;
    std::set<std::pair<S, S>> ok;
    switch (type) {
      case TransType::kSaga:
        if (h[0] != S::kSubmitted) return false;
        ok = {{S::kSubmitted, S::kSucceed},
              {S::kSubmitted, S::kAborting},
              {S::kAborting, S::kFailed}};
        break;
      case TransType::kTcc:
        if (h[0] != S::kPrepared) return false;
        ok = {{S::kPrepared, S::kSubmitted},
              {S::kPrepared, S::kAborting},
              {S::kSubmitted, S::kSucceed},
              {S::kAborting, S::kFailed}};
        break;
      case TransType::kMsg:
        if (h[0] != S::kPrepared && h[0] != S::kSubmitted) return false;
        ok = {{S::kPrepared, S::kSubmitted},
              {S::kPrepared, S::kFailed},
              {S::kSubmitted, S::kSucceed}};
        break;
      default:
        return false;
    }
    for (std::size_t i = 1; i < h.size(); ++i) {
      if (ok.count({h[i - 1], h[i]}) == 0) return false;
    }
    return true;
  }

  static std::string Sequence(const std::vector<TransStatus>& h) {
    std::string out;
    for (TransStatus s : h) {
      if (!out.empty()) out += " -> ";
      out += ToString(s);
    }
    return out;
  }

  void Check() {
    std::map<std::string, Calls> calls;
    for (const SentCall& s : sim_.service().sent()) {
      if (s.caller.rfind("coordinator", 0) == 0)
        calls[s.info.gid].sent.push_back(&s);
    }
    for (const ArrivedCall& a : sim_.service().arrived())
      calls[a.info.gid].arrived.push_back(&a);
    const auto& rows = sim_.journal().rows();
    const auto& history = sim_.journal().history();
    for (auto& [gid, tx] : txs_) {
      auto row = rows.find(gid);
      const Calls& c = calls[gid];
      if (row == rows.end()) {
        if (tx.submit_ok || tx.prepared_ok)
          Violation(gid,
                    "acknowledged to the application, missing from the "
                    "journal");
        if (!c.sent.empty())
          Violation(gid,
                    "branches called for a transaction not in the "
                    "journal");
        continue;
      }
      const GlobalTrans& g = row->second.trans;
      if (!IsFinished(g.status)) {
        Violation(gid, "not finished: " + std::string(ToString(g.status)));
        continue;
      }
      auto h = history.find(gid);
      if (h == history.end() || !Legal(tx.type, h->second)) {
        Violation(gid, "illegal status sequence " +
                           (h == history.end() ? "" : Sequence(h->second)));
      }
      const bool succeeded = g.status == TransStatus::kSucceed;
      auto done_at = sim_.journal().finished_at().find(gid);
      if (done_at != sim_.journal().finished_at().end()) {
        for (const SentCall* s : c.sent) {
          if (s->time > done_at->second) {
            Violation(gid, "branch " + s->info.branch_id + " op " +
                               std::string(ToString(s->info.op)) +
                               " called after the transaction was final");
            break;
          }
        }
      }
      switch (tx.type) {
        case TransType::kSaga:
          CheckSaga(tx, row->second, c, succeeded);
          break;
        case TransType::kTcc:
          CheckTcc(tx, row->second, c, succeeded);
          break;
        default:
          CheckMsg(tx, row->second, c, succeeded);
          break;
      }
    }
  }

  static std::optional<TimePoint> FirstSent(const Calls& c,
                                            const std::string& branch,
                                            BranchOp op) {
    for (const SentCall* s : c.sent) {
      if (s->info.branch_id == branch && s->info.op == op) return s->time;
    }
    return std::nullopt;
  }
  static std::optional<TimePoint> FirstSuccess(const Calls& c,
                                               const std::string& branch,
                                               BranchOp op) {
    for (const ArrivedCall* a : c.arrived) {
      if (a->info.branch_id == branch && a->info.op == op &&
          a->result.outcome == BranchOutcome::kSuccess)
        return a->time;
    }
    return std::nullopt;
  }

  void CheckSaga(Tx& tx, const TransWithBranches&, const Calls& c,
                 bool succeeded) {
    for (int s = 0; s < tx.steps; ++s) {
      const auto k = static_cast<std::size_t>(s);
      const std::string id = BranchId(s);
      const BranchState& b = tx.branches[id];
      const bool effect = b.applied && !b.compensated;
      if (succeeded && !effect && !tx.empty_action[k])
        Violation(tx.gid, "saga succeeded but step " + id + " has no effect");
      if (!succeeded && effect && !tx.empty_compensate[k])
        Violation(tx.gid, "saga failed but step " + id +
                              " was applied and never compensated");
      if (succeeded && FirstSent(c, id, BranchOp::kCompensate))
        Violation(tx.gid, "saga succeeded but step " + id + " was compensated");
      // Compensated only once each step that depends on it is, when that
      // step's action had been called by then (a step never called may be
      // compensated in any order: the barrier makes it a no-op).
      const auto comp_s = FirstSent(c, id, BranchOp::kCompensate);
      for (int d = s + 1; comp_s && d < tx.steps; ++d) {
        const auto& pre = tx.prereqs[static_cast<std::size_t>(d)];
        if (std::find(pre.begin(), pre.end(), s) == pre.end()) continue;
        const std::string dep = BranchId(d);
        if (tx.empty_compensate[static_cast<std::size_t>(d)]) continue;
        const auto dep_action = FirstSent(c, dep, BranchOp::kAction);
        if (!dep_action || *dep_action > *comp_s) continue;
        const auto dep_ok = FirstSuccess(c, dep, BranchOp::kCompensate);
        if (!dep_ok || *dep_ok > *comp_s)
          Violation(tx.gid, "step " + id + " compensated before step " + dep +
                                ", which depends on it");
      }
      for (int p : tx.prereqs[static_cast<std::size_t>(s)]) {
        // An empty action succeeds without a call: nothing to order by.
        if (tx.empty_action[static_cast<std::size_t>(p)]) continue;
        const std::string prev = BranchId(p);
        const auto prev_ok = FirstSuccess(c, prev, BranchOp::kAction);
        const auto action = FirstSent(c, id, BranchOp::kAction);
        if (action && (!prev_ok || *prev_ok > *action))
          Violation(tx.gid, "action " + id + " called before action " + prev +
                                " succeeded");
        const auto comp = FirstSent(c, id, BranchOp::kCompensate);
        if (comp && (!prev_ok || *prev_ok > *comp))
          Violation(tx.gid, "step " + id +
                                " compensated though it could not have run "
                                "(action " +
                                prev + " never succeeded before)");
      }
    }
    if (tx.submit_ok && tx.will_fail.empty())
      Violation(tx.gid, "no steps");  // unreachable: keeps the model honest
  }

  void CheckTcc(Tx& tx, const TransWithBranches& t, const Calls& c,
                bool succeeded) {
    if (tx.submit_ok && !succeeded)
      Violation(tx.gid, "Submit answered OK but the TCC failed");
    if (tx.abort_ok && succeeded)
      Violation(tx.gid, "Abort answered OK but the TCC succeeded");
    if (succeeded && !tx.submit_called)
      Violation(tx.gid, "succeeded without a Submit");
    std::set<std::string> rows;
    for (const Branch& b : t.branches) rows.insert(b.branch_id);
    for (const std::string& id : tx.registered_ok) {
      if (rows.count(id) == 0)
        Violation(tx.gid, "branch " + id +
                              " registered (answered OK) but not in the "
                              "journal");
    }
    for (const std::string& id : rows) {
      const BranchState& b = tx.branches[id];
      if (succeeded) {
        if (!b.confirmed) Violation(tx.gid, "branch " + id + " not confirmed");
        if (FirstSent(c, id, BranchOp::kCancel))
          Violation(tx.gid, "cancel sent to branch " + id + " of a success");
        const auto confirm = FirstSent(c, id, BranchOp::kConfirm);
        if (confirm && *confirm < tx.submit_called_at)
          Violation(tx.gid, "confirm of " + id + " before the Submit");
      } else {
        if (!b.cancelled) Violation(tx.gid, "branch " + id + " not cancelled");
        if (FirstSent(c, id, BranchOp::kConfirm))
          Violation(tx.gid, "confirm sent to branch " + id + " of a failure");
      }
    }
    for (const auto& [id, b] : tx.branches) {
      if (b.tried && !b.confirmed && !b.cancelled)
        Violation(tx.gid, "branch " + id +
                              " tried but neither confirmed nor "
                              "cancelled");
    }
  }

  void CheckMsg(Tx& tx, const TransWithBranches&, const Calls& c,
                bool succeeded) {
    if (tx.submit_ok && !succeeded)
      Violation(tx.gid, "Submit answered OK but the message failed");
    if (tx.abort_ok && succeeded)
      Violation(tx.gid, "Abort answered OK but the message was delivered");
    if (tx.local == Local::kCommitted && !succeeded)
      Violation(tx.gid, "local transaction committed but the message failed");
    if (tx.local != Local::kCommitted && succeeded)
      Violation(tx.gid,
                "message delivered but its local transaction did not "
                "commit");
    for (int s = 0; s < tx.steps; ++s) {
      const std::string id = BranchId(s);
      const auto first = FirstSent(c, id, BranchOp::kAction);
      if (succeeded && !tx.branches[id].applied)
        Violation(tx.gid, "message delivered but step " + id + " not applied");
      if (!succeeded && first)
        Violation(tx.gid, "step " + id + " of a failed message called");
      if (first && (!tx.committed_at || *first < *tx.committed_at))
        Violation(tx.gid, "step " + id + " called before the local commit");
      // Submitted: by the application's Submit, or a check-back's SUCCESS.
      std::optional<TimePoint> submitted;
      if (tx.submit_called) submitted = tx.submit_called_at;
      if (auto back = FirstSuccess(c, "00", BranchOp::kMsg);
          back && (!submitted || *back < *submitted))
        submitted = back;
      if (first && (!submitted || *first < *submitted))
        Violation(tx.gid, "step " + id +
                              " called before the message was "
                              "submitted");
    }
  }

  const uint64_t seed_;
  const WorkloadOptions opts_;
  Simulation sim_;
  std::shared_ptr<SimLoop::Process> world_ = sim_.loop().NewProcess("chaos");
  const TimePoint start_ = sim_.loop().Now();
  milliseconds phase_{0};
  std::map<std::string, Tx> txs_;
  int flows_ = 0;
  bool faults_on_ = true;
  std::set<int> restarts_pending_;
  int64_t clean_stops_ = 0;
  std::vector<std::string> violations_;
};

}  // namespace

std::string SimReport::Summary() const {
  std::ostringstream out;
  out << "seed=" << seed << " transactions=" << transactions
      << " crashes=" << crashes << " clean_stops=" << clean_stops
      << " branch_calls=" << branch_calls
      << " journal_writes=" << journal_writes << " torn=" << torn_writes
      << " steps=" << steps << " violations=" << violations.size();
  for (std::size_t i = 0; i < violations.size() && i < 10; ++i)
    out << "\n  " << violations[i];
  return out.str();
}

SimReport RunRandomSimulation(uint64_t seed, const WorkloadOptions& opts) {
  Run run(seed, opts);
  return run.Go();
}

}  // namespace dtx::testing
