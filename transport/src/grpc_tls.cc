#include "grpc_tls.h"

#include "tls_files.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <utility>

namespace dtx::internal {
namespace {

// The server check of every TLS channel dtx opens (see grpc_tls.h). It runs
// once per connection, on a gRPC thread, and answers synchronously.
class ServerVerifier final
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  ServerVerifier(std::string ca_pem, std::string ca_name)
      : ca_pem_(std::move(ca_pem)), ca_name_(std::move(ca_name)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>,
              grpc::Status* sync_status) override {
    const grpc::string_ref chain = request->peer_cert_full_chain();
    const grpc::string_ref target = request->target_name();
    std::string host(target.data(), target.size());
    // The name gRPC checks: the target's host (or the server-name
    // override), sometimes still with its port or IPv6 brackets.
    if (!host.empty() && host.front() == '[') {
      const auto close = host.find(']');
      host = host.substr(
          1, close == std::string::npos ? std::string::npos : close - 1);
    } else if (const auto colon = host.rfind(':');
               colon != std::string::npos &&
               host.find(':') == colon) {  // one colon: host:port
      host.resize(colon);
    }
    const std::string why = VerifyServerChain(
        std::string_view(chain.data(), chain.size()), host, ca_pem_, ca_name_);
    *sync_status = why.empty() ? grpc::Status::OK
                               : grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                              "tls: " + why);
    return true;
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {
  }

 private:
  const std::string ca_pem_;
  const std::string ca_name_;
};

}  // namespace

Result<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const TlsServerOptions& options, std::string_view who, Logger& logger) {
  if (!options.enabled()) return grpc::InsecureServerCredentials();
  static constexpr const char* kNames[3] = {
      "the certificate file (TLS.CertFile)", "the key file (TLS.KeyFile)",
      "the client CA file (TLS.ClientCAFile)"};
  DTX_ASSIGN_OR_RETURN(ServerTlsMaterial material,
                       LoadServerTls(options, who, kNames));
  for (const std::string& warning : material.warnings) {
    DTX_LOG(&logger, LogLevel::kWarn, warning);
  }
  grpc::SslServerCredentialsOptions ssl(
      material.client_ca.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = std::move(material.client_ca);
  ssl.pem_key_cert_pairs.push_back(
      {std::move(material.key), std::move(material.cert_chain)});
  return grpc::SslServerCredentials(ssl);
}

Result<std::shared_ptr<grpc::ChannelCredentials>> GrpcTlsChannelCredentials(
    const TlsClientOptions& options, std::string_view who,
    grpc::ChannelArguments* args) {
  DTX_ASSIGN_OR_RETURN(ClientTlsMaterial material, LoadClientTls(options, who));
  grpc::experimental::TlsChannelCredentialsOptions tls;
  if (!material.cert_chain.empty()) {
    std::vector<grpc::experimental::IdentityKeyCertPair> identity = {
        {std::move(material.key), std::move(material.cert_chain)}};
    tls.set_certificate_provider(
        std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
            identity));
    tls.watch_identity_key_cert_pairs();
  }
  // dtx's verifier checks the chain and the name; gRPC's own checks would
  // only repeat them with a vaguer error.
  tls.set_verify_server_certs(false);
  tls.set_check_call_host(false);
  const std::string ca_name = options.ca_file.empty()
                                  ? std::string("the system's default roots")
                                  : "the CA file '" + options.ca_file + "'";
  tls.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<ServerVerifier>(
          std::move(material.ca), ca_name));
  if (!options.server_name.empty() && args != nullptr) {
    args->SetSslTargetNameOverride(options.server_name);
  }
  auto credentials = grpc::experimental::TlsCredentials(tls);
  if (!credentials) {
    return InternalError(std::string(who) + ": gRPC refused the TLS settings");
  }
  return credentials;
}

std::string PlaintextFailureHint(std::string_view grpc_error_message,
                                 std::string_view remedy) {
  if (grpc_error_message.find("Socket closed") == std::string_view::npos &&
      grpc_error_message.find("Connection reset") == std::string_view::npos) {
    return "";
  }
  return " (this plaintext connection was closed by the server: if it serves "
         "TLS, " +
         std::string(remedy) + ")";
}

}  // namespace dtx::internal
