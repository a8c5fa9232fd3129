// DtmServer in this process, serving an embedded coordinator to a
// GrpcDtmClient, with a real gRPC branch service on 127.0.0.1: a caller that
// gives up leaves nothing waiting, requests in progress finish within the
// shutdown grace, and those still waiting after it are answered UNAVAILABLE;
// with max_connections, a connection beyond the limit is closed at once (the
// client told UNAVAILABLE, the log saying why), and a silent one is closed
// after the handshake timeout.

#include "dtx/transport/dtm_server.h"

#include "dtx/embedded.h"
#include "dtx/transport/grpc_dtm_client.h"

#include "branch_test_server.h"
#include "http_test_client.h"
#include "recording_logger.h"
#include "status_matchers.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;

class DtmServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    busi_ = BranchTestServer::Start();
    Options options;
    options.request_timeout = std::chrono::seconds(600);
    EmbeddedOptions embedded;
    embedded.journal_path = dir_.File("dtx.db");
    embedded.durable_on_power_loss = false;
    auto coordinator = OpenEmbeddedCoordinator(options, embedded);
    ASSERT_OK(coordinator);
    coordinator_ = std::move(coordinator).value();
    DtmServerOptions server_options;
    server_options.listen_address = "127.0.0.1:0";
    server_options.reflection = false;
    ServerMetrics::Info info;
    info.grpc_version = GrpcVersion();
    auto metrics = ServerMetrics::Register(registry_, info);
    ASSERT_OK(metrics);
    metrics_ = std::move(metrics).value();
    server_options.metrics = metrics_.get();
    auto server = DtmServer::Start(*coordinator_, server_options);
    ASSERT_OK(server);
    server_ = std::move(server).value();
  }

  void TearDown() override {
    // The coordinator first: it answers what still waits for a branch.
    if (coordinator_) coordinator_->Shutdown();
    if (server_) server_->Shutdown(milliseconds(0));
  }

  std::unique_ptr<GrpcDtmClient> Connect(milliseconds timeout) {
    GrpcDtmClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(server_->port());
    options.timeout = timeout;
    auto client = GrpcDtmClient::Create(options);
    EXPECT_OK(client);
    return client.ok() ? std::move(client).value() : nullptr;
  }

  TransRequest Saga(const std::string& gid) const {
    TransRequest r;
    r.gid = gid;
    r.trans_type = TransType::kSaga;
    r.options.wait_result = true;
    r.steps = {{busi_->address() + "/busi.Busi/TransOut", ""}};
    r.payloads = {"o"};
    return r;
  }

  void HangBranches() {
    busi_->SetDefaultHandler([](const ReceivedCall&) {
      TestReply r;
      r.hang = true;
      return r;
    });
  }

  // Polls `done` for up to 10 s.
  template <typename Done>
  static bool Eventually(Done done) {
    const auto until = std::chrono::steady_clock::now() + milliseconds(10000);
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
  }

  // Before the server, which reports to them.
  MetricsRegistry registry_;
  std::unique_ptr<ServerMetrics> metrics_;
  TempDir dir_;
  std::unique_ptr<BranchTestServer> busi_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<DtmServer> server_;
};

TEST_F(DtmServerTest, ACallerThatGivesUpLeavesNothingWaiting) {
  HangBranches();
  auto dtm = Connect(milliseconds(300));
  EXPECT_THAT(dtm->Submit(Saga("gave-up")),
              StatusIs(StatusCode::kDeadlineExceeded));
  // The server answered the cancelled call and dropped it, though the
  // coordinator still waits for the branch.
  EXPECT_TRUE(Eventually([&] { return server_->requests_waiting() == 0; }));
  EXPECT_EQ(busi_->Calls().size(), 1u);
}

TEST_F(DtmServerTest, RequestsInProgressFinishWithinTheGrace) {
  busi_->SetDefaultHandler([](const ReceivedCall&) {
    TestReply r = TestReply::Ok();
    r.delay = milliseconds(300);
    return r;
  });
  auto dtm = Connect(milliseconds(30000));
  std::promise<Status> submitted;
  dtm->SubmitAsync(Saga("finishes"),
                   [&](Status s) { submitted.set_value(std::move(s)); });
  ASSERT_TRUE(Eventually([&] { return !busi_->Calls().empty(); }));
  server_->Shutdown(std::chrono::seconds(30));
  EXPECT_OK(submitted.get_future().get());
}

TEST_F(DtmServerTest, RequestsStillWaitingAfterTheGraceAreUnavailable) {
  HangBranches();
  auto dtm = Connect(milliseconds(30000));
  std::promise<Status> submitted;
  dtm->SubmitAsync(Saga("stuck"),
                   [&](Status s) { submitted.set_value(std::move(s)); });
  ASSERT_TRUE(Eventually([&] { return !busi_->Calls().empty(); }));
  std::thread stop([&] { server_->Shutdown(milliseconds(200)); });
  EXPECT_THAT(submitted.get_future().get(),
              StatusIs(StatusCode::kUnavailable, "shutdown grace"));
  // The transaction is the coordinator's still; stopping it ends the branch
  // call, and the server's Shutdown returns.
  coordinator_->Shutdown();
  stop.join();
  EXPECT_EQ(server_->requests_waiting(), 0u);
}

