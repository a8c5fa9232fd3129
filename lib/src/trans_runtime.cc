// TransRuntime: the session of one transaction in memory. What every mode
// shares lives here: calling a branch, recording its result, making a
// decision durable, scheduling a retry, and leaving memory. What a mode
// decides lives in its processor (trans_type_<mode>.cc).
//
// Life cycle (phase_), as pager.c draws its states:
//
//        journal row (a request, or due for the scheduler)
//              |
//              v  Activate
//     +---> kActive  <------------------------------+
//     |       |  Advance: the processor starts       |
//     |       |  calls, records results, or ...      |
//     |       v                                      | durable (or refused:
//     |     Decide(to) ----------------> kDeciding --+  paused until due)
//     |       |  a final status with no waiter
//     |       |  for durability is written lazily
//     |       v
//     |     MaybeEvict: no call, no write outstanding, nothing unsaved
//     |       |  (the schedule written first when it changed)
//     |       v
//     |    kEvicted: out of the active map; waiters released
//     |       |
//     +-------+  due again (next_cron_time): a new runtime, from the journal
//
// Durability (docs/architecture.md): a status change is a compare-and-set in
// the journal, and kDeciding holds every call back until it is durable.
// Branch results are written lazily: losing one means the branch is called
// again, which the barrier makes harmless, except where a later call depends
// on it: a saga action starts only once the success of the actions before it
// is durable (durable()), because a rollback compensates only the steps
// that the journal says could have run. A runtime leaves memory only when
// no call and no write of its own is outstanding.

#include "trans_runtime.h"

#include "dtx/alert_sink.h"
#include "dtx/limits.h"

#include "check.h"
#include "coordinator_impl.h"
#include "prometheus_text.h"

#include <asio/post.hpp>

#include <algorithm>
#include <utility>

