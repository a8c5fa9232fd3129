// SqliteJournal: the writer thread with group commit, and the read path.
//
// Write path. Callers turn each write into a WriteOp and append it to queue_.
// The writer thread takes everything queued (up to max_batch_writes), opens
// one transaction (BEGIN IMMEDIATE), applies each op inside its own savepoint
// (a failed op is rolled back to its savepoint and fails alone), COMMITs, and
// only then completes the ops, in commit order: a completion made with an
// executor is handed to it (a post, cheap next to a commit); one without runs
// right there, which is why it must be trivial: while it runs, nothing
// commits. If the store itself fails (disk full, locked, i/o error,
// corruption) the whole transaction is rolled back and every op of the batch
// fails with that status: nothing is acknowledged that is not durable, and
// nothing failed is half-written.
//
// Read path. Each read borrows a connection from a pool (one per concurrent
// reader, opened on demand), runs in a read transaction for a consistent
// snapshot, and returns the connection. WAL mode lets reads run beside the
// writer.

#include "dtx/storage/sqlite_journal.h"

#include "schema.h"
#include "sqlite_handle.h"
#include "sqlite_journal_ops.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace dtx {

using internal::Db;
using internal::Stmt;
using internal::StmtGuard;
using internal::WriteOp;

struct SqliteJournal::Impl {
  explicit Impl(SqliteJournalOptions o) : options(std::move(o)) {
    clock = options.clock != nullptr ? options.clock : &SystemClock();
    logger = options.logger != nullptr ? options.logger : NewNullLogger();
  }

  Status OpenStore();
  Status ConfigureWriter();
  void Enqueue(std::unique_ptr<WriteOp> op);
  void WriterLoop();
  void RunBatch(std::vector<std::unique_ptr<WriteOp>>& batch,
                std::vector<Status>& results);
  void Close();

  // Read connections.
  Result<std::unique_ptr<Db>> TakeReader();
  void ReturnReader(std::unique_ptr<Db> db);
  template <typename Fn>
  auto WithReader(Fn&& fn) -> decltype(fn(std::declval<Db&>()));

  SqliteJournalOptions options;
  const Clock* clock;
  std::shared_ptr<Logger> logger;

  // Owned by the writer thread once started.
  std::unique_ptr<Db> writer;
  std::unique_ptr<Stmt> savepoint;
  std::unique_ptr<Stmt> release;
  std::unique_ptr<Stmt> rollback_to;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<WriteOp>> queue;  // guarded by mu
  bool closing = false;                        // guarded by mu
  bool closed = false;                         // guarded by mu
  uint64_t stat_writes = 0;                    // guarded by mu
  uint64_t stat_commits = 0;                   // guarded by mu
  std::thread thread;

  std::mutex readers_mu;
  std::vector<std::unique_ptr<Db>> readers;  // guarded by readers_mu
};

Status SqliteJournal::Impl::OpenStore() {
  const int busy_ms = static_cast<int>(options.busy_timeout.count());
  DTX_ASSIGN_OR_RETURN(writer,
                       Db::Open(options.path, /*create=*/true, busy_ms));
  // The first statement reads the header: a file that is not a database fails
  // here with kDataLoss.
  DTX_ASSIGN_OR_RETURN(int64_t ignored,
                       writer->QueryInt("PRAGMA schema_version"));
  (void)ignored;
  if (options.verify_on_open) {
    DTX_ASSIGN_OR_RETURN(Stmt * check, writer->Prepare("PRAGMA quick_check"));
    StmtGuard guard(check);
    const int rc = check->Step();
    if (rc != SQLITE_ROW) return writer->Error(rc, "quick_check");
    const std::string verdict = check->Text(0);
    if (verdict != "ok") {
      return DataLossError("journal: " + options.path +
                           ": quick_check: " + verdict);
    }
  }
  DTX_RETURN_IF_ERROR(ConfigureWriter());
  return internal::MigrateSchema(*writer, *logger);
}