TEST_F(DtmServerTest, AnAdminTokenGRpcCannotSendIsRefused) {
  DtmServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.admin_token = "line\nbreak";
  EXPECT_THAT(DtmServer::Start(*coordinator_, options),
              StatusIs(StatusCode::kInvalidArgument, "admin_token"));
}

TEST_F(DtmServerTest, EveryCallIsCountedByMethodAndStatus) {
  auto dtm = Connect(milliseconds(30000));
  ASSERT_OK(dtm->NewGid());
  ASSERT_OK(dtm->Submit(Saga("counted")));
  ASSERT_OK(dtm->Submit(Saga("counted-too")));
  // Malformed (no gid): answered at once, a failure.
  EXPECT_THAT(dtm->Submit(Saga("")), StatusIs(StatusCode::kInvalidArgument));
  // Refused by the coordinator: a failure too.
  EXPECT_THAT(dtm->Query("no-such-gid"), StatusIs(StatusCode::kNotFound));
  const std::string text = registry_.RenderText();
  for (
      const char* line : {
          R"(dtm_server_process_total{type="grpc",api="newgid",status="ok"} 1)",
          R"(dtm_server_process_total{type="grpc",api="submit",status="ok"} 2)",
          R"(dtm_server_process_total{type="grpc",api="submit",status="fail"} 1)",
          R"(dtm_server_process_total{type="grpc",api="query",status="fail"} 1)",
          R"(dtm_server_process_total{type="grpc",api="abort",status="ok"} 0)",
          R"(dtm_server_response_duration_count{type="grpc",api="submit"} 3)",
      }) {
    EXPECT_THAT(text, ::testing::HasSubstr(std::string("\n") + line + "\n"));
  }
  EXPECT_THAT(text,
              ::testing::HasSubstr("grpc_version=\"" + GrpcVersion() + "\""));
}

TEST_F(DtmServerTest, ACancelledCallIsCountedAsAFailure) {
  HangBranches();
  auto dtm = Connect(milliseconds(300));
  EXPECT_THAT(dtm->Submit(Saga("cancelled")),
              StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(Eventually([&] {
    return registry_.RenderText().find(
               R"(dtm_server_process_total{type="grpc",api="submit",status="fail"} 1)") !=
           std::string::npos;
  }));
}

TEST_F(DtmServerTest, AdminServiceFiltersListsAndCounts) {
  auto dtm = Connect(milliseconds(30000));
  for (const char* gid : {"pay-1", "pay_2", "ship-1"}) {
    TransRequest r = Saga(gid);
    ASSERT_OK(dtm->Submit(r));
  }
  ListQuery q;
  q.gid_prefix = "pay";
  ASSERT_OK_AND_ASSIGN(ListPage page, dtm->List(q));
  ASSERT_EQ(page.transactions.size(), 2u);
  EXPECT_EQ(page.transactions[0].gid, "pay_2");
  q.gid_prefix = "pay_";
  ASSERT_OK_AND_ASSIGN(page, dtm->List(q));
  ASSERT_EQ(page.transactions.size(), 1u);
  q = ListQuery{};
  q.unfinished_only = true;
  ASSERT_OK_AND_ASSIGN(page, dtm->List(q));
  EXPECT_TRUE(page.transactions.empty());
  ASSERT_OK_AND_ASSIGN(TransStats stats, dtm->Stats());
  EXPECT_EQ(stats.counts[TransStatus::kSucceed], 3);
  EXPECT_EQ(stats.unfinished.unfinished, 0);
  EXPECT_FALSE(stats.unfinished.oldest_create_time.has_value());
  EXPECT_THAT(dtm->RetryNow("pay-1"), StatusIs(StatusCode::kAborted));
  EXPECT_THAT(dtm->ForceStop("ghost"), StatusIs(StatusCode::kNotFound));
}

// A DtmServer with its own listener (max_connections) on an embedded
// coordinator.
class DtmServerLimitTest : public ::testing::Test {
 protected:
  void Start(std::size_t max_connections, milliseconds handshake_timeout) {
    EmbeddedOptions embedded;
    embedded.journal_path = dir_.File("dtx.db");
    embedded.durable_on_power_loss = false;
    auto coordinator = OpenEmbeddedCoordinator(Options{}, embedded);
    ASSERT_OK(coordinator);
    coordinator_ = std::move(coordinator).value();
    DtmServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.max_connections = max_connections;
    options.handshake_timeout = handshake_timeout;
    options.logger = log_;
    auto server = DtmServer::Start(*coordinator_, options);
    ASSERT_OK(server);
    server_ = std::move(server).value();
  }
  void TearDown() override {
    if (coordinator_) coordinator_->Shutdown();
    if (server_) server_->Shutdown(milliseconds(0));
  }
  std::unique_ptr<GrpcDtmClient> Connect() {
    GrpcDtmClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(server_->port());
    options.timeout = milliseconds(3000);
    auto client = GrpcDtmClient::Create(options);
    EXPECT_OK(client);
    return client.ok() ? std::move(client).value() : nullptr;
  }
  // dtmgimp.Dtm/NewGid on a connection of its own (a local subchannel pool:
  // channels to one target share a connection otherwise), fail-fast.
  grpc::Status NewGidOnANewConnection() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(server_->port()),
        grpc::InsecureChannelCredentials(), args);
    grpc::GenericStub stub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(3));
    grpc::Slice empty("", 0);  // google.protobuf.Empty: no bytes
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer reply;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, "/dtmgimp.Dtm/NewGid", grpc::StubOptions(),
                   &request, &reply,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }
  HttpTestConnection Raw() {
    auto c = HttpTestConnection::Connect("127.0.0.1", server_->port(),
                                         milliseconds(10000));
    EXPECT_OK(c);
    return std::move(c).value();
  }

  std::shared_ptr<RecordingLogger> log_ = std::make_shared<RecordingLogger>();
  TempDir dir_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<DtmServer> server_;
};

