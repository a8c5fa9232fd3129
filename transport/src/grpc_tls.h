// gRPC credentials from dtx's TLS settings (dtx/transport/tls_options.h), for
// DtmServer's listener and for every channel dtx opens: branch calls,
// GrpcDtmClient and etcd.
//
// A client verifies the server itself (gRPC's external certificate
// verifier, with OpenSSL's chain and name check, tls_files.h) instead of
// leaving it to gRPC's built-in check, whose error says only "certificate
// verify failed": with dtx's check, a refused server fails the call with
// "tls: the certificate of <host> expired on <date>", "... is not signed by a
// CA in the CA file '<path>' (unknown CA)" or "... is not issued for that
// name (wrong host ...)".

#ifndef DTX_TRANSPORT_GRPC_TLS_H_
#define DTX_TRANSPORT_GRPC_TLS_H_

#include "dtx/logger.h"
#include "dtx/result.h"
#include "dtx/transport/tls_options.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <memory>
#include <string>
#include <string_view>

namespace dtx::internal {

// Insecure credentials when `options` is not enabled. `who` prefixes errors
// ("DtmServer"); warnings (an expired certificate) go to `logger`.
Result<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const TlsServerOptions& options, std::string_view who, Logger& logger);

// TLS channel credentials that verify the server against options.ca_file
// (the system's roots when empty) and present the client certificate, if
// any. When options.server_name is set, `args` gets it as the name to
// verify and send (SNI). Errors name the file that cannot be used.
Result<std::shared_ptr<grpc::ChannelCredentials>> GrpcTlsChannelCredentials(
    const TlsClientOptions& options, std::string_view who,
    grpc::ChannelArguments* args);

// For an error of a plaintext channel: a hint when its text says the
// server closed the connection during setup, which is how a TLS server
// answers a plaintext client: " (... if it serves TLS, <remedy>)". Empty
// otherwise.
std::string PlaintextFailureHint(std::string_view grpc_error_message,
                                 std::string_view remedy);

}  // namespace dtx::internal

#endif  // DTX_TRANSPORT_GRPC_TLS_H_
