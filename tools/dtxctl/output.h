// dtxctl's output: times, ages, aligned tables, and the JSON of transactions
// and branches (dtm's keys, as dtx-server's admin HTTP API shows them).

#ifndef DTX_TOOLS_DTXCTL_OUTPUT_H_
#define DTX_TOOLS_DTXCTL_OUTPUT_H_

#include "dtx/journal.h"
#include "dtx/model.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace dtx::dtxctl {

// RFC 3339 in the local time zone, seconds precision:
// "2026-12-02T10:11:12+01:00" ("Z" at offset 0); with `millis`, milliseconds
// when not zero ("2026-12-02T10:11:12.345+01:00"), as dtx-server's JSON.
std::string LocalTime(TimePoint time, bool millis = false);
// "-" when unset.
std::string LocalTime(const std::optional<TimePoint>& time);
// A duration as an operator reads it: 45s, 3m12s, 2h05m, 3d04h; negative
// durations are shown as 0s.
std::string Age(std::chrono::system_clock::duration d);

// Left-aligned columns separated by two spaces; the header row first.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void Add(std::vector<std::string> row);
  void Print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

nlohmann::json TransJson(const GlobalTrans& t);
nlohmann::json BranchJson(const Branch& b);
nlohmann::json StatsJson(const TransStats& stats, TimePoint now);

// The next retry of an unfinished transaction; unset once finished.
std::optional<TimePoint> NextRetry(const GlobalTrans& t);

}  // namespace dtx::dtxctl

#endif  // DTX_TOOLS_DTXCTL_OUTPUT_H_
