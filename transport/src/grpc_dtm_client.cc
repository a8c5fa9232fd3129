#include "dtx/transport/grpc_dtm_client.h"

#include "dtx/admin.grpc.pb.h"
#include "dtx/internal/mutex.h"
#include "dtx/transport/branch_url.h"
#include "dtx/transport/grpc_branch_client.h"
#include "dtx/transport/kratos_registry.h"

#include "dtm/dtmgimp.grpc.pb.h"
#include "dtm_proto.h"
#include "grpc_tls.h"

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace dtx {
namespace {

using internal::FromGrpcStatus;

struct Endpoint {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<dtmgimp::Dtm::Stub> dtm;
  std::unique_ptr<dtx::admin::v1::Admin::Stub> admin;
};

// How the channels to the coordinator are secured.
struct ChannelSecurity {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments args;
};

std::shared_ptr<Endpoint> NewEndpoint(const std::string& target,
                                      const ChannelSecurity& security) {
  auto e = std::make_shared<Endpoint>();
  grpc::ChannelArguments args = security.args;
  // A Query reply carries every branch's payload (a saga's twice), so it can
  // exceed the 4 MiB that the server accepts per request.
  args.SetMaxReceiveMessageSize(-1);
  e->channel = grpc::CreateCustomChannel(target, security.credentials, args);
  e->dtm = dtmgimp::Dtm::NewStub(e->channel);
  e->admin = dtx::admin::v1::Admin::NewStub(e->channel);
  return e;
}

bool IsRegistryAddress(const std::string& address) {
  return address.rfind("discovery://", 0) == 0 ||
         address.rfind("etcd://", 0) == 0;
}

// One request in flight: its context and messages, owned by the callback
// that gRPC runs when it ends (and, while it is in flight, by the client's
// list of calls to cancel at destruction). Its endpoint reference is never
// the last one (see Impl::retired).
struct CallBase {
  virtual ~CallBase() = default;
  grpc::ClientContext context;
  std::shared_ptr<Endpoint> endpoint;  // keeps the channel open
  std::atomic<bool> cancelled{false};  // by the client's destructor
};

template <typename Request, typename Reply>
struct Call final : CallBase {
  Request request;
  Reply reply;
};

}  // namespace

struct GrpcDtmClient::Impl {
  GrpcDtmClientOptions options;
  BranchTarget target;
  std::shared_ptr<ServiceResolver> resolver;
  std::unique_ptr<GrpcBranchClient> branches;

  std::mutex mu;
  ChannelSecurity security;          // options.tls, or plaintext
  ChannelSecurity grpcs_security;    // grpcs:// registry instances
  std::shared_ptr<Endpoint> single;  // kChannel
  AddressSet fixed;                  // kAddresses, built once
  std::unordered_map<std::string, std::shared_ptr<Endpoint>>
      by_address;       // guarded by mu
  AddressSet last_set;  // guarded by mu
  // Channels of servers that left the registry, kept while calls still use
  // them. A channel must not be destroyed on a gRPC callback thread (gRPC
  // 1.51 then joins its callback threads from one of them and aborts), so
  // the client, never a call's completion, drops the last reference.
  std::vector<std::shared_ptr<Endpoint>> retired;  // guarded by mu
  std::atomic<uint64_t> next{0};

  // The calls in flight, so that the destructor can cancel them and wait
  // for their callbacks.
  internal::Mutex calls_mu;
  internal::CondVar calls_cv{&calls_mu};
  std::unordered_set<std::shared_ptr<CallBase>> calls DTX_GUARDED_BY(calls_mu);
  bool closing DTX_GUARDED_BY(calls_mu) = false;

  Result<std::shared_ptr<Endpoint>> Pick();

  // Sends `request` with `send(endpoint, context, request, reply, on_done)`
  // (a stub's async() method) and runs `on_reply(status, reply)` on the gRPC
  // thread that completes it; `on_reply` gets the error at once when no
  // server can be picked.
  // `admin`: a call of dtx's admin service, which carries admin_token.
  template <typename Request, typename Reply, typename Send, typename OnReply>
  void Start(const char* method, Request request, Send send, OnReply on_reply,
             bool admin = false);

  // Cancels the calls in flight and waits for their callbacks.
  void CancelAll();
};

template <typename Request, typename Reply, typename Send, typename OnReply>
void GrpcDtmClient::Impl::Start(const char* method, Request request, Send send,
                                OnReply on_reply, bool admin) {
  auto endpoint = Pick();
  if (!endpoint.ok()) {
    Reply none;
    on_reply(endpoint.status(), none);
    return;
  }
  auto call = std::make_shared<Call<Request, Reply>>();
  call->request = std::move(request);
  call->endpoint = std::move(endpoint).value();
  call->context.set_deadline(std::chrono::system_clock::now() +
                             options.timeout);
  if (admin && !options.admin_token.empty()) {
    call->context.AddMetadata("authorization", "Bearer " + options.admin_token);
  }
  bool refused = false;
  {
    internal::MutexLock lock(&calls_mu);
    refused = closing;
    if (!refused) calls.insert(call);
  }
  if (refused) {
    on_reply(UnavailableError("dtm server " + options.address + " " + method +
                              ": the client is shutting down"),
             call->reply);
    return;
  }
  Call<Request, Reply>* raw = call.get();
  send(*raw->endpoint, &raw->context, &raw->request, &raw->reply,
       [this, method, call = std::move(call),
        on_reply = std::move(on_reply)](grpc::Status grpc_status) mutable {
         // Take the call out of this closure: gRPC may keep the closure
         // until the context it belongs to is freed.
         auto self = std::move(call);
         Status status;
         if (self->cancelled.load() &&
             grpc_status.error_code() == grpc::StatusCode::CANCELLED) {
           status =
               UnavailableError("dtm server " + options.address + " " + method +
                                ": cancelled, the client is shutting "
                                "down");
         } else if (!grpc_status.ok()) {
           status = FromGrpcStatus(grpc_status)
                        .WithPrefix(std::string("dtm server ") +
                                    options.address + " " + method);
           if (!options.tls &&
               grpc_status.error_code() == grpc::StatusCode::UNAVAILABLE) {
             const std::string hint = internal::PlaintextFailureHint(
                 grpc_status.error_message(),
                 "configure this client's TLS settings");
             if (!hint.empty()) {
               status = Status(status.code(), status.message() + hint);
             }
           }
         }
         on_reply(std::move(status), self->reply);
         internal::MutexLock lock(&calls_mu);
         calls.erase(self);
         // Freed under the lock, so that the destructor, which waits for
         // it, is the one to drop the channel's last reference.
         self.reset();
         // Signalled under the lock: the destructor may free the client as
         // soon as it sees no call left.
         if (calls.empty()) calls_cv.SignalAll();
       });
}

void GrpcDtmClient::Impl::CancelAll() {
  std::vector<std::shared_ptr<CallBase>> in_flight;
  {
    internal::MutexLock lock(&calls_mu);
    closing = true;
    in_flight.assign(calls.begin(), calls.end());
  }
  // Outside the lock: a cancelled call's callback may run at once, on this
  // thread, and it takes the lock.
  for (const auto& call : in_flight) {
    call->cancelled = true;
    call->context.TryCancel();
  }
  in_flight.clear();
  internal::MutexLock lock(&calls_mu);
  calls_cv.Wait(&calls_mu, [this] {
    calls_mu.AssertHeld();
    return calls.empty();
  });
}

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
        retired.push_back(std::move(it->second));
        it = by_address.erase(it);
      } else {
        ++it;
      }
    }
    last_set = set;
  }
  // Free the retired channels no call uses any more, here on the caller's
  // thread.
  retired.erase(std::remove_if(retired.begin(), retired.end(),
                               [](const std::shared_ptr<Endpoint>& e) {
                                 return e.use_count() == 1;
                               }),
                retired.end());
  auto& slot = by_address[address];
  if (!slot) {
    // A Kratos instance with only a TLS endpoint (PickGrpcEndpoint).
    const bool grpcs = address.rfind("grpcs://", 0) == 0;
    DTX_ASSIGN_OR_RETURN(
        std::string channel_target,
        ChannelTargetForAddress(grpcs ? std::string_view(address).substr(8)
                                      : std::string_view(address)));
    slot = NewEndpoint(channel_target,
                       grpcs && !options.tls ? grpcs_security : security);
  }
  return slot;
}

