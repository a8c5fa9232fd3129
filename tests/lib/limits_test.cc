#include "dtx/limits.h"

#include <gtest/gtest.h>

#include <climits>
#include <map>
#include <string>

namespace dtx {
namespace {

TEST(LimitsTest, GidRules) {
  EXPECT_TRUE(ValidateGid("4kq2bM7sKxYtUvW9aZ3c8d").ok());
  EXPECT_TRUE(ValidateGid("TestSagaNormal-1").ok());
  EXPECT_TRUE(ValidateGid(std::string(kMaxGidBytes, 'g')).ok());
  EXPECT_EQ(ValidateGid("").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateGid(std::string(kMaxGidBytes + 1, 'g')).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateGid("a b").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateGid("a\nb").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateGid(std::string("a\0b", 3)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateGid("caf\xc3\xa9").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateGid("a\x7f").code(), StatusCode::kInvalidArgument);
}

TEST(LimitsTest, MessagesNameTheFieldAndLimit) {
  const Status s = ValidateGid(std::string(200, 'g'));
  EXPECT_EQ(s.message(), "gid is 200 bytes, over the limit of 128");
  EXPECT_EQ(ValidateBranchId("").message(), "branch id is empty");
}

TEST(LimitsTest, BranchHeadersThatTheTransportOwnsAreRefused) {
  EXPECT_TRUE(ValidateBranchHeaders({{"authorization", "Bearer t"},
                                     {"x-request-id", "1"},
                                     {"trace-bin", std::string("\0\1", 2)}})
                  .ok());
  for (const char* key :
       {"dtm-gid", "DTM-Op", "dtm-branch_id", "dtm-trans_type", "dtm-dtm",
        "dtm-anything", ":path", ":authority", "grpc-timeout", "connection",
        "Keep-Alive", "te", "transfer-encoding", "upgrade",
        "proxy-authorization", "host", "Host", "content-length"}) {
    const Status s = ValidateBranchHeaders({{key, "v"}});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << key;
    EXPECT_NE(s.message().find(std::string("'") + key + "' is not allowed"),
              std::string::npos)
        << s.message();
  }
  EXPECT_EQ(ValidateBranchHeaders({{"", "v"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateBranchHeaders({{"a b", "v"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateBranchHeaders({{"x", "a\r\nb"}}).code(),
            StatusCode::kInvalidArgument);
}

TEST(LimitsTest, BranchHeadersAreLimitedInAll) {
  // 1,000 headers of 30 bytes: the issue's reproducer.
  std::map<std::string, std::string> many;
  for (int i = 0; i < 1000; ++i) {
    many["x-h" + std::to_string(i)] = std::string(24, 'v');
  }
  const Status s = ValidateBranchHeaders(many);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("over the limit of 8192"), std::string::npos)
      << s.message();
  // Exactly the limit: one header of key + value + 32 = 8192 bytes.
  EXPECT_TRUE(ValidateBranchHeaders(
                  {{"k", std::string(kMaxBranchHeadersBytes - 33, 'v')}})
                  .ok());
  EXPECT_FALSE(ValidateBranchHeaders(
                   {{"k", std::string(kMaxBranchHeadersBytes - 32, 'v')}})
                   .ok());
}

TEST(LimitsTest, UnixMillisBeforeTheYear2200) {
  EXPECT_TRUE(ValidateUnixMillis("t", 0).ok());
  EXPECT_TRUE(ValidateUnixMillis("t", kMaxUnixMillis).ok());
  EXPECT_FALSE(ValidateUnixMillis("t", kMaxUnixMillis + 1).ok());
  EXPECT_EQ(ValidateUnixMillis("created_from_ms", INT64_MAX).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateUnixMillis("t", -1).code(), StatusCode::kInvalidArgument);
}

TEST(LimitsTest, JsonDepthCountsOnlyNestingOutsideStrings) {
  EXPECT_TRUE(
      ValidateJsonDepth("x", R"({"orders":{"1":[0]},"concurrent":true})").ok());
  EXPECT_TRUE(
      ValidateJsonDepth("x", std::string(64, '[') + std::string(64, ']')).ok());
  const Status deep = ValidateJsonDepth(
      "custom_data", std::string(65, '{') + std::string(65, '}'));
  EXPECT_EQ(deep.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(deep.message(), "custom_data: JSON nested deeper than 64 levels");
  // Brackets inside strings, escaped quotes included, do not count.
  EXPECT_TRUE(ValidateJsonDepth("x", "{\"a\":\"" + std::string(100, '[') +
                                         "\\\"" + std::string(100, '{') + "\"}")
                  .ok());
}

TEST(LimitsTest, BranchIdRules) {
  EXPECT_TRUE(ValidateBranchId("01").ok());
  EXPECT_TRUE(ValidateBranchId("01-02").ok());
  EXPECT_FALSE(ValidateBranchId("").ok());
  EXPECT_FALSE(ValidateBranchId("0 1").ok());
  EXPECT_FALSE(ValidateBranchId(std::string(kMaxBranchIdBytes + 1, '1')).ok());
}

TEST(LimitsTest, UrlRules) {
  EXPECT_TRUE(ValidateUrl("").ok());
  EXPECT_TRUE(ValidateUrl("localhost:9000/api.trans.v1.Trans/TransIn").ok());
  EXPECT_TRUE(ValidateUrl(std::string(kMaxUrlBytes, 'u')).ok());
  EXPECT_FALSE(ValidateUrl(std::string(kMaxUrlBytes + 1, 'u')).ok());
  EXPECT_FALSE(ValidateUrl("host:1/a.B/C\r\n").ok());
}

TEST(LimitsTest, PayloadOverTheLimitIsResourceExhausted) {
  EXPECT_TRUE(ValidatePayload("").ok());
  EXPECT_TRUE(ValidatePayload(std::string(kMaxPayloadBytes, 'p')).ok());
  EXPECT_EQ(ValidatePayload(std::string(kMaxPayloadBytes + 1, 'p')).code(),
            StatusCode::kResourceExhausted);
}

TEST(LimitsTest, TextLimit) {
  EXPECT_TRUE(
      ValidateText("custom_data", std::string(kMaxTextBytes, 't')).ok());
  const Status s =
      ValidateText("custom_data", std::string(kMaxTextBytes + 1, 't'));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("custom_data"), std::string::npos);
}

}  // namespace
}  // namespace dtx
