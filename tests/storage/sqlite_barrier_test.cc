// SqliteBarrier on a real SQLite business database: the barrier contract
// (barrier_contract_test.h: the three problems, concurrent duplicates and
// races, the msg check-back), then what is SQLite's own: busy databases,
// savepoints inside the caller's transaction, table names.

#include "dtx/storage/sqlite_barrier.h"

#include "barrier_contract_test.h"
#include "status_matchers.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

namespace dtx::testing {
namespace {

sqlite3* OpenBusinessDb(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  return db;
}

Status ExecBusiness(sqlite3* tx, const std::string& sql) {
  if (sqlite3_exec(tx, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK)
    return Status::Ok();
  return InternalError(std::string("business: ") + sqlite3_errmsg(tx));
}

// The contract's backend: a business database file with the barrier table
// and `effects`; every call on a connection of its own, as concurrent
// handlers would have.
class SqliteBackend {
 public:
  ~SqliteBackend() {
    if (db_ != nullptr) sqlite3_close(db_);
  }
  bool Open() {
    db_ = OpenBusinessDb(Path());
    EXPECT_OK(SqliteBarrier::CreateTable(db_));
    EXPECT_OK(ExecBusiness(
        db_, "CREATE TABLE effects (id INTEGER PRIMARY KEY, what TEXT)"));
    return true;
  }
  Status Run(BranchBarrier& b, const std::string& what,
             const std::function<Status()>& then) {
    sqlite3* db = OpenBusinessDb(Path());
    Status s = SqliteBarrier::Call(b, db, [&](sqlite3* tx) {
      DTX_RETURN_IF_ERROR(ExecBusiness(
          tx, "INSERT INTO effects (what) VALUES ('" + what + "')"));
      return then ? then() : Status::Ok();
    });
    sqlite3_close(db);
    return s;
  }
  Status RunFailingSql(BranchBarrier& b, const std::string& what) {
    return SqliteBarrier::Call(b, db_, [&](sqlite3* tx) {
      DTX_RETURN_IF_ERROR(ExecBusiness(
          tx, "INSERT INTO effects (what) VALUES ('" + what + "')"));
      const std::string twice =
          "INSERT INTO effects (id, what) VALUES (1000000, 'x')";
      DTX_RETURN_IF_ERROR(ExecBusiness(tx, twice));
      return ExecBusiness(tx, twice);
    });
  }
  Status QueryPrepared(const BranchBarrier& b) {
    return SqliteBarrier::QueryPrepared(b, db_);
  }
  Status DoAndSubmit(Msg& msg, const std::string& query_prepared,
                     const std::string& what, Status local) {
    return DoAndSubmitWithSqlite(msg, query_prepared, db_, [&](sqlite3* tx) {
      DTX_RETURN_IF_ERROR(ExecBusiness(
          tx, "INSERT INTO effects (what) VALUES ('" + what + "')"));
      return local;
    });
  }
  int64_t Effects(const std::string& what) {
    return Count("SELECT COUNT(*) FROM effects WHERE what = '" + what + "'");
  }
  int64_t BarrierRows() { return Count("SELECT COUNT(*) FROM barrier"); }
  Result<BarrierPruneResult> Prune(const BarrierPruneOptions& options) {
    return SqliteBarrier::Prune(db_, options);
  }
  void Age(const std::string& gid, std::chrono::seconds by) {
    EXPECT_OK(
        ExecBusiness(db_, "UPDATE barrier SET create_time = create_time - " +
                              std::to_string(by.count() * 1000) +
                              " WHERE gid = '" + gid + "'"));
  }

 private:
  std::string Path() { return dir_.File("busi.db"); }
  int64_t Count(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    sqlite3_step(stmt);
    const int64_t n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
  }

  TempDir dir_;
  sqlite3* db_ = nullptr;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, BarrierContractTest, SqliteBackend);

class SqliteBarrierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = OpenDb();
    ASSERT_OK(SqliteBarrier::CreateTable(db_));
    Exec(db_, "CREATE TABLE effects (id INTEGER PRIMARY KEY, what TEXT)");
  }
  void TearDown() override { sqlite3_close(db_); }

  sqlite3* OpenDb() { return OpenBusinessDb(dir_.File("busi.db")); }
  static void Exec(sqlite3* db, const std::string& sql) {
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sql;
  }
  int64_t Count(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    sqlite3_step(stmt);
    const int64_t n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
  }
  // Runs op of branch 01 of gid "g" under the barrier; the business inserts
  // one row into `effects`.
  Status Run(BranchOp op, TransType type = TransType::kTcc,
             sqlite3* db = nullptr) {
    // The msg barrier is branch "00", as DoAndSubmit uses it.
    auto barrier = BranchBarrier::FromTransInfo(
        {"g", type, op == BranchOp::kMsg ? "00" : "01", op, ""});
    EXPECT_OK(barrier);
    const std::string what(ToString(op));
    return SqliteBarrier::Call(
        *barrier, db != nullptr ? db : db_, [&](sqlite3* tx) {
          const std::string sql =
              "INSERT INTO effects (what) VALUES ('" + what + "')";
          return sqlite3_exec(tx, sql.c_str(), nullptr, nullptr, nullptr) ==
                         SQLITE_OK
                     ? Status::Ok()
                     : InternalError("insert failed");
        });
  }
  int64_t Effects(const std::string& what) {
    return Count("SELECT COUNT(*) FROM effects WHERE what = '" + what + "'");
  }

  TempDir dir_;
  sqlite3* db_ = nullptr;
};

TEST_F(SqliteBarrierTest, BusyDatabaseIsAnErrorNotASkip) {
  sqlite3* holder = OpenDb();
  Exec(holder, "BEGIN IMMEDIATE");
  sqlite3* db = OpenDb();
  sqlite3_busy_timeout(db, 100);
  EXPECT_THAT(Run(BranchOp::kConfirm, TransType::kTcc, db),
              StatusIs(StatusCode::kUnavailable));
  Exec(holder, "ROLLBACK");
  sqlite3_close(holder);
  ASSERT_OK(Run(BranchOp::kConfirm, TransType::kTcc, db));  // the retry runs it
  EXPECT_EQ(Effects("confirm"), 1);
  sqlite3_close(db);
}

TEST_F(SqliteBarrierTest, InsideTheCallersTransactionItUsesASavepoint) {
  Exec(db_, "BEGIN");
  ASSERT_OK(Run(BranchOp::kTry));
  Exec(db_, "ROLLBACK");  // the caller's decision wins
  EXPECT_EQ(Effects("try"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM barrier"), 0);
  Exec(db_, "BEGIN");
  ASSERT_OK(Run(BranchOp::kTry));
  Exec(db_, "COMMIT");
  EXPECT_EQ(Effects("try"), 1);
}

TEST_F(SqliteBarrierTest, BadTableNamesAreRejected) {
  auto barrier = BranchBarrier::FromTransInfo(
      {"g", TransType::kTcc, "01", BranchOp::kTry, ""});
  ASSERT_OK(barrier);
  EXPECT_THAT(SqliteBarrier::Call(
                  *barrier, db_, [](sqlite3*) { return Status::Ok(); },
                  "barrier; DROP TABLE effects"),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(SqliteBarrier::CreateTable(db_, ""),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace dtx::testing
