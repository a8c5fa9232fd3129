// HttpClient on Boost.Beast, with Boost.Asio's OpenSSL streams for https://.
//
// Shards: `io_threads` io_contexts, each run by one thread. The pool of a
// (scheme, host, port) lives on the shard its key hashes to, and everything
// touching that pool, its connections and its requests runs on that shard's
// thread, so none of it needs a lock. Send only builds the Exchange (one
// request) and posts it to the shard.
//
// An Exchange goes
//
//   Pool::Submit: idle connection ──────────────────────────┐ (reused)
//       │ none idle, fewer than the cap open: new one        │
//       │   resolve -> connect -> [TLS handshake] ───────────┤
//       │ at the cap: wait in the pool's queue               ▼
//       └──(a connection is released or discarded)──► write -> read
//                                                            │
//   answer: keep-alive ─► Release (to the next waiter or idle), else Discard
//   error on a reused connection before any answer byte: Discard, once more
//     on a fresh connection (the server closed it while it was idle)
//   other error: Discard, fail
//
// The Exchange's timer holds its deadline from Send; when it fires first the
// Exchange fails with kDeadlineExceeded and its connection (if any) is
// discarded, which closes the socket and so ends the operations pending on
// it (their handlers find the Exchange finished and do nothing more).
//
// `in_flight` counts Exchanges between Send and their hand-off; Shutdown
// posts a cancel of every active Exchange to each shard, waits for
// `in_flight` to reach 0, then stops and joins the shards.

#include "dtx/transport/http_client.h"

#include "dtx/internal/mutex.h"
#include "dtx/internal/thread_name.h"
#include "dtx/version.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <optional>
#include <sys/socket.h>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace dtx {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;
using internal::MutexLock;

namespace {

constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
// Interim (1xx) answers skipped before a request's final answer.
constexpr int kMaxInterimAnswers = 8;

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9'))
    return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

bool HasCrLfNul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != s.npos;
}

// Hop-by-hop and framing fields (RFC 9110 7.6.1, RFC 9112 6): the client's
// own, never taken from a request's headers. "Expect: 100-continue" would
// make a server send an interim answer for a body already on its way.
bool IsConnectionHeader(std::string_view name) {
  for (std::string_view h :
       {"connection", "content-length", "expect", "host", "keep-alive",
        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}) {
    if (HttpNamesEqual(name, h)) return true;
  }
  return false;
}

bool IsIpLiteral(const std::string& host) {
  ErrorCode ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// The TLS settings of one rule (or the default: system roots), ready to
// make streams from.
struct TlsSetup {
  std::unique_ptr<ssl::context> context;
  std::string server_name;  // verify against (and SNI); empty: the URL host
  std::string roots;        // for messages: "CA file '...'" or "system roots"
};

Status ReadableFile(const std::string& what, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return InvalidArgumentError(what + " '" + path + "' cannot be read: " +
                                std::generic_category().message(errno));
  }
  return Status::Ok();
}

