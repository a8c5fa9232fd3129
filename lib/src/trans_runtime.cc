// What every mode shares: calling a branch, recording its result, making a
// decision durable, scheduling a retry, and ending a runtime's life.
//
// Durability (docs/architecture.md): a status change is a compare-and-set in
// the journal, and `deciding` holds every call back until it is durable.
// Branch results are written lazily: losing one means the branch is called
// again, which the barrier makes harmless. A runtime leaves memory only when
// no call and no write of its own is outstanding.

#include "coordinator_impl.h"

#include <asio/post.hpp>

#include <algorithm>

namespace dtx {

void Coordinator::Impl::Post(const std::shared_ptr<TransRuntime>& rt,
                             std::function<void()> fn) {
  asio::post(rt->strand, std::move(fn));
}

std::chrono::seconds Coordinator::Impl::BaseInterval(
    const TransOptions& opts) const {
  const auto global = options.retry.initial_interval;
  if (opts.retry_interval.count() > 0) return opts.retry_interval;
  if (opts.timeout_to_fail.count() > 0 && opts.timeout_to_fail < global) {
    return opts.timeout_to_fail;
  }
  return global;
}

std::chrono::seconds Coordinator::Impl::TimeoutOf(
    TransType type, const TransOptions& opts) const {
  if (opts.timeout_to_fail.count() > 0) return opts.timeout_to_fail;
  // dtm: sagas time out only with a per-transaction value.
  if (type == TransType::kSaga) return std::chrono::seconds(0);
  return options.timeout_to_fail;
}

bool Coordinator::Impl::TimedOut(const TransRuntime& rt) const {
  const auto timeout = TimeoutOf(rt);
  return timeout.count() > 0 && clock->Now() - rt.trans.create_time >= timeout;
}

void Coordinator::Impl::Advance(const std::shared_ptr<TransRuntime>& rt) {
  if (rt->evicted) return;
  // A pass that completes a branch at once (an empty URL) passes again, so
  // that a saga of empty steps ends in one go without a hop per step. After
  // kMaxInlinePasses the rest is posted, so that one transaction cannot hold
  // an io thread from the others for long.
  constexpr int kMaxInlinePasses = 16;
  rt->completed_inline = true;
  for (int pass = 0;
       rt->completed_inline && !rt->deciding && !IsFinished(rt->trans.status);
       ++pass) {
    if (pass == kMaxInlinePasses) {
      Post(rt, [this, rt] { Advance(rt); });
      return;
    }
    rt->completed_inline = false;
    switch (rt->trans.trans_type) {
      case TransType::kSaga:
        AdvanceSaga(rt);
        break;
      case TransType::kTcc:
        AdvanceTcc(rt);
        break;
      case TransType::kMsg:
        AdvanceMsg(rt);
        break;
      case TransType::kXa:
      case TransType::kWorkflow:
        DTX_LOG(logger, LogLevel::kError,
                "gid=" << rt->trans.gid << " trans type "
                       << ToString(rt->trans.trans_type)
                       << " is not supported by this version; left as it is");
        rt->wake_at = clock->Now() + options.retry.max_interval;
        break;
    }
  }
  MaybeEvict(rt);
}

void Coordinator::Impl::CallBranch(const std::shared_ptr<TransRuntime>& rt,
                                   std::size_t index) {
  Branch& b = rt->branches[index];
  if (b.url.empty()) {
    // dtm: an empty URL succeeds without a call. Advance passes again.
    BranchSucceeded(rt, index);
    rt->completed_inline = true;
    return;
  }
  rt->in_flight[index] = 1;
  // Results so far go to the journal while this call is on the wire.
  FlushBranches(rt);
  BranchRequest req;
  req.url = b.url;
  req.payload = b.bin_data;
  req.info.gid = rt->trans.gid;
  req.info.trans_type = rt->trans.trans_type;
  req.info.branch_id = b.branch_id;
  req.info.op = b.op;
  for (const auto& [k, v] : rt->opts.branch_headers)
    req.headers.emplace_back(k, v);
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      rt->opts.request_timeout.count() > 0 ? rt->opts.request_timeout
                                           : options.request_timeout);
  DTX_LOG(logger, LogLevel::kDebug,
          "gid=" << rt->trans.gid << " branch=" << b.branch_id
                 << " op=" << ToString(b.op) << " calling " << b.url);
  Strand strand = rt->strand;
  client->Call(
      std::move(req),
      [strand](std::function<void()> fn) { asio::post(strand, std::move(fn)); },
      [this, rt, index](BranchResult r) {
        OnBranchResult(rt, index, std::move(r));
      });
}

