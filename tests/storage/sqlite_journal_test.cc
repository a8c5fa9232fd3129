// SqliteJournal: the Journal contract, plus what is particular to SQLite
// (reopening, group commit, the schema, files that are not journals, a full
// disk). Tests that need a second process are in
// sqlite_journal_process_test.cc.

#include "dtx/storage/sqlite_journal.h"

#include "dtx/executor.h"
#include "dtx/metrics.h"

#include "journal_contract_test.h"
#include "lazy_write_check.h"
#include "recording_logger.h"
#include "status_matchers.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace dtx::testing {
namespace {

struct SqliteFactory {
  std::unique_ptr<Journal> Make(const Clock* clock) {
    SqliteJournalOptions options;
    options.path = dir.File("journal.db");
    options.clock = clock;
    // The contract does not depend on fsync; NORMAL keeps the suite fast.
    options.synchronous = SqliteJournalOptions::Sync::kNormal;
    auto journal = SqliteJournal::Open(options);
    EXPECT_OK(journal);
    return std::move(journal).value();
  }
  TempDir dir;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, JournalContractTest, SqliteFactory);

GlobalTrans Trans(const std::string& gid, const Clock& clock) {
  GlobalTrans t;
  t.gid = gid;
  t.trans_type = TransType::kSaga;
  t.status = TransStatus::kSubmitted;
  t.create_time = clock.Now();
  t.next_cron_time = clock.Now() + std::chrono::seconds(10);
  return t;
}

Status Save(Journal& j, const GlobalTrans& t, std::vector<Branch> b = {}) {
  return WaitForWrite(
      [&](WriteDone done) { j.SaveNew(t, std::move(b), std::move(done)); });
}

// Just the header fields of a schema version 1 journal: enough for an open
// to see that it is older than this build.
constexpr char kSchemaV1ForReadOnly[] = R"sql(
CREATE TABLE trans_global (id INTEGER PRIMARY KEY, gid TEXT NOT NULL UNIQUE);
PRAGMA user_version = 1;
PRAGMA application_id = 1685354545;
)sql";

class SqliteJournalTest : public ::testing::Test {
 protected:
  SqliteJournalOptions Options() {
    SqliteJournalOptions o;
    o.path = dir_.File("journal.db");
    o.clock = &clock_;
    return o;
  }
  std::unique_ptr<SqliteJournal> Open(SqliteJournalOptions o) {
    auto j = SqliteJournal::Open(std::move(o));
    EXPECT_OK(j);
    return j.ok() ? std::move(j).value() : nullptr;
  }
  // Runs SQL on the file with a plain SQLite connection.
  void RawExec(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  // Runs a query returning one integer with a plain SQLite connection.
  int64_t RawInt(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr),
              SQLITE_OK)
        << sql;
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW) << sql;
    const int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
  }

  TempDir dir_;
  FakeClock clock_;
};

TEST_F(SqliteJournalTest, DataSurvivesCloseAndReopen) {
  {
    auto j = Open(Options());
    ASSERT_OK(Save(*j, Trans("g-persist", clock_), SagaBranches(2)));
    j->Close();
  }
  auto j = Open(Options());
  ASSERT_OK_AND_ASSIGN(auto got, j->Find("g-persist"));
  EXPECT_EQ(got.branches.size(), 4u);
  EXPECT_THAT(Save(*j, Trans("g-persist", clock_)),
              StatusIs(StatusCode::kAlreadyExists));
}

TEST_F(SqliteJournalTest, ConcurrentWritersShareCommits) {
  auto j = Open(Options());
  constexpr int kThreads = 32;
  constexpr int kEach = 20;
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_OK(
            Save(*j, Trans("gc-" + std::to_string(w) + "-" + std::to_string(i),
                           clock_)));
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto stats = j->stats();
  EXPECT_EQ(stats.writes, static_cast<uint64_t>(kThreads * kEach));
  // With 32 writers waiting on fsync, commits carry several writes each.
  EXPECT_LT(stats.commits, stats.writes);
}

TEST_F(SqliteJournalTest, OneWritePerCommitWhenGroupCommitIsOff) {
  SqliteJournalOptions o = Options();
  o.max_batch_writes = 1;
  auto j = Open(o);
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 5; ++i) {
        ASSERT_OK(
            Save(*j, Trans("one-" + std::to_string(w) + "-" + std::to_string(i),
                           clock_)));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(j->stats().commits, 40u);
  EXPECT_EQ(j->stats().writes, 40u);
}

// dtx/executor.h, inline completions: the writer offers its thread as idle
// only when that write was its only work. The first write's executor holds
// the writer while eight more are queued; they then commit as one batch,
// whose completions are offered the thread as busy.
TEST_F(SqliteJournalTest, OnlyALoneWritesCompletionIsOfferedTheWriter) {
  auto j = Open(Options());
  std::promise<bool> first_offered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Executor hold = [&](std::function<void()> fn) {
    first_offered.set_value(InlineCompletionOffered() == InlineOffer::kIdle);
    released.wait();
    fn();
  };
  std::promise<Status> first_done;
  j->SaveNew(Trans("lone", clock_), {},
             WriteDone(hold, [&](Status s) { first_done.set_value(s); }));
  EXPECT_TRUE(first_offered.get_future().get());

  constexpr int kMore = 8;
  std::mutex mu;
  std::vector<InlineOffer> offered;
  Executor record = [&](std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu);
      offered.push_back(InlineCompletionOffered());
    }
    fn();
  };
  std::vector<std::promise<Status>> done(kMore);
  for (int i = 0; i < kMore; ++i) {
    j->SaveNew(Trans("batch-" + std::to_string(i), clock_), {},
               WriteDone(record, [&done, i](Status s) {
                 done[static_cast<size_t>(i)].set_value(s);
               }));
  }
  release.set_value();
  EXPECT_OK(first_done.get_future().get());
  for (auto& d : done) EXPECT_OK(d.get_future().get());
  EXPECT_THAT(offered, ::testing::Each(InlineOffer::kBusy));
  EXPECT_EQ(offered.size(), static_cast<size_t>(kMore));
  // Off the writer's thread nothing is offered.
  EXPECT_EQ(InlineCompletionOffered(), InlineOffer::kNone);
  EXPECT_FALSE(InlineCompletionAllowed());
}

