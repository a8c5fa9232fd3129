// PostgresJournal: opening (options, connection, schema), the Journal's
// operations, and the pool of read connections. Writes go to the
// PgJournalWriters (postgres_writer.cc: a writer thread and group commit),
// each transaction's to one writer chosen by its gid.

#include "dtx/storage/postgres_journal.h"

#include "dtx/internal/mutex.h"
#include "dtx/metrics.h"

#include "postgres_conn.h"
#include "postgres_ops.h"
#include "postgres_schema.h"
#include "postgres_writer.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dtx {

using internal::CondVar;
using internal::Mutex;
using internal::MutexLock;
using internal::PgConn;
using internal::PgParams;
using internal::PgResult;

namespace {

// The read connections: one per concurrent read, up to `max_open` open at
// once (0: no cap; a read beyond it waits for one to be handed back), up to
// `max_idle` kept between reads, none kept once older than `max_lifetime`
// (0: no limit; dtm's ConnMaxLifeTime). A connection found dead is dropped;
// a read that failed on a reused connection because it was dead (the server
// restarted since) runs once more on a new one, as a read changes nothing.
class PgReaderPool {
 public:
  struct Limits {
    std::size_t max_open = 0;
    std::size_t max_idle = 4;
    std::chrono::milliseconds max_lifetime{0};
  };

  PgReaderPool(PgConn::Options options, Limits limits)
      : options_(std::move(options)), limits_(limits) {}

  template <typename Fn>
  auto WithReader(Fn&& fn) -> decltype(fn(std::declval<PgConn&>())) {
    for (int attempt = 0;; ++attempt) {
      bool reused = false;
      auto reader_or = Take(&reused);
      if (!reader_or.ok()) return reader_or.status();
      Reader reader = std::move(reader_or).value();
      auto result = fn(*reader.conn);
      const bool dead = !reader.conn->ok();
      Return(std::move(reader));
      if (!dead || !reused || attempt > 0) return result;
    }
  }

  void Close() {
    std::vector<Reader> closing;
    {
      MutexLock lock(&mu_);
      closed_ = true;
      open_ -= idle_.size();
      closing.swap(idle_);
    }
    free_.SignalAll();
  }

  void set_target(std::string target) { target_ = std::move(target); }

 private:
  struct Reader {
    std::unique_ptr<PgConn> conn;
    std::chrono::steady_clock::time_point opened;
  };

  bool Expired(const Reader& r,
               std::chrono::steady_clock::time_point now) const {
    return limits_.max_lifetime.count() > 0 &&
           now - r.opened >= limits_.max_lifetime;
  }

  Result<Reader> Take(bool* reused) {
    std::vector<Reader> expired;  // closed outside the lock
    {
      MutexLock lock(&mu_);
      const auto now = std::chrono::steady_clock::now();
      for (auto it = idle_.begin(); it != idle_.end();) {
        if (Expired(*it, now)) {
          expired.push_back(std::move(*it));
          it = idle_.erase(it);
          --open_;
        } else {
          ++it;
        }
      }
      free_.Wait(&mu_, [this] {
        mu_.AssertHeld();
        return closed_ || !idle_.empty() || limits_.max_open == 0 ||
               open_ < limits_.max_open;
      });
      if (closed_) {
        return FailedPreconditionError("journal: postgres " + target_ +
                                       ": closed");
      }
      if (!idle_.empty()) {
        Reader reader = std::move(idle_.back());
        idle_.pop_back();
        *reused = true;
        return reader;
      }
      ++open_;  // counted while it connects
    }
    *reused = false;
    auto conn = PgConn::Connect(options_);
    if (!conn.ok()) {
      {
        MutexLock lock(&mu_);
        --open_;
      }
      free_.Signal();
      return conn.status();
    }
    return Reader{std::move(conn).value(), std::chrono::steady_clock::now()};
  }

  void Return(Reader reader) {
    Reader dropped;  // closed outside the lock
    {
      MutexLock lock(&mu_);
      if (closed_ || !reader.conn->ok() || idle_.size() >= limits_.max_idle ||
          Expired(reader, std::chrono::steady_clock::now())) {
        dropped = std::move(reader);
        --open_;
      } else {
        idle_.push_back(std::move(reader));
      }
    }
    free_.Signal();
  }

  const PgConn::Options options_;
  const Limits limits_;
  std::string target_;  // set once at Open, before any read

