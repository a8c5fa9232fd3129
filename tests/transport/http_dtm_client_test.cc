// HttpDtmClient without a coordinator: dtm's query record read back (dtx's
// and dtm's own shapes, RFC 3339 times with any offset, base64 data),
// refused addresses, and what is refused before anything is sent (binary
// payloads). Against a dtx-server: tests/server/client_api_test.cc (the
// client API) and dtm_http_api_test.cc.

#include "dtx/transport/http_dtm_client.h"

#include "dtx/clock.h"
#include "dtx/transport/dtm_http_json.h"
#include "dtx/transport/http_server.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dtx {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

// The shape of dtx-server's GET query answer (admin_http.cc).
constexpr char kDtxRecord[] = R"({
  "transaction":{"id":7,"create_time":"2026-12-02T10:11:12.345+01:00",
    "update_time":"2026-12-02T09:11:13Z","gid":"g1","trans_type":"saga",
    "status":"failed","query_prepared":"","protocol":"http",
    "finish_time":null,"rollback_time":"2026-12-02T04:11:14.5-05:00",
    "options":"{\"retry_limit\":2}","custom_data":"","next_cron_interval":10,
    "next_cron_time":null,"owner":"","ext_data":"","result":"",
    "rollback_reason":"url:x return failed","retry_count":1,
    "wait_result":false,"concurrent":false},
  "branches":[{"id":1,"create_time":"2026-12-02T09:11:12Z",
    "update_time":"2026-12-02T09:11:12Z","gid":"g1","url":"http://b/c",
    "bin_data":"cGF5AGxvYWQ=","branch_id":"01","op":"compensate",
    "status":"succeed","finish_time":"2026-12-02T09:11:14Z",
    "rollback_time":null,"attempts":2,"last_try_time":"2026-12-02T09:11:14Z",
    "last_error":""}]})";

TEST(DecodeDtmQueryJsonTest, ReadsDtxServersRecord) {
  ASSERT_OK_AND_ASSIGN(TransWithBranches q, DecodeDtmQueryJson(kDtxRecord));
  const GlobalTrans& t = q.trans;
  EXPECT_EQ(t.id, 7);
  EXPECT_EQ(t.gid, "g1");
  EXPECT_EQ(t.trans_type, TransType::kSaga);
  EXPECT_EQ(t.status, TransStatus::kFailed);
  EXPECT_EQ(t.protocol, "http");
  EXPECT_EQ(t.options, R"({"retry_limit":2})");
  EXPECT_EQ(t.rollback_reason, "url:x return failed");
  EXPECT_EQ(t.retry_count, 1);
  EXPECT_EQ(t.next_cron_interval.count(), 10);
  // One instant in three offsets.
  EXPECT_EQ(ToUnixMillis(t.create_time), 1796202672345);
  EXPECT_EQ(ToUnixMillis(t.update_time), 1796202673000);
  ASSERT_TRUE(t.rollback_time.has_value());
  EXPECT_EQ(ToUnixMillis(*t.rollback_time), 1796202674500);
  EXPECT_FALSE(t.finish_time.has_value());
  ASSERT_EQ(q.branches.size(), 1u);
  const Branch& b = q.branches[0];
  EXPECT_EQ(b.bin_data, std::string("pay\0load", 8));
  EXPECT_EQ(b.op, BranchOp::kCompensate);
  EXPECT_EQ(b.status, BranchStatus::kSucceed);
  EXPECT_EQ(b.attempts, 2);
  ASSERT_TRUE(b.last_try_time.has_value());
  EXPECT_FALSE(b.rollback_time.has_value());
}

TEST(DecodeDtmQueryJsonTest, ReadsDtmsOwnRecordWithOmittedKeysAndNanoseconds) {
  // dtm omits empty keys and writes Go's RFC3339Nano.
  ASSERT_OK_AND_ASSIGN(
      TransWithBranches q,
      DecodeDtmQueryJson(
          R"({"branches":[{"id":3,"gid":"g","url":"http://b/confirm",)"
          R"("branch_id":"01","op":"confirm","status":"prepared",)"
          R"("create_time":"2026-12-02T17:11:12.123456789+08:00"}],)"
          R"("transaction":{"id":2,"gid":"g","trans_type":"tcc",)"
          R"("status":"prepared","protocol":"http","options":"{}",)"
          R"("create_time":"2026-12-02T17:11:12.123456789+08:00",)"
          R"("next_cron_time":"2026-12-02T17:11:22+08:00"}})"));
  EXPECT_EQ(q.trans.trans_type, TransType::kTcc);
  EXPECT_EQ(ToUnixMillis(q.trans.create_time), 1796202672123);
  EXPECT_EQ(ToUnixMillis(q.trans.next_cron_time), 1796202682000);
  EXPECT_EQ(q.trans.rollback_reason, "");
  ASSERT_EQ(q.branches.size(), 1u);
  EXPECT_EQ(q.branches[0].bin_data, "");
  EXPECT_EQ(q.branches[0].op, BranchOp::kConfirm);
}

