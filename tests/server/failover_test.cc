// Failover and partition tests (#16): three dtx-server processes share one
// PostgreSQL journal and carry a mixed SAGA / TCC / MSG load from client
// threads through all three, against a ledger branch service under the
// branch barrier (tests/testing/ledger_service.h). Then one fault:
//
//   Kill       one server is SIGKILLed mid-load; the others finish every one
//              of its transactions within lease + retry interval (+ slack).
//   Partition  one server reaches PostgreSQL through a TcpProxy that is cut
//              (a blackhole: silence, bytes held) while it holds work; the
//              others finish that work while it is cut off; after the cut
//              heals, its held (stale) writes reach PostgreSQL and must not
//              apply, and it serves transactions again.
//   PgRestart  PostgreSQL is stopped and started again mid-load; every
//              server reconnects and nothing acknowledged is lost.
//
// Each ends with the same checks: every transaction final, each acknowledged
// one with the outcome its client was promised, every branch effect exactly
// once in the ledger and consistent with the final status, the money
// conserved, and no transaction ever called by two coordinators at the same
// moment (the ledger's call log: call intervals of different coordinators on
// one gid are disjoint, and no coordinator calls a branch of a transaction
// after it became final).
//
// Timing: RetryInterval 1 s, RequestTimeout 1 s, TransCronInterval 1 s,
// RetryIntervalMax 2 s, TimeoutToFail 4 s; the lease a claim takes is
// max(RetryInterval, 2 x RequestTimeout) = 2 s (Engine::Lease). Each test
// runs 20-40 s. They run once in the normal suite (label failover) and ten
// times in a row with scripts/failover-10x.sh.

#include "dtx/storage/postgres_journal.h"
#include "dtx/transaction.h"
#include "dtx/transport/grpc_dtm_client.h"

#include "dtx_server_process.h"
#include "ledger_service.h"
#include "postgres_server.h"
#include "status_matchers.h"
#include "tcp_proxy.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <libpq-fe.h>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using WallClock = std::chrono::system_clock;

constexpr seconds kRetryInterval{1};
constexpr seconds kRequestTimeout{1};
constexpr seconds kRetryIntervalMax{2};
constexpr seconds kTimeoutToFail{4};
constexpr seconds kLease = std::max(kRetryInterval, 2 * kRequestTimeout);
// The bound on a takeover: the issue asks for lease + retry interval. What a
// measurement adds on top, and why the slack is 10 s:
//  - the next poll of a surviving scheduler, up to TransCronInterval (1 s);
//  - a transaction that was waiting in a back-off when its coordinator died
//    is due up to RetryIntervalMax (2 s) after its last attempt, and a
//    branch with flag T fails once more and waits again (<= 2 s);
//  - the remaining branch calls, up to 2 x 600 ms for a slow transaction;
//  - the test machine: 2 cores shared with builds and other tests, where a
//    process is routinely descheduled for a second or more.
// So ~6 s is what the engine may take by its own rules, and 4 s more is for
// the machine. This is the bound the issue demands, not a speed figure.
constexpr seconds kTakeoverSlack{10};
constexpr seconds kTakeoverBound = kLease + kRetryInterval + kTakeoverSlack;

constexpr int kAccounts = 20;
constexpr int64_t kInitialBalance = 1000000;
constexpr int kThreadsPerCoordinator = 2;

enum class Kind { kSaga, kTcc, kMsg };

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kSaga:
      return "saga";
    case Kind::kTcc:
      return "tcc";
    case Kind::kMsg:
      return "msg";
  }
  return "?";
}

// What a client thread started, and what it was told.
struct Planned {
  Kind kind = Kind::kSaga;
  int via = 0;                // index of the coordinator it was sent to
  bool fails = false;         // one branch has flag F
  bool acknowledged = false;  // Submit (or the TCC's Submit) returned OK
  std::string result;
};

