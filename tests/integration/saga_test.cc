// SAGA through the embedded coordinator (dtm-semantics.md §2.5, §2.6, §2.8,
// §2.9), against real branch services.

#include "coordinator_test_util.h"
#include "gated_journal.h"

#include <gmock/gmock.h>

#include <thread>
#include <vector>

namespace dtx::testing {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
constexpr auto P = BranchStatus::kPrepared;
constexpr auto S = BranchStatus::kSucceed;
constexpr auto F = BranchStatus::kFailed;

class SagaTest : public CoordinatorTest {
 protected:
  Saga TwoSteps(const std::string& gid) {
    return std::move(Saga(*dtm_, gid)
                         .Add(Url("/busi.Busi/TransOut"),
                              Url("/busi.Busi/TransOutRevert"), "out")
                         .Add(Url("/busi.Busi/TransIn"),
                              Url("/busi.Busi/TransInRevert"), "in"));
  }
  // Opens the coordinator again, and every later one, on its journal
  // wrapped in a GatedJournal; returns the one open now.
  GatedJournal* ReopenGated() {
    GateJournals();
    Reopen();
    return gated_;
  }
};

TEST_F(SagaTest, SucceedsCallingActionsInOrderWithDtmMetadata) {
  ASSERT_OK(TwoSteps("saga-ok").WaitResult(true).Submit());
  EXPECT_EQ(Global("saga-ok").status, TransStatus::kSucceed);
  EXPECT_THAT(BranchStatuses("saga-ok"), ElementsAre(P, S, P, S));
  auto calls = busi_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].method, "/busi.Busi/TransOut");
  EXPECT_EQ(calls[0].payload, "out");
  EXPECT_EQ(calls[0].Get("dtm-gid"), "saga-ok");
  EXPECT_EQ(calls[0].Get("dtm-trans_type"), "saga");
  EXPECT_EQ(calls[0].Get("dtm-branch_id"), "01");
  EXPECT_EQ(calls[0].Get("dtm-op"), "action");
  EXPECT_EQ(calls[1].method, "/busi.Busi/TransIn");
  EXPECT_EQ(calls[1].Get("dtm-branch_id"), "02");
}

TEST_F(SagaTest, SubmitWithoutWaitReturnsOnceDurable) {
  ASSERT_OK(TwoSteps("saga-async").Submit());
  // Durable before any call: the journal has it.
  ASSERT_OK(dtm_->Query("saga-async"));
  dtm_->WaitIdle();
  EXPECT_EQ(Global("saga-async").status, TransStatus::kSucceed);
}

TEST_F(SagaTest, FailureCompensatesInReverseIncludingTheFailedStep) {
  Script("/busi.Busi/TransIn", {Failure()});
  Status s = TwoSteps("saga-fail").WaitResult(true).Submit();
  EXPECT_THAT(s,
              StatusIs(StatusCode::kAborted, "TransIn return failed: FAILURE"));
  GlobalTrans t = Global("saga-fail");
  EXPECT_EQ(t.status, TransStatus::kFailed);
  EXPECT_THAT(t.rollback_reason,
              ::testing::HasSubstr("return failed: FAILURE"));
  EXPECT_THAT(BranchStatuses("saga-fail"), ElementsAre(S, S, S, F));
  EXPECT_THAT(Seen(), ElementsAre("/busi.Busi/TransOut", "/busi.Busi/TransIn",
                                  "/busi.Busi/TransInRevert",
                                  "/busi.Busi/TransOutRevert"));
}

