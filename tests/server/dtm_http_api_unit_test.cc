// dtm's HTTP API routes (dtm_http_api.h) on a recording DtmApi, without
// sockets: which call each route makes with what, that a malformed body
// never reaches the API, that an answer may come after the handler
// returned (WaitResult), the JSON-RPC envelope and its codes, and the
// routes that answer "not supported yet". The routes on a real dtx-server:
// dtm_http_api_test.cc.

#include "dtx/branch_client.h"
#include "dtx/transport/http_router.h"

#include "dtm_http_api.h"
#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dtx::server {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// Records each call; answers at once with `answer`, or holds the callback
// when `hold` is set.
class RecordingDtm final : public DtmApi {
 public:
  void NewGidAsync(ResultCallback<std::string> done) override {
    calls.push_back("newGid");
    if (answer.ok()) return done(std::string("gid-1"));
    done(answer);
  }
  void PrepareAsync(TransRequest r, StatusCallback done) override {
    Record("prepare", std::move(r), std::move(done));
  }
  void SubmitAsync(TransRequest r, StatusCallback done) override {
    Record("submit", std::move(r), std::move(done));
  }
  void AbortAsync(TransRequest r, StatusCallback done) override {
    Record("abort", std::move(r), std::move(done));
  }
  void RegisterBranchAsync(BranchRegistration b, StatusCallback done) override {
    calls.push_back("registerBranch");
    branch = std::move(b);
    Answer(std::move(done));
  }
  void QueryAsync(std::string,
                  ResultCallback<TransWithBranches> done) override {
    done(UnimplementedError("not here"));
  }
  BranchClient& branch_client() override { std::abort(); }
  std::string address() const override { return ""; }

  Status answer;
  bool hold = false;
  StatusCallback held;
  std::vector<std::string> calls;
  std::optional<TransRequest> request;
  std::optional<BranchRegistration> branch;

 private:
  void Record(const char* name, TransRequest r, StatusCallback done) {
    calls.push_back(name);
    request = std::move(r);
    Answer(std::move(done));
  }
  void Answer(StatusCallback done) {
    if (hold) {
      held = std::move(done);
    } else {
      done(answer);
    }
  }
};

class DtmHttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpRouter router;
    ASSERT_OK(AddDtmApiRoutes(router, &dtm_, DtmHttpApiOptions{}));
    auto built = router.Build();
    ASSERT_OK(built);
    handler_ = std::move(built).value();
  }

  // Runs the handler; the answer, when it has come.
  std::optional<HttpResponse> Run(const std::string& method,
                                  const std::string& path,
                                  const std::string& body = "") {
    auto answer = std::make_shared<std::optional<HttpResponse>>();
    HttpRequest req;
    req.method = method;
    req.path = path;
    req.target = path;
    req.body = body;
    handler_(req, HttpResponder([answer](HttpResponse r) { *answer = r; }));
    last_ = answer;
    return *answer;
  }
  HttpResponse Post(const std::string& path, const std::string& body) {
    auto r = Run("POST", path, body);
    EXPECT_TRUE(r.has_value()) << path;
    return r.value_or(HttpResponse{});
  }

  RecordingDtm dtm_;
  HttpHandler handler_;
  std::shared_ptr<std::optional<HttpResponse>> last_;
};

constexpr char kSaga[] =
    R"({"gid":"g1","trans_type":"saga","protocol":"","concurrent":false,)"
    R"("steps":[{"action":"http://b/a","compensate":"http://b/c"}],)"
    R"("payloads":["{\"amount\":1}"]})";

TEST_F(DtmHttpApiTest, EachRouteMakesItsCall) {
  HttpResponse r = Post("/api/dtmsvr/submit", kSaga);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"dtm_result":"SUCCESS"})");
  ASSERT_TRUE(dtm_.request.has_value());
  EXPECT_EQ(dtm_.request->gid, "g1");
  EXPECT_EQ(dtm_.request->protocol, "http");
  EXPECT_EQ(dtm_.request->payloads[0], R"({"amount":1})");

  EXPECT_EQ(Post("/api/dtmsvr/prepare",
                 R"({"gid":"t","trans_type":"tcc","protocol":""})")
                .status,
            200);
  EXPECT_EQ(Post("/api/dtmsvr/abort",
                 R"({"gid":"t","trans_type":"tcc","rollback_reason":"r"})")
                .status,
            200);
  EXPECT_EQ(dtm_.request->rollback_reason, "r");
  for (const char* path :
       {"/api/dtmsvr/registerBranch", "/api/dtmsvr/registerTccBranch",
        "/api/dtmsvr/registerXaBranch"}) {
    EXPECT_EQ(Post(path, R"({"gid":"t","trans_type":"tcc","branch_id":"01",)"
                         R"("data":"{}","confirm":"c","cancel":"x"})")
                  .status,
              200)
        << path;
  }
  EXPECT_EQ(dtm_.branch->confirm_url, "c");
  auto gid = Run("GET", "/api/dtmsvr/newGid");
  ASSERT_TRUE(gid.has_value());
  EXPECT_EQ(gid->status, 200);
  EXPECT_EQ(json::parse(gid->body),
            (json{{"gid", "gid-1"}, {"dtm_result", "SUCCESS"}}));
  EXPECT_THAT(dtm_.calls, ::testing::ElementsAre(
                              "submit", "prepare", "abort", "registerBranch",
                              "registerBranch", "registerBranch", "newGid"));
}

