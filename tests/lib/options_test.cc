#include "dtx/options.h"

#include <gtest/gtest.h>

namespace dtx {
namespace {

using std::chrono::seconds;

TEST(OptionsTest, DefaultsAreDtms) {
  Options o;
  EXPECT_EQ(o.retry.initial_interval, seconds(10));
  EXPECT_EQ(o.retry.factor, 2);
  EXPECT_EQ(o.timeout_to_fail, seconds(35));
  EXPECT_EQ(o.request_timeout, seconds(3));
  EXPECT_EQ(o.cron_interval, seconds(3));
  EXPECT_EQ(o.io_threads, 1u);
  EXPECT_TRUE(o.Validate().ok());
}

TEST(OptionsTest, ValidateNamesTheBadField) {
  Options o;
  o.request_timeout = seconds(0);
  EXPECT_EQ(o.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(o.Validate().message().find("request_timeout"), std::string::npos);
  o = Options();
  o.io_threads = 0;
  EXPECT_NE(o.Validate().message().find("io_threads"), std::string::npos);
  o = Options();
  o.retry.max_interval = seconds(5);  // below the initial interval
  EXPECT_NE(o.Validate().message().find("max_interval"), std::string::npos);
}

TEST(RetryPolicyTest, ResetAndKeep) {
  RetryPolicy p;
  EXPECT_EQ(p.Reset(), seconds(10));
  EXPECT_EQ(p.Keep(seconds(40)), seconds(40));
}

TEST(RetryPolicyTest, BackoffDoublesUpToTheCap) {
  RetryPolicy p;
  p.max_interval = seconds(60);
  seconds i = p.Reset();
  i = p.Backoff(i);
  EXPECT_EQ(i, seconds(20));
  i = p.Backoff(i);
  EXPECT_EQ(i, seconds(40));
  i = p.Backoff(i);
  EXPECT_EQ(i, seconds(60));
  i = p.Backoff(i);
  EXPECT_EQ(i, seconds(60));
}

TEST(RetryPolicyTest, ZeroCapIsDtmsUncappedDoubling) {
  RetryPolicy p;
  p.max_interval = seconds(0);
  seconds i = p.Reset();
  for (int k = 0; k < 20; ++k) i = p.Backoff(i);
  EXPECT_EQ(i, seconds(10LL << 20));
}

TEST(RetryPolicyTest, BackoffSaturatesInsteadOfOverflowing) {
  RetryPolicy p;
  p.max_interval = seconds(0);
  seconds i(seconds::max().count() / 2 + 1);
  EXPECT_EQ(p.Backoff(i), seconds::max());
}

TEST(RetryPolicyTest, BackoffOfZeroStartsFromTheInitialInterval) {
  RetryPolicy p;
  EXPECT_EQ(p.Backoff(seconds(0)), seconds(20));
}

}  // namespace
}  // namespace dtx