TEST_F(SagaTest, FirstStepFailureCompensatesOnlyIt) {
  Script("/busi.Busi/TransOut", {Failure()});
  EXPECT_THAT(TwoSteps("saga-fail1").WaitResult(true).Submit(),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(BranchStatuses("saga-fail1"), ElementsAre(S, F, P, P));
  EXPECT_THAT(Seen(),
              ElementsAre("/busi.Busi/TransOut", "/busi.Busi/TransOutRevert"));
}

TEST_F(SagaTest, OngoingKeepsTheIntervalThenSucceeds) {
  Script("/busi.Busi/TransIn", {Ongoing(), Ok()});
  const TimePoint start = clock_.Now();
  EXPECT_THAT(TwoSteps("saga-ongoing").WaitResult(true).Submit(),
              StatusIs(StatusCode::kFailedPrecondition, "still submitted"));
  GlobalTrans t = Global("saga-ongoing");
  EXPECT_EQ(t.status, TransStatus::kSubmitted);
  EXPECT_EQ(t.next_cron_interval, seconds(10));
  EXPECT_EQ(t.next_cron_time, start + seconds(10));

  Later(seconds(9));  // not due yet
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"), 1u);
  Later(seconds(1));
  EXPECT_EQ(Global("saga-ongoing").status, TransStatus::kSucceed);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);  // not repeated
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"), 2u);
}

TEST_F(SagaTest, ErrorsBackOffThenSucceed) {
  Script("/busi.Busi/TransOut", {Error(), Error(), Ok()});
  const TimePoint start = clock_.Now();
  ASSERT_OK(TwoSteps("saga-backoff").Submit());
  dtm_->WaitIdle();
  GlobalTrans t = Global("saga-backoff");
  EXPECT_EQ(t.next_cron_interval, seconds(20));
  EXPECT_EQ(t.next_cron_time, start + seconds(20));
  Later(seconds(20));
  t = Global("saga-backoff");
  EXPECT_EQ(t.next_cron_interval, seconds(40));
  EXPECT_EQ(t.status, TransStatus::kSubmitted);
  Later(seconds(40));
  EXPECT_EQ(Global("saga-backoff").status, TransStatus::kSucceed);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 3u);
}

TEST_F(SagaTest, RetryStateOfAStuckBranchIsInTheJournal) {
  Script("/busi.Busi/TransOut", {Error(), Ongoing(), Ok()});
  const TimePoint start = clock_.Now();
  ASSERT_OK(TwoSteps("saga-visible").Submit());
  dtm_->WaitIdle();
  auto branch = [&](const std::string& id, BranchOp op) {
    auto t = dtm_->Query("saga-visible");
    EXPECT_OK(t);
    for (const Branch& b : t->branches)
      if (b.branch_id == id && b.op == op) return b;
    ADD_FAILURE() << "no branch " << id;
    return Branch{};
  };
  Branch out = branch("01", BranchOp::kAction);
  EXPECT_EQ(out.attempts, 1);
  EXPECT_EQ(out.last_try_time, start);
  EXPECT_EQ(out.last_error, "TRANSIENT: busi unavailable");
  EXPECT_EQ(branch("02", BranchOp::kAction).attempts, 0);  // not reached
  // The next try is the transaction's next_cron_time.
  EXPECT_EQ(Global("saga-visible").next_cron_time, start + seconds(20));

  Later(seconds(20));
  out = branch("01", BranchOp::kAction);
  EXPECT_EQ(out.attempts, 2);
  EXPECT_EQ(out.last_try_time, start + seconds(20));
  EXPECT_THAT(out.last_error, ::testing::StartsWith("ONGOING"));

  Later(seconds(20));
  EXPECT_EQ(Global("saga-visible").status, TransStatus::kSucceed);
  out = branch("01", BranchOp::kAction);
  EXPECT_EQ(out.attempts, 3);
  EXPECT_EQ(out.last_error, "");
  EXPECT_EQ(branch("02", BranchOp::kAction).attempts, 1);
  EXPECT_EQ(branch("01", BranchOp::kCompensate).attempts, 0);
}

TEST_F(SagaTest, BackOffIsCapped) {
  options_.retry.max_interval = seconds(30);
  Reopen();
  Script("/busi.Busi/TransOut", {Error()});
  ASSERT_OK(TwoSteps("saga-cap").Submit());
  dtm_->WaitIdle();
  for (int i = 0; i < 4; ++i) Later(Global("saga-cap").next_cron_interval);
  EXPECT_EQ(Global("saga-cap").next_cron_interval, seconds(30));
}

