#include "summary_cache.h"

#include <utility>

namespace dtx::internal {

SummaryCache::SummaryCache(const Clock& clock,
                           std::chrono::milliseconds max_age,
                           std::function<void()> start_refresh)
    : clock_(clock),
      max_age_(max_age),
      start_refresh_(std::move(start_refresh)) {}

SummaryCache::Values SummaryCache::Read() {
  const TimePoint now = clock_.Now();
  Values v;
  bool refresh = false;
  {
    MutexLock lock(&mu_);
    if (!refreshing_ && (!as_of_ || now - *as_of_ >= max_age_)) {
      refreshing_ = true;
      refresh = true;
    }
    v.unfinished = static_cast<double>(held_.unfinished);
    v.due = static_cast<double>(held_.due);
    if (held_.oldest_create_time && now > *held_.oldest_create_time) {
      v.oldest_age_seconds =
          std::chrono::duration<double>(now - *held_.oldest_create_time)
              .count();
    }
  }
  if (refresh) start_refresh_();
  return v;
}

void SummaryCache::Update(const Result<UnfinishedSummary>& summary,
                          TimePoint as_of) {
  MutexLock lock(&mu_);
  refreshing_ = false;
  as_of_ = as_of;
  if (summary.ok()) held_ = *summary;
}

}  // namespace dtx::internal
