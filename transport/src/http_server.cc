// HttpServer on Boost.Beast: one acceptor, one Connection per client socket,
// each owned by its own strand, as the sessions of asio's examples are.
//
// A Connection keeps the requests it has read as an ordered queue of slots;
// a slot is answered when the handler's responder delivers (posted to the
// strand) and answers are written strictly from the front, which is how
// pipelined requests are answered in order.
//
//   reading ──(request read)──► Dispatch: a slot is queued, the handler runs;
//      ▲                        the next request is read while fewer than
//      │                        max_pipelined slots wait (ReadNext)
//      │
//   WriteNext: the front slot has its answer ──► writing ──(written)──┐
//      ▲                                                              │
//      └──────── keep-alive, more to read or to write ◄───────────────┤
//                                                                     │
//   the written answer said "Connection: close", or the client ended  │
//   its side and nothing is left ──► Linger: our side is shut, the  ◄─┘
//   rest of the client's data is read and dropped until it closes (or
//   kLinger passes), so that unread input does not turn the close into a
//   reset that could destroy the answer in flight ──► Close
//
// A request that cannot be read (malformed 400, header too large 431, body
// too large 413) queues a slot with its error answer and stops reading; the
// connection lingers and closes after that answer.
//
// Invariants, all on the strand: at most one read (the parser's or the
// drain's) and one write are outstanding; `closed_` means the socket is
// closed and the connection left the server's table; `read_closed_` means no
// further request is read; a slot leaves the queue only when its answer is
// written (or the connection closes).
//
// Timer: one per connection. While nothing is pending (no slot, no write) it
// gives the next request read_timeout from the moment the connection became
// idle; while writing, the write gets write_timeout; while the handler holds
// a request it does not run (the handler owns its own deadline); while
// lingering, kLinger. When it fires the connection closes.
//
// TLS (options.tls): the same Connection runs over a ServerStream that is
// TLS over the socket. Before reading its first request, a TLS connection
// peeks at the first byte: a TLS handshake record (0x16) starts the
// handshake; anything else is a plaintext request, answered 400 in plaintext
// ("this port serves HTTPS") so that the client learns why, and the
// connection lingers and closes as after any error answer. A failed
// handshake (no or a refused client certificate, a client that does not
// trust ours) is logged at info with OpenSSL's reason, and the connection
// closes. The read timeout covers the handshake as it covers a request.
// Closing a TLS connection sends no close_notify: every answer carries its
// length, so a client cannot mistake a cut answer for a whole one.
//
// Shutdown (HttpServer::Shutdown): the acceptor closes; idle connections
// close at once (BeginShutdown); the others finish their slots, answering
// requests read meanwhile 503, and close after the last; after the grace,
// AbandonPending answers every unanswered slot 503; then ForceClose. Only
// then does the server stop posting deliveries (ServerState::posting) and
// join its threads, so that a responder that outlives the server posts to
// nothing.

#include "dtx/transport/http_server.h"

#include "dtx/internal/mutex.h"
#include "dtx/internal/thread_name.h"

#include "tls_files.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <deque>
#include <exception>
#include <limits>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dtx {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = asio::basic_stream_socket<tcp, Strand>;
using Timer = asio::steady_timer::rebind_executor<Strand>::other;
using Clock = std::chrono::steady_clock;
using internal::MutexLock;

// How long a closing connection waits for the client to close its side.
constexpr std::chrono::milliseconds kLinger{2000};
// At most one warning about refused connections this often.
constexpr std::chrono::seconds kRefusalWarnEvery{10};
// After the grace: how long the 503 answers of abandoned requests get.
constexpr std::chrono::milliseconds kAbandonBudget{1000};
// Pause before accepting again after running out of descriptors.
constexpr std::chrono::milliseconds kAcceptRetry{100};

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

class Connection;

// A connection's byte stream: the socket itself, or TLS over it. Beast and
// Asio read and write through it (it is an AsyncReadStream and an
// AsyncWriteStream), so one Connection serves both.
class ServerStream {
 public:
  using executor_type = Strand;

