// The Kratos registry's instance JSON and endpoint choice (no etcd needed).

#include "dtx/transport/kratos_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dtx {
namespace {

TEST(KratosJsonTest, EncodesAsGoDoes) {
  ServiceInstance i;
  i.id = "5f0c";
  i.name = "trans";
  i.endpoints = {"grpc://127.0.0.1:9000"};
  EXPECT_EQ(EncodeServiceInstance(i),
            R"({"id":"5f0c","name":"trans","version":"","metadata":null,)"
            R"("endpoints":["grpc://127.0.0.1:9000"]})");
  i.metadata = {{"weight", "10"}, {"a<b", "x&y>"}};
  i.version = "v1";
  EXPECT_EQ(
      EncodeServiceInstance(i),
      R"({"id":"5f0c","name":"trans","version":"v1","metadata":)"
      R"({"a\u003cb":"x\u0026y\u003e","weight":"10"},"endpoints":["grpc://127.0.0.1:9000"]})");
}

TEST(KratosJsonTest, DecodesGoStyleJson) {
  auto i = DecodeServiceInstance(
      R"({"id":"","name":"dtmservice","version":"","metadata":null,)"
      R"("endpoints":["grpc://localhost:36790?x=\u003c1\u003e"]})");
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->name, "dtmservice");
  EXPECT_TRUE(i->metadata.empty());
  ASSERT_EQ(i->endpoints.size(), 1u);
  EXPECT_EQ(i->endpoints[0], "grpc://localhost:36790?x=<1>");
  ServiceInstance round;
  round.id = "x";
  round.name = "n";
  round.metadata = {{"k", "v"}};
  round.endpoints = {"grpc://h:1"};
  auto back = DecodeServiceInstance(EncodeServiceInstance(round));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->metadata, round.metadata);
  EXPECT_EQ(back->endpoints, round.endpoints);
}

TEST(KratosJsonTest, MalformedValuesAreErrors) {
  for (const char* bad :
       {"", "not json", "[]", R"({"id":"1"})", R"({"name":5})",
        R"({"name":"n","endpoints":"grpc://h:1"})",
        R"({"name":"n","endpoints":[1]})", R"({"name":"n","metadata":[]})"}) {
    EXPECT_EQ(DecodeServiceInstance(bad).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(KratosJsonTest, PicksThePlainGrpcEndpointAsKratosDoes) {
  ServiceInstance i;
  i.name = "n";
  i.endpoints = {"http://10.0.0.5:8000", "grpcs://10.0.0.5:9443",
                 "grpc://10.0.0.5:9001?isSecure=true",
                 "grpc://10.0.0.5:9000?isSecure=false", "grpc://10.0.0.6:9000"};
  EXPECT_EQ(PickGrpcEndpoint(i), "10.0.0.5:9000");
  i.endpoints = {"http://10.0.0.5:8000", "https://10.0.0.5:8443"};
  EXPECT_EQ(PickGrpcEndpoint(i), std::nullopt);
  i.endpoints = {"grpc://localhost:36790"};
  EXPECT_EQ(PickGrpcEndpoint(i), "localhost:36790");
  i.endpoints = {"127.0.0.1:9000"};  // Go's url.Parse drops such an instance
  EXPECT_EQ(PickGrpcEndpoint(i), std::nullopt);
}

TEST(KratosJsonTest, AnInstanceWithOnlyTlsEndpointsIsCalledOverTls) {
  ServiceInstance i;
  i.name = "n";
  i.endpoints = {"http://10.0.0.5:8000", "grpcs://10.0.0.5:9443",
                 "grpc://10.0.0.5:9001?isSecure=true"};
  EXPECT_EQ(PickGrpcEndpoint(i), "grpcs://10.0.0.5:9443");
  // kratos <= v2.3.0 marks TLS with ?isSecure=true on a grpc:// endpoint.
  i.endpoints = {"grpc://10.0.0.5:9001?isSecure=1"};
  EXPECT_EQ(PickGrpcEndpoint(i), "grpcs://10.0.0.5:9001");
  // A plain endpoint still wins, wherever it is listed.
  i.endpoints = {"grpcs://10.0.0.5:9443", "grpc://10.0.0.5:9000"};
  EXPECT_EQ(PickGrpcEndpoint(i), "10.0.0.5:9000");
}

}  // namespace
}  // namespace dtx
