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

// One statement of a write: its text, its parameters (borrowing the op's
// own values) and the words that name it in errors.
struct PgStatement {
  std::string sql;
  PgParams params;
  std::string context;
};

class PgWriteOp {
 public:
  virtual ~PgWriteOp() = default;

  // Most writes are a fixed list of statements whose parameters need no
  // earlier result (rows are found by gid, not by an id read first), each
  // followed by a check of its result. The writer then either sends them
  // all with the rest of its batch in one pipeline and checks them after
  // (PgConn::Send), or runs them one at a time through Apply, which stops at
  // the first check that fails. Statements() is empty for a write that does
  // its own Apply (a claim, whose rows can be large).
  //
  // Built afresh for each application (a write may be applied more than
  // once in one batch: the batch is rolled back and run again when another
  // write of it fails half-way).
  virtual std::vector<PgStatement> Statements(int64_t now_ms) {
    (void)now_ms;
    return {};
  }
  // Whether statement `k` of the last Statements() did what the write
  // needs. Not OK: the write does not apply, and the status says why. With
  // `conn` (one statement at a time, inside the writer's transaction) a miss
  // is explained exactly, reading the row again if needed; without it (in a
  // pipeline) any miss just fails, and the writer rolls back and runs the
  // batch one statement at a time.
  virtual Status Check(std::size_t k, const PgResult& r, PgConn* conn) {
    (void)k;
    (void)r;
    (void)conn;
    return Status::Ok();
  }
  // The status a failed statement `k` reports (default: its own).
  virtual Status OnError(std::size_t k, Status s) {
    (void)k;
    return s;
  }

  // Applies the write inside the writer's open transaction, one statement
  // at a time. `now_ms` stamps update_time and friends.
  virtual Status Apply(PgConn& conn, int64_t now_ms);
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
  // True for a write no one waits on (StatusChange::lazy): the writer may
  // hold it back for company (kLazyWriteHold).
  virtual bool lazy() const { return false; }
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
std::unique_ptr<PgWriteOp> MakePgPurge(PurgeRequest request, PurgeDone done);
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