  ServerStream(Strand strand, asio::ssl::context* tls) : socket_(strand) {
    if (tls != nullptr) tls_.emplace(socket_, *tls);
  }
  ServerStream(const ServerStream&) = delete;
  ServerStream& operator=(const ServerStream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  Socket& socket() { return socket_; }
  // The TLS layer. REQUIRES: tls().
  asio::ssl::stream<Socket&>& tls_layer() { return *tls_; }
  bool tls() const { return tls_.has_value() && !plaintext_; }
  // Reads and writes skip TLS from now on: used only to answer a client
  // that sent plaintext to the TLS port.
  void UsePlaintext() { plaintext_ = true; }

  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls()) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  template <typename Buffers, typename Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (tls()) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

 private:
  Socket socket_;
  std::optional<asio::ssl::stream<Socket&>> tls_;
  bool plaintext_ = false;
};

// The first byte of a TLS connection: a handshake record.
constexpr unsigned char kTlsHandshakeRecord = 0x16;

// What the acceptor, the connections and the responders share; outlives them
// all (each holds it).
struct ServerState {
  ServerState(HttpServerOptions o, HttpHandler h)
      : options(std::move(o)),
        handler(std::move(h)),
        logger(options.logger ? options.logger : NewNullLogger()) {}

  const HttpServerOptions options;
  const HttpHandler handler;
  const std::shared_ptr<Logger> logger;
  // Set when options.tls is enabled (by HttpServer::Start).
  std::optional<asio::ssl::context> tls;

  internal::Mutex mu;
  internal::CondVar cv{&mu};  // signalled when a connection closes
  // Open connections (a connection leaves when it closes its socket).
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections
      DTX_GUARDED_BY(mu);
  bool stopping DTX_GUARDED_BY(mu) = false;
  // Set with `stopping`, read without the lock by every answer written: the
  // last answer pending on a connection, written once Shutdown began, says
  // "Connection: close" even before the connection's BeginShutdown has run
  // on its strand.
  std::atomic<bool> closing{false};
  // False once Shutdown is past its last use of the io_context: responders
  // then deliver nowhere.
  bool posting DTX_GUARDED_BY(mu) = true;
};

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  const std::string port = std::to_string(endpoint.port());
  return endpoint.address().is_v6() ? "[" + address + "]:" + port
                                    : address + ":" + port;
}

