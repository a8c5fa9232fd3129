// SqliteJournal: opening the file (checks, connection settings, schema), and
// the Journal's operations. Writes go to the JournalWriter (journal_writer.cc:
// the writer thread and group commit), reads to the ReaderPool
// (reader_pool.h).

#include "dtx/storage/sqlite_journal.h"

#include "journal_writer.h"
#include "reader_pool.h"
#include "schema.h"
#include "sqlite_handle.h"
#include "sqlite_journal_ops.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

namespace dtx {

using internal::Db;
using internal::Stmt;
using internal::StmtGuard;

struct SqliteJournal::Impl {
  explicit Impl(SqliteJournalOptions o)
      : options(std::move(o)), readers(options.path, options.busy_timeout) {
    clock = options.clock != nullptr ? options.clock : &SystemClock();
    logger = options.logger != nullptr ? options.logger : NewNullLogger();
  }

  // Opens the write connection, checks and configures it, and brings the
  // schema up to date.
  Result<std::unique_ptr<Db>> OpenStore();
  Status Configure(Db& db);

  // kUnavailable once the file is found deleted, replaced or moved
  // (journal_writer.cc): reads answer it too, never kNotFound for a gid the
  // lost file holds.
  Status Lost() const { return writer ? writer->lost() : Status::Ok(); }
  // A read that failed (kNotFound included) on a file that is not the one
  // opened answers why instead.
  template <typename T>
  Result<T> CheckRead(Result<T> read) const {
    if (read.ok() || !identity) return read;
    if (Status lost = identity->Check(); !lost.ok()) return lost;
    return read;
  }

  // Null writer: opened read-only.
  Status ReadOnly() const {
    return FailedPreconditionError("journal: " + options.path +
                                   ": opened read-only");
  }

  SqliteJournalOptions options;
  const Clock* clock;
  std::shared_ptr<Logger> logger;
  // Before the writer, which borrows it (destroyed after it).
  internal::WalIndexWatch wal_index;                // set by Open
  std::unique_ptr<internal::JournalWriter> writer;  // set by Open
  std::optional<internal::FileIdentity> identity;   // set by Open
  internal::ReaderPool readers;
};

namespace {

// Creates an empty `path` readable and writable by its owner only (0600): the
// journal holds payloads and branch headers. SQLite gives the -wal and -shm
// files the mode of the database file. An empty file is an empty database.
// A failure is left to SQLite's open, which explains it.
void CreateOwnerOnly(const std::string& path, Logger& logger) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                        S_IRUSR | S_IWUSR);
  if (fd < 0) return;
  ::close(fd);
  DTX_LOG(
      &logger, LogLevel::kWarn,
      "journal: " << path << " did not exist: created a new, empty journal");
}

}  // namespace

Result<std::unique_ptr<Db>> SqliteJournal::Impl::OpenStore() {
  const int busy_ms = static_cast<int>(options.busy_timeout.count());
  const bool create = options.create_if_missing && !options.read_only;
  if (create && ::access(options.path.c_str(), F_OK) != 0 && errno == ENOENT) {
    CreateOwnerOnly(options.path, *logger);
  }
  DTX_ASSIGN_OR_RETURN(std::unique_ptr<Db> db,
                       Db::Open(options.path, create, busy_ms));
  // The first statement reads the header: a file that is not a database fails
  // here with kDataLoss.
  DTX_ASSIGN_OR_RETURN(int64_t ignored, db->QueryInt("PRAGMA schema_version"));
  (void)ignored;
  if (options.verify_on_open) {
    DTX_ASSIGN_OR_RETURN(Stmt * check, db->Prepare("PRAGMA quick_check"));
    StmtGuard guard(check);
    const int rc = check->Step();
    if (rc != SQLITE_ROW) return db->Error(rc, "quick_check");
    const std::string verdict = check->Text(0);
    if (verdict != "ok") {
      return DataLossError("journal: " + options.path +
                           ": quick_check: " + verdict);
    }
  }
  if (options.read_only) {
    DTX_RETURN_IF_ERROR(internal::CheckSchema(*db));
    DTX_RETURN_IF_ERROR(db->Exec("PRAGMA query_only = 1"));
    return db;
  }
  DTX_RETURN_IF_ERROR(Configure(*db));
  DTX_RETURN_IF_ERROR(internal::MigrateSchema(*db, *logger));
  return db;
}

