// GrpcBranchClient against real gRPC servers on 127.0.0.1.

#include "dtx/transport/grpc_branch_client.h"

#include "dtx/limits.h"

#include "branch_test_server.h"
#include "dtx_test.pb.h"
#include "status_matchers.h"
#include "test_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace dtx {

// Test names and failures say which way the answers are taken.
void PrintTo(GrpcBranchClientOptions::Completions c, std::ostream* os) {
  *os << (c == GrpcBranchClientOptions::Completions::kOwnThread
              ? "the client's own thread"
              : "gRPC's callback threads");
}

namespace testing {
namespace {

using std::chrono::milliseconds;

using Completions = GrpcBranchClientOptions::Completions;

// Every test runs with each way of taking the answers of asynchronous calls.
class GrpcBranchClientTest : public ::testing::TestWithParam<Completions> {
 protected:
  void SetUp() override {
    server_ = BranchTestServer::Start();
    client_ = NewClient();
  }

  std::unique_ptr<GrpcBranchClient> NewClient(
      GrpcBranchClientOptions options = {}) {
    options.completions = GetParam();
    auto c = GrpcBranchClient::Create(std::move(options));
    EXPECT_OK(c);
    return std::move(c).value();
  }

  BranchRequest Request(const std::string& method, std::string payload = "p") {
    BranchRequest r;
    r.url = server_->address() + method;
    r.payload = std::move(payload);
    r.info.gid = "gid-1";
    r.info.trans_type = TransType::kSaga;
    r.info.branch_id = "01";
    r.info.op = BranchOp::kAction;
    return r;
  }

  std::unique_ptr<BranchTestServer> server_;
  std::unique_ptr<GrpcBranchClient> client_;
};

TEST_P(GrpcBranchClientTest, EveryOutcomeClass) {
  server_->SetHandler("/busi.Busi/Fail", [](const ReceivedCall&) {
    return TestReply::Status(10, "FAILURE");
  });
  server_->SetHandler("/busi.Busi/Ongoing", [](const ReceivedCall&) {
    return TestReply::Status(9, "ONGOING");
  });
  server_->SetHandler("/busi.Busi/OldOngoing", [](const ReceivedCall&) {
    return TestReply::Status(10, "ONGOING");
  });
  server_->SetHandler("/busi.Busi/Broken", [](const ReceivedCall&) {
    return TestReply::Status(13, "database is down");
  });

  BranchResult ok = CallAndWait(*client_, Request("/busi.Busi/Ok", "hello"));
  EXPECT_EQ(ok.outcome, BranchOutcome::kSuccess);
  EXPECT_OK(ok.status);
  EXPECT_EQ(ok.reply, "hello");

  BranchResult fail = CallAndWait(*client_, Request("/busi.Busi/Fail"));
  EXPECT_EQ(fail.outcome, BranchOutcome::kFailure);
  EXPECT_THAT(fail.status, StatusIs(StatusCode::kAborted, "FAILURE"));

  EXPECT_EQ(CallAndWait(*client_, Request("/busi.Busi/Ongoing")).outcome,
            BranchOutcome::kOngoing);
  EXPECT_EQ(CallAndWait(*client_, Request("/busi.Busi/OldOngoing")).outcome,
            BranchOutcome::kOngoing);

  BranchResult broken = CallAndWait(*client_, Request("/busi.Busi/Broken"));
  EXPECT_EQ(broken.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(broken.status,
              StatusIs(StatusCode::kInternal, "database is down"));
}

TEST_P(GrpcBranchClientTest, ServerReceivesDtmMetadataThenBranchHeaders) {
  BranchRequest r = Request("/api.trans.v1.Trans/TransIn", "payload");
  r.info.trans_type = TransType::kTcc;
  r.info.branch_id = "0201";
  r.info.op = BranchOp::kConfirm;
  r.info.dtm = "localhost:36790";
  r.headers = {{"X-Tenant", "acme"}, {"trace-bin", std::string("\0\x01", 2)}};
  ASSERT_EQ(CallAndWait(*client_, r).outcome, BranchOutcome::kSuccess);

  auto calls = server_->Calls();
  ASSERT_EQ(calls.size(), 1u);
  const ReceivedCall& c = calls[0];
  EXPECT_EQ(c.method, "/api.trans.v1.Trans/TransIn");
  EXPECT_EQ(c.payload, "payload");
  EXPECT_EQ(c.Get("dtm-gid"), "gid-1");
  EXPECT_EQ(c.Get("dtm-trans_type"), "tcc");
  EXPECT_EQ(c.Get("dtm-branch_id"), "0201");
  EXPECT_EQ(c.Get("dtm-op"), "confirm");
  EXPECT_EQ(c.Get("dtm-dtm"), "localhost:36790");
  EXPECT_EQ(c.metadata.count("dtm-dtm"), 1u);
  EXPECT_EQ(c.Get("x-tenant"), "acme");
  EXPECT_EQ(c.Get("trace-bin"), std::string("\0\x01", 2));
}

TEST_P(GrpcBranchClientTest, EmptyDtmValueIsStillSent) {
  ASSERT_EQ(CallAndWait(*client_, Request("/busi.Busi/Ok")).outcome,
            BranchOutcome::kSuccess);
  auto calls = server_->Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].metadata.count("dtm-dtm"), 1u);
  EXPECT_EQ(calls[0].Get("dtm-dtm"), "");
}

TEST_P(GrpcBranchClientTest, InvalidHeadersFailThatCallOnly) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"x-a", "new\nline"},
      {"x-a", "caf\xc3\xa9"},
      {"bad key", "v"},
      {"", "v"},
      {"grpc-timeout", "1S"}};
  for (const auto& header : bad) {
    BranchRequest r = Request("/busi.Busi/Ok");
    r.headers = {header};
    BranchResult result = CallAndWait(*client_, r);
    EXPECT_EQ(result.outcome, BranchOutcome::kFailure) << header.first;
    EXPECT_THAT(result.status,
                StatusIs(StatusCode::kInvalidArgument, "header"));
  }
  BranchRequest bad_gid = Request("/busi.Busi/Ok");
  bad_gid.info.gid = "gid\r\n";
  EXPECT_THAT(CallAndWait(*client_, bad_gid).status,
              StatusIs(StatusCode::kInvalidArgument, "dtm-gid"));
  EXPECT_EQ(server_->Calls().size(), 0u);
  // The process is alive and the client still works.
  EXPECT_EQ(CallAndWait(*client_, Request("/busi.Busi/Ok")).outcome,
            BranchOutcome::kSuccess);
}

