// TransInfoFromServerContext inside a real typed gRPC handler, fed by
// GrpcBranchClient.

#include "dtx/transport/trans_info.h"

#include "dtx/transport/grpc_branch_client.h"

#include "dtx_test.grpc.pb.h"
#include "status_matchers.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <mutex>

namespace dtx::testing {
namespace {

class RecordingBusi final : public dtx::test::Busi::Service {
 public:
  grpc::Status Echo(grpc::ServerContext* context, const dtx::test::Payload*,
                    dtx::test::Payload*) override {
    std::lock_guard<std::mutex> lock(mu);
    last = TransInfoFromServerContext(*context);
    if (!last->ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          last->status().message());
    }
    return grpc::Status::OK;
  }
  std::mutex mu;
  std::optional<Result<TransInfo>> last;
};

class TransInfoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port_, 0);
    auto c = GrpcBranchClient::Create({});
    ASSERT_OK(c);
    client_ = std::move(c).value();
  }
  void TearDown() override { server_->Shutdown(); }

  std::string Url() const {
    return "127.0.0.1:" + std::to_string(port_) + "/dtx.test.Busi/Echo";
  }

  int port_ = 0;
  RecordingBusi service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<GrpcBranchClient> client_;
};

TEST_F(TransInfoTest, ReadsWhatTheClientSent) {
  BranchRequest r;
  r.url = Url();
  r.info = {"gid-77", TransType::kTcc, "0102", BranchOp::kCancel, "dtm:36790"};
  ASSERT_EQ(CallAndWait(*client_, r).outcome, BranchOutcome::kSuccess);
  std::lock_guard<std::mutex> lock(service_.mu);
  ASSERT_TRUE(service_.last.has_value());
  ASSERT_OK(*service_.last);
  const TransInfo& info = service_.last->value();
  EXPECT_EQ(info.gid, "gid-77");
  EXPECT_EQ(info.trans_type, TransType::kTcc);
  EXPECT_EQ(info.branch_id, "0102");
  EXPECT_EQ(info.op, BranchOp::kCancel);
  EXPECT_EQ(info.dtm, "dtm:36790");
}

TEST_F(TransInfoTest, MissingKeysAreClearErrors) {
  // A plain gRPC call without dtm's metadata.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                     grpc::InsecureChannelCredentials());
  auto stub = dtx::test::Busi::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("dtm-gid", "g");
  dtx::test::Payload req;
  dtx::test::Payload reply;
  grpc::Status s = stub->Echo(&ctx, req, &reply);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              ::testing::HasSubstr("missing gRPC metadata dtm-trans_type"));

  grpc::ClientContext ctx2;
  ctx2.AddMetadata("dtm-gid", "g");
  ctx2.AddMetadata("dtm-trans_type", "saga");
  ctx2.AddMetadata("dtm-branch_id", "01");
  ctx2.AddMetadata("dtm-op", "launch");
  s = stub->Echo(&ctx2, req, &reply);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("dtm-op"));

  grpc::ClientContext ctx3;
  ctx3.AddMetadata("dtm-gid", "");
  ctx3.AddMetadata("dtm-trans_type", "saga");
  ctx3.AddMetadata("dtm-branch_id", "01");
  ctx3.AddMetadata("dtm-op", "action");
  s = stub->Echo(&ctx3, req, &reply);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("dtm-gid is empty"));
}

}  // namespace
}  // namespace dtx::testing
