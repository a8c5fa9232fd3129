// PostgresBarrier on a real PostgreSQL (one fresh schema per test): the
// barrier contract (barrier_contract_test.h), then what is PostgreSQL's own:
// the table created or found (dtm's own included), bad names, a dead or
// restarted server, rows held by another transaction, the business's SQL
// through PostgresTx (and libpq's handle), a transaction the business left
// failed, and the check-back waiting for a local transaction in flight.
//
// The server comes from scripts/start-postgres.sh, one per run of this
// binary (tests/testing/postgres_server.h). Without PostgreSQL every test is
// skipped and the binary exits 77 (ctest: skipped), except under CI=true,
// where they fail.

#include "dtx/storage/postgres_barrier.h"

#include "barrier_contract_test.h"
#include "postgres_server.h"
#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace dtx::testing {
namespace {

using ::testing::HasSubstr;

// A plain libpq connection of the test's own, to look at and stir the
// database behind the barrier's back.
class RawConn {
 public:
  explicit RawConn(const std::string& conninfo)
      : conn_(PQconnectdb(conninfo.c_str())) {
    EXPECT_EQ(PQstatus(conn_), CONNECTION_OK) << PQerrorMessage(conn_);
  }
  ~RawConn() { PQfinish(conn_); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  // Runs `sql`; the first column of the first row ("" without rows), or
  // "ERROR: ..." when it fails.
  std::string Query(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    std::string out;
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) {
      if (PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
    } else if (st != PGRES_COMMAND_OK) {
      out = std::string("ERROR: ") + PQresultErrorMessage(r);
    }
    PQclear(r);
    return out;
  }
  int64_t Count(const std::string& sql) {
    const std::string n = Query(sql);
    EXPECT_EQ(n.find("ERROR"), std::string::npos) << sql << ": " << n;
    return std::atoll(n.c_str());
  }

 private:
  PGconn* conn_;
};

// The contract's backend: a barrier on a fresh schema, whose `effects`
// table is in the same schema.
class PostgresBackend {
 public:
  bool Open() {
    PostgresServer* pg = RequirePostgres();
    if (pg == nullptr) return false;
    schema_ = FreshPostgresSchema();
    PostgresBarrierOptions options;
    options.conninfo = pg->conninfo();
    options.schema = schema_;
    auto barrier = PostgresBarrier::Open(options);
    EXPECT_OK(barrier);
    if (!barrier.ok()) return false;
    barrier_ = std::move(barrier).value();
    raw_ = std::make_unique<RawConn>(pg->conninfo());
    EXPECT_EQ(raw_->Query("CREATE TABLE " + Effects() +
                          " (id bigserial PRIMARY KEY, what text)"),
              "");
    return true;
  }
  Status Run(BranchBarrier& b, const std::string& what,
             const std::function<Status()>& then) {
    return barrier_->Call(b, [&](PostgresTx& tx) -> Status {
      DTX_RETURN_IF_ERROR(InsertEffect(tx, what));
      return then ? then() : Status::Ok();
    });
  }
  Status RunFailingSql(BranchBarrier& b, const std::string& what) {
    return barrier_->Call(b, [&](PostgresTx& tx) -> Status {
      DTX_RETURN_IF_ERROR(InsertEffect(tx, what));
      const std::string twice =
          "INSERT INTO " + Effects() + " (id, what) VALUES ($1, 'x')";
      DTX_RETURN_IF_ERROR(tx.Exec(twice, {1000000}).status());
      Status s = tx.Exec(twice, {1000000}).status();
      EXPECT_THAT(s, StatusIs(StatusCode::kAlreadyExists));
      return s;
    });
  }
  Status QueryPrepared(const BranchBarrier& b) {
    return barrier_->QueryPrepared(b);
  }
  Status DoAndSubmit(Msg& msg, const std::string& query_prepared,
                     const std::string& what, Status local) {
    return DoAndSubmitWithPostgres(
        msg, query_prepared, *barrier_, [&](PostgresTx& tx) -> Status {
          DTX_RETURN_IF_ERROR(InsertEffect(tx, what));
          return local;
        });
  }
  int64_t Effects(const std::string& what) {
    return raw_->Count("SELECT count(*) FROM " + Effects() + " WHERE what = '" +
                       what + "'");
  }
  int64_t BarrierRows() {
    return raw_->Count("SELECT count(*) FROM " + barrier_->table_name());
  }
  Result<BarrierPruneResult> Prune(const BarrierPruneOptions& options) {
    return barrier_->Prune(options);
  }
  void Age(const std::string& gid, std::chrono::seconds by) {
    EXPECT_EQ(raw_->Query("UPDATE " + barrier_->table_name() +
                          " SET create_time = create_time - interval '" +
                          std::to_string(by.count()) +
                          " seconds' WHERE gid = '" + gid + "'"),
              "");
  }

