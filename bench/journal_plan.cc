#include "journal_plan.h"

#include <utility>

namespace dtx::bench {
namespace {

// The plan's transactions are owned, and their writes fenced, as a
// coordinator's are (journal.h's Fence): the owner recorded at SaveNew, the
// fence it starts with.
constexpr const char* kPlanOwner = "dtx-bench-plan";
Fence PlanFence() { return Fence{kPlanOwner, 0}; }

Branch Row(const std::string& id, BranchOp op) {
  Branch b;
  b.branch_id = id;
  b.op = op;
  b.url = "echo";
  return b;
}

std::string StepId(std::size_t i) {
  std::string id = std::to_string(i + 1);
  return id.size() < 2 ? "0" + id : id;
}

PlanStep Durable(std::function<void(Journal&, WriteDone)> write) {
  PlanStep s;
  s.kind = PlanStep::Kind::kDurable;
  s.write = std::move(write);
  return s;
}

PlanStep Queued(std::function<void(Journal&, WriteDone)> write) {
  PlanStep s;
  s.kind = PlanStep::Kind::kQueued;
  s.write = std::move(write);
  return s;
}

PlanStep CallStep(const std::string& gid, const char* type,
                  const std::string& id, const char* op) {
  PlanStep s;
  s.kind = PlanStep::Kind::kCall;
  s.gid = gid;
  s.trans_type = type;
  s.branch_id = id;
  s.op = op;
  return s;
}

// The results not written yet go out before the next call (queued, or
// durable where the call depends on them) or with the final status.
class Results {
 public:
  explicit Results(std::string gid) : gid_(std::move(gid)) {}

  void Add(const std::string& id, BranchOp op) {
    pending_.push_back({id, op, BranchStatus::kSucceed});
  }

  // Before a call: the results known so far, queued, or durable when
  // `durable` (docs/architecture.md, durability invariant 4: a saga action
  // is called only once the success of the actions it follows is durable).
  void FlushInto(Plan& plan, bool durable = false) {
    if (pending_.empty()) return;
    plan.push_back(
        (durable ? Durable : Queued)([gid = gid_, results = std::move(pending_),
                                      durable](Journal& j, WriteDone d) {
          BranchResults r{gid, TransStatus::kSubmitted, results, PlanFence()};
          r.lazy = !durable;  // as the coordinator writes them
          j.UpdateBranches(std::move(r), std::move(d));
        }));
    pending_.clear();
  }

  // The final status with what is left, queued.
  void FinishInto(Plan& plan, TransStatus from) {
    StatusChange c;
    c.gid = gid_;
    c.from = from;
    c.to = TransStatus::kSucceed;
    c.branch_updates = std::move(pending_);
    c.fence = PlanFence();
    c.lazy = true;  // as the coordinator writes it
    pending_.clear();
    plan.push_back(Queued(
        [c](Journal& j, WriteDone d) { j.ChangeStatus(c, std::move(d)); }));
  }

