// RAII wrappers around sqlite3* and sqlite3_stmt*, and the one place where
// SQLite result codes become dtx::Status.
//
// Thread safety: a Db and its statements belong to one thread at a time.

#ifndef DTX_STORAGE_SQLITE_HANDLE_H_
#define DTX_STORAGE_SQLITE_HANDLE_H_

#include "dtx/result.h"
#include "dtx/status.h"

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace dtx::internal {

// Maps a SQLite result code of an operation on `db` to a Status whose message
// names the file and what was being done.
Status SqliteStatus(sqlite3* db, int rc, std::string_view path,
                    std::string_view context);

// True for statuses that mean the store itself failed (full, busy, corrupt,
// i/o), as opposed to a request that does not apply (not found, exists...).
bool IsStorageFailure(const Status& status);

class Stmt {
 public:
  Stmt(sqlite3_stmt* stmt, sqlite3* db, const std::string* path)
      : stmt_(stmt), db_(db), path_(path) {}
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Binds are 1-based, as in SQLite.
  void BindInt(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void BindText(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
  }
  void BindBlob(int i, std::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
  }
  // The same without a copy: `v` must stay alive and unchanged until the
  // statement is reset (a StmtGuard resets it when its scope ends). For the
  // writer's hot path, where values live in the write being applied.
  void BindTextRef(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_STATIC);
  }
  void BindBlobRef(int i, std::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_STATIC);
  }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  void BindOptInt(int i, const std::optional<int64_t>& v) {
    if (v) {
      BindInt(i, *v);
    } else {
      BindNull(i);
    }
  }
  void BindOptText(int i, const std::optional<std::string>& v) {
    if (v) {
      BindText(i, *v);
    } else {
      BindNull(i);
    }
  }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  // Steps a statement that returns no rows; the error names `context`.
  Status Run(std::string_view context);

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }
  std::string Text(int col) const;
  std::string Blob(int col) const;

  // Makes the statement reusable and drops its bindings.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  sqlite3_stmt* raw() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
  sqlite3* db_;
  const std::string* path_;
};

// Resets a statement when the scope ends, so that its read lock is released
// and it can be reused.
class StmtGuard {
 public:
  explicit StmtGuard(Stmt* stmt) : stmt_(stmt) {}
  ~StmtGuard() { stmt_->Reset(); }
  StmtGuard(const StmtGuard&) = delete;
  StmtGuard& operator=(const StmtGuard&) = delete;
  Stmt* operator->() const { return stmt_; }
  Stmt& operator*() const { return *stmt_; }

 private:
  Stmt* stmt_;
};

// One connection with a cache of prepared statements.
class Db {
 public:
  // Opens `path` (created when `create`); sets the busy timeout.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, bool create,
                                          int busy_timeout_ms);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements that return no rows.
  Status Exec(std::string_view sql);
  // Runs a statement returning one integer (PRAGMA user_version, COUNT(*)).
  Result<int64_t> QueryInt(const std::string& sql);
  // The prepared statement for `sql`, compiled once and cached.
  Result<Stmt*> Prepare(const std::string& sql);
  // The same for text with static storage duration (a literal), cached by
  // its address: no copy or hash of the text on the hot path.
  Result<Stmt*> PrepareStatic(const char* sql);

  Status Error(int rc, std::string_view context) const {
    return SqliteStatus(db_, rc, path_, context);
  }
  int64_t changes() const { return sqlite3_changes64(db_); }
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, std::unique_ptr<Stmt>> stmts_;
  std::unordered_map<const char*, Stmt*> static_stmts_;
};

}  // namespace dtx::internal

#endif  // DTX_STORAGE_SQLITE_HANDLE_H_
