#include "dtx/barrier.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dtx
