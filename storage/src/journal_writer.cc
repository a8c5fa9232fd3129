// JournalWriter: group commit on the journal's one write connection.
//
// A batch. The writer thread takes everything queued (up to
// max_batch_writes), opens one transaction (BEGIN IMMEDIATE), applies each op
// inside its own savepoint (a failed op is rolled back to its savepoint and
// fails alone; ops that either apply whole or change nothing skip it),
// COMMITs, and only then completes the ops, in commit order: a completion
// made with an executor is handed to it (a post, cheap next to a commit); one
// without runs right there, which is why it must be trivial: while it runs,
// nothing commits. If the store itself fails (disk full, locked, i/o error,
// corruption) the whole transaction is rolled back and every op of the batch
// fails with that status: nothing is acknowledged that is not durable, and
// nothing failed is half-written.
//
// Identity. SQLite writes into the file it has open: a journal deleted,
// replaced or moved under it would take every later commit with it, in
// silence. So the writer checks that the path still names the file it
// opened (device and inode) every identity_check_interval while idle, before
// each batch and after its COMMIT. Once it does not, the journal is lost for
// good: the batch in hand and every later write fail with kUnavailable
// naming the path (a commit that landed in the lost file is not
// acknowledged), reads answer the same (sqlite_journal.cc), on_lost is
// called once and an error is logged. Only a restart on a journal that is
// there again recovers.
//
// The WAL index. With the guard installed (dtx/storage/wal_index_guard.h), a
// SIGBUS from the journal's -shm mapping (the file truncated) is taken
// instead of ending the process, and every later write of the journal's
// files fails; the writer then finds the journal lost as above, at its next
// check (Options::wal_index).
//
// Shutdown. Close() stops intake, lets the thread drain the queue (every op
// is completed) and joins it, so no completion runs on the writer after
// Close() returns.

#include "journal_writer.h"

#include "dtx/executor.h"
#include "dtx/internal/thread_name.h"

#include "write_batch.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sys/stat.h>
#include <system_error>
#include <utility>

namespace dtx::internal {

Result<FileIdentity> FileIdentity::Of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    std::string message =
        "journal: " + path + ": cannot stat: " + std::strerror(err);
    if (err == ENOENT) return NotFoundError(message);
    return UnavailableError(message);
  }
  FileIdentity out;
  out.path = path;
  out.device = static_cast<uint64_t>(st.st_dev);
  out.inode = static_cast<uint64_t>(st.st_ino);
  return out;
}

Status FileIdentity::Check() const {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return UnavailableError(
        "journal: " + path + ": the journal file is gone (" +
        std::strerror(err) +
        "): deleted or moved while in use; nothing more is written, restart "
        "on the journal file");
  }
  if (static_cast<uint64_t>(st.st_dev) != device ||
      static_cast<uint64_t>(st.st_ino) != inode) {
    return UnavailableError(
        "journal: " + path +
        ": the journal file was replaced while in use (another file has its "
        "path now); nothing more is written, restart on the journal file");
  }
  return Status::Ok();
}

JournalWriter::JournalWriter(std::unique_ptr<Db> db, Options options)
    : options_(std::move(options)), path_(db->path()), db_(std::move(db)) {}

Result<std::unique_ptr<JournalWriter>> JournalWriter::Start(
    std::unique_ptr<Db> db, Options options) {
  if (options.clock == nullptr) options.clock = &SystemClock();
  if (options.logger == nullptr) options.logger = NewNullLogger();
  options.max_batch_writes = std::max<std::size_t>(1, options.max_batch_writes);
  std::unique_ptr<JournalWriter> writer(
      new JournalWriter(std::move(db), std::move(options)));
  DTX_RETURN_IF_ERROR(writer->PrepareStatements());
  if (writer->options_.metrics != nullptr) {
    DTX_RETURN_IF_ERROR(writer->RegisterMetrics(*writer->options_.metrics));
  }
  JournalWriter* raw = writer.get();
  try {
    writer->thread_ = std::thread([raw] {
      NameThisThread("dtx-journal");
      raw->Loop();
    });
  } catch (const std::system_error& e) {
    return ResourceExhaustedError("journal: " + raw->path_ +
                                  ": cannot start a thread: " + e.what());
  }
  return writer;
}

JournalWriter::~JournalWriter() {
  Close();
  queued_.Reset();
}

