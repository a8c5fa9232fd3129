// dtxctl, the binary, against a real dtx-server process (journal in a temp
// dir, ports ephemeral on 127.0.0.1) with transactions submitted through
// GrpcDtmClient, and on the journal file that server writes, while it runs
// and after it stopped: output, JSON and exit codes.

#include "dtx/transaction.h"
#include "dtx/transport/grpc_dtm_client.h"

#include "dtx_server_process.h"
#include "status_matchers.h"
#include "subprocess.h"
#include "temp_dir.h"
#include "test_certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace dtx::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// Nothing listens on port 1: calls fail at once, a transient error.
constexpr char kUnreachable[] = "127.0.0.1:1/busi.Busi/Nowhere";
// A back-off far longer than the test, so that only `retry` makes a stuck
// branch be called again.
constexpr char kLongBackOff[] =
    "RetryInterval: 60\nTimeoutToFail: 120\nRequestTimeout: 3\n"
    "TransCronInterval: 1\nRetryIntervalMax: 3600\n";
constexpr char kToken[] = "ctl-T0ken";

struct CtlRun {
  int code = -1;
  std::string out;
  std::string err;
  json Json() const {
    json j = json::parse(out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out;
    return j;
  }
};

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

class DtxctlTest : public ::testing::Test {
 protected:
  // Runs dtxctl with `args` (and `env`, "NAME=value" words) to its end.
  CtlRun Ctl(const std::vector<std::string>& args,
             const std::string& env = "") {
    const std::string err = dir_.File("stderr.txt");
    std::string cmd = env + " exec " + Quote(DTXCTL_BINARY);
    for (const auto& a : args) cmd += " " + Quote(a);
    cmd += " 2>" + Quote(err);
    auto child = Subprocess::Start({"/bin/sh", "-c", cmd});
    EXPECT_OK(child);
    CtlRun r;
    if (!child.ok()) return r;
    while (auto line = child->ReadLine()) r.out += *line + "\n";
    r.code = child->Wait();
    std::ifstream in(err);
    std::stringstream text;
    text << in.rdbuf();
    r.err = text.str();
    return r;
  }
  CtlRun Server(std::vector<std::string> args, const std::string& env = "") {
    args.insert(args.begin(), {"--server", server_->address()});
    return Ctl(args, env);
  }
  CtlRun Journal(std::vector<std::string> args) {
    args.insert(args.begin(), {"--journal", journal_});
    return Ctl(args);
  }

  void StartServer(const std::string& yaml = "",
                   const std::string& admin_token = "") {
    DtxServerConfig config;
    config.journal_path = journal_;
    config.config_path = dir_.File("dtx.yml");
    config.intervals = kLongBackOff;
    config.yaml = yaml;
    auto server = DtxServerProcess::Start(config);
    ASSERT_OK(server);
    server_ = std::move(server).value();
    GrpcDtmClientOptions options;
    options.address = server_->address();
    options.admin_token = admin_token;
    auto client = GrpcDtmClient::Create(options);
    ASSERT_OK(client);
    dtm_ = std::move(client).value();
  }
  void StopServer() {
    dtm_.reset();
    server_->Kill(SIGTERM);
    EXPECT_EQ(server_->Wait(), 0);
    server_.reset();
  }

  // A saga stuck on an unreachable branch (tried once) and one that
  // succeeded.
  void SubmitStuckAndDone() {
    ASSERT_OK(Saga(*dtm_, "stuck-1").Add(kUnreachable, "", "").Submit());
    ASSERT_OK(Saga(*dtm_, "done-1").Add("", "", "").WaitResult(true).Submit());
    ASSERT_TRUE(AttemptsReach("stuck-1", 1));
  }

  // Polls for up to 20 s (the server works on its own).
  static bool Eventually(const std::function<bool()>& done) {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }
  int64_t Attempts(const std::string& gid) {
    auto q = dtm_->Query(gid);
    if (!q.ok() || q->branches.size() < 2) return -1;
    return q->branches[1].attempts;
  }
  bool AttemptsReach(const std::string& gid, int64_t n) {
    return Eventually([&] { return Attempts(gid) >= n; });
  }

  static std::vector<std::string> Gids(const json& list) {
    std::vector<std::string> out;
    for (const auto& t : list["transactions"]) out.push_back(t["gid"]);
    return out;
  }

