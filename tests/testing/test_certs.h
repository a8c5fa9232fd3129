// Certificates for TLS tests, made fresh by the openssl command line tool in a
// directory the test owns: a CA, a server certificate for localhost,
// 127.0.0.1 and ::1, a client certificate, and the bad ones a test must see
// refused (expired, wrong host, signed by another CA, a client certificate
// of another CA). Keys are P-256 (quick to make); a whole set takes about
// a tenth of a second.
//
//   TempDir dir;
//   ASSERT_OK_AND_ASSIGN(TestCerts certs, TestCerts::Generate(dir.path()));
//   TlsServerOptions tls{certs.server.cert_file, certs.server.key_file, ""};
//
// Nothing here is secret: the keys live only as long as the directory.
//
// Thread safety: Generate is thread-safe for different directories.

#ifndef DTX_TESTS_TESTING_TEST_CERTS_H_
#define DTX_TESTS_TESTING_TEST_CERTS_H_

#include "dtx/result.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <utility>

namespace dtx::testing {

struct CertAndKey {
  std::string cert_file;  // PEM certificate
  std::string key_file;   // PEM private key (unencrypted)
};

struct TestCerts {
  std::string dir;

  std::string ca_file;        // the CA that signs everything below but other_*
  std::string other_ca_file;  // an unrelated CA ("wrong CA")

  // Valid now for DNS:localhost, IP:127.0.0.1 and IP:::1 (server auth).
  CertAndKey server;
  // The same names, signed by the CA, but valid only in January 2020.
  CertAndKey expired;
  // Signed by the CA, valid now, for DNS:wrong.example.invalid only.
  CertAndKey wrong_host;
  // Signed by other_ca, valid now, for the right names.
  CertAndKey other_ca_server;
  // Client certificates (client auth, CN "dtx test client"): one signed by the
  // CA, one by other_ca.
  CertAndKey client;
  CertAndKey other_ca_client;

  // Makes every file above in `dir` (which must exist). kUnavailable when the
  // openssl tool is missing, kInternal naming the step when it fails.
  static Result<TestCerts> Generate(const std::string& dir);
};

// The text of a file (for tests that pass PEM contents, or grep logs for them).
Result<std::string> ReadTextFile(const std::string& path);

}  // namespace dtx::testing

// In a test body or SetUp: `lhs = TestCerts::Generate(dir)`. Without the
// openssl tool the test is skipped (and fails under CI=true, where setup.sh
// has installed it); any other error fails the test.
#define DTX_ASSIGN_TEST_CERTS_OR_SKIP(lhs, dir)                                \
  do {                                                                         \
    auto dtx_test_certs = ::dtx::testing::TestCerts::Generate(dir);            \
    if (!dtx_test_certs.ok()) {                                                \
      if (dtx_test_certs.status().code() != ::dtx::StatusCode::kUnavailable || \
          std::getenv("CI") != nullptr) {                                      \
        FAIL() << dtx_test_certs.status();                                     \
      }                                                                        \
      GTEST_SKIP() << dtx_test_certs.status();                                 \
    }                                                                          \
    lhs = std::move(dtx_test_certs).value();                                   \
  } while (false)

#endif  // DTX_TESTS_TESTING_TEST_CERTS_H_
