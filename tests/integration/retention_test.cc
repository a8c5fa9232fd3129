// Retention (Options::finished_data_expire, data_expire) through the
// embedded coordinator, on a real SQLite journal and real branch services,
// with a FakeClock: finished transactions go once old enough, unfinished ones
// never, and a week of steady load keeps the journal file bounded.

#include "coordinator_test_util.h"

#include <gmock/gmock.h>

#include <filesystem>
#include <map>

namespace dtx::testing {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

class RetentionTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    options_.finished_data_expire = hours(24);
    // Only the run at Open and the test's own PurgeFinished calls: the
    // timer's (real time) never fires during a test.
    options_.retention_interval = hours(24);
    CoordinatorTest::SetUp();
    // Every 10th TransIn fails (the saga compensates and ends failed).
    auto calls = std::make_shared<std::atomic<int>>(0);
    busi_->SetHandler("/busi.Busi/TransIn", [calls](const ReceivedCall&) {
      return ++*calls % 10 == 0 ? Failure() : Ok();
    });
  }

  // A saga run to its end, its final status durable before the test moves
  // the clock: the coordinator queues final statuses without waiting for
  // them, and the journal stamps a write's time when it applies it (a Query
  // waits for what is queued).
  Status TwoSteps(const std::string& gid) {
    Status s = Saga(*dtm_, gid)
                   .Add(Url("/busi.Busi/TransOut"),
                        Url("/busi.Busi/TransOutRevert"), std::string(200, 'o'))
                   .Add(Url("/busi.Busi/TransIn"),
                        Url("/busi.Busi/TransInRevert"), std::string(200, 'i'))
                   .WaitResult(true)
                   .Submit();
    EXPECT_OK(dtm_->Query(gid).status());
    return s;
  }

  // A saga whose first step answers an error for ever: never finishes.
  Status Stuck(const std::string& gid) {
    return Saga(*dtm_, gid)
        .Add(Url("/busi.Busi/Down"), Url("/busi.Busi/DownRevert"), "x")
        .Submit();
  }

  // Runs retention now. What it removes is checked by what is left: the
  // run at Open (on the coordinator's own thread, at the clock's time then)
  // may take some first.
  void Purge() { ASSERT_OK(dtm_->PurgeFinished().status()); }

  bool Exists(const std::string& gid) {
    auto t = dtm_->Query(gid);
    EXPECT_TRUE(t.ok() || t.status().code() == StatusCode::kNotFound)
        << t.status();
    return t.ok();
  }

  // The bytes on disk of the journal's file (suffix "") or its WAL
  // ("-wal").
  std::uintmax_t FileBytes(const char* suffix) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(dir_.File("dtx.db") + suffix, ec);
    return ec ? 0 : n;
  }
  std::uintmax_t JournalBytes() { return FileBytes("") + FileBytes("-wal"); }
};

TEST_F(RetentionTest, FinishedTransactionsGoOnceOldEnoughUnfinishedNever) {
  Script("/busi.Busi/Down", {Error()});
  ASSERT_OK(TwoSteps("r-done"));
  ASSERT_OK(Stuck("r-stuck"));
  dtm_->WaitIdle();
  EXPECT_EQ(Global("r-done").status, TransStatus::kSucceed);

  // Not yet a day old: nothing goes.
  clock_.Advance(hours(23));
  Purge();
  EXPECT_TRUE(Exists("r-done"));

  clock_.Advance(hours(2));
  ASSERT_OK(dtm_->RunDue());
  Purge();
  EXPECT_FALSE(Exists("r-done"));
  EXPECT_TRUE(Exists("r-stuck"));
  EXPECT_NE(Global("r-stuck").status, TransStatus::kSucceed);

  // A month on, still retried and still kept.
  for (int day = 0; day < 30; ++day) Later(hours(24));
  Purge();
  EXPECT_TRUE(Exists("r-stuck"));

  // Once it finishes, its day starts.
  Script("/busi.Busi/Down", {Ok()});
  Later(hours(24));
  EXPECT_EQ(Global("r-stuck").status, TransStatus::kSucceed);
  clock_.Advance(hours(23));
  Purge();
  EXPECT_TRUE(Exists("r-stuck"));
  clock_.Advance(hours(2));
  Purge();
  EXPECT_FALSE(Exists("r-stuck"));
}

TEST_F(RetentionTest, AGidRemovedCanBeUsedAgain) {
  ASSERT_OK(TwoSteps("r-again"));
  clock_.Advance(hours(25));
  Purge();
  EXPECT_FALSE(Exists("r-again"));
  ASSERT_OK(TwoSteps("r-again"));
  EXPECT_EQ(Global("r-again").status, TransStatus::kSucceed);
  EXPECT_EQ(BranchStatuses("r-again").size(), 4u);
}

