// The checks every journal makes before a write reaches its store: fields
// within dtx/limits.h and a request without a repeated (branch_id, op). Shared
// by the SQLite and PostgreSQL journals so that both refuse the same writes
// with the same messages; header-only, as the two are separate libraries.

#ifndef DTX_STORAGE_JOURNAL_VALIDATE_H_
#define DTX_STORAGE_JOURNAL_VALIDATE_H_

#include "dtx/limits.h"
#include "dtx/model.h"
#include "dtx/status.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace dtx::internal {

// "journal: gid <gid>: ", the start of every message about one transaction.
inline std::string GidPrefix(std::string_view gid) {
  return "journal: gid " + std::string(gid) + ": ";
}

// The refusal of a fenced write (journal.h, Fence) whose token is stale.
inline Status StaleFenceError(std::string_view gid, const Fence& fence,
                              std::string_view stored_owner,
                              int64_t stored_fence) {
  return AbortedError(GidPrefix(gid) + "claimed by coordinator '" +
                      std::string(stored_owner) + "' since (fence " +
                      std::to_string(stored_fence) + ", the write's " +
                      std::to_string(fence.token) + " by '" + fence.owner +
                      "'): the write is refused");
}

// Whether a fenced write that applies takes the transaction over from the
// stored owner (journal.h, Fence).
inline bool TakesOver(const std::optional<Fence>& fence,
                      std::string_view stored_owner) {
  return fence && fence->owner != stored_owner;
}

inline Status ValidateTransFields(const GlobalTrans& t) {
  DTX_RETURN_IF_ERROR(ValidateGid(t.gid).WithPrefix("journal"));
  const std::string prefix = "journal: gid " + t.gid;
  DTX_RETURN_IF_ERROR(ValidateText("protocol", t.protocol).WithPrefix(prefix));
  DTX_RETURN_IF_ERROR(
      ValidateUrl(t.query_prepared).WithPrefix(prefix + ": query_prepared"));
  DTX_RETURN_IF_ERROR(ValidateText("options", t.options).WithPrefix(prefix));
  DTX_RETURN_IF_ERROR(
      ValidateText("custom_data", t.custom_data).WithPrefix(prefix));
  DTX_RETURN_IF_ERROR(ValidateText("ext_data", t.ext_data).WithPrefix(prefix));
  DTX_RETURN_IF_ERROR(ValidateText("result", t.result).WithPrefix(prefix));
  DTX_RETURN_IF_ERROR(
      ValidateText("rollback_reason", t.rollback_reason).WithPrefix(prefix));
  DTX_RETURN_IF_ERROR(ValidateText("owner", t.owner).WithPrefix(prefix));
  return Status::Ok();
}

inline Status ValidateBranchFields(const std::string& gid,
                                   const std::vector<Branch>& branches) {
  const std::string prefix = "journal: gid " + gid;
  if (branches.size() > kMaxBranchesPerTrans) {
    return InvalidArgumentError(
        prefix + ": " + std::to_string(branches.size()) +
        " branches, over the limit of " + std::to_string(kMaxBranchesPerTrans));
  }
  for (const Branch& b : branches) {
    DTX_RETURN_IF_ERROR(ValidateBranchId(b.branch_id).WithPrefix(prefix));
    const std::string branch_prefix =
        prefix + ": branch " + b.branch_id + "/" + std::string(ToString(b.op));
    DTX_RETURN_IF_ERROR(ValidateUrl(b.url).WithPrefix(branch_prefix));
    DTX_RETURN_IF_ERROR(ValidatePayload(b.bin_data).WithPrefix(branch_prefix));
  }
  return Status::Ok();
}

// kAlreadyExists naming the first (branch_id, op) of `branches` that repeats
// an earlier one of them.
inline Status CheckNoRepeatedBranch(const std::string& gid,
                                    const std::vector<Branch>& branches) {
  for (std::size_t i = 0; i < branches.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (branches[j].branch_id == branches[i].branch_id &&
          branches[j].op == branches[i].op) {
        return AlreadyExistsError(
            GidPrefix(gid) + "branch " + branches[i].branch_id + "/" +
            std::string(ToString(branches[i].op)) + " already exists");
      }
    }
  }
  return Status::Ok();
}

}  // namespace dtx::internal

#endif  // DTX_STORAGE_JOURNAL_VALIDATE_H_