Status JournalWriter::RegisterMetrics(MetricsRegistry& registry) {
  DTX_ASSIGN_OR_RETURN(
      commit_seconds_,
      registry.AddHistogram(
          "dtx_journal_commit_duration_seconds",
          "Seconds of one group commit, from BEGIN to a durable COMMIT, its "
          "writes applied in between."));
  DTX_ASSIGN_OR_RETURN(
      batch_writes_,
      registry.AddHistogram("dtx_journal_batch_writes",
                            "Writes committed together in one group commit.",
                            {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}));
  DTX_ASSIGN_OR_RETURN(
      queued_, registry.AddCallbackGauge(
                   "dtx_journal_queued_writes",
                   "Writes waiting for the journal's writer thread (not yet "
                   "in a commit).",
                   [this] {
                     MutexLock lock(&mu_);
                     return static_cast<double>(queue_.size());
                   }));
  return Status::Ok();
}

Status JournalWriter::PrepareStatements() {
  auto prepare = [this](const char* sql, std::unique_ptr<Stmt>* out) -> Status {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db_->raw(), sql, -1,
                                      SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    if (rc != SQLITE_OK) return db_->Error(rc, "prepare");
    *out = std::make_unique<Stmt>(raw, db_->raw(), &db_->path());
    return Status::Ok();
  };
  DTX_RETURN_IF_ERROR(prepare("SAVEPOINT w", &savepoint_));
  DTX_RETURN_IF_ERROR(prepare("RELEASE w", &release_));
  return prepare("ROLLBACK TO w", &rollback_to_);
}

void JournalWriter::Enqueue(std::unique_ptr<WriteOp> op) {
  {
    MutexLock lock(&mu_);
    if (!closing_) {
      queue_.push_back(std::move(op));
      cv_.Signal();
      return;
    }
  }
  // Closed: complete on the caller's thread; there is no writer thread left.
  op->Complete(FailedPreconditionError("journal: " + path_ + ": closed"));
}

Status JournalWriter::WalIndexLost() const {
  if (options_.wal_index == nullptr || options_.wal_index->faults() == 0) {
    return Status::Ok();
  }
  return UnavailableError(
      "journal: " + path_ + ": its WAL index (" + path_ +
      "-shm) was truncated or could not be read while in use (SIGBUS "
      "taken); nothing more is written, restart to rebuild it from the WAL");
}

bool JournalWriter::CheckIdentity() {
  if (is_lost_.load(std::memory_order_acquire)) return false;
  Status check = WalIndexLost();
  if (check.ok() && options_.identity) check = options_.identity->Check();
  if (check.ok()) return true;
  {
    MutexLock lock(&mu_);
    lost_ = check;
  }
  is_lost_.store(true, std::memory_order_release);
  DTX_LOG(options_.logger, LogLevel::kError, check.message());
  if (options_.on_lost) options_.on_lost(check);
  return false;
}

Status JournalWriter::lost() const {
  // A fault the writer has not seen yet answers as well.
  if (!is_lost_.load(std::memory_order_acquire)) return WalIndexLost();
  MutexLock lock(&mu_);
  return lost_;
}

void JournalWriter::Loop() {
  std::vector<std::unique_ptr<WriteOp>> batch;
  std::vector<Status> results;
  for (;;) {
    bool idle = false;
    {
      MutexLock lock(&mu_);
      auto ready = [this] {
        mu_.AssertHeld();
        return !queue_.empty() || closing_;
      };
      if (!is_lost_.load(std::memory_order_relaxed)) {
        idle = !cv_.WaitFor(&mu_, options_.identity_check_interval, ready);
      } else {
        cv_.Wait(&mu_, ready);
      }
      if (!idle) {
        if (queue_.empty()) break;  // closing and drained
        TakeBatch(batch);
      }
    }
    if (idle) {
      CheckIdentity();
      continue;
    }
    if (CheckIdentity()) {
      RunBatch(batch, results);
      // A commit that landed in a file lost meanwhile is not acknowledged.
      if (!CheckIdentity()) results.assign(batch.size(), lost());
    } else {
      results.assign(batch.size(), lost());
    }
    // The batch is durable (or failed whole): complete its ops in commit
    // order. Each op goes as soon as its completion is handed off, releasing
    // what the completion captured.
    // A write that was the writer's only work may have its completion run
    // right here (dtx/executor.h, inline completions): at one write in
    // flight that saves a thread hop. A lazy write held for company may be
    // beside it (write_batch.h). Any other batch (more queued, or more
    // writes in it) offers the thread as busy: taken by a coordinator with
    // one io thread, where the hop costs more than the next commit waits
    // (docs/architecture.md, "Thread hops").
    const InlineCompletionScope offer(InlineBatch(batch) && QueueEmpty()
                                          ? InlineOffer::kIdle
                                          : InlineOffer::kBusy);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->Complete(std::move(results[i]));
      batch[i].reset();
    }
    batch.clear();
    results.clear();
  }
}

