#include "engine_metrics.h"

#include <string>
#include <utility>

namespace dtx::internal {
namespace {

constexpr TransType kAllTypes[] = {TransType::kTcc, TransType::kSaga,
                                   TransType::kMsg, TransType::kXa,
                                   TransType::kWorkflow};
constexpr BranchOp kAllOps[] = {BranchOp::kTry,        BranchOp::kConfirm,
                                BranchOp::kCancel,     BranchOp::kAction,
                                BranchOp::kCompensate, BranchOp::kCommit,
                                BranchOp::kRollback,   BranchOp::kMsg};
constexpr BranchOutcome kAllOutcomes[] = {
    BranchOutcome::kSuccess, BranchOutcome::kFailure, BranchOutcome::kOngoing,
    BranchOutcome::kTransient};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

double Seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

Result<std::unique_ptr<EngineMetrics>> EngineMetrics::Register(
    MetricsRegistry& registry, std::function<double()> in_memory,
    std::unique_ptr<SummaryCache> summary) {
  std::unique_ptr<EngineMetrics> m(new EngineMetrics());
  m->summary_ = std::move(summary);
  DTX_ASSIGN_OR_RETURN(
      CounterFamily * passes,
      registry.AddCounterFamily(
          "dtm_transaction_process_total",
          "Processing passes of global transactions, by mode and by whether "
          "the pass ended without a failed call.",
          {"model", "status"}));
  DTX_ASSIGN_OR_RETURN(
      HistogramFamily * handled,
      registry.AddHistogramFamily(
          "dtm_transaction_handled_duration",
          "Seconds from a transaction's creation to the end of a processing "
          "pass.",
          {"model"}));
  DTX_ASSIGN_OR_RETURN(
      CounterFamily * branches,
      registry.AddCounterFamily(
          "dtm_branch_process_total",
          "Branch calls answered, by mode, op and whether the branch "
          "succeeded.",
          {"model", "branchtype", "status"}));
  DTX_ASSIGN_OR_RETURN(
      HistogramFamily * latency,
      registry.AddHistogramFamily(
          "dtx_branch_call_duration_seconds",
          "Latency of branch calls, by outcome (success, failure, ongoing, "
          "transient).",
          {"outcome"}));
  for (TransType t : kAllTypes) {
    const auto ti = static_cast<std::size_t>(t);
    const std::string model(ToString(t));
    m->passes_[ti][1] = passes->WithLabels({model, "ok"});
    m->passes_[ti][0] = passes->WithLabels({model, "fail"});
    m->handled_[ti] = handled->WithLabels({model});
    for (BranchOp op : kAllOps) {
      const auto oi = static_cast<std::size_t>(op);
      const std::string type(ToString(op));
      m->branches_[ti][oi][1] = branches->WithLabels({model, type, "ok"});
      m->branches_[ti][oi][0] = branches->WithLabels({model, type, "fail"});
    }
  }
  for (BranchOutcome o : kAllOutcomes) {
    m->call_latency_[static_cast<std::size_t>(o)] =
        latency->WithLabels({Lower(ToString(o))});
  }
  DTX_ASSIGN_OR_RETURN(
      m->in_memory_,
      registry.AddCallbackGauge("dtx_transactions_in_memory",
                                "Transactions being processed in memory now.",
                                std::move(in_memory)));
  if (SummaryCache* cache = m->summary_.get()) {
    DTX_ASSIGN_OR_RETURN(
        m->unfinished_,
        registry.AddCallbackGauge(
            "dtx_transactions_unfinished",
            "Unfinished transactions (prepared, submitted, aborting) in the "
            "journal, refreshed at most every few seconds.",
            [cache] { return cache->Read().unfinished; }));
    DTX_ASSIGN_OR_RETURN(
        m->due_,
        registry.AddCallbackGauge(
            "dtx_transactions_due",
            "Unfinished transactions in the journal whose next try is due "
            "(next_cron_time has passed): the backlog, refreshed at most "
            "every few seconds.",
            [cache] { return cache->Read().due; }));
    DTX_ASSIGN_OR_RETURN(
        m->oldest_age_,
        registry.AddCallbackGauge(
            "dtx_oldest_unfinished_transaction_age_seconds",
            "Seconds since the oldest unfinished transaction in the journal "
            "was created; 0 when there is none.",
            [cache] { return cache->Read().oldest_age_seconds; }));
  }
  return m;
}

void EngineMetrics::TransPass(TransType type, bool ok,
                              std::chrono::nanoseconds age) {
  const auto ti = static_cast<std::size_t>(type);
  if (ti >= kTypes) return;
  passes_[ti][ok ? 1 : 0]->Increment();
  handled_[ti]->Observe(Seconds(age));
}

void EngineMetrics::BranchCall(TransType type, BranchOp op,
                               BranchOutcome outcome,
                               std::chrono::nanoseconds latency) {
  const auto ti = static_cast<std::size_t>(type);
  const auto oi = static_cast<std::size_t>(op);
  const auto ci = static_cast<std::size_t>(outcome);
  if (ti >= kTypes || oi >= kOps || ci >= kOutcomes) return;
  branches_[ti][oi][outcome == BranchOutcome::kSuccess ? 1 : 0]->Increment();
  call_latency_[ci]->Observe(Seconds(latency));
}

}  // namespace dtx::internal
