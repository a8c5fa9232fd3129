// The per-transaction options as the journal stores them (lib/src).

#include "trans_options.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dtx::internal {
namespace {

using ::dtx::testing::StatusIs;

TEST(TransOptionsTest, DefaultsAreStoredAsAnEmptyObject) {
  EXPECT_EQ(EncodeOptions(TransOptions{}), "{}");
  ASSERT_OK_AND_ASSIGN(TransOptions o, DecodeOptions("{}"));
  EXPECT_FALSE(o.wait_result);
  EXPECT_EQ(o.timeout_to_fail.count(), 0);
  EXPECT_TRUE(o.branch_headers.empty());
}

TEST(TransOptionsTest, OnlyWhatDiffersFromTheDefaultsIsWritten) {
  TransOptions o;
  o.wait_result = true;
  o.retry_limit = 3;
  EXPECT_EQ(EncodeOptions(o), R"({"retry_limit":3,"wait_result":true})");
}

TEST(TransOptionsTest, EveryOptionRoundTrips) {
  TransOptions o;
  o.wait_result = true;
  o.timeout_to_fail = std::chrono::seconds(60);
  o.retry_interval = std::chrono::seconds(7);
  o.request_timeout = std::chrono::seconds(2);
  o.retry_limit = 4;
  o.concurrent = true;
  o.branch_headers = {{"x-tenant", "a\"b"}, {"trace-bin", "\x01\x02"}};
  ASSERT_OK_AND_ASSIGN(TransOptions back, DecodeOptions(EncodeOptions(o)));
  EXPECT_TRUE(back.wait_result);
  EXPECT_EQ(back.timeout_to_fail.count(), 60);
  EXPECT_EQ(back.retry_interval.count(), 7);
  EXPECT_EQ(back.request_timeout.count(), 2);
  EXPECT_EQ(back.retry_limit, 4);
  EXPECT_TRUE(back.concurrent);
  EXPECT_EQ(back.branch_headers, o.branch_headers);
}

TEST(TransOptionsTest, BinaryHeadersKeepEveryByte) {
  // "-bin" metadata may carry bytes that are not UTF-8, which a JSON string
  // cannot hold.
  TransOptions o;
  for (const std::string& value :
       {std::string("\xff\xfe\x00\x80", 4), std::string("a"), std::string("ab"),
        std::string("abc"), std::string()}) {
    o.branch_headers = {{"trace-bin", value}, {"x-plain", "text"}};
    ASSERT_OK_AND_ASSIGN(TransOptions back, DecodeOptions(EncodeOptions(o)));
    EXPECT_EQ(back.branch_headers, o.branch_headers);
  }
  EXPECT_THAT(DecodeOptions(R"({"branch_headers_bin":{"t-bin":"@@@@"}})"),
              StatusIs(StatusCode::kInvalidArgument, "not base64"));
}

// Found by fuzz/trans_json: bytes stored under a name without "-bin"
// decoded into a header that EncodeOptions could not write again (nlohmann
// throws on a string that is not UTF-8) and that gRPC could not send.
TEST(TransOptionsTest, BinaryValuesNeedABinHeaderName) {
  // "AAEC/w==" is 00 01 02 ff.
  EXPECT_THAT(DecodeOptions(R"({"branch_headers_bin":{"x-user":"AAEC/w=="}})"),
              StatusIs(StatusCode::kInvalidArgument,
                       "branch_headers_bin['x-user'] is not a -bin header"));
  ASSERT_OK_AND_ASSIGN(
      TransOptions o,
      DecodeOptions(R"({"branch_headers_bin":{"x-bin":"AAEC/w=="}})"));
  EXPECT_EQ(o.branch_headers.at("x-bin"), std::string("\x00\x01\x02\xff", 4));
  EXPECT_EQ(DecodeOptions(EncodeOptions(o))->branch_headers, o.branch_headers);
}

TEST(TransOptionsTest, WhatEarlierVersionsWroteStillReads) {
  // Before only non-default options were written, every key was.
  ASSERT_OK_AND_ASSIGN(
      TransOptions o,
      DecodeOptions(R"({"wait_result":false,"timeout_to_fail":0,)"
                    R"("retry_interval":5,"request_timeout":0,)"
                    R"("retry_limit":0,"concurrent":false})"));
  EXPECT_EQ(o.retry_interval.count(), 5);
  EXPECT_FALSE(o.wait_result);
  // A "-bin" header was stored as is (when its value was UTF-8).
  ASSERT_OK_AND_ASSIGN(
      o, DecodeOptions(R"({"branch_headers":{"trace-bin":"abc"}})"));
  EXPECT_EQ(o.branch_headers.at("trace-bin"), "abc");
  ASSERT_OK_AND_ASSIGN(o, DecodeOptions(""));  // rows with no options at all
  EXPECT_TRUE(o.branch_headers.empty());
}

TEST(TransOptionsTest, MalformedTextIsInvalid) {
  EXPECT_THAT(DecodeOptions("{not json"),
              StatusIs(StatusCode::kInvalidArgument, "options"));
  EXPECT_THAT(DecodeOptions(R"({"retry_limit":"three"})"),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace dtx::internal