// A lazy write that is the writer's only work waits for the next write and
// commits with it (journal.h, kLazyWriteHold); a Flush or Close ends the wait
// at once. The hold is an hour here, so that only they end it.
TEST_F(SqliteJournalTest, ALazyWriteAloneWaitsToShareTheNextCommit) {
  SqliteJournalOptions o = Options();
  o.lazy_write_hold = std::chrono::hours(1);
  auto j = Open(o);
  for (const char* gid : {"lazy-a", "lazy-b", "lazy-c", "lazy-d"})
    ASSERT_OK(Save(*j, Trans(gid, clock_)));
  CheckLazyWriteHold(*j, Trans("lazy-next", clock_));
}

TEST_F(SqliteJournalTest, MetricsCountEveryCommitAndItsWrites) {
  MetricsRegistry registry;
  SqliteJournalOptions o = Options();
  o.metrics = &registry;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 5; ++i) {
        ASSERT_OK(Save(
            *j,
            Trans("m-" + std::to_string(w) + "-" + std::to_string(i), clock_)));
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto stats = j->stats();
  const std::string text = registry.RenderText();
  // One observation per commit; the batch sizes add up to the writes.
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "\ndtx_journal_commit_duration_seconds_count " +
                        std::to_string(stats.commits) + "\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("\ndtx_journal_batch_writes_count " +
                                         std::to_string(stats.commits) + "\n"));
  EXPECT_THAT(text,
              ::testing::HasSubstr("\ndtx_journal_batch_writes_sum 40\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("\ndtx_journal_queued_writes 0\n"));
  j->Close();
  j.reset();
  // Closed: the gauge is unregistered; the family stays, without a sample.
  EXPECT_THAT(
      registry.RenderText(),
      ::testing::Not(::testing::HasSubstr("\ndtx_journal_queued_writes ")));
}

TEST_F(SqliteJournalTest, TwoJournalsCannotShareARegistry) {
  MetricsRegistry registry;
  SqliteJournalOptions o = Options();
  o.metrics = &registry;
  auto first = Open(o);
  ASSERT_NE(first, nullptr);
  o.path = dir_.File("other.db");
  EXPECT_THAT(SqliteJournal::Open(o).status(),
              StatusIs(StatusCode::kAlreadyExists));
}

TEST_F(SqliteJournalTest, FailedWriteInABatchDoesNotFailItsNeighbours) {
  auto j = Open(Options());
  ASSERT_OK(Save(*j, Trans("exists", clock_)));
  // Queue a burst so that the writes share one commit.
  std::vector<std::pair<std::string, Status>> results(40);
  std::atomic<int> pending{40};
  for (int i = 0; i < 40; ++i) {
    const std::string gid =
        i % 4 == 0 ? "exists" : "burst-" + std::to_string(i);
    results[i].first = gid;
    j->SaveNew(Trans(gid, clock_), SagaBranches(1), [&, i](Status s) {
      results[i].second = s;
      --pending;
    });
  }
  ASSERT_OK(WaitForWrite([&](WriteDone done) { j->Flush(std::move(done)); }));
  EXPECT_EQ(pending.load(), 0);
  for (const auto& [gid, s] : results) {
    if (gid == "exists") {
      EXPECT_THAT(s, StatusIs(StatusCode::kAlreadyExists));
    } else {
      EXPECT_OK(s);
      ASSERT_OK_AND_ASSIGN(auto got, j->Find(gid));
      EXPECT_EQ(got.branches.size(), 2u);
    }
  }
  ASSERT_OK_AND_ASSIGN(auto kept, j->Find("exists"));
  EXPECT_TRUE(kept.branches.empty());
}

TEST_F(SqliteJournalTest, SchemaIsVersionedAndMarked) {
  auto j = Open(Options());
  j->Close();
  const std::string path = dir_.File("journal.db");
  auto query_int = [&](const char* sql) { return RawInt(path, sql); };
  EXPECT_EQ(query_int("PRAGMA user_version"), 5);
  EXPECT_EQ(query_int("PRAGMA application_id"), 0x64747831);
  EXPECT_EQ(query_int("SELECT COUNT(*) FROM sqlite_schema WHERE name IN "
                      "('trans_global', 'trans_branch_op', 'trans_global_due', "
                      "'trans_branch_op_key', 'trans_status_count')"),
            5);
  // Nothing is left of the tables that migrations replaced.
  EXPECT_EQ(query_int("SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE "
                      "'%_v2%'"),
            0);
  // Opening again does not migrate twice.
  EXPECT_NE(Open(Options()), nullptr);
}

TEST_F(SqliteJournalTest, ReadOnlyOpenReadsAndRefusesEveryWrite) {
  auto writer = Open(Options());
  ASSERT_OK(Save(*writer, Trans("ro-1", clock_)));
  SqliteJournalOptions ro = Options();
  ro.read_only = true;
  // Beside the open writer, as dtxctl beside a running coordinator.
  auto reader = Open(ro);
  ASSERT_NE(reader, nullptr);
  auto found = reader->Find("ro-1");
  ASSERT_OK(found);
  EXPECT_EQ(found->trans.status, TransStatus::kSubmitted);
  EXPECT_OK(reader->CountByStatus());
  StatusChange change;
  change.gid = "ro-1";
  change.from = TransStatus::kSubmitted;
  change.to = TransStatus::kFailed;
  Status s = WaitForWrite(
      [&](WriteDone done) { reader->ChangeStatus(change, std::move(done)); });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("read-only"));
  s = WaitForWrite([&](WriteDone done) {
    reader->MakeDue("ro-1", clock_.Now(), std::move(done));
  });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  auto claimed = WaitForClaim(*reader, ClaimRequest{});
  EXPECT_EQ(claimed.status().code(), StatusCode::kFailedPrecondition);
  // What the writer writes next is visible to the reader.
  ASSERT_OK(Save(*writer, Trans("ro-2", clock_)));
  EXPECT_OK(reader->Find("ro-2"));
  EXPECT_EQ(writer->Find("ro-1")->trans.status, TransStatus::kSubmitted);
}

