// PostgresBarrier: dtm's barrier algorithm (dtm-semantics.md §4.3) on
// PostgreSQL.
//
// The rules are BranchBarrier::Run's (dtx/barrier.h); this file gives them a
// PostgreSQL transaction on a pooled connection and PostgreSQL's
// insert-if-absent, INSERT ... ON CONFLICT (gid, branch_id, op, barrier_id)
// DO NOTHING. dtm names the constraint (ON CONFLICT ON CONSTRAINT
// uniq_barrier); naming the columns instead lets the server infer the unique
// index, so that the statement works on dtm's table and on one created here.
// In READ COMMITTED, an insert that meets the key of a transaction in flight
// waits until it ends: after its commit it inserts nothing, after its
// rollback it inserts the row. A concurrent duplicate therefore waits for
// the first call and then finds its row, and the msg check-back waits for a
// local transaction in flight.
//
// A pooled connection may have been cut while it sat idle (a server
// restart): BEGIN on it fails without having done anything, so the call gets
// a new connection and begins again, once.

#include "dtx/storage/postgres_barrier.h"

#include "dtx/clock.h"
#include "dtx/internal/mutex.h"
#include "dtx/transaction.h"

#include "postgres_conn.h"

#include <cctype>
#include <utility>

namespace dtx {

using internal::PgConn;
using internal::PgParams;
using internal::PgResult;

namespace {

// The first half of the advisory lock taken while the table is created
// ("dtxb" in ASCII), with the table name's hash as the second half.
constexpr int64_t kCreateLockKey = 0x64747862;

Status CheckIdentifier(const char* what, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 63 &&
            std::isdigit(static_cast<unsigned char>(name[0])) == 0;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 || (std::isalnum(u) == 0 && c != '_')) ok = false;
  }
  if (ok) return Status::Ok();
  return InvalidArgumentError(
      std::string("barrier: postgres: ") + what + " '" + name +
      "' is not a plain identifier (letters, digits and '_', not starting "
      "with a digit, at most 63 bytes)");
}

std::string Quote(const std::string& identifier) {
  return "\"" + identifier + "\"";
}

}  // namespace

// The barrier's options, statements and idle connections.
class internal::PgBarrierPool {
 public:
  PostgresBarrierOptions options;
  std::string table;  // "schema"."table"
  std::string insert_sql;
  std::string select_sql;

  internal::Mutex mu;
  std::vector<std::unique_ptr<PgConn>> idle DTX_GUARDED_BY(mu);

