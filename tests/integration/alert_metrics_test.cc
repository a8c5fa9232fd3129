// What the coordinator reports about branches that keep failing (AlertSink,
// Options::alert_retry_limit) and about its journal's backlog (the
// dtx_transactions_* gauges), against real branch services and a real
// journal, with a FakeClock.

#include "dtx/alert_sink.h"
#include "dtx/internal/mutex.h"
#include "dtx/metrics.h"

#include "coordinator_test_util.h"

#include <gmock/gmock.h>

#include <chrono>
#include <thread>
#include <vector>

namespace dtx::testing {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

// Keeps every alert it is given.
class RecordingSink final : public AlertSink {
 public:
  void Report(BranchAlert alert) override {
    internal::MutexLock lock(&mu_);
    alerts_.push_back(std::move(alert));
  }
  std::vector<BranchAlert> alerts() {
    internal::MutexLock lock(&mu_);
    return alerts_;
  }

 private:
  internal::Mutex mu_;
  std::vector<BranchAlert> alerts_ DTX_GUARDED_BY(mu_);
};

class AlertTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    alerts_ = &sink_;
    options_.alert_retry_limit = 2;
    CoordinatorTest::SetUp();
  }
  void TearDown() override {
    CoordinatorTest::TearDown();
    dtm_.reset();  // before the sink it reports to
  }

  // Runs due work an hour at a time (past any back-off) `n` times.
  void Retries(int n) {
    for (int i = 0; i < n; ++i) Later(seconds(3600));
  }

  RecordingSink sink_;
};

TEST_F(AlertTest, OnceAtEachThresholdWhileABranchKeepsFailing) {
  // Calls 1-5 fail, the 6th succeeds: alerts at calls 2 and 4 only.
  Script("/busi.Busi/TransOut",
         {Error(), Error(), Error(), Error(), Error(), Ok()});
  ASSERT_OK(Saga(*dtm_, "alert-saga")
                .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/Revert"), "o")
                .Submit());
  dtm_->WaitIdle();
  EXPECT_TRUE(sink_.alerts().empty());  // one failed call: below the limit
  Retries(5);
  EXPECT_EQ(Global("alert-saga").status, TransStatus::kSucceed);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 6u);
  const std::vector<BranchAlert> alerts = sink_.alerts();
  ASSERT_EQ(alerts.size(), 2u);
  const BranchAlert& a = alerts[0];
  EXPECT_EQ(a.gid, "alert-saga");
  EXPECT_EQ(a.trans_type, TransType::kSaga);
  EXPECT_EQ(a.status, TransStatus::kSubmitted);
  EXPECT_EQ(a.branch_url, Url("/busi.Busi/TransOut"));
  EXPECT_EQ(a.branch_id, "01");
  EXPECT_EQ(a.op, BranchOp::kAction);
  EXPECT_EQ(a.error, "TRANSIENT: busi unavailable");
  EXPECT_EQ(a.retry_count, 2);
  EXPECT_EQ(a.threshold, 2);
  EXPECT_EQ(alerts[1].retry_count, 4);
  EXPECT_EQ(alerts[1].threshold, 4);
  // The journal's attempts agree with what was reported.
  auto t = dtm_->Query("alert-saga");
  ASSERT_OK(t);
  EXPECT_EQ(t->branches[1].attempts, 6);
}

TEST_F(AlertTest, TwoFailingBranchesOfOneTransactionAlertOnce) {
  Script("/busi.Busi/A", {Error(), Error(), Error(), Ok()});
  Script("/busi.Busi/B", {Error(), Error(), Error(), Ok()});
  ASSERT_OK(Msg(*dtm_, "alert-msg")
                .Add(Url("/busi.Busi/A"), "a")
                .Add(Url("/busi.Busi/B"), "b")
                .EnableConcurrent()
                .Submit());
  dtm_->WaitIdle();
  Retries(3);
  EXPECT_EQ(Global("alert-msg").status, TransStatus::kSucceed);
  // Both branches were called twice and three times, failing: one alert.
  const std::vector<BranchAlert> alerts = sink_.alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].gid, "alert-msg");
  EXPECT_EQ(alerts[0].threshold, 2);
  EXPECT_EQ(alerts[0].op, BranchOp::kAction);
}

TEST_F(AlertTest, OngoingAndASagaActionFailureDoNotAlert) {
  options_.alert_retry_limit = 1;
  Reopen();
  Script("/busi.Busi/TransOut", {Ongoing(), Ongoing(), Ongoing(), Failure()});
  ASSERT_OK(Saga(*dtm_, "alert-quiet")
                .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/Revert"), "o")
                .Submit());
  dtm_->WaitIdle();
  Retries(4);
  EXPECT_EQ(Global("alert-quiet").status, TransStatus::kFailed);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 4u);
  // "Not yet" three times, then a FAILURE that decides the saga: nothing is
  // stuck, nothing is reported.
  EXPECT_TRUE(sink_.alerts().empty());
}