TEST_F(SqliteJournalTest, ReadOnlyOpenNeverCreatesAMissingFile) {
  SqliteJournalOptions ro = Options();
  ro.path = dir_.File("missing.db");
  ro.read_only = true;
  auto j = SqliteJournal::Open(ro);
  EXPECT_EQ(j.status().code(), StatusCode::kNotFound) << j.status();
  EXPECT_THAT(std::string(j.status().message()),
              ::testing::HasSubstr("no such file"));
  EXPECT_NE(access(ro.path.c_str(), F_OK), 0);
  // Nor does a writable open told not to create.
  SqliteJournalOptions rw = Options();
  rw.path = ro.path;
  rw.create_if_missing = false;
  j = SqliteJournal::Open(rw);
  EXPECT_EQ(j.status().code(), StatusCode::kNotFound) << j.status();
  EXPECT_NE(access(ro.path.c_str(), F_OK), 0);
}

TEST_F(SqliteJournalTest, ReadOnlyOpenNeverMigratesAnOlderJournal) {
  const std::string path = dir_.File("journal.db");
  RawExec(path, kSchemaV1ForReadOnly);
  SqliteJournalOptions ro = Options();
  ro.read_only = true;
  auto j = SqliteJournal::Open(ro);
  EXPECT_EQ(j.status().code(), StatusCode::kFailedPrecondition) << j.status();
  EXPECT_THAT(std::string(j.status().message()),
              ::testing::HasSubstr("older dtx"));
  EXPECT_EQ(RawInt(path, "PRAGMA user_version"), 1);
  // An empty database is not a journal either, and stays empty.
  const std::string empty = dir_.File("empty.db");
  RawExec(empty, "PRAGMA user_version = 0");
  ro.path = empty;
  j = SqliteJournal::Open(ro);
  EXPECT_EQ(j.status().code(), StatusCode::kFailedPrecondition) << j.status();
  EXPECT_EQ(RawInt(empty, "SELECT COUNT(*) FROM sqlite_schema"), 0);
}

// A journal written by schema version 1 (branch rows keyed by gid), as that
// version's migration created it. Frozen: it must not follow later changes.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE trans_global (
  id INTEGER PRIMARY KEY, gid TEXT NOT NULL UNIQUE, trans_type TEXT NOT NULL,
  status TEXT NOT NULL, query_prepared TEXT NOT NULL DEFAULT '',
  protocol TEXT NOT NULL DEFAULT 'grpc', create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL, finish_time INTEGER, rollback_time INTEGER,
  options TEXT NOT NULL DEFAULT '', custom_data TEXT NOT NULL DEFAULT '',
  next_cron_interval INTEGER NOT NULL DEFAULT 0,
  next_cron_time INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL DEFAULT '',
  ext_data TEXT NOT NULL DEFAULT '', result TEXT NOT NULL DEFAULT '',
  rollback_reason TEXT NOT NULL DEFAULT '',
  retry_count INTEGER NOT NULL DEFAULT 0) STRICT;
CREATE INDEX trans_global_due ON trans_global(next_cron_time)
  WHERE status IN ('prepared', 'submitted', 'aborting');
CREATE TABLE trans_branch_op (
  id INTEGER PRIMARY KEY, gid TEXT NOT NULL, url TEXT NOT NULL DEFAULT '',
  bin_data BLOB NOT NULL DEFAULT x'', branch_id TEXT NOT NULL,
  op TEXT NOT NULL, status TEXT NOT NULL, finish_time INTEGER,
  rollback_time INTEGER, create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL, UNIQUE (gid, branch_id, op)) STRICT;
PRAGMA user_version = 1;
PRAGMA application_id = 1685354545;
)sql";

