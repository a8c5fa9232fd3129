// PgJournalWriter: group commit on the journal's one write connection.
//
// A batch. The writer thread takes everything queued (up to
// max_batch_writes), opens one transaction (BEGIN, which also reads the
// transaction's id), applies the ops in order, COMMITs, and only then
// completes them, in commit order (a completion made with an executor is
// handed to it; one without runs right there, so it must be trivial).
//
// The pipeline. By default (Options::pipeline) a batch is sent in libpq's
// pipeline mode: BEGIN, then every write's statements, queued without
// waiting for their results, one Sync per kPipelineStatements statements,
// then COMMIT on its own. Every statement of a write finds its rows by the
// gid (none needs a value an earlier one read), so all of them can be on the
// wire at once, and a batch costs two round trips however many writes it
// holds instead of one per statement. A claim (its UPDATE depends on what
// its SELECT found) runs between two rounds, outside pipeline mode. When
// anything in a pipelined batch does not go as expected (a write that does
// not apply, an SQL error, a deadlock), the batch is rolled back and run
// again from the start one statement at a time, as below, where each write
// gets its own answer: misses are rare on the hot path, and that path stays
// the one place that decides what a failed write means.
//
// A write that does not apply. Most writes find out with their first
// statement and have then written nothing (a compare-and-set that matched no
// row): the batch goes on. PostgreSQL has no cheap way to undo one statement
// without a savepoint per write (a round trip each), so when a write fails
// after part of it applied (a branch row that exists, found by the second
// statement) or with an SQL error (which aborts the whole transaction), the
// writer rolls the batch back, records that write's failure and runs the
// batch again without it. That costs a batch again, but only on failures;
// the common path has no savepoint.
//
// The store failing. A lost connection, a full disk or a refused permission
// fails every write of the batch with that status (kUnavailable for a lost
// connection): nothing is acknowledged that is not durable. The connection is
// reopened on the next batch; if the first statement of a batch finds a
// reused connection dead (the server restarted while the journal was idle),
// the batch is retried once on a new connection, since nothing of it was
// sent. A deadlock with another coordinator's transaction (or another
// serialization failure) rolls the batch back on the server's side; the
// writer runs it again, up to kConflictRetries times, before failing it with
// kUnavailable. A connection lost during COMMIT leaves the outcome unknown to
// the client: the writer then asks a new connection whether the transaction
// committed (pg_xact_status of the id read at BEGIN) and reports that; when
// even that cannot be asked, the writes fail with kUnavailable saying the
// outcome is unknown.
//
// Shutdown. Close() stops intake, lets the thread drain the queue and joins
// it, so no completion runs on the writer after Close() returns.

#include "postgres_writer.h"

#include "dtx/executor.h"
#include "dtx/internal/thread_name.h"

#include "write_batch.h"

#include <algorithm>
#include <chrono>
#include <system_error>
#include <utility>

namespace dtx::internal {
namespace {

// Times a batch is run again after a deadlock or serialization failure.
constexpr int kConflictRetries = 3;

}  // namespace

PgJournalWriter::PgJournalWriter(std::unique_ptr<PgConn> conn, Options options)
    : options_(std::move(options)),
      target_(conn->target()),
      conn_(std::move(conn)) {}

Result<std::unique_ptr<PgJournalWriter>> PgJournalWriter::Start(
    std::unique_ptr<PgConn> conn, Options options) {
  if (options.clock == nullptr) options.clock = &SystemClock();
  if (options.logger == nullptr) options.logger = NewNullLogger();
  options.max_batch_writes = std::max<std::size_t>(1, options.max_batch_writes);
  std::unique_ptr<PgJournalWriter> writer(
      new PgJournalWriter(std::move(conn), std::move(options)));
  PgJournalWriter* raw = writer.get();
  try {
    writer->thread_ = std::thread([raw] {
      NameThisThread("dtx-pg-writer");
      raw->Loop();
    });
  } catch (const std::system_error& e) {
    return ResourceExhaustedError("journal: postgres " + raw->target_ +
                                  ": cannot start a thread: " + e.what());
  }
  return writer;
}

PgJournalWriter::~PgJournalWriter() { Close(); }

void PgJournalWriter::Enqueue(std::unique_ptr<PgWriteOp> op) {
  {
    MutexLock lock(&mu_);
    if (!closing_) {
      queue_.push_back(std::move(op));
      cv_.Signal();
      return;
    }
  }
  op->Complete(
      FailedPreconditionError("journal: postgres " + target_ + ": closed"));
}

void PgJournalWriter::Loop() {
  std::vector<std::unique_ptr<PgWriteOp>> batch;
  std::vector<Status> results;
  for (;;) {
    {
      MutexLock lock(&mu_);
      cv_.Wait(&mu_, [this] {
        mu_.AssertHeld();
        return !queue_.empty() || closing_;
      });
      if (queue_.empty()) break;  // closing and drained
      TakeBatch(batch);
    }
    RunBatch(batch, results);
    // A write that was the writer's only work may have its completion run
    // right here (dtx/executor.h, inline completions): at one write in
    // flight that saves a thread hop; with more queued, the writer commits.
    // A lazy write held for company may be beside it (write_batch.h).
    const InlineCompletionScope alone(InlineBatch(batch) && QueueEmpty());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->Complete(std::move(results[i]));
      batch[i].reset();
    }
    batch.clear();
    results.clear();
  }
}

