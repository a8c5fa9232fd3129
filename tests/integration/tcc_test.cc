// TCC through the embedded coordinator (dtm-semantics.md §1.5.4, §2.2, §2.5).

#include "dtx/limits.h"

#include "coordinator_test_util.h"

#include <gmock/gmock.h>

namespace dtx::testing {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
constexpr auto P = BranchStatus::kPrepared;
constexpr auto S = BranchStatus::kSucceed;

class TccTest : public CoordinatorTest {
 protected:
  static TransRequest TccRequest(const std::string& gid) {
    TransRequest req;
    req.gid = gid;
    req.trans_type = TransType::kTcc;
    return req;
  }
  // Registers branch `id` of `gid` with confirm and cancel methods of the
  // test service.
  Status Register(const std::string& gid, const std::string& id,
                  const std::string& confirm, const std::string& cancel,
                  Coordinator* through = nullptr) {
    BranchRegistration b;
    b.gid = gid;
    b.branch_id = id;
    b.confirm_url = Url(confirm);
    b.cancel_url = Url(cancel);
    return (through != nullptr ? through : dtm_.get())->RegisterBranch(b);
  }
  Status Transfer(const std::string& gid, const TransOptions& options = {}) {
    return TccGlobalTransaction(*dtm_, gid, options, [&](Tcc& tcc) {
      DTX_RETURN_IF_ERROR(tcc.CallBranch("out", Url("/busi.Busi/TransOutTry"),
                                         Url("/busi.Busi/TransOutConfirm"),
                                         Url("/busi.Busi/TransOutCancel")));
      return tcc.CallBranch("in", Url("/busi.Busi/TransInTry"),
                            Url("/busi.Busi/TransInConfirm"),
                            Url("/busi.Busi/TransInCancel"));
    });
  }
};

TEST_F(TccTest, ConfirmsInReverseOrderAfterTheTries) {
  TransOptions o;
  o.wait_result = true;
  ASSERT_OK(Transfer("tcc-ok", o));
  EXPECT_EQ(Global("tcc-ok").status, TransStatus::kSucceed);
  // Rows: 01 cancel, 01 confirm, 02 cancel, 02 confirm.
  EXPECT_THAT(BranchStatuses("tcc-ok"), ElementsAre(P, S, P, S));
  EXPECT_THAT(
      Seen(),
      ElementsAre("/busi.Busi/TransOutTry", "/busi.Busi/TransInTry",
                  "/busi.Busi/TransInConfirm", "/busi.Busi/TransOutConfirm"));
  auto calls = busi_->Calls();
  EXPECT_EQ(calls[0].Get("dtm-op"), "try");
  EXPECT_EQ(calls[0].Get("dtm-branch_id"), "01");
  EXPECT_EQ(calls[1].Get("dtm-branch_id"), "02");
  EXPECT_EQ(calls[2].Get("dtm-op"), "confirm");
  EXPECT_EQ(calls[2].payload, "in");  // the try's payload is sent again
}

TEST_F(TccTest, AFailedTryCancelsInReverseOrder) {
  Script("/busi.Busi/TransInTry", {Failure()});
  TransOptions o;
  o.wait_result = true;
  Status s = Transfer("tcc-fail", o);
  EXPECT_THAT(s, StatusIs(StatusCode::kAborted, "FAILURE"));
  dtm_->WaitIdle();
  GlobalTrans t = Global("tcc-fail");
  EXPECT_EQ(t.status, TransStatus::kFailed);
  EXPECT_THAT(t.rollback_reason, ::testing::HasSubstr("FAILURE"));
  EXPECT_THAT(BranchStatuses("tcc-fail"), ElementsAre(S, P, S, P));
  EXPECT_THAT(
      Seen(),
      ElementsAre("/busi.Busi/TransOutTry", "/busi.Busi/TransInTry",
                  "/busi.Busi/TransInCancel", "/busi.Busi/TransOutCancel"));
}

TEST_F(TccTest, APreparedTransactionPastItsTimeoutIsCancelled) {
  ASSERT_OK(dtm_->Prepare(TccRequest("tcc-timeout")));
  ASSERT_OK(
      Register("tcc-timeout", "01", "/busi.Busi/Confirm", "/busi.Busi/Cancel"));
  Later(seconds(34));
  EXPECT_EQ(Global("tcc-timeout").status, TransStatus::kPrepared);
  Later(seconds(1));
  GlobalTrans t = Global("tcc-timeout");
  EXPECT_EQ(t.status, TransStatus::kFailed);
  EXPECT_EQ(t.rollback_reason, "Timeout after 35 seconds");
  EXPECT_THAT(Seen(), ElementsAre("/busi.Busi/Cancel"));
}

TEST_F(TccTest, ConfirmRetriesUntilItSucceeds) {
  Script("/busi.Busi/TransInConfirm", {Ongoing(), Failure(), Ok()});
  ASSERT_OK(Transfer("tcc-retry"));
  dtm_->WaitIdle();
  EXPECT_EQ(Global("tcc-retry").status, TransStatus::kSubmitted);
  Later(seconds(10));  // ONGOING kept the interval
  EXPECT_EQ(Global("tcc-retry").status, TransStatus::kSubmitted);
  Later(seconds(20));  // FAILURE of a confirm is retried with back-off
  EXPECT_EQ(Global("tcc-retry").status, TransStatus::kSucceed);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransInConfirm"), 3u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOutConfirm"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransInCancel"), 0u);
}

TEST_F(TccTest, SubmittingAgainDoesNotSkipTheConfirms) {
  Script("/busi.Busi/TransInConfirm", {Ongoing(), Ok()});
  ASSERT_OK(Transfer("tcc-resubmit"));
  dtm_->WaitIdle();
  TransRequest req;
  req.gid = "tcc-resubmit";
  req.trans_type = TransType::kTcc;
  ASSERT_OK(dtm_->Submit(req));  // dtm would mark it succeed right here
  dtm_->WaitIdle();
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOutConfirm"), 1u);
  EXPECT_EQ(Global("tcc-resubmit").status, TransStatus::kSucceed);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransInConfirm"), 2u);
}

TEST_F(TccTest, NestedBranchIdsExtendTheParent) {
  TransInfo parent{"tcc-nested", TransType::kTcc, "02", BranchOp::kTry, ""};
  TransRequest req;
  req.gid = "tcc-nested";
  req.trans_type = TransType::kTcc;
  ASSERT_OK(dtm_->Prepare(req));
  Tcc nested = Tcc::FromTransInfo(*dtm_, parent);
  ASSERT_OK(nested.CallBranch("", Url("/busi.Busi/Try"),
                              Url("/busi.Busi/Confirm"),
                              Url("/busi.Busi/Cancel")));
  ASSERT_OK(nested.CallBranch("", Url("/busi.Busi/Try"),
                              Url("/busi.Busi/Confirm"),
                              Url("/busi.Busi/Cancel")));
  auto got = dtm_->Query("tcc-nested");
  ASSERT_OK(got);
  ASSERT_EQ(got->branches.size(), 4u);
  EXPECT_EQ(got->branches[0].branch_id, "0201");
  EXPECT_EQ(got->branches[2].branch_id, "0202");
}

TEST_F(TccTest, AbortRulesAndReason) {
  TransRequest req;
  req.gid = "tcc-abort";
  req.trans_type = TransType::kTcc;
  ASSERT_OK(dtm_->Prepare(req));
  ASSERT_OK(dtm_->Prepare(req));  // idempotent while prepared
  req.rollback_reason = "insufficient balance";
  req.options.wait_result = true;
  ASSERT_OK(dtm_->Abort(req));
  GlobalTrans t = Global("tcc-abort");
  EXPECT_EQ(t.status, TransStatus::kFailed);
  EXPECT_EQ(t.rollback_reason, "insufficient balance");
  // Aborted again (a retry): OK. Submit and Prepare: it rolled back, dtm's
  // FAILURE.
  EXPECT_OK(dtm_->Abort(req));
  req.options.wait_result = false;
  EXPECT_OK(dtm_->Abort(req));
  EXPECT_THAT(dtm_->Submit(req),
              StatusIs(StatusCode::kAborted, "cannot submit"));
  EXPECT_THAT(dtm_->Prepare(req),
              StatusIs(StatusCode::kAborted, "cannot prepare"));
  EXPECT_EQ(Global("tcc-abort").rollback_reason, "insufficient balance");
  req.gid = "ghost";
  EXPECT_THAT(dtm_->Abort(req), StatusIs(StatusCode::kNotFound));
}

// Issue 19 item 5: the requests a tcc client retries answer as the first
// did; a request the transaction went past is refused without dtm's FAILURE
// (kAborted reads "rolled back"); another mode for the gid is a conflict.
TEST_F(TccTest, RetriesAnswerAsTheFirstRequestDid) {
  ASSERT_OK(Transfer("tcc-again"));
  dtm_->WaitIdle();
  ASSERT_EQ(Global("tcc-again").status, TransStatus::kSucceed);
  TransRequest req = TccRequest("tcc-again");
  EXPECT_OK(dtm_->Submit(req));
  req.options.wait_result = true;
  EXPECT_OK(dtm_->Submit(req));
  EXPECT_THAT(dtm_->Prepare(req),
              StatusIs(StatusCode::kFailedPrecondition, "was submitted"));
  EXPECT_THAT(dtm_->Abort(req),
              StatusIs(StatusCode::kFailedPrecondition,
                       "current status 'succeed', cannot abort gid tcc-again"));
  TransRequest msg = req;
  msg.trans_type = TransType::kMsg;
  EXPECT_THAT(dtm_->Abort(msg), StatusIs(StatusCode::kFailedPrecondition,
                                         "gid tcc-again is a tcc, not a msg"));
  msg.steps.push_back({Url("/busi.Busi/TransIn"), ""});
  EXPECT_THAT(dtm_->Prepare(msg), StatusIs(StatusCode::kAlreadyExists,
                                           "trans type 'tcc', not 'msg'"));
  EXPECT_THAT(dtm_->Submit(msg), StatusIs(StatusCode::kAlreadyExists,
                                          "trans type 'tcc', not 'msg'"));
  dtm_->WaitIdle();
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOutConfirm"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransInConfirm"), 1u);
  EXPECT_EQ(Global("tcc-again").status, TransStatus::kSucceed);
}

