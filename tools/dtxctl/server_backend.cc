// ServerBackend: dtxctl through dtx-server's admin gRPC service.

#include "dtx/transport/grpc_dtm_client.h"

#include "backend.h"

#include <utility>

namespace dtx::dtxctl {
namespace {

class ServerBackend final : public Backend {
 public:
  explicit ServerBackend(std::unique_ptr<GrpcDtmClient> client)
      : client_(std::move(client)) {}

  Result<ListPage> List(const ListQuery& query) override {
    return client_->List(query);
  }
  Result<TransWithBranches> Find(const std::string& gid) override {
    return client_->Query(gid);
  }
  Result<TransStats> Stats() override { return client_->Stats(); }
  Status RetryNow(const std::string& gid) override {
    return client_->RetryNow(gid);
  }
  Status ForceStop(const std::string& gid) override {
    return client_->ForceStop(gid);
  }

 private:
  std::unique_ptr<GrpcDtmClient> client_;
};

}  // namespace

Result<std::unique_ptr<Backend>> OpenServerBackend(
    const ServerOptions& options) {
  GrpcDtmClientOptions client_options;
  client_options.address = options.address;
  client_options.admin_token = options.token;
  client_options.timeout = options.timeout;
  client_options.tls = options.tls;
  DTX_ASSIGN_OR_RETURN(auto client,
                       GrpcDtmClient::Create(std::move(client_options)));
  return std::unique_ptr<Backend>(new ServerBackend(std::move(client)));
}

}  // namespace dtx::dtxctl
