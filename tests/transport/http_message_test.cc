#include "dtx/transport/http_message.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace dtx {
namespace {

using dtx::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Pair;

TEST(PercentDecodeTest, DecodesEscapesAndPlusOnlyWhenAsked) {
  EXPECT_EQ(*PercentDecode("a%20b%2Fc%41%6a", false), "a b/cAj");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(*PercentDecode("", true), "");
  EXPECT_EQ(*PercentDecode("%00", false), std::string(1, '\0'));
}

TEST(PercentDecodeTest, RefusesMalformedEscapes) {
  for (const char* bad : {"%", "%2", "a%2", "%G0", "%0G", "%%", "x%zzy"}) {
    EXPECT_THAT(PercentDecode(bad, true),
                StatusIs(StatusCode::kInvalidArgument, "malformed percent"))
        << bad;
  }
}

TEST(ParseQueryStringTest, SplitsAndDecodesInOrder) {
  ASSERT_OK_AND_ASSIGN(HttpPairs q,
                       ParseQueryString("gid=a%20b&x=1+2&flag&&=v&x=3"));
  EXPECT_THAT(q, ElementsAre(Pair("gid", "a b"), Pair("x", "1 2"),
                             Pair("flag", ""), Pair("", "v"), Pair("x", "3")));
  ASSERT_OK_AND_ASSIGN(HttpPairs empty, ParseQueryString(""));
  EXPECT_TRUE(empty.empty());
  ASSERT_OK_AND_ASSIGN(HttpPairs eq, ParseQueryString("a=b=c"));
  EXPECT_THAT(eq, ElementsAre(Pair("a", "b=c")));
}

TEST(ParseQueryStringTest, MalformedEscapeNamesTheParameter) {
  EXPECT_THAT(ParseQueryString("ok=1&gid=%zz"),
              StatusIs(StatusCode::kInvalidArgument, "parameter 'gid'"));
  EXPECT_THAT(ParseQueryString("g%id=1"),
              StatusIs(StatusCode::kInvalidArgument, "query string"));
}

TEST(ParseRequestTargetTest, SplitsAndDecodesPathAndQuery) {
  HttpRequest r;
  ASSERT_OK(ParseRequestTarget("/api/dtmsvr/query%2Fx+y?gid=a%20b&f", &r));
  EXPECT_EQ(r.path, "/api/dtmsvr/query/x+y");
  EXPECT_THAT(r.query, ElementsAre(Pair("gid", "a b"), Pair("f", "")));
  ASSERT_OK(ParseRequestTarget("/", &r));
  EXPECT_EQ(r.path, "/");
  EXPECT_TRUE(r.query.empty());
}

TEST(ParseRequestTargetTest, RefusesWhatIsNotAPathOrMalformed) {
  HttpRequest r;
  for (const char* bad : {"", "?gid=1", "*", "http://h/p", "api/x"}) {
    EXPECT_THAT(ParseRequestTarget(bad, &r),
                StatusIs(StatusCode::kInvalidArgument,
                         "must be a path starting with '/'"))
        << bad;
  }
  EXPECT_THAT(ParseRequestTarget("/a%zz?x=1", &r),
              StatusIs(StatusCode::kInvalidArgument, "in the request path"));
  EXPECT_THAT(ParseRequestTarget("/a?gid=%zz", &r),
              StatusIs(StatusCode::kInvalidArgument, "parameter 'gid'"));
}

TEST(EncodeQueryComponentTest, EncodesAllButUnreservedAndRoundTrips) {
  EXPECT_EQ(EncodeQueryComponent("a b&c=d/e?f"), "a%20b%26c%3Dd%2Fe%3Ff");
  EXPECT_EQ(EncodeQueryComponent("AZaz09-._~"), "AZaz09-._~");
  const std::string raw = "gid with spaces+plus%25/\xc3\xa9\x01";
  ASSERT_OK_AND_ASSIGN(std::string back,
                       PercentDecode(EncodeQueryComponent(raw), true));
  EXPECT_EQ(back, raw);
}

TEST(HttpRequestTest, QueryValueIsTheFirstAndHeadersIgnoreCase) {
  HttpRequest r;
  r.query = {{"x", "1"}, {"x", "2"}};
  r.headers = {{"Content-Type", "application/json"}};
  EXPECT_EQ(r.QueryValue("x"), "1");
  EXPECT_EQ(r.QueryValue("X"), std::nullopt);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("Accept"), std::nullopt);
}

TEST(HttpResponseTest, ErrorIsJsonWithTheMessageEscaped) {
  HttpResponse r = HttpResponse::Error(400, "bad \"gid\"\n\\");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"error":"bad \"gid\"\n\\"})");
  // Bytes that are not UTF-8 do not make it throw.
  EXPECT_EQ(HttpResponse::Error(400, "\xff").status, 400);
  EXPECT_EQ(HttpResponse::Dropped().status, 503);
}

TEST(HttpResponderTest, OnlyTheFirstAnswerOfAllCopiesCounts) {
  std::vector<int> delivered;
  HttpResponder r([&](HttpResponse a) { delivered.push_back(a.status); });
  HttpResponder copy = r;
  EXPECT_FALSE(r.responded());
  copy.Respond(HttpResponse::Json(201, "{}"));
  r.Respond(HttpResponse::Json(202, "{}"));
  EXPECT_TRUE(r.responded());
  r = HttpResponder();
  copy = HttpResponder();
  EXPECT_THAT(delivered, ElementsAre(201));
}

TEST(HttpResponderTest, DroppingTheLastCopyUnansweredAnswers503) {
  std::vector<HttpResponse> delivered;
  {
    HttpResponder r([&](HttpResponse a) { delivered.push_back(std::move(a)); });
    HttpResponder copy = r;
  }
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].status, 503);
  EXPECT_THAT(delivered[0].body, ::testing::HasSubstr("dropped"));
  // A default responder answers nothing, and does not crash.
  HttpResponder().Respond(HttpResponse::Json(200, "{}"));
}

TEST(HttpResponderTest, AnswersOnTheThreadThatResponds) {
  std::thread::id delivered_on;
  HttpResponder r(
      [&](HttpResponse) { delivered_on = std::this_thread::get_id(); });
  std::thread::id responder_thread;
  std::thread t([&] {
    responder_thread = std::this_thread::get_id();
    r.Respond(HttpResponse::Json(200, "{}"));
  });
  t.join();
  EXPECT_EQ(delivered_on, responder_thread);
}

}  // namespace
}  // namespace dtx
