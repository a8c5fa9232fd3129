// The client API (Saga, Msg, TccGlobalTransaction) run three times with the
// same code: on an embedded coordinator, and on a dtx-server process reached
// through GrpcDtmClient (dtm's gRPC API) and through HttpDtmClient (dtm's
// HTTP API). All use real gRPC branch services on 127.0.0.1 and real SQLite
// journals; the server is the real binary. Outcomes and error codes must not
// depend on where the coordinator runs or how it is reached.
//
// Time is real here (a separate process cannot share a fake clock), so the
// journal's intervals are one second and waits poll Query with a deadline.

#include "dtx/embedded.h"
#include "dtx/transaction.h"
#include "dtx/transport/grpc_branch_client.h"
#include "dtx/transport/grpc_dtm_client.h"
#include "dtx/transport/http_dtm_client.h"
#include "dtx/transport/workflow_callback.h"
#include "dtx/workflow.h"

#include "branch_test_server.h"
#include "dtx_server_process.h"
#include "status_matchers.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;

enum class Backend { kEmbedded, kServer, kServerHttp };

void PrintTo(Backend b, std::ostream* os) {
  *os << (b == Backend::kEmbedded ? "embedded"
          : b == Backend::kServer ? "dtx-server over gRPC"
                                  : "dtx-server over HTTP");
}

std::string Name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kEmbedded ? "Embedded"
         : info.param == Backend::kServer ? "Server"
                                          : "ServerHttp";
}

class ClientApiTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    busi_ = BranchTestServer::Start();
    if (GetParam() == Backend::kEmbedded) {
      Options options;
      options.retry.initial_interval = seconds(1);
      options.retry.max_interval = seconds(2);
      options.timeout_to_fail = seconds(3);
      options.cron_interval = seconds(1);
      EmbeddedOptions embedded;
      embedded.journal_path = dir_.File("dtx.db");
      embedded.durable_on_power_loss = false;
      auto opened = OpenEmbeddedCoordinator(options, embedded);
      ASSERT_OK(opened);
      embedded_ = std::move(opened).value();
      dtm_ = embedded_.get();
    } else {
      DtxServerConfig config;
      config.journal_path = dir_.File("dtx.db");
      config.config_path = dir_.File("dtx.yml");
      auto server = DtxServerProcess::Start(config);
      ASSERT_OK(server);
      server_ = std::move(server).value();
      if (GetParam() == Backend::kServer) {
        GrpcDtmClientOptions options;
        options.address = server_->address();
        auto client = GrpcDtmClient::Create(options);
        ASSERT_OK(client);
        remote_ = std::move(client).value();
        dtm_ = remote_.get();
      } else {
        // The client's own branch calls (TCC try, msg check-back) go to
        // gRPC services here.
        auto branches = GrpcBranchClient::Create({});
        ASSERT_OK(branches);
        HttpDtmClientOptions options;
        options.address = "http://" + server_->http_address() + "/api/dtmsvr";
        options.branch_client = std::move(branches).value();
        auto client = HttpDtmClient::Create(options);
        ASSERT_OK(client);
        http_ = std::move(client).value();
        dtm_ = http_.get();
      }
    }
  }

  void TearDown() override {
    if (embedded_) embedded_->Shutdown();
    remote_.reset();
    http_.reset();
    if (server_) {
      server_->Kill(SIGTERM);
      EXPECT_EQ(server_->Wait(), 0) << "dtx-server did not exit cleanly";
    }
  }

  std::string Url(const std::string& method) const {
    return busi_->address() + method;
  }

  std::string NewGid() {
    auto gid = dtm_->NewGid();
    EXPECT_OK(gid);
    return gid.ok() ? *gid : std::string("no-gid");
  }

  // Polls until the transaction has `status` (or the deadline passes).
  TransStatus WaitFor(const std::string& gid, TransStatus status,
                      milliseconds deadline = milliseconds(15000)) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    TransStatus last = TransStatus::kPrepared;
    while (std::chrono::steady_clock::now() < until) {
      auto t = dtm_->Query(gid);
      if (t.ok()) {
        last = t->trans.status;
        if (last == status) return last;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return last;
  }

  // The methods called, in order, for one gid.
  std::vector<std::string> CallsOf(const std::string& gid) const {
    std::vector<std::string> out;
    for (const ReceivedCall& c : busi_->Calls()) {
      if (c.Get("dtm-gid") == gid) {
        out.push_back(c.method + " " + c.Get("dtm-op") + " " +
                      c.Get("dtm-branch_id"));
      }
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<BranchTestServer> busi_;
  std::unique_ptr<Coordinator> embedded_;
  std::unique_ptr<DtxServerProcess> server_;
  std::unique_ptr<GrpcDtmClient> remote_;
  std::unique_ptr<HttpDtmClient> http_;
  DtmApi* dtm_ = nullptr;
};

TEST_P(ClientApiTest, NewGidIsUnique) { EXPECT_NE(NewGid(), NewGid()); }

TEST_P(ClientApiTest, SagaSucceedsWithDtmMetadataAndPayloads) {
  const std::string gid = NewGid();
  std::string binary("\x00\x01\xff payload", 12);
  if (GetParam() == Backend::kServerHttp) {
    // dtm's HTTP API carries payloads as JSON strings: a binary one is
    // refused before anything is sent, and text goes through as its bytes.
    EXPECT_THAT(Saga(*dtm_, gid)
                    .Add(Url("/busi.Busi/TransOut"),
                         Url("/busi.Busi/TransOutRevert"), binary)
                    .Submit(),
                StatusIs(StatusCode::kInvalidArgument, "not UTF-8"));
    binary = "{\"amount\":\"30 \u00e9\"}";
  }
  ASSERT_OK(Saga(*dtm_, gid)
                .Add(Url("/busi.Busi/TransOut"),
                     Url("/busi.Busi/TransOutRevert"), binary)
                .Add(Url("/busi.Busi/TransIn"), Url("/busi.Busi/TransInRevert"),
                     "second")
                .WaitResult(true)
                .Submit());
  EXPECT_THAT(CallsOf(gid), ElementsAre("/busi.Busi/TransOut action 01",
                                        "/busi.Busi/TransIn action 02"));
  auto calls = busi_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].payload, binary);
  EXPECT_EQ(calls[0].Get("dtm-trans_type"), "saga");
  EXPECT_EQ(calls[1].payload, "second");
  ASSERT_OK_AND_ASSIGN(auto t, dtm_->Query(gid));
  EXPECT_EQ(t.trans.status, TransStatus::kSucceed);
  EXPECT_EQ(t.branches.size(), 4u);
}

// Issue 19 item 5, from its reproducer: 64 clients re-submit one saga that
// succeeded (a retry after a lost answer). Each is told OK, none ABORTED
// (which dtm's SDKs read as "rolled back"), and nothing runs again. Another
// saga under the same gid is a conflict, kAlreadyExists, whatever the
// transport.
TEST_P(ClientApiTest, SixtyFourRetriesOfASucceededSagaAllAnswerOk) {
  const std::string gid = NewGid();
  auto saga = [&] {
    return std::move(Saga(*dtm_, gid)
                         .Add(Url("/busi.Busi/TransOut"),
                              Url("/busi.Busi/TransOutRevert"), "out")
                         .Add(Url("/busi.Busi/TransIn"),
                              Url("/busi.Busi/TransInRevert"), "in"));
  };
  ASSERT_OK(saga().WaitResult(true).Submit());
  constexpr int kRetries = 64;
  std::vector<Status> answers(kRetries);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRetries; ++i) {
    threads.emplace_back([&saga, &answers, i] {
      answers[i] = saga().WaitResult(i % 2 == 0).Submit();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kRetries; ++i) EXPECT_OK(answers[i]) << "retry " << i;
  Status other =
      Saga(*dtm_, gid)
          .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/TransOutRevert"),
               "other")
          .Add(Url("/busi.Busi/TransIn"), Url("/busi.Busi/TransInRevert"), "in")
          .Submit();
  EXPECT_THAT(
      other,
      StatusIs(StatusCode::kAlreadyExists,
               "gid " + gid + " exists with a different step 01's payload"));
  EXPECT_THAT(CallsOf(gid), ElementsAre("/busi.Busi/TransOut action 01",
                                        "/busi.Busi/TransIn action 02"));
  ASSERT_OK_AND_ASSIGN(auto t, dtm_->Query(gid));
  EXPECT_EQ(t.trans.status, TransStatus::kSucceed);
}

