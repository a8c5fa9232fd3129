#include "dtx/transport/http_message.h"

#include "dtx/internal/ascii.h"

#include <nlohmann/json.hpp>

#include <atomic>

namespace dtx {

bool HttpNamesEqual(std::string_view a, std::string_view b) {
  return internal::EqualsIgnoreCase(a, b);
}
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> HttpRequest::QueryValue(
    std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::optional<std::string> HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (HttpNamesEqual(key, name)) return value;
  }
  return std::nullopt;
}

HttpResponse HttpResponse::Json(int status, std::string json) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(json);
  return r;
}

HttpResponse HttpResponse::Error(int status, std::string_view message) {
  // `replace`: a message quoting a client's bytes may not be UTF-8; the
  // default handler would throw.
  nlohmann::json body = {{"error", std::string(message)}};
  return Json(status, body.dump(-1, ' ', false,
                                nlohmann::json::error_handler_t::replace));
}

HttpResponse HttpResponse::Dropped() {
  return Error(503, "http: the request was dropped before it was answered");
}

// The one answer shared by a responder's copies. Destroyed with the last
// copy; answers Dropped() then if nothing answered before.
struct HttpResponder::State {
  explicit State(std::function<void(HttpResponse)> d) : deliver(std::move(d)) {}
  ~State() {
    if (!answered.exchange(true)) deliver(HttpResponse::Dropped());
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  std::atomic<bool> answered{false};
  const std::function<void(HttpResponse)> deliver;
};

HttpResponder::HttpResponder(std::function<void(HttpResponse)> deliver)
    : state_(std::make_shared<State>(std::move(deliver))) {}

void HttpResponder::Respond(HttpResponse response) const {
  if (state_ == nullptr || state_->answered.exchange(true)) return;
  state_->deliver(std::move(response));
}

bool HttpResponder::responded() const {
  return state_ != nullptr && state_->answered.load();
}

Result<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      const int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
      const int lo = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return InvalidArgumentError("http: malformed percent-escape '" +
                                    std::string(text.substr(i, 3)) + "'");
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<HttpPairs> ParseQueryString(std::string_view query) {
  HttpPairs pairs;
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view piece = query.substr(start, end - start);
    start = end + 1;
    if (piece.empty()) continue;
    const std::size_t eq = piece.find('=');
    const std::string_view raw_name = piece.substr(0, eq);
    const std::string_view raw_value = eq == std::string_view::npos
                                           ? std::string_view()
                                           : piece.substr(eq + 1);
    auto name = PercentDecode(raw_name, true);
    if (!name.ok()) {
      return InvalidArgumentError(name.status().message() +
                                  " in the query string");
    }
    auto value = PercentDecode(raw_value, true);
    if (!value.ok()) {
      return InvalidArgumentError(value.status().message() +
                                  " in query parameter '" + *name + "'");
    }
    pairs.emplace_back(std::move(name).value(), std::move(value).value());
  }
  return pairs;
}

Status ParseRequestTarget(std::string_view target, HttpRequest* request) {
  const std::size_t question = target.find('?');
  const std::string_view raw_path = target.substr(0, question);
  if (raw_path.empty() || raw_path.front() != '/') {
    return InvalidArgumentError(
        "http: the request target must be a path starting with '/'");
  }
  auto path = PercentDecode(raw_path, false);
  if (!path.ok()) {
    return InvalidArgumentError(path.status().message() +
                                " in the request path");
  }
  request->path = std::move(path).value();
  request->query.clear();
  if (question != std::string_view::npos) {
    DTX_ASSIGN_OR_RETURN(request->query,
                         ParseQueryString(target.substr(question + 1)));
  }
  return Status::Ok();
}

std::string EncodeQueryComponent(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                            c == '_' || c == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0x0f]);
    }
  }
  return out;
}

}  // namespace dtx