Status SqliteJournal::Impl::ConfigureWriter() {
  DTX_ASSIGN_OR_RETURN(Stmt * mode,
                       writer->Prepare("PRAGMA journal_mode = WAL"));
  {
    StmtGuard guard(mode);
    const int rc = mode->Step();
    if (rc != SQLITE_ROW) return writer->Error(rc, "set journal_mode=WAL");
    if (mode->Text(0) != "wal") {
      return UnavailableError(
          "journal: " + options.path +
          ": cannot switch to WAL mode (journal_mode is " + mode->Text(0) +
          "; is another process holding it in exclusive mode?)");
    }
  }
  const char* sync = options.synchronous == SqliteJournalOptions::Sync::kFull
                         ? "FULL"
                         : "NORMAL";
  DTX_RETURN_IF_ERROR(
      writer->Exec(std::string("PRAGMA synchronous = ") + sync));
  // Statement journals (what SQLite keeps to undo one statement or savepoint
  // inside a transaction, and each write of a batch has one) stay in memory.
  // By default they spill to a temporary file past 64 KiB, which a batch of
  // group-committed writes passes at once: that file cost more writer time
  // than the commits themselves. They are never needed after a crash (the WAL
  // is), so memory loses nothing.
  DTX_RETURN_IF_ERROR(writer->Exec("PRAGMA temp_store = MEMORY"));
  if (options.max_page_count) {
    DTX_ASSIGN_OR_RETURN(
        int64_t pages,
        writer->QueryInt("PRAGMA max_page_count = " +
                         std::to_string(*options.max_page_count)));
    (void)pages;
  }
  auto prepare = [this](const char* sql, std::unique_ptr<Stmt>* out) -> Status {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(writer->raw(), sql, -1,
                                      SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    if (rc != SQLITE_OK) return writer->Error(rc, "prepare");
    *out = std::make_unique<Stmt>(raw, writer->raw(), &writer->path());
    return Status::Ok();
  };
  DTX_RETURN_IF_ERROR(prepare("SAVEPOINT w", &savepoint));
  DTX_RETURN_IF_ERROR(prepare("RELEASE w", &release));
  return prepare("ROLLBACK TO w", &rollback_to);
}

void SqliteJournal::Impl::Enqueue(std::unique_ptr<WriteOp> op) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!closing) {
      queue.push_back(std::move(op));
      cv.notify_one();
      return;
    }
  }
  // Closed: complete on the caller's thread; there is no writer thread left.
  op->Complete(
      FailedPreconditionError("journal: " + options.path + ": closed"));
}

void SqliteJournal::Impl::WriterLoop() {
  std::vector<std::unique_ptr<WriteOp>> batch;
  std::vector<Status> results;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [this] { return !queue.empty() || closing; });
      if (queue.empty()) break;  // closing and drained
      const std::size_t n = std::min(
          queue.size(), std::max<std::size_t>(1, options.max_batch_writes));
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }
    RunBatch(batch, results);
    // The batch is durable (or failed whole): complete its writes in commit
    // order. Each op goes as soon as its completion is handed off, releasing
    // what the completion captured.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->Complete(std::move(results[i]));
      batch[i].reset();
    }
    batch.clear();
    results.clear();
  }
}