TEST_P(ClientApiTest, SagaFailureIsAbortedAndCompensatesInReverse) {
  busi_->SetHandler("/busi.Busi/TransIn", [](const ReceivedCall&) {
    return TestReply::Status(10, "insufficient balance");
  });
  const std::string gid = NewGid();
  Status s =
      Saga(*dtm_, gid)
          .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/TransOutRevert"),
               "p")
          .Add(Url("/busi.Busi/TransIn"), Url("/busi.Busi/TransInRevert"), "p")
          .WaitResult(true)
          .Submit();
  EXPECT_THAT(s, StatusIs(StatusCode::kAborted));
  EXPECT_EQ(WaitFor(gid, TransStatus::kFailed), TransStatus::kFailed);
  EXPECT_THAT(CallsOf(gid),
              ElementsAre("/busi.Busi/TransOut action 01",
                          "/busi.Busi/TransIn action 02",
                          "/busi.Busi/TransInRevert compensate 02",
                          "/busi.Busi/TransOutRevert compensate 01"));
  ASSERT_OK_AND_ASSIGN(auto t, dtm_->Query(gid));
  EXPECT_THAT(t.trans.rollback_reason,
              ::testing::HasSubstr("insufficient balance"));
}

TEST_P(ClientApiTest, SagaWithoutWaitFinishesInTheBackground) {
  const std::string gid = NewGid();
  ASSERT_OK(Saga(*dtm_, gid)
                .Add(Url("/busi.Busi/TransOut"),
                     Url("/busi.Busi/TransOutRevert"), "p")
                .Submit());
  EXPECT_EQ(WaitFor(gid, TransStatus::kSucceed), TransStatus::kSucceed);
}

// dtx::Workflows with the same code on every backend: steps recorded, a run
// of a workflow that ended answered from the record without a call, a
// FAILURE rolled back.
TEST_P(ClientApiTest, AWorkflowRunsTheSameWhereverTheCoordinatorRuns) {
  busi_->SetHandler("/busi.Busi/Fail", [](const ReceivedCall&) {
    return TestReply::Status(10, "insufficient balance");
  });
  Workflows workflows(*dtm_);
  ASSERT_OK(workflows.Register(
      "transfer",
      [this](Workflow& wf, const std::string& in) -> Result<std::string> {
        auto out =
            wf.Step()
                .OnRollback([this, in](const WorkflowBranch& b) {
                  return b.Call(Url("/busi.Busi/TransOutRevert"), in).status();
                })
                .Call(Url("/busi.Busi/TransOut"), in);
        if (!out.ok()) return out.status();
        // A local step: recorded as "do:quote", never called by the
        // coordinator (so not held to dtx-server's BranchTargets).
        DTX_RETURN_IF_ERROR(
            wf.Step()
                .Do("quote",
                    [](const WorkflowBranch&) -> Result<std::string> {
                      return std::string("42");
                    })
                .status());
        DTX_RETURN_IF_ERROR(wf.Call(Url(in == "fail" ? "/busi.Busi/Fail"
                                                     : "/busi.Busi/TransIn"),
                                    in)
                                .status());
        return "moved " + in;
      }));
  const std::string gid = NewGid();
  auto r = workflows.Execute("transfer", gid, "30");
  ASSERT_OK(r);
  EXPECT_EQ(*r, "moved 30");
  auto q = dtm_->Query(gid);
  ASSERT_OK(q);
  EXPECT_EQ(q->trans.status, TransStatus::kSucceed);
  EXPECT_EQ(q->branches.size(), 3u);
  auto again = workflows.Execute("transfer", gid, "30");
  ASSERT_OK(again);
  EXPECT_EQ(*again, "moved 30");
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);

  const std::string failing = NewGid();
  EXPECT_THAT(workflows.Execute("transfer", failing, "fail").status(),
              StatusIs(StatusCode::kAborted, "insufficient balance"));
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOutRevert"), 1u);
  q = dtm_->Query(failing);
  ASSERT_OK(q);
  EXPECT_EQ(q->trans.status, TransStatus::kFailed);
}

