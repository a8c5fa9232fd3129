// The metrics registry and its rendering in Prometheus's text format 0.0.4
// (the lexical rules are in prometheus_text.cc):
//
//   # HELP <name> <help, with \ and newline escaped>
//   # TYPE <name> counter|gauge|histogram
//   <name>{<label>="<value, with \, " and newline escaped>",...} <value>
//
// A histogram series renders as <name>_bucket{...,le="<bound>"} lines with
// cumulative counts, the last one le="+Inf", then <name>_sum and <name>_count
// (equal to the +Inf bucket: both come from one read of the buckets).
//
// Locks: the registry's mutex guards the list of families and the names
// taken; each family's mutex guards its series map and its callback.
// RenderText holds the registry's, then each family's in turn. A lookup that
// overflows releases its family's lock before it counts the drop in the
// registry's dropped-series family, so no thread holds two family locks.

#include "dtx/metrics.h"

#include "dtx/internal/mutex.h"

#include "prometheus_text.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

namespace dtx {
namespace internal {

enum class MetricType { kCounter, kGauge, kHistogram, kCallbackGauge };

}  // namespace internal

namespace {

using internal::IsLabelName;
using internal::IsMetricName;
using internal::IsUtf8;
using internal::MetricType;
using internal::ValueText;

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
    case MetricType::kCallbackGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,   0.5,   1,      2.5,   5,    10,    30};
}

namespace internal {

Series::~Series() = default;

// A family's description and its series. Thread-safe.
class FamilyState {
 public:
  FamilyState(MetricType type, std::string name, std::string help,
              std::vector<std::string> label_names, std::vector<double> bounds,
              std::size_t max_series, CounterFamily* dropped)
      : type_(type),
        name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)),
        max_series_(max_series),
        overflow_key_(label_names_.size(), std::string(kOverflowLabelValue)),
        dropped_(dropped) {}

  MetricType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  Series* Get(const std::vector<std::string>& label_values) DTX_EXCLUDES(mu_) {
    bool drop = label_values.size() != label_names_.size();
    std::vector<std::string> key;
    if (!drop) {
      key.reserve(label_values.size());
      for (const std::string& v : label_values) key.push_back(ToUtf8(v));
    }
    Series* series = nullptr;
    {
      internal::MutexLock lock(&mu_);
      if (!drop) {
        const auto it = series_.find(key);
        if (it != series_.end()) return it->second.get();
        const std::size_t regular =
            series_.size() - series_.count(overflow_key_);
        if (key == overflow_key_ || regular < max_series_) {
          return series_.emplace(std::move(key), NewSeries())
              .first->second.get();
        }
        drop = true;
      }
      std::unique_ptr<Series>& overflow = series_[overflow_key_];
      if (overflow == nullptr) overflow = NewSeries();
      series = overflow.get();
    }
    if (dropped_ != nullptr) dropped_->WithLabels({name_})->Increment();
    return series;
  }

  void SetCallback(std::function<double()> read) DTX_EXCLUDES(mu_) {
    internal::MutexLock lock(&mu_);
    read_ = std::move(read);
  }

  // Unregisters the callback, waiting for a render that runs it; the
  // callback's captures are destroyed outside the lock.
  void ClearCallback() DTX_EXCLUDES(mu_) {
    std::function<double()> old;
    internal::MutexLock lock(&mu_);
    old.swap(read_);
  }

  void AppendText(std::string* out) const DTX_EXCLUDES(mu_) {
    *out += "# HELP ";
    *out += name_;
    *out += ' ';
    AppendEscapedHelp(help_, out);
    *out += "\n# TYPE ";
    *out += name_;
    *out += ' ';
    *out += TypeName(type_);
    *out += '\n';
    internal::MutexLock lock(&mu_);
    if (type_ == MetricType::kCallbackGauge) {
      if (read_) AppendSample("", "", ValueText(read_()), out);
      return;
    }
    for (const auto& [values, series] : series_) {
      std::string labels;
      for (std::size_t i = 0; i < label_names_.size(); ++i) {
        if (i > 0) labels += ',';
        labels += label_names_[i];
        labels += "=\"";
        AppendEscapedLabelValue(values[i], &labels);
        labels += '"';
      }
      AppendSeries(*series, labels, out);
    }
  }

 private:
  std::unique_ptr<Series> NewSeries() const {
    switch (type_) {
      case MetricType::kCounter:
        return std::unique_ptr<Series>(new Counter());
      case MetricType::kGauge:
        return std::unique_ptr<Series>(new Gauge());
      case MetricType::kHistogram:
        return std::unique_ptr<Series>(new Histogram(&bounds_));
      case MetricType::kCallbackGauge:
        break;
    }
    return nullptr;  // a callback gauge has no series: never asked for one
  }

  void AppendSeries(const Series& series, const std::string& labels,
                    std::string* out) const {
    switch (type_) {
      case MetricType::kCounter: {
        const auto& c = static_cast<const Counter&>(series);
        const double added = c.added_.load(std::memory_order_relaxed);
        const std::uint64_t increments =
            c.increments_.load(std::memory_order_relaxed);
        std::string value;
        if (added == 0) {
          AppendCount(increments, &value);
        } else {
          AppendValue(static_cast<double>(increments) + added, &value);
        }
        AppendSample("", labels, value, out);
        break;
      }
      case MetricType::kGauge:
        AppendSample("", labels,
                     ValueText(static_cast<const Gauge&>(series).value()), out);
        break;
      case MetricType::kHistogram: {
        const auto& h = static_cast<const Histogram&>(series);
        const std::vector<std::uint64_t> counts = h.CumulativeCounts();
        const std::string prefix = labels.empty() ? "" : labels + ",";
        for (std::size_t i = 0; i < counts.size(); ++i) {
          const std::string le =
              i < bounds_.size() ? ValueText(bounds_[i]) : "+Inf";
          AppendSample("_bucket", prefix + "le=\"" + le + "\"",
                       std::to_string(counts[i]), out);
        }
        AppendSample("_sum", labels, ValueText(h.sum()), out);
        AppendSample("_count", labels, std::to_string(counts.back()), out);
        break;
      }
      case MetricType::kCallbackGauge:
        break;
    }
  }

  // <name><suffix>{<labels>} <value>, without braces when there are no
  // labels.
  void AppendSample(std::string_view suffix, std::string_view labels,
                    std::string_view value, std::string* out) const {
    *out += name_;
    *out += suffix;
    if (!labels.empty()) {
      *out += '{';
      *out += labels;
      *out += '}';
    }
    *out += ' ';
    *out += value;
    *out += '\n';
  }

  const MetricType type_;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // histograms only
  const std::size_t max_series_;
  const std::vector<std::string> overflow_key_;
  // Counts lookups sent to the overflow series; null for the registry's own
  // dropped-series family. Owned by the registry.
  CounterFamily* const dropped_;

  mutable internal::Mutex mu_;
  // Sorted by label values, so that RenderText's order is stable.
  std::map<std::vector<std::string>, std::unique_ptr<Series>> series_
      DTX_GUARDED_BY(mu_);
  std::function<double()> read_ DTX_GUARDED_BY(mu_);  // callback gauges only
};

