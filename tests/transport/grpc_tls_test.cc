// TLS on dtx's gRPC channels and listener, against real servers on
// 127.0.0.1 with certificates made by the openssl tool for each test
// (test_certs.h): GrpcDtmClient and GrpcBranchClient verify the server
// against their CA and name (an expired certificate, another CA and a wrong
// host each fail with an error saying so), present client certificates to
// servers that require them, and a plaintext client of a TLS server is told
// what probably happened; DtmServer serves TLS and mutual TLS; a file that
// cannot be used is an error naming it.

#include "dtx/embedded.h"
#include "dtx/transport/dtm_server.h"
#include "dtx/transport/grpc_branch_client.h"
#include "dtx/transport/grpc_dtm_client.h"
#include "dtx/transport/service_resolver.h"

#include "branch_test_server.h"
#include "dtm/dtmgimp.pb.h"
#include "recording_logger.h"
#include "status_matchers.h"
#include "temp_dir.h"
#include "test_certs.h"
#include "test_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace dtx::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class GrpcTlsTest : public ::testing::Test {
 protected:
  void SetUp() override { DTX_ASSIGN_TEST_CERTS_OR_SKIP(certs_, dir_.path()); }

  // A fake dtm server over TLS that answers NewGid.
  std::unique_ptr<BranchTestServer> DtmServerWith(const CertAndKey& cert,
                                                  std::string client_ca = "") {
    auto server =
        BranchTestServer::StartTls(cert.cert_file, cert.key_file, client_ca);
    dtmgimp::DtmGidReply reply;
    reply.set_gid("gid-over-tls");
    server->SetHandler("/dtmgimp.Dtm/NewGid", [reply](const ReceivedCall&) {
      return TestReply::Ok(reply.SerializeAsString());
    });
    return server;
  }

  TlsClientOptions Trusting(std::string ca_file) const {
    TlsClientOptions tls;
    tls.ca_file = std::move(ca_file);
    return tls;
  }

  // NewGid through a GrpcDtmClient to `address` with `tls`.
  Result<std::string> NewGid(const std::string& address,
                             std::optional<TlsClientOptions> tls) {
    GrpcDtmClientOptions options;
    options.address = address;
    options.tls = std::move(tls);
    options.timeout = std::chrono::seconds(10);
    DTX_ASSIGN_OR_RETURN(auto client, GrpcDtmClient::Create(options));
    return client->NewGid();
  }

  std::string Localhost(const BranchTestServer& server) const {
    return "localhost:" + std::to_string(server.port());
  }

  TempDir dir_;
  TestCerts certs_;
};

TEST_F(GrpcTlsTest, AClientThatTrustsTheCaGetsAnswers) {
  auto server = DtmServerWith(certs_.server);
  ASSERT_OK_AND_ASSIGN(std::string gid,
                       NewGid(server->address(), Trusting(certs_.ca_file)));
  EXPECT_EQ(gid, "gid-over-tls");
  // By name as well (the certificate carries DNS:localhost).
  ASSERT_OK_AND_ASSIGN(gid,
                       NewGid(Localhost(*server), Trusting(certs_.ca_file)));
  EXPECT_EQ(gid, "gid-over-tls");
}

