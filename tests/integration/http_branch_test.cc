// HTTP branches through the embedded coordinator (OpenEmbeddedCoordinator:
// a real SQLite journal, the real gRPC and HTTP clients), against real
// services on 127.0.0.1: HttpBranchService (HTTP, recording what it saw) and
// BranchTestServer (gRPC). A FakeClock makes every retry decision.

#include "dtx/clock.h"
#include "dtx/embedded.h"
#include "dtx/transaction.h"
#include "dtx/transport/service_resolver.h"
#include "dtx/workflow.h"

#include "branch_test_server.h"
#include "http_branch_service.h"
#include "status_matchers.h"
#include "temp_dir.h"
#include "test_certs.h"
#include "tls_test_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dtx::testing {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
constexpr auto P = BranchStatus::kPrepared;
constexpr auto S = BranchStatus::kSucceed;
constexpr auto F = BranchStatus::kFailed;

class HttpBranchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto svc = HttpBranchService::Start();
    ASSERT_OK(svc.status());
    svc_ = std::move(svc).value();
    Open();
  }
  void TearDown() override {
    if (dtm_) dtm_->Shutdown();
  }

  void Open() {
    if (dtm_) dtm_->Shutdown();
    dtm_.reset();
    Options options;
    options.cron_interval = seconds(3600);  // the test runs due work
    embedded_.journal_path = dir_.File("dtx.db");
    embedded_.durable_on_power_loss = false;
    embedded_.clock = &clock_;
    if (std::getenv("DTX_TEST_LOG") != nullptr) {
      embedded_.logger = NewStderrLogger(LogLevel::kDebug);
    }
    auto dtm = OpenEmbeddedCoordinator(options, embedded_);
    ASSERT_OK(dtm.status());
    dtm_ = std::move(dtm).value();
  }

  std::string Url(const std::string& path) const { return svc_->url(path); }

  Saga TwoSteps(const std::string& gid) {
    return std::move(Saga(*dtm_, gid)
                         .Add(Url("/api/TransOut"), Url("/api/TransOutRevert"),
                              R"({"amount":30})")
                         .Add(Url("/api/TransIn"), Url("/api/TransInRevert"),
                              R"({"amount":30})"));
  }

  TransWithBranches Get(const std::string& gid) {
    auto t = dtm_->Query(gid);
    EXPECT_OK(t.status());
    return t.ok() ? *t : TransWithBranches{};
  }
  std::vector<BranchStatus> BranchStatuses(const std::string& gid) {
    std::vector<BranchStatus> out;
    for (const Branch& b : Get(gid).branches) out.push_back(b.status);
    return out;
  }
  // The paths the service saw, in order.
  std::vector<std::string> Paths() {
    std::vector<std::string> out;
    for (const HttpRequest& r : svc_->Seen()) out.push_back(r.path);
    return out;
  }
  void Later(seconds d) {
    clock_.Advance(d);
    ASSERT_OK(dtm_->RunDue());
    dtm_->WaitIdle();
  }

  TempDir dir_;
  FakeClock clock_;
  EmbeddedOptions embedded_;
  std::unique_ptr<HttpBranchService> svc_;
  std::unique_ptr<Coordinator> dtm_;
};

TEST_F(HttpBranchTest, SagaSucceedsCallingEachActionAsDtmDoes) {
  ASSERT_OK(TwoSteps("h-saga").WaitResult(true).Submit());
  EXPECT_EQ(Get("h-saga").trans.status, TransStatus::kSucceed);
  EXPECT_THAT(BranchStatuses("h-saga"), ElementsAre(P, S, P, S));
  auto seen = svc_->Seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target,
            "/api/TransOut?branch_id=01&gid=h-saga&op=action&trans_type=saga");
  EXPECT_EQ(seen[0].Header("Content-Type"), "application/json");
  EXPECT_EQ(seen[0].body, R"({"amount":30})");
  EXPECT_EQ(seen[1].path, "/api/TransIn");
  EXPECT_EQ(seen[1].QueryValue("branch_id"), "02");
}

