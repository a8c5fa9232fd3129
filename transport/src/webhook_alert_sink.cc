// WebhookAlertSink on Boost.Beast's HTTP client. One io thread runs every
// delivery; each alert is a Delivery that goes through
//
//   Attempt: resolve -> connect -> write the POST -> read the answer
//      |  2xx: sent            other 4xx (or 1xx/3xx): failed
//      |  error, timeout, 5xx, 408, 429:
//      v
//   attempts left? -- no --> failed
//      | yes
//      v
//   Backoff: wait initial_backoff * 2^(attempt - 1), then Attempt again
//
// Each attempt opens a fresh connection ("Connection: close"), so that a
// webhook that restarted is found again, and has one deadline for all its
// steps (tcp_stream's timeout). `pending` counts the alerts between Report
// and their outcome, and bounds the queue. Shutdown waits for `pending` to
// reach 0 for up to the grace, then stops the io_context: the deliveries
// still pending are abandoned and counted failed.

#include "dtx/transport/webhook_alert_sink.h"

#include "dtx/internal/mutex.h"
#include "dtx/version.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

namespace dtx {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

struct Endpoint {
  std::string host;  // without brackets
  std::string port;
  std::string target;
  std::string host_header;  // as the URL has it, with the port if given
};

Result<Endpoint> ParseWebhookUrl(const std::string& url) {
  const std::string bad = "alert webhook: '" + url + "': ";
  if (url.rfind("https://", 0) == 0) {
    return InvalidArgumentError(
        bad +
        "https:// needs TLS, which dtx does not have yet (issue #15); use an "
        "http:// URL");
  }
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    return InvalidArgumentError(bad + "not an http:// URL");
  }
  const std::string rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find_first_of("/?");
  const std::string authority = rest.substr(0, slash);
  Endpoint e;
  e.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (e.target.front() == '?') e.target = "/" + e.target;
  e.host_header = authority;
  e.port = "80";
  if (authority.find('@') != std::string::npos) {
    return InvalidArgumentError(bad + "user info is not supported");
  }
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string::npos) {
      return InvalidArgumentError(bad + "unterminated [IPv6] host");
    }
    e.host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgumentError(bad + "bad port");
      e.port = after.substr(1);
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    e.host = authority.substr(0, colon);
    if (colon != std::string::npos) e.port = authority.substr(colon + 1);
  }
  if (e.host.empty()) return InvalidArgumentError(bad + "no host");
  const bool digits = !e.port.empty() && e.port.size() <= 5 &&
                      std::all_of(e.port.begin(), e.port.end(),
                                  [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoi(e.port) == 0 || std::stoi(e.port) > 65535) {
    return InvalidArgumentError(bad + "bad port '" + e.port + "'");
  }
  return e;
}

// Whether an answer is worth another POST: the webhook is down or busy, not
// refusing this alert.
bool Retryable(unsigned status) {
  return status >= 500 || status == 408 || status == 429;
}

}  // namespace

std::string AlertJson(const BranchAlert& a) {
  nlohmann::json body = {
      {"gid", a.gid},
      {"trans_type", std::string(ToString(a.trans_type))},
      {"status", std::string(ToString(a.status))},
      {"branch", a.branch_url},
      {"branch_id", a.branch_id},
      {"op", std::string(ToString(a.op))},
      {"error", a.error},
      {"retry_count", a.retry_count},
      {"threshold", a.threshold},
  };
  // `replace`: the error quotes what a branch answered, which may not be
  // UTF-8; the default handler would throw.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct WebhookAlertSink::Impl {
  explicit Impl(WebhookAlertSinkOptions o, Endpoint e)
      : options(std::move(o)),
        endpoint(std::move(e)),
        logger(options.logger ? options.logger : NewNullLogger()),
        io(std::make_unique<asio::io_context>()),
        work(io->get_executor()) {}

  void Ended(std::atomic<uint64_t>& count, Counter* counter) {
    count.fetch_add(1, std::memory_order_relaxed);
    if (counter != nullptr) counter->Increment();
    internal::MutexLock lock(&mu);
    --pending;
    if (pending == 0) cv.SignalAll();
  }

  const WebhookAlertSinkOptions options;
  const Endpoint endpoint;
  const std::shared_ptr<Logger> logger;

  // Reset by Shutdown once the thread is joined.
  std::unique_ptr<asio::io_context> io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work;
  std::thread thread;

  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> dropped{0};
  Counter* sent_counter = nullptr;
  Counter* failed_counter = nullptr;
  Counter* dropped_counter = nullptr;

  internal::Mutex mu;
  internal::CondVar cv{&mu};  // signalled when pending reaches 0
  std::size_t pending DTX_GUARDED_BY(mu) = 0;
  bool stopping DTX_GUARDED_BY(mu) = false;
  bool joined DTX_GUARDED_BY(mu) = false;
};

