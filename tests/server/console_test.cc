// The console's routes (server/src/console.cc) and the embedded files
// (server/cmake/embed_console.cmake): every file is served byte for byte as
// it is in server/console/, with its Content-Type and ETag; a matching
// If-None-Match is answered 304; anything else under /console/ is 404.

#include "console.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <string>

namespace dtx::server {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

std::string ReadSource(std::string_view name) {
  std::ifstream in(std::string(DTX_CONSOLE_DIR) + "/" + std::string(name),
                   std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::optional<std::string> HeaderOf(const HttpResponse& response,
                                    std::string_view name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

class ConsoleRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpRouter router;
    ASSERT_OK(AddConsoleRoutes(router));
    ASSERT_OK_AND_ASSIGN(handler_, router.Build());
  }

  // The handlers answer at once; the answer is captured here.
  HttpResponse Get(std::string path, std::string if_none_match = "",
                   std::string method = "GET") {
    HttpRequest request;
    request.method = std::move(method);
    request.target = path;
    request.path = std::move(path);
    if (!if_none_match.empty()) {
      request.headers.emplace_back("if-none-match", if_none_match);
    }
    std::optional<HttpResponse> answer;
    handler_(request, HttpResponder([&answer](HttpResponse response) {
               answer = std::move(response);
             }));
    EXPECT_TRUE(answer.has_value()) << "no synchronous answer";
    return answer.value_or(HttpResponse{});
  }

  HttpHandler handler_;
};

TEST(ConsoleFilesTest, EmbedsEveryFileByteForByte) {
  std::set<std::string_view> names;
  for (const ConsoleFile& file : ConsoleFiles()) {
    names.insert(file.name);
    const std::string source = ReadSource(file.name);
    EXPECT_THAT(source, Not(IsEmpty())) << file.name;
    EXPECT_EQ(file.content, source) << file.name;
    // A quoted 16-hex-digit tag.
    EXPECT_EQ(file.etag.size(), 18u) << file.name;
    EXPECT_THAT(std::string(file.etag), StartsWith("\"")) << file.name;
  }
  for (const char* expected :
       {"index.html", "console.css", "console.js", "metrics.js"}) {
    EXPECT_EQ(names.count(expected), 1u) << expected;
  }
}

TEST(ConsoleFilesTest, EtagsDifferBetweenFiles) {
  std::set<std::string_view> tags;
  for (const ConsoleFile& file : ConsoleFiles()) tags.insert(file.etag);
  EXPECT_EQ(tags.size(), ConsoleFiles().size());
}

TEST(ConsoleContentTypeTest, ByExtension) {
  EXPECT_EQ(ConsoleContentType("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(ConsoleContentType("console.css"), "text/css; charset=utf-8");
  EXPECT_EQ(ConsoleContentType("console.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(ConsoleContentType("favicon.svg"), "image/svg+xml");
  EXPECT_EQ(ConsoleContentType("shot.png"), "image/png");
  EXPECT_EQ(ConsoleContentType("README"), "application/octet-stream");
  EXPECT_EQ(ConsoleContentType(".js"), "application/octet-stream");
  EXPECT_EQ(ConsoleContentType("a.jsx"), "application/octet-stream");
}

TEST_F(ConsoleRoutesTest, RootIsTheIndexPageWithItsPolicy) {
  const HttpResponse r = Get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r.body, ReadSource("index.html"));
  EXPECT_THAT(r.body, HasSubstr("<title>dtx console</title>"));
  EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-cache");
  EXPECT_EQ(HeaderOf(r, "X-Content-Type-Options"), "nosniff");
  const auto csp = HeaderOf(r, "Content-Security-Policy");
  ASSERT_TRUE(csp.has_value());
  EXPECT_THAT(*csp, HasSubstr("default-src 'self'"));
  EXPECT_THAT(*csp, HasSubstr("script-src 'self'"));
  EXPECT_TRUE(HeaderOf(r, "ETag").has_value());
}

TEST_F(ConsoleRoutesTest, ServesEveryFileWithItsTypeAndTag) {
  for (const ConsoleFile& file : ConsoleFiles()) {
    const HttpResponse r = Get("/console/" + std::string(file.name));
    EXPECT_EQ(r.status, 200) << file.name;
    EXPECT_EQ(r.content_type, ConsoleContentType(file.name)) << file.name;
    EXPECT_EQ(r.body, file.content) << file.name;
    EXPECT_EQ(HeaderOf(r, "ETag"), std::string(file.etag)) << file.name;
    EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-cache") << file.name;
  }
}

TEST_F(ConsoleRoutesTest, MatchingIfNoneMatchIsNotModified) {
  const std::string tag = *HeaderOf(Get("/console/console.js"), "ETag");
  for (const std::string& header :
       {tag, "W/" + tag, "\"other\", " + tag, "\"other\",W/" + tag + " ",
        std::string("*")}) {
    const HttpResponse r = Get("/console/console.js", header);
    EXPECT_EQ(r.status, 304) << header;
    EXPECT_THAT(r.body, IsEmpty()) << header;
    EXPECT_EQ(HeaderOf(r, "ETag"), tag) << header;
  }
  for (const std::string& header :
       {std::string("\"other\""), tag.substr(1, tag.size() - 2), tag + "x",
        std::string(",")}) {
    EXPECT_EQ(Get("/console/console.js", header).status, 200) << header;
  }
  EXPECT_EQ(Get("/", *HeaderOf(Get("/"), "ETag")).status, 304);
}

TEST_F(ConsoleRoutesTest, AnythingElseIsNotFound) {
  for (const char* path :
       {"/console/", "/console/nope.js", "/console/../console/index.html",
        "/console/index.html/", "/console/Index.html", "/index.html",
        "/console", "/consolex/index.html"}) {
    const HttpResponse r = Get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.content_type, "application/json") << path;
  }
  EXPECT_THAT(Get("/console/nope.js").body, HasSubstr("nope.js"));
}

TEST_F(ConsoleRoutesTest, OnlyGet) {
  EXPECT_EQ(Get("/", "", "POST").status, 405);
  EXPECT_EQ(Get("/console/console.js", "", "DELETE").status, 405);
}

}  // namespace
}  // namespace dtx::server
