// JournalWriter: the one thread that writes a SqliteJournal, with group
// commit. Callers queue WriteOps; the thread takes everything queued, applies
// it in one SQLite transaction and, once that is committed (or has failed),
// completes each op in commit order. storage/src/journal_writer.cc describes
// the batch.
//
// Thread safety: Enqueue, Close and stats are thread-safe. The write
// connection belongs to the writer thread from Start until Close.

#ifndef DTX_STORAGE_JOURNAL_WRITER_H_
#define DTX_STORAGE_JOURNAL_WRITER_H_

#include "dtx/clock.h"
#include "dtx/internal/mutex.h"
#include "dtx/logger.h"
#include "dtx/metrics.h"
#include "dtx/result.h"
#include "dtx/status.h"

#include "sqlite_handle.h"
#include "sqlite_journal_ops.h"
#include "wal_index_guard.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace dtx::internal {

// Which file a path names (device and inode), to notice a journal that was
// deleted, replaced or moved under a running writer: SQLite keeps writing
// into the file it has open, which is then lost.
struct FileIdentity {
  std::string path;
  uint64_t device = 0;
  uint64_t inode = 0;

  // kNotFound when `path` names nothing; kUnavailable for another error.
  static Result<FileIdentity> Of(const std::string& path);
  // Ok while `path` still names the same file; else kUnavailable naming
  // the path and what happened to it.
  Status Check() const;
};

class JournalWriter {
 public:
  struct Options {
    // Most ops committed in one SQLite transaction (at least 1).
    std::size_t max_batch_writes = 1024;
    // A lazy op alone waits this long for company (TakeBatch).
    std::chrono::microseconds lazy_write_hold = kLazyWriteHold;
    // Stamps the writes. Borrowed; must outlive the writer.
    const Clock* clock = nullptr;
    std::shared_ptr<Logger> logger;
    // Borrowed; must outlive the writer. Null: no metrics.
    MetricsRegistry* metrics = nullptr;
    // The journal file as it was opened (FileIdentity::Of): checked every
    // identity_check_interval and before and after each batch. Unset: never
    // checked.
    std::optional<FileIdentity> identity;
    std::chrono::milliseconds identity_check_interval{250};
    // The journal's entry in the WAL index guard (wal_index_guard.h), whose
    // faults lose the journal as a missing file does; null: none. Borrowed:
    // outlives the writer.
    const WalIndexWatch* wal_index = nullptr;
    // Called once, on the writer thread, when the file is found lost.
    std::function<void(const Status&)> on_lost;
  };

  // Takes `db`, the journal's configured write connection with its schema
  // in place, and starts the writer thread. kResourceExhausted when no
  // thread can be started.
  static Result<std::unique_ptr<JournalWriter>> Start(std::unique_ptr<Db> db,
                                                      Options options);
  // Calls Close().
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Queues `op`. After Close it is completed at once, on the caller's
  // thread, with kFailedPrecondition.
  void Enqueue(std::unique_ptr<WriteOp> op);

  // Completes every queued op, stops the thread and releases the connection.
  // Idempotent. Never from the writer thread (a completion).
  void Close();

  struct Stats {
    uint64_t writes = 0;   // ops applied to the store
    uint64_t commits = 0;  // SQLite transactions committed
    uint64_t queued = 0;   // ops waiting, not yet taken into a batch
  };
  Stats stats() const;

  // Ok until the file is found lost (Options::identity); then the
  // kUnavailable every write and read answers from then on.
  Status lost() const;

 private:
  JournalWriter(std::unique_ptr<Db> db, Options options);
  Status PrepareStatements();
  Status RegisterMetrics(MetricsRegistry& registry);
  void Loop();
  // Moves queued ops into `batch` (up to max_batch_writes); a batch of lazy
  // ops only first waits up to kLazyWriteHold for another.
  void TakeBatch(std::vector<std::unique_ptr<WriteOp>>& batch)
      DTX_REQUIRES(mu_);
  // Nothing is waiting to be written (the next batch would be empty).
  bool QueueEmpty() const DTX_EXCLUDES(mu_);
  // Applies `batch` in one transaction; results[i] is the outcome of
  // batch[i].
  void RunBatch(std::vector<std::unique_ptr<WriteOp>>& batch,
                std::vector<Status>& results);
  // Checks the identity; false (and the file marked lost, on_lost called
  // the first time) when it changed. Writer thread only.
  bool CheckIdentity();

  const Options options_;
  const std::string path_;  // for messages

  // The writer thread's, once started.
  std::unique_ptr<Db> db_;
  std::unique_ptr<Stmt> savepoint_;
  std::unique_ptr<Stmt> release_;
  std::unique_ptr<Stmt> rollback_to_;

  mutable Mutex mu_;
  CondVar cv_{&mu_};
  std::deque<std::unique_ptr<WriteOp>> queue_ DTX_GUARDED_BY(mu_);
  bool closing_ DTX_GUARDED_BY(mu_) = false;
  uint64_t stat_writes_ DTX_GUARDED_BY(mu_) = 0;
  uint64_t stat_commits_ DTX_GUARDED_BY(mu_) = 0;
  Status lost_ DTX_GUARDED_BY(mu_);
  std::atomic<bool> is_lost_{false};  // lost_ is set; read without mu_
  // kUnavailable once Options::wal_index has counted a fault.
  Status WalIndexLost() const;
  std::thread thread_;

  // Null without a registry. The gauge reads queue_ under mu_; declared after
  // it, so that it is unregistered first.
  Histogram* commit_seconds_ = nullptr;
  Histogram* batch_writes_ = nullptr;
  CallbackGauge queued_;
};

}  // namespace dtx::internal

#endif  // DTX_STORAGE_JOURNAL_WRITER_H_
