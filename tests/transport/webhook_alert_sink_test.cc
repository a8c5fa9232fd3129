// WebhookAlertSink against a real HTTP server on 127.0.0.1 that records what
// it is sent (tests/testing/webhook_receiver.h): the JSON, the retries after
// 5xx and refused connections, the failures that are not retried, the
// bounded queue, and the counts in dtx_alerts_total.

#include "dtx/transport/webhook_alert_sink.h"

#include "status_matchers.h"
#include "webhook_receiver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

namespace dtx::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

BranchAlert TestAlert(const std::string& gid = "gid-1") {
  BranchAlert a;
  a.gid = gid;
  a.trans_type = TransType::kSaga;
  a.status = TransStatus::kSubmitted;
  a.branch_url = "127.0.0.1:9/busi.Busi/TransOut";
  a.branch_id = "01";
  a.op = BranchOp::kAction;
  a.error = "TRANSIENT: connection refused";
  a.retry_count = 3;
  a.threshold = 3;
  return a;
}

class WebhookAlertSinkTest : public ::testing::Test {
 protected:
  WebhookAlertSinkOptions Options(const std::string& url) {
    WebhookAlertSinkOptions o;
    o.url = url;
    o.initial_backoff = milliseconds(10);
    o.request_timeout = milliseconds(2000);
    o.metrics = &registry_;
    return o;
  }

  // Polls until the sink has ended `n` alerts (sent, failed or dropped).
  static bool Ended(const WebhookAlertSink& sink, uint64_t n) {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
      const auto s = sink.stats();
      if (s.sent + s.failed + s.dropped >= n) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }

  bool Has(const std::string& line) {
    return registry_.RenderText().find("\n" + line + "\n") != std::string::npos;
  }

  MetricsRegistry registry_;
};

TEST(AlertJsonTest, HasDtmsKeysAndDtxs) {
  const nlohmann::json j = nlohmann::json::parse(AlertJson(TestAlert()));
  EXPECT_EQ(j["gid"], "gid-1");
  EXPECT_EQ(j["status"], "submitted");
  EXPECT_EQ(j["branch"], "127.0.0.1:9/busi.Busi/TransOut");
  EXPECT_EQ(j["error"], "TRANSIENT: connection refused");
  EXPECT_EQ(j["retry_count"], 3);
  EXPECT_EQ(j["trans_type"], "saga");
  EXPECT_EQ(j["branch_id"], "01");
  EXPECT_EQ(j["op"], "action");
  EXPECT_EQ(j["threshold"], 3);
  EXPECT_EQ(j.size(), 9u);
}

TEST(AlertJsonTest, AnErrorThatIsNotUtf8IsStillJson) {
  BranchAlert a = TestAlert();
  a.error = "bad \xff byte and \"quotes\"\n";
  const nlohmann::json j = nlohmann::json::parse(AlertJson(a), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("\"quotes\""));
}

TEST_F(WebhookAlertSinkTest, PostsTheAlertAsJson) {
  ASSERT_OK_AND_ASSIGN(auto hook, WebhookReceiver::Start());
  ASSERT_OK_AND_ASSIGN(auto sink,
                       WebhookAlertSink::Start(Options(hook->url())));
  EXPECT_TRUE(Has(R"(dtx_alerts_total{outcome="sent"} 0)"));
  sink->Report(TestAlert());
  ASSERT_TRUE(Ended(*sink, 1));
  EXPECT_EQ(sink->stats().sent, 1u);
  const auto got = hook->requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].target, "/alerts");
  EXPECT_EQ(got[0].content_type, "application/json");
  EXPECT_EQ(got[0].body, AlertJson(TestAlert()));
  EXPECT_TRUE(Has(R"(dtx_alerts_total{outcome="sent"} 1)"));
  EXPECT_TRUE(Has(R"(dtx_alerts_total{outcome="failed"} 0)"));
}

TEST_F(WebhookAlertSinkTest, A5xxIsRetriedWithBackoffUntilItGetsThrough) {
  ASSERT_OK_AND_ASSIGN(auto hook, WebhookReceiver::Start({503, 500, 200}));
  ASSERT_OK_AND_ASSIGN(auto sink,
                       WebhookAlertSink::Start(Options(hook->url())));
  sink->Report(TestAlert());
  ASSERT_TRUE(Ended(*sink, 1));
  EXPECT_EQ(sink->stats().sent, 1u);
  EXPECT_EQ(sink->stats().failed, 0u);
  const auto got = hook->requests();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].body, got[0].body);
}

TEST_F(WebhookAlertSinkTest, GivesUpAfterMaxAttempts) {
  ASSERT_OK_AND_ASSIGN(auto hook, WebhookReceiver::Start({503}));
  WebhookAlertSinkOptions o = Options(hook->url());
  o.max_attempts = 3;
  ASSERT_OK_AND_ASSIGN(auto sink, WebhookAlertSink::Start(o));
  sink->Report(TestAlert());
  ASSERT_TRUE(Ended(*sink, 1));
  EXPECT_EQ(sink->stats().failed, 1u);
  EXPECT_EQ(hook->requests().size(), 3u);
  EXPECT_TRUE(Has(R"(dtx_alerts_total{outcome="failed"} 1)"));
}