TEST_F(TccTest, AbortOfATimedOutTccIsOk) {
  TransRequest req = TccRequest("tcc-timed-out");
  req.options.timeout_to_fail = seconds(5);
  ASSERT_OK(dtm_->Prepare(req));
  ASSERT_OK(Register("tcc-timed-out", "01", "/busi.Busi/TransOutConfirm",
                     "/busi.Busi/TransOutCancel"));
  Later(seconds(5));
  ASSERT_EQ(Global("tcc-timed-out").status, TransStatus::kFailed);
  // The client's own Abort, after the coordinator rolled it back.
  EXPECT_OK(dtm_->Abort(req));
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOutCancel"), 1u);
}

TEST_F(TccTest, RegisterBranchRules) {
  BranchRegistration b;
  b.gid = "tcc-reg";
  b.branch_id = "01";
  EXPECT_THAT(dtm_->RegisterBranch(b), StatusIs(StatusCode::kNotFound));
  TransRequest req;
  req.gid = "tcc-reg";
  req.trans_type = TransType::kTcc;
  ASSERT_OK(dtm_->Prepare(req));
  ASSERT_OK(dtm_->RegisterBranch(b));
  EXPECT_THAT(dtm_->RegisterBranch(b), StatusIs(StatusCode::kAlreadyExists));
  BranchRegistration bad = b;
  bad.branch_id = "02";
  bad.confirm_url = "consul://x/busi/a.B/C";
  EXPECT_THAT(dtm_->RegisterBranch(bad),
              StatusIs(StatusCode::kInvalidArgument));
  bad = b;
  bad.branch_id = "0 3";
  EXPECT_THAT(dtm_->RegisterBranch(bad),
              StatusIs(StatusCode::kInvalidArgument));
  bad = b;
  bad.trans_type = TransType::kSaga;
  EXPECT_THAT(dtm_->RegisterBranch(bad),
              StatusIs(StatusCode::kInvalidArgument));
  req.options.wait_result = true;
  ASSERT_OK(dtm_->Submit(req));
  b.branch_id = "09";
  EXPECT_THAT(dtm_->RegisterBranch(b),
              StatusIs(StatusCode::kAborted, "status: prepared"));
}

