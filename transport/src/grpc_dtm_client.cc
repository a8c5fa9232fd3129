#include "dtx/transport/grpc_dtm_client.h"

#include "dtx/admin.grpc.pb.h"
#include "dtx/transport/branch_url.h"
#include "dtx/transport/grpc_branch_client.h"
#include "dtx/transport/kratos_registry.h"

#include "dtm/dtmgimp.grpc.pb.h"
#include "dtm_proto.h"

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace dtx {
namespace {

using internal::FromGrpcStatus;

struct Endpoint {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<dtmgimp::Dtm::Stub> dtm;
  std::unique_ptr<dtx::admin::v1::Admin::Stub> admin;
};

std::shared_ptr<Endpoint> NewEndpoint(const std::string& target) {
  auto e = std::make_shared<Endpoint>();
  grpc::ChannelArguments args;
  // A Query reply carries every branch's payload (a saga's twice), so it can
  // exceed the 4 MiB that the server accepts per request.
  args.SetMaxReceiveMessageSize(-1);
  e->channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  e->dtm = dtmgimp::Dtm::NewStub(e->channel);
  e->admin = dtx::admin::v1::Admin::NewStub(e->channel);
  return e;
}

bool IsRegistryAddress(const std::string& address) {
  return address.rfind("discovery://", 0) == 0 ||
         address.rfind("etcd://", 0) == 0;
}

}  // namespace

struct GrpcDtmClient::Impl {
  GrpcDtmClientOptions options;
  BranchTarget target;
  std::shared_ptr<ServiceResolver> resolver;
  std::unique_ptr<GrpcBranchClient> branches;

  std::mutex mu;
  std::shared_ptr<Endpoint> single;  // kChannel
  AddressSet fixed;                  // kAddresses, built once
  std::unordered_map<std::string, std::shared_ptr<Endpoint>>
      by_address;       // guarded by mu
  AddressSet last_set;  // guarded by mu
  std::atomic<uint64_t> next{0};

  Result<std::shared_ptr<Endpoint>> Pick();
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + options.timeout);
    return context;
  }
  Status Call(const char* method, const Status& status) const {
    if (status.ok()) return status;
    return status.WithPrefix(std::string("dtm server ") + options.address +
                             " " + method);
  }
};

Result<std::shared_ptr<Endpoint>> GrpcDtmClient::Impl::Pick() {
  if (target.kind == BranchTarget::Kind::kChannel) return single;
  AddressSet set = fixed;
  if (target.kind == BranchTarget::Kind::kService) {
    auto resolved = resolver->Resolve(target.service);
    if (!resolved.ok()) {
      return resolved.status().WithPrefix("dtm server " + options.address);
    }
    set = *resolved;
  }
  if (!set || set->empty()) {
    return UnavailableError("dtm server " + options.address +
                            ": no address known");
  }
  const std::string& address = (*set)[next++ % set->size()];
  std::lock_guard<std::mutex> lock(mu);
  if (set != last_set) {
    // The registry changed: close the channels of servers that left.
    for (auto it = by_address.begin(); it != by_address.end();) {
      if (std::find(set->begin(), set->end(), it->first) == set->end()) {
        it = by_address.erase(it);
      } else {
        ++it;
      }
    }
    last_set = set;
  }
  auto& slot = by_address[address];
  if (!slot) {
    DTX_ASSIGN_OR_RETURN(std::string channel_target,
                         ChannelTargetForAddress(address));
    slot = NewEndpoint(channel_target);
  }
  return slot;
}