TEST_F(HttpBranchTest, SagaRollsBackOnA409) {
  svc_->Script("/api/TransIn",
               {HttpAnswer::Status(409, R"({"error":"no money"})")});
  EXPECT_THAT(TwoSteps("h-fail").WaitResult(true).Submit(),
              StatusIs(StatusCode::kAborted, "HTTP 409"));
  const TransWithBranches t = Get("h-fail");
  EXPECT_EQ(t.trans.status, TransStatus::kFailed);
  EXPECT_THAT(t.trans.rollback_reason, HasSubstr("no money"));
  EXPECT_THAT(BranchStatuses("h-fail"), ElementsAre(S, S, S, F));
  EXPECT_THAT(Paths(),
              ElementsAre("/api/TransOut", "/api/TransIn", "/api/TransInRevert",
                          "/api/TransOutRevert"));
  EXPECT_EQ(svc_->Seen("/api/TransInRevert")[0].QueryValue("op"), "compensate");
}

TEST_F(HttpBranchTest, SagaWaitsOnA425AndRetriesA500) {
  svc_->Script("/api/TransOut",
               {HttpAnswer::Status(500, "db down"), HttpAnswer::Ok()});
  svc_->Script("/api/TransIn", {HttpAnswer::Status(425), HttpAnswer::Ok()});
  ASSERT_OK(TwoSteps("h-retry").Submit());
  dtm_->WaitIdle();
  TransWithBranches t = Get("h-retry");
  EXPECT_EQ(t.trans.status, TransStatus::kSubmitted);
  EXPECT_THAT(t.branches[1].last_error, HasSubstr("HTTP 500: db down"));
  Later(seconds(60));
  Later(seconds(60));
  EXPECT_EQ(Get("h-retry").trans.status, TransStatus::kSucceed);
  EXPECT_EQ(svc_->Calls("/api/TransOut"), 2u);
  EXPECT_EQ(svc_->Calls("/api/TransIn"), 2u);
}

TEST_F(HttpBranchTest, TccConfirmsOverHttp) {
  TransOptions o;
  o.wait_result = true;
  ASSERT_OK(TccGlobalTransaction(*dtm_, "h-tcc", o, [&](Tcc& tcc) {
    DTX_RETURN_IF_ERROR(tcc.CallBranch("out", Url("/api/TransOutTry"),
                                       Url("/api/TransOutConfirm"),
                                       Url("/api/TransOutCancel")));
    return tcc.CallBranch("in", Url("/api/TransInTry"),
                          Url("/api/TransInConfirm"),
                          Url("/api/TransInCancel"));
  }));
  EXPECT_EQ(Get("h-tcc").trans.status, TransStatus::kSucceed);
  EXPECT_THAT(Paths(),
              ElementsAre("/api/TransOutTry", "/api/TransInTry",
                          "/api/TransInConfirm", "/api/TransOutConfirm"));
  auto seen = svc_->Seen();
  EXPECT_EQ(seen[0].QueryValue("op"), "try");
  EXPECT_EQ(seen[2].QueryValue("op"), "confirm");
  EXPECT_EQ(seen[2].QueryValue("branch_id"), "02");
  EXPECT_EQ(seen[2].body, "in");  // the try's payload again
}

TEST_F(HttpBranchTest, TccCancelsOverHttpWhenATryFails) {
  svc_->Script("/api/TransInTry", {HttpAnswer::Status(409, "FAILURE")});
  TransOptions o;
  o.wait_result = true;
  Status s = TccGlobalTransaction(*dtm_, "h-tcc-cancel", o, [&](Tcc& tcc) {
    DTX_RETURN_IF_ERROR(tcc.CallBranch("out", Url("/api/TransOutTry"),
                                       Url("/api/TransOutConfirm"),
                                       Url("/api/TransOutCancel")));
    return tcc.CallBranch("in", Url("/api/TransInTry"),
                          Url("/api/TransInConfirm"),
                          Url("/api/TransInCancel"));
  });
  EXPECT_THAT(s, StatusIs(StatusCode::kAborted));
  dtm_->WaitIdle();
  EXPECT_EQ(Get("h-tcc-cancel").trans.status, TransStatus::kFailed);
  EXPECT_THAT(Paths(),
              ElementsAre("/api/TransOutTry", "/api/TransInTry",
                          "/api/TransInCancel", "/api/TransOutCancel"));
  EXPECT_EQ(svc_->Seen("/api/TransOutCancel")[0].QueryValue("op"), "cancel");
}

