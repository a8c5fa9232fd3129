#include "prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace dtx::internal {
namespace {

TEST(PrometheusTextTest, MetricAndLabelNames) {
  EXPECT_TRUE(IsMetricName("dtm_server_process_total"));
  EXPECT_TRUE(IsMetricName("ns:rule:rate5m"));
  EXPECT_TRUE(IsMetricName("_x"));
  EXPECT_FALSE(IsMetricName(""));
  EXPECT_FALSE(IsMetricName("5xx"));
  EXPECT_FALSE(IsMetricName("a-b"));
  EXPECT_FALSE(IsMetricName("a.b"));
  EXPECT_TRUE(IsLabelName("branchtype"));
  EXPECT_TRUE(IsLabelName("_x9"));
  EXPECT_FALSE(IsLabelName(""));
  EXPECT_FALSE(IsLabelName("9x"));
  EXPECT_FALSE(IsLabelName("a:b"));
}

TEST(PrometheusTextTest, Utf8) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"));
  EXPECT_TRUE(IsUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_FALSE(IsUtf8("\xff"));
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsUtf8("\xe0\x80\xaf"));      // overlong '/'
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsUtf8("\xe2\x82"));          // truncated
  EXPECT_EQ(ToUtf8("ok \xc3\xa9"), "ok \xc3\xa9");
  EXPECT_EQ(ToUtf8("a\xff"
                   "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(ToUtf8("\xe2\x82x"), "\xef\xbf\xbd\xef\xbf\xbdx");
}

TEST(PrometheusTextTest, Escaping) {
  std::string help;
  AppendEscapedHelp("a\\b \"q\"\nc", &help);
  EXPECT_EQ(help, "a\\\\b \"q\"\\nc");
  std::string label;
  AppendEscapedLabelValue("a\\b \"q\"\nc\t", &label);
  EXPECT_EQ(label, "a\\\\b \\\"q\\\"\\nc\t");
}

TEST(PrometheusTextTest, ValuesAsPrometheusParsesThem) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(ValueText(std::nan("")), "NaN");
  EXPECT_EQ(ValueText(inf), "+Inf");
  EXPECT_EQ(ValueText(-inf), "-Inf");
  EXPECT_EQ(ValueText(0), "0");
  EXPECT_EQ(ValueText(-0.0), "0");
  EXPECT_EQ(ValueText(1e6), "1000000");  // not 1e+06
  EXPECT_EQ(ValueText(-42), "-42");
  EXPECT_EQ(ValueText(9007199254740991.0), "9007199254740991");
  EXPECT_EQ(ValueText(0.1), "0.1");
  EXPECT_EQ(ValueText(2.5), "2.5");
  EXPECT_EQ(ValueText(0.0005), "0.0005");
  EXPECT_EQ(ValueText(123456.789), "123456.789");
  EXPECT_EQ(ValueText(-0.5), "-0.5");
  EXPECT_EQ(ValueText(1e-7), "1e-07");
  EXPECT_EQ(ValueText(1e300), "1e+300");
  EXPECT_EQ(ValueText(9007199254740992.0), "9.007199254740992e+15");
  EXPECT_EQ(ValueText(std::numeric_limits<double>::denorm_min()), "5e-324");
  std::string count;
  AppendCount(18446744073709551615u, &count);
  EXPECT_EQ(count, "18446744073709551615");
}

}  // namespace
}  // namespace dtx::internal
