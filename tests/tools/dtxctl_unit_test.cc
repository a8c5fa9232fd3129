// dtxctl's parts without the binary: the journal back-end's compare-and-set
// writes when the coordinator changed the transaction meanwhile (a wrapper
// journal makes that change between dtxctl's read and its write), and the
// output helpers.

#include "dtx/storage/sqlite_journal.h"

#include "backend.h"
#include "output.h"
#include "status_matchers.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace dtx::testing {
namespace {

using ::testing::HasSubstr;

// Forwards every call to a real journal; runs `before_write` (once) before
// forwarding the first ChangeStatus or MakeDue: what a coordinator writing
// between dtxctl's Find and its write would do.
class InterposedJournal final : public Journal {
 public:
  explicit InterposedJournal(std::unique_ptr<Journal> inner)
      : inner_(std::move(inner)) {}
  std::function<void(Journal&)> before_write;

  void SaveNew(GlobalTrans t, std::vector<Branch> b, WriteDone d) override {
    inner_->SaveNew(std::move(t), std::move(b), std::move(d));
  }
  void AppendBranches(std::string g, TransStatus e, std::vector<Branch> b,
                      WriteDone d) override {
    inner_->AppendBranches(std::move(g), e, std::move(b), std::move(d));
  }
  void ChangeStatus(StatusChange c, WriteDone d) override {
    Interpose();
    inner_->ChangeStatus(std::move(c), std::move(d));
  }
  void UpdateBranches(BranchResults r, WriteDone d) override {
    inner_->UpdateBranches(std::move(r), std::move(d));
  }
  void TouchCron(CronUpdate u, WriteDone d) override {
    inner_->TouchCron(std::move(u), std::move(d));
  }
  void MakeDue(std::string g, TimePoint now, WriteDone d) override {
    Interpose();
    inner_->MakeDue(std::move(g), now, std::move(d));
  }
  void Claim(ClaimRequest r, ClaimDone d) override {
    inner_->Claim(std::move(r), std::move(d));
  }
  void Flush(WriteDone d) override { inner_->Flush(std::move(d)); }
  Result<TransWithBranches> Find(const std::string& gid) override {
    return inner_->Find(gid);
  }
  Result<ListPage> List(const ListQuery& q) override { return inner_->List(q); }
  Result<DuePage> ListDue(TimePoint now, std::size_t limit,
                          DueCursor after) override {
    return inner_->ListDue(now, limit, after);
  }
  Result<UnfinishedSummary> Summarize(TimePoint now) override {
    return inner_->Summarize(now);
  }
  Result<StatusCounts> CountByStatus() override {
    return inner_->CountByStatus();
  }
  void Close() override { inner_->Close(); }

 private:
  void Interpose() {
    if (auto f = std::exchange(before_write, nullptr)) f(*inner_);
  }
  std::unique_ptr<Journal> inner_;
};

class JournalBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SqliteJournalOptions options;
    options.path = dir_.File("dtx.db");
    auto journal = SqliteJournal::Open(options);
    ASSERT_OK(journal);
    auto wrapper = std::make_unique<InterposedJournal>(std::move(*journal));
    journal_ = wrapper.get();
    GlobalTrans t;
    t.gid = "g1";
    t.trans_type = TransType::kSaga;
    t.status = TransStatus::kSubmitted;
    t.next_cron_time = std::chrono::system_clock::now() + std::chrono::hours(1);
    ASSERT_OK(WaitForWrite(
        [&](WriteDone done) { journal_->SaveNew(t, {}, std::move(done)); }));
    backend_ = dtxctl::MakeJournalBackend(std::move(wrapper));
  }
  static void Change(Journal& j, TransStatus from, TransStatus to) {
    StatusChange c;
    c.gid = "g1";
    c.from = from;
    c.to = to;
    ASSERT_OK(WaitForWrite([&](WriteDone done) {
      j.ChangeStatus(std::move(c), std::move(done));
    }));
  }
  TransStatus Stored() { return backend_->Find("g1")->trans.status; }

  TempDir dir_;
  InterposedJournal* journal_ = nullptr;
  std::unique_ptr<dtxctl::Backend> backend_;
};

