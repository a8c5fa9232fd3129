#include "dtx/transport/dtm_server.h"

#include "dtx/admin.grpc.pb.h"
#include "dtx/id_generator.h"
#include "dtx/transport/branch_url.h"
#include "dtx/transport/kratos_registry.h"

#include "dtm/dtmgimp.grpc.pb.h"
#include "dtm_proto.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>

#include <mutex>
#include <sstream>
#include <utility>

namespace dtx {
namespace {

using google::protobuf::Empty;
using internal::FromProto;
using internal::ToGrpcStatus;

class DtmService final : public dtmgimp::Dtm::Service {
 public:
  DtmService(Coordinator& coordinator, std::shared_ptr<Logger> logger)
      : coordinator_(coordinator), logger_(std::move(logger)) {}

  grpc::Status NewGid(grpc::ServerContext*, const Empty*,
                      dtmgimp::DtmGidReply* reply) override {
    auto gid = coordinator_.NewGid();
    if (!gid.ok()) return Answer("NewGid", "", gid.status());
    reply->set_gid(*gid);
    return grpc::Status::OK;
  }

  grpc::Status Submit(grpc::ServerContext*, const dtmgimp::DtmRequest* request,
                      Empty*) override {
    return Run("Submit", *request, [this](const TransRequest& r) {
      return coordinator_.Submit(r);
    });
  }

  grpc::Status Prepare(grpc::ServerContext*, const dtmgimp::DtmRequest* request,
                       Empty*) override {
    return Run("Prepare", *request, [this](const TransRequest& r) {
      return coordinator_.Prepare(r);
    });
  }

  grpc::Status Abort(grpc::ServerContext*, const dtmgimp::DtmRequest* request,
                     Empty*) override {
    return Run("Abort", *request,
               [this](const TransRequest& r) { return coordinator_.Abort(r); });
  }

  grpc::Status RegisterBranch(grpc::ServerContext*,
                              const dtmgimp::DtmBranchRequest* request,
                              Empty*) override {
    auto branch = FromProto(*request);
    Status status = branch.status();
    if (status.ok()) status = coordinator_.RegisterBranch(*branch);
    return Answer("RegisterBranch", request->gid(), status);
  }

  grpc::Status PrepareWorkflow(grpc::ServerContext*,
                               const dtmgimp::DtmRequest* request,
                               dtmgimp::DtmProgressesReply*) override {
    return Answer(
        "PrepareWorkflow", request->gid(),
        UnimplementedError("dtx does not support workflow transactions yet "
                           "(dtmgimp.Dtm/PrepareWorkflow)"));
  }
  grpc::Status Subscribe(grpc::ServerContext*, const dtmgimp::DtmTopicRequest*,
                         Empty*) override {
    return Topics("Subscribe");
  }
  grpc::Status Unsubscribe(grpc::ServerContext*,
                           const dtmgimp::DtmTopicRequest*, Empty*) override {
    return Topics("Unsubscribe");
  }
  grpc::Status DeleteTopic(grpc::ServerContext*,
                           const dtmgimp::DtmTopicRequest*, Empty*) override {
    return Topics("DeleteTopic");
  }

 private:
  template <typename Fn>
  grpc::Status Run(const char* method, const dtmgimp::DtmRequest& request,
                   Fn&& fn) {
    auto parsed = FromProto(request);
    Status status = parsed.status();
    if (status.ok()) status = fn(*parsed);
    return Answer(method, request.gid(), status);
  }

  grpc::Status Topics(const char* method) {
    return Answer(method, "",
                  UnimplementedError(std::string("dtx does not support msg "
                                                 "topics yet (dtmgimp.Dtm/") +
                                     method + ")"));
  }

