#include "admin_http.h"

#include "dtx/clock.h"
#include "dtx/internal/base64.h"
#include "dtx/limits.h"
#include "dtx/transport/bearer_token.h"
#include "dtx/transport/http_message.h"
#include "dtx/version.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

namespace dtx::server {
namespace {

using nlohmann::json;

constexpr TransStatus kStatuses[] = {
    TransStatus::kPrepared, TransStatus::kSubmitted, TransStatus::kAborting,
    TransStatus::kSucceed, TransStatus::kFailed};

// Text that is not UTF-8 (a rollback reason a client sent, say) is sent
// with U+FFFD in its place rather than failing the whole answer.
std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

HttpResponse Json(int status, const json& body) {
  return HttpResponse::Json(status, Dump(body));
}

// dtm's error body.
HttpResponse Message(int status, std::string_view message) {
  return Json(status, json{{"message", std::string(message)}});
}

// What a coordinator status is over HTTP: dtm's mapping (SUCCESS 200,
// FAILURE 409, ONGOING 425), and for what dtm answers 500 the code that
// says what happened.
HttpResponse FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return HttpResponse::Json(200, R"({"dtm_result":"SUCCESS"})");
    case StatusCode::kAborted:
      return Json(409,
                  json{{"dtm_result", "FAILURE"}, {"message", s.message()}});
    case StatusCode::kFailedPrecondition:
      return Json(425,
                  json{{"dtm_result", "ONGOING"}, {"message", s.message()}});
    case StatusCode::kInvalidArgument:
      return Message(400, s.message());
    case StatusCode::kNotFound:
      return Message(404, s.message());
    case StatusCode::kUnimplemented:
      return Message(501, s.message());
    case StatusCode::kUnavailable:
      return Message(503, s.message());
    case StatusCode::kDeadlineExceeded:
      return Message(504, s.message());
    default:
      return Message(500, s.message());
  }
}

json Time(const std::optional<TimePoint>& t) {
  return t ? json(Rfc3339(*t)) : json(nullptr);
}

// A transaction as dtm's TransGlobalStore shows it, every key present (null
// or "" when unset, where dtm omits the key), plus retry_count.
json TransJson(const GlobalTrans& t) {
  json j = json::object();
  j["id"] = t.id;
  j["create_time"] = Rfc3339(t.create_time);
  j["update_time"] = Rfc3339(t.update_time);
  j["gid"] = t.gid;
  j["trans_type"] = std::string(ToString(t.trans_type));
  j["status"] = std::string(ToString(t.status));
  j["query_prepared"] = t.query_prepared;
  j["protocol"] = t.protocol;
  j["finish_time"] = Time(t.finish_time);
  j["rollback_time"] = Time(t.rollback_time);
  j["options"] = t.options;
  j["custom_data"] = t.custom_data;
  j["next_cron_interval"] = t.next_cron_interval.count();
  // When it is tried next: nothing once it is finished.
  j["next_cron_time"] = IsFinished(t.status) || t.next_cron_time == TimePoint{}
                            ? json(nullptr)
                            : json(Rfc3339(t.next_cron_time));
  j["owner"] = t.owner;
  j["ext_data"] = t.ext_data;
  j["result"] = t.result;
  j["rollback_reason"] = t.rollback_reason;
  j["retry_count"] = t.retry_count;
  // dtm's record embeds the transaction's options (wait_result,
  // timeout_to_fail, retry_interval, branch_headers, ...), which dtx keeps
  // as JSON in dtm's keys; saga's `concurrent` is in its custom data.
  const json options = json::parse(t.options, nullptr, false);
  if (options.is_object()) {
    for (const auto& item : options.items()) {
      if (!j.contains(item.key())) j[item.key()] = item.value();
    }
  }
  const json custom = json::parse(t.custom_data, nullptr, false);
  bool concurrent = false;
  if (custom.is_object()) {
    auto it = custom.find("concurrent");
    concurrent = it != custom.end() && it->is_boolean() && it->get<bool>();
  }
  j["concurrent"] = concurrent;
  return j;
}

// A branch row as dtm's TransBranchStore shows it, plus dtx's retry state.
json BranchJson(const Branch& b) {
  json j = json::object();
  j["id"] = b.id;
  j["create_time"] = Rfc3339(b.create_time);
  j["update_time"] = Rfc3339(b.update_time);
  j["gid"] = b.gid;
  j["url"] = b.url;
  j["bin_data"] = internal::Base64Encode(b.bin_data);
  j["branch_id"] = b.branch_id;
  j["op"] = std::string(ToString(b.op));
  j["status"] = std::string(ToString(b.status));
  j["finish_time"] = Time(b.finish_time);
  j["rollback_time"] = Time(b.rollback_time);
  j["attempts"] = b.attempts;
  j["last_try_time"] = Time(b.last_try_time);
  j["last_error"] = b.last_error;
  return j;
}

