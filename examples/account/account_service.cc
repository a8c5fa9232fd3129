#include "account_service.h"

#include "dtx/storage/sqlite_barrier.h"
#include "dtx/transport/trans_info.h"

#include <sqlite3.h>

#include <memory>
#include <string_view>

namespace dtx::examples {
namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

Result<DbPtr> Open(const std::string& path) {
  sqlite3* raw = nullptr;
  if (sqlite3_open(path.c_str(), &raw) != SQLITE_OK) {
    std::string err = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close(raw);
    return UnavailableError("account: open " + path + ": " + err);
  }
  DbPtr db(raw);
  sqlite3_busy_timeout(raw, 10000);
  sqlite3_exec(raw, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  return db;
}

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

}  // namespace

Status AccountService::Init(int users, int64_t initial_balance) {
  DTX_ASSIGN_OR_RETURN(DbPtr db, Open(path_));
  const std::string sql =
      "CREATE TABLE IF NOT EXISTS user_account (user_id INTEGER PRIMARY KEY, "
      "balance INTEGER NOT NULL, trading_balance INTEGER NOT NULL DEFAULT 0)";
  if (sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, nullptr) !=
      SQLITE_OK) {
    return InternalError(std::string("account: ") + sqlite3_errmsg(db.get()));
  }
  for (int u = 1; u <= users; ++u) {
    const std::string insert =
        "INSERT OR IGNORE INTO user_account (user_id, balance) VALUES (" +
        std::to_string(u) + ", " + std::to_string(initial_balance) + ")";
    sqlite3_exec(db.get(), insert.c_str(), nullptr, nullptr, nullptr);
  }
  return SqliteBarrier::CreateTable(db.get());
}

std::map<int64_t, std::pair<int64_t, int64_t>> AccountService::Balances()
    const {
  std::map<int64_t, std::pair<int64_t, int64_t>> out;
  auto db = Open(path_);
  if (!db.ok()) return out;
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(
      db->get(), "SELECT user_id, balance, trading_balance FROM user_account",
      -1, &stmt, nullptr);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    out[sqlite3_column_int64(stmt, 0)] = {sqlite3_column_int64(stmt, 1),
                                          sqlite3_column_int64(stmt, 2)};
  }
  sqlite3_finalize(stmt);
  return out;
}

grpc::Status AccountService::Apply(grpc::ServerContext* ctx,
                                   const AdjustInfo* req, const char* sql,
                                   bool must_change) {
  const bool debit =
      std::string_view(sql).find("balance >=") != std::string_view::npos;
  auto info = TransInfoFromServerContext(*ctx);
  if (!info.ok()) return ToGrpc(info.status());
  auto barrier = BranchBarrier::FromTransInfo(*info);
  if (!barrier.ok()) return ToGrpc(barrier.status());
  auto db = Open(path_);
  if (!db.ok()) return ToGrpc(db.status());
  Status s =
      SqliteBarrier::Call(*barrier, db->get(), [&](sqlite3* tx) -> Status {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(tx, sql, -1, &stmt, nullptr) != SQLITE_OK) {
          return InternalError(std::string("account: ") + sqlite3_errmsg(tx));
        }
        sqlite3_bind_int64(stmt, 1, req->amount());
        sqlite3_bind_int64(stmt, 2, req->userid());
        const int rc = sqlite3_step(stmt);
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE)
          return UnavailableError(std::string("account: ") +
                                  sqlite3_errmsg(tx));
        if (must_change && sqlite3_changes(tx) == 0) {
          return AbortedError((req->amount() > 0 && debit
                                   ? "insufficient balance of user "
                                   : "no account for user ") +
                              std::to_string(req->userid()));
        }
        return Status::Ok();
      });
  return ToGrpc(s);
}

grpc::Status AccountService::TransOut(grpc::ServerContext* c,
                                      const AdjustInfo* r, Response*) {
  auto info = TransInfoFromServerContext(*c);
  if (info.ok() && info->trans_type != TransType::kTcc) {
    return Apply(c, r,
                 "UPDATE user_account SET balance = balance - ?1 "
                 "WHERE user_id = ?2 AND balance >= ?1",
                 true);
  }
  return Apply(c, r,
               "UPDATE user_account SET balance = balance - ?1, "
               "trading_balance = trading_balance + ?1 WHERE user_id = ?2 AND "
               "balance >= ?1",
               true);
}

grpc::Status AccountService::TransOutConfirm(grpc::ServerContext* c,
                                             const AdjustInfo* r, Response*) {
  return Apply(c, r,
               "UPDATE user_account SET trading_balance = trading_balance - ?1 "
               "WHERE user_id = ?2",
               false);
}

grpc::Status AccountService::TransOutCancel(grpc::ServerContext* c,
                                            const AdjustInfo* r, Response*) {
  return Apply(c, r,
               "UPDATE user_account SET balance = balance + ?1, "
               "trading_balance = trading_balance - ?1 WHERE user_id = ?2",
               false);
}

grpc::Status AccountService::TransOutRevert(grpc::ServerContext* c,
                                            const AdjustInfo* r, Response*) {
  return Apply(
      c, r, "UPDATE user_account SET balance = balance + ?1 WHERE user_id = ?2",
      false);
}

grpc::Status AccountService::TransIn(grpc::ServerContext* c,
                                     const AdjustInfo* r, Response*) {
  auto info = TransInfoFromServerContext(*c);
  if (info.ok() && info->trans_type != TransType::kTcc) {
    // A transfer to no account fails (FAILURE): it rolls back.
    return Apply(
        c, r,
        "UPDATE user_account SET balance = balance + ?1 WHERE user_id = ?2",
        true);
  }
  return Apply(c, r,
               "UPDATE user_account SET trading_balance = trading_balance + ?1 "
               "WHERE user_id = ?2",
               false);
}

grpc::Status AccountService::TransInConfirm(grpc::ServerContext* c,
                                            const AdjustInfo* r, Response*) {
  return Apply(c, r,
               "UPDATE user_account SET balance = balance + ?1, "
               "trading_balance = trading_balance - ?1 WHERE user_id = ?2",
               false);
}

grpc::Status AccountService::TransInCancel(grpc::ServerContext* c,
                                           const AdjustInfo* r, Response*) {
  return Apply(c, r,
               "UPDATE user_account SET trading_balance = trading_balance - ?1 "
               "WHERE user_id = ?2",
               false);
}

grpc::Status AccountService::TransInRevert(grpc::ServerContext* c,
                                           const AdjustInfo* r, Response*) {
  return Apply(
      c, r, "UPDATE user_account SET balance = balance - ?1 WHERE user_id = ?2",
      false);
}

grpc::Status AccountService::QueryPrepared(grpc::ServerContext* c,
                                           const AdjustInfo*, Response*) {
  auto info = TransInfoFromServerContext(*c);
  if (!info.ok()) return ToGrpc(info.status());
  auto barrier = BranchBarrier::FromTransInfo(*info);
  if (!barrier.ok()) return ToGrpc(barrier.status());
  auto db = Open(path_);
  if (!db.ok()) return ToGrpc(db.status());
  return ToGrpc(SqliteBarrier::QueryPrepared(*barrier, db->get()));
}

}  // namespace dtx::examples
