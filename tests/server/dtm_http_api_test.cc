// dtm's HTTP API for transactions on a real dtx-server process (journal in a
// temp dir, ports ephemeral on 127.0.0.1), driven with raw HTTP requests
// shaped as dtmcli sends them: newGid, a saga with WaitResult (success,
// FAILURE 409, ONGOING 425), a TCC's prepare, registerBranch, submit and
// abort, what cannot be done any more (409), malformed and oversized bodies
// (400 and 413, with nothing in the journal), the routes dtx does not serve
// yet, and JSON-RPC. Branches are gRPC test services, and HTTP ones for
// dtmcli's own shape (protocol "" = http, http:// URLs) and for
// HttpDtmClient under the client API.

#include "dtx/transaction.h"
#include "dtx/transport/grpc_dtm_client.h"
#include "dtx/transport/http_dtm_client.h"

#include "branch_test_server.h"
#include "dtx_server_process.h"
#include "http_branch_service.h"
#include "http_test_client.h"
#include "status_matchers.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace dtx::testing {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class DtmHttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    busi_ = BranchTestServer::Start();
    DtxServerConfig config;
    config.journal_path = dir_.File("dtx.db");
    config.config_path = dir_.File("dtx.yml");
    config.yaml = "MaxRequestBytes: 6291456\n";  // 6 MiB
    auto server = DtxServerProcess::Start(config);
    ASSERT_OK(server);
    server_ = std::move(server).value();
  }

  void TearDown() override {
    if (server_) {
      server_->Kill(SIGTERM);
      EXPECT_EQ(server_->Wait(), 0) << "dtx-server did not exit cleanly";
    }
  }

  HttpTestResponse Request(const std::string& method, const std::string& target,
                           const std::string& body = "") {
    auto c = HttpTestConnection::Connect("127.0.0.1", server_->http_port(),
                                         std::chrono::seconds(30));
    EXPECT_OK(c);
    if (!c.ok()) return {};
    auto r = c->Roundtrip(method, target, body,
                          {{"Content-Type", "application/json"}});
    EXPECT_OK(r);
    return r.ok() ? std::move(r).value() : HttpTestResponse{};
  }
  HttpTestResponse Post(const std::string& route, const json& body) {
    return Request("POST", "/api/dtmsvr/" + route, body.dump());
  }
  static json Body(const HttpTestResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }

  json Query(const std::string& gid) {
    HttpTestResponse r = Request("GET", "/api/dtmsvr/query?gid=" + gid);
    EXPECT_EQ(r.status, 200) << r.body;
    return Body(r);
  }
  // Nothing in the journal: no transaction at all.
  void ExpectEmptyJournal() {
    HttpTestResponse r = Request("GET", "/api/dtmsvr/all");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(Body(r)["transactions"], json::array()) << r.body;
  }

  std::string Url(const std::string& method) const {
    return busi_->address() + "/busi.Busi/" + method;
  }
  // What dtmcli posts for a saga (gRPC branches: protocol "grpc").
  json Saga(const std::string& gid, bool wait) const {
    return {
        {"gid", gid},
        {"trans_type", "saga"},
        {"wait_result", wait},
        {"concurrent", false},
        {"protocol", "grpc"},
        {"steps",
         {{{"action", Url("TransOut")}, {"compensate", Url("TransOutRevert")}},
          {{"action", Url("TransIn")}, {"compensate", Url("TransInRevert")}}}},
        {"payloads", {R"({"amount":30})", R"({"amount":31})"}}};
  }
  std::vector<std::string> CallsOf(const std::string& gid) const {
    std::vector<std::string> out;
    for (const ReceivedCall& c : busi_->Calls()) {
      if (c.Get("dtm-gid") == gid) {
        out.push_back(c.method.substr(c.method.rfind('/') + 1) + " " +
                      c.Get("dtm-op") + " " + c.Get("dtm-branch_id"));
      }
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<BranchTestServer> busi_;
  std::unique_ptr<DtxServerProcess> server_;
};

TEST_F(DtmHttpApiTest, NewGidAnswersDtmsBodyWithFreshGids) {
  std::set<std::string> gids;
  for (int i = 0; i < 3; ++i) {
    HttpTestResponse r = Request("GET", "/api/dtmsvr/newGid");
    ASSERT_EQ(r.status, 200);
    json j = Body(r);
    EXPECT_EQ(j["dtm_result"], "SUCCESS");
    gids.insert(j["gid"].get<std::string>());
  }
  EXPECT_EQ(gids.size(), 3u);
}

TEST_F(DtmHttpApiTest, SagaWithWaitResultRunsItsStepsWithThePayloadText) {
  HttpTestResponse r = Post("submit", Saga("saga-ok", true));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r), json({{"dtm_result", "SUCCESS"}}));
  EXPECT_THAT(CallsOf("saga-ok"),
              ElementsAre("TransOut action 01", "TransIn action 02"));
  auto calls = busi_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  // payloads[i] is the JSON text, sent as those bytes.
  EXPECT_EQ(calls[0].payload, R"({"amount":30})");
  EXPECT_EQ(calls[1].payload, R"({"amount":31})");
  json t = Query("saga-ok")["transaction"];
  EXPECT_EQ(t["status"], "succeed");
  EXPECT_EQ(t["protocol"], "grpc");
  EXPECT_TRUE(t["wait_result"].get<bool>());
}

