#include "dtx/transport/http_router.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dtx {
namespace {

using dtx::testing::StatusIs;
using ::testing::HasSubstr;

// Answers with the handler's name.
HttpHandler Named(std::string name) {
  return [name](HttpRequest, HttpResponder r) {
    r.Respond(HttpResponse::Json(200, name));
  };
}

// Runs `handler` on a request and returns what it answered at once.
HttpResponse Call(const HttpHandler& handler, std::string method,
                  std::string path) {
  HttpResponse answer;
  answer.status = 0;
  HttpRequest request;
  request.method = std::move(method);
  request.path = std::move(path);
  handler(std::move(request),
          HttpResponder([&](HttpResponse a) { answer = std::move(a); }));
  return answer;
}

std::optional<std::string> HeaderOf(const HttpResponse& r,
                                    const std::string& name) {
  for (const auto& [key, value] : r.headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

TEST(HttpRouterTest, DispatchesOnMethodAndExactPath) {
  HttpRouter router;
  router.Handle("GET", "/api/dtmsvr/query", Named("query"))
      .Handle("POST", "/api/dtmsvr/submit", Named("submit"))
      .Handle(HttpRouter::kAnyMethod, "/api/ping", Named("ping"));
  ASSERT_OK_AND_ASSIGN(HttpHandler h, router.Build());
  EXPECT_EQ(Call(h, "GET", "/api/dtmsvr/query").body, "query");
  EXPECT_EQ(Call(h, "POST", "/api/dtmsvr/submit").body, "submit");
  for (const char* method : {"GET", "POST", "DELETE", "PATCH"}) {
    EXPECT_EQ(Call(h, method, "/api/ping").body, "ping") << method;
  }
  // Exact: no trailing-slash or case folding.
  EXPECT_EQ(Call(h, "GET", "/api/dtmsvr/query/").status, 404);
  EXPECT_EQ(Call(h, "GET", "/API/dtmsvr/query").status, 404);
}

TEST(HttpRouterTest, UnknownPathIs404WithAJsonError) {
  ASSERT_OK_AND_ASSIGN(HttpHandler h,
                       HttpRouter().Handle("GET", "/a", Named("a")).Build());
  HttpResponse r = Call(h, "GET", "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"error":"http: no route for GET /nope"})");
}

TEST(HttpRouterTest, KnownPathWithAnotherMethodIs405WithAllow) {
  HttpRouter router;
  router.Handle("POST", "/api/dtmsvr/submit", Named("submit"))
      .Handle("PUT", "/api/dtmsvr/submit", Named("put"));
  ASSERT_OK_AND_ASSIGN(HttpHandler h, router.Build());
  HttpResponse r = Call(h, "GET", "/api/dtmsvr/submit");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "POST, PUT");
  EXPECT_THAT(r.body, HasSubstr("does not take GET"));
  // Methods are case-sensitive.
  EXPECT_EQ(Call(h, "post", "/api/dtmsvr/submit").status, 405);
}

TEST(HttpRouterTest, ExactBeatsPrefixAndTheLongestPrefixWins) {
  HttpRouter router;
  router.HandlePrefix("GET", "/", Named("root"))
      .HandlePrefix("GET", "/admin/", Named("admin"))
      .HandlePrefix("GET", "/admin/assets/", Named("assets"))
      .Handle("GET", "/admin/", Named("index"));
  ASSERT_OK_AND_ASSIGN(HttpHandler h, router.Build());
  EXPECT_EQ(Call(h, "GET", "/admin/").body, "index");
  EXPECT_EQ(Call(h, "GET", "/admin/list").body, "admin");
  EXPECT_EQ(Call(h, "GET", "/admin/assets/app.js").body, "assets");
  EXPECT_EQ(Call(h, "GET", "/favicon.ico").body, "root");
  HttpResponse wrong = Call(h, "POST", "/admin/list");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(HeaderOf(wrong, "Allow"), "GET");
}

TEST(HttpRouterTest, BadRegistrationsAreReportedByBuild) {
  EXPECT_THAT(HttpRouter().Handle("GET", "api", Named("x")).Build(),
              StatusIs(StatusCode::kInvalidArgument, "must start with '/'"));
  EXPECT_THAT(
      HttpRouter()
          .Handle("GET", "/a", Named("x"))
          .Handle("GET", "/a", Named("y"))
          .Build(),
      StatusIs(StatusCode::kInvalidArgument, "GET /a is registered twice"));
  EXPECT_THAT(HttpRouter().Handle("GET", "/a", nullptr).Build(),
              StatusIs(StatusCode::kInvalidArgument, "no handler"));
  EXPECT_THAT(HttpRouter().Handle("", "/a", Named("x")).Build(),
              StatusIs(StatusCode::kInvalidArgument, "no method"));
  // The same path as exact and as prefix is two routes, not a duplicate.
  EXPECT_OK(HttpRouter()
                .Handle("GET", "/a/", Named("x"))
                .HandlePrefix("GET", "/a/", Named("y"))
                .Build());
}

TEST(HttpRouterTest, TheBuiltHandlerDoesNotSeeLaterRoutes) {
  HttpRouter router;
  router.Handle("GET", "/a", Named("a"));
  ASSERT_OK_AND_ASSIGN(HttpHandler h, router.Build());
  router.Handle("GET", "/b", Named("b"));
  EXPECT_EQ(Call(h, "GET", "/b").status, 404);
}

// The dtm_server_* series of a router's requests, as RenderText prints them.
class HttpRouterMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = ServerMetrics::Register(registry_, ServerMetrics::Info{});
    ASSERT_OK(m);
    metrics_ = std::move(m).value();
  }
  bool Has(const std::string& line) {
    return registry_.RenderText().find("\n" + line + "\n") != std::string::npos;
  }
  MetricsRegistry registry_;
  std::unique_ptr<ServerMetrics> metrics_;
};

