// The request and response of dtx's HTTP server (dtx/transport/http_server.h),
// the responder through which a handler answers, and the query-string codec.
//
// A handler is asynchronous: it receives the request and an HttpResponder,
// and may answer at once or later, from any thread, through any copy of the
// responder. The first Respond wins; an HttpResponder whose every copy is
// destroyed without answering answers 503 (HttpResponse::Dropped()), as a
// dtx closure dropped without running answers kUnavailable. So a request
// waiting for the coordinator (a WaitResult Submit) holds a responder, not a
// thread:
//
//   void Submit(dtx::HttpRequest request, dtx::HttpResponder responder) {
//     api.SubmitAsync(Decode(request.body), [responder](dtx::Status s) {
//       responder.Respond(s.ok() ? dtx::HttpResponse::Json(200, kSuccess)
//                                : dtx::HttpResponse::Error(409, s.message()));
//     });
//   }
//
// Thread safety: HttpRequest and HttpResponse are plain values
// (thread-compatible). HttpResponder is thread-safe: its copies may be used
// and destroyed on any threads.

#ifndef DTX_TRANSPORT_HTTP_MESSAGE_H_
#define DTX_TRANSPORT_HTTP_MESSAGE_H_

#include "dtx/result.h"
#include "dtx/transport/http_export.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dtx {

// Name-value pairs in the order they came (query parameters, headers).
using HttpPairs = std::vector<std::pair<std::string, std::string>>;

// ASCII case-insensitive equality, as HTTP compares field names and tokens
// ("Content-Length" and "content-length").
DTX_HTTP_EXPORT bool HttpNamesEqual(std::string_view a, std::string_view b);

struct DTX_HTTP_EXPORT HttpRequest {
  // As sent: "GET", "POST", ... (methods are case-sensitive, RFC 9110).
  std::string method;
  // The request-target as sent: "/api/dtmsvr/query?gid=a%20b".
  std::string target;
  // The target's path, percent-decoded ("+" stays "+"): "/api/dtmsvr/query".
  std::string path;
  // The query's parameters, percent-decoded, "+" as a space, in order; a
  // parameter without "=" has an empty value: [("gid", "a b")].
  HttpPairs query;
  // Header fields as sent (names in the sender's case), in order.
  HttpPairs headers;
  std::string body;
  // The peer's address, "127.0.0.1:53412" or "[::1]:53412".
  std::string remote_address;

  // The first value of query parameter `name` (exact match); nullopt when
  // absent. dtm's handlers read parameters this way (gin's c.Query).
  std::optional<std::string> QueryValue(std::string_view name) const;
  // The first value of header `name`, compared case-insensitively.
  std::optional<std::string> Header(std::string_view name) const;
};

struct DTX_HTTP_EXPORT HttpResponse {
  int status = 200;  // 200..599; anything else is sent as 500
  std::string content_type = "application/json";
  // More header fields. Content-Length, Connection and Server are the
  // server's; a field whose name or value holds CR, LF or NUL is dropped.
  HttpPairs headers;
  std::string body;

  static HttpResponse Json(int status, std::string json);
  // {"error":"<message>"}, with `message` escaped as a JSON string.
  static HttpResponse Error(int status, std::string_view message);
  // What a responder answers when it is dropped unanswered: 503
  // {"error":"http: the request was dropped before it was answered"}.
  static HttpResponse Dropped();
};

// Answers one request, exactly once. Copyable (so that it fits in a
// std::function callback); the copies share one answer.
class DTX_HTTP_EXPORT HttpResponder {
 public:
  // A responder that answers nothing (Respond does nothing).
  HttpResponder() = default;
  // `deliver` receives the one answer: the first Respond's, or Dropped()
  // when the last copy goes away unanswered. It runs on the thread that
  // calls Respond (or drops the last copy), so it must not block. The server
  // makes these; tests and adapters may make their own.
  explicit HttpResponder(std::function<void(HttpResponse)> deliver);

  // Answers the request. Thread-safe; may be called after the handler
  // returned. Only the first call of all the copies counts; later ones are
  // ignored. After HttpServer::Shutdown's grace the server has answered
  // 503 already, and the call is ignored too.
  void Respond(HttpResponse response) const;
  // True once any copy has answered.
  bool responded() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// The handler of every request a server receives (an HttpRouter builds one).
// It runs on one of the server's io threads and must not block: answer at
// once, or hand the work to something asynchronous that answers later
// through the responder. An exception escaping it is answered 500.
using HttpHandler = std::function<void(HttpRequest, HttpResponder)>;

// Percent-decodes `text`; with `plus_is_space`, "+" becomes " " (the query
// string's form encoding). kInvalidArgument for a "%" not followed by two hex
// digits.
DTX_HTTP_EXPORT Result<std::string> PercentDecode(std::string_view text,
                                                  bool plus_is_space);

// Splits "a=1&b=x%20y&c" into [("a","1"), ("b","x y"), ("c","")], decoding
// names and values; empty pieces ("a=1&&b=2") are skipped. kInvalidArgument
// naming the parameter for a malformed escape.
DTX_HTTP_EXPORT Result<HttpPairs> ParseQueryString(std::string_view query);

// Fills request->path and request->query from `target` (the request-target
// as sent, "/api/dtmsvr/query?gid=a%20b"), as HttpServer does before a
// handler sees the request: the path percent-decoded ("+" stays "+"), the
// query by ParseQueryString. kInvalidArgument, and the server answers 400
// without calling the handler, when the path is empty or does not start with
// '/', or an escape is malformed.
DTX_HTTP_EXPORT Status ParseRequestTarget(std::string_view target,
                                          HttpRequest* request);

// Percent-encodes everything but RFC 3986's unreserved characters
// (A-Z a-z 0-9 - . _ ~), so that the result is safe as a query name or value
// and as a path segment: EncodeQueryComponent("a b&c") == "a%20b%26c".
DTX_HTTP_EXPORT std::string EncodeQueryComponent(std::string_view text);

}  // namespace dtx

#endif  // DTX_TRANSPORT_HTTP_MESSAGE_H_
