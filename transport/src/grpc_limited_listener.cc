#include "grpc_limited_listener.h"

#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <string_view>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace dtx::internal {
namespace {

using Clock = std::chrono::steady_clock;

// The client's connection preface (RFC 9113, 3.4).
constexpr std::string_view kPreface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
// After EMFILE/ENFILE, accepting pauses this long (the pending connection
// stays in the kernel's queue meanwhile).
constexpr std::chrono::milliseconds kAcceptPause{100};
// Connections accepted per wake-up at most, so that timeouts stay on time.
constexpr int kAcceptBurst = 64;
// At most one warning about refusals this often.
constexpr std::chrono::seconds kWarnEvery{10};

std::string Errno(int e) { return std::strerror(e); }

// host and port of "host:port" or "[v6]:port".
Result<std::pair<std::string, std::string>> SplitAddress(
    const std::string& address) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return InvalidArgumentError("DtmServer: listen address '" + address +
                                "' is not host:port");
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(host, address.substr(colon + 1));
}

void CloseFd(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace

Result<std::unique_ptr<GrpcLimitedListener>> GrpcLimitedListener::Bind(
    Options options) {
  DTX_ASSIGN_OR_RETURN(auto host_port, SplitAddress(options.address));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int gai =
      ::getaddrinfo(host_port.first.empty() ? nullptr : host_port.first.c_str(),
                    host_port.second.c_str(), &hints, &found);
  if (gai != 0) {
    return UnavailableError("DtmServer: cannot listen on " + options.address +
                            ": " + ::gai_strerror(gai));
  }
  std::string last_error = "no address";
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  a->ai_protocol);
    if (fd < 0) {
      last_error = Errno(errno);
      continue;
    }
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (a->ai_family == AF_INET6) {
      // "[::]" takes IPv4 clients too, as gRPC's own listener does.
      const int off = 0;
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 ||
        ::listen(fd, SOMAXCONN) != 0) {
      last_error = Errno(errno);
      CloseFd(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    return UnavailableError("DtmServer: cannot listen on " + options.address +
                            " (" + last_error + ")");
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  int port = 0;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    port = bound.ss_family == AF_INET6
               ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
               : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  int wake[2];
  if (::pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0) {
    const std::string e = Errno(errno);
    CloseFd(fd);
    return UnavailableError("DtmServer: pipe: " + e);
  }
  if (!options.logger) options.logger = NewNullLogger();
  // Zero: gRPC's own default for its listeners.
  if (options.handshake_timeout.count() <= 0) {
    options.handshake_timeout = std::chrono::seconds(120);
  }
  return std::unique_ptr<GrpcLimitedListener>(
      new GrpcLimitedListener(std::move(options), fd, port, wake[0], wake[1]));
}

GrpcLimitedListener::GrpcLimitedListener(Options options, int listen_fd,
                                         int port, int wake_read,
                                         int wake_write)
    : options_(std::move(options)),
      listen_fd_(listen_fd),
      port_(port),
      wake_read_(wake_read),
      wake_write_(wake_write) {}

GrpcLimitedListener::~GrpcLimitedListener() {
  Stop();
  CloseFd(listen_fd_);
  CloseFd(wake_read_);
  CloseFd(wake_write_);
}

void GrpcLimitedListener::Start(grpc::Server* server) {
  thread_ = std::thread([this, server] { Loop(server); });
}

void GrpcLimitedListener::Stop() {
  if (!thread_.joinable()) return;
  const char byte = 0;
  while (::write(wake_write_, &byte, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
  CloseFd(listen_fd_);
  listen_fd_ = -1;
}

void GrpcLimitedListener::Loop(grpc::Server* server) {
  struct Waiting {
    int fd;
    Clock::time_point deadline;
  };
  struct Handed {
    int fd;
    dev_t dev;
    ino_t ino;
  };
  std::vector<Waiting> preface;  // admitted, waiting for the preface
  std::vector<Handed> handed;    // with gRPC
  Clock::time_point accept_paused_until{};
  Clock::time_point last_warning{};
  std::size_t refused_since_warning = 0;

  auto still_open = [](const Handed& h) {
    struct stat st {};
    return ::fstat(h.fd, &st) == 0 && st.st_dev == h.dev && st.st_ino == h.ino;
  };
  auto hand_over = [&](int fd) {
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &on, sizeof on);  // gRPC's
    struct stat st {};
    ::fstat(fd, &st);
    handed.push_back({fd, st.st_dev, st.st_ino});
    grpc::AddInsecureChannelFromFd(server, fd);
  };
  auto refuse = [&](int fd, Clock::time_point now) {
    ::close(fd);
    ++refused_since_warning;
    if (now - last_warning >= kWarnEvery) {
      DTX_LOG(options_.logger, LogLevel::kWarn,
              "grpc: " << refused_since_warning
                       << " connection(s) refused: MaxConnections ("
                       << options_.max_connections << ") are open");
      last_warning = now;
      refused_since_warning = 0;
    }
  };

  std::vector<pollfd> fds;
  for (;;) {
    Clock::time_point now = Clock::now();
    fds.clear();
    fds.push_back({wake_read_, POLLIN, 0});
    const bool accepting = now >= accept_paused_until;
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    for (const Waiting& w : preface) {
      fds.push_back({w.fd, static_cast<short>(POLLIN | POLLRDHUP), 0});
    }
    std::optional<Clock::time_point> next;
    auto consider = [&next](Clock::time_point t) {
      if (!next || t < *next) next = t;
    };
    for (const Waiting& w : preface) consider(w.deadline);
    if (!accepting) consider(accept_paused_until);
    int timeout_ms = -1;
    if (next) {
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          std::chrono::ceil<std::chrono::milliseconds>(*next - now).count(), 0,
          60000));
    }
    const int ready =
        ::poll(fds.data(), static_cast<nfds_t>(fds.size()), timeout_ms);
    if (ready < 0 && errno != EINTR) {
      DTX_LOG(options_.logger, LogLevel::kError,
              "grpc: listener poll: " << Errno(errno));
      break;
    }
    if (fds[0].revents != 0) break;  // Stop
    now = Clock::now();

    // Admitted connections: hand over once the preface is there.
    std::size_t i = 2;
    std::vector<Waiting> still_waiting;
    for (const Waiting& w : preface) {
      const short ev = fds[i++].revents;
      if (ev != 0) {
        char head[kPreface.size()];
        const ssize_t n =
            ::recv(w.fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) {
          const auto got = static_cast<std::size_t>(n);
          if (got == kPreface.size() ||
              std::string_view(head, got) != kPreface.substr(0, got)) {
            // The preface, or bytes that are not one: gRPC answers both.
            hand_over(w.fd);
            continue;
          }
          // Part of it: wait for the rest, unless the client has ended its
          // side (readable for that, with the rest never to come).
          if ((ev & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
            CloseFd(w.fd);
            continue;
          }
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
          CloseFd(w.fd);  // the client left
          continue;
        }
      }
      if (now >= w.deadline) {
        DTX_LOG(options_.logger, LogLevel::kDebug,
                "grpc: a connection sent no HTTP/2 preface within "
                    << options_.handshake_timeout.count() << " ms; closed");
        CloseFd(w.fd);
        continue;
      }
      still_waiting.push_back(w);
    }
    preface.swap(still_waiting);

    if (!accepting || (fds[1].revents & POLLIN) == 0) continue;
    for (int burst = 0; burst < kAcceptBurst; ++burst) {
      const int fd =
          ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
          DTX_LOG(options_.logger, LogLevel::kWarn,
                  "grpc: accept: " << Errno(errno) << "; pausing "
                                   << kAcceptPause.count() << " ms");
          accept_paused_until = now + kAcceptPause;
        }
        break;  // EAGAIN, or a connection that went away meanwhile
      }
      std::size_t open = preface.size() + handed.size();
      if (open >= options_.max_connections) {
        handed.erase(
            std::remove_if(handed.begin(), handed.end(),
                           [&](const Handed& h) { return !still_open(h); }),
            handed.end());
        open = preface.size() + handed.size();
      }
      if (open >= options_.max_connections) {
        refuse(fd, now);
      } else {
        // Readable only once the whole preface is there (or the client
        // left): a client that sends it byte by byte wakes nobody.
        const int whole = static_cast<int>(kPreface.size());
        ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &whole, sizeof whole);
        preface.push_back({fd, now + options_.handshake_timeout});
      }
    }
  }
  for (const Waiting& w : preface) CloseFd(w.fd);
}

}  // namespace dtx::internal
