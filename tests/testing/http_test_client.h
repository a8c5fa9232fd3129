// A deliberately small HTTP/1.1 client on a blocking POSIX socket, for tests
// of HTTP servers (dtx::HttpServer, dtx-server's HTTP port): it sends exactly
// the bytes a test asks for (malformed ones too) and reads responses one at a
// time, so that tests can check keep-alive, pipelining and closes. Every read
// gives up after the connection's timeout instead of hanging.
//
//   ASSERT_OK_AND_ASSIGN(auto c, HttpTestConnection::Connect("127.0.0.1",
//   port)); ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.Roundtrip("GET",
//   "/api/ping")); EXPECT_EQ(r.status, 200);
//
// Thread safety: thread-compatible (one connection per thread).

#ifndef DTX_TESTS_TESTING_HTTP_TEST_CLIENT_H_
#define DTX_TESTS_TESTING_HTTP_TEST_CLIENT_H_

#include "dtx/result.h"
#include "dtx/status.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dtx::testing {

struct HttpTestResponse {
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first value of header `name`, compared case-insensitively.
  std::optional<std::string> Header(std::string_view name) const;
};

class HttpTestConnection {
 public:
  // Connects to a numeric host ("127.0.0.1", "::1") and port. kUnavailable
  // when the connection is refused or times out.
  static Result<HttpTestConnection> Connect(
      const std::string& host, int port,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  HttpTestConnection(HttpTestConnection&& other) noexcept;
  HttpTestConnection& operator=(HttpTestConnection&& other) noexcept;
  HttpTestConnection(const HttpTestConnection&) = delete;
  HttpTestConnection& operator=(const HttpTestConnection&) = delete;
  ~HttpTestConnection();

  // Sends `bytes` as they are.
  Status Send(std::string_view bytes);
  // Sends one request with Host and, when there is a body or the method is
  // POST or PUT, Content-Length; `headers` are added as given.
  Status SendRequest(
      std::string_view method, std::string_view target,
      std::string_view body = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Reads the next response, interim (1xx) ones included; `head`: the
  // request was HEAD, so no body follows. kUnavailable when the connection
  // closes first or nothing arrives within the timeout; kInternal for bytes
  // that are not an HTTP response.
  Result<HttpTestResponse> ReadResponse(bool head = false);
  // SendRequest, then ReadResponse skipping interim responses.
  Result<HttpTestResponse> Roundtrip(
      std::string_view method, std::string_view target,
      std::string_view body = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {});

  // True when the server closes the connection (end of stream or reset)
  // within the timeout with no more bytes; false when bytes arrive or the
  // timeout passes.
  bool ReadsEof();
  // Every byte until the server closes the connection (end of stream or
  // reset); kUnavailable with what arrived when the timeout passes first.
  // For protocols other than HTTP/1 (a raw HTTP/2 refusal, say).
  Result<std::string> ReadToEof();
  // Ends the sending side (shutdown(SHUT_WR)).
  void ShutdownWrite();
  // The local port, to tell connections apart.
  int local_port() const;

 private:
  HttpTestConnection(int fd, std::chrono::milliseconds timeout)
      : fd_(fd), timeout_(timeout) {}
  // Reads more into buffer_; false at end of stream, error or timeout.
  bool Fill();

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
};

// GET `target` on a fresh connection to 127.0.0.1:port.
Result<HttpTestResponse> HttpGet(int port, std::string_view target);

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_HTTP_TEST_CLIENT_H_
