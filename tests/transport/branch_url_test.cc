#include "dtx/transport/branch_url.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dtx {
namespace {

struct SplitRow {
  const char* url;
  const char* server;
  const char* method;
};

// Every row of discovery.md §2.4, plus the forms dtx adds.
TEST(BranchUrlTest, SplitsLikeDtm) {
  const SplitRow rows[] = {
      {"discovery://localhost:2379/busi/api.trans.v1.Trans/TransIn",
       "discovery://localhost:2379/busi", "/api.trans.v1.Trans/TransIn"},
      {"discovery:///busi/api.trans.v1.Trans/TransIn", "discovery:///busi",
       "/api.trans.v1.Trans/TransIn"},
      {"localhost:9000/api.trans.v1.Trans/TransIn", "localhost:9000",
       "/api.trans.v1.Trans/TransIn"},
      {"dns:///busi.ns.svc.cluster.local:9000/api.trans.v1.Trans/TransIn",
       "dns:///busi.ns.svc.cluster.local:9000", "/api.trans.v1.Trans/TransIn"},
      {"direct:///10.0.0.1:9000,10.0.0.2:9000/pkg.Svc/M",
       "direct:///10.0.0.1:9000,10.0.0.2:9000", "/pkg.Svc/M"},
      {"etcd://127.0.0.1:2379/busi/pkg.Svc/M", "etcd://127.0.0.1:2379/busi",
       "/pkg.Svc/M"},
      {"ipv4:127.0.0.1:1,127.0.0.1:2/pkg.Svc/M", "ipv4:127.0.0.1:1,127.0.0.1:2",
       "/pkg.Svc/M"},
      {"ipv6:[::1]:9000/pkg.Svc/M", "ipv6:[::1]:9000", "/pkg.Svc/M"},
      {"unix:///run/busi.sock/pkg.Svc/M", "unix:///run/busi.sock",
       "/pkg.Svc/M"},
      {"passthrough:///busi:9000/pkg.Svc/M", "passthrough:///busi:9000",
       "/pkg.Svc/M"},
      {"127.0.0.1:9000/Greeter/SayHello", "127.0.0.1:9000",
       "/Greeter/SayHello"},
  };
  for (const SplitRow& r : rows) {
    auto got = SplitBranchUrl(r.url);
    ASSERT_TRUE(got.ok()) << r.url << ": " << got.status();
    EXPECT_EQ(got->server, r.server) << r.url;
    EXPECT_EQ(got->method, r.method) << r.url;
  }
}

TEST(BranchUrlTest, MalformedUrlsAreClearErrors) {
  const char* bad[] = {
      "",                              // empty
      "localhost:9000",                // no method
      "localhost:9000/",               // no method
      "localhost:9000/OnlyService",    // one segment
      "/pkg.Svc/M",                    // no server
      "localhost:9000/pkg.Svc/",       // empty method
      "localhost:9000//M",             // empty service
      "localhost:9000/pkg Svc/M",      // space
      " localhost:9000/pkg.Svc/M",     // leading space
      "localhost:9000/pkg.Svc/M\n",    // newline
      "localhost:9000/pkg.Svc/M?x=1",  // query
      "discovery://h/busi",            // dtm's k = 0 case: no method
  };
  for (const char* url : bad) {
    auto got = SplitBranchUrl(url);
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument)
        << "'" << url << "'";
    if (*url != '\0') {
      EXPECT_THAT(got.status().message(), ::testing::HasSubstr("branch url"));
    }
  }
}

struct TargetRow {
  const char* server;
  BranchTarget::Kind kind;
  const char* channel_target;
};

TEST(BranchUrlTest, ServersMapToChannelTargets) {
  const TargetRow rows[] = {
      {"localhost:9000", BranchTarget::Kind::kChannel, "localhost:9000"},
      {"127.0.0.1:9000", BranchTarget::Kind::kChannel, "127.0.0.1:9000"},
      {"[::1]:9000", BranchTarget::Kind::kChannel, "[::1]:9000"},
      {"dns:///busi.ns.svc.cluster.local:9000", BranchTarget::Kind::kChannel,
       "dns:///busi.ns.svc.cluster.local:9000"},
      {"dns:busi:9000", BranchTarget::Kind::kChannel, "dns:busi:9000"},
      {"ipv4:///127.0.0.1:1", BranchTarget::Kind::kChannel,
       "ipv4:///127.0.0.1:1"},
      {"ipv6:[::1]:9000", BranchTarget::Kind::kChannel, "ipv6:[::1]:9000"},
      {"unix:///run/busi.sock", BranchTarget::Kind::kChannel,
       "unix:///run/busi.sock"},
      {"unix:relative.sock", BranchTarget::Kind::kChannel,
       "unix:relative.sock"},
      {"passthrough:///busi:9000", BranchTarget::Kind::kChannel, "busi:9000"},
  };
  for (const char* driver : {"default", "dtm-driver-kratos"}) {
    for (const TargetRow& r : rows) {
      auto got = ParseBranchServer(r.server, driver);
      ASSERT_TRUE(got.ok()) << r.server << ": " << got.status();
      EXPECT_EQ(got->kind, r.kind) << r.server;
      EXPECT_EQ(got->channel_target, r.channel_target) << r.server;
    }
  }
}