// A query parameter; an empty value counts as absent, as in dtm (gin's
// c.Query).
std::optional<std::string> Param(const HttpRequest& req,
                                 std::string_view name) {
  auto v = req.QueryValue(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

Result<int64_t> NonNegative(std::string_view name, const std::string& text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [at, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || at != end || v < 0) {
    return InvalidArgumentError(std::string(name) + ": '" + text +
                                "' is not a non-negative integer");
  }
  return v;
}

// The query of GET /api/dtmsvr/all, and its exact gid when one is given.
struct AllQuery {
  ListQuery list;
  std::optional<std::string> gid;
};

Result<AllQuery> ParseAll(const HttpRequest& req) {
  AllQuery out;
  out.gid = Param(req, "gid");
  if (auto v = Param(req, "position")) {
    DTX_ASSIGN_OR_RETURN(out.list.cursor, NonNegative("position", *v));
  }
  if (auto v = Param(req, "limit")) {
    DTX_ASSIGN_OR_RETURN(int64_t limit, NonNegative("limit", *v));
    // 0 is the default page; more than a page's maximum is that maximum.
    out.list.limit =
        limit == 0
            ? kDefaultListLimit
            : static_cast<std::size_t>(std::min<int64_t>(limit, kMaxListLimit));
  }
  if (auto v = Param(req, "status")) {
    auto status = ParseTransStatus(*v);
    if (!status.ok()) {
      return InvalidArgumentError(
          "status: '" + *v +
          "' is not one of prepared, submitted, aborting, succeed, failed");
    }
    out.list.status = *status;
  }
  if (auto v = Param(req, "transType")) {
    auto type = ParseTransType(*v);
    if (!type.ok()) {
      return InvalidArgumentError("transType: '" + *v +
                                  "' is not one of saga, tcc, msg, xa, "
                                  "workflow");
    }
    out.list.trans_type = *type;
  }
  if (auto v = Param(req, "createTimeStart")) {
    DTX_ASSIGN_OR_RETURN(int64_t ms, NonNegative("createTimeStart", *v));
    DTX_RETURN_IF_ERROR(ValidateUnixMillis("createTimeStart", ms));
    out.list.created_from = FromUnixMillis(ms);
  }
  if (auto v = Param(req, "createTimeEnd")) {
    DTX_ASSIGN_OR_RETURN(int64_t ms, NonNegative("createTimeEnd", *v));
    DTX_RETURN_IF_ERROR(ValidateUnixMillis("createTimeEnd", ms));
    out.list.created_to = FromUnixMillis(ms);
  }
  if (auto v = Param(req, "gidPrefix")) {
    // A prefix no gid can have is a mistake worth saying so.
    Status valid = ValidateGid(*v);
    if (!valid.ok()) {
      return InvalidArgumentError("gidPrefix: " + valid.message());
    }
    out.list.gid_prefix = *v;
  }
  if (auto v = Param(req, "unfinished")) {
    if (*v == "true" || *v == "1") {
      out.list.unfinished_only = true;
    } else if (*v != "false" && *v != "0") {
      return InvalidArgumentError("unfinished: '" + *v +
                                  "' is not true, false, 1 or 0");
    }
  }
  return out;
}

// Whether the transaction found by an exact gid is on the page `q` asks for.
bool OnPage(const ListQuery& q, const GlobalTrans& t) {
  if (q.cursor > 0 && t.id >= q.cursor) return false;
  if (q.status && t.status != *q.status) return false;
  if (q.trans_type && t.trans_type != *q.trans_type) return false;
  if (q.created_from && t.create_time < *q.created_from) return false;
  if (q.created_to && t.create_time > *q.created_to) return false;
  if (t.gid.compare(0, q.gid_prefix.size(), q.gid_prefix) != 0) return false;
  return !(q.unfinished_only && IsFinished(t.status));
}

HttpResponse Page(const std::vector<GlobalTrans>& transactions,
                  int64_t next_cursor) {
  json list = json::array();
  for (const GlobalTrans& t : transactions) list.push_back(TransJson(t));
  return Json(200, json{{"transactions", std::move(list)},
                        {"next_position", next_cursor == 0
                                              ? std::string()
                                              : std::to_string(next_cursor)}});
}

// The gid of a {"gid":"..."} body.
Result<std::string> GidOf(std::string_view path, const std::string& body) {
  const std::string usage =
      std::string(path) + ": send a JSON object {\"gid\":\"...\"}";
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    return InvalidArgumentError(usage + "; the body is not JSON");
  }
  if (!j.is_object()) {
    return InvalidArgumentError(usage + "; the body is " +
                                std::string(j.type_name()));
  }
  auto it = j.find("gid");
  if (it == j.end() || !it->is_string()) {
    return InvalidArgumentError(usage + "; gid is missing or not a string");
  }
  std::string gid = it->get<std::string>();
  Status valid = ValidateGid(gid);
  if (!valid.ok()) return InvalidArgumentError("gid: " + valid.message());
  return gid;
}

// 401 with RFC 6750's challenge.
HttpResponse Unauthorized(const HttpRequest& req, BearerCheck check) {
  const bool missing = check == BearerCheck::kMissing;
  HttpResponse r =
      Message(401, missing ? req.method + " " + req.path +
                                 " needs the header \"Authorization: Bearer "
                                 "<token>\" (Admin.Token)"
                           : req.method + " " + req.path +
                                 ": the bearer token is not Admin.Token");
  r.headers.emplace_back("WWW-Authenticate",
                         missing
                             ? R"(Bearer realm="dtx")"
                             : R"(Bearer realm="dtx", error="invalid_token")");
  return r;
}

class AdminRoutes {
 public:
  AdminRoutes(Coordinator* coordinator, AdminHttpOptions options)
      : coordinator_(coordinator), options_(std::move(options)) {}

  void Version(const HttpRequest&, const HttpResponder& r) const {
    r.Respond(Json(200, json{{"version", DTX_VERSION_STRING}}));
  }

  void Query(const HttpRequest& req, const HttpResponder& r) const {
    auto gid = Param(req, "gid");
    if (!gid) {
      return r.Respond(Message(
          400,
          "query: the gid parameter is missing: /api/dtmsvr/query?gid=..."));
    }
    coordinator_->QueryAsync(*gid, [r](Result<TransWithBranches> found) {
      if (found.status().code() == StatusCode::kNotFound) {
        // dtm's answer for a gid it does not know.
        return r.Respond(Json(
            200, json{{"transaction", nullptr}, {"branches", json::array()}}));
      }
      if (!found.ok()) return r.Respond(FromStatus(found.status()));
      json branches = json::array();
      for (const Branch& b : found->branches) branches.push_back(BranchJson(b));
      r.Respond(Json(200, json{{"transaction", TransJson(found->trans)},
                               {"branches", std::move(branches)}}));
    });
  }

  void All(const HttpRequest& req, const HttpResponder& r) const {
    auto parsed = ParseAll(req);
    if (!parsed.ok()) return r.Respond(FromStatus(parsed.status()));
    AllQuery q = std::move(parsed).value();
    if (q.gid) {
      // dtm: a list of the one transaction, or none.
      coordinator_->QueryAsync(
          *q.gid, [r, list = q.list](Result<TransWithBranches> found) {
            std::vector<GlobalTrans> page;
            if (found.ok() && OnPage(list, found->trans)) {
              page.push_back(std::move(found->trans));
            } else if (!found.ok() &&
                       found.status().code() != StatusCode::kNotFound) {
              return r.Respond(FromStatus(found.status()));
            }
            r.Respond(Page(page, 0));
          });
      return;
    }
    coordinator_->ListAsync(q.list, [r](Result<ListPage> page) {
      if (!page.ok()) return r.Respond(FromStatus(page.status()));
      r.Respond(Page(page->transactions, page->next_cursor));
    });
  }

  void Stats(const HttpRequest&, const HttpResponder& r) const {
    coordinator_->StatsAsync([r](Result<TransStats> stats) {
      if (!stats.ok()) return r.Respond(FromStatus(stats.status()));
      json counts = json::object();
      for (TransStatus s : kStatuses) {
        counts[std::string(ToString(s))] = stats->counts[s];
      }
      r.Respond(Json(200, json{{"counts", std::move(counts)},
                               {"unfinished", stats->unfinished.unfinished},
                               {"due", stats->unfinished.due},
                               {"oldest_unfinished_create_time",
                                Time(stats->unfinished.oldest_create_time)}}));
    });
  }

  // The answer to a request that may not be served (403 while closed, 401
  // without the token), or nullopt. Checked before the body is even read.
  std::optional<HttpResponse> Refused(const HttpRequest& req) const {
    if (!options_.admin_token.empty()) {
      std::optional<std::string> authorization = req.Header("Authorization");
      std::optional<std::string_view> value;
      if (authorization) value = *authorization;
      const BearerCheck check = CheckBearer(value, options_.admin_token);
      if (check != BearerCheck::kOk) return Unauthorized(req, check);
      return std::nullopt;
    }
    if (options_.closed) {
      return Message(
          403, req.method + " " + req.path +
                   ": the admin API is closed: dtx-server listens beyond "
                   "loopback and no Admin.Token is set; set Admin.Token (and "
                   "send \"Authorization: Bearer <token>\"), or Admin.Open: "
                   "true to open it to everyone who reaches the port "
                   "(docs/security.md)");
    }
    return std::nullopt;
  }

  // POST {"gid":...}: `op` hands the gid to the coordinator.
  template <typename Op>
  void Mutate(const HttpRequest& req, const HttpResponder& r, Op op) const {
    auto gid = GidOf(req.path, req.body);
    if (!gid.ok()) return r.Respond(FromStatus(gid.status()));
    op(std::move(gid).value(), [r](Status s) { r.Respond(FromStatus(s)); });
  }

  void ForceStop(const HttpRequest& req, const HttpResponder& r) const {
    Mutate(req, r, [c = coordinator_](std::string gid, StatusCallback done) {
      c->ForceStopAsync(std::move(gid), std::move(done));
    });
  }

  // dtm's resetNextCronTime and dtx's retryNow are one operation here: the
  // coordinator runs the transaction now (Coordinator::RetryNow).
  void RetryNow(const HttpRequest& req, const HttpResponder& r) const {
    Mutate(req, r, [c = coordinator_](std::string gid, StatusCallback done) {
      c->RetryNowAsync(std::move(gid), std::move(done));
    });
  }

 private:
  Coordinator* const coordinator_;
  const AdminHttpOptions options_;
};

}  // namespace

