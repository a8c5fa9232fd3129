// Crash tests: a child process running the coordinator is killed with SIGKILL
// at many points of each mode (while a branch call is in the service's hands,
// so before or after any journal write of the child's), then a new
// coordinator opens the same journal and must bring every transaction to the
// right final state, having called every required branch at least once and
// no forbidden one.

#include "coordinator_test_util.h"
#include "four_step_workflow.h"
#include "ledger_service.h"
#include "subprocess.h"

#include <gmock/gmock.h>

#include <atomic>
#include <iostream>
#include <map>
#include <set>
#include <signal.h>

namespace dtx::testing {
namespace {

using std::chrono::seconds;

class CoordinatorCrashTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    busi_ = BranchTestServer::Start();
    busi_->SetDefaultHandler([this](const ReceivedCall&) {
      const int n = ++calls_;
      if (n == kill_at_.load()) kill(child_pid_.load(), SIGKILL);
      return TestReply::Ok();
    });
    for (const char* failing :
         {"/busi.Busi/FailingAction2", "/busi.Busi/FailingStep3"}) {
      busi_->SetHandler(failing, [this](const ReceivedCall&) {
        const int n = ++calls_;
        if (n == kill_at_.load()) kill(child_pid_.load(), SIGKILL);
        return TestReply::Status(10, "FAILURE");
      });
    }
  }

  // Runs the child until the `kill_at`-th branch call reaches the service,
  // kills it there, and waits for it.
  void RunChildAndKill(const std::string& mode, const std::string& prefix,
                       int kill_at) {
    calls_ = 0;
    kill_at_ = kill_at;
    auto child =
        Subprocess::Start({DTX_COORDINATOR_CRASH_CHILD, dir_.File("dtx.db"),
                           busi_->address(), mode, prefix, "3"});
    ASSERT_OK(child);
    child_pid_ = child->pid();
    // Either the kill comes, or the child finishes its transactions first.
    int done = 0;
    while (done < 3) {
      auto line = child->ReadLine(seconds(60));
      if (!line) break;  // killed
      ++done;
    }
    child->Kill(SIGKILL);
    child->Wait();
    child_pid_ = 0;
  }

  // Opens a new coordinator on the journal, far enough in the future that
  // every timeout has passed, and runs until nothing is left to do.
  void Recover(int workflow_fail_at = 0, WorkflowFunction four = nullptr) {
    clock_.Set(SystemClock().Now() + std::chrono::hours(2));
    Open();
    // The workflows of the killed children are resumed here, as a restarted
    // host would resume them.
    Workflows workflows(*dtm_);
    if (!four) {
      four =
          FourStepWorkflow(busi_->address() + "/busi.Busi/", workflow_fail_at);
    }
    ASSERT_OK(workflows.Register("four", std::move(four)));
    Settle(std::chrono::minutes(10), 30);
  }

  // The calls of each gid in order (any process).
  std::map<std::string, std::vector<std::string>> CallSequences() {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& c : busi_->Calls())
      out[c.Get("dtm-gid")].push_back(c.method + " " + c.Get("dtm-op"));
    return out;
  }

  // ops[gid] = the methods called for that gid (any process).
  std::map<std::string, std::multiset<std::string>> CallsByGid() {
    std::map<std::string, std::multiset<std::string>> out;
    for (const auto& c : busi_->Calls()) out[c.Get("dtm-gid")].insert(c.method);
    return out;
  }

  std::atomic<int> calls_{0};
  std::atomic<int> kill_at_{0};
  std::atomic<pid_t> child_pid_{0};
};

TEST_F(CoordinatorCrashTest, SagaFinishesAfterKillsAtEveryCall) {
  // 3 sagas of 2 actions: 6 calls; kill at each.
  for (int k = 1; k <= 6; ++k)
    RunChildAndKill("saga", "s" + std::to_string(k) + "-", k);
  Recover();
  auto calls = CallsByGid();
  const std::vector<GlobalTrans> all = AllTransactions();
  ASSERT_GE(all.size(), 6u);
  for (const auto& t : all) {
    EXPECT_EQ(t.status, TransStatus::kSucceed) << t.gid;
    EXPECT_GE(calls[t.gid].count("/busi.Busi/Action1"), 1u) << t.gid;
    EXPECT_GE(calls[t.gid].count("/busi.Busi/Action2"), 1u) << t.gid;
    EXPECT_EQ(calls[t.gid].count("/busi.Busi/Compensate1"), 0u) << t.gid;
    EXPECT_EQ(calls[t.gid].count("/busi.Busi/Compensate2"), 0u) << t.gid;
  }
}

