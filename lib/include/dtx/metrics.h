// Metrics: counters, gauges and fixed-bucket histograms, grouped in families
// with a fixed list of label names, and their rendering in Prometheus's text
// exposition format 0.0.4. A host serves MetricsRegistry::RenderText() on its
// own endpoint with kPrometheusTextContentType.
//
// Registration happens at startup and returns a Result: a bad metric or label
// name, a bad bucket list or a name taken twice is an error, never an abort.
// A series (one label-value tuple of a family) is created on first use and
// lives as long as the registry; the caller keeps the pointer, so that
// counting is one relaxed atomic operation, with no lock and no allocation:
//
//   MetricsRegistry registry;
//   DTX_ASSIGN_OR_RETURN(
//       CounterFamily * calls,
//       registry.AddCounterFamily("dtm_branch_process_total",
//                                 "Branch calls.",
//                                 {"model", "branchtype", "status"}));
//   Counter* saga_action_ok = calls->WithLabels({"saga", "action", "ok"});
//   ...
//   saga_action_ok->Increment();           // the hot path
//
// Cardinality is bounded: a family holds at most max_series_per_family
// series (kDefaultMaxSeriesPerFamily). Past that, WithLabels returns one
// shared overflow series, whose every label is kOverflowLabelValue, and adds
// one to dtx_metrics_dropped_series_total{family="<name>"}. So a label fed
// from requests (a gid, a URL) costs memory up to the cap, never beyond.
//
// Thread safety: MetricsRegistry and every family are thread-safe; Counter,
// Gauge and Histogram may be updated from any number of threads at once.
// RenderText may run at the same time as updates: each value it prints is
// one that the series held, but the values of one scrape are not one
// snapshot (a histogram's _sum may lag its _count by an observation in
// flight).

#ifndef DTX_METRICS_H_
#define DTX_METRICS_H_

#include "dtx/core_export.h"
#include "dtx/result.h"
#include "dtx/status.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dtx {

// The Content-Type of RenderText's output.
inline constexpr std::string_view kPrometheusTextContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// Series per family before new label-value tuples go to the overflow series.
inline constexpr std::size_t kDefaultMaxSeriesPerFamily = 1000;

// Every label of a family's overflow series has this value.
inline constexpr std::string_view kOverflowLabelValue = "__overflow__";

// The registry's own counter of tuples sent to an overflow series, with one
// label, `family`. Rendered after every registered family.
inline constexpr std::string_view kDroppedSeriesMetricName =
    "dtx_metrics_dropped_series_total";

// Histogram bucket upper bounds, in seconds, for dtx's latencies: 0.5 ms (a
// journal commit without fsync) to 30 s (a branch call near its deadline).
// A superset of Prometheus's Go default buckets (0.005 to 10), which dtm uses.
DTX_CORE_EXPORT std::vector<double> DefaultLatencyBuckets();

class MetricsRegistry;
class CallbackGauge;

namespace internal {

class FamilyState;  // metrics.cc

// The common base of Counter, Gauge and Histogram, so that a family owns its
// series whatever their type.
class DTX_CORE_EXPORT Series {
 public:
  Series(const Series&) = delete;
  Series& operator=(const Series&) = delete;
  virtual ~Series();

 protected:
  Series() = default;
};

// Adds `delta` to `cell`: lock-free, no allocation.
inline void AtomicAdd(std::atomic<double>* cell, double delta) {
  double old = cell->load(std::memory_order_relaxed);
  while (!cell->compare_exchange_weak(old, old + delta,
                                      std::memory_order_relaxed)) {
  }
}

}  // namespace internal

// One series of a counter family: a total that only goes up. Increments are
// counted exactly in 64 bits; amounts given as double (seconds, say) are
// summed in a double beside them.
class DTX_CORE_EXPORT Counter final : public internal::Series {
 public:
  void Increment(std::uint64_t n = 1) {
    increments_.fetch_add(n, std::memory_order_relaxed);
  }
  // A negative or NaN `delta` is ignored: a counter never goes down.
  void Add(double delta) {
    if (delta >= 0) internal::AtomicAdd(&added_, delta);
  }