TEST_F(RetentionTest, RunsAtOpenWithoutBeingAsked) {
  ASSERT_OK(TwoSteps("r-open"));
  clock_.Advance(hours(25));
  Reopen();  // retention runs once at Open, then every retention_interval
  for (int i = 0; i < 2000 && Exists("r-open"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(Exists("r-open"));
}

TEST_F(RetentionTest, OffKeepsEverything) {
  options_.finished_data_expire = seconds(0);
  Reopen();
  ASSERT_OK(TwoSteps("r-kept"));
  clock_.Advance(hours(24 * 365));
  ASSERT_OK_AND_ASSIGN(std::size_t removed, dtm_->PurgeFinished());
  EXPECT_EQ(removed, 0u);  // both rules off: not even looked at
  EXPECT_TRUE(Exists("r-kept"));
}

TEST_F(RetentionTest, DataExpireCountsFromCreation) {
  options_.finished_data_expire = seconds(0);
  options_.data_expire = hours(48);
  Reopen();
  Script("/busi.Busi/Down", {Error(), Ok()});
  ASSERT_OK(Stuck("r-late"));  // created now, finishes a day later
  ASSERT_OK(TwoSteps("r-early"));
  dtm_->WaitIdle();  // r-late's first call made (and failed)
  Later(hours(24));
  EXPECT_EQ(Global("r-late").status, TransStatus::kSucceed);  // durable now
  clock_.Advance(hours(23));  // 47 h after creation
  Purge();
  EXPECT_TRUE(Exists("r-early"));
  EXPECT_TRUE(Exists("r-late"));
  clock_.Advance(hours(2));  // 49 h after creation, 25 h after r-late ended
  Purge();
  EXPECT_FALSE(Exists("r-early"));
  EXPECT_FALSE(Exists("r-late"));
}

// A week of steady load, an hour at a time: 30 sagas an hour (a tenth of
// them compensated), due work and retention run each hour, finished
// transactions kept a day. Once the first day's transactions start to go,
// their pages are reused: the file stops growing.
TEST_F(RetentionTest, AWeekOfSteadyLoadKeepsTheJournalBounded) {
#ifdef NDEBUG
  constexpr int kPerHour = 30;
#else
  constexpr int kPerHour = 10;  // Debug and sanitizer builds: a third
#endif
  std::uintmax_t after_two_days = 0;
  std::size_t removed_total = 0;
  int n = 0;
  Script("/busi.Busi/Down", {Error()});
  ASSERT_OK(Stuck("r-week-stuck"));
  for (int hour = 0; hour < 7 * 24; ++hour) {
    for (int i = 0; i < kPerHour; ++i) {
      const Status s = TwoSteps("r-week-" + std::to_string(n++));
      ASSERT_TRUE(s.ok() || s.code() == StatusCode::kAborted) << s;
    }
    Later(hours(1));
    ASSERT_OK_AND_ASSIGN(std::size_t removed, dtm_->PurgeFinished());
    removed_total += removed;
    if (hour == 2 * 24 - 1) after_two_days = JournalBytes();
  }
  const std::uintmax_t after_a_week = JournalBytes();
  // A day's worth (and the hour in hand) is what stays.
  const std::vector<GlobalTrans> left = AllTransactions();
  EXPECT_LE(left.size(), std::size_t{25 * kPerHour + 1});
  EXPECT_GE(left.size(), std::size_t{24 * kPerHour});
  EXPECT_EQ(removed_total + left.size(), std::size_t(n) + 1);
  EXPECT_TRUE(Exists("r-week-stuck"));
  ::testing::Test::RecordProperty("journal_bytes_after_two_days",
                                  std::to_string(after_two_days));
  ::testing::Test::RecordProperty("journal_bytes_after_a_week",
                                  std::to_string(after_a_week));
  std::printf(
      "journal after two days: %ju bytes, after a week: %ju bytes "
      "(file %ju + WAL %ju; %d sagas, %zu removed, %zu kept)\n",
      after_two_days, after_a_week, FileBytes(""), FileBytes("-wal"), n,
      removed_total, left.size());
  // The stated bound (docs/journal.md): after the first day the file does
  // not grow by more than a tenth, however long the load lasts.
  EXPECT_LE(after_a_week, after_two_days + after_two_days / 10);
}

}  // namespace
}  // namespace dtx::testing