Result<TlsSetup> MakeTlsSetup(const TlsClientOptions* tls,
                              const std::string& label) {
  TlsSetup setup;
  setup.context = std::make_unique<ssl::context>(ssl::context::tls_client);
  ssl::context& ctx = *setup.context;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                  ssl::context::no_tlsv1_1);
  ctx.set_verify_mode(ssl::verify_peer);
  // An encrypted key is refused, never asked for on the terminal (OpenSSL's
  // default), as tls_files.h does for the gRPC side.
  ctx.set_password_callback([](std::size_t, ssl::context::password_purpose) {
    return std::string();
  });
  ErrorCode ec;
  const std::string bad = "http client: TLS rule " + label + ": ";
  if (tls == nullptr || tls->ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
    if (ec) {
      return InvalidArgumentError(
          bad + "cannot load the system's CA roots: " + ec.message());
    }
    setup.roots = "the system roots";
  } else {
    DTX_RETURN_IF_ERROR(ReadableFile(bad + "CA file", tls->ca_file));
    ctx.load_verify_file(tls->ca_file, ec);
    if (ec) {
      return InvalidArgumentError(bad + "CA file '" + tls->ca_file +
                                  "' is not PEM certificates: " + ec.message());
    }
    setup.roots = "CA file '" + tls->ca_file + "'";
  }
  if (tls != nullptr) {
    if (tls->cert_file.empty() != tls->key_file.empty()) {
      return InvalidArgumentError(
          bad + "a client certificate needs both cert_file and key_file");
    }
    if (!tls->cert_file.empty()) {
      DTX_RETURN_IF_ERROR(ReadableFile(bad + "certificate", tls->cert_file));
      DTX_RETURN_IF_ERROR(ReadableFile(bad + "key file", tls->key_file));
      ctx.use_certificate_chain_file(tls->cert_file, ec);
      if (ec) {
        return InvalidArgumentError(
            bad + "certificate '" + tls->cert_file +
            "' is not a PEM certificate chain: " + ec.message());
      }
      ctx.use_private_key_file(tls->key_file, ssl::context::pem, ec);
      if (ec) {
        // Not a PEM key, or not the certificate's ("key values mismatch").
        return InvalidArgumentError(bad + "key file '" + tls->key_file +
                                    "' cannot be used with certificate '" +
                                    tls->cert_file + "': " + ec.message());
      }
      if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
        ERR_clear_error();
        return InvalidArgumentError(bad + "key file '" + tls->key_file +
                                    "' does not match certificate '" +
                                    tls->cert_file + "'");
      }
    }
    setup.server_name = tls->server_name;
  }
  return setup;
}

}  // namespace

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  const std::string bad = "http url '" + std::string(url) + "': ";
  HttpUrl out;
  std::string_view rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
    out.port = "80";
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    out.tls = true;
    out.port = "443";
  } else {
    return InvalidArgumentError(bad + "not an http:// or https:// URL");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return InvalidArgumentError(bad +
                                  "holds whitespace or control characters");
    }
  }
  if (url.find('#') != url.npos) {
    return InvalidArgumentError(bad +
                                "a fragment ('#') is not sent to a "
                                "server");
  }
  const std::size_t slash = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, slash);
  out.target = slash == rest.npos ? "/" : std::string(rest.substr(slash));
  if (out.target.front() == '?') out.target.insert(0, "/");
  if (authority.find('@') != authority.npos) {
    return InvalidArgumentError(bad + "user info is not supported");
  }
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == authority.npos) {
      return InvalidArgumentError(bad + "unterminated [IPv6] host");
    }
    out.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgumentError(bad + "bad port");
      port = after.substr(1);
      has_port = true;
    }
    ErrorCode ec;
    asio::ip::make_address_v6(out.host, ec);
    if (ec) {
      return InvalidArgumentError(bad + "'[" + out.host +
                                  "]' is not an IPv6 address");
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != authority.npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
    if (out.host.find(':') != std::string::npos) {
      return InvalidArgumentError(bad + "an IPv6 host needs brackets");
    }
  }
  if (out.host.empty()) return InvalidArgumentError(bad + "no host");
  if (has_port) {
    const bool digits = !port.empty() && port.size() <= 5 &&
                        std::all_of(port.begin(), port.end(), [](char c) {
                          return c >= '0' && c <= '9';
                        });
    const int n = digits ? std::stoi(std::string(port)) : 0;
    if (n < 1 || n > 65535) {
      return InvalidArgumentError(bad + "bad port '" + std::string(port) + "'");
    }
    out.port = std::to_string(n);
  }
  out.host_header = std::string(authority);
  return out;
}

std::optional<std::string> HttpClientResponse::Header(
    std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (HttpNamesEqual(key, name)) return value;
  }
  return std::nullopt;
}

namespace {

struct Pool;
struct Shard;
class Exchange;

// One kept-alive connection. Lives on its pool's shard thread.
struct Connection {
  explicit Connection(asio::io_context& io, ssl::context* tls) : resolver(io) {
    if (tls != nullptr) {
      secure.emplace(io, *tls);
    } else {
      plain.emplace(io);
    }
  }

  beast::tcp_stream& Tcp() {
    return secure ? beast::get_lowest_layer(*secure) : *plain;
  }

  // Whether an idle connection can take a request: still open, and the
  // server has neither closed it nor sent anything unasked.
  bool Usable() {
    tcp::socket& socket = Tcp().socket();
    if (!socket.is_open()) return false;
    char byte;
    const ssize_t n =
        ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void Close() {
    ErrorCode ignored;
    resolver.cancel();
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().socket().close(ignored);
  }

  tcp::resolver resolver;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  bool connected = false;
  SteadyClock::time_point idle_since;
};

}  // namespace

struct HttpClient::Impl {
  explicit Impl(HttpClientOptions o) : options(std::move(o)) {
    logger = options.logger ? options.logger : NewNullLogger();
  }

