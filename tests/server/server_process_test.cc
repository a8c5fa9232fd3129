// dtx-server as a process: killed with SIGKILL in the middle of transactions
// and restarted; registered in etcd and deregistered on SIGTERM; refusing to
// start, with a clear message, on bad configuration.

#include "dtx/transaction.h"
#include "dtx/transport/etcd_client.h"
#include "dtx/transport/grpc_dtm_client.h"
#include "dtx/transport/kratos_registry.h"

#include "branch_test_server.h"
#include "dtx_server_process.h"
#include "etcd_server.h"
#include "http_test_client.h"
#include "status_matchers.h"
#include "temp_dir.h"
#include "webhook_receiver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <signal.h>
#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

std::unique_ptr<GrpcDtmClient> Connect(const std::string& address) {
  GrpcDtmClientOptions options;
  options.address = address;
  auto client = GrpcDtmClient::Create(options);
  EXPECT_OK(client);
  return client.ok() ? std::move(client).value() : nullptr;
}

// Polls until every gid has `status`; returns the gids that did not.
std::vector<std::string> WaitAll(DtmApi& dtm,
                                 const std::vector<std::string>& gids,
                                 TransStatus status, seconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::vector<std::string> left = gids;
  while (!left.empty() && std::chrono::steady_clock::now() < until) {
    std::vector<std::string> still;
    for (const std::string& gid : left) {
      auto t = dtm.Query(gid);
      if (!t.ok() || t->trans.status != status) still.push_back(gid);
    }
    left = std::move(still);
    if (!left.empty()) std::this_thread::sleep_for(milliseconds(50));
  }
  return left;
}

// The value of the sample `series` (name and labels, exactly as printed) in
// a Prometheus text; -1 when it is not there.
double SampleValue(const std::string& text, const std::string& series) {
  const std::size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

// The names of the threads of process `pid`.
std::vector<std::string> ThreadNames(pid_t pid) {
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(
           "/proc/" + std::to_string(pid) + "/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::ifstream comm(it->path() / "comm");
    std::string name;
    std::getline(comm, name);
    names.push_back(name);
  }
  return names;
}

// Runs dtx-server with its stderr folded into stdout, for startup errors.
struct Outcome {
  int exit_code = -1;
  std::string output;
};
Outcome RunToExit(const std::vector<std::string>& args) {
  std::string command = std::string("exec '") + DTX_SERVER_BINARY + "'";
  for (const std::string& a : args) command += " '" + a + "'";
  command += " 2>&1";
  auto child = Subprocess::Start({"/bin/sh", "-c", command});
  EXPECT_OK(child);
  Outcome out;
  if (!child.ok()) return out;
  while (auto line = child->ReadLine(seconds(20))) out.output += *line + "\n";
  // The output ended: the server exited (a zombie keeps its exit code when
  // killed) or hangs, which the test must not wait for.
  child->Kill(SIGKILL);
  out.exit_code = child->Wait();
  return out;
}

class ServerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { busi_ = BranchTestServer::Start(); }

  DtxServerConfig Config() const {
    DtxServerConfig config;
    config.journal_path = dir_.File("dtx.db");
    config.config_path = dir_.File("dtx.yml");
    return config;
  }

  std::string Url(const std::string& method) const {
    return busi_->address() + method;
  }

  // Starts dtx-server again on the journal and expects `gid` there,
  // submitted (to be resumed), then kills it.
  void ExpectSubmittedAfterARestart(const std::string& gid) {
    auto restarted = DtxServerProcess::Start(Config());
    ASSERT_OK(restarted);
    auto again = Connect((*restarted)->address());
    ASSERT_OK_AND_ASSIGN(auto t, again->Query(gid));
    EXPECT_EQ(t.trans.status, TransStatus::kSubmitted);
    (*restarted)->Kill(SIGKILL);
    (*restarted)->Wait();
  }

  TempDir dir_;
  std::unique_ptr<BranchTestServer> busi_;
};

