// Conversions between dtx's DtmApi types and dtm's wire messages
// (dtmgimp.proto) and dtx's admin messages, shared by DtmServer and
// GrpcDtmClient so that both ends agree by construction.

#ifndef DTX_TRANSPORT_DTM_PROTO_H_
#define DTX_TRANSPORT_DTM_PROTO_H_

#include "dtx/admin.pb.h"
#include "dtx/dtm_api.h"
#include "dtx/journal.h"
#include "dtx/result.h"

#include "dtm/dtmgimp.pb.h"

#include <grpcpp/support/status.h>

#include <string>
#include <vector>

namespace dtx::internal {

// dtm's Steps field: a JSON array of string maps. "" and "null" are no steps.
// kInvalidArgument for anything else that is not an array of objects whose
// values are strings.
Result<std::vector<TransStep>> DecodeSteps(const std::string& json);
// The JSON dtm's SDKs send: "null" for no steps (as tcc does), otherwise an
// array with "action" and, when set, "compensate".
std::string EncodeSteps(const std::vector<TransStep>& steps);

// kInvalidArgument for a request dtx cannot represent: an unknown trans type,
// negative option values, malformed Steps, Steps and BinPayloads of
// different lengths.
Result<TransRequest> FromProto(const dtmgimp::DtmRequest& request);
dtmgimp::DtmRequest ToProto(const TransRequest& request);

Result<BranchRegistration> FromProto(const dtmgimp::DtmBranchRequest& branch);
dtmgimp::DtmBranchRequest ToProto(const BranchRegistration& branch);
// PrepareWorkflow's answer: the workflow and its recorded steps.
void ToProto(const TransWithBranches& record, dtmgimp::DtmProgressesReply* out);
Result<TransWithBranches> FromProto(const dtmgimp::DtmProgressesReply& reply);

void ToProto(const GlobalTrans& trans, dtx::admin::v1::Transaction* out);
void ToProto(const Branch& branch, dtx::admin::v1::Branch* out);
Result<GlobalTrans> FromProto(const dtx::admin::v1::Transaction& trans);
Result<Branch> FromProto(const dtx::admin::v1::Branch& branch);
dtx::admin::v1::ListRequest ToProto(const ListQuery& query);
// kInvalidArgument for an unknown status or trans type, or a negative
// cursor. A limit over kMaxListLimit becomes kMaxListLimit.
Result<ListQuery> FromProto(const dtx::admin::v1::ListRequest& request);
void ToProto(const TransStats& stats, dtx::admin::v1::StatsReply* out);
TransStats FromProto(const dtx::admin::v1::StatsReply& reply);

// Status codes are gRPC's numbers, so the mapping keeps the code and the
// message: kAborted is dtm's FAILURE, kFailedPrecondition its ONGOING.
grpc::Status ToGrpcStatus(const Status& status);
Status FromGrpcStatus(const grpc::Status& status);

}  // namespace dtx::internal

#endif  // DTX_TRANSPORT_DTM_PROTO_H_
