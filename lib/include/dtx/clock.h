// Clock: the only source of time in dtx, so that tests control it.
//
// Thread safety: implementations are thread-safe.

#ifndef DTX_CLOCK_H_
#define DTX_CLOCK_H_

#include "dtx/core_export.h"
#include "dtx/model.h"

#include <atomic>
#include <chrono>

namespace dtx {

class DTX_CORE_EXPORT Clock {
 public:
  virtual ~Clock();
  virtual TimePoint Now() const = 0;
};

// The system's wall clock. Stateless; the returned object lives forever.
DTX_CORE_EXPORT const Clock& SystemClock();

// A clock that moves only when told to, for tests. Starts at a fixed,
// millisecond-aligned instant so that journal round trips compare equal.
class DTX_CORE_EXPORT FakeClock : public Clock {
 public:
  FakeClock();
  explicit FakeClock(TimePoint start);

  TimePoint Now() const override;
  void Advance(std::chrono::milliseconds d);
  void Set(TimePoint t);

 private:
  std::atomic<int64_t> now_ms_;
};

// The latest Unix time, in milliseconds, that FromUnixMillis gives as it
// is (2200-01-01T00:00:00Z), and minus it the earliest: TimePoint counts
// nanoseconds in 64 bits and ends in 2262, so a later time, and a due time
// computed from it, would overflow. Times from outside (a journal's rows,
// a client's query, a server's answer) are checked against it.
inline constexpr int64_t kMaxUnixMillis = 7258118400000;

// Milliseconds since the Unix epoch, as the journal stores time.
DTX_CORE_EXPORT int64_t ToUnixMillis(TimePoint t);
// `ms` clamped to -kMaxUnixMillis..kMaxUnixMillis, so that any int64 gives a
// TimePoint without overflow.
DTX_CORE_EXPORT TimePoint FromUnixMillis(int64_t ms);

}  // namespace dtx

#endif  // DTX_CLOCK_H_
