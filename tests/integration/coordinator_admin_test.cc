// Query, List, ForceStop, RetryNow, restart and shutdown of the coordinator.

#include "coordinator_test_util.h"
#include "gated_journal.h"

#include <gmock/gmock.h>

#include <array>
#include <atomic>
#include <future>
#include <string_view>
#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::seconds;

class CoordinatorAdminTest : public CoordinatorTest {};

class ShutdownRaceTest : public CoordinatorAdminTest {
 protected:
  void SetUp() override {
    GateJournals();
    CoordinatorAdminTest::SetUp();
  }
};

TEST_F(ShutdownRaceTest, ASubmitWrittenAfterShutdownBeganResumesLater) {
  // The saga is made durable, but the coordinator shuts down before its
  // completion runs: the caller learns that, the coordinator can be destroyed
  // at once, and the saga finishes under the next coordinator.
  gated_->hold_completion = true;
  Status submitted;
  std::thread caller([&] {
    submitted = Saga(*dtm_, "race-durable")
                    .Add(Url("/busi.Busi/TransOut"), "", "")
                    .WaitResult(true)
                    .Submit();
  });
  gated_->reached.get_future().wait();
  std::thread stopper([&] { dtm_->Shutdown(); });
  // Shutdown is under way (it waits for the held completion).
  while (dtm_->NewGid().ok()) std::this_thread::yield();
  gated_->completion_gate.set_value();
  stopper.join();
  caller.join();
  EXPECT_THAT(submitted,
              StatusIs(StatusCode::kUnavailable, "is in the journal"));
  dtm_.reset();
  EXPECT_TRUE(busi_->Calls().empty());

  Open();
  Settle();
  EXPECT_EQ(Global("race-durable").status, TransStatus::kSucceed);
  EXPECT_EQ(busi_->Calls().size(), 1u);
}

TEST_F(ShutdownRaceTest, ASubmitQueuedAfterShutdownWritesNothing) {
  // The caller passed the open check, then the coordinator shut down
  // entirely before the write was queued.
  gated_->hold_queue = true;
  Status submitted;
  std::thread caller(
      [&] { submitted = Saga(*dtm_, "race-late").Add("", "", "").Submit(); });
  gated_->reached.get_future().wait();
  dtm_->Shutdown();
  gated_->queue_gate.set_value();
  caller.join();
  EXPECT_THAT(submitted, StatusIs(StatusCode::kUnavailable, "shut down"));
  dtm_.reset();  // nothing of the late write may run after this
  Open();
  EXPECT_THAT(dtm_->Query("race-late"), StatusIs(StatusCode::kNotFound));
}

TEST_F(CoordinatorAdminTest, NewGidsAreDtmStyle) {
  auto gid = dtm_->NewGid();
  ASSERT_OK(gid);
  EXPECT_EQ(gid->size(), 22u);
  EXPECT_NE(*gid, *dtm_->NewGid());
}

TEST_F(CoordinatorAdminTest, QueryUnknownIsNotFound) {
  EXPECT_THAT(dtm_->Query("nope"), StatusIs(StatusCode::kNotFound));
}

TEST_F(CoordinatorAdminTest, ListFiltersByStatus) {
  Script("/busi.Busi/Stuck", {Error()});
  ASSERT_OK(Saga(*dtm_, "l-ok").Add("", "", "").WaitResult(true).Submit());
  ASSERT_OK(
      Saga(*dtm_, "l-stuck").Add(Url("/busi.Busi/Stuck"), "", "").Submit());
  dtm_->WaitIdle();
  ListQuery q;
  q.status = TransStatus::kSubmitted;
  auto page = dtm_->List(q);
  ASSERT_OK(page);
  ASSERT_EQ(page->transactions.size(), 1u);
  EXPECT_EQ(page->transactions[0].gid, "l-stuck");
}

