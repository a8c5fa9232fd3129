#include "dtm_http_api.h"

#include "dtx/limits.h"
#include "dtx/transport/dtm_http_json.h"
#include "dtx/transport/http_message.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace dtx::server {
namespace {

using nlohmann::json;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// What a call answers: its status, and NewGid's gid.
// `answer`: a whole JSON answer of its own (prepareWorkflow's), when set.
using Done =
    std::function<void(Status status, std::string gid, std::string answer)>;

// JSON-RPC 2.0's codes and dtm's (§1.7 of dtm's reference).
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
constexpr int kFailure = -32901;
constexpr int kOngoing = -32902;

int JsonRpcCode(const Status& s) {
  switch (s.code()) {
    case StatusCode::kAborted:
      return kFailure;
    case StatusCode::kFailedPrecondition:
      return kOngoing;
    case StatusCode::kInvalidArgument:
      return kInvalidParams;
    default:
      return kInternalError;
  }
}

class DtmRoutes {
 public:
  DtmRoutes(DtmApi* dtm, DtmHttpApiOptions options)
      : dtm_(dtm), logger_(std::move(options.logger)) {
    if (!logger_) logger_ = NewNullLogger();
  }

  // Runs dtm's method `method` ("submit", ...) on the JSON text `body`;
  // false for a method that is not one of the six.
  bool Call(std::string_view method, std::string_view body, Done done) const {
    if (method == "newGid") {
      dtm_->NewGidAsync([done = std::move(done)](Result<std::string> gid) {
        if (!gid.ok()) return done(gid.status(), "", "");
        done(Status::Ok(), std::move(gid).value(), "");
      });
      return true;
    }
    if (method == "registerBranch") {
      auto branch = DecodeDtmBranchJson(body);
      if (!branch.ok()) {
        // Malformed: answered at once, nothing reaches the coordinator.
        Answered(method, "", branch.status(), done);
        return true;
      }
      std::string gid = branch->gid;
      dtm_->RegisterBranchAsync(std::move(branch).value(),
                                Logged(method, std::move(gid), done));
      return true;
    }
    if (method == "prepareWorkflow") {
      auto request = DecodeDtmTransJson(body);
      if (!request.ok()) {
        Answered(method, "", request.status(), done);
        return true;
      }
      std::string gid = request->gid;
      dtm_->PrepareWorkflowAsync(
          std::move(request).value(),
          [logger = logger_, gid,
           done = std::move(done)](Result<TransWithBranches> record) {
            Log(*logger, "prepareWorkflow", gid, record.status());
            if (!record.ok()) return done(record.status(), "", "");
            done(Status::Ok(), "", EncodeWorkflowProgressJson(*record));
          });
      return true;
    }
    void (DtmApi::*op)(TransRequest, StatusCallback) = nullptr;
    if (method == "prepare") {
      op = &DtmApi::PrepareAsync;
    } else if (method == "submit") {
      op = &DtmApi::SubmitAsync;
    } else if (method == "abort") {
      op = &DtmApi::AbortAsync;
    } else {
      return false;
    }
    auto request = DecodeDtmTransJson(body);
    if (!request.ok()) {
      Answered(method, "", request.status(), done);
      return true;
    }
    std::string gid = request->gid;
    (dtm_->*op)(std::move(request).value(),
                Logged(method, std::move(gid), std::move(done)));
    return true;
  }

  // POST /api/dtmsvr/<method> (GET for newGid).
  void Http(std::string_view method, const HttpRequest& req,
            const HttpResponder& r) const {
    Call(method, req.body,
         [r](const Status& s, const std::string& gid,
             const std::string& answer) {
           if (s.ok() && !answer.empty()) {
             return r.Respond(HttpResponse::Json(200, answer));
           }
           if (s.ok() && !gid.empty()) {
             return r.Respond(HttpResponse::Json(
                 200, Dump(json{{"gid", gid}, {"dtm_result", "SUCCESS"}})));
           }
           r.Respond(DtmHttpAnswer(s));
         });
  }

  // POST /api/json-rpc: {"jsonrpc":"2.0","id":...,"method":M,"params":P},
  // answered 200 {"jsonrpc":"2.0","id":...,"error":E,"result":R}.
  void JsonRpc(const HttpRequest& req, const HttpResponder& r) const {
    auto fail = [&r](const json& id, int code, const std::string& message) {
      r.Respond(HttpResponse::Json(
          200, Dump(json{{"jsonrpc", "2.0"},
                         {"id", id},
                         {"error", {{"code", code}, {"message", message}}},
                         {"result", nullptr}})));
    };
    // Deep nesting is refused before anything walks it (params is written
    // out again below, which recurses).
    if (Status depth = ValidateJsonDepth("json-rpc", req.body); !depth.ok()) {
      return fail(nullptr, kInvalidRequest,
                  "Bad json request: " + depth.message());
    }
    const json envelope = json::parse(req.body, nullptr, false);
    if (envelope.is_discarded()) {
      return fail(nullptr, kParseError,
                  "Parse json error: the body is not valid JSON");
    }
    if (!envelope.is_object()) {
      return fail(nullptr, kInvalidRequest,
                  "Bad json request: the body must be a JSON object");
    }
    json id = envelope.value("id", json());
    const bool id_ok = (id.is_string() && !id.get<std::string>().empty()) ||
                       id.is_number_integer() || id.is_number_unsigned();
    auto version = envelope.find("jsonrpc");
    if (!id_ok || version == envelope.end() || *version != "2.0") {
      if (!id_ok) id = nullptr;
      return fail(id, kInvalidRequest,
                  "Bad json request: want \"jsonrpc\":\"2.0\" and a "
                  "non-empty string or integer \"id\"");
    }
    auto method = envelope.find("method");
    if (method == envelope.end() || !method->is_string()) {
      return fail(id, kMethodNotFound,
                  "Method not found: \"method\" is missing or not a string");
    }
    const std::string name = method->get<std::string>();
    auto params = envelope.find("params");
    const std::string body = params == envelope.end() || params->is_null()
                                 ? std::string("{}")
                                 : Dump(*params);
    const bool known =
        Call(name, body,
             [r, id](const Status& s, const std::string& gid,
                     const std::string& whole) {
               json answer = {{"jsonrpc", "2.0"}, {"id", id}};
               if (s.ok()) {
                 answer["error"] = nullptr;
                 if (!whole.empty()) {
                   json result = json::parse(whole, nullptr, false);
                   result.erase("dtm_result");
                   answer["result"] = std::move(result);
                 } else {
                   answer["result"] =
                       gid.empty() ? json(nullptr) : json{{"gid", gid}};
                 }
               } else {
                 answer["error"] = {{"code", JsonRpcCode(s)},
                                    {"message", s.message()}};
                 answer["result"] = nullptr;
               }
               r.Respond(HttpResponse::Json(200, Dump(answer)));
             });
    if (!known) {
      fail(id, kMethodNotFound,
           "Method not found: " + name +
               " (want newGid, prepare, submit, abort, registerBranch or "
               "prepareWorkflow)");
    }
  }