  Status InsertEffect(PostgresTx& tx, const std::string& what) {
    auto r =
        tx.Exec("INSERT INTO " + Effects() + " (what) VALUES ($1)", {what});
    if (r.ok()) {
      EXPECT_EQ(r->affected(), 1);
    }
    return r.status();
  }
  std::string Effects() const { return "\"" + schema_ + "\".effects"; }

  std::string schema_;
  std::unique_ptr<PostgresBarrier> barrier_;
  std::unique_ptr<RawConn> raw_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, BarrierContractTest, PostgresBackend);

class PostgresBarrierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!backend_.Open()) return;
    pg_ = RequirePostgres();
  }
  PostgresBarrierOptions Options() {
    PostgresBarrierOptions options;
    options.conninfo = pg_->conninfo();
    options.schema = backend_.schema_;
    return options;
  }
  static BranchBarrier Barrier(BranchOp op, TransType type = TransType::kTcc) {
    auto b = BranchBarrier::FromTransInfo(
        {"g", type, op == BranchOp::kMsg ? "00" : "01", op, ""});
    EXPECT_OK(b);
    return *b;
  }
  RawConn& raw() { return *backend_.raw_; }
  PostgresBarrier& barrier() { return *backend_.barrier_; }

  PostgresBackend backend_;
  PostgresServer* pg_ = nullptr;
};

TEST_F(PostgresBarrierTest, OpenCreatesTheTableWithDtmsColumnsOnce) {
  EXPECT_EQ(barrier().table_name(), "\"" + backend_.schema_ + "\".\"barrier\"");
  EXPECT_EQ(raw().Query("SELECT string_agg(column_name::text, ',' ORDER BY "
                        "ordinal_position) FROM information_schema.columns "
                        "WHERE table_schema = '" +
                        backend_.schema_ + "' AND table_name = 'barrier'"),
            "id,trans_type,gid,branch_id,op,barrier_id,reason,create_time,"
            "update_time");
  BranchBarrier first = Barrier(BranchOp::kTry);
  ASSERT_OK(backend_.Run(first, "try", nullptr));
  // A second barrier on the same table finds it, rows and all.
  auto again = PostgresBarrier::Open(Options());
  ASSERT_OK(again);
  BranchBarrier b = Barrier(BranchOp::kTry);
  int calls = 0;
  ASSERT_OK((*again)->Call(b, [&](PostgresTx&) {
    ++calls;
    return Status::Ok();
  }));
  EXPECT_EQ(calls, 0);  // a duplicate
  EXPECT_EQ(raw().Query("SELECT create_time IS NOT NULL FROM " +
                        barrier().table_name()),
            "t");
}

TEST_F(PostgresBarrierTest, WorksOnDtmsOwnBarrierTable) {
  const std::string schema = FreshPostgresSchema();
  // sqls/dtmcli.barrier.postgres.sql, in a schema of this test's.
  ASSERT_EQ(raw().Query("CREATE SCHEMA " + schema + "; CREATE SEQUENCE " +
                        schema + ".barrier_seq; CREATE TABLE " + schema +
                        ".barrier (id bigint NOT NULL DEFAULT "
                        "nextval('" +
                        schema +
                        ".barrier_seq'), trans_type varchar(45) default '', "
                        "gid varchar(128) default '', branch_id varchar(128) "
                        "default '', op varchar(45) default '', barrier_id "
                        "varchar(45) default '', reason varchar(45) default "
                        "'', create_time timestamp(0) with time zone DEFAULT "
                        "NULL, update_time timestamp(0) with time zone "
                        "DEFAULT NULL, PRIMARY KEY(id), CONSTRAINT "
                        "uniq_barrier unique(gid, branch_id, op, barrier_id))"),
            "");
  PostgresBarrierOptions options = Options();
  options.schema = schema;
  auto dtm = PostgresBarrier::Open(options);
  ASSERT_OK(dtm);
  BranchBarrier cancel = Barrier(BranchOp::kCancel);
  int calls = 0;
  ASSERT_OK((*dtm)->Call(cancel, [&](PostgresTx&) {
    ++calls;
    return Status::Ok();
  }));
  EXPECT_EQ(calls, 0);  // null compensation
  EXPECT_EQ(raw().Query("SELECT string_agg(op || '/' || reason, ',' ORDER BY "
                        "id) FROM " +
                        schema + ".barrier"),
            "try/cancel,cancel/cancel");
}