TEST_F(DtmHttpApiTest, SagaFailureIs409AndOngoingIs425) {
  busi_->SetHandler("/busi.Busi/TransIn", [](const ReceivedCall& c) {
    // gRPC ABORTED is a FAILURE, FAILED_PRECONDITION an ONGOING.
    return c.Get("dtm-gid") == "saga-fail"
               ? TestReply::Status(10, "insufficient balance")
               : TestReply::Status(9, "not yet");
  });
  HttpTestResponse failed = Post("submit", Saga("saga-fail", true));
  EXPECT_EQ(failed.status, 409) << failed.body;
  EXPECT_EQ(Body(failed)["dtm_result"], "FAILURE");
  EXPECT_THAT(Body(failed)["message"].get<std::string>(),
              HasSubstr("insufficient balance"));
  EXPECT_THAT(CallsOf("saga-fail"),
              ElementsAre("TransOut action 01", "TransIn action 02",
                          "TransInRevert compensate 02",
                          "TransOutRevert compensate 01"));

  HttpTestResponse ongoing = Post("submit", Saga("saga-ongoing", true));
  EXPECT_EQ(ongoing.status, 425) << ongoing.body;
  EXPECT_EQ(Body(ongoing)["dtm_result"], "ONGOING");
  EXPECT_EQ(Query("saga-ongoing")["transaction"]["status"], "submitted");
}

// A WaitResult submit holds its answer, not the server's io thread (one,
// by default): other requests are served while its branch is in progress.
TEST_F(DtmHttpApiTest, AWaitingSubmitDoesNotHoldUpOtherRequests) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  busi_->SetHandler("/busi.Busi/TransOut", [released](const ReceivedCall&) {
    released.wait();
    return TestReply::Ok();
  });
  std::future<HttpTestResponse> submit = std::async(std::launch::async, [this] {
    return Post("submit", Saga("held", true));
  });
  while (busi_->CallCount("/busi.Busi/TransOut") == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // The saga is in its first step and its submit unanswered.
  EXPECT_EQ(Request("GET", "/api/dtmsvr/newGid").status, 200);
  EXPECT_EQ(Post("submit", Saga("other", false)).status, 200);
  EXPECT_EQ(Query("held")["transaction"]["status"], "submitted");
  release.set_value();
  HttpTestResponse r = submit.get();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Query("held")["transaction"]["status"], "succeed");
}

TEST_F(DtmHttpApiTest, SagaWithoutWaitResultIsAnsweredOnceDurable) {
  ASSERT_EQ(Post("submit", Saga("saga-async", false)).status, 200);
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (Query("saga-async")["transaction"]["status"] != "succeed" &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Query("saga-async")["transaction"]["status"], "succeed");
}