TEST_F(ServerProcessTest, SigkillInTheMiddleOfTransactionsThenAllFinish) {
  // Branches answer slowly so that the kill lands while calls are out.
  busi_->SetDefaultHandler([](const ReceivedCall&) {
    TestReply r = TestReply::Ok();
    r.delay = milliseconds(100);
    return r;
  });
  auto server = DtxServerProcess::Start(Config());
  ASSERT_OK(server);
  auto dtm = Connect((*server)->address());
  ASSERT_NE(dtm, nullptr);

  std::vector<std::string> gids;
  for (int i = 0; i < 12; ++i) {
    const std::string gid = "kill-saga-" + std::to_string(i);
    ASSERT_OK(Saga(*dtm, gid)
                  .Add(Url("/busi.Busi/TransOut"),
                       Url("/busi.Busi/TransOutRevert"), "o")
                  .Add(Url("/busi.Busi/TransIn"),
                       Url("/busi.Busi/TransInRevert"), "i")
                  .Submit());
    gids.push_back(gid);
  }
  for (int i = 0; i < 4; ++i) {
    const std::string gid = "kill-msg-" + std::to_string(i);
    ASSERT_OK(Msg(*dtm, gid)
                  .Add(Url("/busi.Busi/TransOut"), "o")
                  .Add(Url("/busi.Busi/TransIn"), "i")
                  .Prepare(Url("/busi.Busi/QueryPrepared")));
    ASSERT_OK(Msg(*dtm, gid)
                  .Add(Url("/busi.Busi/TransOut"), "o")
                  .Add(Url("/busi.Busi/TransIn"), "i")
                  .Submit());
    gids.push_back(gid);
  }
  // A TCC whose client died before Submit: the restarted server must cancel
  // it after TimeoutToFail.
  const std::string orphan = "kill-tcc-orphan";
  {
    TransRequest prepare;
    prepare.gid = orphan;
    prepare.trans_type = TransType::kTcc;
    ASSERT_OK(dtm->Prepare(prepare));
    BranchRegistration b;
    b.gid = orphan;
    b.branch_id = "01";
    b.confirm_url = Url("/busi.Busi/Confirm");
    b.cancel_url = Url("/busi.Busi/Cancel");
    ASSERT_OK(dtm->RegisterBranch(b));
  }
  (*server)->Kill(SIGKILL);
  EXPECT_EQ((*server)->Wait(), 128 + SIGKILL);
  const std::size_t calls_before_restart = busi_->Calls().size();

  auto restarted = DtxServerProcess::Start(Config());
  ASSERT_OK(restarted);
  auto again = Connect((*restarted)->address());
  ASSERT_NE(again, nullptr);
  EXPECT_THAT(WaitAll(*again, gids, TransStatus::kSucceed, seconds(30)),
              ::testing::IsEmpty());
  EXPECT_THAT(WaitAll(*again, {orphan}, TransStatus::kFailed, seconds(30)),
              ::testing::IsEmpty());

  // Every action was called for every transaction; nothing was compensated,
  // and the orphan TCC was cancelled, never confirmed.
  std::map<std::string, std::set<std::string>> called;
  for (const ReceivedCall& c : busi_->Calls()) {
    called[c.Get("dtm-gid")].insert(c.method);
  }
  for (const std::string& gid : gids) {
    EXPECT_EQ(called[gid].count("/busi.Busi/TransOut"), 1u) << gid;
    EXPECT_EQ(called[gid].count("/busi.Busi/TransIn"), 1u) << gid;
    EXPECT_EQ(called[gid].count("/busi.Busi/TransOutRevert"), 0u) << gid;
    EXPECT_EQ(called[gid].count("/busi.Busi/TransInRevert"), 0u) << gid;
  }
  EXPECT_EQ(called[orphan].count("/busi.Busi/Cancel"), 1u);
  EXPECT_EQ(called[orphan].count("/busi.Busi/Confirm"), 0u);
  RecordProperty("calls_before_kill", std::to_string(calls_before_restart));

  (*restarted)->Kill(SIGTERM);
  EXPECT_EQ((*restarted)->Wait(), 0);
}

TEST_F(ServerProcessTest, SigtermLetsARequestInProgressFinish) {
  busi_->SetDefaultHandler([](const ReceivedCall&) {
    TestReply r = TestReply::Ok();
    r.delay = milliseconds(500);
    return r;
  });
  auto server = DtxServerProcess::Start(Config());
  ASSERT_OK(server);
  auto dtm = Connect((*server)->address());
  Status submitted = UnknownError("not run");
  std::thread client([&] {
    submitted = Saga(*dtm, "graceful")
                    .Add(Url("/busi.Busi/TransOut"), "", "o")
                    .WaitResult(true)
                    .Submit();
  });
  // Wait until the branch call is out, then ask the server to stop.
  for (int i = 0; i < 400 && busi_->Calls().empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  (*server)->Kill(SIGTERM);
  client.join();
  EXPECT_EQ((*server)->Wait(), 0);
  EXPECT_OK(submitted);
}

TEST_F(ServerProcessTest, ConcurrentWaitingRequestsAllSucceed) {
  busi_->SetDefaultHandler([](const ReceivedCall&) {
    TestReply r = TestReply::Ok();
    r.delay = milliseconds(50);
    return r;
  });
  // The retired WorkerThreads key still starts the server (with a warning).
  DtxServerConfig config = Config();
  config.yaml = "WorkerThreads: 2\n";
  auto server = DtxServerProcess::Start(config);
  ASSERT_OK(server);
  auto dtm = Connect((*server)->address());
  constexpr int kClients = 24;
  std::vector<Status> results(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      results[static_cast<std::size_t>(i)] =
          Saga(*dtm, "queued-" + std::to_string(i))
              .Add(Url("/busi.Busi/TransOut"), "", "o")
              .WaitResult(true)
              .Submit();
    });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_OK(results[static_cast<std::size_t>(i)]) << i;
  }
  // gRPC's callback threads, which take its requests, took the branch
  // answers too: the branch client has no thread of its own here
  // (EmbeddedOptions::branch_answers_on_grpc_threads).
  EXPECT_THAT(ThreadNames((*server)->pid()),
              ::testing::Not(::testing::Contains("dtx-grpc-cq")));
  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
}

