// SqliteBarrier: the sub-transaction barrier (dtx/barrier.h) on a SQLite
// business database. The barrier rows live in a table of that database, so
// that they commit or roll back with the business's own changes.
//
//   // In a TCC cancel handler of a service whose data is in SQLite:
//   DTX_ASSIGN_OR_RETURN(auto info, dtx::TransInfoFromServerContext(*ctx));
//   DTX_ASSIGN_OR_RETURN(auto barrier,
//                        dtx::BranchBarrier::FromTransInfo(info));
//   return dtx::SqliteBarrier::Call(barrier, db, [&](sqlite3* tx) {
//     return ReleaseReservation(tx, req);  // runs at most once, or never
//   });
//
// `db` is the caller's connection (sqlite3*); this header only declares the
// type. The caller keeps using it from one thread at a time.

#ifndef DTX_STORAGE_SQLITE_BARRIER_H_
#define DTX_STORAGE_SQLITE_BARRIER_H_

#include "dtx/barrier.h"
#include "dtx/result.h"
#include "dtx/status.h"
#include "dtx/storage/sqlite_export.h"

#include <functional>
#include <string>

struct sqlite3;

namespace dtx {

class Msg;

class DTX_SQLITE_EXPORT SqliteBarrier {
 public:
  // The barrier table, as dtm's dtm_barrier.barrier.
  static constexpr const char* kDefaultTable = "barrier";

  // Creates the table if absent.
  static Status CreateTable(sqlite3* db,
                            const std::string& table = kDefaultTable);

  // Runs `fn` once for this branch, inside a local transaction on `db`,
  // together with the barrier rows: commits when fn returns OK, rolls back
  // otherwise (and returns fn's status). When the barrier says the op must
  // not run (duplicate, null compensation, hanging), returns OK without
  // calling fn. If `db` is already in a transaction, a savepoint is used and
  // the commit is the caller's.
  //
  // kUnavailable when the database is busy or locked (retry: the business
  // step was not skipped); kAborted with "DUPLICATED" for op "msg" after a
  // check-back decided the message fails.
  static Status Call(BranchBarrier& barrier, sqlite3* db,
                     const std::function<Status(sqlite3*)>& fn,
                     const std::string& table = kDefaultTable);

  // The check-back of a two-phase message (op "msg", branch "00"): OK when
  // the local transaction committed, kAborted (dtm's FAILURE) when it did not;
  // in the latter case it also makes sure it never will.
  static Status QueryPrepared(const BranchBarrier& barrier, sqlite3* db,
                              const std::string& table = kDefaultTable);

  // Removes the rows of transactions that options.finished says are over
  // and whose newest row is older than options.min_age (PruneBarriers,
  // dtx/barrier.h), a page at a time, each page's removal one short
  // transaction. Run it now and then (daily, say) on a connection in no
  // transaction (kFailedPrecondition otherwise); kUnavailable when the
  // database stays locked.
  static Result<BarrierPruneResult> Prune(
      sqlite3* db, const BarrierPruneOptions& options,
      const std::string& table = kDefaultTable);
};

// Msg::DoAndSubmit with the local transaction under the barrier of
// (msg, gid, "00", "msg") on `db`: the check-back handler of `query_prepared`
// must answer with SqliteBarrier::QueryPrepared on the same database.
DTX_SQLITE_EXPORT Status
DoAndSubmitWithSqlite(Msg& msg, const std::string& query_prepared, sqlite3* db,
                      const std::function<Status(sqlite3*)>& fn,
                      const std::string& table = SqliteBarrier::kDefaultTable);

}  // namespace dtx

#endif  // DTX_STORAGE_SQLITE_BARRIER_H_