// dtmcli's TCC bodies; registerBranch bodies below carry dtx's "protocol"
// too (dtmcli's have none, which means "http"), as their URLs are gRPC's.
json Tcc(const std::string& gid, const std::string& protocol = "grpc") {
  return {{"gid", gid},
          {"trans_type", "tcc"},
          {"concurrent", false},
          {"protocol", protocol}};
}

TEST_F(DtmHttpApiTest, TccPrepareRegisterSubmitConfirmsInReverse) {
  ASSERT_EQ(Post("prepare", Tcc("tcc-ok")).status, 200);
  // Prepared again: fine while prepared.
  ASSERT_EQ(Post("prepare", Tcc("tcc-ok")).status, 200);
  for (const char* id : {"01", "02"}) {
    HttpTestResponse r =
        Post(id[1] == '1' ? "registerBranch" : "registerTccBranch",
             {{"gid", "tcc-ok"},
              {"trans_type", "tcc"},
              {"protocol", "grpc"},
              {"branch_id", id},
              {"op", "try"},
              {"data", std::string(R"({"branch":")") + id + "\"}"},
              {"confirm", Url("Confirm")},
              {"cancel", Url("Cancel")},
              {"protocol", "grpc"}});
    ASSERT_EQ(r.status, 200) << r.body;
  }
  json submit = Tcc("tcc-ok");
  submit["wait_result"] = true;
  HttpTestResponse r = Post("submit", submit);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(CallsOf("tcc-ok"),
              ElementsAre("Confirm confirm 02", "Confirm confirm 01"));
  // The registered data is what confirm gets.
  EXPECT_EQ(busi_->Calls()[0].payload, R"({"branch":"02"})");
  json q = Query("tcc-ok");
  EXPECT_EQ(q["transaction"]["status"], "succeed");
  EXPECT_EQ(q["branches"].size(), 4u);

  // Finished: nothing more can be registered, prepared or aborted.
  HttpTestResponse late = Post("registerBranch", {{"gid", "tcc-ok"},
                                                  {"trans_type", "tcc"},
                                                  {"protocol", "grpc"},
                                                  {"branch_id", "03"},
                                                  {"confirm", Url("Confirm")},
                                                  {"cancel", Url("Cancel")},
                                                  {"protocol", "grpc"}});
  EXPECT_EQ(late.status, 409) << late.body;
  EXPECT_THAT(late.body, HasSubstr("status: prepared"));
  // Went past them: not FAILURE (409, "rolled back") but 425 naming the
  // status; the Submit again is a retry, 200 (docs/semantics.md).
  HttpTestResponse prepare = Post("prepare", Tcc("tcc-ok"));
  EXPECT_EQ(prepare.status, 425) << prepare.body;
  EXPECT_THAT(prepare.body, HasSubstr("current status 'succeed'"));
  EXPECT_EQ(Post("abort", Tcc("tcc-ok")).status, 425);
  EXPECT_EQ(Post("submit", Tcc("tcc-ok")).status, 200);
  HttpTestResponse saga = Post("submit", Saga("tcc-ok", false));
  EXPECT_EQ(saga.status, 422) << saga.body;
  EXPECT_THAT(saga.body, HasSubstr("gid tcc-ok exists with trans type 'tcc'"));
  EXPECT_EQ(Query("tcc-ok")["branches"].size(), 4u);
}

