#include "dtx/options.h"

#include <limits>

namespace dtx {

std::chrono::seconds RetryPolicy::Backoff(std::chrono::seconds current) const {
  using Rep = std::chrono::seconds::rep;
  const Rep cur =
      current.count() > 0 ? current.count() : initial_interval.count();
  const Rep limit = max_interval.count() > 0 ? max_interval.count()
                                             : std::numeric_limits<Rep>::max();
  if (factor <= 1) return std::chrono::seconds(cur < limit ? cur : limit);
  if (cur > limit / factor) return std::chrono::seconds(limit);
  const Rep next = cur * factor;
  return std::chrono::seconds(next < limit ? next : limit);
}

Status RetryPolicy::Validate() const {
  if (!(jitter >= 0 && jitter <= 1)) {
    return InvalidArgumentError("options: retry.jitter must be from 0 to 1");
  }
  if (initial_interval.count() <= 0) {
    return InvalidArgumentError(
        "options: retry.initial_interval must be positive");
  }
  if (factor < 1)
    return InvalidArgumentError("options: retry.factor must be at least 1");
  if (max_interval.count() < 0 ||
      (max_interval.count() > 0 && max_interval < initial_interval)) {
    return InvalidArgumentError(
        "options: retry.max_interval must be 0 (no cap) or at least "
        "retry.initial_interval");
  }
  return Status::Ok();
}

Status Options::Validate() const {
  DTX_RETURN_IF_ERROR(retry.Validate());
  if (timeout_to_fail.count() <= 0) {
    return InvalidArgumentError("options: timeout_to_fail must be positive");
  }
  if (request_timeout.count() <= 0) {
    return InvalidArgumentError("options: request_timeout must be positive");
  }
  if (finished_data_expire.count() < 0 || data_expire.count() < 0) {
    return InvalidArgumentError(
        "options: finished_data_expire and data_expire must not be negative "
        "(0 keeps finished transactions)");
  }
  if (retention_interval.count() <= 0) {
    return InvalidArgumentError("options: retention_interval must be positive");
  }
  if (cron_interval.count() <= 0) {
    return InvalidArgumentError("options: cron_interval must be positive");
  }
  if (alert_retry_limit < 1) {
    return InvalidArgumentError(
        "options: alert_retry_limit must be at least 1");
  }
  if (io_threads == 0)
    return InvalidArgumentError("options: io_threads must be at least 1");
  return branch_targets.Validate();
}

}  // namespace dtx
