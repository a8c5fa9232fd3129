// The sub-transaction barrier's rules, independent of the database: which row
// a branch inserts, and what the result of the inserts means. A barrier for a
// given database (dtx::SqliteBarrier, dtx/storage/sqlite_barrier.h; later
// PostgreSQL) applies them inside the business's own local transaction.
//
// dtx, like dtm, calls branches at least once and possibly out of order. The
// barrier keeps a branch's effect exactly-once:
//   duplicate request   a repeated confirm / compensate / action: skipped;
//   null compensation   a cancel / compensate whose try / action never ran:
//                       skipped, and the forward op is blocked for good;
//   hanging             a try / action arriving after its cancel /
//                       compensate: skipped.
//
// Thread safety: BranchBarrier is thread-compatible (one per request).

#ifndef DTX_BARRIER_H_
#define DTX_BARRIER_H_

#include "dtx/core_export.h"
#include "dtx/model.h"
#include "dtx/result.h"

#include <optional>
#include <string>

namespace dtx {

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

 private:
  explicit BranchBarrier(TransInfo info) : info_(std::move(info)) {}
  TransInfo info_;
  int next_id_ = 0;
};

// The reason column of a barrier row written by the msg check-back when the
// local transaction has not committed: the message then fails.
inline constexpr const char* kBarrierRollbackReason = "rollback";

}  // namespace dtx

#endif  // DTX_BARRIER_H_
