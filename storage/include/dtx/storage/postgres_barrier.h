// PostgresBarrier: the sub-transaction barrier (dtx/barrier.h) on a
// PostgreSQL business database, with the same rules as SqliteBarrier (both
// run BranchBarrier::Run). The barrier rows live in a table of that database
// and are inserted in the same PostgreSQL transaction as the business's own
// SQL, so that they commit or roll back together.
//
//   // Once, at startup:
//   dtx::PostgresBarrierOptions options;
//   options.conninfo = "host=db.internal user=shop dbname=shop";
//   DTX_ASSIGN_OR_RETURN(auto barriers, dtx::PostgresBarrier::Open(options));
//
//   // In a saga compensate handler of a gRPC service (any thread):
//   DTX_ASSIGN_OR_RETURN(auto info, dtx::TransInfoFromServerContext(*ctx));
//   DTX_ASSIGN_OR_RETURN(auto barrier,
//                        dtx::BranchBarrier::FromTransInfo(info));
//   return barriers->Call(barrier, [&](dtx::PostgresTx& tx) -> dtx::Status {
//     // runs at most once, or never (null compensation)
//     return tx.Exec("UPDATE account SET balance = balance + $1 "
//                    "WHERE user_id = $2",
//                    {req.amount(), req.user_id()})
//         .status();
//   });
//
// Why an object with connections of its own, where SqliteBarrier takes the
// caller's sqlite3*: a PostgreSQL connection is a server process and a few
// round trips to open, and branch handlers run on many threads at once. A
// PostgresBarrier keeps a small pool: each Call borrows one connection for
// its transaction, so handlers on different threads run concurrently, and a
// concurrent duplicate of the same branch waits on the row's unique key (up
// to `lock_timeout`) until the first one ends, then finds its row.
//
// Why PostgresTx::Exec rather than the PGconn*: a handler's SQL is a few
// parameterised statements, and Exec runs them with no libpq in the
// service's code (no PGresult to free, no error text to map: a failing
// statement is a dtx::Status with the journal's codes). Services that already
// speak libpq (or a library on top of it) get the same transaction's
// connection from native_handle().
//
// Thread safety: PostgresBarrier is thread-safe. A PostgresTx belongs to the
// call of `fn` it was handed to: one thread, and only until `fn` returns.

#ifndef DTX_STORAGE_POSTGRES_BARRIER_H_
#define DTX_STORAGE_POSTGRES_BARRIER_H_

#include "dtx/barrier.h"
#include "dtx/result.h"
#include "dtx/status.h"
#include "dtx/storage/postgres_export.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

// libpq's connection (PGconn in <libpq-fe.h>); only declared here.
struct pg_conn;

namespace dtx {

class Msg;

namespace internal {
class PgConn;
class PgBarrierPool;
}  // namespace internal

struct DTX_POSTGRES_EXPORT PostgresBarrierOptions {
  // The business database: a libpq connection string ("host=... port=...
  // user=... password=... dbname=...") or URI; libpq's environment variables
  // (PGHOST, PGPASSWORD...) fill what it leaves out. The connections keep the
  // server's search_path: give one in the string (options='-c
  // search_path=shop') if the business SQL names its tables unqualified.
  std::string conninfo;

  // The barrier table, `schema`.`table`: dtm's dtm_barrier.barrier by
  // default, so that a service moving from dtm's SDK keeps its rows. Both
  // created when absent; plain identifiers (letters, digits and '_', not
  // starting with a digit), used exactly as written (case-sensitive).
  std::string schema = "dtm_barrier";
  std::string table = "barrier";

  // Connections kept open between calls; more are opened while more calls
  // run at once, and closed after.
  std::size_t max_idle_connections = 4;

  // How long a connection attempt may take (libpq's connect_timeout, whole
  // seconds, at least 1).
  std::chrono::milliseconds connect_timeout{5000};

  // How long a statement may wait for a row lock (PostgreSQL's lock_timeout,
  // for the barrier's inserts and the business's SQL alike): a duplicate of
  // a call still in flight waits this long, then fails with kUnavailable
  // (retried), never skips. 0: wait as long as it takes.
  std::chrono::milliseconds lock_timeout{5000};
};

// One parameter of PostgresTx::Exec, sent as text; the server infers its
// type from the statement (write "$1::numeric" where it cannot). Made
// implicitly from strings, integers (in decimal), bools and std::nullopt
// (NULL), so that a call reads Exec(sql, {amount, user_id}). No floating
// point: pass its text, with the precision it needs.
class DTX_POSTGRES_EXPORT PostgresParam {
 public:
  PostgresParam(std::nullopt_t) {}                               // NOLINT
  PostgresParam(const char* v) : value_(std::string(v)) {}       // NOLINT
  PostgresParam(std::string v) : value_(std::move(v)) {}         // NOLINT
  PostgresParam(std::string_view v) : value_(std::string(v)) {}  // NOLINT
  PostgresParam(bool v) : value_(v ? "true" : "false") {}        // NOLINT
  template <typename T, std::enable_if_t<std::is_integral_v<T> &&
                                             !std::is_same_v<T, bool> &&
                                             !std::is_same_v<T, char>,
                                         int> = 0>
  PostgresParam(T v) : value_(std::to_string(v)) {}  // NOLINT

  // The text sent; std::nullopt for NULL.
  const std::optional<std::string>& value() const { return value_; }

