// TLS settings without sockets: which rule a branch target gets
// (FindTlsRule), and etcd TLS in dtm's Kratos registry targets
// (?tls=true&caPath=...&certPath=...&certKeyPath=...).

#include "dtx/transport/tls_options.h"

#include "dtx/transport/kratos_registry.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dtx {
namespace {

using ::testing::HasSubstr;

std::vector<TlsClientRule> Rules(std::vector<std::string> targets) {
  std::vector<TlsClientRule> rules;
  for (std::string& t : targets) {
    TlsClientRule rule;
    rule.target = std::move(t);
    rule.tls.ca_file = "/ca-for-" + rule.target;
    rules.push_back(std::move(rule));
  }
  return rules;
}

// The CA of the rule found; "none" when none is.
std::string CaOf(const TlsClientRule* rule) {
  return rule == nullptr ? std::string("none") : rule->tls.ca_file;
}

TEST(FindTlsRuleTest, AnExactHostPortRuleWinsOverAHostRule) {
  const auto rules = Rules({"pay.internal", "pay.internal:9443", "other:1"});
  EXPECT_EQ(CaOf(FindTlsRule(rules, "pay.internal", "9443")),
            "/ca-for-pay.internal:9443");
  // Any other port of the host: the host rule, though it comes first.
  EXPECT_EQ(CaOf(FindTlsRule(rules, "pay.internal", "9000")),
            "/ca-for-pay.internal");
  EXPECT_EQ(CaOf(FindTlsRule(rules, "other", "1")), "/ca-for-other:1");
  EXPECT_EQ(FindTlsRule(rules, "other", "2"), nullptr);
  EXPECT_EQ(FindTlsRule(rules, "unknown", "9443"), nullptr);
  EXPECT_EQ(FindTlsRule({}, "pay.internal", "9443"), nullptr);
}

TEST(FindTlsRuleTest, TheFirstOfEqualRulesWins) {
  auto rules = Rules({"h:1", "h:1", "h", "h"});
  rules[1].tls.ca_file = "/second";
  rules[3].tls.ca_file = "/fourth";
  EXPECT_EQ(CaOf(FindTlsRule(rules, "h", "1")), "/ca-for-h:1");
  EXPECT_EQ(CaOf(FindTlsRule(rules, "h", "2")), "/ca-for-h");
}

TEST(FindTlsRuleTest, HostNamesCompareCaseInsensitivelyPortsExactly) {
  const auto rules = Rules({"Pay.Internal:9443"});
  EXPECT_NE(FindTlsRule(rules, "pay.INTERNAL", "9443"), nullptr);
  EXPECT_EQ(FindTlsRule(rules, "pay.internal", "09443"), nullptr);
  EXPECT_EQ(FindTlsRule(rules, "pay.internal2", "9443"), nullptr);
  EXPECT_EQ(FindTlsRule(rules, "pay.interna", "9443"), nullptr);
}

TEST(FindTlsRuleTest, IpLiteralsWithAndWithoutPorts) {
  const auto rules =
      Rules({"10.0.0.5:9443", "[::1]:9443", "[fe80::1]", "10.0.0.6"});
  EXPECT_NE(FindTlsRule(rules, "10.0.0.5", "9443"), nullptr);
  EXPECT_EQ(FindTlsRule(rules, "10.0.0.5", "9000"), nullptr);
  EXPECT_NE(FindTlsRule(rules, "[::1]", "9443"), nullptr);
  EXPECT_EQ(FindTlsRule(rules, "[::1]", "9000"), nullptr);
  // A bracketed IPv6 address without a port is a host rule.
  EXPECT_NE(FindTlsRule(rules, "[fe80::1]", "1"), nullptr);
  EXPECT_NE(FindTlsRule(rules, "10.0.0.6", "1234"), nullptr);
}

TEST(RegistryTargetTlsTest, TheKratosDriversQueryTurnsTlsOn) {
  ASSERT_OK_AND_ASSIGN(
      RegistryTarget t,
      ParseRegistryTarget("discovery://10.0.0.1:2379,10.0.0.2:2379/dtmservice"
                          "?tls=true&caPath=/etc/etcd/ca.pem"
                          "&certPath=/etc/dtx/client.pem"
                          "&certKeyPath=/etc/dtx/client%2Bkey.pem"));
  EXPECT_EQ(t.service, "dtmservice");
  EXPECT_THAT(t.etcd_endpoints,
              ::testing::ElementsAre("10.0.0.1:2379", "10.0.0.2:2379"));
  ASSERT_TRUE(t.tls.has_value());
  EXPECT_EQ(t.tls->ca_file, "/etc/etcd/ca.pem");
  EXPECT_EQ(t.tls->cert_file, "/etc/dtx/client.pem");
  EXPECT_EQ(t.tls->key_file, "/etc/dtx/client+key.pem");

  const EtcdClientOptions etcd = EtcdClientOptionsFor(t);
  EXPECT_EQ(etcd.endpoints, t.etcd_endpoints);
  ASSERT_TRUE(etcd.tls.has_value());
  EXPECT_EQ(etcd.tls->ca_file, "/etc/etcd/ca.pem");
}

TEST(RegistryTargetTlsTest, TlsWithoutFilesUsesTheDefaultRoots) {
  ASSERT_OK_AND_ASSIGN(RegistryTarget t,
                       ParseRegistryTarget("etcd://h:2379/trans?tls=1"));
  ASSERT_TRUE(t.tls.has_value());
  EXPECT_EQ(t.tls->ca_file, "");
  EXPECT_EQ(t.tls->cert_file, "");
  // tls=false, or no query: plaintext.
  ASSERT_OK_AND_ASSIGN(t, ParseRegistryTarget("etcd://h:2379/trans?tls=false"));
  EXPECT_FALSE(t.tls.has_value());
  ASSERT_OK_AND_ASSIGN(t, ParseRegistryTarget("discovery://h:2379/trans"));
  EXPECT_FALSE(t.tls.has_value());
  EXPECT_EQ(t.service, "trans");
  EXPECT_FALSE(EtcdClientOptionsFor(t).tls.has_value());
}

TEST(RegistryTargetTlsTest, LineBreaksAreDroppedAsTheDriverDoes) {
  ASSERT_OK_AND_ASSIGN(RegistryTarget t,
                       ParseRegistryTarget("discovery://h:2379/dtmservice\n"
                                           "?tls=true\r\n&caPath=/ca.pem"));
  EXPECT_EQ(t.service, "dtmservice");
  ASSERT_TRUE(t.tls.has_value());
  EXPECT_EQ(t.tls->ca_file, "/ca.pem");
}

TEST(RegistryTargetTlsTest, MistakesInTheQueryAreNamed) {
  struct Case {
    const char* target;
    const char* error;
  };
  for (const Case& c : {
           Case{"discovery://h:2379/s?tls=yes", "tls='yes' is not true"},
           Case{"discovery://h:2379/s?tls=true&capath=/ca.pem",
                "unknown parameter 'capath'"},
           Case{"discovery://h:2379/s?caPath=/ca.pem",
                "caPath, certPath and certKeyPath need tls=true"},
           Case{"discovery://h:2379/s?tls=true&certPath=/c.pem",
                "certPath and certKeyPath go together"},
           Case{"discovery://h:2379/s?tls=true&caPath=/ca%zz",
                "malformed %-escape"},
       }) {
    auto t = ParseRegistryTarget(c.target);
    ASSERT_FALSE(t.ok()) << c.target;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(t.status().message(), HasSubstr(c.error)) << c.target;
    EXPECT_THAT(t.status().message(), HasSubstr("registry target")) << c.target;
  }
}

}  // namespace
}  // namespace dtx
