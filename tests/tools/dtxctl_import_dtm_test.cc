// `dtxctl import-dtm`, the binary, on a real PostgreSQL (tests/testing/
// postgres_server.h): dtm's tables (data/dtm_postgres_tables.sql) in a schema
// of the test's, rows inserted as dtm writes them, the import into a SQLite
// (and a PostgreSQL) journal checked field by field, then a coordinator on
// the imported journal finishing the transactions against real gRPC branch
// services as dtm would have. Re-runs, dry runs and bad input too.
//
// One ctest test for the binary (PostgreSQL starts once); it exits 77
// (skipped) without PostgreSQL, except under CI=true, where the tests fail.

#include "dtx/coordinator.h"
#include "dtx/storage/postgres_journal.h"
#include "dtx/storage/sqlite_journal.h"
#include "dtx/transport/grpc_branch_client.h"

#include "branch_test_server.h"
#include "postgres_server.h"
#include "status_matchers.h"
#include "subprocess.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace dtx::testing {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct CtlRun {
  int code = -1;
  std::string out;
  std::string err;
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

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

TimePoint Seconds(int64_t s) { return TimePoint(std::chrono::seconds(s)); }

// A port of 127.0.0.1 that nothing listens on (bound, then closed).
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class ImportDtmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = RequirePostgres();
    if (pg_ == nullptr) return;
    schema_ = FreshPostgresSchema();
    conn_ = PQconnectdb(pg_->conninfo().c_str());
    ASSERT_EQ(PQstatus(conn_), CONNECTION_OK) << PQerrorMessage(conn_);
    Sql("CREATE SCHEMA " + schema_);
    Sql("SET search_path TO " + schema_);
    Sql(ReadFile(DTM_TABLES_SQL));
    busi_ = BranchTestServer::Start();
    now_ = static_cast<int64_t>(std::time(nullptr));
  }
  void TearDown() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }

  void Sql(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        << sql << ": " << PQresultErrorMessage(r);
    PQclear(r);
  }

  // A trans_global row as dtm writes it; times are seconds before now_.
  struct G {
    std::string gid, type, status, protocol = "grpc", query_prepared;
    std::string options = "{\"concurrent\":false}", custom_data, ext_data;
    std::string rollback_reason;
    int64_t created_ago = 60, next_cron_in = -5, interval = 10;
    std::optional<int64_t> finished_ago, rolled_back_ago;
  };
  void Global(const G& g) {
    auto ts = [&](std::optional<int64_t> ago) {
      return ago ? "to_timestamp(" + std::to_string(now_ - *ago) + ")"
                 : std::string("NULL");
    };
    const std::string sql =
        "INSERT INTO trans_global (gid, trans_type, status, query_prepared, "
        "protocol, create_time, update_time, finish_time, rollback_time, "
        "options, custom_data, next_cron_interval, next_cron_time, owner, "
        "ext_data, result, rollback_reason) VALUES ($1, $2, $3, $4, $5, " +
        ts(g.created_ago) + ", " + ts(g.created_ago - 1) + ", " +
        ts(g.finished_ago) + ", " + ts(g.rolled_back_ago) + ", $6, $7, " +
        std::to_string(g.interval) + ", " + ts(-g.next_cron_in) +
        ", 'dtm-cron-owner', $8, '', $9)";
    const char* values[] = {g.gid.c_str(),
                            g.type.c_str(),
                            g.status.c_str(),
                            g.query_prepared.c_str(),
                            g.protocol.c_str(),
                            g.options.c_str(),
                            g.custom_data.c_str(),
                            g.ext_data.c_str(),
                            g.rollback_reason.c_str()};
    PGresult* r = PQexecParams(conn_, sql.c_str(), 9, nullptr, values, nullptr,
                               nullptr, 0);
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
  }
  // A trans_branch_op row; bin_data is sent as bytes.
  void BranchRow(const std::string& gid, const std::string& branch_id,
                 const std::string& op, const std::string& method,
                 const std::string& bin, const std::string& status,
                 std::optional<int64_t> finished_ago = std::nullopt) {
    const std::string url = method.empty() ? "" : busi_->address() + method;
    const std::string fin =
        finished_ago
            ? "to_timestamp(" + std::to_string(now_ - *finished_ago) + ")"
            : "NULL";
    const std::string sql =
        "INSERT INTO trans_branch_op (gid, url, bin_data, branch_id, op, "
        "status, finish_time, create_time, update_time) VALUES ($1, $2, $3, "
        "$4, $5, $6, " +
        fin + ", to_timestamp(" + std::to_string(now_ - 59) +
        "), to_timestamp(" + std::to_string(now_ - 59) + "))";
    const char* values[] = {gid.c_str(),       url.c_str(), bin.data(),
                            branch_id.c_str(), op.c_str(),  status.c_str()};
    const int lengths[] = {0, 0, static_cast<int>(bin.size()), 0, 0, 0};
    const int formats[] = {0, 0, 1, 0, 0, 0};
    PGresult* r = PQexecParams(conn_, sql.c_str(), 6, nullptr, values, lengths,
                               formats, 0);
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
  }

  // The store of the scenario: what dtm leaves behind when it is stopped
  // with work in flight.
  void FillStore() {
    // A saga halfway: step 01 done, step 02 not yet; headers in options and
    // in the legacy ext_data.
    {
      G g;
      g.gid = "saga-half";
      g.type = "saga";
      g.status = "submitted";
      g.options =
          "{\"concurrent\":false,\"retry_interval\":15,"
          "\"branch_headers\":{\"x-tenant\":\"t1\"}}";
      g.ext_data = "{\"headers\":{\"x-legacy\":\"l1\"}}";
      g.interval = 15;
      Global(g);
    }
    BranchRow("saga-half", "01", "compensate", "/busi.Busi/TransOutRevert",
              "p1", "prepared");
    BranchRow("saga-half", "01", "action", "/busi.Busi/TransOut", "p1",
              "succeed", 58);
    BranchRow("saga-half", "02", "compensate", "/busi.Busi/TransInRevert", kBin,
              "prepared");
    BranchRow("saga-half", "02", "action", "/busi.Busi/TransIn", kBin,
              "prepared");
    // A TCC whose application died after its tries: prepared past its
    // timeout, so it is cancelled.
    {
      G g;
      g.gid = "tcc-prepared";
      g.type = "tcc";
      g.status = "prepared";
      g.options = "{\"concurrent\":false,\"timeout_to_fail\":30}";
      g.created_ago = 120;
      Global(g);
    }
    BranchRow("tcc-prepared", "01", "cancel", "/busi.Busi/TccCancel1", "t1",
              "prepared");
    BranchRow("tcc-prepared", "01", "confirm", "/busi.Busi/TccConfirm1", "t1",
              "prepared");
    BranchRow("tcc-prepared", "02", "cancel", "/busi.Busi/TccCancel2", "t2",
              "prepared");
    BranchRow("tcc-prepared", "02", "confirm", "/busi.Busi/TccConfirm2", "t2",
              "prepared");
    // A prepared msg past the default timeout: checked back, then sent.
    {
      G g;
      g.gid = "msg-prepared";
      g.type = "msg";
      g.status = "prepared";
      g.query_prepared = busi_->address() + "/busi.Busi/QueryPrepared";
      g.created_ago = 120;
      Global(g);
    }
    BranchRow("msg-prepared", "01", "action", "/busi.Busi/MsgA", "m1",
              "prepared");
    BranchRow("msg-prepared", "02", "action", "/busi.Busi/MsgB", "m2",
              "prepared");
    // A saga rolling back: step 02's action failed.
    {
      G g;
      g.gid = "saga-aborting";
      g.type = "saga";
      g.status = "aborting";
      g.rollback_reason = "url:x return failed: no stock FAILURE";
      Global(g);
    }
    BranchRow("saga-aborting", "01", "compensate", "/busi.Busi/C1", "a1",
              "prepared");
    BranchRow("saga-aborting", "01", "action", "/busi.Busi/A1", "a1", "succeed",
              50);
    BranchRow("saga-aborting", "02", "compensate", "/busi.Busi/C2", "a2",
              "prepared");
    BranchRow("saga-aborting", "02", "action", "/busi.Busi/A2", "a2", "failed",
              49);
    // Finished: not imported without --all.
    {
      G g;
      g.gid = "saga-done";
      g.type = "saga";
      g.status = "succeed";
      g.finished_ago = 30;
      Global(g);
    }
    BranchRow("saga-done", "01", "compensate", "/busi.Busi/D1Revert", "d",
              "prepared");
    BranchRow("saga-done", "01", "action", "/busi.Busi/D1", "d", "succeed", 30);
    // A mode dtx does not run: refused.
    {
      G g;
      g.gid = "xa-prepared";
      g.type = "xa";
      g.status = "prepared";
      Global(g);
    }
    BranchRow("xa-prepared", "01", "rollback", "/busi.Busi/Xa", "", "prepared");
    BranchRow("xa-prepared", "01", "commit", "/busi.Busi/Xa", "", "prepared");
  }

  CtlRun Ctl(const std::vector<std::string>& args) {
    const std::string err = dir_.File("stderr.txt");
    std::string cmd = "exec " + Quote(DTXCTL_BINARY);
    for (const auto& a : args) cmd += " " + Quote(a);
    cmd += " 2>" + Quote(err);
    auto child = Subprocess::Start({"/bin/sh", "-c", cmd});
    EXPECT_OK(child);
    CtlRun r;
    if (!child.ok()) return r;
    while (auto line = child->ReadLine()) r.out += *line + "\n";
    r.code = child->Wait();
    r.err = ReadFile(err);
    return r;
  }
  CtlRun Import(const std::string& to, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {
        "import-dtm", "--from", pg_->url(), "--schema", schema_, "--to", to};
    args.insert(args.end(), more.begin(), more.end());
    return Ctl(args);
  }

  std::unique_ptr<SqliteJournal> OpenSqlite(const std::string& path) {
    SqliteJournalOptions o;
    o.path = path;
    o.create_if_missing = false;
    auto j = SqliteJournal::Open(o);
    EXPECT_OK(j);
    return j.ok() ? std::move(j).value() : nullptr;
  }

  static constexpr char kBinBytes[] = {'\0', '\x01', '\xff', 'b', 'i', 'n'};
  const std::string kBin = std::string(kBinBytes, sizeof(kBinBytes));

  PostgresServer* pg_ = nullptr;
  std::string schema_;
  PGconn* conn_ = nullptr;
  std::unique_ptr<BranchTestServer> busi_;
  int64_t now_ = 0;
  TempDir dir_;
};