GrpcDtmClient::GrpcDtmClient(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

GrpcDtmClient::~GrpcDtmClient() {
  if (!impl_) return;
  impl_->CancelAll();
  if (impl_->branches) impl_->branches->Shutdown();
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
  for (char ch : options.admin_token) {
    if (ch < 0x21 || ch > 0x7e) {
      // gRPC C++ aborts the process on a metadata value it cannot send.
      return InvalidArgumentError(
          "GrpcDtmClient: admin_token must be visible ASCII");
    }
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
    DTX_ASSIGN_OR_RETURN(impl->resolver,
                         EtcdServiceResolver::Connect(
                             EtcdClientOptionsFor(where), resolver_options));
  }
  if (impl->target.kind == BranchTarget::Kind::kService && !impl->resolver) {
    return InvalidArgumentError("GrpcDtmClient: '" + options.address +
                                "' needs a service resolver");
  }
  if (options.tls) {
    DTX_ASSIGN_OR_RETURN(
        impl->security.credentials,
        internal::GrpcTlsChannelCredentials(*options.tls, "GrpcDtmClient",
                                            &impl->security.args));
  } else {
    impl->security.credentials = grpc::InsecureChannelCredentials();
  }
  DTX_ASSIGN_OR_RETURN(impl->grpcs_security.credentials,
                       internal::GrpcTlsChannelCredentials(
                           TlsClientOptions{}, "GrpcDtmClient", nullptr));
  if (impl->target.kind == BranchTarget::Kind::kChannel) {
    impl->single = NewEndpoint(impl->target.channel_target, impl->security);
  } else if (impl->target.kind == BranchTarget::Kind::kAddresses) {
    impl->fixed = std::make_shared<const std::vector<std::string>>(
        impl->target.addresses);
  }
  GrpcBranchClientOptions branch_options;
  branch_options.driver = options.driver;
  branch_options.resolver = impl->resolver;
  branch_options.default_timeout = options.branch_timeout;
  branch_options.tls_rules = options.branch_tls_rules;
  branch_options.logger = options.logger;
  DTX_ASSIGN_OR_RETURN(impl->branches,
                       GrpcBranchClient::Create(std::move(branch_options)));
  impl->options = std::move(options);
  return std::unique_ptr<GrpcDtmClient>(new GrpcDtmClient(std::move(impl)));
}

namespace {

// Runs `start` with a callback and waits for the value it is given.
template <typename T, typename Start>
T Wait(Start start) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> future = promise->get_future();
  start([promise](T value) { promise->set_value(std::move(value)); });
  return future.get();
}

}  // namespace

