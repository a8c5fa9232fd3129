// SummaryCache: the journal's count of unfinished transactions
// (Journal::Summarize) for the gauges that report it, kept so that a scrape
// never queries the journal itself. Reading a stale value (older than
// `max_age`) starts one refresh through `start_refresh`, which runs the query
// elsewhere (the coordinator's read pool, never an io thread) and hands the
// result to Update; the read returns the value held until then. So the
// journal is asked at most once per `max_age` however often the gauges are
// read, and a value is at most `max_age` plus one scrape interval old.
// Nothing is queried while nobody reads.
//
// Thread safety: thread-safe. `start_refresh` runs on the reading thread,
// with no lock held; it must not block.

#ifndef DTX_LIB_SUMMARY_CACHE_H_
#define DTX_LIB_SUMMARY_CACHE_H_

#include "dtx/clock.h"
#include "dtx/internal/mutex.h"
#include "dtx/journal.h"
#include "dtx/result.h"

#include <chrono>
#include <functional>
#include <optional>

namespace dtx::internal {

class SummaryCache {
 public:
  // `clock` is borrowed and must outlive the cache.
  // REQUIRES: start_refresh is callable.
  SummaryCache(const Clock& clock, std::chrono::milliseconds max_age,
               std::function<void()> start_refresh);

  struct Values {
    double unfinished = 0;
    double due = 0;
    // Seconds since the oldest unfinished transaction was created, as of
    // now (the creation time is the cached part); 0 when there is none.
    double oldest_age_seconds = 0;
  };
  // The values held; starts a refresh when they are older than max_age and
  // none is under way.
  Values Read() DTX_EXCLUDES(mu_);

  // A refresh's result, taken at `as_of`. An error keeps the values held
  // (and waits max_age before trying again).
  void Update(const Result<UnfinishedSummary>& summary, TimePoint as_of)
      DTX_EXCLUDES(mu_);

 private:
  const Clock& clock_;
  const std::chrono::milliseconds max_age_;
  const std::function<void()> start_refresh_;
  Mutex mu_;
  UnfinishedSummary held_ DTX_GUARDED_BY(mu_);
  std::optional<TimePoint> as_of_ DTX_GUARDED_BY(mu_);  // unset: never read
  bool refreshing_ DTX_GUARDED_BY(mu_) = false;
};

}  // namespace dtx::internal

#endif  // DTX_LIB_SUMMARY_CACHE_H_