TEST_F(DtmHttpApiTest, TccAbortCancelsWithTheRollbackReason) {
  ASSERT_EQ(Post("prepare", Tcc("tcc-abort")).status, 200);
  ASSERT_EQ(Post("registerBranch", {{"gid", "tcc-abort"},
                                    {"trans_type", "tcc"},
                                    {"protocol", "grpc"},
                                    {"branch_id", "01"},
                                    {"data", "{}"},
                                    {"confirm", Url("Confirm")},
                                    {"cancel", Url("Cancel")},
                                    {"protocol", "grpc"}})
                .status,
            200);
  // The same branch again: not idempotent, as in dtm.
  HttpTestResponse twice = Post("registerBranch", {{"gid", "tcc-abort"},
                                                   {"trans_type", "tcc"},
                                                   {"protocol", "grpc"},
                                                   {"branch_id", "01"},
                                                   {"confirm", Url("Confirm")},
                                                   {"cancel", Url("Cancel")},
                                                   {"protocol", "grpc"}});
  EXPECT_EQ(twice.status, 422) << twice.body;
  EXPECT_THAT(twice.body, HasSubstr("already exists"));
  json abort = Tcc("tcc-abort");
  abort["rollback_reason"] = "try of 02 failed";
  abort["wait_result"] = true;
  HttpTestResponse r = Post("abort", abort);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(CallsOf("tcc-abort"), ElementsAre("Cancel cancel 01"));
  json t = Query("tcc-abort")["transaction"];
  EXPECT_EQ(t["status"], "failed");
  EXPECT_EQ(t["rollback_reason"], "try of 02 failed");
  // Submit after the abort is dtm's FAILURE (it rolled back); the Abort
  // again is a retry.
  EXPECT_EQ(Post("submit", Tcc("tcc-abort")).status, 409);
  EXPECT_EQ(Post("abort", Tcc("tcc-abort")).status, 200);
}

TEST_F(DtmHttpApiTest, AnEmptyProtocolIsHttpAsInDtm) {
  // Empty confirm and cancel URLs: done without a call (dtm's rule).
  ASSERT_EQ(Post("prepare", Tcc("tcc-http", "")).status, 200);
  EXPECT_EQ(Query("tcc-http")["transaction"]["protocol"], "http");
  HttpTestResponse rpc = Post("prepare", Tcc("tcc-rpc", "json-rpc"));
  EXPECT_EQ(rpc.status, 400);
  EXPECT_THAT(rpc.body, HasSubstr("json-rpc"));
  EXPECT_TRUE(Query("tcc-rpc")["transaction"].is_null());
}

TEST_F(DtmHttpApiTest, MalformedBodiesAre400AndWriteNothing) {
  struct Case {
    std::string route;
    std::string body;
    const char* message;
  };
  json wrong_type = Saga("bad-1", false);
  wrong_type["timeout_to_fail"] = "60";
  json object_payload = Saga("bad-2", false);
  object_payload["payloads"] = json::array({{{"amount", 30}}, "{}"});
  json misaligned = Saga("bad-3", false);
  misaligned["payloads"] = json::array({"{}"});
  // A msg step has no compensate (the coordinator's check).
  json msg_compensate = Saga("bad-4", false);
  msg_compensate["trans_type"] = "msg";
  json bad_gid = Saga("bad gid\n", false);
  const Case cases[] = {
      {"submit", "", "not valid JSON"},
      {"submit", "{\"gid\":\"x\",", "not valid JSON"},
      {"submit", "[]", "must be a JSON object"},
      {"submit", wrong_type.dump(), "timeout_to_fail must be an integer"},
      {"submit", object_payload.dump(), "payloads[0] must be a string"},
      {"submit", misaligned.dump(), "steps has 2 entries but payloads has 1"},
      {"submit", msg_compensate.dump(), "steps have no compensate"},
      {"submit", bad_gid.dump(), "gid"},
      {"prepare",
       R"({"gid":"bad-5","trans_type":"tcc","branch_headers":{"a":1}})",
       "branch_headers.a must be a string"},
      {"prepare", R"({"gid":"bad-6","trans_type":"3pc"})",
       "unknown trans_type"},
      {"abort", R"({"trans_type":"tcc"})", "gid is missing"},
      {"registerBranch", R"({"gid":"bad-7","trans_type":"tcc","branch_id":1})",
       "branch_id must be a string"},
  };
  for (const Case& c : cases) {
    HttpTestResponse r = Request("POST", "/api/dtmsvr/" + c.route, c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_THAT(Body(r)["message"].get<std::string>(), HasSubstr(c.message))
        << c.body;
  }
  ExpectEmptyJournal();
  EXPECT_TRUE(busi_->Calls().empty());
}

TEST_F(DtmHttpApiTest, OversizedPayloadsAre413AndWriteNothing) {
  // Over the 4 MiB payload limit, under MaxRequestBytes (6 MiB).
  json big = Saga("big-payload", false);
  big["payloads"][0] = std::string(4 * 1024 * 1024 + 1, 'x');
  HttpTestResponse r = Post("submit", big);
  EXPECT_EQ(r.status, 413) << r.body.substr(0, 300);
  EXPECT_THAT(r.body, HasSubstr("payload"));
  // A body over MaxRequestBytes is refused before it is read.
  json huge = Saga("huge-body", false);
  huge["custom_data"] = std::string(7 * 1024 * 1024, 'y');
  EXPECT_EQ(Post("submit", huge).status, 413);
  ExpectEmptyJournal();
}

TEST_F(DtmHttpApiTest, UnknownGidsAndUnsupportedModesSayWhy) {
  HttpTestResponse unknown = Post("abort", Tcc("nobody"));
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  HttpTestResponse xa = Post("registerXaBranch", {{"gid", "xa-1"},
                                                  {"trans_type", "xa"},
                                                  {"branch_id", "01"},
                                                  {"url", Url("Xa")}});
  EXPECT_EQ(xa.status, 501) << xa.body;
  EXPECT_THAT(xa.body, HasSubstr("xa"));
  HttpTestResponse wf =
      Post("prepareWorkflow", {{"gid", "wf-1"}, {"trans_type", "workflow"}});
  EXPECT_EQ(wf.status, 400) << wf.body;  // no workflow name
  EXPECT_THAT(wf.body, HasSubstr("name"));
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{
           {"GET", "/api/dtmsvr/subscribe?topic=t&url=u"},
           {"GET", "/api/dtmsvr/unsubscribe?topic=t&url=u"},
           {"DELETE", "/api/dtmsvr/topic/t"},
           {"GET", "/api/dtmsvr/scanKV?cat=topics"},
           {"GET", "/api/dtmsvr/queryKV?cat=topics&key=t"},
           {"GET", "/api/dtmsvr/resetCronTime"}}) {
    HttpTestResponse r = Request(method, path);
    EXPECT_EQ(r.status, 501) << path;
    EXPECT_THAT(Body(r)["message"].get<std::string>(),
                HasSubstr("does not support"));
  }
  ExpectEmptyJournal();
}