namespace dtx::internal {

namespace {

// Per-transaction lines of the normal path are debug (two info lines per
// saga filled a log at thousands of sagas a second; dtx-server logs a
// periodic summary instead); a rollback, and how it ends, stays info.
LogLevel DecisionLevel(TransStatus to) {
  return to == TransStatus::kAborting || to == TransStatus::kFailed
             ? LogLevel::kInfo
             : LogLevel::kDebug;
}

}  // namespace

// "<class>: <message>" of a call's result, valid UTF-8 (a byte that is not
// becomes '?': it travels in proto3 strings and JSON), at most
// kMaxLastErrorBytes; empty for a success.
std::string AttemptError(const BranchResult& r) {
  if (r.outcome == BranchOutcome::kSuccess) return "";
  std::string raw(ToString(r.outcome));
  if (!r.status.message().empty()) {
    raw += ": ";
    raw += MaskCredentials(r.status.message());  // read by operators, alerts
  }
  std::string text;
  for (std::size_t i = 0; i < raw.size();) {
    const std::size_t n = Utf8SequenceLength(raw, i);
    const std::size_t take = n == 0 ? 1 : n;
    if (text.size() + take > kMaxLastErrorBytes) break;
    if (n == 0) {
      text += '?';
    } else {
      text.append(raw, i, n);
    }
    i += take;
  }
  return text;
}

TransRuntime::TransRuntime(Engine& engine, std::shared_ptr<Serial> strand,
                           const TransProcessor& processor,
                           TransWithBranches data, const TransOptions* opts)
    : engine_(engine),
      strand_(std::move(strand)),
      processor_(processor),
      trans_(std::move(data.trans)),
      branches_(std::move(data.branches)) {
  if (opts != nullptr) {
    opts_ = *opts;
  } else {
    auto decoded = DecodeOptions(trans_.options);
    if (decoded.ok()) {
      opts_ = *decoded;
    } else {
      DTX_LOG(engine_.logger, LogLevel::kError,
              "gid=" << trans_.gid << ": " << decoded.status());
    }
  }
  Status error;
  mode_state_ = processor_.LoadState(trans_, branches_, &error);
  if (!error.ok()) {
    DTX_LOG(engine_.logger, LogLevel::kError,
            "gid=" << trans_.gid << ": " << error);
  }
  progress_.assign(branches_.size(), Progress::kIdle);
  interval_ = trans_.next_cron_interval.count() > 0
                  ? trans_.next_cron_interval
                  : engine_.BaseInterval(opts_);
}

bool TransRuntime::OnStrandNow() const { return strand_->RunningHere(); }

void TransRuntime::Post(std::function<void()> fn) {
  strand_->Post(std::move(fn));
}

void TransRuntime::Dispatch(std::function<void()> fn) {
  strand_->Dispatch(std::move(fn));
}

Executor TransRuntime::executor() {
  // Each closure keeps the runtime alive until it has run. A journal writer
  // with no other work (InlineOffer::kIdle) runs it right there when the
  // strand is idle: one thread hop fewer per durable write at low load.
  // Under load the writer offers itself as busy: with one io thread, which
  // runs every strand's closures one at a time anyway, the writer runs it
  // too (the work is split over two threads and the hop is saved; at 64
  // TCCs in flight 0.92 -> 1.02 of the baseline, the means of four
  // alternating runs, docs/architecture.md, "Thread hops"); with more io
  // threads it goes to them, so that the next commit is not held up while
  // they have cores to run it.
  return [self = shared_from_this()](std::function<void()> fn) {
    TransRuntime* rt = self.get();
    auto keep = [self, fn = std::move(fn)] { fn(); };
    const InlineOffer offer = InlineCompletionOffered();
    if (offer == InlineOffer::kIdle ||
        (offer == InlineOffer::kBusy && rt->engine_.TakesBusyOffers())) {
      rt->Dispatch(std::move(keep));
    } else {
      rt->Post(std::move(keep));
    }
  };
}

Executor TransRuntime::CallExecutor() {
  // A branch result runs on the transport's thread when the strand is idle
  // (one thread hop fewer per call; serial.h), else is queued on it.
  return [strand = strand_](std::function<void()> fn) {
    strand->Dispatch(std::move(fn));
  };
}

WriteDone TransRuntime::OnStrand(std::function<void(Status)> fn) {
  return WriteDone(executor(), std::move(fn));
}

bool TransRuntime::any_in_flight() const {
  return std::any_of(progress_.begin(), progress_.end(),
                     [](Progress p) { return p == Progress::kInFlight; });
}

Status TransRuntime::TakenOver() const {
  return UnavailableError("gid " + trans_.gid +
                          " was taken over by another coordinator sharing "
                          "the journal, which goes on with it");
}

bool TransRuntime::owned() const { return trans_.owner == engine_.owner; }

bool TransRuntime::hands_off() const {
  return fenced_ || (engine_.journal->shared() && !owned() && !released_);
}

void TransRuntime::ClaimedHere() {
  DTX_DCHECK(OnStrandNow());
  if (!hands_off() && !released_) return;
  resume_after_eviction_ = true;
  MaybeEvict();
}

Fence TransRuntime::WriteFence() {
  Fence fence{engine_.owner, trans_.fence};
  if (!owned()) {
    // The write takes the transaction over (journal.h): later writes carry
    // the fence it leaves.
    trans_.owner = engine_.owner;
    ++trans_.fence;
    released_ = false;  // its schedule is to be written (and let go) again
  }
  return fence;
}

bool TransRuntime::Fenced(const Status& s) {
  if (s.code() != StatusCode::kAborted) return false;
  if (!fenced_) {
    DTX_LOG(engine_.logger, LogLevel::kWarn,
            "gid=" << trans_.gid << ": " << s.message()
                   << "; leaving it to that coordinator");
    fenced_ = true;
    paused_ = true;
    unsaved_.clear();
  }
  return true;
}

// How much longer than a call a lease must last when the call starts: the
// room left for the clocks of coordinators sharing a journal to disagree.
constexpr std::chrono::seconds kLeaseMargin{1};

void TransRuntime::WithLease(std::chrono::milliseconds need,
                             std::function<void(Status)> call) {
  if (!engine_.journal->shared()) return call(Status::Ok());
  if (fenced_ || !owned()) {
    // Only the owner calls branches: another coordinator claimed it, or
    // admitted it and holds it; this one only answered a request.
    return call(FailedPreconditionError(
        "gid " + trans_.gid + " is owned by coordinator '" + trans_.owner +
        "'; this one calls none of its branches"));
  }
  if (!renewing_ && Now() + need + kLeaseMargin <= trans_.next_cron_time)
    return call(Status::Ok());
  leased_calls_.push_back(std::move(call));
  if (renewing_) return;
  renewing_ = true;
  const auto cover = std::max<std::chrono::milliseconds>(
      engine_.Lease(), 2 * (need + kLeaseMargin));
  const TimePoint until = Now() + cover;
  CronUpdate u;
  u.gid = trans_.gid;
  u.expected = trans_.status;
  u.next_cron_interval = trans_.next_cron_interval;
  u.next_cron_time = until;
  u.fence = WriteFence();
  ++pending_writes_;
  engine_.journal->TouchCron(
      u, OnStrand([this, until](Status s) { OnLeaseRenewed(until, s); }));
}

void TransRuntime::OnLeaseRenewed(TimePoint until, Status s) {
  --pending_writes_;
  renewing_ = false;
  if (s.ok()) {
    trans_.next_cron_time = until;
  } else if (!Fenced(s)) {
    DTX_LOG(engine_.logger, LogLevel::kWarn,
            "gid=" << trans_.gid << ": lease not renewed (" << s
                   << "); its branches are called in a later pass");
    paused_ = true;
    WakeAt(Now() + interval_);
  }
  std::vector<std::function<void(Status)>> calls;
  calls.swap(leased_calls_);
  for (auto& call : calls) call(s);
  if (!s.ok()) MaybeEvict();
}

void TransRuntime::LimitStart(BranchRequest& request) const {
  if (!engine_.journal->shared()) return;
  // WithLease made the lease cover the call if it starts now; a call that
  // waits for a slot of its target must still start inside it.
  request.start_by = trans_.next_cron_time - request.timeout - kLeaseMargin;
}

TimePoint TransRuntime::Now() const { return engine_.clock->Now(); }

Logger& TransRuntime::logger() const { return *engine_.logger; }

std::shared_ptr<BranchClient> TransRuntime::workflow_resumer() const {
  MutexLock lock(&engine_.resumer_mu);
  return engine_.workflow_resumer;
}

std::chrono::seconds TransRuntime::Timeout() const {
  return engine_.TimeoutOf(processor_, opts_);
}

bool TransRuntime::TimedOut() const {
  const auto timeout = Timeout();
  return timeout.count() > 0 && Now() - trans_.create_time >= timeout;
}

void TransRuntime::AddWaiter(Waiter waiter) {
  DTX_DCHECK(OnStrandNow());
  waiters_.push_back(std::move(waiter));
}

void TransRuntime::WhenSettled(std::function<void()> request) {
  DTX_DCHECK(OnStrandNow());
  if (!deciding()) return request();
  settled_.push_back(std::move(request));
}

void TransRuntime::RunSettled() {
  while (!deciding() && !settled_.empty()) {
    auto request = std::move(settled_.front());
    settled_.erase(settled_.begin());
    request();
  }
}

void TransRuntime::ReleaseWaiters(bool stopped) {
  for (auto& w : waiters_) w(trans_, stopped);
  waiters_.clear();
}

void TransRuntime::Advance() {
  DTX_DCHECK(OnStrandNow());
  if (evicted()) return;
  // On a shared journal only the owner works on it: a runtime loaded for a
  // request about a transaction another coordinator holds (or that none
  // holds) decides nothing of its own (a timeout, say), which would take it
  // over while the owner's lease runs and its calls may be on the wire. A
  // request's own decision (Decide) takes it over and makes it the owner.
  const bool may_work = owned() || !engine_.journal->shared();
  if (!paused_ && may_work) RunPasses();
  MaybeEvict();
}

void TransRuntime::RunPasses() {
  // A pass that completes a branch at once (an empty URL) passes again, so
  // that a saga of empty steps ends in one go without a hop per step. After
  // kMaxInlinePasses the rest is posted, so that one transaction cannot hold
  // an io thread from the others for long.
  constexpr int kMaxInlinePasses = 16;
  completed_inline_ = true;
  for (int pass = 0;
       completed_inline_ && !deciding() && !IsFinished(trans_.status); ++pass) {
    if (pass == kMaxInlinePasses) {
      Post([self = shared_from_this()] { self->Advance(); });
      return;
    }
    completed_inline_ = false;
    processor_.Advance(*this);
  }
}

void TransRuntime::RetryNow() {
  DTX_DCHECK(OnStrandNow());
  for (Progress& p : progress_) {
    if (p == Progress::kBlocked) p = Progress::kIdle;
  }
  paused_ = false;
  wake_at_.reset();
  processor_.OnRetryNow(*this);
  Advance();
}

BranchRequest TransRuntime::NewRequest(std::string url, std::string branch_id,
                                       BranchOp op) const {
  BranchRequest req;
  req.url = std::move(url);
  req.protocol = trans_.protocol;
  req.info.gid = trans_.gid;
  req.info.trans_type = trans_.trans_type;
  req.info.branch_id = std::move(branch_id);
  req.info.op = op;
  for (const auto& [k, v] : opts_.branch_headers)
    req.headers.emplace_back(k, v);
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      opts_.request_timeout.count() > 0 ? opts_.request_timeout
                                        : engine_.options.request_timeout);
  return req;
}

