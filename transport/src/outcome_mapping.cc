#include "outcome_mapping.h"

namespace dtx::internal {

BranchOutcome OutcomeFromGrpc(int grpc_code, std::string_view message) {
  switch (static_cast<StatusCode>(grpc_code)) {
    case StatusCode::kOk:
      return BranchOutcome::kSuccess;
    case StatusCode::kAborted:
      return message == "ONGOING" ? BranchOutcome::kOngoing
                                  : BranchOutcome::kFailure;
    case StatusCode::kFailedPrecondition:
      return BranchOutcome::kOngoing;
    default:
      return BranchOutcome::kTransient;
  }
}

}  // namespace dtx::internal