// dtm's workflow requests over HTTP, as dtmcli's workflow package sends
// them: prepareWorkflow, registerBranch with op and status, submit with
// req_extra; prepareWorkflow answers the record with bin_data in base64.
TEST_F(DtmHttpApiTest, AWorkflowIsRecordedAndEndedOverHttp) {
  const json prepare = {
      {"gid", "wf-http"},
      {"trans_type", "workflow"},
      {"custom_data", R"({"data":"AQI=","name":"transfer"})"},
      {"query_prepared", "http://127.0.0.1:1/workflow/resume"}};
  HttpTestResponse first = Post("prepareWorkflow", prepare);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(Body(first)["transaction"]["status"], "prepared");
  EXPECT_TRUE(Body(first)["progresses"].empty());
  HttpTestResponse step = Post("registerBranch", {{"gid", "wf-http"},
                                                  {"trans_type", "workflow"},
                                                  {"branch_id", "01"},
                                                  {"op", "action"},
                                                  {"status", "succeed"},
                                                  {"data", "out-ok"}});
  ASSERT_EQ(step.status, 200) << step.body;
  HttpTestResponse again = Post("prepareWorkflow", prepare);
  ASSERT_EQ(again.status, 200) << again.body;
  const json p = Body(again)["progresses"];
  ASSERT_EQ(p.size(), 1u) << again.body;
  EXPECT_EQ(p[0]["branch_id"], "01");
  EXPECT_EQ(p[0]["op"], "action");
  EXPECT_EQ(p[0]["status"], "succeed");
  EXPECT_EQ(p[0]["bin_data"], "b3V0LW9r");  // base64 of "out-ok"
  EXPECT_EQ(Post("registerBranch", {{"gid", "wf-http"},
                                    {"trans_type", "workflow"},
                                    {"branch_id", "02"},
                                    {"op", "confirm"},
                                    {"status", "succeed"}})
                .status,
            400);
  const json submit = {{"gid", "wf-http"},
                       {"trans_type", "workflow"},
                       {"req_extra",
                        {{"status", "succeed"},
                         {"result", "ZG9uZQ=="},
                         {"rollback_reason", ""}}}};
  HttpTestResponse done = Post("submit", submit);
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(Post("submit", submit).status, 200);  // a retry
  json q = Query("wf-http");
  EXPECT_EQ(q["transaction"]["status"], "succeed") << q.dump();
  EXPECT_EQ(q["transaction"]["result"], "ZG9uZQ==") << q.dump();
}