TEST_F(PostgresBarrierTest, ATableWithoutTheUniqueKeyIsRefused) {
  const std::string schema = FreshPostgresSchema();
  ASSERT_EQ(raw().Query("CREATE SCHEMA " + schema + "; CREATE TABLE " + schema +
                        ".barrier (id bigserial, trans_type text, gid text, "
                        "branch_id text, op text, barrier_id text, reason "
                        "text, create_time timestamptz, update_time "
                        "timestamptz)"),
            "");
  PostgresBarrierOptions options = Options();
  options.schema = schema;
  EXPECT_THAT(PostgresBarrier::Open(options),
              StatusIs(StatusCode::kFailedPrecondition,
                       "has no UNIQUE (gid, branch_id, op, barrier_id)"));
}

TEST_F(PostgresBarrierTest, BadNamesAreRejectedAndCreateNothing) {
  const std::string before = raw().Query("SELECT count(*) FROM pg_namespace");
  for (const auto& [schema, table] :
       std::vector<std::pair<std::string, std::string>>{
           {"x; DROP TABLE effects", "barrier"},
           {"", "barrier"},
           {"ok_schema", "bar\"rier"},
           {"ok_schema", ""},
           {"9lives", "barrier"},
           {"ok_schema", std::string(64, 'b')}}) {
    PostgresBarrierOptions options = Options();
    options.schema = schema;
    options.table = table;
    EXPECT_THAT(PostgresBarrier::Open(options),
                StatusIs(StatusCode::kInvalidArgument, "plain identifier"))
        << schema << "." << table;
  }
  EXPECT_THAT(PostgresBarrier::Open(PostgresBarrierOptions()),
              StatusIs(StatusCode::kInvalidArgument, "conninfo is empty"));
  PostgresBarrierOptions negative = Options();
  negative.lock_timeout = std::chrono::milliseconds(-1);
  EXPECT_THAT(PostgresBarrier::Open(negative),
              StatusIs(StatusCode::kInvalidArgument, "lock_timeout"));
  EXPECT_EQ(raw().Query("SELECT count(*) FROM pg_namespace"), before);
}

// A port of 127.0.0.1 that nothing listens on (it was free a moment ago).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(PostgresBarrierTest, ADeadServerIsUnavailableAndNamed) {
  const int port = FreePort();
  PostgresBarrierOptions options;
  options.conninfo =
      "host=127.0.0.1 port=" + std::to_string(port) + " user=dtx dbname=dtx";
  auto dead = PostgresBarrier::Open(options);
  EXPECT_THAT(dead, StatusIs(StatusCode::kUnavailable, "barrier: postgres"));
  EXPECT_THAT(dead.status().message(), HasSubstr("127.0.0.1"));
  EXPECT_THAT(dead.status().message(), HasSubstr(std::to_string(port)));
}

TEST_F(PostgresBarrierTest, ARestartedServerNeedsNoNewBarrier) {
  BranchBarrier try_op = Barrier(BranchOp::kTry);
  ASSERT_OK(backend_.Run(try_op, "try", nullptr));  // a pooled connection now
  // Cut while idle: the next call begins again on a new connection.
  ASSERT_OK(pg_->StartAgain());
  BranchBarrier confirm = Barrier(BranchOp::kConfirm);
  ASSERT_OK(backend_.Run(confirm, "confirm", nullptr));

  // Down: the call fails before the business runs, naming the server.
  pg_->Stop();
  BranchBarrier cancel = Barrier(BranchOp::kCancel);
  int calls = 0;
  Status down = barrier().Call(cancel, [&](PostgresTx&) {
    ++calls;
    return Status::Ok();
  });
  EXPECT_THAT(down, StatusIs(StatusCode::kUnavailable, "127.0.0.1"));
  EXPECT_EQ(calls, 0);
  EXPECT_THAT(barrier().QueryPrepared(Barrier(BranchOp::kMsg, TransType::kMsg)),
              StatusIs(StatusCode::kUnavailable));
  ASSERT_OK(pg_->StartAgain());
  backend_.raw_ = std::make_unique<RawConn>(pg_->conninfo());
  // Nothing was written while it was down, and the retry runs.
  EXPECT_EQ(backend_.BarrierRows(), 2);
  BranchBarrier retry = Barrier(BranchOp::kConfirm);
  ASSERT_OK(backend_.Run(retry, "confirm", nullptr));
  EXPECT_EQ(backend_.Effects("try"), 1);
  EXPECT_EQ(backend_.Effects("confirm"), 1);
}