TEST_F(HttpBranchTest, MsgChecksBackWithAnHttpGet) {
  Msg msg(*dtm_, "h-msg");
  msg.Add(Url("/api/TransOut"), "out").Add(Url("/api/TransIn"), "in");
  ASSERT_OK(msg.Prepare(Url("/api/QueryPrepared")));
  Later(seconds(35));
  EXPECT_EQ(Get("h-msg").trans.status, TransStatus::kSucceed);
  auto checks = svc_->Seen("/api/QueryPrepared");
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].method, "GET");
  EXPECT_EQ(checks[0].QueryValue("op"), "msg");
  EXPECT_EQ(checks[0].QueryValue("branch_id"), "00");
  EXPECT_EQ(checks[0].QueryValue("trans_type"), "msg");
  EXPECT_EQ(checks[0].body, "");
  EXPECT_THAT(Paths(), ElementsAre("/api/QueryPrepared", "/api/TransOut",
                                   "/api/TransIn"));
}

TEST_F(HttpBranchTest, MsgCheckBackFailureFailsIt) {
  svc_->Script("/api/QueryPrepared",
               {HttpAnswer::Status(200, R"({"dtm_result":"FAILURE"})")});
  Msg msg(*dtm_, "h-msg-fail");
  msg.Add(Url("/api/TransOut"), "out");
  ASSERT_OK(msg.Prepare(Url("/api/QueryPrepared")));
  Later(seconds(35));
  EXPECT_EQ(Get("h-msg-fail").trans.status, TransStatus::kFailed);
  EXPECT_EQ(svc_->Calls("/api/TransOut"), 0u);
}

TEST_F(HttpBranchTest, OneSagaMixesGrpcAndHttpBranches) {
  auto grpc = BranchTestServer::Start();
  ASSERT_OK(Saga(*dtm_, "h-mixed")
                .Add(grpc->address() + "/busi.Busi/TransOut",
                     grpc->address() + "/busi.Busi/TransOutRevert", "out")
                .Add(Url("/api/TransIn"), Url("/api/TransInRevert"), "in")
                .WaitResult(true)
                .Submit());
  EXPECT_EQ(Get("h-mixed").trans.status, TransStatus::kSucceed);
  ASSERT_EQ(grpc->Calls().size(), 1u);
  EXPECT_EQ(grpc->Calls()[0].Get("dtm-gid"), "h-mixed");
  EXPECT_THAT(Paths(), ElementsAre("/api/TransIn"));
}

TEST_F(HttpBranchTest, CallsReuseKeptAliveConnections) {
  for (const char* gid : {"h-ka-1", "h-ka-2", "h-ka-3"}) {
    ASSERT_OK(TwoSteps(gid).WaitResult(true).Submit());
  }
  EXPECT_EQ(svc_->Calls("/api/TransIn"), 3u);
  EXPECT_EQ(svc_->Connections(), 1u);
}

TEST_F(HttpBranchTest, AHangingBranchTimesOutAndIsRetried) {
  svc_->Script("/api/TransIn", {HttpAnswer::Hang(), HttpAnswer::Ok()});
  Saga saga = TwoSteps("h-hang");
  saga.RequestTimeout(seconds(1));
  ASSERT_OK(saga.Submit());
  ASSERT_TRUE(svc_->WaitForCalls("/api/TransIn", 1));
  dtm_->WaitIdle();
  TransWithBranches t = Get("h-hang");
  EXPECT_EQ(t.trans.status, TransStatus::kSubmitted);
  EXPECT_THAT(t.branches[3].last_error, HasSubstr("no answer within 1000 ms"));
  Later(seconds(60));
  EXPECT_EQ(Get("h-hang").trans.status, TransStatus::kSucceed);
  EXPECT_EQ(svc_->Calls("/api/TransIn"), 2u);
}

TEST_F(HttpBranchTest, AnOversizedAnswerIsAnErrorThatNamesTheLimit) {
  embedded_.http_max_response_bytes = 1024;
  Open();
  svc_->Script("/api/TransIn", {HttpAnswer::Huge(4096), HttpAnswer::Ok()});
  ASSERT_OK(TwoSteps("h-huge").Submit());
  dtm_->WaitIdle();
  TransWithBranches t = Get("h-huge");
  EXPECT_EQ(t.trans.status, TransStatus::kSubmitted);
  EXPECT_THAT(t.branches[3].last_error,
              HasSubstr("larger than the limit of 1024 bytes"));
  Later(seconds(60));
  EXPECT_EQ(Get("h-huge").trans.status, TransStatus::kSucceed);
}

