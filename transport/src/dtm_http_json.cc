#include "dtx/transport/dtm_http_json.h"

#include "dtx/internal/base64.h"
#include "dtx/limits.h"
#include "dtx/logger.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>

namespace dtx {
namespace {

using nlohmann::json;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// "a string", "an object", ... for messages.
std::string TypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a fractional number";
    default:
      return "null";
  }
}

Status WrongType(const std::string& key, const char* want, const json& got) {
  return InvalidArgumentError(key + " must be " + want + ", not " +
                              TypeName(got));
}

// The body as a JSON object; `what` names the request in messages.
Result<json> ParseObject(std::string_view what, std::string_view body) {
  DTX_RETURN_IF_ERROR(ValidateJsonDepth(what, body));
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return InvalidArgumentError(std::string(what) +
                                ": the body is not valid JSON");
  }
  if (!j.is_object()) {
    return InvalidArgumentError(std::string(what) +
                                ": the body must be a JSON object, not " +
                                TypeName(j));
  }
  return j;
}

// The members of a decoded object, read by name. A null member counts as
// absent, as Go's encoding/json leaves such a field alone.
class Fields {
 public:
  explicit Fields(const json& object) : object_(object) {}

  const json* Find(const char* key) const {
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  Status String(const char* key, std::string* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return WrongType(key, "a string", *v);
    *out = v->get<std::string>();
    return Status::Ok();
  }

  Status Bool(const char* key, bool* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) return WrongType(key, "a boolean", *v);
    *out = v->get<bool>();
    return Status::Ok();
  }

  Status Int(const char* key, int64_t* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (v->is_number_unsigned()) {
      const auto u = v->get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) {
        return InvalidArgumentError(std::string(key) +
                                    " is too large for a 64-bit integer");
      }
      *out = static_cast<int64_t>(u);
      return Status::Ok();
    }
    if (!v->is_number_integer()) return WrongType(key, "an integer", *v);
    *out = v->get<int64_t>();
    return Status::Ok();
  }

  // Whole seconds, 0..366 days (as the gRPC API checks them).
  Status Seconds(const char* key, std::chrono::seconds* out) const {
    int64_t s = 0;
    DTX_RETURN_IF_ERROR(Int(key, &s));
    constexpr int64_t kMax = 366LL * 24 * 3600;
    if (s < 0 || s > kMax) {
      return InvalidArgumentError(std::string(key) + " " + std::to_string(s) +
                                  " is outside 0..31622400 seconds");
    }
    *out = std::chrono::seconds(s);
    return Status::Ok();
  }

  Status StringMap(const char* key,
                   std::map<std::string, std::string>* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_object()) return WrongType(key, "an object of strings", *v);
    for (const auto& [k, value] : v->items()) {
      if (value.is_null()) {
        (*out)[k] = "";
      } else if (!value.is_string()) {
        return WrongType(std::string(key) + "." + k, "a string", value);
      } else {
        (*out)[k] = value.get<std::string>();
      }
    }
    return Status::Ok();
  }

 private:
  const json& object_;
};

Result<TransType> TypeOf(const Fields& f) {
  std::string type;
  DTX_RETURN_IF_ERROR(f.String("trans_type", &type));
  if (type.empty()) return InvalidArgumentError("trans_type is missing");
  auto parsed = ParseTransType(type);
  if (!parsed.ok()) {
    return InvalidArgumentError("unknown trans_type '" + type +
                                "' (want saga, tcc, msg, xa or workflow)");
  }
  return *parsed;
}

Result<std::string> GidOf(const Fields& f) {
  std::string gid;
  DTX_RETURN_IF_ERROR(f.String("gid", &gid));
  if (gid.empty()) return InvalidArgumentError("gid is missing");
  return gid;
}