TEST_F(PostgresBarrierTest, ARowHeldByAnotherTransactionIsUnavailableNotASkip) {
  PostgresBarrierOptions options = Options();
  options.lock_timeout = std::chrono::milliseconds(200);
  auto impatient = PostgresBarrier::Open(options);
  ASSERT_OK(impatient);
  // Another transaction holds the confirm's row, uncommitted.
  RawConn holder(pg_->conninfo());
  ASSERT_EQ(holder.Query("BEGIN; INSERT INTO " + barrier().table_name() +
                         " (trans_type, gid, branch_id, op, barrier_id, "
                         "reason) VALUES ('tcc', 'g', '01', 'confirm', '01', "
                         "'confirm')"),
            "");
  BranchBarrier b = Barrier(BranchOp::kConfirm);
  int calls = 0;
  auto business = [&](PostgresTx& tx) -> Status {
    ++calls;
    return backend_.InsertEffect(tx, "confirm");
  };
  EXPECT_THAT((*impatient)->Call(b, business),
              StatusIs(StatusCode::kUnavailable, "lock timeout"));
  EXPECT_EQ(calls, 0);
  ASSERT_EQ(holder.Query("ROLLBACK"), "");
  BranchBarrier retry = Barrier(BranchOp::kConfirm);
  ASSERT_OK((*impatient)->Call(retry, business));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(backend_.Effects("confirm"), 1);
}

TEST_F(PostgresBarrierTest, ExecBindsParametersAndReturnsRows) {
  BranchBarrier b = Barrier(BranchOp::kTry);
  EXPECT_THAT(
      barrier().Call(
          b,
          [&](PostgresTx& tx) -> Status {
            auto rows = tx.Exec(
                "SELECT $1::bigint + 1 AS n, $2 AS s, $3::text IS NULL AS "
                "null_is, "
                "$4::boolean AS yes",
                {int64_t{41}, "it's", std::nullopt, true});
            EXPECT_OK(rows);
            if (!rows.ok()) return rows.status();
            EXPECT_THAT(rows->columns(),
                        ::testing::ElementsAre("n", "s", "null_is", "yes"));
            EXPECT_EQ(rows->size(), 1u);
            EXPECT_EQ(rows->at(0, 0), "42");
            EXPECT_EQ(rows->at(0, 1), "it's");
            EXPECT_EQ(rows->at(0, 2), "t");
            EXPECT_EQ(rows->at(0, 3), "t");
            auto null = tx.Exec("SELECT NULL::text");
            EXPECT_OK(null);
            if (null.ok()) {
              EXPECT_EQ(null->at(0, 0), std::nullopt);
            }
            DTX_RETURN_IF_ERROR(backend_.InsertEffect(tx, "a"));
            DTX_RETURN_IF_ERROR(backend_.InsertEffect(tx, "a"));
            auto updated = tx.Exec("UPDATE " + backend_.Effects() +
                                       " SET what = $1 WHERE what = $2",
                                   {std::string("b"), std::string_view("a")});
            EXPECT_OK(updated);
            if (updated.ok()) {
              EXPECT_EQ(updated->affected(), 2);
            }
            EXPECT_THAT(tx.Exec("SELEC 1").status(),
                        StatusIs(StatusCode::kInternal, "syntax error"));
            return AbortedError("roll it all back");
          }),
      StatusIs(StatusCode::kAborted));
  EXPECT_EQ(backend_.Effects("b"), 0);
  EXPECT_EQ(backend_.BarrierRows(), 0);
}