void PgJournalWriter::TakeBatch(
    std::vector<std::unique_ptr<PgWriteOp>>& batch) {
  // Writes no one waits on, and nothing else to do: wait a little for a
  // write to share their commit (journal.h, kLazyWriteHold). Any write, a
  // Flush or Close ends the wait.
  internal::TakeBatch(&mu_, &cv_, queue_, closing_, options_.max_batch_writes,
                      options_.lazy_write_hold, batch);
}

Status PgJournalWriter::Connect() {
  if (conn_ != nullptr && conn_->ok()) return Status::Ok();
  conn_.reset();
  DTX_ASSIGN_OR_RETURN(conn_, PgConn::Connect(options_.connection));
  DTX_LOG(options_.logger, LogLevel::kInfo,
          "journal: postgres " << target_ << ": writer reconnected");
  MutexLock lock(&mu_);
  ++stats_.reconnects;
  return Status::Ok();
}

Status PgJournalWriter::CommitOutcome(const std::string& xid) {
  conn_.reset();
  Status c = Connect();
  const std::string unknown =
      "journal: postgres " + target_ +
      ": the connection was lost during COMMIT and whether the transaction "
      "committed is unknown";
  if (!c.ok()) return UnavailableError(unknown + " (" + c.message() + ")");
  auto r =
      conn_->ExecSimple("SELECT pg_catalog.pg_xact_status('" + xid + "'::xid8)",
                        "commit outcome");
  if (!r.ok())
    return UnavailableError(unknown + " (" + r.status().message() + ")");
  const std::string state = r->IsNull(0, 0) ? "" : r->Text(0, 0);
  if (state == "committed") return Status::Ok();
  if (state == "aborted") {
    return UnavailableError("journal: postgres " + target_ +
                            ": the connection was lost during COMMIT; the "
                            "transaction did not commit");
  }
  // Still in progress (its server process has not noticed the loss yet),
  // or no longer known.
  return UnavailableError(
      unknown + " (pg_xact_status: " + (state.empty() ? "none" : state) + ")");
}

