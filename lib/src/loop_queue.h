// LoopQueue: the coordinator's queue of closures when it runs on a host's
// EventLoop (CoordinatorDeps::loop) instead of its own io_context: what
// asio::post(io, ...) does with threads. The closures stay here, and the loop
// is handed only a tick that runs the oldest one through a weak reference, so
// that a tick the loop runs after the coordinator is gone does nothing, and
// closures still queued are destroyed with the queue (as an io_context
// destroys its handlers), never by the loop.
//
// Thread safety: thread-safe.

#ifndef DTX_LIB_LOOP_QUEUE_H_
#define DTX_LIB_LOOP_QUEUE_H_

#include "dtx/event_loop.h"
#include "dtx/internal/mutex.h"

#include <deque>
#include <functional>
#include <memory>

namespace dtx::internal {

class LoopQueue : public std::enable_shared_from_this<LoopQueue> {
 public:
  // `loop` must outlive the queue.
  explicit LoopQueue(EventLoop& loop) : loop_(loop) {}
  ~LoopQueue() { Close(); }
  LoopQueue(const LoopQueue&) = delete;
  LoopQueue& operator=(const LoopQueue&) = delete;

  // Queues `fn` and hands the loop a tick that runs the oldest closure.
  void Post(std::function<void()> fn) DTX_EXCLUDES(mu_);

  // Runs `fn` on the loop once the clock reaches `when`, unless the queue is
  // gone by then. `fn` is held by the loop: it must capture nothing that its
  // destruction would need.
  void PostAt(TimePoint when, std::function<void()> fn);

  // Destroys what is queued (outside the lock, as many times as destroying
  // it queues more); later posts are destroyed at once.
  void Close() DTX_EXCLUDES(mu_);

 private:
  void RunOne() DTX_EXCLUDES(mu_);

  EventLoop& loop_;
  Mutex mu_;
  std::deque<std::function<void()>> queue_ DTX_GUARDED_BY(mu_);
  bool closed_ DTX_GUARDED_BY(mu_) = false;
};

}  // namespace dtx::internal

#endif  // DTX_LIB_LOOP_QUEUE_H_