TEST_F(ImportDtmTest, CopiesUnfinishedTransactionsFieldByField) {
  if (pg_ == nullptr) return;
  FillStore();
  const std::string journal = dir_.File("dtx.db");
  CtlRun r = Import(journal);
  // xa-prepared was refused: exit 4, and the summary says why.
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("refused xa-prepared (xa, prepared): "
                               "trans_type xa: dtx does not run xa"));
  EXPECT_THAT(r.out, HasSubstr("read 5 dtm transactions: 4 imported, 0 "
                               "skipped (already in the journal), 1 refused"));

  auto j = OpenSqlite(journal);
  ASSERT_NE(j, nullptr);
  EXPECT_THAT(j->Find("saga-done"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(j->Find("xa-prepared"), StatusIs(StatusCode::kNotFound));

  auto saga = j->Find("saga-half");
  ASSERT_OK(saga);
  const GlobalTrans& t = saga->trans;
  EXPECT_EQ(t.trans_type, TransType::kSaga);
  EXPECT_EQ(t.status, TransStatus::kSubmitted);
  EXPECT_EQ(t.protocol, "grpc");
  EXPECT_EQ(json::parse(t.options),
            json::parse("{\"retry_interval\":15,\"branch_headers\":"
                        "{\"x-legacy\":\"l1\",\"x-tenant\":\"t1\"}}"));
  EXPECT_EQ(t.custom_data, "");
  EXPECT_EQ(t.create_time, Seconds(now_ - 60));
  // The journal stamps update_time with the time of the write.
  EXPECT_GE(t.update_time, Seconds(now_));
  EXPECT_FALSE(t.finish_time.has_value());
  EXPECT_EQ(t.next_cron_interval, std::chrono::seconds(15));
  EXPECT_EQ(t.next_cron_time, Seconds(now_ - 5));
  EXPECT_EQ(t.owner, "");
  EXPECT_EQ(t.retry_count, 0);
  ASSERT_EQ(saga->branches.size(), 4u);
  const auto& b = saga->branches;
  EXPECT_EQ(b[0].branch_id, "01");
  EXPECT_EQ(b[0].op, BranchOp::kCompensate);
  EXPECT_EQ(b[0].url, busi_->address() + "/busi.Busi/TransOutRevert");
  EXPECT_EQ(b[1].op, BranchOp::kAction);
  EXPECT_EQ(b[1].status, BranchStatus::kSucceed);
  EXPECT_EQ(b[1].finish_time, Seconds(now_ - 58));
  EXPECT_EQ(b[1].bin_data, "p1");
  EXPECT_EQ(b[3].branch_id, "02");
  EXPECT_EQ(b[3].op, BranchOp::kAction);
  EXPECT_EQ(b[3].status, BranchStatus::kPrepared);
  EXPECT_EQ(b[3].bin_data, kBin);  // bytes, NUL and 0xff included
  EXPECT_EQ(b[3].create_time, Seconds(now_ - 59));
  EXPECT_EQ(b[3].attempts, 0);

  auto tcc = j->Find("tcc-prepared");
  ASSERT_OK(tcc);
  EXPECT_EQ(tcc->trans.trans_type, TransType::kTcc);
  EXPECT_EQ(tcc->trans.status, TransStatus::kPrepared);
  EXPECT_EQ(json::parse(tcc->trans.options),
            json::parse("{\"timeout_to_fail\":30}"));
  EXPECT_EQ(tcc->trans.create_time, Seconds(now_ - 120));
  ASSERT_EQ(tcc->branches.size(), 4u);
  EXPECT_EQ(tcc->branches[0].op, BranchOp::kCancel);
  EXPECT_EQ(tcc->branches[1].op, BranchOp::kConfirm);
  EXPECT_EQ(tcc->branches[3].bin_data, "t2");

  auto msg = j->Find("msg-prepared");
  ASSERT_OK(msg);
  EXPECT_EQ(msg->trans.query_prepared,
            busi_->address() + "/busi.Busi/QueryPrepared");
  EXPECT_EQ(msg->trans.options, "{}");
  ASSERT_EQ(msg->branches.size(), 2u);

  auto aborting = j->Find("saga-aborting");
  ASSERT_OK(aborting);
  EXPECT_EQ(aborting->trans.status, TransStatus::kAborting);
  EXPECT_EQ(aborting->trans.rollback_reason,
            "url:x return failed: no stock FAILURE");
  EXPECT_EQ(aborting->branches[3].status, BranchStatus::kFailed);
  j->Close();

  // A re-run imports nothing twice.
  CtlRun again = Import(journal);
  EXPECT_EQ(again.code, 4) << again.out << again.err;
  EXPECT_THAT(again.out, HasSubstr("read 5 dtm transactions: 0 imported, 4 "
                                   "skipped (already in the journal), 1 "
                                   "refused"));
}

TEST_F(ImportDtmTest, ImportedTransactionsFinishAsDtmWouldHave) {
  if (pg_ == nullptr) return;
  FillStore();
  const std::string journal = dir_.File("dtx.db");
  ASSERT_EQ(Import(journal).code, 4);

  SqliteJournalOptions jo;
  jo.path = journal;
  auto opened = SqliteJournal::Open(jo);
  ASSERT_OK(opened);
  auto client = GrpcBranchClient::Create({});
  ASSERT_OK(client);
  CoordinatorDeps deps;
  deps.journal = std::move(opened).value();
  deps.branch_client = std::move(client).value();
  Options options;
  options.cron_interval = std::chrono::seconds(3600);
  auto dtm = Coordinator::Open(options, std::move(deps));
  ASSERT_OK(dtm);
  ASSERT_OK((*dtm)->RunDue());
  (*dtm)->WaitIdle();

  auto status_of = [&](const std::string& gid) {
    auto t = (*dtm)->Query(gid);
    EXPECT_OK(t);
    return t.ok() ? t->trans.status : TransStatus::kPrepared;
  };
  auto calls = [&](const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& c : busi_->Calls()) {
      if (c.method.rfind(prefix, 0) == 0) out.push_back(c.method);
    }
    return out;
  };
  // The saga goes on from step 02, with the payload bytes and both headers.
  EXPECT_EQ(status_of("saga-half"), TransStatus::kSucceed);
  EXPECT_THAT(calls("/busi.Busi/Trans"), ElementsAre("/busi.Busi/TransIn"));
  for (const auto& c : busi_->Calls()) {
    if (c.method != "/busi.Busi/TransIn") continue;
    EXPECT_EQ(c.payload, kBin);
    EXPECT_EQ(c.Get("x-tenant"), "t1");
    EXPECT_EQ(c.Get("x-legacy"), "l1");
    EXPECT_EQ(c.Get("dtm-gid"), "saga-half");
    EXPECT_EQ(c.Get("dtm-branch_id"), "02");
  }
  // The TCC timed out: cancelled in reverse registration order.
  EXPECT_EQ(status_of("tcc-prepared"), TransStatus::kFailed);
  EXPECT_THAT(calls("/busi.Busi/Tcc"),
              ElementsAre("/busi.Busi/TccCancel2", "/busi.Busi/TccCancel1"));
  // The msg is checked back (SUCCESS), then its steps run in order.
  EXPECT_EQ(status_of("msg-prepared"), TransStatus::kSucceed);
  EXPECT_THAT(calls("/busi.Busi/"),
              ::testing::IsSupersetOf({"/busi.Busi/QueryPrepared",
                                       "/busi.Busi/MsgA", "/busi.Busi/MsgB"}));
  std::vector<std::string> msg_calls;
  for (const auto& m : calls("/busi.Busi/")) {
    if (m == "/busi.Busi/QueryPrepared" || m.rfind("/busi.Busi/Msg", 0) == 0)
      msg_calls.push_back(m);
  }
  EXPECT_THAT(msg_calls, ElementsAre("/busi.Busi/QueryPrepared",
                                     "/busi.Busi/MsgA", "/busi.Busi/MsgB"));
  // The aborting saga compensates both steps (the failed one too), in
  // reverse; no action runs again.
  EXPECT_EQ(status_of("saga-aborting"), TransStatus::kFailed);
  EXPECT_THAT(calls("/busi.Busi/C"),
              ElementsAre("/busi.Busi/C2", "/busi.Busi/C1"));
  EXPECT_THAT(calls("/busi.Busi/A"), ::testing::IsEmpty());
  EXPECT_THAT(calls("/busi.Busi/D"), ::testing::IsEmpty());
  (*dtm)->Shutdown();

  // Imported again after dtx finished them: nothing changes.
  CtlRun again = Import(journal);
  EXPECT_THAT(again.out, HasSubstr("0 imported, 4 skipped"));
  auto j = OpenSqlite(journal);
  ASSERT_NE(j, nullptr);
  auto saga = j->Find("saga-half");
  ASSERT_OK(saga);
  EXPECT_EQ(saga->trans.status, TransStatus::kSucceed);
}

