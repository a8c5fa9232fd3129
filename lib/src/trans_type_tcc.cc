// TCC: the client registers each branch (its confirm and cancel) while the
// transaction is prepared and calls the try itself. Submit confirms, Abort or
// a timeout cancels; both walk the branches from the last registered to the
// first, one at a time, stopping at the first that does not succeed (it is
// retried later). FAILURE from a confirm or cancel is retried, never final.

#include "coordinator_impl.h"

#include <string>

namespace dtx {

void Coordinator::Impl::AdvanceTcc(const std::shared_ptr<TransRuntime>& rt) {
  if (rt->trans.status == TransStatus::kPrepared) {
    if (TimedOut(*rt)) {
      Decide(rt, TransStatus::kAborting,
             "Timeout after " + std::to_string(TimeoutOf(*rt).count()) +
                 " seconds");
    }
    return;
  }
  const bool confirming = rt->trans.status == TransStatus::kSubmitted;
  const BranchOp op = confirming ? BranchOp::kConfirm : BranchOp::kCancel;
  for (char f : rt->in_flight) {
    if (f) return;
  }
  for (std::size_t i = rt->branches.size(); i-- > 0;) {
    const Branch& b = rt->branches[i];
    if (b.op != op || b.status != BranchStatus::kPrepared) continue;
    if (!rt->blocked[i]) CallBranch(rt, i);
    return;
  }
  Decide(rt, confirming ? TransStatus::kSucceed : TransStatus::kFailed, "");
}

}  // namespace dtx
