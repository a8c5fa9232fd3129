#include "dtx/barrier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace dtx {
namespace {

using D = BranchBarrier::Decision;

TEST(BranchBarrierTest, OriginOps) {
  EXPECT_EQ(BranchBarrier::OriginOp(BranchOp::kCancel), BranchOp::kTry);
  EXPECT_EQ(BranchBarrier::OriginOp(BranchOp::kCompensate), BranchOp::kAction);
  EXPECT_EQ(BranchBarrier::OriginOp(BranchOp::kRollback), BranchOp::kAction);
  for (auto op : {BranchOp::kTry, BranchOp::kConfirm, BranchOp::kAction,
                  BranchOp::kCommit, BranchOp::kMsg}) {
    EXPECT_FALSE(BranchBarrier::OriginOp(op).has_value()) << ToString(op);
  }
}

TEST(BranchBarrierTest, DecisionTable) {
  // Forward ops: run unless their row exists (duplicate, or hanging after a
  // compensation inserted it).
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kTry, false, true), D::kRun);
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kTry, false, false), D::kSkip);
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kConfirm, false, true), D::kRun);
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kConfirm, false, false), D::kSkip);
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kAction, false, false), D::kSkip);
  // Compensations: skipped when the forward op never ran (null compensation)
  // or when they already ran.
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kCancel, false, true), D::kRun);
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kCancel, true, true), D::kSkip);
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kCancel, false, false), D::kSkip);
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kCompensate, true, true), D::kSkip);
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kCompensate, false, true), D::kRun);
  // Msg: a row already there means the check-back decided "rollback".
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kMsg, false, true), D::kRun);
  EXPECT_EQ(BranchBarrier::Decide(BranchOp::kMsg, false, false),
            D::kDuplicated);
}

TEST(BranchBarrierTest, BarrierIdsCountPerRequest) {
  auto b = BranchBarrier::FromTransInfo(
      {"g", TransType::kTcc, "01", BranchOp::kTry, ""});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->NextBarrierId(), "01");
  EXPECT_EQ(b->NextBarrierId(), "02");
  for (int i = 3; i < 10; ++i) b->NextBarrierId();
  // dtm's %02d: two digits at least, never truncated.
  EXPECT_EQ(b->NextBarrierId(), "10");
  EXPECT_EQ(b->NextBarrierId(), "11");
}

TEST(BranchBarrierTest, MissingTransInfoIsInvalid) {
  EXPECT_EQ(BranchBarrier::FromTransInfo(
                {"", TransType::kTcc, "01", BranchOp::kTry, ""})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(BranchBarrier::FromTransInfo(
                {"g", TransType::kTcc, "", BranchOp::kTry, ""})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

// A BarrierStore in memory that logs what the rules asked of it, for the
// order of the steps and the error paths; the databases' own stores are
// tested on real databases (tests/storage/barrier_contract_test.h).
class LogStore final : public BarrierStore {
 public:
  Status Begin() override {
    log.push_back("begin");
    return fail == "begin" ? UnavailableError("begin failed") : Status::Ok();
  }
  Result<bool> InsertIfAbsent(const BarrierRow& row) override {
    const std::string key = row.gid + "/" + row.branch_id + "/" +
                            std::string(ToString(row.op)) + "/" +
                            row.barrier_id;
    log.push_back("insert " + key + " " + row.reason);
    if (fail == "insert") return UnavailableError("insert failed");
    return rows.emplace(key, row.reason).second;
  }
  Result<std::string> ReadReason(const BarrierRow& row) override {
    const std::string key = row.gid + "/" + row.branch_id + "/" +
                            std::string(ToString(row.op)) + "/" +
                            row.barrier_id;
    log.push_back("read " + key);
    return rows.at(key);
  }
  Status Commit() override {
    log.push_back("commit");
    return fail == "commit" ? UnavailableError("commit failed") : Status::Ok();
  }
  void Rollback() override { log.push_back("rollback"); }

  std::vector<std::string> log;
  std::map<std::string, std::string> rows;  // never rolled back: a log only
  std::string fail;
};

BranchBarrier Make(BranchOp op, TransType type = TransType::kTcc) {
  auto b = BranchBarrier::FromTransInfo(
      {"g", type, op == BranchOp::kMsg ? "00" : "01", op, ""});
  EXPECT_TRUE(b.ok());
  return *b;
}

TEST(BranchBarrierTest, RunInsertsOriginThenCurrentRowThenRunsAndCommits) {
  LogStore store;
  BranchBarrier b = Make(BranchOp::kCancel);
  int calls = 0;
  ASSERT_TRUE(b.Run(store, [&] {
                 ++calls;
                 store.log.push_back("business");
                 return Status::Ok();
               }).ok());
  EXPECT_EQ(calls, 0);  // a null compensation: the try's row was absent
  EXPECT_THAT(store.log,
              ::testing::ElementsAre("begin", "insert g/01/try/01 cancel",
                                     "insert g/01/cancel/01 cancel", "commit"));
  store.log.clear();
  BranchBarrier confirm = Make(BranchOp::kConfirm);
  ASSERT_TRUE(confirm
                  .Run(store,
                       [&] {
                         store.log.push_back("business");
                         return Status::Ok();
                       })
                  .ok());
  EXPECT_THAT(store.log,
              ::testing::ElementsAre("begin", "insert g/01/confirm/01 confirm",
                                     "business", "commit"));
}

TEST(BranchBarrierTest, RunRollsBackOnEveryFailureAndReturnsIt) {
  for (const std::string fail : {"begin", "insert", "commit"}) {
    LogStore store;
    store.fail = fail;
    BranchBarrier b = Make(BranchOp::kTry);
    Status s = b.Run(store, [] { return Status::Ok(); });
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << fail;
    EXPECT_EQ(s.message(), fail + " failed");
    // A failed Begin leaves nothing to roll back; the others roll back.
    EXPECT_EQ(store.log.back(), fail == "begin" ? "begin" : "rollback");
  }
  LogStore store;
  BranchBarrier b = Make(BranchOp::kTry);
  Status s = b.Run(store, [] { return AbortedError("no funds"); });
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_EQ(store.log.back(), "rollback");
}

TEST(BranchBarrierTest, RunOfAMsgWhoseRowExistsIsDuplicated) {
  LogStore store;
  store.rows["g/00/msg/01"] = "rollback";
  BranchBarrier b = Make(BranchOp::kMsg, TransType::kMsg);
  bool ran = false;
  Status s = b.Run(store, [&] {
    ran = true;
    return Status::Ok();
  });
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("DUPLICATED"));
  EXPECT_FALSE(ran);
  EXPECT_EQ(store.log.back(), "rollback");
}

TEST(BranchBarrierTest, QueryPreparedInsertsTheRollbackRowThenReadsIt) {
  LogStore store;
  const BranchBarrier b = Make(BranchOp::kMsg, TransType::kMsg);
  EXPECT_EQ(b.QueryPrepared(store).code(), StatusCode::kAborted);
  EXPECT_THAT(store.log, ::testing::ElementsAre("insert g/00/msg/01 rollback",
                                                "read g/00/msg/01"));
  LogStore committed;
  committed.rows["g/00/msg/01"] = "msg";
  EXPECT_TRUE(b.QueryPrepared(committed).ok());
}

}  // namespace
}  // namespace dtx