TEST_F(DtmHttpApiTest, MalformedBodiesAreRefusedWithoutCallingTheApi) {
  for (const char* path : {"/api/dtmsvr/prepare", "/api/dtmsvr/submit",
                           "/api/dtmsvr/abort", "/api/dtmsvr/registerBranch"}) {
    for (const char* body :
         {"", "not json", "[]",
          R"({"gid":"g","trans_type":"saga","wait_result":1})",
          R"({"gid":1,"trans_type":"tcc","branch_id":"01"})"}) {
      HttpResponse r = Post(path, body);
      EXPECT_EQ(r.status, 400) << path << " " << body;
      EXPECT_TRUE(json::parse(r.body, nullptr, false).contains("message"))
          << r.body;
    }
  }
  EXPECT_THAT(Post("/api/dtmsvr/submit",
                   R"({"gid":"g","trans_type":"saga","retry_limit":"3"})")
                  .body,
              HasSubstr("retry_limit must be an integer, not a string"));
  EXPECT_TRUE(dtm_.calls.empty());
}

TEST_F(DtmHttpApiTest, AnswersComeFromTheApisCallbackWithDtmsClasses) {
  dtm_.hold = true;
  // The handler returns with the request pending (a WaitResult submit).
  EXPECT_FALSE(Run("POST", "/api/dtmsvr/submit", kSaga).has_value());
  ASSERT_TRUE(dtm_.held);
  dtm_.held(AbortedError("url:http://b/a return failed"));
  ASSERT_TRUE(last_->has_value());
  EXPECT_EQ((*last_)->status, 409);
  EXPECT_EQ(json::parse((*last_)->body),
            (json{{"dtm_result", "FAILURE"},
                  {"message", "url:http://b/a return failed"}}));

  dtm_.hold = false;
  dtm_.answer = FailedPreconditionError("still submitted");
  EXPECT_EQ(Post("/api/dtmsvr/submit", kSaga).status, 425);
  dtm_.answer = UnimplementedError("dtx does not support xa transactions yet");
  HttpResponse xa =
      Post("/api/dtmsvr/registerXaBranch",
           R"({"gid":"x","trans_type":"xa","branch_id":"01","url":"u"})");
  EXPECT_EQ(xa.status, 501);
  EXPECT_THAT(xa.body, HasSubstr("xa transactions"));
  EXPECT_EQ(dtm_.branch->trans_type, TransType::kXa);
  dtm_.answer = UnavailableError("coordinator: shutting down");
  EXPECT_EQ(Run("GET", "/api/dtmsvr/newGid")->status, 503);
}

TEST_F(DtmHttpApiTest, RoutesDtxDoesNotServeYetAnswer501) {
  const std::pair<const char*, const char*> routes[] = {
      {"GET", "/api/dtmsvr/subscribe"},
      {"GET", "/api/dtmsvr/unsubscribe"},
      {"DELETE", "/api/dtmsvr/topic/orders"},
      {"GET", "/api/dtmsvr/scanKV"},
      {"GET", "/api/dtmsvr/queryKV"},
      {"GET", "/api/dtmsvr/resetCronTime"},
  };
  for (const auto& [method, path] : routes) {
    auto r = Run(method, path);
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, 501) << path;
    EXPECT_THAT(r->body, HasSubstr("does not support")) << path;
    EXPECT_THAT(r->body, HasSubstr(path));
    // dtmcli reads a body with these words as FAILURE or ONGOING.
    EXPECT_THAT(r->body, ::testing::Not(HasSubstr("FAILURE")));
    EXPECT_THAT(r->body, ::testing::Not(HasSubstr("ONGOING")));
  }
  EXPECT_TRUE(dtm_.calls.empty());
  // dtm's methods only.
  EXPECT_EQ(Run("GET", "/api/dtmsvr/submit")->status, 405);
}