TEST_F(JournalBackendTest, ForceStopFailsWhenTheStatusChangedMeanwhile) {
  // The coordinator decides to abort between dtxctl's read and its write.
  journal_->before_write = [](Journal& j) {
    Change(j, TransStatus::kSubmitted, TransStatus::kAborting);
  };
  Status s = backend_->ForceStop("g1");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("changed meanwhile"));
  EXPECT_EQ(Stored(), TransStatus::kAborting);  // nothing overwritten
  // From the status it reads now, the force-stop applies.
  EXPECT_OK(backend_->ForceStop("g1"));
  EXPECT_EQ(Stored(), TransStatus::kFailed);
  EXPECT_EQ(backend_->Find("g1")->trans.rollback_reason,
            "force stopped by dtxctl");
}

TEST_F(JournalBackendTest, RetryFailsWhenItFinishedMeanwhile) {
  journal_->before_write = [](Journal& j) {
    Change(j, TransStatus::kSubmitted, TransStatus::kSucceed);
  };
  Status s = backend_->RetryNow("g1");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("finished meanwhile"));
  EXPECT_EQ(Stored(), TransStatus::kSucceed);
}

TEST_F(JournalBackendTest, RetryMakesItDueNow) {
  const auto before = std::chrono::system_clock::now();
  ASSERT_OK(backend_->RetryNow("g1"));
  auto stats = backend_->Stats();
  ASSERT_OK(stats);
  EXPECT_EQ(stats->unfinished.due, 1);
  EXPECT_LE(backend_->Find("g1")->trans.next_cron_time,
            std::chrono::system_clock::now());
  EXPECT_GE(
      backend_->Find("g1")->trans.next_cron_time + std::chrono::seconds(1),
      before);
  EXPECT_EQ(backend_->RetryNow("nope").code(), StatusCode::kNotFound);
}

TEST(DtxctlOutputTest, AgesReadAsAnOperatorSaysThem) {
  using std::chrono::seconds;
  EXPECT_EQ(dtxctl::Age(seconds(-5)), "0s");
  EXPECT_EQ(dtxctl::Age(seconds(45)), "45s");
  EXPECT_EQ(dtxctl::Age(seconds(192)), "3m12s");
  EXPECT_EQ(dtxctl::Age(seconds(2 * 3600 + 5 * 60 + 9)), "2h05m");
  EXPECT_EQ(dtxctl::Age(seconds(3 * 86400 + 4 * 3600)), "3d04h");
}

TEST(DtxctlOutputTest, LocalTimeIsRfc3339WithTheLocalOffset) {
  setenv("TZ", "UTC", 1);
  tzset();
  const TimePoint t = TimePoint{} + std::chrono::milliseconds(1764670272345);
  EXPECT_EQ(dtxctl::LocalTime(t), "2025-12-02T10:11:12Z");
  EXPECT_EQ(dtxctl::LocalTime(t, /*millis=*/true), "2025-12-02T10:11:12.345Z");
  setenv("TZ", "CET-1", 1);
  tzset();
  EXPECT_EQ(dtxctl::LocalTime(t), "2025-12-02T11:11:12+01:00");
  setenv("TZ", "<-0330>3:30", 1);
  tzset();
  EXPECT_EQ(dtxctl::LocalTime(t), "2025-12-02T06:41:12-03:30");
  unsetenv("TZ");
  tzset();
  EXPECT_EQ(dtxctl::LocalTime(std::optional<TimePoint>()), "-");
}

TEST(DtxctlOutputTest, TableColumnsAreAligned) {
  dtxctl::Table table({"GID", "STATUS"});
  table.Add({"a-long-gid", "failed"});
  table.Add({"g", "succeed"});
  std::ostringstream out;
  table.Print(out);
  EXPECT_EQ(out.str(),
            "GID         STATUS\n"
            "a-long-gid  failed\n"
            "g           succeed\n");
}

}  // namespace
}  // namespace dtx::testing
