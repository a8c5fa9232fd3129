// SimLoop: one thread, simulated time. A run queue of closures and timers
// ordered by simulated time: closures run one at a time in the order they
// were posted; when none is ready, the clock jumps to the earliest timer (no
// real sleeping). The loop is also the Clock of everything it runs, so a
// coordinator on it (CoordinatorDeps::loop and ::clock) is deterministic:
// the same inputs give the same closures in the same order.
//
// Closures belong to a Process (a simulated OS process: a coordinator, a
// client application). Killing a process destroys its queued closures and
// timers unrun, and destroys at once whatever is posted to it afterwards,
// which is how a simulation crashes a coordinator.
//
//   dtx::testing::SimLoop loop;
//   auto app = loop.NewProcess("app");
//   app->PostAt(loop.Now() + std::chrono::seconds(5), [] { ... });
//   loop.RunFor(std::chrono::seconds(10));  // takes microseconds
//
// SimRandom is the one source of randomness of a simulation: a seeded
// generator (splitmix64) whose sequence is the same on every platform.
//
// Thread safety: thread-compatible: one thread drives the loop and calls
// everything here (the coordinator on the loop calls Post and PostAt from
// that thread only).

#ifndef DTX_TESTING_SIM_LOOP_H_
#define DTX_TESTING_SIM_LOOP_H_

#include "dtx/clock.h"
#include "dtx/event_loop.h"
#include "dtx/model.h"
#include "dtx/testing_export.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

namespace dtx::testing {

class DTX_TESTING_EXPORT SimRandom {
 public:
  explicit SimRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n); 0 when n is 0.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  // Uniform in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi);
  // True with probability p.
  bool Chance(double p);
  // A duration uniform in [lo, hi].
  std::chrono::milliseconds Millis(std::chrono::milliseconds lo,
                                   std::chrono::milliseconds hi);

 private:
  uint64_t state_;
};

class DTX_TESTING_EXPORT SimLoop final : public Clock {
 public:
  // A simulated process: an EventLoop whose closures die with it.
  class DTX_TESTING_EXPORT Process final : public EventLoop {
   public:
    Process(SimLoop& loop, uint64_t id, std::string name)
        : loop_(loop), id_(id), name_(std::move(name)) {}
    void Post(std::function<void()> fn) override;
    void PostAt(TimePoint when, std::function<void()> fn) override;
    // A timer `delay` from now.
    void PostAfter(std::chrono::milliseconds delay, std::function<void()> fn);
    // Destroys every queued closure of this process, unrun; later posts are
    // destroyed at once. Idempotent.
    void Kill();
    bool alive() const { return alive_; }
    const std::string& name() const { return name_; }

   private:
    friend class SimLoop;
    SimLoop& loop_;
    const uint64_t id_;
    const std::string name_;
    bool alive_ = true;
  };

  // The clock starts at `start` (millisecond-aligned, as the journal stores
  // time).
  explicit SimLoop(TimePoint start = FromUnixMillis(1'700'000'000'000));
  ~SimLoop() override;
  SimLoop(const SimLoop&) = delete;
  SimLoop& operator=(const SimLoop&) = delete;

  TimePoint Now() const override { return now_; }

  std::shared_ptr<Process> NewProcess(std::string name);

  // Runs one ready closure, or when none is ready moves the clock to the
  // earliest timer and runs it. False when nothing is queued.
  bool RunOne();
  // Runs everything due up to `until`; the clock is `until` afterwards (or
  // later, if it already was).
  void RunUntil(TimePoint until);
  void RunFor(std::chrono::milliseconds d) { RunUntil(now_ + d); }
  // Runs until `done()` is true (checked after each closure) or the clock
  // would pass `deadline`; returns done().
  bool RunUntil(const std::function<bool()>& done, TimePoint deadline);

  // Closures run so far.
  uint64_t steps() const { return steps_; }
  // Whether anything is queued (ready or timed).
  bool idle() const { return ready_.empty() && timers_.empty(); }

 private:
  struct Entry {
    uint64_t process = 0;
    std::function<void()> fn;
  };
  void Add(uint64_t process, TimePoint when, std::function<void()> fn);
  void Kill(uint64_t process);
  bool Alive(uint64_t process) const;

  TimePoint now_;
  uint64_t next_process_ = 1;
  uint64_t seq_ = 0;
  uint64_t steps_ = 0;
  std::deque<Entry> ready_;
  // By (time, order of posting).
  std::map<std::pair<TimePoint, uint64_t>, Entry> timers_;
  std::map<uint64_t, bool> alive_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTING_SIM_LOOP_H_