void TransRuntime::CallBranch(std::size_t index) {
  DTX_DCHECK(OnStrandNow());
  DTX_DCHECK(index < branches_.size() && callable(index));
  const Branch& b = branches_[index];
  if (b.url.empty()) {
    // dtm: an empty URL succeeds without a call. RunPasses passes again.
    BranchSucceeded(index);
    completed_inline_ = true;
    return;
  }
  progress_[index] = Progress::kInFlight;
  // Results so far go to the journal while this call is on the wire; this
  // call does not wait for them, so unless a later call of the mode may (a
  // saga's), they may share a later commit.
  FlushBranches(/*lazy=*/!processor_.CallsWaitForResults());
  BranchRequest req = NewRequest(b.url, b.branch_id, b.op);
  req.payload = b.bin_data;
  const auto need = req.timeout;
  WithLease(need, [this, index, req = std::move(req)](Status s) mutable {
    if (!s.ok()) {
      progress_[index] = Progress::kIdle;  // no call was made
      return;
    }
    const Branch& called = branches_[index];
    LimitStart(req);
    DTX_LOG(engine_.logger, LogLevel::kDebug,
            "gid=" << trans_.gid << " branch=" << called.branch_id << " op="
                   << ToString(called.op) << " calling " << called.url);
    engine_.client->Call(
        std::move(req), CallExecutor(),
        [self = shared_from_this(), index, called = Now(),
         started = std::chrono::steady_clock::now()](BranchResult r) {
          self->OnBranchResult(index, std::move(r), called, started);
        });
  });
}