void SqliteJournal::Impl::RunBatch(std::vector<std::unique_ptr<WriteOp>>& batch,
                                   std::vector<Status>& results) {
  results.assign(batch.size(), Status::Ok());
  const int64_t now_ms = ToUnixMillis(clock->Now());
  bool any_db = false;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i]->touches_db()) {
      any_db = true;
    } else {
      results[i] = batch[i]->Apply(*writer, now_ms);
    }
  }
  if (!any_db) return;

  auto fail_all = [&](const Status& cause) {
    if (writer->in_transaction()) writer->Exec("ROLLBACK").IgnoreError();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i]->touches_db() &&
          (results[i].ok() || !internal::IsStorageFailure(cause))) {
        results[i] = cause;
      }
    }
    DTX_LOG(logger, LogLevel::kError,
            "journal: batch of " << batch.size()
                                 << " writes rolled back: " << cause);
  };

  Status begin = writer->Exec("BEGIN IMMEDIATE");
  if (!begin.ok()) return fail_all(begin);
  std::size_t writes = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    WriteOp& op = *batch[i];
    if (!op.touches_db()) continue;
    ++writes;
    if (!op.needs_savepoint()) {
      Status s = op.Apply(*writer, now_ms);
      if (!s.ok() && internal::IsStorageFailure(s)) return fail_all(s);
      results[i] = std::move(s);
      continue;
    }
    Status s = savepoint->Run("savepoint");
    if (s.ok()) {
      s = op.Apply(*writer, now_ms);
      if (s.ok()) {
        s = release->Run("release savepoint");
      } else if (!internal::IsStorageFailure(s)) {
        // The op does not apply (not found, exists, wrong status): undo its
        // partial effects and keep the rest of the batch.
        Status undo = rollback_to->Run("rollback to savepoint");
        if (undo.ok()) undo = release->Run("release savepoint");
        if (!undo.ok()) {
          results[i] = s;
          return fail_all(undo);
        }
      }
    }
    if (!s.ok() && internal::IsStorageFailure(s)) return fail_all(s);
    results[i] = std::move(s);
  }
  Status commit = writer->Exec("COMMIT");
  if (!commit.ok()) return fail_all(commit);
  std::lock_guard<std::mutex> lock(mu);
  stat_writes += writes;
  ++stat_commits;
}

void SqliteJournal::Impl::Close() {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (closed) return;
    closing = true;
    closed = true;
    cv.notify_one();
  }
  if (thread.joinable()) thread.join();
  savepoint.reset();
  release.reset();
  rollback_to.reset();
  writer.reset();
  std::lock_guard<std::mutex> lock(readers_mu);
  readers.clear();
}

Result<std::unique_ptr<Db>> SqliteJournal::Impl::TakeReader() {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (closing)
      return FailedPreconditionError("journal: " + options.path + ": closed");
  }
  {
    std::lock_guard<std::mutex> lock(readers_mu);
    if (!readers.empty()) {
      auto db = std::move(readers.back());
      readers.pop_back();
      return db;
    }
  }
  const int busy_ms = static_cast<int>(options.busy_timeout.count());
  DTX_ASSIGN_OR_RETURN(auto db,
                       Db::Open(options.path, /*create=*/false, busy_ms));
  DTX_RETURN_IF_ERROR(db->Exec("PRAGMA query_only = 1"));
  return db;
}

void SqliteJournal::Impl::ReturnReader(std::unique_ptr<Db> db) {
  std::lock_guard<std::mutex> lock(readers_mu);
  readers.push_back(std::move(db));
}

template <typename Fn>
auto SqliteJournal::Impl::WithReader(Fn&& fn)
    -> decltype(fn(std::declval<Db&>())) {
  auto db_or = TakeReader();
  if (!db_or.ok()) return db_or.status();
  std::unique_ptr<Db> db = std::move(db_or).value();
  Status begin = db->Exec("BEGIN");
  if (!begin.ok()) return begin;
  auto result = fn(*db);
  db->Exec("COMMIT")
      .IgnoreError();  // a read transaction; ending it cannot lose data
  ReturnReader(std::move(db));
  return result;
}

namespace {

// The statements of Find, built once (Db::PrepareStatic caches them by the
// address of their text).
const std::string& FindGlobalSql() {
  static const std::string* const sql =
      new std::string("SELECT " + std::string(internal::kGlobalColumns) +
                      R"sql( FROM trans_global WHERE gid = ?1)sql");
  return *sql;
}

const std::string& FindBranchesSql() {
  static const std::string* const sql =
      new std::string("SELECT " + std::string(internal::kBranchColumns) +
                      R"sql( FROM trans_branch_op WHERE trans_id = ?1
ORDER BY id)sql");
  return *sql;
}

}  // namespace

