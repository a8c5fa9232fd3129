// Serial: closures that run one at a time, in the order they were queued,
// like an asio strand over the coordinator's io_context (or the host's
// EventLoop: the serial queues its drains through an Executor that posts to
// either), with one addition:
// a completion that arrives on a foreign thread (a gRPC callback thread) may
// run at once on that thread when nothing of the serial is running or queued
// (Dispatch), instead of waking an io thread to run it. On this project's
// 2-vCPU machines a thread hop costs ~100 us at one transaction in flight,
// more than the branch call itself (docs/architecture.md, "Thread hops").
//
//   auto serial = std::make_shared<Serial>(engine.post);
//   serial->Post([] { ... });      // on an io thread, after what is queued
//   serial->Dispatch([] { ... });  // here if idle, else like Post
//
// A closure still queued when the io_context (or the executor's queue) is
// destroyed without running it is destroyed with it (as asio destroys a
// strand's handlers), so closures that hold the serial's owner cannot keep it
// alive in a cycle.
//
// Thread safety: thread-safe.

#ifndef DTX_LIB_SERIAL_H_
#define DTX_LIB_SERIAL_H_

#include "dtx/executor.h"
#include "dtx/internal/mutex.h"

#include <deque>
#include <functional>
#include <memory>
#include <utility>

namespace dtx::internal {

class Serial : public std::enable_shared_from_this<Serial> {
 public:
  // `post` queues a closure on an io thread (or the host's loop); whatever
  // it queues must outlive the serial or destroy the closure unrun.
  explicit Serial(Executor post) : post_(std::move(post)) {}
  Serial(const Serial&) = delete;
  Serial& operator=(const Serial&) = delete;

  // Queues `fn`; it runs on an io thread after everything queued before it.
  // Never runs it before returning.
  void Post(std::function<void()> fn) DTX_EXCLUDES(mu_);

  // Runs `fn` on this thread before returning when the serial is idle
  // (nothing running, nothing queued) and this thread is not running a
  // closure of any serial; otherwise the same as Post. For completions on
  // threads that are not io threads; `fn` must be short and non-blocking,
  // as any closure of a serial.
  void Dispatch(std::function<void()> fn) DTX_EXCLUDES(mu_);

  // True on the thread running one of this serial's closures.
  bool RunningHere() const;

 private:
  // Hands the queue to an io thread; running_ is already set.
  void Schedule();
  // Runs queued closures on an io thread, a bounded number at a time.
  void Drain() DTX_EXCLUDES(mu_);
  // The io_context dropped a scheduled drain without running it.
  void Abandon() DTX_EXCLUDES(mu_);
  void RunOne(std::function<void()>& fn);

  Executor post_;
  Mutex mu_;
  std::deque<std::function<void()>> queue_ DTX_GUARDED_BY(mu_);
  // A closure of this serial is running, or a drain is scheduled.
  bool running_ DTX_GUARDED_BY(mu_) = false;
};

}  // namespace dtx::internal

#endif  // DTX_LIB_SERIAL_H_
