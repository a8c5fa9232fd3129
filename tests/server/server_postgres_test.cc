// dtx-server with Store.Driver postgres, as a process on a real PostgreSQL
// (scripts/start-postgres.sh, one server for the binary, a fresh schema per
// test): a saga and a TCC run through it and land in the PostgreSQL
// journal, and a server it cannot reach or that refuses the login stops it
// at startup with a message naming the server and the cause.
//
// Without PostgreSQL every test is skipped and the binary exits 77 (ctest:
// skipped), except under CI=true, where they fail.

#include "dtx/storage/postgres_journal.h"
#include "dtx/transaction.h"
#include "dtx/transport/grpc_dtm_client.h"

#include "branch_test_server.h"
#include "dtx_server_process.h"
#include "postgres_server.h"
#include "status_matchers.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <libpq-fe.h>
#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs dtx-server in `dir` (its working directory) with stderr folded into
// stdout, until it exits.
struct Outcome {
  int exit_code = -1;
  std::string output;
};
Outcome RunToExit(const std::string& dir,
                  const std::vector<std::string>& args) {
  std::string command = "cd '" + dir + "' && exec '" DTX_SERVER_BINARY "'";
  for (const std::string& a : args) command += " '" + a + "'";
  command += " 2>&1";
  auto child = Subprocess::Start({"/bin/sh", "-c", command});
  EXPECT_OK(child);
  Outcome out;
  if (!child.ok()) return out;
  while (auto line = child->ReadLine(seconds(30))) out.output += *line + "\n";
  child->Kill(SIGKILL);  // in case it hangs instead of exiting
  out.exit_code = child->Wait();
  return out;
}

// The first column of the first row of `sql` ("" without rows), or
// "ERROR: ...".
std::string QueryOne(const std::string& conninfo, const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  std::string out;
  if (PQstatus(conn) != CONNECTION_OK) {
    out = std::string("ERROR: ") + PQerrorMessage(conn);
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) {
      if (PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
    } else if (st != PGRES_COMMAND_OK) {
      out = std::string("ERROR: ") + PQresultErrorMessage(r);
    }
    PQclear(r);
  }
  PQfinish(conn);
  return out;
}

class ServerPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = RequirePostgres();
    if (pg_ == nullptr) return;
    schema_ = FreshPostgresSchema();
    busi_ = BranchTestServer::Start();
  }

  DtxServerConfig Config() const {
    DtxServerConfig config;
    config.journal_path = dir_.File("dtx.db");  // must stay unused
    config.config_path = dir_.File("dtx.yml");
    config.store_yaml = PostgresStoreYaml(pg_->port(), schema_);
    return config;
  }

  std::string Url(const std::string& method) const {
    return busi_->address() + method;
  }

  // The journal the server writes, opened by the test on the same schema.
  std::unique_ptr<PostgresJournal> Journal() const {
    PostgresJournalOptions o;
    o.conninfo = pg_->conninfo();
    o.schema = schema_;
    auto j = PostgresJournal::Open(o);
    EXPECT_OK(j);
    return j.ok() ? std::move(j).value() : nullptr;
  }

  std::vector<std::string> CallsOf(const std::string& gid) const {
    std::vector<std::string> out;
    for (const ReceivedCall& c : busi_->Calls()) {
      if (c.Get("dtm-gid") == gid)
        out.push_back(c.method + " " + c.Get("dtm-op"));
    }
    return out;
  }

  PostgresServer* pg_ = nullptr;
  std::string schema_;
  TempDir dir_;
  std::unique_ptr<BranchTestServer> busi_;
};

TEST_F(ServerPostgresTest, RunsASagaAndATccWithItsJournalInPostgres) {
  if (pg_ == nullptr) return;
  auto server = DtxServerProcess::Start(Config());
  ASSERT_OK(server);
  GrpcDtmClientOptions client_options;
  client_options.address = (*server)->address();
  ASSERT_OK_AND_ASSIGN(auto dtm, GrpcDtmClient::Create(client_options));

  ASSERT_OK(
      Saga(*dtm, "pg-saga")
          .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/TransOutRevert"),
               "o")
          .Add(Url("/busi.Busi/TransIn"), Url("/busi.Busi/TransInRevert"), "i")
          .WaitResult(true)
          .Submit());
  TransOptions wait;
  wait.wait_result = true;
  ASSERT_OK(TccGlobalTransaction(*dtm, "pg-tcc", wait, [&](Tcc& tcc) {
    DTX_RETURN_IF_ERROR(tcc.CallBranch("out", Url("/busi.Busi/TransOut"),
                                       Url("/busi.Busi/TransOutConfirm"),
                                       Url("/busi.Busi/TransOutCancel")));
    return tcc.CallBranch("in", Url("/busi.Busi/TransIn"),
                          Url("/busi.Busi/TransInConfirm"),
                          Url("/busi.Busi/TransInCancel"));
  }));
  EXPECT_THAT(CallsOf("pg-saga"), ElementsAre("/busi.Busi/TransOut action",
                                              "/busi.Busi/TransIn action"));
  EXPECT_THAT(CallsOf("pg-tcc"),
              ElementsAre("/busi.Busi/TransOut try", "/busi.Busi/TransIn try",
                          "/busi.Busi/TransInConfirm confirm",
                          "/busi.Busi/TransOutConfirm confirm"));
  ASSERT_OK_AND_ASSIGN(TransWithBranches through_server, dtm->Query("pg-tcc"));
  EXPECT_EQ(through_server.trans.status, TransStatus::kSucceed);

  // Both are in PostgreSQL, final; no SQLite file was made.
  auto journal = Journal();
  ASSERT_NE(journal, nullptr);
  ASSERT_OK_AND_ASSIGN(TransWithBranches saga, journal->Find("pg-saga"));
  EXPECT_EQ(saga.trans.status, TransStatus::kSucceed);
  EXPECT_EQ(saga.branches.size(), 4u);  // compensate + action per step
  ASSERT_OK_AND_ASSIGN(TransWithBranches tcc, journal->Find("pg-tcc"));
  EXPECT_EQ(tcc.trans.status, TransStatus::kSucceed);
  EXPECT_EQ(tcc.trans.trans_type, TransType::kTcc);
  EXPECT_FALSE(std::filesystem::exists(dir_.File("dtx.db")));

  (*server)->Kill(SIGTERM);
  EXPECT_EQ((*server)->Wait(), 0);
}