void PgJournalWriter::RunBatch(std::vector<std::unique_ptr<PgWriteOp>>& batch,
                               std::vector<Status>& results) {
  results.assign(batch.size(), Status::Ok());
  const int64_t now_ms = ToUnixMillis(options_.clock->Now());
  std::vector<bool> left_out(batch.size(), false);
  bool any_db = false;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i]->touches_db()) {
      any_db = true;
    } else {
      results[i] = batch[i]->Outcome();
      left_out[i] = true;
    }
  }
  if (!any_db) return;

  auto fail_all = [&](const Status& cause) {
    if (conn_ != nullptr && conn_->ok() && conn_->in_transaction())
      conn_->Exec("ROLLBACK", "rollback").IgnoreError();
    if (conn_ != nullptr && !conn_->ok()) conn_.reset();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!left_out[i]) results[i] = cause;
    }
    DTX_LOG(options_.logger, LogLevel::kError,
            "journal: postgres batch of " << batch.size()
                                          << " writes failed: " << cause);
  };

  const auto began = std::chrono::steady_clock::now();
  if (options_.pipeline &&
      RunPipelined(batch, left_out, results, now_ms, began))
    return;
  bool retried_begin = false;
  int conflict_retries = 0;
  // A deadlock or serialization failure (SQLSTATE class 40) against another
  // coordinator's transaction: PostgreSQL rolled this one back, nothing of it
  // applied, and running it again usually succeeds.
  auto conflict = [&]() {
    return conn_->ok() && conn_->last_sqlstate().rfind("40", 0) == 0 &&
           conflict_retries < kConflictRetries;
  };
  for (;;) {
    const bool reused = conn_ != nullptr;
    Status c = Connect();
    if (!c.ok()) return fail_all(c);
    auto begin = conn_->ExecSimple(
        "BEGIN; SELECT pg_catalog.pg_current_xact_id()::text", "begin");
    if (!begin.ok()) {
      if (!conn_->ok() && reused && !retried_begin) {
        // The idle connection was dead; nothing of the batch was sent.
        retried_begin = true;
        conn_.reset();
        continue;
      }
      return fail_all(begin.status());
    }
    const std::string xid = begin->Text(0, 0);
    bool rerun = false;
    std::size_t writes = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (left_out[i]) continue;
      PgWriteOp& op = *batch[i];
      Status s = op.Apply(*conn_, now_ms);
      if (s.ok()) {
        results[i] = Status::Ok();
        ++writes;
        continue;
      }
      if (IsPgStorageFailure(s) || !conn_->ok()) {
        if (!conflict()) return fail_all(s);
        ++conflict_retries;
        rerun = true;
        break;
      }
      results[i] = std::move(s);
      if (conn_->in_failed_transaction() || op.may_half_apply()) {
        // Undo the batch and run it again without this write.
        left_out[i] = true;
        rerun = true;
        break;
      }
      // Wrote nothing: the batch goes on.
    }
    if (rerun) {
      auto rolled = conn_->Exec("ROLLBACK", "rollback");
      if (!rolled.ok()) return fail_all(rolled.status());
      MutexLock lock(&mu_);
      ++stats_.reruns;
      continue;
    }
    Status failure;
    switch (Commit(xid, failure)) {
      case CommitResult::kOk:
        return Committed(writes, false, began);
      case CommitResult::kConflict:
        if (conflict_retries < kConflictRetries) {
          ++conflict_retries;
          MutexLock lock(&mu_);
          ++stats_.reruns;
          continue;
        }
        return fail_all(failure);
      case CommitResult::kFailed:
        return fail_all(failure);
    }
  }
}

PgJournalWriter::CommitResult PgJournalWriter::Commit(const std::string& xid,
                                                      Status& failure) {
  auto commit = conn_->Exec("COMMIT", "commit");
  if (commit.ok()) return CommitResult::kOk;
  if (!conn_->ok()) {
    Status outcome = CommitOutcome(xid);
    if (outcome.ok()) return CommitResult::kOk;  // committed after all
    failure = std::move(outcome);
    return CommitResult::kFailed;
  }
  failure = commit.status();
  return conn_->last_sqlstate().rfind("40", 0) == 0 ? CommitResult::kConflict
                                                    : CommitResult::kFailed;
}

void PgJournalWriter::Committed(std::size_t writes, bool pipelined,
                                std::chrono::steady_clock::time_point began) {
  if (options_.commit_seconds != nullptr) {
    options_.commit_seconds->ObserveDuration(std::chrono::steady_clock::now() -
                                             began);
  }
  if (options_.batch_writes != nullptr)
    options_.batch_writes->Observe(static_cast<double>(writes));
  MutexLock lock(&mu_);
  stats_.writes += writes;
  ++stats_.commits;
  if (pipelined) ++stats_.pipelined;
}