TEST_P(GrpcBranchClientTest, SlowHandlerHitsTheDeadline) {
  server_->SetHandler("/busi.Busi/Slow", [](const ReceivedCall&) {
    TestReply r = TestReply::Ok();
    r.delay = milliseconds(2000);
    return r;
  });
  BranchRequest r = Request("/busi.Busi/Slow");
  r.timeout = milliseconds(200);
  // The handler answers after 2 s; the 200 ms deadline ends the call first.
  BranchResult result = CallAndWait(*client_, r);
  EXPECT_EQ(result.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(result.status, StatusIs(StatusCode::kDeadlineExceeded));
}

TEST_P(GrpcBranchClientTest, DefaultTimeoutApplies) {
  server_->SetHandler("/busi.Busi/Hang", [](const ReceivedCall&) {
    TestReply r;
    r.hang = true;
    return r;
  });
  GrpcBranchClientOptions options;
  options.default_timeout = milliseconds(150);
  auto client = NewClient(options);
  EXPECT_THAT(CallAndWait(*client, Request("/busi.Busi/Hang")).status,
              StatusIs(StatusCode::kDeadlineExceeded));
}

TEST_P(GrpcBranchClientTest, UnreachablePortIsTransient) {
  const std::string address = server_->address();
  server_->Shutdown();
  BranchRequest r = Request("/busi.Busi/Ok");
  r.url = address + "/busi.Busi/Ok";
  BranchResult result = CallAndWait(*client_, r);
  EXPECT_EQ(result.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(result.status, StatusIs(StatusCode::kUnavailable));
}

TEST_P(GrpcBranchClientTest, UnknownMethodIsUnimplementedAndTransient) {
  auto typed = BranchTestServer::Start(BranchTestServer::Kind::kTypedEchoOnly);
  BranchRequest r = Request("/busi.Busi/NoSuchMethod");
  r.url = typed->address() + "/busi.Busi/NoSuchMethod";
  BranchResult result = CallAndWait(*client_, r);
  EXPECT_EQ(result.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(result.status, StatusIs(StatusCode::kUnimplemented));

  // The typed method itself answers: raw bytes are a valid message.
  dtx::test::Payload p;
  p.set_data("typed");
  r.url = typed->address() + "/dtx.test.Busi/Echo";
  r.payload = p.SerializeAsString();
  BranchResult echo = CallAndWait(*client_, r);
  ASSERT_EQ(echo.outcome, BranchOutcome::kSuccess) << echo.status;
  dtx::test::Payload back;
  ASSERT_TRUE(back.ParseFromString(echo.reply));
  EXPECT_EQ(back.data(), "typed");
}

TEST_P(GrpcBranchClientTest, EmptyAndLargestPayloadsArrive) {
  EXPECT_EQ(CallAndWait(*client_, Request("/busi.Busi/Ok", "")).outcome,
            BranchOutcome::kSuccess);
  const std::string big(kMaxPayloadBytes, 'x');
  BranchResult result = CallAndWait(*client_, Request("/busi.Busi/Ok", big));
  ASSERT_EQ(result.outcome, BranchOutcome::kSuccess) << result.status;
  EXPECT_EQ(result.reply.size(), big.size());
  auto calls = server_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].payload, "");
  EXPECT_EQ(calls[1].payload.size(), kMaxPayloadBytes);
}

TEST_P(GrpcBranchClientTest, PayloadOverTheLimitIsAClearError) {
  BranchResult result = CallAndWait(
      *client_,
      Request("/busi.Busi/Ok", std::string(kMaxPayloadBytes + 1, 'x')));
  EXPECT_EQ(result.outcome, BranchOutcome::kFailure);
  EXPECT_THAT(result.status,
              StatusIs(StatusCode::kResourceExhausted, "over the limit"));
  EXPECT_EQ(server_->Calls().size(), 0u);
}

TEST_P(GrpcBranchClientTest, BadUrlsFailAtOnceNamingTheUrl) {
  for (const char* url :
       {"", "localhost:1", "kubernetes:///busi.ns:9000/pkg.Svc/M",
        "discovery:///busi/pkg.Svc/M", "http://localhost:8080/pkg.Svc/M",
        "local host:1/pkg.Svc/M"}) {
    BranchRequest r = Request("/x.Y/Z");
    r.url = url;
    // With an hour-long deadline, a call that waited instead of failing at
    // once would run into ctest's timeout.
    r.timeout = std::chrono::hours(1);
    BranchResult result = CallAndWait(*client_, r);
    EXPECT_EQ(result.outcome, BranchOutcome::kFailure) << url;
    EXPECT_THAT(result.status, StatusIs(StatusCode::kInvalidArgument)) << url;
    EXPECT_THAT(client_->ValidateUrl(url, kProtocolGrpc),
                StatusIs(StatusCode::kInvalidArgument));
  }
  EXPECT_OK(client_->ValidateUrl("localhost:9000/api.trans.v1.Trans/TransIn",
                                 kProtocolGrpc));
}

TEST_P(GrpcBranchClientTest, CompletionRunsOnTheCallersExecutor) {
  TestExecutor strand;
  std::promise<std::thread::id> ran_on;
  client_->Call(Request("/busi.Busi/Ok"), strand.executor(),
                [&](BranchResult r) {
                  EXPECT_EQ(r.outcome, BranchOutcome::kSuccess);
                  ran_on.set_value(std::this_thread::get_id());
                });
  EXPECT_EQ(ran_on.get_future().get(), strand.id());
}

// The names of this process's threads.
std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    names.push_back(name);
  }
  return names;
}