  grpc::Status Answer(const char* method, const std::string& gid,
                      const Status& status) {
    if (!status.ok()) {
      // FAILURE and ONGOING are answers, not faults; requests that dtx
      // cannot serve are worth a warning.
      const StatusCode code = status.code();
      const LogLevel level = (code == StatusCode::kAborted ||
                              code == StatusCode::kFailedPrecondition ||
                              code == StatusCode::kInvalidArgument ||
                              code == StatusCode::kNotFound)
                                 ? LogLevel::kDebug
                                 : LogLevel::kWarn;
      DTX_LOG(logger_, level,
              method << " gid=" << gid << ": " << status.ToString());
    }
    return ToGrpcStatus(status);
  }

  Coordinator& coordinator_;
  std::shared_ptr<Logger> logger_;
};

class AdminService final : public dtx::admin::v1::Admin::Service {
 public:
  explicit AdminService(Coordinator& coordinator) : coordinator_(coordinator) {}

  grpc::Status Query(grpc::ServerContext*,
                     const dtx::admin::v1::QueryRequest* request,
                     dtx::admin::v1::QueryReply* reply) override {
    auto found = coordinator_.Query(request->gid());
    if (!found.ok()) return ToGrpcStatus(found.status());
    internal::ToProto(found->trans, reply->mutable_transaction());
    for (const Branch& b : found->branches) {
      internal::ToProto(b, reply->add_branches());
    }
    return grpc::Status::OK;
  }

  grpc::Status List(grpc::ServerContext*,
                    const dtx::admin::v1::ListRequest* request,
                    dtx::admin::v1::ListReply* reply) override {
    ListQuery query;
    if (!request->status().empty()) {
      auto s = ParseTransStatus(request->status());
      if (!s.ok()) return ToGrpcStatus(s.status());
      query.status = *s;
    }
    if (!request->trans_type().empty()) {
      auto t = ParseTransType(request->trans_type());
      if (!t.ok()) return ToGrpcStatus(t.status());
      query.trans_type = *t;
    }
    if (request->created_from_ms() != 0) {
      query.created_from =
          TimePoint(std::chrono::milliseconds(request->created_from_ms()));
    }
    if (request->created_to_ms() != 0) {
      query.created_to =
          TimePoint(std::chrono::milliseconds(request->created_to_ms()));
    }
    query.cursor = request->cursor();
    if (request->limit() != 0) query.limit = request->limit();
    auto page = coordinator_.List(query);
    if (!page.ok()) return ToGrpcStatus(page.status());
    for (const GlobalTrans& t : page->transactions) {
      internal::ToProto(t, reply->add_transactions());
    }
    reply->set_next_cursor(page->next_cursor);
    return grpc::Status::OK;
  }

  grpc::Status ForceStop(grpc::ServerContext*,
                         const dtx::admin::v1::GidRequest* request,
                         Empty*) override {
    return ToGrpcStatus(coordinator_.ForceStop(request->gid()));
  }

  grpc::Status RetryNow(grpc::ServerContext*,
                        const dtx::admin::v1::GidRequest* request,
                        Empty*) override {
    return ToGrpcStatus(coordinator_.RetryNow(request->gid()));
  }

 private:
  Coordinator& coordinator_;
};

Result<std::vector<std::string>> SplitEndpoints(const std::string& endpoint) {
  std::vector<std::string> out;
  std::stringstream in(endpoint);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    // A bare host:port is what users write for dtm's default driver; Kratos
    // readers need a scheme, so the gRPC one is assumed.
    if (item.find("://") == std::string::npos) item = "grpc://" + item;
    out.push_back(item);
  }
  if (out.empty()) {
    return InvalidArgumentError(
        "MicroService.EndPoint is empty; set it to the address other "
        "services should use, e.g. grpc://10.0.0.5:36790");
  }
  return out;
}

}  // namespace

struct DtmServer::Impl {
  DtmServerOptions options;
  std::unique_ptr<DtmService> dtm;
  std::unique_ptr<AdminService> admin;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::unique_ptr<KratosRegistrar> registrar;
  std::mutex mu;
  bool shut_down = false;  // guarded by mu
};

