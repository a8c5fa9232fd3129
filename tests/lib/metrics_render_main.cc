// Prints the text of a MetricsRegistry that uses every feature of dtx's
// metrics, for metrics_format_test.py to read with prometheus_client's
// parser. That test holds the expected families, labels and values: keep the
// two files in step.

#include "dtx/metrics.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t kMaxSeries = 10;

template <typename T>
T Check(dtx::Result<T> result) {
  if (!result.ok()) {
    std::fprintf(stderr, "metrics_render: %s\n",
                 result.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(result).value();
}

}  // namespace

int main() {
  dtx::MetricsRegistry registry(kMaxSeries);

  Check(registry.AddGaugeFamily("dtm_server_info", "Build information.",
                                {"gin_version", "grpc_version"}))
      ->WithLabels({"none", "1.51.1"})
      ->Set(1);

  // kMaxSeries tuples, then two more that go to the overflow series.
  dtx::CounterFamily* process = Check(registry.AddCounterFamily(
      "dtm_server_process_total", "API requests.", {"type", "api", "status"}));
  for (std::size_t i = 0; i < kMaxSeries; ++i) {
    process->WithLabels({"grpc", "api" + std::to_string(i), "ok"})
        ->Increment(i + 1);
  }
  process->WithLabels({"grpc", "extra1", "ok"})->Increment(5);
  process->WithLabels({"grpc", "extra2", "fail"})->Increment(1);

  dtx::HistogramFamily* duration = Check(
      registry.AddHistogramFamily("dtm_server_response_duration",
                                  "API latency (seconds).", {"type", "api"}));
  dtx::Histogram* submit = duration->WithLabels({"grpc", "submit"});
  for (double v : {0.0003, 0.004, 0.2, 45.0}) submit->Observe(v);
  duration->WithLabels({"grpc", "prepare"})->Observe(0.001);  // on a bound

  dtx::GaugeFamily* labels = Check(registry.AddGaugeFamily(
      "dtx_label_values",
      "Label values with \\ backslashes, \"quotes\" and a\nnewline.",
      {"value"}));
  const std::vector<std::string> values = {
      "back\\slash",
      "say \"hi\"",
      "line1\nline2",
      "trailing\\",
      "\\n literally",
      "{braces}=,commas",
      "caf\xc3\xa9 \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac",
      "",
      "bad\xff"
      "byte",
      "tab\there"};
  for (std::size_t i = 0; i < values.size(); ++i) {
    labels->WithLabels({values[i]})->Set(static_cast<double>(i + 1));
  }

  const double inf = std::numeric_limits<double>::infinity();
  dtx::GaugeFamily* special = Check(registry.AddGaugeFamily(
      "dtx_special_values", "Special values.", {"case"}));
  special->WithLabels({"nan"})->Set(std::nan(""));
  special->WithLabels({"pos_inf"})->Set(inf);
  special->WithLabels({"neg_inf"})->Set(-inf);
  special->WithLabels({"million"})->Set(1e6);
  special->WithLabels({"tiny"})->Set(1e-7);
  special->WithLabels({"negative"})->Set(-0.5);
  special->WithLabels({"big_int"})->Set(9007199254740991.0);
  special->WithLabels({"huge"})->Set(1e300);
  special->WithLabels({"fraction"})->Set(0.1);
  special->WithLabels({"neg_zero"})->Set(-0.0);

  Check(registry.AddCounter("dtx_bytes_total", "A count past 2^53."))
      ->Increment(std::uint64_t{1} << 60);
  dtx::Counter* seconds =
      Check(registry.AddCounter("dtx_seconds_total", "Fractional amounts."));
  seconds->Add(0.25);
  seconds->Add(0.5);
  seconds->Increment(2);

  dtx::CallbackGauge in_memory = Check(registry.AddCallbackGauge(
      "dtx_transactions_in_memory", "Read at render.", [] { return 7.0; }));
  dtx::CallbackGauge gone = Check(registry.AddCallbackGauge(
      "dtx_unregistered_callback", "Reset before render.", [] { return 1.0; }));
  gone.Reset();

  Check(registry.AddCounterFamily("dtx_unused_total", "No series yet.",
                                  {"model"}));

  dtx::Histogram* batch = Check(
      registry.AddHistogram("dtx_batch_size", "Custom bounds.", {1, 2, 4, 8}));
  for (double v : {1.0, 3.0, 3.0, 100.0}) batch->Observe(v);

  Check(registry.AddGauge("dtx:colon_name", "Colons are allowed."))->Set(0.5);

  const std::string text = registry.RenderText();
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}