TEST_F(ServerProcessTest, DeeplyNestedCustomDataIsRefusedWithoutCrashing) {
  auto server = DtxServerProcess::Start(Config());
  ASSERT_OK(server);
  auto dtm = Connect((*server)->address());
  TransRequest r;
  r.gid = "deep";
  r.trans_type = TransType::kSaga;
  r.steps = {{Url("/busi.Busi/A"), ""}};
  r.payloads = {""};
  constexpr int kDepth = 200000;  // ~400 KB, under the request limit
  r.custom_data = "{\"orders\":{\"0\":" + std::string(kDepth, '[') +
                  std::string(kDepth, ']') + "}}";
  EXPECT_THAT(dtm->Submit(r), StatusIs(StatusCode::kInvalidArgument));
  // Still serving.
  EXPECT_OK(dtm->NewGid());
  EXPECT_THAT(dtm->Query("deep"), StatusIs(StatusCode::kNotFound));
  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
}

// Store.FinishedDataExpire from the configuration: a finished saga is gone
// after a restart (retention runs at startup), an unfinished one stays.
TEST_F(ServerProcessTest, FinishedDataExpireRemovesFinishedKeepsUnfinished) {
  busi_->SetHandler("/busi.Busi/Down", [](const ReceivedCall&) {
    return TestReply::Status(14, "down");
  });
  DtxServerConfig config = Config();
  config.store_yaml = "Store:\n  Driver: sqlite\n  Path: '" +
                      config.journal_path + "'\n  FinishedDataExpire: 1\n";
  auto server = DtxServerProcess::Start(config);
  ASSERT_OK(server);
  auto dtm = Connect((*server)->address());
  ASSERT_NE(dtm, nullptr);
  ASSERT_OK(Saga(*dtm, "ret-done")
                .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/Revert"), "o")
                .WaitResult(true)
                .Submit());
  ASSERT_OK(Saga(*dtm, "ret-open")
                .Add(Url("/busi.Busi/Down"), Url("/busi.Busi/Revert"), "o")
                .Submit());
  // Past the second that "ret-done" is kept, and through a restart.
  std::this_thread::sleep_for(milliseconds(1500));
  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
  auto restarted = DtxServerProcess::Start(config);
  ASSERT_OK(restarted);
  auto again = Connect((*restarted)->address());
  ASSERT_NE(again, nullptr);
  Status found = Status::Ok();
  const auto until = std::chrono::steady_clock::now() + seconds(10);
  while (found.ok() && std::chrono::steady_clock::now() < until) {
    found = again->Query("ret-done").status();
    if (found.ok()) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_THAT(found, StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(TransWithBranches open, again->Query("ret-open"));
  EXPECT_EQ(open.trans.status, TransStatus::kSubmitted);
  (*restarted)->Kill(SIGTERM);
  EXPECT_EQ((*restarted)->Wait(), 0);
}

TEST_F(ServerProcessTest, SigtermEndsRequestsStillRunningAfterTheGrace) {
  busi_->SetDefaultHandler([](const ReceivedCall&) {
    TestReply r;
    r.hang = true;  // never answers; only the caller's deadline ends it
    return r;
  });
  DtxServerConfig config = Config();
  config.yaml = "ShutdownGrace: 1\n";
  auto server = DtxServerProcess::Start(config);
  ASSERT_OK(server);
  auto dtm = Connect((*server)->address());
  Status submitted;
  std::thread client([&] {
    submitted = Saga(*dtm, "stuck")
                    .Add(Url("/busi.Busi/TransOut"), "", "o")
                    .RequestTimeout(std::chrono::seconds(600))
                    .WaitResult(true)
                    .Submit();
  });
  for (int i = 0; i < 400 && busi_->Calls().empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  // Without the grace being enforced the server would wait for the branch's
  // 600 s deadline and the test would time out.
  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
  client.join();
  EXPECT_THAT(submitted, StatusIs(StatusCode::kUnavailable, "shutdown grace"));
  // The saga is still in the journal, to be resumed by the next start.
  ExpectSubmittedAfterARestart("stuck");
}

// A caller that gives up on a request waiting for the coordinator (its
// deadline passes) is let go at once (the reactor's OnCancel): the request
// is not among those that shutdown waits for, which would otherwise wait out
// the grace (an hour here).
TEST_F(ServerProcessTest, ACallerThatGivesUpIsNotWaitedForAtShutdown) {
  busi_->SetDefaultHandler([](const ReceivedCall&) {
    TestReply r;
    r.hang = true;
    return r;
  });
  DtxServerConfig config = Config();
  config.yaml = "ShutdownGrace: 3600\n";
  auto server = DtxServerProcess::Start(config);
  ASSERT_OK(server);
  GrpcDtmClientOptions options;
  options.address = (*server)->address();
  options.timeout = std::chrono::seconds(2);
  auto dtm = GrpcDtmClient::Create(options);
  ASSERT_OK(dtm);
  // Connected first, so that the deadline is spent waiting for the branch.
  ASSERT_OK((*dtm)->NewGid());
  const Status submitted = Saga(**dtm, "given-up")
                               .Add(Url("/busi.Busi/TransOut"), "", "o")
                               .RequestTimeout(std::chrono::seconds(600))
                               .WaitResult(true)
                               .Submit();
  EXPECT_THAT(submitted, StatusIs(StatusCode::kDeadlineExceeded));
  // The server goes on answering.
  EXPECT_OK((*dtm)->NewGid());
  (*server)->Kill(SIGTERM);
  const std::optional<int> exit_code = (*server)->WaitFor(seconds(60));
  if (!exit_code) {
    (*server)->Kill(SIGKILL);
    (*server)->Wait();
  }
  ASSERT_TRUE(exit_code.has_value())
      << "dtx-server waited for the request its caller gave up";
  EXPECT_EQ(*exit_code, 0);
  // The saga is in the journal, for the next start.
  ExpectSubmittedAfterARestart("given-up");
}

TEST_F(ServerProcessTest, BadConfigurationIsAClearStartupError) {
  std::ofstream(dir_.File("bad.yml")) << "RetryInterval: ten\n";
  Outcome bad = RunToExit({"-c", dir_.File("bad.yml")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("RetryInterval: 'ten' is not an integer"));

  std::ofstream(dir_.File("mysql.yml")) << "Store:\n  Driver: mysql\n";
  Outcome mysql = RunToExit({"-c", dir_.File("mysql.yml")});
  EXPECT_EQ(mysql.exit_code, 1);
  EXPECT_THAT(mysql.output, HasSubstr("SQLite or PostgreSQL"));

  Outcome missing = RunToExit({"-c", dir_.File("nope.yml")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("cannot read the config file"));

  std::ofstream(dir_.File("garbage.db")) << std::string(8192, 'x');
  Outcome corrupt = RunToExit({"--grpc-port", "0", "--http-port", "0",
                               "--store-path", dir_.File("garbage.db")});
  EXPECT_EQ(corrupt.exit_code, 1);
  EXPECT_THAT(corrupt.output, HasSubstr("cannot open the coordinator"));
}

TEST_F(ServerProcessTest, StoreCreateFalseRefusesAMissingJournal) {
  // A restart whose journal went missing (deleted, or a relative path from
  // another directory) must not start empty without a word.
  std::ofstream(dir_.File("nocreate.yml"))
      << "Store:\n  Path: " << dir_.File("gone.db") << "\n  Create: false\n";
  Outcome missing = RunToExit({"-c", dir_.File("nocreate.yml"), "--grpc-port",
                               "0", "--http-port", "0"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr(dir_.File("gone.db")));
  EXPECT_THAT(missing.output, HasSubstr("Store.Create is false"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("gone.db")));
}

TEST_F(ServerProcessTest, PortInUseIsAClearStartupError) {
  auto server = DtxServerProcess::Start(Config());
  ASSERT_OK(server);
  Outcome second = RunToExit({"--grpc-host", "127.0.0.1", "--grpc-port",
                              std::to_string((*server)->port()), "--http-port",
                              "0", "--store-path", dir_.File("other.db")});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.output, HasSubstr("cannot listen on"));
  // The HTTP port likewise, before anything else is started.
  Outcome http =
      RunToExit({"--grpc-host", "127.0.0.1", "--grpc-port", "0", "--http-port",
                 std::to_string((*server)->http_port()), "--store-path",
                 dir_.File("other.db")});
  EXPECT_EQ(http.exit_code, 1);
  EXPECT_THAT(http.output,
              HasSubstr("HttpPort " + std::to_string((*server)->http_port()) +
                        ": http: cannot listen on 127.0.0.1:"));
  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
}

// MaxConnections on both ports: a connection beyond it is closed at once on
// the gRPC port and answered 503 on the HTTP port; the open ones serve.
TEST_F(ServerProcessTest, MaxConnectionsRefusesBeyondTheLimitOnBothPorts) {
  DtxServerConfig config = Config();
  config.yaml = "MaxConnections: 1\n";
  auto server = DtxServerProcess::Start(config);
  ASSERT_OK(server);
  auto dtm = Connect((*server)->address());
  ASSERT_OK(dtm->NewGid());  // the gRPC port's one connection
  ASSERT_OK_AND_ASSIGN(
      auto over, HttpTestConnection::Connect("127.0.0.1", (*server)->port()));
  ASSERT_OK_AND_ASSIGN(std::string got, over.ReadToEof());
  EXPECT_EQ(got, "");
  EXPECT_OK(dtm->NewGid());

  ASSERT_OK_AND_ASSIGN(auto http, HttpTestConnection::Connect(
                                      "127.0.0.1", (*server)->http_port()));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse ping,
                       http.Roundtrip("GET", "/api/ping"));
  EXPECT_EQ(ping.status, 200);
  ASSERT_OK_AND_ASSIGN(
      auto http_over,
      HttpTestConnection::Connect("127.0.0.1", (*server)->http_port()));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse refused,
                       http_over.Roundtrip("GET", "/api/ping"));
  EXPECT_EQ(refused.status, 503);
  EXPECT_THAT(refused.body, HasSubstr("too many connections"));
  ASSERT_OK_AND_ASSIGN(ping, http.Roundtrip("GET", "/api/ping"));
  EXPECT_EQ(ping.status, 200);
  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
}

TEST_F(ServerProcessTest, ServesPingAndHealthOnTheHttpPort) {
  auto server = DtxServerProcess::Start(Config());
  ASSERT_OK(server);
  EXPECT_THAT((*server)->http_address(), ::testing::StartsWith("127.0.0.1:"));
  EXPECT_NE((*server)->http_port(), (*server)->port());
  ASSERT_OK_AND_ASSIGN(
      auto c, HttpTestConnection::Connect("127.0.0.1", (*server)->http_port()));
  // dtm's ping, any method, on one keep-alive connection.
  for (const char* method : {"GET", "POST", "PUT"}) {
    ASSERT_OK_AND_ASSIGN(HttpTestResponse ping,
                         c.Roundtrip(method, "/api/ping"));
    EXPECT_EQ(ping.status, 200) << method;
    EXPECT_EQ(ping.body, R"({"msg":"pong"})");
    EXPECT_EQ(ping.Header("Content-Type"), "application/json");
  }
  ASSERT_OK_AND_ASSIGN(HttpTestResponse health,
                       c.Roundtrip("GET", "/api/health"));
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"status":"SERVING"})");
  // dtm's transaction API is served (dtm_http_api_test.cc); an unknown
  // path is not.
  ASSERT_OK_AND_ASSIGN(HttpTestResponse gid,
                       c.Roundtrip("GET", "/api/dtmsvr/newGid"));
  EXPECT_EQ(gid.status, 200);
  ASSERT_OK_AND_ASSIGN(HttpTestResponse missing,
                       c.Roundtrip("GET", "/api/dtmsvr/noSuchRoute"));
  EXPECT_EQ(missing.status, 404);
  // SIGTERM closes the idle keep-alive connection and the server exits 0.
  (*server)->Kill(SIGTERM);
  EXPECT_TRUE(c.ReadsEof());
  EXPECT_EQ((*server)->Wait(), 0);
}

TEST_F(ServerProcessTest, ServesDtmMetricsAfterASaga) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  busi_->SetDefaultHandler([calls](const ReceivedCall&) {
    // The first call of the first step fails once: a retried branch.
    return (*calls)++ == 0 ? TestReply::Status(14, "not yet up")
                           : TestReply::Ok();
  });
  auto server = DtxServerProcess::Start(Config());
  ASSERT_OK(server);
  auto dtm = Connect((*server)->address());
  ASSERT_NE(dtm, nullptr);
  ASSERT_OK(Saga(*dtm, "metrics-saga")
                .Add(Url("/busi.Busi/TransOut"), "", "o")
                .Add(Url("/busi.Busi/TransIn"), "", "i")
                .Submit());
  ASSERT_OK_AND_ASSIGN(
      auto c, HttpTestConnection::Connect("127.0.0.1", (*server)->http_port()));
  const std::vector<std::string> wanted = {
      R"(dtm_branch_process_total{model="saga",branchtype="action",status="ok"} 2)",
      R"(dtm_branch_process_total{model="saga",branchtype="action",status="fail"} 1)",
      R"(dtm_transaction_process_total{model="saga",status="ok"} 1)",
      R"(dtm_transaction_process_total{model="saga",status="fail"} 1)",
      R"(dtx_branch_call_duration_seconds_count{outcome="transient"} 1)",
      "dtx_transactions_in_memory 0"};
  // The saga ends after a retry (1 s); each scrape is a real round trip.
  HttpTestResponse metrics;
  const auto deadline = std::chrono::steady_clock::now() + seconds(20);
  bool all = false;
  while (!all && std::chrono::steady_clock::now() < deadline) {
    ASSERT_OK_AND_ASSIGN(metrics, c.Roundtrip("GET", "/api/metrics"));
    ASSERT_EQ(metrics.status, 200);
    all = true;
    for (const std::string& line : wanted)
      all = all && metrics.body.find(line + "\n") != std::string::npos;
  }
  for (const std::string& line : wanted)
    EXPECT_THAT(metrics.body, ::testing::HasSubstr(line + "\n"));
  // dtm's request metrics: the client's Submit over gRPC, the scrapes so far
  // over HTTP, and the build.
  EXPECT_GE(
      SampleValue(
          metrics.body,
          R"(dtm_server_process_total{type="grpc",api="submit",status="ok"})"),
      1);
  EXPECT_EQ(
      SampleValue(
          metrics.body,
          R"(dtm_server_process_total{type="grpc",api="submit",status="fail"})"),
      0);
  EXPECT_GE(
      SampleValue(
          metrics.body,
          R"(dtm_server_response_duration_count{type="grpc",api="submit"})"),
      1);
  EXPECT_GE(
      SampleValue(
          metrics.body,
          R"(dtm_server_process_total{type="http",api="metrics",status="ok"})"),
      1);
  EXPECT_THAT(metrics.body,
              ::testing::HasSubstr(
                  "\ndtm_server_info{gin_version=\"none\",grpc_version=\""));
  // The journal's and the backlog's.
  EXPECT_GE(
      SampleValue(metrics.body, "dtx_journal_commit_duration_seconds_count"),
      1);
  EXPECT_GE(SampleValue(metrics.body, "dtx_journal_batch_writes_sum"), 1);
  EXPECT_EQ(SampleValue(metrics.body, "dtx_journal_queued_writes"), 0);
  EXPECT_GE(SampleValue(metrics.body, "dtx_transactions_unfinished"), 0);
  EXPECT_GE(SampleValue(metrics.body, "dtx_transactions_due"), 0);
  EXPECT_GE(SampleValue(metrics.body,
                        "dtx_oldest_unfinished_transaction_age_seconds"),
            0);
  // A path the server does not serve is counted, under one fixed label.
  ASSERT_OK_AND_ASSIGN(HttpTestResponse missing,
                       c.Roundtrip("GET", "/no/such/path?x=1"));
  EXPECT_EQ(missing.status, 404);
  ASSERT_OK_AND_ASSIGN(metrics, c.Roundtrip("GET", "/api/metrics"));
  EXPECT_GE(
      SampleValue(
          metrics.body,
          R"(dtm_server_process_total{type="http",api="other",status="fail"})"),
      1);
  EXPECT_THAT(metrics.body, ::testing::Not(::testing::HasSubstr("such")));
  EXPECT_EQ(metrics.Header("Content-Type"),
            "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(metrics.body,
              ::testing::HasSubstr("# TYPE dtm_transaction_handled_duration "
                                   "histogram\n"));
  // Bounded by construction: no gid anywhere in the labels.
  EXPECT_THAT(metrics.body,
              ::testing::Not(::testing::HasSubstr("metrics-saga")));
  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
}

