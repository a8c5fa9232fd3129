// SqliteBarrier on a real SQLite business database: the three problems,
// concurrent duplicates, busy databases, savepoints, and the msg check-back.

#include "dtx/storage/sqlite_barrier.h"

#include "status_matchers.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <thread>

namespace dtx::testing {
namespace {

class SqliteBarrierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = OpenDb();
    ASSERT_OK(SqliteBarrier::CreateTable(db_));
    Exec(db_, "CREATE TABLE effects (id INTEGER PRIMARY KEY, what TEXT)");
  }
  void TearDown() override { sqlite3_close(db_); }

  sqlite3* OpenDb() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(dir_.File("busi.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    return db;
  }
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

TEST_F(SqliteBarrierTest, DuplicateConfirmRunsOnce) {
  ASSERT_OK(Run(BranchOp::kTry));
  ASSERT_OK(Run(BranchOp::kConfirm));
  ASSERT_OK(Run(BranchOp::kConfirm));  // dtm retried it
  EXPECT_EQ(Effects("try"), 1);
  EXPECT_EQ(Effects("confirm"), 1);
}

TEST_F(SqliteBarrierTest, NullCompensationIsSkippedAndBlocksTheLateTry) {
  ASSERT_OK(Run(BranchOp::kCancel));  // the try never arrived
  EXPECT_EQ(Effects("cancel"), 0);
  ASSERT_OK(Run(BranchOp::kTry));  // hanging: arrives after its cancel
  EXPECT_EQ(Effects("try"), 0);
}

TEST_F(SqliteBarrierTest, NormalTryThenCancelBothRun) {
  ASSERT_OK(Run(BranchOp::kTry));
  ASSERT_OK(Run(BranchOp::kCancel));
  ASSERT_OK(Run(BranchOp::kCancel));
  EXPECT_EQ(Effects("try"), 1);
  EXPECT_EQ(Effects("cancel"), 1);
}

TEST_F(SqliteBarrierTest, SagaCompensationOfAFailedActionIsNull) {
  auto barrier = BranchBarrier::FromTransInfo(
      {"g", TransType::kSaga, "01", BranchOp::kAction, ""});
  ASSERT_OK(barrier);
  // The action fails: its rows roll back with it.
  EXPECT_THAT(SqliteBarrier::Call(*barrier, db_,
                                  [](sqlite3*) {
                                    return AbortedError("insufficient balance");
                                  }),
              StatusIs(StatusCode::kAborted));
  ASSERT_OK(Run(BranchOp::kCompensate, TransType::kSaga));
  EXPECT_EQ(Effects("compensate"), 0);
}

TEST_F(SqliteBarrierTest, FailedBusinessRollsBackAndCanRunAgain) {
  int calls = 0;
  auto barrier = BranchBarrier::FromTransInfo(
      {"g", TransType::kTcc, "01", BranchOp::kConfirm, ""});
  ASSERT_OK(barrier);
  auto business = [&](sqlite3* tx) {
    ++calls;
    sqlite3_exec(tx, "INSERT INTO effects (what) VALUES ('confirm')", nullptr,
                 nullptr, nullptr);
    return calls == 1 ? UnavailableError("downstream busy") : Status::Ok();
  };
  EXPECT_THAT(SqliteBarrier::Call(*barrier, db_, business),
              StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(Effects("confirm"), 0);  // rolled back with the barrier rows
  auto again = BranchBarrier::FromTransInfo(
      {"g", TransType::kTcc, "01", BranchOp::kConfirm, ""});
  ASSERT_OK(SqliteBarrier::Call(*again, db_, business));
  EXPECT_EQ(Effects("confirm"), 1);
  EXPECT_EQ(calls, 2);
}

TEST_F(SqliteBarrierTest, ConcurrentDuplicatesTakeEffectOnce) {
  constexpr int kThreads = 8;
  std::atomic<int> ran{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      sqlite3* db = OpenDb();
      auto barrier = BranchBarrier::FromTransInfo(
          {"g", TransType::kSaga, "01", BranchOp::kAction, ""});
      Status s = SqliteBarrier::Call(*barrier, db, [&](sqlite3* tx) {
        ++ran;
        return sqlite3_exec(tx, "INSERT INTO effects (what) VALUES ('action')",
                            nullptr, nullptr, nullptr) == SQLITE_OK
                   ? Status::Ok()
                   : InternalError("insert");
      });
      EXPECT_OK(s);
      sqlite3_close(db);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(Effects("action"), 1);
}

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

TEST_F(SqliteBarrierTest, QueryPreparedFindsTheCommittedLocalTransaction) {
  ASSERT_OK(Run(BranchOp::kMsg, TransType::kMsg));
  auto barrier = BranchBarrier::FromTransInfo(
      {"g", TransType::kMsg, "00", BranchOp::kMsg, ""});
  ASSERT_OK(barrier);
  EXPECT_OK(SqliteBarrier::QueryPrepared(*barrier, db_));
}

TEST_F(SqliteBarrierTest,
       QueryPreparedBeforeTheLocalTransactionFailsItForGood) {
  auto barrier = BranchBarrier::FromTransInfo(
      {"g", TransType::kMsg, "00", BranchOp::kMsg, ""});
  ASSERT_OK(barrier);
  EXPECT_THAT(SqliteBarrier::QueryPrepared(*barrier, db_),
              StatusIs(StatusCode::kAborted));
  // The local transaction starting late finds the check-back's row.
  EXPECT_THAT(Run(BranchOp::kMsg, TransType::kMsg),
              StatusIs(StatusCode::kAborted, "DUPLICATED"));
  EXPECT_EQ(Effects("msg"), 0);
  EXPECT_THAT(SqliteBarrier::QueryPrepared(*barrier, db_),
              StatusIs(StatusCode::kAborted));
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