TEST_F(CoordinatorCrashTest, FailingSagaCompensatesAfterKillsAtEveryCall) {
  // Per saga: Action1, FailingAction2, Compensate2, Compensate1.
  for (int k = 1; k <= 8; ++k)
    RunChildAndKill("saga-fail", "f" + std::to_string(k) + "-", k);
  Recover();
  auto calls = CallsByGid();
  const std::vector<GlobalTrans> all = AllTransactions();
  for (const auto& t : all) {
    const auto& c = calls[t.gid];
    if (c.count("/busi.Busi/FailingAction2") == 0 &&
        c.count("/busi.Busi/Action1") == 0) {
      // Killed before its first call: it finishes either way, nothing to undo.
      EXPECT_TRUE(IsFinished(t.status)) << t.gid;
      continue;
    }
    EXPECT_EQ(t.status, TransStatus::kFailed) << t.gid;
    EXPECT_GE(c.count("/busi.Busi/Compensate1"), 1u) << t.gid;
    if (c.count("/busi.Busi/FailingAction2") > 0) {
      EXPECT_GE(c.count("/busi.Busi/Compensate2"), 1u) << t.gid;
    }
  }
}

TEST_F(CoordinatorCrashTest, TccNeverConfirmsAndCancelsTheSameTransaction) {
  // Per TCC: Try1, Try2, Confirm2, Confirm1.
  for (int k = 1; k <= 8; ++k)
    RunChildAndKill("tcc", "t" + std::to_string(k) + "-", k);
  Recover();
  auto calls = CallsByGid();
  const std::vector<GlobalTrans> all = AllTransactions();
  if (std::getenv("DTX_TEST_VERBOSE") != nullptr) {
    for (const auto& t : all) {
      std::cout << t.gid << " " << ToString(t.status) << ":";
      for (const auto& m : calls[t.gid]) std::cout << " " << m;
      std::cout << "\n";
    }
  }
  for (const auto& t : all) {
    const auto& c = calls[t.gid];
    const std::size_t confirms =
        c.count("/busi.Busi/Confirm1") + c.count("/busi.Busi/Confirm2");
    const std::size_t cancels =
        c.count("/busi.Busi/Cancel1") + c.count("/busi.Busi/Cancel2");
    auto stored = dtm_->Query(t.gid);
    ASSERT_OK(stored);
    if (t.status == TransStatus::kSucceed) {
      EXPECT_EQ(cancels, 0u) << t.gid;
      EXPECT_GE(c.count("/busi.Busi/Confirm1"), 1u) << t.gid;
      EXPECT_GE(c.count("/busi.Busi/Confirm2"), 1u) << t.gid;
    } else {
      ASSERT_EQ(t.status, TransStatus::kFailed) << t.gid;
      EXPECT_EQ(confirms, 0u) << t.gid;
      // Every registered branch was cancelled, tried or not.
      for (const auto& b : stored->branches) {
        if (b.op != BranchOp::kCancel) continue;
        EXPECT_GE(c.count("/busi.Busi/Cancel" +
                          std::string(b.branch_id == "01" ? "1" : "2")),
                  1u)
            << t.gid << " branch " << b.branch_id;
      }
    }
  }
}

TEST_F(CoordinatorCrashTest, MsgIsDeliveredAfterKillsAtEveryCall) {
  // Per msg (DoAndSubmit, local work succeeds): Action1, Action2.
  for (int k = 1; k <= 6; ++k)
    RunChildAndKill("msg", "m" + std::to_string(k) + "-", k);
  Recover();
  auto calls = CallsByGid();
  const std::vector<GlobalTrans> all = AllTransactions();
  for (const auto& t : all) {
    EXPECT_EQ(t.status, TransStatus::kSucceed) << t.gid;
    EXPECT_GE(calls[t.gid].count("/busi.Busi/Action1"), 1u) << t.gid;
    EXPECT_GE(calls[t.gid].count("/busi.Busi/Action2"), 1u) << t.gid;
  }
}

// A 4-step workflow killed at every step boundary (each call of each of
// three workflows, while the step is in the service's hands: before its
// record), then resumed by a new process: each finishes, and no recorded
// step runs again. Only the step the kill interrupted, which was never
// recorded, is called a second time.
TEST_F(CoordinatorCrashTest, WorkflowResumesAfterKillsAtEveryStep) {
  for (int k = 1; k <= 12; ++k)
    RunChildAndKill("workflow", "w" + std::to_string(k) + "-", k);
  Recover();
  auto calls = CallSequences();
  const std::vector<GlobalTrans> all = AllTransactions();
  ASSERT_GE(all.size(), 12u);
  int interrupted = 0;  // steps called again: one per kill
  for (const auto& t : all) {
    EXPECT_EQ(t.status, TransStatus::kSucceed) << t.gid;
    std::map<std::string, int> per_step;
    for (const auto& c : calls[t.gid]) ++per_step[c];
    int repeated = 0;
    for (int n = 1; n <= 4; ++n) {
      const int made =
          per_step["/busi.Busi/Step" + std::to_string(n) + " action"];
      EXPECT_GE(made, 1) << t.gid << " step " << n;
      EXPECT_LE(made, 2) << t.gid << " step " << n;
      repeated += made - 1;
      EXPECT_EQ(per_step["/busi.Busi/Revert" + std::to_string(n) + " rollback"],
                0)
          << t.gid;
    }
    EXPECT_LE(repeated, 1) << t.gid << ": a recorded step ran again";
    interrupted += repeated;
    auto stored = dtm_->Query(t.gid);
    ASSERT_OK(stored);
    EXPECT_EQ(stored->branches.size(), 4u) << t.gid;
  }
  EXPECT_EQ(interrupted, 12);
}

