// HttpRouter: maps (method, path) to an HttpHandler, for HttpServer.
//
//   dtx::HttpRouter router;
//   router.Handle(dtx::HttpRouter::kAnyMethod, "/api/ping",
//                 [](dtx::HttpRequest, dtx::HttpResponder r) {
//                   r.Respond(dtx::HttpResponse::Json(200,
//                   R"({"msg":"pong"})"));
//                 });
//   router.Handle("GET", "/api/dtmsvr/query", Query);
//   router.HandlePrefix("GET", "/assets/", StaticFiles);
//   DTX_ASSIGN_OR_RETURN(dtx::HttpHandler handler, router.Build());
//   DTX_ASSIGN_OR_RETURN(auto server, dtx::HttpServer::Start(options,
//   handler));
//
// Matching: an exact path first, else the longest registered prefix that the
// path starts with. A path that matches nothing is answered 404; a path that
// matches with no route for the request's method is answered 405 with an
// Allow header listing the methods it has. Error bodies are JSON,
// {"error":"..."}. Methods are compared exactly ("GET", not "get"); HEAD is
// not implied by GET.
//
// Registration errors (a path not starting with "/", a second handler for the
// same method and path, an empty handler) are kept and returned by Build, so
// that a table of routes reads as a list of calls.
//
// Metrics (set_metrics): every request the built handler dispatches is
// counted and timed, from dispatch to answer, in dtm_server_process_total
// {type="http",api,status} and dtm_server_response_duration{type="http",api}
// (status "fail" for an answer of 400 and above). `api` is the matched
// route's, fixed when Build runs: an exact path's last segment in lower case
// (dtm's rule: "/api/dtmsvr/forceStop" is "forcestop"), a prefix route's
// prefix as registered ("/assets/"), and "other" for a path that matches no
// route, so that requests cannot create series.
//
// Thread safety: thread-compatible while routes are added; the handler Build
// returns is thread-safe and independent of the router (it holds a copy of
// the table).

#ifndef DTX_TRANSPORT_HTTP_ROUTER_H_
#define DTX_TRANSPORT_HTTP_ROUTER_H_

#include "dtx/result.h"
#include "dtx/server_metrics.h"
#include "dtx/status.h"
#include "dtx/transport/http_export.h"
#include "dtx/transport/http_message.h"

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace dtx {

class DTX_HTTP_EXPORT HttpRouter {
 public:
  // Matches every method (dtm's "ANY /api/ping").
  static constexpr std::string_view kAnyMethod = "*";

  // `handler` answers `method` on exactly `path` ("/api/dtmsvr/submit").
  HttpRouter& Handle(std::string_view method, std::string_view path,
                     HttpHandler handler);
  // `handler` answers `method` on every path that starts with `prefix`
  // ("/admin/" serves "/admin/" and "/admin/x/y"), unless an exact route or
  // a longer prefix matches.
  HttpRouter& HandlePrefix(std::string_view method, std::string_view prefix,
                           HttpHandler handler);

  // Counts and times the requests of the handlers built from now on in
  // `metrics` (borrowed; must outlive them). Null: none (the default).
  HttpRouter& set_metrics(ServerMetrics* metrics) {
    metrics_ = metrics;
    return *this;
  }

  // The api label of `path` (see above), e.g. for tests and documents.
  static std::string ApiName(std::string_view path, bool prefix);

  // The handler that dispatches to the routes added so far; the first
  // registration error (kInvalidArgument, naming the route) otherwise.
  Result<HttpHandler> Build() const;

 private:
  // Handlers by method, for one path or prefix.
  using Methods = std::map<std::string, HttpHandler, std::less<>>;
  struct Route {
    Methods methods;
    const ServerMetrics::Api* api = nullptr;  // null without metrics
  };
  struct Table {
    std::map<std::string, Route, std::less<>> exact;
    std::map<std::string, Route, std::less<>> prefixes;
    const ServerMetrics::Api* other = nullptr;  // no route matched
  };
  HttpRouter& Add(bool prefix, std::string_view method, std::string_view path,
                  HttpHandler handler);
  static void Dispatch(const Table& table, HttpRequest request,
                       HttpResponder responder);

  Table table_;
  Status error_;
  ServerMetrics* metrics_ = nullptr;
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_HTTP_ROUTER_H_
