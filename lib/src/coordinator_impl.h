// The coordinator's internals, shared by coordinator.cc (API, scheduler),
// trans_runtime.cc (calls, writes, decisions, eviction) and the per-mode
// processors trans_type_{saga,tcc,msg}.cc.
//
// A transaction being worked on has a TransRuntime, owned by its strand. It is
// created when a request touches the transaction or when the scheduler claims
// it from the journal, and evicted (dropped from memory) when nothing more can
// be done now: finished, or waiting for a retry time that is then recorded as
// its next_cron_time. The scheduler claims it again when due. One path thus
// serves retries, timeouts and recovery after a crash.

#ifndef DTX_LIB_COORDINATOR_IMPL_H_
#define DTX_LIB_COORDINATOR_IMPL_H_

#include "dtx/coordinator.h"

#include "trans_options.h"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace dtx {

using Strand = asio::strand<asio::io_context::executor_type>;

// One transaction in memory. Owned by `strand`: every member is read and
// written only there.
struct TransRuntime : std::enable_shared_from_this<TransRuntime> {
  TransRuntime(Coordinator::Impl* coordinator, Strand s)
      : c(coordinator), strand(std::move(s)) {}

  Coordinator::Impl* c;
  Strand strand;
  GlobalTrans trans;
  std::vector<Branch> branches;
  TransOptions opts;
  internal::SagaCustom saga;  // saga only
  int64_t msg_delay_s = 0;    // msg only

  std::vector<char> in_flight;  // per branch
  // Branch results not yet handed to the journal: written with the next
  // decision, before the next real call, or before eviction.
  std::vector<BranchUpdate> unsaved;
  std::vector<char> blocked;  // per branch: failed in this life, retry later
  bool checkback_in_flight = false;
  bool checkback_blocked = false;
  int pending_writes = 0;
  bool deciding = false;  // a status change is being made durable
  // A branch of the current pass succeeded without a call (empty URL).
  bool completed_inline = false;
  std::string failure_reason;
  // Earliest time worth looking again; set when something must wait.
  std::optional<TimePoint> wake_at;
  std::chrono::seconds interval{0};  // the current retry interval
  bool evicted = false;
  // WaitResult callers, released when this life ends (or, with `stopped`,
  // when the coordinator shuts down first).
  std::vector<std::function<void(const GlobalTrans&, bool stopped)>> waiters;
};

struct Coordinator::Impl {
  Impl() : sched(asio::make_strand(io)), poll_timer(sched) {}
  // The journal's completions use the members declared after it (mu,
  // active...): it is closed, running every completion still queued, before
  // those are destroyed.
  ~Impl() {
    if (journal) journal->Close();
  }

  // coordinator.cc.
  // Runs `fn` on the strand of gid's runtime, loading it from the journal when
  // it is not in memory. `fn` gets null (and the status) when the gid is
  // unknown or cannot be read.
  void WithRuntime(
      const std::string& gid,
      std::function<void(std::shared_ptr<TransRuntime>, Status)> fn);
  // Creates and registers the runtime of a transaction read from the journal
  // (or just saved); returns the existing one when already in memory.
  // `opts`, when given, are the transaction's options already decoded.
  std::shared_ptr<TransRuntime> Activate(TransWithBranches data, bool* created,
                                         const TransOptions* opts = nullptr);
  void Poll();
  void ArmPoll();
  Status ClaimDueOnce(std::size_t* claimed);
  std::chrono::seconds Lease() const;
  // Blocks until `f` is ready and returns its status, or kUnavailable once
  // the coordinator shuts down.
  Status Await(std::future<Status>& f);
  Status CheckOpen();

  // trans_runtime.cc.
  void Advance(const std::shared_ptr<TransRuntime>& rt);
  void CallBranch(const std::shared_ptr<TransRuntime>& rt, std::size_t index);
  void CallCheckBack(const std::shared_ptr<TransRuntime>& rt);
  void OnBranchResult(const std::shared_ptr<TransRuntime>& rt,
                      std::size_t index, BranchResult result);
  // Makes `to` durable (compare-and-set from the current status), then
  // continues. `reason` becomes the rollback reason when non-empty.
  void Decide(const std::shared_ptr<TransRuntime>& rt, TransStatus to,
              std::string reason,
              std::function<void(Status)> on_durable = nullptr);
  // A retry is needed: keep (ONGOING) or double (error) the interval.
  void NeedRetry(const std::shared_ptr<TransRuntime>& rt, bool keep_interval);
  void BranchSucceeded(const std::shared_ptr<TransRuntime>& rt,
                       std::size_t index);
  void RecordBranch(const std::shared_ptr<TransRuntime>& rt, std::size_t index,
                    BranchStatus status);
  void FlushBranches(const std::shared_ptr<TransRuntime>& rt);
  void MaybeEvict(const std::shared_ptr<TransRuntime>& rt);
  void Post(const std::shared_ptr<TransRuntime>& rt, std::function<void()> fn);
  // dtm's base retry interval and timeout of a transaction.
  std::chrono::seconds BaseInterval(const TransOptions& opts) const;
  std::chrono::seconds TimeoutOf(TransType type,
                                 const TransOptions& opts) const;
  std::chrono::seconds BaseInterval(const TransRuntime& rt) const {
    return BaseInterval(rt.opts);
  }
  std::chrono::seconds TimeoutOf(const TransRuntime& rt) const {
    return TimeoutOf(rt.trans.trans_type, rt.opts);
  }
  bool TimedOut(const TransRuntime& rt) const;

  // trans_type_*.cc.
  void AdvanceSaga(const std::shared_ptr<TransRuntime>& rt);
  void AdvanceTcc(const std::shared_ptr<TransRuntime>& rt);
  void AdvanceMsg(const std::shared_ptr<TransRuntime>& rt);

  Options options;
  const Clock* clock = nullptr;
  std::shared_ptr<Logger> logger;
  std::unique_ptr<IdGenerator> ids;
  std::string owner;  // this coordinator's name in the journal's leases

  // Declared before the journal and client, so that their completions, run
  // while they close, can still post to it.
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work;
  Strand sched;
  asio::steady_timer poll_timer;  // on sched
  std::vector<std::thread> threads;

  std::unique_ptr<Journal> journal;
  std::unique_ptr<BranchClient> client;

  // Held across a claim and the activation of what it claimed, so that
  // RunDue, which claims and then waits for idleness, cannot miss
  // transactions that the scheduler claimed but has not activated yet.
  std::mutex claim_mu;
  // Prepared TCCs of this process as written to the journal (the global and
  // the branches registered since), so that Submit and Abort need not read
  // them back. A hint only: a stale entry (another process changed the
  // transaction) fails the decision's compare-and-set and is reloaded.
  std::mutex prepared_mu;
  std::unordered_map<std::string, TransWithBranches>
      prepared;  // guarded by prepared_mu
  static constexpr std::size_t kMaxPrepared = 10000;

  std::mutex mu;
  std::condition_variable idle_cv;
  std::unordered_map<std::string, std::shared_ptr<TransRuntime>>
      active;  // guarded by mu
  using Wakeup = std::pair<TimePoint, std::string>;
  std::priority_queue<Wakeup, std::vector<Wakeup>, std::greater<>>
      wakeups;            // guarded by mu
  bool stopping = false;  // guarded by mu
  bool shut_down = false;
};

}  // namespace dtx

#endif  // DTX_LIB_COORDINATOR_IMPL_H_
