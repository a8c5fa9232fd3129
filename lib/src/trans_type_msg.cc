// MSG (two-phase message): Prepare records the steps; Submit (or a check-back
// that answers SUCCESS) commits them. A prepared message past its timeout is
// checked back through its QueryPrepared URL (op "msg", branch "00"): SUCCESS
// submits it, FAILURE fails it, anything else asks again later. Once
// submitted, the steps run in order (or concurrently), after the optional
// delay ({"delay":5} in custom data), and are retried until they succeed: a
// message never rolls back. Abort fails a prepared message (and answers OK
// again once it failed: a retry).
//
// Branch rows: one action per step.

#include "trans_options.h"
#include "trans_runtime.h"
#include "trans_type.h"

#include <string>

namespace dtx::internal {
namespace {

struct MsgState : ModeState {
  int64_t delay_s = 0;
  bool checkback_in_flight = false;
  bool checkback_blocked = false;  // failed in this life: ask again later
};

class Msg final : public TransProcessor {
 public:
  TransType type() const override { return TransType::kMsg; }

  Result<std::vector<Branch>> PrepareBranches(
      const TransRequest& req, BranchClient& client) const override {
    return Branches(req, client);
  }

  bool SubmitCreates() const override { return true; }
  bool StepsInRequest() const override { return true; }

  Result<std::vector<Branch>> SubmitBranches(
      const TransRequest& req, BranchClient& client) const override {
    return Branches(req, client);
  }

  AbortAdmission AdmitAbort(TransStatus status) const override {
    if (status == TransStatus::kPrepared) return AbortAdmission::kFail;
    if (status == TransStatus::kFailed) return AbortAdmission::kDone;
    return AbortAdmission::kRefuse;
  }

  std::unique_ptr<ModeState> LoadState(const GlobalTrans& trans,
                                       const std::vector<Branch>&,
                                       Status*) const override {
    auto state = std::make_unique<MsgState>();
    state->delay_s = DecodeMsgDelay(trans.custom_data).value_or(0);
    return state;
  }

  void OnRetryNow(TransRuntime& rt) const override {
    rt.mode_state<MsgState>().checkback_blocked = false;
  }

  void Advance(TransRuntime& rt) const override {
    MsgState& state = rt.mode_state<MsgState>();
    const GlobalTrans& t = rt.trans();
    if (t.status == TransStatus::kPrepared) {
      if (rt.TimedOut() && !state.checkback_in_flight &&
          !state.checkback_blocked)
        CheckBack(rt);
      return;
    }
    if (t.status != TransStatus::kSubmitted) return;
    if (state.delay_s > 0) {
      const TimePoint start =
          t.create_time + std::chrono::seconds(state.delay_s);
      if (rt.Now() < start) {
        rt.WakeAt(start);
        return;
      }
    }
    const auto& br = rt.branches();
    bool all_succeeded = true;
    for (const Branch& b : br)
      all_succeeded = all_succeeded && b.status == BranchStatus::kSucceed;
    if (all_succeeded) {
      rt.Decide(TransStatus::kSucceed, "");
      return;
    }
    const bool any_in_flight = rt.any_in_flight();
    for (std::size_t i = 0; i < br.size(); ++i) {
      if (br[i].status == BranchStatus::kSucceed || rt.in_flight(i)) continue;
      if (!rt.options().concurrent) {
        if (!any_in_flight && rt.callable(i)) rt.CallBranch(i);
        return;  // in order: nothing after a step that has not succeeded
      }
      if (rt.callable(i)) rt.CallBranch(i);
    }
  }

 private:
  static Result<std::vector<Branch>> Branches(const TransRequest& req,
                                              BranchClient& client) {
    DTX_RETURN_IF_ERROR(DecodeMsgDelay(req.custom_data).status());
    if (!req.query_prepared.empty()) {
      DTX_RETURN_IF_ERROR(client.ValidateUrl(req.query_prepared, req.protocol));
    }
    return StepBranches(req, /*with_compensate=*/false, client);
  }

  static void OnCheckBack(TransRuntime& rt, const BranchResult& r) {
    MsgState& state = rt.mode_state<MsgState>();
    state.checkback_in_flight = false;
    // Asked while prepared; an Abort or ForceStop may have decided since.
    // Such an answer is stale: it must not deliver a failed message.
    if (rt.trans().status != TransStatus::kPrepared || rt.deciding()) return;
    switch (r.outcome) {
      case BranchOutcome::kSuccess:
        rt.Decide(TransStatus::kSubmitted, "");
        return;
      case BranchOutcome::kFailure:
        rt.Decide(TransStatus::kFailed, r.status.message());
        return;
      case BranchOutcome::kOngoing:
        rt.ResetInterval();
        [[fallthrough]];
      case BranchOutcome::kTransient:
        DTX_LOG(&rt.logger(), LogLevel::kWarn,
                "gid=" << rt.trans().gid << " check-back "
                       << ToString(r.outcome) << ": "
                       << LoggableText(r.status.ToString())
                       << "; will ask again");
        state.checkback_blocked = true;
        rt.NeedRetry(r.outcome == BranchOutcome::kOngoing);
        return;
    }
  }

  static void CheckBack(TransRuntime& rt) {
    if (rt.trans().query_prepared.empty()) {
      // Nothing to ask: a prepared message without a check-back URL is
      // committed when it times out.
      BranchResult r;
      r.outcome = BranchOutcome::kSuccess;
      OnCheckBack(rt, r);
      return;
    }
    rt.mode_state<MsgState>().checkback_in_flight = true;
    DTX_LOG(&rt.logger(), LogLevel::kDebug,
            "gid=" << rt.trans().gid << " branch=00 op=msg checking back "
                   << rt.trans().query_prepared);
    rt.CallExtra(rt.NewRequest(rt.trans().query_prepared, "00", BranchOp::kMsg),
                 [&rt](BranchResult r) { OnCheckBack(rt, r); });
  }
};

}  // namespace

const TransProcessor& MsgProcessor() {
  static const Msg msg;
  return msg;
}

}  // namespace dtx::internal