// SqliteJournal.
SqliteJournal::SqliteJournal(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

SqliteJournal::~SqliteJournal() { Close(); }

Result<std::unique_ptr<SqliteJournal>> SqliteJournal::Open(
    SqliteJournalOptions options) {
  if (options.path.empty())
    return InvalidArgumentError("journal: path is empty");
  auto impl = std::make_unique<Impl>(std::move(options));
  DTX_RETURN_IF_ERROR(impl->OpenStore());
  Impl* raw = impl.get();
  try {
    raw->thread = std::thread([raw] { raw->WriterLoop(); });
  } catch (const std::system_error& e) {
    return ResourceExhaustedError("journal: " + raw->options.path +
                                  ": cannot start a thread: " + e.what());
  }
  DTX_LOG(raw->logger, LogLevel::kInfo,
          "journal: opened " << raw->options.path);
  return std::unique_ptr<SqliteJournal>(new SqliteJournal(std::move(impl)));
}

void SqliteJournal::SaveNew(GlobalTrans trans, std::vector<Branch> branches,
                            WriteDone done) {
  impl_->Enqueue(internal::MakeSaveNew(std::move(trans), std::move(branches),
                                       std::move(done)));
}

void SqliteJournal::AppendBranches(std::string gid, TransStatus expected,
                                   std::vector<Branch> branches,
                                   WriteDone done) {
  impl_->Enqueue(internal::MakeAppendBranches(
      std::move(gid), expected, std::move(branches), std::move(done)));
}

void SqliteJournal::ChangeStatus(StatusChange change, WriteDone done) {
  impl_->Enqueue(
      internal::MakeChangeStatus(std::move(change), std::move(done)));
}

void SqliteJournal::UpdateBranches(std::string gid,
                                   std::optional<TransStatus> expected,
                                   std::vector<BranchUpdate> updates,
                                   WriteDone done) {
  impl_->Enqueue(internal::MakeUpdateBranches(
      std::move(gid), expected, std::move(updates), std::move(done)));
}

void SqliteJournal::TouchCron(CronUpdate update, WriteDone done) {
  impl_->Enqueue(internal::MakeTouchCron(std::move(update), std::move(done)));
}

void SqliteJournal::MakeDue(std::string gid, TimePoint now, WriteDone done) {
  impl_->Enqueue(internal::MakeMakeDue(std::move(gid), now, std::move(done)));
}

void SqliteJournal::Claim(ClaimRequest request, ClaimDone done) {
  impl_->Enqueue(internal::MakeClaim(std::move(request), std::move(done)));
}

void SqliteJournal::Flush(WriteDone done) {
  impl_->Enqueue(internal::MakeFlush(std::move(done)));
}

Result<TransWithBranches> SqliteJournal::Find(const std::string& gid) {
  const std::string& path = impl_->options.path;
  return impl_->WithReader([&](Db& db) -> Result<TransWithBranches> {
    TransWithBranches out;
    {
      DTX_ASSIGN_OR_RETURN(Stmt * stmt,
                           db.PrepareStatic(FindGlobalSql().c_str()));
      StmtGuard guard(stmt);
      stmt->BindText(1, gid);
      const int rc = stmt->Step();
      if (rc == SQLITE_DONE)
        return NotFoundError("journal: gid " + gid + ": not found");
      if (rc != SQLITE_ROW) return db.Error(rc, "find " + gid);
      DTX_ASSIGN_OR_RETURN(out.trans, internal::ReadGlobalRow(*stmt, path));
    }
    DTX_ASSIGN_OR_RETURN(Stmt * stmt,
                         db.PrepareStatic(FindBranchesSql().c_str()));
    StmtGuard guard(stmt);
    stmt->BindInt(1, out.trans.id);
    for (;;) {
      const int rc = stmt->Step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return db.Error(rc, "find branches of " + gid);
      DTX_ASSIGN_OR_RETURN(Branch b, internal::ReadBranchRow(*stmt, path));
      out.branches.push_back(std::move(b));
    }
    return out;
  });
}

Result<ListPage> SqliteJournal::List(const ListQuery& query) {
  // The statement text depends only on which filters are present, so at most
  // 32 variants are compiled and cached per connection.
  std::string sql =
      "SELECT " + std::string(internal::kGlobalColumns) + " FROM trans_global";
  std::vector<std::string> where;
  if (query.cursor > 0) where.push_back("id < ?1");
  if (query.status) where.push_back("status = ?2");
  if (query.trans_type) where.push_back("trans_type = ?3");
  if (query.created_from) where.push_back("create_time >= ?4");
  if (query.created_to) where.push_back("create_time <= ?5");
  for (std::size_t i = 0; i < where.size(); ++i)
    sql += (i == 0 ? " WHERE " : " AND ") + where[i];
  sql += " ORDER BY id DESC LIMIT ?6";
  const std::size_t limit = query.limit == 0 ? 100 : query.limit;
  const std::string& path = impl_->options.path;
  return impl_->WithReader([&](Db& db) -> Result<ListPage> {
    DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.Prepare(sql));
    StmtGuard guard(stmt);
    if (query.cursor > 0) stmt->BindInt(1, query.cursor);
    if (query.status) stmt->BindText(2, ToString(*query.status));
    if (query.trans_type) stmt->BindText(3, ToString(*query.trans_type));
    if (query.created_from) stmt->BindInt(4, ToUnixMillis(*query.created_from));
    if (query.created_to) stmt->BindInt(5, ToUnixMillis(*query.created_to));
    stmt->BindInt(6, static_cast<int64_t>(limit));
    ListPage page;
    for (;;) {
      const int rc = stmt->Step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return db.Error(rc, "list");
      DTX_ASSIGN_OR_RETURN(GlobalTrans t, internal::ReadGlobalRow(*stmt, path));
      page.transactions.push_back(std::move(t));
    }
    if (page.transactions.size() == limit)
      page.next_cursor = page.transactions.back().id;
    return page;
  });
}

