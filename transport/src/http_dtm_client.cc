#include "dtx/transport/http_dtm_client.h"

#include "dtx/clock.h"
#include "dtx/limits.h"
#include "dtx/routing_branch_client.h"
#include "dtx/transport/dtm_http_json.h"
#include "dtx/transport/http_branch_client.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <ctime>
#include <optional>
#include <string_view>
#include <utility>

namespace dtx {
namespace {

using nlohmann::json;

// Whether `text` is well-formed UTF-8 (what a JSON string can carry).
bool IsUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= text.size()) return false;  // cut short
    for (std::size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
        (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

Status CheckText(const std::string& what, std::string_view text) {
  if (IsUtf8(text)) return Status::Ok();
  return InvalidArgumentError(
      what +
      " is not UTF-8 text: dtm's HTTP API carries payloads as JSON strings "
      "(send a JSON request, or use GrpcDtmClient for binary payloads)");
}

Status CheckPayloads(const TransRequest& r) {
  for (std::size_t i = 0; i < r.payloads.size(); ++i) {
    DTX_RETURN_IF_ERROR(CheckText(
        "http dtm client: payload " + std::to_string(i), r.payloads[i]));
  }
  return Status::Ok();
}

Result<std::string> DecodeBase64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) return InternalError("bin_data is not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// "2026-12-02T10:11:12.345+01:00", "...Z", with up to nine fraction digits
// (Go writes nanoseconds).
Result<TimePoint> ParseTime(const std::string& key, const std::string& text) {
  auto bad = [&] {
    return InternalError("query: " + key + " '" + text +
                         "' is not an RFC 3339 time");
  };
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return bad();
  const int64_t seconds = static_cast<int64_t>(timegm(&tm));
  // A year past TimePoint's range would overflow (clock.h, kMaxUnixMillis).
  if (seconds > kMaxUnixMillis / 1000 || seconds < -kMaxUnixMillis / 1000) {
    return bad();
  }
  int64_t ms = seconds * 1000;
  std::string_view tail = rest;
  if (!tail.empty() && tail[0] == '.') {
    std::size_t n = 1;
    int64_t frac = 0;
    int digits = 0;
    while (n < tail.size() && tail[n] >= '0' && tail[n] <= '9') {
      if (digits < 3) {
        frac = frac * 10 + (tail[n] - '0');
        ++digits;
      }
      ++n;
    }
    while (digits < 3) {
      frac *= 10;
      ++digits;
    }
    ms += frac;
    tail.remove_prefix(n);
  }
  if (tail == "Z") return FromUnixMillis(ms);
  if (tail.size() != 6 || (tail[0] != '+' && tail[0] != '-') ||
      tail[3] != ':') {
    return bad();
  }
  auto two = [&](std::size_t at) -> int {
    const char a = tail[at], b = tail[at + 1];
    if (a < '0' || a > '9' || b < '0' || b > '9') return -1;
    return (a - '0') * 10 + (b - '0');
  };
  const int h = two(1), m = two(4);
  if (h < 0 || m < 0) return bad();
  const int64_t offset = (h * 60 + m) * 60 * 1000;
  ms += tail[0] == '+' ? -offset : offset;
  return FromUnixMillis(ms);
}

// Reads the members of one record; absent and null members keep their
// defaults (dtm omits empty ones).
class Record {
 public:
  Record(const json& j, std::string what) : j_(j), what_(std::move(what)) {}

  const json* Find(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  Status String(const char* key, std::string* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return Bad(key);
    *out = v->get<std::string>();
    return Status::Ok();
  }
  Status Int(const char* key, int64_t* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number_integer()) return Bad(key);
    *out = v->get<int64_t>();
    return Status::Ok();
  }
  Status Time(const char* key, TimePoint* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return Bad(key);
    DTX_ASSIGN_OR_RETURN(*out, ParseTime(what_ + "." + key, *v));
    return Status::Ok();
  }
  Status Time(const char* key, std::optional<TimePoint>* out) const {
    if (Find(key) == nullptr) return Status::Ok();
    TimePoint t;
    DTX_RETURN_IF_ERROR(Time(key, &t));
    *out = t;
    return Status::Ok();
  }
  template <typename T, typename Parse>
  Status Enum(const char* key, T* out, Parse parse) const {
    std::string text;
    DTX_RETURN_IF_ERROR(String(key, &text));
    if (text.empty()) return Status::Ok();
    auto parsed = parse(text);
    if (!parsed.ok()) {
      return InternalError("query: " + what_ + "." + key + " '" + text +
                           "' is not one of dtm's values");
    }
    *out = *parsed;
    return Status::Ok();
  }

 private:
  Status Bad(const char* key) const {
    return InternalError("query: " + what_ + "." + key + " has the wrong type");
  }
  const json& j_;
  const std::string what_;
};

Result<GlobalTrans> DecodeTrans(const json& j) {
  if (!j.is_object())
    return InternalError("query: transaction is not an object");
  const Record r(j, "transaction");
  GlobalTrans t;
  DTX_RETURN_IF_ERROR(r.Int("id", &t.id));
  DTX_RETURN_IF_ERROR(r.String("gid", &t.gid));
  DTX_RETURN_IF_ERROR(r.Enum("trans_type", &t.trans_type, ParseTransType));
  DTX_RETURN_IF_ERROR(r.Enum("status", &t.status, ParseTransStatus));
  DTX_RETURN_IF_ERROR(r.String("protocol", &t.protocol));
  DTX_RETURN_IF_ERROR(r.String("query_prepared", &t.query_prepared));
  DTX_RETURN_IF_ERROR(r.String("options", &t.options));
  DTX_RETURN_IF_ERROR(r.String("custom_data", &t.custom_data));
  DTX_RETURN_IF_ERROR(r.String("ext_data", &t.ext_data));
  DTX_RETURN_IF_ERROR(r.String("result", &t.result));
  DTX_RETURN_IF_ERROR(r.String("rollback_reason", &t.rollback_reason));
  DTX_RETURN_IF_ERROR(r.Time("create_time", &t.create_time));
  DTX_RETURN_IF_ERROR(r.Time("update_time", &t.update_time));
  DTX_RETURN_IF_ERROR(r.Time("finish_time", &t.finish_time));
  DTX_RETURN_IF_ERROR(r.Time("rollback_time", &t.rollback_time));
  int64_t interval = 0;
  DTX_RETURN_IF_ERROR(r.Int("next_cron_interval", &interval));
  t.next_cron_interval = std::chrono::seconds(interval);
  DTX_RETURN_IF_ERROR(r.Time("next_cron_time", &t.next_cron_time));
  DTX_RETURN_IF_ERROR(r.String("owner", &t.owner));
  DTX_RETURN_IF_ERROR(r.Int("retry_count", &t.retry_count));
  return t;
}

Result<Branch> DecodeBranch(const json& j, std::size_t i) {
  const std::string what = "branches[" + std::to_string(i) + "]";
  if (!j.is_object())
    return InternalError("query: " + what + " is not an object");
  const Record r(j, what);
  Branch b;
  DTX_RETURN_IF_ERROR(r.Int("id", &b.id));
  DTX_RETURN_IF_ERROR(r.String("gid", &b.gid));
  DTX_RETURN_IF_ERROR(r.String("url", &b.url));
  std::string data;
  DTX_RETURN_IF_ERROR(r.String("bin_data", &data));
  DTX_ASSIGN_OR_RETURN(b.bin_data, DecodeBase64(data));
  DTX_RETURN_IF_ERROR(r.String("branch_id", &b.branch_id));
  DTX_RETURN_IF_ERROR(r.Enum("op", &b.op, ParseBranchOp));
  DTX_RETURN_IF_ERROR(r.Enum("status", &b.status, ParseBranchStatus));
  DTX_RETURN_IF_ERROR(r.Time("create_time", &b.create_time));
  DTX_RETURN_IF_ERROR(r.Time("update_time", &b.update_time));
  DTX_RETURN_IF_ERROR(r.Time("finish_time", &b.finish_time));
  DTX_RETURN_IF_ERROR(r.Time("rollback_time", &b.rollback_time));
  DTX_RETURN_IF_ERROR(r.Int("attempts", &b.attempts));
  DTX_RETURN_IF_ERROR(r.Time("last_try_time", &b.last_try_time));
  DTX_RETURN_IF_ERROR(r.String("last_error", &b.last_error));
  return b;
}

}  // namespace

Result<TransWithBranches> DecodeDtmQueryJson(std::string_view body) {
  DTX_RETURN_IF_ERROR(ValidateJsonDepth("query", body));
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InternalError("query: the answer is not a JSON object");
  }
  auto t = j.find("transaction");
  if (t == j.end() || t->is_null()) {
    return NotFoundError("query: no transaction with this gid");
  }
  TransWithBranches out;
  DTX_ASSIGN_OR_RETURN(out.trans, DecodeTrans(*t));
  auto branches = j.find("branches");
  if (branches != j.end() && !branches->is_null()) {
    if (!branches->is_array()) {
      return InternalError("query: branches is not an array");
    }
    for (std::size_t i = 0; i < branches->size(); ++i) {
      DTX_ASSIGN_OR_RETURN(Branch b, DecodeBranch((*branches)[i], i));
      out.branches.push_back(std::move(b));
    }
  }
  return out;
}

struct HttpDtmClient::Impl {
  std::string address;  // the base URL, no trailing "/"
  std::chrono::milliseconds timeout{0};
  std::unique_ptr<HttpClient> http;
  std::shared_ptr<BranchClient> branch_client;

