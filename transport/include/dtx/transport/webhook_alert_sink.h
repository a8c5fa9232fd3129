// WebhookAlertSink: the AlertSink that POSTs each alert as JSON to a webhook
// (dtm's AlertWebHook), as dtx-server does. The coordinator's Report only
// queues the alert; one thread of the sink's own (Boost.Beast's HTTP client
// on Boost.Asio; this header includes no Boost) sends it, so a slow or dead
// webhook never holds up a transaction.
//
//   POST <path> HTTP/1.1
//   Content-Type: application/json
//
//   {"gid":"...","trans_type":"saga","status":"submitted",
//    "branch":"<branch url>","branch_id":"01","op":"action",
//    "error":"transient: connection refused","retry_count":3,"threshold":3}
//
// dtm's keys (gid, status, branch, error, retry_count) plus dtx's
// (trans_type, branch_id, op, threshold); AlertJson builds the body.
//
// Delivery: a 2xx answer is success. A connection or timeout error, a 5xx,
// 408 or 429 is tried again after a back-off (initial_backoff, doubling) up
// to max_attempts POSTs in all; any other answer (a 4xx) fails at once. An
// alert that does not get through is logged and counted failed. At most
// max_queued alerts are waiting or being sent; Report drops the ones beyond
// (counted, logged). Every alert ends in exactly one of the three counts of
// dtx_alerts_total{outcome="sent|failed|dropped"} (with a registry) and
// stats().
//
// Only http:// URLs: https:// needs the TLS of issue #15 and is refused by
// Start.
//
// Thread safety: thread-safe.

#ifndef DTX_TRANSPORT_WEBHOOK_ALERT_SINK_H_
#define DTX_TRANSPORT_WEBHOOK_ALERT_SINK_H_

#include "dtx/alert_sink.h"
#include "dtx/logger.h"
#include "dtx/metrics.h"
#include "dtx/result.h"
#include "dtx/transport/http_export.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace dtx {

struct DTX_HTTP_EXPORT WebhookAlertSinkOptions {
  // "http://host[:port][/path][?query]"; the port defaults to 80. A host
  // name is resolved at each attempt.
  std::string url;
  // Alerts waiting or being sent; Report drops alerts beyond it.
  std::size_t max_queued = 1000;
  // POSTs per alert, the first one included (at least 1).
  int max_attempts = 4;
  // Pause before the second POST of an alert; doubled before each next one.
  std::chrono::milliseconds initial_backoff{1000};
  // One POST's limit, from connecting to reading the whole answer.
  std::chrono::milliseconds request_timeout{5000};
  // Borrowed; must outlive the sink. dtx_alerts_total{outcome} is
  // registered in it. Null: no metrics (stats() still counts).
  MetricsRegistry* metrics = nullptr;
  // Null: no logging.
  std::shared_ptr<Logger> logger;
};

// The JSON body POSTed for `alert` (see above).
DTX_HTTP_EXPORT std::string AlertJson(const BranchAlert& alert);

class DTX_HTTP_EXPORT WebhookAlertSink final : public AlertSink {
 public:
  // Checks the options and starts the sending thread. kInvalidArgument for
  // a URL that is not http://host..., an https:// URL (TLS: issue #15), or
  // zero limits; the registry's errors.
  static Result<std::unique_ptr<WebhookAlertSink>> Start(
      WebhookAlertSinkOptions options);

  // Shutdown(0).
  ~WebhookAlertSink() override;
  WebhookAlertSink(const WebhookAlertSink&) = delete;
  WebhookAlertSink& operator=(const WebhookAlertSink&) = delete;

  // Queues `alert` and returns at once; dropped (and counted) when
  // max_queued alerts are pending or the sink is shut down.
  void Report(BranchAlert alert) override;

  // Refuses new alerts, lets pending ones finish for up to `grace` (retries
  // included), then abandons the rest (counted failed) and joins the thread.
  // Idempotent.
  void Shutdown(std::chrono::milliseconds grace);

  struct Stats {
    uint64_t sent = 0;
    uint64_t failed = 0;
    uint64_t dropped = 0;
  };
  Stats stats() const;

  struct Impl;

 private:
  explicit WebhookAlertSink(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_WEBHOOK_ALERT_SINK_H_
