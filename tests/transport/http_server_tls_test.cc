// HttpServer over TLS on 127.0.0.1 with certificates made by the openssl tool
// (test_certs.h): HTTPS to a client that trusts the CA, several requests on
// one TLS connection, a plaintext request answered 400 in plaintext saying
// the port serves HTTPS, mutual TLS, and Start's errors for files that
// cannot be used. The HTTPS client is tests/testing/https_test_client.h.

#include "dtx/transport/http_server.h"

#include "http_test_client.h"
#include "https_test_client.h"
#include "recording_logger.h"
#include "status_matchers.h"
#include "temp_dir.h"
#include "test_certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

namespace dtx::testing {
namespace {

using ::testing::HasSubstr;

constexpr auto kDeadline = std::chrono::seconds(20);

class HttpServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override { DTX_ASSIGN_TEST_CERTS_OR_SKIP(certs_, dir_.path()); }

  Result<std::unique_ptr<HttpServer>> Serve(TlsServerOptions tls) {
    HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.tls = std::move(tls);
    options.logger = logger_;
    return HttpServer::Start(
        options, [](HttpRequest request, HttpResponder responder) {
          responder.Respond(
              HttpResponse::Json(200, R"({"path":")" + request.path + R"("})"));
        });
  }

  // The server logs a failed handshake on its own thread, maybe after the
  // client saw it fail: waits (bounded) for the line.
  bool LoggedEventually(const std::string& text) const {
    const auto until = std::chrono::steady_clock::now() + kDeadline;
    while (logger_->Text().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  TempDir dir_;
  TestCerts certs_;
  std::shared_ptr<RecordingLogger> logger_ =
      std::make_shared<RecordingLogger>();
};

TEST_F(HttpServerTlsTest, ServesHttpsWithKeepAlive) {
  ASSERT_OK_AND_ASSIGN(auto server, Serve({certs_.server.cert_file,
                                           certs_.server.key_file, ""}));
  ASSERT_OK_AND_ASSIGN(
      auto client, HttpsTestClient::Connect(server->port(), certs_.ca_file));
  // Several requests on the one TLS connection.
  for (const std::string path : {"/a", "/b", "/c"}) {
    ASSERT_OK_AND_ASSIGN(auto answer, client->Request("GET", path));
    EXPECT_EQ(answer.status, 200);
    EXPECT_EQ(answer.body, R"({"path":")" + path + R"("})");
  }
  // An IP literal is in the certificate too.
  ASSERT_OK_AND_ASSIGN(
      auto by_ip, HttpsTestClient::Connect(server->port(), certs_.ca_file, "",
                                           "", "127.0.0.1"));
  EXPECT_OK(by_ip->Request("GET", "/ip"));
}

TEST_F(HttpServerTlsTest, APlaintextRequestIsAnswered400SayingHttps) {
  ASSERT_OK_AND_ASSIGN(auto server, Serve({certs_.server.cert_file,
                                           certs_.server.key_file, ""}));
  ASSERT_OK_AND_ASSIGN(
      auto plain, HttpTestConnection::Connect("127.0.0.1", server->port()));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, plain.Roundtrip("GET", "/api/ping"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("this port serves HTTPS (TLS) and the request "
                                "was plaintext; use https://"));
  EXPECT_EQ(r.Header("Connection"), "close");
  EXPECT_TRUE(plain.ReadsEof());
  EXPECT_TRUE(LoggedEventually("plaintext sent to the TLS port"));
  // TLS clients are still served.
  ASSERT_OK_AND_ASSIGN(
      auto client, HttpsTestClient::Connect(server->port(), certs_.ca_file));
  EXPECT_OK(client->Request("GET", "/after"));
}

TEST_F(HttpServerTlsTest, ClientsVerifyTheServersCertificate) {
  ASSERT_OK_AND_ASSIGN(auto expired, Serve({certs_.expired.cert_file,
                                            certs_.expired.key_file, ""}));
  EXPECT_THAT(logger_->Text(),
              HasSubstr("warn http: the certificate in '" +
                        certs_.expired.cert_file + "' expired on "));
  auto refused = HttpsTestClient::Connect(expired->port(), certs_.ca_file);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("certificate verify"));
  // The server says why it closed the connection.
  EXPECT_TRUE(LoggedEventually("TLS handshake failed")) << logger_->Text();
}

TEST_F(HttpServerTlsTest, MutualTlsNeedsAClientCertificateOfTheTrustedCa) {
  ASSERT_OK_AND_ASSIGN(
      auto server,
      Serve({certs_.server.cert_file, certs_.server.key_file, certs_.ca_file}));
  // TLS 1.3 finishes the client's side of the handshake before the server
  // checks the client, so the refusal may come at the first read.
  auto without = HttpsTestClient::Connect(server->port(), certs_.ca_file);
  if (without.ok()) {
    EXPECT_FALSE((*without)->Request("GET", "/x").ok());
  }
  auto other = HttpsTestClient::Connect(server->port(), certs_.ca_file,
                                        certs_.other_ca_client.cert_file,
                                        certs_.other_ca_client.key_file);
  if (other.ok()) {
    EXPECT_FALSE((*other)->Request("GET", "/x").ok());
  }
  ASSERT_OK_AND_ASSIGN(auto good,
                       HttpsTestClient::Connect(server->port(), certs_.ca_file,
                                                certs_.client.cert_file,
                                                certs_.client.key_file));
  ASSERT_OK_AND_ASSIGN(auto answer, good->Request("GET", "/mutual"));
  EXPECT_EQ(answer.status, 200);
  EXPECT_TRUE(LoggedEventually("TLS handshake failed")) << logger_->Text();
}

TEST_F(HttpServerTlsTest, FilesThatCannotBeUsedStopStartNamingThem) {
  const std::string missing = dir_.File("missing.pem");
  auto server = Serve({missing, certs_.server.key_file, ""});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(),
              HasSubstr("http: cannot read the certificate file "
                        "(TLS.CertFile) '" +
                        missing + "': No such file or directory"));
  server = Serve({certs_.server.cert_file, certs_.client.key_file, ""});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(),
              HasSubstr("the key in '" + certs_.client.key_file +
                        "' does not belong to the certificate in '" +
                        certs_.server.cert_file + "'"));
  server = Serve({"", certs_.server.key_file, ""});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(),
              HasSubstr("TLS needs both the certificate file (TLS.CertFile)"));
  server = Serve({certs_.server.cert_file, certs_.server.key_file,
                  certs_.server.key_file});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(),
              HasSubstr("the client CA file (TLS.ClientCAFile) '" +
                        certs_.server.key_file + "' holds no PEM certificate"));
}

}  // namespace
}  // namespace dtx::testing
