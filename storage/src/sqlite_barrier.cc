// SqliteBarrier: dtm's barrier algorithm (dtm-semantics.md §4.3) on SQLite.
//
// Inside the business's local transaction: insert-or-ignore the origin op's
// row (for compensating ops) and the current op's row; BranchBarrier::Decide
// says from the two results whether the business runs. Because the rows
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

// Inserts a barrier row unless it exists; *inserted tells which.
Status InsertIgnore(sqlite3* db, const std::string& table,
                    const TransInfo& info, BranchOp op,
                    const std::string& barrier_id, const std::string& reason,
                    bool* inserted) {
  const std::string sql = ForTable(R"sql(
INSERT OR IGNORE INTO {table} (trans_type, gid, branch_id, op, barrier_id,
  reason, create_time, update_time)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7))sql",
                                   table);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  if (rc != SQLITE_OK)
    return internal::SqliteStatus(db, rc, "business database", "prepare");
  const std::string type(ToString(info.trans_type));
  const std::string op_name(ToString(op));
  sqlite3_bind_text(stmt, 1, type.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, info.gid.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 3, info.branch_id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 4, op_name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 5, barrier_id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 6, reason.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt, 7, ToUnixMillis(SystemClock().Now()));
  rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) {
    return internal::SqliteStatus(db, rc, "business database",
                                  "insert barrier row");
  }
  *inserted = sqlite3_changes(db) > 0;
  return Status::Ok();
}

}  // namespace

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
  const TransInfo& info = barrier.info();
  // Our own transaction takes the write lock at once (IMMEDIATE), so that a
  // concurrent duplicate waits here rather than failing at its first write.
  const bool own = sqlite3_get_autocommit(db) != 0;
  DTX_RETURN_IF_ERROR(
      Exec(db, own ? "BEGIN IMMEDIATE" : "SAVEPOINT dtx_barrier"));
  auto rollback = [&] {
    Exec(db, own ? "ROLLBACK" : "ROLLBACK TO dtx_barrier; RELEASE dtx_barrier")
        .IgnoreError();
  };
  auto commit = [&]() -> Status {
    Status s = Exec(db, own ? "COMMIT" : "RELEASE dtx_barrier");
    if (!s.ok()) rollback();
    return s;
  };
  const std::string bid = barrier.NextBarrierId();
  const std::string reason(ToString(info.op));
  bool origin_inserted = false;
  if (auto origin = BranchBarrier::OriginOp(info.op)) {
    Status s =
        InsertIgnore(db, table, info, *origin, bid, reason, &origin_inserted);
    if (!s.ok()) {
      rollback();
      return s;
    }
  }
  bool current_inserted = false;
  Status s =
      InsertIgnore(db, table, info, info.op, bid, reason, &current_inserted);
  if (!s.ok()) {
    rollback();
    return s;
  }
  switch (BranchBarrier::Decide(info.op, origin_inserted, current_inserted)) {
    case BranchBarrier::Decision::kDuplicated:
      rollback();
      return AbortedError(
          "barrier: gid " + info.gid +
          ": DUPLICATED (the check-back already failed this message)");
    case BranchBarrier::Decision::kSkip:
      // Keep the rows: a null compensation must block its late forward op.
      return commit();
    case BranchBarrier::Decision::kRun:
      break;
  }
  s = fn(db);
  if (!s.ok()) {
    rollback();
    return s;
  }
  return commit();
}

Status SqliteBarrier::QueryPrepared(const BranchBarrier& barrier, sqlite3* db,
                                    const std::string& table) {
  DTX_RETURN_IF_ERROR(CheckTable(table));
  TransInfo info = barrier.info();
  info.trans_type = TransType::kMsg;
  info.branch_id = "00";
  bool inserted = false;
  // If the local transaction has not committed, this row makes sure it never
  // will: its own insert of the same row will find it.
  DTX_RETURN_IF_ERROR(InsertIgnore(db, table, info, BranchOp::kMsg, "01",
                                   kBarrierRollbackReason, &inserted));
  const std::string sql = ForTable(R"sql(
SELECT reason FROM {table}
WHERE gid = ?1 AND branch_id = '00' AND op = 'msg' AND barrier_id = '01')sql",
                                   table);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  if (rc != SQLITE_OK)
    return internal::SqliteStatus(db, rc, "business database", "prepare");
  sqlite3_bind_text(stmt, 1, info.gid.c_str(), -1, SQLITE_TRANSIENT);
  rc = sqlite3_step(stmt);
  std::string reason;
  if (rc == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(stmt, 0);
    reason = text != nullptr ? reinterpret_cast<const char*>(text) : "";
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) {
    return internal::SqliteStatus(db, rc, "business database",
                                  "read barrier row");
  }
  if (reason == kBarrierRollbackReason) {
    return AbortedError("barrier: gid " + info.gid +
                        ": the local transaction did not commit");
  }
  return Status::Ok();
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