  Shard& ShardFor(const std::string& key);
  const TlsSetup& TlsFor(const std::string& host, const std::string& port);
  void HandOff(Executor& executor, Callback& done,
               Result<HttpClientResponse> result);

  HttpClientOptions options;
  std::shared_ptr<Logger> logger;
  TlsSetup default_tls;
  std::vector<TlsSetup> rule_tls;  // parallel to options.tls_rules
  std::vector<std::unique_ptr<Shard>> shards;

  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> requests_reused{0};

  mutable internal::Mutex mu;
  internal::CondVar idle_cv{&mu};  // in_flight reached 0
  std::size_t in_flight DTX_GUARDED_BY(mu) = 0;
  bool shut_down DTX_GUARDED_BY(mu) = false;

  internal::Mutex shutdown_mu;  // serializes Shutdown calls
  bool joined DTX_GUARDED_BY(shutdown_mu) = false;
};

namespace {

struct Shard {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work{io.get_executor()};
  std::thread thread;
  // On the shard's thread only.
  std::unordered_map<std::string, std::shared_ptr<Pool>> pools;
  std::unordered_set<std::shared_ptr<Exchange>> active;
  // Closes idle connections past idle_timeout or closed by their server,
  // and forgets empty pools (so that many hosts called once each leave no
  // sockets behind). Reset when the client shuts down.
  std::optional<asio::steady_timer> sweeper;
};

// The connections to one (scheme, host, port). On its shard's thread only.
struct Pool {
  HttpClient::Impl* client = nullptr;
  Shard* shard = nullptr;
  std::string host;
  std::string port;
  ssl::context* tls = nullptr;  // null: plaintext
  std::string verify_name;      // https: the name the certificate must carry
  std::string roots;            // https: where its CA must be
  std::size_t open = 0;         // busy and idle
  std::vector<std::shared_ptr<Connection>> idle;
  std::deque<std::shared_ptr<Exchange>> waiting;

  void Submit(const std::shared_ptr<Exchange>& ex, bool fresh);
  void Release(std::shared_ptr<Connection> conn);
  void Discard(const std::shared_ptr<Connection>& conn);
  void CloseAll();
};

// One request, from Send to its hand-off. On its pool's shard thread only
// (after construction).
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(HttpClient::Impl& client, HttpUrl url, std::string method,
           bhttp::request<bhttp::string_body> request,
           std::chrono::milliseconds timeout, Executor executor,
           HttpClient::Callback done)
      : client_(client),
        url_(std::move(url)),
        method_(std::move(method)),
        request_(std::move(request)),
        timeout_(timeout),
        executor_(std::move(executor)),
        done_(std::move(done)) {
    name_ = method_ + " " + (url_.tls ? "https://" : "http://") +
            url_.host_header + url_.target.substr(0, url_.target.find('?'));
  }

  // On the shard thread: arms the deadline and joins the pool.
  void Start(Shard& shard, std::shared_ptr<Pool> pool) {
    shard_ = &shard;
    pool_ = std::move(pool);
    shard.active.insert(shared_from_this());
    timer_.emplace(shard.io);
    timer_->expires_after(timeout_);
    timer_->async_wait([self = shared_from_this()](const ErrorCode& ec) {
      if (!ec) self->OnDeadline();
    });
    stage_ = "waiting for a free connection";
    pool_->Submit(shared_from_this(), false);
  }

  bool finished() const { return finished_; }

  // The pool hands this exchange a connection.
  void Run(std::shared_ptr<Connection> conn, bool reused) {
    conn_ = std::move(conn);
    reused_ = reused;
    if (reused) {
      client_.requests_reused.fetch_add(1, std::memory_order_relaxed);
      return Write();
    }
    Resolve();
  }

  // Fails with `status` and discards the connection. Shutdown's cancel.
  void Fail(Status status) { Finish(std::move(status), false); }

