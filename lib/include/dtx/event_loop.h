// EventLoop: a loop driven by the host that a coordinator can run on instead
// of its own threads (CoordinatorDeps::loop). Everything the engine does then
// runs as closures of this loop, one at a time on the thread that drives it,
// and its scheduler waits by queuing a closure for a time of the
// coordinator's Clock instead of arming a timer: a loop that runs its
// closures in a fixed order and moves its clock itself (dtx::testing::SimLoop)
// runs the real coordinator deterministically, which is what a simulation
// needs (docs/testing.md).
//
// clang-format off
//   class MyLoop : public dtx::EventLoop {
//     void Post(std::function<void()> fn) override { ready_.push(std::move(fn)); }
//     void PostAt(dtx::TimePoint when, std::function<void()> fn) override {
//       timers_.emplace(when, std::move(fn));
//     }
//     ...
//   };
// clang-format on
//
// The loop may run a closure late but never early, and runs closures posted
// with Post in the order they were posted. A closure may be destroyed without
// running (the simulated process died); the coordinator copes. The
// coordinator's closures given to the loop hold no reference that outlives
// it: one that runs after the coordinator is destroyed does nothing.
//
// Thread safety: the coordinator calls Post and PostAt from the thread that
// drives the loop, and from the threads of its journal and branch client when
// those have any.

#ifndef DTX_EVENT_LOOP_H_
#define DTX_EVENT_LOOP_H_

#include "dtx/core_export.h"
#include "dtx/model.h"

#include <functional>

namespace dtx {

class DTX_CORE_EXPORT EventLoop {
 public:
  virtual ~EventLoop();

  // Queues `fn` to run after what was posted before it. Never runs it before
  // returning.
  virtual void Post(std::function<void()> fn) = 0;

  // Queues `fn` to run once the coordinator's clock has reached `when` (at
  // once, as Post, when it has already).
  virtual void PostAt(TimePoint when, std::function<void()> fn) = 0;
};

}  // namespace dtx

#endif  // DTX_EVENT_LOOP_H_