void TransRuntime::CallExtra(BranchRequest request,
                             std::function<void(BranchResult)> on_result,
                             std::shared_ptr<BranchClient> via) {
  DTX_DCHECK(OnStrandNow());
  ++extra_calls_;
  const auto need = request.timeout;
  WithLease(need, [this, request = std::move(request),
                   on_result = std::move(on_result),
                   via = std::move(via)](Status s) mutable {
    if (!s.ok()) {
      // Not called: taken as a failed call, asked again later.
      --extra_calls_;
      if (fenced_ || !owned()) return;
      BranchResult r;
      r.outcome = BranchOutcome::kTransient;
      r.status = s;
      on_result(std::move(r));
      return;
    }
    LimitStart(request);
    BranchClient& client = via ? *via : *engine_.client;
    client.Call(std::move(request), CallExecutor(),
                [self = shared_from_this(), on_result = std::move(on_result),
                 via](BranchResult r) {
                  --self->extra_calls_;
                  if (self->evicted()) return;
                  if (self->fenced_ ||
                      self->engine_.closing.load(std::memory_order_acquire)) {
                    // Cut short by Shutdown, as in OnBranchResult, or claimed
                    // by another coordinator meanwhile: not this one's to act
                    // on.
                    self->MaybeEvict();
                    return;
                  }
                  on_result(std::move(r));
                  self->Advance();
                });
  });
}

void TransRuntime::OnBranchResult(
    std::size_t index, BranchResult result, TimePoint called,
    std::chrono::steady_clock::time_point started) {
  DTX_DCHECK(OnStrandNow());
  if (evicted() || index >= branches_.size()) return;
  progress_[index] = Progress::kIdle;
  if (fenced_ || engine_.closing.load(std::memory_order_acquire)) {
    // The call was cut short by Shutdown: not an answer of the branch. It
    // spends no retry and no back-off; the next coordinator calls again.
    // Or another coordinator claimed the transaction meanwhile: its answer
    // is that coordinator's to take (it calls again).
    MaybeEvict();
    return;
  }
  if (engine_.metrics) {
    engine_.metrics->BranchCall(trans_.trans_type, branches_[index].op,
                                result.outcome,
                                std::chrono::steady_clock::now() - started);
  }
  // The attempt goes with the status the processor records, or with the
  // decision it makes, or alone when it records neither (a retry).
  attempt_ = BranchAttempt{called, AttemptError(result)};
  attempt_index_ = index;
  processor_.OnBranchResult(*this, index, result);
  if (attempt_) RecordBranch(index, branches_[index].status);
  if (engine_.alerts != nullptr) MaybeAlert(index, result.outcome);
  Advance();
}