TEST_F(PostgresBarrierTest, TheNativeHandleIsInTheSameTransaction) {
  auto insert = [&](PostgresTx& tx) {
    const std::string sql =
        "INSERT INTO " + backend_.Effects() + " (what) VALUES ('native')";
    PGresult* r = PQexec(tx.native_handle(), sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
  };
  BranchBarrier failing = Barrier(BranchOp::kAction, TransType::kSaga);
  EXPECT_THAT(barrier().Call(failing,
                             [&](PostgresTx& tx) {
                               EXPECT_TRUE(insert(tx));
                               return AbortedError("no");
                             }),
              StatusIs(StatusCode::kAborted));
  EXPECT_EQ(backend_.Effects("native"), 0);
  BranchBarrier ok = Barrier(BranchOp::kAction, TransType::kSaga);
  ASSERT_OK(barrier().Call(ok, [&](PostgresTx& tx) {
    EXPECT_TRUE(insert(tx));
    return Status::Ok();
  }));
  EXPECT_EQ(backend_.Effects("native"), 1);
}

TEST_F(PostgresBarrierTest, AFailedStatementTheBusinessIgnoredStillRollsBack) {
  BranchBarrier b = Barrier(BranchOp::kConfirm);
  Status s = barrier().Call(b, [&](PostgresTx& tx) {
    EXPECT_OK(backend_.InsertEffect(tx, "confirm"));
    tx.Exec("SELECT 1/0").status().IgnoreError();  // and carries on
    return Status::Ok();
  });
  EXPECT_THAT(s, StatusIs(StatusCode::kInternal, "a statement"));
  EXPECT_EQ(backend_.Effects("confirm"), 0);
  EXPECT_EQ(backend_.BarrierRows(), 0);
  // A savepoint is the way to go on after a failure.
  BranchBarrier again = Barrier(BranchOp::kConfirm);
  ASSERT_OK(barrier().Call(again, [&](PostgresTx& tx) -> Status {
    DTX_RETURN_IF_ERROR(backend_.InsertEffect(tx, "confirm"));
    DTX_RETURN_IF_ERROR(tx.Exec("SAVEPOINT maybe").status());
    EXPECT_FALSE(tx.Exec("SELECT 1/0").ok());
    return tx.Exec("ROLLBACK TO SAVEPOINT maybe").status();
  }));
  EXPECT_EQ(backend_.Effects("confirm"), 1);
}

TEST_F(PostgresBarrierTest, ABusinessThatEndsTheTransactionIsAnError) {
  BranchBarrier b = Barrier(BranchOp::kConfirm);
  EXPECT_THAT(
      barrier().Call(
          b, [&](PostgresTx& tx) { return tx.Exec("ROLLBACK").status(); }),
      StatusIs(StatusCode::kInternal, "COMMIT or ROLLBACK"));
  EXPECT_EQ(backend_.BarrierRows(), 0);
}

// The check-back meets a local transaction that has inserted the msg row but
// not yet ended: it waits for it, then answers by its outcome.
TEST_F(PostgresBarrierTest, QueryPreparedWaitsForTheLocalTransactionInFlight) {
  for (const bool commit : {true, false}) {
    SCOPED_TRACE(commit ? "commit" : "rollback");
    const std::string gid = commit ? "m-commit" : "m-rollback";
    auto b = BranchBarrier::FromTransInfo(
        {gid, TransType::kMsg, "00", BranchOp::kMsg, ""});
    ASSERT_OK(b);
    std::promise<void> entered;
    std::promise<void> finish;
    std::thread local([&] {
      Status s = barrier().Call(*b, [&](PostgresTx& tx) -> Status {
        DTX_RETURN_IF_ERROR(backend_.InsertEffect(tx, gid));
        entered.set_value();
        finish.get_future().wait();
        return commit ? Status::Ok() : UnavailableError("crashed");
      });
      EXPECT_EQ(s.ok(), commit) << s;
    });
    entered.get_future().wait();
    auto check = std::async(std::launch::async,
                            [&] { return barrier().QueryPrepared(*b); });
    // Until the check-back's insert waits on the local transaction's row.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (raw().Count("SELECT count(*) FROM pg_stat_activity WHERE "
                       "wait_event_type = 'Lock' AND application_name = "
                       "'dtx-barrier'") == 0 &&
           std::chrono::steady_clock::now() < deadline) {
    }
    EXPECT_EQ(check.wait_for(std::chrono::seconds(0)),
              std::future_status::timeout);
    finish.set_value();
    local.join();
    if (commit) {
      EXPECT_OK(check.get());
    } else {
      EXPECT_THAT(check.get(), StatusIs(StatusCode::kAborted));
    }
    EXPECT_EQ(backend_.Effects(gid), commit ? 1 : 0);
  }
}

}  // namespace
}  // namespace dtx::testing
