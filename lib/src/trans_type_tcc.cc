// TCC: the client prepares the transaction, registers each branch (its
// confirm and cancel) while it is prepared and calls the try itself. Submit
// confirms, Abort or a timeout cancels; both walk the branches from the last
// registered to the first, one at a time, stopping at the first that does
// not succeed (it is retried later). FAILURE from a confirm or cancel is
// retried, never final.
//
// Branch rows: per registered branch its cancel, then its confirm. A
// decision that leaves `prepared` applies only if the journal holds exactly
// the rows this runtime knows, so that a branch registered meanwhile (from
// any process) is never left out.

#include "trans_runtime.h"
#include "trans_type.h"

#include <string>

namespace dtx::internal {
namespace {

class Tcc final : public TransProcessor {
 public:
  TransType type() const override { return TransType::kTcc; }

  Result<std::vector<Branch>> PrepareBranches(const TransRequest& req,
                                              BranchClient&) const override {
    if (!req.steps.empty()) {
      return InvalidArgumentError(
          "tcc: steps are registered with RegisterBranch, not sent");
    }
    return std::vector<Branch>{};
  }

  AbortAdmission AdmitAbort(TransStatus status) const override {
    if (status == TransStatus::kPrepared) return AbortAdmission::kRollBack;
    if (status == TransStatus::kAborting) return AbortAdmission::kContinue;
    if (status == TransStatus::kFailed) return AbortAdmission::kDone;
    return AbortAdmission::kRefuse;
  }

  Result<std::vector<Branch>> RegisteredBranches(
      const BranchRegistration& b, BranchClient& client) const override {
    // The branch id and payload limits are the journal's to check, once,
    // when it appends the rows (journal.h); the URLs are the client's.
    for (const std::string* url : {&b.confirm_url, &b.cancel_url}) {
      if (!url->empty()) {
        DTX_RETURN_IF_ERROR(client.ValidateUrl(*url, b.protocol));
      }
    }
    Branch cancel;
    cancel.branch_id = b.branch_id;
    cancel.op = BranchOp::kCancel;
    cancel.url = b.cancel_url;
    cancel.bin_data = b.payload;
    Branch confirm = cancel;
    confirm.op = BranchOp::kConfirm;
    confirm.url = b.confirm_url;
    return std::vector<Branch>{std::move(cancel), std::move(confirm)};
  }

  void OnDecide(const TransRuntime& rt, StatusChange& change) const override {
    if (rt.trans().status == TransStatus::kPrepared) {
      change.expected_branch_rows = static_cast<int64_t>(rt.branches().size());
    }
  }

  void Advance(TransRuntime& rt) const override {
    const TransStatus status = rt.trans().status;
    if (status == TransStatus::kPrepared) {
      if (rt.TimedOut()) {
        rt.Decide(TransStatus::kAborting,
                  "Timeout after " + std::to_string(rt.Timeout().count()) +
                      " seconds");
      }
      return;
    }
    if (status != TransStatus::kSubmitted && status != TransStatus::kAborting)
      return;
    const bool confirming = status == TransStatus::kSubmitted;
    const BranchOp op = confirming ? BranchOp::kConfirm : BranchOp::kCancel;
    if (rt.any_in_flight()) return;
    for (std::size_t i = rt.branches().size(); i-- > 0;) {
      const Branch& b = rt.branches()[i];
      if (b.op != op || b.status != BranchStatus::kPrepared) continue;
      if (rt.callable(i)) rt.CallBranch(i);
      return;
    }
    rt.Decide(confirming ? TransStatus::kSucceed : TransStatus::kFailed, "");
  }
};

}  // namespace

const TransProcessor& TccProcessor() {
  static const Tcc tcc;
  return tcc;
}

}  // namespace dtx::internal