 private:
  // Logs a fault; FAILURE, ONGOING and refused requests are answers.
  static void Log(Logger& logger, std::string_view method,
                  const std::string& gid, const Status& s) {
    if (s.ok()) return;
    const StatusCode code = s.code();
    const LogLevel level = (code == StatusCode::kAborted ||
                            code == StatusCode::kFailedPrecondition ||
                            code == StatusCode::kInvalidArgument ||
                            code == StatusCode::kNotFound ||
                            code == StatusCode::kResourceExhausted ||
                            code == StatusCode::kUnimplemented)
                               ? LogLevel::kDebug
                               : LogLevel::kWarn;
    DTX_LOG(&logger, level,
            "http " << method << " gid=" << gid << ": "
                    << LoggableText(s.ToString()));
  }

  void Answered(std::string_view method, const std::string& gid,
                const Status& s, const Done& done) const {
    Log(*logger_, method, gid, s);
    done(s, "", "");
  }

  // The callback of a coordinator call. It may run after the routes are
  // gone (an answer after the server's shutdown), so it owns what it uses.
  StatusCallback Logged(std::string_view method, std::string gid,
                        Done done) const {
    return [logger = logger_, method = std::string(method),
            gid = std::move(gid), done = std::move(done)](Status s) {
      Log(*logger, method, gid, s);
      done(s, "", "");
    };
  }

  DtmApi* const dtm_;
  std::shared_ptr<Logger> logger_;
};

// The answer of dtm's routes that dtx does not serve yet.
HttpHandler NotYet(std::string what) {
  return
      [what = std::move(what)](const HttpRequest& req, const HttpResponder& r) {
        r.Respond(DtmHttpAnswer(
            UnimplementedError("dtx does not support " + what + " yet (" +
                               req.method + " " + req.path + ")")));
      };
}

}  // namespace

Status AddDtmApiRoutes(HttpRouter& router, DtmApi* dtm,
                       const DtmHttpApiOptions& options) {
  if (dtm == nullptr) return InvalidArgumentError("dtm http api: no DtmApi");
  // Shared by the handlers, which the router copies; `dtm` outlives them.
  auto routes = std::make_shared<const DtmRoutes>(dtm, options);
  auto http = [routes](std::string_view method) -> HttpHandler {
    return [routes, method](const HttpRequest& req, const HttpResponder& r) {
      routes->Http(method, req, r);
    };
  };
  router.Handle("GET", "/api/dtmsvr/newGid", http("newGid"));
  router.Handle("POST", "/api/dtmsvr/prepare", http("prepare"));
  router.Handle("POST", "/api/dtmsvr/submit", http("submit"));
  router.Handle("POST", "/api/dtmsvr/abort", http("abort"));
  router.Handle("POST", "/api/dtmsvr/registerBranch", http("registerBranch"));
  router.Handle("POST", "/api/dtmsvr/registerTccBranch",
                http("registerBranch"));
  router.Handle("POST", "/api/dtmsvr/registerXaBranch", http("registerBranch"));
  router.Handle("POST", "/api/json-rpc",
                [routes](const HttpRequest& req, const HttpResponder& r) {
                  routes->JsonRpc(req, r);
                });
  router.Handle("GET", "/api/dtmsvr/subscribe", NotYet("msg topics"));
  router.Handle("GET", "/api/dtmsvr/unsubscribe", NotYet("msg topics"));
  router.HandlePrefix("DELETE", "/api/dtmsvr/topic/", NotYet("msg topics"));
  router.Handle("POST", "/api/dtmsvr/prepareWorkflow", http("prepareWorkflow"));
  router.Handle("GET", "/api/dtmsvr/scanKV", NotYet("dtm's KV store"));
  router.Handle("GET", "/api/dtmsvr/queryKV", NotYet("dtm's KV store"));
  router.Handle("GET", "/api/dtmsvr/resetCronTime",
                NotYet("resetCronTime (use POST "
                       "/api/dtmsvr/resetNextCronTime per gid)"));
  return Status::Ok();
}

}  // namespace dtx::server