FamilyBase::FamilyBase(std::unique_ptr<FamilyState> state)
    : state_(std::move(state)) {}
FamilyBase::~FamilyBase() = default;

const std::string& FamilyBase::name() const { return state_->name(); }
const std::vector<std::string>& FamilyBase::label_names() const {
  return state_->label_names();
}

Series* FamilyBase::Get(const std::vector<std::string>& label_values) {
  return state_->Get(label_values);
}

}  // namespace internal

namespace {

// The family of an AddCallbackGauge: no WithLabels, one callback.
class CallbackGaugeFamily final : public internal::FamilyBase {
 public:
  explicit CallbackGaugeFamily(std::unique_ptr<internal::FamilyState> state)
      : FamilyBase(std::move(state)) {}
};

Status CheckFamily(MetricType type, std::string_view name,
                   std::string_view help,
                   const std::vector<std::string>& label_names,
                   const std::vector<double>& bounds) {
  if (!IsMetricName(name)) {
    return InvalidArgumentError("metrics: invalid metric name \"" +
                                std::string(name) +
                                "\": must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  const std::string prefix = "metrics: " + std::string(name) + ": ";
  if (help.empty()) return InvalidArgumentError(prefix + "help is empty");
  if (!IsUtf8(help)) {
    return InvalidArgumentError(prefix + "help is not valid UTF-8");
  }
  std::set<std::string_view> seen;
  for (const std::string& label : label_names) {
    if (!IsLabelName(label)) {
      return InvalidArgumentError(prefix + "invalid label name \"" + label +
                                  "\": must match [a-zA-Z_][a-zA-Z0-9_]*");
    }
    if (label.rfind("__", 0) == 0) {
      return InvalidArgumentError(prefix + "label name \"" + label +
                                  "\" is reserved: it starts with __");
    }
    if (type == MetricType::kHistogram && label == "le") {
      return InvalidArgumentError(
          prefix + "label name \"le\" is reserved for histogram buckets");
    }
    if (!seen.insert(label).second) {
      return InvalidArgumentError(prefix + "label name \"" + label +
                                  "\" appears twice");
    }
  }
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i]))) {
      return InvalidArgumentError(
          prefix + "bucket bounds must be finite and strictly increasing (" +
          ValueText(bounds[i]) + " at index " + std::to_string(i) + ")");
    }
  }
  return Status::Ok();
}

