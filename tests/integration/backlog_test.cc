// Recovery without a stampede (issue #19 item 3) through the embedded
// coordinator on a real SQLite journal and real gRPC branch services:
// Options::max_calls_per_target caps the calls in flight to one service,
// Options::max_in_memory the due transactions taken from the journal at
// once, and RetryPolicy::jitter spreads retries after an error.

#include "coordinator_test_util.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Counts the calls a handler is inside at once.
class Concurrency {
 public:
  TestHandler Handler(milliseconds hold, std::atomic<bool>* down = nullptr) {
    return [this, hold, down](const ReceivedCall&) {
      if (down != nullptr && down->load()) {
        return TestReply::Status(14, "down");
      }
      const int now = ++inside_;
      int seen = max_.load();
      while (now > seen && !max_.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(hold);
      --inside_;
      ++served_;
      return TestReply::Ok();
    };
  }
  int max() const { return max_.load(); }
  int served() const { return served_.load(); }

 private:
  std::atomic<int> inside_{0};
  std::atomic<int> max_{0};
  std::atomic<int> served_{0};
};

class BacklogTest : public CoordinatorTest {
 protected:
  Status Start(const std::string& gid) {
    return Saga(*dtm_, gid)
        .Add(Url("/busi.Busi/Slow"), Url("/busi.Busi/SlowRevert"), "x")
        .Submit();
  }
  bool AllSucceeded(int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) {
      auto t = dtm_->Query(prefix + std::to_string(i));
      if (!t.ok() || t->trans.status != TransStatus::kSucceed) return false;
    }
    return true;
  }
  void WaitAllSucceeded(int n, const std::string& prefix) {
    for (int i = 0; i < 3000 && !AllSucceeded(n, prefix); ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_TRUE(AllSucceeded(n, prefix));
  }
  Concurrency busy_;
};

TEST_F(BacklogTest, CallsToOneTargetAreCappedAndQueuedNotDropped) {
  options_.max_calls_per_target = 2;
  Reopen();
  busi_->SetHandler("/busi.Busi/Slow", busy_.Handler(milliseconds(30)));
  constexpr int kSagas = 12;
  for (int i = 0; i < kSagas; ++i) ASSERT_OK(Start("cap-" + std::to_string(i)));
  WaitAllSucceeded(kSagas, "cap-");
  // Never more than two at once, and two at once did happen (the cap, not
  // the server, limited them).
  EXPECT_EQ(busy_.max(), 2);
  EXPECT_EQ(busy_.served(), kSagas);  // every call made once: no timeouts
}

TEST_F(BacklogTest, DueWorkBeyondMaxInMemoryWaitsInTheJournal) {
  options_.max_in_memory = 3;
  options_.max_calls_per_target = 0;  // only the in-memory cap
  Reopen();
  std::atomic<bool> down{true};
  busi_->SetHandler("/busi.Busi/Slow", busy_.Handler(milliseconds(30), &down));
  constexpr int kSagas = 15;
  // The service is down: every saga's first call fails, and all are due
  // again later, in the journal.
  for (int i = 0; i < kSagas; ++i) ASSERT_OK(Start("mem-" + std::to_string(i)));
  dtm_->WaitIdle();
  down = false;
  // The service is back; all are due at once.
  clock_.Advance(seconds(3600));
  ASSERT_OK(dtm_->RunDue());
  WaitAllSucceeded(kSagas, "mem-");
  // At most three transactions were being worked on at once.
  EXPECT_LE(busy_.max(), 3);
  EXPECT_GE(busy_.max(), 2);
  EXPECT_EQ(busy_.served(), kSagas);
}

TEST_F(BacklogTest, RetriesAfterAnErrorAreSpreadByTheJitter) {
  options_.retry.jitter = 0.5;
  Reopen();
  Script("/busi.Busi/Slow", {Error()});
  const TimePoint start = clock_.Now();
  constexpr int kSagas = 20;
  for (int i = 0; i < kSagas; ++i) ASSERT_OK(Start("jit-" + std::to_string(i)));
  dtm_->WaitIdle();
  std::set<int64_t> due;
  for (int i = 0; i < kSagas; ++i) {
    const GlobalTrans t = Global("jit-" + std::to_string(i));
    // The interval is dtm's doubling (10 s, then 20 s); the due time is up
    // to half of it later.
    EXPECT_EQ(t.next_cron_interval, seconds(20));
    EXPECT_GE(t.next_cron_time, start + seconds(20));
    EXPECT_LT(t.next_cron_time, start + seconds(30));
    due.insert(ToUnixMillis(t.next_cron_time));
  }
  EXPECT_GT(due.size(), std::size_t{kSagas / 2}) << "not spread";
}

TEST_F(BacklogTest, OngoingKeepsItsIntervalExactlyWithJitter) {
  options_.retry.jitter = 0.5;
  Reopen();
  Script("/busi.Busi/Slow", {Ongoing()});
  const TimePoint start = clock_.Now();
  ASSERT_OK(Start("ongoing-0"));
  dtm_->WaitIdle();
  EXPECT_EQ(Global("ongoing-0").next_cron_time, start + seconds(10));
}

}  // namespace
}  // namespace dtx::testing
