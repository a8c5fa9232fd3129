// Durable workflows (dtm's workflow mode): ordinary C++ functions whose every
// step is recorded by the coordinator, so that a workflow interrupted by a
// crash, an ONGOING answer or an error is run again later and goes on where
// it stopped, and one whose step fails rolls back what it did.
//
//   dtx::Workflows workflows(*dtm);  // dtm: the embedded Coordinator
//   workflows.Register("transfer", [&](dtx::Workflow& wf,
//                                      const std::string& input)
//                                      -> dtx::Result<std::string> {
//     auto out = wf.Step()
//                    .OnRollback([&](const dtx::WorkflowBranch& b) {
//                      return b.Call(busi + "/TransOutRevert", input).status();
//                    })
//                    .Call(busi + "/TransOut", input);
//     if (!out.ok()) return out.status();  // kAborted rolls back
//     return wf.Step()
//         .OnRollback(...)
//         .Call(busi + "/TransIn", input);
//   });
//   dtx::Result<std::string> r = workflows.Execute("transfer", gid, input);
//
// How it runs (docs/workflow.md has the whole story):
//   - Execute records the workflow as prepared (PrepareWorkflow), or finds
//     its record; a workflow that ended answers as it ended, without running.
//   - The function runs. Each step (Call, Do) gets the next branch id ("01",
//     "02", ...); a step whose outcome is recorded is not run again: its
//     recorded result is returned. A step that succeeds or fails (FAILURE,
//     kAborted) is recorded; ONGOING (kFailedPrecondition) and other errors
//     are not, and the step runs again next time.
//   - The function's result decides: OK commits (each step's OnCommit runs,
//     the last step's first), kAborted rolls back (OnRollback in the same
//     reverse order; a step that failed has its OnRollback dropped unless
//     WorkflowOptions::compensate_error_branch), anything else leaves the
//     workflow prepared: the coordinator resumes it later (after the
//     transaction's retry interval, then with back-off) by running the
//     function again. Phase-2 callbacks are recorded too and run once.
//   - Submit records how it ended, with the result bytes or the reason.
//
// Determinism: a run must take the same steps in the same order as the run
// that recorded them, until it reaches steps not yet recorded. A replayed
// step that does something else (another method or path: the address a
// Call was sent to does not count; Do instead of Call; another Do name) or a
// recorded step that a run never reaches is a replay mismatch: the run stops
// with kInternal naming the step, records nothing more and does not end the
// workflow, which is resumed (and fails the same way) until the code is
// fixed. What a workflow function may and may not do is in
// docs/workflow.md.
//
// Thread safety: Workflows is thread-safe; Execute may run many workflows at
// once (a gid at most once at a time in this process: a second Execute of a
// running gid answers kFailedPrecondition). Workflow, WorkflowStep and
// WorkflowBranch belong to the run that handed them out.

#ifndef DTX_WORKFLOW_H_
#define DTX_WORKFLOW_H_

