// The sub-transaction barrier's rules, independent of the database: which row
// a branch inserts, what the result of the inserts means, and when the local
// transaction commits. They live here once; a barrier for a given database
// (dtx::SqliteBarrier, dtx/storage/sqlite_barrier.h; dtx::PostgresBarrier,
// dtx/storage/postgres_barrier.h) only implements BarrierStore, the few
// things the rules need from that database, and calls BranchBarrier::Run and
// BranchBarrier::QueryPrepared.
//
// dtx, like dtm, calls branches at least once and possibly out of order. The
// barrier keeps a branch's effect exactly-once:
//   duplicate request   a repeated confirm / compensate / action: skipped;
//   null compensation   a cancel / compensate whose try / action never ran:
//                       skipped, and the forward op is blocked for good;
//   hanging             a try / action arriving after its cancel /
//                       compensate: skipped.
//
// Thread safety: BranchBarrier is thread-compatible (one per request); so is
// a BarrierStore (one local transaction, one thread).

#ifndef DTX_BARRIER_H_
#define DTX_BARRIER_H_

#include "dtx/core_export.h"
#include "dtx/model.h"
#include "dtx/result.h"

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace dtx {

// One row of the barrier table (dtm's layout; docs/barrier.md). A row is
// identified by (gid, branch_id, op, barrier_id), the table's unique key.
struct BarrierRow {
  TransType trans_type = TransType::kSaga;
  std::string gid;
  std::string branch_id;
  BranchOp op = BranchOp::kAction;
  std::string barrier_id;
  // The op that inserted the row ("rollback" for the msg check-back's row).
  std::string reason;
};

// What the barrier's rules need from a business database: one local
// transaction on one connection. Implemented by each database's barrier;
// BranchBarrier::Run and QueryPrepared drive it.
class DTX_CORE_EXPORT BarrierStore {
 public:
  virtual ~BarrierStore();

  // Opens the local transaction (or a savepoint inside the caller's).
  virtual Status Begin() = 0;
  // Inserts `row` unless the table holds one with the same (gid, branch_id,
  // op, barrier_id); true when it inserted it. A concurrent transaction that
  // inserted the same key makes this wait until it ends (or fail with
  // kUnavailable after the database's lock timeout), never skip. Runs in
  // the local transaction after Begin, on its own (auto-commit) otherwise.
  virtual Result<bool> InsertIfAbsent(const BarrierRow& row) = 0;
  // The reason of the committed row with row's key.
  virtual Result<std::string> ReadReason(const BarrierRow& row) = 0;
  // Commits the local transaction (releases the savepoint).
  virtual Status Commit() = 0;
  // Rolls the local transaction (the savepoint) back; never fails the call.
  virtual void Rollback() = 0;
};

class DTX_CORE_EXPORT BranchBarrier {
 public:
  // kInvalidArgument when gid, branch id or op is missing or malformed.
  static Result<BranchBarrier> FromTransInfo(const TransInfo& info);

  const TransInfo& info() const { return info_; }
  // "01", "02", ...: one per protected local transaction of this request.
  std::string NextBarrierId();

  // The op whose row a compensating op also inserts: cancel -> try,
  // compensate -> action, rollback -> action; none for the others.
  static std::optional<BranchOp> OriginOp(BranchOp op);

  enum class Decision {
    kRun,         // run the business
    kSkip,        // duplicate, null compensation or hanging: succeed without it
    kDuplicated,  // op "msg": the check-back already decided "rollback"
  };
  // What inserting the rows did: `origin_inserted` (always false without an
  // origin op) and `current_inserted`.
  static Decision Decide(BranchOp op, bool origin_inserted,
                         bool current_inserted);

  // dtm's Call (dtm-semantics.md §4.3) on `store`: opens the local
  // transaction, takes the next barrier id, inserts the origin op's row (for
  // compensating ops) and the current op's row, and asks Decide. kRun: calls
  // `business`, then commits when it returns OK and rolls back (returning
  // its status) otherwise. kSkip: commits the rows without calling it (a
  // null compensation's row must block its late forward op) and returns OK.
  // kDuplicated: rolls back and returns kAborted with "DUPLICATED". A
  // failing Begin, insert or commit returns the store's error (the business
  // then did not take effect). `business` runs on the calling thread.
  Status Run(BarrierStore& store, const std::function<Status()>& business);

  // The check-back of a two-phase message (dtm's QueryPrepared, §4.4) on
  // `store`, outside any local transaction: inserts the (msg, gid, "00",
  // "msg", "01") row with reason "rollback" unless it exists (waiting for a
  // local transaction in flight that inserted it), then reads the row's
  // reason back. OK when the local transaction committed; kAborted (dtm's
  // FAILURE) when it did not, and then it never will: its own insert finds
  // the row and gets DUPLICATED. Only the gid of this barrier is used.
  Status QueryPrepared(BarrierStore& store) const;

 private:
  explicit BranchBarrier(TransInfo info) : info_(std::move(info)) {}
  TransInfo info_;
  int next_id_ = 0;
};

// The reason column of a barrier row written by the msg check-back when the
// local transaction has not committed: the message then fails.
inline constexpr const char* kBarrierRollbackReason = "rollback";

// Pruning. A barrier row is needed while a call of its transaction can still
// arrive: a late duplicate, or a try after its cancel. Once the coordinator
// is done with the transaction and its newest row is old enough, its rows can
// go (SqliteBarrier::Prune, PostgresBarrier::Prune). Without pruning the
// table grows by a few rows per branch call for ever (dtm has no pruning).
struct BarrierPruneOptions {
  // Only transactions whose newest barrier row is at least this old: longer
  // than any call can be delayed or retried on its way (a week by default).
  std::chrono::seconds min_age{7 * 24 * 3600};
  // Whether the coordinator is done with `gid` (true: its rows may go). An
  // error stops the prune and is returned. Required; FinishedAt(dtm) asks a
  // coordinator.
  std::function<Result<bool>(const std::string& gid)> finished;
  // Transactions looked at per page (each page: one read, then `finished`
  // per gid, then one short write transaction removing the finished ones).
  std::size_t page = 500;
};

struct BarrierPruneResult {
  std::size_t checked = 0;  // transactions old enough, asked about
  std::size_t pruned = 0;   // of those, finished: their rows removed
  std::size_t rows = 0;     // barrier rows removed
};

// What pruning needs from a business database; each database's barrier
// implements it and calls PruneBarriers.
class DTX_CORE_EXPORT BarrierPruneStore {
 public:
  virtual ~BarrierPruneStore();
  // Up to `limit` gids greater than `after`, in gid order, whose newest row
  // was created before `before` (rows without a creation time do not count
  // as old: a gid with only such rows is never listed).
  virtual Result<std::vector<std::string>> OldGids(const std::string& after,
                                                   TimePoint before,
                                                   std::size_t limit) = 0;
  // Removes the rows of `gids` created before `before`, in one local
  // transaction; the number removed.
  virtual Result<std::size_t> Remove(const std::vector<std::string>& gids,
                                     TimePoint before) = 0;
};

// Every page of `store` at `now` (the rules of BarrierPruneOptions).
// kInvalidArgument without options.finished.
DTX_CORE_EXPORT Result<BarrierPruneResult> PruneBarriers(
    BarrierPruneStore& store, const BarrierPruneOptions& options,
    TimePoint now);

class DtmApi;

// A BarrierPruneOptions::finished that asks `dtm` (embedded or a dtx-server
// or dtm client): true for a transaction in a final status (succeed,
// failed), and for one the coordinator does not have (kNotFound). A barrier
// row is written only after its transaction was recorded (a branch call, a
// TCC try after Prepare, a msg's local transaction after Prepare), and a
// coordinator removes only finished transactions (retention), so a gid it
// no longer has is over. That holds only while `dtm` is the coordinator the
// barrier's transactions ran on. `dtm` must outlive the function.
DTX_CORE_EXPORT std::function<Result<bool>(const std::string& gid)> FinishedAt(
    DtmApi& dtm);

}  // namespace dtx

#endif  // DTX_BARRIER_H_