void JournalWriter::TakeBatch(std::vector<std::unique_ptr<WriteOp>>& batch) {
  // Writes no one waits on, and nothing else to do: wait a little for a
  // write to share their commit (journal.h, kLazyWriteHold). Any write, a
  // Flush or Close ends the wait.
  internal::TakeBatch(&mu_, &cv_, queue_, closing_, options_.max_batch_writes,
                      options_.lazy_write_hold, batch);
}

void JournalWriter::RunBatch(std::vector<std::unique_ptr<WriteOp>>& batch,
                             std::vector<Status>& results) {
  results.assign(batch.size(), Status::Ok());
  const int64_t now_ms = ToUnixMillis(options_.clock->Now());
  bool any_db = false;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i]->touches_db()) {
      any_db = true;
    } else {
      results[i] = batch[i]->Apply(*db_, now_ms);
    }
  }
  if (!any_db) return;

  auto fail_all = [&](const Status& cause) {
    if (db_->in_transaction()) db_->Exec("ROLLBACK").IgnoreError();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i]->touches_db() &&
          (results[i].ok() || !IsStorageFailure(cause))) {
        results[i] = cause;
      }
    }
    DTX_LOG(options_.logger, LogLevel::kError,
            "journal: batch of " << batch.size()
                                 << " writes rolled back: " << cause);
  };

  const auto began = std::chrono::steady_clock::now();
  Status begin = db_->Exec("BEGIN IMMEDIATE");
  if (!begin.ok()) return fail_all(begin);
  std::size_t writes = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    WriteOp& op = *batch[i];
    if (!op.touches_db()) continue;
    ++writes;
    if (!op.needs_savepoint()) {
      Status s = op.Apply(*db_, now_ms);
      if (!s.ok() && IsStorageFailure(s)) return fail_all(s);
      results[i] = std::move(s);
      continue;
    }
    Status s = savepoint_->Run("savepoint");
    if (s.ok()) {
      s = op.Apply(*db_, now_ms);
      if (s.ok()) {
        s = release_->Run("release savepoint");
      } else if (!IsStorageFailure(s)) {
        // The op does not apply (not found, exists, wrong status): undo its
        // partial effects and keep the rest of the batch.
        Status undo = rollback_to_->Run("rollback to savepoint");
        if (undo.ok()) undo = release_->Run("release savepoint");
        if (!undo.ok()) {
          results[i] = s;
          return fail_all(undo);
        }
      }
    }
    if (!s.ok() && IsStorageFailure(s)) return fail_all(s);
    results[i] = std::move(s);
  }
  Status commit = db_->Exec("COMMIT");
  if (!commit.ok()) return fail_all(commit);
  if (commit_seconds_ != nullptr) {
    commit_seconds_->ObserveDuration(std::chrono::steady_clock::now() - began);
    batch_writes_->Observe(static_cast<double>(writes));
  }
  MutexLock lock(&mu_);
  stat_writes_ += writes;
  ++stat_commits_;
}

void JournalWriter::Close() {
  {
    MutexLock lock(&mu_);
    if (closing_) return;
    closing_ = true;
    cv_.Signal();
  }
  if (thread_.joinable()) thread_.join();
  savepoint_.reset();
  release_.reset();
  rollback_to_.reset();
  db_.reset();
}

JournalWriter::Stats JournalWriter::stats() const {
  MutexLock lock(&mu_);
  return Stats{stat_writes_, stat_commits_, queue_.size()};
}

bool JournalWriter::QueueEmpty() const {
  MutexLock lock(&mu_);
  return queue_.empty();
}

}  // namespace dtx::internal
