#include "dtx/metrics.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace dtx {
namespace {

using ::dtx::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

// The registry's own family, as RenderText prints it when nothing overflowed.
std::string DroppedFamilyText() {
  return "# HELP dtx_metrics_dropped_series_total Lookups of a label-value "
         "tuple sent to its family's overflow series (every label "
         "\"__overflow__\"), because the family was at its series cap or the "
         "number of values was wrong.\n"
         "# TYPE dtx_metrics_dropped_series_total counter\n";
}

TEST(MetricsTest, ContentTypeIsTheTextFormats) {
  EXPECT_EQ(kPrometheusTextContentType,
            "text/plain; version=0.0.4; charset=utf-8");
}

TEST(MetricsTest, CounterCountsIncrementsAndAmounts) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(Counter * c, registry.AddCounter("c_total", "C."));
  EXPECT_EQ(c->value(), 0);
  c->Increment();
  c->Increment(4);
  c->Add(0.5);
  c->Add(-1);  // ignored: a counter never goes down
  c->Add(std::nan(""));
  EXPECT_EQ(c->value(), 5.5);
  EXPECT_THAT(registry.RenderText(), HasSubstr("\nc_total 5.5\n"));
}

TEST(MetricsTest, CounterPrintsItsWholeCountExactly) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(Counter * c, registry.AddCounter("c_total", "C."));
  c->Increment(std::uint64_t{1} << 60);
  c->Increment();
  // 2^60 + 1 has no exact double; the count is printed from the integer.
  EXPECT_THAT(registry.RenderText(),
              HasSubstr("\nc_total 1152921504606846977\n"));
}

TEST(MetricsTest, GaugeSetsAddsAndSubtracts) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(Gauge * g, registry.AddGauge("g", "G."));
  g->Set(10);
  g->Add(2.5);
  g->Sub(4);
  EXPECT_EQ(g->value(), 8.5);
  g->Add(-10);
  EXPECT_EQ(g->value(), -1.5);
}

TEST(MetricsTest, HistogramCountsInInclusiveBuckets) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(Histogram * h,
                       registry.AddHistogram("h_seconds", "H.", {1, 2, 5}));
  h->Observe(0.5);
  h->Observe(1);  // le is inclusive: bucket 1
  h->Observe(1.5);
  h->Observe(7);             // +Inf only
  h->Observe(std::nan(""));  // ignored
  h->ObserveDuration(std::chrono::milliseconds(1500));
  EXPECT_EQ(h->CumulativeCounts(), (std::vector<std::uint64_t>{2, 4, 4, 5}));
  EXPECT_EQ(h->count(), 5u);
  EXPECT_EQ(h->sum(), 11.5);
}

TEST(MetricsTest, RendersASmallRegistryExactly) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(
      CounterFamily * calls,
      registry.AddCounterFamily("dtm_branch_process_total", "Branch calls.",
                                {"model", "status"}));
  calls->WithLabels({"tcc", "ok"})->Increment(2);
  calls->WithLabels({"saga", "fail"})->Increment();
  ASSERT_OK_AND_ASSIGN(Gauge * queued,
                       registry.AddGauge("dtx_journal_writes_queued",
                                         "Writes waiting for the journal."));
  queued->Set(3);
  ASSERT_OK_AND_ASSIGN(HistogramFamily * commit,
                       registry.AddHistogramFamily("dtx_journal_commit_seconds",
                                                   "Journal commit latency.",
                                                   {"sync"}, {0.25, 1}));
  commit->WithLabels({"full"})->Observe(0.125);
  commit->WithLabels({"full"})->Observe(2);
  ASSERT_OK_AND_ASSIGN(
      CallbackGauge oldest,
      registry.AddCallbackGauge("dtx_oldest_unfinished_seconds",
                                "Age of the oldest unfinished transaction.",
                                [] { return 12.5; }));

  EXPECT_EQ(registry.RenderText(),
            "# HELP dtm_branch_process_total Branch calls.\n"
            "# TYPE dtm_branch_process_total counter\n"
            "dtm_branch_process_total{model=\"saga\",status=\"fail\"} 1\n"
            "dtm_branch_process_total{model=\"tcc\",status=\"ok\"} 2\n"
            "# HELP dtx_journal_writes_queued Writes waiting for the "
            "journal.\n"
            "# TYPE dtx_journal_writes_queued gauge\n"
            "dtx_journal_writes_queued 3\n"
            "# HELP dtx_journal_commit_seconds Journal commit latency.\n"
            "# TYPE dtx_journal_commit_seconds histogram\n"
            "dtx_journal_commit_seconds_bucket{sync=\"full\",le=\"0.25\"} 1\n"
            "dtx_journal_commit_seconds_bucket{sync=\"full\",le=\"1\"} 1\n"
            "dtx_journal_commit_seconds_bucket{sync=\"full\",le=\"+Inf\"} 2\n"
            "dtx_journal_commit_seconds_sum{sync=\"full\"} 2.125\n"
            "dtx_journal_commit_seconds_count{sync=\"full\"} 2\n"
            "# HELP dtx_oldest_unfinished_seconds Age of the oldest "
            "unfinished transaction.\n"
            "# TYPE dtx_oldest_unfinished_seconds gauge\n"
            "dtx_oldest_unfinished_seconds 12.5\n" +
                DroppedFamilyText());
}

