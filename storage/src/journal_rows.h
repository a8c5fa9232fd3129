// Rows of the journal's tables: reading them, and writing a transaction's
// branch rows. Every function runs on a connection the caller owns; the
// writes, inside the writer's open transaction.

#ifndef DTX_STORAGE_JOURNAL_ROWS_H_
#define DTX_STORAGE_JOURNAL_ROWS_H_

#include "dtx/journal.h"
#include "dtx/model.h"
#include "dtx/result.h"
#include "dtx/status.h"

#include "journal_validate.h"
#include "sqlite_handle.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dtx::internal {

// Times as the journal stores them: milliseconds, NULL for none.
std::optional<int64_t> OptMillis(const std::optional<TimePoint>& t);
std::optional<TimePoint> ReadOptTime(const Stmt& s, int col);

// The row id of `gid` and its stored status, inside the writer's transaction.
struct StoredTrans {
  int64_t id = 0;
  std::string status;
  std::string owner;
  int64_t fence = 0;
};

Result<StoredTrans> ReadStored(Db& db, const std::string& gid);

// kAborted when `fence` is set and stale for `stored` (journal.h, Fence).
Status CheckFence(const std::string& gid, const StoredTrans& stored,
                  const std::optional<Fence>& fence);

// After a guarded UPDATE changed nothing: tells apart an unknown gid
// (kNotFound) and a stale `fence` (kAborted) from a status that is not
// `expected` (kFailedPrecondition).
Status ExplainMiss(Db& db, const std::string& gid, std::string_view expected,
                   const std::optional<Fence>& fence = std::nullopt);

// The stored row of `gid`, provided `fence` (when set) holds and its stored
// status is `expected`.
Result<StoredTrans> RequireStatus(Db& db, const std::string& gid,
                                  TransStatus expected,
                                  const std::optional<Fence>& fence);

// Takes the row over for `fence`'s owner (owner, fence + 1) when a fenced
// write by another coordinator applies (journal.h, Fence); else nothing.
Status TakeOver(Db& db, const StoredTrans& stored,
                const std::optional<Fence>& fence);

// Inserts the rows of the transaction whose row id is `trans_id`.
// kAlreadyExists, naming the row, when one repeats another or a stored row.
Status InsertBranches(Db& db, int64_t trans_id, const std::string& gid,
                      const std::vector<Branch>& branches, int64_t now_ms);

// Records results on the rows of the transaction whose row id is `trans_id`.
// kNotFound for a row that does not exist (earlier updates are applied).
Status ApplyBranchUpdates(Db& db, int64_t trans_id, const std::string& gid,
                          const std::vector<BranchUpdate>& updates,
                          int64_t now_ms);

// Read one row selected with kGlobalColumns / kBranchColumns. kDataLoss for a
// stored value this build cannot parse.
Result<GlobalTrans> ReadGlobalRow(const Stmt& stmt, const std::string& path);
Result<Branch> ReadBranchRow(const Stmt& stmt, const std::string& path);

}  // namespace dtx::internal

#endif  // DTX_STORAGE_JOURNAL_ROWS_H_