TEST_F(CoordinatorAdminTest, ForceStopFailsWithoutCallingBranches) {
  Script("/busi.Busi/Stuck", {Error()});
  ASSERT_OK(Saga(*dtm_, "fs")
                .Add(Url("/busi.Busi/Stuck"), Url("/busi.Busi/Undo"), "")
                .Submit());
  dtm_->WaitIdle();
  ASSERT_OK(dtm_->ForceStop("fs"));
  EXPECT_EQ(Global("fs").status, TransStatus::kFailed);
  EXPECT_THAT(dtm_->ForceStop("fs"), StatusIs(StatusCode::kAborted));
  Later(seconds(3600));
  EXPECT_EQ(busi_->CallCount("/busi.Busi/Undo"), 0u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/Stuck"), 1u);
  EXPECT_THAT(dtm_->ForceStop("ghost"), StatusIs(StatusCode::kNotFound));
}

TEST_F(CoordinatorAdminTest, RetryNowMakesItDueAtOnce) {
  Script("/busi.Busi/Flaky", {Error(), Ok()});
  ASSERT_OK(Saga(*dtm_, "rn").Add(Url("/busi.Busi/Flaky"), "", "").Submit());
  dtm_->WaitIdle();
  ASSERT_OK(dtm_->RetryNow("rn"));
  ASSERT_OK(dtm_->RunDue());
  EXPECT_EQ(Global("rn").status, TransStatus::kSucceed);
}

TEST_F(CoordinatorAdminTest, RetryNowOfAFinishedOrUnknownGidSaysSo) {
  ASSERT_OK(Saga(*dtm_, "rn-done").Add("", "", "").WaitResult(true).Submit());
  // Still in memory while its final status is written, then from the
  // journal: the same answer.
  EXPECT_THAT(dtm_->RetryNow("rn-done"),
              StatusIs(StatusCode::kAborted, "is succeed"));
  dtm_->WaitIdle();
  EXPECT_THAT(dtm_->RetryNow("rn-done"),
              StatusIs(StatusCode::kAborted, "is succeed"));
  EXPECT_THAT(dtm_->RetryNow("ghost"), StatusIs(StatusCode::kNotFound));
}

// A Logger that stops the thread logging a line containing `needle` (once,
// when armed) until the test opens the gate: here, the strand of a
// transaction leaving memory, between marking itself evicted and leaving
// the coordinator's map.
class GateOnLogLine final : public Logger {
 public:
  explicit GateOnLogLine(std::string needle) : needle_(std::move(needle)) {}
  bool ShouldLog(LogLevel) const override { return true; }
  void Log(LogLevel, std::string_view message) override {
    if (message.find(needle_) == std::string_view::npos) return;
    if (!armed.exchange(false)) return;
    reached.set_value();
    gate.get_future().wait();
  }
  std::atomic<bool> armed{false};
  std::promise<void> reached, gate;

 private:
  const std::string needle_;
};

class RetryNowRaceTest : public CoordinatorAdminTest {
 protected:
  void SetUp() override {
    gate_ = std::make_shared<GateOnLogLine>(
        "gid=rn-race submitted, waiting until next retry");
    logger_ = gate_;
    CoordinatorAdminTest::SetUp();
  }
  std::shared_ptr<GateOnLogLine> gate_;
};

TEST_F(RetryNowRaceTest, ATransactionLeavingMemoryForItsBackOffStillRunsNow) {
  // The first call fails; the transaction writes its back-off and leaves
  // memory. RetryNow finds it still in memory, but it is gone when the
  // request reaches its strand: the request must then make it due through
  // the journal instead of answering OK and doing nothing.
  Script("/busi.Busi/Flaky", {Error(), Ok()});
  gate_->armed = true;
  ASSERT_OK(
      Saga(*dtm_, "rn-race").Add(Url("/busi.Busi/Flaky"), "", "").Submit());
  gate_->reached.get_future().wait();
  std::promise<Status> retried;
  dtm_->RetryNowAsync("rn-race",
                      [&](Status s) { retried.set_value(std::move(s)); });
  gate_->gate.set_value();
  ASSERT_OK(retried.get_future().get());
  // No clock movement: only retry-now makes it due.
  ASSERT_OK(dtm_->RunDue());
  EXPECT_EQ(busi_->CallCount("/busi.Busi/Flaky"), 2u);
  EXPECT_EQ(Global("rn-race").status, TransStatus::kSucceed);
}

TEST_F(CoordinatorAdminTest, RetryNowRunsATransactionWaitingForItsBackOff) {
  // Out of memory and not due (the clock does not move): retry-now calls
  // its branch again now, and the attempts are recorded.
  Script("/busi.Busi/Down", {Error(), Error(), Ok()});
  ASSERT_OK(
      Saga(*dtm_, "rn-wait").Add(Url("/busi.Busi/Down"), "", "").Submit());
  dtm_->WaitIdle();
  ASSERT_OK(dtm_->RunDue());
  EXPECT_EQ(busi_->CallCount("/busi.Busi/Down"), 1u);
  ASSERT_OK(dtm_->RetryNow("rn-wait"));
  ASSERT_OK(dtm_->RunDue());
  EXPECT_EQ(busi_->CallCount("/busi.Busi/Down"), 2u);
  ASSERT_OK_AND_ASSIGN(auto t, dtm_->Query("rn-wait"));
  ASSERT_EQ(t.branches.size(), 2u);
  EXPECT_EQ(t.branches[1].attempts, 2);
  EXPECT_THAT(t.branches[1].last_error, ::testing::HasSubstr("TRANSIENT"));
  EXPECT_EQ(t.trans.status, TransStatus::kSubmitted);
  ASSERT_OK(dtm_->RetryNow("rn-wait"));
  ASSERT_OK(dtm_->RunDue());
  EXPECT_EQ(Global("rn-wait").status, TransStatus::kSucceed);
}

TEST_F(CoordinatorAdminTest, StatsCountEveryStatusAndTheUnfinished) {
  ASSERT_OK_AND_ASSIGN(TransStats empty, dtm_->Stats());
  EXPECT_EQ(empty.counts.by_status, (std::array<int64_t, 5>{}));
  EXPECT_EQ(empty.unfinished.unfinished, 0);
  EXPECT_FALSE(empty.unfinished.oldest_create_time.has_value());

  Script("/busi.Busi/Stuck", {Error()});
  const TimePoint first = clock_.Now();
  ASSERT_OK(
      Saga(*dtm_, "st-stuck").Add(Url("/busi.Busi/Stuck"), "", "").Submit());
  ASSERT_OK(Saga(*dtm_, "st-ok").Add("", "", "").WaitResult(true).Submit());
  ASSERT_OK(
      Saga(*dtm_, "st-stop").Add(Url("/busi.Busi/Stuck"), "", "").Submit());
  dtm_->WaitIdle();
  ASSERT_OK(dtm_->ForceStop("st-stop"));
  // Outcomes told to callers count at once (lazy writes are flushed first).
  ASSERT_OK_AND_ASSIGN(TransStats s, dtm_->Stats());
  EXPECT_EQ(s.counts[TransStatus::kSubmitted], 1);
  EXPECT_EQ(s.counts[TransStatus::kSucceed], 1);
  EXPECT_EQ(s.counts[TransStatus::kFailed], 1);
  EXPECT_EQ(s.unfinished.unfinished, 1);
  EXPECT_EQ(s.unfinished.due, 0);
  EXPECT_EQ(s.unfinished.oldest_create_time, first);
  clock_.Advance(seconds(3600));
  ASSERT_OK_AND_ASSIGN(s, dtm_->Stats());
  EXPECT_EQ(s.unfinished.due, 1);
}

TEST_F(CoordinatorAdminTest, ListPagesAreAtMostAThousand) {
  // Rows written straight to the journal file, as another process would.
  SqliteJournalOptions jo;
  jo.path = dir_.File("dtx.db");
  jo.clock = &clock_;
  jo.synchronous = SqliteJournalOptions::Sync::kNormal;
  ASSERT_OK_AND_ASSIGN(auto other, SqliteJournal::Open(jo));
  std::vector<std::future<Status>> saved;
  for (int i = 0; i < 1005; ++i) {
    GlobalTrans t;
    t.gid = "many-" + std::to_string(i);
    t.status = TransStatus::kSucceed;
    t.create_time = clock_.Now();
    auto p = std::make_shared<std::promise<Status>>();
    saved.push_back(p->get_future());
    other->SaveNew(t, {}, [p](Status s) { p->set_value(s); });
  }
  for (auto& f : saved) ASSERT_OK(f.get());
  other->Close();
  ListQuery q;
  q.limit = 5000;
  ASSERT_OK_AND_ASSIGN(ListPage page, dtm_->List(q));
  EXPECT_EQ(page.transactions.size(), kMaxListLimit);
  EXPECT_NE(page.next_cursor, 0);
  q.cursor = page.next_cursor;
  ASSERT_OK_AND_ASSIGN(page, dtm_->List(q));
  EXPECT_EQ(page.transactions.size(), 5u);
  q = ListQuery{};
  q.limit = 0;
  ASSERT_OK_AND_ASSIGN(page, dtm_->List(q));
  EXPECT_EQ(page.transactions.size(), kDefaultListLimit);
}

TEST_F(CoordinatorAdminTest, UnfinishedWorkResumesAfterRestart) {
  Script("/busi.Busi/TransIn", {Error(), Ok()});
  ASSERT_OK(Saga(*dtm_, "resume")
                .Add(Url("/busi.Busi/TransOut"), "", "")
                .Add(Url("/busi.Busi/TransIn"), "", "")
                .Submit());
  dtm_->WaitIdle();
  Reopen();
  Later(seconds(20));
  EXPECT_EQ(Global("resume").status, TransStatus::kSucceed);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
}

TEST_F(CoordinatorAdminTest, ShutdownRefusesNewWork) {
  dtm_->Shutdown();
  dtm_->Shutdown();
  EXPECT_THAT(Saga(*dtm_, "late").Add("", "", "").Submit(),
              StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(dtm_->NewGid(), StatusIs(StatusCode::kUnavailable));
}

TEST_F(CoordinatorAdminTest, UnsupportedModesAreClearErrors) {
  TransRequest req;
  req.gid = "xa-1";
  req.trans_type = TransType::kXa;
  EXPECT_THAT(dtm_->Submit(req),
              StatusIs(StatusCode::kUnimplemented, "does not support xa"));
  EXPECT_THAT(dtm_->Prepare(req), StatusIs(StatusCode::kUnimplemented));
  req.trans_type = TransType::kWorkflow;  // a workflow's Submit says how
  EXPECT_THAT(dtm_->Submit(req),
              StatusIs(StatusCode::kInvalidArgument, "req_extra status"));
  req.trans_type = TransType::kSaga;
  EXPECT_THAT(dtm_->Prepare(req),
              StatusIs(StatusCode::kInvalidArgument, "no prepare phase"));
}

// Two coordinators (as two processes would) share one journal: each due
// transaction is processed by exactly one of them.
TEST_F(CoordinatorAdminTest,
       TwoCoordinatorsSharingAJournalNeverBothProcessOne) {
  constexpr int kSagas = 40;
  for (int i = 0; i < kSagas; ++i) {
    // Each saga's first call answers ONGOING; the retry succeeds.
    busi_->SetHandler(
        "/busi.Busi/Step" + std::to_string(i),
        [n = std::make_shared<std::atomic<int>>(0)](const ReceivedCall&) {
          return (*n)++ == 0 ? Ongoing() : Ok();
        });
    ASSERT_OK(Saga(*dtm_, "two-" + std::to_string(i))
                  .Add(Url("/busi.Busi/Step" + std::to_string(i)), "", "")
                  .Submit());
  }
  dtm_->WaitIdle();

  std::unique_ptr<Coordinator> other = NewCoordinator();
  ASSERT_NE(other, nullptr);

  clock_.Advance(seconds(10));
  std::thread a([&] { EXPECT_OK(dtm_->RunDue()); });
  std::thread b([&] { EXPECT_OK(other->RunDue()); });
  a.join();
  b.join();
  for (int i = 0; i < kSagas; ++i) {
    EXPECT_EQ(busi_->CallCount("/busi.Busi/Step" + std::to_string(i)), 2u) << i;
    EXPECT_EQ(Global("two-" + std::to_string(i)).status, TransStatus::kSucceed)
        << i;
  }
  other->Shutdown();
}

}  // namespace
}  // namespace dtx::testing