namespace {

// One alert on its way; owned by the handlers of its pending operation.
// Runs on the sink's io thread only.
class Delivery : public std::enable_shared_from_this<Delivery> {
 public:
  Delivery(WebhookAlertSink::Impl& sink, BranchAlert alert)
      : sink_(sink),
        alert_(std::move(alert)),
        resolver_(*sink.io),
        timer_(*sink.io) {
    const Endpoint& e = sink_.endpoint;
    request_.method(bhttp::verb::post);
    request_.target(e.target);
    request_.version(11);
    request_.set(bhttp::field::host, e.host_header);
    request_.set(bhttp::field::user_agent,
                 std::string("dtx/") + DTX_VERSION_STRING);
    request_.set(bhttp::field::content_type, "application/json");
    request_.set(bhttp::field::connection, "close");
    request_.body() = AlertJson(alert_);
    request_.prepare_payload();
  }

  void Attempt() {
    ++attempt_;
    stream_.emplace(*sink_.io);
    stream_->expires_after(sink_.options.request_timeout);
    resolver_.async_resolve(
        sink_.endpoint.host, sink_.endpoint.port,
        [self = shared_from_this()](const ErrorCode& ec,
                                    const tcp::resolver::results_type& r) {
          self->OnResolved(ec, r);
        });
  }

 private:
  void OnResolved(const ErrorCode& ec,
                  const tcp::resolver::results_type& results) {
    if (ec) return Retry("cannot resolve: " + ec.message());
    stream_->async_connect(
        results,
        [self = shared_from_this()](const ErrorCode& e, const tcp::endpoint&) {
          if (e) return self->Retry("cannot connect: " + e.message());
          self->Write();
        });
  }

  void Write() {
    bhttp::async_write(
        *stream_, request_,
        [self = shared_from_this()](const ErrorCode& e, std::size_t) {
          if (e) return self->Retry("cannot send: " + e.message());
          self->Read();
        });
  }

  void Read() {
    response_ = {};
    buffer_.clear();
    bhttp::async_read(
        *stream_, buffer_, response_,
        [self = shared_from_this()](const ErrorCode& e, std::size_t) {
          if (e) return self->Retry("no answer: " + e.message());
          self->OnAnswer();
        });
  }

  void OnAnswer() {
    ErrorCode ignored;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    const unsigned status = response_.result_int();
    if (status >= 200 && status < 300) {
      DTX_LOG(sink_.logger, LogLevel::kInfo,
              "alert webhook: gid=" << alert_.gid << " branch="
                                    << alert_.branch_id << " alert sent");
      sink_.Ended(sink_.sent, sink_.sent_counter);
      return;
    }
    const std::string why = "answered " + std::to_string(status);
    if (Retryable(status)) return Retry(why);
    Fail(why);
  }

  void Retry(const std::string& why) {
    if (stream_) {
      ErrorCode ignored;
      stream_->socket().close(ignored);
    }
    if (attempt_ >= sink_.options.max_attempts) return Fail(why);
    auto pause = sink_.options.initial_backoff;
    for (int i = 1; i < attempt_ && pause < std::chrono::hours(1); ++i) {
      pause *= 2;
    }
    DTX_LOG(sink_.logger, LogLevel::kDebug,
            "alert webhook: gid=" << alert_.gid << " attempt " << attempt_
                                  << " " << why << "; again in "
                                  << pause.count() << " ms");
    timer_.expires_after(pause);
    timer_.async_wait([self = shared_from_this()](const ErrorCode& e) {
      if (!e) self->Attempt();
    });
  }

  void Fail(const std::string& why) {
    DTX_LOG(sink_.logger, LogLevel::kWarn,
            "alert webhook: gid=" << alert_.gid << " branch="
                                  << alert_.branch_id << ": alert not delivered"
                                  << " after " << attempt_
                                  << " attempt(s): " << why);
    sink_.Ended(sink_.failed, sink_.failed_counter);
  }

