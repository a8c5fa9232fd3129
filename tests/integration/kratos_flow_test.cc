// The Kratos flow with a real etcd: a branch service process registered in
// etcd, the coordinator resolving discovery:// URLs through it, the service
// killed, etcd restarted in the middle of a stream of transactions.

#include "dtx/transport/kratos_registry.h"

#include "coordinator_test_util.h"
#include "etcd_server.h"
#include "subprocess.h"

#include <gmock/gmock.h>

#include <signal.h>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class KratosFlowTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    auto etcd = EtcdServer::Start();
    if (!etcd.ok()) {
      if (std::getenv("CI") != nullptr) FAIL() << etcd.status();
      GTEST_SKIP() << etcd.status();
    }
    etcd_ = std::move(etcd).value();
    EtcdClientOptions o;
    o.endpoints = {etcd_->endpoint()};
    o.max_reconnect_backoff = milliseconds(500);
    auto client = EtcdClient::Create(o);
    ASSERT_OK(client);
    etcd_client_ = std::shared_ptr<EtcdClient>(std::move(client).value());
    resolver_ = std::make_shared<EtcdServiceResolver>(
        etcd_client_, EtcdServiceResolver::Options{});
    wrap_client_ =
        [this](std::unique_ptr<BranchClient>) -> std::unique_ptr<BranchClient> {
      GrpcBranchClientOptions kratos;
      kratos.driver = "dtm-driver-kratos";
      kratos.resolver = resolver_;
      return std::move(GrpcBranchClient::Create(kratos)).value();
    };
    Open();
  }

  // Starts examples/kratos/kratos-trans registered in etcd.
  Subprocess StartService(int ttl_seconds) {
    auto p = Subprocess::Start({DTX_TRANS_SERVICE, "--port", "0", "--etcd",
                                etcd_->endpoint(), "--ttl",
                                std::to_string(ttl_seconds)});
    EXPECT_OK(p);
    Subprocess service = std::move(p).value();
    for (int i = 0; i < 2; ++i) {
      auto line = service.ReadLine(seconds(20));
      EXPECT_TRUE(line.has_value());
      if (line && line->rfind("registered in etcd as ", 0) == 0) {
        key_ = line->substr(std::string("registered in etcd as ").size());
      }
    }
    return service;
  }

  std::string Busi() const {
    return "discovery://" + etcd_->endpoint() + "/trans/api.trans.v1.Trans";
  }

  std::unique_ptr<EtcdServer> etcd_;
  std::shared_ptr<EtcdClient> etcd_client_;
  std::shared_ptr<EtcdServiceResolver> resolver_;
  std::string key_;
};

TEST_F(KratosFlowTest, ALeaseExpiresAfterTheServiceIsKilled) {
  Subprocess service = StartService(2);
  ASSERT_FALSE(key_.empty());
  ASSERT_EQ(etcd_client_->Get(key_)->kvs.size(), 1u);
  ASSERT_OK(Saga(*dtm_, "kf-1")
                .Add(Busi() + "/TransOut", Busi() + "/TransOutRevert", "")
                .WaitResult(true)
                .Submit());
  service.Kill(SIGKILL);  // no deregistration: only the lease can remove it
  service.Wait();
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = etcd_client_->Get(key_)->kvs.empty();
    if (!gone) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(gone) << key_ << " outlived its lease";
}

TEST_F(KratosFlowTest, EtcdRestartedInTheMiddleOfAStreamLosesNothing) {
  Subprocess service = StartService(3);
  constexpr int kSagas = 30;
  for (int i = 0; i < kSagas; ++i) {
    if (i == kSagas / 2) {
      ASSERT_OK(etcd_->Restart());
    }
    ASSERT_OK(Saga(*dtm_, "stream-" + std::to_string(i))
                  .Add(Busi() + "/TransOut", Busi() + "/TransOutRevert", "")
                  .Add(Busi() + "/TransIn", Busi() + "/TransInRevert", "")
                  .Submit());
  }
  dtm_->WaitIdle();
  Settle(seconds(30), 100);
  for (const auto& t : AllTransactions()) {
    EXPECT_EQ(t.status, TransStatus::kSucceed) << t.gid;
  }
  EXPECT_EQ(AllTransactions().size(), static_cast<std::size_t>(kSagas));
}

}  // namespace
}  // namespace dtx::testing
