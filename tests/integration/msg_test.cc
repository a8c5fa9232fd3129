// Two-phase messages through the embedded coordinator (dtm-semantics.md
// §1.5.3, §2.5).

#include "coordinator_test_util.h"
#include "gated_journal.h"

#include <gmock/gmock.h>

namespace dtx::testing {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;

class MsgTest : public CoordinatorTest {
 protected:
  Msg TwoSteps(const std::string& gid) {
    return std::move(Msg(*dtm_, gid)
                         .Add(Url("/busi.Busi/TransOut"), "out")
                         .Add(Url("/busi.Busi/TransIn"), "in"));
  }
};

TEST_F(MsgTest, PrepareThenSubmitRunsTheStepsInOrder) {
  Msg msg = TwoSteps("msg-ok");
  ASSERT_OK(msg.Prepare(Url("/busi.Busi/QueryPrepared")));
  EXPECT_EQ(Global("msg-ok").status, TransStatus::kPrepared);
  EXPECT_TRUE(busi_->Calls().empty());
  ASSERT_OK(msg.WaitResult(true).Submit());
  EXPECT_EQ(Global("msg-ok").status, TransStatus::kSucceed);
  EXPECT_THAT(Seen(), ElementsAre("/busi.Busi/TransOut", "/busi.Busi/TransIn"));
  EXPECT_EQ(busi_->Calls()[0].Get("dtm-trans_type"), "msg");
}

// No msg step waits for the results before it: step 1's, written while
// step 2 is called, are lazy (the journal may let them share a commit).
TEST_F(MsgTest, ResultsWrittenWhileTheNextStepRunsAreLazy) {
  GateJournals();
  Reopen();
  GatedJournal* gated = gated_;
  ASSERT_NE(gated, nullptr);
  ASSERT_OK(TwoSteps("msg-lazy").WaitResult(true).Submit());
  dtm_->WaitIdle();
  EXPECT_EQ(gated->lazy_branch_updates.load(), 1);
  EXPECT_EQ(gated->lazy_status_changes.load(), 1);
  EXPECT_EQ(Global("msg-lazy").status, TransStatus::kSucceed);
}

TEST_F(MsgTest, SubmitWithoutPrepare) {
  ASSERT_OK(TwoSteps("msg-direct").WaitResult(true).Submit());
  EXPECT_EQ(Global("msg-direct").status, TransStatus::kSucceed);
}

TEST_F(MsgTest, StepsAreRetriedNeverRolledBack) {
  Script("/busi.Busi/TransIn", {Failure(), Ok()});
  ASSERT_OK(TwoSteps("msg-retry").Submit());
  dtm_->WaitIdle();
  EXPECT_EQ(Global("msg-retry").status, TransStatus::kSubmitted);
  Later(seconds(20));
  EXPECT_EQ(Global("msg-retry").status, TransStatus::kSucceed);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
}

TEST_F(MsgTest, CheckBackSubmitsWhenTheLocalTransactionCommitted) {
  ASSERT_OK(TwoSteps("msg-check").Prepare(Url("/busi.Busi/QueryPrepared")));
  Later(seconds(35));
  EXPECT_EQ(Global("msg-check").status, TransStatus::kSucceed);
  auto calls = busi_->Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].method, "/busi.Busi/QueryPrepared");
  EXPECT_EQ(calls[0].Get("dtm-op"), "msg");
  EXPECT_EQ(calls[0].Get("dtm-branch_id"), "00");
}

TEST_F(MsgTest, CheckBackFailureFailsTheMessage) {
  Script("/busi.Busi/QueryPrepared", {Failure()});
  ASSERT_OK(TwoSteps("msg-rollback").Prepare(Url("/busi.Busi/QueryPrepared")));
  Later(seconds(35));
  EXPECT_EQ(Global("msg-rollback").status, TransStatus::kFailed);
  EXPECT_THAT(Seen(), ElementsAre("/busi.Busi/QueryPrepared"));
}

TEST_F(MsgTest, CheckBackOngoingAsksAgainLater) {
  Script("/busi.Busi/QueryPrepared", {Ongoing(), Ok()});
  ASSERT_OK(TwoSteps("msg-ongoing").Prepare(Url("/busi.Busi/QueryPrepared")));
  Later(seconds(35));
  EXPECT_EQ(Global("msg-ongoing").status, TransStatus::kPrepared);
  Later(seconds(10));
  EXPECT_EQ(Global("msg-ongoing").status, TransStatus::kSucceed);
}

TEST_F(MsgTest, DelayHoldsTheSteps) {
  ASSERT_OK(TwoSteps("msg-delay").SetDelay(seconds(30)).Submit());
  dtm_->WaitIdle();
  EXPECT_TRUE(busi_->Calls().empty());
  Later(seconds(30));
  EXPECT_EQ(Global("msg-delay").status, TransStatus::kSucceed);
}