TEST_F(ImportDtmTest, AllTakesFinishedOnesAndDueNowMakesThemDue) {
  if (pg_ == nullptr) return;
  FillStore();
  // dtm's next_cron_time of saga-half is 5 s ago; a later one shows --due-now.
  Sql("UPDATE trans_global SET next_cron_time = to_timestamp(" +
      std::to_string(now_ + 1800) + ") WHERE gid = 'tcc-prepared'");
  const std::string journal = dir_.File("all.db");
  CtlRun r = Import(journal, {"--all", "--due-now"});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("read 6 dtm transactions: 5 imported"));
  auto j = OpenSqlite(journal);
  ASSERT_NE(j, nullptr);
  auto done = j->Find("saga-done");
  ASSERT_OK(done);
  EXPECT_EQ(done->trans.status, TransStatus::kSucceed);
  EXPECT_EQ(done->trans.finish_time, Seconds(now_ - 30));
  auto tcc = j->Find("tcc-prepared");
  ASSERT_OK(tcc);
  EXPECT_LE(tcc->trans.next_cron_time, std::chrono::system_clock::now());
  EXPECT_GE(tcc->trans.next_cron_time, Seconds(now_ - 1));

  // Without --due-now dtm's schedule is kept.
  const std::string kept = dir_.File("kept.db");
  ASSERT_EQ(Import(kept).code, 4);
  auto k = OpenSqlite(kept);
  ASSERT_NE(k, nullptr);
  auto tcc_kept = k->Find("tcc-prepared");
  ASSERT_OK(tcc_kept);
  EXPECT_EQ(tcc_kept->trans.next_cron_time, Seconds(now_ + 1800));
}

