// Options of a coordinator, with dtm's defaults (conf.sample.yml), and the
// retry policy that spaces out branch retries.
//
// Thread safety: plain values; thread-compatible.

#ifndef DTX_OPTIONS_H_
#define DTX_OPTIONS_H_

#include "dtx/branch_targets.h"
#include "dtx/core_export.h"
#include "dtx/status.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace dtx {

// When a branch call must be repeated, the transaction is due again after an
// interval: Reset() after progress, Keep() after ONGOING, Backoff() after an
// error. dtm doubles without limit; dtx caps the interval at max_interval
// (0 = no cap, dtm's behaviour).
struct DTX_CORE_EXPORT RetryPolicy {
  // dtm's RetryInterval: the first interval, and the one Reset() returns.
  std::chrono::seconds initial_interval{10};
  // Each Backoff() multiplies the interval by this. dtm uses 2.
  int factor = 2;
  // Upper bound of Backoff(); 0 disables the cap. An uncapped doubling reaches
  // days after ~15 failures, so dtx caps at one hour by default.
  std::chrono::seconds max_interval{3600};
  // A retry after an error is due up to this fraction of its interval later
  // (0 to 1; dtm has none): transactions that failed together against one
  // dead service do not all come back in the same instant. ONGOING keeps its
  // interval exactly. The spread is drawn from the gid and the time, so a
  // simulation replays it.
  double jitter = 0.1;

  std::chrono::seconds Reset() const { return initial_interval; }
  std::chrono::seconds Keep(std::chrono::seconds current) const {
    return current;
  }
  // min(current * factor, max_interval); saturates instead of overflowing.
  std::chrono::seconds Backoff(std::chrono::seconds current) const;

  // kInvalidArgument when initial_interval <= 0, factor < 1, or a non-zero
  // max_interval below initial_interval.
  Status Validate() const;
};

// What the engine needs to know. The journal is injected (CoordinatorDeps), so
// where it is stored belongs to whoever opens it: EmbeddedOptions::journal_path
// for OpenEmbeddedCoordinator, Store.Path for dtx-server.
struct DTX_CORE_EXPORT Options {
  // Retry and timeouts (dtm's names in comments).
  // RetryInterval and the back-off rule.
  RetryPolicy retry;
  // TimeoutToFail: a prepared tcc or msg transaction older than this is
  // aborted (tcc) or checked back (msg). Sagas time out only when a
  // per-transaction value is given.
  std::chrono::seconds timeout_to_fail{35};
  // RequestTimeout: the deadline of every branch call.
  std::chrono::seconds request_timeout{3};
  // TransCronInterval: how often the journal is polled for due transactions
  // that no timer of this process is waiting for (restarts, other processes).
  std::chrono::seconds cron_interval{3};

  // Retention (dtm's Store.FinishedDataExpire and Store.DataExpire). A
  // finished transaction (succeed or failed) is removed from the journal,
  // with its branch rows, once its last change is older than
  // finished_data_expire, or once it was created more than data_expire ago.
  // An unfinished transaction is never removed, however old. 0 turns a rule
  // off; both 0 (the default): everything is kept.
  std::chrono::seconds finished_data_expire{0};
  std::chrono::seconds data_expire{0};
  // How often retention runs while either rule is on (and once at Open). A
  // run removes in small steps (a step looks at 1000 rows), each a write of
  // its own between the others.
  std::chrono::seconds retention_interval{60};

  // Alerts (dtm's AlertRetryLimit). With an AlertSink (CoordinatorDeps::
  // alerts), a failed call of a branch that has been called this many times
  // is reported, once per transaction; again at twice as many calls, four
  // times as many, and so on (docs/operations.md#alerts). At least 1.
  int64_t alert_retry_limit = 3;

  // Security. Which branch URLs a transaction may name, checked at Prepare,
  // Submit and RegisterBranch (dtx/branch_targets.h). Off by default:
  // every URL the branch client takes is called.
  BranchTargets branch_targets;

  // Performance.
  // Threads running the coordinator's io_context.
  std::size_t io_threads = 1;

  // Recovery without a stampede. Due transactions the scheduler takes from
  // the journal while this many are in memory wait there instead; it takes
  // more once half of them are done. Requests (Submit, ...) are never held
  // back by it. 0: no cap.
  std::size_t max_in_memory = 4096;
  // Branch calls in flight to one endpoint (a gRPC method of a service, an
  // HTTP URL without its query) at most; more wait in a queue, their
  // deadline starting when they are sent, so a service that comes back is
  // called at the rate it answers instead of being flooded until its calls
  // time out. Counted per method so that one that hangs holds no other
  // method of the service in line. 0: no cap.
  std::size_t max_calls_per_target = 128;

  // kInvalidArgument naming the first bad field.
  Status Validate() const;
};

}  // namespace dtx

#endif  // DTX_OPTIONS_H_
