// dtm's HTTP API bodies (dtm_http_json.h): every field of dtmcli's TransBase
// and of registerBranch's map, the bodies dtm's SDKs really send, malformed
// and wrongly typed ones, and both directions of the answer mapping.

#include "dtx/transport/dtm_http_json.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace dtx {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using testing::StatusIs;

// What dtmcli (Go, v1.18) posts for a two-step saga with options.
constexpr char kDtmcliSaga[] = R"({
  "gid":"g1","trans_type":"saga","custom_data":"{\"orders\":{\"1\":[0]},\"concurrent\":true}",
  "wait_result":true,"timeout_to_fail":60,"request_timeout":5,
  "retry_interval":15,"branch_headers":{"x-test":"v"},"concurrent":true,
  "retry_limit":3,"retry_count":0,
  "steps":[{"action":"http://b/TransOut","compensate":"http://b/TransOutRevert"},
           {"action":"http://b/TransIn","compensate":"http://b/TransInRevert"}],
  "payloads":["{\"amount\":30}","{\"amount\":31}"],
  "protocol":""})";

TEST(DecodeDtmTransJsonTest, ReadsEveryFieldOfDtmclisSaga) {
  ASSERT_OK_AND_ASSIGN(TransRequest r, DecodeDtmTransJson(kDtmcliSaga));
  EXPECT_EQ(r.gid, "g1");
  EXPECT_EQ(r.trans_type, TransType::kSaga);
  EXPECT_EQ(r.custom_data, R"({"orders":{"1":[0]},"concurrent":true})");
  EXPECT_TRUE(r.options.wait_result);
  EXPECT_EQ(r.options.timeout_to_fail.count(), 60);
  EXPECT_EQ(r.options.request_timeout.count(), 5);
  EXPECT_EQ(r.options.retry_interval.count(), 15);
  EXPECT_EQ(r.options.retry_limit, 3);
  EXPECT_THAT(r.options.branch_headers, ElementsAre(Pair("x-test", "v")));
  EXPECT_TRUE(r.options.concurrent);
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_EQ(r.steps[0].action, "http://b/TransOut");
  EXPECT_EQ(r.steps[0].compensate, "http://b/TransOutRevert");
  EXPECT_EQ(r.steps[1].action, "http://b/TransIn");
  // Payloads are the JSON text, stored and sent as those bytes.
  EXPECT_THAT(r.payloads, ElementsAre(R"({"amount":30})", R"({"amount":31})"));
  // An empty protocol is dtm's HTTP.
  EXPECT_EQ(r.protocol, "http");
}

