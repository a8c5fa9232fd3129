#include "loop_queue.h"

#include <utility>

namespace dtx {

EventLoop::~EventLoop() = default;

namespace internal {

void LoopQueue::Post(std::function<void()> fn) {
  {
    MutexLock lock(&mu_);
    if (!closed_) {
      queue_.push_back(std::move(fn));
      fn = nullptr;
    }
  }
  if (fn) return;  // closed: `fn` is destroyed here, outside the lock
  loop_.Post([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->RunOne();
  });
}

void LoopQueue::PostAt(TimePoint when, std::function<void()> fn) {
  loop_.PostAt(when, [weak = weak_from_this(), fn = std::move(fn)] {
    if (auto self = weak.lock()) {
      {
        MutexLock lock(&self->mu_);
        if (self->closed_) return;
      }
      fn();
    }
  });
}

void LoopQueue::RunOne() {
  std::function<void()> fn;
  {
    MutexLock lock(&mu_);
    if (queue_.empty()) return;
    fn = std::move(queue_.front());
    queue_.pop_front();
  }
  fn();
}

void LoopQueue::Close() {
  for (;;) {
    std::deque<std::function<void()>> dropped;
    {
      MutexLock lock(&mu_);
      closed_ = true;
      if (queue_.empty()) return;
      dropped.swap(queue_);
    }
  }
}

}  // namespace internal
}  // namespace dtx