// steps: [{"action":...,"compensate":...}], and the legacy "data" of each.
Status DecodeSteps(const Fields& f, std::vector<TransStep>* steps,
                   std::vector<std::string>* data) {
  const json* v = f.Find("steps");
  if (v == nullptr) return Status::Ok();
  if (!v->is_array()) return WrongType("steps", "an array of objects", *v);
  bool any_data = false;
  for (std::size_t i = 0; i < v->size(); ++i) {
    const json& step = (*v)[i];
    const std::string name = "steps[" + std::to_string(i) + "]";
    if (!step.is_object()) return WrongType(name, "an object", step);
    TransStep out;
    std::string d;
    for (const auto& [key, value] : step.items()) {
      if (value.is_null()) continue;
      if (!value.is_string()) {
        return WrongType(name + "." + key, "a string", value);
      }
      if (key == "action") {
        out.action = value.get<std::string>();
      } else if (key == "compensate") {
        out.compensate = value.get<std::string>();
      } else if (key == "data") {
        d = value.get<std::string>();
      }
      // Other keys are ignored, as dtm's processors ignore them.
    }
    any_data = any_data || !d.empty();
    steps->push_back(std::move(out));
    data->push_back(std::move(d));
  }
  if (!any_data) data->clear();
  return Status::Ok();
}

Status DecodePayloads(const Fields& f, std::vector<std::string>* out) {
  const json* v = f.Find("payloads");
  if (v == nullptr) return Status::Ok();
  if (!v->is_array()) return WrongType("payloads", "an array of strings", *v);
  for (std::size_t i = 0; i < v->size(); ++i) {
    const json& p = (*v)[i];
    if (p.is_null()) {
      out->emplace_back();
    } else if (!p.is_string()) {
      // A common mistake: the request object itself instead of its text.
      return WrongType("payloads[" + std::to_string(i) + "]",
                       "a string (the JSON text of the step's request)", p);
    } else {
      out->push_back(p.get<std::string>());
    }
  }
  return Status::Ok();
}

}  // namespace

Result<TransRequest> DecodeDtmTransJson(std::string_view body) {
  DTX_ASSIGN_OR_RETURN(json j, ParseObject("trans", body));
  const Fields f(j);
  TransRequest out;
  DTX_ASSIGN_OR_RETURN(out.gid, GidOf(f));
  DTX_ASSIGN_OR_RETURN(out.trans_type, TypeOf(f));
  DTX_RETURN_IF_ERROR(f.String("custom_data", &out.custom_data));
  TransOptions& o = out.options;
  DTX_RETURN_IF_ERROR(f.Bool("wait_result", &o.wait_result));
  DTX_RETURN_IF_ERROR(f.Seconds("timeout_to_fail", &o.timeout_to_fail));
  DTX_RETURN_IF_ERROR(f.Seconds("request_timeout", &o.request_timeout));
  DTX_RETURN_IF_ERROR(f.Seconds("retry_interval", &o.retry_interval));
  DTX_RETURN_IF_ERROR(f.Int("retry_limit", &o.retry_limit));
  if (o.retry_limit < 0) {
    return InvalidArgumentError("retry_limit must not be negative");
  }
  // The server's own counter in dtm too: read for its type only.
  int64_t retry_count = 0;
  DTX_RETURN_IF_ERROR(f.Int("retry_count", &retry_count));
  DTX_RETURN_IF_ERROR(f.StringMap("branch_headers", &o.branch_headers));
  DTX_RETURN_IF_ERROR(f.Bool("concurrent", &o.concurrent));
  if (const json* p = f.Find("passthrough_headers")) {
    if (!p->is_array()) {
      return WrongType("passthrough_headers", "an array of strings", *p);
    }
    if (!p->empty()) {
      return UnimplementedError(
          "passthrough_headers (an option dtm removed) is not supported; "
          "send the headers in branch_headers");
    }
  }
  std::vector<std::string> step_data;
  DTX_RETURN_IF_ERROR(DecodeSteps(f, &out.steps, &step_data));
  DTX_RETURN_IF_ERROR(DecodePayloads(f, &out.payloads));
  if (!step_data.empty()) {
    // dtm appends each non-empty steps[i].data to the payloads (its old
    // HTTP form); sent with payloads too, they could not line up.
    if (!out.payloads.empty()) {
      return InvalidArgumentError(
          "send each step's payload in payloads or in steps[i].data (the "
          "old form), not both");
    }
    out.payloads = std::move(step_data);
  }
  if (!out.payloads.empty() && out.payloads.size() != out.steps.size()) {
    return InvalidArgumentError(
        "steps has " + std::to_string(out.steps.size()) +
        " entries but payloads has " + std::to_string(out.payloads.size()) +
        "; they must be index-aligned");
  }
  DTX_RETURN_IF_ERROR(f.String("query_prepared", &out.query_prepared));
  DTX_RETURN_IF_ERROR(f.String("rollback_reason", &out.rollback_reason));
  DTX_RETURN_IF_ERROR(f.String("protocol", &out.protocol));
  // dtm's HTTP API: an empty protocol is "http".
  if (out.protocol.empty()) out.protocol = "http";
  if (const json* extra = f.Find("req_extra")) {
    if (!extra->is_object()) {
      return WrongType("req_extra", "an object of strings", *extra);
    }
    // Workflow Submit: how it ended (the coordinator checks the keys).
    for (const auto& [key, value] : extra->items()) {
      if (!value.is_string()) {
        return WrongType("req_extra." + key, "a string", value);
      }
      out.req_extra[key] = value.get<std::string>();
    }
  }
  return out;
}

