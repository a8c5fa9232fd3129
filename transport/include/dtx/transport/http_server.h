// HttpServer: an asynchronous HTTP/1.1 server (Boost.Beast inside; this
// header includes no Boost) that hands every request to one HttpHandler,
// usually an HttpRouter's. dtx-server serves dtm's HTTP port with it.
//
//   dtx::HttpServerOptions options;
//   options.host = "127.0.0.1";
//   options.port = 0;  // any free port; see port()
//   DTX_ASSIGN_OR_RETURN(auto server, dtx::HttpServer::Start(options,
//   handler));
//   ...
//   server->Shutdown(std::chrono::seconds(10));
//
// What it does with connections:
// - Keep-alive as HTTP/1.1 says (and HTTP/1.0 with "Connection: keep-alive");
//   "Connection: close" is honoured after the answer.
// - Pipelining: up to `max_pipelined` requests of one connection are read
//   ahead and handed to the handler at once; their answers are written in the
//   order the requests came, whatever order the handler answers in.
// - No thread per request or connection: `io_threads` threads (1 by default)
//   run every connection; a request whose answer is pending holds memory.
// - Limits: a header larger than `max_header_bytes` is answered 431, a body
//   larger than `max_body_bytes` 413 (from Content-Length, before the body is
//   read), a request that is not HTTP 400; each then closes the connection.
//   A malformed percent-escape in the path or query is answered 400 and the
//   connection stays open. "Expect: 100-continue" is answered when no earlier
//   answer is pending.
// - Timeouts: a connection with no request in progress and no answer pending
//   is closed when the next request has not fully arrived within
//   `read_timeout` (idle keep-alive connections included); a connection whose
//   answer is not taken by the client within `write_timeout` is closed. A
//   pending handler has no time limit here: it owns its own deadline.
// - Errors are JSON bodies, {"error":"http: ..."}.
// - TLS (options.tls): HTTPS, TLS 1.2 or later, optionally requiring client
//   certificates. A plaintext request to the TLS port is answered 400 in
//   plaintext, saying so; a failed handshake is logged (info) with its
//   reason.
//
// Thread safety: thread-safe. The handler runs on the server's io threads and
// is called concurrently for different connections.

#ifndef DTX_TRANSPORT_HTTP_SERVER_H_
#define DTX_TRANSPORT_HTTP_SERVER_H_

#include "dtx/logger.h"
#include "dtx/result.h"
#include "dtx/transport/http_export.h"
#include "dtx/transport/http_message.h"
#include "dtx/transport/tls_options.h"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace dtx {

struct DTX_HTTP_EXPORT HttpServerOptions {
  // An address ("0.0.0.0", "::", "127.0.0.1", "[::1]") or a host name, whose
  // first address is used.
  std::string host = "0.0.0.0";
  // dtm's HttpPort; 0 picks a free one (see HttpServer::port()).
  int port = 36789;
  // Threads that run the connections and the handler.
  std::size_t io_threads = 1;

  // Largest request header (request line and fields): 431 beyond it.
  std::size_t max_header_bytes = 64 * 1024;
  // Largest request body: 413 beyond it.
  std::size_t max_body_bytes = 8 * 1024 * 1024;
  // Requests of one connection read ahead while answers are pending.
  std::size_t max_pipelined = 16;

  // Connections open at once at most; one beyond it is answered 503 ("too
  // many connections") and closed (on a TLS port closed at once, sparing a
  // handshake). Zero: no limit.
  std::size_t max_connections = 0;

  // How long an idle connection waits for its next complete request.
  std::chrono::milliseconds read_timeout{30000};
  // How long the client may take to receive one answer.
  std::chrono::milliseconds write_timeout{30000};

  // The listener's certificate and key, and optionally the CAs of client
  // certificates (required then). Not enabled: plaintext. Read by Start.
  TlsServerOptions tls;

  // Accept and I/O errors, at debug level one line per request. Null: none.
  std::shared_ptr<Logger> logger;
};

class DTX_HTTP_EXPORT HttpServer {
 public:
  // Binds host:port and starts serving with `handler`. Errors:
  // kInvalidArgument for bad options (port outside 0..65535, no io thread,
  // zero limits, an empty handler, a TLS file that cannot be read or holds
  // no PEM certificate or key, or a key that does not belong to the
  // certificate: each names the file); kUnavailable when the host cannot be
  // resolved or the address cannot be bound ("address already in use"),
  // naming host and port. Nothing is left running on error.
  // Reads and checks `tls`'s files as Start would, with the same errors
  // (OK when TLS is off), so that a program can refuse a bad certificate
  // before it does anything else (dtx-server: before opening its journal).
  static Status CheckTls(const TlsServerOptions& tls);

  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                   HttpHandler handler);

  // Shutdown(std::chrono::milliseconds(0)).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the free one picked for port 0).
  int port() const;
  // The bound address, "127.0.0.1:36789" or "[::1]:36789".
  std::string address() const;

  // Stops accepting and closes idle connections at once, including
  // keep-alive ones waiting for their next request. Requests in progress get
  // up to `grace` to be answered (their answers carry "Connection: close");
  // requests that arrive meanwhile are answered 503. After `grace` the server
  // answers 503 to every request still unanswered (later Respond calls are
  // ignored), gives the clients up to a second to take those answers, closes
  // every connection and joins its threads. Returns when all of that is
  // done; a second call returns at once.
  // REQUIRES: not called from the handler or another io-thread callback.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_HTTP_SERVER_H_
