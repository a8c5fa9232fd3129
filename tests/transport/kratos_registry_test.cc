// KratosRegistrar and EtcdServiceResolver against a real etcd on loopback.

#include "dtx/transport/kratos_registry.h"

#include "etcd_server.h"
#include "status_matchers.h"
#include "subprocess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;

class KratosRegistryTest : public EtcdTest {
 protected:
  void SetUp() override {
    EtcdTest::SetUp();
    if (IsSkipped() || HasFailure()) return;
    EtcdClientOptions o;
    o.endpoints = {etcd_->endpoint()};
    auto c = EtcdClient::Create(o);
    ASSERT_OK(c);
    etcd_client_ = std::shared_ptr<EtcdClient>(std::move(c).value());
  }
  static ServiceInstance Instance(std::string id, std::string address,
                                  std::string name = "trans") {
    ServiceInstance i;
    i.id = std::move(id);
    i.name = std::move(name);
    i.endpoints = {"grpc://" + address};
    return i;
  }
  // Waits (bounded) until the resolver's answer for `service` is `want`.
  void ExpectEventually(EtcdServiceResolver& r, const std::string& service,
                        std::vector<std::string> want) {
    std::vector<std::string> got;
    for (int i = 0; i < 100; ++i) {
      auto set = r.Resolve(service);
      got = set.ok() ? **set : std::vector<std::string>{};
      if (got == want) return;
      std::this_thread::sleep_for(milliseconds(50));
    }
    EXPECT_EQ(got, want);
  }
  std::shared_ptr<EtcdClient> etcd_client_;
};

