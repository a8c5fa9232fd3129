#include "dtx/clock.h"

#include <algorithm>

namespace dtx {
namespace {

class SystemClockImpl final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
};

// 2026-01-01T00:00:00Z: a fixed start keeps fake-clock tests reproducible.
constexpr int64_t kFakeClockStartMs = 1767225600000;

}  // namespace

Clock::~Clock() = default;

const Clock& SystemClock() {
  static const SystemClockImpl clock;
  return clock;
}

FakeClock::FakeClock() : now_ms_(kFakeClockStartMs) {}
FakeClock::FakeClock(TimePoint start) : now_ms_(ToUnixMillis(start)) {}

TimePoint FakeClock::Now() const { return FromUnixMillis(now_ms_.load()); }
void FakeClock::Advance(std::chrono::milliseconds d) {
  now_ms_.fetch_add(d.count());
}
void FakeClock::Set(TimePoint t) { now_ms_.store(ToUnixMillis(t)); }

int64_t ToUnixMillis(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             t.time_since_epoch())
      .count();
}

TimePoint FromUnixMillis(int64_t ms) {
  ms = std::clamp(ms, -kMaxUnixMillis, kMaxUnixMillis);
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::milliseconds(ms)));
}

}  // namespace dtx