TEST_F(ServerProcessTest, AlertsTheWebhookOncePerThreshold) {
  // The branch fails twice, then succeeds: with AlertRetryLimit 2, one alert
  // (at the second failed call), and none after.
  auto calls = std::make_shared<std::atomic<int>>(0);
  busi_->SetDefaultHandler([calls](const ReceivedCall&) {
    return (*calls)++ < 2 ? TestReply::Status(14, "busi down")
                          : TestReply::Ok();
  });
  ASSERT_OK_AND_ASSIGN(auto hook, WebhookReceiver::Start());
  DtxServerConfig config = Config();
  config.yaml = "AlertRetryLimit: 2\nAlertWebHook: " + hook->url() + "\n";
  auto server = DtxServerProcess::Start(config);
  ASSERT_OK(server);
  auto dtm = Connect((*server)->address());
  ASSERT_NE(dtm, nullptr);
  ASSERT_OK(Saga(*dtm, "alert-saga")
                .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/Revert"), "o")
                .Submit());
  EXPECT_THAT(WaitAll(*dtm, {"alert-saga"}, TransStatus::kSucceed, seconds(30)),
              ::testing::IsEmpty());
  ASSERT_TRUE(hook->WaitForRequests(1));
  // Sent and counted before the test looks at what arrived.
  const std::string sent = R"(dtx_alerts_total{outcome="sent"})";
  const auto until = std::chrono::steady_clock::now() + seconds(20);
  double n = 0;
  while (n < 1 && std::chrono::steady_clock::now() < until) {
    auto metrics = HttpGet((*server)->http_port(), "/api/metrics");
    ASSERT_OK(metrics);
    n = SampleValue(metrics->body, sent);
  }
  EXPECT_EQ(n, 1);
  const auto got = hook->requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].content_type, "application/json");
  auto body = nlohmann::json::parse(got[0].body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << got[0].body;
  EXPECT_EQ(body["gid"], "alert-saga");
  EXPECT_EQ(body["status"], "submitted");
  EXPECT_EQ(body["branch"], Url("/busi.Busi/TransOut"));
  EXPECT_EQ(body["branch_id"], "01");
  EXPECT_EQ(body["op"], "action");
  EXPECT_EQ(body["retry_count"], 2);
  EXPECT_EQ(body["threshold"], 2);
  EXPECT_THAT(body["error"].get<std::string>(), HasSubstr("busi down"));
  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
}

