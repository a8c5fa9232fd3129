#include "dtx/server_metrics.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

namespace dtx {
namespace {

using ::dtx::testing::StatusIs;
using ::testing::HasSubstr;

ServerMetrics::Info TestInfo() {
  ServerMetrics::Info info;
  info.version = "9.8.7";
  info.grpc_version = "1.51.1";
  return info;
}

TEST(ServerMetricsTest, InfoIsOneWithDtmsLabelsAndDtxsVersion) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(auto m, ServerMetrics::Register(registry, TestInfo()));
  EXPECT_THAT(registry.RenderText(),
              HasSubstr("\ndtm_server_info{gin_version=\"none\","
                        "grpc_version=\"1.51.1\",version=\"9.8.7\"} 1\n"));
}

TEST(ServerMetricsTest, AnApiHasItsSeriesFromTheStartAndCountsByStatus) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(auto m, ServerMetrics::Register(registry, TestInfo()));
  const ServerMetrics::Api* submit = m->ForApi("grpc", "submit");
  EXPECT_EQ(m->ForApi("grpc", "submit"), submit);
  EXPECT_NE(m->ForApi("http", "submit"), submit);
  std::string text = registry.RenderText();
  EXPECT_THAT(text, HasSubstr("\ndtm_server_process_total{type=\"grpc\","
                              "api=\"submit\",status=\"ok\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\ndtm_server_process_total{type=\"grpc\","
                              "api=\"submit\",status=\"fail\"} 0\n"));
  submit->Record(true, std::chrono::milliseconds(2));
  submit->Record(true, std::chrono::milliseconds(3));
  submit->Record(false, std::chrono::milliseconds(20));
  text = registry.RenderText();
  EXPECT_THAT(text, HasSubstr("\ndtm_server_process_total{type=\"grpc\","
                              "api=\"submit\",status=\"ok\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\ndtm_server_process_total{type=\"grpc\","
                              "api=\"submit\",status=\"fail\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\ndtm_server_response_duration_count{type="
                              "\"grpc\",api=\"submit\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("\ndtm_server_response_duration_bucket{type="
                              "\"grpc\",api=\"submit\",le=\"0.005\"} 2\n"));
}

TEST(ServerMetricsTest, RegisteringTwiceInOneRegistryIsAnError) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(auto m, ServerMetrics::Register(registry, TestInfo()));
  EXPECT_THAT(ServerMetrics::Register(registry, TestInfo()).status(),
              StatusIs(StatusCode::kAlreadyExists));
}

}  // namespace
}  // namespace dtx