 private:
  void Resolve() {
    stage_ = "resolving '" + url_.host + "'";
    conn_->resolver.async_resolve(
        url_.host, url_.port, tcp::resolver::numeric_service,
        [self = shared_from_this(), conn = conn_](
            const ErrorCode& ec, const tcp::resolver::results_type& results) {
          if (self->finished_) return;
          if (ec) {
            return self->Finish(
                UnavailableError(self->name_ + ": cannot resolve host '" +
                                 self->url_.host + "': " + ec.message()),
                false);
          }
          self->Connect(results);
        });
  }

  void Connect(const tcp::resolver::results_type& results) {
    stage_ = "connecting";
    client_.connections_opened.fetch_add(1, std::memory_order_relaxed);
    conn_->Tcp().async_connect(
        results, [self = shared_from_this(), conn = conn_](
                     const ErrorCode& ec, const tcp::endpoint& endpoint) {
          if (self->finished_) return;
          if (ec) return self->Finish(self->IoError(ec), false);
          ErrorCode ignored;
          conn->Tcp().socket().set_option(tcp::no_delay(true), ignored);
          DTX_LOG(self->client_.logger, LogLevel::kDebug,
                  "http client: connected to " << self->url_.host_header << " ("
                                               << endpoint << ")");
          if (conn->secure) return self->Handshake();
          conn->connected = true;
          self->Write();
        });
  }