TEST_F(SagaTest, TimeoutToFailRollsBack) {
  Script("/busi.Busi/TransIn", {Ongoing()});
  ASSERT_OK(TwoSteps("saga-timeout").TimeoutToFail(seconds(15)).Submit());
  dtm_->WaitIdle();
  Later(seconds(16));
  GlobalTrans t = Global("saga-timeout");
  EXPECT_EQ(t.status, TransStatus::kFailed);
  EXPECT_EQ(t.rollback_reason, "Timeout after 15 seconds");
  // The ongoing action may have run: it is compensated too.
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransInRevert"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOutRevert"), 1u);
}

// Found by the simulation (docs/testing.md): TransIn was called while
// TransOut's success was still being written; that write failed, the journal
// said TransIn could not have run, and the rollback at the timeout left it
// uncompensated. An action now waits until the success before it is durable.
TEST_F(SagaTest, AnActionWaitsUntilTheSuccessBeforeItIsDurable) {
  GatedJournal* gated = ReopenGated();
  ASSERT_NE(gated, nullptr);
  gated->fail_update_branches = 1;  // TransOut's success is not recorded
  ASSERT_OK(TwoSteps("saga-lost-write").TimeoutToFail(seconds(15)).Submit());
  dtm_->WaitIdle();
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"), 0u)
      << "TransIn was called before TransOut's success was durable";
  Later(seconds(16));  // timed out: rolled back from what the journal holds
  EXPECT_EQ(Global("saga-lost-write").status, TransStatus::kFailed);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOutRevert"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"),
            busi_->CallCount("/busi.Busi/TransInRevert"));
}

// The final status is written lazily (no call depends on it; the caller
// learns it from memory): marked so, the journal may let it share the next
// transaction's commit. A decision that calls depend on is not.
TEST_F(SagaTest, OnlyTheFinalStatusIsWrittenLazily) {
  GatedJournal* gated = ReopenGated();
  ASSERT_NE(gated, nullptr);
  ASSERT_OK(TwoSteps("saga-lazy-end").WaitResult(true).Submit());
  dtm_->WaitIdle();
  EXPECT_EQ(gated->status_changes.load(), 1);
  EXPECT_EQ(gated->lazy_status_changes.load(), 1);
  // A step may wait for the results before it (durable()): none is lazy.
  EXPECT_EQ(gated->lazy_branch_updates.load(), 0);
  EXPECT_EQ(Global("saga-lazy-end").status, TransStatus::kSucceed);

  // A failing step: aborting is a decision the compensations depend on.
  Script("/busi.Busi/TransIn", {Failure()});
  EXPECT_THAT(TwoSteps("saga-lazy-fail").WaitResult(true).Submit(),
              StatusIs(StatusCode::kAborted));
  dtm_->WaitIdle();
  EXPECT_EQ(gated->status_changes.load(), 3);       // aborting, then failed
  EXPECT_EQ(gated->lazy_status_changes.load(), 2);  // only the end
  EXPECT_EQ(Global("saga-lazy-fail").status, TransStatus::kFailed);
}

TEST_F(SagaTest, RetryLimitRollsBackAndSurvivesRestart) {
  Script("/busi.Busi/TransIn", {Error()});
  EXPECT_THAT(TwoSteps("saga-limit").RetryLimit(2).WaitResult(true).Submit(),
              StatusIs(StatusCode::kAborted,
                       "RetryCount is greater than RetryLimit, RetryLimit: 2"));
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"),
            3u);  // first call + 2 retries
  GlobalTrans t = Global("saga-limit");
  EXPECT_EQ(t.status, TransStatus::kFailed);
  EXPECT_EQ(t.retry_count, 2);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransInRevert"), 1u);
}

TEST_F(SagaTest, RetryCountIsPersistedAcrossRestarts) {
  // Retries that stop part-way (the service keeps failing, then the process
  // restarts) do not reset the budget.
  Script("/busi.Busi/TransIn", {Error(), Ongoing()});
  ASSERT_OK(TwoSteps("saga-budget").RetryLimit(3).Submit());
  dtm_->WaitIdle();
  const int64_t spent = Global("saga-budget").retry_count;
  EXPECT_GE(spent, 1);
  Reopen();
  EXPECT_EQ(Global("saga-budget").retry_count, spent);
}