  // Sends one request; `answer` gets the status and body (an HTTP answer of
  // any status), or the transport's error.
  void Send(std::string method, const std::string& path, std::string body,
            std::function<void(Result<HttpClientResponse>)> answer) const {
    HttpClientRequest req;
    req.method = std::move(method);
    req.url = address + path;
    req.body = std::move(body);
    if (!req.body.empty())
      req.headers.emplace_back("Content-Type", "application/json");
    req.timeout = timeout;
    // No executor: what runs there is short (a small parse, the caller's
    // `done`, which DtmApi requires to be short).
    http->Send(std::move(req), nullptr,
               [url = address + path,
                answer = std::move(answer)](Result<HttpClientResponse> r) {
                 if (!r.ok()) {
                   Status s = r.status();
                   if (s.code() == StatusCode::kCancelled) {
                     s = UnavailableError("http dtm client: shutting down (" +
                                          s.message() + ")");
                   }
                   return answer(s.WithPrefix("http dtm client: " + url));
                 }
                 answer(std::move(r));
               });
  }

  void Post(const char* route, std::string body, StatusCallback done) const {
    Send("POST", std::string("/") + route, std::move(body),
         [done = std::move(done)](Result<HttpClientResponse> r) {
           if (!r.ok()) return done(r.status());
           done(DtmStatusFromHttp(r->status, r->body));
         });
  }
};

Result<std::unique_ptr<HttpDtmClient>> HttpDtmClient::Create(
    HttpDtmClientOptions options) {
  auto url = ParseHttpUrl(options.address);
  if (!url.ok()) {
    return InvalidArgumentError(
        "http dtm client: address '" + options.address +
        "' is not an http:// or https:// URL (want dtmcli's form, "
        "http://host:36789/api/dtmsvr): " +
        url.status().message());
  }
  auto impl = std::make_unique<Impl>();
  impl->address = options.address;
  while (!impl->address.empty() && impl->address.back() == '/') {
    impl->address.pop_back();
  }
  if (url->target == "/") impl->address += "/api/dtmsvr";
  impl->timeout = options.timeout;
  if (options.branch_client) {
    impl->branch_client = std::move(options.branch_client);
  } else {
    // HTTP branches, with the same connection options (TLS rules included);
    // other URLs are refused, naming the missing gRPC client.
    HttpBranchClientOptions branch_options;
    branch_options.http = options.http;
    branch_options.default_timeout = options.branch_timeout;
    DTX_ASSIGN_OR_RETURN(auto http_branches,
                         HttpBranchClient::Create(std::move(branch_options)));
    impl->branch_client = std::make_shared<RoutingBranchClient>(
        nullptr, std::move(http_branches));
  }
  options.http.default_timeout = options.timeout;
  DTX_ASSIGN_OR_RETURN(impl->http, HttpClient::Create(std::move(options.http)));
  return std::unique_ptr<HttpDtmClient>(new HttpDtmClient(std::move(impl)));
}

HttpDtmClient::HttpDtmClient(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

HttpDtmClient::~HttpDtmClient() {
  // Fails what is in flight and waits for every callback.
  impl_->http->Shutdown();
}

void HttpDtmClient::NewGidAsync(ResultCallback<std::string> done) {
  impl_->Send(
      "GET", "/newGid", "",
      [done = std::move(done)](Result<HttpClientResponse> r) {
        if (!r.ok()) return done(r.status());
        Status s = DtmStatusFromHttp(r->status, r->body);
        if (!s.ok()) return done(s);
        const json j = json::parse(r->body, nullptr, false);
        if (!j.is_object() || !j.contains("gid") || !j["gid"].is_string() ||
            j["gid"].get<std::string>().empty()) {
          return done(
              InternalError("http dtm client: newGid answered no gid: " +
                            r->body.substr(0, 200)));
        }
        done(j["gid"].get<std::string>());
      });
}

namespace {
// DtmApi's empty protocol is gRPC's; dtm's HTTP API reads "" as "http".
TransRequest WithProtocol(TransRequest r) {
  if (r.protocol.empty()) r.protocol = "grpc";
  return r;
}
}  // namespace

void HttpDtmClient::PrepareAsync(TransRequest request, StatusCallback done) {
  Status s = CheckPayloads(request);
  if (!s.ok()) return done(s);
  impl_->Post("prepare", EncodeDtmTransJson(WithProtocol(std::move(request))),
              std::move(done));
}

void HttpDtmClient::SubmitAsync(TransRequest request, StatusCallback done) {
  Status s = CheckPayloads(request);
  if (!s.ok()) return done(s);
  impl_->Post("submit", EncodeDtmTransJson(WithProtocol(std::move(request))),
              std::move(done));
}

void HttpDtmClient::AbortAsync(TransRequest request, StatusCallback done) {
  Status s = CheckPayloads(request);
  if (!s.ok()) return done(s);
  impl_->Post("abort", EncodeDtmTransJson(WithProtocol(std::move(request))),
              std::move(done));
}

void HttpDtmClient::RegisterBranchAsync(BranchRegistration branch,
                                        StatusCallback done) {
  Status s =
      CheckText("http dtm client: the payload of branch " + branch.branch_id,
                branch.payload);
  if (!s.ok()) return done(s);
  // As for transactions: DtmApi's empty protocol is gRPC's.
  if (branch.protocol.empty()) branch.protocol = "grpc";
  impl_->Post("registerBranch", EncodeDtmBranchJson(branch), std::move(done));
}

void HttpDtmClient::PrepareWorkflowAsync(
    TransRequest request, ResultCallback<TransWithBranches> done) {
  impl_->Send("POST", "/prepareWorkflow",
              EncodeDtmTransJson(WithProtocol(std::move(request))),
              [done = std::move(done)](Result<HttpClientResponse> r) {
                if (!r.ok()) return done(r.status());
                if (r->status != 200) {
                  return done(DtmStatusFromHttp(r->status, r->body));
                }
                done(DecodeWorkflowProgressJson(r->body));
              });
}

void HttpDtmClient::QueryAsync(std::string gid,
                               ResultCallback<TransWithBranches> done) {
  impl_->Send("GET", "/query?gid=" + EncodeQueryComponent(gid), "",
              [done = std::move(done)](Result<HttpClientResponse> r) {
                if (!r.ok()) return done(r.status());
                if (r->status != 200) {
                  return done(DtmStatusFromHttp(r->status, r->body));
                }
                done(DecodeDtmQueryJson(r->body));
              });
}

BranchClient& HttpDtmClient::branch_client() { return *impl_->branch_client; }

std::string HttpDtmClient::address() const { return impl_->address; }

}  // namespace dtx