std::string EncodeDtmTransJson(const TransRequest& r) {
  json j = json::object();
  j["gid"] = r.gid;
  j["trans_type"] = std::string(ToString(r.trans_type));
  if (!r.custom_data.empty()) j["custom_data"] = r.custom_data;
  const TransOptions& o = r.options;
  if (o.wait_result) j["wait_result"] = true;
  if (o.timeout_to_fail.count() != 0) {
    j["timeout_to_fail"] = o.timeout_to_fail.count();
  }
  if (o.request_timeout.count() != 0) {
    j["request_timeout"] = o.request_timeout.count();
  }
  if (o.retry_interval.count() != 0) {
    j["retry_interval"] = o.retry_interval.count();
  }
  if (!o.branch_headers.empty()) j["branch_headers"] = o.branch_headers;
  j["concurrent"] = o.concurrent;
  if (o.retry_limit != 0) j["retry_limit"] = o.retry_limit;
  if (!r.steps.empty()) {
    json steps = json::array();
    for (const TransStep& s : r.steps) {
      json step = {{"action", s.action}};
      if (!s.compensate.empty()) step["compensate"] = s.compensate;
      steps.push_back(std::move(step));
    }
    j["steps"] = std::move(steps);
  }
  if (!r.payloads.empty()) j["payloads"] = r.payloads;
  if (!r.query_prepared.empty()) j["query_prepared"] = r.query_prepared;
  j["protocol"] = r.protocol == "http" ? std::string() : r.protocol;
  if (!r.rollback_reason.empty()) j["rollback_reason"] = r.rollback_reason;
  if (!r.req_extra.empty()) j["req_extra"] = r.req_extra;
  return Dump(j);
}

Result<TransWithBranches> DecodeWorkflowProgressJson(std::string_view body) {
  DTX_ASSIGN_OR_RETURN(json j, ParseObject("prepareWorkflow answer", body));
  auto text = [](const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>()
                                                 : std::string();
  };
  TransWithBranches out;
  out.trans.trans_type = TransType::kWorkflow;
  auto t = j.find("transaction");
  if (t == j.end() || !t->is_object()) {
    return InvalidArgumentError(
        "prepareWorkflow answer: no \"transaction\" object");
  }
  out.trans.gid = text(*t, "gid");
  DTX_ASSIGN_OR_RETURN(out.trans.status, ParseTransStatus(text(*t, "status")));
  out.trans.rollback_reason = text(*t, "rollback_reason");
  out.trans.result = text(*t, "result");
  auto p = j.find("progresses");
  if (p != j.end() && !p->is_null()) {
    if (!p->is_array()) {
      return InvalidArgumentError(
          "prepareWorkflow answer: \"progresses\" is not an array");
    }
    for (const json& step : *p) {
      if (!step.is_object()) {
        return InvalidArgumentError(
            "prepareWorkflow answer: a progress is not an object");
      }
      Branch b;
      b.gid = out.trans.gid;
      b.branch_id = text(step, "branch_id");
      DTX_ASSIGN_OR_RETURN(b.op, ParseBranchOp(text(step, "op")));
      DTX_ASSIGN_OR_RETURN(b.status, ParseBranchStatus(text(step, "status")));
      auto data = internal::Base64Decode(text(step, "bin_data"));
      if (!data) {
        return InvalidArgumentError(
            "prepareWorkflow answer: a progress's bin_data is not base64");
      }
      b.bin_data = std::move(*data);
      out.branches.push_back(std::move(b));
    }
  }
  return out;
}

