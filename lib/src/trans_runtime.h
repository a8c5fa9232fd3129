// TransRuntime: one global transaction being worked on, a session that owns
// its state and its behaviour on its own strand (as the sessions of asio's
// examples do). Its life cycle is drawn at the top of trans_runtime.cc.
//
// Every method runs on the strand (checked in debug builds), except the
// constructor, Post and executor (any thread), and ReleaseWaiters and the
// accessors, which Shutdown also calls once the io threads have stopped.
// Processors (trans_type_<mode>.cc) read the state through the accessors and
// act through the methods; nothing else touches it.

#ifndef DTX_LIB_TRANS_RUNTIME_H_
#define DTX_LIB_TRANS_RUNTIME_H_

#include "dtx/branch_client.h"
#include "dtx/coordinator.h"
#include "dtx/journal.h"
#include "dtx/model.h"

#include "serial.h"
#include "trans_type.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dtx::internal {

// Branch::last_error of a call's result (see trans_runtime.cc).
std::string AttemptError(const BranchResult& result);

class TransRuntime : public std::enable_shared_from_this<TransRuntime> {
 public:
  // Where a branch stands in this life of the transaction.
  enum class Progress : uint8_t {
    kIdle,      // may be called
    kInFlight,  // a call is on the wire
    kBlocked,   // its last call failed; retried in a later life (or RetryNow)
  };
  enum class Phase : uint8_t {
    kActive,    // processing: calls and lazy writes may be outstanding
    kDeciding,  // a status change is being made durable; nothing is called
    kEvicted,   // left memory; a stale handle ignores everything
  };
  // Released when this life ends: the transaction's state then, and whether
  // the coordinator shut down first.
  using Waiter = std::function<void(const GlobalTrans&, bool stopped)>;

  // `opts`, when given, are the transaction's options already decoded.
  TransRuntime(Engine& engine, std::shared_ptr<Serial> strand,
               const TransProcessor& processor, TransWithBranches data,
               const TransOptions* opts);

  // Runs `fn` on the strand, later, on an io thread. Any thread.
  void Post(std::function<void()> fn);
  // Runs `fn` on the strand: right here, before returning, when the strand
  // is idle and this thread runs no serial's closure (a request's thread);
  // otherwise as Post. Any thread.
  void Dispatch(std::function<void()> fn);
  // Runs closures on the strand, keeping the runtime alive until they have
  // run: what journal writes and branch calls complete through.
  Executor executor();

  // Entry points.
  // Processes until nothing more can be done now, then leaves memory if
  // nothing is outstanding.
  void Advance();
  void AddWaiter(Waiter waiter);
  // Runs `request` now, or, while a decision is being made durable, once it
  // is (or the runtime leaves memory): a request that would decide (Submit,
  // Abort, ForceStop) must see the status that decision leaves. `request`
  // should start again from WithRuntime, as the runtime may have left.
  void WhenSettled(std::function<void()> request);
  // Makes `to` durable (compare-and-set from the current status), then
  // continues; `reason` becomes the rollback reason when non-empty. A final
  // status with no `on_durable` is written lazily: waiters learn it at once.
  void Decide(TransStatus to, std::string reason,
              std::function<void(Status)> on_durable = nullptr);
  // The same, writing `result` (GlobalTrans::result) with the change when
  // set: a workflow's Submit.
  void Decide(TransStatus to, std::string reason,
              std::optional<std::string> result,
              std::function<void(Status)> on_durable);
  // RetryNow: forgets this life's failures and back-off, then processes.
  void RetryNow();
  // Leaves memory when nothing is outstanding (writing the schedule first
  // when it changed). Requests that end without changing anything call it.
  void MaybeEvict();
  // This coordinator has just claimed the transaction in the journal while
  // this runtime was in memory. One that drives it (owned, not let go of)
  // goes on; one that does not (loaded for a request, fenced, or releasing
  // it) leaves memory as soon as nothing is outstanding, and the journal's
  // copy is then loaded and run (Engine::Resume).
  void ClaimedHere();
  // The coordinator shut down: releases the waiters.
  void ReleaseWaiters(bool stopped);