TEST_F(ImportDtmTest, DryRunWritesNothing) {
  if (pg_ == nullptr) return;
  FillStore();
  const std::string journal = dir_.File("dry.db");
  CtlRun r = Import(journal, {"--dry-run"});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("would import saga-half (saga, submitted, 4 "
                               "branch rows)"));
  EXPECT_THAT(r.out, HasSubstr("dry run: read 5 dtm transactions: 4 would be "
                               "imported"));
  EXPECT_FALSE(Exists(journal));
}

TEST_F(ImportDtmTest, ImportsIntoAPostgresJournal) {
  if (pg_ == nullptr) return;
  FillStore();
  const std::string to_schema = FreshPostgresSchema();
  CtlRun r = Import(pg_->conninfo(), {"--to-schema", to_schema});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("4 imported"));
  PostgresJournalOptions o;
  o.conninfo = pg_->conninfo();
  o.schema = to_schema;
  auto j = PostgresJournal::Open(o);
  ASSERT_OK(j);
  auto saga = (*j)->Find("saga-half");
  ASSERT_OK(saga);
  ASSERT_EQ(saga->branches.size(), 4u);
  EXPECT_EQ(saga->branches[3].bin_data, kBin);
  EXPECT_EQ(saga->trans.create_time, Seconds(now_ - 60));
  (*j)->Close();

  // dtm's own schema is not a journal: refused before anything is written.
  CtlRun own = Import(pg_->conninfo(), {"--to-schema", schema_});
  EXPECT_EQ(own.code, 4) << own.out << own.err;
  EXPECT_THAT(own.err, HasSubstr("import-dtm: --to"));
  EXPECT_THAT(own.out, HasSubstr("read 1 dtm transactions: 0 imported"));
}

