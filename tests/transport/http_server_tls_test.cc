// HttpServer over TLS on 127.0.0.1 with certificates made by the openssl tool
// (test_certs.h): HTTPS to a client that trusts the CA, several requests on
// one TLS connection, a plaintext request answered 400 in plaintext saying
// the port serves HTTPS, mutual TLS, and Start's errors for files that
// cannot be used. The client here is Boost.Beast over Asio's OpenSSL stream,
// every operation under a deadline.

#include "dtx/transport/http_server.h"

#include "http_test_client.h"
#include "recording_logger.h"
#include "status_matchers.h"
#include "temp_dir.h"
#include "test_certs.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

namespace dtx::testing {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace bhttp = boost::beast::http;
using ErrorCode = boost::system::error_code;
using ::testing::HasSubstr;

constexpr auto kDeadline = std::chrono::seconds(20);

// A TLS client connection; every step fails instead of waiting past
// kDeadline.
class HttpsClient {
 public:
  // Connects to 127.0.0.1:port and handshakes, verifying the server for
  // `host` against `ca_file`, with `client` as the client certificate.
  static Result<std::unique_ptr<HttpsClient>> Connect(
      int port, const std::string& ca_file, const CertAndKey* client = nullptr,
      const std::string& host = "localhost") {
    auto c = std::unique_ptr<HttpsClient>(new HttpsClient());
    ErrorCode ec;
    c->context_.load_verify_file(ca_file, ec);
    if (!ec && client != nullptr) {
      c->context_.use_certificate_chain_file(client->cert_file, ec);
      if (!ec) {
        c->context_.use_private_key_file(client->key_file, ssl::context::pem,
                                         ec);
      }
    }
    if (ec) return InternalError("client setup: " + ec.message());
    c->stream_.emplace(c->io_, c->context_);
    c->stream_->set_verify_mode(ssl::verify_peer);
    c->stream_->set_verify_callback(ssl::host_name_verification(host));
    const asio::ip::tcp::endpoint server(asio::ip::make_address("127.0.0.1"),
                                         static_cast<unsigned short>(port));
    c->stream_->next_layer().connect(server, ec);
    if (ec) return UnavailableError("connect: " + ec.message());
    c->stream_->async_handshake(ssl::stream_base::client,
                                [&ec](ErrorCode e) { ec = e; });
    DTX_RETURN_IF_ERROR(c->Run("handshake"));
    if (ec) return UnavailableError("handshake: " + ec.message());
    return c;
  }

  // GET `target`; the answer's status and body.
  Result<std::pair<int, std::string>> Get(const std::string& target) {
    bhttp::request<bhttp::string_body> request(bhttp::verb::get, target, 11);
    request.set(bhttp::field::host, "localhost");
    ErrorCode ec;
    bhttp::async_write(*stream_, request,
                       [&ec](ErrorCode e, std::size_t) { ec = e; });
    DTX_RETURN_IF_ERROR(Run("write"));
    if (ec) return UnavailableError("write: " + ec.message());
    bhttp::response<bhttp::string_body> response;
    bhttp::async_read(*stream_, buffer_, response,
                      [&ec](ErrorCode e, std::size_t) { ec = e; });
    DTX_RETURN_IF_ERROR(Run("read"));
    if (ec) return UnavailableError("read: " + ec.message());
    return std::make_pair(static_cast<int>(response.result_int()),
                          response.body());
  }

 private:
  HttpsClient() = default;

  Status Run(const char* step) {
    io_.restart();
    io_.run_for(kDeadline);
    if (!io_.stopped()) {
      return DeadlineExceededError(std::string(step) + ": timed out");
    }
    return Status::Ok();
  }

  asio::io_context io_;
  ssl::context context_{ssl::context::tls_client};
  std::optional<ssl::stream<asio::ip::tcp::socket>> stream_;
  boost::beast::flat_buffer buffer_;
};

class HttpServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto certs = TestCerts::Generate(dir_.path());
    if (!certs.ok()) {
      if (std::getenv("CI") != nullptr) FAIL() << certs.status();
      GTEST_SKIP() << certs.status();
    }
    certs_ = std::move(certs).value();
  }

  Result<std::unique_ptr<HttpServer>> Serve(TlsServerOptions tls) {
    HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.tls = std::move(tls);
    options.logger = logger_;
    return HttpServer::Start(options, [](HttpRequest request,
                                         HttpResponder responder) {
      responder.Respond(HttpResponse::Json(200, R"({"path":")" + request.path +
                                                    R"("})"));
    });
  }

  TempDir dir_;
  TestCerts certs_;
  std::shared_ptr<RecordingLogger> logger_ =
      std::make_shared<RecordingLogger>();
};