TEST_F(SagaTest, ConcurrentStepsFollowTheirOrders) {
  // Step 2 waits for steps 0 and 1, which run concurrently.
  auto slow = [](const ReceivedCall&) {
    TestReply r = TestReply::Ok();
    r.delay = std::chrono::milliseconds(100);
    return r;
  };
  busi_->SetHandler("/busi.Busi/A", slow);
  busi_->SetHandler("/busi.Busi/B", slow);
  ASSERT_OK(Saga(*dtm_, "saga-conc")
                .Add(Url("/busi.Busi/A"), Url("/busi.Busi/ARevert"), "a")
                .Add(Url("/busi.Busi/B"), Url("/busi.Busi/BRevert"), "b")
                .Add(Url("/busi.Busi/C"), Url("/busi.Busi/CRevert"), "c")
                .AddBranchOrder(2, {0, 1})
                .EnableConcurrent()
                .WaitResult(true)
                .Submit());
  auto seen = Seen();
  ASSERT_EQ(seen.size(), 3u);
  // A and B were both called before either answered; C only after both.
  EXPECT_THAT(std::vector<std::string>(seen.begin(), seen.begin() + 2),
              ::testing::UnorderedElementsAre("/busi.Busi/A", "/busi.Busi/B"));
  EXPECT_EQ(seen[2], "/busi.Busi/C");
  EXPECT_THAT(Global("saga-conc").custom_data,
              ::testing::HasSubstr("\"concurrent\":true"));
}

TEST_F(SagaTest, ConcurrentFailureDoesNotCompensateStepsThatCouldNotStart) {
  Script("/busi.Busi/A", {Failure()});
  EXPECT_THAT(Saga(*dtm_, "saga-conc-fail")
                  .Add(Url("/busi.Busi/A"), Url("/busi.Busi/ARevert"), "a")
                  .Add(Url("/busi.Busi/B"), Url("/busi.Busi/BRevert"), "b")
                  .AddBranchOrder(1, {0})
                  .EnableConcurrent()
                  .WaitResult(true)
                  .Submit(),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(BranchStatuses("saga-conc-fail"), ElementsAre(S, F, P, P));
  EXPECT_EQ(busi_->CallCount("/busi.Busi/B"), 0u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/BRevert"), 0u);
}

TEST_F(SagaTest, HeadersReachBranchesOnFirstCallsAndRetries) {
  Script("/busi.Busi/TransOut", {Error(), Ok()});
  // A "-bin" header may carry any bytes; the retry reads it back from the
  // journal.
  const std::string binary("\xff\x00\x80", 3);
  ASSERT_OK(TwoSteps("saga-headers")
                .BranchHeaders({{"X-Tenant", "acme"}, {"trace-bin", binary}})
                .Submit());
  dtm_->WaitIdle();
  Later(seconds(20));
  ASSERT_EQ(Global("saga-headers").status, TransStatus::kSucceed);
  auto calls = busi_->Calls();
  ASSERT_EQ(calls.size(), 3u);
  for (const auto& c : calls) {
    EXPECT_EQ(c.Get("x-tenant"), "acme") << c.method;
    EXPECT_EQ(c.Get("trace-bin"), binary) << c.method;
  }
}

TEST_F(SagaTest, EmptyUrlsSucceedWithoutCalls) {
  ASSERT_OK(Saga(*dtm_, "saga-empty")
                .Add("", "", "")
                .Add("", "", "")
                .WaitResult(true)
                .Submit());
  EXPECT_EQ(Global("saga-empty").status, TransStatus::kSucceed);
  EXPECT_TRUE(busi_->Calls().empty());
}

TEST_F(SagaTest, ManyEmptyStepsAroundRealOnesRunInOrder) {
  // Empty steps complete inline, without a hop each: thousands of them end
  // in one pass, in order with the real calls between them.
  Saga saga(*dtm_, "saga-many-empty");
  constexpr int kEmpty = 3000;
  for (int i = 0; i < kEmpty; ++i) {
    saga.Add("", "", "");
    if (i == kEmpty / 2)
      saga.Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/TransOutRevert"),
               "out");
  }
  saga.Add(Url("/busi.Busi/TransIn"), Url("/busi.Busi/TransInRevert"), "in");
  ASSERT_OK(saga.WaitResult(true).Submit());
  EXPECT_EQ(Global("saga-many-empty").status, TransStatus::kSucceed);
  const std::vector<BranchStatus> statuses = BranchStatuses("saga-many-empty");
  ASSERT_EQ(statuses.size(), 2u * (kEmpty + 2));
  for (std::size_t i = 0; i < statuses.size(); ++i)
    ASSERT_EQ(statuses[i], i % 2 == 0 ? P : S) << "row " << i;
  auto calls = busi_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].Get("dtm-branch_id"), std::to_string(kEmpty / 2 + 2));
  EXPECT_EQ(calls[1].Get("dtm-branch_id"), std::to_string(kEmpty + 2));
}

