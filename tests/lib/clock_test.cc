#include "dtx/clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

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

// Found by fuzz/journal_rows and fuzz/dtm_proto: any int64 of milliseconds
// reached FromUnixMillis (a stored row, a List's created_from_ms), and past
// the year 2262 the conversion to TimePoint's nanoseconds overflowed.
TEST(ClockTest, FromUnixMillisClampsWhatTimePointCannotHold) {
  EXPECT_EQ(ToUnixMillis(FromUnixMillis(INT64_MAX)), kMaxUnixMillis);
  EXPECT_EQ(ToUnixMillis(FromUnixMillis(INT64_MIN)), -kMaxUnixMillis);
  EXPECT_EQ(ToUnixMillis(FromUnixMillis(kMaxUnixMillis)), kMaxUnixMillis);
  EXPECT_EQ(ToUnixMillis(FromUnixMillis(-kMaxUnixMillis)), -kMaxUnixMillis);
  // 2200-01-01T00:00:00Z, and a year of intervals after it still fits.
  EXPECT_EQ(kMaxUnixMillis, 7258118400000);
  EXPECT_GT(TimePoint::max() - FromUnixMillis(kMaxUnixMillis),
            std::chrono::hours(24 * 366));
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
