// The table of modes and what each processor admits: the part of a mode that
// needs no coordinator (the processing itself is tested through the
// coordinator in tests/integration).

#include "trans_type.h"

#include "status_matchers.h"

#include <gtest/gtest.h>

namespace dtx::internal {
namespace {

using ::dtx::testing::StatusIs;

TEST(TransTypeTest, EveryModeDtxRunsHasItsProcessor) {
  for (TransType t : {TransType::kSaga, TransType::kTcc, TransType::kMsg,
                      TransType::kWorkflow}) {
    const TransProcessor* p = ProcessorFor(t);
    ASSERT_NE(p, nullptr) << ToString(t);
    EXPECT_EQ(p->type(), t);
  }
  EXPECT_EQ(ProcessorFor(TransType::kXa), nullptr);
}

TEST(TransTypeTest, SubmitAdmission) {
  const auto& saga = SagaProcessor();
  const auto& tcc = TccProcessor();
  const auto& msg = MsgProcessor();
  EXPECT_TRUE(saga.SubmitCreates());
  EXPECT_TRUE(msg.SubmitCreates());
  EXPECT_FALSE(tcc.SubmitCreates());
  EXPECT_EQ(saga.AdmitSubmit(TransStatus::kPrepared, {}),
            SubmitAdmission::kRefuse);
  EXPECT_EQ(saga.AdmitSubmit(TransStatus::kSubmitted, {}),
            SubmitAdmission::kContinue);
  EXPECT_EQ(saga.AdmitSubmit(TransStatus::kSucceed, {}),
            SubmitAdmission::kDone);
  EXPECT_EQ(saga.AdmitSubmit(TransStatus::kFailed, {}),
            SubmitAdmission::kRefuse);
  EXPECT_TRUE(saga.StepsInRequest());
  EXPECT_TRUE(msg.StepsInRequest());
  EXPECT_FALSE(tcc.StepsInRequest());
  for (const TransProcessor* p : {&tcc, &msg}) {
    EXPECT_EQ(p->AdmitSubmit(TransStatus::kPrepared, {}),
              SubmitAdmission::kDecide);
    EXPECT_EQ(p->AdmitSubmit(TransStatus::kSubmitted, {}),
              SubmitAdmission::kContinue);
    EXPECT_EQ(p->AdmitSubmit(TransStatus::kAborting, {}),
              SubmitAdmission::kRefuse);
    EXPECT_EQ(p->AdmitSubmit(TransStatus::kFailed, {}),
              SubmitAdmission::kRefuse);
    EXPECT_EQ(p->AdmitSubmit(TransStatus::kSucceed, {}),
              SubmitAdmission::kDone);
  }
}

// A workflow's Submit says how it ended; a retry of it is answered OK, a
// Submit that says otherwise is a conflict.
TEST(TransTypeTest, WorkflowSubmitDecidesTheEnd) {
  const auto& wf = WorkflowProcessor();
  EXPECT_FALSE(wf.SubmitCreates());
  TransRequest req;
  req.trans_type = TransType::kWorkflow;
  EXPECT_THAT(wf.DecideSubmit(req).status(),
              StatusIs(StatusCode::kInvalidArgument, "req_extra status"));
  req.req_extra = {{"status", "succeed"}, {"result", "cg=="}};
  auto ok = wf.DecideSubmit(req);
  ASSERT_OK(ok);
  EXPECT_EQ(ok->to, TransStatus::kSucceed);
  EXPECT_EQ(ok->result, "cg==");
  EXPECT_EQ(wf.AdmitSubmit(TransStatus::kPrepared, *ok),
            SubmitAdmission::kDecide);
  EXPECT_EQ(wf.AdmitSubmit(TransStatus::kSucceed, *ok), SubmitAdmission::kDone);
  EXPECT_EQ(wf.AdmitSubmit(TransStatus::kFailed, *ok),
            SubmitAdmission::kConflict);
  req.req_extra = {{"status", "failed"}, {"rollback_reason", "no money"}};
  auto failed = wf.DecideSubmit(req);
  ASSERT_OK(failed);
  EXPECT_EQ(failed->to, TransStatus::kFailed);
  EXPECT_EQ(failed->rollback_reason, "no money");
  req.req_extra = {{"status", "submitted"}};
  EXPECT_THAT(wf.DecideSubmit(req).status(),
              StatusIs(StatusCode::kInvalidArgument, "'submitted'"));
  req.req_extra = {{"status", "succeed"}, {"result", "not base64!"}};
  EXPECT_THAT(wf.DecideSubmit(req).status(),
              StatusIs(StatusCode::kInvalidArgument, "base64"));
  req.req_extra = {{"status", "succeed"}, {"colour", "red"}};
  EXPECT_THAT(wf.DecideSubmit(req).status(),
              StatusIs(StatusCode::kInvalidArgument, "colour"));
  // Its recorded steps are never called; PrepareWorkflow answers its record;
  // its custom data means the same however the JSON is written.
  EXPECT_FALSE(wf.CallsRegisteredBranches());
  EXPECT_TRUE(TccProcessor().CallsRegisteredBranches());
  EXPECT_TRUE(wf.AnswersProgress());
  EXPECT_FALSE(TccProcessor().AnswersProgress());
  EXPECT_TRUE(wf.SameCustomData(R"({"name":"w","data":"AQI="})",
                                R"({ "data":"AQI=", "name":"w" })"));
  EXPECT_FALSE(wf.SameCustomData(R"({"name":"w","data":"AQI="})",
                                 R"({"name":"w","data":"AQM="})"));
  EXPECT_FALSE(SagaProcessor().SameCustomData("{}", "{ }"));
  // Other modes take no req_extra.
  req.trans_type = TransType::kSaga;
  req.req_extra = {{"status", "succeed"}};
  EXPECT_THAT(SagaProcessor().DecideSubmit(req).status(),
              StatusIs(StatusCode::kInvalidArgument, "req_extra"));
}

TEST(TransTypeTest, AbortAdmission) {
  const auto& tcc = TccProcessor();
  const auto& msg = MsgProcessor();
  EXPECT_EQ(tcc.AdmitAbort(TransStatus::kPrepared), AbortAdmission::kRollBack);
  EXPECT_EQ(tcc.AdmitAbort(TransStatus::kAborting), AbortAdmission::kContinue);
  EXPECT_EQ(tcc.AdmitAbort(TransStatus::kSubmitted), AbortAdmission::kRefuse);
  EXPECT_EQ(msg.AdmitAbort(TransStatus::kPrepared), AbortAdmission::kFail);
  EXPECT_EQ(tcc.AdmitAbort(TransStatus::kFailed), AbortAdmission::kDone);
  EXPECT_EQ(tcc.AdmitAbort(TransStatus::kSucceed), AbortAdmission::kRefuse);
  EXPECT_EQ(msg.AdmitAbort(TransStatus::kSubmitted), AbortAdmission::kRefuse);
  EXPECT_EQ(msg.AdmitAbort(TransStatus::kFailed), AbortAdmission::kDone);
  for (TransStatus s : {TransStatus::kPrepared, TransStatus::kSubmitted,
                        TransStatus::kAborting}) {
    EXPECT_EQ(SagaProcessor().AdmitAbort(s), AbortAdmission::kRefuse);
  }
}

// SameRequest tells a retry from another request for the gid (issue 19
// item 5).
TEST(TransTypeTest, SameRequestComparesTypeStepsPayloadsAndCustomData) {
  GlobalTrans stored;
  stored.gid = "g";
  stored.trans_type = TransType::kSaga;
  stored.custom_data = R"({"concurrent":false})";
  auto row = [](std::string id, BranchOp op, std::string url,
                std::string data) {
    Branch b;
    b.branch_id = std::move(id);
    b.op = op;
    b.url = std::move(url);
    b.bin_data = std::move(data);
    return b;
  };
  const std::vector<Branch> rows = {
      row("01", BranchOp::kCompensate, "h:1/s.S/FAILURE-Undo", "p"),
      row("01", BranchOp::kAction, "h:1/s.S/Do", "p")};
  GlobalTrans asked = stored;
  std::vector<Branch> asked_rows = rows;
  EXPECT_OK(SameRequest("submit", stored, rows, TransType::kSaga, &asked,
                        &asked_rows));
  // Options do not count: a retry may differ in them.
  asked.options = R"({"wait_result":true})";
  EXPECT_OK(SameRequest("submit", stored, rows, TransType::kSaga, &asked,
                        &asked_rows));
  EXPECT_THAT(
      SameRequest("submit", stored, rows, TransType::kMsg, &asked, &asked_rows),
      StatusIs(StatusCode::kAlreadyExists,
               "submit: gid g exists with trans type 'saga', not "
               "'msg'"));
  asked_rows[0].url = "h:1/s.S/Other";
  Status url = SameRequest("submit", stored, rows, TransType::kSaga, &asked,
                           &asked_rows);
  EXPECT_THAT(url, StatusIs(StatusCode::kAlreadyExists,
                            "a different step 01's compensate URL"));
  // Neither URL is in the message (an HTTP client of dtm would read the
  // word FAILURE in it as a failure).
  EXPECT_EQ(url.message().find("FAILURE"), std::string::npos) << url;
  asked_rows = rows;
  asked_rows[1].bin_data = "q";
  EXPECT_THAT(SameRequest("prepare", stored, rows, TransType::kSaga, &asked,
                          &asked_rows),
              StatusIs(StatusCode::kAlreadyExists,
                       "prepare: gid g exists with a different step 01's "
                       "payload"));
  asked_rows.push_back(row("02", BranchOp::kCompensate, "", ""));
  asked_rows.push_back(row("02", BranchOp::kAction, "", ""));
  EXPECT_THAT(SameRequest("submit", stored, rows, TransType::kSaga, &asked,
                          &asked_rows),
              StatusIs(StatusCode::kAlreadyExists, "1 step(s), not 2"));
  asked_rows = rows;
  asked.custom_data = R"({"concurrent":true})";
  EXPECT_THAT(SameRequest("submit", stored, rows, TransType::kSaga, &asked,
                          &asked_rows),
              StatusIs(StatusCode::kAlreadyExists, "different custom data"));
  // A tcc's requests carry no branches: only the type counts.
  stored.trans_type = TransType::kTcc;
  EXPECT_OK(
      SameRequest("submit", stored, rows, TransType::kTcc, nullptr, nullptr));
  EXPECT_OK(SameRequest("prepare", stored, rows, TransType::kTcc, &asked,
                        &asked_rows));
}

TEST(TransTypeTest, TimeoutRules) {
  ModeDefaults defaults;
  defaults.timeout_to_fail = std::chrono::seconds(35);
  TransOptions none;
  TransOptions own;
  own.timeout_to_fail = std::chrono::seconds(7);
  // dtm: a saga times out only with its own TimeoutToFail.
  EXPECT_EQ(SagaProcessor().TimeoutOf(none, defaults).count(), 0);
  EXPECT_EQ(SagaProcessor().TimeoutOf(own, defaults).count(), 7);
  for (const TransProcessor* p : {&TccProcessor(), &MsgProcessor()}) {
    EXPECT_EQ(p->TimeoutOf(none, defaults).count(), 35);
    EXPECT_EQ(p->TimeoutOf(own, defaults).count(), 7);
  }
}

// What a registered branch becomes, and the refusals that name the mode.
TEST(TransTypeTest, BranchRowsOfRequests) {
  BranchRegistration b;
  b.gid = "g";
  b.branch_id = "01";
  b.payload = "p";
  class NoUrls final : public BranchClient {
   public:
    void Call(BranchRequest, Executor, Callback) override {}
    Status ValidateUrl(std::string_view, std::string_view) override {
      return Status::Ok();
    }
    void Shutdown() override {}
  } client;
  auto rows = TccProcessor().RegisteredBranches(b, client);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].op, BranchOp::kCancel);
  EXPECT_EQ((*rows)[1].op, BranchOp::kConfirm);
  EXPECT_EQ((*rows)[1].bin_data, "p");
  EXPECT_THAT(SagaProcessor().RegisteredBranches(b, client).status(),
              StatusIs(StatusCode::kInvalidArgument, "want tcc"));
  TransRequest saga_prepare;
  saga_prepare.trans_type = TransType::kSaga;
  EXPECT_THAT(SagaProcessor().PrepareBranches(saga_prepare, client).status(),
              StatusIs(StatusCode::kInvalidArgument, "no prepare phase"));
  TransRequest msg;
  msg.trans_type = TransType::kMsg;
  msg.steps = {{"", "x"}};  // a compensate: msg steps have none
  EXPECT_THAT(MsgProcessor().SubmitBranches(msg, client).status(),
              StatusIs(StatusCode::kInvalidArgument, "no compensate"));
  msg.steps = {{"a1", ""}, {"a2", ""}};
  auto msg_rows = MsgProcessor().SubmitBranches(msg, client);
  ASSERT_TRUE(msg_rows.ok());
  ASSERT_EQ(msg_rows->size(), 2u);
  EXPECT_EQ((*msg_rows)[1].branch_id, "02");
  TransRequest saga;
  saga.trans_type = TransType::kSaga;
  saga.steps = {{"a1", "c1"}};
  saga.custom_data = R"({"orders":{"0":[0]},"concurrent":true})";
  EXPECT_THAT(SagaProcessor().SubmitBranches(saga, client).status(),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace dtx::internal