// A header a handler may set: a token name and a value without CR, LF or NUL
// (no response splitting), and not one the server writes itself.
bool AcceptableHeader(std::string_view name, std::string_view value) {
  static constexpr std::string_view kTokenExtras = "!#$%&'*+-.^_`|~";
  if (name.empty() || name.size() > 256 || value.size() > 16 * 1024) {
    return false;
  }
  for (const char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 &&
        kTokenExtras.find(c) == std::string_view::npos) {
      return false;
    }
  }
  if (value.find_first_of(std::string_view("\r\n\0", 3)) !=
      std::string_view::npos) {
    return false;
  }
  for (const std::string_view own :
       {"content-length", "connection", "transfer-encoding", "server"}) {
    if (HttpNamesEqual(name, own)) return false;
  }
  return true;
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ServerState> state, Strand strand)
      : state_(std::move(state)),
        strand_(strand),
        stream_(strand, state_->tls ? &*state_->tls : nullptr),
        socket_(stream_.socket()),
        timer_(strand) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Socket& socket() { return socket_; }
  const Strand& strand() const { return strand_; }

  // Owned by the strand from here on.
  void Start() {
    ErrorCode ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    const tcp::endpoint peer = socket_.remote_endpoint(ignored);
    remote_ = FormatEndpoint(peer);
    bool stopping = false;
    {
      ServerState& s = *state_;
      MutexLock lock(&s.mu);
      stopping = s.stopping;
      // A refused connection is not counted; an admitted one is already
      // (OnAccept, with a limit).
      if (!stopping && !refused_) s.connections.emplace(this, weak_from_this());
    }
    if (stopping) return Close();
    if (refused_) {
      if (stream_.tls()) return Close();
      UpdateTimer();
      return QueueError(503, "http: too many connections (at most " +
                                 std::to_string(options().max_connections) +
                                 " open); try again later");
    }
    UpdateTimer();
    if (stream_.tls()) return AwaitFirstByte();
    ReadNext();
  }

  // Before Start, on the acceptor: the connection is over the limit; Start
  // answers 503 and closes instead of serving it.
  void Refuse() { refused_ = true; }

  // Shutdown's first step: idle connections close now; busy ones stop
  // reading and close after their last answer.
  void BeginShutdown() {
    if (closed_) return;
    shutting_down_ = true;
    read_closed_ = true;
    if (lingering_) return;
    if (slots_.empty() && !writing_) return Close();
    WriteNext();
  }

  // After the grace: every request still unanswered is answered 503.
  void AbandonPending() {
    if (closed_) return;
    for (Slot& slot : slots_) {
      if (!slot.answer) {
        slot.answer = HttpResponse::Error(503, "http: server shutting down");
      }
    }
    WriteNext();
  }

  void ForceClose() { Close(); }

 private:
  struct Slot {
    std::uint64_t id = 0;
    unsigned version = 11;
    bool keep_alive = false;
    bool head = false;
    std::string method;
    std::string path;
    Clock::time_point started;
    std::optional<HttpResponse> answer;
  };

  const HttpServerOptions& options() const { return state_->options; }

  // TLS: waits for the client's first byte, then handshakes or answers a
  // plaintext request 400 (see the top of the file).
  void AwaitFirstByte() {
    reading_ = true;
    socket_.async_wait(
        tcp::socket::wait_read, [self = shared_from_this()](ErrorCode ec) {
          self->reading_ = false;
          if (self->closed_) return;
          if (ec) return self->Close();
          unsigned char first = 0;
          ErrorCode peek_error;
          const std::size_t n = self->socket_.receive(
              asio::buffer(&first, 1), tcp::socket::message_peek, peek_error);
          if (peek_error || n == 0) return self->Close();
          if (first != kTlsHandshakeRecord) {
            DTX_LOG(self->state_->logger, LogLevel::kInfo,
                    "http: " << self->remote_
                             << ": plaintext sent to the TLS port; answered "
                                "400");
            self->stream_.UsePlaintext();
            return self->QueueError(
                400,
                "http: this port serves HTTPS (TLS) and the request was "
                "plaintext; use https://");
          }
          self->Handshake();
        });
  }

  void Handshake() {
    reading_ = true;
    stream_.tls_layer().async_handshake(
        asio::ssl::stream_base::server,
        [self = shared_from_this()](ErrorCode ec) {
          self->reading_ = false;
          if (self->closed_) return;
          if (ec) {
            DTX_LOG(self->state_->logger, LogLevel::kInfo,
                    "http: " << self->remote_
                             << ": TLS handshake failed: " << ec.message());
            return self->Close();
          }
          self->UpdateTimer();
          self->ReadNext();
        });
  }

  void ReadNext() {
    if (closed_ || lingering_ || reading_ || read_closed_ ||
        slots_.size() >= options().max_pipelined) {
      return;
    }
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(options().max_header_bytes,
                              std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(options().max_body_bytes);
    reading_ = true;
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](ErrorCode ec, std::size_t) {
          self->OnHeader(ec);
        });
  }

  void OnHeader(ErrorCode ec) {
    reading_ = false;
    if (closed_) return;
    if (lingering_) return ec ? Close() : Drain();
    if (ec) return OnReadError(ec);
    const auto& header = parser_->get();
    if (shutting_down_) {
      read_closed_ = true;
      return QueueError(503, "http: server shutting down");
    }
    // A client that waits for "100 Continue" before its body gets it when
    // nothing is ahead of it; otherwise it sends the body after its own
    // timeout, which is still correct.
    if (header.version() >= 11 && slots_.empty() && !writing_ &&
        HttpNamesEqual(header[bhttp::field::expect], "100-continue")) {
      writing_ = true;
      write_deadline_ = Clock::now() + options().write_timeout;
      UpdateTimer();
      asio::async_write(stream_, asio::buffer(kContinue),
                        [self = shared_from_this()](ErrorCode e, std::size_t) {
                          self->writing_ = false;
                          if (self->closed_) return;
                          if (e) return self->Close();
                          self->UpdateTimer();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    reading_ = true;
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](ErrorCode ec, std::size_t) {
                        self->OnBody(ec);
                      });
  }

  void OnBody(ErrorCode ec) {
    reading_ = false;
    if (closed_) return;
    if (lingering_) return ec ? Close() : Drain();
    if (ec) return OnReadError(ec);
    Dispatch(parser_->release());
    ReadNext();
    UpdateTimer();
  }

  void OnReadError(ErrorCode ec) {
    read_closed_ = true;
    if (ec == asio::error::operation_aborted) return;
    if (ec == bhttp::error::end_of_stream) {
      // The client ended its side between requests: answer what is pending,
      // then close.
      if (slots_.empty() && !writing_) return Close();
      return UpdateTimer();
    }
    if (ec == bhttp::error::body_limit) {
      return QueueError(413, "http: the request body is larger than " +
                                 std::to_string(options().max_body_bytes) +
                                 " bytes");
    }
    if (ec == bhttp::error::header_limit ||
        ec == bhttp::error::buffer_overflow) {
      return QueueError(431, "http: the request header is larger than " +
                                 std::to_string(options().max_header_bytes) +
                                 " bytes");
    }
    if (ec.category() ==
            bhttp::make_error_code(bhttp::error::bad_target).category() &&
        ec != bhttp::error::partial_message) {
      return QueueError(400, "http: malformed request: " + ec.message());
    }
    // The client went away (mid-request, reset): nobody to answer.
    DTX_LOG(state_->logger, LogLevel::kDebug,
            "http: " << remote_ << ": " << ec.message());
    Close();
  }

  // An answer the server makes itself, after which the connection closes.
  void QueueError(int status, const std::string& message) {
    Slot slot;
    slot.id = next_id_++;
    slot.version =
        parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    slot.started = Clock::now();
    slot.answer = HttpResponse::Error(status, message);
    slots_.push_back(std::move(slot));
    read_closed_ = true;
    WriteNext();
  }

  void Dispatch(bhttp::request<bhttp::string_body> message) {
    Slot slot;
    slot.id = next_id_++;
    slot.version = message.version();
    slot.keep_alive = message.keep_alive();
    slot.head = message.method() == bhttp::verb::head;
    slot.started = Clock::now();
    if (!slot.keep_alive) read_closed_ = true;

    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.remote_address = remote_;
    const std::string_view target = message.target();
    std::optional<HttpResponse> refused;
    if (Status parsed = ParseRequestTarget(target, &request); !parsed.ok()) {
      refused = HttpResponse::Error(400, parsed.message());
    }
    slot.method = request.method;
    slot.path = refused ? std::string(target.substr(0, target.find('?')))
                        : request.path;
    slot.answer = std::move(refused);
    const bool answered = slot.answer.has_value();
    const std::uint64_t id = slot.id;
    slots_.push_back(std::move(slot));
    if (!owed_self_) owed_self_ = shared_from_this();
    if (answered) return WriteNext();

    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()),
                                   std::string(field.value()));
    }
    request.body = std::move(message.body());
    HttpResponder responder = MakeResponder(id);
    try {
      state_->handler(std::move(request), responder);
    } catch (const std::exception& e) {
      DTX_LOG(state_->logger, LogLevel::kError,
              "http: the handler of " << slots_.back().method << " "
                                      << slots_.back().path
                                      << " threw: " << e.what());
      responder.Respond(HttpResponse::Error(500, "http: the handler failed"));
    } catch (...) {
      DTX_LOG(state_->logger, LogLevel::kError,
              "http: the handler of " << slots_.back().method << " "
                                      << slots_.back().path << " threw");
      responder.Respond(HttpResponse::Error(500, "http: the handler failed"));
    }
  }

  // Delivers from any thread to this connection's strand, unless the server
  // is past its last use of the io_context or the connection is gone.
  HttpResponder MakeResponder(std::uint64_t id) {
    return HttpResponder(
        [weak = weak_from_this(), state = state_, id](HttpResponse answer) {
          // Declared before the lock so that, should this be the last
          // reference, the connection is destroyed after the lock is released.
          std::shared_ptr<Connection> self;
          ServerState& s = *state;
          MutexLock lock(&s.mu);
          if (!s.posting) return;
          self = weak.lock();
          if (self == nullptr) return;
          asio::post(self->strand(),
                     [self, id, answer = std::move(answer)]() mutable {
                       self->OnAnswer(id, std::move(answer));
                     });
        });
  }

  void OnAnswer(std::uint64_t id, HttpResponse answer) {
    if (closed_) return;
    for (Slot& slot : slots_) {
      if (slot.id != id) continue;
      if (!slot.answer) slot.answer = std::move(answer);
      break;
    }
    WriteNext();
  }

  void WriteNext() {
    if (closed_ || lingering_ || writing_ || slots_.empty() ||
        !slots_.front().answer) {
      return UpdateTimer();
    }
    Slot& slot = slots_.front();
    const bool last = slots_.size() == 1;
    const bool close_after =
        !slot.keep_alive ||
        (last &&
         (read_closed_ || state_->closing.load(std::memory_order_acquire)));
    auto message = std::make_shared<bhttp::response<bhttp::string_body>>();
    const int status = Encode(slot, close_after, *message);
    if (state_->logger->ShouldLog(LogLevel::kDebug)) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
          Clock::now() - slot.started);
      DTX_LOG(state_->logger, LogLevel::kDebug,
              "http: " << remote_ << " " << slot.method << " " << slot.path
                       << " " << status << " " << us.count() / 1000.0 << " ms");
    }
    writing_ = true;
    write_deadline_ = Clock::now() + options().write_timeout;
    UpdateTimer();
    bhttp::async_write(
        stream_, *message,
        [self = shared_from_this(), message, close_after](ErrorCode ec,
                                                          std::size_t) mutable {
          message.reset();  // kept alive until here: the write reads it
          self->OnWritten(ec, close_after);
        });
  }

  // The slot's answer as a Beast message; returns the status sent.
  int Encode(Slot& slot, bool close_after,
             bhttp::response<bhttp::string_body>& message) {
    HttpResponse& answer = *slot.answer;
    if (answer.status < 200 || answer.status > 599) {
      DTX_LOG(state_->logger, LogLevel::kError,
              "http: the handler of " << slot.method << " " << slot.path
                                      << " answered status " << answer.status
                                      << "; sent 500");
      answer = HttpResponse::Error(500, "http: the handler answered status " +
                                            std::to_string(answer.status));
    }
    try {
      message.version(slot.version);
      message.result(static_cast<unsigned>(answer.status));
      message.set(bhttp::field::server, "dtx");
      if (!answer.content_type.empty() &&
          AcceptableHeader("Content-Type", answer.content_type)) {
        message.set(bhttp::field::content_type, answer.content_type);
      }
      for (const auto& [name, value] : answer.headers) {
        if (AcceptableHeader(name, value)) {
          message.insert(name, value);
        } else {
          DTX_LOG(state_->logger, LogLevel::kWarn,
                  "http: dropped header '" << name << "' of the answer to "
                                           << slot.method << " " << slot.path);
        }
      }
      if (answer.status == 204 || answer.status == 304) answer.body.clear();
      const std::size_t length = answer.body.size();
      message.body() = std::move(answer.body);
      message.keep_alive(!close_after);
      message.prepare_payload();
      if (slot.head) {
        message.body().clear();
        message.content_length(length);
      }
    } catch (const std::exception& e) {
      DTX_LOG(state_->logger, LogLevel::kError,
              "http: cannot encode the answer to "
                  << slot.method << " " << slot.path << ": " << e.what());
      message = {};
      message.version(slot.version);
      message.result(bhttp::status::internal_server_error);
      message.set(bhttp::field::server, "dtx");
      message.set(bhttp::field::content_type, "application/json");
      message.body() = R"({"error":"http: the answer could not be encoded"})";
      message.keep_alive(!close_after);
      message.prepare_payload();
      return 500;
    }
    return answer.status;
  }

  void OnWritten(ErrorCode ec, bool close_after) {
    writing_ = false;
    if (closed_) return;
    if (ec) {
      DTX_LOG(state_->logger, LogLevel::kDebug,
              "http: " << remote_ << ": write: " << ec.message());
      return Close();
    }
    slots_.pop_front();
    // The completion that called this holds the connection too.
    if (slots_.empty()) owed_self_.reset();
    if (close_after || (read_closed_ && slots_.empty())) return Linger();
    WriteNext();
    ReadNext();
    UpdateTimer();
  }

  void Linger() {
    lingering_ = true;
    slots_.clear();
    owed_self_.reset();  // the drain or the timer holds it from here
    ErrorCode ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    linger_deadline_ = Clock::now() + kLinger;
    UpdateTimer();
    // An outstanding parser read continues the drain when it completes.
    if (!reading_) Drain();
  }

  void Drain() {
    if (drain_.empty()) drain_.resize(4096);
    reading_ = true;
    socket_.async_read_some(
        asio::buffer(drain_),
        [self = shared_from_this()](ErrorCode ec, std::size_t) {
          self->reading_ = false;
          if (self->closed_) return;
          if (ec) return self->Close();
          self->Drain();
        });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    ErrorCode ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
    ++timer_generation_;
    slots_.clear();
    // Every caller holds the connection (a completion, or a step posted by
    // ForEachConnection), so this is not the last reference.
    owed_self_.reset();
    ServerState& s = *state_;
    {
      MutexLock lock(&s.mu);
      s.connections.erase(this);
    }
    s.cv.SignalAll();
  }

  // Sets the timer for the current state (see the top of the file).
  void UpdateTimer() {
    if (closed_) return;
    const bool idle = slots_.empty() && !writing_;
    if (idle && !was_idle_) {
      idle_deadline_ = Clock::now() + options().read_timeout;
    }
    was_idle_ = idle;
    std::optional<Clock::time_point> deadline;
    if (lingering_) {
      deadline = linger_deadline_;
    } else if (writing_) {
      deadline = write_deadline_;
    } else if (idle) {
      deadline = idle_deadline_;
    }
    if (deadline == armed_) return;
    armed_ = deadline;
    ++timer_generation_;
    if (!deadline) {
      timer_.cancel();
      return;
    }
    timer_.expires_at(*deadline);
    timer_.async_wait([self = shared_from_this(),
                       generation = timer_generation_](ErrorCode ec) {
      if (ec || generation != self->timer_generation_ || self->closed_) {
        return;
      }
      DTX_LOG(self->state_->logger, LogLevel::kDebug,
              "http: " << self->remote_ << ": closed after a timeout");
      self->Close();
    });
  }

  const std::shared_ptr<ServerState> state_;
  const Strand strand_;
  ServerStream stream_;
  Socket& socket_;  // stream_'s
  Timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::deque<Slot> slots_;
  // Keeps the connection alive while it owes answers: after its last
  // request ("Connection: close", HTTP/1.0, the client's end of stream) no
  // read is outstanding, and an answer that comes later from another thread
  // would find the connection gone (the responder holds it weakly, so that
  // it never outlives the server). Set when a request is queued, reset when
  // the last answer is written and on Close.
  std::shared_ptr<Connection> owed_self_;
  std::uint64_t next_id_ = 0;
  std::string remote_;
  std::vector<char> drain_;

  bool reading_ = false;
  bool writing_ = false;
  bool read_closed_ = false;
  bool shutting_down_ = false;
  bool lingering_ = false;
  bool closed_ = false;
  bool refused_ = false;  // set by the acceptor before Start

  bool was_idle_ = false;
  Clock::time_point idle_deadline_;
  Clock::time_point write_deadline_;
  Clock::time_point linger_deadline_;
  std::optional<Clock::time_point> armed_;
  std::uint64_t timer_generation_ = 0;
};

