// The one mapping from a gRPC answer to dtm's outcome classes.

#ifndef DTX_TRANSPORT_OUTCOME_MAPPING_H_
#define DTX_TRANSPORT_OUTCOME_MAPPING_H_

#include "dtx/branch_client.h"

#include <string_view>

namespace dtx::internal {

// OK -> kSuccess; ABORTED -> kFailure, except the exact message "ONGOING"
// (services older than dtm v1.10) -> kOngoing; FAILED_PRECONDITION ->
// kOngoing; every other code -> kTransient.
BranchOutcome OutcomeFromGrpc(int grpc_code, std::string_view message);

}  // namespace dtx::internal

#endif  // DTX_TRANSPORT_OUTCOME_MAPPING_H_