  Result<std::unique_ptr<PgConn>> Connect() const {
    PgConn::Options o;
    o.conninfo = options.conninfo;
    o.subsystem = "barrier";
    o.application_name = "dtx-barrier";
    o.connect_timeout = options.connect_timeout;
    DTX_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, PgConn::Connect(o));
    PgParams p;
    const std::string timeout =
        std::to_string(options.lock_timeout.count()) + "ms";
    p.Text(timeout);
    DTX_ASSIGN_OR_RETURN(
        PgResult set,
        conn->Exec("SELECT pg_catalog.set_config('lock_timeout', $1, false)", p,
                   "set lock_timeout"));
    (void)set;
    return conn;
  }

  // An idle connection, or a new one; *pooled says which.
  Result<std::unique_ptr<PgConn>> Acquire(bool* pooled) {
    {
      internal::MutexLock lock(&mu);
      if (!idle.empty()) {
        std::unique_ptr<PgConn> conn = std::move(idle.back());
        idle.pop_back();
        *pooled = true;
        return conn;
      }
    }
    *pooled = false;
    return Connect();
  }

  // Keeps `conn` for the next call if it is healthy and there is room. A
  // lost one makes the idle ones suspect too (a server restart cuts them
  // all): they are closed rather than handed out to fail.
  void Release(std::unique_ptr<PgConn> conn) {
    if (conn == nullptr) return;
    internal::MutexLock lock(&mu);
    if (!conn->ok()) {
      idle.clear();
      return;
    }
    if (conn->in_transaction()) return;
    if (idle.size() < options.max_idle_connections)
      idle.push_back(std::move(conn));
  }

  // Creates the schema and the table when absent, then checks the table's
  // unique key. One barrier at a time (an advisory lock): two CREATE TABLE
  // IF NOT EXISTS at once can fail on the catalog's own unique keys.
  Status EnsureTable(PgConn& conn) {
    PgParams names;
    names.Text(options.schema).Text(options.table).Text(table);
    const std::string where = "table " + table;
    DTX_ASSIGN_OR_RETURN(PgResult begin, conn.ExecSimple("BEGIN", where));
    (void)begin;
    auto fail = [&](Status s) {
      conn.ExecSimple("ROLLBACK", where).status().IgnoreError();
      return s;
    };
    auto locked =
        conn.Exec("SELECT pg_catalog.pg_advisory_xact_lock(" +
                      std::to_string(kCreateLockKey) +
                      ", pg_catalog.hashtext($3)), "
                      "pg_catalog.to_regclass($3) IS NULL, "
                      "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace "
                      "WHERE nspname = $1)",
                  names, where);
    if (!locked.ok()) return fail(locked.status());
    // Only what is missing is created: CREATE ... IF NOT EXISTS needs the
    // privilege to create even when the object exists.
    const bool no_table = locked->Text(0, 1) == std::string(1, '\1');
    const bool no_schema = locked->Text(0, 2) == std::string(1, '\1');
    if (no_schema) {
      auto made = conn.ExecSimple("CREATE SCHEMA " + Quote(options.schema),
                                  "create schema " + options.schema);
      if (!made.ok()) return fail(made.status());
    }
    if (no_table) {
      // dtm's columns (sqls/dtmcli.barrier.postgres.sql), with an unnamed
      // unique key: a constraint name is unique per schema, and one schema
      // may hold several barrier tables.
      auto made = conn.ExecSimple("CREATE TABLE " + table + R"sql( (
  id bigserial PRIMARY KEY,
  trans_type varchar(45) NOT NULL DEFAULT '',
  gid varchar(128) NOT NULL DEFAULT '',
  branch_id varchar(128) NOT NULL DEFAULT '',
  op varchar(45) NOT NULL DEFAULT '',
  barrier_id varchar(45) NOT NULL DEFAULT '',
  reason varchar(45) NOT NULL DEFAULT '',
  create_time timestamp(0) with time zone DEFAULT NULL,
  update_time timestamp(0) with time zone DEFAULT NULL,
  UNIQUE (gid, branch_id, op, barrier_id)
))sql",
                                  "create " + where);
      if (!made.ok()) return fail(made.status());
    }
    // ON CONFLICT (gid, branch_id, op, barrier_id) needs a unique index on
    // exactly these columns (in any order).
    auto key = conn.Exec(R"sql(
SELECT count(*) FROM pg_catalog.pg_index i
WHERE i.indrelid = pg_catalog.to_regclass($3) AND i.indisunique
  AND i.indpred IS NULL AND i.indnkeyatts = 4
  AND (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attname::text)
       FROM pg_catalog.pg_attribute a
       WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey))
      = ARRAY['barrier_id', 'branch_id', 'gid', 'op'])sql",
                         names, where);
    if (!key.ok()) return fail(key.status());
    if (key->Int(0, 0) == 0) {
      return fail(FailedPreconditionError(
          "barrier: postgres " + conn.target() + ": " + where +
          " has no UNIQUE (gid, branch_id, op, barrier_id): it is not a "
          "barrier table"));
    }
    DTX_ASSIGN_OR_RETURN(PgResult commit, conn.ExecSimple("COMMIT", where));
    (void)commit;
    return Status::Ok();
  }
};

namespace {

// The barrier's rules (BranchBarrier::Run) on one pooled connection.
class PgStore final : public BarrierStore {
 public:
  explicit PgStore(internal::PgBarrierPool& pool) : pool_(pool) {}
  ~PgStore() override { pool_.Release(std::move(conn_)); }
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // Takes a connection; kUnavailable (naming the server) when none can be
  // made.
  Status Init() {
    DTX_ASSIGN_OR_RETURN(conn_, pool_.Acquire(&pooled_));
    return Status::Ok();
  }
  PgConn* conn() const { return conn_.get(); }

  Status Begin() override {
    Status s = conn_->ExecSimple("BEGIN", "begin").status();
    if (s.ok() || conn_->ok() || !pooled_) return s;
    // The idle connection was cut; BEGIN did nothing. Once more, on a new one
    // (Release drops the cut one and the other idle ones with it).
    pooled_ = false;
    pool_.Release(std::move(conn_));
    DTX_ASSIGN_OR_RETURN(conn_, pool_.Connect());
    return conn_->ExecSimple("BEGIN", "begin").status();
  }