json RpcAnswer(const std::optional<HttpResponse>& r) {
  EXPECT_TRUE(r.has_value());
  if (!r) return {};
  EXPECT_EQ(r->status, 200);
  return json::parse(r->body, nullptr, false);
}

TEST_F(DtmHttpApiTest, DeeplyNestedBodiesAreRefusedBeforeAnyoneWalksThem) {
  // 100,000 levels once crashed the JSON-RPC route (params written out
  // again, recursively); every route refuses them now.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  json rpc = RpcAnswer(
      Run("POST", "/api/json-rpc",
          R"({"jsonrpc":"2.0","id":1,"method":"submit","params":{"a":)" + deep +
              "}}"));
  EXPECT_EQ(rpc["error"]["code"], -32600);
  EXPECT_THAT(rpc["error"]["message"].get<std::string>(),
              ::testing::HasSubstr("nested deeper than 64"));
  auto submit = Run("POST", "/api/dtmsvr/submit",
                    R"({"gid":"g1","trans_type":"saga","x":)" + deep + "}");
  ASSERT_TRUE(submit.has_value());
  EXPECT_EQ(submit->status, 400);
  EXPECT_THAT(submit->body, ::testing::HasSubstr("nested deeper than 64"));
  EXPECT_TRUE(dtm_.calls.empty());
}

TEST_F(DtmHttpApiTest, JsonRpcCallsTheSameMethodsWithDtmsCodes) {
  json a = RpcAnswer(Run("POST", "/api/json-rpc",
                         R"({"jsonrpc":"2.0","id":"1","method":"newGid"})"));
  EXPECT_EQ(a, (json{{"jsonrpc", "2.0"},
                     {"id", "1"},
                     {"error", nullptr},
                     {"result", {{"gid", "gid-1"}}}}));
  json s = RpcAnswer(Run(
      "POST", "/api/json-rpc",
      std::string(R"({"jsonrpc":"2.0","id":7,"method":"submit","params":)") +
          kSaga + "}"));
  EXPECT_EQ(s["id"], 7);
  EXPECT_TRUE(s["error"].is_null());
  EXPECT_TRUE(s["result"].is_null());
  EXPECT_EQ(dtm_.request->gid, "g1");

  dtm_.answer = AbortedError("cannot submit");
  EXPECT_EQ(RpcAnswer(Run("POST", "/api/json-rpc",
                          std::string(R"({"jsonrpc":"2.0","id":"2",)"
                                      R"("method":"submit","params":)") +
                              kSaga + "}"))["error"]["code"],
            -32901);
  dtm_.answer = InternalError("disk");
  EXPECT_EQ(RpcAnswer(Run(
                "POST", "/api/json-rpc",
                R"({"jsonrpc":"2.0","id":"3","method":"registerBranch",)"
                R"("params":{"gid":"g","trans_type":"tcc","branch_id":"01"}})"))
                ["error"]["code"],
            -32603);
  const std::size_t calls = dtm_.calls.size();

  struct Bad {
    const char* body;
    int code;
  };
  for (const Bad& b : {
           Bad{"{", -32700},
           Bad{"[]", -32600},
           Bad{R"({"jsonrpc":"1.0","id":"1","method":"newGid"})", -32600},
           Bad{R"({"jsonrpc":"2.0","method":"newGid"})", -32600},
           Bad{R"({"jsonrpc":"2.0","id":"","method":"newGid"})", -32600},
           Bad{R"({"jsonrpc":"2.0","id":"1","method":"forceStop"})", -32601},
           Bad{R"({"jsonrpc":"2.0","id":"1"})", -32601},
           Bad{R"({"jsonrpc":"2.0","id":"1","method":"submit","params":[1]})",
               -32602},
           Bad{R"({"jsonrpc":"2.0","id":"1","method":"prepare"})", -32602},
       }) {
    json e = RpcAnswer(Run("POST", "/api/json-rpc", b.body));
    EXPECT_EQ(e["error"]["code"], b.code) << b.body;
    EXPECT_TRUE(e["error"]["message"].is_string()) << b.body;
    EXPECT_TRUE(e["result"].is_null()) << b.body;
  }
  EXPECT_EQ(dtm_.calls.size(), calls) << "a refused request reached the API";
}

TEST(AddDtmApiRoutesTest, NeedsAnApi) {
  HttpRouter router;
  EXPECT_THAT(AddDtmApiRoutes(router, nullptr, {}),
              testing::StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace dtx::server
