#include "dtx/transport/http_router.h"

#include <chrono>
#include <memory>
#include <utility>

namespace dtx {

HttpRouter& HttpRouter::Handle(std::string_view method, std::string_view path,
                               HttpHandler handler) {
  return Add(false, method, path, std::move(handler));
}

HttpRouter& HttpRouter::HandlePrefix(std::string_view method,
                                     std::string_view prefix,
                                     HttpHandler handler) {
  return Add(true, method, prefix, std::move(handler));
}

HttpRouter& HttpRouter::Add(bool prefix, std::string_view method,
                            std::string_view path, HttpHandler handler) {
  if (!error_.ok()) return *this;
  const std::string route = std::string(method) + " " + std::string(path) +
                            (prefix ? " (prefix)" : "");
  if (method.empty()) {
    error_ = InvalidArgumentError("http router: " + route + ": no method");
  } else if (path.empty() || path.front() != '/') {
    error_ = InvalidArgumentError("http router: " + route +
                                  ": the path must start with '/'");
  } else if (!handler) {
    error_ = InvalidArgumentError("http router: " + route + ": no handler");
  } else {
    auto& paths = prefix ? table_.prefixes : table_.exact;
    Methods& methods = paths[std::string(path)].methods;
    if (!methods.emplace(std::string(method), std::move(handler)).second) {
      error_ = InvalidArgumentError("http router: " + route +
                                    " is registered twice");
    }
  }
  return *this;
}

std::string HttpRouter::ApiName(std::string_view path, bool prefix) {
  if (prefix) return std::string(path);
  std::string api(path.substr(path.rfind('/') + 1));
  for (char& c : api) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return api;
}

Result<HttpHandler> HttpRouter::Build() const {
  if (!error_.ok()) return error_;
  auto built = std::make_shared<Table>(table_);
  if (metrics_ != nullptr) {
    for (auto& [path, route] : built->exact) {
      route.api = metrics_->ForApi("http", ApiName(path, false));
    }
    for (auto& [prefix, route] : built->prefixes) {
      route.api = metrics_->ForApi("http", ApiName(prefix, true));
    }
    built->other = metrics_->ForApi("http", "other");
  }
  std::shared_ptr<const Table> table = std::move(built);
  return HttpHandler([table](HttpRequest request, HttpResponder responder) {
    Dispatch(*table, std::move(request), std::move(responder));
  });
}

void HttpRouter::Dispatch(const Table& table, HttpRequest request,
                          HttpResponder responder) {
  const Route* route = nullptr;
  if (auto it = table.exact.find(request.path); it != table.exact.end()) {
    route = &it->second;
  } else {
    // The longest matching prefix. Prefixes are few (static files, the
    // console), so a linear walk is enough.
    std::size_t best = 0;
    for (const auto& [prefix, r] : table.prefixes) {
      if (prefix.size() > best &&
          request.path.compare(0, prefix.size(), prefix) == 0) {
        best = prefix.size();
        route = &r;
      }
    }
  }
  if (const ServerMetrics::Api* api = route ? route->api : table.other) {
    // Counted when answered, however and wherever the handler answers (a
    // responder dropped unanswered answers 503: a failure).
    responder = HttpResponder(
        [inner = std::move(responder), api,
         arrived = std::chrono::steady_clock::now()](HttpResponse r) {
          api->Record(r.status >= 200 && r.status < 400,
                      std::chrono::steady_clock::now() - arrived);
          inner.Respond(std::move(r));
        });
  }
  const Methods* methods = route != nullptr ? &route->methods : nullptr;
  if (methods == nullptr) {
    responder.Respond(HttpResponse::Error(
        404, "http: no route for " + request.method + " " + request.path));
    return;
  }
  auto handler = methods->find(request.method);
  if (handler == methods->end()) handler = methods->find(kAnyMethod);
  if (handler == methods->end()) {
    std::string allow;
    for (const auto& [method, unused] : *methods) {
      if (!allow.empty()) allow += ", ";
      allow += method;
    }
    HttpResponse r = HttpResponse::Error(
        405, "http: " + request.path + " does not take " + request.method +
                 " (it takes " + allow + ")");
    r.headers.emplace_back("Allow", allow);
    responder.Respond(std::move(r));
    return;
  }
  handler->second(std::move(request), std::move(responder));
}

}  // namespace dtx