void GrpcDtmClient::NewGidAsync(ResultCallback<std::string> done) {
  impl_->Start<google::protobuf::Empty, dtmgimp::DtmGidReply>(
      "NewGid", {},
      [](Endpoint& e, grpc::ClientContext* context,
         const google::protobuf::Empty* request, dtmgimp::DtmGidReply* reply,
         std::function<void(grpc::Status)> on_done) {
        e.dtm->async()->NewGid(context, request, reply, std::move(on_done));
      },
      [address = impl_->options.address, done = std::move(done)](
          Status status, dtmgimp::DtmGidReply& reply) {
        if (!status.ok()) return done(std::move(status));
        if (reply.gid().empty()) {
          return done(InternalError("dtm server " + address +
                                    " NewGid returned an empty gid"));
        }
        done(std::move(*reply.mutable_gid()));
      });
}

#define DTX_DTM_REQUEST_(Method)                                            \
  void GrpcDtmClient::Method##Async(TransRequest request,                   \
                                    StatusCallback done) {                  \
    impl_->Start<dtmgimp::DtmRequest, google::protobuf::Empty>(             \
        #Method, internal::ToProto(request),                                \
        [](Endpoint& e, grpc::ClientContext* context,                       \
           const dtmgimp::DtmRequest* req, google::protobuf::Empty* reply,  \
           std::function<void(grpc::Status)> on_done) {                     \
          e.dtm->async()->Method(context, req, reply, std::move(on_done));  \
        },                                                                  \
        [done = std::move(done)](Status status, google::protobuf::Empty&) { \
          done(std::move(status));                                          \
        });                                                                 \
  }