  // The total. While nothing was Add()ed, RenderText prints the 64-bit count
  // of increments exactly; a double is exact only below 2^53.
  double value() const;

 private:
  friend class internal::FamilyState;
  Counter() = default;

  std::atomic<std::uint64_t> increments_{0};
  std::atomic<double> added_{0.0};
};

// One series of a gauge family: a value that goes up and down.
class DTX_CORE_EXPORT Gauge final : public internal::Series {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta) { internal::AtomicAdd(&value_, delta); }
  void Sub(double delta) { internal::AtomicAdd(&value_, -delta); }

  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  friend class internal::FamilyState;
  Gauge() = default;

  std::atomic<double> value_{0.0};
};

// One series of a histogram family: observations counted in the family's
// fixed buckets (upper bounds, inclusive, as Prometheus's `le`), plus their
// sum. The +Inf bucket is implicit.
class DTX_CORE_EXPORT Histogram final : public internal::Series {
 public:
  // A NaN observation is ignored.
  void Observe(double value) {
    if (std::isnan(value)) return;
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(bounds_->begin(), bounds_->end(), value) -
        bounds_->begin());
    counts_[bucket].fetch_add(1, std::memory_order_relaxed);
    internal::AtomicAdd(&sum_, value);
  }
  // Observes `elapsed` in seconds.
  void ObserveDuration(std::chrono::nanoseconds elapsed) {
    Observe(std::chrono::duration<double>(elapsed).count());
  }

  // Cumulative counts, one per bound and a last one for +Inf (the count).
  std::vector<std::uint64_t> CumulativeCounts() const;
  std::uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  friend class internal::FamilyState;
  // `bounds` is the family's and outlives this series.
  explicit Histogram(const std::vector<double>* bounds);

  const std::vector<double>* const bounds_;
  // Not cumulative; bounds_->size() + 1 cells, the last one for +Inf.
  const std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

namespace internal {

// What every family shares: its name, label names, series and series cap.
// Owned by the registry.
class DTX_CORE_EXPORT FamilyBase {
 public:
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;
  virtual ~FamilyBase();

  const std::string& name() const;
  const std::vector<std::string>& label_names() const;

 protected:
  explicit FamilyBase(std::unique_ptr<FamilyState> state);
  // The series for `label_values`, created on first use; the overflow series
  // when the family is full or the number of values is not the number of
  // label names. Never null. Label values that are not valid UTF-8 have each
  // bad byte replaced by U+FFFD first.
  Series* Get(const std::vector<std::string>& label_values);

 private:
  friend class dtx::MetricsRegistry;
  friend class dtx::CallbackGauge;
  std::unique_ptr<FamilyState> state_;
};

}  // namespace internal

// The families. WithLabels takes `label_values` in the order of the family's
// label names and returns the series, which lives as long as the registry.
// It takes a lock and allocates: call it once per tuple and keep the pointer.
// An unlabelled family's only series is WithLabels({}).
class DTX_CORE_EXPORT CounterFamily final : public internal::FamilyBase {
 public:
  Counter* WithLabels(const std::vector<std::string>& label_values) {
    return static_cast<Counter*>(Get(label_values));
  }

 private:
  friend class MetricsRegistry;
  explicit CounterFamily(std::unique_ptr<internal::FamilyState> state);
};

class DTX_CORE_EXPORT GaugeFamily final : public internal::FamilyBase {
 public:
  Gauge* WithLabels(const std::vector<std::string>& label_values) {
    return static_cast<Gauge*>(Get(label_values));
  }

 private:
  friend class MetricsRegistry;
  explicit GaugeFamily(std::unique_ptr<internal::FamilyState> state);
};

class DTX_CORE_EXPORT HistogramFamily final : public internal::FamilyBase {
 public:
  Histogram* WithLabels(const std::vector<std::string>& label_values) {
    return static_cast<Histogram*>(Get(label_values));
  }

 private:
  friend class MetricsRegistry;
  explicit HistogramFamily(std::unique_ptr<internal::FamilyState> state);
};