struct Server {
  std::string name;
  std::unique_ptr<DtxServerProcess> process;
  std::unique_ptr<GrpcDtmClient> client;
  std::string owner;  // its name in the journal's leases
  std::string log_path;
  std::atomic<bool> alive{true};
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The owner name a coordinator logs at start ("coordinator: started as X").
std::string OwnerFromLog(const std::string& path) {
  const std::string text = ReadFile(path);
  const std::string needle = "coordinator: started as ";
  const std::size_t at = text.find(needle);
  if (at == std::string::npos) return "";
  const std::size_t from = at + needle.size();
  return text.substr(from, text.find_first_of(" \n", from) - from);
}

std::string Ms(WallClock::time_point t) {
  return std::to_string(
             std::chrono::duration_cast<milliseconds>(t.time_since_epoch())
                 .count() %
             100000000) +
         "ms";
}

// What the call log must never show (one line each): two coordinators
// calling one transaction at the same moment (their call intervals on one
// gid intersect), or a coordinator calling a branch of a transaction after
// it became final (`final_at`). Calls of "self" (the clients' own TCC tries
// and MSG check-backs) are not a coordinator's.
std::vector<std::string> FindConcurrentCalls(
    std::vector<LedgerCall> calls,
    const std::map<std::string, WallClock::time_point>& final_at) {
  std::map<std::string, std::vector<LedgerCall>> by_gid;
  for (LedgerCall& c : calls) {
    if (c.caller != "self") by_gid[c.gid].push_back(std::move(c));
  }
  std::vector<std::string> out;
  auto describe = [](const LedgerCall& c) {
    return c.caller + " " + c.method + " " + c.branch_id + "/" + c.op + " [" +
           Ms(c.start) + ", " + Ms(c.end) + "]";
  };
  for (auto& [gid, list] : by_gid) {
    std::sort(list.begin(), list.end(),
              [](const LedgerCall& x, const LedgerCall& y) {
                return x.start < y.start;
              });
    for (std::size_t i = 0; i < list.size(); ++i) {
      for (std::size_t j = i + 1; j < list.size(); ++j) {
        const LedgerCall& x = list[i];
        const LedgerCall& y = list[j];
        if (y.start >= x.end) break;  // the later ones start later still
        if (x.caller == y.caller) continue;
        out.push_back("gid " + gid + " called by two coordinators at once: " +
                      describe(x) + " and " + describe(y));
      }
    }
    auto final_it = final_at.find(gid);
    if (final_it == final_at.end()) continue;
    // The journal keeps milliseconds.
    const auto final_time = final_it->second + milliseconds(1);
    for (const LedgerCall& c : list) {
      if (c.start <= final_time) continue;
      out.push_back("gid " + gid + " was final at " + Ms(final_it->second) +
                    " but then called: " + describe(c));
    }
  }
  return out;
}

class FailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = RequirePostgres();
    if (pg_ == nullptr) return;
    schema_ = FreshPostgresSchema();
    auto ledger = LedgerService::Start(dir_.File("ledger.db"), kAccounts,
                                       kInitialBalance);
    ASSERT_OK(ledger.status());
    ledger_ = std::move(ledger).value();
  }

  void TearDown() override {
    StopLoad();
    for (auto& s : servers_) {
      if (s->process && s->alive) s->process->Kill(SIGKILL);
    }
    // DTX_FAILOVER_LOG_DIR=<dir>: the servers' logs and the ledger's call
    // log are kept there (the test's own directory is removed).
    const char* keep = std::getenv("DTX_FAILOVER_LOG_DIR");
    if (keep == nullptr || ledger_ == nullptr) return;
    const std::string prefix =
        std::string(keep) + "/" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-";
    for (auto& s : servers_) {
      std::ofstream(prefix + s->name + ".log") << ReadFile(s->log_path);
    }
    std::ofstream calls(prefix + "calls.txt");
    for (const LedgerCall& c : ledger_->Calls()) {
      calls << Ms(c.start) << " " << Ms(c.end) << " " << c.caller << " "
            << c.gid << " " << c.branch_id << " " << c.op << " " << c.method
            << " " << c.code << "\n";
    }
  }

  // Starts coordinator `name` with its journal at 127.0.0.1:pg_port.
  void StartServer(const std::string& name, int pg_port) {
    auto s = std::make_unique<Server>();
    s->name = name;
    s->log_path = dir_.File(name + ".log");
    DtxServerConfig config;
    config.config_path = dir_.File(name + ".yml");
    config.log_path = s->log_path;
    config.intervals =
        "RetryInterval: " + std::to_string(kRetryInterval.count()) +
        "\nTimeoutToFail: " + std::to_string(kTimeoutToFail.count()) +
        "\nRequestTimeout: " + std::to_string(kRequestTimeout.count()) +
        "\nTransCronInterval: 1\nRetryIntervalMax: " +
        std::to_string(kRetryIntervalMax.count()) + "\n";
    config.store_yaml =
        PostgresStoreYaml(pg_port, schema_) + "  ConnectTimeout: 2\n";
    auto process = DtxServerProcess::Start(config);
    ASSERT_OK(process.status()) << ReadFile(s->log_path);
    s->process = std::move(process).value();
    s->owner = OwnerFromLog(s->log_path);
    ASSERT_FALSE(s->owner.empty()) << ReadFile(s->log_path);
    ledger_->NameCaller(s->process->pid(), name);
    GrpcDtmClientOptions options;
    options.address = s->process->address();
    options.timeout = milliseconds(5000);
    options.branch_timeout = milliseconds(3000);
    auto client = GrpcDtmClient::Create(options);
    ASSERT_OK(client.status());
    s->client = std::move(client).value();
    std::cout << "coordinator " << name << ": pid " << s->process->pid() << ", "
              << s->owner << ", journal via port " << pg_port << "\n";
    servers_.push_back(std::move(s));
  }

  // The test's own view of the journal (a reader: it never writes).
  void OpenJournal() {
    PostgresJournalOptions options;
    options.conninfo = pg_->conninfo();
    options.schema = schema_;
    options.connect_timeout = milliseconds(2000);
    auto journal = PostgresJournal::Open(options);
    ASSERT_OK(journal.status());
    journal_ = std::move(journal).value();
  }

  // Client threads: kThreadsPerCoordinator per server, each sending one
  // transaction every ~150 ms to its own server, or to the next one alive
  // when its own was killed.
  void StartLoad() {
    stop_load_ = false;
    const int threads =
        kThreadsPerCoordinator * static_cast<int>(servers_.size());
    for (int t = 0; t < threads; ++t) {
      load_.emplace_back([this, t] { LoadLoop(t); });
    }
  }

  void StopLoad() {
    stop_load_ = true;
    for (std::thread& t : load_) t.join();
    load_.clear();
  }

  void LoadLoop(int thread) {
    std::mt19937 rng(static_cast<uint32_t>(thread * 7919 + 17));
    for (int n = 0; !stop_load_; ++n) {
      const std::string gid =
          "fo-" + std::to_string(thread) + "-" + std::to_string(n);
      int via = thread % static_cast<int>(servers_.size());
      for (std::size_t i = 0; i < servers_.size() && !servers_[via]->alive;
           ++i) {
        via = (via + 1) % static_cast<int>(servers_.size());
      }
      RunOne(gid, via, rng);
      std::this_thread::sleep_for(milliseconds(100 + rng() % 100));
    }
  }

  // One transaction from account a to account b.
  void RunOne(const std::string& gid, int via, std::mt19937& rng,
              std::optional<Kind> force = std::nullopt, bool wait = false) {
    Planned p;
    const unsigned roll = rng() % 100;
    p.kind = force       ? *force
             : roll < 40 ? Kind::kSaga
                         : (roll < 75 ? Kind::kTcc : Kind::kMsg);
    p.via = via;
    p.fails = !force && p.kind != Kind::kMsg && rng() % 100 < 15;
    const int64_t a = 1 + static_cast<int64_t>(rng() % kAccounts);
    const int64_t b = 1 + static_cast<int64_t>(rng() % kAccounts);
    const int64_t x = 1 + static_cast<int64_t>(rng() % 100);
    // A forced kind (a probe) has no flags: it must succeed at once. One
    // transaction in ten is slow (flag S on both branches): its pass outlasts
    // the retry interval after which the journal shows it due, so another
    // coordinator could claim it mid-pass unless its lease forbids.
    const bool slow = !force && rng() % 100 < 10;
    auto flags = [&](bool fail) {
      std::string f;
      if (!force && rng() % 100 < 10) f += "T";
      if (slow) f += "S";
      if (fail) f += "F";
      return f.empty() ? std::string() : " " + f;
    };
    const std::string out =
        std::to_string(a) + " " + std::to_string(-x) + flags(false);
    const std::string in =
        std::to_string(b) + " " + std::to_string(x) + flags(p.fails);
    {
      std::lock_guard<std::mutex> lock(mu_);
      planned_[gid] = p;
    }
    DtmApi& dtm = *servers_[via]->client;
    Status s;
    switch (p.kind) {
      case Kind::kSaga:
        s = Saga(dtm, gid)
                .Add(ledger_->Url("Move"), ledger_->Url("MoveRevert"), out)
                .Add(ledger_->Url("Move"), ledger_->Url("MoveRevert"), in)
                .WaitResult(wait)
                .Submit();
        break;
      case Kind::kTcc:
        s = TccGlobalTransaction(dtm, gid, [&](Tcc& tcc) {
          DTX_RETURN_IF_ERROR(tcc.CallBranch(out, ledger_->Url("Try"),
                                             ledger_->Url("Confirm"),
                                             ledger_->Url("Cancel")));
          return tcc.CallBranch(in, ledger_->Url("Try"),
                                ledger_->Url("Confirm"),
                                ledger_->Url("Cancel"));
        });
        break;
      case Kind::kMsg: {
        Msg msg(dtm, gid);
        msg.Add(ledger_->Url("Move"), in);
        s = ledger_->SubmitMsg(msg, a, -x);
        break;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    Planned& stored = planned_[gid];
    stored.acknowledged = s.ok();
    stored.result = s.ToString();
  }

  // Unfinished transactions in the journal, or an error.
  Result<std::vector<GlobalTrans>> Unfinished() {
    ListQuery q;
    q.unfinished_only = true;
    q.limit = 100000;
    DTX_ASSIGN_OR_RETURN(ListPage page, journal_->List(q));
    return page.transactions;
  }

  // Unfinished submitted/aborting transactions that server `index` is
  // working on: sent through it, or leased by it.
  // *leased: how many of them the journal shows leased by it.
  std::set<std::string> WorkOf(int index, int* leased) {
    std::set<std::string> out;
    *leased = 0;
    auto unfinished = Unfinished();
    EXPECT_OK(unfinished.status());
    if (!unfinished.ok()) return out;
    std::lock_guard<std::mutex> lock(mu_);
    for (const GlobalTrans& t : *unfinished) {
      if (t.status == TransStatus::kPrepared) continue;
      auto it = planned_.find(t.gid);
      const bool via = it != planned_.end() && it->second.via == index;
      const bool owned = t.owner == servers_[index]->owner;
      if (owned) ++*leased;
      if (via || owned) out.insert(t.gid);
    }
    return out;
  }

  // Waits until none of `gids` is unfinished; the time that took, or
  // nullopt after `limit` (the unfinished ones printed).
  std::optional<milliseconds> WaitFinal(const std::set<std::string>& gids,
                                        WallClock::time_point since,
                                        milliseconds limit) {
    const auto deadline = since + limit;
    std::set<std::string> left;
    for (;;) {
      auto unfinished = Unfinished();
      if (unfinished.ok()) {
        left.clear();
        for (const GlobalTrans& t : *unfinished) {
          if (gids.empty() || gids.count(t.gid) != 0) left.insert(t.gid);
        }
        const auto now = WallClock::now();
        if (left.empty()) {
          return std::chrono::duration_cast<milliseconds>(now - since);
        }
        if (now > deadline) break;
      } else if (WallClock::now() > deadline) {
        ADD_FAILURE() << "journal: " << unfinished.status();
        return std::nullopt;
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    std::string text;
    for (const std::string& gid : left) {
      auto found = journal_->Find(gid);
      text += "\n  " + gid;
      if (found.ok()) {
        text += " " + std::string(ToString(found->trans.status)) + " owner " +
                found->trans.owner;
      }
    }
    ADD_FAILURE() << left.size() << " transaction(s) still unfinished after "
                  << limit.count() << " ms:" << text;
    return std::nullopt;
  }

  // What must never change once a transaction is final: its row and its
  // branch rows, as a text per final transaction. A write that applies
  // changes update_time at least.
  std::map<std::string, std::string> FinalRows() {
    std::map<std::string, std::string> out;
    ListQuery q;
    q.limit = 100000;
    auto page = journal_->List(q);
    EXPECT_OK(page.status());
    if (!page.ok()) return out;
    auto ms = [](TimePoint t) {
      return std::to_string(
          std::chrono::duration_cast<milliseconds>(t.time_since_epoch())
              .count());
    };
    for (const GlobalTrans& listed : page->transactions) {
      if (!IsFinished(listed.status)) continue;
      auto found = journal_->Find(listed.gid);
      EXPECT_OK(found.status());
      if (!found.ok()) continue;
      const GlobalTrans& t = found->trans;
      std::string text = std::string(ToString(t.status)) + " updated " +
                         ms(t.update_time) + " owner " + t.owner;
      for (const Branch& b : found->branches) {
        text += "; " + b.branch_id + "/" + std::string(ToString(b.op)) + " " +
                std::string(ToString(b.status)) + " updated " +
                ms(b.update_time) + " attempts " + std::to_string(b.attempts);
      }
      out[t.gid] = text;
    }
    return out;
  }

  // Sagas through server `index`, waiting for their result, until one
  // succeeds: the server takes and finishes work. False after `limit`.
  bool Serves(int index, seconds limit) {
    const auto deadline = WallClock::now() + limit;
    std::mt19937 rng(static_cast<uint32_t>(index + 1000));
    for (int n = 0; WallClock::now() < deadline; ++n) {
      const std::string gid =
          "probe-" + servers_[index]->name + "-" + std::to_string(n);
      RunOne(gid, index, rng, Kind::kSaga, /*wait=*/true);
      std::lock_guard<std::mutex> lock(mu_);
      if (planned_[gid].acknowledged) return true;
      std::cout << "probe " << gid << ": " << planned_[gid].result << "\n";
    }
    return false;
  }

  // The checks every test ends with (see the file comment).
  void CheckEverything() {
    WaitFinal({}, WallClock::now(), milliseconds(60000));
    std::map<std::string, Planned> planned;
    {
      std::lock_guard<std::mutex> lock(mu_);
      planned = planned_;
    }
    auto effects = ledger_->Effects();
    ASSERT_OK(effects.status());
    // (gid, branch, op) -> times applied
    std::map<std::string, std::map<std::pair<std::string, std::string>, int>>
        applied;
    for (const LedgerEffect& e : *effects) {
      ++applied[e.gid][{e.branch_id, e.op}];
    }
    std::map<std::string, WallClock::time_point> final_at;
    int acknowledged = 0;
    int counts[2] = {0, 0};  // succeed, failed
    for (const auto& [gid, p] : planned) {
      auto found = journal_->Find(gid);
      if (!found.ok()) {
        EXPECT_EQ(found.status().code(), StatusCode::kNotFound) << gid;
        EXPECT_FALSE(p.acknowledged)
            << gid << " (" << KindName(p.kind) << " via "
            << servers_[p.via]->name << ") was acknowledged but is lost";
        EXPECT_EQ(applied.count(gid), 0u)
            << gid << " is not in the journal but has ledger effects";
        continue;
      }
      const GlobalTrans& t = found->trans;
      const std::string what = gid + " (" + KindName(p.kind) + " via " +
                               servers_[p.via]->name + ", " +
                               std::string(ToString(t.status)) + ")";
      ASSERT_TRUE(IsFinished(t.status)) << what;
      final_at[gid] = t.status == TransStatus::kSucceed
                          ? t.finish_time.value_or(t.update_time)
                          : t.rollback_time.value_or(t.update_time);
      const bool succeeded = t.status == TransStatus::kSucceed;
      ++counts[succeeded ? 0 : 1];
      if (p.acknowledged) {
        ++acknowledged;
        // Acknowledged: the outcome the client was promised.
        const bool expect_success = !(p.kind == Kind::kSaga && p.fails);
        EXPECT_EQ(succeeded, expect_success) << what << ": " << p.result;
      }
      if (p.fails) {
        EXPECT_FALSE(succeeded) << what;
      }
      // Every branch effect exactly once, and as the final status says.
      auto& e = applied[gid];
      for (const auto& [key, n] : e) {
        EXPECT_EQ(n, 1) << what << ": branch " << key.first << " " << key.second
                        << " applied " << n << " times";
      }
      std::set<std::string> ids;
      for (const Branch& b : found->branches) {
        if (b.branch_id != "00") ids.insert(b.branch_id);
      }
      auto n = [&e](const std::string& id, const char* op) {
        auto it = e.find({id, op});
        return it == e.end() ? 0 : it->second;
      };
      for (const std::string& id : ids) {
        const std::string where = what + " branch " + id;
        switch (p.kind) {
          case Kind::kSaga:
            if (succeeded) {
              EXPECT_EQ(n(id, "action"), 1) << where;
              EXPECT_EQ(n(id, "compensate"), 0) << where;
            } else {
              EXPECT_EQ(n(id, "compensate"), n(id, "action")) << where;
            }
            break;
          case Kind::kTcc:
            if (succeeded) {
              EXPECT_EQ(n(id, "try"), 1) << where;
              EXPECT_EQ(n(id, "confirm"), 1) << where;
              EXPECT_EQ(n(id, "cancel"), 0) << where;
            } else {
              EXPECT_EQ(n(id, "confirm"), 0) << where;
              EXPECT_EQ(n(id, "cancel"), n(id, "try")) << where;
            }
            break;
          case Kind::kMsg:
            EXPECT_EQ(n(id, "action"), succeeded ? 1 : 0) << where;
            break;
        }
      }
      if (p.kind == Kind::kMsg) {
        EXPECT_EQ(n("00", "msg"), succeeded ? 1 : 0) << what << " local";
      }
    }
    auto total = ledger_->Total();
    ASSERT_OK(total.status());
    EXPECT_EQ(*total, kAccounts * kInitialBalance) << "money was made or lost";
    CheckCalls(final_at);
    CheckLogs();
    std::cout << planned.size() << " transactions (" << acknowledged
              << " acknowledged; " << counts[0] << " succeed, " << counts[1]
              << " failed), " << effects->size() << " ledger effects\n";
  }

  // A coordinator that keeps going round on one transaction (a write it
  // retries at once, forever) shows as thousands of log lines about one gid;
  // a normal one logs a handful (its decisions, a transient failure).
  void CheckLogs() {
    constexpr int kMaxLinesPerGid = 200;
    for (const auto& s : servers_) {
      const std::string text = ReadFile(s->log_path);
      std::istringstream in(text);
      std::map<std::string, int> lines;
      std::string line;
      while (std::getline(in, line)) {
        const std::size_t at = line.find("gid=");
        if (at == std::string::npos) continue;
        const std::size_t end = line.find_first_of(" :", at);
        ++lines[line.substr(at + 4, end == std::string::npos ? std::string::npos
                                                             : end - at - 4)];
      }
      for (const auto& [gid, n] : lines) {
        if (n <= kMaxLinesPerGid) continue;
        const std::size_t at = text.find("gid=" + gid);
        ADD_FAILURE() << s->name << " logged " << n << " lines about gid "
                      << gid << " (a loop?); the first: "
                      << text.substr(at, text.find('\n', at) - at);
      }
    }
  }

  void CheckCalls(
      const std::map<std::string, WallClock::time_point>& final_at) {
    std::map<std::string, int> per_caller;
    const std::vector<LedgerCall> calls = ledger_->Calls();
    for (const LedgerCall& c : calls) ++per_caller[c.caller];
    std::string summary;
    for (const auto& [caller, n] : per_caller) {
      summary += " " + caller + "=" + std::to_string(n);
    }
    std::cout << "branch calls by caller:" << summary << "\n";
    for (const auto& [caller, n] : per_caller) {
      EXPECT_TRUE(caller == "self" || caller.size() == 1)
          << n << " call(s) from an unidentified caller " << caller;
    }
    const std::vector<std::string> violations =
        FindConcurrentCalls(calls, final_at);
    for (std::size_t i = 0; i < violations.size() && i < 20; ++i) {
      ADD_FAILURE() << violations[i];
    }
    EXPECT_EQ(violations.size(), 0u)
        << "calls of two coordinators at once, or after the end";
  }

  PostgresServer* pg_ = nullptr;
  TempDir dir_;
  std::string schema_;
  std::unique_ptr<LedgerService> ledger_;
  std::vector<std::unique_ptr<Server>> servers_;
  std::unique_ptr<PostgresJournal> journal_;
  std::vector<std::thread> load_;
  std::atomic<bool> stop_load_{false};
  std::mutex mu_;
  std::map<std::string, Planned> planned_;
};

TEST_F(FailoverTest, KilledCoordinatorsWorkIsFinishedByTheOthers) {
  if (pg_ == nullptr) return;
  for (const char* name : {"A", "B", "C"}) StartServer(name, pg_->port());
  OpenJournal();
  StartLoad();
  std::this_thread::sleep_for(seconds(6));

  // C dies with work in flight.
  const auto killed_at = WallClock::now();
  servers_[2]->alive = false;
  servers_[2]->process->Kill(SIGKILL);
  servers_[2]->process->Wait();
  int leased = 0;
  const std::set<std::string> orphans = WorkOf(2, &leased);
  std::cout << "killed C with " << orphans.size()
            << " submitted transaction(s) unfinished, " << leased
            << " leased by it\n";
  EXPECT_FALSE(orphans.empty()) << "C had no work in flight; the test proves "
                                   "nothing (raise the load)";
  const auto took = WaitFinal(orphans, killed_at, kTakeoverBound);
  if (took) {
    std::cout << "A and B finished C's work " << took->count()
              << " ms after the kill (bound " << kTakeoverBound.count()
              << " s = lease " << kLease.count() << " s + retry interval "
              << kRetryInterval.count() << " s + slack)\n";
  }
  std::this_thread::sleep_for(seconds(3));
  StopLoad();
  CheckEverything();
}

TEST_F(FailoverTest, PartitionedCoordinatorIsTakenOverAndItsStaleWritesFail) {
  if (pg_ == nullptr) return;
  // A partitioned coordinator may be cut in the middle of a journal batch,
  // leaving a transaction open on the server with rows locked; PostgreSQL
  // ends such a session only when it notices (keepalives, this timeout).
  // Other coordinators' claims skip locked rows, so without it the takeover
  // would wait for the partition to heal. docs/journal.md says so.
  {
    PGconn* conn = PQconnectdb(pg_->conninfo().c_str());
    ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
    PGresult* r =
        PQexec(conn,
               "ALTER DATABASE dtx SET idle_in_transaction_session_timeout = "
               "'3s'");
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(conn);
    PQclear(r);
    PQfinish(conn);
  }
  auto proxy = TcpProxy::Start("127.0.0.1", pg_->port());
  ASSERT_OK(proxy.status());
  StartServer("A", pg_->port());
  StartServer("B", pg_->port());
  StartServer("C", (*proxy)->port());
  OpenJournal();
  StartLoad();
  std::this_thread::sleep_for(seconds(6));

  const auto cut_at = WallClock::now();
  (*proxy)->Cut(TcpProxy::CutMode::kBlackhole);
  int leased = 0;
  const std::set<std::string> held = WorkOf(2, &leased);
  std::cout << "cut C off from PostgreSQL with " << held.size()
            << " submitted transaction(s) unfinished, " << leased
            << " leased by it\n";
  EXPECT_FALSE(held.empty()) << "C had no work in flight; the test proves "
                                "nothing (raise the load)";
  // A and B finish C's work while C is still cut off.
  const auto took = WaitFinal(held, cut_at, kTakeoverBound);
  if (took) {
    std::cout << "A and B finished C's work " << took->count()
              << " ms after the cut\n";
  }
  // Some more time cut off, so that C's held writes are stale for sure.
  std::this_thread::sleep_for(kLease);
  const std::map<std::string, std::string> before = FinalRows();
  std::cout << "healing the partition: " << (*proxy)->held_bytes()
            << " bytes held, " << before.size() << " transactions final\n";
  (*proxy)->Restore();
  std::this_thread::sleep_for(seconds(4));
  StopLoad();
  EXPECT_TRUE(Serves(2, seconds(20))) << "C does not serve after the cut";
  CheckEverything();
  // None of C's held writes applied to a transaction that was final.
  const std::map<std::string, std::string> after = FinalRows();
  int changed = 0;
  for (const auto& [gid, text] : before) {
    auto it = after.find(gid);
    const std::string now = it == after.end() ? "<gone>" : it->second;
    if (now != text && ++changed <= 20) {
      ADD_FAILURE() << gid << " changed after it was final:\n  before: " << text
                    << "\n  after:  " << now;
    }
  }
  EXPECT_EQ(changed, 0) << "final transactions written after the heal";
  const std::string log = ReadFile(servers_[2]->log_path);
  std::cout << "C's log has " << std::count(log.begin(), log.end(), '\n')
            << " lines\n";
}

TEST_F(FailoverTest, PostgresRestartLosesNothingAcknowledged) {
  if (pg_ == nullptr) return;
  for (const char* name : {"A", "B", "C"}) StartServer(name, pg_->port());
  OpenJournal();
  StartLoad();
  std::this_thread::sleep_for(seconds(5));
  pg_->Stop();
  std::cout << "PostgreSQL stopped\n";
  std::this_thread::sleep_for(seconds(2));
  ASSERT_OK(pg_->StartAgain());
  std::cout << "PostgreSQL started again\n";
  std::this_thread::sleep_for(seconds(4));
  StopLoad();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(Serves(i, seconds(20)))
        << servers_[i]->name << " does not serve after the restart";
  }
  CheckEverything();
}

// The call-log check can fail: it finds two coordinators' calls that
// intersect, and a call after the end; it accepts a handover.
TEST(FailoverCheckTest, FindsConcurrentCallsAndCallsAfterTheEnd) {
  const auto t0 = WallClock::now();
  auto call = [t0](const std::string& caller, int from_ms, int to_ms) {
    LedgerCall c;
    c.method = "Move";
    c.gid = "g";
    c.branch_id = "01";
    c.op = "action";
    c.caller = caller;
    c.start = t0 + milliseconds(from_ms);
    c.end = t0 + milliseconds(to_ms);
    return c;
  };
  // A hands over to B, and a client's try in between is not a coordinator.
  EXPECT_THAT(FindConcurrentCalls({call("A", 0, 100), call("self", 50, 60),
                                   call("B", 2100, 2200)},
                                  {{"g", t0 + milliseconds(2300)}}),
              ::testing::IsEmpty());
  EXPECT_THAT(FindConcurrentCalls({call("A", 0, 100), call("B", 90, 200)}, {}),
              ::testing::ElementsAre(::testing::HasSubstr("at once")));
  // Only the caller differs from the previous case.
  EXPECT_THAT(FindConcurrentCalls({call("A", 0, 100), call("A", 90, 200)}, {}),
              ::testing::IsEmpty());
  EXPECT_THAT(FindConcurrentCalls({call("A", 0, 100), call("B", 500, 600)},
                                  {{"g", t0 + milliseconds(200)}}),
              ::testing::ElementsAre(::testing::HasSubstr("was final")));
}

// The proxy forwards, resets, and holds bytes in a blackhole: a journal
// opened through it works, fails at once after a reset cut, times out in a
// blackhole (its startup bytes held), and works again once restored.
TEST(TcpProxyTest, ForwardsResetsAndBlackholes) {
  PostgresServer* pg = RequirePostgres();
  if (pg == nullptr) return;
  auto proxy = TcpProxy::Start("127.0.0.1", pg->port());
  ASSERT_OK(proxy.status());
  PostgresJournalOptions options;
  options.conninfo = "host=127.0.0.1 port=" + std::to_string((*proxy)->port()) +
                     " user=dtx dbname=dtx";
  options.schema = FreshPostgresSchema();
  options.connect_timeout = milliseconds(1000);
  {
    auto journal = PostgresJournal::Open(options);
    ASSERT_OK(journal.status());
    EXPECT_GE((*proxy)->open_connections(), 1u);
    (*proxy)->Cut(TcpProxy::CutMode::kReset);
    EXPECT_EQ((*proxy)->open_connections(), 0u);
    auto lost = (*journal)->Find("nothing");
    EXPECT_EQ(lost.status().code(), StatusCode::kUnavailable) << lost.status();
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto refused = PostgresJournal::Open(options);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(900))
      << "a reset cut answers at once";
  (*proxy)->Restore();
  ASSERT_OK(PostgresJournal::Open(options).status());

  (*proxy)->Cut(TcpProxy::CutMode::kBlackhole);
  auto silent = PostgresJournal::Open(options);
  EXPECT_EQ(silent.status().code(), StatusCode::kUnavailable);
  EXPECT_GT((*proxy)->held_bytes(), 0u) << "the startup packet is held";
  (*proxy)->Restore();
  ASSERT_OK(PostgresJournal::Open(options).status());
}

}  // namespace
}  // namespace dtx::testing