TEST(DecodeDtmTransJsonTest, ReadsMsgAndTccBodies) {
  ASSERT_OK_AND_ASSIGN(
      TransRequest msg,
      DecodeDtmTransJson(
          R"({"gid":"m","trans_type":"msg","concurrent":false,"protocol":"",)"
          R"("steps":[{"action":"http://b/TransIn"}],"payloads":["{}"],)"
          R"("query_prepared":"http://b/QueryPrepared","custom_data":"{\"delay\":5}"})"));
  EXPECT_EQ(msg.trans_type, TransType::kMsg);
  EXPECT_EQ(msg.query_prepared, "http://b/QueryPrepared");
  EXPECT_EQ(msg.steps[0].compensate, "");
  EXPECT_EQ(msg.custom_data, R"({"delay":5})");

  // TccGlobalTransaction's Prepare and Abort: no steps at all.
  ASSERT_OK_AND_ASSIGN(
      TransRequest abort,
      DecodeDtmTransJson(R"({"gid":"t","trans_type":"tcc","concurrent":false,)"
                         R"("protocol":"","rollback_reason":"try failed"})"));
  EXPECT_EQ(abort.trans_type, TransType::kTcc);
  EXPECT_TRUE(abort.steps.empty());
  EXPECT_TRUE(abort.payloads.empty());
  EXPECT_EQ(abort.rollback_reason, "try failed");
}

TEST(DecodeDtmTransJsonTest, IgnoresUnknownKeysAndNullsAsGoDoes) {
  ASSERT_OK_AND_ASSIGN(
      TransRequest r,
      DecodeDtmTransJson(
          R"({"gid":"g","trans_type":"saga","status":"succeed","id":7,)"
          R"("some_future_key":{"a":[1]},"wait_result":null,"steps":null,)"
          R"("payloads":null,"branch_headers":null,"custom_data":null})"));
  EXPECT_FALSE(r.options.wait_result);
  EXPECT_TRUE(r.steps.empty());
  // Unknown keys of a step too.
  ASSERT_OK_AND_ASSIGN(
      TransRequest s,
      DecodeDtmTransJson(
          R"({"gid":"g","trans_type":"saga","steps":[{"action":"a","compensate":"c","x":"y"}],"payloads":[null]})"));
  EXPECT_EQ(s.steps[0].action, "a");
  EXPECT_THAT(s.payloads, ElementsAre(""));
}

TEST(DecodeDtmTransJsonTest, TakesTheLegacyStepDataAsPayloads) {
  // dtm's old HTTP form (its test TestSagaCompatibleNormal).
  ASSERT_OK_AND_ASSIGN(
      TransRequest r,
      DecodeDtmTransJson(
          R"({"gid":"g","trans_type":"saga","steps":[)"
          R"({"action":"a1","compensate":"c1","data":"{\"amount\":1}"},)"
          R"({"action":"a2","compensate":"c2","data":"{\"amount\":2}"}]})"));
  EXPECT_THAT(r.payloads, ElementsAre(R"({"amount":1})", R"({"amount":2})"));
  EXPECT_THAT(
      DecodeDtmTransJson(
          R"({"gid":"g","trans_type":"saga","steps":[{"action":"a","data":"x"}],"payloads":["y"]})"),
      StatusIs(StatusCode::kInvalidArgument, "not both"));
}

TEST(DecodeDtmTransJsonTest, KeepsAnExplicitProtocol) {
  ASSERT_OK_AND_ASSIGN(
      TransRequest grpc,
      DecodeDtmTransJson(
          R"({"gid":"g","trans_type":"tcc","protocol":"grpc"})"));
  EXPECT_EQ(grpc.protocol, "grpc");
  // The coordinator, not the decoder, refuses what it cannot call.
  ASSERT_OK_AND_ASSIGN(
      TransRequest rpc,
      DecodeDtmTransJson(
          R"({"gid":"g","trans_type":"tcc","protocol":"json-rpc"})"));
  EXPECT_EQ(rpc.protocol, "json-rpc");
}

struct Bad {
  const char* body;
  StatusCode code;
  const char* message;
};

