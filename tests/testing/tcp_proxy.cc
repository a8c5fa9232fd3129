#include "tcp_proxy.h"

#include <asio/connect.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <future>
#include <set>
#include <thread>

namespace dtx::testing {

using asio::ip::tcp;

// Everything below runs on the io thread, except the constructor (before the
// thread starts) and RunSync.
struct TcpProxy::Impl {
  enum class Mode { kForward, kReset, kBlackhole };

  // One direction of a connection: bytes read from `from` go to `to`.
  struct Pipe {
    tcp::socket* from = nullptr;
    tcp::socket* to = nullptr;
    std::array<char, 16384> buffer{};
    std::string held;     // read during a blackhole, not yet forwarded
    std::string writing;  // what the write in flight sends
    bool paused = false;  // a blackhole stopped this pipe
    bool eof = false;     // `from` ended during a blackhole
  };

  struct Session {
    explicit Session(asio::io_context& io) : client(io), upstream(io) {
      pipes[0].from = &client;
      pipes[0].to = &upstream;
      pipes[1].from = &upstream;
      pipes[1].to = &client;
    }
    tcp::socket client;
    tcp::socket upstream;
    std::array<Pipe, 2> pipes;
    bool closed = false;
  };

  Impl(std::string host, int to_port)
      : target_host(std::move(host)), target_port(to_port), acceptor(io) {}

  void RunSync(std::function<void()> fn) {
    std::promise<void> done;
    asio::post(io, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  void Accept() {
    auto session = std::make_shared<Session>(io);
    acceptor.async_accept(session->client,
                          [this, session](const asio::error_code& ec) {
                            if (ec) {
                              if (ec != asio::error::operation_aborted)
                                Accept();
                              return;
                            }
                            accepted.fetch_add(1);
                            if (mode == Mode::kReset) {
                              ResetSocket(session->client);
                            } else {
                              Connect(session);
                            }
                            Accept();
                          });
  }

  void Connect(const std::shared_ptr<Session>& session) {
    sessions.insert(session);
    asio::error_code ec;
    const auto address = asio::ip::make_address(target_host, ec);
    if (ec) {
      Close(session);
      return;
    }
    session->upstream.async_connect(
        tcp::endpoint(address, static_cast<unsigned short>(target_port)),
        [this, session](const asio::error_code& error) {
          if (session->closed) return;
          if (error) {
            Close(session);
            return;
          }
          Read(session, 0);
          Read(session, 1);
        });
  }

  void Read(const std::shared_ptr<Session>& session, int d) {
    if (session->closed) return;
    Pipe& pipe = session->pipes[d];
    pipe.from->async_read_some(
        asio::buffer(pipe.buffer),
        [this, session, d](const asio::error_code& ec, std::size_t n) {
          if (session->closed) return;
          Pipe& p = session->pipes[d];
          if (mode == Mode::kBlackhole) {
            // Held, not lost: Restore() sends it (and the end, if any).
            p.held.append(p.buffer.data(), n);
            p.paused = true;
            if (ec) p.eof = true;
            return;
          }
          if (ec) {
            Close(session);
            return;
          }
          Write(session, d, std::string(p.buffer.data(), n));
        });
  }

  void Write(const std::shared_ptr<Session>& session, int d,
             std::string bytes) {
    Pipe& pipe = session->pipes[d];
    pipe.writing = std::move(bytes);
    asio::async_write(
        *pipe.to, asio::buffer(pipe.writing),
        [this, session, d](const asio::error_code& ec, std::size_t) {
          if (session->closed) return;
          if (ec) {
            Close(session);
            return;
          }
          Read(session, d);
        });
  }

  void Close(const std::shared_ptr<Session>& session) {
    if (session->closed) return;
    session->closed = true;
    asio::error_code ignored;
    session->client.close(ignored);
    session->upstream.close(ignored);
    sessions.erase(session);
  }

  static void ResetSocket(tcp::socket& socket) {
    asio::error_code ignored;
    // A zero linger time makes close() send a reset instead of a FIN.
    socket.set_option(asio::socket_base::linger(true, 0), ignored);
    socket.close(ignored);
  }

  void CutNow(Mode to) {
    mode = to;
    if (to != Mode::kReset) return;
    for (const auto& session : sessions) {
      session->closed = true;
      ResetSocket(session->client);
      ResetSocket(session->upstream);
    }
    sessions.clear();
  }

  void RestoreNow() {
    mode = Mode::kForward;
    // A copy: a resumed session may close while this loop runs.
    const auto all = sessions;
    for (const auto& session : all) {
      for (int d = 0; d < 2; ++d) {
        Pipe& pipe = session->pipes[d];
        if (!pipe.paused || session->closed) continue;
        pipe.paused = false;
        std::string held = std::move(pipe.held);
        pipe.held.clear();
        if (pipe.eof) {
          // What came before the end still goes through, then both close.
          pipe.writing = std::move(held);
          asio::async_write(*pipe.to, asio::buffer(pipe.writing),
                            [this, session](const asio::error_code&,
                                            std::size_t) { Close(session); });
        } else if (held.empty()) {
          Read(session, d);
        } else {
          Write(session, d, std::move(held));
        }
      }
    }
  }

  std::size_t HeldNow() const {
    std::size_t n = 0;
    for (const auto& session : sessions) {
      for (const Pipe& pipe : session->pipes) n += pipe.held.size();
    }
    return n;
  }

  const std::string target_host;
  const int target_port;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::set<std::shared_ptr<Session>> sessions;
  Mode mode = Mode::kForward;
  std::atomic<std::size_t> accepted{0};
  int port = 0;
  std::thread thread;
};

Result<std::unique_ptr<TcpProxy>> TcpProxy::Start(
    const std::string& target_host, int target_port) {
  auto impl = std::make_unique<Impl>(target_host, target_port);
  asio::error_code ec;
  const tcp::endpoint local(asio::ip::make_address("127.0.0.1"), 0);
  impl->acceptor.open(local.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(local, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return UnavailableError("tcp proxy: cannot listen: " + ec.message());
  impl->port = impl->acceptor.local_endpoint(ec).port();
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<TcpProxy>(new TcpProxy(std::move(impl)));
}

TcpProxy::TcpProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TcpProxy::~TcpProxy() {
  Impl* impl = impl_.get();
  impl->RunSync([impl] {
    asio::error_code ignored;
    impl->acceptor.close(ignored);
    const auto all = impl->sessions;
    for (const auto& session : all) impl->Close(session);
  });
  // Handlers still queued are destroyed with the io_context, never run.
  impl->io.stop();
  impl->thread.join();
}

int TcpProxy::port() const { return impl_->port; }

void TcpProxy::Cut(CutMode mode) {
  Impl* impl = impl_.get();
  const Impl::Mode to =
      mode == CutMode::kReset ? Impl::Mode::kReset : Impl::Mode::kBlackhole;
  impl->RunSync([impl, to] { impl->CutNow(to); });
}

void TcpProxy::Restore() {
  Impl* impl = impl_.get();
  impl->RunSync([impl] { impl->RestoreNow(); });
}

std::size_t TcpProxy::accepted() const { return impl_->accepted.load(); }

std::size_t TcpProxy::open_connections() const {
  Impl* impl = impl_.get();
  std::size_t n = 0;
  impl->RunSync([impl, &n] { n = impl->sessions.size(); });
  return n;
}

std::size_t TcpProxy::held_bytes() const {
  Impl* impl = impl_.get();
  std::size_t n = 0;
  impl->RunSync([impl, &n] { n = impl->HeldNow(); });
  return n;
}

}  // namespace dtx::testing
