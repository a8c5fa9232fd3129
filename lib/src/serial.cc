#include "serial.h"

#include <utility>

namespace dtx::internal {
namespace {

// The serial whose closure this thread is running, if any.
thread_local const Serial* tls_current = nullptr;

// Closures one drain runs before it yields the io thread to other serials.
constexpr int kDrainBatch = 32;

}  // namespace

bool Serial::RunningHere() const { return tls_current == this; }

void Serial::RunOne(std::function<void()>& fn) {
  const Serial* outer = std::exchange(tls_current, this);
  fn();
  fn = nullptr;  // what it captured goes while the serial is still held
  tls_current = outer;
}

void Serial::Post(std::function<void()> fn) {
  bool schedule = false;
  {
    MutexLock lock(&mu_);
    queue_.push_back(std::move(fn));
    schedule = !std::exchange(running_, true);
  }
  if (schedule) Schedule();
}

void Serial::Dispatch(std::function<void()> fn) {
  if (tls_current != nullptr) return Post(std::move(fn));
  {
    MutexLock lock(&mu_);
    if (running_) {
      queue_.push_back(std::move(fn));
      return;
    }
    running_ = true;  // queue_ is empty whenever running_ is false
  }
  // Keeps the serial alive past the closure, which may hold its last owner.
  std::shared_ptr<Serial> keep = shared_from_this();
  RunOne(fn);
  {
    MutexLock lock(&mu_);
    if (queue_.empty()) {
      running_ = false;
      return;
    }
  }
  // More was queued meanwhile: an io thread takes it, not this thread.
  Schedule();
}

void Serial::Schedule() {
  // Abandon() runs if the io_context (or loop) destroys the drain unrun.
  struct Ticket {
    std::shared_ptr<Serial> serial;
    bool ran = false;
    ~Ticket() {
      if (!ran) serial->Abandon();
    }
  };
  auto ticket = std::make_shared<Ticket>();
  ticket->serial = shared_from_this();
  post_([ticket] {
    ticket->ran = true;
    ticket->serial->Drain();
  });
}

void Serial::Drain() {
  for (int i = 0; i < kDrainBatch; ++i) {
    std::function<void()> fn;
    {
      MutexLock lock(&mu_);
      if (queue_.empty()) {
        running_ = false;
        return;
      }
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    RunOne(fn);
  }
  Schedule();  // still holding the serial; let other work in first
}

void Serial::Abandon() {
  std::deque<std::function<void()>> dropped;
  {
    MutexLock lock(&mu_);
    dropped.swap(queue_);
    running_ = false;
  }
  // Destroyed here, outside the lock: they may hold this serial's owner.
}

}  // namespace dtx::internal
