// RAII wrappers around libpq's PGconn and PGresult, statement parameters in
// libpq's binary format, and the one place where PostgreSQL errors become
// dtx::Status (the same codes as the SQLite journal's, dtx/journal.h).
//
// Every statement is sent with PQexecParams, its parameters and its results
// in binary format: integers travel as 8 bytes, text and bytea as their bytes
// with a length (a NUL or invalid UTF-8 in a text value is refused by the
// server with kInvalidArgument, never cut short by a C string).
//
// Thread safety: a PgConn and its results belong to one thread at a time.

#ifndef DTX_STORAGE_POSTGRES_CONN_H_
#define DTX_STORAGE_POSTGRES_CONN_H_

#include "dtx/result.h"
#include "dtx/status.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <libpq-fe.h>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dtx::internal {

// True for statuses that mean the store itself failed (connection lost, disk
// full, corrupt, no permission), as opposed to a write that does not apply
// (not found, exists, wrong status, a value the server refuses).
bool IsPgStorageFailure(const Status& status);

// Parameters of one statement, $1 first. Text and byte values are borrowed:
// they must outlive the statement's execution. Integers are held by the
// object itself; a copy points at its own.
class PgParams {
 public:
  PgParams() = default;
  PgParams(const PgParams& other);
  PgParams& operator=(const PgParams& other);
  // Moving keeps the integers where they are (a deque's elements do not move
  // with it), so the pointers to them stay right.
  PgParams(PgParams&&) noexcept = default;
  PgParams& operator=(PgParams&&) noexcept = default;

  PgParams& Int(int64_t v);
  PgParams& Text(std::string_view v);
  PgParams& Bytes(std::string_view v);
  PgParams& NullInt();
  PgParams& NullText();
  PgParams& OptInt(const std::optional<int64_t>& v) {
    return v ? Int(*v) : NullInt();
  }
  PgParams& OptText(const std::optional<std::string>& v) {
    return v ? Text(*v) : NullText();
  }

  int size() const { return static_cast<int>(values_.size()); }
  const Oid* types() const { return types_.data(); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  void Add(Oid type, const char* data, int length);
  std::vector<Oid> types_;
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  std::deque<std::array<char, 8>> ints_;  // stable addresses
  std::vector<std::size_t> int_values_;   // the values_ that point into ints_
};

// One result (rows in binary format). Columns read with Int must be bigint.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r, &PQclear) {}
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool IsNull(int row, int col) const {
    return PQgetisnull(r_.get(), row, col) != 0;
  }
  int64_t Int(int row, int col) const;
  std::string Text(int row, int col) const {
    return std::string(
        PQgetvalue(r_.get(), row, col),
        static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
  }
  std::optional<int64_t> OptInt(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return Int(row, col);
  }
  // Rows changed by an INSERT, UPDATE or DELETE without RETURNING.
  int64_t affected() const;
  int columns() const { return r_ ? PQnfields(r_.get()) : 0; }
  std::string ColumnName(int col) const { return PQfname(r_.get(), col); }

 private:
  std::shared_ptr<PGresult> r_;
};

class PgConn {
 public:
  struct Options {
    // A libpq connection string or postgresql:// URI.
    std::string conninfo;
    // search_path of the connection: the journal's schema. Empty: the
    // server's default is left alone.
    std::string schema;
    // The first word of every error message ("journal: postgres ...").
    std::string subsystem = "journal";
    std::string application_name = "dtx";
    std::chrono::milliseconds connect_timeout{5000};
  };

  // Connects and sets the session up. kUnavailable when the server cannot be
  // reached, kPermissionDenied when it refuses the login, kNotFound when the
  // database does not exist.
  static Result<std::unique_ptr<PgConn>> Connect(const Options& options);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // Runs one statement. Rows come back in binary format. Errors name
  // `context`. A statement text met for the first time is prepared on the
  // connection (up to kMaxPrepared texts) and executed by name from then on,
  // so that the server parses and plans it once per connection.
  Result<PgResult> Exec(std::string_view sql, const PgParams& params,
                        std::string_view context);
  Result<PgResult> Exec(std::string_view sql, std::string_view context) {
    return Exec(sql, PgParams(), context);
  }
  // Runs one statement with parameters in text format whose types the
  // server infers (std::nullopt is NULL); rows come back in text format.
  // Never prepared by name: for statements that are not dtx's own.
  Result<PgResult> ExecText(
      std::string_view sql,
      const std::vector<std::optional<std::string>>& params,
      std::string_view context);
  // Runs statements without parameters (text protocol, several allowed); the
  // last one's rows come back in text format.
  Result<PgResult> ExecSimple(const std::string& sql, std::string_view context);

