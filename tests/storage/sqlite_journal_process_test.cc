// SqliteJournal against other processes: a writer killed with SIGKILL in the
// middle of a write stream, a file locked by another process, a directory this
// process may not write.

#include "dtx/clock.h"
#include "dtx/journal.h"
#include "dtx/storage/sqlite_journal.h"

#include "status_matchers.h"
#include "subprocess.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <signal.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace dtx::testing {
namespace {

constexpr const char* kHelper = DTX_JOURNAL_TEST_HELPER;

Subprocess StartHelper(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kHelper};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Subprocess::Start(argv);
  if (!p.ok()) {
    ADD_FAILURE() << p.status();
    std::abort();
  }
  return std::move(p).value();
}

std::unique_ptr<SqliteJournal> OpenJournal(
    const std::string& path,
    std::chrono::milliseconds busy = std::chrono::seconds(5)) {
  SqliteJournalOptions o;
  o.path = path;
  o.busy_timeout = busy;
  auto j = SqliteJournal::Open(o);
  EXPECT_OK(j);
  return j.ok() ? std::move(j).value() : nullptr;
}

// Kills a writer at many points of a stream; every write it saw acknowledged
// is in the journal afterwards, and nothing is half-written. All rounds use
// one file, so each round also recovers what the previous kills left.
TEST(SqliteJournalCrashTest, EveryAcknowledgedWriteSurvivesSigkill) {
  TempDir dir;
  const std::string path = dir.File("crash.db");
  // Kill after different numbers of acknowledgements, so that the kill lands
  // in different phases of the writer (queueing, applying, committing).
  const std::vector<int> kill_after = {1, 7, 40, 150, 333, 600};
  std::map<std::string, int> acked;  // gid -> highest step acknowledged (1..3)
  for (std::size_t round = 0; round < kill_after.size(); ++round) {
    const std::string prefix = "r" + std::to_string(round) + "-";
    Subprocess writer = StartHelper({"stream", path, "8", prefix});
    for (int lines = 0; lines < kill_after[round]; ++lines) {
      auto line = writer.ReadLine();
      ASSERT_TRUE(line.has_value())
          << "writer stopped early in round " << round;
      const auto space = line->find(' ');
      const std::string kind = line->substr(0, space);
      const int step = kind == "new" ? 1 : kind == "br" ? 2 : 3;
      int& best = acked[line->substr(space + 1)];
      best = std::max(best, step);
    }
    writer.Kill(SIGKILL);
    EXPECT_EQ(writer.Wait(), 128 + SIGKILL);

    auto journal = OpenJournal(path);
    ASSERT_NE(journal, nullptr);
    for (const auto& [gid, step] : acked) {
      ASSERT_OK_AND_ASSIGN(TransWithBranches got, journal->Find(gid));
      ASSERT_EQ(got.branches.size(), 2u) << gid;
      EXPECT_EQ(got.branches[1].bin_data, "payload of " + gid);
      if (step >= 2) {
        EXPECT_EQ(got.branches[1].status, BranchStatus::kSucceed) << gid;
      }
      if (step >= 3) {
        EXPECT_EQ(got.trans.status, TransStatus::kSucceed) << gid;
      }
    }
    // Whatever the writer had in flight is either whole or absent.
    ListQuery q;
    q.limit = 100000;
    ASSERT_OK_AND_ASSIGN(ListPage page, journal->List(q));
    EXPECT_GE(page.transactions.size(), acked.size());
    for (const auto& t : page.transactions) {
      ASSERT_OK_AND_ASSIGN(TransWithBranches got, journal->Find(t.gid));
      EXPECT_EQ(got.branches.size(), 2u) << t.gid;
    }
  }
}

TEST(SqliteJournalLockTest, WritesWaitForAnotherProcessesLockThenFailClearly) {
  TempDir dir;
  const std::string path = dir.File("locked.db");
  auto journal = OpenJournal(path, std::chrono::milliseconds(300));
  ASSERT_NE(journal, nullptr);
  GlobalTrans t;
  t.gid = "before-lock";
  ASSERT_OK(WaitForWrite(
      [&](WriteDone done) { journal->SaveNew(t, {}, std::move(done)); }));

  Subprocess holder = StartHelper({"lock", path});
  ASSERT_EQ(holder.ReadLine(), "locked");
  t.gid = "during-lock";
  EXPECT_THAT(WaitForWrite([&](WriteDone done) {
                journal->SaveNew(t, {}, std::move(done));
              }),
              StatusIs(StatusCode::kUnavailable, "locked by another"));
  // Reads are not blocked by a writer in WAL mode.
  EXPECT_OK(journal->Find("before-lock"));
  EXPECT_THAT(journal->Find("during-lock"), StatusIs(StatusCode::kNotFound));

  holder.CloseStdin();
  EXPECT_EQ(holder.Wait(), 0);
  // The caller was told; retrying now succeeds.
  EXPECT_OK(WaitForWrite(
      [&](WriteDone done) { journal->SaveNew(t, {}, std::move(done)); }));
  EXPECT_OK(journal->Find("during-lock"));
}

