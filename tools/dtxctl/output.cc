#include "output.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <utility>

namespace dtx::dtxctl {

using nlohmann::json;

std::string LocalTime(TimePoint time, bool millis) {
  const auto since = time.time_since_epoch();
  auto secs = std::chrono::floor<std::chrono::seconds>(since);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(since - secs)
          .count();
  const std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (millis && ms != 0) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms));
    out += frac;
  }
  const long offset = tm.tm_gmtoff;
  if (offset == 0) return out + "Z";
  const long a = offset < 0 ? -offset : offset;
  char zone[48];
  std::snprintf(zone, sizeof zone, "%c%02ld:%02ld", offset < 0 ? '-' : '+',
                a / 3600, (a % 3600) / 60);
  return out + zone;
}

std::string LocalTime(const std::optional<TimePoint>& time) {
  return time ? LocalTime(*time) : "-";
}

std::string Age(std::chrono::system_clock::duration d) {
  long s = static_cast<long>(
      std::chrono::duration_cast<std::chrono::seconds>(d).count());
  if (s < 0) s = 0;
  char buf[64];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%lds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ldd%02ldh", s / 86400, (s % 86400) / 3600);
  }
  return buf;
}

Table::Table(std::vector<std::string> header) {
  rows_.push_back(std::move(header));
}

void Table::Add(std::vector<std::string> row) {
  rows_.push_back(std::move(row));
}

void Table::Print(std::ostream& out) const {
  std::vector<std::size_t> width;
  for (const auto& row : rows_) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << '\n';
  }
}

namespace {

json Time(const std::optional<TimePoint>& t) {
  return t ? json(LocalTime(*t, /*millis=*/true)) : json(nullptr);
}

}  // namespace

std::optional<TimePoint> NextRetry(const GlobalTrans& t) {
  if (IsFinished(t.status) || t.next_cron_time == TimePoint{})
    return std::nullopt;
  return t.next_cron_time;
}

json TransJson(const GlobalTrans& t) {
  json j = json::object();
  j["gid"] = t.gid;
  j["trans_type"] = std::string(ToString(t.trans_type));
  j["status"] = std::string(ToString(t.status));
  j["protocol"] = t.protocol;
  j["create_time"] = LocalTime(t.create_time, true);
  j["update_time"] = LocalTime(t.update_time, true);
  j["finish_time"] = Time(t.finish_time);
  j["rollback_time"] = Time(t.rollback_time);
  j["next_cron_interval"] = t.next_cron_interval.count();
  j["next_cron_time"] = Time(NextRetry(t));
  j["owner"] = t.owner;
  j["query_prepared"] = t.query_prepared;
  j["result"] = t.result;
  j["rollback_reason"] = t.rollback_reason;
  j["retry_count"] = t.retry_count;
  return j;
}

json BranchJson(const Branch& b) {
  json j = json::object();
  j["gid"] = b.gid;
  j["branch_id"] = b.branch_id;
  j["op"] = std::string(ToString(b.op));
  j["url"] = b.url;
  j["status"] = std::string(ToString(b.status));
  j["create_time"] = LocalTime(b.create_time, true);
  j["update_time"] = LocalTime(b.update_time, true);
  j["finish_time"] = Time(b.finish_time);
  j["rollback_time"] = Time(b.rollback_time);
  j["attempts"] = b.attempts;
  j["last_try_time"] = Time(b.last_try_time);
  j["last_error"] = b.last_error;
  return j;
}

json StatsJson(const TransStats& stats, TimePoint now) {
  static constexpr TransStatus kStatuses[] = {
      TransStatus::kPrepared, TransStatus::kSubmitted, TransStatus::kAborting,
      TransStatus::kSucceed, TransStatus::kFailed};
  json counts = json::object();
  for (TransStatus s : kStatuses)
    counts[std::string(ToString(s))] = stats.counts[s];
  const auto& oldest = stats.unfinished.oldest_create_time;
  return json{{"counts", std::move(counts)},
              {"unfinished", stats.unfinished.unfinished},
              {"due", stats.unfinished.due},
              {"oldest_unfinished_create_time", Time(oldest)},
              {"oldest_unfinished_age_seconds",
               oldest ? json(std::chrono::duration_cast<std::chrono::seconds>(
                                 now - *oldest)
                                 .count())
                      : json(nullptr)}};
}

}  // namespace dtx::dtxctl
