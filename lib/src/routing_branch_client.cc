#include "dtx/routing_branch_client.h"

#include <string>
#include <utility>

namespace dtx {

namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view Name(RoutingBranchClient::Transport t) {
  return t == RoutingBranchClient::Transport::kHttp ? "HTTP" : "gRPC";
}

Status NotConfigured(std::string_view url, RoutingBranchClient::Transport t) {
  return FailedPreconditionError("branch url '" + std::string(url) + "': no " +
                                 std::string(Name(t)) +
                                 " branch client is configured");
}

}  // namespace

RoutingBranchClient::Transport RoutingBranchClient::Route(
    std::string_view url, std::string_view protocol) {
  if (StartsWith(url, "http://") || StartsWith(url, "https://") ||
      protocol == kProtocolHttp) {
    return Transport::kHttp;
  }
  return Transport::kGrpc;
}

RoutingBranchClient::RoutingBranchClient(std::unique_ptr<BranchClient> grpc,
                                         std::unique_ptr<BranchClient> http)
    : grpc_(std::move(grpc)), http_(std::move(http)) {}

RoutingBranchClient::~RoutingBranchClient() { Shutdown(); }

BranchClient* RoutingBranchClient::For(std::string_view url,
                                       std::string_view protocol) const {
  return Route(url, protocol) == Transport::kHttp ? http_.get() : grpc_.get();
}

void RoutingBranchClient::Call(BranchRequest request, Executor executor,
                               Callback done) {
  BranchClient* client = For(request.url, request.protocol);
  if (client == nullptr) {
    BranchResult r;
    r.outcome = BranchOutcome::kTransient;
    r.status = NotConfigured(request.url, Route(request.url, request.protocol));
    if (executor) {
      executor([done = std::move(done), r = std::move(r)]() mutable {
        done(std::move(r));
      });
    } else {
      done(std::move(r));
    }
    return;
  }
  client->Call(std::move(request), std::move(executor), std::move(done));
}

BranchResult RoutingBranchClient::CallBlocking(BranchRequest request) {
  BranchClient* client = For(request.url, request.protocol);
  if (client == nullptr) {
    BranchResult r;
    r.outcome = BranchOutcome::kTransient;
    r.status = NotConfigured(request.url, Route(request.url, request.protocol));
    return r;
  }
  return client->CallBlocking(std::move(request));
}

Status RoutingBranchClient::ValidateUrl(std::string_view url,
                                        std::string_view protocol) {
  BranchClient* client = For(url, protocol);
  if (client == nullptr) {
    return InvalidArgumentError(
        NotConfigured(url, Route(url, protocol)).message());
  }
  return client->ValidateUrl(url, protocol);
}

void RoutingBranchClient::Shutdown() {
  if (grpc_) grpc_->Shutdown();
  if (http_) http_->Shutdown();
}

}  // namespace dtx
