// HttpBranchClient: dtm's request building and result classes (unit), then
// calls of a real HTTP service on 127.0.0.1 (HttpBranchService), including
// discovery:// URLs of protocol-http transactions through a resolver.

#include "dtx/transport/http_branch_client.h"

#include "dtx/transport/kratos_registry.h"
#include "dtx/transport/service_resolver.h"

#include "http_branch_service.h"
#include "status_matchers.h"
#include "test_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>

namespace dtx {
namespace {

using dtx::testing::HttpAnswer;
using dtx::testing::HttpBranchService;
using dtx::testing::StatusIs;
using std::chrono::milliseconds;

TEST(ClassifyHttpAnswerTest, FollowsDtmsStatusRules) {
  EXPECT_EQ(ClassifyHttpAnswer(200, ""), BranchOutcome::kSuccess);
  EXPECT_EQ(ClassifyHttpAnswer(200, R"({"dtm_result":"SUCCESS"})"),
            BranchOutcome::kSuccess);
  EXPECT_EQ(ClassifyHttpAnswer(409, ""), BranchOutcome::kFailure);
  EXPECT_EQ(ClassifyHttpAnswer(409, R"({"error":"x"})"),
            BranchOutcome::kFailure);
  EXPECT_EQ(ClassifyHttpAnswer(425, ""), BranchOutcome::kOngoing);
  EXPECT_EQ(ClassifyHttpAnswer(500, "oops"), BranchOutcome::kTransient);
  EXPECT_EQ(ClassifyHttpAnswer(404, ""), BranchOutcome::kTransient);
  // As dtm: only 200 is a success.
  EXPECT_EQ(ClassifyHttpAnswer(204, ""), BranchOutcome::kTransient);
}

TEST(ClassifyHttpAnswerTest, ABodyThatSaysTheClassCounts) {
  EXPECT_EQ(ClassifyHttpAnswer(200, R"({"dtm_result":"FAILURE"})"),
            BranchOutcome::kFailure);
  EXPECT_EQ(ClassifyHttpAnswer(200, R"( {"dtm_result": "ONGOING"} )"),
            BranchOutcome::kOngoing);
  EXPECT_EQ(ClassifyHttpAnswer(200, "FAILURE\n"), BranchOutcome::kFailure);
  EXPECT_EQ(ClassifyHttpAnswer(500, "ONGOING"), BranchOutcome::kOngoing);
  // ONGOING is checked first, as dtm does.
  EXPECT_EQ(ClassifyHttpAnswer(409, R"({"dtm_result":"ONGOING"})"),
            BranchOutcome::kOngoing);
}

TEST(ClassifyHttpAnswerTest, AWordInsideOtherDataIsNotAClass) {
  // dtm's substring rule would roll these back or wait on them.
  EXPECT_EQ(ClassifyHttpAnswer(200, R"({"last":"FAILURE at 9:00"})"),
            BranchOutcome::kSuccess);
  EXPECT_EQ(ClassifyHttpAnswer(200, R"({"state":"ONGOING"})"),
            BranchOutcome::kSuccess);
  EXPECT_EQ(ClassifyHttpAnswer(200, "no FAILURE here"),
            BranchOutcome::kSuccess);
  EXPECT_EQ(ClassifyHttpAnswer(200, R"({"dtm_result":"FAILURE")"),
            BranchOutcome::kSuccess);  // not JSON
  EXPECT_EQ(ClassifyHttpAnswer(500, R"({"error":"FAILURE to connect"})"),
            BranchOutcome::kTransient);
}

BranchRequest Request(std::string url, std::string payload = "") {
  BranchRequest r;
  r.url = std::move(url);
  r.payload = std::move(payload);
  r.info = {"g 1", TransType::kSaga, "01", BranchOp::kAction, ""};
  return r;
}

TEST(BuildHttpBranchRequestTest, PostsThePayloadWithDtmsQuery) {
  BranchRequest r = Request("", R"({"amount":30})");
  r.headers = {{"X-Tenant", "acme"}};
  HttpClientRequest h = BuildHttpBranchRequest(
      r, "http://b:8081/api/busi/TransIn", milliseconds(3000));
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.url,
            "http://b:8081/api/busi/TransIn?branch_id=01&gid=g%201&op=action"
            "&trans_type=saga");
  EXPECT_THAT(h.headers,
              ::testing::ElementsAre(
                  std::pair<std::string, std::string>("Content-Type",
                                                      "application/json"),
                  std::pair<std::string, std::string>("X-Tenant", "acme")));
  EXPECT_EQ(h.body, R"({"amount":30})");
  EXPECT_EQ(h.timeout, milliseconds(3000));
}

TEST(BuildHttpBranchRequestTest, ABranchContentTypeReplacesDtms) {
  BranchRequest r = Request("", "{}");
  r.headers = {{"content-type", "text/plain"}, {"x-ok", "1"}};
  HttpClientRequest h =
      BuildHttpBranchRequest(r, "http://b/x", milliseconds(3000));
  using Pair = std::pair<std::string, std::string>;
  EXPECT_THAT(h.headers,
              ::testing::ElementsAre(Pair("Content-Type", "text/plain"),
                                     Pair("x-ok", "1")));
}

TEST(BuildHttpBranchRequestTest, GetWithoutPayloadPostForXaAndDtmWhenSet) {
  BranchRequest check = Request("");
  check.info.trans_type = TransType::kMsg;
  check.info.branch_id = "00";
  check.info.op = BranchOp::kMsg;
  check.timeout = milliseconds(250);
  HttpClientRequest h =
      BuildHttpBranchRequest(check, "http://b/q?x=1", milliseconds(3000));
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.url,
            "http://b/q?x=1&branch_id=00&gid=g%201&op=msg&trans_type=msg");
  EXPECT_EQ(h.timeout, milliseconds(250));