void TransRuntime::MaybeAlert(std::size_t index, BranchOutcome outcome) {
  // As dtm, only a call that fails and will be retried counts: ONGOING is
  // the branch's "not yet", and a saga action's FAILURE is a decision.
  if (outcome != BranchOutcome::kTransient &&
      outcome != BranchOutcome::kFailure) {
    return;
  }
  const Branch& b = branches_[index];
  if (b.status != BranchStatus::kPrepared) return;
  const int64_t threshold =
      engine_.alert_tracker->OnFailedCall(trans_.gid, b.attempts);
  if (threshold == 0) return;
  BranchAlert alert;
  alert.gid = trans_.gid;
  alert.trans_type = trans_.trans_type;
  alert.status = trans_.status;
  alert.branch_url = b.url;
  alert.branch_id = b.branch_id;
  alert.op = b.op;
  alert.error = b.last_error;
  alert.retry_count = b.attempts;
  alert.threshold = threshold;
  alert.time = b.last_try_time.value_or(Now());
  DTX_LOG(engine_.logger, LogLevel::kWarn,
          "gid=" << trans_.gid << " branch=" << b.branch_id
                 << " op=" << ToString(b.op) << " failed after " << b.attempts
                 << " call(s), alert threshold " << threshold
                 << " reached: alerting");
  engine_.alerts->Report(std::move(alert));
}

void TransRuntime::Block(std::size_t index) {
  DTX_DCHECK(OnStrandNow());
  progress_[index] = Progress::kBlocked;
}

void TransRuntime::BranchSucceeded(std::size_t index) {
  DTX_DCHECK(OnStrandNow());
  const Branch& b = branches_[index];
  DTX_LOG(engine_.logger, LogLevel::kDebug,
          "gid=" << trans_.gid << " branch=" << b.branch_id
                 << " op=" << ToString(b.op) << " succeeded");
  RecordBranch(index, BranchStatus::kSucceed);
  // dtm: progress after a backed-off retry resets the interval.
  interval_ = std::min(interval_, engine_.BaseInterval(opts_));
}

void TransRuntime::RecordBranch(std::size_t index, BranchStatus status) {
  DTX_DCHECK(OnStrandNow());
  Branch& b = branches_[index];
  b.status = status;
  std::optional<BranchAttempt> attempt;
  if (attempt_ && attempt_index_ == index) {
    attempt = std::exchange(attempt_, std::nullopt);
    ++b.attempts;
    b.last_try_time = attempt->time;
    b.last_error = attempt->error;
  }
  unsaved_.push_back({b.branch_id, b.op, status, std::move(attempt)});
  if (recorded_.size() <= index) {
    recorded_.resize(index + 1, 0);
    saved_.resize(index + 1, 0);
  }
  unsaved_marks_.emplace_back(index, ++recorded_[index]);
}

bool TransRuntime::durable(std::size_t index) const {
  return index >= recorded_.size() || recorded_[index] == saved_[index];
}

void TransRuntime::MarkSaved(const std::vector<SavedMark>& marks) {
  for (const auto& [index, count] : marks) {
    if (index < saved_.size() && saved_[index] < count) saved_[index] = count;
  }
}

void TransRuntime::FlushBranches(bool lazy) {
  if (unsaved_.empty()) return;
  std::vector<BranchUpdate> updates;
  updates.swap(unsaved_);
  std::vector<SavedMark> marks;
  marks.swap(unsaved_marks_);
  ++pending_writes_;
  BranchResults results;
  results.gid = trans_.gid;
  if (!deciding()) results.expected = trans_.status;
  results.updates = std::move(updates);
  results.fence = WriteFence();
  results.lazy = lazy;
  engine_.journal->UpdateBranches(
      std::move(results), OnStrand([this, marks](Status s) {
        --pending_writes_;
        if (s.ok()) {
          // Calls that waited for these results to be durable may start.
          MarkSaved(marks);
          Advance();
          return;
        }
        if (!Fenced(s)) {
          DTX_LOG(engine_.logger, LogLevel::kWarn,
                  "gid=" << trans_.gid << ": branch results not recorded (" << s
                         << "); those branches will be called again");
        }
        MaybeEvict();
      }));
}

