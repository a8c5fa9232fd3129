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

}  // namespace
}  // namespace dtx