  Mutex mu_;
  CondVar free_{&mu_};
  std::vector<Reader> idle_ DTX_GUARDED_BY(mu_);
  // Connections open or connecting, idle ones included.
  std::size_t open_ DTX_GUARDED_BY(mu_) = 0;
  bool closed_ DTX_GUARDED_BY(mu_) = false;
};

PgConn::Options ConnOptions(const PostgresJournalOptions& o,
                            const char* application) {
  PgConn::Options c;
  c.conninfo = o.conninfo;
  c.schema = o.schema;
  c.application_name = application;
  c.connect_timeout = o.connect_timeout;
  return c;
}

constexpr const char* kUnfinished =
    "status IN ('prepared', 'submitted', 'aborting')";

// Whether a gid can start with `prefix`: gids are visible ASCII
// (ValidateGid), so a prefix with any other byte matches none (and such
// bytes may not even be valid text for the server).
bool PrefixCanMatch(const std::string& prefix) {
  for (char c : prefix) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7E) return false;
  }
  return true;
}

// The smallest string above every string that starts with `prefix` (visible
// ASCII, non-empty): its last byte raised by one. Under the "C" collation of
// the gid column, `prefix <= gid < PrefixEnd` selects exactly the gids with
// the prefix, as an index range.
std::string PrefixEnd(std::string prefix) {
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

// libpq's conninfo quoting: a value in single quotes, in which a quote or a
// backslash is escaped by a backslash.
std::string QuoteConninfoValue(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += "'";
  return out;
}

}  // namespace

std::string MakePostgresConninfo(const PostgresServerAddress& a) {
  std::string out;
  auto add = [&out](const char* key, const std::string& value) {
    if (value.empty()) return;
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    out += QuoteConninfoValue(value);
  };
  add("host", a.host);
  add("port", a.port > 0 ? std::to_string(a.port) : std::string());
  add("user", a.user);
  add("password", a.password);
  add("dbname", a.dbname);
  return out;
}

struct PostgresJournal::Impl {
  explicit Impl(PostgresJournalOptions o)
      : options(std::move(o)),
        readers(
            ConnOptions(options, "dtx-journal-reader"),
            PgReaderPool::Limits{options.max_readers, options.max_idle_readers,
                                 options.reader_max_lifetime}) {
    clock = options.clock != nullptr ? options.clock : &SystemClock();
    logger = options.logger != nullptr ? options.logger : NewNullLogger();
  }

  PostgresJournalOptions options;
  const Clock* clock;
  std::shared_ptr<Logger> logger;
  std::string target;  // host:port/db, for messages
  // At least one once open. A transaction's writes go to Writer(gid), so
  // they keep their order; writes of no transaction (claims, retention) to
  // the first.
  std::vector<std::unique_ptr<internal::PgJournalWriter>> writers;
  PgReaderPool readers;
  // Null without a registry. The gauge reads the writers; declared after
  // them, so that it is unregistered first.
  Histogram* commit_seconds = nullptr;
  Histogram* batch_writes = nullptr;
  CallbackGauge queued;

  internal::PgJournalWriter& Writer(const std::string& gid) {
    if (writers.size() == 1) return *writers.front();
    return *writers[std::hash<std::string>{}(gid) % writers.size()];
  }

  // The SQLite journal's metrics, under the same names (docs/operations.md),
  // so that one dashboard serves either journal.
  Status RegisterHistograms(MetricsRegistry& registry) {
    DTX_ASSIGN_OR_RETURN(
        commit_seconds,
        registry.AddHistogram(
            "dtx_journal_commit_duration_seconds",
            "Seconds of one group commit, from BEGIN to a durable COMMIT, its "
            "writes applied in between."));
    DTX_ASSIGN_OR_RETURN(
        batch_writes,
        registry.AddHistogram("dtx_journal_batch_writes",
                              "Writes committed together in one group commit.",
                              {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}));
    return Status::Ok();
  }
  Status RegisterQueuedGauge(MetricsRegistry& registry) {
    DTX_ASSIGN_OR_RETURN(
        queued, registry.AddCallbackGauge(
                    "dtx_journal_queued_writes",
                    "Writes waiting for the journal's writer threads (not yet "
                    "in a commit).",
                    [this] {
                      std::size_t n = 0;
                      for (const auto& w : writers) n += w->queued();
                      return static_cast<double>(n);
                    }));
    return Status::Ok();
  }
};

