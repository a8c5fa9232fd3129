// What a coordinator refuses at admission, whoever the caller (issue 19,
// items 2 and 6): branch headers that the transport owns or that are too
// big, durations that would overflow, and branch targets outside
// Options::branch_targets. Each refusal writes nothing and calls nothing.

#include "coordinator_test_util.h"

#include <map>

namespace dtx::testing {
namespace {

class AdmissionTest : public CoordinatorTest {
 protected:
  TransRequest SagaTo(const std::string& gid, const std::string& action) {
    TransRequest req;
    req.gid = gid;
    req.trans_type = TransType::kSaga;
    req.steps.push_back({action, Url("/busi.Busi/TransOutRevert")});
    req.payloads.push_back("p");
    return req;
  }

  // Refused with `code` naming `needle`, nothing written, nothing called.
  void ExpectRefused(const Status& s, StatusCode code, const std::string& gid,
                     const std::string& needle) {
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_NE(s.message().find(needle), std::string::npos) << s;
    EXPECT_EQ(dtm_->Query(gid).status().code(), StatusCode::kNotFound);
    EXPECT_TRUE(busi_->Calls().empty());
  }
};

TEST_F(AdmissionTest, HeadersCollidingWithDtmsMetadataAreRefused) {
  for (const char* key : {"dtm-gid", "dtm-op", "dtm-branch_id",
                          "dtm-trans_type", "host", "connection", ":path"}) {
    TransRequest req = SagaTo("hdr", Url("/busi.Busi/TransOut"));
    req.options.branch_headers[key] = "other";
    ExpectRefused(dtm_->Submit(req), StatusCode::kInvalidArgument, "hdr",
                  std::string("'") + key + "' is not allowed");
  }
}

TEST_F(AdmissionTest, AThousandHeadersAreRefusedAtSubmit) {
  TransRequest req = SagaTo("hdr-many", Url("/busi.Busi/TransOut"));
  for (int i = 0; i < 1000; ++i) {
    req.options.branch_headers["x-h" + std::to_string(i)] =
        std::string(24, 'v');
  }
  ExpectRefused(dtm_->Submit(req), StatusCode::kInvalidArgument, "hdr-many",
                "over the limit of 8192");
}

TEST_F(AdmissionTest, HeadersWithinTheRulesReachTheBranch) {
  TransRequest req = SagaTo("hdr-ok", Url("/busi.Busi/TransOut"));
  req.options.branch_headers["authorization"] = "Bearer t";
  req.options.wait_result = true;
  ASSERT_OK(dtm_->Submit(req));
  ASSERT_EQ(busi_->Calls().size(), 1u);
  EXPECT_EQ(busi_->Calls()[0].Get("authorization"), "Bearer t");
  EXPECT_EQ(busi_->Calls()[0].Get("dtm-gid"), "hdr-ok");
}

TEST_F(AdmissionTest, AMsgDelayThatWouldOverflowIsRefused) {
  TransRequest req;
  req.gid = "msg-delay";
  req.trans_type = TransType::kMsg;
  req.steps.push_back({Url("/busi.Busi/TransIn"), ""});
  // 2^63 ns in seconds, rounded up: delivered at once before the check.
  req.custom_data = R"({"delay":9223372037})";
  ExpectRefused(dtm_->Submit(req), StatusCode::kInvalidArgument, "msg-delay",
                "over the limit of 31622400 s");
}

TEST_F(AdmissionTest, TimeoutsPastAYearAreRefused) {
  TransRequest req = SagaTo("timeout", Url("/busi.Busi/TransOut"));
  req.options.timeout_to_fail = std::chrono::seconds(INT64_MAX / 2);
  ExpectRefused(dtm_->Submit(req), StatusCode::kInvalidArgument, "timeout",
                "timeout_to_fail");
}

TEST_F(AdmissionTest, EmbeddedDefaultCallsAnyTarget) {
  // The host wrote its own URLs: no allow-list unless it asks for one.
  TransRequest req = SagaTo("any", "unix:///tmp/none.sock/busi.Busi/TransOut");
  EXPECT_OK(dtm_->Submit(req));
}

class BranchTargetsAdmissionTest : public AdmissionTest {
 protected:
  void SetUp() override {
    options_.branch_targets.enforce = true;
    AdmissionTest::SetUp();
  }
};

TEST_F(BranchTargetsAdmissionTest, AUnixSocketStepIsRefusedAtSubmit) {
  ExpectRefused(
      dtm_->Submit(SagaTo("ssrf", "unix:///run/local.sock/local.Svc/Do")),
      StatusCode::kPermissionDenied, "ssrf",
      "scheme unix (a socket on the coordinator's own host) is refused");
}

TEST_F(BranchTargetsAdmissionTest, MetadataAddressesAreRefused) {
  ExpectRefused(dtm_->Submit(SagaTo("meta", "169.254.169.254:80/m.Svc/Do")),
                StatusCode::kPermissionDenied, "meta",
                "host 169.254.169.254 is a link-local or cloud metadata");
}

TEST_F(BranchTargetsAdmissionTest, AMsgCheckBackIsCheckedAtPrepare) {
  TransRequest req;
  req.gid = "msg-check";
  req.trans_type = TransType::kMsg;
  req.steps.push_back({Url("/busi.Busi/TransIn"), ""});
  req.query_prepared = "unix:///run/local.sock/local.Svc/Check";
  ExpectRefused(dtm_->Prepare(req), StatusCode::kPermissionDenied, "msg-check",
                "query_prepared");
}

TEST_F(BranchTargetsAdmissionTest, RegisterBranchIsChecked) {
  TransRequest tcc;
  tcc.gid = "tcc";
  tcc.trans_type = TransType::kTcc;
  ASSERT_OK(dtm_->Prepare(tcc));
  BranchRegistration b;
  b.gid = "tcc";
  b.branch_id = "01";
  b.confirm_url = Url("/busi.Busi/TransInConfirm");
  b.cancel_url = "[fe80::1]:80/busi.Busi/TransInCancel";
  const Status s = dtm_->RegisterBranch(b);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("fe80::1"), std::string::npos) << s;
  auto found = dtm_->Query("tcc");
  ASSERT_OK(found);
  EXPECT_TRUE(found->branches.empty());
  b.cancel_url = Url("/busi.Busi/TransInCancel");
  EXPECT_OK(dtm_->RegisterBranch(b));
}

TEST_F(BranchTargetsAdmissionTest, AHostListKeepsOtherHostsOut) {
  dtm_->Shutdown();
  options_.branch_targets.hosts = {"127.0.0.1"};
  Open();
  ExpectRefused(
      dtm_->Submit(SagaTo("other", "10.9.9.9:9000/busi.Busi/TransOut")),
      StatusCode::kPermissionDenied, "other",
      "host 10.9.9.9 is not in BranchTargets.Hosts");
  TransRequest ok = SagaTo("listed", Url("/busi.Busi/TransOut"));
  ok.options.wait_result = true;
  EXPECT_OK(dtm_->Submit(ok));
}

}  // namespace
}  // namespace dtx::testing