void Coordinator::Impl::OnBranchResult(const std::shared_ptr<TransRuntime>& rt,
                                       std::size_t index, BranchResult result) {
  rt->in_flight[index] = 0;
  if (rt->evicted || index >= rt->branches.size()) return;
  const Branch& b = rt->branches[index];
  const bool saga_action =
      rt->trans.trans_type == TransType::kSaga && b.op == BranchOp::kAction;
  if (result.outcome == BranchOutcome::kSuccess) {
    BranchSucceeded(rt, index);
  } else if (saga_action && result.outcome == BranchOutcome::kFailure) {
    DTX_LOG(
        logger, LogLevel::kInfo,
        "gid=" << rt->trans.gid << " branch=" << b.branch_id
               << " op=action returned FAILURE: " << result.status.message());
    rt->failure_reason =
        "url:" + b.url + " return failed: " + result.status.message();
    RecordBranch(rt, index, BranchStatus::kFailed);
  } else {
    DTX_LOG(logger, LogLevel::kWarn,
            "gid=" << rt->trans.gid << " branch=" << b.branch_id << " op="
                   << ToString(b.op) << " " << ToString(result.outcome) << ": "
                   << result.status << "; will retry");
    rt->blocked[index] = 1;
    NeedRetry(rt, result.outcome == BranchOutcome::kOngoing);
    if (saga_action && rt->opts.retry_limit > 0 &&
        rt->trans.status == TransStatus::kSubmitted) {
      if (rt->trans.retry_count < rt->opts.retry_limit) {
        // Retry at once, once the spent budget is durable, so that a restart
        // does not hand out a fresh one (dtm keeps it in memory).
        ++rt->trans.retry_count;
        CronUpdate u;
        u.gid = rt->trans.gid;
        u.expected = rt->trans.status;
        u.next_cron_interval = rt->interval;
        u.next_cron_time = rt->trans.next_cron_time;
        u.retry_count = rt->trans.retry_count;
        ++rt->pending_writes;
        journal->TouchCron(u, [this, rt, index](Status s) {
          Post(rt, [this, rt, index, s] {
            --rt->pending_writes;
            if (s.ok()) rt->blocked[index] = 0;
            Advance(rt);
          });
        });
      } else if (!rt->deciding) {
        Decide(rt, TransStatus::kAborting,
               "RetryCount is greater than RetryLimit, RetryLimit: " +
                   std::to_string(rt->opts.retry_limit));
        return;
      }
    }
  }
  Advance(rt);
}

void Coordinator::Impl::BranchSucceeded(const std::shared_ptr<TransRuntime>& rt,
                                        std::size_t index) {
  const Branch& b = rt->branches[index];
  DTX_LOG(logger, LogLevel::kDebug,
          "gid=" << rt->trans.gid << " branch=" << b.branch_id
                 << " op=" << ToString(b.op) << " succeeded");
  RecordBranch(rt, index, BranchStatus::kSucceed);
  // dtm: progress after a backed-off retry resets the interval.
  rt->interval = std::min(rt->interval, BaseInterval(*rt));
}

void Coordinator::Impl::RecordBranch(const std::shared_ptr<TransRuntime>& rt,
                                     std::size_t index, BranchStatus status) {
  Branch& b = rt->branches[index];
  b.status = status;
  rt->unsaved.push_back({b.branch_id, b.op, status});
}