TransRequest SagaRequest(const std::string& gid, std::string protocol,
                         std::vector<TransStep> steps) {
  TransRequest req;
  req.gid = gid;
  req.trans_type = TransType::kSaga;
  req.protocol = std::move(protocol);
  req.steps = std::move(steps);
  req.payloads.assign(req.steps.size(), "{}");
  return req;
}

TEST_F(HttpBranchTest, BadUrlsAreRefusedAtSubmitAndNothingIsWritten) {
  struct Case {
    TransRequest req;
    StatusCode code;
    std::string why;
  };
  const Case cases[] = {
      {SagaRequest("h-bad-1", "", {{"http://127.0.0.1:0/x", ""}}),
       StatusCode::kInvalidArgument, "bad port '0'"},
      {SagaRequest("h-bad-2", "", {{Url("/x"), "https://[oops/y"}}),
       StatusCode::kInvalidArgument, "unterminated [IPv6] host"},
      {SagaRequest("h-bad-3", "http", {{"localhost:9000/pkg.Svc/M", ""}}),
       StatusCode::kInvalidArgument,
       "a transaction of protocol http calls http://, https://"},
      // As for gRPC: a registry URL without a registry.
      {SagaRequest("h-bad-4", "http", {{"discovery:///trans/api/x", ""}}),
       StatusCode::kFailedPrecondition, "no service registry is configured"},
  };
  for (const auto& [req, code, why] : cases) {
    EXPECT_THAT(dtm_->Submit(req), StatusIs(code, why)) << req.gid;
    EXPECT_THAT(dtm_->Query(req.gid).status(), StatusIs(StatusCode::kNotFound));
  }
  BranchRegistration b;
  b.gid = "h-bad-tcc";
  b.branch_id = "01";
  b.confirm_url = "localhost:9000/pkg.Svc/Confirm";
  b.protocol = "http";
  TransRequest tcc;
  tcc.gid = "h-bad-tcc";
  tcc.trans_type = TransType::kTcc;
  ASSERT_OK(dtm_->Prepare(tcc));
  EXPECT_THAT(dtm_->RegisterBranch(b),
              StatusIs(StatusCode::kInvalidArgument, "protocol http"));
  EXPECT_TRUE(Get("h-bad-tcc").branches.empty());
}

TEST_F(HttpBranchTest, ProtocolHttpCallsTheKratosInstancesHttpEndpoint) {
  auto resolver = std::make_shared<StaticServiceResolver>();
  resolver->SetHttp("trans",
                    {"http://127.0.0.1:" + std::to_string(svc_->port())});
  embedded_.driver = "dtm-driver-kratos";
  embedded_.resolver = resolver;
  Open();
  TransRequest req =
      SagaRequest("h-disc", "http",
                  {{"discovery://127.0.0.1:2379/trans/api/TransOut",
                    "discovery://127.0.0.1:2379/trans/api/TransOutRevert"}});
  req.options.wait_result = true;
  ASSERT_OK(dtm_->Submit(req));
  EXPECT_EQ(Get("h-disc").trans.status, TransStatus::kSucceed);
  auto seen = svc_->Seen("/api/TransOut");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].QueryValue("gid"), "h-disc");
}

class HttpsBranchTest : public HttpBranchTest {
 protected:
  void SetUp() override {
    DTX_ASSIGN_TEST_CERTS_OR_SKIP(certs_, dir_.path());
    embedded_.branch_tls = {{"127.0.0.1", {certs_.ca_file, "", "", ""}}};
    HttpBranchTest::SetUp();
  }

  // A saga of one https:// step to a server presenting `cert`.
  Status OneStep(const std::string& gid, const CertAndKey& cert,
                 std::unique_ptr<TlsTestServer>* server) {
    auto started = TlsTestServer::Start(cert);
    DTX_RETURN_IF_ERROR(started.status());
    *server = std::move(started).value();
    const std::string base =
        "https://127.0.0.1:" + std::to_string((*server)->port());
    return Saga(*dtm_, gid)
        .Add(base + "/api/TransOut", base + "/api/TransOutRevert", "{}")
        .Submit();
  }

  std::string LastError(const std::string& gid) {
    dtm_->WaitIdle();
    const TransWithBranches t = Get(gid);
    EXPECT_EQ(t.trans.status, TransStatus::kSubmitted);
    return t.branches.size() == 2 ? t.branches[1].last_error : "";
  }

  TestCerts certs_;
};

