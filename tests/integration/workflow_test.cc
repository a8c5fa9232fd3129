// Workflows through the embedded coordinator (dtx/workflow.h; dtm-semantics
// §2.5, §6.2): recorded steps, replay, phase 2, the in-process resume and the
// replay checks, against a real gRPC branch service and a SQLite journal.

#include "dtx/workflow.h"

#include "coordinator_test_util.h"

#include <gmock/gmock.h>

#include <atomic>
#include <mutex>

namespace dtx::testing {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class WorkflowTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    CoordinatorTest::SetUp();
    workflows_ = std::make_unique<Workflows>(*dtm_);
  }
  void TearDown() override {
    workflows_.reset();
    CoordinatorTest::TearDown();
  }

  // The seed's transfer: out of one account, into another, each undone by
  // its revert when the workflow rolls back.
  WorkflowFunction Transfer() {
    return [this](Workflow& wf,
                  const std::string& input) -> Result<std::string> {
      auto out =
          wf.Step()
              .OnRollback([this, input](const WorkflowBranch& b) {
                return b.Call(Url("/busi.Busi/TransOutRevert"), input).status();
              })
              .Call(Url("/busi.Busi/TransOut"), input);
      if (!out.ok()) return out.status();
      auto in =
          wf.Step()
              .OnRollback([this, input](const WorkflowBranch& b) {
                return b.Call(Url("/busi.Busi/TransInRevert"), input).status();
              })
              .Call(Url("/busi.Busi/TransIn"), input);
      if (!in.ok()) return in.status();
      return *out + "+" + *in;
    };
  }

  struct Row {
    std::string branch_id;
    BranchOp op;
    BranchStatus status;
    bool operator==(const Row& o) const {
      return branch_id == o.branch_id && op == o.op && status == o.status;
    }
    friend std::ostream& operator<<(std::ostream& os, const Row& r) {
      return os << r.branch_id << " " << ToString(r.op) << " "
                << ToString(r.status);
    }
  };
  std::vector<Row> Rows(const std::string& gid) {
    std::vector<Row> out;
    auto t = dtm_->Query(gid);
    EXPECT_OK(t);
    if (t.ok()) {
      for (const Branch& b : t->branches)
        out.push_back({b.branch_id, b.op, b.status});
    }
    return out;
  }

  std::unique_ptr<Workflows> workflows_;
};

TEST_F(WorkflowTest, TwoStepsSucceedAndAreRecorded) {
  Script("/busi.Busi/TransOut", {TestReply::Ok("out-ok")});
  Script("/busi.Busi/TransIn", {TestReply::Ok("in-ok")});
  ASSERT_OK(workflows_->Register("transfer", Transfer()));
  auto r = workflows_->Execute("transfer", "wf-ok", "30 cents");
  ASSERT_OK(r);
  EXPECT_EQ(*r, "out-ok+in-ok");
  GlobalTrans t = Global("wf-ok");
  EXPECT_EQ(t.status, TransStatus::kSucceed);
  EXPECT_EQ(t.trans_type, TransType::kWorkflow);
  EXPECT_EQ(t.result, "b3V0LW9rK2luLW9r");  // base64, as dtm's SDKs submit
  EXPECT_THAT(
      Rows("wf-ok"),
      ElementsAre(Row{"01", BranchOp::kAction, BranchStatus::kSucceed},
                  Row{"02", BranchOp::kAction, BranchStatus::kSucceed}));
  auto calls = busi_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].method, "/busi.Busi/TransOut");
  EXPECT_EQ(calls[0].payload, "30 cents");
  EXPECT_EQ(calls[0].Get("dtm-gid"), "wf-ok");
  EXPECT_EQ(calls[0].Get("dtm-trans_type"), "workflow");
  EXPECT_EQ(calls[0].Get("dtm-branch_id"), "01");
  EXPECT_EQ(calls[0].Get("dtm-op"), "action");
  EXPECT_EQ(calls[1].Get("dtm-branch_id"), "02");

  // Run again once ended: the recorded result, and no call.
  auto again = workflows_->Execute("transfer", "wf-ok", "30 cents");
  ASSERT_OK(again);
  EXPECT_EQ(*again, "out-ok+in-ok");
  EXPECT_EQ(busi_->Calls().size(), 2u);
}

