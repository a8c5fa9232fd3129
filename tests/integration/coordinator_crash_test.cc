// Crash tests: a child process running the coordinator is killed with SIGKILL
// at many points of each mode (while a branch call is in the service's hands,
// so before or after any journal write of the child's), then a new
// coordinator opens the same journal and must bring every transaction to the
// right final state, having called every required branch at least once and
// no forbidden one.

#include "coordinator_test_util.h"
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
    busi_->SetHandler("/busi.Busi/FailingAction2", [this](const ReceivedCall&) {
      const int n = ++calls_;
      if (n == kill_at_.load()) kill(child_pid_.load(), SIGKILL);
      return TestReply::Status(10, "FAILURE");
    });
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
  void Recover() {
    clock_.Set(SystemClock().Now() + std::chrono::hours(2));
    Open();
    Settle(std::chrono::minutes(10), 30);
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

}  // namespace
}  // namespace dtx::testing
