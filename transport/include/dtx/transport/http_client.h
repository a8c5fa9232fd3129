// HttpClient: an asynchronous HTTP/1.1 client (Boost.Beast and Boost.Asio's
// OpenSSL streams inside; this header includes no Boost) with keep-alive
// connection pools, for dtx's HTTP branch calls and dtm's HTTP API.
//
//   dtx::HttpClientOptions options;
//   options.tls_rules = {{"payments.internal", {.ca_file = "/etc/ca.pem"}}};
//   DTX_ASSIGN_OR_RETURN(auto client, dtx::HttpClient::Create(options));
//   dtx::HttpClientRequest req;
//   req.method = "POST";
//   req.url = "https://payments.internal:8443/api/busi/TransIn?gid=g1";
//   req.body = R"({"amount":30})";
//   client->Send(std::move(req), post_to_my_strand,
//                [](dtx::Result<dtx::HttpClientResponse> r) { ... });
//
// What it does:
// - One pool of keep-alive connections per (scheme, host, port), at most
//   `max_connections_per_host` open at once; a request finding every one busy
//   waits (within its deadline) for the next free connection. A connection
//   the server closed while idle is noticed when it is reused: a request that
//   fails on a reused connection before any byte of the answer arrived is
//   sent once more on a fresh connection.
// - A deadline per request (`timeout`, or `default_timeout`) covering
//   everything: waiting for a connection, resolving, connecting, the TLS
//   handshake, writing and reading. The connection of a request that ran out
//   of time is closed.
// - An answer whose body exceeds `max_response_bytes` (or whose header
//   exceeds 64 KiB) is refused with kResourceExhausted and its connection
//   closed.
// - Host names are resolved at each new connection (the system resolver);
//   IP literals, "[::1]" included, are used as they are.
// - https:// verifies the server: its certificate chain against the CA file
//   of the first matching TlsClientRule (FindTlsRule on the URL's host and
//   port) or against the system's default roots when no rule matches; its
//   name (DNS name or IP address) against the URL's host or the rule's
//   server_name, which is also sent as SNI. A rule's client certificate is
//   presented to servers that ask for one.
//
// Errors (the Result's status; the message names the URL and the cause):
//   kInvalidArgument     malformed URL, method or header
//   kUnavailable         cannot resolve, "connection refused", connection
//                        reset or closed, TLS failures ("certificate has
//                        expired", "certificate signed by an unknown CA",
//                        "host name mismatch", "the server does not speak
//                        TLS")
//   kDeadlineExceeded    the deadline passed
//   kResourceExhausted   the answer is larger than the limit
//   kCancelled           the client shut down
// Any HTTP status (4xx and 5xx too) is an answer, not an error.
//
// Thread safety: thread-safe.

#ifndef DTX_TRANSPORT_HTTP_CLIENT_H_
#define DTX_TRANSPORT_HTTP_CLIENT_H_

#include "dtx/executor.h"
#include "dtx/logger.h"
#include "dtx/result.h"
#include "dtx/transport/http_export.h"
#include "dtx/transport/http_message.h"
#include "dtx/transport/tls_options.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dtx {

struct DTX_HTTP_EXPORT HttpClientOptions {
  // Threads that run the connections (each pool lives on one of them).
  std::size_t io_threads = 1;
  // Open connections per (scheme, host, port), busy and idle ones together.
  std::size_t max_connections_per_host = 64;
  // Deadline of requests that carry none (dtm's RequestTimeout).
  std::chrono::milliseconds default_timeout{3000};
  // Largest answer body accepted, in bytes.
  std::size_t max_response_bytes = 4 * 1024 * 1024;
  // An idle keep-alive connection unused for longer is closed (a sweep runs
  // every idle_timeout / 2, at most every 5 s, which also closes idle
  // connections their server has closed and forgets empty pools).
  std::chrono::milliseconds idle_timeout{60000};
  // TLS verification per target for https:// URLs (FindTlsRule). Their files
  // are read by Create.
  std::vector<TlsClientRule> tls_rules;
  // Connections opened and closed, TLS failures, at debug level. Null: none.
  std::shared_ptr<Logger> logger;
};

struct DTX_HTTP_EXPORT HttpClientRequest {
  // "GET", "POST", ... (an RFC 9110 token).
  std::string method = "GET";
  // "http://host[:port][/path][?query]" or "https://...". The path and query
  // are sent as they are (already percent-encoded).
  std::string url;
  // Sent after Host, in order. The fields of the connection and the
  // message's framing (Host, Connection, Content-Length, Transfer-Encoding,
  // Expect, Upgrade, TE, Trailer, Keep-Alive, Proxy-Connection) are the
  // client's and are not sent; a name or value holding CR, LF or NUL is
  // kInvalidArgument.
  HttpPairs headers;
  std::string body;
  // Zero: the client's default_timeout.
  std::chrono::milliseconds timeout{0};
};

struct DTX_HTTP_EXPORT HttpClientResponse {
  int status = 0;
  HttpPairs headers;  // as received, in order
  std::string body;

  // The first value of header `name`, compared case-insensitively.
  std::optional<std::string> Header(std::string_view name) const;
};

// The parts of an http:// or https:// URL.
struct DTX_HTTP_EXPORT HttpUrl {
  bool tls = false;         // https://
  std::string host;         // without brackets: "::1", "example.com"
  std::string port;         // "80", "443" when the URL gives none
  std::string target;       // "/path?query", "/" when the URL has no path
  std::string host_header;  // "example.com:8080", "[::1]:8080"
};

// Splits `url`. kInvalidArgument naming the URL and the problem: another
// scheme, user info, no host, a bad port, whitespace or control characters,
// a fragment.
DTX_HTTP_EXPORT Result<HttpUrl> ParseHttpUrl(std::string_view url);

class DTX_HTTP_EXPORT HttpClient {
 public:
  using Callback = std::function<void(Result<HttpClientResponse>)>;

  // Starts the io threads. kInvalidArgument for zero limits or threads, or a
  // TLS rule without a target, with a certificate and no key (or a key and
  // no certificate), or whose file cannot be read or parsed (naming the
  // file).
  static Result<std::unique_ptr<HttpClient>> Create(HttpClientOptions options);

  // Shutdown().
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts the request and returns at once. `done` runs exactly once,
  // through `executor`; with no executor it runs on an io thread and must
  // then be trivial (fulfil a promise, post elsewhere).
  void Send(HttpClientRequest request, Executor executor, Callback done);

  // Sends the request and waits for its answer on the caller's thread.
  // Never from a callback of this client.
  Result<HttpClientResponse> SendBlocking(HttpClientRequest request);

  // Fails the requests in flight with kCancelled, refuses new ones, closes
  // every connection and joins the io threads once every callback has been
  // handed off. Idempotent. Not from a callback of this client.
  void Shutdown();

  struct Stats {
    uint64_t connections_opened = 0;  // TCP connections made (TLS ones too)
    uint64_t requests_reused = 0;     // requests sent on a kept-alive one
    std::size_t in_flight = 0;        // requests started, not handed off
  };
  Stats stats() const;

  struct Impl;

 private:
  explicit HttpClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_HTTP_CLIENT_H_