// Without an executor the completion runs where the answers are taken: on
// the client's own completion thread (not on a thread of gRPC's callback
// API, whose threads would also take the answers of other threads' blocking
// calls: see Impl::Poll), or with kGrpcCallbackThreads on one of gRPC's, and
// then the client has no thread of its own.
TEST_P(GrpcBranchClientTest, WithoutAnExecutorTheCompletionRunsWhereAsked) {
  const bool own = GetParam() == Completions::kOwnThread;
  for (int i = 0; i < 3; ++i) {
    std::promise<std::pair<std::string, std::thread::id>> ran_on;
    client_->Call(Request("/busi.Busi/Ok"), nullptr, [&](BranchResult r) {
      EXPECT_EQ(r.outcome, BranchOutcome::kSuccess);
      char name[32] = {};
      pthread_getname_np(pthread_self(), name, sizeof name);
      ran_on.set_value({name, std::this_thread::get_id()});
    });
    const auto [name, id] = ran_on.get_future().get();
    // gRPC 1.51 names its callback threads so (CallbackAlternativeCQ).
    EXPECT_EQ(name, own ? "dtx-grpc-cq" : "nexting_thread");
    EXPECT_NE(id, std::this_thread::get_id());
  }
  EXPECT_EQ(
      ::testing::Matches(::testing::Contains("dtx-grpc-cq"))(ThreadNames()),
      own);
}