  BranchRequest xa = Request("");
  xa.info.trans_type = TransType::kXa;
  xa.info.op = BranchOp::kCommit;
  xa.info.dtm = "http://dtm:36789/api/dtmsvr";
  h = BuildHttpBranchRequest(xa, "http://b/x", milliseconds(3000));
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.url,
            "http://b/x?branch_id=01&dtm=http%3A%2F%2Fdtm%3A36789%2Fapi%"
            "2Fdtmsvr&gid=g%201&op=commit&trans_type=xa");
}

TEST(ParseRegistryHttpUrlTest, SplitsServiceAndPath) {
  ASSERT_OK_AND_ASSIGN(
      auto a, ParseRegistryHttpUrl("discovery://127.0.0.1:2379/trans/api/x"));
  EXPECT_EQ(a.service, "trans");
  EXPECT_EQ(a.path, "/api/x");
  ASSERT_OK_AND_ASSIGN(auto b, ParseRegistryHttpUrl("etcd:///trans?y=2"));
  EXPECT_EQ(b.service, "trans");
  EXPECT_EQ(b.path, "/?y=2");
  EXPECT_THAT(ParseRegistryHttpUrl("discovery://h").status(),
              StatusIs(StatusCode::kInvalidArgument, "want discovery://"));
  EXPECT_THAT(ParseRegistryHttpUrl("discovery://h//x").status(),
              StatusIs(StatusCode::kInvalidArgument, "no service name"));
}

TEST(PickHttpEndpointTest, TakesTheFirstHttpEndpoint) {
  ServiceInstance i;
  i.endpoints = {"grpc://10.0.0.5:9000", "http://10.0.0.5:8000/ignored",
                 "http://10.0.0.6:8000"};
  EXPECT_EQ(PickHttpEndpoint(i), "http://10.0.0.5:8000");
  i.endpoints = {"http://10.0.0.5:8443?isSecure=true"};
  EXPECT_EQ(PickHttpEndpoint(i), "https://10.0.0.5:8443");
  i.endpoints = {"https://h:443"};
  EXPECT_EQ(PickHttpEndpoint(i), "https://h:443");
  i.endpoints = {"grpc://10.0.0.5:9000"};
  EXPECT_EQ(PickHttpEndpoint(i), std::nullopt);
}

class HttpBranchClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto svc = HttpBranchService::Start();
    ASSERT_OK(svc.status());
    svc_ = std::move(svc).value();
    client_ = NewClient({});
  }

  std::unique_ptr<HttpBranchClient> NewClient(HttpBranchClientOptions o) {
    auto client = HttpBranchClient::Create(std::move(o));
    EXPECT_OK(client.status());
    return client.ok() ? std::move(client).value() : nullptr;
  }

  std::unique_ptr<HttpBranchService> svc_;
  std::unique_ptr<HttpBranchClient> client_;
};

TEST_F(HttpBranchClientTest, TheServiceSeesDtmsRequest) {
  BranchRequest r = Request(svc_->url("/api/busi/TransIn"), R"({"a":1})");
  r.headers = {{"X-Tenant", "acme"}};
  BranchResult result = client_->CallBlocking(r);
  ASSERT_EQ(result.outcome, BranchOutcome::kSuccess) << result.status;
  EXPECT_EQ(result.reply, R"({"dtm_result":"SUCCESS"})");
  auto seen = svc_->Seen("/api/busi/TransIn");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].QueryValue("gid"), "g 1");
  EXPECT_EQ(seen[0].QueryValue("trans_type"), "saga");
  EXPECT_EQ(seen[0].QueryValue("branch_id"), "01");
  EXPECT_EQ(seen[0].QueryValue("op"), "action");
  EXPECT_EQ(seen[0].QueryValue("dtm"), std::nullopt);
  EXPECT_EQ(seen[0].Header("Content-Type"), "application/json");
  EXPECT_EQ(seen[0].Header("X-Tenant"), "acme");
  EXPECT_EQ(seen[0].body, R"({"a":1})");
}

