// dtm's wire messages to dtx's requests and back.

#include "dtm_proto.h"

#include "dtx/clock.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dtx::internal {
namespace {

using dtx::testing::StatusIs;

dtmgimp::DtmRequest SagaRequest() {
  dtmgimp::DtmRequest r;
  r.set_gid("g1");
  r.set_transtype("saga");
  r.set_steps(
      R"([{"action":"h:1/a.B/C","compensate":"h:1/a.B/D"},{"action":"h:1/a.B/E"}])");
  r.add_binpayloads(std::string("\0\1", 2));
  r.add_binpayloads("two");
  r.mutable_transoptions()->set_waitresult(true);
  r.mutable_transoptions()->set_retrylimit(3);
  (*r.mutable_transoptions()->mutable_branchheaders())["x-a"] = "b";
  return r;
}

TEST(DtmProtoTest, ReadsASagaAsDtmsSdkSendsIt) {
  ASSERT_OK_AND_ASSIGN(TransRequest req, FromProto(SagaRequest()));
  EXPECT_EQ(req.gid, "g1");
  EXPECT_EQ(req.trans_type, TransType::kSaga);
  ASSERT_EQ(req.steps.size(), 2u);
  EXPECT_EQ(req.steps[0].action, "h:1/a.B/C");
  EXPECT_EQ(req.steps[0].compensate, "h:1/a.B/D");
  EXPECT_EQ(req.steps[1].compensate, "");
  EXPECT_EQ(req.payloads[0], std::string("\0\1", 2));
  EXPECT_TRUE(req.options.wait_result);
  EXPECT_EQ(req.options.retry_limit, 3);
  EXPECT_EQ(req.options.branch_headers.at("x-a"), "b");
}

TEST(DtmProtoTest, RoundTrips) {
  ASSERT_OK_AND_ASSIGN(TransRequest req, FromProto(SagaRequest()));
  ASSERT_OK_AND_ASSIGN(TransRequest again, FromProto(ToProto(req)));
  EXPECT_EQ(again.gid, req.gid);
  EXPECT_EQ(again.payloads, req.payloads);
  ASSERT_EQ(again.steps.size(), 2u);
  EXPECT_EQ(again.steps[0].compensate, req.steps[0].compensate);
  EXPECT_EQ(again.options.branch_headers, req.options.branch_headers);
}

TEST(DtmProtoTest, TccStepsAreNullAsDtmsSdkSendsThem) {
  TransRequest tcc;
  tcc.gid = "t";
  tcc.trans_type = TransType::kTcc;
  EXPECT_EQ(ToProto(tcc).steps(), "null");
  ASSERT_OK_AND_ASSIGN(TransRequest back, FromProto(ToProto(tcc)));
  EXPECT_TRUE(back.steps.empty());
}

TEST(DtmProtoTest, MsgConcurrencyTravelsInCustomData) {
  TransRequest msg;
  msg.gid = "m";
  msg.trans_type = TransType::kMsg;
  msg.custom_data = R"({"delay":5})";
  msg.options.concurrent = true;
  auto wire = ToProto(msg);
  EXPECT_THAT(wire.customeddata(), ::testing::HasSubstr(R"("delay":5)"));
  ASSERT_OK_AND_ASSIGN(TransRequest back, FromProto(wire));
  EXPECT_TRUE(back.options.concurrent);
}

TEST(DtmProtoTest, MalformedRequestsAreInvalidArguments) {
  auto r = SagaRequest();
  r.set_gid("");
  EXPECT_THAT(FromProto(r), StatusIs(StatusCode::kInvalidArgument, "Gid"));
  r = SagaRequest();
  r.set_transtype("bogus");
  EXPECT_THAT(FromProto(r), StatusIs(StatusCode::kInvalidArgument,
                                     "unknown TransType 'bogus'"));
  r = SagaRequest();
  r.set_steps("[{\"action\":");
  EXPECT_THAT(FromProto(r),
              StatusIs(StatusCode::kInvalidArgument, "not valid JSON"));
  r.set_steps(R"({"action":"x"})");
  EXPECT_THAT(FromProto(r), StatusIs(StatusCode::kInvalidArgument, "array"));
  r.set_steps(R"([{"action":1}])");
  EXPECT_THAT(FromProto(r), StatusIs(StatusCode::kInvalidArgument, "string"));
  r = SagaRequest();
  r.add_binpayloads("three");
  EXPECT_THAT(FromProto(r),
              StatusIs(StatusCode::kInvalidArgument, "index-aligned"));
  r = SagaRequest();
  r.mutable_transoptions()->set_timeouttofail(-1);
  EXPECT_THAT(FromProto(r),
              StatusIs(StatusCode::kInvalidArgument, "TimeoutToFail"));
}

// A workflow's requests: ReqExtra on Submit, a recorded step's Data
// {"op","status"} as dtm's Go SDK sends them, and PrepareWorkflow's answer.
TEST(DtmProtoTest, WorkflowRequestsAndProgresses) {
  dtmgimp::DtmRequest r;
  r.set_gid("wf");
  r.set_transtype("workflow");
  r.set_steps("null");
  (*r.mutable_reqextra())["status"] = "succeed";
  (*r.mutable_reqextra())["result"] = "cg==";
  auto req = FromProto(r);
  ASSERT_OK(req);
  EXPECT_EQ(req->trans_type, TransType::kWorkflow);
  EXPECT_EQ(req->req_extra.at("result"), "cg==");
  EXPECT_EQ(ToProto(*req).reqextra().at("status"), "succeed");

  dtmgimp::DtmBranchRequest b;
  b.set_gid("wf");
  b.set_transtype("workflow");
  b.set_branchid("01");
  b.set_busipayload("reply");
  (*b.mutable_data())["op"] = "rollback";
  (*b.mutable_data())["status"] = "succeed";
  auto step = FromProto(b);
  ASSERT_OK(step);
  EXPECT_EQ(step->op, BranchOp::kRollback);
  EXPECT_EQ(step->status, BranchStatus::kSucceed);
  EXPECT_EQ(step->payload, "reply");
  EXPECT_EQ(ToProto(*step).data().at("op"), "rollback");
  (*b.mutable_data())["status"] = "done";
  EXPECT_THAT(FromProto(b).status(),
              StatusIs(StatusCode::kInvalidArgument, "Data.status"));
  (*b.mutable_data())["op"] = "";
  EXPECT_THAT(FromProto(b).status(),
              StatusIs(StatusCode::kInvalidArgument, "Data.op"));

  TransWithBranches record;
  record.trans.gid = "wf";
  record.trans.trans_type = TransType::kWorkflow;
  record.trans.status = TransStatus::kFailed;
  record.trans.rollback_reason = "no money";
  Branch row;
  row.branch_id = "01";
  row.op = BranchOp::kAction;
  row.status = BranchStatus::kFailed;
  row.bin_data = "no money";
  record.branches.push_back(row);
  dtmgimp::DtmProgressesReply reply;
  ToProto(record, &reply);
  EXPECT_EQ(reply.transaction().status(), "failed");
  EXPECT_EQ(reply.transaction().rollbackreason(), "no money");
  ASSERT_EQ(reply.progresses_size(), 1);
  EXPECT_EQ(reply.progresses(0).op(), "action");
  EXPECT_EQ(reply.progresses(0).status(), "failed");
  auto back = FromProto(reply);
  ASSERT_OK(back);
  EXPECT_EQ(back->trans.status, TransStatus::kFailed);
  ASSERT_EQ(back->branches.size(), 1u);
  EXPECT_EQ(back->branches[0].bin_data, "no money");
}

TEST(DtmProtoTest, BranchRegistrationReadsConfirmAndCancel) {
  dtmgimp::DtmBranchRequest b;
  b.set_gid("g");
  b.set_transtype("tcc");
  b.set_branchid("01");
  (*b.mutable_data())["confirm"] = "h:1/a.B/Confirm";
  (*b.mutable_data())["cancel"] = "h:1/a.B/Cancel";
  b.set_busipayload("p");
  ASSERT_OK_AND_ASSIGN(BranchRegistration reg, FromProto(b));
  EXPECT_EQ(reg.confirm_url, "h:1/a.B/Confirm");
  EXPECT_EQ(reg.cancel_url, "h:1/a.B/Cancel");
  EXPECT_EQ(reg.payload, "p");
  auto wire = ToProto(reg);
  EXPECT_EQ(wire.gid(), "g");
  EXPECT_EQ(wire.transtype(), "tcc");
  EXPECT_EQ(wire.branchid(), "01");
  EXPECT_EQ(wire.data().at("confirm"), "h:1/a.B/Confirm");
  EXPECT_EQ(wire.data().at("cancel"), "h:1/a.B/Cancel");
  EXPECT_EQ(wire.busipayload(), "p");
}

TEST(DtmProtoTest, StatusCodesKeepTheirNumbers) {
  EXPECT_EQ(ToGrpcStatus(AbortedError("x FAILURE")).error_code(),
            grpc::StatusCode::ABORTED);
  EXPECT_EQ(ToGrpcStatus(FailedPreconditionError("ONGOING")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::ABORTED, "m")),
              StatusIs(StatusCode::kAborted, "m"));
  EXPECT_OK(FromGrpcStatus(grpc::Status::OK));
}