GrpcDtmClient::GrpcDtmClient(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

GrpcDtmClient::~GrpcDtmClient() {
  if (impl_ && impl_->branches) impl_->branches->Shutdown();
}

Result<std::unique_ptr<GrpcDtmClient>> GrpcDtmClient::Create(
    GrpcDtmClientOptions options) {
  if (options.address.empty()) {
    return InvalidArgumentError(
        "GrpcDtmClient: the dtm server address is empty");
  }
  if (options.timeout <= std::chrono::milliseconds::zero()) {
    return InvalidArgumentError("GrpcDtmClient: timeout must be positive");
  }
  if (!options.logger) options.logger = NewNullLogger();
  auto impl = std::make_unique<Impl>();
  const bool registry = IsRegistryAddress(options.address);
  if (registry) options.driver = std::string(kKratosDriver);
  auto target = ParseBranchServer(options.address, options.driver);
  if (!target.ok()) {
    return target.status().WithPrefix("GrpcDtmClient: dtm server address");
  }
  impl->target = *target;
  impl->resolver = options.resolver;
  if (!impl->resolver && registry) {
    DTX_ASSIGN_OR_RETURN(RegistryTarget where,
                         ParseRegistryTarget(options.address));
    if (where.etcd_endpoints.empty()) {
      return InvalidArgumentError(
          "GrpcDtmClient: '" + options.address +
          "' names no etcd host; write discovery://<etcd host:port>/<name> "
          "or pass a resolver");
    }
    EtcdServiceResolver::Options resolver_options;
    resolver_options.logger = options.logger;
    DTX_ASSIGN_OR_RETURN(
        impl->resolver,
        EtcdServiceResolver::Connect(where.etcd_endpoints, resolver_options));
  }
  if (impl->target.kind == BranchTarget::Kind::kService && !impl->resolver) {
    return InvalidArgumentError("GrpcDtmClient: '" + options.address +
                                "' needs a service resolver");
  }
  if (impl->target.kind == BranchTarget::Kind::kChannel) {
    impl->single = NewEndpoint(impl->target.channel_target);
  } else if (impl->target.kind == BranchTarget::Kind::kAddresses) {
    impl->fixed = std::make_shared<const std::vector<std::string>>(
        impl->target.addresses);
  }
  GrpcBranchClientOptions branch_options;
  branch_options.driver = options.driver;
  branch_options.resolver = impl->resolver;
  branch_options.default_timeout = options.branch_timeout;
  branch_options.logger = options.logger;
  DTX_ASSIGN_OR_RETURN(impl->branches,
                       GrpcBranchClient::Create(std::move(branch_options)));
  impl->options = std::move(options);
  return std::unique_ptr<GrpcDtmClient>(new GrpcDtmClient(std::move(impl)));
}

Result<std::string> GrpcDtmClient::NewGid() {
  DTX_ASSIGN_OR_RETURN(auto e, impl_->Pick());
  auto context = impl_->Context();
  google::protobuf::Empty request;
  dtmgimp::DtmGidReply reply;
  Status status =
      FromGrpcStatus(e->dtm->NewGid(context.get(), request, &reply));
  DTX_RETURN_IF_ERROR(impl_->Call("NewGid", status));
  if (reply.gid().empty()) {
    return InternalError("dtm server " + impl_->options.address +
                         " NewGid returned an empty gid");
  }
  return reply.gid();
}

#define DTX_DTM_REQUEST_(Method)                                           \
  Status GrpcDtmClient::Method(const TransRequest& request) {              \
    DTX_ASSIGN_OR_RETURN(auto e, impl_->Pick());                           \
    auto context = impl_->Context();                                       \
    google::protobuf::Empty reply;                                         \
    return impl_->Call(                                                    \
        #Method, FromGrpcStatus(e->dtm->Method(                            \
                     context.get(), internal::ToProto(request), &reply))); \
  }
DTX_DTM_REQUEST_(Prepare)
DTX_DTM_REQUEST_(Submit)
DTX_DTM_REQUEST_(Abort)
#undef DTX_DTM_REQUEST_

Status GrpcDtmClient::RegisterBranch(const BranchRegistration& branch) {
  DTX_ASSIGN_OR_RETURN(auto e, impl_->Pick());
  auto context = impl_->Context();
  google::protobuf::Empty reply;
  return impl_->Call("RegisterBranch",
                     FromGrpcStatus(e->dtm->RegisterBranch(
                         context.get(), internal::ToProto(branch), &reply)));
}

Result<TransWithBranches> GrpcDtmClient::Query(const std::string& gid) {
  DTX_ASSIGN_OR_RETURN(auto e, impl_->Pick());
  auto context = impl_->Context();
  dtx::admin::v1::QueryRequest request;
  request.set_gid(gid);
  dtx::admin::v1::QueryReply reply;
  DTX_RETURN_IF_ERROR(impl_->Call(
      "Query",
      FromGrpcStatus(e->admin->Query(context.get(), request, &reply))));
  TransWithBranches out;
  DTX_ASSIGN_OR_RETURN(out.trans, internal::FromProto(reply.transaction()));
  for (const auto& b : reply.branches()) {
    DTX_ASSIGN_OR_RETURN(Branch branch, internal::FromProto(b));
    out.branches.push_back(std::move(branch));
  }
  return out;
}

Result<ListPage> GrpcDtmClient::List(const ListQuery& query) {
  DTX_ASSIGN_OR_RETURN(auto e, impl_->Pick());
  auto context = impl_->Context();
  const dtx::admin::v1::ListRequest request = internal::ToProto(query);
  dtx::admin::v1::ListReply reply;
  DTX_RETURN_IF_ERROR(impl_->Call(
      "List", FromGrpcStatus(e->admin->List(context.get(), request, &reply))));
  ListPage page;
  for (const auto& t : reply.transactions()) {
    DTX_ASSIGN_OR_RETURN(GlobalTrans trans, internal::FromProto(t));
    page.transactions.push_back(std::move(trans));
  }
  page.next_cursor = reply.next_cursor();
  return page;
}

Status GrpcDtmClient::ForceStop(const std::string& gid) {
  DTX_ASSIGN_OR_RETURN(auto e, impl_->Pick());
  auto context = impl_->Context();
  dtx::admin::v1::GidRequest request;
  request.set_gid(gid);
  google::protobuf::Empty reply;
  return impl_->Call("ForceStop", FromGrpcStatus(e->admin->ForceStop(
                                      context.get(), request, &reply)));
}

Status GrpcDtmClient::RetryNow(const std::string& gid) {
  DTX_ASSIGN_OR_RETURN(auto e, impl_->Pick());
  auto context = impl_->Context();
  dtx::admin::v1::GidRequest request;
  request.set_gid(gid);
  google::protobuf::Empty reply;
  return impl_->Call("RetryNow", FromGrpcStatus(e->admin->RetryNow(
                                     context.get(), request, &reply)));
}

BranchClient& GrpcDtmClient::branch_client() { return *impl_->branches; }

std::string GrpcDtmClient::address() const { return impl_->options.address; }

}  // namespace dtx
