// AlertSink: where a coordinator reports a branch that keeps failing (dtm's
// AlertRetryLimit and AlertWebHook). The coordinator decides when to report
// (Options::alert_retry_limit; docs/operations.md#alerts); a sink decides
// what to do with the report: dtx-server's WebhookAlertSink
// (dtx/transport/webhook_alert_sink.h) POSTs it as JSON, a host may log it or
// page someone.
//
//   class LogAlerts final : public dtx::AlertSink {
//    public:
//     void Report(dtx::BranchAlert alert) override { queue_.Push(alert); }
//   };
//   LogAlerts alerts;             // outlives the coordinator
//   dtx::CoordinatorDeps deps;
//   deps.alerts = &alerts;
//
// Thread safety: Report is called from the coordinator's io threads, several
// at once; implementations must be thread-safe.

#ifndef DTX_ALERT_SINK_H_
#define DTX_ALERT_SINK_H_

#include "dtx/clock.h"
#include "dtx/core_export.h"
#include "dtx/model.h"

#include <cstdint>
#include <string>

namespace dtx {

// A branch whose attempts reached an alert threshold with a failed call.
struct BranchAlert {
  std::string gid;
  TransType trans_type = TransType::kSaga;
  // The transaction's status when the call failed.
  TransStatus status = TransStatus::kSubmitted;
  std::string branch_url;
  std::string branch_id;
  BranchOp op = BranchOp::kAction;
  // The failed call's error (Branch::last_error): "<outcome>: <message>".
  std::string error;
  // Calls of this branch so far (Branch::attempts), the failed one included.
  int64_t retry_count = 0;
  // The threshold reached: alert_retry_limit, then twice that, four times...
  int64_t threshold = 0;
  // When the failed call was made.
  TimePoint time{};
};

class DTX_CORE_EXPORT AlertSink {
 public:
  virtual ~AlertSink();

  // Takes one alert. Runs on a transaction's strand: it must return at once
  // (queue the alert, never send it here) and must not call the
  // coordinator.
  virtual void Report(BranchAlert alert) = 0;
};

}  // namespace dtx

#endif  // DTX_ALERT_SINK_H_