// TLS 1.2 or later, with the listener's certificate and, for mutual TLS, the
// CAs that client certificates must chain to.
Status ConfigureTls(const internal::ServerTlsMaterial& material,
                    asio::ssl::context& context) {
  ErrorCode ec;
  context.set_options(
      asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
          asio::ssl::context::no_tlsv1_1,
      ec);
  const char* step = "options";
  if (!ec) {
    step = "certificate";
    context.use_certificate_chain(asio::buffer(material.cert_chain), ec);
  }
  if (!ec) {
    step = "key";
    context.use_private_key(asio::buffer(material.key), asio::ssl::context::pem,
                            ec);
  }
  if (!ec && !material.client_ca.empty()) {
    step = "client CA";
    context.add_certificate_authority(asio::buffer(material.client_ca), ec);
    if (!ec) {
      context.set_verify_mode(
          asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
    }
  }
  ERR_clear_error();
  if (ec) {
    return InvalidArgumentError(std::string("http: TLS ") + step +
                                " refused by OpenSSL: " + ec.message());
  }
  return Status::Ok();
}

bool IsOutOfResources(const ErrorCode& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_memory ||
         ec == asio::error::no_buffer_space ||
         ec == boost::system::errc::too_many_files_open_in_system;
}

}  // namespace

struct HttpServer::Impl {
  explicit Impl(std::shared_ptr<ServerState> s)
      : state(std::move(s)),
        io(static_cast<int>(state->options.io_threads)),
        work(asio::make_work_guard(io)),
        acceptor(asio::make_strand(io)),
        accept_retry(acceptor.get_executor()) {}

