#include "summary_cache.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <vector>

namespace dtx::internal {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The refreshes a cache starts, run by hand (the coordinator runs them on
// its read pool).
class SummaryCacheTest : public ::testing::Test {
 protected:
  SummaryCache cache_{clock_, seconds(5), [this] { ++started_; }};

  UnfinishedSummary Summary(int64_t unfinished, int64_t due,
                            std::optional<TimePoint> oldest) {
    UnfinishedSummary s;
    s.unfinished = unfinished;
    s.due = due;
    s.oldest_create_time = oldest;
    return s;
  }

  FakeClock clock_;
  int started_ = 0;
};

TEST_F(SummaryCacheTest, FirstReadStartsOneRefreshHoweverManyReads) {
  for (int i = 0; i < 10; ++i) {
    const SummaryCache::Values v = cache_.Read();
    EXPECT_EQ(v.unfinished, 0);
    EXPECT_EQ(v.due, 0);
    EXPECT_EQ(v.oldest_age_seconds, 0);
  }
  EXPECT_EQ(started_, 1);
}

TEST_F(SummaryCacheTest, AtMostOneQueryPerIntervalHoweverOftenRead) {
  cache_.Update(Summary(7, 2, clock_.Now() - seconds(30)), clock_.Now());
  // Read every 100 ms for 20 s; each refresh answers at the next read.
  int answered = 0;
  for (int i = 0; i < 200; ++i) {
    clock_.Advance(milliseconds(100));
    if (answered < started_) {
      cache_.Update(Summary(7, 2, std::nullopt), clock_.Now());
      ++answered;
    }
    cache_.Read();
  }
  // Refreshes start 5 s after the last answer: at 5, 10.1 and 15.2 s (the
  // next would be at 20.3 s).
  EXPECT_EQ(started_, 3);
  EXPECT_EQ(answered, 3);
}

TEST_F(SummaryCacheTest, ValuesAreTheLastSummaryAndTheAgeIsAsOfNow) {
  const TimePoint created = clock_.Now() - seconds(60);
  cache_.Update(Summary(7, 2, created), clock_.Now());
  SummaryCache::Values v = cache_.Read();
  EXPECT_EQ(v.unfinished, 7);
  EXPECT_EQ(v.due, 2);
  EXPECT_DOUBLE_EQ(v.oldest_age_seconds, 60);
  EXPECT_EQ(started_, 0);
  // The age grows between refreshes; the counts stay as summarized.
  clock_.Advance(seconds(3));
  v = cache_.Read();
  EXPECT_DOUBLE_EQ(v.oldest_age_seconds, 63);
  EXPECT_EQ(v.unfinished, 7);
  EXPECT_EQ(started_, 0);
}

TEST_F(SummaryCacheTest, AStaleReadReturnsWhatIsHeldUntilTheRefreshAnswers) {
  cache_.Update(Summary(7, 2, std::nullopt), clock_.Now());
  clock_.Advance(seconds(6));
  EXPECT_EQ(cache_.Read().unfinished, 7);
  EXPECT_EQ(started_, 1);
  EXPECT_EQ(cache_.Read().unfinished, 7);
  EXPECT_EQ(started_, 1);  // one under way
  cache_.Update(Summary(1, 0, std::nullopt), clock_.Now());
  EXPECT_EQ(cache_.Read().unfinished, 1);
  EXPECT_EQ(started_, 1);
}

TEST_F(SummaryCacheTest, AFailedRefreshKeepsTheValuesAndWaitsAnInterval) {
  cache_.Update(Summary(7, 2, std::nullopt), clock_.Now());
  clock_.Advance(seconds(6));
  cache_.Read();
  ASSERT_EQ(started_, 1);
  cache_.Update(UnavailableError("journal: closed"), clock_.Now());
  EXPECT_EQ(cache_.Read().unfinished, 7);
  EXPECT_EQ(started_, 1);
  clock_.Advance(seconds(5));
  cache_.Read();
  EXPECT_EQ(started_, 2);
}

TEST_F(SummaryCacheTest, NoUnfinishedTransactionMeansAgeZero) {
  cache_.Update(Summary(0, 0, std::nullopt), clock_.Now());
  EXPECT_EQ(cache_.Read().oldest_age_seconds, 0);
}

}  // namespace
}  // namespace dtx::internal
