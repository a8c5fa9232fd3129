// SqliteBarrier: dtm's barrier algorithm (dtm-semantics.md §4.3) on SQLite.
//
// The rules are BranchBarrier::Run's (dtx/barrier.h); this file gives them
// SQLite's insert-or-ignore, inside the business's local transaction (its
// own, or a savepoint of the caller's). Because the rows
// commit or roll back with the business changes, a branch that ran is
// recorded iff its effect is, and a concurrent duplicate waits on SQLite's
// write lock until the first one finished, then finds its row.

#include "dtx/storage/sqlite_barrier.h"

#include "dtx/clock.h"
#include "dtx/transaction.h"

#include "sqlite_handle.h"

#include <sqlite3.h>

#include <chrono>
#include <string>
#include <string_view>

namespace dtx {
namespace {

Status CheckTable(const std::string& table) {
  if (table.empty()) return InvalidArgumentError("barrier: empty table name");
  for (char c : table) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_';
    if (!ok)
      return InvalidArgumentError("barrier: bad table name '" + table + "'");
  }
  return Status::Ok();
}

// `sql` with each "{table}" replaced by `table` (checked by CheckTable: a
// plain identifier).
std::string ForTable(std::string_view sql, const std::string& table) {
  constexpr std::string_view kMark = "{table}";
  std::string out;
  for (;;) {
    const auto at = sql.find(kMark);
    out += sql.substr(0, at);
    if (at == std::string_view::npos) return out;
    out += table;
    sql.remove_prefix(at + kMark.size());
  }
}

Status Exec(sqlite3* db, const std::string& sql) {
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return Status::Ok();
  return internal::SqliteStatus(db, rc, "business database", sql);
}

// The barrier's rules (BranchBarrier::Run) on one SQLite connection: its own
// transaction when the connection has none, a savepoint inside the caller's
// otherwise.
class SqliteStore final : public BarrierStore {
 public:
  SqliteStore(sqlite3* db, const std::string& table) : db_(db), table_(table) {}

  Status Begin() override {
    // Our own transaction takes the write lock at once (IMMEDIATE), so that
    // a concurrent duplicate waits here rather than failing at its first
    // write.
    own_ = sqlite3_get_autocommit(db_) != 0;
    return Exec(db_, own_ ? "BEGIN IMMEDIATE" : "SAVEPOINT dtx_barrier");
  }

  Result<bool> InsertIfAbsent(const BarrierRow& row) override {
    const std::string sql = ForTable(R"sql(
INSERT OR IGNORE INTO {table} (trans_type, gid, branch_id, op, barrier_id,
  reason, create_time, update_time)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7))sql",
                                     table_);
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    if (rc != SQLITE_OK)
      return internal::SqliteStatus(db_, rc, "business database", "prepare");
    const std::string type(ToString(row.trans_type));
    const std::string op_name(ToString(row.op));
    sqlite3_bind_text(stmt, 1, type.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, row.gid.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, row.branch_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, op_name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 5, row.barrier_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 6, row.reason.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 7, ToUnixMillis(SystemClock().Now()));
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
      return internal::SqliteStatus(db_, rc, "business database",
                                    "insert barrier row");
    }
    return sqlite3_changes(db_) > 0;
  }

  Result<std::string> ReadReason(const BarrierRow& row) override {
    const std::string sql = ForTable(R"sql(
SELECT reason FROM {table}
WHERE gid = ?1 AND branch_id = ?2 AND op = ?3 AND barrier_id = ?4)sql",
                                     table_);
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    if (rc != SQLITE_OK)
      return internal::SqliteStatus(db_, rc, "business database", "prepare");
    const std::string op_name(ToString(row.op));
    sqlite3_bind_text(stmt, 1, row.gid.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, row.branch_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, op_name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 4, row.barrier_id.c_str(), -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(stmt);
    std::string reason;
    if (rc == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(stmt, 0);
      reason = text != nullptr ? reinterpret_cast<const char*>(text) : "";
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW) {
      return internal::SqliteStatus(db_, rc, "business database",
                                    "read barrier row");
    }
    return reason;
  }

  Status Commit() override {
    return Exec(db_, own_ ? "COMMIT" : "RELEASE dtx_barrier");
  }

  void Rollback() override {
    Exec(db_,
         own_ ? "ROLLBACK" : "ROLLBACK TO dtx_barrier; RELEASE dtx_barrier")
        .IgnoreError();
  }

 private:
  sqlite3* const db_;
  const std::string& table_;
  bool own_ = true;
};

// Pruning's reads and deletes (BarrierPruneStore) on one connection that is
// in no transaction; the gid index of the unique key serves both.
class SqlitePruneStore final : public BarrierPruneStore {
 public:
  SqlitePruneStore(sqlite3* db, const std::string& table)
      : db_(db), table_(table) {}