  void Handshake() {
    stage_ = "in the TLS handshake";
    SSL* ssl = conn_->secure->native_handle();
    const std::string& name = pool_->verify_name;
    const bool ip = IsIpLiteral(name);
    // SNI carries DNS names only (RFC 6066).
    // (SSL_set_tlsext_host_name, without the macro's C cast.)
    if (!ip) {
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(name.c_str()));
    }
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param,
                                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    }
    conn_->secure->async_handshake(
        ssl::stream_base::client,
        [self = shared_from_this(), conn = conn_](const ErrorCode& ec) {
          if (self->finished_) return;
          if (ec) return self->Finish(self->TlsError(ec), false);
          conn->connected = true;
          self->Write();
        });
  }

  void Write() {
    stage_ = "sending the request";
    auto on_written = [self = shared_from_this(), conn = conn_](
                          const ErrorCode& ec, std::size_t) {
      if (self->finished_) return;
      if (ec) return self->OnSendOrReceiveError(ec);
      self->Read();
    };
    if (conn_->secure) {
      bhttp::async_write(*conn_->secure, request_, std::move(on_written));
    } else {
      bhttp::async_write(*conn_->plain, request_, std::move(on_written));
    }
  }

  // The header first, then the body: Boost 1.74's parser does not enforce
  // body_limit against a Content-Length when it parses eagerly (as
  // async_read does), so the declared length is checked here before the
  // body is read. Chunked and read-to-close bodies are limited by the
  // parser as they arrive.
  void Read() {
    stage_ = "waiting for the answer";
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(client_.options.max_response_bytes);
    if (method_ == "HEAD") parser_->skip(true);
    auto on_header = [self = shared_from_this(), conn = conn_](
                         const ErrorCode& ec, std::size_t) {
      if (self->finished_) return;
      if (ec) return self->OnSendOrReceiveError(ec);
      const unsigned status = self->parser_->get().result_int();
      if (status >= 100 && status < 200) {
        // An interim answer (100 Continue, 103 Early Hints): the final one
        // follows on the same connection. 101 would switch protocols, which
        // dtx never asks for.
        if (status == 101 || ++self->interim_answers_ > kMaxInterimAnswers) {
          return self->Finish(
              UnavailableError(self->name_ + ": unexpected interim answer " +
                               std::to_string(status)),
              false);
        }
        return self->Read();
      }
      const auto length = self->parser_->content_length();
      if (length && *length > self->client_.options.max_response_bytes) {
        return self->Finish(
            self->IoError(bhttp::make_error_code(bhttp::error::body_limit)),
            false);
      }
      self->ReadBody();
    };
    if (conn_->secure) {
      bhttp::async_read_header(*conn_->secure, conn_->buffer, *parser_,
                               std::move(on_header));
    } else {
      bhttp::async_read_header(*conn_->plain, conn_->buffer, *parser_,
                               std::move(on_header));
    }
  }

  void ReadBody() {
    auto on_read = [self = shared_from_this(), conn = conn_](
                       const ErrorCode& ec, std::size_t) {
      if (self->finished_) return;
      if (ec) return self->OnSendOrReceiveError(ec);
      self->OnAnswer();
    };
    if (conn_->secure) {
      bhttp::async_read(*conn_->secure, conn_->buffer, *parser_,
                        std::move(on_read));
    } else {
      bhttp::async_read(*conn_->plain, conn_->buffer, *parser_,
                        std::move(on_read));
    }
  }

  void OnSendOrReceiveError(const ErrorCode& ec) {
    const bool nothing_back = !parser_ || !parser_->got_some();
    const bool closed =
        ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
        ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
        ec == ssl::error::stream_truncated;
    if (reused_ && !retried_ && nothing_back && closed) {
      // The server closed the kept-alive connection while it was idle; the
      // request never reached it. Once more, on a new connection.
      retried_ = true;
      reused_ = false;
      parser_.reset();
      pool_->Discard(std::exchange(conn_, nullptr));
      stage_ = "waiting for a free connection";
      return pool_->Submit(shared_from_this(), true);
    }
    Finish(IoError(ec), false);
  }

  void OnAnswer() {
    auto message = parser_->release();
    HttpClientResponse response;
    response.status = static_cast<int>(message.result_int());
    for (const auto& field : message) {
      response.headers.emplace_back(std::string(field.name_string()),
                                    std::string(field.value()));
    }
    // Bytes already read past this answer (a body a 204 or 304 must not
    // have, a server that answers twice) would be taken for the next
    // request's answer: such a connection is not used again.
    const bool keep = message.keep_alive() && conn_->buffer.size() == 0;
    response.body = std::move(message.body());
    if (response.body.size() > client_.options.max_response_bytes) {
      return Finish(IoError(bhttp::make_error_code(bhttp::error::body_limit)),
                    false);
    }
    parser_.reset();
    Finish(std::move(response), keep);
  }

  void OnDeadline() {
    if (finished_) return;
    Finish(DeadlineExceededError(name_ + ": no answer within " +
                                 std::to_string(timeout_.count()) +
                                 " ms (timed out " + stage_ + ")"),
           false);
  }

  Status IoError(const ErrorCode& ec) const {
    if (ec == bhttp::error::body_limit) {
      return ResourceExhaustedError(
          name_ + ": the answer's body is larger than the limit of " +
          std::to_string(client_.options.max_response_bytes) + " bytes");
    }
    if (ec == bhttp::error::header_limit) {
      return ResourceExhaustedError(name_ +
                                    ": the answer's header is larger than " +
                                    std::to_string(kMaxHeaderBytes) + " bytes");
    }
    if (ec == asio::error::connection_refused) {
      return UnavailableError(name_ + ": connection refused");
    }
    if (ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
        ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
        ec == ssl::error::stream_truncated) {
      return UnavailableError(name_ + ": the server closed the connection " +
                              stage_);
    }
    if (ec.category() ==
        bhttp::make_error_code(bhttp::error::bad_version).category()) {
      return UnavailableError(name_ + ": malformed answer: " + ec.message());
    }
    if (ec.category() == asio::error::get_ssl_category()) {
      return UnavailableError(name_ + ": TLS error " + stage_ + ": " +
                              ec.message());
    }
    return UnavailableError(name_ + ": " + ec.message() + " (" + stage_ + ")");
  }

  Status TlsError(const ErrorCode& ec) const {
    const std::string prefix = name_ + ": TLS handshake failed: ";
    if (ec.category() != asio::error::get_ssl_category()) {
      if (ec == asio::error::eof || ec == ssl::error::stream_truncated ||
          ec == asio::error::connection_reset) {
        return UnavailableError(
            prefix + "the server closed the connection (does it speak TLS?)");
      }
      return UnavailableError(prefix + ec.message());
    }
    const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      const long verify = SSL_get_verify_result(conn_->secure->native_handle());
      switch (verify) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
          return UnavailableError(prefix +
                                  "the server's certificate has expired");
        case X509_V_ERR_CERT_NOT_YET_VALID:
          return UnavailableError(prefix +
                                  "the server's certificate is not valid yet");
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
          return UnavailableError(
              prefix +
              "host name mismatch: the server's certificate is not "
              "for '" +
              pool_->verify_name + "'");
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
          return UnavailableError(
              prefix +
              "the server's certificate is signed by an unknown CA "
              "(not in " +
              pool_->roots + ")");
        default:
          return UnavailableError(prefix +
                                  "the server's certificate was refused: " +
                                  X509_verify_cert_error_string(verify));
      }
    }
    if (reason == SSL_R_WRONG_VERSION_NUMBER ||
        reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
        reason == SSL_R_HTTP_REQUEST || reason == SSL_R_UNKNOWN_PROTOCOL ||
        reason == SSL_R_RECORD_LENGTH_MISMATCH) {
      return UnavailableError(prefix +
                              "the server does not speak TLS (a plaintext "
                              "server? use an http:// URL)");
    }
    return UnavailableError(prefix + ec.message());
  }

  void Finish(Result<HttpClientResponse> result, bool keep_connection) {
    if (finished_) return;
    finished_ = true;
    if (timer_) timer_->cancel();
    if (conn_) {
      if (keep_connection) {
        pool_->Release(std::exchange(conn_, nullptr));
      } else {
        pool_->Discard(std::exchange(conn_, nullptr));
      }
    }
    auto self = shared_from_this();
    shard_->active.erase(self);
    client_.HandOff(executor_, done_, std::move(result));
  }

  HttpClient::Impl& client_;
  const HttpUrl url_;
  const std::string method_;
  bhttp::request<bhttp::string_body> request_;
  const std::chrono::milliseconds timeout_;
  Executor executor_;
  HttpClient::Callback done_;
  std::string name_;  // "POST http://host:port/path", for messages

  Shard* shard_ = nullptr;
  std::shared_ptr<Pool> pool_;
  std::shared_ptr<Connection> conn_;
  std::optional<asio::steady_timer> timer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  std::string stage_;
  bool reused_ = false;
  bool retried_ = false;
  int interim_answers_ = 0;  // 1xx answers skipped so far
  bool finished_ = false;
};