TEST_F(WorkflowTest, AFailedStepRollsBackTheStepsBeforeItInReverse) {
  Script("/busi.Busi/TransIn", {Failure()});
  ASSERT_OK(workflows_->Register("transfer", Transfer()));
  auto r = workflows_->Execute("transfer", "wf-fail", "30 cents");
  EXPECT_THAT(r.status(), StatusIs(StatusCode::kAborted, "FAILURE"));
  GlobalTrans t = Global("wf-fail");
  EXPECT_EQ(t.status, TransStatus::kFailed);
  EXPECT_THAT(t.rollback_reason, HasSubstr("FAILURE"));
  // The failed step's own rollback is dropped (dtm's default): only
  // TransOut is undone.
  EXPECT_THAT(Seen(), ElementsAre("/busi.Busi/TransOut", "/busi.Busi/TransIn",
                                  "/busi.Busi/TransOutRevert"));
  EXPECT_EQ(busi_->Calls()[2].Get("dtm-op"), "rollback");
  EXPECT_EQ(busi_->Calls()[2].Get("dtm-branch_id"), "01");
  EXPECT_THAT(
      Rows("wf-fail"),
      ElementsAre(Row{"01", BranchOp::kAction, BranchStatus::kSucceed},
                  Row{"02", BranchOp::kAction, BranchStatus::kFailed},
                  Row{"01", BranchOp::kRollback, BranchStatus::kSucceed}));
  // Ended: answers as it ended.
  EXPECT_THAT(workflows_->Execute("transfer", "wf-fail", "30 cents").status(),
              StatusIs(StatusCode::kAborted, "FAILURE"));
  EXPECT_EQ(busi_->Calls().size(), 3u);
}

