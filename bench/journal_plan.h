// The zero-overhead plan of the benchmark's transactions: the journal writes
// dtx makes for them, durable where dtx waits for the write and queued where
// it does not (docs/architecture.md, "Minimum durable points"), and the same
// branch calls, in dtx's order, with no coordinator logic in between. Branch
// results are queued, not waited for: those known when a real call starts go
// to the journal while it is on the wire; the rest travel with the final
// status. Like the coordinator's, the plan's transactions have an owner and
// their status changes and branch results are fenced (journal.h's Fence),
// and a TCC leaves `prepared` checking its branch rows' count.
//
// dtx_bench runs whole plans on the caller's thread (the embedded baseline);
// dtx_dtm_relay runs the part that belongs to each dtmgimp request with
// completions (the dtx-server baseline). A plan assumes every call succeeds:
// a failed call ends the run, and the benchmark with it.

#ifndef DTX_BENCH_JOURNAL_PLAN_H_
#define DTX_BENCH_JOURNAL_PLAN_H_

#include "dtx/journal.h"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dtx::bench {

struct PlanStep {
  enum class Kind { kDurable, kQueued, kCall };
  Kind kind = Kind::kQueued;
  // kDurable, kQueued: starts the write (`done` is null when queued).
  std::function<void(Journal&, WriteDone)> write;
  // kCall: dtm's metadata of the branch call.
  std::string gid;
  std::string trans_type;
  std::string branch_id;
  std::string op;
};
using Plan = std::vector<PlanStep>;

// A saga or msg submitted directly: the global with its rows, durable, then
// one action per step in order (none for a step without a URL), each saga
// action after the success of the one before it is durable (msg: queued),
// then the final status. `has_url` has one entry per step; every row carries
// `payload` (its bin_data), as the coordinator's do.
Plan StepsPlan(const std::string& gid, TransType type,
               const std::vector<bool>& has_url,
               const std::string& payload = "");
// TCC, by request: Prepare saves the global; RegisterBranch appends a
// branch's cancel and confirm rows; Submit makes `submitted` durable, then
// confirms the branches in reverse order, then the final status. The try
// calls are the client's, between RegisterBranch and the next request.
Plan TccPreparePlan(const std::string& gid);
Plan TccRegisterPlan(const std::string& gid, const std::string& branch_id);
Plan TccSubmitPlan(const std::string& gid,
                   const std::vector<std::string>& branch_ids);
// A whole TCC with its try calls, as the in-process baseline runs it.
Plan TccPlan(const std::string& gid,
             const std::vector<std::string>& branch_ids);

// A workflow of `steps` steps, as dtx::Workflows runs it: PrepareWorkflow
// saves the global, durable; each step's call, then its record (one row,
// with the reply as its data), durable; Submit's final status, durable.
Plan WorkflowPlan(const std::string& gid, std::size_t steps,
                  const std::string& payload = "");
// Its parts by request, as the relay runs them for a remote client whose
// steps' calls are its own: PrepareWorkflow, one recorded step, Submit.
Plan WorkflowPreparePlan(const std::string& gid);
Plan WorkflowRecordPlan(const std::string& gid, const std::string& branch_id,
                        const std::string& payload);
Plan WorkflowSubmitPlan(const std::string& gid);

// Runs `plan` on this thread: waits for each durable write and each call.
using BlockingCall = std::function<bool(const PlanStep&)>;
bool RunBlocking(const Plan& plan, Journal& journal, const BlockingCall& call);

// Runs `plan` with completions: a durable write's or a call's completion
// starts the next step; `done(ok)` runs at the end, on the thread of the
// last completion. `journal` and `call` must outlive the run.
using AsyncCall =
    std::function<void(const PlanStep&, std::function<void(bool)> done)>;
void RunAsync(std::shared_ptr<const Plan> plan, Journal& journal,
              const AsyncCall& call, std::function<void(bool)> done);

}  // namespace dtx::bench

#endif  // DTX_BENCH_JOURNAL_PLAN_H_