PostgresJournal::PostgresJournal(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

PostgresJournal::~PostgresJournal() { Close(); }

Result<std::unique_ptr<PostgresJournal>> PostgresJournal::Open(
    PostgresJournalOptions options) {
  if (options.conninfo.empty()) {
    return InvalidArgumentError(
        "journal: postgres: conninfo is empty (a libpq connection string or "
        "postgresql:// URI)");
  }
  DTX_RETURN_IF_ERROR(internal::ValidatePgSchemaName(options.schema));
  auto impl = std::make_unique<Impl>(std::move(options));
  DTX_ASSIGN_OR_RETURN(
      std::unique_ptr<PgConn> conn,
      PgConn::Connect(ConnOptions(impl->options, "dtx-journal-writer")));
  impl->target = conn->target();
  impl->readers.set_target(impl->target);
  DTX_RETURN_IF_ERROR(
      internal::MigratePgSchema(*conn, impl->options.schema, *impl->logger));
  internal::PgJournalWriter::Options w;
  w.connection = ConnOptions(impl->options, "dtx-journal-writer");
  // Every writer's connection before anything is registered: a server that
  // refuses the second one (max_connections, a role's CONNECTION LIMIT)
  // fails the Open with nothing left behind in the registry, so that the
  // host can open again with the same one. The first writer takes the
  // connection that migrated the schema.
  const std::size_t writers = std::max<std::size_t>(1, impl->options.writers);
  std::vector<std::unique_ptr<PgConn>> conns;
  conns.push_back(std::move(conn));
  while (conns.size() < writers) {
    DTX_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> more,
                         PgConn::Connect(w.connection));
    conns.push_back(std::move(more));
  }
  if (impl->options.metrics != nullptr)
    DTX_RETURN_IF_ERROR(impl->RegisterHistograms(*impl->options.metrics));
  w.max_batch_writes = impl->options.max_batch_writes;
  w.lazy_write_hold = impl->options.lazy_write_hold;
  w.pipeline = impl->options.pipeline;
  w.clock = impl->clock;
  w.logger = impl->logger;
  w.commit_seconds = impl->commit_seconds;
  w.batch_writes = impl->batch_writes;
  for (auto& c : conns) {
    DTX_ASSIGN_OR_RETURN(auto writer,
                         internal::PgJournalWriter::Start(std::move(c), w));
    impl->writers.push_back(std::move(writer));
  }
  // The gauge reads `writers`: registered once that no longer changes.
  if (impl->options.metrics != nullptr)
    DTX_RETURN_IF_ERROR(impl->RegisterQueuedGauge(*impl->options.metrics));
  DTX_LOG(impl->logger, LogLevel::kInfo,
          "journal: opened postgres " << impl->target << " schema "
                                      << impl->options.schema);
  return std::unique_ptr<PostgresJournal>(new PostgresJournal(std::move(impl)));
}

void PostgresJournal::SaveNew(GlobalTrans trans, std::vector<Branch> branches,
                              WriteDone done) {
  internal::PgJournalWriter& writer = impl_->Writer(trans.gid);
  writer.Enqueue(internal::MakePgSaveNew(std::move(trans), std::move(branches),
                                         std::move(done)));
}

void PostgresJournal::AppendBranches(std::string gid, TransStatus expected,
                                     std::vector<Branch> branches,
                                     WriteDone done) {
  internal::PgJournalWriter& writer = impl_->Writer(gid);
  writer.Enqueue(internal::MakePgAppendBranches(
      std::move(gid), expected, std::move(branches), std::move(done)));
}

void PostgresJournal::ChangeStatus(StatusChange change, WriteDone done) {
  internal::PgJournalWriter& writer = impl_->Writer(change.gid);
  writer.Enqueue(
      internal::MakePgChangeStatus(std::move(change), std::move(done)));
}

void PostgresJournal::UpdateBranches(BranchResults results, WriteDone done) {
  internal::PgJournalWriter& writer = impl_->Writer(results.gid);
  writer.Enqueue(
      internal::MakePgUpdateBranches(std::move(results), std::move(done)));
}

void PostgresJournal::TouchCron(CronUpdate update, WriteDone done) {
  internal::PgJournalWriter& writer = impl_->Writer(update.gid);
  writer.Enqueue(internal::MakePgTouchCron(std::move(update), std::move(done)));
}

void PostgresJournal::MakeDue(std::string gid, TimePoint now, WriteDone done) {
  internal::PgJournalWriter& writer = impl_->Writer(gid);
  writer.Enqueue(internal::MakePgMakeDue(std::move(gid), now, std::move(done)));
}

void PostgresJournal::Claim(ClaimRequest request, ClaimDone done) {
  impl_->writers.front()->Enqueue(
      internal::MakePgClaim(std::move(request), std::move(done)));
}

void PostgresJournal::PurgeFinished(PurgeRequest request, PurgeDone done) {
  impl_->writers.front()->Enqueue(
      internal::MakePgPurge(request, std::move(done)));
}