std::string EncodeWorkflowProgressJson(const TransWithBranches& record) {
  json progresses = json::array();
  for (const Branch& b : record.branches) {
    progresses.push_back({{"status", std::string(ToString(b.status))},
                          {"bin_data", internal::Base64Encode(b.bin_data)},
                          {"branch_id", b.branch_id},
                          {"op", std::string(ToString(b.op))}});
  }
  json j = {{"transaction",
             {{"gid", record.trans.gid},
              {"status", std::string(ToString(record.trans.status))},
              {"rollback_reason", record.trans.rollback_reason},
              {"result", record.trans.result}}},
            {"progresses", std::move(progresses)},
            {"dtm_result", "SUCCESS"}};
  return Dump(j);
}

Result<BranchRegistration> DecodeDtmBranchJson(std::string_view body) {
  DTX_ASSIGN_OR_RETURN(json j, ParseObject("registerBranch", body));
  // A flat map of strings, as dtm binds it (map[string]string).
  for (const auto& [key, value] : j.items()) {
    if (!value.is_null() && !value.is_string()) {
      return WrongType(key,
                       "a string (registerBranch takes a flat map of "
                       "strings)",
                       value);
    }
  }
  const Fields f(j);
  BranchRegistration out;
  DTX_ASSIGN_OR_RETURN(out.gid, GidOf(f));
  DTX_ASSIGN_OR_RETURN(out.trans_type, TypeOf(f));
  DTX_RETURN_IF_ERROR(f.String("branch_id", &out.branch_id));
  if (out.branch_id.empty())
    return InvalidArgumentError("branch_id is missing");
  DTX_RETURN_IF_ERROR(f.String("data", &out.payload));
  // The transaction's protocol, which the URLs are checked against. dtm's
  // SDKs send none: over dtm's HTTP API that is "http". HttpDtmClient sends
  // it (dtm ignores the key).
  out.protocol.clear();  // BranchRegistration's default is grpc's
  DTX_RETURN_IF_ERROR(f.String("protocol", &out.protocol));
  if (out.protocol.empty()) out.protocol = "http";
  if (out.trans_type == TransType::kWorkflow) {
    // A recorded step: "op" and "status" as dtm's SDKs send them ("sync",
    // dtm's write-behind switch, means nothing here: every record is
    // durable before it is answered); "url" is dtx's (what the step did).
    std::string op;
    std::string status;
    DTX_RETURN_IF_ERROR(f.String("op", &op));
    DTX_RETURN_IF_ERROR(f.String("status", &status));
    auto parsed_op = ParseBranchOp(op);
    if (!parsed_op.ok()) {
      return InvalidArgumentError("workflow step: op '" + LoggableText(op) +
                                  "' is not action, commit or rollback");
    }
    auto parsed_status = ParseBranchStatus(status);
    if (!parsed_status.ok()) {
      return InvalidArgumentError("workflow step: status '" +
                                  LoggableText(status) +
                                  "' is not succeed or failed");
    }
    out.op = *parsed_op;
    out.status = *parsed_status;
    DTX_RETURN_IF_ERROR(f.String("url", &out.url));
  } else if (out.trans_type == TransType::kXa) {
    // xa's one URL takes both phase-2 calls (commit and rollback).
    std::string url;
    DTX_RETURN_IF_ERROR(f.String("url", &url));
    out.confirm_url = url;
    out.cancel_url = url;
  } else {
    DTX_RETURN_IF_ERROR(f.String("confirm", &out.confirm_url));
    DTX_RETURN_IF_ERROR(f.String("cancel", &out.cancel_url));
  }
  return out;
}

