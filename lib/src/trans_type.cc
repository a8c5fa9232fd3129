// The table of modes, and what a processor does when its mode does not
// override it: refuse the request (naming the mode), retry a branch that did
// not succeed. And SameRequest, which tells a client's retry of a request
// from another request for the same gid.

#include "trans_type.h"

#include "trans_options.h"
#include "trans_runtime.h"

#include <string>

namespace dtx::internal {
namespace {

std::string Mode(const TransProcessor& p) {
  return std::string(ToString(p.type()));
}

std::string StepId(std::size_t i) {
  // dtm's %02d, by appends (GCC 12's -Wrestrict at -O3, see barrier.cc).
  std::string id(i + 1 < 10 ? 1 : 0, '0');
  id += std::to_string(i + 1);
  return id;
}

}  // namespace

// One line per mode.
const TransProcessor* ProcessorFor(TransType type) {
  switch (type) {
    case TransType::kSaga:
      return &SagaProcessor();
    case TransType::kTcc:
      return &TccProcessor();
    case TransType::kMsg:
      return &MsgProcessor();
    case TransType::kWorkflow:
      return &WorkflowProcessor();
    case TransType::kXa:
      return nullptr;
  }
  return nullptr;
}

Result<std::vector<Branch>> TransProcessor::PrepareBranches(
    const TransRequest&, BranchClient&) const {
  return InvalidArgumentError("prepare: trans type '" + Mode(*this) +
                              "' has no prepare phase (want tcc or msg)");
}

Result<std::vector<Branch>> TransProcessor::SubmitBranches(
    const TransRequest&, BranchClient&) const {
  return InvalidArgumentError("submit: trans type '" + Mode(*this) +
                              "' is submitted only once prepared");
}

Result<SubmitDecision> TransProcessor::DecideSubmit(
    const TransRequest& req) const {
  if (!req.req_extra.empty()) {
    return InvalidArgumentError(
        "submit: req_extra is for workflow "
        "transactions, not " +
        Mode(*this));
  }
  return SubmitDecision{};
}

SubmitAdmission TransProcessor::AdmitSubmit(TransStatus status,
                                            const SubmitDecision&) const {
  if (status == TransStatus::kPrepared) return SubmitAdmission::kDecide;
  if (status == TransStatus::kSubmitted) return SubmitAdmission::kContinue;
  if (status == TransStatus::kSucceed) return SubmitAdmission::kDone;
  return SubmitAdmission::kRefuse;
}

AbortAdmission TransProcessor::AdmitAbort(TransStatus) const {
  return AbortAdmission::kRefuse;
}

Result<std::vector<Branch>> TransProcessor::RegisteredBranches(
    const BranchRegistration&, BranchClient&) const {
  return InvalidArgumentError("register branch: trans type '" + Mode(*this) +
                              "' is not supported (want tcc)");
}

std::chrono::seconds TransProcessor::TimeoutOf(
    const TransOptions& options, const ModeDefaults& defaults) const {
  if (options.timeout_to_fail.count() > 0) return options.timeout_to_fail;
  return defaults.timeout_to_fail;
}

std::unique_ptr<ModeState> TransProcessor::LoadState(const GlobalTrans&,
                                                     const std::vector<Branch>&,
                                                     Status*) const {
  return std::make_unique<ModeState>();
}

void TransProcessor::OnBranchResult(TransRuntime& rt, std::size_t index,
                                    const BranchResult& result) const {
  if (result.outcome == BranchOutcome::kSuccess) {
    rt.BranchSucceeded(index);
    return;
  }
  const Branch& b = rt.branches()[index];
  DTX_LOG(&rt.logger(), LogLevel::kWarn,
          "gid=" << rt.trans().gid << " branch=" << b.branch_id << " op="
                 << ToString(b.op) << " " << ToString(result.outcome) << ": "
                 << LoggableText(result.status.ToString()) << "; will retry");
  rt.Block(index);
  rt.NeedRetry(result.outcome == BranchOutcome::kOngoing);
}

void TransProcessor::OnDecide(const TransRuntime&, StatusChange&) const {}

void TransProcessor::OnRetryNow(TransRuntime&) const {}

Result<std::vector<Branch>> StepBranches(const TransRequest& req,
                                         bool with_compensate,
                                         BranchClient& client) {
  const std::string mode(ToString(req.trans_type));
  if (req.steps.empty()) return InvalidArgumentError(mode + ": no steps");
  if (req.payloads.size() > req.steps.size()) {
    return InvalidArgumentError(mode + ": more payloads than steps");
  }
  std::vector<Branch> branches;
  branches.reserve(req.steps.size() * (with_compensate ? 2 : 1));
  for (std::size_t i = 0; i < req.steps.size(); ++i) {
    const TransStep& step = req.steps[i];
    if (!with_compensate && !step.compensate.empty()) {
      return InvalidArgumentError(mode + ": steps have no compensate");
    }
    for (const std::string* url : {&step.compensate, &step.action}) {
      if (!url->empty()) {
        Status v = client.ValidateUrl(*url, req.protocol);
        if (!v.ok()) return v.WithPrefix(mode + " step " + std::to_string(i));
      }
    }
    Branch b;
    b.branch_id = StepId(i);
    b.bin_data = i < req.payloads.size() ? req.payloads[i] : std::string();
    if (with_compensate) {
      b.op = BranchOp::kCompensate;
      b.url = step.compensate;
      branches.push_back(b);
    }
    b.op = BranchOp::kAction;
    b.url = step.action;
    branches.push_back(std::move(b));
  }
  return branches;
}

Status SameRequest(std::string_view op, const GlobalTrans& stored,
                   const std::vector<Branch>& stored_branches, TransType type,
                   const GlobalTrans* asked,
                   const std::vector<Branch>* asked_branches) {
  auto conflict = [&](const std::string& what) {
    return AlreadyExistsError(
        std::string(op) + ": gid " + stored.gid + " exists with " + what +
        "; a retry must repeat the request that made it, another "
        "transaction needs another gid");
  };
  if (type != stored.trans_type) {
    return conflict("trans type '" + std::string(ToString(stored.trans_type)) +
                    "', not '" + std::string(ToString(type)) + "'");
  }
  const TransProcessor* p = ProcessorFor(type);
  if (p == nullptr || !p->StepsInRequest() || asked == nullptr ||
      asked_branches == nullptr) {
    return Status::Ok();
  }
  auto steps = [](const std::vector<Branch>& rows) {
    std::size_t n = 0;
    for (const Branch& b : rows) n += b.op == BranchOp::kAction ? 1 : 0;
    return n;
  };
  const std::vector<Branch>& a = *asked_branches;
  const std::vector<Branch>& s = stored_branches;
  if (a.size() != s.size() || steps(a) != steps(s)) {
    return conflict(std::to_string(steps(s)) + " step(s), not " +
                    std::to_string(steps(a)));
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::string step = "step " + s[i].branch_id + "'s ";
    if (a[i].branch_id != s[i].branch_id || a[i].op != s[i].op) {
      return conflict("other branch rows (row " + std::to_string(i) + ")");
    }
    if (a[i].url != s[i].url) {
      return conflict("a different " + step + std::string(ToString(s[i].op)) +
                      " URL");
    }
    if (a[i].bin_data != s[i].bin_data) {
      return conflict("a different " + step + "payload");
    }
  }
  if (asked->custom_data != stored.custom_data) {
    return conflict("different custom data (orders, concurrency or delay)");
  }
  return Status::Ok();
}

}  // namespace dtx::internal