TEST(DecodeDtmTransJsonTest, RefusesMalformedBodiesNamingTheField) {
  const Bad cases[] = {
      {"", StatusCode::kInvalidArgument, "not valid JSON"},
      {"{\"gid\":", StatusCode::kInvalidArgument, "not valid JSON"},
      {"[1,2]", StatusCode::kInvalidArgument,
       "must be a JSON object, not an array"},
      {"\"gid\"", StatusCode::kInvalidArgument, "not a string"},
      {R"({"trans_type":"saga"})", StatusCode::kInvalidArgument,
       "gid is missing"},
      {R"({"gid":"","trans_type":"saga"})", StatusCode::kInvalidArgument,
       "gid is missing"},
      {R"({"gid":7,"trans_type":"saga"})", StatusCode::kInvalidArgument,
       "gid must be a string, not an integer"},
      {R"({"gid":"g"})", StatusCode::kInvalidArgument, "trans_type is missing"},
      {R"({"gid":"g","trans_type":"2pc"})", StatusCode::kInvalidArgument,
       "unknown trans_type '2pc'"},
      {R"({"gid":"g","trans_type":"saga","wait_result":"true"})",
       StatusCode::kInvalidArgument,
       "wait_result must be a boolean, not a string"},
      {R"({"gid":"g","trans_type":"saga","concurrent":1})",
       StatusCode::kInvalidArgument, "concurrent must be a boolean"},
      {R"({"gid":"g","trans_type":"saga","timeout_to_fail":"60"})",
       StatusCode::kInvalidArgument, "timeout_to_fail must be an integer"},
      {R"({"gid":"g","trans_type":"saga","request_timeout":1.5})",
       StatusCode::kInvalidArgument,
       "request_timeout must be an integer, not a fractional number"},
      {R"({"gid":"g","trans_type":"saga","retry_interval":-1})",
       StatusCode::kInvalidArgument, "retry_interval -1 is outside"},
      {R"({"gid":"g","trans_type":"saga","timeout_to_fail":99999999999})",
       StatusCode::kInvalidArgument, "timeout_to_fail 99999999999 is outside"},
      {R"({"gid":"g","trans_type":"saga","retry_limit":-2})",
       StatusCode::kInvalidArgument, "retry_limit must not be negative"},
      {R"({"gid":"g","trans_type":"saga","retry_limit":18446744073709551615})",
       StatusCode::kInvalidArgument, "retry_limit is too large"},
      {R"({"gid":"g","trans_type":"saga","retry_count":"0"})",
       StatusCode::kInvalidArgument, "retry_count must be an integer"},
      {R"({"gid":"g","trans_type":"saga","branch_headers":["a"]})",
       StatusCode::kInvalidArgument, "branch_headers must be an object"},
      {R"({"gid":"g","trans_type":"saga","branch_headers":{"a":1}})",
       StatusCode::kInvalidArgument, "branch_headers.a must be a string"},
      {R"({"gid":"g","trans_type":"saga","steps":"[]"})",
       StatusCode::kInvalidArgument, "steps must be an array"},
      {R"({"gid":"g","trans_type":"saga","steps":["a"]})",
       StatusCode::kInvalidArgument, "steps[0] must be an object"},
      {R"({"gid":"g","trans_type":"saga","steps":[{"action":["a"]}]})",
       StatusCode::kInvalidArgument, "steps[0].action must be a string"},
      {R"({"gid":"g","trans_type":"saga","steps":[{"action":"a"}],"payloads":[{"amount":1}]})",
       StatusCode::kInvalidArgument,
       "payloads[0] must be a string (the JSON text of the step's request)"},
      {R"({"gid":"g","trans_type":"saga","payloads":"x"})",
       StatusCode::kInvalidArgument, "payloads must be an array"},
      {R"({"gid":"g","trans_type":"saga","steps":[{"action":"a"},{"action":"b"}],"payloads":["x"]})",
       StatusCode::kInvalidArgument, "steps has 2 entries but payloads has 1"},
      {R"({"gid":"g","trans_type":"msg","query_prepared":false})",
       StatusCode::kInvalidArgument, "query_prepared must be a string"},
      {R"({"gid":"g","trans_type":"tcc","rollback_reason":{}})",
       StatusCode::kInvalidArgument, "rollback_reason must be a string"},
      {R"({"gid":"g","trans_type":"tcc","protocol":0})",
       StatusCode::kInvalidArgument, "protocol must be a string"},
      {R"({"gid":"g","trans_type":"saga","custom_data":{"delay":1}})",
       StatusCode::kInvalidArgument, "custom_data must be a string"},
      {R"({"gid":"g","trans_type":"workflow","req_extra":{"status":1}})",
       StatusCode::kInvalidArgument, "req_extra.status must be a string"},
      {R"({"gid":"g","trans_type":"workflow","req_extra":[]})",
       StatusCode::kInvalidArgument, "req_extra must be an object"},
      {R"({"gid":"g","trans_type":"saga","passthrough_headers":["x-a"]})",
       StatusCode::kUnimplemented, "branch_headers"},
      {R"({"gid":"g","trans_type":"saga","passthrough_headers":"x-a"})",
       StatusCode::kInvalidArgument, "passthrough_headers must be an array"},
  };
  for (const Bad& c : cases) {
    EXPECT_THAT(DecodeDtmTransJson(c.body), StatusIs(c.code, c.message))
        << c.body;
  }
}