std::string EncodeDtmBranchJson(const BranchRegistration& b) {
  json j = json::object();
  j["gid"] = b.gid;
  j["trans_type"] = std::string(ToString(b.trans_type));
  j["branch_id"] = b.branch_id;
  j["data"] = b.payload;
  if (!b.protocol.empty()) j["protocol"] = b.protocol;
  if (b.trans_type == TransType::kWorkflow) {
    j["op"] = std::string(ToString(b.op));
    j["status"] = std::string(ToString(b.status));
    if (!b.url.empty()) j["url"] = b.url;
  } else if (b.trans_type == TransType::kXa) {
    j["url"] = b.confirm_url;
  } else {
    j["confirm"] = b.confirm_url;
    j["cancel"] = b.cancel_url;
  }
  return Dump(j);
}

HttpResponse DtmHttpAnswer(const Status& s) {
  auto message = [&s](int status) {
    return HttpResponse::Json(status, Dump(json{{"message", s.message()}}));
  };
  switch (s.code()) {
    case StatusCode::kOk:
      return HttpResponse::Json(200, R"({"dtm_result":"SUCCESS"})");
    case StatusCode::kAborted:
      return HttpResponse::Json(
          409, Dump(json{{"dtm_result", "FAILURE"}, {"message", s.message()}}));
    case StatusCode::kFailedPrecondition:
      return HttpResponse::Json(
          425, Dump(json{{"dtm_result", "ONGOING"}, {"message", s.message()}}));
    case StatusCode::kInvalidArgument:
      return message(400);
    case StatusCode::kAlreadyExists:
      // Another request for a gid that exists. Not 409, which is dtm's
      // FAILURE ("rolled back") to dtm's HTTP clients.
      return message(422);
    case StatusCode::kNotFound:
      return message(404);
    case StatusCode::kPermissionDenied:  // BranchTargets
      return message(403);
    case StatusCode::kResourceExhausted:
      return message(413);
    case StatusCode::kUnimplemented:
      return message(501);
    case StatusCode::kUnavailable:
      return message(503);
    case StatusCode::kDeadlineExceeded:
      return message(504);
    default:
      return message(500);
  }
}

Status DtmStatusFromHttp(int http_status, std::string_view body) {
  const json j = json::parse(body, nullptr, false);
  if (http_status == 200) {
    // dtm before v1.10 answered FAILURE with a 200 and this key.
    const bool failure = j.is_object() && j.contains("dtm_result") &&
                         j["dtm_result"] == "FAILURE";
    if (!failure) return Status::Ok();
  }
  std::string message;
  if (j.is_object()) {
    for (const char* key : {"message", "error"}) {
      auto it = j.find(key);
      if (it != j.end() && it->is_string()) {
        message = it->get<std::string>();
        break;
      }
    }
  }
  if (message.empty()) {
    constexpr std::size_t kMax = 1024;
    message = std::string(body.substr(0, kMax));
    if (body.size() > kMax) message += "... (truncated)";
  }
  if (message.empty()) message = "HTTP " + std::to_string(http_status);
  StatusCode code = StatusCode::kUnknown;
  switch (http_status) {
    case 200:
    case 409:
      code = StatusCode::kAborted;
      break;
    case 425:
      code = StatusCode::kFailedPrecondition;
      break;
    case 400:
      code = StatusCode::kInvalidArgument;
      break;
    case 422:
      code = StatusCode::kAlreadyExists;
      break;
    case 401:
      code = StatusCode::kUnauthenticated;
      break;
    case 403:
      code = StatusCode::kPermissionDenied;
      break;
    case 404:
      code = StatusCode::kNotFound;
      break;
    case 413:
      code = StatusCode::kResourceExhausted;
      break;
    case 501:
      code = StatusCode::kUnimplemented;
      break;
    case 503:
      code = StatusCode::kUnavailable;
      break;
    case 504:
      code = StatusCode::kDeadlineExceeded;
      break;
    case 500:
      code = StatusCode::kInternal;
      break;
    default:
      break;
  }
  return Status(code, message);
}

}  // namespace dtx
