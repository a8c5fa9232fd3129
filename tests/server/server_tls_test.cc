// dtx-server with TLS as a process: both listeners serve TLS with TLS.CertFile
// and TLS.KeyFile, branch calls use TLS where BranchTLS says, a plaintext
// client of either port learns why it was refused, and, with an Admin.Token
// and the log at debug level, no line of the server's whole log holds the
// key's PEM body or the token.

#include "dtx/transaction.h"
#include "dtx/transport/grpc_dtm_client.h"

#include "branch_test_server.h"
#include "dtx_server_process.h"
#include "http_test_client.h"
#include "https_test_client.h"
#include "status_matchers.h"
#include "temp_dir.h"
#include "test_certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <signal.h>
#include <sstream>

namespace dtx::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kToken[] = "tls-test-token-9f3c1e77a2";

// The lines of a PEM file between its BEGIN and END lines (the base64 body).
std::vector<std::string> PemBodyLines(const std::string& pem) {
  std::vector<std::string> out;
  std::istringstream in(pem);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.rfind("-----", 0) != 0) out.push_back(line);
  }
  return out;
}

class ServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override { DTX_ASSIGN_TEST_CERTS_OR_SKIP(certs_, dir_.path()); }

  TempDir dir_;
  TestCerts certs_;
};

TEST_F(ServerTlsTest, ServesTlsAndLogsNoKeyMaterialOrToken) {
  // A branch service over TLS, called through a BranchTLS rule.
  auto busi = BranchTestServer::StartTls(certs_.server.cert_file,
                                         certs_.server.key_file);
  DtxServerConfig config;
  config.journal_path = dir_.File("dtx.db");
  config.config_path = dir_.File("dtx.yml");
  config.log_path = dir_.File("dtx-server.log");
  config.yaml =
      "LogLevel: debug\n"
      "Admin:\n  Token: " +
      std::string(kToken) +
      "\n"
      "TLS:\n"
      "  CertFile: " +
      certs_.server.cert_file + "\n  KeyFile: " + certs_.server.key_file +
      "\nBranchTLS:\n  - Target: " + busi->address() +
      "\n    CAFile: " + certs_.ca_file + "\n";
  ASSERT_OK_AND_ASSIGN(auto server, DtxServerProcess::Start(config));

  // gRPC over TLS: a saga whose branches are TLS calls, and admin requests
  // that carry the token.
  GrpcDtmClientOptions options;
  options.address = server->address();
  options.tls = TlsClientOptions{certs_.ca_file, "", "", ""};
  options.admin_token = kToken;
  ASSERT_OK_AND_ASSIGN(auto dtm, GrpcDtmClient::Create(options));
  ASSERT_OK(Saga(*dtm, "tls-saga")
                .Add(busi->address() + "/busi.Busi/TransOut",
                     busi->address() + "/busi.Busi/TransOutRevert", "o")
                .WaitResult(true)
                .Submit());
  ASSERT_OK_AND_ASSIGN(TransWithBranches saga, dtm->Query("tls-saga"));
  EXPECT_EQ(saga.trans.status, TransStatus::kSucceed);
  EXPECT_EQ(busi->CallCount("/busi.Busi/TransOut"), 1u);
  EXPECT_THAT(dtm->ForceStop("no-such-gid"), StatusIs(StatusCode::kNotFound));

  // A plaintext gRPC client is told what probably happened.
  GrpcDtmClientOptions plain_options;
  plain_options.address = server->address();
  ASSERT_OK_AND_ASSIGN(auto plain, GrpcDtmClient::Create(plain_options));
  EXPECT_THAT(plain->NewGid().status().message(),
              HasSubstr("if it serves TLS"));

  // HTTPS, with the token and with a wrong one.
  ASSERT_OK_AND_ASSIGN(auto https, HttpsTestClient::Connect(server->http_port(),
                                                            certs_.ca_file));
  ASSERT_OK_AND_ASSIGN(HttpsTestAnswer ping,
                       https->Request("GET", "/api/ping"));
  EXPECT_EQ(ping.status, 200);
  ASSERT_OK_AND_ASSIGN(
      HttpsTestAnswer stop,
      https->Request("POST", "/api/dtmsvr/forceStop",
                     {{"Authorization", std::string("Bearer ") + kToken},
                      {"Content-Type", "application/json"}},
                     R"({"gid":"no-such-gid"})"));
  EXPECT_NE(stop.status, 401);
  ASSERT_OK_AND_ASSIGN(
      HttpsTestAnswer wrong,
      https->Request("POST", "/api/dtmsvr/forceStop",
                     {{"Authorization", std::string("Bearer x") + kToken}},
                     R"({"gid":"no-such-gid"})"));
  EXPECT_EQ(wrong.status, 401);
  // Plaintext to the HTTPS port: 400, saying so.
  ASSERT_OK_AND_ASSIGN(
      auto raw, HttpTestConnection::Connect("127.0.0.1", server->http_port()));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse refused,
                       raw.Roundtrip("GET", "/api/ping"));
  EXPECT_EQ(refused.status, 400);
  EXPECT_THAT(refused.body, HasSubstr("this port serves HTTPS"));

  server->Kill(SIGTERM);
  EXPECT_EQ(server->Wait(), 0);

  // The whole log: it is there (the requests above were logged)...
  ASSERT_OK_AND_ASSIGN(std::string log, ReadTextFile(config.log_path));
  EXPECT_THAT(log, HasSubstr("TLS with " + certs_.server.cert_file));
  EXPECT_THAT(log, HasSubstr("/api/dtmsvr/forceStop"));
  EXPECT_THAT(log, HasSubstr("plaintext sent to the TLS port"));
  // ...and holds neither the token nor any line of a key's body.
  EXPECT_THAT(log, ::testing::Not(HasSubstr(kToken)));
  for (const std::string& key_file :
       {certs_.server.key_file, certs_.client.key_file}) {
    ASSERT_OK_AND_ASSIGN(std::string pem, ReadTextFile(key_file));
    const std::vector<std::string> body = PemBodyLines(pem);
    ASSERT_FALSE(body.empty());
    for (const std::string& line : body) {
      EXPECT_EQ(log.find(line), std::string::npos)
          << "a line of " << key_file << " is in the log";
    }
  }
  EXPECT_EQ(log.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(ServerTlsTest, AnUnreadableKeyFileIsAStartupErrorNamingIt) {
  DtxServerConfig config;
  config.journal_path = dir_.File("dtx.db");
  config.config_path = dir_.File("dtx.yml");
  config.log_path = dir_.File("dtx-server.log");
  const std::string missing = dir_.File("missing.key");
  config.yaml = "TLS:\n  CertFile: " + certs_.server.cert_file +
                "\n  KeyFile: " + missing + "\n";
  auto server = DtxServerProcess::Start(config);
  ASSERT_FALSE(server.ok());
  ASSERT_OK_AND_ASSIGN(std::string log, ReadTextFile(config.log_path));
  EXPECT_THAT(log, HasSubstr("cannot read the key file (TLS.KeyFile) '" +
                             missing + "': No such file or directory"));
}

}  // namespace
}  // namespace dtx::testing