TEST_F(SqliteJournalTest, AVersion1JournalIsMigratedWithEveryRow) {
  const std::string path = dir_.File("journal.db");
  RawExec(path, kSchemaV1);
  // Two transactions whose branch rows interleave, as concurrent TCCs leave
  // them, one of them finished; and a row whose transaction is missing.
  RawExec(path, R"sql(
INSERT INTO trans_global (id, gid, trans_type, status, create_time,
  update_time, next_cron_time)
VALUES (7, 'old-tcc', 'tcc', 'prepared', 1000, 1000, 5000),
       (9, 'old-saga', 'saga', 'succeed', 1000, 2000, 0);
INSERT INTO trans_branch_op (id, gid, url, bin_data, branch_id, op, status,
  create_time, update_time)
VALUES (1, 'old-tcc', 'h:1/s.S/Cancel', x'0102', '01', 'cancel', 'prepared',
        1000, 1000),
       (2, 'old-saga', '', x'', '01', 'compensate', 'prepared', 1000, 1000),
       (3, 'old-tcc', 'h:1/s.S/Confirm', x'0102', '01', 'confirm',
        'prepared', 1000, 1000),
       (4, 'old-saga', '', x'', '01', 'action', 'succeed', 1000, 2000),
       (5, 'gone', '', x'', '01', 'action', 'prepared', 1000, 1000);
)sql");

  auto log = std::make_shared<RecordingLogger>();
  SqliteJournalOptions o = Options();
  o.logger = log;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  EXPECT_THAT(log->Text(),
              ::testing::HasSubstr("migrating from schema version 1 to 5 (5 "
                                   "branch rows)"));
  EXPECT_THAT(log->Text(),
              ::testing::HasSubstr("migrated to schema version 5"));
  ASSERT_OK_AND_ASSIGN(auto tcc, j->Find("old-tcc"));
  ASSERT_EQ(tcc.branches.size(), 2u);
  EXPECT_EQ(tcc.branches[0].op, BranchOp::kCancel);
  EXPECT_EQ(tcc.branches[0].url, "h:1/s.S/Cancel");
  EXPECT_EQ(tcc.branches[0].bin_data, std::string("\x01\x02"));
  EXPECT_EQ(tcc.branches[1].op, BranchOp::kConfirm);
  ASSERT_OK_AND_ASSIGN(auto saga, j->Find("old-saga"));
  ASSERT_EQ(saga.branches.size(), 2u);
  EXPECT_EQ(saga.branches[1].status, BranchStatus::kSucceed);
  EXPECT_EQ(saga.trans.status, TransStatus::kSucceed);

  // The migrated rows take part in every write as new ones do.
  Branch dup = tcc.branches[1];
  EXPECT_THAT(WaitForWrite([&](WriteDone done) {
                j->AppendBranches("old-tcc", TransStatus::kPrepared, {dup},
                                  std::move(done));
              }),
              StatusIs(StatusCode::kAlreadyExists));
  Branch next = dup;
  next.branch_id = "02";
  ASSERT_OK(WaitForWrite([&](WriteDone done) {
    j->AppendBranches("old-tcc", TransStatus::kPrepared, {next},
                      std::move(done));
  }));
  StatusChange c;
  c.gid = "old-tcc";
  c.from = TransStatus::kPrepared;
  c.to = TransStatus::kSubmitted;
  c.expected_branch_rows = 3;
  c.branch_updates = {{"01", BranchOp::kConfirm, BranchStatus::kSucceed}};
  ASSERT_OK(WaitForWrite(
      [&](WriteDone done) { j->ChangeStatus(c, std::move(done)); }));
  ASSERT_OK_AND_ASSIGN(tcc, j->Find("old-tcc"));
  ASSERT_EQ(tcc.branches.size(), 3u);
  EXPECT_EQ(tcc.branches[1].status, BranchStatus::kSucceed);
  EXPECT_EQ(tcc.branches[2].branch_id, "02");
  EXPECT_EQ(tcc.trans.status, TransStatus::kSubmitted);
  ASSERT_OK_AND_ASSIGN(StatusCounts counts, j->CountByStatus());
  EXPECT_EQ(counts[TransStatus::kSubmitted], 1);
  EXPECT_EQ(counts[TransStatus::kSucceed], 1);
  EXPECT_EQ(counts[TransStatus::kPrepared], 0);
  j->Close();

  EXPECT_EQ(RawInt(path, "SELECT trans_id FROM trans_branch_op WHERE id = 5"),
            0)
      << "an orphan row is kept";
}

// Schema version 2's trans_branch_op, as migration 1 -> 2 left it. Frozen.
constexpr char kSchemaV2BranchTable[] = R"sql(
DROP TABLE trans_branch_op;
CREATE TABLE trans_branch_op (
  id INTEGER PRIMARY KEY, trans_id INTEGER NOT NULL, gid TEXT NOT NULL,
  url TEXT NOT NULL DEFAULT '', bin_data BLOB NOT NULL DEFAULT x'',
  branch_id TEXT NOT NULL, op TEXT NOT NULL, status TEXT NOT NULL,
  finish_time INTEGER, rollback_time INTEGER, create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL) STRICT;
CREATE UNIQUE INDEX trans_branch_op_key
  ON trans_branch_op(trans_id, branch_id, op);
PRAGMA user_version = 2;
)sql";