TEST_F(ServerProcessTest, AWebhookThatHangsHoldsNoTransactionBack) {
  // Every branch call fails once then succeeds; every failed call alerts
  // (AlertRetryLimit 1) to a webhook that never answers.
  auto failed = std::make_shared<std::set<std::string>>();
  auto mu = std::make_shared<std::mutex>();
  busi_->SetDefaultHandler([failed, mu](const ReceivedCall& call) {
    std::lock_guard<std::mutex> lock(*mu);
    return failed->insert(call.Get("dtm-gid")).second
               ? TestReply::Status(14, "not yet")
               : TestReply::Ok();
  });
  ASSERT_OK_AND_ASSIGN(auto hook, WebhookReceiver::Start({0}));
  DtxServerConfig config = Config();
  config.yaml = "AlertRetryLimit: 1\nAlertWebHook: " + hook->url() + "\n";
  auto server = DtxServerProcess::Start(config);
  ASSERT_OK(server);
  auto dtm = Connect((*server)->address());
  ASSERT_NE(dtm, nullptr);
  std::vector<std::string> gids;
  for (int i = 0; i < 5; ++i) {
    gids.push_back("hang-" + std::to_string(i));
    ASSERT_OK(
        Saga(*dtm, gids.back())
            .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/Revert"), "o")
            .Submit());
  }
  // Each saga alerted and then finished, while its alert hangs.
  EXPECT_THAT(WaitAll(*dtm, gids, TransStatus::kSucceed, seconds(30)),
              ::testing::IsEmpty());
  ASSERT_TRUE(hook->WaitForRequests(gids.size()));
  auto metrics = HttpGet((*server)->http_port(), "/api/metrics");
  ASSERT_OK(metrics);
  EXPECT_EQ(SampleValue(metrics->body, R"(dtx_alerts_total{outcome="sent"})"),
            0);
  // SIGTERM: the alerts still hanging are abandoned after a short wait.
  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
}