TEST_F(DtmHttpApiTest, JsonRpcRunsATccAndAnswersDtmsCodes) {
  auto rpc = [this](const std::string& method, const json& params) {
    HttpTestResponse r = Request("POST", "/api/json-rpc",
                                 json{{"jsonrpc", "2.0"},
                                      {"id", "c1"},
                                      {"method", method},
                                      {"params", params}}
                                     .dump());
    EXPECT_EQ(r.status, 200);
    return Body(r);
  };
  json gid = rpc("newGid", nullptr);
  EXPECT_TRUE(gid["error"].is_null());
  EXPECT_FALSE(gid["result"]["gid"].get<std::string>().empty());
  EXPECT_EQ(gid["id"], "c1");
  EXPECT_TRUE(rpc("prepare", Tcc("rpc-tcc"))["error"].is_null());
  EXPECT_TRUE(rpc("registerBranch", {{"gid", "rpc-tcc"},
                                     {"trans_type", "tcc"},
                                     {"protocol", "grpc"},
                                     {"branch_id", "01"},
                                     {"confirm", Url("Confirm")},
                                     {"cancel", Url("Cancel")},
                                     {"protocol", "grpc"}})["error"]
                  .is_null());
  json submit = Tcc("rpc-tcc");
  submit["wait_result"] = true;
  EXPECT_TRUE(rpc("submit", submit)["error"].is_null());
  EXPECT_THAT(CallsOf("rpc-tcc"), ElementsAre("Confirm confirm 01"));
  // Prepare of a submitted tcc: refused, not dtm's FAILURE (-32901).
  EXPECT_EQ(rpc("prepare", Tcc("rpc-tcc"))["error"]["code"], -32902);
  EXPECT_EQ(rpc("submit", {{"gid", 1}})["error"]["code"], -32602);
  EXPECT_EQ(rpc("query", nullptr)["error"]["code"], -32601);
}