TEST_F(KratosRegistryTest, RegistrationIsKratossKeyAndJson) {
  auto reg = KratosRegistrar::Register(etcd_client_,
                                       Instance("id-1", "127.0.0.1:9000"), {});
  ASSERT_OK(reg);
  EXPECT_EQ((*reg)->key(), "/microservices/trans/id-1");
  auto got = etcd_client_->Get("/microservices/trans/id-1");
  ASSERT_OK(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value,
            R"({"id":"id-1","name":"trans","version":"","metadata":null,)"
            R"("endpoints":["grpc://127.0.0.1:9000"]})");
  EXPECT_NE(got->kvs[0].lease, 0);
  // etcdctl, the operator's tool, sees the same.
  auto ctl =
      Subprocess::Start({"/usr/bin/etcdctl", "--endpoints=" + etcd_->endpoint(),
                         "get", "--prefix", "/microservices/"});
  ASSERT_OK(ctl);
  EXPECT_EQ(ctl->ReadLine(), "/microservices/trans/id-1");
  EXPECT_EQ(ctl->ReadLine(), got->kvs[0].value);
  ctl->Wait();
  reg->reset();  // deregisters
  EXPECT_TRUE(etcd_client_->Get("/microservices/trans/id-1")->kvs.empty());
}

TEST_F(KratosRegistryTest, ResolverFollowsInstancesJoiningAndLeaving) {
  EtcdServiceResolver resolver(etcd_client_, {});
  EXPECT_THAT(resolver.Resolve("trans"), StatusIs(StatusCode::kUnavailable));
  auto a = KratosRegistrar::Register(etcd_client_,
                                     Instance("a", "127.0.0.1:9001"), {});
  ASSERT_OK(a);
  ExpectEventually(resolver, "trans", {"127.0.0.1:9001"});
  auto b = KratosRegistrar::Register(etcd_client_,
                                     Instance("b", "127.0.0.1:9002"), {});
  ASSERT_OK(b);
  ExpectEventually(resolver, "trans", {"127.0.0.1:9001", "127.0.0.1:9002"});
  // Another service sharing the prefix is not mixed in.
  auto other = KratosRegistrar::Register(
      etcd_client_, Instance("c", "127.0.0.1:9003", "trans2"), {});
  ASSERT_OK(other);
  a->reset();
  ExpectEventually(resolver, "trans", {"127.0.0.1:9002"});
  // When the last one leaves, the last good set is kept, as Kratos does.
  b->reset();
  std::this_thread::sleep_for(milliseconds(300));
  auto kept = resolver.Resolve("trans");
  ASSERT_OK(kept);
  EXPECT_THAT(**kept, ElementsAre("127.0.0.1:9002"));
  ExpectEventually(resolver, "trans2", {"127.0.0.1:9003"});
}

TEST_F(KratosRegistryTest, MalformedValuesAreSkipped) {
  ASSERT_OK(etcd_client_->Put("/microservices/trans/bad-json", "{not json"));
  ASSERT_OK(etcd_client_->Put("/microservices/trans/no-endpoints",
                              R"({"id":"x","name":"trans","endpoints":null})"));
  ASSERT_OK(etcd_client_->Put(
      "/microservices/trans/http-only",
      R"({"id":"y","name":"trans","endpoints":["http://127.0.0.1:8000"]})"));
  ASSERT_OK(etcd_client_->Put(
      "/microservices/trans/go-style",
      R"({"id":"z","name":"trans","version":"","metadata":null,)"
      R"("endpoints":["grpc://127.0.0.1:9009"]})"));
  EtcdServiceResolver resolver(etcd_client_, {});
  ExpectEventually(resolver, "trans", {"127.0.0.1:9009"});
}

TEST_F(KratosRegistryTest, ResolveHttpHandsOutTheHttpEndpoints) {
  ServiceInstance both = Instance("both", "127.0.0.1:9010");
  both.endpoints.push_back("http://127.0.0.1:8010");
  ServiceInstance http_only = Instance("web", "");
  http_only.endpoints = {"http://127.0.0.1:8011?isSecure=true"};
  ASSERT_OK(etcd_client_->Put("/microservices/trans/both",
                              EncodeServiceInstance(both)));
  ASSERT_OK(etcd_client_->Put("/microservices/trans/web",
                              EncodeServiceInstance(http_only)));
  EtcdServiceResolver resolver(etcd_client_, {});
  // The gRPC view is unchanged: the http-only instance is not in it.
  ExpectEventually(resolver, "trans", {"127.0.0.1:9010"});
  ASSERT_OK_AND_ASSIGN(AddressSet http, resolver.ResolveHttp("trans"));
  EXPECT_THAT(*http,
              ElementsAre("http://127.0.0.1:8010", "https://127.0.0.1:8011"));
  ASSERT_OK(etcd_client_->Put(
      "/microservices/grpc-only/a",
      EncodeServiceInstance(Instance("a", "127.0.0.1:9012", "grpc-only"))));
  EXPECT_THAT(resolver.ResolveHttp("grpc-only").status(),
              StatusIs(StatusCode::kUnavailable,
                       "'grpc-only' has no instance with an http:// endpoint"));
}

TEST_F(KratosRegistryTest, AnInstanceWhoseLeaseExpiresDisappears) {
  EtcdServiceResolver resolver(etcd_client_, {});
  auto lease = etcd_client_->GrantLease(seconds(2));  // etcd's minimum
  ASSERT_OK(lease);
  ASSERT_OK(etcd_client_->Put(
      "/microservices/trans/short",
      EncodeServiceInstance(Instance("short", "127.0.0.1:9100")), lease->id));
  auto stays = KratosRegistrar::Register(
      etcd_client_, Instance("stays", "127.0.0.1:9101"), {});
  ASSERT_OK(stays);
  ExpectEventually(resolver, "trans", {"127.0.0.1:9100", "127.0.0.1:9101"});
  // No keep-alive for "short" (its process died): gone within a few seconds.
  std::vector<std::string> got;
  for (int i = 0; i < 100; ++i) {
    got = **resolver.Resolve("trans");
    if (got.size() == 1) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_THAT(got, ElementsAre("127.0.0.1:9101"));
}

TEST_F(KratosRegistryTest, RegistrationSurvivesAnEtcdRestart) {
  KratosRegistrar::Options o;
  o.ttl = seconds(3);
  auto reg = KratosRegistrar::Register(etcd_client_,
                                       Instance("r", "127.0.0.1:9200"), o);
  ASSERT_OK(reg);
  ASSERT_OK(etcd_->Restart());
  // The data survived the restart; the keep-alive goes on (or re-registers).
  for (int i = 0; i < 60; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  auto got = etcd_client_->Get("/microservices/trans/r");
  ASSERT_OK(got);
  EXPECT_EQ(got->kvs.size(), 1u);
}

TEST_F(KratosRegistryTest, BadInstancesAreRefused) {
  ServiceInstance i = Instance("", "127.0.0.1:1");
  EXPECT_THAT(KratosRegistrar::Register(etcd_client_, i, {}),
              StatusIs(StatusCode::kInvalidArgument));
  i = Instance("id", "127.0.0.1:1", "a/b");
  EXPECT_THAT(KratosRegistrar::Register(etcd_client_, i, {}),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace dtx::testing