TEST_F(WebhookAlertSinkTest, A4xxFailsWithoutRetrying) {
  ASSERT_OK_AND_ASSIGN(auto hook, WebhookReceiver::Start({400, 200}));
  ASSERT_OK_AND_ASSIGN(auto sink,
                       WebhookAlertSink::Start(Options(hook->url())));
  sink->Report(TestAlert());
  ASSERT_TRUE(Ended(*sink, 1));
  EXPECT_EQ(sink->stats().failed, 1u);
  EXPECT_EQ(hook->requests().size(), 1u);
}

TEST_F(WebhookAlertSinkTest, ADeadWebhookIsRetriedThenCountedFailed) {
  // A port that was just listened on and is closed now: refused.
  ASSERT_OK_AND_ASSIGN(auto gone, WebhookReceiver::Start());
  const std::string url = gone->url();
  gone.reset();
  WebhookAlertSinkOptions o = Options(url);
  o.max_attempts = 3;
  ASSERT_OK_AND_ASSIGN(auto sink, WebhookAlertSink::Start(o));
  sink->Report(TestAlert("a"));
  sink->Report(TestAlert("b"));
  ASSERT_TRUE(Ended(*sink, 2));
  EXPECT_EQ(sink->stats().failed, 2u);
  EXPECT_EQ(sink->stats().sent, 0u);
  EXPECT_TRUE(Has(R"(dtx_alerts_total{outcome="failed"} 2)"));
}

TEST_F(WebhookAlertSinkTest, AFullQueueDropsAndCountsWithoutWaiting) {
  // The webhook holds every request: nothing ends while the test reports.
  ASSERT_OK_AND_ASSIGN(auto hook, WebhookReceiver::Start({0}));
  WebhookAlertSinkOptions o = Options(hook->url());
  o.max_queued = 2;
  ASSERT_OK_AND_ASSIGN(auto sink, WebhookAlertSink::Start(o));
  for (int i = 0; i < 5; ++i) sink->Report(TestAlert("g" + std::to_string(i)));
  EXPECT_EQ(sink->stats().dropped, 3u);
  EXPECT_TRUE(Has(R"(dtx_alerts_total{outcome="dropped"} 3)"));
  ASSERT_TRUE(hook->WaitForRequests(2));
  // Shutdown abandons the two still waiting for an answer: failed.
  sink->Shutdown(milliseconds(0));
  EXPECT_EQ(sink->stats().failed, 2u);
  EXPECT_EQ(sink->stats().sent, 0u);
  // After shutdown, a report is dropped.
  sink->Report(TestAlert("late"));
  EXPECT_EQ(sink->stats().dropped, 4u);
}

TEST_F(WebhookAlertSinkTest, ShutdownWaitsForAlertsInFlightWithinTheGrace) {
  ASSERT_OK_AND_ASSIGN(auto hook, WebhookReceiver::Start({503, 200}));
  ASSERT_OK_AND_ASSIGN(auto sink,
                       WebhookAlertSink::Start(Options(hook->url())));
  sink->Report(TestAlert());
  sink->Shutdown(std::chrono::seconds(20));
  EXPECT_EQ(sink->stats().sent, 1u);
  EXPECT_EQ(hook->requests().size(), 2u);
}

TEST_F(WebhookAlertSinkTest, StartRefusesWhatItCannotSendTo) {
  EXPECT_THAT(
      WebhookAlertSink::Start(Options("https://hooks.example/x")).status(),
      StatusIs(StatusCode::kInvalidArgument, "issue #15"));
  for (const char* bad :
       {"", "ftp://x/y", "http://", "http://:80/x", "http://host:0/",
        "http://host:99999/", "http://host:8x/", "http://[::1/x",
        "http://user@host/"}) {
    EXPECT_THAT(WebhookAlertSink::Start(Options(bad)).status(),
                StatusIs(StatusCode::kInvalidArgument))
        << bad;
  }
  WebhookAlertSinkOptions o = Options("http://127.0.0.1:1/x");
  o.max_attempts = 0;
  EXPECT_THAT(WebhookAlertSink::Start(o).status(),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(WebhookAlertSinkTest, AcceptsHostsPortsAndQueries) {
  for (const char* good : {"http://127.0.0.1:8080/a?b=c", "http://[::1]:9/",
                           "http://hooks.example", "http://h?x=1"}) {
    MetricsRegistry registry;
    WebhookAlertSinkOptions o = Options(good);
    o.metrics = &registry;
    EXPECT_OK(WebhookAlertSink::Start(o)) << good;
  }
}

}  // namespace
}  // namespace dtx::testing