TEST_F(MsgTest, DoAndSubmitSubmitsAfterTheLocalWork) {
  bool ran = false;
  ASSERT_OK(
      TwoSteps("msg-do").DoAndSubmit(Url("/busi.Busi/QueryPrepared"), [&] {
        ran = true;
        EXPECT_EQ(Global("msg-do").status, TransStatus::kPrepared);
        return Status::Ok();
      }));
  EXPECT_TRUE(ran);
  dtm_->WaitIdle();
  EXPECT_EQ(Global("msg-do").status, TransStatus::kSucceed);
}

TEST_F(MsgTest, DoAndSubmitAbortsOnALocalFailure) {
  EXPECT_THAT(TwoSteps("msg-do-fail")
                  .DoAndSubmit(Url("/busi.Busi/QueryPrepared"),
                               [] { return AbortedError("no stock"); }),
              StatusIs(StatusCode::kAborted, "no stock"));
  EXPECT_EQ(Global("msg-do-fail").status, TransStatus::kFailed);
  EXPECT_TRUE(busi_->Calls().empty());
}

TEST_F(MsgTest, DoAndSubmitChecksBackOnAnUnclearOutcome) {
  EXPECT_THAT(TwoSteps("msg-do-unclear")
                  .DoAndSubmit(Url("/busi.Busi/QueryPrepared"),
                               [] { return UnavailableError("commit lost"); }),
              StatusIs(StatusCode::kUnavailable));
  dtm_->WaitIdle();
  // The check-back said SUCCESS (the service's default): it was submitted.
  EXPECT_EQ(Global("msg-do-unclear").status, TransStatus::kSucceed);
  // The client's own Submit, after the check-back submitted it: OK.
  EXPECT_OK(TwoSteps("msg-do-unclear").Submit());
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
}

TEST_F(MsgTest, AbortFailsAPreparedMessage) {
  Msg msg = TwoSteps("msg-abort");
  ASSERT_OK(msg.Prepare(Url("/busi.Busi/QueryPrepared")));
  ASSERT_OK(msg.Abort());
  EXPECT_EQ(Global("msg-abort").status, TransStatus::kFailed);
  EXPECT_OK(msg.Abort());  // a retry
  EXPECT_THAT(msg.Submit(), StatusIs(StatusCode::kAborted));
  EXPECT_THAT(msg.Prepare(Url("/busi.Busi/QueryPrepared")),
              StatusIs(StatusCode::kAborted, "cannot prepare"));
}

// Issue 19 item 5: Prepare and Submit retried (the first answer lost) answer
// as the first did; other steps for the gid are a conflict, never dtm's
// FAILURE.
TEST_F(MsgTest, RetriesOfPrepareAndSubmitAreOk) {
  ASSERT_OK(TwoSteps("msg-again").Prepare(Url("/busi.Busi/QueryPrepared")));
  EXPECT_OK(TwoSteps("msg-again").Prepare(Url("/busi.Busi/QueryPrepared")));
  Msg other = std::move(Msg(*dtm_, "msg-again")
                            .Add(Url("/busi.Busi/TransOut"), "out")
                            .Add(Url("/busi.Busi/TransIn"), "more"));
  EXPECT_THAT(other.Prepare(Url("/busi.Busi/QueryPrepared")),
              StatusIs(StatusCode::kAlreadyExists,
                       "prepare: gid msg-again exists with a different step "
                       "02's payload"));
  EXPECT_THAT(other.Submit(), StatusIs(StatusCode::kAlreadyExists,
                                       "a different step 02's payload"));
  EXPECT_EQ(Global("msg-again").status, TransStatus::kPrepared);
  ASSERT_OK(TwoSteps("msg-again").WaitResult(true).Submit());
  EXPECT_OK(TwoSteps("msg-again").Submit());
  EXPECT_OK(TwoSteps("msg-again").WaitResult(true).Submit());
  EXPECT_THAT(TwoSteps("msg-again").SetDelay(seconds(5)).Submit(),
              StatusIs(StatusCode::kAlreadyExists, "different custom data"));
  EXPECT_THAT(TwoSteps("msg-again").Prepare(Url("/busi.Busi/QueryPrepared")),
              StatusIs(StatusCode::kFailedPrecondition, "was submitted"));
  EXPECT_THAT(TwoSteps("msg-again").Abort(),
              StatusIs(StatusCode::kFailedPrecondition, "cannot abort"));
  dtm_->WaitIdle();
  EXPECT_THAT(Seen(), ElementsAre("/busi.Busi/TransOut", "/busi.Busi/TransIn"));
}

}  // namespace
}  // namespace dtx::testing
