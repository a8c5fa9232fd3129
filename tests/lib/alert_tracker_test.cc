#include "alert_tracker.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace dtx::internal {
namespace {

TEST(AlertTrackerTest, ThresholdsAreTheLimitAndItsDoublings) {
  EXPECT_EQ(AlertTracker::ThresholdFor(3, 0), 0);
  EXPECT_EQ(AlertTracker::ThresholdFor(3, 2), 0);
  EXPECT_EQ(AlertTracker::ThresholdFor(3, 3), 3);
  EXPECT_EQ(AlertTracker::ThresholdFor(3, 5), 3);
  EXPECT_EQ(AlertTracker::ThresholdFor(3, 6), 6);
  EXPECT_EQ(AlertTracker::ThresholdFor(3, 11), 6);
  EXPECT_EQ(AlertTracker::ThresholdFor(3, 12), 12);
  EXPECT_EQ(AlertTracker::ThresholdFor(1, 1), 1);
  EXPECT_EQ(AlertTracker::ThresholdFor(1, 7), 4);
  // No overflow near the top of int64.
  const int64_t max = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(AlertTracker::ThresholdFor(max, max), max);
  EXPECT_EQ(AlertTracker::ThresholdFor(1, max), int64_t{1} << 62);
}

TEST(AlertTrackerTest, OnceAtEachThresholdNotAtEveryLaterAttempt) {
  AlertTracker tracker(3);
  std::string alerts;
  for (int64_t attempts = 1; attempts <= 13; ++attempts) {
    const int64_t t = tracker.OnFailedCall("g", attempts);
    if (t != 0)
      alerts += std::to_string(attempts) + ":" + std::to_string(t) + " ";
  }
  EXPECT_EQ(alerts, "3:3 6:6 12:12 ");
}

TEST(AlertTrackerTest, OncePerTransactionWhicheverBranchFails) {
  AlertTracker tracker(2);
  // Branch 01 reaches the limit: one alert.
  EXPECT_EQ(tracker.OnFailedCall("g", 2), 2);
  // Branch 02 of the same transaction reaches it too: no second alert.
  EXPECT_EQ(tracker.OnFailedCall("g", 2), 0);
  EXPECT_EQ(tracker.OnFailedCall("g", 3), 0);
  // Another transaction has its own.
  EXPECT_EQ(tracker.OnFailedCall("h", 2), 2);
  // The next threshold, by any branch, alerts once more.
  EXPECT_EQ(tracker.OnFailedCall("g", 4), 4);
  EXPECT_EQ(tracker.OnFailedCall("g", 4), 0);
  EXPECT_EQ(tracker.size(), 2u);
}

TEST(AlertTrackerTest, AJumpPastSeveralThresholdsAlertsOnceForTheHighest) {
  // After a restart the memory is empty while the journal's attempts go on.
  AlertTracker tracker(3);
  EXPECT_EQ(tracker.OnFailedCall("g", 14), 12);
  EXPECT_EQ(tracker.OnFailedCall("g", 15), 0);
  EXPECT_EQ(tracker.OnFailedCall("g", 24), 24);
}

TEST(AlertTrackerTest, BelowTheLimitRemembersNothing) {
  AlertTracker tracker(3);
  EXPECT_EQ(tracker.OnFailedCall("g", 1), 0);
  EXPECT_EQ(tracker.OnFailedCall("g", 2), 0);
  EXPECT_EQ(tracker.size(), 0u);
}

TEST(AlertTrackerTest, AFinishedTransactionIsForgotten) {
  AlertTracker tracker(1);
  EXPECT_EQ(tracker.OnFailedCall("g", 1), 1);
  tracker.Forget("g");
  tracker.Forget("unknown");
  EXPECT_EQ(tracker.size(), 0u);
  // The same gid again (a new transaction reusing it) starts over.
  EXPECT_EQ(tracker.OnFailedCall("g", 1), 1);
}

TEST(AlertTrackerTest, MemoryIsCapped) {
  AlertTracker tracker(1, /*max_transactions=*/2);
  EXPECT_EQ(tracker.OnFailedCall("a", 1), 1);
  EXPECT_EQ(tracker.OnFailedCall("b", 1), 1);
  EXPECT_EQ(tracker.OnFailedCall("c", 1), 1);
  EXPECT_EQ(tracker.size(), 2u);
  // One of a and b was forgotten and alerts once more; the other does not.
  const int again = (tracker.OnFailedCall("a", 1) != 0 ? 1 : 0) +
                    (tracker.OnFailedCall("b", 1) != 0 ? 1 : 0);
  EXPECT_GE(again, 1);
  EXPECT_EQ(tracker.size(), 2u);
}

}  // namespace
}  // namespace dtx::internal