TEST_F(SagaTest, EmptyStepsBeforeAFailureAreCompensatedInline) {
  Script("/busi.Busi/TransIn", {Failure()});
  Status s =
      Saga(*dtm_, "saga-empty-fail")
          .Add("", "", "")
          .Add(Url("/busi.Busi/TransIn"), Url("/busi.Busi/TransInRevert"), "in")
          .WaitResult(true)
          .Submit();
  EXPECT_THAT(s, StatusIs(StatusCode::kAborted));
  EXPECT_EQ(Global("saga-empty-fail").status, TransStatus::kFailed);
  EXPECT_THAT(BranchStatuses("saga-empty-fail"), ElementsAre(S, S, S, F));
  auto calls = busi_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].method, "/busi.Busi/TransIn");
  EXPECT_EQ(calls[1].method, "/busi.Busi/TransInRevert");
}

TEST_F(SagaTest, ManyEmptyCompensationsAfterAFailureEndInFewPasses) {
  // Sequential and concurrent (a chain by orders): thousands of empty steps
  // before a failing one are all compensated, last first.
  Script("/busi.Busi/TransIn", {Failure()});
  constexpr int kEmpty = 3000;
  for (bool concurrent : {false, true}) {
    const std::string gid = concurrent ? "saga-chain-fail" : "saga-seq-fail";
    Saga saga(*dtm_, gid);
    for (int i = 0; i < kEmpty; ++i) {
      saga.Add("", "", "");
      if (concurrent && i > 0) saga.AddBranchOrder(i, {i - 1});
    }
    saga.Add(Url("/busi.Busi/TransIn"), Url("/busi.Busi/TransInRevert"), "in");
    if (concurrent)
      saga.AddBranchOrder(kEmpty, {kEmpty - 1}).EnableConcurrent();
    EXPECT_THAT(saga.WaitResult(true).Submit(), StatusIs(StatusCode::kAborted));
    dtm_->WaitIdle();
    EXPECT_EQ(Global(gid).status, TransStatus::kFailed) << gid;
    const std::vector<BranchStatus> statuses = BranchStatuses(gid);
    ASSERT_EQ(statuses.size(), 2u * (kEmpty + 1));
    for (std::size_t i = 0; i + 2 < statuses.size(); ++i)
      ASSERT_EQ(statuses[i], S) << gid << " row " << i;
    EXPECT_EQ(statuses.back(), F);
  }
  EXPECT_EQ(Seen("/busi.Busi/TransInRevert").size(), 2u);
}

// Issue 19 item 5: a client that lost the answer to a Submit and sends it
// again is told what happened, OK, not dtm's FAILURE ("rolled back").
TEST_F(SagaTest, RetryOfASucceededSagaIsOkAndCallsNothing) {
  ASSERT_OK(TwoSteps("saga-dup").WaitResult(true).Submit());
  EXPECT_OK(TwoSteps("saga-dup").Submit());
  EXPECT_OK(TwoSteps("saga-dup").WaitResult(true).Submit());
  dtm_->WaitIdle();
  EXPECT_EQ(busi_->Calls().size(), 2u);
  EXPECT_EQ(Global("saga-dup").status, TransStatus::kSucceed);
}

