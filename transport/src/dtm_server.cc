#include "dtx/transport/dtm_server.h"

#include "dtx/admin.grpc.pb.h"
#include "dtx/id_generator.h"
#include "dtx/transport/branch_url.h"
#include "dtx/transport/kratos_registry.h"

#include "dtm/dtmgimp.grpc.pb.h"
#include "dtm_proto.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

namespace dtx {
namespace {

using google::protobuf::Empty;
using internal::FromProto;
using internal::ToGrpcStatus;

// Runs the coordinator's blocking calls off gRPC's threads. Requests beyond
// the workers wait in the queue instead of being refused (a synchronous
// gRPC server answers RESOURCE_EXHAUSTED when its threads run out).
class Workers {
 public:
  explicit Workers(int n) {
    threads_.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~Workers() { Stop(); }

  void Post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  // Runs what is queued, then joins. Idempotent.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::vector<std::thread> threads_;
};

// Answers `reactor` with what `work` returns, on a worker; a request whose
// caller gave up while it waited in the queue is not run.
template <typename Work>
grpc::ServerUnaryReactor* Defer(Workers& workers,
                                grpc::CallbackServerContext* context,
                                Work work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  workers.Post([context, reactor, work = std::move(work)]() mutable {
    if (context->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                                   "the caller cancelled the request"));
      return;
    }
    reactor->Finish(work());
  });
  return reactor;
}

class DtmService final : public dtmgimp::Dtm::CallbackService {
 public:
  DtmService(Coordinator& coordinator, Workers& workers,
             std::shared_ptr<Logger> logger)
      : coordinator_(coordinator),
        workers_(workers),
        logger_(std::move(logger)) {}

  grpc::ServerUnaryReactor* NewGid(grpc::CallbackServerContext* context,
                                   const Empty*,
                                   dtmgimp::DtmGidReply* reply) override {
    // Never blocks: answered on gRPC's thread.
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    auto gid = coordinator_.NewGid();
    if (gid.ok()) reply->set_gid(*gid);
    reactor->Finish(Answer("NewGid", "", gid.status()));
    return reactor;
  }

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context,
                                   const dtmgimp::DtmRequest* request,
                                   Empty*) override {
    return Run(context, "Submit", request, [this](const TransRequest& r) {
      return coordinator_.Submit(r);
    });
  }

  grpc::ServerUnaryReactor* Prepare(grpc::CallbackServerContext* context,
                                    const dtmgimp::DtmRequest* request,
                                    Empty*) override {
    return Run(context, "Prepare", request, [this](const TransRequest& r) {
      return coordinator_.Prepare(r);
    });
  }

  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* context,
                                  const dtmgimp::DtmRequest* request,
                                  Empty*) override {
    return Run(context, "Abort", request,
               [this](const TransRequest& r) { return coordinator_.Abort(r); });
  }

  grpc::ServerUnaryReactor* RegisterBranch(
      grpc::CallbackServerContext* context,
      const dtmgimp::DtmBranchRequest* request, Empty*) override {
    return Defer(workers_, context, [this, request] {
      auto branch = FromProto(*request);
      Status status = branch.status();
      if (status.ok()) status = coordinator_.RegisterBranch(*branch);
      return Answer("RegisterBranch", request->gid(), status);
    });
  }

  grpc::ServerUnaryReactor* PrepareWorkflow(
      grpc::CallbackServerContext* context, const dtmgimp::DtmRequest* request,
      dtmgimp::DtmProgressesReply*) override {
    return Now(context,
               Answer("PrepareWorkflow", request->gid(),
                      UnimplementedError(
                          "dtx does not support workflow transactions yet "
                          "(dtmgimp.Dtm/PrepareWorkflow)")));
  }
  grpc::ServerUnaryReactor* Subscribe(grpc::CallbackServerContext* context,
                                      const dtmgimp::DtmTopicRequest*,
                                      Empty*) override {
    return Now(context, Topics("Subscribe"));
  }
  grpc::ServerUnaryReactor* Unsubscribe(grpc::CallbackServerContext* context,
                                        const dtmgimp::DtmTopicRequest*,
                                        Empty*) override {
    return Now(context, Topics("Unsubscribe"));
  }
  grpc::ServerUnaryReactor* DeleteTopic(grpc::CallbackServerContext* context,
                                        const dtmgimp::DtmTopicRequest*,
                                        Empty*) override {
    return Now(context, Topics("DeleteTopic"));
  }

 private:
  template <typename Fn>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                const char* method,
                                const dtmgimp::DtmRequest* request, Fn fn) {
    auto parsed = FromProto(*request);
    if (!parsed.ok()) {
      // Malformed: answered at once, nothing reaches the coordinator.
      return Now(context, Answer(method, request->gid(), parsed.status()));
    }
    return Defer(workers_, context,
                 [this, method, request, fn = std::move(fn),
                  parsed = std::move(parsed).value()] {
                   return Answer(method, request->gid(), fn(parsed));
                 });
  }

  static grpc::ServerUnaryReactor* Now(grpc::CallbackServerContext* context,
                                       const grpc::Status& status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
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
      const LogLevel level =
          (code == StatusCode::kAborted ||
           code == StatusCode::kFailedPrecondition ||
           code == StatusCode::kInvalidArgument ||
           code == StatusCode::kNotFound || code == StatusCode::kUnimplemented)
              ? LogLevel::kDebug
              : LogLevel::kWarn;
      DTX_LOG(logger_, level,
              method << " gid=" << gid << ": " << status.ToString());
    }
    return ToGrpcStatus(status);
  }

  Coordinator& coordinator_;
  Workers& workers_;
  std::shared_ptr<Logger> logger_;
};

