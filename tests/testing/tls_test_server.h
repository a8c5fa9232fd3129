// An HTTPS server for tests of dtx's TLS clients: Boost.Asio's OpenSSL
// streams on 127.0.0.1 (an ephemeral port), presenting the given certificate,
// optionally asking for a client certificate signed by a CA, and answering
// every request 200 {"dtm_result":"SUCCESS"} on kept-alive connections. It
// records the requests' paths and the SNI name each handshake asked for.
// (dtx's own HttpServer gets its TLS listener separately; this one is small
// enough to trust for checking the client side.)
//
//   ASSERT_OK_AND_ASSIGN(auto server, TlsTestServer::Start(certs.server));
//   ... https://127.0.0.1:<server->port()>/x ...
//
// Thread safety: thread-safe.

#ifndef DTX_TESTS_TESTING_TLS_TEST_SERVER_H_
#define DTX_TESTS_TESTING_TLS_TEST_SERVER_H_

#include "dtx/result.h"

#include "test_certs.h"

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace dtx::testing {

class TlsTestServer {
 public:
  // `client_ca_file` non-empty: a client must present a certificate it
  // signed.
  static Result<std::unique_ptr<TlsTestServer>> Start(
      const CertAndKey& cert, const std::string& client_ca_file = "");
  ~TlsTestServer();

  int port() const;
  // Paths of the requests answered so far.
  std::vector<std::string> paths() const;
  // The SNI host names the handshakes sent ("" for none), in order.
  std::vector<std::string> sni_names() const;
  // TLS handshakes that failed (a client refusing the certificate, or
  // without the client certificate asked for).
  std::size_t failed_handshakes() const;

  struct Impl;

 private:
  explicit TlsTestServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_TLS_TEST_SERVER_H_