  Result<bool> InsertIfAbsent(const BarrierRow& row) override {
    const std::string_view type = ToString(row.trans_type);
    const std::string_view op = ToString(row.op);
    PgParams p;
    p.Text(type)
        .Text(row.gid)
        .Text(row.branch_id)
        .Text(op)
        .Text(row.barrier_id);
    p.Text(row.reason);
    DTX_ASSIGN_OR_RETURN(
        PgResult r, conn_->Exec(pool_.insert_sql, p, "insert barrier row"));
    return r.affected() > 0;
  }

  Result<std::string> ReadReason(const BarrierRow& row) override {
    const std::string_view op = ToString(row.op);
    PgParams p;
    p.Text(row.gid).Text(row.branch_id).Text(op).Text(row.barrier_id);
    DTX_ASSIGN_OR_RETURN(PgResult r,
                         conn_->Exec(pool_.select_sql, p, "read barrier row"));
    if (r.rows() == 0) {
      return InternalError("barrier: postgres " + conn_->target() + ": gid " +
                           row.gid + ": the check-back's row is not in " +
                           pool_.table);
    }
    return r.Text(0, 0);
  }

  Status Commit() override {
    return conn_->ExecSimple("COMMIT", "commit").status();
  }

  void Rollback() override {
    if (conn_->in_transaction())
      conn_->ExecSimple("ROLLBACK", "rollback").status().IgnoreError();
  }

 private:
  internal::PgBarrierPool& pool_;
  std::unique_ptr<PgConn> conn_;
  bool pooled_ = false;
};

// Pruning's reads and deletes (BarrierPruneStore), each on a pooled
// connection; the gid index of the unique key serves both.
class PgPruneStore final : public BarrierPruneStore {
 public:
  explicit PgPruneStore(internal::PgBarrierPool& pool) : pool_(pool) {}

  Result<std::vector<std::string>> OldGids(const std::string& after,
                                           TimePoint before,
                                           std::size_t limit) override {
    bool pooled = false;
    DTX_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, pool_.Acquire(&pooled));
    PgParams p;
    p.Text(after).Int(ToUnixMillis(before)).Int(static_cast<int64_t>(limit));
    auto r = conn->Exec("SELECT gid FROM " + pool_.table + R"sql(
WHERE gid > $1 GROUP BY gid
HAVING max(create_time) < to_timestamp($2::bigint / 1000.0)
ORDER BY gid LIMIT $3)sql",
                        p, "list old barrier rows");
    pool_.Release(std::move(conn));
    if (!r.ok()) return r.status();
    std::vector<std::string> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(r->Text(i, 0));
    return out;
  }

  Result<std::size_t> Remove(const std::vector<std::string>& gids,
                             TimePoint before) override {
    bool pooled = false;
    DTX_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, pool_.Acquire(&pooled));
    Result<std::size_t> out = RemoveOn(*conn, gids, before);
    if (!out.ok() && conn->in_transaction())
      conn->ExecSimple("ROLLBACK", "rollback").status().IgnoreError();
    pool_.Release(std::move(conn));
    return out;
  }

 private:
  Result<std::size_t> RemoveOn(PgConn& conn,
                               const std::vector<std::string>& gids,
                               TimePoint before) {
    DTX_ASSIGN_OR_RETURN(PgResult begin, conn.ExecSimple("BEGIN", "begin"));
    (void)begin;
    std::size_t removed = 0;
    const std::string sql = "DELETE FROM " + pool_.table + R"sql(
WHERE gid = $1 AND create_time < to_timestamp($2::bigint / 1000.0))sql";
    for (const std::string& gid : gids) {
      PgParams p;
      p.Text(gid).Int(ToUnixMillis(before));
      DTX_ASSIGN_OR_RETURN(PgResult r,
                           conn.Exec(sql, p, "remove barrier rows"));
      removed += static_cast<std::size_t>(r.affected());
    }
    DTX_ASSIGN_OR_RETURN(PgResult commit, conn.ExecSimple("COMMIT", "commit"));
    (void)commit;
    return removed;
  }

  internal::PgBarrierPool& pool_;
};

}  // namespace

Result<BarrierPruneResult> PostgresBarrier::Prune(
    const BarrierPruneOptions& options) {
  PgPruneStore store(*pool_);
  return PruneBarriers(store, options, SystemClock().Now());
}

Result<PostgresRows> PostgresTx::Exec(
    std::string_view sql, const std::vector<PostgresParam>& params) {
  std::vector<std::optional<std::string>> values;
  values.reserve(params.size());
  for (const PostgresParam& p : params) values.push_back(p.value());
  DTX_ASSIGN_OR_RETURN(PgResult r,
                       conn_->ExecText(sql, values, "business statement"));
  PostgresRows rows;
  rows.affected_ = r.affected();
  const int columns = r.columns();
  for (int c = 0; c < columns; ++c) rows.columns_.push_back(r.ColumnName(c));
  rows.rows_.resize(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    auto& row = rows.rows_[static_cast<std::size_t>(i)];
    row.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      if (r.IsNull(i, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(r.Text(i, c));
      }
    }
  }
  return rows;
}