void TransRuntime::NeedRetry(bool keep_interval) {
  DTX_DCHECK(OnStrandNow());
  if (keep_interval) return WakeAt(Now() + interval_);
  interval_ = engine_.options.retry.Backoff(interval_);
  WakeAt(Now() + interval_ + Jitter(interval_));
}

std::chrono::milliseconds TransRuntime::Jitter(
    std::chrono::seconds interval) const {
  const double fraction = engine_.options.retry.jitter;
  const auto span = static_cast<uint64_t>(
      fraction * static_cast<double>(interval.count()) * 1000.0);
  if (span == 0) return std::chrono::milliseconds(0);
  // The gid and the time: different for transactions that failed together,
  // the same on a replay of a simulation.
  uint64_t h = std::hash<std::string>{}(trans_.gid) ^
               static_cast<uint64_t>(Now().time_since_epoch().count());
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return std::chrono::milliseconds(static_cast<int64_t>(h % span));
}

void TransRuntime::WakeAt(TimePoint at) {
  if (!wake_at_ || at < *wake_at_) wake_at_ = at;
}

void TransRuntime::ResetInterval() { interval_ = engine_.BaseInterval(opts_); }

void TransRuntime::SpendRetry(std::size_t index) {
  DTX_DCHECK(OnStrandNow());
  // Retried at once, once the spent budget is durable, so that a restart
  // does not hand out a fresh one (dtm keeps it in memory).
  ++trans_.retry_count;
  CronUpdate u;
  u.gid = trans_.gid;
  u.expected = trans_.status;
  u.next_cron_interval = interval_;
  u.next_cron_time = trans_.next_cron_time;
  u.retry_count = trans_.retry_count;
  u.fence = WriteFence();
  ++pending_writes_;
  engine_.journal->TouchCron(
      u, OnStrand([this, index](Status s) {
        --pending_writes_;
        Fenced(s);
        if (s.ok() && !evicted() && progress_[index] == Progress::kBlocked) {
          progress_[index] = Progress::kIdle;
        }
        Advance();
      }));
}

void TransRuntime::Decide(TransStatus to, std::string reason,
                          std::function<void(Status)> on_durable) {
  Decide(to, std::move(reason), std::nullopt, std::move(on_durable));
}