TEST_P(GrpcBranchClientTest, ChannelsAreSharedPerTarget) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(CallAndWait(*client_, Request("/busi.Busi/M" + std::to_string(i)))
                  .outcome,
              BranchOutcome::kSuccess);
  }
  EXPECT_THAT(client_->OpenChannelTargets(),
              ::testing::ElementsAre(server_->address()));
}

// A server that answers the connection with an HTTP/1.1 response (an HTTP
// port named in a gRPC branch URL, or a hostile one) fails the call as
// UNAVAILABLE, whatever form names it. With gRPC 1.51's round_robin policy
// (dtm's default service config) this killed the process with SIGSEGV
// (grpc_branch_client.h).
TEST_P(GrpcBranchClientTest, AServerAnsweringHttp1IsUnavailableNotACrash) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr),
            0);
  ASSERT_EQ(::listen(listener, 64), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len),
            0);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  std::atomic<bool> stop{false};
  std::thread peer([&] {
    while (!stop) {
      const int c = ::accept(listener, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      (void)::recv(c, buf, sizeof buf, 0);
      static const char kAnswer[] = "HTTP/1.1 200 OK\r\n\r\n";
      (void)::send(c, kAnswer, sizeof kAnswer - 1, MSG_NOSIGNAL);
      ::close(c);
    }
  });
  for (const std::string& server :
       {"127.0.0.1:" + port, "localhost:" + port, "dns:///127.0.0.1:" + port,
        "ipv4:127.0.0.1:" + port + ",127.0.0.1:" + port}) {
    for (int i = 0; i < 10; ++i) {
      BranchRequest r = Request("/busi.Busi/Ok");
      r.url = server + "/busi.Busi/Ok";
      r.timeout = std::chrono::milliseconds(2000);
      BranchResult got = CallAndWait(*client_, r);
      EXPECT_EQ(got.outcome, BranchOutcome::kTransient) << server;
      EXPECT_EQ(got.status.code(), StatusCode::kUnavailable)
          << server << ": " << got.status;
    }
  }
  stop = true;
  ::shutdown(listener, SHUT_RDWR);
  ::close(listener);
  peer.join();
}

TEST_P(GrpcBranchClientTest, RoundRobinOverTwoServers) {
  auto second = BranchTestServer::Start();
  const std::string lists[] = {
      "direct:///" + server_->address() + "," + second->address(),
      "ipv4:" + server_->address() + "," + second->address()};
  for (const std::string& server : lists) {
    auto call = [&] {
      BranchRequest r = Request("/busi.Busi/Ok");
      r.url = server + "/busi.Busi/Ok";
      return CallAndWait(*client_, r).outcome;
    };
    // gRPC's round_robin uses an address once its connection is ready:
    // call until both have answered through this URL's channel (the
    // previous URL's calls do not count: each form has its own channel),
    // then count.
    const std::size_t start_a = server_->Calls().size();
    const std::size_t start_b = second->Calls().size();
    for (int i = 0; i < 500 && (server_->Calls().size() == start_a ||
                                second->Calls().size() == start_b);
         ++i) {
      ASSERT_EQ(call(), BranchOutcome::kSuccess) << server;
    }
    const std::size_t before_a = server_->Calls().size();
    const std::size_t before_b = second->Calls().size();
    ASSERT_GT(before_a, start_a) << server;
    ASSERT_GT(before_b, start_b) << server;
    for (int i = 0; i < 20; ++i)
      ASSERT_EQ(call(), BranchOutcome::kSuccess) << server;
    const std::size_t a = server_->Calls().size() - before_a;
    const std::size_t b = second->Calls().size() - before_b;
    EXPECT_EQ(a + b, 20u);
    // Spread over both (pick_first would send all 20 to one). Not exactly
    // 10/10: right after both are ready gRPC may still update its picker
    // (seen: 7/13 under ASan on a loaded machine).
    EXPECT_GE(a, 5u) << server;
    EXPECT_GE(b, 5u) << server;
  }
}