  WebhookAlertSink::Impl& sink_;
  const BranchAlert alert_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  std::optional<beast::tcp_stream> stream_;
  bhttp::request<bhttp::string_body> request_;
  bhttp::response<bhttp::string_body> response_;
  beast::flat_buffer buffer_;
  int attempt_ = 0;
};

}  // namespace

WebhookAlertSink::WebhookAlertSink(std::shared_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

WebhookAlertSink::~WebhookAlertSink() {
  Shutdown(std::chrono::milliseconds(0));
}

Result<std::unique_ptr<WebhookAlertSink>> WebhookAlertSink::Start(
    WebhookAlertSinkOptions options) {
  DTX_ASSIGN_OR_RETURN(Endpoint endpoint, ParseWebhookUrl(options.url));
  if (options.max_queued == 0 || options.max_attempts < 1 ||
      options.request_timeout.count() <= 0 ||
      options.initial_backoff.count() < 0) {
    return InvalidArgumentError(
        "alert webhook: max_queued and max_attempts must be at least 1, "
        "request_timeout positive, initial_backoff not negative");
  }
  auto impl = std::make_shared<Impl>(std::move(options), std::move(endpoint));
  if (MetricsRegistry* registry = impl->options.metrics) {
    DTX_ASSIGN_OR_RETURN(
        CounterFamily * alerts,
        registry->AddCounterFamily(
            "dtx_alerts_total",
            "Alerts for branches that keep failing, by outcome: sent to the "
            "webhook, failed (not delivered after every attempt) or dropped "
            "(the queue was full).",
            {"outcome"}));
    impl->sent_counter = alerts->WithLabels({"sent"});
    impl->failed_counter = alerts->WithLabels({"failed"});
    impl->dropped_counter = alerts->WithLabels({"dropped"});
  }
  Impl* raw = impl.get();
  try {
    impl->thread = std::thread([raw] { raw->io->run(); });
  } catch (const std::system_error& e) {
    return ResourceExhaustedError(
        std::string("alert webhook: cannot start a thread: ") + e.what());
  }
  return std::unique_ptr<WebhookAlertSink>(
      new WebhookAlertSink(std::move(impl)));
}

void WebhookAlertSink::Report(BranchAlert alert) {
  Impl& s = *impl_;
  {
    internal::MutexLock lock(&s.mu);
    if (!s.stopping && s.pending < s.options.max_queued) {
      ++s.pending;
      // Under the lock, so that Shutdown, once it set `stopping`, has seen
      // every post there will be.
      asio::post(*s.io, [&s, alert = std::move(alert)]() mutable {
        std::make_shared<Delivery>(s, std::move(alert))->Attempt();
      });
      return;
    }
  }
  const uint64_t n = s.dropped.fetch_add(1, std::memory_order_relaxed) + 1;
  if (s.dropped_counter != nullptr) s.dropped_counter->Increment();
  // The 1st, 2nd, 4th, 8th... drop: a flood of alerts is not a flood of log
  // lines.
  if ((n & (n - 1)) == 0) {
    DTX_LOG(s.logger, LogLevel::kWarn,
            "alert webhook: gid="
                << alert.gid << ": alert dropped (" << s.options.max_queued
                << " pending, or shutting down); " << n << " dropped so far");
  }
}

void WebhookAlertSink::Shutdown(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  std::size_t abandoned = 0;
  {
    internal::MutexLock lock(&s.mu);
    if (s.joined) return;
    s.stopping = true;
    s.cv.WaitFor(&s.mu, grace, [&s] {
      s.mu.AssertHeld();
      return s.pending == 0;
    });
    s.joined = true;
  }
  s.work.reset();
  s.io->stop();
  if (s.thread.joinable()) s.thread.join();
  // Destroys the deliveries still pending, closing their connections now
  // rather than with the sink.
  s.io.reset();
  {
    internal::MutexLock lock(&s.mu);
    abandoned = s.pending;
    s.pending = 0;
  }
  if (abandoned > 0) {
    s.failed.fetch_add(abandoned, std::memory_order_relaxed);
    if (s.failed_counter != nullptr) s.failed_counter->Increment(abandoned);
    DTX_LOG(
        s.logger, LogLevel::kWarn,
        "alert webhook: " << abandoned << " alert(s) abandoned at shutdown");
  }
}

WebhookAlertSink::Stats WebhookAlertSink::stats() const {
  return Stats{impl_->sent.load(std::memory_order_relaxed),
               impl_->failed.load(std::memory_order_relaxed),
               impl_->dropped.load(std::memory_order_relaxed)};
}

}  // namespace dtx
