#include "dtx/model.h"

#include <gtest/gtest.h>

namespace dtx {
namespace {

TEST(ModelTest, SpellingsAreDtms) {
  EXPECT_EQ(ToString(TransType::kTcc), "tcc");
  EXPECT_EQ(ToString(TransType::kSaga), "saga");
  EXPECT_EQ(ToString(TransType::kMsg), "msg");
  EXPECT_EQ(ToString(TransType::kXa), "xa");
  EXPECT_EQ(ToString(TransType::kWorkflow), "workflow");
  EXPECT_EQ(ToString(TransStatus::kPrepared), "prepared");
  EXPECT_EQ(ToString(TransStatus::kSubmitted), "submitted");
  EXPECT_EQ(ToString(TransStatus::kAborting), "aborting");
  EXPECT_EQ(ToString(TransStatus::kSucceed), "succeed");
  EXPECT_EQ(ToString(TransStatus::kFailed), "failed");
  EXPECT_EQ(ToString(BranchStatus::kPrepared), "prepared");
  EXPECT_EQ(ToString(BranchStatus::kSucceed), "succeed");
  EXPECT_EQ(ToString(BranchStatus::kFailed), "failed");
  EXPECT_EQ(ToString(BranchOp::kTry), "try");
  EXPECT_EQ(ToString(BranchOp::kConfirm), "confirm");
  EXPECT_EQ(ToString(BranchOp::kCancel), "cancel");
  EXPECT_EQ(ToString(BranchOp::kAction), "action");
  EXPECT_EQ(ToString(BranchOp::kCompensate), "compensate");
  EXPECT_EQ(ToString(BranchOp::kCommit), "commit");
  EXPECT_EQ(ToString(BranchOp::kRollback), "rollback");
  EXPECT_EQ(ToString(BranchOp::kMsg), "msg");
}

TEST(ModelTest, ParsingRoundTrips) {
  for (auto t : {TransType::kTcc, TransType::kSaga, TransType::kMsg,
                 TransType::kXa, TransType::kWorkflow}) {
    EXPECT_EQ(*ParseTransType(ToString(t)), t);
  }
  for (auto s :
       {TransStatus::kPrepared, TransStatus::kSubmitted, TransStatus::kAborting,
        TransStatus::kSucceed, TransStatus::kFailed}) {
    EXPECT_EQ(*ParseTransStatus(ToString(s)), s);
  }
  for (auto s : {BranchStatus::kPrepared, BranchStatus::kSucceed,
                 BranchStatus::kFailed}) {
    EXPECT_EQ(*ParseBranchStatus(ToString(s)), s);
  }
  for (auto op : {BranchOp::kTry, BranchOp::kConfirm, BranchOp::kCancel,
                  BranchOp::kAction, BranchOp::kCompensate, BranchOp::kCommit,
                  BranchOp::kRollback, BranchOp::kMsg}) {
    EXPECT_EQ(*ParseBranchOp(ToString(op)), op);
  }
}

TEST(ModelTest, UnknownSpellingsAreInvalidArguments) {
  auto r = ParseTransType("TCC");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "unknown trans type 'TCC'");
  EXPECT_FALSE(ParseTransStatus("done").ok());
  EXPECT_FALSE(ParseBranchStatus("").ok());
  EXPECT_FALSE(ParseBranchOp("confirm ").ok());
}

TEST(ModelTest, OnlySucceedAndFailedAreFinished) {
  EXPECT_FALSE(IsFinished(TransStatus::kPrepared));
  EXPECT_FALSE(IsFinished(TransStatus::kSubmitted));
  EXPECT_FALSE(IsFinished(TransStatus::kAborting));
  EXPECT_TRUE(IsFinished(TransStatus::kSucceed));
  EXPECT_TRUE(IsFinished(TransStatus::kFailed));
}

}  // namespace
}  // namespace dtx
