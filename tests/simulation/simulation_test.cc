// The deterministic simulation of the coordinator (dtx/testing): the CI run
// of random transactions under faults and crashes, replay, and regular tests
// of what the simulation found, written with dtx::testing as a user would.

#include "dtx/testing/simulation.h"

#include "dtx/testing/random_workload.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Release builds run the full count; Debug and sanitizer builds (CI's
// ASan build runs every test) a tenth, which takes them as long.
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
constexpr bool kFull = true;
#else
constexpr bool kFull = false;
#endif

// At least 100,000 transactions and 1,000 crashes (issue 17): 1,200 seeds
// of 100 transactions each, with their random and scripted crashes.
TEST(SimulationTest, RandomRunsKeepEveryInvariant) {
  constexpr uint64_t kSeeds = kFull ? 1200 : 120;
  WorkloadOptions opts;
  int64_t transactions = 0, crashes = 0, calls = 0, torn = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const SimReport r = RunRandomSimulation(seed, opts);
    ASSERT_TRUE(r.ok()) << r.Summary() << "\nreplay: dtx_simulate --seed "
                        << seed << " --log debug";
    transactions += r.transactions;
    crashes += r.crashes;
    calls += r.branch_calls;
    torn += r.torn_writes;
  }
  std::printf(
      "simulated %lld transactions, %lld crashes, %lld branch calls, "
      "%lld torn writes over %llu seeds\n",
      static_cast<long long>(transactions), static_cast<long long>(crashes),
      static_cast<long long>(calls), static_cast<long long>(torn),
      static_cast<unsigned long long>(kSeeds));
  EXPECT_GE(transactions, kFull ? 100'000 : 10'000);
  EXPECT_GE(crashes, kFull ? 1'000 : 100);
  EXPECT_GT(torn, 0);
}

// Three coordinators on one shared journal (as on PostgreSQL): leases,
// fences and take-overs under the same faults and crashes.
TEST(SimulationTest, CoordinatorsSharingAJournalKeepEveryInvariant) {
  WorkloadOptions opts;
  opts.coordinators = 3;
  opts.crashes = 4;
  int64_t crashes = 0;
  const uint64_t seeds = kFull ? 200 : 40;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    const SimReport r = RunRandomSimulation(seed, opts);
    ASSERT_TRUE(r.ok()) << r.Summary() << "\nreplay: dtx_simulate --seed "
                        << seed << " --coordinators 3 --crashes 4";
    crashes += r.crashes;
  }
  EXPECT_GT(crashes, static_cast<int64_t>(seeds));
}

TEST(SimulationTest, WithoutFaultsEveryRunSettlesToo) {
  WorkloadOptions opts;
  opts.faults = false;
  for (uint64_t seed = 1; seed <= (kFull ? 50 : 10); ++seed) {
    const SimReport r = RunRandomSimulation(seed, opts);
    ASSERT_TRUE(r.ok()) << r.Summary();
  }
}

TEST(SimulationTest, ASeedReplaysExactly) {
  WorkloadOptions opts;
  const SimReport a = RunRandomSimulation(77, opts);
  const SimReport b = RunRandomSimulation(77, opts);
  EXPECT_EQ(a.Summary(), b.Summary());
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.simulated, b.simulated);
  const SimReport c = RunRandomSimulation(78, opts);
  EXPECT_NE(a.Summary(), c.Summary());
}

// A barrier-protected two-step transfer: what each step did, once.
struct Ledger {
  std::map<std::string, int> applied;      // branch id -> 1 when done
  std::map<std::string, int> compensated;  // branch id -> 1 when undone
};

void ServeLedger(Simulation& sim, Ledger& ledger) {
  sim.service().Handle("svc/Do", [&ledger](const BranchRequest& r) {
    if (ledger.compensated[r.info.branch_id] == 0)
      ledger.applied[r.info.branch_id] = 1;
    return SimAnswer(BranchOutcome::kSuccess);
  });
  sim.service().Handle("svc/Undo", [&ledger](const BranchRequest& r) {
    ledger.compensated[r.info.branch_id] = 1;
    return SimAnswer(BranchOutcome::kSuccess);
  });
}

TransRequest TwoStepSaga(const std::string& gid) {
  TransRequest saga;
  saga.gid = gid;
  saga.trans_type = TransType::kSaga;
  saga.steps = {{"svc/Do", "svc/Undo"}, {"svc/Do", "svc/Undo"}};
  saga.payloads = {"a", "b"};
  return saga;
}