TEST(BranchUrlTest, DirectListsBecomeAddressSets) {
  auto got = ParseBranchServer("direct:///10.0.0.1:9000,busi:9001", "default");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kind, BranchTarget::Kind::kAddresses);
  EXPECT_THAT(got->addresses,
              ::testing::ElementsAre("10.0.0.1:9000", "busi:9001"));
  // ipv4:/ipv6: lists too: one channel per address, none balancing.
  for (const char* list :
       {"ipv4:127.0.0.1:1,127.0.0.1:2", "ipv4:///127.0.0.1:1,127.0.0.1:2"}) {
    got = ParseBranchServer(list, "default");
    ASSERT_TRUE(got.ok()) << list << ": " << got.status();
    EXPECT_EQ(got->kind, BranchTarget::Kind::kAddresses) << list;
    EXPECT_THAT(got->addresses,
                ::testing::ElementsAre("127.0.0.1:1", "127.0.0.1:2"))
        << list;
  }
  got = ParseBranchServer("ipv6:[::1]:1,[::1]:2", "default");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(got->addresses, ::testing::ElementsAre("[::1]:1", "[::1]:2"));
}

TEST(BranchUrlTest, RegistrySchemesNeedTheKratosDriver) {
  for (const char* server :
       {"discovery://127.0.0.1:2379/trans", "discovery:///trans",
        "etcd://127.0.0.1:2379/trans"}) {
    auto got = ParseBranchServer(server, "dtm-driver-kratos");
    ASSERT_TRUE(got.ok()) << server << ": " << got.status();
    EXPECT_EQ(got->kind, BranchTarget::Kind::kService);
    EXPECT_EQ(got->service, "trans");
    auto plain = ParseBranchServer(server, "default");
    EXPECT_EQ(plain.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(plain.status().message(),
                ::testing::HasSubstr("dtm-driver-kratos"));
  }
}

TEST(BranchUrlTest, UnsupportedAndMalformedServersAreClearErrors) {
  const char* bad[] = {"kubernetes:///busi.ns:9000",
                       "k8s://ns/busi:9000",
                       "consul://127.0.0.1:8500/busi",
                       "http://localhost:8080",
                       "https://localhost:8443",
                       "localhost",  // no port
                       "localhost:0",
                       "localhost:70000",
                       "localhost:port",
                       "ipv4:localhost:9000",  // a name in an ipv4 list
                       "ipv4:127.0.0.1",       // no port
                       "ipv6:127.0.0.1:9000",
                       "direct:///",
                       "direct:///h1:1,h2",
                       "passthrough:///busi",
                       "dns:///busi",
                       "::1:9000",
                       "discovery://127.0.0.1:2379/",
                       "discovery://127.0.0.1:2379/a/b"};
  for (const char* server : bad) {
    auto got = ParseBranchServer(server, "dtm-driver-kratos");
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << server;
    EXPECT_THAT(got.status().message(), ::testing::HasSubstr(server));
  }
  auto k8s = ParseBranchServer("kubernetes:///busi.ns:9000", "default");
  EXPECT_THAT(k8s.status().message(),
              ::testing::HasSubstr("unsupported scheme 'kubernetes'"));
}

TEST(BranchUrlTest, UnknownDriverIsAnError) {
  auto got = ParseBranchServer("localhost:9000", "dtm-driver-gozero");
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(),
              ::testing::HasSubstr("dtm-driver-gozero"));
}

TEST(BranchUrlTest, AddressesBecomeChannelTargets) {
  EXPECT_EQ(*ChannelTargetForAddress("10.0.0.5:9000"), "ipv4:10.0.0.5:9000");
  EXPECT_EQ(*ChannelTargetForAddress("[fe80::1]:9000"), "ipv6:[fe80::1]:9000");
  EXPECT_EQ(*ChannelTargetForAddress("busi.local:9000"),
            "dns:///busi.local:9000");
  EXPECT_FALSE(ChannelTargetForAddress("busi.local").ok());
  EXPECT_FALSE(ChannelTargetForAddress("grpc://10.0.0.5:9000").ok());
}

}  // namespace
}  // namespace dtx