TEST_F(ServerProcessTest, AnHttpsWebhookIsAClearStartupError) {
  DtxServerConfig config = Config();
  config.yaml = "AlertWebHook: https://hooks.example/dtx\n";
  auto server = DtxServerProcess::Start(config);
  ASSERT_FALSE(server.ok());
  const Outcome out = RunToExit(
      {"-c", config.config_path, "--grpc-port", "0", "--http-port", "0"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("AlertWebHook"));
  EXPECT_THAT(out.output, HasSubstr("issue #15"));
}

TEST_F(ServerProcessTest, ReadmeExampleConfigStartsAndAnswersNewGid) {
  const auto started = std::chrono::steady_clock::now();
  auto child = Subprocess::Start({DTX_SERVER_BINARY, "-c", DTX_EXAMPLE_CONFIG,
                                  "--grpc-host", "127.0.0.1", "--grpc-port",
                                  "0", "--http-port", "0", "--store-path",
                                  dir_.File("example.db")});
  ASSERT_OK(child);
  auto line = child->ReadLine(seconds(20));
  ASSERT_TRUE(line.has_value());
  const std::string prefix = "dtx-server: listening on ";
  ASSERT_EQ(line->rfind(prefix, 0), 0u) << *line;
  auto dtm = Connect(line->substr(prefix.size()));
  ASSERT_NE(dtm, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string gid, dtm->NewGid());
  EXPECT_FALSE(gid.empty());
  const auto elapsed = std::chrono::duration_cast<milliseconds>(
      std::chrono::steady_clock::now() - started);
  // Measured, not asserted (timings depend on the machine).
  RecordProperty("start_to_first_gid_ms", std::to_string(elapsed.count()));
  std::printf(
      "dtx-server with the example config: first NewGid after %lld ms\n",
      static_cast<long long>(elapsed.count()));
  child->Kill(SIGTERM);
  EXPECT_EQ(child->Wait(), 0);
}

TEST_F(ServerProcessTest, ListensOnAnIpv6HostWithOrWithoutBrackets) {
  for (const std::string host : {"::1", "[::1]"}) {
    auto child = Subprocess::Start({DTX_SERVER_BINARY, "--grpc-host", host,
                                    "--grpc-port", "0", "--http-port", "0",
                                    "--store-path", dir_.File("v6.db")});
    ASSERT_OK(child);
    auto line = child->ReadLine(seconds(20));
    ASSERT_TRUE(line.has_value()) << host;
    const std::string prefix = "dtx-server: listening on [::1]:";
    ASSERT_EQ(line->rfind(prefix, 0), 0u) << host << ": " << *line;
    auto dtm =
        Connect(line->substr(std::string("dtx-server: listening on ").size()));
    ASSERT_NE(dtm, nullptr);
    EXPECT_OK(dtm->NewGid()) << host;
    child->Kill(SIGTERM);
    EXPECT_EQ(child->Wait(), 0);
  }
}

class ServerRegistryTest : public EtcdTest {};

TEST_F(ServerRegistryTest, RegistersAsDtmServiceAndLeavesOnSigterm) {
  TempDir dir;
  auto busi = BranchTestServer::Start();
  // The EndPoint must name the real port, so take a free one first.
  int port = 0;
  {
    auto probe = BranchTestServer::Start();
    port = probe->port();
    probe->Shutdown();
  }
  DtxServerConfig config;
  config.journal_path = dir.File("dtx.db");
  config.config_path = dir.File("dtx.yml");
  config.port = port;
  config.yaml =
      "MicroService:\n  Driver: dtm-driver-kratos\n  Target: "
      "discovery://" +
      etcd_->endpoint() +
      "/dtmservice\n  EndPoint: grpc://127.0.0.1:" + std::to_string(port) +
      "\n";
  auto server = DtxServerProcess::Start(config, /*expect_registration=*/true);
  ASSERT_OK(server);
  const std::string key = (*server)->registry_key();
  EXPECT_THAT(key, ::testing::StartsWith("/microservices/dtmservice/"));

  EtcdClientOptions o;
  o.endpoints = {etcd_->endpoint()};
  ASSERT_OK_AND_ASSIGN(auto etcd, EtcdClient::Create(o));
  ASSERT_OK_AND_ASSIGN(auto range, etcd->Get(key));
  ASSERT_EQ(range.kvs.size(), 1u);
  ASSERT_OK_AND_ASSIGN(ServiceInstance instance,
                       DecodeServiceInstance(range.kvs[0].value));
  EXPECT_EQ(instance.name, "dtmservice");
  EXPECT_THAT(instance.endpoints, ::testing::ElementsAre("grpc://127.0.0.1:" +
                                                         std::to_string(port)));
  EXPECT_NE(range.kvs[0].lease, 0);

  // A client finds the server through etcd, as dtm's Kratos clients do.
  auto dtm = Connect("discovery://" + etcd_->endpoint() + "/dtmservice");
  ASSERT_NE(dtm, nullptr);
  ASSERT_OK(Saga(*dtm, "via-etcd")
                .Add(busi->address() + "/busi.Busi/A", "", "a")
                .WaitResult(true)
                .Submit());

  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
  ASSERT_OK_AND_ASSIGN(auto after, etcd->Get(key));
  EXPECT_TRUE(after.kvs.empty()) << "still registered after SIGTERM";
}

// Several dtx-server processes registered under one service name (dtm's
// Kratos driver gives every replica the same key, so each overwrites the
// others): each gets a key of its own, /microservices/<name>/<random id>,
// holding its own endpoint, and leaving removes that key only.
TEST_F(ServerRegistryTest, ThreeServersOnOneEtcdRegisterThreeKeys) {
  TempDir dir;
  std::vector<std::unique_ptr<DtxServerProcess>> servers;
  std::set<std::string> endpoints;
  for (int i = 0; i < 3; ++i) {
    int port = 0;
    {
      auto probe = BranchTestServer::Start();
      port = probe->port();
      probe->Shutdown();
    }
    const std::string endpoint = "grpc://127.0.0.1:" + std::to_string(port);
    endpoints.insert(endpoint);
    DtxServerConfig config;
    config.journal_path = dir.File("dtx" + std::to_string(i) + ".db");
    config.config_path = dir.File("dtx" + std::to_string(i) + ".yml");
    config.port = port;
    config.yaml =
        "MicroService:\n  Driver: dtm-driver-kratos\n  Target: etcd://" +
        etcd_->endpoint() + "/dtmservice\n  EndPoint: " + endpoint + "\n";
    auto server = DtxServerProcess::Start(config, /*expect_registration=*/true);
    ASSERT_OK(server);
    servers.push_back(std::move(server).value());
  }
  std::set<std::string> printed_keys;
  for (const auto& server : servers)
    printed_keys.insert(server->registry_key());
  EXPECT_EQ(printed_keys.size(), 3u);

  EtcdClientOptions o;
  o.endpoints = {etcd_->endpoint()};
  ASSERT_OK_AND_ASSIGN(auto etcd, EtcdClient::Create(o));
  ASSERT_OK_AND_ASSIGN(auto range,
                       etcd->GetPrefix("/microservices/dtmservice/"));
  ASSERT_EQ(range.kvs.size(), 3u);
  std::set<std::string> keys;
  std::set<std::string> ids;
  std::set<std::string> registered;
  for (const auto& kv : range.kvs) {
    keys.insert(kv.key);
    ASSERT_OK_AND_ASSIGN(ServiceInstance instance,
                         DecodeServiceInstance(kv.value));
    EXPECT_EQ(kv.key, "/microservices/dtmservice/" + instance.id);
    ids.insert(instance.id);
    ASSERT_EQ(instance.endpoints.size(), 1u);
    registered.insert(instance.endpoints[0]);
  }
  EXPECT_EQ(keys, printed_keys);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(registered, endpoints);

  // One leaves: its key goes, the others' stay.
  const std::string gone = servers[1]->registry_key();
  servers[1]->Kill(SIGTERM);
  EXPECT_EQ(servers[1]->Wait(), 0);
  ASSERT_OK_AND_ASSIGN(auto after,
                       etcd->GetPrefix("/microservices/dtmservice/"));
  std::set<std::string> left;
  for (const auto& kv : after.kvs) left.insert(kv.key);
  printed_keys.erase(gone);
  EXPECT_EQ(left, printed_keys);
  for (int i : {0, 2}) {
    servers[i]->Kill(SIGTERM);
    EXPECT_EQ(servers[i]->Wait(), 0);
  }
}

// MicroService.InstanceId: the registration's key is the one configured,
// and a restart after SIGKILL takes the same key over (no stale second
// registration until the old lease expires).
TEST_F(ServerRegistryTest, AConfiguredInstanceIdIsTheRegistrationKey) {
  TempDir dir;
  int port = 0;
  {
    auto probe = BranchTestServer::Start();
    port = probe->port();
    probe->Shutdown();
  }
  DtxServerConfig config;
  config.journal_path = dir.File("dtx.db");
  config.config_path = dir.File("dtx.yml");
  config.port = port;
  config.yaml =
      "MicroService:\n  Driver: dtm-driver-kratos\n  Target: etcd://" +
      etcd_->endpoint() +
      "/dtmservice\n  EndPoint: grpc://127.0.0.1:" + std::to_string(port) +
      "\n  InstanceId: dtx-0\n";
  EtcdClientOptions o;
  o.endpoints = {etcd_->endpoint()};
  ASSERT_OK_AND_ASSIGN(auto etcd, EtcdClient::Create(o));
  for (int start = 0; start < 2; ++start) {
    auto server = DtxServerProcess::Start(config, /*expect_registration=*/true);
    ASSERT_OK(server);
    EXPECT_EQ((*server)->registry_key(), "/microservices/dtmservice/dtx-0");
    ASSERT_OK_AND_ASSIGN(auto range,
                         etcd->GetPrefix("/microservices/dtmservice/"));
    ASSERT_EQ(range.kvs.size(), 1u);
    EXPECT_EQ(range.kvs[0].key, "/microservices/dtmservice/dtx-0");
    ASSERT_OK_AND_ASSIGN(ServiceInstance instance,
                         DecodeServiceInstance(range.kvs[0].value));
    EXPECT_EQ(instance.id, "dtx-0");
    (*server)->Kill(SIGKILL);  // leaves its key behind, until its lease ends
    (*server)->Wait();
  }
}

TEST_F(ServerRegistryTest, UnreachableEtcdIsAClearStartupError) {
  TempDir dir;
  std::ofstream(dir.File("dtx.yml"))
      << "MicroService:\n  Driver: dtm-driver-kratos\n"
      << "  Target: discovery://127.0.0.1:1/dtmservice\n"
      << "  EndPoint: grpc://127.0.0.1:36790\n";
  Outcome out = RunToExit({"-c", dir.File("dtx.yml"), "--grpc-host",
                           "127.0.0.1", "--grpc-port", "0", "--http-port", "0",
                           "--store-path", dir.File("dtx.db")});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("registering in etcd"));
}

}  // namespace
}  // namespace dtx::testing