  // State, for processors and requests.
  const GlobalTrans& trans() const { return trans_; }
  const std::vector<Branch>& branches() const { return branches_; }
  const TransOptions& options() const { return opts_; }
  const TransProcessor& processor() const { return processor_; }
  Phase phase() const { return phase_; }
  bool evicted() const { return phase_ == Phase::kEvicted; }
  bool deciding() const { return phase_ == Phase::kDeciding; }
  Progress progress(std::size_t index) const { return progress_[index]; }
  bool in_flight(std::size_t index) const {
    return progress_[index] == Progress::kInFlight;
  }
  // A branch may be called: idle, and not failed in this life.
  bool callable(std::size_t index) const {
    return progress_[index] == Progress::kIdle;
  }
  bool any_in_flight() const;
  // Whether branch `index`'s status in memory is the journal's: no result of
  // it waits to be written or is being written. A saga calls an action only
  // once the success of the actions it depends on is durable
  // (trans_type_saga.cc).
  bool durable(std::size_t index) const;
  // Whether this coordinator owns the transaction (journal.h, Fence): it
  // admitted or claimed it, or a decision of its took it over.
  bool owned() const;
  // Not this coordinator's to drive: another coordinator claimed it, or it
  // is on a shared journal and owned by another (or by none).
  bool hands_off() const;
  const std::string& failure_reason() const { return failure_reason_; }
  // Where a workflow of this process is resumed (Coordinator::
  // SetWorkflowResumer); null when none is set.
  std::shared_ptr<BranchClient> workflow_resumer() const;
  template <typename State>
  State& mode_state() const {
    return static_cast<State&>(*mode_state_);
  }

  // Actions, for processors.
  // Calls branch `index` (an empty URL succeeds at once, with no call).
  void CallBranch(std::size_t index);
  // A call of the mode's own (a msg check-back, a workflow's resume):
  // `on_result` runs on the strand. The runtime stays in memory until it
  // answers. Made through `via` when given (an in-process workflow
  // resumer), else through the coordinator's branch client.
  void CallExtra(BranchRequest request,
                 std::function<void(BranchResult)> on_result,
                 std::shared_ptr<BranchClient> via = nullptr);
  // The branch request of the transaction's metadata and deadline for `url`.
  BranchRequest NewRequest(std::string url, std::string branch_id,
                           BranchOp op) const;
  void BranchSucceeded(std::size_t index);
  void RecordBranch(std::size_t index, BranchStatus status);
  // Not called again in this life; the transaction is retried later.
  void Block(std::size_t index);
  void set_failure_reason(std::string reason) {
    failure_reason_ = std::move(reason);
  }
  // A retry is needed: keep (ONGOING) or double (an error) the interval.
  void NeedRetry(bool keep_interval);
  // On a shared journal: the time `request` must be sent by to stay inside
  // the lease (BranchRequest::start_by).
  void LimitStart(BranchRequest& request) const;
  // Up to RetryPolicy::jitter of `interval` (NeedRetry after an error).
  std::chrono::milliseconds Jitter(std::chrono::seconds interval) const;
  // Look again no later than `at`.
  void WakeAt(TimePoint at);
  // Resets the retry interval to the transaction's base interval.
  void ResetInterval();
  // Saga RetryLimit: spends one retry of the budget, durably, then makes
  // branch `index` callable again.
  void SpendRetry(std::size_t index);
  // dtm's rules for this transaction.
  bool TimedOut() const;
  std::chrono::seconds Timeout() const;
  TimePoint Now() const;
  Logger& logger() const;

