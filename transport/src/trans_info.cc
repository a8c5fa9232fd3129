#include "dtx/transport/trans_info.h"

#include <grpcpp/server_context.h>

#include <string>

namespace dtx {
namespace {

Result<std::string> Read(const grpc::ServerContextBase& context,
                         const char* key, bool required) {
  const auto& md = context.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) {
    if (!required) return std::string();
    return InvalidArgumentError(
        std::string("branch call: missing gRPC metadata ") + key);
  }
  std::string value(it->second.data(), it->second.size());
  if (required && value.empty()) {
    return InvalidArgumentError(std::string("branch call: gRPC metadata ") +
                                key + " is empty");
  }
  return value;
}

}  // namespace

Result<TransInfo> TransInfoFromServerContext(
    const grpc::ServerContextBase& context) {
  TransInfo info;
  DTX_ASSIGN_OR_RETURN(info.gid, Read(context, "dtm-gid", true));
  DTX_ASSIGN_OR_RETURN(std::string type, Read(context, "dtm-trans_type", true));
  DTX_ASSIGN_OR_RETURN(info.branch_id, Read(context, "dtm-branch_id", true));
  DTX_ASSIGN_OR_RETURN(std::string op, Read(context, "dtm-op", true));
  DTX_ASSIGN_OR_RETURN(info.dtm, Read(context, "dtm-dtm", false));
  auto parsed_type = ParseTransType(type);
  if (!parsed_type.ok()) {
    return parsed_type.status().WithPrefix("branch call: dtm-trans_type");
  }
  info.trans_type = *parsed_type;
  auto parsed_op = ParseBranchOp(op);
  if (!parsed_op.ok())
    return parsed_op.status().WithPrefix("branch call: dtm-op");
  info.op = *parsed_op;
  return info;
}

}  // namespace dtx