// Keeps the callback of an AddCallbackGauge registered. Destroying it, or
// Reset(), unregisters the callback: the family stays, without a sample.
// Reset waits for a RenderText that is running the callback, so that the
// objects the callback reads may be destroyed right after it.
// REQUIRES: the registry outlives it; not called from inside the callback.
// Move-only; thread-compatible.
class DTX_CORE_EXPORT CallbackGauge {
 public:
  CallbackGauge() = default;
  CallbackGauge(CallbackGauge&& other) noexcept;
  CallbackGauge& operator=(CallbackGauge&& other) noexcept;
  ~CallbackGauge();

  void Reset();

 private:
  friend class MetricsRegistry;
  explicit CallbackGauge(internal::FamilyBase* family) : family_(family) {}

  internal::FamilyBase* family_ = nullptr;
};

// Owns metric families and renders them. Thread-safe.
class DTX_CORE_EXPORT MetricsRegistry {
 public:
  // `max_series_per_family`: the cardinality cap of every family (the
  // overflow series is not counted). REQUIRES: at least 1.
  explicit MetricsRegistry(
      std::size_t max_series_per_family = kDefaultMaxSeriesPerFamily);
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registration. Each returns a family that lives as long as the registry,
  // or:
  //   kInvalidArgument  `name` does not match [a-zA-Z_:][a-zA-Z0-9_:]*, a
  //                     label name does not match [a-zA-Z_][a-zA-Z0-9_]*,
  //                     starts with "__" or appears twice, a histogram has a
  //                     label "le", `help` is empty or not UTF-8, or bucket
  //                     bounds are not finite and strictly increasing;
  //   kAlreadyExists    `name`, or one of the sample names it renders (a
  //                     histogram's name_bucket, name_sum, name_count), is
  //                     taken by a family registered before.
  // Counters are by convention named ..._total; that is not enforced.
  Result<CounterFamily*> AddCounterFamily(std::string_view name,
                                          std::string_view help,
                                          std::vector<std::string> label_names);
  Result<GaugeFamily*> AddGaugeFamily(std::string_view name,
                                      std::string_view help,
                                      std::vector<std::string> label_names);
  // `bucket_bounds`: upper bounds, without +Inf (which is always there); may
  // be empty.
  Result<HistogramFamily*> AddHistogramFamily(
      std::string_view name, std::string_view help,
      std::vector<std::string> label_names,
      std::vector<double> bucket_bounds = DefaultLatencyBuckets());

  // Unlabelled metrics: a family with no label names, and its one series.
  Result<Counter*> AddCounter(std::string_view name, std::string_view help);
  Result<Gauge*> AddGauge(std::string_view name, std::string_view help);
  Result<Histogram*> AddHistogram(
      std::string_view name, std::string_view help,
      std::vector<double> bucket_bounds = DefaultLatencyBuckets());

  // An unlabelled gauge whose value `read` returns when RenderText runs
  // (transactions in memory, the age of the oldest one). `read` is called
  // under a lock of this family: it must be quick, must not call into this
  // registry, and may be called from any thread that renders. Registered
  // until the returned CallbackGauge is destroyed or reset.
  // REQUIRES: `read` is callable. Errors as above.
  Result<CallbackGauge> AddCallbackGauge(std::string_view name,
                                         std::string_view help,
                                         std::function<double()> read);

  // The text exposition format 0.0.4: for each family, in registration
  // order and then kDroppedSeriesMetricName, "# HELP" and "# TYPE" lines and
  // its series sorted by label values (in the order of the label names).
  // Values print as Prometheus parses them: integers in plain digits, other
  // numbers in the shortest form that reads back exactly, and +Inf, -Inf,
  // NaN. No timestamps.
  std::string RenderText() const;

 private:
  struct State;
  Result<internal::FamilyBase*> Register(
      std::unique_ptr<internal::FamilyBase> family);

  std::unique_ptr<State> state_;
};

}  // namespace dtx

#endif  // DTX_METRICS_H_
