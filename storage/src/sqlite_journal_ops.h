// The journal's writes, each a WriteOp that the writer thread applies inside a
// group-committed SQLite transaction, and the row readers shared with the
// read path.
//
// Thread safety: a WriteOp is built on any thread, then owned by the writer
// thread.

#ifndef DTX_STORAGE_SQLITE_JOURNAL_OPS_H_
#define DTX_STORAGE_SQLITE_JOURNAL_OPS_H_

#include "dtx/journal.h"

#include "journal_rows.h"
#include "sqlite_handle.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dtx::internal {

class WriteOp {
 public:
  virtual ~WriteOp() = default;
  // Applies the write inside the writer's open transaction (and a savepoint of
  // its own). `now_ms` stamps update_time and friends.
  virtual Status Apply(Db& db, int64_t now_ms) = 0;
  // Runs once with the final status, after the COMMIT (or its failure).
  virtual void Complete(Status status) = 0;
  // False for writes that need no SQL (Flush, and writes rejected up front).
  virtual bool touches_db() const { return true; }
  // False for writes that, when they do not apply, have written nothing
  // (their first statement decides), so they need no savepoint of their own.
  virtual bool needs_savepoint() const { return true; }
  // True for a write no one waits on (StatusChange::lazy): the writer may
  // hold it back for company (kLazyWriteHold).
  virtual bool lazy() const { return false; }
};

std::unique_ptr<WriteOp> MakeSaveNew(GlobalTrans trans,
                                     std::vector<Branch> branches,
                                     WriteDone done);
std::unique_ptr<WriteOp> MakeAppendBranches(std::string gid,
                                            TransStatus expected,
                                            std::vector<Branch> branches,
                                            WriteDone done);
std::unique_ptr<WriteOp> MakeChangeStatus(StatusChange change, WriteDone done);
std::unique_ptr<WriteOp> MakeUpdateBranches(BranchResults results,
                                            WriteDone done);
std::unique_ptr<WriteOp> MakeTouchCron(CronUpdate update, WriteDone done);
std::unique_ptr<WriteOp> MakeMakeDue(std::string gid, TimePoint now,
                                     WriteDone done);
std::unique_ptr<WriteOp> MakeClaim(ClaimRequest request, ClaimDone done);
std::unique_ptr<WriteOp> MakePurge(PurgeRequest request, PurgeDone done);
// Completes with OK after every earlier write is durable.
std::unique_ptr<WriteOp> MakeFlush(WriteDone done);
// Completes with `status` without touching the store.
std::unique_ptr<WriteOp> MakeRejected(Status status, WriteDone done);

// The SQL shared by ListDue and Claim: unfinished rows due at ?1, after the
// cursor (?2, ?3), in due order, at most ?4. Built once; the address of its
// text is stable (Db::PrepareStatic).
const std::string& DueSelectSql();

// The statement of Claim: leases up to ?5 unfinished rows due at ?4 to
// owner ?1 until ?2, stamping ?3, and returns them. Built once, as above.
const std::string& ClaimSql();

}  // namespace dtx::internal

#endif  // DTX_STORAGE_SQLITE_JOURNAL_OPS_H_
