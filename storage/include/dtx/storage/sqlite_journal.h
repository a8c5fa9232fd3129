// SqliteJournal: the Journal on one SQLite file, the embedded default.
//
// The file is in WAL mode. All writes go through one writer thread that
// commits whatever is queued in one SQLite transaction (group commit), each
// write isolated by a savepoint so that it succeeds or fails on its own; a
// write's completion runs only after the COMMIT that made it durable. The
// writer thread hands each completion to the executor it was made with, in
// commit order; a completion without one runs on the writer thread itself
// and holds up every later commit while it runs. Close() returns once every
// queued write is completed.
// Readers use their own connections and never wait for the writer.
//
// Several processes may open the same file: SQLite serializes their writers,
// and Claim() leases due transactions so that no two coordinators process the
// same one at once. The schema is documented in storage/src/schema.cc.
//
//   dtx::SqliteJournalOptions options;
//   options.path = "/var/lib/payments/dtx.db";
//   DTX_ASSIGN_OR_RETURN(auto journal, dtx::SqliteJournal::Open(options));
//
// Open() returns kDataLoss for a corrupt file or one that is not a database,
// kFailedPrecondition for a database that is not a dtx journal or was written
// by a newer dtx, kUnavailable when another process holds the file locked
// longer than busy_timeout, kPermissionDenied or kNotFound when the file or
// its directory cannot be written or does not exist.
//
// Thread safety: thread-safe.

#ifndef DTX_STORAGE_SQLITE_JOURNAL_H_
#define DTX_STORAGE_SQLITE_JOURNAL_H_

#include "dtx/clock.h"
#include "dtx/journal.h"
#include "dtx/logger.h"
#include "dtx/storage/sqlite_export.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace dtx {

class MetricsRegistry;

struct DTX_SQLITE_EXPORT SqliteJournalOptions {
  // The journal file; created with its schema when absent (mode 0600, as
  // its -wal and -shm files then are). Its directory must exist and be
  // writable (SQLite keeps -wal and -shm files beside it). Open resolves it
  // to an absolute path, which messages name.
  std::string path = "dtx.db";

  // FULL: a completed write survives power loss. NORMAL: it survives a crash
  // of the process but the last commits may be lost on power loss; about 10x
  // more commits per second without group commit.
  enum class Sync { kFull, kNormal };
  Sync synchronous = Sync::kFull;

  // How long a write waits for a lock held by another connection or process
  // before failing with kUnavailable.
  std::chrono::milliseconds busy_timeout{5000};

  // Most writes committed in one SQLite transaction. 1 turns group commit off
  // (one commit per write); for comparisons only.
  std::size_t max_batch_writes = 1024;

  // How long a lazy write (StatusChange::lazy) that is the writer's only
  // work waits for another write to share its commit. 0: committed at once.
  std::chrono::microseconds lazy_write_hold = kLazyWriteHold;

  // The writer's page cache, in KiB (PRAGMA cache_size = -N). SQLite's
  // default, 2 MiB, holds the interior pages of a journal of some 100,000
  // transactions; past that every write reads parts of the indexes back from
  // the OS. Allocated as pages are used: a small journal uses little of it.
  int64_t writer_cache_kib = 32 * 1024;

  // Caps the file at this many pages (4096 bytes each); writes beyond fail
  // with kResourceExhausted and change nothing. Unset: no cap.
  std::optional<int64_t> max_page_count;

  // Runs PRAGMA quick_check at Open (O(file size)); a damaged file then fails
  // Open with kDataLoss instead of failing the reads that touch the damage.
  bool verify_on_open = false;

  // Timestamps written by the journal (update_time, finish_time, ...) come
  // from this clock. Borrowed; must outlive the journal. Null: SystemClock().
  const Clock* clock = nullptr;

  // Opens an existing journal for reading only, for tools beside a running
  // coordinator: never creates the file (kNotFound when it is missing),
  // never migrates it (kFailedPrecondition for an older or newer schema),
  // never changes its journal mode, and every write fails with
  // kFailedPrecondition. Reads run as with a writable journal (WAL lets them
  // run beside another process's writer).
  bool read_only = false;

  // When false, Open fails with kNotFound instead of creating a missing
  // file (a tool that must not leave an empty journal behind a typo).
  bool create_if_missing = true;

  // Null: no logging.
  std::shared_ptr<Logger> logger;

  // How often the writer checks, while idle, that `path` still names the
  // file it opened (it also checks before and after each batch). A journal
  // deleted, replaced or moved under a running writer is then lost: every
  // write and read answers kUnavailable naming the path, and `on_lost` is
  // called once, on the writer thread (keep it short: it holds up nothing
  // but must not call back into the journal). docs/journal.md ("Identity").
  std::chrono::milliseconds identity_check_interval{250};
  std::function<void(const Status&)> on_lost;

  // Borrowed; must outlive the journal. The writer's metrics are registered
  // in it at Open (dtx_journal_commit_duration_seconds,
  // dtx_journal_batch_writes, dtx_journal_queued_writes; docs/operations.md),
  // so one registry holds one journal's. Null: none.
  MetricsRegistry* metrics = nullptr;
};

class DTX_SQLITE_EXPORT SqliteJournal final : public Journal {
 public:
  static Result<std::unique_ptr<SqliteJournal>> Open(
      SqliteJournalOptions options);

  ~SqliteJournal() override;
  SqliteJournal(const SqliteJournal&) = delete;
  SqliteJournal& operator=(const SqliteJournal&) = delete;

  void SaveNew(GlobalTrans trans, std::vector<Branch> branches,
               WriteDone done) override;
  void AppendBranches(std::string gid, TransStatus expected,
                      std::vector<Branch> branches, WriteDone done) override;
  void ChangeStatus(StatusChange change, WriteDone done) override;
  void UpdateBranches(BranchResults results, WriteDone done) override;
  void TouchCron(CronUpdate update, WriteDone done) override;
  void MakeDue(std::string gid, TimePoint now, WriteDone done) override;
  void Claim(ClaimRequest request, ClaimDone done) override;
  void Flush(WriteDone done) override;
  void PurgeFinished(PurgeRequest request, PurgeDone done) override;

  Result<TransWithBranches> Find(const std::string& gid) override;
  Result<ListPage> List(const ListQuery& query) override;
  Result<UnfinishedSummary> Summarize(TimePoint now) override;
  Result<StatusCounts> CountByStatus() override;
  Result<DuePage> ListDue(TimePoint now, std::size_t limit,
                          DueCursor after) override;

  void Close() override;

  // Counters since Open, for benchmarks and tests.
  struct Stats {
    uint64_t writes = 0;   // writes that reached the writer thread
    uint64_t commits = 0;  // SQLite transactions committed
    uint64_t queued = 0;   // writes waiting, not yet taken into a commit
  };
  Stats stats() const;

  // The query plan SQLite chooses for ListDue and Claim, one line per step
  // (EXPLAIN QUERY PLAN); tests check that it stays an index range scan.
  Result<std::string> ExplainDueQuery();
  // The same for List(query): tests check which index each filter uses.
  Result<std::string> ExplainListQuery(const ListQuery& query);

 private:
  struct Impl;
  explicit SqliteJournal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_STORAGE_SQLITE_JOURNAL_H_
