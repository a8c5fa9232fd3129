#include "test_executor.h"

#include <utility>

namespace dtx::testing {

TestExecutor::TestExecutor() : thread_([this] { Loop(); }) {}

TestExecutor::~TestExecutor() {
  {
    dtx::internal::MutexLock lock(&mu_);
    stop_ = true;
    cv_.SignalAll();
  }
  thread_.join();
}

Executor TestExecutor::executor() {
  return [this](std::function<void()> fn) {
    dtx::internal::MutexLock lock(&mu_);
    queue_.push_back(std::move(fn));
    ++posted_;
    cv_.SignalAll();
  };
}

std::size_t TestExecutor::posted() const {
  dtx::internal::MutexLock lock(&mu_);
  return posted_;
}

void TestExecutor::Drain() {
  dtx::internal::MutexLock lock(&mu_);
  const std::size_t target = posted_;
  cv_.Wait(&mu_, [this, target] {
    mu_.AssertHeld();
    return ran_ >= target;
  });
}

void TestExecutor::Loop() {
  for (;;) {
    std::function<void()> fn;
    {
      dtx::internal::MutexLock lock(&mu_);
      cv_.Wait(&mu_, [this] {
        mu_.AssertHeld();
        return stop_ || !queue_.empty();
      });
      if (queue_.empty()) return;  // stopping, and everything has run
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
    fn = nullptr;  // what it captured goes before it counts as run
    dtx::internal::MutexLock lock(&mu_);
    ++ran_;
    cv_.SignalAll();
  }
}

}  // namespace dtx::testing
