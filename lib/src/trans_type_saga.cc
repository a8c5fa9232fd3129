// SAGA: forward actions in step order (or by the orders of a concurrent saga);
// the first action that answers FAILURE turns the saga to aborting, and the
// compensations run in reverse (reverse-dependency) order.
//
// Branch rows: step s has its compensate at index 2s and its action at 2s+1.
//
// Which steps are compensated (as dtm): every step whose action succeeded or
// failed, and every step whose action was startable, because such an action
// may have run even though no answer was recorded (a crash, a timeout). An
// action whose prerequisites never succeeded cannot have been called and is
// not compensated. The barrier makes compensating a never-run action a no-op.

#include "coordinator_impl.h"

#include <string>

namespace dtx {

void Coordinator::Impl::AdvanceSaga(const std::shared_ptr<TransRuntime>& rt) {
  auto& br = rt->branches;
  const std::size_t steps = br.size() / 2;
  auto action = [&](std::size_t s) -> Branch& { return br[2 * s + 1]; };
  auto startable = [&](std::size_t s) {
    if (rt->saga.concurrent) {
      for (int p : rt->saga.orders[s]) {
        if (action(static_cast<std::size_t>(p)).status !=
            BranchStatus::kSucceed)
          return false;
      }
      return true;
    }
    return s == 0 || action(s - 1).status == BranchStatus::kSucceed;
  };

  if (rt->trans.status == TransStatus::kSubmitted) {
    if (TimedOut(*rt)) {
      Decide(rt, TransStatus::kAborting,
             "Timeout after " + std::to_string(TimeoutOf(*rt).count()) +
                 " seconds");
      return;
    }
    bool all_succeeded = true;
    for (std::size_t s = 0; s < steps; ++s) {
      if (action(s).status == BranchStatus::kFailed) {
        Decide(rt, TransStatus::kAborting,
               rt->failure_reason.empty() ? "fail message lost"
                                          : rt->failure_reason);
        return;
      }
      all_succeeded =
          all_succeeded && action(s).status == BranchStatus::kSucceed;
    }
    if (all_succeeded) {
      Decide(rt, TransStatus::kSucceed, "");
      return;
    }
    for (std::size_t s = 0; s < steps; ++s) {
      const std::size_t a = 2 * s + 1;
      if (action(s).status == BranchStatus::kPrepared && !rt->in_flight[a] &&
          !rt->blocked[a] && startable(s)) {
        CallBranch(rt, a);
      }
    }
    return;
  }

  if (rt->trans.status != TransStatus::kAborting) return;
  std::vector<char> needs(steps);
  std::vector<char> done(steps);
  bool all_done = true;
  for (std::size_t s = 0; s < steps; ++s) {
    needs[s] = action(s).status != BranchStatus::kPrepared ||
               rt->in_flight[2 * s + 1] || startable(s);
    done[s] = !needs[s] || br[2 * s].status == BranchStatus::kSucceed;
    all_done = all_done && done[s];
  }
  if (all_done) {
    Decide(rt, TransStatus::kFailed, "");
    return;
  }
  // Last step first, so that a compensation that completes at once (an
  // empty URL) lets the one before it start in the same pass.
  for (std::size_t s = steps; s-- > 0;) {
    const std::size_t c = 2 * s;
    if (done[s] || rt->in_flight[c] || rt->blocked[c] || rt->in_flight[c + 1])
      continue;
    bool dependents_done = true;
    if (rt->saga.concurrent) {
      for (std::size_t d = 0; d < steps; ++d) {
        for (int p : rt->saga.orders[d]) {
          if (static_cast<std::size_t>(p) == s && !done[d])
            dependents_done = false;
        }
      }
    } else {
      dependents_done = s + 1 == steps || done[s + 1];
    }
    if (dependents_done) {
      CallBranch(rt, c);
      done[s] = br[c].status == BranchStatus::kSucceed;
    }
  }
}

}  // namespace dtx
