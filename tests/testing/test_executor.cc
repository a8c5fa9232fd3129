#include "test_executor.h"

#include <utility>

namespace dtx::testing {

TestExecutor::TestExecutor() : thread_([this] { Loop(); }) {}

TestExecutor::~TestExecutor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Executor TestExecutor::executor() {
  return [this](std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(fn));
    ++posted_;
    cv_.notify_all();
  };
}

std::size_t TestExecutor::posted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return posted_;
}

void TestExecutor::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  const std::size_t target = posted_;
  cv_.wait(lock, [&] { return ran_ >= target; });
}

void TestExecutor::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything has run
    auto fn = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    fn();
    fn = nullptr;  // what it captured goes before it counts as run
    lock.lock();
    ++ran_;
    cv_.notify_all();
  }
}

}  // namespace dtx::testing