TEST_F(AlertTest, ACompensationThatKeepsFailingAlerts) {
  Script("/busi.Busi/TransOut", {Failure()});
  Script("/busi.Busi/Revert", {Error(), Error(), Ok()});
  ASSERT_OK(Saga(*dtm_, "alert-revert")
                .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/Revert"), "o")
                .Submit());
  dtm_->WaitIdle();
  Retries(2);
  EXPECT_EQ(Global("alert-revert").status, TransStatus::kFailed);
  const std::vector<BranchAlert> alerts = sink_.alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].op, BranchOp::kCompensate);
  EXPECT_EQ(alerts[0].status, TransStatus::kAborting);
  EXPECT_EQ(alerts[0].retry_count, 2);
}

TEST_F(AlertTest, ARestartForgetsWhatWasReported) {
  Script("/busi.Busi/TransOut", {Error(), Error(), Error(), Ok()});
  ASSERT_OK(Saga(*dtm_, "alert-restart")
                .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/Revert"), "o")
                .Submit());
  dtm_->WaitIdle();
  Retries(1);
  ASSERT_EQ(sink_.alerts().size(), 1u);
  // In one process the third failed call would not alert (threshold 2 was
  // reported); a new process does not know that and reports it again.
  Reopen();
  Retries(2);
  EXPECT_EQ(Global("alert-restart").status, TransStatus::kSucceed);
  const std::vector<BranchAlert> alerts = sink_.alerts();
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[1].retry_count, 3);
  EXPECT_EQ(alerts[1].threshold, 2);
}

class JournalGaugesTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    metrics_ = &registry_;
    CoordinatorTest::SetUp();
  }
  void TearDown() override {
    CoordinatorTest::TearDown();
    dtm_.reset();  // before the registry it reports to
  }

  // Scrapes until `line` appears: the first scrape after the cache's max age
  // starts a refresh on the coordinator's read pool, later ones show it.
  bool ScrapeUntil(const std::string& line) {
    const auto until = std::chrono::steady_clock::now() + seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (registry_.RenderText().find("\n" + line + "\n") !=
          std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  MetricsRegistry registry_;
};

TEST_F(JournalGaugesTest, ReportTheBacklogAndTheJournalsWork) {
  Script("/busi.Busi/TransOut", {Error()});
  const TimePoint start = clock_.Now();
  ASSERT_OK(Saga(*dtm_, "gauge-saga")
                .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/Revert"), "o")
                .Submit());
  dtm_->WaitIdle();
  // As of Open: an empty journal.
  std::string text = registry_.RenderText();
  EXPECT_THAT(text, HasSubstr("\ndtx_transactions_unfinished 0\n"));
  EXPECT_THAT(text, HasSubstr("\ndtx_transactions_due 0\n"));
  EXPECT_THAT(text,
              HasSubstr("\ndtx_oldest_unfinished_transaction_age_seconds 0\n"));
  // Five seconds on, a scrape asks the journal again: one unfinished, not
  // due (its retry is 20 s after the failed call).
  clock_.Advance(seconds(5));
  EXPECT_TRUE(ScrapeUntil("dtx_transactions_unfinished 1"));
  EXPECT_THAT(registry_.RenderText(), HasSubstr("\ndtx_transactions_due 0\n"));
  // Past its retry time, and nobody runs it: the backlog shows it.
  clock_.Advance(seconds(30));
  EXPECT_TRUE(ScrapeUntil("dtx_transactions_due 1"));
  const double age =
      std::chrono::duration<double>(clock_.Now() - start).count();
  EXPECT_THAT(registry_.RenderText(),
              HasSubstr("\ndtx_oldest_unfinished_transaction_age_seconds " +
                        std::to_string(static_cast<int>(age)) + "\n"));
  // The journal's writer reported its commits.
  text = registry_.RenderText();
  EXPECT_THAT(text, ::testing::Not(HasSubstr(
                        "\ndtx_journal_commit_duration_seconds_count 0\n")));
  EXPECT_THAT(text,
              HasSubstr("\ndtx_journal_batch_writes_bucket{le=\"+Inf\"}"));
  EXPECT_THAT(text, HasSubstr("\ndtx_journal_queued_writes "));
}

}  // namespace
}  // namespace dtx::testing