  // libpq's pipeline mode: statements queued with Send go to the server one
  // after another without waiting for each other's results, and Sync sends a
  // sync message and reads every result, so that a batch costs one round
  // trip instead of one per statement. Between EnterPipeline and
  // ExitPipeline only Send and Sync may be used (no Exec). The server stops
  // at the first statement that fails and skips the rest up to the sync.
  //
  // The caller bounds what it queues before a Sync: the connection blocks,
  // and the server blocks once it has more results unread than the socket
  // buffers hold (a few hundred small results are far from that).
  Status EnterPipeline();
  // Reads nothing: call it after Sync. kUnavailable when results are still
  // pending (the connection is then closed) or the connection was lost.
  Status ExitPipeline();
  bool in_pipeline() const {
    return PQpipelineStatus(conn_) != PQ_PIPELINE_OFF;
  }
  // Queues one statement (prepared on first use, as Exec). Its parameter
  // values are copied at once; they need not outlive the call.
  Status Send(std::string_view sql, const PgParams& params,
              std::string_view context);
  // Statements queued since the last Sync.
  std::size_t queued() const { return sent_.size(); }
  // Sends the queued statements and reads their results into `results`, in
  // order. OK only when every statement succeeded; otherwise the first
  // failure's status (its SQLSTATE in last_sqlstate(), or kUnavailable for
  // a lost connection) and `results` holds those before it.
  Status Sync(std::vector<PgResult>& results);

  // For a connection that has been idle: false when the server has closed
  // it meanwhile (a restart or pg_terminate_backend sends a message and
  // closes the socket), found without a round trip. A connection cut off
  // without a word still passes; its next statement fails.
  bool StillUp();

  // False once the connection is lost: it must be replaced.
  bool ok() const { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }
  // Inside a transaction that an error has aborted (only ROLLBACK works).
  bool in_failed_transaction() const {
    return PQtransactionStatus(conn_) == PQTRANS_INERROR;
  }
  bool in_transaction() const {
    return PQtransactionStatus(conn_) != PQTRANS_IDLE;
  }
  // The libpq connection, for code that speaks libpq itself.
  PGconn* native_handle() const { return conn_; }
  // Its server process, for messages and tests.
  int backend_pid() const { return PQbackendPID(conn_); }
  // "host:port/dbname", for messages.
  const std::string& target() const { return target_; }
  // The SQLSTATE of the last failed statement ("" after a lost connection).
  const std::string& last_sqlstate() const { return last_sqlstate_; }

  // Statement texts prepared per connection at most; others run unnamed.
  static constexpr std::size_t kMaxPrepared = 256;

 private:
  // A statement queued in pipeline mode: its result, preceded by the result
  // of its PREPARE when `prepare` names one it queued.
  struct Sent {
    std::string context;
    std::string prepare_sql;   // with prepare_name: a PREPARE was queued
    std::string prepare_name;  // first
  };
  PgConn(PGconn* conn, std::string target, std::string subsystem)
      : conn_(conn),
        target_(std::move(target)),
        subsystem_(std::move(subsystem)) {}
  Status ErrorOf(const PGresult* r, std::string_view context);
  // The name `sql` is prepared under, preparing it first; "" to run it
  // unnamed (the cache is full).
  Result<std::string> Prepared(const std::string& sql, const PgParams& params,
                               std::string_view context);

  PGconn* conn_;
  const std::string target_;
  const std::string subsystem_;
  std::string last_sqlstate_;
  // Statement text -> prepared statement name ("s1", "s2"...).
  std::unordered_map<std::string, std::string> prepared_;
  // In pipeline mode: names queued for preparing, not yet confirmed.
  std::unordered_map<std::string, std::string> preparing_;
  uint64_t next_name_ = 1;
  // Set when a pipeline left the connection in an unknown state: ok() is
  // then false and the connection must be replaced.
  bool broken_ = false;
  std::vector<Sent> sent_;
};

}  // namespace dtx::internal

#endif  // DTX_STORAGE_POSTGRES_CONN_H_
