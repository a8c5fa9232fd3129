// EngineMetrics: what the coordinator reports to a MetricsRegistry (dtm's
// names and label sets where dtm has them, docs/operations.md). Every series
// is looked up once, at Open, so that a report is one atomic add: the label
// values are enums, so the tuples are known in advance and cardinality is
// bounded by construction (no gid, no branch id).
//
// Thread safety: thread-safe.

#ifndef DTX_LIB_ENGINE_METRICS_H_
#define DTX_LIB_ENGINE_METRICS_H_

#include "dtx/branch_client.h"
#include "dtx/metrics.h"
#include "dtx/model.h"
#include "dtx/result.h"

#include "summary_cache.h"

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace dtx::internal {

class EngineMetrics {
 public:
  // Registers the families in `registry` (borrowed; must outlive the
  // result). `in_memory` is read at each render. `summary`, when given,
  // feeds the gauges of unfinished transactions in the journal (none
  // without it: a journal that cannot Summarize).
  static Result<std::unique_ptr<EngineMetrics>> Register(
      MetricsRegistry& registry, std::function<double()> in_memory,
      std::unique_ptr<SummaryCache> summary);

  // Null without one.
  SummaryCache* summary() const { return summary_.get(); }

  // A processing pass of a transaction ended (it left memory): ok unless it
  // ended waiting for a retry after a failed call; `age` is the time since
  // the transaction was created (dtm_transaction_handled_duration).
  void TransPass(TransType type, bool ok, std::chrono::nanoseconds age);
  // One branch call answered.
  void BranchCall(TransType type, BranchOp op, BranchOutcome outcome,
                  std::chrono::nanoseconds latency);

 private:
  static constexpr std::size_t kTypes = 5;     // TransType
  static constexpr std::size_t kOps = 8;       // BranchOp
  static constexpr std::size_t kOutcomes = 4;  // BranchOutcome
  EngineMetrics() = default;

  std::array<std::array<Counter*, 2>, kTypes> passes_{};  // [type][ok]
  std::array<Histogram*, kTypes> handled_{};
  std::array<std::array<std::array<Counter*, 2>, kOps>, kTypes> branches_{};
  std::array<Histogram*, kOutcomes> call_latency_{};
  // Before the gauges that read it, so that it outlives them.
  std::unique_ptr<SummaryCache> summary_;
  CallbackGauge in_memory_;
  CallbackGauge unfinished_;
  CallbackGauge due_;
  CallbackGauge oldest_age_;
};

}  // namespace dtx::internal

#endif  // DTX_LIB_ENGINE_METRICS_H_
