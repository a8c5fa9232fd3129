#include "alert_tracker.h"

#include <algorithm>
#include <limits>

namespace dtx::internal {

AlertTracker::AlertTracker(int64_t limit, std::size_t max_transactions)
    : limit_(std::max<int64_t>(1, limit)),
      max_transactions_(std::max<std::size_t>(1, max_transactions)) {}

int64_t AlertTracker::ThresholdFor(int64_t limit, int64_t attempts) {
  if (limit < 1 || attempts < limit) return 0;
  int64_t threshold = limit;
  while (threshold <= std::numeric_limits<int64_t>::max() / 2 &&
         threshold * 2 <= attempts) {
    threshold *= 2;
  }
  return threshold;
}

int64_t AlertTracker::OnFailedCall(const std::string& gid, int64_t attempts) {
  const int64_t threshold = ThresholdFor(limit_, attempts);
  if (threshold == 0) return 0;
  MutexLock lock(&mu_);
  auto it = reported_.find(gid);
  if (it != reported_.end()) {
    if (it->second >= threshold) return 0;
    it->second = threshold;
    return threshold;
  }
  if (reported_.size() >= max_transactions_) reported_.erase(reported_.begin());
  reported_.emplace(gid, threshold);
  size_.store(reported_.size(), std::memory_order_relaxed);
  return threshold;
}

void AlertTracker::Forget(const std::string& gid) {
  if (size_.load(std::memory_order_relaxed) == 0) return;
  MutexLock lock(&mu_);
  reported_.erase(gid);
  size_.store(reported_.size(), std::memory_order_relaxed);
}

}  // namespace dtx::internal
