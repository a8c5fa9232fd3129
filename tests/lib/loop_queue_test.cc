#include "loop_queue.h"

#include "dtx/clock.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dtx::internal {
namespace {

// A host's loop as a test drives it: nothing runs until Run.
class ManualLoop final : public EventLoop {
 public:
  void Post(std::function<void()> fn) override {
    ready_.push_back(std::move(fn));
  }
  void PostAt(TimePoint when, std::function<void()> fn) override {
    timers_.emplace(when, std::move(fn));
  }
  // Runs what is ready, then every timer up to `until`, in time order.
  void Run(TimePoint until = TimePoint::max()) {
    for (;;) {
      if (!ready_.empty()) {
        auto fn = std::move(ready_.front());
        ready_.pop_front();
        fn();
      } else if (!timers_.empty() && timers_.begin()->first <= until) {
        auto fn = std::move(timers_.begin()->second);
        timers_.erase(timers_.begin());
        fn();
      } else {
        return;
      }
    }
  }
  std::size_t queued() const { return ready_.size() + timers_.size(); }

 private:
  std::deque<std::function<void()>> ready_;
  std::multimap<TimePoint, std::function<void()>> timers_;
};

TEST(LoopQueueTest, RunsClosuresInOrderOnlyWhenTheLoopRuns) {
  ManualLoop loop;
  auto q = std::make_shared<LoopQueue>(loop);
  std::vector<int> ran;
  q->Post([&] { ran.push_back(1); });
  q->Post([&] {
    ran.push_back(2);
    q->Post([&] { ran.push_back(4); });  // after what is already queued
  });
  q->Post([&] { ran.push_back(3); });
  EXPECT_TRUE(ran.empty());
  loop.Run();
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3, 4}));
}

TEST(LoopQueueTest, TimersRunAtTheirTime) {
  ManualLoop loop;
  auto q = std::make_shared<LoopQueue>(loop);
  const TimePoint t0 = FromUnixMillis(1'000'000);
  std::vector<std::string> ran;
  q->PostAt(t0 + std::chrono::seconds(2), [&] { ran.push_back("late"); });
  q->PostAt(t0 + std::chrono::seconds(1), [&] { ran.push_back("early"); });
  loop.Run(t0 + std::chrono::milliseconds(1500));
  EXPECT_EQ(ran, (std::vector<std::string>{"early"}));
  loop.Run();
  EXPECT_EQ(ran, (std::vector<std::string>{"early", "late"}));
}

// The loop may run (or drop) what it holds after the queue is gone: its
// ticks do nothing then, and what was queued was destroyed with the queue.
TEST(LoopQueueTest, TicksAfterTheQueueIsGoneDoNothing) {
  ManualLoop loop;
  auto q = std::make_shared<LoopQueue>(loop);
  int ran = 0;
  auto held = std::make_shared<int>(0);
  q->Post([&ran, held] { ++ran; });
  q->PostAt(FromUnixMillis(5), [&ran] { ++ran; });
  EXPECT_EQ(held.use_count(), 2);
  q.reset();
  EXPECT_EQ(held.use_count(), 1);  // destroyed with the queue, unrun
  EXPECT_EQ(loop.queued(), 2u);
  loop.Run();
  EXPECT_EQ(ran, 0);
}

TEST(LoopQueueTest, CloseDropsWhatIsQueuedAndWhatComesLater) {
  ManualLoop loop;
  auto q = std::make_shared<LoopQueue>(loop);
  int ran = 0;
  // Destroying this closure queues another, which Close drops too.
  struct Requeue {
    std::shared_ptr<LoopQueue> q;
    int* ran;
    ~Requeue() {
      if (q) q->Post([r = ran] { ++*r; });
    }
  };
  auto requeue = std::make_shared<Requeue>(Requeue{q, &ran});
  q->Post([requeue] { ++*requeue->ran; });
  requeue.reset();
  q->PostAt(FromUnixMillis(5), [&ran] { ++ran; });
  q->Close();
  q->Post([&ran] { ++ran; });
  loop.Run();
  EXPECT_EQ(ran, 0);
}

}  // namespace
}  // namespace dtx::internal
