// AlertTracker: which failed branch calls become alerts (dtm's
// AlertRetryLimit, docs/operations.md#alerts). A transaction is reported
// once per threshold: when a call of one of its branches fails and that
// branch has been called at least `limit` times, then again at 2 * limit
// calls, 4 * limit, and so on, however many of its branches fail and however
// many lives (stays in memory) it takes. dtm alerts at every failed retry past
// the limit, whose back-off doubles the time between them; dtx's back-off is
// capped (RetryPolicy::max_interval), so doubling the threshold keeps the
// number of alerts of a stuck transaction logarithmic instead.
//
// The memory is this process's: a restart forgets it, and the first failed
// call past the limit after it alerts once more. A transaction leaves it when
// it finishes here (Forget); at most `max_transactions` are remembered, and
// past that an arbitrary one is forgotten (it may alert once more).
//
// Thread safety: thread-safe. Calls below the limit, and Forget while nothing
// is remembered, take no lock.

#ifndef DTX_LIB_ALERT_TRACKER_H_
#define DTX_LIB_ALERT_TRACKER_H_

#include "dtx/internal/mutex.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace dtx::internal {

class AlertTracker {
 public:
  static constexpr std::size_t kMaxTransactions = 100000;

  // REQUIRES: limit >= 1, max_transactions >= 1.
  explicit AlertTracker(int64_t limit,
                        std::size_t max_transactions = kMaxTransactions);

  // The threshold that `attempts` calls of a branch have reached: the largest
  // limit * 2^k <= attempts, or 0 below the limit.
  static int64_t ThresholdFor(int64_t limit, int64_t attempts);

  // A call of a branch of `gid` failed, and the branch has now been called
  // `attempts` times. Returns the threshold to alert for, or 0 when there is
  // nothing to report (below the limit, or `gid` was reported for that
  // threshold or a higher one already).
  int64_t OnFailedCall(const std::string& gid, int64_t attempts)
      DTX_EXCLUDES(mu_);

  // `gid` finished: forget it.
  void Forget(const std::string& gid) DTX_EXCLUDES(mu_);

  // Transactions remembered.
  std::size_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  const int64_t limit_;
  const std::size_t max_transactions_;
  Mutex mu_;
  // The highest threshold reported, by gid.
  std::unordered_map<std::string, int64_t> reported_ DTX_GUARDED_BY(mu_);
  std::atomic<std::size_t> size_{0};  // reported_.size(), read without mu_
};

}  // namespace dtx::internal

#endif  // DTX_LIB_ALERT_TRACKER_H_