// The sample names a family renders, which no other family may render.
std::vector<std::string> SampleNames(MetricType type, const std::string& name) {
  if (type != MetricType::kHistogram) return {name};
  return {name, name + "_bucket", name + "_sum", name + "_count"};
}

}  // namespace

CounterFamily::CounterFamily(std::unique_ptr<internal::FamilyState> state)
    : FamilyBase(std::move(state)) {}
GaugeFamily::GaugeFamily(std::unique_ptr<internal::FamilyState> state)
    : FamilyBase(std::move(state)) {}
HistogramFamily::HistogramFamily(std::unique_ptr<internal::FamilyState> state)
    : FamilyBase(std::move(state)) {}

double Counter::value() const {
  return static_cast<double>(increments_.load(std::memory_order_relaxed)) +
         added_.load(std::memory_order_relaxed);
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds),
      counts_(
          std::make_unique<std::atomic<std::uint64_t>[]>(bounds->size() + 1)) {}

std::vector<std::uint64_t> Histogram::CumulativeCounts() const {
  std::vector<std::uint64_t> counts(bounds_->size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    counts[i] = total;
  }
  return counts;
}

std::uint64_t Histogram::count() const { return CumulativeCounts().back(); }

CallbackGauge::CallbackGauge(CallbackGauge&& other) noexcept
    : family_(std::exchange(other.family_, nullptr)) {}

CallbackGauge& CallbackGauge::operator=(CallbackGauge&& other) noexcept {
  if (this != &other) {
    Reset();
    family_ = std::exchange(other.family_, nullptr);
  }
  return *this;
}

CallbackGauge::~CallbackGauge() { Reset(); }

void CallbackGauge::Reset() {
  if (family_ == nullptr) return;
  family_->state_->ClearCallback();
  family_ = nullptr;
}

struct MetricsRegistry::State {
  explicit State(std::size_t max_series) : max_series_per_family(max_series) {}

  const std::size_t max_series_per_family;
  // Not in `families`: rendered last. Set by the constructor, then constant.
  std::unique_ptr<CounterFamily> dropped;

  internal::Mutex mu;
  std::vector<std::unique_ptr<internal::FamilyBase>> families
      DTX_GUARDED_BY(mu);
  std::set<std::string, std::less<>> taken DTX_GUARDED_BY(mu);
};

MetricsRegistry::MetricsRegistry(std::size_t max_series_per_family)
    : state_(std::make_unique<State>(
          std::max<std::size_t>(max_series_per_family, 1))) {
  state_->dropped.reset(
      new CounterFamily(std::make_unique<internal::FamilyState>(
          MetricType::kCounter, std::string(kDroppedSeriesMetricName),
          "Lookups of a label-value tuple sent to its family's overflow series "
          "(every label \"" +
              std::string(kOverflowLabelValue) +
              "\"), because the family was at its series cap or the number of "
              "values was wrong.",
          std::vector<std::string>{"family"}, std::vector<double>{},
          state_->max_series_per_family, nullptr)));
  internal::MutexLock lock(&state_->mu);
  state_->taken.emplace(kDroppedSeriesMetricName);
}

MetricsRegistry::~MetricsRegistry() = default;

Result<internal::FamilyBase*> MetricsRegistry::Register(
    std::unique_ptr<internal::FamilyBase> family) {
  const internal::FamilyState& s = *family->state_;
  const std::vector<std::string> names = SampleNames(s.type(), s.name());
  internal::MutexLock lock(&state_->mu);
  for (const std::string& n : names) {
    if (state_->taken.count(n) > 0) {
      return AlreadyExistsError("metrics: " + s.name() + ": the name " + n +
                                " is taken by a family registered before");
    }
  }
  state_->taken.insert(names.begin(), names.end());
  state_->families.push_back(std::move(family));
  return state_->families.back().get();
}

