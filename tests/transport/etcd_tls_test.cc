// etcd over TLS, as dtm's Kratos driver (v0.0.11) reaches it with
// "?tls=true&caPath=...&certPath=...&certKeyPath=...": a real etcd started
// with --cert-file/--key-file (and --client-cert-auth --trusted-ca-file for
// client certificates), certificates made by the openssl tool per test.
// EtcdClient, the registry resolver behind discovery:// branch URLs and
// DtmServer's registration all use it; a wrong CA is refused with an error
// that names the CA file.

#include "dtx/embedded.h"
#include "dtx/transport/dtm_server.h"
#include "dtx/transport/etcd_client.h"
#include "dtx/transport/kratos_registry.h"

#include "etcd_server.h"
#include "status_matchers.h"
#include "temp_dir.h"
#include "test_certs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

namespace dtx::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class EtcdTlsTest : public ::testing::Test {
 protected:
  void SetUp() override { DTX_ASSIGN_TEST_CERTS_OR_SKIP(certs_, dir_.path()); }

  // etcd over TLS; with `client_certs`, it requires a client certificate
  // of the test CA.
  void StartEtcd(bool client_certs) {
    EtcdTls tls;
    tls.cert_file = certs_.server.cert_file;
    tls.key_file = certs_.server.key_file;
    tls.ca_file = certs_.ca_file;
    if (client_certs) {
      tls.trusted_ca_file = certs_.ca_file;
      tls.client_cert_file = certs_.client.cert_file;
      tls.client_key_file = certs_.client.key_file;
    }
    auto etcd = EtcdServer::StartTls(tls);
    if (!etcd.ok()) {
      if (std::getenv("CI") != nullptr) FAIL() << etcd.status();
      GTEST_SKIP() << etcd.status();
    }
    etcd_ = std::move(etcd).value();
  }

  Result<std::unique_ptr<EtcdClient>> Client(
      std::optional<TlsClientOptions> tls) {
    EtcdClientOptions options;
    options.endpoints = {etcd_->endpoint()};
    options.timeout = std::chrono::seconds(5);
    options.tls = std::move(tls);
    return EtcdClient::Create(options);
  }

  TlsClientOptions Trusting(std::string ca_file) const {
    TlsClientOptions tls;
    tls.ca_file = std::move(ca_file);
    return tls;
  }

  TempDir dir_;
  TestCerts certs_;
  std::unique_ptr<EtcdServer> etcd_;
};

TEST_F(EtcdTlsTest, AClientThatTrustsTheCaReadsAndWrites) {
  ASSERT_NO_FATAL_FAILURE(StartEtcd(false));
  if (IsSkipped()) return;
  ASSERT_OK_AND_ASSIGN(auto client, Client(Trusting(certs_.ca_file)));
  ASSERT_OK(client->Put("/dtx-tls/k", "v"));
  ASSERT_OK_AND_ASSIGN(EtcdRange got, client->Get("/dtx-tls/k"));
  ASSERT_EQ(got.kvs.size(), 1u);
  EXPECT_EQ(got.kvs[0].value, "v");
}

TEST_F(EtcdTlsTest, AWrongCaIsRefusedNamingTheCaFile) {
  ASSERT_NO_FATAL_FAILURE(StartEtcd(false));
  if (IsSkipped()) return;
  ASSERT_OK_AND_ASSIGN(auto client, Client(Trusting(certs_.other_ca_file)));
  auto got = client->Get("/dtx-tls/k");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(got.status().message(),
              AllOf(HasSubstr("etcd: range /dtx-tls/k"),
                    HasSubstr("tls: the certificate of 127.0.0.1 is not "
                              "signed by a CA in the CA file '" +
                              certs_.other_ca_file + "' (unknown CA)")));
  // And a plaintext client gets no answer either.
  ASSERT_OK_AND_ASSIGN(auto plain, Client(std::nullopt));
  EXPECT_EQ(plain->Get("/dtx-tls/k").status().code(), StatusCode::kUnavailable);
}

TEST_F(EtcdTlsTest, ClientCertificatesWhenEtcdAsksForThem) {
  ASSERT_NO_FATAL_FAILURE(StartEtcd(true));
  if (IsSkipped()) return;
  ASSERT_OK_AND_ASSIGN(auto anonymous, Client(Trusting(certs_.ca_file)));
  EXPECT_FALSE(anonymous->Get("/k").ok());
  TlsClientOptions with_cert = Trusting(certs_.ca_file);
  with_cert.cert_file = certs_.client.cert_file;
  with_cert.key_file = certs_.client.key_file;
  ASSERT_OK_AND_ASSIGN(auto client, Client(with_cert));
  EXPECT_OK(client->Put("/k", "v"));
}

// The Kratos driver's target, for the resolver and for DtmServer.
TEST_F(EtcdTlsTest, TheRegistryTargetsTlsQueryReachesEtcd) {
  ASSERT_NO_FATAL_FAILURE(StartEtcd(true));
  if (IsSkipped()) return;
  const std::string query = "?tls=true&caPath=" + certs_.ca_file +
                            "&certPath=" + certs_.client.cert_file +
                            "&certKeyPath=" + certs_.client.key_file;
  const std::string target =
      "discovery://" + etcd_->endpoint() + "/dtmservice" + query;

  // DtmServer registers itself through TLS etcd...
  EmbeddedOptions embedded;
  embedded.journal_path = dir_.File("dtx.db");
  embedded.durable_on_power_loss = false;
  ASSERT_OK_AND_ASSIGN(auto coordinator,
                       OpenEmbeddedCoordinator(Options{}, embedded));
  DtmServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.reflection = false;
  options.driver = "dtm-driver-kratos";
  options.registry_target = target;
  options.endpoint = "grpc://127.0.0.1:36790";
  ASSERT_OK_AND_ASSIGN(auto server, DtmServer::Start(*coordinator, options));
  EXPECT_THAT(server->registry_key(), HasSubstr("/microservices/dtmservice/"));

  // ...and the resolver of discovery:// URLs finds it there.
  ASSERT_OK_AND_ASSIGN(RegistryTarget parsed, ParseRegistryTarget(target));
  ASSERT_OK_AND_ASSIGN(auto resolver, EtcdServiceResolver::Connect(
                                          EtcdClientOptionsFor(parsed), {}));
  ASSERT_OK_AND_ASSIGN(AddressSet found, resolver->Resolve("dtmservice"));
  EXPECT_THAT(*found, ::testing::ElementsAre("127.0.0.1:36790"));
  server->Shutdown(std::chrono::milliseconds(0));

  // With another CA, DtmServer does not start, and says why.
  options.registry_target =
      "discovery://" + etcd_->endpoint() +
      "/dtmservice?tls=true&caPath=" + certs_.other_ca_file;
  auto refused = DtmServer::Start(*coordinator, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              AllOf(HasSubstr("DtmServer: registering in etcd at"),
                    HasSubstr("(unknown CA)")));
  // A CA file that does not exist is named.
  options.registry_target =
      "discovery://" + etcd_->endpoint() +
      "/dtmservice?tls=true&caPath=" + dir_.File("nowhere.pem");
  refused = DtmServer::Start(*coordinator, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              HasSubstr("etcd: cannot read the CA file '" +
                        dir_.File("nowhere.pem") + "'"));
}

}  // namespace
}  // namespace dtx::testing