  // On the acceptor's strand.
  void Accept() {
    auto connection =
        std::make_shared<Connection>(state, asio::make_strand(io));
    acceptor.async_accept(
        connection->socket(),
        [this, connection](ErrorCode ec) { OnAccept(ec, connection); });
  }

  void OnAccept(ErrorCode ec, const std::shared_ptr<Connection>& connection) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      DTX_LOG(state->logger, LogLevel::kWarn, "http: accept: " << ec.message());
      if (IsOutOfResources(ec)) {
        accept_retry.expires_after(kAcceptRetry);
        accept_retry.async_wait([this](ErrorCode e) {
          if (!e) Accept();
        });
        return;
      }
      return Accept();
    }
    if (const std::size_t max = state->options.max_connections; max > 0) {
      // Counted here, not when the connection starts on its strand, so that
      // a burst of accepts cannot pass the limit.
      ServerState& s = *state;
      bool refused = false;
      {
        MutexLock lock(&s.mu);
        refused = s.connections.size() >= max;
        if (!refused) s.connections.emplace(connection.get(), connection);
      }
      if (refused) {
        connection->Refuse();
        ++refused_since_warning;
        if (!warned_refusal ||
            Clock::now() - last_refusal_warning >= kRefusalWarnEvery) {
          warned_refusal = true;
          DTX_LOG(state->logger, LogLevel::kWarn,
                  "http: " << refused_since_warning
                           << " connection(s) refused: max_connections (" << max
                           << ") open");
          last_refusal_warning = Clock::now();
          refused_since_warning = 0;
        }
      }
    }
    asio::post(connection->strand(), [connection] { connection->Start(); });
    Accept();
  }

  // Runs `step` on the strand of every open connection.
  template <typename Step>
  void ForEachConnection(Step step) {
    std::vector<std::shared_ptr<Connection>> open;
    {
      ServerState& s = *state;
      MutexLock lock(&s.mu);
      for (const auto& [unused, weak] : s.connections) {
        if (auto c = weak.lock()) open.push_back(std::move(c));
      }
    }
    for (const auto& c : open) {
      asio::post(c->strand(), [c, step] { step(*c); });
    }
  }

  // True when every connection closed before `deadline`.
  bool WaitForConnections(Clock::time_point deadline) {
    ServerState& s = *state;
    MutexLock lock(&s.mu);
    const auto left = deadline - Clock::now();
    return s.cv.WaitFor(&s.mu, std::max(left, Clock::duration{0}), [&s] {
      s.mu.AssertHeld();
      return s.connections.empty();
    });
  }

  std::shared_ptr<ServerState> state;
  // On the acceptor's strand: warnings about refused connections.
  std::size_t refused_since_warning = 0;
  bool warned_refusal = false;
  Clock::time_point last_refusal_warning{};
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work;
  asio::basic_socket_acceptor<tcp, Strand> acceptor;
  Timer accept_retry;
  tcp::endpoint bound;
  std::vector<std::thread> threads;
};

