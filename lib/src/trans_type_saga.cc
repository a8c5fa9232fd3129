// SAGA: forward actions in step order (or by the orders of a concurrent saga);
// the first action that answers FAILURE turns the saga to aborting, and the
// compensations run in reverse (reverse-dependency) order.
//
// Branch rows: step s has its compensate at index 2s and its action at 2s+1.
//
// Which steps are compensated (as dtm): every step whose action succeeded or
// failed, and every step whose action was startable, because such an action
// may have run even though no answer was recorded (a crash, a timeout). An
// action whose prerequisites never succeeded cannot have been called and is
// not compensated. The barrier makes compensating a never-run action a no-op.
// For "never succeeded" to hold after a crash or a lost write, an action
// is called only once the success of its prerequisites is durable: were it
// called while that success was still being written, and the write lost,
// the journal would say that it could not have run, and a rollback would
// not compensate it (found by the simulation, docs/testing.md).
//
// Admission: a saga is created whole by Submit (no prepare phase); its
// custom data ({"orders":...,"concurrent":true}) is checked then. It times
// out only with a per-transaction TimeoutToFail (dtm), and its RetryLimit
// bounds how often one action is retried before the saga rolls back.

#include "trans_options.h"
#include "trans_runtime.h"
#include "trans_type.h"

#include <string>

namespace dtx::internal {
namespace {

struct SagaState : ModeState {
  SagaCustom custom;
};

class Saga final : public TransProcessor {
 public:
  TransType type() const override { return TransType::kSaga; }

  bool SubmitCreates() const override { return true; }
  bool StepsInRequest() const override { return true; }
  bool CallsWaitForResults() const override { return true; }

  Result<std::vector<Branch>> SubmitBranches(
      const TransRequest& req, BranchClient& client) const override {
    DTX_RETURN_IF_ERROR(
        DecodeSagaCustom(req.custom_data, static_cast<int>(req.steps.size()))
            .status());
    return StepBranches(req, /*with_compensate=*/true, client);
  }

  SubmitAdmission AdmitSubmit(TransStatus status,
                              const SubmitDecision&) const override {
    // Submitted again: keep processing from the journal's branches; a
    // retry of one that succeeded is answered OK.
    if (status == TransStatus::kSubmitted) return SubmitAdmission::kContinue;
    if (status == TransStatus::kSucceed) return SubmitAdmission::kDone;
    return SubmitAdmission::kRefuse;
  }

  std::chrono::seconds TimeoutOf(const TransOptions& options,
                                 const ModeDefaults&) const override {
    return options.timeout_to_fail;  // dtm: no global timeout for sagas
  }

  std::unique_ptr<ModeState> LoadState(const GlobalTrans& trans,
                                       const std::vector<Branch>& branches,
                                       Status* error) const override {
    auto state = std::make_unique<SagaState>();
    const int steps = static_cast<int>(branches.size() / 2);
    auto custom = DecodeSagaCustom(trans.custom_data, steps);
    if (custom.ok()) {
      state->custom = *std::move(custom);
    } else {
      *error = custom.status();
      state->custom.orders.assign(branches.size() / 2, {});
    }
    return state;
  }

  void OnBranchResult(TransRuntime& rt, std::size_t index,
                      const BranchResult& result) const override {
    const Branch& b = rt.branches()[index];
    const bool action = b.op == BranchOp::kAction;
    if (action && result.outcome == BranchOutcome::kFailure) {
      DTX_LOG(&rt.logger(), LogLevel::kInfo,
              "gid=" << rt.trans().gid << " branch=" << b.branch_id
                     << " op=action returned FAILURE: "
                     << LoggableText(result.status.message()));
      rt.set_failure_reason("url:" + b.url +
                            " return failed: " + result.status.message());
      rt.RecordBranch(index, BranchStatus::kFailed);
      return;
    }
    TransProcessor::OnBranchResult(rt, index, result);
    const int64_t limit = rt.options().retry_limit;
    if (result.outcome == BranchOutcome::kSuccess || !action || limit <= 0 ||
        rt.trans().status != TransStatus::kSubmitted) {
      return;
    }
    if (rt.trans().retry_count < limit) {
      rt.SpendRetry(index);
    } else if (!rt.deciding()) {
      rt.Decide(TransStatus::kAborting,
                "RetryCount is greater than RetryLimit, RetryLimit: " +
                    std::to_string(limit));
    }
  }

