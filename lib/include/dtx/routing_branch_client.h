// RoutingBranchClient: one BranchClient over a gRPC one and an HTTP one, as
// dtm picks the transport of a branch call (dtm-semantics §1.4):
//
//   http://... and https://...                    HTTP, whatever the protocol
//   any other URL in a transaction of protocol http   HTTP (registry URLs
//                                                  such as discovery://; the
//                                                  HTTP client refuses the
//                                                  rest)
//   any other URL                                  gRPC
//
// So one transaction may mix gRPC and HTTP branches. It uses only the
// BranchClient interface, so it lives in dtx::core; OpenEmbeddedCoordinator
// and dtx-server build it over GrpcBranchClient and HttpBranchClient.
//
//   auto client = std::make_unique<dtx::RoutingBranchClient>(
//       std::move(grpc_client), std::move(http_client));
//
// Thread safety: thread-safe (as the clients it routes to).

#ifndef DTX_ROUTING_BRANCH_CLIENT_H_
#define DTX_ROUTING_BRANCH_CLIENT_H_

#include "dtx/branch_client.h"
#include "dtx/core_export.h"

#include <memory>
#include <string_view>

namespace dtx {

class DTX_CORE_EXPORT RoutingBranchClient final : public BranchClient {
 public:
  enum class Transport { kGrpc, kHttp };
  // Where a call of `url` in a transaction of `protocol` goes.
  static Transport Route(std::string_view url, std::string_view protocol);

  // Either may be null: its calls then fail with kFailedPrecondition and
  // ValidateUrl refuses its URLs (kInvalidArgument), naming the transport.
  RoutingBranchClient(std::unique_ptr<BranchClient> grpc,
                      std::unique_ptr<BranchClient> http);
  ~RoutingBranchClient() override;

  void Call(BranchRequest request, Executor executor, Callback done) override;
  BranchResult CallBlocking(BranchRequest request) override;
  Status ValidateUrl(std::string_view url, std::string_view protocol) override;
  // Shuts both clients down.
  void Shutdown() override;

  // The clients routed to (null when not configured); for tests and stats.
  BranchClient* grpc() const { return grpc_.get(); }
  BranchClient* http() const { return http_.get(); }

 private:
  BranchClient* For(std::string_view url, std::string_view protocol) const;

  std::unique_ptr<BranchClient> grpc_;
  std::unique_ptr<BranchClient> http_;
};

}  // namespace dtx

#endif  // DTX_ROUTING_BRANCH_CLIENT_H_