// The same with step 3 answering FAILURE: the workflow rolls back steps 2
// and 1 (in that order) whatever the kills, each rollback recorded once.
TEST_F(CoordinatorCrashTest, FailingWorkflowRollsBackAfterKillsAtEveryStep) {
  // Per workflow: Step1, Step2, FailingStep3, Revert2, Revert1.
  for (int k = 1; k <= 10; ++k)
    RunChildAndKill("workflow-fail", "v" + std::to_string(k) + "-", k);
  Recover(/*workflow_fail_at=*/3);
  auto calls = CallSequences();
  const std::vector<GlobalTrans> all = AllTransactions();
  ASSERT_GE(all.size(), 10u);
  int extra = 0;  // calls beyond the five of a run: one per kill
  for (const auto& t : all) {
    EXPECT_EQ(t.status, TransStatus::kFailed) << t.gid;
    std::map<std::string, int> per_step;
    std::vector<std::string> reverts;
    for (const auto& c : calls[t.gid]) {
      ++per_step[c];
      if (c.rfind("/busi.Busi/Revert", 0) == 0) reverts.push_back(c);
    }
    EXPECT_EQ(per_step["/busi.Busi/Step4 action"], 0) << t.gid;
    EXPECT_EQ(per_step["/busi.Busi/Revert3 rollback"], 0) << t.gid;
    EXPECT_GE(per_step["/busi.Busi/Revert2 rollback"], 1) << t.gid;
    EXPECT_GE(per_step["/busi.Busi/Revert1 rollback"], 1) << t.gid;
    // Reverse order: every Revert2 before the first Revert1 that succeeded.
    ASSERT_FALSE(reverts.empty()) << t.gid;
    EXPECT_EQ(reverts.front(), "/busi.Busi/Revert2 rollback") << t.gid;
    EXPECT_EQ(reverts.back(), "/busi.Busi/Revert1 rollback") << t.gid;
    int total = 0;
    for (const auto& [call, n] : per_step) total += n;
    EXPECT_LE(total, 6) << t.gid << ": a recorded step ran again";
    extra += total - 5;
  }
  EXPECT_EQ(extra, 10);
}

// The 4-step workflow on a barrier-protected ledger, its host killed after
// each of 12 step calls took effect and before the step was answered (so
// never recorded): resumed by a new process, each workflow finishes, the
// interrupted step is called again and the barrier skips its second effect:
// every step's effect is in the ledger exactly once.
TEST_F(CoordinatorCrashTest, WorkflowStepsTakeEffectOnceAfterKillsAtEveryStep) {
  auto ledger = LedgerService::Start(dir_.File("ledger.db"), 4, 0, 0,
                                     /*identify_callers=*/false);
  ASSERT_OK(ledger);
  const std::string prefix = (*ledger)->Url("");  // <addr>/dtx.test.Ledger/
  const std::string address = prefix.substr(0, prefix.find('/'));
  (*ledger)->SetBeforeAnswer([this](const LedgerCall&) {
    if (++calls_ == kill_at_.load()) kill(child_pid_.load(), SIGKILL);
  });
  int started = 0;
  for (int k = 1; k <= 12; ++k) {
    calls_ = 0;
    kill_at_ = k;
    auto child = Subprocess::Start(
        {DTX_COORDINATOR_CRASH_CHILD, dir_.File("dtx.db"), address,
         "workflow-ledger", "l" + std::to_string(k) + "-", "3"});
    ASSERT_OK(child);
    child_pid_ = child->pid();
    while (child->ReadLine(seconds(60))) {
    }
    child->Kill(SIGKILL);
    child->Wait();
    child_pid_ = 0;
    started += (k + 3) / 4;  // workflows begun before the k-th call
  }
  Recover(0, FourStepLedgerWorkflow(prefix));
  const std::vector<GlobalTrans> all = AllTransactions();
  ASSERT_EQ(static_cast<int>(all.size()), started);
  for (const auto& t : all) EXPECT_EQ(t.status, TransStatus::kSucceed) << t.gid;
  auto effects = (*ledger)->Effects();
  ASSERT_OK(effects);
  std::map<std::string, int> once;  // "<gid> <branch> <op>" -> effects
  for (const LedgerEffect& e : *effects)
    ++once[e.gid + " " + e.branch_id + " " + e.op];
  EXPECT_EQ(once.size(), 4u * all.size());
  for (const auto& [key, n] : once) EXPECT_EQ(n, 1) << key;
  auto total = (*ledger)->Total();
  ASSERT_OK(total);
  EXPECT_EQ(*total, static_cast<int64_t>(4 * all.size()));
  // Twelve steps were interrupted after their effect: each was called again.
  std::map<std::string, int> calls;
  for (const LedgerCall& c : (*ledger)->Calls())
    ++calls[c.gid + " " + c.branch_id + " " + c.op];
  int again = 0;
  for (const auto& [key, n] : calls) again += n - 1;
  EXPECT_EQ(again, 12);
}

}  // namespace
}  // namespace dtx::testing