Result<DuePage> SqliteJournal::ListDue(TimePoint now, std::size_t limit,
                                       DueCursor after) {
  if (limit == 0) limit = 1;
  const std::string& path = impl_->options.path;
  return impl_->WithReader([&](Db& db) -> Result<DuePage> {
    DTX_ASSIGN_OR_RETURN(Stmt * stmt,
                         db.PrepareStatic(internal::DueSelectSql().c_str()));
    StmtGuard guard(stmt);
    stmt->BindInt(1, ToUnixMillis(now));
    stmt->BindInt(2, ToUnixMillis(after.next_cron_time));
    stmt->BindInt(3, after.id);
    stmt->BindInt(4, static_cast<int64_t>(limit));
    DuePage page;
    for (;;) {
      const int rc = stmt->Step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return db.Error(rc, "list due");
      DTX_ASSIGN_OR_RETURN(GlobalTrans t, internal::ReadGlobalRow(*stmt, path));
      page.transactions.push_back(std::move(t));
    }
    if (page.transactions.size() == limit) {
      const GlobalTrans& last = page.transactions.back();
      page.next = DueCursor{last.next_cron_time, last.id};
    }
    return page;
  });
}

Result<std::string> SqliteJournal::ExplainDueQuery() {
  return impl_->WithReader([&](Db& db) -> Result<std::string> {
    std::string plan;
    for (const std::string& sql :
         {internal::DueSelectSql(), internal::ClaimSql()}) {
      DTX_ASSIGN_OR_RETURN(Stmt * stmt,
                           db.Prepare("EXPLAIN QUERY PLAN " + sql));
      StmtGuard guard(stmt);
      for (;;) {
        const int rc = stmt->Step();
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return db.Error(rc, "explain");
        plan += stmt->Text(3);
        plan += "\n";
      }
    }
    return plan;
  });
}

void SqliteJournal::Close() { impl_->Close(); }

SqliteJournal::Stats SqliteJournal::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return Stats{impl_->stat_writes, impl_->stat_commits};
}

}  // namespace dtx
