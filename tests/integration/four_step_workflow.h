// The 4-step workflow of the crash tests, run by coordinator_crash_child and
// by the test process that recovers it: steps Step1..Step4 of the branch
// service at `busi` ("<host:port>/busi.Busi/"), each undone by RevertN; with
// `fail_at` (1-4) that step's method is FailingStepN, which answers FAILURE.

#ifndef DTX_TESTS_INTEGRATION_FOUR_STEP_WORKFLOW_H_
#define DTX_TESTS_INTEGRATION_FOUR_STEP_WORKFLOW_H_

#include "dtx/workflow.h"

#include <string>

namespace dtx::testing {

inline WorkflowFunction FourStepWorkflow(std::string busi, int fail_at = 0) {
  return [busi, fail_at](Workflow& wf,
                         const std::string& input) -> Result<std::string> {
    std::string out;
    for (int n = 1; n <= 4; ++n) {
      const std::string step = std::to_string(n);
      auto r = wf.Step()
                   .OnRollback([busi, step, input](const WorkflowBranch& b) {
                     return b.Call(busi + "Revert" + step, input).status();
                   })
                   .Call(busi + (n == fail_at ? "FailingStep" : "Step") + step,
                         input);
      if (!r.ok()) return r.status();
      out += step;
    }
    return out;
  };
}

// The same four steps on a LedgerService at `ledger` ("<host:port>/"
// "dtx.test.Ledger/"): step n moves 1 into account n (Move, under the
// ledger's barrier), undone by MoveRevert.
inline WorkflowFunction FourStepLedgerWorkflow(std::string ledger) {
  return [ledger](Workflow& wf, const std::string&) -> Result<std::string> {
    for (int n = 1; n <= 4; ++n) {
      const std::string payload = std::to_string(n) + " 1";
      auto r = wf.Step()
                   .OnRollback([ledger, payload](const WorkflowBranch& b) {
                     return b.Call(ledger + "MoveRevert", payload).status();
                   })
                   .Call(ledger + "Move", payload);
      if (!r.ok()) return r.status();
    }
    return std::string("moved");
  };
}

}  // namespace dtx::testing

#endif  // DTX_TESTS_INTEGRATION_FOUR_STEP_WORKFLOW_H_