TEST(DtmProtoTest, ListPagesAreCapped) {
  dtx::admin::v1::ListRequest r;
  ASSERT_OK_AND_ASSIGN(ListQuery q, FromProto(r));
  EXPECT_EQ(q.limit, ListQuery{}.limit);  // the default page
  r.set_limit(50);
  ASSERT_OK_AND_ASSIGN(q, FromProto(r));
  EXPECT_EQ(q.limit, 50u);
  r.set_limit(4'000'000'000u);
  ASSERT_OK_AND_ASSIGN(q, FromProto(r));
  EXPECT_EQ(q.limit, 1000u);
  r.set_cursor(-1);
  EXPECT_THAT(FromProto(r), StatusIs(StatusCode::kInvalidArgument, "cursor"));
}

// Found by fuzz/dtm_proto: a List request's created_from_ms from any
// client overflowed TimePoint past the year 2262 (UBSan).
TEST(DtmProtoTest, ListTimesPastTimePointsRangeAreRefusedServerTimesClamped) {
  // A client's List range outside what a time point holds is an error
  // naming the field (it would otherwise wrap and match every row).
  dtx::admin::v1::ListRequest r;
  r.set_created_from_ms(INT64_MAX);
  EXPECT_THAT(FromProto(r),
              StatusIs(StatusCode::kInvalidArgument, "created_from_ms"));
  r.set_created_from_ms(0);
  r.set_created_to_ms(INT64_MIN);
  EXPECT_THAT(FromProto(r),
              StatusIs(StatusCode::kInvalidArgument, "created_to_ms"));
  r.set_created_to_ms(kMaxUnixMillis);
  ASSERT_OK_AND_ASSIGN(ListQuery q, FromProto(r));
  ASSERT_TRUE(q.created_to.has_value());
  EXPECT_EQ(ToUnixMillis(*q.created_to), kMaxUnixMillis);
  // A server's answer is read as far as it can be: clamped.
  dtx::admin::v1::Transaction t;
  t.set_gid("g");
  t.set_trans_type("saga");
  t.set_status("submitted");
  t.set_next_cron_time_ms(INT64_MAX);
  ASSERT_OK_AND_ASSIGN(GlobalTrans back, FromProto(t));
  EXPECT_EQ(ToUnixMillis(back.next_cron_time), kMaxUnixMillis);
}

TEST(DtmProtoTest, ListFiltersRoundTrip) {
  ListQuery q;
  q.status = TransStatus::kAborting;
  q.trans_type = TransType::kTcc;
  q.created_from = FromUnixMillis(1000);
  q.created_to = FromUnixMillis(2000);
  q.gid_prefix = "pay_%";
  q.unfinished_only = true;
  q.cursor = 77;
  q.limit = 5000;  // sent as the largest page
  ASSERT_OK_AND_ASSIGN(ListQuery back, FromProto(ToProto(q)));
  EXPECT_EQ(back.status, q.status);
  EXPECT_EQ(back.trans_type, q.trans_type);
  EXPECT_EQ(back.created_from, q.created_from);
  EXPECT_EQ(back.created_to, q.created_to);
  EXPECT_EQ(back.gid_prefix, "pay_%");
  EXPECT_TRUE(back.unfinished_only);
  EXPECT_EQ(back.cursor, 77);
  EXPECT_EQ(back.limit, kMaxListLimit);
}

TEST(DtmProtoTest, StatsRoundTrip) {
  TransStats s;
  s.counts.by_status = {1, 2, 3, 4, 5};
  s.unfinished.unfinished = 6;
  s.unfinished.due = 2;
  s.unfinished.oldest_create_time = FromUnixMillis(123456);
  dtx::admin::v1::StatsReply reply;
  ToProto(s, &reply);
  EXPECT_EQ(reply.aborting(), 3);
  EXPECT_EQ(reply.failed(), 5);
  TransStats back = FromProto(reply);
  EXPECT_EQ(back.counts.by_status, s.counts.by_status);
  EXPECT_EQ(back.unfinished.unfinished, 6);
  EXPECT_EQ(back.unfinished.due, 2);
  EXPECT_EQ(back.unfinished.oldest_create_time, FromUnixMillis(123456));
  EXPECT_FALSE(FromProto(dtx::admin::v1::StatsReply{})
                   .unfinished.oldest_create_time.has_value());
}

}  // namespace
}  // namespace dtx::internal