void PostgresJournal::Flush(WriteDone done) {
  // Every writer's earlier writes: done once each writer's flush completed,
  // with the first failure if any.
  struct Pending {
    Mutex mu;
    std::size_t left DTX_GUARDED_BY(mu);
    Status first DTX_GUARDED_BY(mu);
    WriteDone done;
  };
  auto pending = std::make_shared<Pending>();
  {
    MutexLock lock(&pending->mu);
    pending->left = impl_->writers.size();
  }
  pending->done = std::move(done);
  for (const auto& writer : impl_->writers) {
    // Trivial on the writer; the last one hands `done` to its executor.
    writer->Enqueue(internal::MakePgFlush([pending](Status s) {
      Status result;
      {
        MutexLock lock(&pending->mu);
        if (!s.ok() && pending->first.ok()) pending->first = std::move(s);
        if (--pending->left > 0) return;
        result = std::move(pending->first);
      }
      std::move(pending->done)(std::move(result));
    }));
  }
}

Result<TransWithBranches> PostgresJournal::Find(const std::string& gid) {
  static const std::string* const sql = new std::string(
      "SELECT " + internal::PgGlobalColumns("g.") + ", " +
      internal::PgBranchColumns("b.") +
      " FROM trans_global g LEFT JOIN trans_branch_op b ON b.trans_id = g.id"
      " WHERE g.gid = $1 ORDER BY b.id");
  // No gid holds other bytes than visible ASCII (ValidateGid); such a key
  // may not even be text the server accepts.
  if (gid.empty() || !PrefixCanMatch(gid))
    return NotFoundError("journal: gid " + gid + ": not found");
  const std::string& target = impl_->target;
  return impl_->readers.WithReader(
      [&](PgConn& conn) -> Result<TransWithBranches> {
        PgParams p;
        p.Text(gid);
        DTX_ASSIGN_OR_RETURN(PgResult r, conn.Exec(*sql, p, "find " + gid));
        if (r.rows() == 0)
          return NotFoundError("journal: gid " + gid + ": not found");
        TransWithBranches out;
        DTX_ASSIGN_OR_RETURN(out.trans,
                             internal::PgReadGlobalRow(r, 0, 0, target));
        constexpr int kFirst = internal::kPgGlobalColumnCount;
        for (int i = 0; i < r.rows(); ++i) {
          if (r.IsNull(i, kFirst)) continue;  // no branch rows
          DTX_ASSIGN_OR_RETURN(Branch b,
                               internal::PgReadBranchRow(r, i, kFirst, target));
          out.branches.push_back(std::move(b));
        }
        return out;
      });
}

Result<ListPage> PostgresJournal::List(const ListQuery& q) {
  const std::size_t limit = q.limit == 0 ? kDefaultListLimit : q.limit;
  if (!q.gid_prefix.empty() && !PrefixCanMatch(q.gid_prefix)) return ListPage{};
  // Parameters are numbered as the filters present add them. Which index
  // finds the rows: unfinished only, the partial due index (O(unfinished));
  // a gid prefix, a range of the gid index; else the primary key backwards
  // from the cursor.
  PgParams p;
  int n = 0;
  auto param = [&n] { return "$" + std::to_string(++n); };
  std::vector<std::string> where;
  const std::string prefix_end =
      q.gid_prefix.empty() ? std::string() : PrefixEnd(q.gid_prefix);
  const std::string status =
      q.status ? std::string(ToString(*q.status)) : std::string();
  const std::string type =
      q.trans_type ? std::string(ToString(*q.trans_type)) : std::string();
  if (q.unfinished_only) where.push_back(kUnfinished);
  if (q.cursor > 0) {
    where.push_back("id < " + param());
    p.Int(q.cursor);
  }
  if (q.status) {
    where.push_back("status = " + param());
    p.Text(status);
  }
  if (q.trans_type) {
    where.push_back("trans_type = " + param());
    p.Text(type);
  }
  if (q.created_from) {
    where.push_back("create_time >= " + param());
    p.Int(ToUnixMillis(*q.created_from));
  }
  if (q.created_to) {
    where.push_back("create_time <= " + param());
    p.Int(ToUnixMillis(*q.created_to));
  }
  if (!q.gid_prefix.empty()) {
    where.push_back("gid >= " + param());
    p.Text(q.gid_prefix);
    where.push_back("gid < " + param());
    p.Text(prefix_end);
  }
  std::string sql = std::string("SELECT ") + internal::kPgGlobalColumns +
                    " FROM trans_global";
  for (std::size_t i = 0; i < where.size(); ++i)
    sql += (i == 0 ? " WHERE " : " AND ") + where[i];
  sql += " ORDER BY id DESC LIMIT " + param();
  p.Int(static_cast<int64_t>(limit));
  const std::string& target = impl_->target;
  return impl_->readers.WithReader([&](PgConn& conn) -> Result<ListPage> {
    DTX_ASSIGN_OR_RETURN(PgResult r, conn.Exec(sql, p, "list"));
    ListPage page;
    for (int i = 0; i < r.rows(); ++i) {
      DTX_ASSIGN_OR_RETURN(GlobalTrans t,
                           internal::PgReadGlobalRow(r, i, 0, target));
      page.transactions.push_back(std::move(t));
    }
    if (page.transactions.size() == limit)
      page.next_cursor = page.transactions.back().id;
    return page;
  });
}