TEST_P(GrpcBranchClientTest, AddressSetChangesOpenAndCloseOnlyWhatChanged) {
  auto b = BranchTestServer::Start();
  auto c = BranchTestServer::Start();
  auto resolver = std::make_shared<StaticServiceResolver>();
  GrpcBranchClientOptions options;
  options.driver = "dtm-driver-kratos";
  options.resolver = resolver;
  auto client = NewClient(options);
  const std::string ta = "ipv4:" + server_->address();
  const std::string tb = "ipv4:" + b->address();
  const std::string tc = "ipv4:" + c->address();
  auto call = [&] {
    BranchRequest r = Request("/busi.Busi/Ok");
    r.url = "discovery://127.0.0.1:2379/trans/busi.Busi/Ok";
    return CallAndWait(*client, r);
  };

  EXPECT_THAT(call().status,
              StatusIs(StatusCode::kUnavailable));  // unknown yet
  resolver->Set("trans", {server_->address(), b->address()});
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(call().outcome, BranchOutcome::kSuccess);
  auto targets = client->OpenChannelTargets();
  EXPECT_THAT(targets, ::testing::UnorderedElementsAre(ta, tb));
  EXPECT_EQ(server_->Calls().size(), 2u);
  EXPECT_EQ(b->Calls().size(), 2u);

  resolver->Set("trans", {b->address(), c->address()});
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(call().outcome, BranchOutcome::kSuccess);
  EXPECT_THAT(client->OpenChannelTargets(),
              ::testing::UnorderedElementsAre(tb, tc));
  EXPECT_EQ(server_->Calls().size(), 2u);  // a left the set
  EXPECT_EQ(b->Calls().size() + c->Calls().size(), 6u);
  EXPECT_GE(c->Calls().size(), 1u);
}

TEST_P(GrpcBranchClientTest, DiscoveryWithoutResolverIsAClearError) {
  GrpcBranchClientOptions options;
  options.driver = "dtm-driver-kratos";
  auto client = NewClient(options);
  BranchRequest r = Request("/busi.Busi/Ok");
  r.url = "discovery:///trans/busi.Busi/Ok";
  EXPECT_THAT(CallAndWait(*client, r).status,
              StatusIs(StatusCode::kFailedPrecondition, "registry"));
}

TEST_P(GrpcBranchClientTest, UnknownDriverOrBadServiceConfigFailCreate) {
  GrpcBranchClientOptions options;
  options.driver = "dtm-driver-gozero";
  EXPECT_THAT(GrpcBranchClient::Create(options),
              StatusIs(StatusCode::kInvalidArgument, "dtm-driver-gozero"));
  options = {};
  options.service_config = "{not json";
  EXPECT_THAT(GrpcBranchClient::Create(options),
              StatusIs(StatusCode::kInvalidArgument, "service config"));
}

TEST_P(GrpcBranchClientTest, ShutdownCancelsCallsInFlight) {
  server_->SetHandler("/busi.Busi/Hang", [](const ReceivedCall&) {
    TestReply r;
    r.hang = true;
    return r;
  });
  constexpr int kCalls = 8;
  std::atomic<int> cancelled{0};
  std::atomic<int> done{0};
  for (int i = 0; i < kCalls; ++i) {
    BranchRequest r = Request("/busi.Busi/Hang");
    r.timeout = std::chrono::seconds(60);
    client_->Call(r, nullptr, [&](BranchResult result) {
      if (result.status.code() == StatusCode::kCancelled) ++cancelled;
      ++done;
    });
  }
  while (server_->CallCount("/busi.Busi/Hang") < kCalls) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  // The calls' deadline is a minute away: only cancellation ends them now
  // (and with kCancelled, checked below).
  client_->Shutdown();
  EXPECT_EQ(done.load(), kCalls);
  EXPECT_EQ(cancelled.load(), kCalls);
  EXPECT_EQ(client_->InFlight(), 0u);
  // After shutdown, calls complete at once with kCancelled.
  EXPECT_THAT(CallAndWait(*client_, Request("/busi.Busi/Ok")).status,
              StatusIs(StatusCode::kCancelled));
}

