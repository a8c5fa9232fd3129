// The PostgreSQL journal's writes, each a PgWriteOp that the writer thread
// (postgres_writer.h) applies inside a group-committed transaction, and the
// row readers shared with the reads.
//
// Thread safety: a PgWriteOp is built on any thread, then owned by the
// writer thread.

#ifndef DTX_STORAGE_POSTGRES_OPS_H_
#define DTX_STORAGE_POSTGRES_OPS_H_

#include "dtx/journal.h"

#include "postgres_conn.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dtx::internal {

class PgWriteOp {
 public:
  virtual ~PgWriteOp() = default;
  // Applies the write inside the writer's open transaction. `now_ms` stamps
  // update_time and friends. May run more than once in one batch (the
  // batch is rolled back and run again when another write of it fails
  // half-way): it must start from scratch each time.
  virtual Status Apply(PgConn& conn, int64_t now_ms) = 0;
  // Runs once with the final status, after the COMMIT (or its failure).
  virtual void Complete(Status status) = 0;
  // False for writes that need no SQL (Flush, and writes refused up front);
  // their outcome is then Outcome(), and Apply is never called.
  virtual bool touches_db() const { return true; }
  virtual Status Outcome() const { return Status::Ok(); }
  // True when a failure that is not the store's (not found, exists, wrong
  // status) may come after some of the write's statements applied: the
  // writer then rolls the batch back and runs it again without this write.
  // Writes whose first statement decides leave it false.
  virtual bool may_half_apply() const { return false; }
};

std::unique_ptr<PgWriteOp> MakePgSaveNew(GlobalTrans trans,
                                         std::vector<Branch> branches,
                                         WriteDone done);
std::unique_ptr<PgWriteOp> MakePgAppendBranches(std::string gid,
                                                TransStatus expected,
                                                std::vector<Branch> branches,
                                                WriteDone done);
std::unique_ptr<PgWriteOp> MakePgChangeStatus(StatusChange change,
                                              WriteDone done);
std::unique_ptr<PgWriteOp> MakePgUpdateBranches(BranchResults results,
                                                WriteDone done);
std::unique_ptr<PgWriteOp> MakePgTouchCron(CronUpdate update, WriteDone done);
std::unique_ptr<PgWriteOp> MakePgMakeDue(std::string gid, TimePoint now,
                                         WriteDone done);
std::unique_ptr<PgWriteOp> MakePgClaim(ClaimRequest request, ClaimDone done);
// Completes with OK after every earlier write is durable.
std::unique_ptr<PgWriteOp> MakePgFlush(WriteDone done);
// Completes with `status` without touching the store.
std::unique_ptr<PgWriteOp> MakePgRejected(Status status, WriteDone done);

// Read one row selected with kPgGlobalColumns (kPgBranchColumns) starting
// at column `first`. kDataLoss for a stored value this build cannot parse.
Result<GlobalTrans> PgReadGlobalRow(const PgResult& r, int row, int first,
                                    const std::string& target);
Result<Branch> PgReadBranchRow(const PgResult& r, int row, int first,
                               const std::string& target);

}  // namespace dtx::internal

#endif  // DTX_STORAGE_POSTGRES_OPS_H_