pg_conn* PostgresTx::native_handle() const { return conn_->native_handle(); }

Result<std::unique_ptr<PostgresBarrier>> PostgresBarrier::Open(
    PostgresBarrierOptions options) {
  if (options.conninfo.empty()) {
    return InvalidArgumentError(
        "barrier: postgres: conninfo is empty (a libpq connection string or "
        "postgresql:// URI)");
  }
  DTX_RETURN_IF_ERROR(CheckIdentifier("schema", options.schema));
  DTX_RETURN_IF_ERROR(CheckIdentifier("table", options.table));
  if (options.lock_timeout.count() < 0) {
    return InvalidArgumentError(
        "barrier: postgres: lock_timeout must not be negative");
  }
  auto impl = std::make_unique<internal::PgBarrierPool>();
  impl->table = Quote(options.schema) + "." + Quote(options.table);
  impl->insert_sql = "INSERT INTO " + impl->table + R"sql(
  (trans_type, gid, branch_id, op, barrier_id, reason, create_time,
   update_time)
VALUES ($1, $2, $3, $4, $5, $6, now(), now())
ON CONFLICT (gid, branch_id, op, barrier_id) DO NOTHING)sql";
  impl->select_sql = "SELECT reason FROM " + impl->table + R"sql(
WHERE gid = $1 AND branch_id = $2 AND op = $3 AND barrier_id = $4)sql";
  impl->options = std::move(options);
  DTX_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, impl->Connect());
  DTX_RETURN_IF_ERROR(impl->EnsureTable(*conn));
  impl->Release(std::move(conn));
  return std::unique_ptr<PostgresBarrier>(new PostgresBarrier(std::move(impl)));
}

PostgresBarrier::PostgresBarrier(std::unique_ptr<internal::PgBarrierPool> pool)
    : pool_(std::move(pool)) {}

PostgresBarrier::~PostgresBarrier() = default;

const std::string& PostgresBarrier::table_name() const { return pool_->table; }

Status PostgresBarrier::Call(BranchBarrier& barrier,
                             const std::function<Status(PostgresTx&)>& fn) {
  PgStore store(*pool_);
  DTX_RETURN_IF_ERROR(store.Init());
  return barrier.Run(store, [&]() -> Status {
    PgConn* conn = store.conn();
    PostgresTx tx(conn);
    DTX_RETURN_IF_ERROR(fn(tx));
    // PostgreSQL answers COMMIT of a failed transaction with a rollback, not
    // an error: an OK here would claim an effect that never happened.
    if (conn->in_failed_transaction()) {
      return InternalError(
          "barrier: postgres " + conn->target() + ": gid " +
          barrier.info().gid +
          ": the business returned OK although a statement of its "
          "transaction failed; nothing was committed (run a statement that "
          "may fail inside a SAVEPOINT)");
    }
    if (!conn->in_transaction()) {
      return InternalError("barrier: postgres " + conn->target() + ": gid " +
                           barrier.info().gid +
                           ": the business ended the barrier's transaction "
                           "itself (COMMIT or ROLLBACK)");
    }
    return Status::Ok();
  });
}

Status PostgresBarrier::QueryPrepared(const BranchBarrier& barrier) {
  Status s;
  for (int attempt = 0; attempt < 2; ++attempt) {
    PgStore store(*pool_);
    DTX_RETURN_IF_ERROR(store.Init());
    s = barrier.QueryPrepared(store);
    // A cut idle connection: the check-back is idempotent, so once more on a
    // new one.
    if (s.ok() || store.conn()->ok()) return s;
  }
  return s;
}

Status DoAndSubmitWithPostgres(Msg& msg, const std::string& query_prepared,
                               PostgresBarrier& barrier,
                               const std::function<Status(PostgresTx&)>& fn) {
  TransInfo info{msg.gid(), TransType::kMsg, "00", BranchOp::kMsg, ""};
  DTX_ASSIGN_OR_RETURN(BranchBarrier branch,
                       BranchBarrier::FromTransInfo(info));
  return msg.DoAndSubmit(query_prepared,
                         [&] { return barrier.Call(branch, fn); });
}

}  // namespace dtx