void TransRuntime::Decide(TransStatus to, std::string reason,
                          std::optional<std::string> result,
                          std::function<void(Status)> on_durable) {
  DTX_DCHECK(OnStrandNow());
  DTX_DCHECK(!deciding() && !evicted());
  if (fenced_) {
    // Another coordinator claimed it: it decides.
    if (on_durable) on_durable(TakenOver());
    return;
  }
  if (deciding() || evicted() || IsFinished(trans_.status)) {
    // Nothing leaves a final status, and one decision at a time: a late
    // answer (a check-back after an Abort) must not move it.
    DTX_LOG(engine_.logger, LogLevel::kWarn,
            "gid=" << trans_.gid << " " << ToString(trans_.status) << " -> "
                   << ToString(to) << " refused: "
                   << (deciding() ? "a decision is being made"
                                  : "the transaction has ended"));
    if (on_durable) {
      on_durable(FailedPreconditionError("gid " + trans_.gid + " is " +
                                         std::string(ToString(trans_.status))));
    }
    return;
  }
  StatusChange change;
  change.gid = trans_.gid;
  change.from = trans_.status;
  change.to = to;
  if (!reason.empty()) change.rollback_reason = reason;
  change.result = result;
  // A result being taken (the call that spent the saga's retry limit, say)
  // is written with the decision it caused, atomically.
  if (attempt_) RecordBranch(attempt_index_, branches_[attempt_index_].status);
  change.branch_updates.swap(unsaved_);
  std::vector<SavedMark> marks;
  marks.swap(unsaved_marks_);
  processor_.OnDecide(*this, change);
  if (!IsFinished(to)) {
    ResetInterval();
    change.next_cron_interval = interval_;
    change.next_cron_time = Now() + interval_;
    // Calls still on the wire (a concurrent saga's other steps, a msg
    // check-back) keep the lease taken for them: a shorter next_cron_time
    // would let another coordinator claim the transaction while they run.
    if ((any_in_flight() || extra_calls_ > 0) &&
        trans_.next_cron_time > *change.next_cron_time) {
      change.next_cron_time = trans_.next_cron_time;
    }
  }
  const TransStatus from = trans_.status;
  const std::optional<TimePoint> next_cron = change.next_cron_time;
  change.fence = WriteFence();
  if (IsFinished(to) && !on_durable) {
    // A final status may be written lazily (docs/architecture.md): no call
    // depends on it. Callers waiting for the outcome learn it now; the
    // runtime stays in memory until the write is done. Were it lost in a
    // crash, recovery would reach the same end again.
    trans_.status = to;
    if (!reason.empty()) trans_.rollback_reason = reason;
    if (result) trans_.result = *result;
    engine_.CountDecision(to);
    DTX_LOG(engine_.logger, DecisionLevel(to),
            "gid=" << trans_.gid << " " << ToString(trans_.trans_type) << " "
                   << ToString(from) << " -> " << ToString(to)
                   << (reason.empty() ? "" : " reason: ")
                   << LoggableText(reason));
    ++pending_writes_;
    // The journal may hold it for the next write's commit (one transaction
    // at a time: the caller's next one, which this answer lets it send).
    change.lazy = true;
    engine_.journal->ChangeStatus(
        std::move(change), OnStrand([this, from, to, marks](Status s) {
          --pending_writes_;
          if (s.ok()) MarkSaved(marks);
          if (!s.ok() && !Fenced(s)) {
            DTX_LOG(engine_.logger, LogLevel::kError,
                    "gid=" << trans_.gid << " " << ToString(from) << " -> "
                           << ToString(to) << " not recorded: " << s);
          }
          MaybeEvict();
        }));
    ReleaseWaiters(false);
    return;
  }
  phase_ = Phase::kDeciding;
  ++pending_writes_;
  engine_.journal->ChangeStatus(
      std::move(change), OnStrand([this, from, to, reason, result, on_durable,
                                   next_cron, marks](Status s) {
        --pending_writes_;
        if (s.ok()) MarkSaved(marks);
        if (s.ok() && next_cron) {
          trans_.next_cron_time = *next_cron;
          trans_.next_cron_interval = interval_;
        }
        OnDecided(from, to, reason, result, on_durable, std::move(s));
      }));
}

void TransRuntime::OnDecided(TransStatus from, TransStatus to,
                             const std::string& reason,
                             const std::optional<std::string>& result,
                             const std::function<void(Status)>& on_durable,
                             Status s) {
  if (s.ok()) {
    phase_ = Phase::kActive;
    trans_.status = to;
    if (!reason.empty()) trans_.rollback_reason = reason;
    if (result) trans_.result = *result;
    engine_.CountDecision(to);
    DTX_LOG(engine_.logger, DecisionLevel(to),
            "gid=" << trans_.gid << " " << ToString(trans_.trans_type) << " "
                   << ToString(from) << " -> " << ToString(to)
                   << (reason.empty() ? "" : " reason: ")
                   << LoggableText(reason));
    if (on_durable) on_durable(s);
    Advance();
    RunSettled();
    return;
  }
  if (Fenced(s)) {
    phase_ = Phase::kActive;
    if (on_durable) on_durable(TakenOver());
    MaybeEvict();
    RunSettled();
    return;
  }
  DTX_LOG(engine_.logger, LogLevel::kWarn,
          "gid=" << trans_.gid << " " << ToString(from) << " -> "
                 << ToString(to) << " not recorded: " << s);
  // Read the journal's truth off the io threads, then go on here.
  auto self = shared_from_this();
  engine_.Read([self, to, reason, result, on_durable, s] {
    auto fresh = self->engine_.journal->Find(self->trans_.gid);
    self->Post([self, to, reason, result, on_durable, s,
                fresh = std::move(fresh)]() mutable {
      TransRuntime& rt = *self;
      rt.phase_ = Phase::kActive;
      if (fresh.ok() && fresh->trans.status == rt.trans_.status &&
          fresh->branches.size() != rt.branches_.size()) {
        // A branch was registered meanwhile: decide again, with it
        // (and with the owner and fence the journal holds, as the
        // failed write took nothing over).
        rt.trans_.owner = fresh->trans.owner;
        rt.trans_.fence = fresh->trans.fence;
        rt.branches_ = std::move(fresh->branches);
        rt.progress_.assign(rt.branches_.size(), Progress::kIdle);
        rt.recorded_.clear();  // the journal's statuses, durable
        rt.saved_.clear();
        rt.Decide(to, reason, result, on_durable);
        return;
      }
      // Someone else moved it, or the store failed: start from the
      // journal's truth the next time it is due.
      if (fresh.ok()) rt.trans_ = fresh->trans;
      rt.wake_at_ = rt.Now() + rt.engine_.BaseInterval(rt.opts_);
      rt.paused_ = true;
      if (on_durable) on_durable(s);
      rt.Advance();
      rt.RunSettled();
    });
  });
}