TEST_F(ImportDtmTest, BadSourcesFailClearlyAndWriteNothing) {
  if (pg_ == nullptr) return;
  FillStore();
  const std::string journal = dir_.File("never.db");
  auto run = [&](const std::string& from, const std::string& schema) {
    return Ctl({"import-dtm", "--from", from, "--schema", schema, "--to",
                journal, "--timeout", "2"});
  };
  // A malformed URL.
  CtlRun bad_url = run("postgresql://dtx@127.0.0.1:notaport/dtx", schema_);
  EXPECT_EQ(bad_url.code, 2) << bad_url.err;
  EXPECT_THAT(bad_url.err, HasSubstr("notaport"));
  CtlRun bad_option = run("host=127.0.0.1 no_such_option=1", schema_);
  EXPECT_EQ(bad_option.code, 2) << bad_option.err;
  EXPECT_THAT(bad_option.err, HasSubstr("no_such_option"));
  // Nothing listening.
  CtlRun down =
      run("postgresql://dtx@127.0.0.1:" + std::to_string(ClosedPort()) + "/dtx",
          schema_);
  EXPECT_EQ(down.code, 5) << down.err;
  EXPECT_THAT(down.err, HasSubstr("dtm's store: cannot connect"));
  // A schema that does not exist, and one without dtm's tables.
  CtlRun wrong = run(pg_->url(), "no_such_schema");
  EXPECT_EQ(wrong.code, 3) << wrong.err;
  EXPECT_THAT(wrong.err, HasSubstr("schema 'no_such_schema' does not exist"));
  EXPECT_THAT(wrong.err, HasSubstr(schema_));  // where trans_global is
  const std::string empty = FreshPostgresSchema();
  Sql("CREATE SCHEMA " + empty);
  CtlRun missing = run(pg_->url(), empty);
  EXPECT_EQ(missing.code, 3) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("has no table trans_global"));
  // A schema that is not a plain identifier.
  CtlRun injected = run(pg_->url(), "x; DROP TABLE trans_global");
  EXPECT_EQ(injected.code, 2) << injected.err;
  // dtm's MySQL store.
  CtlRun mysql = run("mysql://root@127.0.0.1:3306/dtm", "dtm");
  EXPECT_EQ(mysql.code, 2);
  EXPECT_THAT(mysql.err, HasSubstr("dtm's MySQL store is not supported"));
  // dtx's own journal is not dtm's store.
  const std::string dtx_schema = FreshPostgresSchema();
  {
    PostgresJournalOptions o;
    o.conninfo = pg_->conninfo();
    o.schema = dtx_schema;
    auto j = PostgresJournal::Open(o);
    ASSERT_OK(j);
    (*j)->Close();
  }
  CtlRun dtx_journal = run(pg_->url(), dtx_schema);
  EXPECT_EQ(dtx_journal.code, 4) << dtx_journal.err;
  EXPECT_THAT(dtx_journal.err, HasSubstr("is not dtm's table"));

  EXPECT_FALSE(Exists(journal));
}