TEST_F(HttpServerTlsTest, ServesHttpsWithKeepAlive) {
  ASSERT_OK_AND_ASSIGN(
      auto server,
      Serve({certs_.server.cert_file, certs_.server.key_file, ""}));
  ASSERT_OK_AND_ASSIGN(auto client,
                       HttpsClient::Connect(server->port(), certs_.ca_file));
  // Several requests on the one TLS connection.
  for (const std::string path : {"/a", "/b", "/c"}) {
    ASSERT_OK_AND_ASSIGN(auto answer, client->Get(path));
    EXPECT_EQ(answer.first, 200);
    EXPECT_EQ(answer.second, R"({"path":")" + path + R"("})");
  }
  // An IP literal is in the certificate too.
  ASSERT_OK_AND_ASSIGN(auto by_ip, HttpsClient::Connect(server->port(),
                                                        certs_.ca_file, nullptr,
                                                        "127.0.0.1"));
  EXPECT_OK(by_ip->Get("/ip"));
}

TEST_F(HttpServerTlsTest, APlaintextRequestIsAnswered400SayingHttps) {
  ASSERT_OK_AND_ASSIGN(
      auto server,
      Serve({certs_.server.cert_file, certs_.server.key_file, ""}));
  ASSERT_OK_AND_ASSIGN(auto plain,
                       HttpTestConnection::Connect("127.0.0.1", server->port()));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, plain.Roundtrip("GET", "/api/ping"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("this port serves HTTPS (TLS) and the request "
                                "was plaintext; use https://"));
  EXPECT_EQ(r.Header("Connection"), "close");
  EXPECT_TRUE(plain.ReadsEof());
  EXPECT_THAT(logger_->Text(), HasSubstr("plaintext sent to the TLS port"));
  // TLS clients are still served.
  ASSERT_OK_AND_ASSIGN(auto client,
                       HttpsClient::Connect(server->port(), certs_.ca_file));
  EXPECT_OK(client->Get("/after"));
}

TEST_F(HttpServerTlsTest, ClientsVerifyTheServersCertificate) {
  ASSERT_OK_AND_ASSIGN(auto expired, Serve({certs_.expired.cert_file,
                                            certs_.expired.key_file, ""}));
  EXPECT_THAT(logger_->Text(),
              HasSubstr("warn http: the certificate in '" +
                        certs_.expired.cert_file + "' expired on "));
  auto refused = HttpsClient::Connect(expired->port(), certs_.ca_file);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("certificate verify"));
  // The server says why it closed the connection.
  EXPECT_THAT(logger_->Text(), HasSubstr("TLS handshake failed"));
}

TEST_F(HttpServerTlsTest, MutualTlsNeedsAClientCertificateOfTheTrustedCa) {
  ASSERT_OK_AND_ASSIGN(auto server, Serve({certs_.server.cert_file,
                                           certs_.server.key_file,
                                           certs_.ca_file}));
  // TLS 1.3 finishes the client's side of the handshake before the server
  // checks the client, so the refusal may come at the first read.
  auto without = HttpsClient::Connect(server->port(), certs_.ca_file);
  if (without.ok()) {
    EXPECT_FALSE((*without)->Get("/x").ok());
  }
  auto other = HttpsClient::Connect(server->port(), certs_.ca_file,
                                    &certs_.other_ca_client);
  if (other.ok()) {
    EXPECT_FALSE((*other)->Get("/x").ok());
  }
  ASSERT_OK_AND_ASSIGN(auto good, HttpsClient::Connect(
                                      server->port(), certs_.ca_file,
                                      &certs_.client));
  ASSERT_OK_AND_ASSIGN(auto answer, good->Get("/mutual"));
  EXPECT_EQ(answer.first, 200);
  EXPECT_THAT(logger_->Text(), HasSubstr("TLS handshake failed"));
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
                        certs_.server.key_file +
                        "' holds no PEM certificate"));
}

}  // namespace
}  // namespace dtx::testing
