// Workflow (dtm's workflow mode): the application runs the workflow's code
// and records each step's outcome here; the coordinator only keeps that
// record and resumes the workflow when it is due (dtm-semantics §2.5, §6.2).
//
//   PrepareWorkflow  records it as prepared, with its name and input in
//                    custom data ({"name":...,"data":<base64>}) and its resume
//                    callback in query_prepared; a second one answers the
//                    record so far (Coordinator::PrepareWorkflowAsync)
//   RegisterBranch   one row per recorded step: (branch id, op) with the
//                    step's status and result; only while prepared
//   Submit           req_extra says how it ended: prepared -> succeed or
//                    failed, with its result and rollback reason
//
// A prepared workflow is due RetryInterval after it was created (its first
// run is expected to finish before that), and then with back-off: each time
// the coordinator calls the application back, which runs the workflow again,
// replaying the recorded steps. The callback is the in-process resumer
// (dtx::Workflows) when query_prepared is empty, else query_prepared itself:
// dtm's gRPC service /workflow.Workflow/Execute with WorkflowData{Data:
// input} and dtm-op set to the workflow's name, or an HTTP POST of the input.
// A workflow never times out (as in dtm): it is resumed until it submits or
// is force-stopped.
//
// Branch rows: the recorded steps, with no URL to call (the coordinator never
// calls a workflow's branches; the URL column keeps what the step did, for
// the replay check of dtx::Workflows).

#include "dtx/limits.h"
#include "dtx/routing_branch_client.h"

#include "trans_options.h"
#include "trans_runtime.h"
#include "trans_type.h"

#include <string>

namespace dtx::internal {
namespace {

struct WorkflowState : ModeState {
  WorkflowCustom custom;
  bool resume_in_flight = false;
  bool resume_blocked = false;  // answered but not ended in this life
};

// WorkflowData{bytes Data = 1}, dtm's message of /workflow.Workflow/Execute,
// encoded by hand: the core links no protobuf.
std::string WorkflowData(const std::string& input) {
  if (input.empty()) return {};
  std::string out;
  out += '\x0a';  // field 1, length-delimited
  uint64_t n = input.size();
  while (n >= 0x80) {
    out += static_cast<char>((n & 0x7f) | 0x80);
    n >>= 7;
  }
  out += static_cast<char>(n);
  out += input;
  return out;
}

class Workflow final : public TransProcessor {
 public:
  TransType type() const override { return TransType::kWorkflow; }

  Result<std::vector<Branch>> PrepareBranches(
      const TransRequest& req, BranchClient& client) const override {
    if (!req.steps.empty() || !req.payloads.empty()) {
      return InvalidArgumentError(
          "workflow: steps are recorded with RegisterBranch, not sent");
    }
    DTX_RETURN_IF_ERROR(DecodeWorkflowCustom(req.custom_data).status());
    if (!req.query_prepared.empty()) {
      DTX_RETURN_IF_ERROR(client.ValidateUrl(req.query_prepared, req.protocol)
                              .WithPrefix("workflow callback"));
    }
    return std::vector<Branch>{};
  }

  Result<SubmitDecision> DecideSubmit(const TransRequest& req) const override {
    SubmitDecision d;
    auto field = [&req](const char* key) {
      auto it = req.req_extra.find(key);
      return it == req.req_extra.end() ? std::string() : it->second;
    };
    for (const auto& [key, value] : req.req_extra) {
      if (key != "status" && key != "result" && key != "rollback_reason") {
        return InvalidArgumentError("workflow submit: unknown req_extra key '" +
                                    LoggableText(key) +
                                    "' (want status, result, rollback_reason)");
      }
    }
    const std::string status = field("status");
    if (status == "succeed") {
      d.to = TransStatus::kSucceed;
    } else if (status == "failed") {
      d.to = TransStatus::kFailed;
    } else {
      return InvalidArgumentError(
          "workflow submit: req_extra status must be 'succeed' or 'failed', "
          "not '" +
          LoggableText(status) + "'");
    }
    DTX_RETURN_IF_ERROR(
        ValidateText("rollback_reason", field("rollback_reason")));
    d.rollback_reason = field("rollback_reason");
    d.result = field("result");
    if (!Base64Decode(*d.result)) {
      return InvalidArgumentError(
          "workflow submit: req_extra result must be base64 (of the "
          "workflow's result bytes), as dtm's SDKs send it");
    }
    if (d.result->size() > kMaxPayloadBytes) {
      return InvalidArgumentError(
          "workflow submit: result of " + std::to_string(d.result->size()) +
          " bytes is over the limit of " + std::to_string(kMaxPayloadBytes));
    }
    return d;
  }

  SubmitAdmission AdmitSubmit(TransStatus status,
                              const SubmitDecision& d) const override {
    if (status == TransStatus::kPrepared) return SubmitAdmission::kDecide;
    if (status == d.to) return SubmitAdmission::kDone;  // a retry
    return SubmitAdmission::kConflict;
  }