TEST_F(ServerPostgresTest, ASagaLeftUnfinishedIsFinishedAfterARestart) {
  if (pg_ == nullptr) return;
  // The branch fails until the test lets it succeed: the saga stays
  // submitted in the journal across the restart.
  std::atomic<bool> fail{true};
  busi_->SetHandler("/busi.Busi/TransIn", [&fail](const ReceivedCall&) {
    return fail ? TestReply::Status(14, "down") : TestReply::Ok();
  });
  auto server = DtxServerProcess::Start(Config());
  ASSERT_OK(server);
  GrpcDtmClientOptions client_options;
  client_options.address = (*server)->address();
  ASSERT_OK_AND_ASSIGN(auto dtm, GrpcDtmClient::Create(client_options));
  ASSERT_OK(Saga(*dtm, "pg-restart")
                .Add(Url("/busi.Busi/TransIn"), "", "i")
                .Submit());
  (*server)->Kill(SIGKILL);
  (*server)->Wait();

  fail = false;
  auto restarted = DtxServerProcess::Start(Config());
  ASSERT_OK(restarted);
  client_options.address = (*restarted)->address();
  ASSERT_OK_AND_ASSIGN(auto again, GrpcDtmClient::Create(client_options));
  TransStatus last = TransStatus::kPrepared;
  const auto until = std::chrono::steady_clock::now() + seconds(30);
  while (last != TransStatus::kSucceed &&
         std::chrono::steady_clock::now() < until) {
    auto t = again->Query("pg-restart");
    if (t.ok()) last = t->trans.status;
    if (last != TransStatus::kSucceed)
      std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(last, TransStatus::kSucceed);
  (*restarted)->Kill(SIGTERM);
  EXPECT_EQ((*restarted)->Wait(), 0);
}

TEST_F(ServerPostgresTest, UnreachablePostgresIsAClearStartupError) {
  if (pg_ == nullptr) return;
  // Port 1: nothing listens there.
  std::ofstream(dir_.File("dtx.yml"))
      << "Store:\n  Driver: postgres\n  Host: 127.0.0.1\n  Port: 1\n"
      << "  User: dtx\n  Password: hunter2\n  ConnectTimeout: 2\n";
  Outcome out =
      RunToExit(dir_.path(), {"-c", "dtx.yml", "--grpc-host", "127.0.0.1",
                              "--grpc-port", "0", "--http-port", "0"});
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_THAT(out.output, HasSubstr("journal postgres 127.0.0.1:1/dtx"));
  EXPECT_THAT(out.output, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(out.output, HasSubstr("Connection refused"));
  EXPECT_THAT(out.output, Not(HasSubstr("hunter2")));
  EXPECT_THAT(out.output, Not(HasSubstr("listening on")));
  // Nothing written: the directory holds the config file only.
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path()))
    files.push_back(entry.path().filename().string());
  EXPECT_THAT(files, ElementsAre("dtx.yml"));
}

TEST_F(ServerPostgresTest, ARefusedLoginIsAClearStartupError) {
  if (pg_ == nullptr) return;
  const std::string nologin = "nologin_" + schema_;
  ASSERT_EQ(QueryOne(pg_->conninfo(), "CREATE ROLE " + nologin + " NOLOGIN"),
            "");
  for (const std::string& role : {std::string("no_such_role"), nologin}) {
    SCOPED_TRACE(role);
    std::ofstream(dir_.File("dtx.yml"))
        << "Store:\n  Driver: postgres\n  Host: 127.0.0.1\n  Port: "
        << pg_->port() << "\n  User: " << role << "\n  Password: hunter2\n"
        << "  Schema: " << schema_ << "\n";
    Outcome out =
        RunToExit(dir_.path(), {"-c", "dtx.yml", "--grpc-host", "127.0.0.1",
                                "--grpc-port", "0", "--http-port", "0"});
    EXPECT_EQ(out.exit_code, 1);
    EXPECT_THAT(out.output, HasSubstr("journal postgres 127.0.0.1:" +
                                      std::to_string(pg_->port()) + "/dtx"));
    EXPECT_THAT(out.output, HasSubstr("PERMISSION_DENIED"));
    EXPECT_THAT(out.output, HasSubstr("role \"" + role + "\""));
    EXPECT_THAT(out.output, Not(HasSubstr("hunter2")));
    EXPECT_THAT(out.output, Not(HasSubstr("listening on")));
  }
  // Nothing written: no schema in PostgreSQL, no file here.
  EXPECT_EQ(QueryOne(pg_->conninfo(),
                     "SELECT count(*) FROM pg_namespace WHERE nspname = '" +
                         schema_ + "'"),
            "0");
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path()))
    files.push_back(entry.path().filename().string());
  EXPECT_THAT(files, ElementsAre("dtx.yml"));
}

}  // namespace
}  // namespace dtx::testing