Result<DuePage> PostgresJournal::ListDue(TimePoint now, std::size_t limit,
                                         DueCursor after) {
  if (limit == 0) limit = 1;
  static const std::string* const sql = new std::string(
      std::string("SELECT ") + internal::kPgGlobalColumns +
      " FROM trans_global WHERE " + kUnfinished +
      " AND next_cron_time <= $1 AND (next_cron_time, id) > ($2, $3)"
      " ORDER BY next_cron_time, id LIMIT $4");
  const std::string& target = impl_->target;
  return impl_->readers.WithReader([&](PgConn& conn) -> Result<DuePage> {
    PgParams p;
    p.Int(ToUnixMillis(now))
        .Int(ToUnixMillis(after.next_cron_time))
        .Int(after.id)
        .Int(static_cast<int64_t>(limit));
    DTX_ASSIGN_OR_RETURN(PgResult r, conn.Exec(*sql, p, "list due"));
    DuePage page;
    for (int i = 0; i < r.rows(); ++i) {
      DTX_ASSIGN_OR_RETURN(GlobalTrans t,
                           internal::PgReadGlobalRow(r, i, 0, target));
      page.transactions.push_back(std::move(t));
    }
    if (page.transactions.size() == limit) {
      const GlobalTrans& last = page.transactions.back();
      page.next = DueCursor{last.next_cron_time, last.id};
    }
    return page;
  });
}

Result<UnfinishedSummary> PostgresJournal::Summarize(TimePoint now) {
  static const std::string* const sql = new std::string(
      std::string("SELECT count(*), count(*) FILTER (WHERE next_cron_time <= "
                  "$1), min(create_time) FROM trans_global WHERE ") +
      kUnfinished);
  return impl_->readers.WithReader(
      [&](PgConn& conn) -> Result<UnfinishedSummary> {
        PgParams p;
        p.Int(ToUnixMillis(now));
        DTX_ASSIGN_OR_RETURN(PgResult r, conn.Exec(*sql, p, "summarize"));
        UnfinishedSummary out;
        out.unfinished = r.Int(0, 0);
        out.due = r.Int(0, 1);
        if (!r.IsNull(0, 2))
          out.oldest_create_time = FromUnixMillis(r.Int(0, 2));
        return out;
      });
}

Result<StatusCounts> PostgresJournal::CountByStatus() {
  const std::string& target = impl_->target;
  return impl_->readers.WithReader([&](PgConn& conn) -> Result<StatusCounts> {
    DTX_ASSIGN_OR_RETURN(
        PgResult r,
        conn.Exec("SELECT status, count(*) FROM trans_global GROUP BY status",
                  "count by status"));
    StatusCounts out;
    for (int i = 0; i < r.rows(); ++i) {
      auto status = ParseTransStatus(r.Text(i, 0));
      if (!status.ok()) {
        return DataLossError("journal: postgres " + target + ": " +
                             status.status().message() + " in trans_global");
      }
      out[*status] = r.Int(i, 1);
    }
    return out;
  });
}

bool PostgresJournal::shared() const { return true; }

void PostgresJournal::Close() {
  for (const auto& writer : impl_->writers) writer->Close();
  impl_->readers.Close();
}

PostgresJournal::Stats PostgresJournal::stats() const {
  Stats out;
  for (const auto& writer : impl_->writers) {
    const internal::PgJournalWriter::Stats s = writer->stats();
    out.writes += s.writes;
    out.commits += s.commits;
    out.reruns += s.reruns;
    out.reconnects += s.reconnects;
    out.pipelined += s.pipelined;
    out.fallbacks += s.fallbacks;
    out.queued += writer->queued();
  }
  return out;
}

}  // namespace dtx