DTX_DTM_REQUEST_(Prepare)
DTX_DTM_REQUEST_(Submit)
DTX_DTM_REQUEST_(Abort)
#undef DTX_DTM_REQUEST_

void GrpcDtmClient::RegisterBranchAsync(BranchRegistration branch,
                                        StatusCallback done) {
  impl_->Start<dtmgimp::DtmBranchRequest, google::protobuf::Empty>(
      "RegisterBranch", internal::ToProto(branch),
      [](Endpoint& e, grpc::ClientContext* context,
         const dtmgimp::DtmBranchRequest* request,
         google::protobuf::Empty* reply,
         std::function<void(grpc::Status)> on_done) {
        e.dtm->async()->RegisterBranch(context, request, reply,
                                       std::move(on_done));
      },
      [done = std::move(done)](Status status, google::protobuf::Empty&) {
        done(std::move(status));
      });
}

void GrpcDtmClient::PrepareWorkflowAsync(
    TransRequest request, ResultCallback<TransWithBranches> done) {
  impl_->Start<dtmgimp::DtmRequest, dtmgimp::DtmProgressesReply>(
      "PrepareWorkflow", internal::ToProto(request),
      [](Endpoint& e, grpc::ClientContext* context,
         const dtmgimp::DtmRequest* req, dtmgimp::DtmProgressesReply* reply,
         std::function<void(grpc::Status)> on_done) {
        e.dtm->async()->PrepareWorkflow(context, req, reply,
                                        std::move(on_done));
      },
      [done = std::move(done)](Status status,
                               dtmgimp::DtmProgressesReply& reply) {
        if (!status.ok()) return done(std::move(status));
        done(internal::FromProto(reply));
      });
}

void GrpcDtmClient::QueryAsync(std::string gid,
                               ResultCallback<TransWithBranches> done) {
  dtx::admin::v1::QueryRequest request;
  request.set_gid(std::move(gid));
  impl_->Start<dtx::admin::v1::QueryRequest, dtx::admin::v1::QueryReply>(
      "Query", std::move(request),
      [](Endpoint& e, grpc::ClientContext* context,
         const dtx::admin::v1::QueryRequest* req,
         dtx::admin::v1::QueryReply* reply,
         std::function<void(grpc::Status)> on_done) {
        e.admin->async()->Query(context, req, reply, std::move(on_done));
      },
      [done = std::move(done)](Status status,
                               dtx::admin::v1::QueryReply& reply) {
        if (!status.ok()) return done(std::move(status));
        TransWithBranches out;
        auto trans = internal::FromProto(reply.transaction());
        if (!trans.ok()) return done(trans.status());
        out.trans = std::move(trans).value();
        for (const auto& b : reply.branches()) {
          auto branch = internal::FromProto(b);
          if (!branch.ok()) return done(branch.status());
          out.branches.push_back(std::move(branch).value());
        }
        done(std::move(out));
      },
      /*admin=*/true);
}