// WaitResult on Abort: OK once every cancel succeeded; kFailedPrecondition
// while a cancel is still being retried (it is not "failed" yet).
TEST_F(TccTest, AbortWithWaitResultReportsTheFirstPass) {
  TransRequest req = TccRequest("tcc-abort-wait");
  ASSERT_OK(dtm_->Prepare(req));
  ASSERT_OK(Register(req.gid, "01", "/busi.Busi/Confirm", "/busi.Busi/Cancel"));
  Script("/busi.Busi/Cancel", {Ongoing(), Ok()});
  req.options.wait_result = true;
  req.rollback_reason = "user gave up";
  EXPECT_THAT(dtm_->Abort(req),
              StatusIs(StatusCode::kFailedPrecondition, "still aborting"));
  Later(std::chrono::seconds(10));
  EXPECT_EQ(Global(req.gid).status, TransStatus::kFailed);
  EXPECT_EQ(Global(req.gid).rollback_reason, "user gave up");

  TransRequest quick = TccRequest("tcc-abort-wait-ok");
  ASSERT_OK(dtm_->Prepare(quick));
  ASSERT_OK(
      Register(quick.gid, "01", "/busi.Busi/Confirm", "/busi.Busi/CancelOk"));
  quick.options.wait_result = true;
  EXPECT_OK(dtm_->Abort(quick));
  EXPECT_EQ(Global(quick.gid).status, TransStatus::kFailed);
}