  Result<std::vector<Branch>> RegisteredBranches(const BranchRegistration& b,
                                                 BranchClient&) const override {
    if (b.op != BranchOp::kAction && b.op != BranchOp::kCommit &&
        b.op != BranchOp::kRollback) {
      return InvalidArgumentError(
          "workflow: a recorded step's op is action, commit or rollback, not " +
          std::string(ToString(b.op)));
    }
    if (b.status == BranchStatus::kPrepared) {
      return InvalidArgumentError(
          "workflow: a recorded step succeeded or failed; 'prepared' is not "
          "an outcome");
    }
    if (!b.confirm_url.empty() || !b.cancel_url.empty()) {
      return InvalidArgumentError(
          "workflow: a recorded step has no confirm or cancel URL");
    }
    DTX_RETURN_IF_ERROR(ValidateText("workflow step url", b.url));
    Branch row;
    row.branch_id = b.branch_id;
    row.op = b.op;
    row.status = b.status;
    row.url = b.url;
    row.bin_data = b.payload;
    return std::vector<Branch>{std::move(row)};
  }

  bool CallsRegisteredBranches() const override { return false; }
  bool AnswersProgress() const override { return true; }

  // The same name and input, however the JSON was written.
  bool SameCustomData(const std::string& a,
                      const std::string& b) const override {
    auto x = DecodeWorkflowCustom(a);
    auto y = DecodeWorkflowCustom(b);
    return x.ok() && y.ok() && x->name == y->name && x->data == y->data;
  }

  std::chrono::seconds TimeoutOf(const TransOptions&,
                                 const ModeDefaults&) const override {
    return std::chrono::seconds(0);  // never (dtm has no workflow timeout)
  }

  std::unique_ptr<ModeState> LoadState(const GlobalTrans& trans,
                                       const std::vector<Branch>&,
                                       Status* error) const override {
    auto state = std::make_unique<WorkflowState>();
    auto custom = DecodeWorkflowCustom(trans.custom_data);
    if (custom.ok()) {
      state->custom = std::move(custom).value();
    } else if (error != nullptr) {
      *error = custom.status();
    }
    return state;
  }

  void OnRetryNow(TransRuntime& rt) const override {
    rt.mode_state<WorkflowState>().resume_blocked = false;
  }

  void Advance(TransRuntime& rt) const override {
    WorkflowState& state = rt.mode_state<WorkflowState>();
    if (rt.trans().status != TransStatus::kPrepared || rt.deciding() ||
        state.resume_in_flight || state.resume_blocked) {
      return;
    }
    // Only the scheduler (when it is due) and RetryNow advance a prepared
    // workflow: the requests of a run in progress (PrepareWorkflow,
    // RegisterBranch) never load it, and its Submit ends it.
    Resume(rt);
  }

 private:
  static void Resume(TransRuntime& rt) {
    WorkflowState& state = rt.mode_state<WorkflowState>();
    const GlobalTrans& t = rt.trans();
    if (state.custom.name.empty()) {
      // LoadState logged why; there is nothing to call back.
      state.resume_blocked = true;
      rt.NeedRetry(false);
      return;
    }
    BranchRequest req =
        rt.NewRequest(t.query_prepared, "00", BranchOp::kAction);
    req.info.custom_op = state.custom.name;
    std::shared_ptr<BranchClient> via;
    if (t.query_prepared.empty()) {
      via = rt.workflow_resumer();
      if (!via) {
        DTX_LOG(&rt.logger(), LogLevel::kWarn,
                "gid=" << t.gid << " workflow "
                       << LoggableText(state.custom.name)
                       << " is due, but no dtx::Workflows runs in this "
                          "process to resume it; will try again");
        state.resume_blocked = true;
        rt.NeedRetry(false);
        return;
      }
      req.payload = state.custom.data;
    } else {
      req.payload = RoutingBranchClient::Route(t.query_prepared, t.protocol) ==
                            RoutingBranchClient::Transport::kGrpc
                        ? WorkflowData(state.custom.data)
                        : state.custom.data;
    }
    state.resume_in_flight = true;
    DTX_LOG(&rt.logger(), LogLevel::kDebug,
            "gid=" << t.gid << " workflow " << LoggableText(state.custom.name)
                   << " resuming"
                   << (t.query_prepared.empty() ? " in process"
                                                : " at " + t.query_prepared));
    rt.CallExtra(
        std::move(req), [&rt](BranchResult r) { OnResumed(rt, r); },
        std::move(via));
  }

  static void OnResumed(TransRuntime& rt, const BranchResult& r) {
    WorkflowState& state = rt.mode_state<WorkflowState>();
    state.resume_in_flight = false;
    // A resume that ended the workflow submitted it through this runtime
    // (or another coordinator's): nothing more to do here.
    if (rt.trans().status != TransStatus::kPrepared || rt.deciding()) return;
    state.resume_blocked = true;
    if (r.outcome == BranchOutcome::kSuccess ||
        r.outcome == BranchOutcome::kFailure) {
      // It ended, submitted elsewhere (the journal's copy says how), or
      // the application answered without submitting: look again later.
      rt.ResetInterval();
      rt.NeedRetry(true);
      return;
    }
    // ONGOING is the application saying "not yet", every retry interval: a
    // warning each time would flood the log (thousands of workflows).
    DTX_LOG(&rt.logger(),
            r.outcome == BranchOutcome::kOngoing ? LogLevel::kDebug
                                                 : LogLevel::kWarn,
            "gid=" << rt.trans().gid << " workflow "
                   << LoggableText(state.custom.name) << " resume "
                   << ToString(r.outcome) << ": "
                   << LoggableText(r.status.ToString())
                   << "; will resume again");
    if (r.outcome == BranchOutcome::kOngoing) rt.ResetInterval();
    rt.NeedRetry(r.outcome == BranchOutcome::kOngoing);
  }
};

}  // namespace

const TransProcessor& WorkflowProcessor() {
  static const Workflow workflow;
  return workflow;
}

}  // namespace dtx::internal