// HttpDtmClient's Query reads dtm's JSON record into what the admin
// service (over gRPC, in milliseconds) has: every field, times included.
TEST_F(DtmHttpApiTest, HttpDtmClientQueryReadsWhatTheAdminServiceShows) {
  busi_->SetHandler("/busi.Busi/TransIn", [](const ReceivedCall&) {
    return TestReply::Status(10, "no");
  });
  ASSERT_EQ(Post("submit", Saga("q-http", true)).status, 409);
  HttpDtmClientOptions http_options;
  http_options.address = "http://" + server_->http_address() + "/api/dtmsvr";
  ASSERT_OK_AND_ASSIGN(auto http, HttpDtmClient::Create(http_options));
  GrpcDtmClientOptions grpc_options;
  grpc_options.address = server_->address();
  ASSERT_OK_AND_ASSIGN(auto grpc, GrpcDtmClient::Create(grpc_options));
  ASSERT_OK_AND_ASSIGN(TransWithBranches a, http->Query("q-http"));
  ASSERT_OK_AND_ASSIGN(TransWithBranches b, grpc->Query("q-http"));
  const GlobalTrans& x = a.trans;
  const GlobalTrans& y = b.trans;
  EXPECT_EQ(x.id, y.id);
  EXPECT_EQ(x.gid, y.gid);
  EXPECT_EQ(x.trans_type, y.trans_type);
  EXPECT_EQ(x.status, TransStatus::kFailed);
  EXPECT_EQ(x.status, y.status);
  EXPECT_EQ(x.protocol, y.protocol);
  EXPECT_EQ(x.options, y.options);
  EXPECT_EQ(x.custom_data, y.custom_data);
  EXPECT_EQ(x.rollback_reason, y.rollback_reason);
  EXPECT_EQ(x.create_time, y.create_time);
  EXPECT_EQ(x.update_time, y.update_time);
  EXPECT_EQ(x.finish_time, y.finish_time);
  EXPECT_EQ(x.rollback_time, y.rollback_time);
  EXPECT_EQ(x.next_cron_interval, y.next_cron_interval);
  EXPECT_EQ(x.retry_count, y.retry_count);
  ASSERT_EQ(a.branches.size(), 4u);
  ASSERT_EQ(a.branches.size(), b.branches.size());
  for (std::size_t i = 0; i < a.branches.size(); ++i) {
    const Branch& p = a.branches[i];
    const Branch& q = b.branches[i];
    EXPECT_EQ(p.id, q.id) << i;
    EXPECT_EQ(p.url, q.url) << i;
    EXPECT_EQ(p.bin_data, q.bin_data) << i;
    EXPECT_EQ(p.branch_id, q.branch_id) << i;
    EXPECT_EQ(p.op, q.op) << i;
    EXPECT_EQ(p.status, q.status) << i;
    EXPECT_EQ(p.create_time, q.create_time) << i;
    EXPECT_EQ(p.update_time, q.update_time) << i;
    EXPECT_EQ(p.finish_time, q.finish_time) << i;
    EXPECT_EQ(p.attempts, q.attempts) << i;
    EXPECT_EQ(p.last_try_time, q.last_try_time) << i;
    EXPECT_EQ(p.last_error, q.last_error) << i;
  }
  EXPECT_EQ(a.branches[1].bin_data, R"({"amount":30})");
  EXPECT_THAT(http->Query("nobody"), StatusIs(StatusCode::kNotFound));
}

// What a dtmcli application does over HTTP end to end: protocol "" (http),
// http:// branches, payloads as JSON text.
TEST_F(DtmHttpApiTest, DtmclisSagaAndTccWithHttpBranches) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  svc->Script("/TransInFail",
              {HttpAnswer::Status(409, R"({"dtm_result":"FAILURE"})")});
  auto saga = [&](const std::string& gid, const std::string& in) {
    return json{{"gid", gid},
                {"trans_type", "saga"},
                {"wait_result", true},
                {"concurrent", false},
                {"protocol", ""},
                {"steps",
                 {{{"action", svc->url("/TransOut")},
                   {"compensate", svc->url("/TransOutRevert")}},
                  {{"action", svc->url(in)},
                   {"compensate", svc->url("/TransInRevert")}}}},
                {"payloads", {R"({"amount":30})", R"({"amount":30})"}}};
  };
  HttpTestResponse ok = Post("submit", saga("h-saga", "/TransIn"));
  ASSERT_EQ(ok.status, 200) << ok.body;
  std::vector<HttpRequest> out = svc->Seen("/TransOut");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].method, "POST");
  EXPECT_EQ(out[0].QueryValue("gid").value_or(""), "h-saga");
  EXPECT_EQ(out[0].QueryValue("trans_type").value_or(""), "saga");
  EXPECT_EQ(out[0].QueryValue("branch_id").value_or(""), "01");
  EXPECT_EQ(out[0].QueryValue("op").value_or(""), "action");
  EXPECT_EQ(out[0].body, R"({"amount":30})");
  EXPECT_EQ(Query("h-saga")["transaction"]["protocol"], "http");

  HttpTestResponse failed = Post("submit", saga("h-fail", "/TransInFail"));
  EXPECT_EQ(failed.status, 409) << failed.body;
  EXPECT_EQ(svc->Calls("/TransInRevert"), 1u);
  EXPECT_EQ(svc->Calls("/TransOutRevert"), 1u);

  // dtmcli's TCC: no protocol anywhere, http:// confirm and cancel.
  ASSERT_EQ(Post("prepare", Tcc("h-tcc", "")).status, 200);
  HttpTestResponse reg =
      Post("registerBranch", {{"gid", "h-tcc"},
                              {"trans_type", "tcc"},
                              {"branch_id", "01"},
                              {"data", R"({"amount":7})"},
                              {"confirm", svc->url("/Confirm")},
                              {"cancel", svc->url("/Cancel")}});
  ASSERT_EQ(reg.status, 200) << reg.body;
  json submit = Tcc("h-tcc", "");
  submit["wait_result"] = true;
  ASSERT_EQ(Post("submit", submit).status, 200);
  std::vector<HttpRequest> confirm = svc->Seen("/Confirm");
  ASSERT_EQ(confirm.size(), 1u);
  EXPECT_EQ(confirm[0].QueryValue("op").value_or(""), "confirm");
  EXPECT_EQ(confirm[0].body, R"({"amount":7})");
  EXPECT_EQ(svc->Calls("/Cancel"), 0u);
}

