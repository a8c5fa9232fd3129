// GrpcDtmClient against a scripted gRPC server on 127.0.0.1 (BranchTestServer
// answers dtm's and dtx's admin methods as told): the callback forms return
// before the answer, many requests wait without a thread each, the server's
// codes come back with the method named, and destroying the client ends the
// requests still in flight.

#include "dtx/transport/grpc_dtm_client.h"

#include "dtx/admin.pb.h"
#include "dtx/clock.h"

#include "branch_test_server.h"
#include "dtm/dtmgimp.pb.h"
#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <vector>

namespace dtx::testing {
namespace {

class GrpcDtmClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = BranchTestServer::Start();
    GrpcDtmClientOptions options;
    options.address = server_->address();
    auto client = GrpcDtmClient::Create(options);
    ASSERT_OK(client);
    client_ = std::move(client).value();
  }

  static TransRequest SagaRequest(const std::string& gid) {
    TransRequest r;
    r.gid = gid;
    r.trans_type = TransType::kSaga;
    r.options.wait_result = true;
    r.steps = {{"127.0.0.1:1/busi.Busi/A", ""}};
    r.payloads = {""};
    return r;
  }

  std::unique_ptr<BranchTestServer> server_;
  std::unique_ptr<GrpcDtmClient> client_;
};

TEST_F(GrpcDtmClientTest, CallbackAndBlockingFormsGetTheServersAnswer) {
  dtmgimp::DtmGidReply reply;
  reply.set_gid("gid-from-server");
  server_->SetHandler("/dtmgimp.Dtm/NewGid", [&](const ReceivedCall&) {
    return TestReply::Ok(reply.SerializeAsString());
  });
  std::promise<Result<std::string>> async_gid;
  client_->NewGidAsync(
      [&](Result<std::string> gid) { async_gid.set_value(std::move(gid)); });
  ASSERT_OK_AND_ASSIGN(std::string gid, async_gid.get_future().get());
  EXPECT_EQ(gid, "gid-from-server");
  ASSERT_OK_AND_ASSIGN(std::string again, client_->NewGid());
  EXPECT_EQ(again, "gid-from-server");

  // The request went out as dtm's message.
  ASSERT_OK(client_->Submit(SagaRequest("g1")));
  std::vector<ReceivedCall> calls = server_->Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[2].method, "/dtmgimp.Dtm/Submit");
  dtmgimp::DtmRequest sent;
  ASSERT_TRUE(sent.ParseFromString(calls[2].payload));
  EXPECT_EQ(sent.gid(), "g1");
  EXPECT_EQ(sent.transtype(), "saga");
  EXPECT_TRUE(sent.transoptions().waitresult());
}

TEST_F(GrpcDtmClientTest, ServerCodesComeBackWithTheMethodNamed) {
  server_->SetHandler("/dtmgimp.Dtm/Submit", [](const ReceivedCall&) {
    return TestReply::Status(10, "saga failed");  // ABORTED
  });
  server_->SetHandler("/dtx.admin.v1.Admin/ForceStop", [](const ReceivedCall&) {
    return TestReply::Status(5, "no such gid");  // NOT_FOUND
  });
  EXPECT_THAT(client_->Submit(SagaRequest("g2")),
              StatusIs(StatusCode::kAborted, "Submit: saga failed"));
  std::promise<Status> stopped;
  client_->ForceStopAsync("ghost",
                          [&](Status s) { stopped.set_value(std::move(s)); });
  EXPECT_THAT(stopped.get_future().get(),
              StatusIs(StatusCode::kNotFound, "ForceStop: no such gid"));
  // NewGid answered with an empty message: no gid is an error, not "".
  EXPECT_THAT(client_->NewGid(), StatusIs(StatusCode::kInternal, "empty gid"));
}

