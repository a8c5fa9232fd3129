#include "dtx/clock.h"

#include <gtest/gtest.h>

namespace dtx {
namespace {

using std::chrono::milliseconds;

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock;
  const TimePoint start = clock.Now();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(milliseconds(1500));
  EXPECT_EQ(clock.Now() - start, milliseconds(1500));
  clock.Set(start);
  EXPECT_EQ(clock.Now(), start);
}

TEST(ClockTest, FakeClockStartsAtAFixedInstant) {
  EXPECT_EQ(ToUnixMillis(FakeClock().Now()), 1767225600000);
}

TEST(ClockTest, UnixMillisRoundTrip) {
  const TimePoint t = FromUnixMillis(1767225600123);
  EXPECT_EQ(ToUnixMillis(t), 1767225600123);
  EXPECT_EQ(ToUnixMillis(FromUnixMillis(0)), 0);
}

TEST(ClockTest, SystemClockIsNearTheSystemTime) {
  const auto before = std::chrono::system_clock::now();
  const TimePoint t = SystemClock().Now();
  const auto after = std::chrono::system_clock::now();
  EXPECT_LE(before, t);
  EXPECT_LE(t, after);
}

}  // namespace
}  // namespace dtx