void TransRuntime::MaybeEvict() {
  DTX_DCHECK(OnStrandNow());
  if (evicted() || deciding() || pending_writes_ > 0 || extra_calls_ > 0) {
    return;
  }
  // Not this coordinator's to write: claimed by another since, or, on a
  // shared journal, owned by another that this one only answered a request
  // for. It leaves memory writing nothing more.
  const bool hands_off = this->hands_off();
  if (hands_off) {
    unsaved_.clear();
    unsaved_marks_.clear();
  }
  if (!unsaved_.empty()) {
    // Eviction continues once they are written, and a saga's next step
    // may be waiting for them (durable()).
    FlushBranches(/*lazy=*/false);
    return;
  }
  if (any_in_flight()) return;
  const bool finished = IsFinished(trans_.status);
  TimePoint next{};
  if (!finished && !hands_off) {
    const TimePoint now = Now();
    if (wake_at_) {
      next = *wake_at_;
    } else if (trans_.status == TransStatus::kPrepared &&
               Timeout().count() > 0) {
      next = trans_.create_time + Timeout();
    } else {
      next = now + interval_;
    }
    if (next < now) next = now;
    // Kept, so that the eviction that goes on once the schedule is written
    // (or has failed) finds it unchanged instead of writing a later one
    // again and again (a stored status that moved on failed every write).
    wake_at_ = next;
    // On a shared journal the owner lets go of it until it is due (so that
    // RetryNow through any coordinator may make it due at once): written
    // even when the schedule is unchanged.
    const bool release = engine_.journal->shared();
    if (!released_ && (release || next != trans_.next_cron_time ||
                       interval_ != trans_.next_cron_interval)) {
      CronUpdate u;
      u.gid = trans_.gid;
      u.expected = trans_.status;
      u.next_cron_interval = interval_;
      u.next_cron_time = next;
      u.retry_count = trans_.retry_count;
      u.fence = WriteFence();
      u.release = release;
      if (release) {
        trans_.owner.clear();
        released_ = true;
      }
      // Recorded even if the write fails, so that eviction goes on; the
      // journal then still holds the lease time, which is due soon enough.
      trans_.next_cron_time = next;
      trans_.next_cron_interval = interval_;
      ++pending_writes_;
      engine_.journal->TouchCron(u, OnStrand([this](Status s) {
                                   --pending_writes_;
                                   if (!s.ok() && !Fenced(s)) {
                                     DTX_LOG(engine_.logger, LogLevel::kWarn,
                                             "gid=" << trans_.gid
                                                    << ": schedule not "
                                                       "recorded: "
                                                    << s);
                                   }
                                   MaybeEvict();
                                 }));
      return;
    }
  }
  phase_ = Phase::kEvicted;
  if (engine_.metrics && !hands_off) {
    // dtm counts a pass as failed when it returned an error: here, when it
    // ends waiting for a retry after a failed call.
    const bool failed_call =
        std::any_of(progress_.begin(), progress_.end(),
                    [](Progress p) { return p == Progress::kBlocked; });
    engine_.metrics->TransPass(trans_.trans_type, !failed_call,
                               Now() - trans_.create_time);
  }
  DTX_LOG(engine_.logger, LogLevel::kDebug,
          "gid=" << trans_.gid << " " << ToString(trans_.status)
                 << (finished ? "" : ", waiting until next retry"));
  engine_.Forget(*this, finished, next, /*wake=*/!hands_off);
  ReleaseWaiters(false);
  RunSettled();  // they start again from the journal
  if (resume_after_eviction_ && !finished) engine_.Resume(trans_.gid);
}

}  // namespace dtx::internal