// A workflow that answers ONGOING is resumed by the coordinator: in process
// when embedded, through the application's workflow.Workflow/Execute
// (NewWorkflowCallbackService) when remote; its first step is replayed.
TEST_P(ClientApiTest, AnOngoingWorkflowIsResumedByTheCoordinator) {
  auto workflows = std::make_unique<Workflows>(*dtm_);
  std::unique_ptr<grpc::Service> callback;
  std::unique_ptr<grpc::Server> server;
  if (GetParam() != Backend::kEmbedded) {
    callback = NewWorkflowCallbackService(*workflows);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(callback.get());
    server = builder.BuildAndStart();
    ASSERT_NE(server, nullptr);
    workflows->SetCallbackUrl("127.0.0.1:" + std::to_string(port) +
                              "/workflow.Workflow/Execute");
  }
  std::atomic<int> runs{0};
  WorkflowOptions wo;
  wo.trans.retry_interval = seconds(1);
  ASSERT_OK(workflows->Register(
      "later",
      [this, &runs](Workflow& wf,
                    const std::string& in) -> Result<std::string> {
        DTX_RETURN_IF_ERROR(wf.Call(Url("/busi.Busi/TransOut"), in).status());
        if (runs++ == 0) return FailedPreconditionError("not yet");
        return std::string("done");
      },
      wo));
  const std::string gid = NewGid();
  EXPECT_THAT(workflows->Execute("later", gid, "x").status(),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_EQ(WaitFor(gid, TransStatus::kSucceed), TransStatus::kSucceed);
  // The resume has submitted; its run may still be winding down, and an
  // Execute of the gid meanwhile answers kFailedPrecondition ("running").
  Result<std::string> r = FailedPreconditionError("not yet run");
  for (int i = 0; i < 200; ++i) {
    r = workflows->Execute("later", gid, "x");
    if (r.status().code() != StatusCode::kFailedPrecondition) break;
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
  ASSERT_OK(r);
  EXPECT_EQ(*r, "done");
  if (server) server->Shutdown();
}

TEST_P(ClientApiTest, SagaRetriesAnErrorThenSucceeds) {
  std::atomic<int> calls{0};
  busi_->SetHandler("/busi.Busi/TransOut", [&](const ReceivedCall&) {
    return calls++ == 0 ? TestReply::Status(14, "down for a moment")
                        : TestReply::Ok();
  });
  const std::string gid = NewGid();
  ASSERT_OK(Saga(*dtm_, gid)
                .Add(Url("/busi.Busi/TransOut"),
                     Url("/busi.Busi/TransOutRevert"), "p")
                .Submit());
  EXPECT_EQ(WaitFor(gid, TransStatus::kSucceed), TransStatus::kSucceed);
  EXPECT_EQ(calls.load(), 2);
}

TEST_P(ClientApiTest, ConcurrentSagaFollowsItsOrders) {
  const std::string gid = NewGid();
  ASSERT_OK(Saga(*dtm_, gid)
                .Add(Url("/busi.Busi/A"), "", "a")
                .Add(Url("/busi.Busi/B"), "", "b")
                .Add(Url("/busi.Busi/C"), "", "c")
                .AddBranchOrder(2, {0, 1})
                .EnableConcurrent()
                .WaitResult(true)
                .Submit());
  auto calls = CallsOf(gid);
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[2], "/busi.Busi/C action 03");
}

TEST_P(ClientApiTest, BranchHeadersReachTheBranches) {
  const std::string gid = NewGid();
  ASSERT_OK(Saga(*dtm_, gid)
                .Add(Url("/busi.Busi/TransOut"), "", "p")
                .BranchHeaders({{"x-tenant", "acme"}})
                .WaitResult(true)
                .Submit());
  auto calls = busi_->Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].Get("x-tenant"), "acme");
}

