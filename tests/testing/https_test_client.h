// A small HTTPS client for tests of TLS listeners (dtx::HttpServer with
// HttpServerOptions::tls, dtx-server's HttpPort with TLS.CertFile): Beast
// over Asio's OpenSSL stream, in tests/testing so that Boost stays out of
// the tests that use it. It verifies the server for `host` against a CA file
// and may present a client certificate; every step fails instead of waiting
// past its deadline.
//
//   ASSERT_OK_AND_ASSIGN(auto c, HttpsTestClient::Connect(port, ca_file));
//   ASSERT_OK_AND_ASSIGN(HttpsTestAnswer a, c->Request("GET", "/api/ping"));
//
// Thread safety: thread-compatible.

#ifndef DTX_TESTS_TESTING_HTTPS_TEST_CLIENT_H_
#define DTX_TESTS_TESTING_HTTPS_TEST_CLIENT_H_

#include "dtx/result.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dtx::testing {

struct HttpsTestAnswer {
  int status = 0;
  std::string body;
};

class HttpsTestClient {
 public:
  // Connects to 127.0.0.1:port and handshakes, verifying the server's
  // certificate for `host` against `ca_file`; with `cert_file` and
  // `key_file`, presents that client certificate. kUnavailable with the
  // handshake's error when it fails.
  static Result<std::unique_ptr<HttpsTestClient>> Connect(
      int port, const std::string& ca_file, const std::string& cert_file = "",
      const std::string& key_file = "", const std::string& host = "localhost",
      std::chrono::milliseconds deadline = std::chrono::seconds(20));
  ~HttpsTestClient();

  // One request on the connection (kept alive).
  Result<HttpsTestAnswer> Request(
      const std::string& method, const std::string& target,
      const std::vector<std::pair<std::string, std::string>>& headers = {},
      const std::string& body = "");

 private:
  struct Impl;
  explicit HttpsTestClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_HTTPS_TEST_CLIENT_H_
