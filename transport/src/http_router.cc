#include "dtx/transport/http_router.h"

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
    Methods& methods = paths[std::string(path)];
    if (!methods.emplace(std::string(method), std::move(handler)).second) {
      error_ = InvalidArgumentError("http router: " + route +
                                    " is registered twice");
    }
  }
  return *this;
}

Result<HttpHandler> HttpRouter::Build() const {
  if (!error_.ok()) return error_;
  auto table = std::make_shared<const Table>(table_);
  return HttpHandler([table](HttpRequest request, HttpResponder responder) {
    Dispatch(*table, std::move(request), std::move(responder));
  });
}

void HttpRouter::Dispatch(const Table& table, HttpRequest request,
                          HttpResponder responder) {
  const Methods* methods = nullptr;
  if (auto it = table.exact.find(request.path); it != table.exact.end()) {
    methods = &it->second;
  } else {
    // The longest matching prefix. Prefixes are few (static files, the
    // console), so a linear walk is enough.
    std::size_t best = 0;
    for (const auto& [prefix, m] : table.prefixes) {
      if (prefix.size() > best &&
          request.path.compare(0, prefix.size(), prefix) == 0) {
        best = prefix.size();
        methods = &m;
      }
    }
  }
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
