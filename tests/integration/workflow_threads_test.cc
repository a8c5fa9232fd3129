// Workflows under threads, for ThreadSanitizer (scripts/tsan.sh): many
// workflows executed at once from host threads while the coordinator resumes
// others on the Workflows' own threads, on a real SQLite journal. The branch
// calls go to an in-process client (no gRPC: gRPC's own threads are not
// instrumented, docs/development.md); workflow_test.cc runs the same paths
// against a real gRPC service.

#include "dtx/coordinator.h"
#include "dtx/storage/sqlite_journal.h"
#include "dtx/workflow.h"

#include "status_matchers.h"
#include "temp_dir.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dtx::testing {
namespace {

// Answers every call at once on the caller's thread, counting calls per
// (gid, url); the first call of each gid's "Flaky" answers ONGOING.
class CountingClient final : public BranchClient {
 public:
  void Call(BranchRequest request, Executor executor, Callback done) override {
    BranchResult r;
    r.outcome = BranchOutcome::kSuccess;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const int n = ++calls_[request.info.gid + " " + request.url];
      if (request.url == "svc/Flaky" && n == 1) {
        r.outcome = BranchOutcome::kOngoing;
        r.status = FailedPreconditionError("ONGOING");
      }
    }
    r.reply = request.payload;
    if (executor) {
      executor([done = std::move(done), r = std::move(r)]() mutable {
        done(std::move(r));
      });
    } else {
      done(std::move(r));
    }
  }
  Status ValidateUrl(std::string_view, std::string_view) override {
    return Status::Ok();
  }
  void Shutdown() override {}

  int Calls(const std::string& gid, const std::string& url) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[gid + " " + url];
  }

 private:
  std::mutex mu_;
  std::map<std::string, int> calls_;
};

TEST(WorkflowThreadsTest, ManyRunsAndResumesAtOnce) {
  TempDir dir;
  FakeClock clock;
  SqliteJournalOptions jo;
  jo.path = dir.File("dtx.db");
  jo.clock = &clock;
  jo.synchronous = SqliteJournalOptions::Sync::kNormal;
  auto journal = SqliteJournal::Open(jo);
  ASSERT_OK(journal);
  auto client = std::make_unique<CountingClient>();
  CountingClient* calls = client.get();
  CoordinatorDeps deps;
  deps.journal = std::move(journal).value();
  deps.branch_client = std::move(client);
  deps.clock = &clock;
  Options options;
  options.io_threads = 4;
  options.cron_interval = std::chrono::seconds(3600);  // RunDue drives it
  auto dtm = Coordinator::Open(options, std::move(deps));
  ASSERT_OK(dtm);
  {
    Workflows workflows(**dtm, Workflows::Options{4});
    ASSERT_OK(workflows.Register(
        "w", [](Workflow& wf, const std::string& in) -> Result<std::string> {
          DTX_RETURN_IF_ERROR(
              wf.Step()
                  .OnCommit([](const WorkflowBranch&) { return Status::Ok(); })
                  .Call("svc/Step1", in)
                  .status());
          // Every other workflow answers ONGOING here once: resumed later.
          if (wf.gid().back() % 2 == 0) {
            DTX_RETURN_IF_ERROR(wf.Call("svc/Flaky", in).status());
          }
          return wf.Call("svc/Step2", in);
        }));
    constexpr int kThreads = 8;
    constexpr int kEach = 25;
    std::atomic<int> ok{0};
    std::atomic<int> ongoing{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          const std::string gid =
              "wf-" + std::to_string(t) + "-" + std::to_string(i);
          auto r = workflows.Execute("w", gid, gid);
          if (r.ok() && *r == gid) ++ok;
          if (r.status().code() == StatusCode::kFailedPrecondition) ++ongoing;
        }
      });
    }
    // Resumes while the runs go on: the clock past every retry interval.
    for (int round = 0; round < 5; ++round) {
      clock.Advance(std::chrono::seconds(20));
      ASSERT_OK((*dtm)->RunDue());
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok + ongoing, kThreads * kEach);
    for (int round = 0; round < 10; ++round) {
      clock.Advance(std::chrono::seconds(120));
      ASSERT_OK((*dtm)->RunDue());
    }
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kEach; ++i) {
        const std::string gid =
            "wf-" + std::to_string(t) + "-" + std::to_string(i);
        auto q = (*dtm)->Query(gid);
        ASSERT_OK(q);
        EXPECT_EQ(q->trans.status, TransStatus::kSucceed) << gid;
        EXPECT_EQ(calls->Calls(gid, "svc/Step1"), 1) << gid;
        EXPECT_EQ(calls->Calls(gid, "svc/Step2"), 1) << gid;
      }
    }
  }
  (*dtm)->Shutdown();
}

}  // namespace
}  // namespace dtx::testing