TEST(DecodeDtmQueryJsonTest, NullTransactionIsNotFoundAndJunkIsInternal) {
  EXPECT_THAT(DecodeDtmQueryJson(R"({"transaction":null,"branches":[]})"),
              StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(DecodeDtmQueryJson("<html>"), StatusIs(StatusCode::kInternal));
  EXPECT_THAT(DecodeDtmQueryJson(R"({"transaction":{"id":"7"}})"),
              StatusIs(StatusCode::kInternal, "transaction.id"));
  EXPECT_THAT(DecodeDtmQueryJson(R"({"transaction":{"status":"resting"}})"),
              StatusIs(StatusCode::kInternal, "transaction.status 'resting'"));
  EXPECT_THAT(
      DecodeDtmQueryJson(R"({"transaction":{"create_time":"yesterday"}})"),
      StatusIs(StatusCode::kInternal, "create_time 'yesterday'"));
  EXPECT_THAT(DecodeDtmQueryJson(
                  R"({"transaction":{},"branches":[{"bin_data":"!!"}]})"),
              StatusIs(StatusCode::kInternal, "base64"));
  EXPECT_THAT(DecodeDtmQueryJson(R"({"transaction":{},"branches":{}})"),
              StatusIs(StatusCode::kInternal, "branches"));
}

// A server's time past TimePoint's range (the year 2262) would overflow:
// refused as any malformed time, never converted.
TEST(DecodeDtmQueryJsonTest, TimesPastTimePointsRangeAreRefused) {
  EXPECT_THAT(DecodeDtmQueryJson(
                  R"({"transaction":{"create_time":"9999-12-31T23:59:59Z"}})"),
              StatusIs(StatusCode::kInternal, "create_time '9999-12-31"));
  ASSERT_OK_AND_ASSIGN(
      TransWithBranches q,
      DecodeDtmQueryJson(
          R"({"transaction":{"create_time":"2199-12-31T23:59:59+01:00"}})"));
  EXPECT_EQ(ToUnixMillis(q.trans.create_time), 7258114799000);
}

TEST(HttpDtmClientTest, RefusesAddressesThatAreNotHttpUrls) {
  for (const char* address :
       {"", "localhost:36789", "grpc://localhost:36790", "http://"}) {
    HttpDtmClientOptions options;
    options.address = address;
    EXPECT_THAT(HttpDtmClient::Create(options),
                StatusIs(StatusCode::kInvalidArgument, "http dtm client"))
        << address;
  }
}

TEST(HttpDtmClientTest, TakesDtmclisAddressAndAddsItsPathWhenMissing) {
  HttpDtmClientOptions options;
  options.address = "http://127.0.0.1:1/api/dtmsvr/";
  ASSERT_OK_AND_ASSIGN(auto a, HttpDtmClient::Create(options));
  EXPECT_EQ(a->address(), "http://127.0.0.1:1/api/dtmsvr");
  options.address = "http://127.0.0.1:1";
  ASSERT_OK_AND_ASSIGN(auto b, HttpDtmClient::Create(options));
  EXPECT_EQ(b->address(), "http://127.0.0.1:1/api/dtmsvr");
}

TEST(HttpDtmClientTest, BinaryPayloadsAreRefusedBeforeAnythingIsSent) {
  HttpDtmClientOptions options;
  // Nothing listens on port 1: a request that was sent would fail
  // kUnavailable, not kInvalidArgument.
  options.address = "http://127.0.0.1:1/api/dtmsvr";
  ASSERT_OK_AND_ASSIGN(auto dtm, HttpDtmClient::Create(options));
  TransRequest saga;
  saga.gid = "g";
  saga.steps = {{"http://b/a", ""}};
  saga.payloads = {std::string("\x08\x96\x01\xff", 4)};
  EXPECT_THAT(dtm->Submit(saga),
              StatusIs(StatusCode::kInvalidArgument, "payload 0 is not UTF-8"));
  EXPECT_THAT(dtm->Prepare(saga), StatusIs(StatusCode::kInvalidArgument));
  BranchRegistration branch;
  branch.gid = "g";
  branch.branch_id = "01";
  branch.payload = "\xc0\xaf";  // an overlong "/"
  EXPECT_THAT(dtm->RegisterBranch(branch),
              StatusIs(StatusCode::kInvalidArgument, "branch 01"));
  // UTF-8 text goes out (and finds no server).
  saga.payloads = {"{\"name\":\"Zoë 🚀\"}"};
  EXPECT_THAT(dtm->Submit(saga), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(dtm->NewGid(), StatusIs(StatusCode::kUnavailable));
}

TEST(HttpDtmClientTest, ItsDefaultBranchClientCallsHttpBranchesOnly) {
  HttpDtmClientOptions options;
  options.address = "http://127.0.0.1:1/api/dtmsvr";
  ASSERT_OK_AND_ASSIGN(auto dtm, HttpDtmClient::Create(options));
  BranchClient& branches = dtm->branch_client();
  EXPECT_OK(branches.ValidateUrl("http://127.0.0.1:1/api/busi/TryOut", "grpc"));
  EXPECT_THAT(branches.ValidateUrl("127.0.0.1:1/busi.Busi/TryOut", "grpc"),
              StatusIs(StatusCode::kInvalidArgument, "gRPC"));
  // An HTTP call is made (and finds nothing listening).
  BranchRequest req;
  req.url = "http://127.0.0.1:1/api/busi/TryOut";
  BranchResult r = CallAndWait(branches, req);
  EXPECT_EQ(r.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(r.status, StatusIs(StatusCode::kUnavailable));
  req.url = "127.0.0.1:1/busi.Busi/TryOut";
  r = CallAndWait(branches, req);
  EXPECT_EQ(r.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(r.status, StatusIs(StatusCode::kFailedPrecondition,
                                 "no gRPC branch client is configured"));
}

TEST(HttpDtmClientTest, SendsDtmclisRequestsAndReadsTheAnswers) {
  // A server that answers as dtm does and records what it got.
  std::mutex mu;
  std::vector<HttpRequest> got;
  HttpServerOptions server_options;
  server_options.host = "127.0.0.1";
  server_options.port = 0;
  auto server =
      HttpServer::Start(server_options, [&](HttpRequest req, HttpResponder r) {
        {
          std::lock_guard<std::mutex> lock(mu);
          got.push_back(req);
        }
        if (req.path == "/api/dtmsvr/newGid") {
          return r.Respond(HttpResponse::Json(
              200, R"({"gid":"g-new","dtm_result":"SUCCESS"})"));
        }
        if (req.path == "/api/dtmsvr/abort") {
          return r.Respond(HttpResponse::Json(
              409, R"({"dtm_result":"FAILURE","message":"cannot abort"})"));
        }
        r.Respond(HttpResponse::Json(200, R"({"dtm_result":"SUCCESS"})"));
      });
  ASSERT_OK(server);
  HttpDtmClientOptions options;
  options.address = "http://" + (*server)->address() + "/api/dtmsvr";
  ASSERT_OK_AND_ASSIGN(auto dtm, HttpDtmClient::Create(options));
  ASSERT_OK_AND_ASSIGN(std::string gid, dtm->NewGid());
  EXPECT_EQ(gid, "g-new");
  TransRequest saga;
  saga.gid = "g1";
  saga.steps = {{"http://b/a", "http://b/c"}};
  saga.payloads = {R"({"amount":30})"};
  EXPECT_OK(dtm->Submit(saga));
  TransRequest tcc;
  tcc.gid = "t1";
  tcc.trans_type = TransType::kTcc;
  EXPECT_THAT(dtm->Abort(tcc), StatusIs(StatusCode::kAborted, "cannot abort"));
  BranchRegistration b;
  b.gid = "t1";
  b.branch_id = "01";
  b.confirm_url = "http://b/confirm";
  EXPECT_OK(dtm->RegisterBranch(b));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].method, "GET");
  EXPECT_EQ(got[1].method, "POST");
  EXPECT_EQ(got[1].path, "/api/dtmsvr/submit");
  EXPECT_EQ(got[1].Header("Content-Type").value_or(""), "application/json");
  ASSERT_OK_AND_ASSIGN(TransRequest sent, DecodeDtmTransJson(got[1].body));
  EXPECT_EQ(sent.payloads, saga.payloads);
  // DtmApi's empty protocol is gRPC's.
  EXPECT_EQ(sent.protocol, "grpc");
  EXPECT_EQ(got[2].path, "/api/dtmsvr/abort");
  EXPECT_EQ(got[3].path, "/api/dtmsvr/registerBranch");
  ASSERT_OK_AND_ASSIGN(BranchRegistration reg,
                       DecodeDtmBranchJson(got[3].body));
  EXPECT_EQ(reg.confirm_url, "http://b/confirm");
  EXPECT_EQ(reg.protocol, "grpc");
}

TEST(HttpDtmClientTest, DestroyingItAnswersRequestsInFlight) {
  // A server that never answers.
  std::mutex mu;
  std::vector<HttpResponder> pending;
  HttpServerOptions server_options;
  server_options.host = "127.0.0.1";
  server_options.port = 0;
  auto server =
      HttpServer::Start(server_options, [&](HttpRequest, HttpResponder r) {
        std::lock_guard<std::mutex> lock(mu);
        pending.push_back(std::move(r));
      });
  ASSERT_OK(server);
  HttpDtmClientOptions options;
  options.address = "http://" + (*server)->address() + "/api/dtmsvr";
  ASSERT_OK_AND_ASSIGN(auto dtm, HttpDtmClient::Create(options));
  std::promise<Status> answered;
  TransRequest saga;
  saga.gid = "g";
  saga.steps = {{"http://b/a", ""}};
  saga.options.wait_result = true;
  dtm->SubmitAsync(saga, [&](Status s) { answered.set_value(s); });
  // Wait until the server holds the request, then drop the client.
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!pending.empty()) break;
    }
    std::this_thread::yield();
  }
  dtm.reset();
  auto done = answered.get_future();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(0)), std::future_status::ready)
      << "the destructor returned before the callback ran";
  EXPECT_THAT(done.get(), StatusIs(StatusCode::kUnavailable, "shutting down"));
  std::lock_guard<std::mutex> lock(mu);
  pending.clear();
}

}  // namespace
}  // namespace dtx