// Found by the simulation: a saga called an action while the success of
// the one before it was still being written. A crash (or an i/o error) then
// lost that success, the journal said the later step could not have run,
// and when the saga timed out and rolled back that step was never
// compensated although its action had run.
TEST(SimulationTest, ASagaStepCalledBeforeACrashIsCompensated) {
  SimulationOptions opts;
  opts.seed = 3;
  opts.journal.commit_delay_min = milliseconds(50);  // a slow disk
  opts.journal.commit_delay_max = milliseconds(50);
  opts.journal.torn_at_crash = 0;  // a crash loses every queued write
  opts.network.delay_min = milliseconds(1);
  opts.network.delay_max = milliseconds(1);
  Simulation sim(opts);
  Ledger ledger;
  ServeLedger(sim, ledger);
  // The coordinator dies as step 02's action has run, before its reply.
  ScriptRule crash;
  crash.gid = "transfer";
  crash.branch_id = "02";
  crash.op = BranchOp::kAction;
  crash.crash = CrashPoint::kAfterApply;
  sim.service().Script(crash);
  ASSERT_TRUE(sim.Start().ok());

  TransRequest saga = TwoStepSaga("transfer");
  saga.options.timeout_to_fail = seconds(1);
  Status submitted = UnavailableError("not answered");
  sim.coordinator()->SubmitAsync(saga,
                                 [&submitted](Status s) { submitted = s; });
  sim.RunFor(seconds(1));
  ASSERT_TRUE(submitted.ok()) << submitted;
  ASSERT_FALSE(sim.running()) << "the scripted crash did not happen";
  EXPECT_EQ(ledger.applied["02"], 1);

  ASSERT_TRUE(sim.Start().ok());
  ASSERT_TRUE(sim.RunUntilAllFinished(std::chrono::minutes(2)));
  const TransWithBranches& t = sim.journal().rows().at("transfer");
  EXPECT_EQ(t.trans.status, TransStatus::kFailed);
  EXPECT_EQ(ledger.compensated["01"], 1);
  EXPECT_EQ(ledger.compensated["02"], 1)
      << "step 02's action ran but it was not compensated";
}

// The same with no crash: the success of step 01 is lost to a write error.
TEST(SimulationTest, ASagaStepIsNotCalledBeforeTheSuccessBeforeItIsDurable) {
  SimulationOptions opts;
  opts.seed = 4;
  opts.journal.commit_delay_min = milliseconds(50);
  opts.journal.commit_delay_max = milliseconds(50);
  opts.network.delay_min = milliseconds(1);
  opts.network.delay_max = milliseconds(1);
  Simulation sim(opts);
  Ledger ledger;
  ServeLedger(sim, ledger);
  ASSERT_TRUE(sim.Start().ok());
  sim.coordinator()->SubmitAsync(TwoStepSaga("transfer"), [](Status) {});
  // The scheduler's first claim commits the saga at once; step 01 answers
  // at 2 ms, and its success is durable at 50 ms.
  sim.RunFor(milliseconds(40));
  EXPECT_EQ(ledger.applied["01"], 1);
  EXPECT_EQ(sim.service().Handled("transfer", "02", BranchOp::kAction), 0)
      << "step 02 was called before step 01's success was durable";
  ASSERT_TRUE(sim.RunUntilAllFinished(std::chrono::minutes(1)));
  EXPECT_EQ(sim.journal().rows().at("transfer").trans.status,
            TransStatus::kSucceed);
  EXPECT_EQ(ledger.applied["02"], 1);
}

// The scripted service: an answer for one gid, branch and op, and a delay.
TEST(SimulationTest, ScriptsAnswerAndDelayChosenCalls) {
  SimulationOptions opts;
  Simulation sim(opts);
  Ledger ledger;
  ServeLedger(sim, ledger);
  ScriptRule ongoing;
  ongoing.gid = "t";
  ongoing.branch_id = "01";
  ongoing.op = BranchOp::kAction;
  ongoing.answer = BranchOutcome::kOngoing;
  ongoing.times = 2;
  sim.service().Script(ongoing);
  ScriptRule slow;
  slow.branch_id = "02";
  slow.delay = milliseconds(300);
  sim.service().Script(slow);
  ASSERT_TRUE(sim.Start().ok());
  sim.coordinator()->SubmitAsync(TwoStepSaga("t"), [](Status) {});
  ASSERT_TRUE(sim.RunUntilAllFinished(std::chrono::minutes(1)));
  EXPECT_EQ(sim.journal().rows().at("t").trans.status, TransStatus::kSucceed);
  int calls_01 = 0;
  for (const ArrivedCall& a : sim.service().arrived()) {
    if (a.info.branch_id == "01") ++calls_01;
  }
  EXPECT_EQ(calls_01, 3);  // ONGOING twice, then the handler
  EXPECT_EQ(sim.service().Handled("t", "01", BranchOp::kAction), 1);
  EXPECT_EQ(sim.journal().history().at("t"),
            (std::vector<TransStatus>{TransStatus::kSubmitted,
                                      TransStatus::kSucceed}));
}

// RunDue would wait for closures that only the loop's thread runs.
TEST(SimulationTest, RunDueOnALoopIsRefused) {
  Simulation sim(SimulationOptions{});
  ASSERT_TRUE(sim.Start().ok());
  Status s = sim.coordinator()->RunDue();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("event loop"), std::string::npos) << s;
}

}  // namespace
}  // namespace dtx::testing