TEST(EncodeDtmTransJsonTest, WritesWhatDtmcliWritesAndDecodesBack) {
  TransRequest r;
  r.gid = "g1";
  r.trans_type = TransType::kSaga;
  r.steps = {{"http://b/a", "http://b/c"}, {"http://b/a2", ""}};
  r.payloads = {R"({"x":1})", "raw \x01 bytes"};
  r.options.wait_result = true;
  r.options.retry_limit = 2;
  r.options.timeout_to_fail = std::chrono::seconds(9);
  r.options.branch_headers = {{"h", "v"}};
  r.custom_data = R"({"orders":{},"concurrent":true})";
  const std::string body = EncodeDtmTransJson(r);
  EXPECT_THAT(body, HasSubstr(R"("protocol":"")"));
  EXPECT_THAT(body, HasSubstr(R"("concurrent":false)"));
  EXPECT_THAT(body, HasSubstr(R"("payloads":["{\"x\":1}")"));
  EXPECT_THAT(body, ::testing::Not(HasSubstr("request_timeout")));
  ASSERT_OK_AND_ASSIGN(TransRequest back, DecodeDtmTransJson(body));
  EXPECT_EQ(back.gid, r.gid);
  EXPECT_EQ(back.steps.size(), 2u);
  EXPECT_EQ(back.steps[1].compensate, "");
  EXPECT_EQ(back.payloads, r.payloads);
  EXPECT_TRUE(back.options.wait_result);
  EXPECT_EQ(back.options.retry_limit, 2);
  EXPECT_EQ(back.options.timeout_to_fail.count(), 9);
  EXPECT_EQ(back.options.branch_headers, r.options.branch_headers);
  EXPECT_EQ(back.custom_data, r.custom_data);
  EXPECT_EQ(back.protocol, "http");

  TransRequest tcc;
  tcc.gid = "t";
  tcc.trans_type = TransType::kTcc;
  tcc.protocol = "grpc";
  tcc.rollback_reason = "no";
  ASSERT_OK_AND_ASSIGN(TransRequest t,
                       DecodeDtmTransJson(EncodeDtmTransJson(tcc)));
  EXPECT_EQ(t.protocol, "grpc");
  EXPECT_EQ(t.rollback_reason, "no");
  EXPECT_THAT(EncodeDtmTransJson(tcc), ::testing::Not(HasSubstr("steps")));
}

TEST(DecodeDtmBranchJsonTest, ReadsTccAndXaRegistrations) {
  ASSERT_OK_AND_ASSIGN(
      BranchRegistration tcc,
      DecodeDtmBranchJson(
          R"({"gid":"g","trans_type":"tcc","branch_id":"01","op":"try",)"
          R"("data":"{\"amount\":30}","confirm":"http://b/Confirm","cancel":"http://b/Cancel"})"));
  EXPECT_EQ(tcc.gid, "g");
  EXPECT_EQ(tcc.trans_type, TransType::kTcc);
  EXPECT_EQ(tcc.branch_id, "01");
  EXPECT_EQ(tcc.payload, R"({"amount":30})");
  EXPECT_EQ(tcc.confirm_url, "http://b/Confirm");
  EXPECT_EQ(tcc.cancel_url, "http://b/Cancel");
  // dtm's SDKs send no protocol: dtm's HTTP API means "http".
  EXPECT_EQ(tcc.protocol, "http");

  ASSERT_OK_AND_ASSIGN(
      BranchRegistration xa,
      DecodeDtmBranchJson(
          R"({"gid":"g","trans_type":"xa","url":"http://b/Xa","branch_id":"01"})"));
  EXPECT_EQ(xa.trans_type, TransType::kXa);
  EXPECT_EQ(xa.confirm_url, "http://b/Xa");
  EXPECT_EQ(xa.cancel_url, "http://b/Xa");
  EXPECT_EQ(xa.payload, "");

  ASSERT_OK_AND_ASSIGN(BranchRegistration back,
                       DecodeDtmBranchJson(EncodeDtmBranchJson(tcc)));
  EXPECT_EQ(back.payload, tcc.payload);
  EXPECT_EQ(back.confirm_url, tcc.confirm_url);
  EXPECT_EQ(back.cancel_url, tcc.cancel_url);
  EXPECT_EQ(back.branch_id, "01");
  EXPECT_EQ(back.protocol, "http");
  tcc.protocol = "grpc";
  ASSERT_OK_AND_ASSIGN(BranchRegistration grpc,
                       DecodeDtmBranchJson(EncodeDtmBranchJson(tcc)));
  EXPECT_EQ(grpc.protocol, "grpc");
}

TEST(DecodeDtmBranchJsonTest, RefusesWhatIsNotAFlatMapOfStrings) {
  const Bad cases[] = {
      {"nope", StatusCode::kInvalidArgument,
       "registerBranch: the body is not valid JSON"},
      {"[]", StatusCode::kInvalidArgument, "must be a JSON object"},
      {R"({"gid":"g","trans_type":"tcc","branch_id":1})",
       StatusCode::kInvalidArgument, "branch_id must be a string"},
      {R"({"gid":"g","trans_type":"tcc","branch_id":"01","data":{"amount":1}})",
       StatusCode::kInvalidArgument, "data must be a string"},
      {R"({"gid":"g","trans_type":"tcc","branch_id":"01","extra":true})",
       StatusCode::kInvalidArgument, "extra must be a string"},
      {R"({"trans_type":"tcc","branch_id":"01"})", StatusCode::kInvalidArgument,
       "gid is missing"},
      {R"({"gid":"g","branch_id":"01"})", StatusCode::kInvalidArgument,
       "trans_type is missing"},
      {R"({"gid":"g","trans_type":"tcx","branch_id":"01"})",
       StatusCode::kInvalidArgument, "unknown trans_type 'tcx'"},
      {R"({"gid":"g","trans_type":"tcc"})", StatusCode::kInvalidArgument,
       "branch_id is missing"},
  };
  for (const Bad& c : cases) {
    EXPECT_THAT(DecodeDtmBranchJson(c.body), StatusIs(c.code, c.message))
        << c.body;
  }
}

TEST(DtmHttpAnswerTest, MapsCodesAsDtmAndSaysWhatHappenedForItsFiveHundreds) {
  struct Case {
    Status status;
    int http;
    const char* body;
  };
  const Case cases[] = {
      {Status::Ok(), 200, R"({"dtm_result":"SUCCESS"})"},
      {AbortedError("cannot submit"), 409,
       R"({"dtm_result":"FAILURE","message":"cannot submit"})"},
      {FailedPreconditionError("still submitted"), 425,
       R"({"dtm_result":"ONGOING","message":"still submitted"})"},
      {InvalidArgumentError("gid is missing"), 400,
       R"({"message":"gid is missing"})"},
      {AlreadyExistsError("gid g exists with 2 steps"), 422,
       R"({"message":"gid g exists with 2 steps"})"},
      {NotFoundError("no gid"), 404, R"({"message":"no gid"})"},
      {PermissionDeniedError("unix: refused"), 403,
       R"({"message":"unix: refused"})"},
      {ResourceExhaustedError("payload is big"), 413,
       R"({"message":"payload is big"})"},
      {UnimplementedError("xa"), 501, R"({"message":"xa"})"},
      {UnavailableError("stopping"), 503, R"({"message":"stopping"})"},
      {DeadlineExceededError("slow"), 504, R"({"message":"slow"})"},
      {InternalError("disk"), 500, R"({"message":"disk"})"},
      {DataLossError("corrupt"), 500, R"({"message":"corrupt"})"},
  };
  for (const Case& c : cases) {
    HttpResponse r = DtmHttpAnswer(c.status);
    EXPECT_EQ(r.status, c.http) << c.status.ToString();
    EXPECT_EQ(r.body, c.body);
    EXPECT_EQ(r.content_type, "application/json");
  }
}

TEST(DtmStatusFromHttpTest, ReadsAnswersAsDtmcliDoes) {
  EXPECT_OK(DtmStatusFromHttp(200, R"({"dtm_result":"SUCCESS"})"));
  EXPECT_OK(DtmStatusFromHttp(200, R"({"gid":"g","dtm_result":"SUCCESS"})"));
  // dtm before v1.10: FAILURE with a 200.
  EXPECT_THAT(
      DtmStatusFromHttp(200, R"({"dtm_result":"FAILURE","message":"old"})"),
      StatusIs(StatusCode::kAborted, "old"));
  // The word elsewhere (a gid) is no failure.
  EXPECT_OK(
      DtmStatusFromHttp(200, R"({"gid":"FAILURE-1","dtm_result":"SUCCESS"})"));
  EXPECT_THAT(DtmStatusFromHttp(
                  409, R"({"dtm_result":"FAILURE","message":"cannot submit"})"),
              StatusIs(StatusCode::kAborted, "cannot submit"));
  EXPECT_THAT(
      DtmStatusFromHttp(425, R"({"dtm_result":"ONGOING","message":"m"})"),
      StatusIs(StatusCode::kFailedPrecondition, "m"));
  EXPECT_THAT(DtmStatusFromHttp(400, R"({"message":"gid is missing"})"),
              StatusIs(StatusCode::kInvalidArgument, "gid is missing"));
  EXPECT_THAT(DtmStatusFromHttp(422, R"({"message":"gid g exists"})"),
              StatusIs(StatusCode::kAlreadyExists, "gid g exists"));
  EXPECT_THAT(DtmStatusFromHttp(404, R"({"error":"http: no route"})"),
              StatusIs(StatusCode::kNotFound, "http: no route"));
  EXPECT_THAT(DtmStatusFromHttp(413, "too big"),
              StatusIs(StatusCode::kResourceExhausted, "too big"));
  EXPECT_THAT(DtmStatusFromHttp(501, R"({"message":"x"})"),
              StatusIs(StatusCode::kUnimplemented));
  EXPECT_THAT(DtmStatusFromHttp(503, ""),
              StatusIs(StatusCode::kUnavailable, "HTTP 503"));
  EXPECT_THAT(DtmStatusFromHttp(504, ""),
              StatusIs(StatusCode::kDeadlineExceeded));
  // dtm's 500 for "no TransGlobal with gid" and storage errors.
  EXPECT_THAT(DtmStatusFromHttp(500, R"({"message":"no TransGlobal"})"),
              StatusIs(StatusCode::kInternal, "no TransGlobal"));
  EXPECT_THAT(DtmStatusFromHttp(418, "teapot"),
              StatusIs(StatusCode::kUnknown, "teapot"));
  const std::string huge(5000, 'x');
  Status cut = DtmStatusFromHttp(502, huge);
  EXPECT_LT(cut.message().size(), 1100u);
  EXPECT_THAT(cut.message(), HasSubstr("(truncated)"));
  // Each of DtmHttpAnswer's codes reads back as itself.
  for (const Status& s :
       {AbortedError("a"), FailedPreconditionError("b"),
        InvalidArgumentError("c"), NotFoundError("d"),
        PermissionDeniedError("d2"), ResourceExhaustedError("e"),
        UnimplementedError("f"), UnavailableError("g"),
        DeadlineExceededError("h"), InternalError("i")}) {
    HttpResponse r = DtmHttpAnswer(s);
    Status back = DtmStatusFromHttp(r.status, r.body);
    EXPECT_EQ(back.code(), s.code()) << s.ToString();
    EXPECT_EQ(back.message(), s.message());
  }
}

}  // namespace
}  // namespace dtx