// The client API over HttpDtmClient with HTTP branches: the saga's calls
// are the server's, the TCC's try calls the client's own (its default
// branch client, HTTP).
TEST_F(DtmHttpApiTest, HttpDtmClientRunsTheClientApiOnHttpBranches) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  HttpDtmClientOptions options;
  options.address = "http://" + server_->http_address() + "/api/dtmsvr";
  ASSERT_OK_AND_ASSIGN(auto dtm, HttpDtmClient::Create(options));
  ASSERT_OK_AND_ASSIGN(std::string gid, dtm->NewGid());
  ASSERT_OK(dtx::Saga(*dtm, gid)
                .Add(svc->url("/TransOut"), svc->url("/TransOutRevert"),
                     R"({"amount":30})")
                .WaitResult(true)
                .Submit());
  ASSERT_EQ(svc->Calls("/TransOut"), 1u);
  EXPECT_EQ(svc->Seen("/TransOut")[0].body, R"({"amount":30})");

  svc->Script("/TryIn", {HttpAnswer::Status(409, "FAILURE")});
  ASSERT_OK_AND_ASSIGN(std::string tcc_ok, dtm->NewGid());
  TransOptions wait;
  wait.wait_result = true;
  ASSERT_OK(TccGlobalTransaction(*dtm, tcc_ok, wait, [&](dtx::Tcc& tcc) {
    return tcc.CallBranch(R"({"amount":5})", svc->url("/TryOut"),
                          svc->url("/ConfirmOut"), svc->url("/CancelOut"));
  }));
  std::vector<HttpRequest> tried = svc->Seen("/TryOut");
  ASSERT_EQ(tried.size(), 1u);
  EXPECT_EQ(tried[0].QueryValue("op").value_or(""), "try");
  EXPECT_EQ(tried[0].QueryValue("dtm").value_or(""), dtm->address());
  EXPECT_EQ(tried[0].body, R"({"amount":5})");
  ASSERT_EQ(svc->Calls("/ConfirmOut"), 1u);
  EXPECT_EQ(svc->Seen("/ConfirmOut")[0].body, R"({"amount":5})");

  // A try that answers FAILURE rolls the TCC back.
  ASSERT_OK_AND_ASSIGN(std::string tcc_fail, dtm->NewGid());
  Status s = TccGlobalTransaction(*dtm, tcc_fail, wait, [&](dtx::Tcc& tcc) {
    DTX_RETURN_IF_ERROR(tcc.CallBranch("{}", svc->url("/TryOut"),
                                       svc->url("/ConfirmOut"),
                                       svc->url("/CancelOut")));
    return tcc.CallBranch("{}", svc->url("/TryIn"), svc->url("/ConfirmIn"),
                          svc->url("/CancelIn"));
  });
  EXPECT_THAT(s, StatusIs(StatusCode::kAborted));
  EXPECT_TRUE(svc->WaitForCalls("/CancelOut", 1));
  EXPECT_TRUE(svc->WaitForCalls("/CancelIn", 1));
  EXPECT_EQ(svc->Calls("/ConfirmIn"), 0u);
  ASSERT_OK_AND_ASSIGN(TransWithBranches t, dtm->Query(tcc_fail));
  EXPECT_EQ(t.trans.protocol, "grpc");  // DtmApi's empty protocol
}

}  // namespace
}  // namespace dtx::testing