TEST(MetricsTest, UnlabelledHistogramHasOnlyTheLeLabel) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(Histogram * h,
                       registry.AddHistogram("batch_size", "Batch.", {1}));
  h->Observe(3);
  EXPECT_THAT(registry.RenderText(),
              HasSubstr("# TYPE batch_size histogram\n"
                        "batch_size_bucket{le=\"1\"} 0\n"
                        "batch_size_bucket{le=\"+Inf\"} 1\n"
                        "batch_size_sum 3\n"
                        "batch_size_count 1\n"));
}

TEST(MetricsTest, EscapesHelpAndLabelValues) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(
      GaugeFamily * g,
      registry.AddGaugeFamily("g", "a\\b \"quoted\"\nnext line", {"v"}));
  g->WithLabels({"x\\y\"z\nw"})->Set(1);
  const std::string text = registry.RenderText();
  // HELP escapes backslash and newline, not quotes.
  EXPECT_THAT(text, HasSubstr("# HELP g a\\\\b \"quoted\"\\nnext line\n"));
  // Label values escape all three.
  EXPECT_THAT(text, HasSubstr("g{v=\"x\\\\y\\\"z\\nw\"} 1\n"));
}

TEST(MetricsTest, InvalidUtf8InLabelValuesIsReplaced) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(GaugeFamily * g,
                       registry.AddGaugeFamily("g", "G.", {"v"}));
  Gauge* bad = g->WithLabels({"a\xff"});
  // A different bad byte becomes the same text, hence the same series.
  EXPECT_EQ(g->WithLabels({"a\xfe"}), bad);
  // Overlong, surrogate and truncated sequences are bad too.
  g->WithLabels({"\xc0\xaf"});
  g->WithLabels({"\xed\xa0\x80"});
  g->WithLabels({"\xe2\x82"});
  EXPECT_NE(g->WithLabels({"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"}), bad);
  const std::string text = registry.RenderText();
  EXPECT_THAT(text, HasSubstr("g{v=\"a\xef\xbf\xbd\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("g{v=\"\xef\xbf\xbd\xef\xbf\xbd\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("g{v=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("g{v=\"caf\xc3\xa9 \xe2\x9c\x93 "
                              "\xf0\x9f\x98\x80\"} 0\n"));
}

TEST(MetricsTest, SeriesAreCreatedOnceAndSortedByLabelValues) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(CounterFamily * f,
                       registry.AddCounterFamily("f_total", "F.", {"a", "b"}));
  Counter* zy = f->WithLabels({"z", "y"});
  Counter* ab = f->WithLabels({"a", "b"});
  Counter* az = f->WithLabels({"a", "z"});
  EXPECT_EQ(f->WithLabels({"z", "y"}), zy);
  EXPECT_NE(zy, ab);
  zy->Increment(3);
  ab->Increment(1);
  az->Increment(2);
  EXPECT_EQ(f->name(), "f_total");
  EXPECT_EQ(f->label_names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_THAT(registry.RenderText(), HasSubstr("# TYPE f_total counter\n"
                                               "f_total{a=\"a\",b=\"b\"} 1\n"
                                               "f_total{a=\"a\",b=\"z\"} 2\n"
                                               "f_total{a=\"z\",b=\"y\"} 3\n"));
}

TEST(MetricsTest, FamiliesRenderInRegistrationOrderEvenWithoutSeries) {
  MetricsRegistry registry;
  ASSERT_OK(registry.AddGaugeFamily("zeta", "Z.", {"x"}));
  ASSERT_OK(registry.AddCounter("alpha_total", "A."));
  EXPECT_EQ(registry.RenderText(),
            "# HELP zeta Z.\n# TYPE zeta gauge\n"
            "# HELP alpha_total A.\n# TYPE alpha_total counter\n"
            "alpha_total 0\n" +
                DroppedFamilyText());
}

TEST(MetricsTest, NewTuplesPastTheCapGoToOneOverflowSeries) {
  MetricsRegistry registry(/*max_series_per_family=*/2);
  ASSERT_OK_AND_ASSIGN(CounterFamily * f,
                       registry.AddCounterFamily("f_total", "F.", {"a", "b"}));
  Counter* first = f->WithLabels({"1", "x"});
  Counter* second = f->WithLabels({"2", "x"});
  Counter* third = f->WithLabels({"3", "x"});
  Counter* fourth = f->WithLabels({"4", "x"});
  EXPECT_EQ(third, fourth);
  EXPECT_NE(third, first);
  EXPECT_NE(third, second);
  // Known tuples still find their own series once the family is full.
  EXPECT_EQ(f->WithLabels({"1", "x"}), first);
  // So does a wrong number of values (a bug in the caller), counted too.
  EXPECT_EQ(f->WithLabels({"1"}), third);
  first->Increment();
  third->Increment(5);

  const std::string text = registry.RenderText();
  EXPECT_THAT(text, HasSubstr("# TYPE f_total counter\n"
                              "f_total{a=\"1\",b=\"x\"} 1\n"
                              "f_total{a=\"2\",b=\"x\"} 0\n"
                              "f_total{a=\"__overflow__\",b=\"__overflow__\"} "
                              "5\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE dtx_metrics_dropped_series_total "
                              "counter\n"
                              "dtx_metrics_dropped_series_total{family=\"f_"
                              "total\"} 3\n"));
  EXPECT_THAT(text, Not(HasSubstr("a=\"3\"")));
}

TEST(MetricsTest, RegistrationRejectsBadNames) {
  MetricsRegistry registry;
  for (const char* name : {"", "1abc", "a-b", "a b", "caf\xc3\xa9"}) {
    EXPECT_THAT(registry.AddCounter(name, "H."),
                StatusIs(StatusCode::kInvalidArgument, "invalid metric name"))
        << name;
  }
  EXPECT_OK(registry.AddGauge("ns:sub_name_2", "Colons are allowed."));
  EXPECT_OK(registry.AddGauge("_leading_underscore", "H."));
  EXPECT_THAT(
      registry.AddCounterFamily("x", "H.", {"a-b"}),
      StatusIs(StatusCode::kInvalidArgument, "x: invalid label name \"a-b\""));
  EXPECT_THAT(registry.AddCounterFamily("x", "H.", {"a:b"}),
              StatusIs(StatusCode::kInvalidArgument, "invalid label name"));
  EXPECT_THAT(registry.AddCounterFamily("x", "H.", {""}),
              StatusIs(StatusCode::kInvalidArgument, "invalid label name"));
  EXPECT_THAT(registry.AddCounterFamily("x", "H.", {"__name"}),
              StatusIs(StatusCode::kInvalidArgument, "reserved"));
  EXPECT_THAT(registry.AddCounterFamily("x", "H.", {"a", "a"}),
              StatusIs(StatusCode::kInvalidArgument, "appears twice"));
  EXPECT_THAT(registry.AddHistogramFamily("x", "H.", {"le"}),
              StatusIs(StatusCode::kInvalidArgument, "reserved for histogram"));
  EXPECT_OK(registry.AddCounterFamily("le_is_fine_here", "H.", {"le"}));
  EXPECT_THAT(registry.AddCounter("x", ""),
              StatusIs(StatusCode::kInvalidArgument, "help is empty"));
  EXPECT_THAT(registry.AddCounter("x", "bad \xff"),
              StatusIs(StatusCode::kInvalidArgument, "UTF-8"));
}

TEST(MetricsTest, RegistrationRejectsBadBuckets) {
  MetricsRegistry registry;
  const double inf = std::numeric_limits<double>::infinity();
  for (const std::vector<double>& bounds :
       {std::vector<double>{1, 1}, std::vector<double>{2, 1},
        std::vector<double>{1, inf}, std::vector<double>{std::nan("")}}) {
    EXPECT_THAT(registry.AddHistogram("h", "H.", bounds),
                StatusIs(StatusCode::kInvalidArgument, "strictly increasing"));
  }
  // No bounds: only the +Inf bucket.
  ASSERT_OK_AND_ASSIGN(Histogram * h, registry.AddHistogram("h", "H.", {}));
  h->Observe(-3);
  EXPECT_EQ(h->CumulativeCounts(), (std::vector<std::uint64_t>{1}));
}

TEST(MetricsTest, RegistrationRejectsTakenNames) {
  MetricsRegistry registry;
  ASSERT_OK(registry.AddCounter("a_total", "A."));
  EXPECT_THAT(registry.AddGauge("a_total", "A."),
              StatusIs(StatusCode::kAlreadyExists, "a_total"));
  ASSERT_OK(registry.AddHistogram("h", "H."));
  EXPECT_THAT(registry.AddGauge("h_count", "H."),
              StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(registry.AddCounter("h_bucket", "H."),
              StatusIs(StatusCode::kAlreadyExists));
  ASSERT_OK(registry.AddGauge("g_sum", "G."));
  EXPECT_THAT(registry.AddHistogram("g", "G."),
              StatusIs(StatusCode::kAlreadyExists, "g_sum"));
  EXPECT_THAT(registry.AddCounter(kDroppedSeriesMetricName, "D."),
              StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(registry.AddCallbackGauge("h", "H.", [] { return 1.0; }),
              StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(registry.AddCallbackGauge("cb", "H.", nullptr),
              StatusIs(StatusCode::kInvalidArgument, "callback is empty"));
}

TEST(MetricsTest, CallbackGaugeIsReadAtRenderUntilReset) {
  MetricsRegistry registry;
  double in_memory = 4;
  ASSERT_OK_AND_ASSIGN(
      CallbackGauge gauge,
      registry.AddCallbackGauge("dtx_transactions_in_memory", "In memory.",
                                [&in_memory] { return in_memory; }));
  EXPECT_THAT(registry.RenderText(),
              HasSubstr("\ndtx_transactions_in_memory 4\n"));
  in_memory = 9;
  EXPECT_THAT(registry.RenderText(),
              HasSubstr("\ndtx_transactions_in_memory 9\n"));

  CallbackGauge moved = std::move(gauge);
  gauge.Reset();  // NOLINT(bugprone-use-after-move): a no-op once moved
  EXPECT_THAT(registry.RenderText(),
              HasSubstr("\ndtx_transactions_in_memory 9\n"));
  moved.Reset();
  EXPECT_THAT(registry.RenderText(),
              HasSubstr("# TYPE dtx_transactions_in_memory gauge\n"
                        "# HELP dtx_metrics_dropped_series_total"));
}

TEST(MetricsTest, CallbackGaugeUnregistersWhenDestroyed) {
  MetricsRegistry registry;
  {
    ASSERT_OK_AND_ASSIGN(
        CallbackGauge gauge,
        registry.AddCallbackGauge("cb", "H.", [] { return 1.0; }));
    EXPECT_THAT(registry.RenderText(), HasSubstr("\ncb 1\n"));
  }
  EXPECT_THAT(registry.RenderText(), Not(HasSubstr("\ncb 1\n")));
  // Assigning over a registered handle unregisters the old callback.
  ASSERT_OK_AND_ASSIGN(CallbackGauge a, registry.AddCallbackGauge(
                                            "a", "H.", [] { return 2.0; }));
  ASSERT_OK_AND_ASSIGN(CallbackGauge b, registry.AddCallbackGauge(
                                            "b", "H.", [] { return 3.0; }));
  a = std::move(b);
  const std::string text = registry.RenderText();
  EXPECT_THAT(text, Not(HasSubstr("\na 2\n")));
  EXPECT_THAT(text, HasSubstr("\nb 3\n"));
}

TEST(MetricsTest, GaugesPrintSpecialValues) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(GaugeFamily * g,
                       registry.AddGaugeFamily("g", "G.", {"case"}));
  g->WithLabels({"a"})->Set(std::nan(""));
  g->WithLabels({"b"})->Set(-std::numeric_limits<double>::infinity());
  g->WithLabels({"c"})->Set(1e6);
  g->WithLabels({"d"})->Set(1e-7);
  EXPECT_THAT(registry.RenderText(), HasSubstr("g{case=\"a\"} NaN\n"
                                               "g{case=\"b\"} -Inf\n"
                                               "g{case=\"c\"} 1000000\n"
                                               "g{case=\"d\"} 1e-07\n"));
}

TEST(MetricsTest, DefaultLatencyBucketsExtendGosDefaults) {
  const std::vector<double> buckets = DefaultLatencyBuckets();
  for (double go :
       {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0}) {
    EXPECT_THAT(buckets, ::testing::Contains(go));
  }
  MetricsRegistry registry;
  EXPECT_OK(registry.AddHistogram("h", "H."));  // increasing, finite
}

// Several threads update cached series, look the same tuple up and render at
// once; every total comes out exact.
TEST(MetricsTest, ConcurrentUpdatesAreExact) {
  MetricsRegistry registry;
  ASSERT_OK_AND_ASSIGN(CounterFamily * calls,
                       registry.AddCounterFamily("calls_total", "C.", {"t"}));
  ASSERT_OK_AND_ASSIGN(Counter * seconds,
                       registry.AddCounter("seconds_total", "S."));
  ASSERT_OK_AND_ASSIGN(Gauge * level, registry.AddGauge("level", "L."));
  ASSERT_OK_AND_ASSIGN(Histogram * latency,
                       registry.AddHistogram("latency", "L.", {1, 2}));
  constexpr int kThreads = 4;
  constexpr int kRounds = 20000;
  std::vector<Counter*> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Counter* shared = calls->WithLabels({"shared"});
      seen[static_cast<std::size_t>(t)] = shared;
      for (int i = 0; i < kRounds; ++i) {
        shared->Increment();
        seconds->Add(0.5);
        level->Add(1);
        latency->Observe(i % 3);  // 0, 1, 2
        if (i % 1000 == 0) static_cast<void>(registry.RenderText());
      }
    });
  }
  for (std::thread& t : threads) t.join();

  for (Counter* c : seen) EXPECT_EQ(c, seen[0]);
  const double total = kThreads * kRounds;
  EXPECT_EQ(seen[0]->value(), total);
  EXPECT_EQ(seconds->value(), total / 2);
  EXPECT_EQ(level->value(), total);
  EXPECT_EQ(latency->count(), static_cast<std::uint64_t>(total));
  std::uint64_t up_to_1 = 0;  // observations 0 and 1: le="1" is inclusive
  for (int i = 0; i < kRounds; ++i) up_to_1 += (i % 3 != 2);
  EXPECT_EQ(latency->CumulativeCounts()[0], up_to_1 * kThreads);
  EXPECT_THAT(registry.RenderText(),
              HasSubstr("calls_total{t=\"shared\"} 80000\n"));
}

}  // namespace
}  // namespace dtx