void Pool::Submit(const std::shared_ptr<Exchange>& ex, bool fresh) {
  if (!fresh) {
    while (!idle.empty()) {
      std::shared_ptr<Connection> conn = std::move(idle.back());
      idle.pop_back();
      const bool expired =
          SteadyClock::now() - conn->idle_since > client->options.idle_timeout;
      if (expired || !conn->Usable()) {
        Discard(conn);
        continue;
      }
      return ex->Run(std::move(conn), true);
    }
  }
  if (open < client->options.max_connections_per_host) {
    ++open;
    return ex->Run(std::make_shared<Connection>(shard->io, tls), false);
  }
  if (fresh) {
    waiting.push_front(ex);
  } else {
    waiting.push_back(ex);
  }
}

void Pool::Release(std::shared_ptr<Connection> conn) {
  while (!waiting.empty()) {
    std::shared_ptr<Exchange> next = std::move(waiting.front());
    waiting.pop_front();
    if (next->finished()) continue;
    return next->Run(std::move(conn), true);
  }
  conn->idle_since = SteadyClock::now();
  idle.push_back(std::move(conn));
}

void Pool::Discard(const std::shared_ptr<Connection>& conn) {
  conn->Close();
  --open;
  while (!waiting.empty()) {
    std::shared_ptr<Exchange> next = std::move(waiting.front());
    waiting.pop_front();
    if (next->finished()) continue;
    ++open;
    return next->Run(std::make_shared<Connection>(shard->io, tls), false);
  }
}

void Pool::CloseAll() {
  for (auto& conn : idle) conn->Close();
  open -= idle.size();
  idle.clear();
  waiting.clear();
}

// How often a shard sweeps: often enough that a connection its server has
// closed (CLOSE-WAIT here) goes within seconds.
std::chrono::milliseconds SweepPeriod(std::chrono::milliseconds idle_timeout) {
  return std::clamp(idle_timeout / 2, std::chrono::milliseconds(100),
                    std::chrono::milliseconds(5000));
}

void Sweep(Shard& shard, std::chrono::milliseconds idle_timeout) {
  const auto now = SteadyClock::now();
  for (auto it = shard.pools.begin(); it != shard.pools.end();) {
    Pool& pool = *it->second;
    std::vector<std::shared_ptr<Connection>> keep;
    for (auto& conn : pool.idle) {
      if (now - conn->idle_since > idle_timeout || !conn->Usable()) {
        conn->Close();
        --pool.open;
      } else {
        keep.push_back(std::move(conn));
      }
    }
    pool.idle = std::move(keep);
    if (pool.open == 0 && pool.waiting.empty()) {
      it = shard.pools.erase(it);
    } else {
      ++it;
    }
  }
}

