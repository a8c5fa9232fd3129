#include "http_test_client.h"

#include "dtx/internal/ascii.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace dtx::testing {
namespace {

using internal::EqualsIgnoreCase;

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

}  // namespace

std::optional<std::string> HttpTestResponse::Header(
    std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

Result<HttpTestConnection> HttpTestConnection::Connect(
    const std::string& host, int port, std::chrono::milliseconds timeout) {
  sockaddr_storage address{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in6);
  } else {
    return InvalidArgumentError("http test client: not a numeric host: " +
                                host);
  }
  const int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return UnavailableError("http test client: socket failed");
  HttpTestConnection connection(fd, timeout);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    return UnavailableError("http test client: connect to " + host + ":" +
                            std::to_string(port) + ": " + std::strerror(errno));
  }
  return connection;
}

HttpTestConnection::HttpTestConnection(HttpTestConnection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      timeout_(other.timeout_),
      buffer_(std::move(other.buffer_)) {}

HttpTestConnection& HttpTestConnection::operator=(
    HttpTestConnection&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    timeout_ = other.timeout_;
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

HttpTestConnection::~HttpTestConnection() {
  if (fd_ >= 0) close(fd_);
}

Status HttpTestConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return UnavailableError(std::string("http test client: send: ") +
                              std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

Status HttpTestConnection::SendRequest(
    std::string_view method, std::string_view target, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string request = std::string(method) + " " + std::string(target) +
                        " HTTP/1.1\r\nHost: test\r\n";
  for (const auto& [name, value] : headers) {
    request += name + ": " + value + "\r\n";
  }
  if (!body.empty() || method == "POST" || method == "PUT") {
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n";
  request += body;
  return Send(request);
}

bool HttpTestConnection::Fill() {
  char chunk[16384];
  for (;;) {
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
}

Result<HttpTestResponse> HttpTestConnection::ReadResponse(bool head) {
  std::size_t end = std::string::npos;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill()) {
      return UnavailableError(
          "http test client: the connection closed or timed out before a "
          "response" +
          (buffer_.empty() ? std::string() : " (got '" + buffer_ + "')"));
    }
  }
  const std::string head_text = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);

  HttpTestResponse response;
  std::size_t line_end = head_text.find("\r\n");
  const std::string status_line = head_text.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) {
    return InternalError("http test client: not a status line: " + status_line);
  }
  response.status = std::atoi(status_line.substr(9, 3).c_str());
  response.reason = status_line.size() > 13 ? status_line.substr(13) : "";
  while (line_end != std::string::npos) {
    const std::size_t start = line_end + 2;
    line_end = head_text.find("\r\n", start);
    const std::string line = head_text.substr(
        start,
        line_end == std::string::npos ? std::string::npos : line_end - start);
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    response.headers.emplace_back(
        line.substr(0, colon), Trim(std::string_view(line).substr(colon + 1)));
  }

  if (head || response.status < 200 || response.status == 204 ||
      response.status == 304) {
    return response;
  }
  if (auto length = response.Header("Content-Length")) {
    const std::size_t n = std::strtoul(length->c_str(), nullptr, 10);
    while (buffer_.size() < n) {
      if (!Fill()) {
        return UnavailableError(
            "http test client: the connection closed inside a body");
      }
    }
    response.body = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return response;
  }
  if (auto encoding = response.Header("Transfer-Encoding");
      encoding && EqualsIgnoreCase(*encoding, "chunked")) {
    return InternalError("http test client: chunked bodies are not read");
  }
  // No length: the body runs to the end of the stream.
  while (Fill()) {
  }
  response.body = std::move(buffer_);
  buffer_.clear();
  return response;
}

Result<HttpTestResponse> HttpTestConnection::Roundtrip(
    std::string_view method, std::string_view target, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  DTX_RETURN_IF_ERROR(SendRequest(method, target, body, headers));
  for (;;) {
    DTX_ASSIGN_OR_RETURN(HttpTestResponse r, ReadResponse(method == "HEAD"));
    if (r.status >= 200) return r;
  }
}

bool HttpTestConnection::ReadsEof() {
  if (!buffer_.empty()) return false;
  char byte = 0;
  for (;;) {
    const ssize_t n = recv(fd_, &byte, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    buffer_.push_back(byte);
    return false;
  }
}

Result<std::string> HttpTestConnection::ReadToEof() {
  std::string got = std::move(buffer_);
  buffer_.clear();
  char chunk[16384];
  for (;;) {
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      got.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || errno == ECONNRESET) return got;
    return UnavailableError("no end of stream within the timeout (" +
                            std::string(std::strerror(errno)) + "); got " +
                            std::to_string(got.size()) + " bytes");
  }
}

void HttpTestConnection::ShutdownWrite() { shutdown(fd_, SHUT_WR); }

int HttpTestConnection::local_port() const {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return -1;
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

Result<HttpTestResponse> HttpGet(int port, std::string_view target) {
  DTX_ASSIGN_OR_RETURN(HttpTestConnection c,
                       HttpTestConnection::Connect("127.0.0.1", port));
  return c.Roundtrip("GET", target);
}

}  // namespace dtx::testing