std::string Rfc3339(TimePoint time) {
  const int64_t ms = ToUnixMillis(time);
  int64_t seconds = ms / 1000;
  int64_t millis = ms % 1000;
  if (millis < 0) {
    millis += 1000;
    --seconds;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm local{};
  if (localtime_r(&t, &local) == nullptr) gmtime_r(&t, &local);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &local);
  std::string out = text;
  if (millis != 0) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(millis));
    std::string f = frac;
    while (f.back() == '0') f.pop_back();  // as Go's RFC3339Nano
    out += f;
  }
  const long offset = local.tm_gmtoff;  // seconds east of UTC
  if (offset == 0) return out + "Z";
  // Zones are within a day of UTC.
  const int minutes = static_cast<int>(std::labs(offset) / 60 % (24 * 60));
  char zone[16];
  std::snprintf(zone, sizeof zone, "%c%02d:%02d", offset < 0 ? '-' : '+',
                minutes / 60, minutes % 60);
  return out + zone;
}

bool IsLoopbackHost(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Status AddAdminRoutes(HttpRouter& router, Coordinator* coordinator,
                      const AdminHttpOptions& options) {
  if (coordinator == nullptr) {
    return InvalidArgumentError("admin http: no coordinator");
  }
  auto routes = std::make_shared<const AdminRoutes>(coordinator, options);
  auto bind = [routes](auto method) {
    return [routes, method](HttpRequest req, HttpResponder r) {
      if (auto refused = routes->Refused(req)) {
        return r.Respond(std::move(*refused));
      }
      ((*routes).*method)(req, r);
    };
  };
  // The version is no secret; every other route is checked first.
  router.Handle("GET", "/api/dtmsvr/version",
                [routes](const HttpRequest& req, const HttpResponder& r) {
                  routes->Version(req, r);
                });
  router.Handle("GET", "/api/dtmsvr/query", bind(&AdminRoutes::Query));
  router.Handle("GET", "/api/dtmsvr/all", bind(&AdminRoutes::All));
  router.Handle("POST", "/api/dtmsvr/forceStop", bind(&AdminRoutes::ForceStop));
  router.Handle("POST", "/api/dtmsvr/resetNextCronTime",
                bind(&AdminRoutes::RetryNow));
  router.Handle("POST", "/api/dtx/retryNow", bind(&AdminRoutes::RetryNow));
  router.Handle("GET", "/api/dtx/stats", bind(&AdminRoutes::Stats));
  return Status::Ok();
}

}  // namespace dtx::server