void ArmSweeper(Shard& shard, std::chrono::milliseconds idle_timeout) {
  if (!shard.sweeper) return;
  shard.sweeper->expires_after(SweepPeriod(idle_timeout));
  shard.sweeper->async_wait([&shard, idle_timeout](const ErrorCode& ec) {
    if (ec || !shard.sweeper) return;  // cancelled: the client shuts down
    Sweep(shard, idle_timeout);
    ArmSweeper(shard, idle_timeout);
  });
}

}  // namespace

Shard& HttpClient::Impl::ShardFor(const std::string& key) {
  return *shards[std::hash<std::string>{}(key) % shards.size()];
}

const TlsSetup& HttpClient::Impl::TlsFor(const std::string& host,
                                         const std::string& port) {
  const TlsClientRule* rule = FindTlsRule(options.tls_rules, host, port);
  if (rule == nullptr) return default_tls;
  return rule_tls[static_cast<std::size_t>(rule - options.tls_rules.data())];
}

void HttpClient::Impl::HandOff(Executor& executor, Callback& done,
                               Result<HttpClientResponse> result) {
  if (executor) {
    executor([done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  } else {
    done(std::move(result));
  }
  MutexLock lock(&mu);
  if (--in_flight == 0) idle_cv.SignalAll();
}

HttpClient::HttpClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpClient::~HttpClient() { Shutdown(); }

Result<std::unique_ptr<HttpClient>> HttpClient::Create(
    HttpClientOptions options) {
  if (options.io_threads == 0 || options.max_connections_per_host == 0 ||
      options.max_response_bytes == 0 || options.default_timeout.count() <= 0 ||
      options.idle_timeout.count() <= 0) {
    return InvalidArgumentError(
        "http client: io_threads, max_connections_per_host and "
        "max_response_bytes must be at least 1, default_timeout and "
        "idle_timeout positive");
  }
  auto impl = std::make_shared<Impl>(std::move(options));
  DTX_ASSIGN_OR_RETURN(impl->default_tls, MakeTlsSetup(nullptr, "(default)"));
  for (const TlsClientRule& rule : impl->options.tls_rules) {
    if (rule.target.empty()) {
      return InvalidArgumentError("http client: a TLS rule has no target");
    }
    DTX_ASSIGN_OR_RETURN(TlsSetup setup,
                         MakeTlsSetup(&rule.tls, "'" + rule.target + "'"));
    impl->rule_tls.push_back(std::move(setup));
  }
  for (std::size_t i = 0; i < impl->options.io_threads; ++i) {
    impl->shards.push_back(std::make_unique<Shard>());
  }
  std::unique_ptr<HttpClient> client(new HttpClient(impl));
  for (auto& shard : impl->shards) {
    Shard* raw = shard.get();
    try {
      raw->sweeper.emplace(raw->io);
      ArmSweeper(*raw, impl->options.idle_timeout);
      shard->thread = std::thread([raw] {
        internal::NameThisThread("dtx-http-call");
        raw->io.run();
      });
    } catch (const std::system_error& e) {
      return ResourceExhaustedError(
          std::string("http client: cannot start a thread: ") + e.what());
    }
  }
  return client;
}

void HttpClient::Send(HttpClientRequest request, Executor executor,
                      Callback done) {
  Impl& impl = *impl_;
  auto fail_now = [&](Status status) {
    {
      MutexLock lock(&impl.mu);
      ++impl.in_flight;
    }
    impl.HandOff(executor, done, std::move(status));
  };
  auto url = ParseHttpUrl(request.url);
  if (!url.ok()) return fail_now(url.status());
  if (!IsToken(request.method)) {
    return fail_now(InvalidArgumentError("http request to '" + request.url +
                                         "': bad method '" + request.method +
                                         "'"));
  }
  bhttp::request<bhttp::string_body> message;
  message.method_string(request.method);
  message.target(url->target);
  message.version(11);
  message.set(bhttp::field::host, url->host_header);
  message.set(bhttp::field::user_agent,
              std::string("dtx/") + DTX_VERSION_STRING);
  for (const auto& [name, value] : request.headers) {
    if (!IsToken(name) || HasCrLfNul(value)) {
      return fail_now(InvalidArgumentError(
          "http request to '" + request.url + "': header '" + name +
          "' has a bad name or a CR, LF or NUL in its value"));
    }
    if (IsConnectionHeader(name)) continue;
    message.insert(name, value);
  }
  message.body() = std::move(request.body);
  if (!message.body().empty() || request.method == "POST" ||
      request.method == "PUT" || request.method == "PATCH") {
    message.content_length(message.body().size());
  }
  const auto timeout = request.timeout.count() > 0
                           ? request.timeout
                           : impl.options.default_timeout;
  bool stopped;
  {
    MutexLock lock(&impl.mu);
    stopped = impl.shut_down;
    ++impl.in_flight;
  }
  if (stopped) {
    return impl.HandOff(executor, done,
                        CancelledError("http client: shut down"));
  }
  std::string key =
      (url->tls ? "https://" : "http://") + url->host + "|" + url->port;
  auto exchange =
      std::make_shared<Exchange>(impl, *url, request.method, std::move(message),
                                 timeout, std::move(executor), std::move(done));
  Shard& shard = impl.ShardFor(key);
  asio::post(shard.io, [&impl, &shard, exchange = std::move(exchange),
                        key = std::move(key), url = std::move(url).value()] {
    auto& pool = shard.pools[key];
    if (!pool) {
      pool = std::make_shared<Pool>();
      pool->client = &impl;
      pool->shard = &shard;
      pool->host = url.host;
      pool->port = url.port;
      if (url.tls) {
        const TlsSetup& tls = impl.TlsFor(url.host, url.port);
        pool->tls = tls.context.get();
        pool->verify_name =
            tls.server_name.empty() ? url.host : tls.server_name;
        pool->roots = tls.roots;
      }
    }
    bool stopping;
    {
      MutexLock lock(&impl.mu);
      stopping = impl.shut_down;
    }
    if (stopping) {
      // Shutdown's cancel may have run before this post: fail it here.
      exchange->Start(shard, pool);
      return exchange->Fail(CancelledError("http client: shut down"));
    }
    exchange->Start(shard, pool);
  });
}

Result<HttpClientResponse> HttpClient::SendBlocking(HttpClientRequest request) {
  std::promise<Result<HttpClientResponse>> promise;
  auto future = promise.get_future();
  Send(std::move(request), nullptr, [&promise](Result<HttpClientResponse> r) {
    promise.set_value(std::move(r));
  });
  return future.get();
}

void HttpClient::Shutdown() {
  Impl& impl = *impl_;
  MutexLock once(&impl.shutdown_mu);
  if (impl.joined) return;
  {
    MutexLock lock(&impl.mu);
    impl.shut_down = true;
  }
  for (auto& shard : impl.shards) {
    Shard* raw = shard.get();
    asio::post(raw->io, [raw] {
      // The queues first, so that failing a request does not hand its
      // connection to a waiting one.
      for (auto& [key, pool] : raw->pools) pool->CloseAll();
      auto active = raw->active;  // Fail erases from the set
      for (const auto& ex : active) {
        ex->Fail(CancelledError("http client: shut down"));
      }
    });
  }
  {
    MutexLock lock(&impl.mu);
    impl.idle_cv.Wait(&impl.mu, [&impl] {
      impl.mu.AssertHeld();
      return impl.in_flight == 0;
    });
  }
  for (auto& shard : impl.shards) {
    asio::post(shard->io, [raw = shard.get()] {
      for (auto& [key, pool] : raw->pools) pool->CloseAll();
      raw->pools.clear();
      raw->sweeper.reset();  // cancels its wait: nothing keeps io running
    });
    shard->work.reset();
  }
  for (auto& shard : impl.shards) {
    if (shard->thread.joinable()) shard->thread.join();
  }
  impl.joined = true;
}

HttpClient::Stats HttpClient::stats() const {
  Stats s;
  s.connections_opened =
      impl_->connections_opened.load(std::memory_order_relaxed);
  s.requests_reused = impl_->requests_reused.load(std::memory_order_relaxed);
  MutexLock lock(&impl_->mu);
  s.in_flight = impl_->in_flight;
  return s;
}

}  // namespace dtx