 private:
  void RunPasses();
  void RunSettled();
  // The fence of a write about to be made, and its effect: a write by a
  // coordinator that does not own the transaction takes it over.
  Fence WriteFence();
  // After a write failed with `s`: true (and the runtime is dropped from
  // memory once nothing is outstanding, writing nothing more) when it was
  // refused because another coordinator claimed the transaction since.
  bool Fenced(const Status& s);
  // What a request learns when its decision was refused by Fenced.
  Status TakenOver() const;
  // Runs `call` with OK once a call of up to `need` may be made: at once
  // with a journal that no other coordinator shares; otherwise once this
  // coordinator's lease (next_cron_time) covers `need` and a margin,
  // renewing it first when it does not. With an error when this
  // coordinator does not own the transaction or cannot renew the lease.
  void WithLease(std::chrono::milliseconds need,
                 std::function<void(Status)> call);
  void OnLeaseRenewed(TimePoint until, Status s);
  // `called`: when the call was made (Branch::last_try_time); `started`:
  // the same on the steady clock, for its latency.
  void OnBranchResult(std::size_t index, BranchResult result, TimePoint called,
                      std::chrono::steady_clock::time_point started);
  // Writes the results not yet written; `lazy`: no call waits for them
  // (BranchResults::lazy).
  void FlushBranches(bool lazy);
  // Reports branch `index` to the AlertSink when its failed call reached an
  // alert threshold (alert_tracker.h).
  void MaybeAlert(std::size_t index, BranchOutcome outcome);
  void OnDecided(TransStatus from, TransStatus to, const std::string& reason,
                 const std::optional<std::string>& result,
                 const std::function<void(Status)>& on_durable, Status s);
  void Reload(TransStatus to, std::string reason,
              std::function<void(Status)> on_durable);
  // Where branch results arrive (see CallExecutor in trans_runtime.cc).
  Executor CallExecutor();
  // A journal completion that continues on the strand.
  WriteDone OnStrand(std::function<void(Status)> fn);
  bool OnStrandNow() const;

  Engine& engine_;
  const std::shared_ptr<Serial> strand_;
  const TransProcessor& processor_;
  GlobalTrans trans_;
  std::vector<Branch> branches_;
  TransOptions opts_;
  std::unique_ptr<ModeState> mode_state_;

  Phase phase_ = Phase::kActive;
  std::vector<Progress> progress_;  // one per branch
  // Branch results not yet handed to the journal: written with the next
  // decision, before the next real call, or before eviction.
  std::vector<BranchUpdate> unsaved_;
  // Per branch, the results recorded (a count) and the last of them known
  // to be written, for durable(); empty or short: nothing recorded since
  // the branches were read. With each entry of unsaved_, its branch's index
  // and count.
  std::vector<uint64_t> recorded_;
  std::vector<uint64_t> saved_;
  using SavedMark = std::pair<std::size_t, uint64_t>;
  std::vector<SavedMark> unsaved_marks_;
  void MarkSaved(const std::vector<SavedMark>& marks);
  // The call whose result is being taken (OnBranchResult): recorded with
  // the status the processor sets for that branch, or on its own.
  std::optional<BranchAttempt> attempt_;
  std::size_t attempt_index_ = 0;
  int pending_writes_ = 0;
  int extra_calls_ = 0;  // CallExtra calls on the wire
  // A decision could not be made durable: nothing more in this life.
  bool paused_ = false;
  // Another coordinator claimed the transaction (Fenced).
  bool fenced_ = false;
  // Claimed by this coordinator meanwhile: loaded again once evicted.
  bool resume_after_eviction_ = false;
  // Its schedule was written letting go of it (CronUpdate::release): it
  // leaves memory next.
  bool released_ = false;
  // A lease renewal is being written; these calls wait for it.
  bool renewing_ = false;
  std::vector<std::function<void(Status)>> leased_calls_;
  // A branch of the current pass succeeded without a call (empty URL).
  bool completed_inline_ = false;
  std::string failure_reason_;
  // Earliest time worth looking again; set when something must wait.
  std::optional<TimePoint> wake_at_;
  std::chrono::seconds interval_{0};  // the current retry interval
  std::vector<Waiter> waiters_;
  std::vector<std::function<void()>> settled_;  // see WhenSettled
};

}  // namespace dtx::internal

#endif  // DTX_LIB_TRANS_RUNTIME_H_
