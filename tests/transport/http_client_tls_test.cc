// HttpClient's https:// against a real TLS server on 127.0.0.1
// (TlsTestServer) with certificates the test makes (TestCerts: a CA, a good
// server certificate, an expired one, a wrong-host one, one of another CA,
// client certificates): what verifies, and the clear error of what does not.

#include "dtx/transport/http_client.h"

#include "http_branch_service.h"
#include "status_matchers.h"
#include "temp_dir.h"
#include "test_certs.h"
#include "tls_test_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

namespace dtx {
namespace {

using dtx::testing::CertAndKey;
using dtx::testing::StatusIs;
using dtx::testing::TempDir;
using dtx::testing::TestCerts;
using dtx::testing::TlsTestServer;
using ::testing::ElementsAre;

class HttpClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override { DTX_ASSIGN_TEST_CERTS_OR_SKIP(certs_, dir_.path()); }

  std::unique_ptr<TlsTestServer> Serve(const CertAndKey& cert,
                                       const std::string& client_ca = "") {
    auto server = TlsTestServer::Start(cert, client_ca);
    EXPECT_OK(server.status());
    return server.ok() ? std::move(server).value() : nullptr;
  }

  std::unique_ptr<HttpClient> Client(std::vector<TlsClientRule> rules) {
    HttpClientOptions o;
    o.tls_rules = std::move(rules);
    auto client = HttpClient::Create(o);
    EXPECT_OK(client.status());
    return client.ok() ? std::move(client).value() : nullptr;
  }

  // A client trusting the test CA for 127.0.0.1 and localhost.
  std::unique_ptr<HttpClient> TrustingClient() {
    return Client({{"127.0.0.1", {certs_.ca_file, "", "", ""}},
                   {"localhost", {certs_.ca_file, "", "", ""}}});
  }

  static HttpClientRequest Get(const std::string& host, int port,
                               const std::string& path = "/x") {
    HttpClientRequest r;
    r.url = "https://" + host + ":" + std::to_string(port) + path;
    return r;
  }

  TempDir dir_;
  TestCerts certs_;
};

TEST_F(HttpClientTlsTest, VerifiesAgainstTheRulesCaFile) {
  auto server = Serve(certs_.server);
  auto client = TrustingClient();
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(
        HttpClientResponse r,
        client->SendBlocking(Get("127.0.0.1", server->port())));
    EXPECT_EQ(r.status, 200);
  }
  ASSERT_OK(
      client->SendBlocking(Get("localhost", server->port(), "/y")).status());
  EXPECT_THAT(server->paths(), ElementsAre("/x", "/x", "/x", "/y"));
  // One connection per pool, kept alive; SNI for the name, none for the IP.
  EXPECT_EQ(client->stats().connections_opened, 2u);
  EXPECT_THAT(server->sni_names(), ElementsAre("", "localhost"));
}

TEST_F(HttpClientTlsTest, WithoutARuleTheSystemRootsDoNotKnowTheTestCa) {
  auto server = Serve(certs_.server);
  auto client = Client({});
  EXPECT_THAT(
      client->SendBlocking(Get("127.0.0.1", server->port())).status(),
      StatusIs(StatusCode::kUnavailable,
               "certificate is signed by an unknown CA (not in the system "
               "roots)"));
}

TEST_F(HttpClientTlsTest, RefusesACertificateOfAnotherCa) {
  auto server = Serve(certs_.other_ca_server);
  auto client = TrustingClient();
  EXPECT_THAT(client->SendBlocking(Get("127.0.0.1", server->port())).status(),
              StatusIs(StatusCode::kUnavailable,
                       "signed by an unknown CA (not in CA file '" +
                           certs_.ca_file + "')"));
}

TEST_F(HttpClientTlsTest, RefusesAnExpiredCertificate) {
  auto server = Serve(certs_.expired);
  auto client = TrustingClient();
  EXPECT_THAT(client->SendBlocking(Get("127.0.0.1", server->port())).status(),
              StatusIs(StatusCode::kUnavailable,
                       "the server's certificate has expired"));
}

TEST_F(HttpClientTlsTest, RefusesACertificateForAnotherHost) {
  auto server = Serve(certs_.wrong_host);
  auto client = TrustingClient();
  EXPECT_THAT(client->SendBlocking(Get("127.0.0.1", server->port())).status(),
              StatusIs(StatusCode::kUnavailable,
                       "host name mismatch: the server's certificate is not "
                       "for '127.0.0.1'"));
  EXPECT_THAT(client->SendBlocking(Get("localhost", server->port())).status(),
              StatusIs(StatusCode::kUnavailable, "not for 'localhost'"));
}

TEST_F(HttpClientTlsTest, ServerNameOverridesTheNameCheckedAndSent) {
  auto server = Serve(certs_.wrong_host);
  auto client = Client(
      {{"127.0.0.1", {certs_.ca_file, "", "", "wrong.example.invalid"}}});
  ASSERT_OK(client->SendBlocking(Get("127.0.0.1", server->port())).status());
  EXPECT_THAT(server->sni_names(), ElementsAre("wrong.example.invalid"));
}

TEST_F(HttpClientTlsTest, APlaintextServerIsNamed) {
  ASSERT_OK_AND_ASSIGN(auto plain, dtx::testing::HttpBranchService::Start());
  auto client = TrustingClient();
  EXPECT_THAT(
      client->SendBlocking(Get("127.0.0.1", plain->port())).status(),
      StatusIs(StatusCode::kUnavailable, "the server does not speak TLS"));
}

TEST_F(HttpClientTlsTest, PresentsTheRulesClientCertificate) {
  auto server = Serve(certs_.server, certs_.ca_file);
  auto with_cert = Client({{"127.0.0.1",
                            {certs_.ca_file, certs_.client.cert_file,
                             certs_.client.key_file, ""}}});
  ASSERT_OK(with_cert->SendBlocking(Get("127.0.0.1", server->port())).status());
  auto without = TrustingClient();
  EXPECT_THAT(without->SendBlocking(Get("127.0.0.1", server->port())).status(),
              StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(server->paths().size(), 1u);
}

TEST_F(HttpClientTlsTest, CreateRefusesUnusableFilesNamingThem) {
  const std::string junk = dir_.File("junk.pem");
  std::ofstream(junk) << "not a certificate\n";
  HttpClientOptions bad_ca;
  bad_ca.tls_rules = {{"h", {junk, "", "", ""}}};
  EXPECT_THAT(HttpClient::Create(bad_ca).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "CA file '" + junk + "' is not PEM certificates"));
  HttpClientOptions mismatch;
  mismatch.tls_rules = {
      {"h",
       {certs_.ca_file, certs_.client.cert_file, certs_.server.key_file, ""}}};
  EXPECT_THAT(HttpClient::Create(mismatch).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "cannot be used with certificate '" +
                           certs_.client.cert_file + "': key values mismatch"));
}

}  // namespace
}  // namespace dtx