TEST_P(ClientApiTest, TccConfirmsInReverseOrder) {
  const std::string gid = NewGid();
  TransOptions wait;
  wait.wait_result = true;
  ASSERT_OK(TccGlobalTransaction(*dtm_, gid, wait, [&](Tcc& tcc) {
    DTX_RETURN_IF_ERROR(tcc.CallBranch("out", Url("/busi.Busi/TransOut"),
                                       Url("/busi.Busi/TransOutConfirm"),
                                       Url("/busi.Busi/TransOutCancel")));
    return tcc.CallBranch("in", Url("/busi.Busi/TransIn"),
                          Url("/busi.Busi/TransInConfirm"),
                          Url("/busi.Busi/TransInCancel"));
  }));
  EXPECT_EQ(WaitFor(gid, TransStatus::kSucceed), TransStatus::kSucceed);
  EXPECT_THAT(
      CallsOf(gid),
      ElementsAre("/busi.Busi/TransOut try 01", "/busi.Busi/TransIn try 02",
                  "/busi.Busi/TransInConfirm confirm 02",
                  "/busi.Busi/TransOutConfirm confirm 01"));
  // The try calls carry the coordinator's address, as dtm's SDK sends it.
  auto calls = busi_->Calls();
  EXPECT_EQ(calls[0].Get("dtm-dtm"), dtm_->address());
  // Confirm gets the try's payload back.
  EXPECT_EQ(calls[2].payload, "in");
}

TEST_P(ClientApiTest, TccTryFailureCancelsWhatWasRegistered) {
  busi_->SetHandler("/busi.Busi/TransIn", [](const ReceivedCall&) {
    return TestReply::Status(10, "no such account");
  });
  const std::string gid = NewGid();
  Status s = TccGlobalTransaction(*dtm_, gid, [&](Tcc& tcc) {
    DTX_RETURN_IF_ERROR(tcc.CallBranch("out", Url("/busi.Busi/TransOut"),
                                       Url("/busi.Busi/TransOutConfirm"),
                                       Url("/busi.Busi/TransOutCancel")));
    return tcc.CallBranch("in", Url("/busi.Busi/TransIn"),
                          Url("/busi.Busi/TransInConfirm"),
                          Url("/busi.Busi/TransInCancel"));
  });
  EXPECT_THAT(s, StatusIs(StatusCode::kAborted));
  EXPECT_EQ(WaitFor(gid, TransStatus::kFailed), TransStatus::kFailed);
  EXPECT_THAT(CallsOf(gid), ElementsAre("/busi.Busi/TransOut try 01",
                                        "/busi.Busi/TransIn try 02",
                                        "/busi.Busi/TransInCancel cancel 02",
                                        "/busi.Busi/TransOutCancel cancel 01"));
  ASSERT_OK_AND_ASSIGN(auto t, dtm_->Query(gid));
  EXPECT_THAT(t.trans.rollback_reason, ::testing::HasSubstr("no such account"));
}

