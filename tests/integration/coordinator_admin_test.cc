// Query, List, ForceStop, RetryNow, restart and shutdown of the coordinator.

#include "coordinator_test_util.h"
#include "gated_journal.h"

#include <gmock/gmock.h>

#include <atomic>
#include <future>
#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::seconds;

class CoordinatorAdminTest : public CoordinatorTest {};

class ShutdownRaceTest : public CoordinatorAdminTest {
 protected:
  void SetUp() override {
    wrap_journal_ = [this](std::unique_ptr<Journal> j) {
      auto gated = std::make_unique<GatedJournal>(std::move(j));
      gated_ = gated.get();
      return gated;
    };
    CoordinatorAdminTest::SetUp();
  }
  GatedJournal* gated_ = nullptr;  // of the coordinator opened last
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
  req.trans_type = TransType::kWorkflow;
  EXPECT_THAT(dtm_->Submit(req), StatusIs(StatusCode::kUnimplemented));
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