TEST_F(ImportDtmTest, ReadsPageByPageWithProgress) {
  if (pg_ == nullptr) return;
  // More transactions than one page of the reader (500), each with two
  // branch rows, inserted interleaved so that ids of one page's branches
  // are not contiguous.
  Sql("INSERT INTO trans_global (gid, trans_type, status, query_prepared, "
      "protocol, create_time, options, custom_data, next_cron_interval, "
      "next_cron_time) SELECT 'bulk-' || i, 'msg', 'submitted', '', 'grpc', "
      "now(), '', '', 10, now() FROM generate_series(1, 620) AS i");
  Sql("INSERT INTO trans_branch_op (gid, url, bin_data, branch_id, op, "
      "status) SELECT 'bulk-' || (i % 620 + 1), 'x/busi.Busi/M', "
      "convert_to('p' || i, 'UTF8'), CASE WHEN i <= 620 THEN '01' ELSE '02' "
      "END, 'action', 'prepared' FROM generate_series(1, 1240) AS i");
  const std::string journal = dir_.File("bulk.db");
  CtlRun r = Import(journal);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("read 100 (imported 99, already present 0, "
                               "refused 0)"));
  EXPECT_THAT(r.out, HasSubstr("read 600 (imported 599"));
  EXPECT_THAT(r.out, HasSubstr("read 620 dtm transactions: 620 imported"));
  auto j = OpenSqlite(journal);
  ASSERT_NE(j, nullptr);
  for (const char* gid : {"bulk-1", "bulk-500", "bulk-501", "bulk-620"}) {
    auto t = j->Find(gid);
    ASSERT_OK(t);
    ASSERT_EQ(t->branches.size(), 2u) << gid;
    EXPECT_EQ(t->branches[0].branch_id, "01");
    EXPECT_EQ(t->branches[1].branch_id, "02");
  }
}