TEST_F(HttpsBranchTest, ASagaOverHttpsVerifiedAgainstTheCaFile) {
  std::unique_ptr<TlsTestServer> server;
  ASSERT_OK(OneStep("hs-ok", certs_.server, &server));
  dtm_->WaitIdle();
  EXPECT_EQ(Get("hs-ok").trans.status, TransStatus::kSucceed);
  ASSERT_EQ(server->paths().size(), 1u);
  EXPECT_EQ(server->paths()[0],
            "/api/TransOut?branch_id=01&gid=hs-ok&op=action&trans_type=saga");
}

TEST_F(HttpsBranchTest, AWrongCaIsTheBranchsLastError) {
  std::unique_ptr<TlsTestServer> server;
  ASSERT_OK(OneStep("hs-ca", certs_.other_ca_server, &server));
  EXPECT_THAT(LastError("hs-ca"),
              HasSubstr("TRANSIENT: POST https://127.0.0.1:"));
  EXPECT_THAT(LastError("hs-ca"), HasSubstr("signed by an unknown CA"));
  EXPECT_TRUE(server->paths().empty());
}

TEST_F(HttpsBranchTest, AnExpiredCertificateIsTheBranchsLastError) {
  std::unique_ptr<TlsTestServer> server;
  ASSERT_OK(OneStep("hs-exp", certs_.expired, &server));
  EXPECT_THAT(LastError("hs-exp"), HasSubstr("certificate has expired"));
}

TEST_F(HttpsBranchTest, AWrongHostCertificateIsTheBranchsLastError) {
  std::unique_ptr<TlsTestServer> server;
  ASSERT_OK(OneStep("hs-host", certs_.wrong_host, &server));
  EXPECT_THAT(LastError("hs-host"), HasSubstr("host name mismatch"));
}

TEST_F(HttpsBranchTest, AnUnreadableCaFileFailsTheOpen) {
  dtm_->Shutdown();
  dtm_.reset();
  embedded_.branch_tls = {
      {"127.0.0.1", {dir_.File("missing.pem"), "", "", ""}}};
  embedded_.journal_path = dir_.File("dtx.db");
  embedded_.clock = &clock_;
  EXPECT_THAT(OpenEmbeddedCoordinator({}, embedded_).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "the CA file '" + dir_.File("missing.pem") + "'"));
}

// A workflow (dtx::Workflows) whose steps are HTTP calls: dtm's query and
// result classes as for any branch, 409 rolls the workflow back (the rollback
// an HTTP call too, op "rollback"), a step's reply body is its result.
TEST_F(HttpBranchTest, AWorkflowsStepsMayBeHttpCalls) {
  svc_->Script("/api/TransOut", {HttpAnswer::Status(200, "out-body")});
  svc_->Script("/api/TransIn", {HttpAnswer::Ok(), HttpAnswer::Status(409)});
  Workflows workflows(*dtm_);
  ASSERT_OK(workflows.Register(
      "transfer",
      [this](Workflow& wf, const std::string& in) -> Result<std::string> {
        auto out = wf.Step()
                       .OnRollback([this, in](const WorkflowBranch& b) {
                         return b.Call(Url("/api/TransOutRevert"), in).status();
                       })
                       .Call(Url("/api/TransOut"), in);
        if (!out.ok()) return out.status();
        DTX_RETURN_IF_ERROR(wf.Call(Url("/api/TransIn"), in).status());
        return *out;
      }));
  auto r = workflows.Execute("transfer", "h-wf", R"({"amount":30})");
  ASSERT_OK(r);
  EXPECT_EQ(*r, "out-body");
  auto seen = svc_->Seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(
      seen[0].target,
      "/api/TransOut?branch_id=01&gid=h-wf&op=action&trans_type=workflow");
  EXPECT_EQ(seen[0].body, R"({"amount":30})");

  EXPECT_THAT(workflows.Execute("transfer", "h-wf-fail", "{}").status(),
              StatusIs(StatusCode::kAborted));
  EXPECT_EQ(Get("h-wf-fail").trans.status, TransStatus::kFailed);
  auto revert = svc_->Seen("/api/TransOutRevert");
  ASSERT_EQ(revert.size(), 1u);
  EXPECT_EQ(revert[0].QueryValue("op"), "rollback");
  EXPECT_EQ(revert[0].QueryValue("branch_id"), "01");
}

}  // namespace
}  // namespace dtx::testing