class AdminService final : public dtx::admin::v1::Admin::CallbackService {
 public:
  AdminService(Coordinator& coordinator, Workers& workers)
      : coordinator_(coordinator), workers_(workers) {}

  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* context,
                                  const dtx::admin::v1::QueryRequest* request,
                                  dtx::admin::v1::QueryReply* reply) override {
    return Defer(workers_, context, [this, request, reply] {
      auto found = coordinator_.Query(request->gid());
      if (!found.ok()) return ToGrpcStatus(found.status());
      internal::ToProto(found->trans, reply->mutable_transaction());
      for (const Branch& b : found->branches) {
        internal::ToProto(b, reply->add_branches());
      }
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const dtx::admin::v1::ListRequest* request,
                                 dtx::admin::v1::ListReply* reply) override {
    return Defer(workers_, context, [this, request, reply] {
      auto query = internal::FromProto(*request);
      if (!query.ok()) return ToGrpcStatus(query.status());
      auto page = coordinator_.List(*query);
      if (!page.ok()) return ToGrpcStatus(page.status());
      for (const GlobalTrans& t : page->transactions) {
        internal::ToProto(t, reply->add_transactions());
      }
      reply->set_next_cursor(page->next_cursor);
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* ForceStop(grpc::CallbackServerContext* context,
                                      const dtx::admin::v1::GidRequest* request,
                                      Empty*) override {
    return Defer(workers_, context, [this, request] {
      return ToGrpcStatus(coordinator_.ForceStop(request->gid()));
    });
  }

  grpc::ServerUnaryReactor* RetryNow(grpc::CallbackServerContext* context,
                                     const dtx::admin::v1::GidRequest* request,
                                     Empty*) override {
    return Defer(workers_, context, [this, request] {
      return ToGrpcStatus(coordinator_.RetryNow(request->gid()));
    });
  }

 private:
  Coordinator& coordinator_;
  Workers& workers_;
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
  std::unique_ptr<Workers> workers;
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
  if (options.worker_threads < 1 || options.worker_threads > 4096) {
    return InvalidArgumentError("DtmServer: worker_threads must be in 1..4096");
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
  impl->workers = std::make_unique<Workers>(options.worker_threads);
  impl->dtm =
      std::make_unique<DtmService>(coordinator, *impl->workers, options.logger);
  impl->admin = std::make_unique<AdminService>(coordinator, *impl->workers);

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
  // Every request has been answered; nothing is queued any more.
  impl_->workers->Stop();
}

}  // namespace dtx
