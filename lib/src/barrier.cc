#include "dtx/barrier.h"

#include "dtx/limits.h"

namespace dtx {

Result<BranchBarrier> BranchBarrier::FromTransInfo(const TransInfo& info) {
  DTX_RETURN_IF_ERROR(ValidateGid(info.gid).WithPrefix("barrier"));
  DTX_RETURN_IF_ERROR(ValidateBranchId(info.branch_id).WithPrefix("barrier"));
  return BranchBarrier(info);
}

std::string BranchBarrier::NextBarrierId() {
  ++next_id_;
  // dtm's fmt.Sprintf("%02d", id). Appending to the padding, rather than
  // `"0" + std::to_string(id)` (an insert at the front), also keeps GCC 12 at
  // -O3 from a -Wrestrict false positive inside basic_string.
  std::string id(next_id_ < 10 ? 1 : 0, '0');
  id += std::to_string(next_id_);
  return id;
}

std::optional<BranchOp> BranchBarrier::OriginOp(BranchOp op) {
  switch (op) {
    case BranchOp::kCancel:
      return BranchOp::kTry;
    case BranchOp::kCompensate:
    case BranchOp::kRollback:
      return BranchOp::kAction;
    default:
      return std::nullopt;
  }
}

BranchBarrier::Decision BranchBarrier::Decide(BranchOp op, bool origin_inserted,
                                              bool current_inserted) {
  if (op == BranchOp::kMsg && !current_inserted) return Decision::kDuplicated;
  const bool compensating = OriginOp(op).has_value();
  // Null compensation: the forward op never ran (its row is ours now).
  if (compensating && origin_inserted) return Decision::kSkip;
  // Duplicate, or hanging (the compensation inserted our row first).
  if (!current_inserted) return Decision::kSkip;
  return Decision::kRun;
}

}  // namespace dtx
