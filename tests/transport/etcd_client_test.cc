// EtcdClient against a real etcd (Debian's etcd-server) on loopback.

#include "dtx/transport/etcd_client.h"

#include "etcd_server.h"
#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::seconds;

class EtcdClientTest : public EtcdTest {
 protected:
  void SetUp() override {
    EtcdTest::SetUp();
    if (IsSkipped() || HasFailure()) return;
    client_ = NewClient({etcd_->endpoint()});
  }
  std::unique_ptr<EtcdClient> NewClient(std::vector<std::string> endpoints) {
    EtcdClientOptions o;
    o.endpoints = std::move(endpoints);
    o.timeout = std::chrono::milliseconds(2000);
    o.max_reconnect_backoff = std::chrono::milliseconds(200);
    auto c = EtcdClient::Create(o);
    EXPECT_OK(c);
    return c.ok() ? std::move(c).value() : nullptr;
  }
  std::unique_ptr<EtcdClient> client_;
};

TEST(EtcdClientUnitTest, PrefixEndFollowsEtcd) {
  EXPECT_EQ(EtcdClient::PrefixEnd("/microservices/busi"),
            "/microservices/busj");
  EXPECT_EQ(EtcdClient::PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(EtcdClient::PrefixEnd(std::string("\xff\xff", 2)),
            std::string(1, '\0'));
}

TEST(EtcdClientUnitTest, BadOptionsAreRefused) {
  EXPECT_THAT(EtcdClient::Create({}), StatusIs(StatusCode::kInvalidArgument));
  EtcdClientOptions o;
  o.endpoints = {"http://127.0.0.1:2379/"};
  EXPECT_OK(EtcdClient::Create(o));
  o.endpoints = {"127.0.0.1:2379/x"};
  EXPECT_THAT(EtcdClient::Create(o), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(EtcdClientTest, PutGetPrefixDelete) {
  ASSERT_OK(client_->Put("/microservices/trans/a", "1"));
  ASSERT_OK(client_->Put("/microservices/trans/b", "2"));
  ASSERT_OK(client_->Put("/microservices/trans2/c", "3"));
  auto one = client_->Get("/microservices/trans/a");
  ASSERT_OK(one);
  ASSERT_EQ(one->kvs.size(), 1u);
  EXPECT_EQ(one->kvs[0].value, "1");
  EXPECT_GT(one->revision, 0);
  auto prefix = client_->GetPrefix("/microservices/trans/");
  ASSERT_OK(prefix);
  ASSERT_EQ(prefix->kvs.size(), 2u);
  EXPECT_EQ(prefix->kvs[1].key, "/microservices/trans/b");
  // Without the slash the prefix also matches trans2, as Kratos's does.
  EXPECT_EQ(client_->GetPrefix("/microservices/trans")->kvs.size(), 3u);
  EXPECT_EQ(*client_->Delete("/microservices/trans/a"), 1);
  EXPECT_EQ(*client_->Delete("/microservices/trans/a"), 0);
  EXPECT_TRUE(client_->Get("/microservices/trans/a")->kvs.empty());
}

TEST_F(EtcdClientTest, LeasesKeepKeysAliveUntilRevoked) {
  auto lease = client_->GrantLease(seconds(15));
  ASSERT_OK(lease);
  EXPECT_EQ(lease->ttl, seconds(15));
  ASSERT_OK(client_->Put("/leased", "v", lease->id));
  EXPECT_EQ(client_->Get("/leased")->kvs.at(0).lease, lease->id);
  auto ttl = client_->KeepAliveOnce(lease->id);
  ASSERT_OK(ttl);
  EXPECT_EQ(*ttl, seconds(15));
  ASSERT_OK(client_->RevokeLease(lease->id));
  EXPECT_TRUE(client_->Get("/leased")->kvs.empty());
  // A dead lease: keep-alive says TTL 0, a put with it is refused.
  EXPECT_EQ(*client_->KeepAliveOnce(lease->id), seconds(0));
  EXPECT_THAT(client_->Put("/leased", "v", lease->id),
              StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(client_->RevokeLease(lease->id), StatusIs(StatusCode::kNotFound));
}

TEST_F(EtcdClientTest, WatchSeesPutsAndDeletesUnderThePrefix) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<EtcdEvent> seen;
  auto start = client_->GetPrefix("/w/");
  ASSERT_OK(start);
  auto watch = client_->WatchPrefix(
      "/w/", start->revision + 1,
      [&](const std::vector<EtcdEvent>& events, int64_t) {
        std::lock_guard<std::mutex> lock(mu);
        seen.insert(seen.end(), events.begin(), events.end());
        cv.notify_all();
      },
      [](const Status&) {});
  ASSERT_OK(watch);
  ASSERT_OK(client_->Put("/w/1", "one"));
  ASSERT_OK(client_->Put("/x/ignored", "x"));
  ASSERT_OK(client_->Delete("/w/1").status());
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, seconds(10), [&] { return seen.size() >= 2; }));
  EXPECT_EQ(seen[0].type, EtcdEvent::Type::kPut);
  EXPECT_EQ(seen[0].kv.key, "/w/1");
  EXPECT_EQ(seen[0].kv.value, "one");
  EXPECT_EQ(seen[1].type, EtcdEvent::Type::kDelete);
  EXPECT_EQ(seen[1].kv.key, "/w/1");
  lock.unlock();
  (*watch)->Cancel();
}

TEST_F(EtcdClientTest, AWatchReportsWhenEtcdGoesAway) {
  std::promise<Status> ended;
  auto watch = client_->WatchPrefix(
      "/w/", 0, [](const std::vector<EtcdEvent>&, int64_t) {},
      [&](const Status& s) { ended.set_value(s); });
  ASSERT_OK(watch);
  ASSERT_OK(client_->Put("/w/ping", "x"));  // the stream is up
  etcd_->Kill();
  auto future = ended.get_future();
  ASSERT_EQ(future.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_FALSE(future.get().ok());
}

TEST_F(EtcdClientTest, ADeadEndpointIsSkipped) {
  auto client = NewClient({"127.0.0.1:1", etcd_->endpoint()});
  ASSERT_OK(client->Put("/multi", "v"));
  EXPECT_EQ(client->Get("/multi")->kvs.size(), 1u);
}

TEST_F(EtcdClientTest, NoEtcdIsUnavailableNotAHang) {
  etcd_->Kill();
  // Unavailable (refused at once), not DeadlineExceeded (a hang).
  EXPECT_THAT(client_->Get("/x"), StatusIs(StatusCode::kUnavailable));
  ASSERT_OK(etcd_->Restart());
  // Reconnects by itself, once gRPC's reconnect back-off (at most
  // max_reconnect_backoff) has passed; a call in that window fails fast.
  Status got = UnknownError("not tried");
  const auto until = std::chrono::steady_clock::now() + seconds(15);
  while (std::chrono::steady_clock::now() < until) {
    got = client_->Get("/x").status();
    if (got.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_OK(got);
}

}  // namespace
}  // namespace dtx::testing
