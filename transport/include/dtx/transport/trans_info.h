// For branch services written in C++: dtm's metadata of an incoming call.
//
//   grpc::Status TransIn(grpc::ServerContext* ctx, const Req* req, Reply*) {
//     auto info = dtx::TransInfoFromServerContext(*ctx);
//     if (!info.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
//                                         info.status().message());
//     ...
//   }

#ifndef DTX_TRANSPORT_TRANS_INFO_H_
#define DTX_TRANSPORT_TRANS_INFO_H_

#include "dtx/model.h"
#include "dtx/result.h"
#include "dtx/transport/grpc_export.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace dtx {

// Reads dtm-gid, dtm-trans_type, dtm-branch_id, dtm-op (required, non-empty)
// and dtm-dtm (optional) from the client metadata, first value of each.
// kInvalidArgument naming the missing or unreadable key.
DTX_GRPC_EXPORT Result<TransInfo> TransInfoFromServerContext(
    const grpc::ServerContextBase& context);

}  // namespace dtx

#endif  // DTX_TRANSPORT_TRANS_INFO_H_