TEST_F(GrpcDtmClientTest, AdminAnswersAreDecoded) {
  dtx::admin::v1::ListReply page;
  auto* t = page.add_transactions();
  t->set_gid("listed");
  t->set_trans_type("saga");
  t->set_status("succeed");
  page.set_next_cursor(42);
  server_->SetHandler("/dtx.admin.v1.Admin/List", [&](const ReceivedCall&) {
    return TestReply::Ok(page.SerializeAsString());
  });
  std::promise<Result<ListPage>> listed;
  client_->ListAsync(
      ListQuery{}, [&](Result<ListPage> p) { listed.set_value(std::move(p)); });
  ASSERT_OK_AND_ASSIGN(ListPage got, listed.get_future().get());
  ASSERT_EQ(got.transactions.size(), 1u);
  EXPECT_EQ(got.transactions[0].gid, "listed");
  EXPECT_EQ(got.transactions[0].status, TransStatus::kSucceed);
  EXPECT_EQ(got.next_cursor, 42);
  EXPECT_OK(client_->RetryNow("listed"));  // echo: an empty reply is OK

  // The filters went out as asked, the limit capped.
  ListQuery q;
  q.gid_prefix = "pay-";
  q.unfinished_only = true;
  q.limit = 1'000'000;
  ASSERT_OK(client_->List(q));
  dtx::admin::v1::ListRequest sent;
  std::vector<ReceivedCall> calls = server_->Calls();
  ASSERT_TRUE(sent.ParseFromString(calls.back().payload));
  EXPECT_EQ(sent.gid_prefix(), "pay-");
  EXPECT_TRUE(sent.unfinished_only());
  EXPECT_EQ(sent.limit(), 1000u);

  dtx::admin::v1::StatsReply stats;
  stats.set_submitted(3);
  stats.set_unfinished(3);
  stats.set_due(1);
  stats.set_oldest_unfinished_create_time_ms(5000);
  server_->SetHandler("/dtx.admin.v1.Admin/Stats", [&](const ReceivedCall&) {
    return TestReply::Ok(stats.SerializeAsString());
  });
  ASSERT_OK_AND_ASSIGN(TransStats s, client_->Stats());
  EXPECT_EQ(s.counts[TransStatus::kSubmitted], 3);
  EXPECT_EQ(s.unfinished.due, 1);
  EXPECT_EQ(s.unfinished.oldest_create_time, FromUnixMillis(5000));
}

TEST_F(GrpcDtmClientTest, RequestsWaitWithoutThreadsAndEndWhenTheClientGoes) {
  server_->SetHandler("/dtmgimp.Dtm/Submit", [](const ReceivedCall&) {
    TestReply r;
    r.hang = true;  // only the caller's cancellation ends it
    return r;
  });
  constexpr int kRequests = 200;
  std::atomic<int> done{0};
  std::atomic<int> unavailable{0};
  // From this one thread: each call returns before its answer.
  for (int i = 0; i < kRequests; ++i) {
    client_->SubmitAsync(SagaRequest("hang-" + std::to_string(i)),
                         [&](Status s) {
                           if (s.code() == StatusCode::kUnavailable) {
                             ++unavailable;
                           }
                           ++done;
                         });
  }
  EXPECT_EQ(done.load(), 0);
  // Destroying the client cancels them all and returns once every callback
  // has run.
  client_.reset();
  EXPECT_EQ(done.load(), kRequests);
  EXPECT_EQ(unavailable.load(), kRequests);
}

TEST(GrpcDtmClientNoServerTest, AnUnreachableServerIsUnavailable) {
  GrpcDtmClientOptions options;
  options.address = "127.0.0.1:1";  // nothing listens on port 1
  options.timeout = std::chrono::milliseconds(2000);
  ASSERT_OK_AND_ASSIGN(auto client, GrpcDtmClient::Create(options));
  EXPECT_THAT(client->NewGid(), StatusIs(StatusCode::kUnavailable, "NewGid"));
}

}  // namespace
}  // namespace dtx::testing