  void Advance(TransRuntime& rt) const override {
    if (rt.trans().status == TransStatus::kSubmitted) {
      Forward(rt);
    } else if (rt.trans().status == TransStatus::kAborting) {
      Backward(rt);
    }
  }

 private:
  static const Branch& ActionOf(const TransRuntime& rt, std::size_t s) {
    return rt.branches()[2 * s + 1];
  }

  // Whether step s's prerequisites succeeded; `durably`: and the journal
  // says so (before a call), else as memory knows it (what may have run).
  static bool Startable(const TransRuntime& rt, std::size_t s, bool durably) {
    auto succeeded = [&rt, durably](std::size_t p) {
      return ActionOf(rt, p).status == BranchStatus::kSucceed &&
             (!durably || rt.durable(2 * p + 1));
    };
    const SagaCustom& custom = rt.mode_state<SagaState>().custom;
    if (custom.concurrent) {
      for (int p : custom.orders[s]) {
        if (!succeeded(static_cast<std::size_t>(p))) return false;
      }
      return true;
    }
    return s == 0 || succeeded(s - 1);
  }

  static void Forward(TransRuntime& rt) {
    const std::size_t steps = rt.branches().size() / 2;
    if (rt.TimedOut()) {
      rt.Decide(
          TransStatus::kAborting,
          "Timeout after " + std::to_string(rt.Timeout().count()) + " seconds");
      return;
    }
    bool all_succeeded = true;
    for (std::size_t s = 0; s < steps; ++s) {
      if (ActionOf(rt, s).status == BranchStatus::kFailed) {
        rt.Decide(TransStatus::kAborting, rt.failure_reason().empty()
                                              ? "fail message lost"
                                              : rt.failure_reason());
        return;
      }
      all_succeeded =
          all_succeeded && ActionOf(rt, s).status == BranchStatus::kSucceed;
    }
    if (all_succeeded) {
      rt.Decide(TransStatus::kSucceed, "");
      return;
    }
    for (std::size_t s = 0; s < steps; ++s) {
      const std::size_t a = 2 * s + 1;
      // An empty URL is no call: nothing can have run that a lost success
      // would hide, so it need not wait for durability.
      const bool durably = !ActionOf(rt, s).url.empty();
      if (ActionOf(rt, s).status == BranchStatus::kPrepared && rt.callable(a) &&
          Startable(rt, s, durably)) {
        rt.CallBranch(a);
      }
    }
  }

  static void Backward(TransRuntime& rt) {
    const auto& br = rt.branches();
    const std::size_t steps = br.size() / 2;
    const SagaCustom& custom = rt.mode_state<SagaState>().custom;
    std::vector<char> done(steps);
    bool all_done = true;
    for (std::size_t s = 0; s < steps; ++s) {
      const bool needs = ActionOf(rt, s).status != BranchStatus::kPrepared ||
                         rt.in_flight(2 * s + 1) ||
                         Startable(rt, s, /*durably=*/false);
      done[s] = !needs || br[2 * s].status == BranchStatus::kSucceed;
      all_done = all_done && done[s];
    }
    if (all_done) {
      rt.Decide(TransStatus::kFailed, "");
      return;
    }
    // Last step first, so that a compensation that completes at once (an
    // empty URL) lets the one before it start in the same pass.
    for (std::size_t s = steps; s-- > 0;) {
      const std::size_t c = 2 * s;
      if (done[s] || !rt.callable(c) || rt.in_flight(c + 1)) continue;
      bool dependents_done = true;
      if (custom.concurrent) {
        for (std::size_t d = 0; d < steps; ++d) {
          for (int p : custom.orders[d]) {
            if (static_cast<std::size_t>(p) == s && !done[d])
              dependents_done = false;
          }
        }
      } else {
        dependents_done = s + 1 == steps || done[s + 1];
      }
      if (dependents_done) {
        rt.CallBranch(c);
        done[s] = br[c].status == BranchStatus::kSucceed;
      }
    }
  }
};

}  // namespace

const TransProcessor& SagaProcessor() {
  static const Saga saga;
  return saga;
}

}  // namespace dtx::internal
