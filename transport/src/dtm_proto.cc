#include "dtm_proto.h"

#include "dtx/clock.h"
#include "dtx/limits.h"
#include "dtx/logger.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

namespace dtx::internal {
namespace {

using nlohmann::json;

int64_t ToMillis(TimePoint t) {
  if (t == TimePoint{}) return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             t.time_since_epoch())
      .count();
}

int64_t ToMillis(const std::optional<TimePoint>& t) {
  return t ? ToMillis(*t) : 0;
}

// Clamped (FromUnixMillis): a List's created_from_ms comes from any client.
TimePoint FromMillis(int64_t ms) { return FromUnixMillis(ms); }

std::optional<TimePoint> OptionalFromMillis(int64_t ms) {
  if (ms == 0) return std::nullopt;
  return FromMillis(ms);
}

Status CheckSeconds(const char* field, int64_t value) {
  // Negative values have no meaning; values past a year are typos, and the
  // scheduler's arithmetic must not overflow.
  constexpr int64_t kMax = 366LL * 24 * 3600;
  if (value < 0 || value > kMax) {
    return InvalidArgumentError(std::string("TransOptions.") + field + " " +
                                std::to_string(value) +
                                " is outside 0..31622400 seconds");
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<TransStep>> DecodeSteps(const std::string& text) {
  std::vector<TransStep> steps;
  if (text.empty() || text == "null") return steps;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return InvalidArgumentError("Steps is not valid JSON: " +
                                text.substr(0, 200));
  }
  if (j.is_null()) return steps;
  if (!j.is_array()) {
    return InvalidArgumentError("Steps must be a JSON array of objects");
  }
  steps.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    const json& step = j[i];
    if (!step.is_object()) {
      return InvalidArgumentError("Steps[" + std::to_string(i) +
                                  "] is not a JSON object");
    }
    TransStep out;
    for (const auto& [key, value] : step.items()) {
      if (!value.is_string()) {
        return InvalidArgumentError("Steps[" + std::to_string(i) + "]." + key +
                                    " must be a string");
      }
      if (key == "action") {
        out.action = value.get<std::string>();
      } else if (key == "compensate") {
        out.compensate = value.get<std::string>();
      }
      // Other keys (dtm's SDKs send none over gRPC) are ignored, as dtm
      // ignores what its processors do not read.
    }
    steps.push_back(std::move(out));
  }
  return steps;
}

std::string EncodeSteps(const std::vector<TransStep>& steps) {
  if (steps.empty()) return "null";
  json j = json::array();
  for (const TransStep& step : steps) {
    json s = {{"action", step.action}};
    if (!step.compensate.empty()) s["compensate"] = step.compensate;
    j.push_back(std::move(s));
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<TransRequest> FromProto(const dtmgimp::DtmRequest& request) {
  TransRequest out;
  out.gid = request.gid();
  if (out.gid.empty()) return InvalidArgumentError("Gid is missing");
  auto type = ParseTransType(request.transtype());
  if (!type.ok()) {
    return InvalidArgumentError("unknown TransType '" + request.transtype() +
                                "'");
  }
  out.trans_type = *type;
  const dtmgimp::DtmTransOptions& o = request.transoptions();
  DTX_RETURN_IF_ERROR(CheckSeconds("TimeoutToFail", o.timeouttofail()));
  DTX_RETURN_IF_ERROR(CheckSeconds("RetryInterval", o.retryinterval()));
  DTX_RETURN_IF_ERROR(CheckSeconds("RequestTimeout", o.requesttimeout()));
  if (o.retrylimit() < 0) {
    return InvalidArgumentError("TransOptions.RetryLimit must not be negative");
  }
  out.options.wait_result = o.waitresult();
  out.options.timeout_to_fail = std::chrono::seconds(o.timeouttofail());
  out.options.retry_interval = std::chrono::seconds(o.retryinterval());
  out.options.request_timeout = std::chrono::seconds(o.requesttimeout());
  out.options.retry_limit = o.retrylimit();
  out.options.branch_headers.insert(o.branchheaders().begin(),
                                    o.branchheaders().end());
  out.custom_data = request.customeddata();
  if (out.trans_type == TransType::kMsg && !out.custom_data.empty()) {
    // dtm's gRPC message has no field for a concurrent msg; dtx's client
    // sends it in CustomedData next to dtm's "delay" (dtm ignores the key).
    json j = json::parse(out.custom_data, nullptr, false);
    if (j.is_object()) {
      auto c = j.find("concurrent");
      if (c != j.end() && c->is_boolean()) {
        out.options.concurrent = c->get<bool>();
      }
    }
  }
  DTX_ASSIGN_OR_RETURN(out.steps, DecodeSteps(request.steps()));
  out.payloads.assign(request.binpayloads().begin(),
                      request.binpayloads().end());
  if (!out.steps.empty() || !out.payloads.empty()) {
    if (out.steps.size() != out.payloads.size()) {
      return InvalidArgumentError(
          "Steps has " + std::to_string(out.steps.size()) +
          " entries but BinPayloads has " +
          std::to_string(out.payloads.size()) + "; they must be index-aligned");
    }
  }
  out.query_prepared = request.queryprepared();
  out.rollback_reason = request.rollbackreason();
  // Workflow Submit: how it ended (the coordinator checks the keys).
  out.req_extra.insert(request.reqextra().begin(), request.reqextra().end());
  return out;
}

dtmgimp::DtmRequest ToProto(const TransRequest& request) {
  dtmgimp::DtmRequest out;
  out.set_gid(request.gid);
  out.set_transtype(std::string(ToString(request.trans_type)));
  dtmgimp::DtmTransOptions* o = out.mutable_transoptions();
  o->set_waitresult(request.options.wait_result);
  o->set_timeouttofail(request.options.timeout_to_fail.count());
  o->set_retryinterval(request.options.retry_interval.count());
  o->set_requesttimeout(request.options.request_timeout.count());
  o->set_retrylimit(request.options.retry_limit);
  for (const auto& [k, v] : request.options.branch_headers) {
    (*o->mutable_branchheaders())[k] = v;
  }
  std::string custom = request.custom_data;
  if (request.trans_type == TransType::kMsg && request.options.concurrent) {
    json j =
        custom.empty() ? json::object() : json::parse(custom, nullptr, false);
    if (!j.is_object()) j = json::object();
    j["concurrent"] = true;
    custom = j.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  out.set_customeddata(custom);
  for (const std::string& p : request.payloads) out.add_binpayloads(p);
  out.set_queryprepared(request.query_prepared);
  out.set_steps(EncodeSteps(request.steps));
  out.set_rollbackreason(request.rollback_reason);
  for (const auto& [k, v] : request.req_extra) (*out.mutable_reqextra())[k] = v;
  return out;
}

Result<BranchRegistration> FromProto(const dtmgimp::DtmBranchRequest& branch) {
  BranchRegistration out;
  out.gid = branch.gid();
  if (out.gid.empty()) return InvalidArgumentError("Gid is missing");
  auto type = ParseTransType(branch.transtype());
  if (!type.ok()) {
    return InvalidArgumentError("unknown TransType '" + branch.transtype() +
                                "'");
  }
  out.trans_type = *type;
  out.branch_id = branch.branchid();
  const auto& data = branch.data();
  out.payload = branch.busipayload();
  if (out.trans_type == TransType::kWorkflow) {
    // A recorded step: Data {"op", "status"} as dtm's SDKs send it
    // ("sync" is dtm's write-behind switch, which dtx does not have: every
    // record is durable before it is answered); "url" is dtx's.
    auto field = [&data](const char* key) {
      auto it = data.find(key);
      return it == data.end() ? std::string() : it->second;
    };
    auto op = ParseBranchOp(field("op"));
    if (!op.ok()) {
      return InvalidArgumentError("workflow step: Data.op '" +
                                  LoggableText(field("op")) +
                                  "' is not action, commit or rollback");
    }
    auto status = ParseBranchStatus(field("status"));
    if (!status.ok()) {
      return InvalidArgumentError("workflow step: Data.status '" +
                                  LoggableText(field("status")) +
                                  "' is not succeed or failed");
    }
    out.op = *op;
    out.status = *status;
    out.url = field("url");
    return out;
  }
  if (auto it = data.find("confirm"); it != data.end()) {
    out.confirm_url = it->second;
  }
  if (auto it = data.find("cancel"); it != data.end()) {
    out.cancel_url = it->second;
  }
  out.payload = branch.busipayload();
  return out;
}

dtmgimp::DtmBranchRequest ToProto(const BranchRegistration& branch) {
  dtmgimp::DtmBranchRequest out;
  out.set_gid(branch.gid);
  out.set_transtype(std::string(ToString(branch.trans_type)));
  out.set_branchid(branch.branch_id);
  if (branch.trans_type == TransType::kWorkflow) {
    (*out.mutable_data())["op"] = std::string(ToString(branch.op));
    (*out.mutable_data())["status"] = std::string(ToString(branch.status));
    if (!branch.url.empty()) (*out.mutable_data())["url"] = branch.url;
  } else {
    (*out.mutable_data())["confirm"] = branch.confirm_url;
    (*out.mutable_data())["cancel"] = branch.cancel_url;
  }
  out.set_busipayload(branch.payload);
  return out;
}

void ToProto(const TransWithBranches& record,
             dtmgimp::DtmProgressesReply* out) {
  dtmgimp::DtmTransaction* t = out->mutable_transaction();
  t->set_gid(record.trans.gid);
  t->set_status(std::string(ToString(record.trans.status)));
  t->set_rollbackreason(record.trans.rollback_reason);
  t->set_result(record.trans.result);
  for (const Branch& b : record.branches) {
    dtmgimp::DtmProgress* p = out->add_progresses();
    p->set_status(std::string(ToString(b.status)));
    p->set_bindata(b.bin_data);
    p->set_branchid(b.branch_id);
    p->set_op(std::string(ToString(b.op)));
  }
}

Result<TransWithBranches> FromProto(const dtmgimp::DtmProgressesReply& reply) {
  TransWithBranches out;
  out.trans.gid = reply.transaction().gid();
  out.trans.trans_type = TransType::kWorkflow;
  DTX_ASSIGN_OR_RETURN(out.trans.status,
                       ParseTransStatus(reply.transaction().status()));
  out.trans.rollback_reason = reply.transaction().rollbackreason();
  out.trans.result = reply.transaction().result();
  for (const dtmgimp::DtmProgress& p : reply.progresses()) {
    Branch b;
    b.gid = out.trans.gid;
    b.branch_id = p.branchid();
    DTX_ASSIGN_OR_RETURN(b.op, ParseBranchOp(p.op()));
    DTX_ASSIGN_OR_RETURN(b.status, ParseBranchStatus(p.status()));
    b.bin_data = p.bindata();
    out.branches.push_back(std::move(b));
  }
  return out;
}

void ToProto(const GlobalTrans& t, dtx::admin::v1::Transaction* out) {
  out->set_id(t.id);
  out->set_gid(t.gid);
  out->set_trans_type(std::string(ToString(t.trans_type)));
  out->set_status(std::string(ToString(t.status)));
  out->set_protocol(t.protocol);
  out->set_query_prepared(t.query_prepared);
  out->set_options(t.options);
  out->set_custom_data(t.custom_data);
  out->set_ext_data(t.ext_data);
  out->set_result(t.result);
  out->set_rollback_reason(t.rollback_reason);
  out->set_create_time_ms(ToMillis(t.create_time));
  out->set_update_time_ms(ToMillis(t.update_time));
  out->set_finish_time_ms(ToMillis(t.finish_time));
  out->set_rollback_time_ms(ToMillis(t.rollback_time));
  out->set_next_cron_interval_s(t.next_cron_interval.count());
  out->set_next_cron_time_ms(ToMillis(t.next_cron_time));
  out->set_owner(t.owner);
  out->set_retry_count(t.retry_count);
}

void ToProto(const Branch& b, dtx::admin::v1::Branch* out) {
  out->set_id(b.id);
  out->set_gid(b.gid);
  out->set_url(b.url);
  out->set_bin_data(b.bin_data);
  out->set_branch_id(b.branch_id);
  out->set_op(std::string(ToString(b.op)));
  out->set_status(std::string(ToString(b.status)));
  out->set_create_time_ms(ToMillis(b.create_time));
  out->set_update_time_ms(ToMillis(b.update_time));
  out->set_finish_time_ms(ToMillis(b.finish_time));
  out->set_rollback_time_ms(ToMillis(b.rollback_time));
  out->set_attempts(b.attempts);
  out->set_last_try_time_ms(ToMillis(b.last_try_time));
  out->set_last_error(b.last_error);
}

Result<GlobalTrans> FromProto(const dtx::admin::v1::Transaction& t) {
  GlobalTrans out;
  out.id = t.id();
  out.gid = t.gid();
  DTX_ASSIGN_OR_RETURN(out.trans_type, ParseTransType(t.trans_type()));
  DTX_ASSIGN_OR_RETURN(out.status, ParseTransStatus(t.status()));
  out.protocol = t.protocol();
  out.query_prepared = t.query_prepared();
  out.options = t.options();
  out.custom_data = t.custom_data();
  out.ext_data = t.ext_data();
  out.result = t.result();
  out.rollback_reason = t.rollback_reason();
  out.create_time = FromMillis(t.create_time_ms());
  out.update_time = FromMillis(t.update_time_ms());
  out.finish_time = OptionalFromMillis(t.finish_time_ms());
  out.rollback_time = OptionalFromMillis(t.rollback_time_ms());
  out.next_cron_interval = std::chrono::seconds(t.next_cron_interval_s());
  out.next_cron_time = FromMillis(t.next_cron_time_ms());
  out.owner = t.owner();
  out.retry_count = t.retry_count();
  return out;
}

Result<Branch> FromProto(const dtx::admin::v1::Branch& b) {
  Branch out;
  out.id = b.id();
  out.gid = b.gid();
  out.url = b.url();
  out.bin_data = b.bin_data();
  out.branch_id = b.branch_id();
  DTX_ASSIGN_OR_RETURN(out.op, ParseBranchOp(b.op()));
  DTX_ASSIGN_OR_RETURN(out.status, ParseBranchStatus(b.status()));
  out.create_time = FromMillis(b.create_time_ms());
  out.update_time = FromMillis(b.update_time_ms());
  out.finish_time = OptionalFromMillis(b.finish_time_ms());
  out.rollback_time = OptionalFromMillis(b.rollback_time_ms());
  out.attempts = b.attempts();
  out.last_try_time = OptionalFromMillis(b.last_try_time_ms());
  out.last_error = b.last_error();
  return out;
}

dtx::admin::v1::ListRequest ToProto(const ListQuery& query) {
  dtx::admin::v1::ListRequest out;
  if (query.status) out.set_status(std::string(ToString(*query.status)));
  if (query.trans_type) {
    out.set_trans_type(std::string(ToString(*query.trans_type)));
  }
  out.set_created_from_ms(ToMillis(query.created_from));
  out.set_created_to_ms(ToMillis(query.created_to));
  out.set_cursor(query.cursor);
  out.set_limit(static_cast<uint32_t>(std::min(query.limit, kMaxListLimit)));
  out.set_gid_prefix(query.gid_prefix);
  out.set_unfinished_only(query.unfinished_only);
  return out;
}

Result<ListQuery> FromProto(const dtx::admin::v1::ListRequest& request) {
  ListQuery out;
  if (!request.status().empty()) {
    DTX_ASSIGN_OR_RETURN(out.status, ParseTransStatus(request.status()));
  }
  if (!request.trans_type().empty()) {
    DTX_ASSIGN_OR_RETURN(out.trans_type, ParseTransType(request.trans_type()));
  }
  DTX_RETURN_IF_ERROR(
      ValidateUnixMillis("List: created_from_ms", request.created_from_ms()));
  DTX_RETURN_IF_ERROR(
      ValidateUnixMillis("List: created_to_ms", request.created_to_ms()));
  out.created_from = OptionalFromMillis(request.created_from_ms());
  out.created_to = OptionalFromMillis(request.created_to_ms());
  out.cursor = request.cursor();
  if (out.cursor < 0) {
    return InvalidArgumentError("List: cursor must not be negative");
  }
  // A page is read into memory and sent as one message: a client asking for
  // more gets kMaxListLimit and pages on with the cursor.
  if (request.limit() != 0) {
    out.limit = std::min<std::size_t>(request.limit(), kMaxListLimit);
  }
  out.gid_prefix = request.gid_prefix();
  out.unfinished_only = request.unfinished_only();
  return out;
}

void ToProto(const TransStats& stats, dtx::admin::v1::StatsReply* out) {
  out->set_prepared(stats.counts[TransStatus::kPrepared]);
  out->set_submitted(stats.counts[TransStatus::kSubmitted]);
  out->set_aborting(stats.counts[TransStatus::kAborting]);
  out->set_succeed(stats.counts[TransStatus::kSucceed]);
  out->set_failed(stats.counts[TransStatus::kFailed]);
  out->set_unfinished(stats.unfinished.unfinished);
  out->set_due(stats.unfinished.due);
  out->set_oldest_unfinished_create_time_ms(
      ToMillis(stats.unfinished.oldest_create_time));
}

TransStats FromProto(const dtx::admin::v1::StatsReply& reply) {
  TransStats out;
  out.counts[TransStatus::kPrepared] = reply.prepared();
  out.counts[TransStatus::kSubmitted] = reply.submitted();
  out.counts[TransStatus::kAborting] = reply.aborting();
  out.counts[TransStatus::kSucceed] = reply.succeed();
  out.counts[TransStatus::kFailed] = reply.failed();
  out.unfinished.unfinished = reply.unfinished();
  out.unfinished.due = reply.due();
  out.unfinished.oldest_create_time =
      OptionalFromMillis(reply.oldest_unfinished_create_time_ms());
  return out;
}

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // gRPC carries the message in a header; a client's header limit (8-16 KiB)
  // would turn an ABORTED with a long reason into a different error.
  constexpr std::size_t kMaxMessage = 1024;
  std::string message = status.message();
  if (message.size() > kMaxMessage) {
    message.resize(kMaxMessage);
    message += "... (truncated)";
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
}

Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return Status::Ok();
  int code = static_cast<int>(status.error_code());
  if (code < 0 || code > static_cast<int>(StatusCode::kUnauthenticated)) {
    code = static_cast<int>(StatusCode::kUnknown);
  }
  return Status(static_cast<StatusCode>(code), status.error_message());
}

}  // namespace dtx::internal