TEST_F(SagaTest, SixtyFourConcurrentRetriesOfASucceededSagaAllAnswerOk) {
  ASSERT_OK(TwoSteps("saga-dup64").WaitResult(true).Submit());
  constexpr int kRetries = 64;
  std::vector<Status> answers(kRetries);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRetries; ++i) {
    threads.emplace_back([this, &answers, i] {
      answers[i] = TwoSteps("saga-dup64").WaitResult(i % 2 == 0).Submit();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kRetries; ++i) EXPECT_OK(answers[i]) << "retry " << i;
  dtm_->WaitIdle();
  EXPECT_EQ(busi_->Calls().size(), 2u);
}

// Retries that race with the first Submit while its steps still run: each
// answers as the first does (OK), none runs a step twice.
TEST_F(SagaTest, RetriesWhileTheSagaRunsAnswerOk) {
  Script("/busi.Busi/TransIn", {Ongoing(), Ok()});
  ASSERT_OK(TwoSteps("saga-dup-run").Submit());
  std::vector<Status> answers(16);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    threads.emplace_back([this, &answers, i] {
      answers[i] = TwoSteps("saga-dup-run").Submit();
    });
  }
  for (std::thread& t : threads) t.join();
  for (const Status& a : answers) EXPECT_OK(a);
  dtm_->WaitIdle();
  Later(seconds(10));
  EXPECT_EQ(Global("saga-dup-run").status, TransStatus::kSucceed);
  EXPECT_OK(TwoSteps("saga-dup-run").Submit());
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransOut"), 1u);
}

// A saga that rolled back: a retry is told so (dtm's FAILURE, with the
// reason), as a WaitResult Submit was.
TEST_F(SagaTest, RetryOfARolledBackSagaIsAbortedWithTheReason) {
  Script("/busi.Busi/TransIn", {Failure()});
  EXPECT_THAT(TwoSteps("saga-dup-fail").WaitResult(true).Submit(),
              StatusIs(StatusCode::kAborted));
  EXPECT_THAT(TwoSteps("saga-dup-fail").Submit(),
              StatusIs(StatusCode::kAborted, "TransIn return failed"));
  EXPECT_EQ(busi_->CallCount("/busi.Busi/TransIn"), 1u);
}

// Another request for a gid that exists is a conflict, never a rollback:
// kAlreadyExists naming the gid and what differs; nothing runs again.
TEST_F(SagaTest, AConflictingSubmitIsAlreadyExistsNamingWhatDiffers) {
  ASSERT_OK(TwoSteps("saga-other").WaitResult(true).Submit());
  auto expect_conflict = [this](Saga saga, const std::string& what) {
    EXPECT_THAT(saga.Submit(),
                StatusIs(StatusCode::kAlreadyExists,
                         "submit: gid saga-other exists with " + what))
        << what;
  };
  expect_conflict(std::move(Saga(*dtm_, "saga-other")
                                .Add(Url("/busi.Busi/TransOut"),
                                     Url("/busi.Busi/TransOutRevert"), "out")),
                  "2 step(s), not 1");
  expect_conflict(std::move(Saga(*dtm_, "saga-other")
                                .Add(Url("/busi.Busi/TransOut"),
                                     Url("/busi.Busi/TransOutRevert"), "out")
                                .Add(Url("/busi.Busi/TransIn"),
                                     Url("/busi.Busi/TransInRevert"), "IN")),
                  "a different step 02's payload");
  expect_conflict(std::move(Saga(*dtm_, "saga-other")
                                .Add(Url("/busi.Busi/TransOut"),
                                     Url("/busi.Busi/TransOutRevert"), "out")
                                .Add(Url("/busi.Busi/TransIn"),
                                     Url("/busi.Busi/TransOut"), "in")),
                  "a different step 02's compensate URL");
  expect_conflict(std::move(TwoSteps("saga-other").EnableConcurrent()),
                  "different custom data");
  Msg msg = std::move(Msg(*dtm_, "saga-other")
                          .Add(Url("/busi.Busi/TransOut"), "out")
                          .Add(Url("/busi.Busi/TransIn"), "in"));
  EXPECT_THAT(msg.Submit(), StatusIs(StatusCode::kAlreadyExists,
                                     "trans type 'saga', not 'msg'"));
  TransRequest tcc;
  tcc.gid = "saga-other";
  tcc.trans_type = TransType::kTcc;
  EXPECT_THAT(dtm_->Submit(tcc), StatusIs(StatusCode::kAlreadyExists,
                                          "trans type 'saga', not 'tcc'"));
  dtm_->WaitIdle();
  EXPECT_EQ(busi_->Calls().size(), 2u);
  EXPECT_EQ(Global("saga-other").status, TransStatus::kSucceed);
}