bool PgJournalWriter::RunPipelined(
    std::vector<std::unique_ptr<PgWriteOp>>& batch,
    const std::vector<bool>& left_out, std::vector<Status>& results,
    int64_t now_ms, std::chrono::steady_clock::time_point began) {
  // A connection the server closed while it was idle (a restart) is
  // replaced before anything is sent; one lost later fails the batch, as
  // one statement at a time would (nothing of it is committed).
  if (conn_ != nullptr && !conn_->StillUp()) conn_.reset();
  if (!Connect().ok()) return false;  // the one-by-one run reports it
  // Leaves pipeline mode and undoes what was sent. A failure of the store
  // (other than a deadlock or serialization failure, which the one-by-one
  // run retries) fails the batch: true. Anything else runs the batch one
  // statement at a time from the start: false.
  auto fall_back = [&](const Status& cause) {
    const bool lost = !conn_->ok();
    const bool conflict = !lost && conn_->last_sqlstate().rfind("40", 0) == 0;
    if (conn_->in_pipeline()) conn_->ExitPipeline().IgnoreError();
    if (conn_->ok() && conn_->in_transaction())
      conn_->Exec("ROLLBACK", "rollback").IgnoreError();
    if (!conn_->ok()) conn_.reset();
    if (lost || (IsPgStorageFailure(cause) && !conflict)) {
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!left_out[i]) results[i] = cause;
      }
      DTX_LOG(options_.logger, LogLevel::kError,
              "journal: postgres batch of " << batch.size()
                                            << " writes failed: " << cause);
      return true;
    }
    MutexLock lock(&mu_);
    ++stats_.fallbacks;
    return false;
  };
  if (Status s = conn_->EnterPipeline(); !s.ok()) return fall_back(s);
  PgParams none;
  if (Status s = conn_->Send("BEGIN", none, "begin"); !s.ok())
    return fall_back(s);
  if (Status s = conn_->Send("SELECT pg_catalog.pg_current_xact_id()::text",
                             none, "begin");
      !s.ok()) {
    return fall_back(s);
  }
  // The ops whose statements are queued and not yet checked.
  struct Queued {
    std::size_t op;
    std::size_t statements;
  };
  std::vector<Queued> queued;
  std::vector<PgResult> got;
  std::string xid;
  std::size_t writes = 0;
  // Sends what is queued and checks it: the first failure or miss.
  auto sync = [&]() -> Status {
    DTX_RETURN_IF_ERROR(conn_->Sync(got));
    std::size_t k = 0;
    if (xid.empty()) {
      xid = got.at(1).Text(0, 0);
      k = 2;
    }
    for (const Queued& q : queued) {
      PgWriteOp& op = *batch[q.op];
      for (std::size_t j = 0; j < q.statements; ++j) {
        DTX_RETURN_IF_ERROR(op.Check(j, got.at(k + j), nullptr));
      }
      k += q.statements;
      results[q.op] = Status::Ok();
      ++writes;
    }
    queued.clear();
    return Status::Ok();
  };
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (left_out[i]) continue;
    PgWriteOp& op = *batch[i];
    std::vector<PgStatement> statements = op.Statements(now_ms);
    if (statements.empty()) {
      // A write that runs on its own: between two rounds, outside the
      // pipeline; anything but success sends the batch one by one.
      if (Status s = sync(); !s.ok()) return fall_back(s);
      if (Status s = conn_->ExitPipeline(); !s.ok()) return fall_back(s);
      if (Status s = op.Apply(*conn_, now_ms); !s.ok()) return fall_back(s);
      results[i] = Status::Ok();
      ++writes;
      if (Status s = conn_->EnterPipeline(); !s.ok()) return fall_back(s);
      continue;
    }
    for (const PgStatement& st : statements) {
      if (Status s = conn_->Send(st.sql, st.params, st.context); !s.ok())
        return fall_back(s);
    }
    queued.push_back({i, statements.size()});
    if (conn_->queued() >= kPipelineStatements) {
      if (Status s = sync(); !s.ok()) return fall_back(s);
    }
  }
  if (Status s = sync(); !s.ok()) return fall_back(s);
  if (Status s = conn_->ExitPipeline(); !s.ok()) return fall_back(s);
  Status failure;
  switch (Commit(xid, failure)) {
    case CommitResult::kOk:
      Committed(writes, true, began);
      return true;
    case CommitResult::kConflict:
      return fall_back(failure);  // the one-by-one run retries conflicts
    case CommitResult::kFailed:
      break;
  }
  // A COMMIT that failed, or whose outcome is unknown: as one by one.
  if (conn_ != nullptr && !conn_->ok()) conn_.reset();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!left_out[i]) results[i] = failure;
  }
  DTX_LOG(options_.logger, LogLevel::kError,
          "journal: postgres batch of " << batch.size()
                                        << " writes failed: " << failure);
  return true;
}

void PgJournalWriter::Close() {
  {
    MutexLock lock(&mu_);
    if (closing_) return;
    closing_ = true;
    cv_.Signal();
  }
  if (thread_.joinable()) thread_.join();
  conn_.reset();
}

PgJournalWriter::Stats PgJournalWriter::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

std::size_t PgJournalWriter::queued() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

bool PgJournalWriter::QueueEmpty() const {
  MutexLock lock(&mu_);
  return queue_.empty();
}

}  // namespace dtx::internal
