#include "sqlite_handle.h"

#include "wal_index_guard.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <unistd.h>

namespace dtx::internal {

Status SqliteStatus(sqlite3* db, int rc, std::string_view path,
                    std::string_view context) {
  std::string message = "journal: ";
  message += path;
  message += ": ";
  message += context;
  message += ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int primary = rc & 0xff;
  const int sys_errno = db != nullptr ? sqlite3_system_errno(db) : 0;
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(message +
                              " (locked by another connection or process)");
    case SQLITE_FULL:
      return ResourceExhaustedError(message +
                                    " (disk full or max_page_count reached)");
    case SQLITE_TOOBIG:
      return ResourceExhaustedError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(message +
                           " (the file is damaged or not a database)");
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return PermissionDeniedError(message);
    case SQLITE_CANTOPEN:
      if (sys_errno == ENOENT)
        return NotFoundError(message + " (no such file or directory)");
      if (sys_errno == EACCES || sys_errno == EROFS || sys_errno == EPERM) {
        return PermissionDeniedError(
            message + " (permission denied or read-only file system)");
      }
      return UnavailableError(message);
    case SQLITE_IOERR:
      if (sys_errno == EACCES || sys_errno == EROFS || sys_errno == EPERM) {
        return PermissionDeniedError(
            message + " (permission denied or read-only file system)");
      }
      if (sys_errno == ENOSPC)
        return ResourceExhaustedError(message + " (disk full)");
      return UnavailableError(message + " (i/o error)");
    case SQLITE_NOMEM:
      return ResourceExhaustedError(message + " (out of memory)");
    case SQLITE_CONSTRAINT:
      return AlreadyExistsError(message);
    default:
      return InternalError(message);
  }
}

bool IsStorageFailure(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
    case StatusCode::kNotFound:
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kInvalidArgument:
    case StatusCode::kAborted:  // a stale fence (journal.h, Fence)
      return false;
    default:
      return true;
  }
}

Status Stmt::Run(std::string_view context) {
  const int rc = Step();
  Status s = (rc == SQLITE_DONE || rc == SQLITE_ROW)
                 ? Status::Ok()
                 : SqliteStatus(db_, rc, *path_, context);
  Reset();
  return s;
}

std::string Stmt::Text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  const int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(n))
           : std::string();
}

std::string Stmt::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  const int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(static_cast<const char*>(p),
                         static_cast<std::size_t>(n))
           : std::string();
}

namespace {

// SQLite reports every failure to open as SQLITE_CANTOPEN, and its last errno
// may come from a later probe; look at the file system ourselves to say why.
Status ExplainOpenFailure(const std::string& path, Status fallback) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos
                              ? "."
                              : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string prefix = "journal: " + path + ": open: ";
  if (access(dir.c_str(), F_OK) != 0) {
    return NotFoundError(prefix + "directory " + dir + " does not exist");
  }
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return PermissionDeniedError(
        prefix + "directory " + dir + " is not writable (" +
        std::strerror(errno) +
        "); SQLite needs to create -wal and -shm files beside the journal");
  }
  if (access(path.c_str(), F_OK) == 0 &&
      access(path.c_str(), R_OK | W_OK) != 0) {
    return PermissionDeniedError(prefix +
                                 "file is not readable and writable (" +
                                 std::strerror(errno) + ")");
  }
  return fallback;
}

}  // namespace

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, bool create,
                                     int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (create) flags |= SQLITE_OPEN_CREATE;
  if (!create && access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    return NotFoundError("journal: " + path + ": no such file");
  }
  // The WAL index guard's VFS when the process installed it.
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, GuardedVfsName());
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(raw, rc, path, "open");
    sqlite3_close(raw);
    return ExplainOpenFailure(path, std::move(s));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  return std::unique_ptr<Db>(new Db(raw, path));
}

Db::~Db() {
  stmts_.clear();  // finalize before closing
  sqlite3_close(db_);
}

Status Db::Exec(std::string_view sql) {
  std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, text);
  return Status::Ok();
}

Result<int64_t> Db::QueryInt(const std::string& sql) {
  DTX_ASSIGN_OR_RETURN(Stmt * stmt, Prepare(sql));
  StmtGuard guard(stmt);
  const int rc = stmt->Step();
  if (rc != SQLITE_ROW) {
    if (rc == SQLITE_DONE)
      return InternalError("journal: " + path_ + ": no row from " + sql);
    return Error(rc, sql);
  }
  return stmt->Int(0);
}

Result<Stmt*> Db::Prepare(const std::string& sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second.get();
  sqlite3_stmt* raw = nullptr;
  const int rc =
      sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "prepare");
  auto stmt = std::make_unique<Stmt>(raw, db_, &path_);
  Stmt* out = stmt.get();
  stmts_.emplace(sql, std::move(stmt));
  return out;
}

Result<Stmt*> Db::PrepareStatic(const char* sql) {
  auto it = static_stmts_.find(sql);
  if (it != static_stmts_.end()) return it->second;
  DTX_ASSIGN_OR_RETURN(Stmt * stmt, Prepare(std::string(sql)));
  static_stmts_.emplace(sql, stmt);
  return stmt;
}

}  // namespace dtx::internal