void GrpcDtmClient::ListAsync(ListQuery query, ResultCallback<ListPage> done) {
  impl_->Start<dtx::admin::v1::ListRequest, dtx::admin::v1::ListReply>(
      "List", internal::ToProto(query),
      [](Endpoint& e, grpc::ClientContext* context,
         const dtx::admin::v1::ListRequest* request,
         dtx::admin::v1::ListReply* reply,
         std::function<void(grpc::Status)> on_done) {
        e.admin->async()->List(context, request, reply, std::move(on_done));
      },
      [done = std::move(done)](Status status,
                               dtx::admin::v1::ListReply& reply) {
        if (!status.ok()) return done(std::move(status));
        ListPage page;
        for (const auto& t : reply.transactions()) {
          auto trans = internal::FromProto(t);
          if (!trans.ok()) return done(trans.status());
          page.transactions.push_back(std::move(trans).value());
        }
        page.next_cursor = reply.next_cursor();
        done(std::move(page));
      },
      /*admin=*/true);
}

void GrpcDtmClient::StatsAsync(ResultCallback<TransStats> done) {
  impl_->Start<dtx::admin::v1::StatsRequest, dtx::admin::v1::StatsReply>(
      "Stats", dtx::admin::v1::StatsRequest(),
      [](Endpoint& e, grpc::ClientContext* context,
         const dtx::admin::v1::StatsRequest* request,
         dtx::admin::v1::StatsReply* reply,
         std::function<void(grpc::Status)> on_done) {
        e.admin->async()->Stats(context, request, reply, std::move(on_done));
      },
      [done = std::move(done)](Status status,
                               dtx::admin::v1::StatsReply& reply) {
        if (!status.ok()) return done(std::move(status));
        done(internal::FromProto(reply));
      },
      /*admin=*/true);
}

#define DTX_ADMIN_GID_REQUEST_(Method)                                       \
  void GrpcDtmClient::Method##Async(std::string gid, StatusCallback done) {  \
    dtx::admin::v1::GidRequest request;                                      \
    request.set_gid(std::move(gid));                                         \
    impl_->Start<dtx::admin::v1::GidRequest, google::protobuf::Empty>(       \
        #Method, std::move(request),                                         \
        [](Endpoint& e, grpc::ClientContext* context,                        \
           const dtx::admin::v1::GidRequest* req,                            \
           google::protobuf::Empty* reply,                                   \
           std::function<void(grpc::Status)> on_done) {                      \
          e.admin->async()->Method(context, req, reply, std::move(on_done)); \
        },                                                                   \
        [done = std::move(done)](Status status, google::protobuf::Empty&) {  \
          done(std::move(status));                                           \
        },                                                                   \
        /*admin=*/true);                                                     \
  }
DTX_ADMIN_GID_REQUEST_(ForceStop)
DTX_ADMIN_GID_REQUEST_(RetryNow)
#undef DTX_ADMIN_GID_REQUEST_

Result<ListPage> GrpcDtmClient::List(const ListQuery& query) {
  return Wait<Result<ListPage>>([&](ResultCallback<ListPage> done) {
    ListAsync(query, std::move(done));
  });
}

Result<TransStats> GrpcDtmClient::Stats() {
  return Wait<Result<TransStats>>(
      [&](ResultCallback<TransStats> done) { StatsAsync(std::move(done)); });
}

Status GrpcDtmClient::ForceStop(const std::string& gid) {
  return Wait<Status>(
      [&](StatusCallback done) { ForceStopAsync(gid, std::move(done)); });
}

Status GrpcDtmClient::RetryNow(const std::string& gid) {
  return Wait<Status>(
      [&](StatusCallback done) { RetryNowAsync(gid, std::move(done)); });
}

BranchClient& GrpcDtmClient::branch_client() { return *impl_->branches; }

std::string GrpcDtmClient::address() const { return impl_->options.address; }

}  // namespace dtx