TEST_F(WorkflowTest, CompensateErrorBranchUndoesTheFailedStepToo) {
  Script("/busi.Busi/TransIn", {Failure()});
  WorkflowOptions options;
  options.compensate_error_branch = true;
  ASSERT_OK(workflows_->Register("transfer", Transfer(), options));
  EXPECT_THAT(workflows_->Execute("transfer", "wf-comp", "x").status(),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(Seen(), ElementsAre("/busi.Busi/TransOut", "/busi.Busi/TransIn",
                                  "/busi.Busi/TransInRevert",
                                  "/busi.Busi/TransOutRevert"));
}

TEST_F(WorkflowTest, OngoingLeavesItPreparedAndTheCoordinatorResumesIt) {
  Script("/busi.Busi/TransOut", {TestReply::Ok("out")});
  Script("/busi.Busi/TransIn", {Ongoing(), TestReply::Ok("in")});
  ASSERT_OK(workflows_->Register("transfer", Transfer()));
  EXPECT_THAT(workflows_->Execute("transfer", "wf-resume", "x").status(),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_EQ(Global("wf-resume").status, TransStatus::kPrepared);
  EXPECT_THAT(Rows("wf-resume"), ElementsAre(Row{"01", BranchOp::kAction,
                                                 BranchStatus::kSucceed}));
  // Not due yet.
  Later(seconds(5));
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"), 1u);
  // Due after the retry interval: resumed in process, replaying step 01.
  Later(seconds(6));
  GlobalTrans t = Global("wf-resume");
  EXPECT_EQ(t.status, TransStatus::kSucceed);
  EXPECT_EQ(t.result, "b3V0K2lu");  // "out+in"
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"), 2u);
  auto r = workflows_->Execute("transfer", "wf-resume", "x");
  ASSERT_OK(r);
  EXPECT_EQ(*r, "out+in");
}

TEST_F(WorkflowTest, ALocalStepIsRecordedAndNotRunAgain) {
  std::atomic<int> local_runs{0};
  std::atomic<int> attempt{0};
  ASSERT_OK(workflows_->Register(
      "mixed", [&](Workflow& wf, const std::string&) -> Result<std::string> {
        auto quote = wf.Step().Do(
            "quote", [&](const WorkflowBranch& b) -> Result<std::string> {
              ++local_runs;
              EXPECT_EQ(b.info().op, BranchOp::kAction);
              EXPECT_EQ(b.info().branch_id, "01");
              return std::string("42");
            });
        if (!quote.ok()) return quote.status();
        DTX_RETURN_IF_ERROR(
            wf.Call(Url("/busi.Busi/TransOut"), *quote).status());
        if (attempt++ == 0) return UnavailableError("crashed, say");
        DTX_RETURN_IF_ERROR(
            wf.Call(Url("/busi.Busi/TransIn"), *quote).status());
        return *quote;
      }));
  EXPECT_THAT(workflows_->Execute("mixed", "wf-local", "").status(),
              StatusIs(StatusCode::kUnavailable));
  auto r = workflows_->Execute("mixed", "wf-local", "");
  ASSERT_OK(r);
  EXPECT_EQ(*r, "42");
  EXPECT_EQ(local_runs, 1);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"), 1u);
  EXPECT_EQ(busi_->Calls()[0].payload, "42");
}

TEST_F(WorkflowTest, CommitCallbacksRunOnceInReverseAfterSuccess) {
  std::mutex mu;
  std::vector<std::string> order;
  std::atomic<int> attempt{0};
  auto note = [&](std::string what) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(std::move(what));
  };
  ASSERT_OK(workflows_->Register(
      "commits", [&](Workflow& wf, const std::string&) -> Result<std::string> {
        DTX_RETURN_IF_ERROR(wf.Step()
                                .OnCommit([&](const WorkflowBranch& b) {
                                  EXPECT_EQ(b.info().op, BranchOp::kCommit);
                                  note("commit " + b.info().branch_id);
                                  return Status::Ok();
                                })
                                .Call(Url("/busi.Busi/TransOut"), "")
                                .status());
        DTX_RETURN_IF_ERROR(wf.Step()
                                .OnCommit([&](const WorkflowBranch& b) {
                                  note("commit " + b.info().branch_id);
                                  // The first time, the second commit fails
                                  // (an error, not FAILURE): resumed later.
                                  if (attempt++ == 0)
                                    return UnavailableError("not now");
                                  return Status::Ok();
                                })
                                .Call(Url("/busi.Busi/TransIn"), "")
                                .status());
        return std::string("done");
      }));
  EXPECT_THAT(workflows_->Execute("commits", "wf-commit", "").status(),
              StatusIs(StatusCode::kUnavailable, "not now"));
  EXPECT_EQ(Global("wf-commit").status, TransStatus::kPrepared);
  ASSERT_OK(workflows_->Execute("commits", "wf-commit", ""));
  // Step 02's commit first; on the second run it runs again (it failed),
  // then step 01's, once.
  EXPECT_THAT(order, ElementsAre("commit 02", "commit 02", "commit 01"));
  EXPECT_THAT(
      Rows("wf-commit"),
      ElementsAre(Row{"01", BranchOp::kAction, BranchStatus::kSucceed},
                  Row{"02", BranchOp::kAction, BranchStatus::kSucceed},
                  Row{"02", BranchOp::kCommit, BranchStatus::kSucceed},
                  Row{"01", BranchOp::kCommit, BranchStatus::kSucceed}));
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"), 1u);
}

// OnFinish is both callbacks: it runs in phase 2 whichever way the workflow
// ends, told which; a step's second callback of one kind is a misuse.
TEST_F(WorkflowTest,
       OnFinishRunsOnCommitAndOnRollbackAndCallbacksAreOnePerKind) {
  Script("/busi.Busi/TransIn", {Ok(), Failure()});
  std::vector<std::string> finished;
  std::mutex mu;
  ASSERT_OK(workflows_->Register(
      "finish", [&](Workflow& wf, const std::string&) -> Result<std::string> {
        DTX_RETURN_IF_ERROR(
            wf.Step()
                .OnFinish([&](const WorkflowBranch& b, bool rolled_back) {
                  std::lock_guard<std::mutex> lock(mu);
                  finished.push_back(
                      b.info().gid + " " + std::string(ToString(b.info().op)) +
                      (rolled_back ? " rolled back" : " committed"));
                  return Status::Ok();
                })
                .Call(Url("/busi.Busi/TransOut"), "")
                .status());
        DTX_RETURN_IF_ERROR(wf.Call(Url("/busi.Busi/TransIn"), "").status());
        return std::string("ok");
      }));
  ASSERT_OK(workflows_->Execute("finish", "wf-fin-ok", ""));
  EXPECT_THAT(workflows_->Execute("finish", "wf-fin-fail", "").status(),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(finished, ElementsAre("wf-fin-ok commit committed",
                                    "wf-fin-fail rollback rolled back"));

  ASSERT_OK(workflows_->Register(
      "twice", [&](Workflow& wf, const std::string&) -> Result<std::string> {
        auto noop = [](const WorkflowBranch&) { return Status::Ok(); };
        return wf.Step().OnCommit(noop).OnCommit(noop).Call(
            Url("/busi.Busi/TransOut"), "");
      }));
  EXPECT_THAT(workflows_->Execute("twice", "wf-twice", "").status(),
              StatusIs(StatusCode::kInvalidArgument, "one commit callback"));
  EXPECT_EQ(Global("wf-twice").status, TransStatus::kPrepared);
}

TEST_F(WorkflowTest, AReplayThatTakesAnotherStepIsAMismatchNamingIt) {
  bool changed = false;
  ASSERT_OK(workflows_->Register(
      "drift", [&](Workflow& wf, const std::string&) -> Result<std::string> {
        auto first = wf.Call(
            Url(changed ? "/busi.Busi/TransIn" : "/busi.Busi/TransOut"), "");
        if (!first.ok()) return first.status();
        return FailedPreconditionError("waiting for something");
      }));
  EXPECT_THAT(workflows_->Execute("drift", "wf-drift", "").status(),
              StatusIs(StatusCode::kFailedPrecondition));
  changed = true;  // the code changed between the runs
  auto r = workflows_->Execute("drift", "wf-drift", "");
  EXPECT_THAT(r.status(), StatusIs(StatusCode::kInternal, "replay mismatch"));
  EXPECT_THAT(r.status().message(), HasSubstr("step 01"));
  EXPECT_THAT(r.status().message(), HasSubstr("TransOut"));
  EXPECT_EQ(Global("wf-drift").status, TransStatus::kPrepared);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"), 0u);
}

// What a step called is its method (or path), not the address it was sent
// to: a service that moved between runs is the same step.
TEST_F(WorkflowTest, AStepWhoseServiceMovedIsTheSameStep) {
  std::string host = busi_->address();  // 127.0.0.1:<port>
  std::atomic<int> attempt{0};
  ASSERT_OK(workflows_->Register(
      "moved", [&](Workflow& wf, const std::string&) -> Result<std::string> {
        DTX_RETURN_IF_ERROR(wf.Call(host + "/busi.Busi/TransOut", "").status());
        if (attempt++ == 0) return FailedPreconditionError("later");
        return std::string("done");
      }));
  EXPECT_THAT(workflows_->Execute("moved", "wf-moved", "").status(),
              StatusIs(StatusCode::kFailedPrecondition));
  host = "dns:///" + busi_->address();
  ASSERT_OK(workflows_->Execute("moved", "wf-moved", ""));
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
}

TEST_F(WorkflowTest, ARunThatSkipsARecordedStepIsAMismatch) {
  bool shorter = false;
  std::atomic<int> commits{0};
  ASSERT_OK(workflows_->Register(
      "skip", [&](Workflow& wf, const std::string&) -> Result<std::string> {
        DTX_RETURN_IF_ERROR(wf.Step()
                                .OnCommit([&](const WorkflowBranch&) {
                                  ++commits;
                                  return Status::Ok();
                                })
                                .Call(Url("/busi.Busi/TransOut"), "")
                                .status());
        if (shorter) return std::string("early");  // step 02 never reached
        DTX_RETURN_IF_ERROR(wf.Call(Url("/busi.Busi/TransIn"), "").status());
        return FailedPreconditionError("later");
      }));
  EXPECT_THAT(workflows_->Execute("skip", "wf-skip", "").status(),
              StatusIs(StatusCode::kFailedPrecondition));
  shorter = true;
  auto r = workflows_->Execute("skip", "wf-skip", "");
  EXPECT_THAT(r.status(), StatusIs(StatusCode::kInternal, "step 02"));
  EXPECT_EQ(Global("wf-skip").status, TransStatus::kPrepared);
  EXPECT_EQ(commits, 0);  // found before phase 2, which did not run
}

TEST_F(WorkflowTest, AMismatchSticksEvenWhenTheFunctionIgnoresIt) {
  bool changed = false;
  ASSERT_OK(workflows_->Register(
      "ignore", [&](Workflow& wf, const std::string&) -> Result<std::string> {
        auto step =
            changed ? wf.Do([](const WorkflowBranch&) -> Result<std::string> {
              return "x";
            })
                    : wf.Call(Url("/busi.Busi/TransOut"), "");
        (void)step;  // ignored
        if (!changed) return FailedPreconditionError("later");
        return std::string("done anyway");
      }));
  EXPECT_THAT(workflows_->Execute("ignore", "wf-ignore", "").status(),
              StatusIs(StatusCode::kFailedPrecondition));
  changed = true;
  EXPECT_THAT(workflows_->Execute("ignore", "wf-ignore", "").status(),
              StatusIs(StatusCode::kInternal, "replay mismatch"));
  EXPECT_EQ(Global("wf-ignore").status, TransStatus::kPrepared);
}

TEST_F(WorkflowTest, RequestsAreCheckedAndRetriesAnsweredAsTheFirst) {
  EXPECT_THAT(workflows_->Execute("nobody", "wf-x", "").status(),
              StatusIs(StatusCode::kNotFound, "not registered"));
  ASSERT_OK(workflows_->Register("transfer", Transfer()));
  EXPECT_THAT(workflows_->Register("transfer", Transfer()),
              StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(workflows_->Register("", Transfer()),
              StatusIs(StatusCode::kInvalidArgument));
  ASSERT_OK(workflows_->Execute("transfer", "wf-retry", "in"));
  // Another input under the gid: another workflow, refused.
  EXPECT_THAT(workflows_->Execute("transfer", "wf-retry", "other").status(),
              StatusIs(StatusCode::kAlreadyExists, "another workflow"));
  // A client's retry of the Submit that ended it: OK; one that says
  // otherwise: refused.
  TransRequest submit;
  submit.gid = "wf-retry";
  submit.trans_type = TransType::kWorkflow;
  submit.req_extra = {{"status", "succeed"}, {"result", ""}};
  EXPECT_OK(dtm_->Submit(submit));
  submit.req_extra = {{"status", "failed"}, {"rollback_reason", "x"}};
  EXPECT_THAT(dtm_->Submit(submit),
              StatusIs(StatusCode::kFailedPrecondition, "already ended"));
  // A recorded step names a workflow op and an outcome.
  BranchRegistration b;
  b.gid = "wf-retry";
  b.trans_type = TransType::kWorkflow;
  b.branch_id = "09";
  b.op = BranchOp::kConfirm;
  EXPECT_THAT(dtm_->RegisterBranch(b),
              StatusIs(StatusCode::kInvalidArgument, "action, commit"));
  b.op = BranchOp::kAction;
  b.status = BranchStatus::kPrepared;
  EXPECT_THAT(dtm_->RegisterBranch(b), StatusIs(StatusCode::kInvalidArgument));
  // Only while prepared (dtm's FAILURE otherwise).
  b.status = BranchStatus::kSucceed;
  EXPECT_THAT(dtm_->RegisterBranch(b), StatusIs(StatusCode::kAborted));
  // PrepareWorkflow needs the workflow's name.
  TransRequest prepare;
  prepare.gid = "wf-noname";
  prepare.trans_type = TransType::kWorkflow;
  prepare.custom_data = R"({"data":""})";
  EXPECT_THAT(dtm_->PrepareWorkflow(prepare).status(),
              StatusIs(StatusCode::kInvalidArgument, "name"));
  // A name travels as gRPC metadata when resumed: printable ASCII only.
  prepare.custom_data = "{\"name\":\"a\\nb\",\"data\":\"\"}";
  EXPECT_THAT(dtm_->PrepareWorkflow(prepare).status(),
              StatusIs(StatusCode::kInvalidArgument, "printable"));
  // The same name and input however the JSON is written: the same workflow.
  prepare.gid = "wf-json";
  prepare.custom_data = R"({"name":"w","data":"AQI="})";
  ASSERT_OK(dtm_->PrepareWorkflow(prepare));
  prepare.custom_data = R"({ "data" : "AQI=", "name" : "w" })";
  EXPECT_OK(dtm_->PrepareWorkflow(prepare));
}

TEST_F(WorkflowTest, AGidRunsOnceAtATimeInAProcess) {
  std::atomic<bool> inside{false};
  std::atomic<bool> release{false};
  ASSERT_OK(workflows_->Register(
      "slow", [&](Workflow&, const std::string&) -> Result<std::string> {
        inside = true;
        while (!release) std::this_thread::yield();
        return std::string("ok");
      }));
  std::thread first(
      [&] { EXPECT_OK(workflows_->Execute("slow", "wf-once", "")); });
  while (!inside) std::this_thread::yield();
  EXPECT_THAT(workflows_->Execute("slow", "wf-once", "").status(),
              StatusIs(StatusCode::kFailedPrecondition, "running"));
  release = true;
  first.join();
  EXPECT_EQ(Global("wf-once").status, TransStatus::kSucceed);
}

// A workflow prepared with no Workflows to resume it waits; once one is
// there, it is resumed.
TEST_F(WorkflowTest, AWorkflowWaitsForItsResumerAfterARestart) {
  Script("/busi.Busi/TransIn", {Error(), TestReply::Ok("in")});
  ASSERT_OK(workflows_->Register("transfer", Transfer()));
  EXPECT_THAT(workflows_->Execute("transfer", "wf-restart", "x").status(),
              StatusIs(StatusCode::kUnavailable));
  workflows_.reset();
  Reopen();
  Later(seconds(11));  // due: no resumer yet
  EXPECT_EQ(Global("wf-restart").status, TransStatus::kPrepared);
  workflows_ = std::make_unique<Workflows>(*dtm_);
  ASSERT_OK(workflows_->Register("transfer", Transfer()));
  Settle(seconds(30));
  EXPECT_EQ(Global("wf-restart").status, TransStatus::kSucceed);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"), 2u);
}

}  // namespace
}  // namespace dtx::testing