void Coordinator::Impl::FlushBranches(const std::shared_ptr<TransRuntime>& rt) {
  if (rt->unsaved.empty()) return;
  std::vector<BranchUpdate> updates;
  updates.swap(rt->unsaved);
  ++rt->pending_writes;
  std::optional<TransStatus> expected;
  if (!rt->deciding) expected = rt->trans.status;
  journal->UpdateBranches(
      rt->trans.gid, expected, std::move(updates), [this, rt](Status s) {
        Post(rt, [this, rt, s] {
          --rt->pending_writes;
          if (!s.ok()) {
            DTX_LOG(logger, LogLevel::kWarn,
                    "gid=" << rt->trans.gid << ": branch results not recorded ("
                           << s << "); those branches will be called again");
          }
          MaybeEvict(rt);
        });
      });
}

void Coordinator::Impl::NeedRetry(const std::shared_ptr<TransRuntime>& rt,
                                  bool keep_interval) {
  if (!keep_interval) rt->interval = options.retry.Backoff(rt->interval);
  const TimePoint at = clock->Now() + rt->interval;
  if (!rt->wake_at || at < *rt->wake_at) rt->wake_at = at;
}

void Coordinator::Impl::Decide(const std::shared_ptr<TransRuntime>& rt,
                               TransStatus to, std::string reason,
                               std::function<void(Status)> on_durable) {
  StatusChange change;
  change.gid = rt->trans.gid;
  change.from = rt->trans.status;
  change.to = to;
  if (!reason.empty()) change.rollback_reason = reason;
  change.branch_updates.swap(rt->unsaved);
  if (rt->trans.trans_type == TransType::kTcc &&
      rt->trans.status == TransStatus::kPrepared) {
    // Branches may be registered, from any process, until the transaction
    // leaves prepared: leave it only with the list this runtime holds.
    change.expected_branch_rows = static_cast<int64_t>(rt->branches.size());
  }
  if (!IsFinished(to)) {
    rt->interval = BaseInterval(*rt);
    change.next_cron_interval = rt->interval;
    change.next_cron_time = clock->Now() + rt->interval;
  }
  const TransStatus from = rt->trans.status;
  if (IsFinished(to) && !on_durable) {
    // A final status may be written lazily (docs/architecture.md): no call
    // depends on it. Callers waiting for the outcome learn it now; the
    // runtime stays in memory until the write is done. Were it lost in a
    // crash, recovery would reach the same end again.
    rt->trans.status = to;
    if (!reason.empty()) rt->trans.rollback_reason = reason;
    DTX_LOG(logger, LogLevel::kInfo,
            "gid=" << rt->trans.gid << " " << ToString(rt->trans.trans_type)
                   << " " << ToString(from) << " -> " << ToString(to)
                   << (reason.empty() ? "" : " reason: ") << reason);
    ++rt->pending_writes;
    journal->ChangeStatus(change, [this, rt, from, to](Status s) {
      Post(rt, [this, rt, from, to, s] {
        --rt->pending_writes;
        if (!s.ok()) {
          DTX_LOG(logger, LogLevel::kError,
                  "gid=" << rt->trans.gid << " " << ToString(from) << " -> "
                         << ToString(to) << " not recorded: " << s);
        }
        MaybeEvict(rt);
      });
    });
    for (auto& w : rt->waiters) w(rt->trans, false);
    rt->waiters.clear();
    return;
  }
  rt->deciding = true;
  ++rt->pending_writes;
  journal->ChangeStatus(change, [this, rt, from, to, reason,
                                 on_durable](Status s) {
    Post(rt, [this, rt, from, to, reason, s, on_durable] {
      --rt->pending_writes;
      rt->deciding = false;
      if (s.ok()) {
        rt->trans.status = to;
        if (!reason.empty()) rt->trans.rollback_reason = reason;
        DTX_LOG(logger, LogLevel::kInfo,
                "gid=" << rt->trans.gid << " " << ToString(rt->trans.trans_type)
                       << " " << ToString(from) << " -> " << ToString(to)
                       << (reason.empty() ? "" : " reason: ") << reason);
      } else {
        DTX_LOG(logger, LogLevel::kWarn,
                "gid=" << rt->trans.gid << " " << ToString(from) << " -> "
                       << ToString(to) << " not recorded: " << s);
        auto fresh = journal->Find(rt->trans.gid);
        if (fresh.ok() && fresh->trans.status == from &&
            fresh->branches.size() != rt->branches.size()) {
          // A branch was registered meanwhile: decide again, with it.
          rt->branches = std::move(fresh->branches);
          rt->in_flight.assign(rt->branches.size(), 0);
          rt->blocked.assign(rt->branches.size(), 0);
          Decide(rt, to, reason, on_durable);
          return;
        }
        // Someone else moved it, or the store failed: start from the
        // journal's truth the next time it is due.
        if (fresh.ok()) {
          rt->trans = fresh->trans;
        }
        rt->wake_at = clock->Now() + BaseInterval(*rt);
        rt->blocked.assign(rt->branches.size(), 1);
        rt->checkback_blocked = true;
      }
      if (on_durable) on_durable(s);
      Advance(rt);
    });
  });
}

