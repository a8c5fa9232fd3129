// GrpcBranchClient: BranchClient over gRPC. Calls any "/pkg.Service/Method"
// with raw payload bytes through grpc::GenericStub, with dtm's metadata and a
// deadline, and maps the answer to dtm's outcome classes.
//
// Channels are cached per resolved target string and shared by all calls.
// Targets with several addresses (direct:///, an ipv4:/ipv6: list,
// discovery://) get one channel per address and are picked round-robin per
// call; a change in a service's address set opens and closes only the
// channels that changed. A name resolved by gRPC (host:port, dns:///) is one
// channel with gRPC's pick_first policy: it uses one of the name's addresses
// at a time (another when that one fails). dtm's default service config is
// round_robin, which dtx does not take: gRPC 1.51's round_robin (Debian 12's)
// crashes the process (SIGSEGV in ConnectedSubchannel::
// GetInitialCallSizeEstimate) when a server answers the connection with an
// HTTP/1.1 response, which a misconfigured or hostile branch URL gets it to
// do. A name with several addresses is spread with direct:/// or a registry.
//
// TLS per target: a channel to a server that a rule of `tls_rules` names
// (FindTlsRule, by the host and port of a host:port, dns:///host:port or
// single-address ipv4:/ipv6: server, or of each address of a direct:/// list
// or a registry service) verifies the server with that rule's CA (and server
// name) and presents its client certificate. A Kratos instance registered
// only with a grpcs:// endpoint is called over TLS too: with its rule, or
// else the system's default roots. Every other channel is plaintext.
//
//   dtx::GrpcBranchClientOptions options;
//   DTX_ASSIGN_OR_RETURN(auto client, dtx::GrpcBranchClient::Create(options));
//   dtx::BranchRequest req;
//   req.url = "localhost:9000/api.trans.v1.Trans/TransIn";
//   req.info = {gid, dtx::TransType::kSaga, "01", dtx::BranchOp::kAction, ""};
//   client->Call(std::move(req), post_to_my_strand, [](dtx::BranchResult r) {
//     ...
//   });
//
// Thread safety: thread-safe.

#ifndef DTX_TRANSPORT_GRPC_BRANCH_CLIENT_H_
#define DTX_TRANSPORT_GRPC_BRANCH_CLIENT_H_

#include "dtx/branch_client.h"
#include "dtx/logger.h"
#include "dtx/result.h"
#include "dtx/transport/grpc_export.h"
#include "dtx/transport/service_resolver.h"
#include "dtx/transport/tls_options.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dtx {

struct DTX_GRPC_EXPORT GrpcBranchClientOptions {
  // dtm's MicroService.Driver: "default" or "dtm-driver-kratos".
  std::string driver = "default";
  // The registry behind discovery:// and etcd:// URLs (Kratos driver). Null:
  // those URLs fail with kFailedPrecondition.
  std::shared_ptr<ServiceResolver> resolver;
  // Deadline of calls whose request has none (dtm's RequestTimeout).
  std::chrono::milliseconds default_timeout{3000};
  // Service config of every channel (dtm's GrpcServiceConfig). pick_first,
  // not dtm's round_robin: see the top of this file before changing it.
  std::string service_config = R"({"loadBalancingConfig":[{"pick_first":{}}]})";
  // Largest reply accepted, in bytes (gRPC's default).
  int max_reply_bytes = 4 * 1024 * 1024;
  // TLS for the servers they name (dtx-server's BranchTLS). Their files are
  // read by Create.
  std::vector<TlsClientRule> tls_rules;
  // Null: no logging.
  std::shared_ptr<Logger> logger;

  // Which threads take the answers of asynchronous calls (Call).
  enum class Completions {
    // One thread of the client's own (dtx-grpc-cq), which waits for answers
    // only while a call is outstanding. For a process that has no gRPC
    // callback service (an embedded coordinator): gRPC then starts no
    // callback threads, which would also take the answers of blocking calls
    // (CallBlocking) and hand them to their callers with a wake-up.
    kOwnThread,
    // gRPC's callback threads. For a process that serves gRPC callback
    // services anyway (dtx-server): the same threads then take its requests
    // and its branch answers, with no hand-off between two completion
    // queues (docs/architecture.md, Thread hops).
    kGrpcCallbackThreads,
  };
  Completions completions = Completions::kOwnThread;
};

class DTX_GRPC_EXPORT GrpcBranchClient final : public BranchClient {
 public:
  // kInvalidArgument for an unknown driver, a malformed service config, or
  // a TLS rule without a target or with a file that cannot be used (named).
  static Result<std::unique_ptr<GrpcBranchClient>> Create(
      GrpcBranchClientOptions options);

  ~GrpcBranchClient() override;
  GrpcBranchClient(const GrpcBranchClient&) = delete;
  GrpcBranchClient& operator=(const GrpcBranchClient&) = delete;

  void Call(BranchRequest request, Executor executor, Callback done) override;
  BranchResult CallBlocking(BranchRequest request) override;
  // Whatever the protocol: a URL that reaches this client is a gRPC one
  // (RoutingBranchClient sends the HTTP ones elsewhere).
  Status ValidateUrl(std::string_view url, std::string_view protocol) override;
  void Shutdown() override;

  // The targets of the channels open now, sorted; for tests and diagnostics.
  std::vector<std::string> OpenChannelTargets() const;
  // Calls started and not yet handed off.
  std::size_t InFlight() const;

 private:
  struct Impl;
  explicit GrpcBranchClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_GRPC_BRANCH_CLIENT_H_