TEST_F(SqliteJournalTest, AVersion2JournalGainsRetryStateAndKeepsItsRows) {
  const std::string path = dir_.File("journal.db");
  RawExec(path, kSchemaV1);
  RawExec(path, kSchemaV2BranchTable);
  RawExec(path, R"sql(
INSERT INTO trans_global (id, gid, trans_type, status, create_time,
  update_time, next_cron_time)
VALUES (3, 'v2-saga', 'saga', 'submitted', 1000, 1000, 5000);
INSERT INTO trans_branch_op (id, trans_id, gid, url, bin_data, branch_id, op,
  status, create_time, update_time)
VALUES (1, 3, 'v2-saga', 'h:1/s.S/Undo', x'01', '01', 'compensate',
        'prepared', 1000, 1000),
       (2, 3, 'v2-saga', 'h:1/s.S/Do', x'01', '01', 'action', 'succeed',
        1000, 2000);
)sql");
  auto log = std::make_shared<RecordingLogger>();
  SqliteJournalOptions o = Options();
  o.logger = log;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  EXPECT_THAT(log->Text(),
              ::testing::HasSubstr("migrating from schema version 2 to 5"));
  ASSERT_OK_AND_ASSIGN(auto saga, j->Find("v2-saga"));
  ASSERT_EQ(saga.branches.size(), 2u);
  EXPECT_EQ(saga.branches[1].status, BranchStatus::kSucceed);
  for (const Branch& b : saga.branches) {
    EXPECT_EQ(b.attempts, 0);
    EXPECT_FALSE(b.last_try_time.has_value());
    EXPECT_EQ(b.last_error, "");
  }
  // The old rows record attempts like new ones.
  const TimePoint tried = FromUnixMillis(7000);
  ASSERT_OK(WaitForWrite([&](WriteDone done) {
    j->UpdateBranches(
        {"v2-saga",
         TransStatus::kSubmitted,
         {{"01", BranchOp::kCompensate, BranchStatus::kPrepared,
           BranchAttempt{tried, "TRANSIENT: connection refused"}}}},
        std::move(done));
  }));
  ASSERT_OK_AND_ASSIGN(saga, j->Find("v2-saga"));
  EXPECT_EQ(saga.branches[0].attempts, 1);
  EXPECT_EQ(saga.branches[0].last_try_time, tried);
  EXPECT_EQ(saga.branches[0].last_error, "TRANSIENT: connection refused");
  j->Close();
  EXPECT_EQ(RawInt(path, "PRAGMA user_version"), 5);
}

// Schema version 3's additions to version 2, as migration 2 -> 3 made them.
// Frozen.
constexpr char kSchemaV3Additions[] = R"sql(
ALTER TABLE trans_branch_op ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trans_branch_op ADD COLUMN last_try_time INTEGER;
ALTER TABLE trans_branch_op ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
PRAGMA user_version = 3;
)sql";

TEST_F(SqliteJournalTest, AVersion3JournalGainsStatusCountsOfItsRows) {
  const std::string path = dir_.File("journal.db");
  RawExec(path, kSchemaV1);
  RawExec(path, kSchemaV2BranchTable);
  RawExec(path, kSchemaV3Additions);
  RawExec(path, R"sql(
INSERT INTO trans_global (id, gid, trans_type, status, create_time,
  update_time, next_cron_time)
VALUES (1, 'v3-a', 'saga', 'succeed', 1000, 1000, 0),
       (2, 'v3-b', 'saga', 'succeed', 1000, 1000, 0),
       (3, 'v3-c', 'saga', 'failed', 1000, 1000, 0),
       (4, 'v3-d', 'tcc', 'prepared', 1000, 1000, 5000),
       (5, 'v3-e', 'saga', 'submitted', 1000, 1000, 5000),
       (6, 'v3-f', 'msg', 'submitted', 1000, 1000, 5000);
)sql");
  auto log = std::make_shared<RecordingLogger>();
  SqliteJournalOptions o = Options();
  o.logger = log;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  EXPECT_THAT(log->Text(),
              ::testing::HasSubstr("migrating from schema version 3 to 5"));
  ASSERT_OK_AND_ASSIGN(StatusCounts c, j->CountByStatus());
  EXPECT_EQ(c.by_status, (std::array<int64_t, 5>{1, 2, 0, 2, 1}));
  // The counts follow writes to the migrated rows and to new ones.
  StatusChange change;
  change.gid = "v3-e";
  change.from = TransStatus::kSubmitted;
  change.to = TransStatus::kAborting;
  ASSERT_OK(WaitForWrite(
      [&](WriteDone done) { j->ChangeStatus(change, std::move(done)); }));
  ASSERT_OK(Save(*j, Trans("v4-new", clock_)));
  ASSERT_OK_AND_ASSIGN(c, j->CountByStatus());
  EXPECT_EQ(c.by_status, (std::array<int64_t, 5>{1, 2, 1, 2, 1}));
  j->Close();
  for (const char* status :
       {"prepared", "submitted", "aborting", "succeed", "failed"}) {
    EXPECT_EQ(RawInt(path, std::string("SELECT n FROM trans_status_count "
                                       "WHERE status = '") +
                               status + "'"),
              RawInt(path, std::string("SELECT COUNT(*) FROM trans_global "
                                       "WHERE status = '") +
                               status + "'"))
        << status;
  }
  EXPECT_EQ(RawInt(path, "PRAGMA user_version"), 5);
}