void Coordinator::Impl::MaybeEvict(const std::shared_ptr<TransRuntime>& rt) {
  if (rt->evicted || rt->deciding || rt->pending_writes > 0 ||
      rt->checkback_in_flight) {
    return;
  }
  if (!rt->unsaved.empty()) {
    FlushBranches(rt);  // eviction continues once they are written
    return;
  }
  if (std::any_of(rt->in_flight.begin(), rt->in_flight.end(),
                  [](char c) { return c != 0; })) {
    return;
  }
  const bool finished = IsFinished(rt->trans.status);
  TimePoint next{};
  if (!finished) {
    const TimePoint now = clock->Now();
    if (rt->wake_at) {
      next = *rt->wake_at;
    } else if (rt->trans.status == TransStatus::kPrepared &&
               TimeoutOf(*rt).count() > 0) {
      next = rt->trans.create_time + TimeoutOf(*rt);
    } else {
      next = now + rt->interval;
    }
    if (next < now) next = now;
    if (next != rt->trans.next_cron_time ||
        rt->interval != rt->trans.next_cron_interval) {
      CronUpdate u;
      u.gid = rt->trans.gid;
      u.expected = rt->trans.status;
      u.next_cron_interval = rt->interval;
      u.next_cron_time = next;
      u.retry_count = rt->trans.retry_count;
      // Recorded even if the write fails, so that eviction goes on; the
      // journal then still holds the lease time, which is due soon enough.
      rt->trans.next_cron_time = next;
      rt->trans.next_cron_interval = rt->interval;
      ++rt->pending_writes;
      journal->TouchCron(u, [this, rt](Status s) {
        Post(rt, [this, rt, s] {
          --rt->pending_writes;
          if (!s.ok()) {
            DTX_LOG(
                logger, LogLevel::kWarn,
                "gid=" << rt->trans.gid << ": schedule not recorded: " << s);
          }
          MaybeEvict(rt);
        });
      });
      return;
    }
  }
  rt->evicted = true;
  DTX_LOG(logger, LogLevel::kDebug,
          "gid=" << rt->trans.gid << " " << ToString(rt->trans.status)
                 << (finished ? "" : ", waiting until next retry"));
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = active.find(rt->trans.gid);
    if (it != active.end() && it->second == rt) active.erase(it);
    if (!finished) wakeups.emplace(next, rt->trans.gid);
    if (active.empty()) idle_cv.notify_all();
  }
  for (auto& w : rt->waiters) w(rt->trans, false);
  rt->waiters.clear();
  if (!finished) asio::post(sched, [this] { ArmPoll(); });
}

}  // namespace dtx