namespace {

std::unique_ptr<internal::FamilyState> NewState(
    MetricType type, std::string_view name, std::string_view help,
    std::vector<std::string> label_names, std::vector<double> bounds,
    std::size_t max_series, CounterFamily* dropped) {
  return std::make_unique<internal::FamilyState>(
      type, std::string(name), std::string(help), std::move(label_names),
      std::move(bounds), max_series, dropped);
}

}  // namespace

Result<CounterFamily*> MetricsRegistry::AddCounterFamily(
    std::string_view name, std::string_view help,
    std::vector<std::string> label_names) {
  DTX_RETURN_IF_ERROR(
      CheckFamily(MetricType::kCounter, name, help, label_names, {}));
  std::unique_ptr<internal::FamilyBase> family(new CounterFamily(
      NewState(MetricType::kCounter, name, help, std::move(label_names), {},
               state_->max_series_per_family, state_->dropped.get())));
  DTX_ASSIGN_OR_RETURN(internal::FamilyBase * registered,
                       Register(std::move(family)));
  return static_cast<CounterFamily*>(registered);
}

Result<GaugeFamily*> MetricsRegistry::AddGaugeFamily(
    std::string_view name, std::string_view help,
    std::vector<std::string> label_names) {
  DTX_RETURN_IF_ERROR(
      CheckFamily(MetricType::kGauge, name, help, label_names, {}));
  std::unique_ptr<internal::FamilyBase> family(new GaugeFamily(
      NewState(MetricType::kGauge, name, help, std::move(label_names), {},
               state_->max_series_per_family, state_->dropped.get())));
  DTX_ASSIGN_OR_RETURN(internal::FamilyBase * registered,
                       Register(std::move(family)));
  return static_cast<GaugeFamily*>(registered);
}

Result<HistogramFamily*> MetricsRegistry::AddHistogramFamily(
    std::string_view name, std::string_view help,
    std::vector<std::string> label_names, std::vector<double> bucket_bounds) {
  DTX_RETURN_IF_ERROR(CheckFamily(MetricType::kHistogram, name, help,
                                  label_names, bucket_bounds));
  std::unique_ptr<internal::FamilyBase> family(new HistogramFamily(
      NewState(MetricType::kHistogram, name, help, std::move(label_names),
               std::move(bucket_bounds), state_->max_series_per_family,
               state_->dropped.get())));
  DTX_ASSIGN_OR_RETURN(internal::FamilyBase * registered,
                       Register(std::move(family)));
  return static_cast<HistogramFamily*>(registered);
}

Result<Counter*> MetricsRegistry::AddCounter(std::string_view name,
                                             std::string_view help) {
  DTX_ASSIGN_OR_RETURN(CounterFamily * family,
                       AddCounterFamily(name, help, {}));
  return family->WithLabels({});
}

Result<Gauge*> MetricsRegistry::AddGauge(std::string_view name,
                                         std::string_view help) {
  DTX_ASSIGN_OR_RETURN(GaugeFamily * family, AddGaugeFamily(name, help, {}));
  return family->WithLabels({});
}

Result<Histogram*> MetricsRegistry::AddHistogram(
    std::string_view name, std::string_view help,
    std::vector<double> bucket_bounds) {
  DTX_ASSIGN_OR_RETURN(
      HistogramFamily * family,
      AddHistogramFamily(name, help, {}, std::move(bucket_bounds)));
  return family->WithLabels({});
}

Result<CallbackGauge> MetricsRegistry::AddCallbackGauge(
    std::string_view name, std::string_view help,
    std::function<double()> read) {
  DTX_RETURN_IF_ERROR(
      CheckFamily(MetricType::kCallbackGauge, name, help, {}, {}));
  if (!read) {
    return InvalidArgumentError("metrics: " + std::string(name) +
                                ": the callback is empty");
  }
  auto state = NewState(MetricType::kCallbackGauge, name, help, {}, {},
                        state_->max_series_per_family, nullptr);
  state->SetCallback(std::move(read));
  std::unique_ptr<internal::FamilyBase> family(
      new CallbackGaugeFamily(std::move(state)));
  DTX_ASSIGN_OR_RETURN(internal::FamilyBase * registered,
                       Register(std::move(family)));
  return CallbackGauge(registered);
}

std::string MetricsRegistry::RenderText() const {
  std::string out;
  internal::MutexLock lock(&state_->mu);
  for (const auto& family : state_->families) family->state_->AppendText(&out);
  state_->dropped->state_->AppendText(&out);
  return out;
}

}  // namespace dtx