namespace {

Result<internal::ServerTlsMaterial> LoadTls(const TlsServerOptions& tls) {
  static constexpr const char* kNames[3] = {
      "the certificate file (TLS.CertFile)", "the key file (TLS.KeyFile)",
      "the client CA file (TLS.ClientCAFile)"};
  return internal::LoadServerTls(tls, "http", kNames);
}

}  // namespace

Status HttpServer::CheckTls(const TlsServerOptions& tls) {
  if (!tls.enabled()) return Status::Ok();
  return LoadTls(tls).status();
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                      HttpHandler handler) {
  if (options.port < 0 || options.port > 65535) {
    return InvalidArgumentError("http: port " + std::to_string(options.port) +
                                " is outside 0..65535");
  }
  if (options.host.empty()) return InvalidArgumentError("http: no host");
  if (options.io_threads == 0 || options.io_threads > 256) {
    return InvalidArgumentError("http: io_threads must be 1..256");
  }
  if (options.max_header_bytes == 0 || options.max_pipelined == 0 ||
      options.read_timeout.count() <= 0 || options.write_timeout.count() <= 0) {
    return InvalidArgumentError(
        "http: max_header_bytes, max_pipelined and the timeouts must be "
        "positive");
  }
  if (!handler) return InvalidArgumentError("http: no handler");

  std::optional<internal::ServerTlsMaterial> tls;
  if (options.tls.enabled()) {
    DTX_ASSIGN_OR_RETURN(tls, LoadTls(options.tls));
  }

  std::string host = options.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string where = options.host + ":" + std::to_string(options.port);
  auto state =
      std::make_shared<ServerState>(std::move(options), std::move(handler));
  if (tls) {
    for (const std::string& warning : tls->warnings) {
      DTX_LOG(state->logger, LogLevel::kWarn, warning);
    }
    DTX_RETURN_IF_ERROR(
        ConfigureTls(*tls, state->tls.emplace(asio::ssl::context::tls_server)));
  }
  auto impl = std::make_unique<Impl>(state);

  ErrorCode ec;
  tcp::resolver resolver(impl->io);
  const auto resolved = resolver.resolve(
      host, std::to_string(state->options.port),
      tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || resolved.empty()) {
    return UnavailableError("http: cannot resolve " + where + ": " +
                            (ec ? ec.message() : "no address"));
  }
  const tcp::endpoint endpoint = resolved.begin()->endpoint();
  auto& acceptor = impl->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) impl->bound = acceptor.local_endpoint(ec);
  if (ec) {
    return UnavailableError("http: cannot listen on " + where + ": " +
                            ec.message());
  }

  asio::post(acceptor.get_executor(), [raw = impl.get()] { raw->Accept(); });
  for (std::size_t i = 0; i < state->options.io_threads; ++i) {
    impl->threads.emplace_back([raw = impl.get()] {
      internal::NameThisThread("dtx-http-io");
      raw->io.run();
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Shutdown(std::chrono::milliseconds(0)); }

int HttpServer::port() const { return impl_->bound.port(); }

std::string HttpServer::address() const { return FormatEndpoint(impl_->bound); }

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  Impl& impl = *impl_;
  ServerState& state = *impl.state;
  {
    MutexLock lock(&state.mu);
    if (state.stopping) return;
    state.stopping = true;
    state.closing.store(true, std::memory_order_release);
  }
  asio::post(impl.acceptor.get_executor(), [&impl] {
    ErrorCode ignored;
    impl.acceptor.close(ignored);
    impl.accept_retry.cancel();
  });
  impl.ForEachConnection([](Connection& c) { c.BeginShutdown(); });
  if (!impl.WaitForConnections(Clock::now() + grace)) {
    impl.ForEachConnection([](Connection& c) { c.AbandonPending(); });
    if (!impl.WaitForConnections(Clock::now() + kAbandonBudget)) {
      impl.ForEachConnection([](Connection& c) { c.ForceClose(); });
      // Only a handler blocking an io thread keeps this from being quick.
      impl.WaitForConnections(Clock::now() + kAbandonBudget);
    }
  }
  {
    MutexLock lock(&state.mu);
    state.posting = false;
  }
  impl.work.reset();
  impl.io.stop();
  for (std::thread& t : impl.threads) t.join();
  impl.threads.clear();
}

}  // namespace dtx
