// The coordinator's data model: global transactions and their branch rows, as
// dtm stores them (trans_global and trans_branch_op).
//
// Every enum below is PERSISTED in the journal by its dtm spelling ("tcc",
// "submitted", "confirm", ...): never rename a spelling. The numeric values are
// not persisted.
//
// Thread safety: plain values; thread-compatible.

#ifndef DTX_MODEL_H_
#define DTX_MODEL_H_

#include "dtx/core_export.h"
#include "dtx/result.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dtx {

// Wall-clock time as the journal stores it (milliseconds since the Unix epoch).
using TimePoint = std::chrono::system_clock::time_point;

// Transaction modes. xa is spelled here so that a journal written by a later
// version stays readable; this version runs tcc, saga, msg and workflow.
enum class TransType { kTcc, kSaga, kMsg, kXa, kWorkflow };

// Global statuses. Finished = kSucceed or kFailed; a finished transaction is
// never processed again.
//
//   prepared -> submitted -> succeed
//   prepared -> aborting  -> failed      (tcc: abort or timeout)
//   submitted -> aborting -> failed      (saga: an action failed)
//   prepared -> failed                   (msg: abort or check-back FAILURE)
//   any unfinished -> failed             (force stop)
enum class TransStatus { kPrepared, kSubmitted, kAborting, kSucceed, kFailed };

// Branch row statuses.
enum class BranchStatus { kPrepared, kSucceed, kFailed };

// What a branch row does when called.
enum class BranchOp {
  kTry,         // tcc first phase, called by the client
  kConfirm,     // tcc second phase after submit
  kCancel,      // tcc second phase after abort
  kAction,      // saga forward step, msg step
  kCompensate,  // saga reverse step
  kCommit,      // xa second phase
  kRollback,    // xa second phase
  kMsg,         // msg check-back (branch "00")
};

// dtm's spellings.
DTX_CORE_EXPORT std::string_view ToString(TransType type);
DTX_CORE_EXPORT std::string_view ToString(TransStatus status);
DTX_CORE_EXPORT std::string_view ToString(BranchStatus status);
DTX_CORE_EXPORT std::string_view ToString(BranchOp op);

// Parse dtm's spellings; anything else is kInvalidArgument naming the text.
DTX_CORE_EXPORT Result<TransType> ParseTransType(std::string_view text);
DTX_CORE_EXPORT Result<TransStatus> ParseTransStatus(std::string_view text);
DTX_CORE_EXPORT Result<BranchStatus> ParseBranchStatus(std::string_view text);
DTX_CORE_EXPORT Result<BranchOp> ParseBranchOp(std::string_view text);

// True for kSucceed and kFailed.
inline bool IsFinished(TransStatus status) {
  return status == TransStatus::kSucceed || status == TransStatus::kFailed;
}

// One global transaction (a row of trans_global).
struct GlobalTrans {
  int64_t id = 0;  // journal row id, assigned on insert; orders List()
  std::string gid;
  TransType trans_type = TransType::kSaga;
  TransStatus status = TransStatus::kPrepared;
  std::string protocol = "grpc";
  std::string query_prepared;  // msg check-back URL
  // Per-transaction options as JSON text; the engine owns its format.
  std::string options;
  // Mode-specific data as JSON text (saga orders, msg delay).
  std::string custom_data;
  std::string ext_data;
  std::string result;
  std::string rollback_reason;
  TimePoint create_time{};
  TimePoint update_time{};
  std::optional<TimePoint> finish_time;    // set when it became succeed
  std::optional<TimePoint> rollback_time;  // set when it became failed
  std::chrono::seconds next_cron_interval{0};
  TimePoint next_cron_time{};
  std::string owner;  // the coordinator holding the lease, if any
  // Moves on whenever the owner changes (journal.h, Fence).
  int64_t fence = 0;
  int64_t retry_count = 0;  // saga RetryLimit counter; survives restarts
};

// One branch row (a row of trans_branch_op). (gid, branch_id, op) is unique.
struct Branch {
  int64_t id = 0;  // journal row id; orders a transaction's branches
  std::string gid;
  std::string url;
  std::string bin_data;  // the payload sent with the call (raw bytes)
  std::string branch_id;
  BranchOp op = BranchOp::kAction;
  BranchStatus status = BranchStatus::kPrepared;
  TimePoint create_time{};
  TimePoint update_time{};
  std::optional<TimePoint> finish_time;
  std::optional<TimePoint> rollback_time;
  // Retry state, for operators (not in dtm): calls of this row so far, when
  // the last one was made, and what it answered when it did not succeed,
  // "<class>: <message>" (class: FAILURE, ONGOING or TRANSIENT; at most
  // kMaxLastErrorBytes), empty after a success. When it is called next is
  // its transaction's next_cron_time.
  int64_t attempts = 0;
  std::optional<TimePoint> last_try_time;
  std::string last_error;
};

// A transaction with its branches in registration order.
struct TransWithBranches {
  GlobalTrans trans;
  std::vector<Branch> branches;
};

// What a branch call carries about its transaction: dtm's gRPC metadata
// dtm-gid, dtm-trans_type, dtm-branch_id, dtm-op and dtm-dtm.
struct TransInfo {
  std::string gid;
  TransType trans_type = TransType::kSaga;
  std::string branch_id;
  BranchOp op = BranchOp::kAction;
  // The coordinator's address as the caller knows it; empty when the
  // coordinator itself calls (as dtm does).
  std::string dtm;
  // Sent as the op instead of `op` when set: a workflow's resume carries the
  // workflow's name there (dtm-op: transfer), as dtm does.
  std::string custom_op = {};
};

// The op a call carries: custom_op when set, else op's spelling.
inline std::string_view OpOf(const TransInfo& info) {
  return info.custom_op.empty() ? ToString(info.op)
                                : std::string_view(info.custom_op);
}

}  // namespace dtx

#endif  // DTX_MODEL_H_