#include "dtx/core_export.h"
#include "dtx/dtm_api.h"
#include "dtx/model.h"
#include "dtx/result.h"
#include "dtx/transaction.h"

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace dtx {

class Coordinator;
class Workflow;
class WorkflowRun;

// A step's identity (gid, trans type workflow, branch id and op: action,
// commit or rollback), for the branch barrier (BranchBarrier::FromTransInfo)
// and for the calls the step makes.
class DTX_CORE_EXPORT WorkflowBranch {
 public:
  const TransInfo& info() const { return info_; }
  // Calls a gRPC or HTTP branch with this step's metadata; not recorded on
  // its own (the step it is made from is). kAborted for FAILURE,
  // kFailedPrecondition for ONGOING, the call's error otherwise.
  Result<std::string> Call(const std::string& url, std::string payload) const;
  template <typename M,
            typename = std::enable_if_t<internal::IsMessage<M>::value>>
  Result<std::string> Call(const std::string& url, const M& message) const {
    return Call(url, message.SerializeAsString());
  }

 private:
  friend class WorkflowRun;
  WorkflowBranch(DtmApi& dtm, TransInfo info, const TransOptions* options)
      : dtm_(&dtm), info_(std::move(info)), options_(options) {}
  DtmApi* dtm_;
  TransInfo info_;
  const TransOptions* options_;
};

// What a local step does (its result bytes are recorded); what a phase-2
// callback does (it must not return kAborted: a commit or rollback cannot
// fail for good; an error leaves the workflow to be resumed).
using WorkflowStepFunction =
    std::function<Result<std::string>(const WorkflowBranch&)>;
using WorkflowPhase2Function = std::function<Status(const WorkflowBranch&)>;

// One step of a run (dtm's NewBranch): its phase-2 callbacks, then its
// action. Callbacks are attached before the action runs, so that an action
// that fails after taking effect is still undone.
class DTX_CORE_EXPORT WorkflowStep {
 public:
  // One of each per step (kInvalidArgument otherwise, returned by the action
  // and by the run).
  WorkflowStep& OnRollback(WorkflowPhase2Function fn);
  WorkflowStep& OnCommit(WorkflowPhase2Function fn);
  // Both: `rolled_back` tells which.
  WorkflowStep& OnFinish(
      std::function<Status(const WorkflowBranch&, bool rolled_back)> fn);

  // The step's action; one per step.
  // A gRPC or HTTP branch call (dtm's metadata, op "action"); its reply.
  Result<std::string> Call(const std::string& url, std::string payload);
  template <typename M,
            typename = std::enable_if_t<internal::IsMessage<M>::value>>
  Result<std::string> Call(const std::string& url, const M& message) {
    return Call(url, message.SerializeAsString());
  }
  // A local function; its result. `name` (optional) is recorded with it and
  // checked on replay.
  Result<std::string> Do(WorkflowStepFunction fn);
  Result<std::string> Do(std::string name, WorkflowStepFunction fn);

  const std::string& branch_id() const { return branch_id_; }

 private:
  friend class Workflow;
  WorkflowStep(WorkflowRun& run, std::string branch_id)
      : run_(&run), branch_id_(std::move(branch_id)) {}
  WorkflowRun* run_;
  std::string branch_id_;
};

// The workflow being run, handed to its function.
class DTX_CORE_EXPORT Workflow {
 public:
  const std::string& gid() const;
  const std::string& name() const;
  // The next step.
  WorkflowStep Step();
  // A step with no callbacks: Step().Call(...), Step().Do(...).
  Result<std::string> Call(const std::string& url, std::string payload) {
    return Step().Call(url, std::move(payload));
  }
  template <typename M,
            typename = std::enable_if_t<internal::IsMessage<M>::value>>
  Result<std::string> Call(const std::string& url, const M& message) {
    return Step().Call(url, message.SerializeAsString());
  }
  Result<std::string> Do(WorkflowStepFunction fn) {
    return Step().Do(std::move(fn));
  }

 private:
  friend class WorkflowRun;
  explicit Workflow(WorkflowRun& run) : run_(&run) {}
  WorkflowRun* run_;
};

// A workflow: reads its input, runs its steps, returns its result bytes.
// OK commits, kAborted rolls back, anything else leaves it to be resumed.
using WorkflowFunction =
    std::function<Result<std::string>(Workflow&, const std::string& input)>;

struct WorkflowOptions {
  // dtm's CompensateErrorBranch: a step that failed (FAILURE) has its
  // OnRollback run too (for an action that may have taken effect before
  // failing).
  bool compensate_error_branch = false;
  // The transaction's options: retry_interval is how long after it was
  // started (and between resumes, with back-off) an unfinished workflow is
  // resumed; request_timeout and branch_headers apply to its steps' calls.
  TransOptions trans;
};

class DTX_CORE_EXPORT Workflows {
 public:
  struct Options {
    // Threads that run resumed workflows.
    int resume_threads = 4;
    // On a remote coordinator (GrpcDtmClient, HttpDtmClient): where it calls
    // this process back to resume a workflow (dtm's query_prepared), e.g.
    // "10.0.0.5:50051/workflow.Workflow/Execute", served by
    // dtx::NewWorkflowCallbackService (dtx/transport/workflow_callback.h),
    // or an HTTP URL whose handler calls ResumeAsync. Empty: a remote
    // coordinator does not resume this process's workflows (a later
    // Execute of the gid does). The embedded Coordinator needs none.
    std::string callback_url = {};
  };

  // `dtm` is borrowed and must outlive this object. When it is the embedded
  // Coordinator, this object resumes its workflows (and stops doing so when
  // destroyed): Coordinator::SetWorkflowResumer. One per coordinator.
  explicit Workflows(DtmApi& dtm);
  Workflows(DtmApi& dtm, Options options);
  ~Workflows();
  Workflows(const Workflows&) = delete;
  Workflows& operator=(const Workflows&) = delete;

  // Registers workflow `name`; kAlreadyExists for a name registered before,
  // kInvalidArgument for an empty name or function. Register every workflow
  // before the coordinator may resume one (right after opening it).
  Status Register(std::string name, WorkflowFunction fn,
                  WorkflowOptions options = {});

  // Runs workflow `name` as transaction `gid` with `input` (see the top of
  // this file): its result bytes once it committed (now or before), kAborted
  // with the reason once it rolled back, another error when it is left to
  // be resumed (kFailedPrecondition for ONGOING, kInternal for a replay
  // mismatch), kNotFound for a name not registered. Blocks; never call it
  // from a callback of the coordinator.
  Result<std::string> Execute(const std::string& name, const std::string& gid,
                              const std::string& input);
  template <typename M,
            typename = std::enable_if_t<internal::IsMessage<M>::value>>
  Result<std::string> Execute(const std::string& name, const std::string& gid,
                              const M& input) {
    return Execute(name, gid, input.SerializeAsString());
  }

  // Options::callback_url, for a callback server whose port is known only
  // once it listens. Takes effect for the workflows Execute records next.
  void SetCallbackUrl(std::string url);

  // A coordinator's call to resume workflow `name` as transaction `gid`
  // with `input` (dtm's callback: the call's dtm-op, dtm-gid and data):
  // runs it on this object's threads and answers `done` there with the
  // outcome in dtm's classes (OK or kAborted: it ended; kFailedPrecondition:
  // ONGOING; another error: retry later). For a callback service.
  void ResumeAsync(std::string name, std::string gid, std::string input,
                   std::function<void(Status)> done);

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
  Coordinator* coordinator_ = nullptr;  // when it resumes its workflows
};

}  // namespace dtx

#endif  // DTX_WORKFLOW_H_