  Result<std::vector<std::string>> OldGids(const std::string& after,
                                           TimePoint before,
                                           std::size_t limit) override {
    const std::string sql = ForTable(R"sql(
SELECT gid FROM {table} WHERE gid > ?1 GROUP BY gid
HAVING max(create_time) < ?2 ORDER BY gid LIMIT ?3)sql",
                                     table_);
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    if (rc != SQLITE_OK)
      return internal::SqliteStatus(db_, rc, "business database", "prepare");
    sqlite3_bind_text(stmt, 1, after.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 2, ToUnixMillis(before));
    sqlite3_bind_int64(stmt, 3, static_cast<sqlite3_int64>(limit));
    std::vector<std::string> out;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(stmt, 0);
      out.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text)
                                       : "");
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
      return internal::SqliteStatus(db_, rc, "business database",
                                    "list old barrier rows");
    }
    return out;
  }

  Result<std::size_t> Remove(const std::vector<std::string>& gids,
                             TimePoint before) override {
    DTX_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
    const std::string sql = ForTable(
        "DELETE FROM {table} WHERE gid = ?1 AND create_time < ?2", table_);
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    std::size_t removed = 0;
    for (std::size_t i = 0; rc == SQLITE_OK && i < gids.size(); ++i) {
      sqlite3_reset(stmt);
      sqlite3_bind_text(stmt, 1, gids[i].c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(stmt, 2, ToUnixMillis(before));
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) {
        removed += static_cast<std::size_t>(sqlite3_changes(db_));
        rc = SQLITE_OK;
      }
    }
    if (rc != SQLITE_OK) {
      Status s = internal::SqliteStatus(db_, rc, "business database",
                                        "remove barrier rows");
      sqlite3_finalize(stmt);
      Exec(db_, "ROLLBACK").IgnoreError();
      return s;
    }
    sqlite3_finalize(stmt);
    DTX_RETURN_IF_ERROR(Exec(db_, "COMMIT"));
    return removed;
  }

 private:
  sqlite3* const db_;
  const std::string& table_;
};

}  // namespace

Result<BarrierPruneResult> SqliteBarrier::Prune(
    sqlite3* db, const BarrierPruneOptions& options, const std::string& table) {
  DTX_RETURN_IF_ERROR(CheckTable(table));
  if (sqlite3_get_autocommit(db) == 0) {
    return FailedPreconditionError(
        "barrier prune: the connection is inside a transaction (Prune runs "
        "short transactions of its own)");
  }
  SqlitePruneStore store(db, table);
  return PruneBarriers(store, options, SystemClock().Now());
}

Status SqliteBarrier::CreateTable(sqlite3* db, const std::string& table) {
  DTX_RETURN_IF_ERROR(CheckTable(table));
  return Exec(db, ForTable(R"sql(
CREATE TABLE IF NOT EXISTS {table} (
  id INTEGER PRIMARY KEY,
  trans_type TEXT NOT NULL DEFAULT '',
  gid TEXT NOT NULL DEFAULT '',
  branch_id TEXT NOT NULL DEFAULT '',
  op TEXT NOT NULL DEFAULT '',
  barrier_id TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  create_time INTEGER,
  update_time INTEGER,
  UNIQUE (gid, branch_id, op, barrier_id)
))sql",
                           table));
}

Status SqliteBarrier::Call(BranchBarrier& barrier, sqlite3* db,
                           const std::function<Status(sqlite3*)>& fn,
                           const std::string& table) {
  DTX_RETURN_IF_ERROR(CheckTable(table));
  SqliteStore store(db, table);
  return barrier.Run(store, [&] { return fn(db); });
}

Status SqliteBarrier::QueryPrepared(const BranchBarrier& barrier, sqlite3* db,
                                    const std::string& table) {
  DTX_RETURN_IF_ERROR(CheckTable(table));
  SqliteStore store(db, table);
  return barrier.QueryPrepared(store);
}

Status DoAndSubmitWithSqlite(Msg& msg, const std::string& query_prepared,
                             sqlite3* db,
                             const std::function<Status(sqlite3*)>& fn,
                             const std::string& table) {
  TransInfo info{msg.gid(), TransType::kMsg, "00", BranchOp::kMsg, ""};
  DTX_ASSIGN_OR_RETURN(BranchBarrier barrier,
                       BranchBarrier::FromTransInfo(info));
  return msg.DoAndSubmit(query_prepared, [&] {
    return SqliteBarrier::Call(barrier, db, fn, table);
  });
}

}  // namespace dtx