TEST_F(DtmServerLimitTest, AConnectionBeyondTheLimitIsRefusedSayingWhy) {
  Start(2, milliseconds(10000));
  auto first = Connect();
  ASSERT_OK(first->NewGid());         // one connection
  HttpTestConnection silent = Raw();  // the second, waiting for its preface

  // The third is closed at once, with nothing sent.
  HttpTestConnection third = Raw();
  ASSERT_OK_AND_ASSIGN(std::string got, third.ReadToEof());
  EXPECT_EQ(got, "");
  // A gRPC client on a connection of its own is told UNAVAILABLE at once
  // (not DEADLINE_EXCEEDED); the open connection goes on serving.
  const grpc::Status refused = NewGidOnANewConnection();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE)
      << refused.error_message();
  EXPECT_OK(first->NewGid());
  EXPECT_THAT(log_->Text(),
              ::testing::HasSubstr("connection(s) refused: MaxConnections (2) "
                                   "are open"));
}

TEST_F(DtmServerLimitTest, AClosedConnectionFreesItsPlace) {
  Start(1, milliseconds(10000));
  {
    HttpTestConnection silent = Raw();
    const grpc::Status refused = NewGidOnANewConnection();
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE)
        << refused.error_message();
  }  // closed
  // Counted until the server sees it closed; then served.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    served = NewGidOnANewConnection().ok();
    if (!served) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(served);
}

TEST_F(DtmServerLimitTest, ASilentConnectionIsClosedAfterTheHandshakeTimeout) {
  Start(4, milliseconds(300));
  HttpTestConnection silent = Raw();
  ASSERT_OK_AND_ASSIGN(std::string got, silent.ReadToEof());
  EXPECT_EQ(got, "");
  // Closed for its silence (not refused, not dropped for another reason):
  // what the listener says when a handshake timeout ends a connection.
  EXPECT_THAT(log_->Text(),
              ::testing::HasSubstr("a connection sent no HTTP/2 preface "
                                   "within 300 ms; closed"));
  auto client = Connect();
  EXPECT_OK(client->NewGid());
}

// Part of a preface, then the client ends its side: closed at once, not
// held until the handshake timeout (30 s here, past the read's 10 s).
TEST_F(DtmServerLimitTest, APartPrefaceThenAnEndIsClosedAtOnce) {
  Start(4, milliseconds(30000));
  HttpTestConnection partial = Raw();
  ASSERT_OK(partial.Send("PRI * HTTP"));
  partial.ShutdownWrite();
  ASSERT_OK_AND_ASSIGN(std::string got, partial.ReadToEof());
  EXPECT_EQ(got, "");
  EXPECT_OK(Connect()->NewGid());
}

TEST(DtmServerLimitOptionsTest, ALimitWithTlsIsRefused) {
  TempDir dir;
  EmbeddedOptions embedded;
  embedded.journal_path = dir.File("dtx.db");
  auto coordinator = OpenEmbeddedCoordinator(Options{}, embedded);
  ASSERT_OK(coordinator);
  DtmServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.max_connections = 10;
  options.tls.cert_file = dir.File("cert.pem");
  options.tls.key_file = dir.File("key.pem");
  EXPECT_THAT(DtmServer::Start(**coordinator, options),
              StatusIs(StatusCode::kInvalidArgument, "plaintext"));
  (*coordinator)->Shutdown();
}

}  // namespace
}  // namespace dtx::testing