Status SqliteJournal::Impl::Configure(Db& db) {
  DTX_ASSIGN_OR_RETURN(Stmt * mode, db.Prepare("PRAGMA journal_mode = WAL"));
  {
    StmtGuard guard(mode);
    const int rc = mode->Step();
    if (rc != SQLITE_ROW) return db.Error(rc, "set journal_mode=WAL");
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
  DTX_RETURN_IF_ERROR(db.Exec(std::string("PRAGMA synchronous = ") + sync));
  // Statement journals (what SQLite keeps to undo one statement or savepoint
  // inside a transaction, and each write of a batch has one) stay in memory.
  // By default they spill to a temporary file past 64 KiB, which a batch of
  // group-committed writes passes at once: that file cost more writer time
  // than the commits themselves. They are never needed after a crash (the WAL
  // is), so memory loses nothing.
  DTX_RETURN_IF_ERROR(db.Exec("PRAGMA temp_store = MEMORY"));
  if (options.writer_cache_kib > 0) {
    DTX_RETURN_IF_ERROR(db.Exec("PRAGMA cache_size = -" +
                                std::to_string(options.writer_cache_kib)));
  }
  if (options.max_page_count) {
    DTX_ASSIGN_OR_RETURN(int64_t pages,
                         db.QueryInt("PRAGMA max_page_count = " +
                                     std::to_string(*options.max_page_count)));
    (void)pages;
  }
  return Status::Ok();
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
  // Absolute, so that messages name the file wherever the process started
  // and a later change of directory cannot move it.
  {
    std::error_code ec;
    std::filesystem::path absolute =
        std::filesystem::absolute(options.path, ec);
    if (ec) {
      return UnavailableError(
          "journal: " + options.path +
          ": cannot resolve to an absolute path: " + ec.message());
    }
    options.path = absolute.lexically_normal().string();
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  DTX_ASSIGN_OR_RETURN(std::unique_ptr<Db> db, impl->OpenStore());
  if (impl->options.read_only) {
    // No writer thread; reads open their own connections.
    db.reset();
    DTX_LOG(impl->logger, LogLevel::kInfo,
            "journal: opened " << impl->options.path << " read-only");
    return std::unique_ptr<SqliteJournal>(new SqliteJournal(std::move(impl)));
  }
  internal::JournalWriter::Options writer_options;
  writer_options.max_batch_writes = impl->options.max_batch_writes;
  writer_options.lazy_write_hold = impl->options.lazy_write_hold;
  writer_options.clock = impl->clock;
  writer_options.logger = impl->logger;
  writer_options.metrics = impl->options.metrics;
  {
    auto identity = internal::FileIdentity::Of(impl->options.path);
    if (!identity.ok()) {
      return UnavailableError(identity.status().message() +
                              " (right after opening it)");
    }
    impl->identity = *identity;
    writer_options.identity = std::move(identity).value();
  }
  writer_options.identity_check_interval =
      impl->options.identity_check_interval;
  writer_options.on_lost = impl->options.on_lost;
  // Guarded when the process installed the WAL index guard.
  impl->wal_index = internal::WalIndexWatch::Register(impl->options.path);
  writer_options.wal_index = &impl->wal_index;
  DTX_ASSIGN_OR_RETURN(
      impl->writer,
      internal::JournalWriter::Start(std::move(db), std::move(writer_options)));
  DTX_LOG(impl->logger, LogLevel::kInfo,
          "journal: opened " << impl->options.path);
  return std::unique_ptr<SqliteJournal>(new SqliteJournal(std::move(impl)));
}

void SqliteJournal::SaveNew(GlobalTrans trans, std::vector<Branch> branches,
                            WriteDone done) {
  if (!impl_->writer) return std::move(done)(impl_->ReadOnly());
  impl_->writer->Enqueue(internal::MakeSaveNew(
      std::move(trans), std::move(branches), std::move(done)));
}

void SqliteJournal::AppendBranches(std::string gid, TransStatus expected,
                                   std::vector<Branch> branches,
                                   WriteDone done) {
  if (!impl_->writer) return std::move(done)(impl_->ReadOnly());
  impl_->writer->Enqueue(internal::MakeAppendBranches(
      std::move(gid), expected, std::move(branches), std::move(done)));
}

void SqliteJournal::ChangeStatus(StatusChange change, WriteDone done) {
  if (!impl_->writer) return std::move(done)(impl_->ReadOnly());
  impl_->writer->Enqueue(
      internal::MakeChangeStatus(std::move(change), std::move(done)));
}

void SqliteJournal::UpdateBranches(BranchResults results, WriteDone done) {
  if (!impl_->writer) return std::move(done)(impl_->ReadOnly());
  impl_->writer->Enqueue(
      internal::MakeUpdateBranches(std::move(results), std::move(done)));
}

void SqliteJournal::TouchCron(CronUpdate update, WriteDone done) {
  if (!impl_->writer) return std::move(done)(impl_->ReadOnly());
  impl_->writer->Enqueue(
      internal::MakeTouchCron(std::move(update), std::move(done)));
}

void SqliteJournal::MakeDue(std::string gid, TimePoint now, WriteDone done) {
  if (!impl_->writer) return std::move(done)(impl_->ReadOnly());
  impl_->writer->Enqueue(
      internal::MakeMakeDue(std::move(gid), now, std::move(done)));
}

void SqliteJournal::Claim(ClaimRequest request, ClaimDone done) {
  if (!impl_->writer) return std::move(done)(impl_->ReadOnly());
  impl_->writer->Enqueue(
      internal::MakeClaim(std::move(request), std::move(done)));
}

void SqliteJournal::PurgeFinished(PurgeRequest request, PurgeDone done) {
  if (!impl_->writer) return std::move(done)(impl_->ReadOnly());
  impl_->writer->Enqueue(internal::MakePurge(request, std::move(done)));
}

void SqliteJournal::Flush(WriteDone done) {
  if (!impl_->writer) return std::move(done)(impl_->ReadOnly());
  impl_->writer->Enqueue(internal::MakeFlush(std::move(done)));
}

Result<TransWithBranches> SqliteJournal::Find(const std::string& gid) {
  const std::string& path = impl_->options.path;
  DTX_RETURN_IF_ERROR(impl_->Lost());
  auto read =
      impl_->readers.WithReader([&](Db& db) -> Result<TransWithBranches> {
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
  return impl_->CheckRead(std::move(read));
}

namespace {

// The smallest string greater than every string that starts with `prefix`,
// in SQLite's BINARY order (bytewise): the prefix with its last byte below
// 0xFF raised by one and the bytes after it dropped. None when every byte is
// 0xFF: then `gid >= prefix` alone selects exactly the gids with the prefix.
std::optional<std::string> PrefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xFF)
    prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() =
      static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

// The query plan of `sql`, one line per step (EXPLAIN QUERY PLAN).
Result<std::string> Explain(Db& db, const std::string& sql) {
  std::string plan;
  DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.Prepare("EXPLAIN QUERY PLAN " + sql));
  StmtGuard guard(stmt);
  for (;;) {
    const int rc = stmt->Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db.Error(rc, "explain");
    plan += stmt->Text(3);
    plan += "\n";
  }
  return plan;
}

bool UnfinishedOnly(const ListQuery& q) {
  return q.unfinished_only || (q.status && !IsFinished(*q.status));
}

// The statement of `q`. Its text depends only on which filters are present,
// so that few variants are compiled and cached per connection. The rows come
// newest first; which index finds them:
// - unfinished only (also a status filter of an unfinished status): the
//   partial due index, which holds unfinished rows only, then a sort of
//   those. O(unfinished), however many finished rows the journal has;
// - else a gid prefix: a range of the gid index (prefix <= gid < PrefixEnd,
//   no LIKE, so '%' and '_' are plain characters), then a sort of the
//   matches. O(matches);
// - else the row id backwards from the cursor, filtering as it goes.
std::string ListSql(const ListQuery& q) {
  const bool unfinished = UnfinishedOnly(q);
  const bool prefix = !q.gid_prefix.empty();
  std::string sql =
      "SELECT " + std::string(internal::kGlobalColumns) + " FROM trans_global";
  std::vector<std::string> where;
  if (unfinished) {
    sql += " INDEXED BY trans_global_due";
    // The index's own WHERE, word for word, so that SQLite may use it.
    where.push_back("status IN ('prepared', 'submitted', 'aborting')");
  } else if (prefix) {
    // The UNIQUE constraint's index on gid.
    sql += " INDEXED BY sqlite_autoindex_trans_global_1";
  }
  if (q.cursor > 0) where.push_back("id < ?1");
  if (q.status) where.push_back("status = ?2");
  if (q.trans_type) where.push_back("trans_type = ?3");
  if (q.created_from) where.push_back("create_time >= ?4");
  if (q.created_to) where.push_back("create_time <= ?5");
  if (prefix) {
    where.push_back("gid >= ?7");
    if (PrefixEnd(q.gid_prefix)) where.push_back("gid < ?8");
  }
  for (std::size_t i = 0; i < where.size(); ++i)
    sql += (i == 0 ? " WHERE " : " AND ") + where[i];
  sql += " ORDER BY id DESC LIMIT ?6";
  return sql;
}

}  // namespace

Result<ListPage> SqliteJournal::List(const ListQuery& query) {
  const std::string sql = ListSql(query);
  const std::size_t limit = query.limit == 0 ? kDefaultListLimit : query.limit;
  const std::optional<std::string> prefix_end = PrefixEnd(query.gid_prefix);
  const std::string& path = impl_->options.path;
  DTX_RETURN_IF_ERROR(impl_->Lost());
  auto read = impl_->readers.WithReader([&](Db& db) -> Result<ListPage> {
    DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.Prepare(sql));
    StmtGuard guard(stmt);
    if (query.cursor > 0) stmt->BindInt(1, query.cursor);
    if (query.status) stmt->BindText(2, ToString(*query.status));
    if (query.trans_type) stmt->BindText(3, ToString(*query.trans_type));
    if (query.created_from) stmt->BindInt(4, ToUnixMillis(*query.created_from));
    if (query.created_to) stmt->BindInt(5, ToUnixMillis(*query.created_to));
    stmt->BindInt(6, static_cast<int64_t>(limit));
    if (!query.gid_prefix.empty()) {
      stmt->BindText(7, query.gid_prefix);
      if (prefix_end) stmt->BindText(8, *prefix_end);
    }
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
  return impl_->CheckRead(std::move(read));
}

Result<std::string> SqliteJournal::ExplainListQuery(const ListQuery& query) {
  return impl_->readers.WithReader([&](Db& db) -> Result<std::string> {
    return Explain(db, ListSql(query));
  });
}

Result<DuePage> SqliteJournal::ListDue(TimePoint now, std::size_t limit,
                                       DueCursor after) {
  if (limit == 0) limit = 1;
  const std::string& path = impl_->options.path;
  DTX_RETURN_IF_ERROR(impl_->Lost());
  auto read = impl_->readers.WithReader([&](Db& db) -> Result<DuePage> {
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
  return impl_->CheckRead(std::move(read));
}

Result<UnfinishedSummary> SqliteJournal::Summarize(TimePoint now) {
  DTX_RETURN_IF_ERROR(impl_->Lost());
  auto read =
      impl_->readers.WithReader([&](Db& db) -> Result<UnfinishedSummary> {
        // The WHERE is the due index's own, so SQLite scans that index only.
        DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.PrepareStatic(R"sql(
SELECT COUNT(*), COALESCE(SUM(next_cron_time <= ?1), 0), MIN(create_time)
FROM trans_global INDEXED BY trans_global_due
WHERE status IN ('prepared', 'submitted', 'aborting'))sql"));
        StmtGuard guard(stmt);
        stmt->BindInt(1, ToUnixMillis(now));
        const int rc = stmt->Step();
        if (rc != SQLITE_ROW) return db.Error(rc, "summarize");
        UnfinishedSummary out;
        out.unfinished = stmt->Int(0);
        out.due = stmt->Int(1);
        if (!stmt->IsNull(2))
          out.oldest_create_time = FromUnixMillis(stmt->Int(2));
        return out;
      });
  return impl_->CheckRead(std::move(read));
}

Result<StatusCounts> SqliteJournal::CountByStatus() {
  const std::string& path = impl_->options.path;
  DTX_RETURN_IF_ERROR(impl_->Lost());
  auto read = impl_->readers.WithReader([&](Db& db) -> Result<StatusCounts> {
    // Kept by triggers (schema.cc): five rows, whatever the journal's size.
    DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.PrepareStatic("SELECT status, n FROM "
                                                       "trans_status_count"));
    StmtGuard guard(stmt);
    StatusCounts out;
    for (;;) {
      const int rc = stmt->Step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return db.Error(rc, "count by status");
      auto status = ParseTransStatus(stmt->Text(0));
      if (!status.ok()) {
        return DataLossError("journal: " + path + ": " +
                             status.status().message() +
                             " in trans_status_count");
      }
      out[*status] = stmt->Int(1);
    }
    return out;
  });
  return impl_->CheckRead(std::move(read));
}

Result<std::string> SqliteJournal::ExplainDueQuery() {
  return impl_->readers.WithReader([&](Db& db) -> Result<std::string> {
    std::string plan;
    for (const std::string& sql :
         {internal::DueSelectSql(), internal::ClaimSql()}) {
      DTX_ASSIGN_OR_RETURN(std::string part, Explain(db, sql));
      plan += part;
    }
    return plan;
  });
}

void SqliteJournal::Close() {
  if (impl_->writer) impl_->writer->Close();
  impl_->readers.Close();
}

SqliteJournal::Stats SqliteJournal::stats() const {
  if (!impl_->writer) return {};
  const internal::JournalWriter::Stats s = impl_->writer->stats();
  return Stats{s.writes, s.commits, s.queued};
}

}  // namespace dtx