TEST_F(SqliteJournalTest, StatusCountsStayExactUnderConcurrentWriters) {
  auto j = Open(Options());
  constexpr int kThreads = 4, kEach = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string gid =
            "w" + std::to_string(t) + "-" + std::to_string(i);
        GlobalTrans g = Trans(gid, clock_);
        EXPECT_OK(Save(*j, g));
        // A duplicate that must not count.
        EXPECT_THAT(Save(*j, g), StatusIs(StatusCode::kAlreadyExists));
        if (i % 2 == 0) {
          StatusChange c;
          c.gid = gid;
          c.from = TransStatus::kSubmitted;
          c.to = i % 4 == 0 ? TransStatus::kSucceed : TransStatus::kAborting;
          EXPECT_OK(WaitForWrite(
              [&](WriteDone done) { j->ChangeStatus(c, std::move(done)); }));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_OK_AND_ASSIGN(StatusCounts c, j->CountByStatus());
  EXPECT_EQ(c[TransStatus::kSubmitted], kThreads * kEach / 2);
  EXPECT_EQ(c[TransStatus::kSucceed], kThreads * kEach / 4);
  EXPECT_EQ(c[TransStatus::kAborting], kThreads * kEach / 4);
  EXPECT_EQ(c[TransStatus::kPrepared] + c[TransStatus::kFailed], 0);
}

TEST_F(SqliteJournalTest, ListFiltersUseAnIndex) {
  auto j = Open(Options());
  auto plan = [&](const ListQuery& q) {
    auto p = j->ExplainListQuery(q);
    EXPECT_OK(p);
    return p.value_or("");
  };
  using ::testing::HasSubstr;
  ListQuery prefix;
  prefix.gid_prefix = "order-";
  EXPECT_THAT(plan(prefix), HasSubstr("INDEX sqlite_autoindex_trans_global_1 "
                                      "(gid>? AND gid<?)"));
  prefix.cursor = 42;  // later pages too, not a scan back from the cursor
  EXPECT_THAT(plan(prefix), HasSubstr("(gid>? AND gid<?)"));
  prefix.gid_prefix = "\xff";  // no upper bound
  EXPECT_THAT(plan(prefix), HasSubstr("(gid>?)"));
  ListQuery unfinished;
  unfinished.unfinished_only = true;
  EXPECT_THAT(plan(unfinished), HasSubstr("USING INDEX trans_global_due"));
  unfinished.cursor = 42;
  unfinished.gid_prefix = "order-";
  EXPECT_THAT(plan(unfinished), HasSubstr("USING INDEX trans_global_due"));
  ListQuery submitted;
  submitted.status = TransStatus::kSubmitted;  // an unfinished status
  EXPECT_THAT(plan(submitted), HasSubstr("USING INDEX trans_global_due"));
  ListQuery newest;  // no filter: the row id, newest first, no sort
  newest.cursor = 42;
  EXPECT_THAT(plan(newest), HasSubstr("USING INTEGER PRIMARY KEY (rowid<?)"));
  EXPECT_THAT(plan(newest), ::testing::Not(HasSubstr("TEMP B-TREE")));
}

TEST_F(SqliteJournalTest, AMigrationThatFailsLeavesTheOldVersion) {
  const std::string path = dir_.File("journal.db");
  RawExec(path, kSchemaV1);
  RawExec(path, R"sql(
INSERT INTO trans_global (id, gid, trans_type, status, create_time,
  update_time) VALUES (1, 'kept', 'saga', 'submitted', 1000, 1000);
INSERT INTO trans_branch_op (gid, branch_id, op, status, create_time,
  update_time) VALUES ('kept', '01', 'action', 'prepared', 1000, 1000);
)sql");
  const int64_t pages = RawInt(path, "PRAGMA page_count");
  // No room for the rebuilt table: the migration fails whole.
  SqliteJournalOptions full = Options();
  full.max_page_count = pages;
  EXPECT_THAT(SqliteJournal::Open(full),
              StatusIs(StatusCode::kResourceExhausted));
  EXPECT_EQ(RawInt(path, "PRAGMA user_version"), 1);
  EXPECT_EQ(RawInt(path, "SELECT COUNT(*) FROM trans_branch_op"), 1);
  // With room, the same file migrates and keeps its rows.
  auto j = Open(Options());
  ASSERT_NE(j, nullptr);
  ASSERT_OK_AND_ASSIGN(auto kept, j->Find("kept"));
  EXPECT_EQ(kept.branches.size(), 1u);
}

TEST_F(SqliteJournalTest, CloseCompletesEveryQueuedWriteInOrder) {
  constexpr int kWrites = 5000;
  std::vector<int> order;
  std::mutex mu;
  {
    auto j = Open(Options());
    for (int i = 0; i < kWrites; ++i) {
      j->SaveNew(Trans("q-" + std::to_string(i), clock_), SagaBranches(2),
                 [&, i](Status s) {
                   EXPECT_OK(s);
                   std::lock_guard<std::mutex> lock(mu);
                   order.push_back(i);
                 });
    }
    j->Close();
    // Every completion has run before Close returned, in the order queued.
    ASSERT_EQ(order.size(), static_cast<std::size_t>(kWrites));
    for (int i = 0; i < kWrites; ++i) ASSERT_EQ(order[i], i);
    // A write after Close is refused at once.
    EXPECT_THAT(Save(*j, Trans("late", clock_)),
                StatusIs(StatusCode::kFailedPrecondition, "closed"));
  }
  auto j = Open(Options());
  ListQuery q;
  q.limit = kWrites + 10;
  ASSERT_OK_AND_ASSIGN(auto page, j->List(q));
  EXPECT_EQ(page.transactions.size(), static_cast<std::size_t>(kWrites));
}

TEST_F(SqliteJournalTest, DueScansUseThePartialIndexInOrder) {
  auto j = Open(Options());
  ASSERT_OK_AND_ASSIGN(std::string plan, j->ExplainDueQuery());
  EXPECT_THAT(plan, ::testing::HasSubstr("USING INDEX trans_global_due"));
  EXPECT_THAT(plan, ::testing::Not(::testing::HasSubstr("TEMP B-TREE")));
  EXPECT_THAT(plan,
              ::testing::Not(::testing::HasSubstr("SCAN trans_global\n")));
}

TEST_F(SqliteJournalTest, ANewerSchemaIsRefused) {
  { auto j = Open(Options()); }
  RawExec(dir_.File("journal.db"), "PRAGMA user_version = 99");
  EXPECT_THAT(SqliteJournal::Open(Options()),
              StatusIs(StatusCode::kFailedPrecondition,
                       "newer dtx (schema version 99"));
}

TEST_F(SqliteJournalTest, AnotherApplicationsDatabaseIsRefused) {
  const std::string path = dir_.File("journal.db");
  RawExec(path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
  EXPECT_THAT(SqliteJournal::Open(Options()),
              StatusIs(StatusCode::kFailedPrecondition, "not a dtx journal"));
  RawExec(path, "PRAGMA application_id = 42");
  EXPECT_THAT(SqliteJournal::Open(Options()),
              StatusIs(StatusCode::kFailedPrecondition, "another application"));
  // Untouched: the refused file keeps its table.
  RawExec(path, "SELECT * FROM customers");
}

TEST_F(SqliteJournalTest, GarbageFileIsDataLoss) {
  const std::string path = dir_.File("journal.db");
  {
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < 4096; ++i) f << "this is not a database ";
  }
  EXPECT_THAT(SqliteJournal::Open(Options()),
              StatusIs(StatusCode::kDataLoss, "not a database"));
}

TEST_F(SqliteJournalTest, DamagedPagesAreDataLossNotACrash) {
  const std::string path = dir_.File("journal.db");
  {
    auto j = Open(Options());
    for (int i = 0; i < 300; ++i) {
      ASSERT_OK(
          Save(*j, Trans("dmg-" + std::to_string(i), clock_), SagaBranches(3)));
    }
  }  // the last close checkpoints the WAL into the main file
  {
    // Overwrite everything after the first page (the header and schema).
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(0, std::ios::end);
    const std::streamoff size = f.tellp();
    ASSERT_GT(size, 8 * 4096);
    f.seekp(4096);
    const std::string junk(static_cast<std::size_t>(size - 4096), '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  SqliteJournalOptions verify = Options();
  verify.verify_on_open = true;
  EXPECT_THAT(SqliteJournal::Open(verify), StatusIs(StatusCode::kDataLoss));

  // Without the check, Open may succeed, but every read that touches the
  // damage reports it.
  auto j = SqliteJournal::Open(Options());
  if (j.ok()) {
    EXPECT_THAT((*j)->Find("dmg-10"), StatusIs(StatusCode::kDataLoss));
    ListQuery q;
    EXPECT_THAT((*j)->List(q), StatusIs(StatusCode::kDataLoss));
  } else {
    EXPECT_THAT(j, StatusIs(StatusCode::kDataLoss));
  }
}

// Found by fuzz/journal_rows: a stored time past TimePoint's range (2262)
// overflowed when read (UBSan: signed integer overflow in FromUnixMillis).
// Such a row is damage, reported as such and naming the column.
TEST_F(SqliteJournalTest, AStoredTimeOutOfRangeIsDataLoss) {
  const std::string path = dir_.File("journal.db");
  {
    auto j = Open(Options());
    ASSERT_OK(Save(*j, Trans("far-1", clock_), SagaBranches(1)));
    ASSERT_OK(Save(*j, Trans("far-2", clock_), SagaBranches(1)));
    ASSERT_OK(Save(*j, Trans("far-3", clock_), SagaBranches(1)));
  }
  RawExec(path, R"sql(
UPDATE trans_global SET create_time = -9223372036854775808 WHERE gid = 'far-1';
UPDATE trans_global SET next_cron_interval = 9223372036854775807
  WHERE gid = 'far-2';
UPDATE trans_branch_op SET last_try_time = 9223372036854775807
  WHERE gid = 'far-3';
)sql");
  auto j = Open(Options());
  EXPECT_THAT(j->Find("far-1"),
              StatusIs(StatusCode::kDataLoss,
                       "gid far-1: create_time -9223372036854775808 ms is "
                       "outside the years 1740..2200"));
  EXPECT_THAT(j->Find("far-2"),
              StatusIs(StatusCode::kDataLoss, "gid far-2: next_cron_interval"));
  EXPECT_THAT(j->Find("far-3"),
              StatusIs(StatusCode::kDataLoss, "last_try_time"));
}

TEST_F(SqliteJournalTest, FullDiskFailsTheWriteAndLosesNothing) {
  SqliteJournalOptions o = Options();
  o.max_page_count = 40;
  auto j = Open(o);
  std::vector<std::string> saved;
  Status last;
  for (int i = 0; i < 1000; ++i) {
    const std::string gid = "full-" + std::to_string(i);
    last = Save(*j, Trans(gid, clock_),
                {MakeBranch("01", BranchOp::kAction, "h:1/s.S/M",
                            std::string(2000, 'p'))});
    if (!last.ok()) break;
    saved.push_back(gid);
  }
  ASSERT_THAT(last, StatusIs(StatusCode::kResourceExhausted, "disk full"));
  ASSERT_FALSE(saved.empty());
  const std::string failed_gid = "full-" + std::to_string(saved.size());
  EXPECT_THAT(j->Find(failed_gid), StatusIs(StatusCode::kNotFound));
  for (const auto& gid : saved) ASSERT_OK(j->Find(gid));
  j->Close();

  // With room again, the same write succeeds and the earlier ones are intact.
  o.max_page_count = 100000;
  j = Open(o);
  ASSERT_OK(Save(*j, Trans(failed_gid, clock_)));
  for (const auto& gid : saved) {
    ASSERT_OK_AND_ASSIGN(auto got, j->Find(gid));
    EXPECT_EQ(got.branches.at(0).bin_data.size(), 2000u);
  }
}

// Issue 19's reproducer: `rm journal.db*` under an open journal. SQLite
// would go on committing into the unlinked file and every write answered OK.
TEST_F(SqliteJournalTest, ADeletedJournalIsLostAndNothingIsAcknowledgedAfter) {
  std::atomic<int> lost_calls{0};
  SqliteJournalOptions o = Options();
  o.on_lost = [&](const Status& s) {
    EXPECT_EQ(s.code(), StatusCode::kUnavailable);
    ++lost_calls;
  };
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  ASSERT_OK(Save(*j, Trans("kept", clock_)));
  for (const char* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(o.path + suffix);
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(Save(*j, Trans("after-" + std::to_string(i), clock_)),
                StatusIs(StatusCode::kUnavailable, o.path));
  }
  EXPECT_THAT(WaitForWrite([&](WriteDone done) { j->Flush(std::move(done)); }),
              StatusIs(StatusCode::kUnavailable, "journal file is gone"));
  // A gid written before is not reported missing: the store failed.
  EXPECT_THAT(j->Find("kept"), StatusIs(StatusCode::kUnavailable, o.path));
  EXPECT_THAT(j->List(ListQuery{}), StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(lost_calls.load(), 1);
  j->Close();
  EXPECT_FALSE(std::filesystem::exists(o.path));
}

TEST_F(SqliteJournalTest, AReplacedOrMovedJournalIsLost) {
  SqliteJournalOptions o = Options();
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  ASSERT_OK(Save(*j, Trans("kept", clock_)));
  // Moved away and another file put at its path: the path names another
  // inode, which the writer must not take for its journal.
  std::filesystem::rename(o.path, dir_.File("moved.db"));
  std::ofstream(o.path) << "";
  EXPECT_THAT(Save(*j, Trans("after", clock_)),
              StatusIs(StatusCode::kUnavailable, "was replaced"));
  EXPECT_THAT(j->Find("kept"), StatusIs(StatusCode::kUnavailable));
}

TEST_F(SqliteJournalTest, ALostJournalIsNoticedWithoutAWrite) {
  std::promise<Status> lost;
  SqliteJournalOptions o = Options();
  o.identity_check_interval = std::chrono::milliseconds(10);
  o.on_lost = [&](const Status& s) { lost.set_value(s); };
  auto logger = std::make_shared<RecordingLogger>();
  o.logger = logger;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  std::filesystem::remove(o.path);
  std::future<Status> noticed = lost.get_future();
  ASSERT_EQ(noticed.wait_for(std::chrono::seconds(30)),
            std::future_status::ready);
  EXPECT_THAT(noticed.get(), StatusIs(StatusCode::kUnavailable, o.path));
  EXPECT_THAT(logger->Text(),
              ::testing::HasSubstr("error journal: " + o.path +
                                   ": the journal file is gone"));
}

TEST_F(SqliteJournalTest, ARelativePathIsOpenedAndNamedAbsolute) {
  auto logger = std::make_shared<RecordingLogger>();
  SqliteJournalOptions o = Options();
  o.path = std::filesystem::relative(dir_.File("rel.db")).string();
  ASSERT_FALSE(std::filesystem::path(o.path).is_absolute());
  o.logger = logger;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  EXPECT_THAT(
      logger->Text(),
      ::testing::HasSubstr(
          "journal: opened " +
          std::filesystem::absolute(o.path).lexically_normal().string()));
}

TEST_F(SqliteJournalTest, NewJournalFilesAreOwnerOnly) {
  SqliteJournalOptions o = Options();
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  ASSERT_OK(Save(*j, Trans("t", clock_)));
  for (const char* suffix : {"", "-wal", "-shm"}) {
    struct stat st;
    ASSERT_EQ(::stat((o.path + suffix).c_str(), &st), 0) << suffix;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << o.path << suffix;
  }
}

TEST_F(SqliteJournalTest, MissingDirectoryIsNotFound) {
  SqliteJournalOptions o = Options();
  o.path = dir_.File("no/such/dir/journal.db");
  EXPECT_THAT(SqliteJournal::Open(o),
              StatusIs(StatusCode::kNotFound, "no/such/dir"));
}

TEST_F(SqliteJournalTest, EmptyPathIsInvalid) {
  SqliteJournalOptions o = Options();
  o.path.clear();
  EXPECT_THAT(SqliteJournal::Open(o), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace dtx::testing