 private:
  std::optional<std::string> value_;
};

// The rows of one statement, every value in PostgreSQL's text form.
class DTX_POSTGRES_EXPORT PostgresRows {
 public:
  std::size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  const std::vector<std::string>& columns() const { return columns_; }
  // The value at (row, col); std::nullopt for NULL.
  // REQUIRES: row < size(), col < columns().size().
  const std::optional<std::string>& at(std::size_t row, std::size_t col) const {
    return rows_[row][col];
  }
  // Rows changed by an INSERT, UPDATE or DELETE (0 for other statements).
  int64_t affected() const { return affected_; }

 private:
  friend class PostgresTx;
  std::vector<std::string> columns_;
  std::vector<std::vector<std::optional<std::string>>> rows_;
  int64_t affected_ = 0;
};

// The business's handle on the barrier's PostgreSQL transaction, handed to
// the function of PostgresBarrier::Call. Thread-compatible; valid until that
// function returns.
class DTX_POSTGRES_EXPORT PostgresTx {
 public:
  PostgresTx(const PostgresTx&) = delete;
  PostgresTx& operator=(const PostgresTx&) = delete;

  // Runs one statement ($1, $2... for `params`) in the transaction. A
  // failing statement returns its error with the journal's codes
  // (kAlreadyExists for a unique violation, kInvalidArgument for a value the
  // server refuses, kUnavailable for a lost connection or a lock timeout,
  // ...) and, as always in PostgreSQL, fails the whole transaction: return
  // that error from the function. To go on after a statement that may fail,
  // run it between "SAVEPOINT s" and "ROLLBACK TO s" / "RELEASE s".
  // REQUIRES: no COMMIT or ROLLBACK of the transaction itself.
  Result<PostgresRows> Exec(std::string_view sql,
                            const std::vector<PostgresParam>& params = {});

  // libpq's PGconn* of the transaction (#include <libpq-fe.h> to use it), for
  // code that speaks libpq itself: statements on it are in the barrier's
  // transaction. Borrowed: never close it, COMMIT or ROLLBACK on it, or keep
  // it after the function returns.
  pg_conn* native_handle() const;

 private:
  friend class PostgresBarrier;
  explicit PostgresTx(internal::PgConn* conn) : conn_(conn) {}
  internal::PgConn* const conn_;
};

class DTX_POSTGRES_EXPORT PostgresBarrier {
 public:
  // Connects, creates the schema and the table when absent (the table as
  // dtm's: dtm-semantics.md §3.1), and checks that the table has the unique
  // key (gid, branch_id, op, barrier_id) the barrier relies on.
  // kInvalidArgument for a malformed option; kUnavailable when the server
  // cannot be reached (the message names it); kPermissionDenied when it
  // refuses the login or the DDL; kNotFound for a database that does not
  // exist; kFailedPrecondition for a table without that key.
  static Result<std::unique_ptr<PostgresBarrier>> Open(
      PostgresBarrierOptions options);

  ~PostgresBarrier();
  PostgresBarrier(const PostgresBarrier&) = delete;
  PostgresBarrier& operator=(const PostgresBarrier&) = delete;

  // Runs `fn` once for this branch, in one PostgreSQL transaction together
  // with the barrier rows: commits when fn returns OK, rolls back otherwise
  // (and returns fn's status). When the barrier says the op must not run
  // (duplicate, null compensation, hanging), returns OK without calling fn.
  // A transaction that fn left failed (a statement failed, fn returned OK)
  // is rolled back and that statement's error returned.
  //
  // kUnavailable when the server cannot be reached or a row stays locked
  // past lock_timeout (retry: the business step was not skipped); kAborted
  // with "DUPLICATED" for op "msg" after a check-back decided the message
  // fails. `fn` runs on the calling thread.
  Status Call(BranchBarrier& barrier,
              const std::function<Status(PostgresTx&)>& fn);

  // The check-back of a two-phase message (op "msg", branch "00"): OK when
  // the local transaction committed, kAborted (dtm's FAILURE) when it did not;
  // in the latter case it also makes sure it never will. A local transaction
  // still in flight is waited for (up to lock_timeout).
  Status QueryPrepared(const BranchBarrier& barrier);

  // Removes the rows of transactions that options.finished says are over
  // and whose newest row is older than options.min_age (PruneBarriers,
  // dtx/barrier.h), a page at a time, each page's removal one short
  // transaction. Rows without a create_time (dtm's Go SDK leaves it NULL on
  // PostgreSQL) are kept. Run it now and then (daily, say).
  Result<BarrierPruneResult> Prune(const BarrierPruneOptions& options);

  // "schema"."table", quoted as in SQL.
  const std::string& table_name() const;

 private:
  explicit PostgresBarrier(std::unique_ptr<internal::PgBarrierPool> pool);
  std::unique_ptr<internal::PgBarrierPool> pool_;
};

// Msg::DoAndSubmit with the local transaction under the barrier of
// (msg, gid, "00", "msg") on `barrier`'s database: the check-back handler of
// `query_prepared` must answer with PostgresBarrier::QueryPrepared on the
// same database.
DTX_POSTGRES_EXPORT Status DoAndSubmitWithPostgres(
    Msg& msg, const std::string& query_prepared, PostgresBarrier& barrier,
    const std::function<Status(PostgresTx&)>& fn);

}  // namespace dtx

#endif  // DTX_STORAGE_POSTGRES_BARRIER_H_