TEST_F(GrpcTlsTest, AServerSignedByAnotherCaIsRefusedNamingTheCaFile) {
  auto server = DtmServerWith(certs_.other_ca_server);
  auto gid = NewGid(server->address(), Trusting(certs_.ca_file));
  ASSERT_FALSE(gid.ok());
  EXPECT_EQ(gid.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(gid.status().message(),
              AllOf(HasSubstr("tls: the certificate of 127.0.0.1 is not signed "
                              "by a CA in the CA file '" +
                              certs_.ca_file + "' (unknown CA)"),
                    HasSubstr("dtm server " + server->address())));
  // The same server is good for a client that trusts its CA.
  EXPECT_OK(NewGid(server->address(), Trusting(certs_.other_ca_file)));
}

TEST_F(GrpcTlsTest, AnExpiredCertificateIsRefusedWithItsDate) {
  auto server = DtmServerWith(certs_.expired);
  auto gid = NewGid(server->address(), Trusting(certs_.ca_file));
  ASSERT_FALSE(gid.ok());
  EXPECT_EQ(gid.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(gid.status().message(),
              HasSubstr("tls: the certificate of 127.0.0.1 expired on "));
  EXPECT_THAT(gid.status().message(), HasSubstr("2020 GMT"));
}

TEST_F(GrpcTlsTest, AWrongHostIsRefusedUnlessTheServerNameIsSet) {
  auto server = DtmServerWith(certs_.wrong_host);
  auto gid = NewGid(Localhost(*server), Trusting(certs_.ca_file));
  ASSERT_FALSE(gid.ok());
  EXPECT_THAT(gid.status().message(),
              HasSubstr("tls: the certificate of localhost is not issued for "
                        "that name (wrong host"));
  // server_name: the name the certificate must carry.
  TlsClientOptions named = Trusting(certs_.ca_file);
  named.server_name = "wrong.example.invalid";
  ASSERT_OK_AND_ASSIGN(std::string ok, NewGid(Localhost(*server), named));
  EXPECT_EQ(ok, "gid-over-tls");
  named.server_name = "another.example.invalid";
  gid = NewGid(Localhost(*server), named);
  ASSERT_FALSE(gid.ok());
  EXPECT_THAT(gid.status().message(),
              HasSubstr("the certificate of another.example.invalid is not "
                        "issued for that name"));
}

TEST_F(GrpcTlsTest, APlaintextClientOfATlsServerIsToldWhy) {
  auto server = DtmServerWith(certs_.server);
  auto gid = NewGid(server->address(), std::nullopt);
  ASSERT_FALSE(gid.ok());
  EXPECT_EQ(gid.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(gid.status().message(),
              HasSubstr("closed by the server: if it serves TLS, configure "
                        "this client's TLS settings"));
}

TEST_F(GrpcTlsTest, ATlsClientOfAPlaintextServerFailsTheHandshake) {
  auto server = BranchTestServer::Start();
  auto gid = NewGid(server->address(), Trusting(certs_.ca_file));
  ASSERT_FALSE(gid.ok());
  EXPECT_EQ(gid.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(gid.status().message(), HasSubstr("andshake"));
}

TEST_F(GrpcTlsTest, MutualTlsNeedsAClientCertificateOfTheTrustedCa) {
  auto server = DtmServerWith(certs_.server, certs_.ca_file);
  EXPECT_FALSE(NewGid(server->address(), Trusting(certs_.ca_file)).ok());
  TlsClientOptions other = Trusting(certs_.ca_file);
  other.cert_file = certs_.other_ca_client.cert_file;
  other.key_file = certs_.other_ca_client.key_file;
  EXPECT_FALSE(NewGid(server->address(), other).ok());
  TlsClientOptions good = Trusting(certs_.ca_file);
  good.cert_file = certs_.client.cert_file;
  good.key_file = certs_.client.key_file;
  ASSERT_OK_AND_ASSIGN(std::string gid, NewGid(server->address(), good));
  EXPECT_EQ(gid, "gid-over-tls");
}

TEST_F(GrpcTlsTest, FilesThatCannotBeUsedAreNamedNeverShown) {
  const std::string missing = dir_.File("no-such-ca.pem");
  auto gid = NewGid("127.0.0.1:1", Trusting(missing));
  ASSERT_FALSE(gid.ok());
  EXPECT_EQ(gid.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(gid.status().message(),
              AllOf(HasSubstr("cannot read the CA file '" + missing + "'"),
                    HasSubstr("No such file or directory")));

  // A key file as the CA: named, and not one byte of it in the message.
  ASSERT_OK_AND_ASSIGN(std::string key_pem,
                       ReadTextFile(certs_.client.key_file));
  gid = NewGid("127.0.0.1:1", Trusting(certs_.client.key_file));
  ASSERT_FALSE(gid.ok());
  EXPECT_THAT(gid.status().message(),
              HasSubstr("the CA file '" + certs_.client.key_file +
                        "' holds no PEM certificate"));
  const std::string body = key_pem.substr(key_pem.find('\n') + 1, 40);
  EXPECT_THAT(gid.status().message(), Not(HasSubstr(body)));

  // A key that is not the certificate's.
  TlsClientOptions mismatched = Trusting(certs_.ca_file);
  mismatched.cert_file = certs_.client.cert_file;
  mismatched.key_file = certs_.other_ca_client.key_file;
  gid = NewGid("127.0.0.1:1", mismatched);
  ASSERT_FALSE(gid.ok());
  EXPECT_THAT(gid.status().message(),
              HasSubstr("the key in '" + certs_.other_ca_client.key_file +
                        "' does not belong to the certificate in '" +
                        certs_.client.cert_file + "'"));
  // A certificate without its key.
  TlsClientOptions half = Trusting(certs_.ca_file);
  half.cert_file = certs_.client.cert_file;
  gid = NewGid("127.0.0.1:1", half);
  ASSERT_FALSE(gid.ok());
  EXPECT_THAT(gid.status().message(),
              HasSubstr("needs both a certificate file and a key file"));
}

// Branch calls: TLS where a rule names the target, plaintext elsewhere.
class GrpcBranchTlsTest : public GrpcTlsTest {
 protected:
  std::unique_ptr<GrpcBranchClient> Client(
      std::vector<TlsClientRule> rules,
      std::shared_ptr<ServiceResolver> resolver = nullptr) {
    GrpcBranchClientOptions options;
    options.tls_rules = std::move(rules);
    if (resolver) {
      options.driver = "dtm-driver-kratos";
      options.resolver = std::move(resolver);
    }
    options.default_timeout = std::chrono::seconds(10);
    auto client = GrpcBranchClient::Create(std::move(options));
    EXPECT_OK(client);
    return client.ok() ? std::move(client).value() : nullptr;
  }

  static BranchResult Call(GrpcBranchClient& client, const std::string& url) {
    BranchRequest r;
    r.url = url;
    r.payload = "p";
    r.info.gid = "gid-1";
    r.info.trans_type = TransType::kSaga;
    r.info.branch_id = "01";
    r.info.op = BranchOp::kAction;
    return CallAndWait(client, std::move(r));
  }

  TlsClientRule Rule(std::string target, std::string ca_file) const {
    TlsClientRule rule;
    rule.target = std::move(target);
    rule.tls.ca_file = std::move(ca_file);
    return rule;
  }
};

TEST_F(GrpcBranchTlsTest, ARuleForTheTargetMakesItsCallsTls) {
  auto tls_busi = BranchTestServer::StartTls(certs_.server.cert_file,
                                             certs_.server.key_file);
  auto plain_busi = BranchTestServer::Start();
  auto client = Client({Rule(tls_busi->address(), certs_.ca_file)});
  ASSERT_NE(client, nullptr);

  BranchResult tls = Call(*client, tls_busi->address() + "/busi.Busi/Echo");
  EXPECT_EQ(tls.outcome, BranchOutcome::kSuccess) << tls.status;
  EXPECT_EQ(tls.reply, "p");
  // No rule: plaintext, to a plaintext server.
  BranchResult plain = Call(*client, plain_busi->address() + "/busi.Busi/Echo");
  EXPECT_EQ(plain.outcome, BranchOutcome::kSuccess) << plain.status;
  EXPECT_EQ(tls_busi->CallCount("/busi.Busi/Echo"), 1u);
  EXPECT_EQ(plain_busi->CallCount("/busi.Busi/Echo"), 1u);
  EXPECT_THAT(client->OpenChannelTargets(),
              ::testing::UnorderedElementsAre(tls_busi->address() + " (tls)",
                                              plain_busi->address()));
}

TEST_F(GrpcBranchTlsTest, AHostRuleCoversEveryPortAndDnsTargets) {
  auto busi = BranchTestServer::StartTls(certs_.server.cert_file,
                                         certs_.server.key_file);
  auto client = Client({Rule("LOCALHOST", certs_.ca_file)});
  ASSERT_NE(client, nullptr);
  const std::string port = std::to_string(busi->port());
  EXPECT_EQ(Call(*client, "localhost:" + port + "/busi.Busi/Echo").outcome,
            BranchOutcome::kSuccess);
  EXPECT_EQ(
      Call(*client, "dns:///localhost:" + port + "/busi.Busi/Echo").outcome,
      BranchOutcome::kSuccess);
  EXPECT_EQ(busi->CallCount("/busi.Busi/Echo"), 2u);
}

TEST_F(GrpcBranchTlsTest, RefusedServersAreTransientErrorsThatSayWhy) {
  auto expired = BranchTestServer::StartTls(certs_.expired.cert_file,
                                            certs_.expired.key_file);
  auto foreign = BranchTestServer::StartTls(certs_.other_ca_server.cert_file,
                                            certs_.other_ca_server.key_file);
  auto client = Client({Rule("127.0.0.1", certs_.ca_file)});
  ASSERT_NE(client, nullptr);
  BranchResult r = Call(*client, expired->address() + "/busi.Busi/Echo");
  EXPECT_EQ(r.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(r.status.message(),
              HasSubstr("the certificate of 127.0.0.1 expired on"));
  r = Call(*client, foreign->address() + "/busi.Busi/Echo");
  EXPECT_EQ(r.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(r.status.message(), HasSubstr("(unknown CA)"));
  EXPECT_EQ(expired->CallCount("/busi.Busi/Echo"), 0u);
  EXPECT_EQ(foreign->CallCount("/busi.Busi/Echo"), 0u);

  // No rule for a TLS server: plaintext, refused, with a hint.
  auto no_rule = Client({});
  ASSERT_NE(no_rule, nullptr);
  r = Call(*no_rule, foreign->address() + "/busi.Busi/Echo");
  EXPECT_EQ(r.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(r.status.message(),
              HasSubstr("closed by the server: if it serves TLS, give this "
                        "server a TLS rule (BranchTLS)"));
}

TEST_F(GrpcBranchTlsTest, ARuleWithAClientCertificateForMutualTls) {
  auto busi = BranchTestServer::StartTls(
      certs_.server.cert_file, certs_.server.key_file, certs_.ca_file);
  TlsClientRule rule = Rule(busi->address(), certs_.ca_file);
  rule.tls.cert_file = certs_.client.cert_file;
  rule.tls.key_file = certs_.client.key_file;
  auto client = Client({rule});
  ASSERT_NE(client, nullptr);
  BranchResult r = Call(*client, busi->address() + "/busi.Busi/Echo");
  EXPECT_EQ(r.outcome, BranchOutcome::kSuccess) << r.status;
}

TEST_F(GrpcBranchTlsTest, GrpcsInstancesOfARegistryServiceUseTls) {
  auto busi = BranchTestServer::StartTls(certs_.server.cert_file,
                                         certs_.server.key_file);
  auto resolver = std::make_shared<StaticServiceResolver>();
  // What PickGrpcEndpoint gives for an instance registered with
  // "grpcs://127.0.0.1:<port>" only.
  resolver->Set("trans", {"grpcs://" + busi->address()});
  // With a rule for its address: that rule's CA.
  auto client = Client({Rule(busi->address(), certs_.ca_file)}, resolver);
  ASSERT_NE(client, nullptr);
  BranchResult r = Call(*client, "discovery:///trans/busi.Busi/Echo");
  EXPECT_EQ(r.outcome, BranchOutcome::kSuccess) << r.status;
  // Without one: the system's roots, which do not hold the test CA.
  auto no_rule = Client({}, resolver);
  ASSERT_NE(no_rule, nullptr);
  r = Call(*no_rule, "discovery:///trans/busi.Busi/Echo");
  EXPECT_EQ(r.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(r.status.message(),
              HasSubstr("is not signed by a CA in the system's default roots"));
}

TEST_F(GrpcBranchTlsTest, ARuleWithABadFileFailsCreate) {
  GrpcBranchClientOptions options;
  options.tls_rules = {Rule("pay:9443", dir_.File("missing-ca.pem"))};
  auto client = GrpcBranchClient::Create(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(client.status().message(),
              AllOf(HasSubstr("TLS rule 1 (pay:9443)"),
                    HasSubstr(dir_.File("missing-ca.pem"))));
  options.tls_rules = {Rule("", certs_.ca_file)};
  client = GrpcBranchClient::Create(options);
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(client.status().message(), HasSubstr("TLS rule 1: no target"));
}

// DtmServer's own listener.
class DtmServerTlsTest : public GrpcTlsTest {
 protected:
  void SetUp() override {
    GrpcTlsTest::SetUp();
    if (IsSkipped() || HasFailure()) return;
    EmbeddedOptions embedded;
    embedded.journal_path = dir_.File("dtx.db");
    embedded.durable_on_power_loss = false;
    ASSERT_OK_AND_ASSIGN(coordinator_,
                         OpenEmbeddedCoordinator(Options{}, embedded));
  }

  Result<std::unique_ptr<DtmServer>> Serve(TlsServerOptions tls) {
    DtmServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.reflection = false;
    options.tls = std::move(tls);
    options.logger = logger_;
    return DtmServer::Start(*coordinator_, options);
  }

  std::shared_ptr<RecordingLogger> logger_ =
      std::make_shared<RecordingLogger>();
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(DtmServerTlsTest, ServesTlsAndMutualTls) {
  ASSERT_OK_AND_ASSIGN(auto server, Serve({certs_.server.cert_file,
                                           certs_.server.key_file, ""}));
  const std::string address = "127.0.0.1:" + std::to_string(server->port());
  ASSERT_OK_AND_ASSIGN(std::string gid,
                       NewGid(address, Trusting(certs_.ca_file)));
  EXPECT_FALSE(gid.empty());
  EXPECT_THAT(NewGid(address, std::nullopt).status().message(),
              HasSubstr("if it serves TLS"));
  server->Shutdown(std::chrono::milliseconds(0));

  ASSERT_OK_AND_ASSIGN(server, Serve({certs_.server.cert_file,
                                      certs_.server.key_file, certs_.ca_file}));
  const std::string mutual = "127.0.0.1:" + std::to_string(server->port());
  EXPECT_FALSE(NewGid(mutual, Trusting(certs_.ca_file)).ok());
  TlsClientOptions with_cert = Trusting(certs_.ca_file);
  with_cert.cert_file = certs_.client.cert_file;
  with_cert.key_file = certs_.client.key_file;
  EXPECT_OK(NewGid(mutual, with_cert));
}

TEST_F(DtmServerTlsTest, UnusableFilesStopStartAndAnExpiredOneIsAWarning) {
  const std::string missing = dir_.File("missing.key");
  auto server = Serve({certs_.server.cert_file, missing, ""});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(),
              HasSubstr("DtmServer: cannot read the key file (TLS.KeyFile) '" +
                        missing + "'"));
  server = Serve({certs_.server.cert_file, "", ""});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("TLS.KeyFile) is empty"));
  server = Serve({certs_.server.cert_file, certs_.client.key_file, ""});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("does not belong to"));

  ASSERT_OK_AND_ASSIGN(auto expired, Serve({certs_.expired.cert_file,
                                            certs_.expired.key_file, ""}));
  EXPECT_THAT(logger_->Text(),
              HasSubstr("warn DtmServer: the certificate in '" +
                        certs_.expired.cert_file + "' expired on "));
}

}  // namespace
}  // namespace dtx::testing
