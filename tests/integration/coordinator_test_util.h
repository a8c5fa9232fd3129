// A coordinator on a real SQLite journal and the real gRPC client, calling
// branch services on 127.0.0.1, with a FakeClock for every timing decision.

#ifndef DTX_TESTS_INTEGRATION_COORDINATOR_TEST_UTIL_H_
#define DTX_TESTS_INTEGRATION_COORDINATOR_TEST_UTIL_H_

#include "dtx/alert_sink.h"
#include "dtx/coordinator.h"
#include "dtx/metrics.h"
#include "dtx/storage/sqlite_journal.h"
#include "dtx/transaction.h"
#include "dtx/transport/grpc_branch_client.h"

#include "branch_test_server.h"
#include "gated_journal.h"
#include "status_matchers.h"
#include "temp_dir.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dtx::testing {

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    busi_ = BranchTestServer::Start();
    Open();
  }
  void TearDown() override {
    if (dtm_) dtm_->Shutdown();
  }

  // A coordinator on this test's journal file, clock and branch client.
  // Several may be open at once, as several processes would be.
  std::unique_ptr<Coordinator> NewCoordinator() {
    SqliteJournalOptions jo;
    jo.path = dir_.File("dtx.db");
    jo.clock = &clock_;
    jo.synchronous = SqliteJournalOptions::Sync::kNormal;
    jo.metrics = metrics_;
    auto journal = SqliteJournal::Open(jo);
    EXPECT_OK(journal);
    auto client = GrpcBranchClient::Create({});
    EXPECT_OK(client);
    if (!journal.ok() || !client.ok()) return nullptr;
    CoordinatorDeps deps;
    deps.journal = std::move(journal).value();
    if (wrap_journal_) deps.journal = wrap_journal_(std::move(deps.journal));
    deps.branch_client = std::move(client).value();
    if (wrap_client_)
      deps.branch_client = wrap_client_(std::move(deps.branch_client));
    deps.clock = &clock_;
    deps.metrics = metrics_;
    deps.alerts = alerts_;
    if (logger_) {
      deps.logger = logger_;
    } else if (std::getenv("DTX_TEST_LOG") != nullptr) {
      deps.logger = NewStderrLogger(LogLevel::kDebug);
    }
    Options options = options_;
    // The scheduler's own timer should not race the test's RunDue calls.
    options.cron_interval = std::chrono::seconds(3600);
    auto dtm = Coordinator::Open(options, std::move(deps));
    EXPECT_OK(dtm);
    return dtm.ok() ? std::move(dtm).value() : nullptr;
  }

  void Open() {
    dtm_ = NewCoordinator();
    ASSERT_NE(dtm_, nullptr);
  }

  void Reopen() {
    dtm_->Shutdown();
    dtm_.reset();
    Open();
  }

  std::string Url(const std::string& method) const {
    return busi_->address() + method;
  }

  // Scripted answers: the i-th call of `method` gets replies[i] (the last one
  // repeats).
  void Script(const std::string& method, std::vector<TestReply> replies) {
    auto calls = std::make_shared<std::atomic<std::size_t>>(0);
    busi_->SetHandler(method, [replies, calls](const ReceivedCall&) {
      const std::size_t i = (*calls)++;
      return replies[std::min(i, replies.size() - 1)];
    });
  }
  static TestReply Ok() { return TestReply::Ok(); }
  static TestReply Failure() { return TestReply::Status(10, "FAILURE"); }
  static TestReply Ongoing() { return TestReply::Status(9, "ONGOING"); }
  static TestReply Error() { return TestReply::Status(14, "busi unavailable"); }

  GlobalTrans Global(const std::string& gid) {
    auto t = dtm_->Query(gid);
    EXPECT_OK(t);
    return t.ok() ? t->trans : GlobalTrans{};
  }
  std::vector<BranchStatus> BranchStatuses(const std::string& gid) {
    std::vector<BranchStatus> out;
    auto t = dtm_->Query(gid);
    EXPECT_OK(t);
    if (t.ok()) {
      for (const auto& b : t->branches) out.push_back(b.status);
    }
    return out;
  }
  // Methods the branch service saw, in order, with their dtm-op.
  std::vector<std::string> Seen(const std::string& prefix = "") {
    std::vector<std::string> out;
    for (const auto& c : busi_->Calls()) {
      if (c.method.rfind(prefix, 0) == 0) out.push_back(c.method);
    }
    return out;
  }
  void Later(std::chrono::seconds d) {
    clock_.Advance(d);
    ASSERT_OK(dtm_->RunDue());
  }
  // Every transaction in the journal, newest first (List hands out at most
  // kMaxListLimit at a time).
  std::vector<GlobalTrans> AllTransactions() {
    std::vector<GlobalTrans> out;
    ListQuery q;
    q.limit = kMaxListLimit;
    for (;;) {
      auto page = dtm_->List(q);
      EXPECT_OK(page);
      if (!page.ok()) break;
      for (GlobalTrans& t : page->transactions) out.push_back(std::move(t));
      if (page->next_cursor == 0) break;
      q.cursor = page->next_cursor;
    }
    return out;
  }
  // Moves the clock `step` at a time and runs due work until every
  // transaction is finished.
  void Settle(std::chrono::seconds step = std::chrono::seconds(120),
              int rounds = 200) {
    for (int round = 0; round < rounds; ++round) {
      clock_.Advance(step);
      ASSERT_OK(dtm_->RunDue());
      bool open = false;
      for (const auto& t : AllTransactions())
        open = open || !IsFinished(t.status);
      if (!open) return;
    }
    FAIL() << "transactions still unfinished";
  }

  TempDir dir_;
  FakeClock clock_;
  // dtm's exact retry times (no RetryPolicy::jitter), which these tests
  // check; RetryJitterTest covers the jitter.
  Options options_ = [] {
    Options o;
    o.retry.jitter = 0;
    return o;
  }();
  // When set before Open() (or Reopen()), what the coordinator logs goes here.
  std::shared_ptr<Logger> logger_;
  // When set before Open(), the journal's and the coordinator's metrics go
  // there. A registry takes one coordinator's families: no Reopen().
  MetricsRegistry* metrics_ = nullptr;
  // When set before Open() (or Reopen()), alerts go there.
  AlertSink* alerts_ = nullptr;
  // When set, wraps the journal of every coordinator the test opens.
  std::function<std::unique_ptr<Journal>(std::unique_ptr<Journal>)>
      wrap_journal_;
  // Sets wrap_journal_ so that every coordinator opened from now on (Open,
  // Reopen) has its journal in a GatedJournal, gated_.
  void GateJournals() {
    wrap_journal_ = [this](std::unique_ptr<Journal> j) {
      auto gated = std::make_unique<GatedJournal>(std::move(j));
      gated_ = gated.get();
      return std::unique_ptr<Journal>(std::move(gated));
    };
  }
  GatedJournal* gated_ = nullptr;  // of the coordinator opened last
  // When set, wraps the branch client of every coordinator the test opens.
  std::function<std::unique_ptr<BranchClient>(std::unique_ptr<BranchClient>)>
      wrap_client_;
  std::unique_ptr<BranchTestServer> busi_;
  std::unique_ptr<Coordinator> dtm_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_INTEGRATION_COORDINATOR_TEST_UTIL_H_