TEST_P(ClientApiTest, MsgDoAndSubmitDeliversAfterTheLocalTransaction) {
  const std::string gid = NewGid();
  bool local_ran = false;
  ASSERT_OK(Msg(*dtm_, gid)
                .Add(Url("/busi.Busi/TransOut"), "o")
                .Add(Url("/busi.Busi/TransIn"), "i")
                .WaitResult(true)
                .DoAndSubmit(Url("/busi.Busi/QueryPrepared"), [&] {
                  local_ran = true;
                  return Status::Ok();
                }));
  EXPECT_TRUE(local_ran);
  EXPECT_EQ(WaitFor(gid, TransStatus::kSucceed), TransStatus::kSucceed);
  EXPECT_THAT(CallsOf(gid), ElementsAre("/busi.Busi/TransOut action 01",
                                        "/busi.Busi/TransIn action 02"));
}

TEST_P(ClientApiTest, MsgWhoseLocalTransactionFailsIsAborted) {
  const std::string gid = NewGid();
  Status s = Msg(*dtm_, gid)
                 .Add(Url("/busi.Busi/TransOut"), "o")
                 .DoAndSubmit(Url("/busi.Busi/QueryPrepared"),
                              [] { return AbortedError("balance too low"); });
  EXPECT_THAT(s, StatusIs(StatusCode::kAborted, "balance too low"));
  EXPECT_EQ(WaitFor(gid, TransStatus::kFailed), TransStatus::kFailed);
  EXPECT_TRUE(CallsOf(gid).empty());
}

TEST_P(ClientApiTest, PreparedMsgIsCheckedBackAndDelivered) {
  const std::string gid = NewGid();
  ASSERT_OK(Msg(*dtm_, gid)
                .Add(Url("/busi.Busi/TransOut"), "o")
                .Prepare(Url("/busi.Busi/QueryPrepared")));
  // Never submitted: after TimeoutToFail (3 s) the coordinator asks.
  EXPECT_EQ(WaitFor(gid, TransStatus::kSucceed), TransStatus::kSucceed);
  EXPECT_THAT(CallsOf(gid), ElementsAre("/busi.Busi/QueryPrepared msg 00",
                                        "/busi.Busi/TransOut action 01"));
}

TEST_P(ClientApiTest, ErrorsAreTheSameWhereverTheCoordinatorRuns) {
  // Malformed requests: kInvalidArgument, nothing written.
  EXPECT_THAT(Saga(*dtm_, "").Add(Url("/busi.Busi/A"), "", "").Submit(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Saga(*dtm_, "no-steps").Submit(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Saga(*dtm_, "bad-url").Add("not a url", "", "").Submit(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Saga(*dtm_, "cycle")
                  .Add(Url("/busi.Busi/A"), "", "")
                  .Add(Url("/busi.Busi/B"), "", "")
                  .AddBranchOrder(0, {1})
                  .AddBranchOrder(1, {0})
                  .EnableConcurrent()
                  .Submit(),
              StatusIs(StatusCode::kInvalidArgument));
  for (const char* gid : {"no-steps", "bad-url", "cycle"}) {
    EXPECT_THAT(dtm_->Query(gid), StatusIs(StatusCode::kNotFound)) << gid;
  }
  // Registering on a transaction that does not exist.
  BranchRegistration branch;
  branch.gid = "missing";
  branch.branch_id = "01";
  EXPECT_THAT(dtm_->RegisterBranch(branch), StatusIs(StatusCode::kNotFound));
  // A finished saga's gid: the same saga again is a retry (OK), another one
  // a conflict.
  const std::string gid = NewGid();
  ASSERT_OK(Saga(*dtm_, gid)
                .Add(Url("/busi.Busi/A"), "", "")
                .WaitResult(true)
                .Submit());
  EXPECT_OK(Saga(*dtm_, gid).Add(Url("/busi.Busi/A"), "", "").Submit());
  EXPECT_THAT(
      Saga(*dtm_, gid).Add(Url("/busi.Busi/B"), "", "").Submit(),
      StatusIs(StatusCode::kAlreadyExists, "a different step 01's action URL"));
}

INSTANTIATE_TEST_SUITE_P(Backends, ClientApiTest,
                         ::testing::Values(Backend::kEmbedded, Backend::kServer,
                                           Backend::kServerHttp),
                         Name);

}  // namespace
}  // namespace dtx::testing
