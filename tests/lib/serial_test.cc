#include "serial.h"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

namespace dtx::internal {
namespace {

// What the coordinator's engine gives its serials: a post to its io_context.
Executor OnIo(asio::io_context& io) {
  return [&io](std::function<void()> fn) { asio::post(io, std::move(fn)); };
}

TEST(SerialTest, PostRunsInOrderOnTheIoThreadNeverInline) {
  asio::io_context io;
  auto serial = std::make_shared<Serial>(OnIo(io));
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) {
    serial->Post([&order, i, serial] {
      EXPECT_TRUE(serial->RunningHere());
      order.push_back(i);
    });
  }
  EXPECT_TRUE(order.empty());
  EXPECT_FALSE(serial->RunningHere());
  io.run();
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
}

TEST(SerialTest, DispatchRunsInlineWhenIdle) {
  asio::io_context io;
  auto serial = std::make_shared<Serial>(OnIo(io));
  bool ran = false;
  serial->Dispatch([&] {
    EXPECT_TRUE(serial->RunningHere());
    ran = true;
  });
  EXPECT_TRUE(ran);
  EXPECT_EQ(io.poll(), 0u);  // nothing was handed to the io_context
}

TEST(SerialTest, DispatchQueuesBehindPendingWork) {
  asio::io_context io;
  auto serial = std::make_shared<Serial>(OnIo(io));
  std::vector<int> order;
  serial->Post([&] { order.push_back(1); });
  serial->Dispatch([&] { order.push_back(2); });
  EXPECT_TRUE(order.empty());
  io.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(SerialTest, DispatchInsideAClosureDoesNotNest) {
  asio::io_context io;
  auto a = std::make_shared<Serial>(OnIo(io));
  auto b = std::make_shared<Serial>(OnIo(io));
  std::vector<int> order;
  a->Dispatch([&] {
    // Inside a's closure: b's closure is queued, not run on this stack.
    b->Dispatch([&] { order.push_back(2); });
    order.push_back(1);
  });
  EXPECT_EQ(order, (std::vector<int>{1}));
  io.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(SerialTest, WorkQueuedDuringAnInlineRunGoesToTheIoThread) {
  asio::io_context io;
  auto serial = std::make_shared<Serial>(OnIo(io));
  std::vector<int> order;
  serial->Dispatch([&] {
    serial->Post([&] { order.push_back(2); });
    order.push_back(1);
  });
  EXPECT_EQ(order, (std::vector<int>{1}));
  io.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(SerialTest, ClosuresNeverOverlapAcrossThreads) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> io_threads;
  for (int i = 0; i < 2; ++i) io_threads.emplace_back([&] { io.run(); });
  auto serial = std::make_shared<Serial>(OnIo(io));
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  int count = 0;  // touched only inside the serial
  constexpr int kPerThread = 20000;
  auto body = [&] {
    if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
    ++count;
    inside.fetch_sub(1);
  };
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if ((i + t) % 2 == 0) {
          serial->Dispatch(body);
        } else {
          serial->Post(body);
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  std::promise<int> total;
  serial->Post([&] { total.set_value(count); });
  EXPECT_EQ(total.get_future().get(), 4 * kPerThread);
  EXPECT_EQ(overlaps.load(), 0);
  work.reset();
  for (auto& t : io_threads) t.join();
}

TEST(SerialTest, ClosuresLeftWhenTheIoContextGoesAreDestroyed) {
  // A closure that holds the serial's owner must not keep it alive in a
  // cycle when the io_context is destroyed without running it.
  struct Owner {
    std::shared_ptr<Serial> serial;
  };
  std::weak_ptr<Owner> watch;
  {
    asio::io_context io;
    auto owner = std::make_shared<Owner>();
    owner->serial = std::make_shared<Serial>(OnIo(io));
    watch = owner;
    owner->serial->Post([owner] {});
    owner.reset();
    EXPECT_FALSE(watch.expired());  // held by the queued closure
  }
  EXPECT_TRUE(watch.expired());
}

TEST(InlineCompletionScopeTest, OffersOnlyInsideAScopeThatSaysSoAndNests) {
  EXPECT_FALSE(InlineCompletionAllowed());
  {
    InlineCompletionScope alone(true);
    EXPECT_TRUE(InlineCompletionAllowed());
    {
      InlineCompletionScope busy(false);
      EXPECT_FALSE(InlineCompletionAllowed());
    }
    EXPECT_TRUE(InlineCompletionAllowed());
    bool elsewhere = true;
    std::thread([&elsewhere] { elsewhere = InlineCompletionAllowed(); }).join();
    EXPECT_FALSE(elsewhere);  // per thread
  }
  EXPECT_FALSE(InlineCompletionAllowed());
}

TEST(InlineCompletionScopeTest, ABusyOfferIsNotAnIdleOne) {
  EXPECT_EQ(InlineCompletionOffered(), InlineOffer::kNone);
  {
    InlineCompletionScope busy(InlineOffer::kBusy);
    EXPECT_EQ(InlineCompletionOffered(), InlineOffer::kBusy);
    EXPECT_FALSE(InlineCompletionAllowed());
    {
      InlineCompletionScope idle(InlineOffer::kIdle);
      EXPECT_EQ(InlineCompletionOffered(), InlineOffer::kIdle);
      EXPECT_TRUE(InlineCompletionAllowed());
    }
    EXPECT_EQ(InlineCompletionOffered(), InlineOffer::kBusy);
  }
  EXPECT_EQ(InlineCompletionOffered(), InlineOffer::kNone);
}

}  // namespace
}  // namespace dtx::internal