  TempDir dir_;
  std::string journal_ = dir_.File("dtx.db");
  std::unique_ptr<DtxServerProcess> server_;
  std::unique_ptr<GrpcDtmClient> dtm_;
};

TEST_F(DtxctlTest, ServerListShowStatsRetryAndForceStop) {
  StartServer();
  SubmitStuckAndDone();

  CtlRun r = Server({"list", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(Gids(r.Json()), ::testing::ElementsAre("done-1", "stuck-1"));
  EXPECT_EQ(r.Json()["next_position"], "");
  r = Server({"list", "--json", "--unfinished"});
  EXPECT_THAT(Gids(r.Json()), ::testing::ElementsAre("stuck-1"));
  r = Server({"list", "--json", "--status", "succeed", "--mode", "saga"});
  EXPECT_THAT(Gids(r.Json()), ::testing::ElementsAre("done-1"));
  r = Server({"list", "--json", "--gid-prefix", "stuck-"});
  EXPECT_THAT(Gids(r.Json()), ::testing::ElementsAre("stuck-1"));
  // Paging: one row, then the next page from the printed position.
  r = Server({"list", "--json", "--limit", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(Gids(r.Json()), ::testing::ElementsAre("done-1"));
  const std::string position = r.Json()["next_position"];
  ASSERT_FALSE(position.empty());
  r = Server({"list", "--json", "--limit", "1", "--position", position});
  EXPECT_THAT(Gids(r.Json()), ::testing::ElementsAre("stuck-1"));
  // The table: a header and one aligned row per transaction.
  r = Server({"list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("GID      MODE  STATUS"));
  EXPECT_THAT(r.out, HasSubstr("stuck-1  saga  submitted"));

  r = Server({"show", "stuck-1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json q = r.Json();
  EXPECT_EQ(q["transaction"]["status"], "submitted");
  EXPECT_TRUE(q["transaction"]["next_cron_time"].is_string());
  EXPECT_EQ(q["branches"][1]["op"], "action");
  EXPECT_EQ(q["branches"][1]["url"], kUnreachable);
  EXPECT_GE(q["branches"][1]["attempts"].get<int64_t>(), 1);
  EXPECT_THAT(q["branches"][1]["last_error"].get<std::string>(),
              HasSubstr("TRANSIENT"));
  EXPECT_TRUE(q["branches"][1]["last_try_time"].is_string());
  r = Server({"show", "stuck-1"});
  EXPECT_THAT(r.out, HasSubstr("next retry"));
  EXPECT_THAT(r.out, HasSubstr("in "));
  EXPECT_THAT(r.out, HasSubstr("ATTEMPTS"));
  EXPECT_THAT(r.out, HasSubstr("TRANSIENT"));

  r = Server({"stats", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json s = r.Json();
  EXPECT_EQ(s["counts"]["submitted"], 1);
  EXPECT_EQ(s["counts"]["succeed"], 1);
  EXPECT_EQ(s["unfinished"], 1);
  EXPECT_TRUE(s["oldest_unfinished_create_time"].is_string());
  EXPECT_GE(s["oldest_unfinished_age_seconds"].get<int64_t>(), 0);
  r = Server({"stats"});
  EXPECT_THAT(r.out, HasSubstr("oldest unfinished"));

  // retry: called again now, not in a minute.
  const int64_t before = Attempts("stuck-1");
  r = Server({"retry", "stuck-1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(AttemptsReach("stuck-1", before + 1));
  EXPECT_EQ(Server({"retry", "done-1"}).code, 4);
  r = Server({"retry", "no-such-gid"});
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("dtxctl: "));

  r = Server({"force-stop", "stuck-1", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.Json()["gid"], "stuck-1");
  EXPECT_TRUE(Eventually([&] {
    auto t = dtm_->Query("stuck-1");
    return t.ok() && t->trans.status == TransStatus::kFailed;
  }));
  EXPECT_EQ(Server({"force-stop", "stuck-1"}).code, 4);
  EXPECT_EQ(Server({"show", "no-such-gid"}).code, 3);
}

TEST_F(DtxctlTest, ServerChangesNeedTheAdminToken) {
  StartServer(std::string("Admin:\n  Token: ") + kToken + "\n", kToken);
  ASSERT_OK(Saga(*dtm_, "guarded").Add(kUnreachable, "", "").Submit());
  ASSERT_TRUE(AttemptsReach("guarded", 1));
  // Reads and changes are refused without the token (exit 4): payloads and
  // headers are no one else's business.
  EXPECT_EQ(Server({"show", "guarded"}).code, 4);
  EXPECT_EQ(Server({"show", "guarded", "--token", kToken}).code, 0);
  CtlRun r = Server({"retry", "guarded"});
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_EQ(Server({"retry", "guarded", "--token", "wrong"}).code, 4);
  EXPECT_EQ(Server({"retry", "guarded", "--token", kToken}).code, 0);
  r = Server({"force-stop", "guarded"},
             std::string("DTX_ADMIN_TOKEN=") + kToken);
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(DtxctlTest, JournalBesideARunningServerAndAfterItStopped) {
  StartServer();
  SubmitStuckAndDone();
  // Beside the running coordinator: reads work, changes need --write.
  CtlRun r = Journal({"list", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(Gids(r.Json()), ::testing::ElementsAre("done-1", "stuck-1"));
  r = Journal({"stats", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.Json()["unfinished"], 1);
  r = Journal({"show", "stuck-1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GE(r.Json()["branches"][1]["attempts"].get<int64_t>(), 1);
  r = Journal({"force-stop", "stuck-1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--write"));
  EXPECT_EQ(Journal({"retry", "stuck-1"}).code, 2);
  StopServer();

  r = Journal({"list", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(Gids(r.Json()), ::testing::ElementsAre("done-1", "stuck-1"));
  EXPECT_EQ(Journal({"show", "no-such-gid"}).code, 3);
  EXPECT_EQ(Journal({"--write", "force-stop", "no-such-gid"}).code, 3);
  r = Journal({"--write", "force-stop", "done-1"});
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("finished"));
  EXPECT_EQ(Journal({"--write", "retry", "stuck-1"}).code, 0);
  r = Journal({"--write", "force-stop", "stuck-1"});
  EXPECT_EQ(r.code, 0) << r.err;
  r = Journal({"show", "stuck-1", "--json"});
  EXPECT_EQ(r.Json()["transaction"]["status"], "failed");
  EXPECT_EQ(r.Json()["transaction"]["rollback_reason"],
            "force stopped by dtxctl");
  EXPECT_TRUE(r.Json()["transaction"]["next_cron_time"].is_null());
  EXPECT_EQ(Journal({"--write", "retry", "stuck-1"}).code, 4);
  EXPECT_EQ(Journal({"--write", "force-stop", "stuck-1"}).code, 4);
  r = Journal({"stats", "--json"});
  EXPECT_EQ(r.Json()["counts"]["failed"], 1);
  EXPECT_EQ(r.Json()["unfinished"], 0);
  // A coordinator started again reads what dtxctl wrote.
  StartServer();
  r = Server({"show", "stuck-1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.Json()["transaction"]["status"], "failed");
  EXPECT_EQ(r.Json()["transaction"]["rollback_reason"],
            "force stopped by dtxctl");
  EXPECT_EQ(Server({"retry", "stuck-1"}).code, 4);
}

TEST_F(DtxctlTest, ServerOverTls) {
  TestCerts c;
  DTX_ASSIGN_TEST_CERTS_OR_SKIP(c, dir_.path());
  const TestCerts* certs = &c;
  DtxServerConfig config;
  config.journal_path = journal_;
  config.config_path = dir_.File("dtx.yml");
  config.yaml = "TLS:\n  CertFile: " + certs->server.cert_file +
                "\n  KeyFile: " + certs->server.key_file + "\n";
  ASSERT_OK_AND_ASSIGN(auto server, DtxServerProcess::Start(config));
  CtlRun r = Ctl({"--server", server->address(), "--tls-ca", certs->ca_file,
                  "--json", "stats"});
  EXPECT_EQ(r.code, 0) << r.err;
  // Plaintext to it: unavailable, with a hint.
  r = Ctl({"--server", server->address(), "stats"});
  EXPECT_EQ(r.code, 5);
  EXPECT_THAT(r.err, HasSubstr("if it serves TLS"));
  // Another CA: refused, saying so.
  r = Ctl({"--server", server->address(), "--tls-ca", certs->other_ca_file,
           "stats"});
  EXPECT_EQ(r.code, 5);
  EXPECT_THAT(r.err, HasSubstr("(unknown CA)"));
  // A CA file that is not there: a usage error naming it.
  r = Ctl({"--server", server->address(), "--tls-ca", dir_.File("none.pem"),
           "stats"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("cannot read the CA file '" +
                               dir_.File("none.pem") + "'"));
  server->Kill(SIGTERM);
  EXPECT_EQ(server->Wait(), 0);
}

TEST_F(DtxctlTest, UnavailableAndUsageErrors) {
  // A missing journal: exit 5, and it is not created.
  const std::string missing = dir_.File("missing.db");
  CtlRun r = Ctl({"list", "--journal", missing});
  EXPECT_EQ(r.code, 5);
  EXPECT_THAT(r.err, HasSubstr("no such file"));
  EXPECT_NE(access(missing.c_str(), F_OK), 0);
  EXPECT_EQ(Ctl({"--write", "--journal", missing, "force-stop", "g"}).code, 5);
  EXPECT_NE(access(missing.c_str(), F_OK), 0);
  // A file that is not a journal.
  const std::string garbage = dir_.File("garbage.db");
  std::ofstream(garbage) << std::string(8192, 'x');
  r = Ctl({"list", "--journal", garbage});
  EXPECT_EQ(r.code, 5);
  EXPECT_FALSE(r.err.empty());
  // No server on port 1.
  r = Ctl({"list", "--server", "127.0.0.1:1"});
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_THAT(r.err, HasSubstr("dtxctl: "));
  // Usage.
  EXPECT_EQ(Ctl({"list"}).code, 2);
  EXPECT_EQ(Ctl({"--journal", missing}).code, 2);
  EXPECT_EQ(Ctl({"--journal", missing, "show"}).code, 2);
  EXPECT_EQ(Ctl({"--journal", missing, "list", "--status", "bogus"}).code, 2);
  EXPECT_EQ(Ctl({"--journal", missing, "list", "--limit", "1001"}).code, 2);
  EXPECT_EQ(Ctl({"--journal", missing, "--server", "h:1", "list"}).code, 2);
  EXPECT_EQ(Ctl({"--server", "h:1", "--write", "list"}).code, 2);
  EXPECT_EQ(Ctl({"--journal", missing, "frobnicate"}).code, 2);
  r = Ctl({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("Exit codes: 0 ok"));
}

TEST_F(DtxctlTest, TailPrintsNewAndChangedTransactionsUntilSigterm) {
  StartServer();
  ASSERT_OK(Saga(*dtm_, "tail-stuck").Add(kUnreachable, "", "").Submit());
  ASSERT_TRUE(AttemptsReach("tail-stuck", 1));
  auto tail = Subprocess::Start({DTXCTL_BINARY, "--server", server_->address(),
                                 "tail", "--json", "--interval", "0.1"});
  ASSERT_OK(tail);
  auto next_line = [&]() -> json {
    auto line = tail->ReadLine();
    EXPECT_TRUE(line.has_value());
    return line ? json::parse(*line, nullptr, false) : json();
  };
  json first = next_line();
  EXPECT_EQ(first["gid"], "tail-stuck");
  EXPECT_EQ(first["event"], "new");
  EXPECT_GE(first["attempts"].get<int64_t>(), 1);
  ASSERT_OK(Saga(*dtm_, "tail-done").Add("", "", "").WaitResult(true).Submit());
  json second = next_line();
  EXPECT_EQ(second["gid"], "tail-done");
  EXPECT_EQ(second["event"], "new");
  // A force-stop shows as a status change.
  ASSERT_OK(dtm_->ForceStop("tail-stuck"));
  json third = next_line();
  EXPECT_EQ(third["gid"], "tail-stuck");
  EXPECT_EQ(third["event"], "status");
  EXPECT_EQ(third["status"], "failed");
  EXPECT_EQ(third["previous_status"], "submitted");
  tail->Kill(SIGTERM);
  EXPECT_EQ(tail->Wait(), 0);
}

}  // namespace
}  // namespace dtx::testing