 private:
  std::string gid_;
  std::vector<BranchUpdate> pending_;
};

// A prepared global with no rows, durable (a tcc's Prepare, a workflow's
// PrepareWorkflow).
Plan PreparePlan(const std::string& gid, TransType type,
                 std::string custom_data) {
  GlobalTrans t;
  t.gid = gid;
  t.trans_type = type;
  t.status = TransStatus::kPrepared;
  t.owner = kPlanOwner;
  t.custom_data = std::move(custom_data);
  Plan plan;
  plan.push_back(Durable(
      [t](Journal& j, WriteDone d) { j.SaveNew(t, {}, std::move(d)); }));
  return plan;
}

void Append(Plan& to, Plan from) {
  for (PlanStep& s : from) to.push_back(std::move(s));
}

}  // namespace

Plan StepsPlan(const std::string& gid, TransType type,
               const std::vector<bool>& has_url, const std::string& payload) {
  const bool saga = type == TransType::kSaga;
  GlobalTrans t;
  t.gid = gid;
  t.trans_type = type;
  t.status = TransStatus::kSubmitted;
  t.owner = kPlanOwner;
  std::vector<Branch> rows;
  for (std::size_t i = 0; i < has_url.size(); ++i) {
    if (saga) rows.push_back(Row(StepId(i), BranchOp::kCompensate));
    rows.push_back(Row(StepId(i), BranchOp::kAction));
  }
  for (Branch& b : rows) b.bin_data = payload;
  Plan plan;
  plan.push_back(Durable([t, rows](Journal& j, WriteDone d) {
    j.SaveNew(t, rows, std::move(d));
  }));
  Results results(gid);
  for (std::size_t i = 0; i < has_url.size(); ++i) {
    if (has_url[i]) {
      results.FlushInto(plan, /*durable=*/saga);
      plan.push_back(CallStep(gid, saga ? "saga" : "msg", StepId(i), "action"));
    }
    results.Add(StepId(i), BranchOp::kAction);
  }
  results.FinishInto(plan, TransStatus::kSubmitted);
  return plan;
}

Plan WorkflowPreparePlan(const std::string& gid) {
  return PreparePlan(gid, TransType::kWorkflow,
                     R"({"data":"","name":"bench"})");
}

Plan WorkflowRecordPlan(const std::string& gid, const std::string& branch_id,
                        const std::string& payload) {
  Branch row = Row(branch_id, BranchOp::kAction);
  row.status = BranchStatus::kSucceed;
  row.bin_data = payload;  // the reply, which the step records
  Plan plan;
  plan.push_back(Durable([gid, row](Journal& j, WriteDone d) {
    j.AppendBranches(gid, TransStatus::kPrepared, {row}, std::move(d));
  }));
  return plan;
}

Plan WorkflowSubmitPlan(const std::string& gid) {
  StatusChange c;
  c.gid = gid;
  c.from = TransStatus::kPrepared;
  c.to = TransStatus::kSucceed;
  c.result = "";
  c.fence = PlanFence();
  Plan plan;
  plan.push_back(Durable(
      [c](Journal& j, WriteDone d) { j.ChangeStatus(c, std::move(d)); }));
  return plan;
}

Plan WorkflowPlan(const std::string& gid, std::size_t steps,
                  const std::string& payload) {
  Plan plan = WorkflowPreparePlan(gid);
  for (std::size_t i = 0; i < steps; ++i) {
    plan.push_back(CallStep(gid, "workflow", StepId(i), "action"));
    Append(plan, WorkflowRecordPlan(gid, StepId(i), payload));
  }
  Append(plan, WorkflowSubmitPlan(gid));
  return plan;
}

Plan TccPreparePlan(const std::string& gid) {
  return PreparePlan(gid, TransType::kTcc, "");
}

Plan TccRegisterPlan(const std::string& gid, const std::string& branch_id) {
  Plan plan;
  plan.push_back(Durable([gid, branch_id](Journal& j, WriteDone d) {
    j.AppendBranches(
        gid, TransStatus::kPrepared,
        {Row(branch_id, BranchOp::kCancel), Row(branch_id, BranchOp::kConfirm)},
        std::move(d));
  }));
  return plan;
}

Plan TccSubmitPlan(const std::string& gid,
                   const std::vector<std::string>& branch_ids) {
  StatusChange c;
  c.gid = gid;
  c.from = TransStatus::kPrepared;
  c.to = TransStatus::kSubmitted;
  c.fence = PlanFence();
  // As the coordinator leaves `prepared`: no branch registered meanwhile.
  c.expected_branch_rows = static_cast<int64_t>(2 * branch_ids.size());
  Plan plan;
  plan.push_back(Durable(
      [c](Journal& j, WriteDone d) { j.ChangeStatus(c, std::move(d)); }));
  Results results(gid);
  for (auto it = branch_ids.rbegin(); it != branch_ids.rend(); ++it) {
    results.FlushInto(plan);
    plan.push_back(CallStep(gid, "tcc", *it, "confirm"));
    results.Add(*it, BranchOp::kConfirm);
  }
  results.FinishInto(plan, TransStatus::kSubmitted);
  return plan;
}

Plan TccPlan(const std::string& gid,
             const std::vector<std::string>& branch_ids) {
  Plan plan = TccPreparePlan(gid);
  for (const std::string& id : branch_ids) {
    Append(plan, TccRegisterPlan(gid, id));
    plan.push_back(CallStep(gid, "tcc", id, "try"));
  }
  Append(plan, TccSubmitPlan(gid, branch_ids));
  return plan;
}

bool RunBlocking(const Plan& plan, Journal& journal, const BlockingCall& call) {
  for (const PlanStep& s : plan) {
    switch (s.kind) {
      case PlanStep::Kind::kDurable:
        if (!WaitForWrite([&](WriteDone d) {
               s.write(journal, std::move(d));
             }).ok()) {
          return false;
        }
        break;
      case PlanStep::Kind::kQueued:
        s.write(journal, nullptr);
        break;
      case PlanStep::Kind::kCall:
        if (!call(s)) return false;
        break;
    }
  }
  return true;
}

namespace {

void RunFrom(std::shared_ptr<const Plan> plan, std::size_t i, Journal& journal,
             const AsyncCall& call, std::function<void(bool)> done) {
  for (; i < plan->size(); ++i) {
    const PlanStep& s = (*plan)[i];
    if (s.kind == PlanStep::Kind::kQueued) {
      s.write(journal, nullptr);
      continue;
    }
    auto next = [plan, i, &journal, &call, done](bool ok) mutable {
      if (!ok) return done(false);
      RunFrom(std::move(plan), i + 1, journal, call, std::move(done));
    };
    if (s.kind == PlanStep::Kind::kDurable) {
      s.write(journal, [next](Status st) mutable { next(st.ok()); });
    } else {
      call(s, std::move(next));
    }
    return;
  }
  done(true);
}

}  // namespace

void RunAsync(std::shared_ptr<const Plan> plan, Journal& journal,
              const AsyncCall& call, std::function<void(bool)> done) {
  RunFrom(std::move(plan), 0, journal, call, std::move(done));
}

}  // namespace dtx::bench