DtmServer::DtmServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DtmServer::~DtmServer() { Shutdown(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<DtmServer>> DtmServer::Start(Coordinator& coordinator,
                                                    DtmServerOptions options) {
  if (options.listen_address.empty()) {
    return InvalidArgumentError("DtmServer: listen address is empty");
  }
  if (options.max_request_bytes == 0 ||
      options.max_request_bytes > std::size_t{1} << 30) {
    return InvalidArgumentError(
        "DtmServer: max_request_bytes must be in 1..1073741824");
  }
  if (options.max_threads < 2) {
    return InvalidArgumentError("DtmServer: max_threads must be at least 2");
  }
  std::optional<RegistryTarget> target;
  std::vector<std::string> endpoints;
  if (!options.registry_target.empty()) {
    if (options.driver != kKratosDriver) {
      return InvalidArgumentError(
          "MicroService.Target '" + options.registry_target +
          "' needs MicroService.Driver '" + std::string(kKratosDriver) +
          "' (driver is '" + options.driver + "')");
    }
    DTX_ASSIGN_OR_RETURN(target, ParseRegistryTarget(options.registry_target));
    DTX_ASSIGN_OR_RETURN(endpoints, SplitEndpoints(options.endpoint));
  }

  if (!options.logger) options.logger = NewNullLogger();
  auto impl = std::make_unique<Impl>();
  impl->dtm = std::make_unique<DtmService>(coordinator, options.logger);
  impl->admin = std::make_unique<AdminService>(coordinator);

  if (options.health) grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection)
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address,
                           grpc::InsecureServerCredentials(), &impl->port);
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind the
  // same port and share its traffic silently; a port in use must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_request_bytes));
  grpc::ResourceQuota quota("dtx-server");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  builder.RegisterService(impl->dtm.get());
  builder.RegisterService(impl->admin.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    if (impl->server) impl->server->Shutdown();
    return UnavailableError("DtmServer: cannot listen on " +
                            options.listen_address +
                            " (address in use, or not a local address?)");
  }
  if (auto* health = impl->server->GetHealthCheckService()) {
    health->SetServingStatus(true);
  }

  if (target) {
    EtcdClientOptions etcd_options;
    etcd_options.endpoints = target->etcd_endpoints;
    auto etcd = EtcdClient::Create(etcd_options);
    Status status = etcd.status();
    if (status.ok()) {
      ServiceInstance instance;
      instance.id = NewRandomIdGenerator()->NewGid();
      instance.name = target->service;
      instance.endpoints = endpoints;
      KratosRegistrar::Options registrar_options;
      registrar_options.ttl = options.registry_ttl;
      registrar_options.logger = options.logger;
      auto registrar = KratosRegistrar::Register(
          std::shared_ptr<EtcdClient>(std::move(etcd).value()),
          std::move(instance), registrar_options);
      status = registrar.status();
      if (status.ok()) impl->registrar = std::move(registrar).value();
    }
    if (!status.ok()) {
      impl->server->Shutdown();
      return status.WithPrefix("DtmServer: registering in etcd at " +
                               options.registry_target);
    }
  }
  impl->options = std::move(options);
  return std::unique_ptr<DtmServer>(new DtmServer(std::move(impl)));
}

int DtmServer::port() const { return impl_->port; }

std::string DtmServer::registry_key() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->registrar ? impl_->registrar->key() : std::string();
}

void DtmServer::Shutdown(std::chrono::milliseconds grace) {
  std::unique_ptr<KratosRegistrar> registrar;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
    registrar = std::move(impl_->registrar);
  }
  // Leave the registry first so that clients stop picking this server.
  registrar.reset();
  if (auto* health = impl_->server->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  impl_->server->Shutdown(std::chrono::system_clock::now() + grace);
  impl_->server->Wait();
}

}  // namespace dtx