TEST(SqliteJournalLockTest,
     OpenFailsClearlyWhileAnotherProcessHoldsTheFileExclusively) {
  TempDir dir;
  const std::string path = dir.File("exclusive.db");
  OpenJournal(path).reset();  // create it
  Subprocess holder = StartHelper({"exclusive", path});
  ASSERT_EQ(holder.ReadLine(), "locked");
  SqliteJournalOptions o;
  o.path = path;
  o.busy_timeout = std::chrono::milliseconds(300);
  EXPECT_THAT(SqliteJournal::Open(o), StatusIs(StatusCode::kUnavailable));
  holder.CloseStdin();
  EXPECT_EQ(holder.Wait(), 0);
  EXPECT_OK(SqliteJournal::Open(o));
}

TEST(SqliteJournalPermissionTest, ReadOnlyDirectoryIsPermissionDenied) {
  TempDir dir;
  const std::string ro = dir.File("ro");
  ASSERT_EQ(mkdir(ro.c_str(), 0555), 0);
  ASSERT_EQ(chmod(ro.c_str(), 0555), 0);
  // Root ignores permission bits: the helper drops to an unprivileged user.
  std::vector<std::string> args = {"open", ro + "/journal.db"};
  if (geteuid() == 0) args.push_back("--as-nobody");
  Subprocess opener = StartHelper(args);
  auto line = opener.ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line,
              ::testing::StartsWith("open PERMISSION_DENIED: journal: " + ro));
  EXPECT_EQ(opener.Wait(), 0);
}

TEST(SqliteJournalPermissionTest, ReadOnlyJournalFileIsPermissionDenied) {
  TempDir dir;
  const std::string path = dir.File("journal.db");
  OpenJournal(path).reset();
  ASSERT_EQ(chmod(path.c_str(), 0444), 0);
  std::vector<std::string> args = {"open", path};
  if (geteuid() == 0) args.push_back("--as-nobody");
  Subprocess opener = StartHelper(args);
  auto line = opener.ReadLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_THAT(*line, ::testing::StartsWith("open PERMISSION_DENIED"));
  opener.Wait();
}

// The WAL index guard (dtx/storage/wal_index_guard.h), each case in a
// helper process since it installs a process-wide SIGBUS handler.
// How a helper ends that takes a SIGBUS no one handles: killed by it, or,
// under AddressSanitizer, whose own SIGBUS handler (the one the guard passes
// other faults to) reports the fault and exits 1.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DTX_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define DTX_TEST_ASAN 1
#endif
constexpr int kDiedOfSigbus =
#if defined(DTX_TEST_ASAN)
    1;
#else
    128 + SIGBUS;
#endif

std::vector<std::string> LinesOf(Subprocess& p) {
  std::vector<std::string> out;
  while (auto line = p.ReadLine()) out.push_back(*line);
  return out;
}

TEST(WalIndexGuardTest, WithoutTheGuardATruncatedShmKillsTheProcess) {
  TempDir dir;
  Subprocess p = StartHelper({"shm", dir.File("j.db"), "noguard"});
  const std::vector<std::string> lines = LinesOf(p);
  EXPECT_EQ(p.Wait(), kDiedOfSigbus);
  EXPECT_THAT(lines, ::testing::ElementsAre("first OK"));
}

TEST(WalIndexGuardTest, ATruncatedShmLosesTheJournalAndNothingIsWritten) {
  TempDir dir;
  const std::string path = dir.File("j.db");
  Subprocess p = StartHelper({"shm", path, "guard"});
  const std::vector<std::string> lines = LinesOf(p);
  EXPECT_EQ(p.Wait(), 0);
  ASSERT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "first OK");
  EXPECT_THAT(lines[1], ::testing::StartsWith("second UNAVAILABLE"));
  EXPECT_THAT(lines[1], ::testing::HasSubstr("WAL index"));
  EXPECT_THAT(lines[2], ::testing::StartsWith("find UNAVAILABLE"));
  EXPECT_EQ(lines[3], "lost");
  // Opened again, the index is rebuilt from the WAL: the first write is
  // there, the refused one is not, and the file is sound.
  auto journal = OpenJournal(path);
  ASSERT_NE(journal, nullptr);
  EXPECT_OK(journal->Find("before-truncate"));
  EXPECT_THAT(journal->Find("after-truncate").status(),
              StatusIs(StatusCode::kNotFound));
}

TEST(WalIndexGuardTest, OtherFaultsGoToTheHandlerInstalledBefore) {
  TempDir dir;
  Subprocess p = StartHelper({"other-fault", dir.File("j.db"), "chain"});
  EXPECT_THAT(LinesOf(p), ::testing::ElementsAre("touching"));
  EXPECT_EQ(p.Wait(), 42);
}

TEST(WalIndexGuardTest, OtherFaultsStillKillWithoutAHandlerBefore) {
  TempDir dir;
  Subprocess p = StartHelper({"other-fault", dir.File("j.db"), "nochain"});
  EXPECT_THAT(LinesOf(p), ::testing::ElementsAre("touching"));
  EXPECT_EQ(p.Wait(), kDiedOfSigbus);
}

}  // namespace
}  // namespace dtx::testing
