// PgJournalWriter: the one thread that writes a PostgresJournal, with group
// commit, as JournalWriter does for SQLite: callers queue PgWriteOps; the
// thread takes everything queued, applies it in one PostgreSQL transaction
// and, once that is committed (or has failed), completes each op in commit
// order. postgres_writer.cc describes the batch and the failures.
//
// Thread safety: Enqueue, Close and stats are thread-safe. The connection
// belongs to the writer thread from Start until Close.

#ifndef DTX_STORAGE_POSTGRES_WRITER_H_
#define DTX_STORAGE_POSTGRES_WRITER_H_

#include "dtx/clock.h"
#include "dtx/internal/mutex.h"
#include "dtx/logger.h"
#include "dtx/metrics.h"
#include "dtx/result.h"
#include "dtx/status.h"

#include "postgres_conn.h"
#include "postgres_ops.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace dtx::internal {

class PgJournalWriter {
 public:
  struct Options {
    // How to (re)connect.
    PgConn::Options connection;
    // Most ops committed in one transaction (at least 1).
    std::size_t max_batch_writes = 1024;
    // A lazy op alone waits this long for company (TakeBatch).
    std::chrono::microseconds lazy_write_hold = kLazyWriteHold;
    // Sends a batch's statements in libpq's pipeline mode (a round trip per
    // kPipelineStatements instead of one per statement). False: one
    // statement at a time, as after a pipelined batch that met a miss.
    bool pipeline = true;
    // Stamps the writes. Borrowed; must outlive the writer.
    const Clock* clock = nullptr;
    std::shared_ptr<Logger> logger;
    // Where each commit's duration and size are observed (the journal
    // registers them once for all its writers). Borrowed; must outlive the
    // writer. Null: not observed.
    Histogram* commit_seconds = nullptr;
    Histogram* batch_writes = nullptr;
  };

  // Takes `conn`, a connection with the schema in place, and starts the
  // writer thread. kResourceExhausted when no thread can be started.
  static Result<std::unique_ptr<PgJournalWriter>> Start(
      std::unique_ptr<PgConn> conn, Options options);
  ~PgJournalWriter();
  PgJournalWriter(const PgJournalWriter&) = delete;
  PgJournalWriter& operator=(const PgJournalWriter&) = delete;

  // Queues `op`. After Close it is completed at once, on the caller's
  // thread, with kFailedPrecondition.
  void Enqueue(std::unique_ptr<PgWriteOp> op);

  // Completes every queued op, stops the thread and closes the connection.
  // Idempotent. Never from the writer thread (a completion).
  void Close();

  struct Stats {
    uint64_t writes = 0;      // ops applied in committed transactions
    uint64_t commits = 0;     // transactions committed
    uint64_t reruns = 0;      // batches run again without a failed op
    uint64_t reconnects = 0;  // connections opened after the first
    uint64_t pipelined = 0;   // transactions committed from a pipeline
    uint64_t fallbacks = 0;   // pipelined batches run again one by one
  };

  // Statements sent in one pipeline round at most: far fewer small results
  // than the socket buffers hold, so that neither side blocks.
  static constexpr std::size_t kPipelineStatements = 128;
  Stats stats() const;
  // Ops queued and not yet taken into a batch.
  std::size_t queued() const DTX_EXCLUDES(mu_);

 private:
  PgJournalWriter(std::unique_ptr<PgConn> conn, Options options);
  void Loop();
  // Moves queued ops into `batch` (up to max_batch_writes); a batch of lazy
  // ops only first waits up to kLazyWriteHold for another.
  void TakeBatch(std::vector<std::unique_ptr<PgWriteOp>>& batch)
      DTX_REQUIRES(mu_);
  // Nothing is waiting to be written (the next batch would be empty).
  bool QueueEmpty() const DTX_EXCLUDES(mu_);
  void RunBatch(std::vector<std::unique_ptr<PgWriteOp>>& batch,
                std::vector<Status>& results);
  // Runs the batch in pipeline mode. True when it is done (committed, or
  // failed for good with `results` set); false when it should be run again
  // one statement at a time (any miss, error or conflict: nothing of it is
  // committed then).
  bool RunPipelined(std::vector<std::unique_ptr<PgWriteOp>>& batch,
                    const std::vector<bool>& left_out,
                    std::vector<Status>& results, int64_t now_ms,
                    std::chrono::steady_clock::time_point began);
  // COMMITs the open transaction `xid`. kOk: committed; kConflict: a
  // deadlock or serialization failure (nothing committed, run it again);
  // kFailed: `failure` says why.
  enum class CommitResult { kOk, kConflict, kFailed };
  CommitResult Commit(const std::string& xid, Status& failure);
  void Committed(std::size_t writes, bool pipelined,
                 std::chrono::steady_clock::time_point began);
  // A connection, opened again when the last one was lost.
  Status Connect();
  // After a lost connection during COMMIT: whether transaction `xid`
  // committed, asked on a new connection. kUnavailable when that cannot be
  // known.
  Status CommitOutcome(const std::string& xid);

  const Options options_;
  const std::string target_;  // for messages

  // The writer thread's, once started; null after a lost connection.
  std::unique_ptr<PgConn> conn_;

  mutable Mutex mu_;
  CondVar cv_{&mu_};
  std::deque<std::unique_ptr<PgWriteOp>> queue_ DTX_GUARDED_BY(mu_);
  bool closing_ DTX_GUARDED_BY(mu_) = false;
  Stats stats_ DTX_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace dtx::internal

#endif  // DTX_STORAGE_POSTGRES_WRITER_H_
