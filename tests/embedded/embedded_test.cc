#include "dtx/embedded.h"

#include "dtx/dtx.h"
#include "dtx/storage/wal_index_guard.h"

#include "status_matchers.h"
#include "temp_dir.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

namespace dtx {
namespace {

using ::dtx::testing::StatusIs;
using ::dtx::testing::TempDir;

TEST(EmbeddedTest, DefaultJournalPathIsDtms) {
  EXPECT_EQ(EmbeddedOptions().journal_path, "dtx.db");
}

TEST(EmbeddedTest, RejectsAnEmptyJournalPath) {
  EmbeddedOptions embedded;
  embedded.journal_path.clear();
  EXPECT_THAT(OpenEmbeddedCoordinator(Options(), embedded),
              StatusIs(StatusCode::kInvalidArgument, "journal_path"));
}

TEST(EmbeddedTest, RejectsBadCoreOptionsBeforeOpeningTheJournal) {
  TempDir dir;
  Options options;
  options.io_threads = 0;
  EmbeddedOptions embedded;
  embedded.journal_path = dir.File("dtx.db");
  EXPECT_THAT(OpenEmbeddedCoordinator(options, embedded),
              StatusIs(StatusCode::kInvalidArgument, "io_threads"));
  EXPECT_FALSE(std::filesystem::exists(embedded.journal_path));
}

TEST(EmbeddedTest, KeepsTransactionsInTheJournalAtJournalPath) {
  TempDir dir;
  EmbeddedOptions embedded;
  embedded.journal_path = dir.File("dtx.db");
  embedded.durable_on_power_loss = false;
  std::string gid;
  {
    ASSERT_OK_AND_ASSIGN(auto dtm,
                         OpenEmbeddedCoordinator(Options(), embedded));
    ASSERT_OK_AND_ASSIGN(gid, dtm->NewGid());
    ASSERT_OK(Saga(*dtm, gid).Add("", "", "").WaitResult(true).Submit());
    dtm->Shutdown();
  }
  EXPECT_TRUE(std::filesystem::exists(embedded.journal_path));
  ASSERT_OK_AND_ASSIGN(auto reopened,
                       OpenEmbeddedCoordinator(Options(), embedded));
  ASSERT_OK_AND_ASSIGN(auto found, reopened->Query(gid));
  EXPECT_EQ(found.trans.status, TransStatus::kSucceed);
  reopened->Shutdown();
}

// Issue 19's reproducer, embedded: `rm dtx.db*` under a running coordinator.
TEST(EmbeddedTest, ADeletedJournalRefusesSubmitsAndReads) {
  TempDir dir;
  EmbeddedOptions embedded;
  embedded.journal_path = dir.File("dtx.db");
  embedded.durable_on_power_loss = false;
  std::atomic<int> lost{0};
  embedded.on_journal_lost = [&](const Status&) { ++lost; };
  ASSERT_OK_AND_ASSIGN(auto dtm, OpenEmbeddedCoordinator(Options(), embedded));
  ASSERT_OK(Saga(*dtm, "before").Add("", "", "").WaitResult(true).Submit());
  for (const char* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(embedded.journal_path + suffix);
  EXPECT_THAT(Saga(*dtm, "after").Add("", "", "").WaitResult(true).Submit(),
              StatusIs(StatusCode::kUnavailable, embedded.journal_path));
  EXPECT_THAT(dtm->Query("before"), StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(lost.load(), 1);
  dtm->Shutdown();
  EXPECT_FALSE(std::filesystem::exists(embedded.journal_path));
}

// The host opts in (guard_wal_index); the process then survives a
// truncated -shm and the journal is lost as a deleted one.
TEST(EmbeddedTest, GuardWalIndexLosesTheJournalOnATruncatedShm) {
  TempDir dir;
  EmbeddedOptions embedded;
  embedded.journal_path = dir.File("dtx.db");
  embedded.durable_on_power_loss = false;
  embedded.guard_wal_index = true;
  std::atomic<int> lost{0};
  embedded.on_journal_lost = [&](const Status&) { ++lost; };
  ASSERT_OK_AND_ASSIGN(auto dtm, OpenEmbeddedCoordinator(Options(), embedded));
  EXPECT_TRUE(WalIndexGuardInstalled());
  ASSERT_OK(Saga(*dtm, "before").Add("", "", "").WaitResult(true).Submit());
  // A query waits for the writes queued before it: the final status too.
  ASSERT_OK_AND_ASSIGN(TransWithBranches done, dtm->Query("before"));
  ASSERT_EQ(done.trans.status, TransStatus::kSucceed);
  std::filesystem::resize_file(embedded.journal_path + "-shm", 0);
  EXPECT_THAT(Saga(*dtm, "after").Add("", "", "").WaitResult(true).Submit(),
              StatusIs(StatusCode::kUnavailable, "WAL index"));
  EXPECT_THAT(dtm->Query("before"), StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(lost.load(), 1);
  dtm->Shutdown();
  ASSERT_OK_AND_ASSIGN(auto reopened,
                       OpenEmbeddedCoordinator(Options(), embedded));
  ASSERT_OK_AND_ASSIGN(TransWithBranches t, reopened->Query("before"));
  EXPECT_EQ(t.trans.status, TransStatus::kSucceed);
  EXPECT_THAT(reopened->Query("after"), StatusIs(StatusCode::kNotFound));
}

TEST(EmbeddedTest, JournalCreateFalseRefusesAMissingJournal) {
  TempDir dir;
  EmbeddedOptions embedded;
  embedded.journal_path = dir.File("dtx.db");
  embedded.journal_create = false;
  EXPECT_THAT(OpenEmbeddedCoordinator(Options(), embedded),
              StatusIs(StatusCode::kNotFound, "no such file"));
  EXPECT_FALSE(std::filesystem::exists(embedded.journal_path));
}

TEST(EmbeddedTest, TargetNeedsTheKratosDriver) {
  TempDir dir;
  EmbeddedOptions embedded;
  embedded.journal_path = dir.File("dtx.db");
  embedded.target = "discovery://127.0.0.1:2379/dtmservice";
  EXPECT_THAT(OpenEmbeddedCoordinator(Options(), embedded),
              StatusIs(StatusCode::kInvalidArgument, "dtm-driver-kratos"));
}

TEST(EmbeddedTest, PostgresNeedsAServerAndTwoConnections) {
  TempDir dir;
  EmbeddedOptions embedded;
  embedded.journal_path = dir.File("dtx.db");
  embedded.postgres.emplace();
  EXPECT_THAT(OpenEmbeddedCoordinator(Options(), embedded),
              StatusIs(StatusCode::kInvalidArgument,
                       "neither conninfo nor host is set"));
  embedded.postgres->host = "127.0.0.1";
  embedded.postgres->max_open_conns = 1;
  EXPECT_THAT(OpenEmbeddedCoordinator(Options(), embedded),
              StatusIs(StatusCode::kInvalidArgument, "max_open_conns 1"));
  // Every writer holds one of max_open_conns, and one is left for reads.
  embedded.postgres->writers = 2;
  embedded.postgres->max_open_conns = 2;
  EXPECT_THAT(OpenEmbeddedCoordinator(Options(), embedded),
              StatusIs(StatusCode::kInvalidArgument,
                       "needs 2 connection(s) for writes"));
  embedded.postgres->writers = 0;
  EXPECT_THAT(OpenEmbeddedCoordinator(Options(), embedded),
              StatusIs(StatusCode::kInvalidArgument, "writers is 0"));
  // With postgres set, nothing is written at journal_path.
  EXPECT_FALSE(std::filesystem::exists(embedded.journal_path));
}

}  // namespace
}  // namespace dtx