TEST_F(HttpRouterMetricsTest, ApiNamesFollowDtmsRuleForExactPaths) {
  EXPECT_EQ(HttpRouter::ApiName("/api/dtmsvr/forceStop", false), "forcestop");
  EXPECT_EQ(HttpRouter::ApiName("/api/metrics", false), "metrics");
  EXPECT_EQ(HttpRouter::ApiName("/", false), "");
  EXPECT_EQ(HttpRouter::ApiName("/assets/", true), "/assets/");
  EXPECT_EQ(HttpRouter::ApiName("/", true), "/");
}

TEST_F(HttpRouterMetricsTest, CountsEachRouteByStatusWithFixedLabels) {
  HttpRouter router;
  router.set_metrics(metrics_.get())
      .Handle("GET", "/api/dtmsvr/forceStop", Named("stop"))
      .Handle("GET", "/api/dtmsvr/query",
              [](HttpRequest, HttpResponder r) {
                r.Respond(HttpResponse::Error(404, "no such gid"));
              })
      .HandlePrefix("GET", "/assets/", Named("file"));
  ASSERT_OK_AND_ASSIGN(HttpHandler h, router.Build());
  // Every route has its series from the start.
  EXPECT_TRUE(Has(
      R"(dtm_server_process_total{type="http",api="forcestop",status="ok"} 0)"));
  EXPECT_TRUE(Has(
      R"(dtm_server_process_total{type="http",api="other",status="fail"} 0)"));
  Call(h, "GET", "/api/dtmsvr/forceStop");
  Call(h, "GET", "/api/dtmsvr/forceStop");
  Call(h, "POST", "/api/dtmsvr/forceStop");  // 405: the route's, failed
  Call(h, "GET", "/api/dtmsvr/query");       // the handler's 404
  Call(h, "GET", "/assets/app.js");
  Call(h, "GET", "/assets/deep/er.css");
  EXPECT_TRUE(Has(
      R"(dtm_server_process_total{type="http",api="forcestop",status="ok"} 2)"));
  EXPECT_TRUE(Has(
      R"(dtm_server_process_total{type="http",api="forcestop",status="fail"} 1)"));
  EXPECT_TRUE(Has(
      R"(dtm_server_process_total{type="http",api="query",status="fail"} 1)"));
  EXPECT_TRUE(Has(
      R"(dtm_server_process_total{type="http",api="/assets/",status="ok"} 2)"));
  EXPECT_TRUE(Has(
      R"(dtm_server_response_duration_count{type="http",api="forcestop"} 3)"));
}

TEST_F(HttpRouterMetricsTest, UnknownPathsShareOneSeries) {
  ASSERT_OK_AND_ASSIGN(HttpHandler h, HttpRouter()
                                          .set_metrics(metrics_.get())
                                          .Handle("GET", "/a", Named("a"))
                                          .Build());
  for (int i = 0; i < 100; ++i) {
    Call(h, "GET", "/probe/" + std::to_string(i));
  }
  EXPECT_TRUE(Has(
      R"(dtm_server_process_total{type="http",api="other",status="fail"} 100)"));
  const std::string text = registry_.RenderText();
  EXPECT_THAT(text, ::testing::Not(HasSubstr("probe")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("api=\"42\"")));
}

TEST_F(HttpRouterMetricsTest, ALaterAnswerIsCountedWhenItComes) {
  HttpResponder held;
  ASSERT_OK_AND_ASSIGN(
      HttpHandler h,
      HttpRouter()
          .set_metrics(metrics_.get())
          .Handle("GET", "/api/health",
                  [&held](HttpRequest, HttpResponder r) { held = r; })
          .Build());
  HttpResponse answer;
  HttpRequest request;
  request.method = "GET";
  request.path = "/api/health";
  h(std::move(request),
    HttpResponder([&](HttpResponse a) { answer = std::move(a); }));
  EXPECT_TRUE(Has(
      R"(dtm_server_process_total{type="http",api="health",status="ok"} 0)"));
  held.Respond(HttpResponse::Json(503, "{}"));
  EXPECT_EQ(answer.status, 503);
  EXPECT_TRUE(Has(
      R"(dtm_server_process_total{type="http",api="health",status="fail"} 1)"));
}

TEST_F(HttpRouterMetricsTest, WithoutMetricsNothingIsRegistered) {
  ASSERT_OK_AND_ASSIGN(HttpHandler h,
                       HttpRouter().Handle("GET", "/a", Named("a")).Build());
  EXPECT_EQ(Call(h, "GET", "/a").body, "a");
  EXPECT_THAT(registry_.RenderText(), ::testing::Not(HasSubstr("api=\"a\"")));
}

}  // namespace
}  // namespace dtx