TEST_F(SagaTest, BadRequestsAreRefusedAndWriteNothing) {
  EXPECT_THAT(Saga(*dtm_, "").Add("", "", "").Submit(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Saga(*dtm_, std::string(200, 'g')).Add("", "", "").Submit(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Saga(*dtm_, "bad\x01gid").Add("", "", "").Submit(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Saga(*dtm_, "no-steps").Submit(),
              StatusIs(StatusCode::kInvalidArgument, "no steps"));
  EXPECT_THAT(Saga(*dtm_, "bad-order")
                  .Add("", "", "")
                  .AddBranchOrder(0, {3})
                  .EnableConcurrent()
                  .Submit(),
              StatusIs(StatusCode::kInvalidArgument, "missing step"));
  EXPECT_THAT(Saga(*dtm_, "cycle")
                  .Add("", "", "")
                  .Add("", "", "")
                  .AddBranchOrder(0, {1})
                  .AddBranchOrder(1, {0})
                  .EnableConcurrent()
                  .Submit(),
              StatusIs(StatusCode::kInvalidArgument, "cycle"));
  EXPECT_THAT(
      Saga(*dtm_, "bad-url").Add("kubernetes:///busi:1/a.B/C", "", "").Submit(),
      StatusIs(StatusCode::kInvalidArgument, "kubernetes"));
  EXPECT_THAT(Saga(*dtm_, "bad-url2")
                  .Add(Url("/busi.Busi/A"), "no method", "")
                  .Submit(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Saga(*dtm_, "bad-header")
                  .Add("", "", "")
                  .BranchHeaders({{"x", "a\nb"}})
                  .Submit(),
              StatusIs(StatusCode::kInvalidArgument, "header"));
  for (const char* gid : {"no-steps", "bad-order", "cycle", "bad-url",
                          "bad-url2", "bad-header"}) {
    EXPECT_THAT(dtm_->Query(gid), StatusIs(StatusCode::kNotFound)) << gid;
  }
}

TEST_F(SagaTest, ProtocolIsStoredAndUnknownOnesAreRefused) {
  TransRequest req;
  req.trans_type = TransType::kSaga;
  req.steps.push_back({"", ""});
  req.options.wait_result = true;
  for (const auto& [gid, protocol] :
       std::vector<std::pair<std::string, std::string>>{
           {"proto-default", ""},
           {"proto-grpc", "grpc"},
           {"proto-http", "http"}}) {
    req.gid = gid;
    req.protocol = protocol;
    ASSERT_OK(dtm_->Submit(req));
    ASSERT_OK_AND_ASSIGN(TransWithBranches t, dtm_->Query(gid));
    EXPECT_EQ(t.trans.protocol, protocol.empty() ? "grpc" : protocol);
  }
  for (const auto& [gid, protocol] :
       std::vector<std::pair<std::string, std::string>>{
           {"proto-jsonrpc", "json-rpc"}, {"proto-bad", "smtp"}}) {
    req.gid = gid;
    req.protocol = protocol;
    EXPECT_THAT(dtm_->Submit(req),
                StatusIs(StatusCode::kInvalidArgument, protocol));
    EXPECT_THAT(dtm_->Query(gid), StatusIs(StatusCode::kNotFound));
  }
}

}  // namespace
}  // namespace dtx::testing