// CallAndWait uses CallBlocking (the caller's thread takes the answer); the
// callback form must agree with it on every outcome.
TEST_P(GrpcBranchClientTest, BlockingAndCallbackFormsAgree) {
  server_->SetHandler("/busi.Busi/Fail", [](const ReceivedCall&) {
    return TestReply::Status(10, "FAILURE");
  });
  server_->SetHandler("/busi.Busi/Broken", [](const ReceivedCall&) {
    return TestReply::Status(13, "database is down");
  });
  for (const char* method : {"/busi.Busi/Ok", "/busi.Busi/Fail",
                             "/busi.Busi/Broken", "/no.Such/Method"}) {
    SCOPED_TRACE(method);
    std::promise<BranchResult> p;
    client_->Call(Request(method, "abc"), nullptr,
                  [&p](BranchResult r) { p.set_value(std::move(r)); });
    BranchResult async = p.get_future().get();
    BranchResult blocking = client_->CallBlocking(Request(method, "abc"));
    EXPECT_EQ(blocking.outcome, async.outcome);
    EXPECT_EQ(blocking.status.code(), async.status.code());
    EXPECT_EQ(blocking.status.message(), async.status.message());
    EXPECT_EQ(blocking.reply, async.reply);
  }
  // Errors found before the call reaches gRPC are the same too.
  BranchRequest bad = Request("/busi.Busi/Ok");
  bad.url = "not a url";
  EXPECT_EQ(client_->CallBlocking(bad).outcome, BranchOutcome::kFailure);
}

TEST_P(GrpcBranchClientTest, ShutdownCancelsABlockingCallInFlight) {
  server_->SetHandler("/busi.Busi/Hang", [](const ReceivedCall&) {
    TestReply r;
    r.hang = true;
    return r;
  });
  std::promise<BranchResult> result;
  std::thread caller([&] {
    BranchRequest r = Request("/busi.Busi/Hang");
    r.timeout = std::chrono::seconds(60);
    result.set_value(client_->CallBlocking(r));
  });
  while (server_->CallCount("/busi.Busi/Hang") < 1) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  // Only cancellation can end it now (its deadline is a minute away).
  client_->Shutdown();
  caller.join();
  EXPECT_THAT(result.get_future().get().status,
              StatusIs(StatusCode::kCancelled));
  EXPECT_EQ(client_->InFlight(), 0u);
}

TEST_P(GrpcBranchClientTest, TenThousandConcurrentCalls) {
  constexpr int kCalls = 10000;
  TestExecutor strand;
  std::atomic<int> ok{0};
  std::promise<void> all_done;
  std::atomic<int> remaining{kCalls};
  for (int i = 0; i < kCalls; ++i) {
    client_->Call(Request("/busi.Busi/Ok", std::to_string(i)),
                  strand.executor(), [&](BranchResult r) {
                    if (r.outcome == BranchOutcome::kSuccess) ++ok;
                    if (--remaining == 0) all_done.set_value();
                  });
  }
  all_done.get_future().get();
  EXPECT_EQ(ok.load(), kCalls);
  // A completion may run on the executor a moment before the client's thread
  // forgets the call; Shutdown waits for that, then nothing is left.
  client_->Shutdown();
  EXPECT_EQ(client_->InFlight(), 0u);
  EXPECT_EQ(server_->Calls().size(), static_cast<std::size_t>(kCalls));
}

INSTANTIATE_TEST_SUITE_P(Completions, GrpcBranchClientTest,
                         ::testing::Values(Completions::kOwnThread,
                                           Completions::kGrpcCallbackThreads),
                         [](const ::testing::TestParamInfo<Completions>& p) {
                           return p.param == Completions::kOwnThread
                                      ? "OwnThread"
                                      : "GrpcCallbackThreads";
                         });

}  // namespace
}  // namespace testing
}  // namespace dtx