// A branch registered through another coordinator sharing the journal (as
// another process would) is confirmed too: the submit's compare-and-set on
// the number of branch rows notices it.
TEST_F(TccTest, BranchesRegisteredElsewhereAreNotMissed) {
  TransRequest req = TccRequest("tcc-two-processes");
  ASSERT_OK(dtm_->Prepare(req));
  ASSERT_OK(
      Register(req.gid, "01", "/busi.Busi/Confirm1", "/busi.Busi/Cancel1"));
  std::unique_ptr<Coordinator> other = NewCoordinator();
  ASSERT_NE(other, nullptr);
  ASSERT_OK(Register(req.gid, "02", "/busi.Busi/Confirm2", "/busi.Busi/Cancel2",
                     other.get()));
  req.options.wait_result = true;
  ASSERT_OK(dtm_->Submit(req));
  EXPECT_EQ(busi_->CallCount("/busi.Busi/Confirm1"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/Confirm2"), 1u);
  EXPECT_EQ(Global(req.gid).status, TransStatus::kSucceed);
  other->Shutdown();
}

}  // namespace
}  // namespace dtx::testing

namespace dtx::testing {
namespace {

// Limits are the journal's to check (once, when the rows are appended): a
// registration over them is refused and leaves the transaction as it was.
TEST_F(TccTest, ARegistrationOverTheLimitsIsRefusedAndWritesNothing) {
  TransRequest req = TccRequest("tcc-limits");
  ASSERT_OK(dtm_->Prepare(req));
  BranchRegistration b;
  b.gid = req.gid;
  b.branch_id = std::string(kMaxBranchIdBytes + 1, 'b');
  b.confirm_url = Url("/busi.Busi/Confirm");
  b.cancel_url = Url("/busi.Busi/Cancel");
  EXPECT_THAT(dtm_->RegisterBranch(b),
              StatusIs(StatusCode::kInvalidArgument, "branch id is 129 bytes"));
  b.branch_id = "01";
  b.payload = std::string(kMaxPayloadBytes + 1, 'p');
  EXPECT_THAT(dtm_->RegisterBranch(b),
              StatusIs(StatusCode::kResourceExhausted));
  b.branch_id = "";
  b.payload = "p";
  EXPECT_THAT(dtm_->RegisterBranch(b), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_TRUE(dtm_->Query(req.gid)->branches.empty());
  b.branch_id = "01";
  EXPECT_OK(dtm_->RegisterBranch(b));
  EXPECT_EQ(dtm_->Query(req.gid)->branches.size(), 2u);
}

}  // namespace
}  // namespace dtx::testing