TEST_F(HttpBranchClientTest, AnswersBecomeDtmsClasses) {
  svc_->Script("/x",
               {HttpAnswer::Status(409, R"({"error":"no money"})"),
                HttpAnswer::Status(425, ""), HttpAnswer::Status(500, "db down"),
                HttpAnswer::Status(200, R"({"dtm_result":"FAILURE"})")});
  BranchResult failure = client_->CallBlocking(Request(svc_->url("/x")));
  EXPECT_EQ(failure.outcome, BranchOutcome::kFailure);
  EXPECT_THAT(failure.status, StatusIs(StatusCode::kAborted,
                                       R"(HTTP 409: {"error":"no money"})"));
  BranchResult ongoing = client_->CallBlocking(Request(svc_->url("/x")));
  EXPECT_EQ(ongoing.outcome, BranchOutcome::kOngoing);
  EXPECT_THAT(ongoing.status,
              StatusIs(StatusCode::kFailedPrecondition, "HTTP 425"));
  BranchResult error = client_->CallBlocking(Request(svc_->url("/x")));
  EXPECT_EQ(error.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(error.status,
              StatusIs(StatusCode::kUnavailable, "HTTP 500: db down"));
  EXPECT_EQ(client_->CallBlocking(Request(svc_->url("/x"))).outcome,
            BranchOutcome::kFailure);
}

TEST_F(HttpBranchClientTest, CallbackFormRunsOnTheExecutor) {
  dtx::testing::TestExecutor strand;
  std::promise<std::pair<BranchOutcome, std::thread::id>> done;
  client_->Call(Request(svc_->url("/x")), strand.executor(),
                [&](BranchResult r) {
                  done.set_value({r.outcome, std::this_thread::get_id()});
                });
  auto [outcome, thread] = done.get_future().get();
  EXPECT_EQ(outcome, BranchOutcome::kSuccess);
  EXPECT_EQ(thread, strand.id());
}

TEST_F(HttpBranchClientTest, ADeadlineFromTheRequestOrTheDefault) {
  svc_->Script("/hang", {HttpAnswer::Hang()});
  BranchRequest r = Request(svc_->url("/hang"));
  r.timeout = milliseconds(150);
  BranchResult timed_out = client_->CallBlocking(r);
  EXPECT_EQ(timed_out.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(timed_out.status,
              StatusIs(StatusCode::kDeadlineExceeded, "within 150 ms"));

  HttpBranchClientOptions o;
  o.default_timeout = milliseconds(120);
  auto quick = NewClient(o);
  EXPECT_THAT(quick->CallBlocking(Request(svc_->url("/hang"))).status,
              StatusIs(StatusCode::kDeadlineExceeded, "within 120 ms"));
}

TEST_F(HttpBranchClientTest, AnOversizedAnswerIsTransient) {
  svc_->Script("/big", {HttpAnswer::Huge(10000)});
  HttpBranchClientOptions o;
  o.http.max_response_bytes = 4096;
  auto small = NewClient(o);
  BranchResult r = small->CallBlocking(Request(svc_->url("/big")));
  EXPECT_EQ(r.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(r.status, StatusIs(StatusCode::kResourceExhausted,
                                 "larger than the limit of 4096 bytes"));
}

TEST_F(HttpBranchClientTest, ValidateUrlByProtocol) {
  EXPECT_OK(client_->ValidateUrl("http://h:1/x", kProtocolGrpc));
  EXPECT_OK(client_->ValidateUrl("https://h/x", kProtocolHttp));
  EXPECT_THAT(client_->ValidateUrl("http://h:0/x", kProtocolHttp),
              StatusIs(StatusCode::kInvalidArgument, "bad port '0'"));
  EXPECT_THAT(
      client_->ValidateUrl("localhost:9000/pkg.Svc/M", kProtocolHttp),
      StatusIs(StatusCode::kInvalidArgument,
               "a transaction of protocol http calls http://, https://"));
  EXPECT_THAT(client_->ValidateUrl("discovery://h/trans/x", kProtocolHttp),
              StatusIs(StatusCode::kFailedPrecondition,
                       "no service registry is configured"));
  EXPECT_THAT(client_->ValidateUrl("discovery://h", kProtocolHttp),
              StatusIs(StatusCode::kInvalidArgument));
  // A bad URL at call time is a permanent failure, not retried.
  BranchResult r = client_->CallBlocking(Request("http://h:0/x"));
  EXPECT_EQ(r.outcome, BranchOutcome::kFailure);
}

TEST_F(HttpBranchClientTest, DiscoveryUrlsUseTheInstancesHttpEndpoints) {
  ASSERT_OK_AND_ASSIGN(auto second, HttpBranchService::Start());
  auto resolver = std::make_shared<StaticServiceResolver>();
  resolver->SetHttp(
      "trans", {"http://127.0.0.1:" + std::to_string(svc_->port()),
                "http://127.0.0.1:" + std::to_string(second->port()) + "/"});
  HttpBranchClientOptions o;
  o.resolver = [resolver](const std::string& service) {
    return resolver->ResolveHttp(service);
  };
  auto client = NewClient(o);
  ASSERT_OK(client->ValidateUrl("discovery://127.0.0.1:2379/trans/api/TransIn",
                                kProtocolHttp));
  for (int i = 0; i < 4; ++i) {
    BranchRequest r =
        Request("discovery://127.0.0.1:2379/trans/api/TransIn", "p");
    r.protocol = std::string(kProtocolHttp);
    BranchResult result = client->CallBlocking(r);
    ASSERT_EQ(result.outcome, BranchOutcome::kSuccess) << result.status;
  }
  // Round-robin over both instances, with the URL's path.
  EXPECT_EQ(svc_->Calls("/api/TransIn"), 2u);
  EXPECT_EQ(second->Calls("/api/TransIn"), 2u);

  BranchRequest unknown = Request("discovery:///nobody/api/TransIn");
  BranchResult r = client->CallBlocking(unknown);
  EXPECT_EQ(r.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(r.status, StatusIs(StatusCode::kUnavailable, "nobody"));
}

}  // namespace
}  // namespace dtx
