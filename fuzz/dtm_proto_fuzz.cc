// dtm's gRPC messages as dtx-server receives them (dtmgimp.proto, from any
// dtm SDK) and dtx's admin messages: the bytes are parsed as the message a
// first byte picks, as gRPC's codec does, then converted to dtx's request
// (internal::FromProto), as DtmServer does before the coordinator sees it.
//   0 DtmRequest (Prepare, Submit, Abort)   1 DtmBranchRequest
//   2 admin ListRequest (the server's List) 3 admin Transaction, 4 Branch
//     (what an admin client reads back)
// Properties: a DtmRequest or DtmBranchRequest that converts survives the
// way back (ToProto, as GrpcDtmClient sends it) unchanged.

#include "dtm_proto.h"
#include "fuzz_check.h"

#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

bool SameSteps(const std::vector<dtx::TransStep>& a,
               const std::vector<dtx::TransStep>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].action != b[i].action || a[i].compensate != b[i].compensate) {
      return false;
    }
  }
  return true;
}

void CheckRequestRoundTrip(const dtx::TransRequest& r) {
  auto back = dtx::internal::FromProto(dtx::internal::ToProto(r));
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(back->gid == r.gid);
  FUZZ_CHECK(back->trans_type == r.trans_type);
  FUZZ_CHECK(back->options.wait_result == r.options.wait_result);
  FUZZ_CHECK(back->options.timeout_to_fail == r.options.timeout_to_fail);
  FUZZ_CHECK(back->options.retry_interval == r.options.retry_interval);
  FUZZ_CHECK(back->options.request_timeout == r.options.request_timeout);
  FUZZ_CHECK(back->options.retry_limit == r.options.retry_limit);
  FUZZ_CHECK(back->options.branch_headers == r.options.branch_headers);
  FUZZ_CHECK(back->options.concurrent == r.options.concurrent);
  FUZZ_CHECK(SameSteps(back->steps, r.steps));
  FUZZ_CHECK(back->payloads == r.payloads);
  FUZZ_CHECK(back->query_prepared == r.query_prepared);
  FUZZ_CHECK(back->rollback_reason == r.rollback_reason);
}

}  // namespace

// Protobuf logs every string field that is not UTF-8 (and refuses the
// message); millions of such lines would drown libFuzzer's report.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int kind = data[0] % 5;
  const void* bytes = data + 1;
  const int n = static_cast<int>(size - 1);
  switch (kind) {
    case 0: {
      dtmgimp::DtmRequest request;
      if (!request.ParseFromArray(bytes, n)) return 0;
      auto converted = dtx::internal::FromProto(request);
      if (converted.ok()) CheckRequestRoundTrip(*converted);
      break;
    }
    case 1: {
      dtmgimp::DtmBranchRequest branch;
      if (!branch.ParseFromArray(bytes, n)) return 0;
      auto converted = dtx::internal::FromProto(branch);
      if (!converted.ok()) return 0;
      auto back = dtx::internal::FromProto(dtx::internal::ToProto(*converted));
      FUZZ_CHECK(back.ok());
      FUZZ_CHECK(back->gid == converted->gid);
      FUZZ_CHECK(back->trans_type == converted->trans_type);
      FUZZ_CHECK(back->branch_id == converted->branch_id);
      FUZZ_CHECK(back->confirm_url == converted->confirm_url);
      FUZZ_CHECK(back->cancel_url == converted->cancel_url);
      FUZZ_CHECK(back->payload == converted->payload);
      break;
    }
    case 2: {
      dtx::admin::v1::ListRequest list;
      if (!list.ParseFromArray(bytes, n)) return 0;
      auto converted = dtx::internal::FromProto(list);
      if (converted.ok()) {
        FUZZ_CHECK(converted->cursor >= 0);
        FUZZ_CHECK(converted->limit <= dtx::kMaxListLimit);
      }
      break;
    }
    case 3: {
      dtx::admin::v1::Transaction trans;
      if (!trans.ParseFromArray(bytes, n)) return 0;
      auto converted = dtx::internal::FromProto(trans);
      if (converted.ok()) {
        dtx::admin::v1::Transaction back;
        dtx::internal::ToProto(*converted, &back);
      }
      break;
    }
    default: {
      dtx::admin::v1::Branch branch;
      if (!branch.ParseFromArray(bytes, n)) return 0;
      auto converted = dtx::internal::FromProto(branch);
      if (converted.ok()) {
        dtx::admin::v1::Branch back;
        dtx::internal::ToProto(*converted, &back);
      }
      break;
    }
  }
  return 0;
}