TEST_F(ImportDtmTest, MalformedRowsAreRefusedOneByOne) {
  if (pg_ == nullptr) return;
  {
    G g;
    g.gid = "bad-options";
    g.type = "saga";
    g.status = "submitted";
    g.options = "not json";
    Global(g);
  }
  {
    G g;
    g.gid = "json-rpc";
    g.type = "msg";
    g.status = "submitted";
    g.protocol = "json-rpc";
    Global(g);
  }
  {
    G g;
    g.gid = "odd-saga";
    g.type = "saga";
    g.status = "submitted";
    Global(g);
  }
  BranchRow("odd-saga", "01", "action", "/busi.Busi/A", "", "prepared");
  {
    G g;
    g.gid = "good";
    g.type = "msg";
    g.status = "submitted";
    Global(g);
  }
  BranchRow("good", "01", "action", "/busi.Busi/M", "", "prepared");
  // Over dtx's limits (dtx/limits.h): the journal refuses them one by one.
  {
    G g;
    g.gid = "with space";
    g.type = "msg";
    g.status = "submitted";
    Global(g);
    g.gid = "huge";
    Global(g);
  }
  Sql("INSERT INTO trans_branch_op (gid, url, bin_data, branch_id, op, "
      "status) VALUES ('huge', 'x/busi.Busi/M', decode(repeat('00', " +
      std::to_string(4 * 1024 * 1024 + 1) + "), 'hex'), '01', 'action', " +
      "'prepared')");
  const std::string journal = dir_.File("dtx.db");
  CtlRun r = Import(journal);
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.out, HasSubstr("refused with space (msg, submitted): "));
  EXPECT_THAT(r.out, HasSubstr("refused huge (msg, submitted): "));
  EXPECT_THAT(r.out, HasSubstr("over the limit"));
  EXPECT_THAT(r.out, HasSubstr("refused bad-options (saga, submitted): "
                               "options is not a JSON object"));
  EXPECT_THAT(r.out, HasSubstr("refused json-rpc (msg, submitted): protocol "
                               "json-rpc"));
  EXPECT_THAT(r.out, HasSubstr("refused odd-saga (saga, submitted): saga rows "
                               "are not compensate/action pairs"));
  EXPECT_THAT(r.out, HasSubstr("1 imported, 0 skipped (already in the "
                               "journal), 5 refused"));
  auto j = OpenSqlite(journal);
  ASSERT_NE(j, nullptr);
  EXPECT_OK(j->Find("good"));
  EXPECT_THAT(j->Find("odd-saga"), StatusIs(StatusCode::kNotFound));
}

}  // namespace
}  // namespace dtx::testing
