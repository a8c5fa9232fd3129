// EtcdClient over etcd's v3 gRPC API (transport/proto/etcd).
//
// One channel per endpoint. A unary call starts at the endpoint that last
// answered and moves on while endpoints answer UNAVAILABLE, so a dead member
// costs one fast failure, not a deadline. Lease keep-alives are one
// request/response exchange on a short-lived stream; watches own a stream and
// a thread each.

#include "dtx/transport/etcd_client.h"

#include "etcd/rpc.grpc.pb.h"
#include "grpc_tls.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

namespace dtx {
namespace {

struct Endpoint {
  std::string target;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
};

Status FromGrpc(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(s.error_code()),
                "etcd: " + what + ": " + s.error_message());
}

EtcdKeyValue FromProto(const mvccpb::KeyValue& kv) {
  EtcdKeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

class WatchImpl final : public EtcdWatch {
 public:
  WatchImpl(
      etcdserverpb::Watch::Stub* stub, etcdserverpb::WatchRequest create,
      std::function<void(const std::vector<EtcdEvent>&, int64_t)> on_events,
      std::function<void(const Status&)> on_error)
      : on_events_(std::move(on_events)), on_error_(std::move(on_error)) {
    thread_ = std::thread(
        [this, stub, create = std::move(create)] { Run(stub, create); });
  }
  ~WatchImpl() override { Cancel(); }

  void Cancel() override {
    cancelled_ = true;
    context_.TryCancel();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run(etcdserverpb::Watch::Stub* stub,
           const etcdserverpb::WatchRequest& create) {
    auto stream = stub->Watch(&context_);
    if (!stream->Write(create)) {
      grpc::Status s = stream->Finish();
      if (!cancelled_)
        on_error_(FromGrpc(s.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                                 "stream closed")
                                  : s,
                           "watch"));
      return;
    }
    etcdserverpb::WatchResponse resp;
    while (stream->Read(&resp)) {
      if (resp.canceled()) {
        context_.TryCancel();
        break;
      }
      if (resp.events_size() == 0) continue;  // created, or progress
      std::vector<EtcdEvent> events;
      events.reserve(static_cast<std::size_t>(resp.events_size()));
      for (const auto& e : resp.events()) {
        EtcdEvent ev;
        ev.type = e.type() == mvccpb::Event::DELETE ? EtcdEvent::Type::kDelete
                                                    : EtcdEvent::Type::kPut;
        ev.kv = FromProto(e.kv());
        events.push_back(std::move(ev));
      }
      if (!cancelled_) on_events_(events, resp.header().revision());
    }
    grpc::Status s = stream->Finish();
    if (!cancelled_) {
      on_error_(s.ok() ? UnavailableError("etcd: watch: the stream ended")
                       : FromGrpc(s, "watch"));
    }
  }

  std::function<void(const std::vector<EtcdEvent>&, int64_t)> on_events_;
  std::function<void(const Status&)> on_error_;
  grpc::ClientContext context_;
  std::atomic<bool> cancelled_{false};
  std::thread thread_;
};

}  // namespace

EtcdWatch::~EtcdWatch() = default;

struct EtcdClient::Impl {
  EtcdClientOptions options;
  std::vector<Endpoint> endpoints;
  std::atomic<std::size_t> current{0};

  void Deadline(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() + options.timeout);
  }

  // Runs `call(endpoint, context)` on the endpoints in turn until one answers
  // with something other than UNAVAILABLE.
  template <typename Call>
  grpc::Status Try(Call&& call) {
    grpc::Status last;
    const std::size_t n = endpoints.size();
    const std::size_t start = current.load();
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t index = (start + i) % n;
      grpc::ClientContext ctx;
      Deadline(ctx);
      last = call(endpoints[index], ctx);
      if (last.error_code() != grpc::StatusCode::UNAVAILABLE) {
        current = index;
        return last;
      }
    }
    return last;
  }

  Result<EtcdRange> Range(const std::string& key,
                          const std::string& range_end) {
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    req.set_range_end(range_end);
    etcdserverpb::RangeResponse resp;
    grpc::Status s = Try([&](Endpoint& e, grpc::ClientContext& ctx) {
      return e.kv->Range(&ctx, req, &resp);
    });
    if (!s.ok()) return FromGrpc(s, "range " + key);
    EtcdRange out;
    out.revision = resp.header().revision();
    for (const auto& kv : resp.kvs()) out.kvs.push_back(FromProto(kv));
    return out;
  }
};

EtcdClient::EtcdClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdClient::~EtcdClient() = default;

Result<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    EtcdClientOptions options) {
  if (options.endpoints.empty())
    return InvalidArgumentError("etcd: no endpoints");
  if (options.timeout.count() <= 0 ||
      options.max_reconnect_backoff.count() <= 0) {
    return InvalidArgumentError(
        "etcd: timeout and max_reconnect_backoff must be positive");
  }
  auto impl = std::make_unique<Impl>();
  for (const std::string& endpoint : options.endpoints) {
    if (endpoint.rfind("https://", 0) == 0 && !options.tls) {
      options.tls.emplace();
    }
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  grpc::ChannelArguments tls_args;
  if (options.tls) {
    DTX_ASSIGN_OR_RETURN(credentials, internal::GrpcTlsChannelCredentials(
                                          *options.tls, "etcd", &tls_args));
  }
  for (std::string target : options.endpoints) {
    for (const char* scheme : {"http://", "https://"}) {
      if (target.rfind(scheme, 0) == 0)
        target = target.substr(std::string(scheme).size());
    }
    while (!target.empty() && target.back() == '/') target.pop_back();
    if (target.empty() || target.find_first_of(" /") != std::string::npos) {
      return InvalidArgumentError("etcd: bad endpoint '" + target + "'");
    }
    Endpoint e;
    e.target = target;
    grpc::ChannelArguments args = tls_args;
    const int backoff_ms =
        static_cast<int>(options.max_reconnect_backoff.count());
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, backoff_ms);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                std::min(backoff_ms, 1000));
    e.channel = grpc::CreateCustomChannel(target, credentials, args);
    e.kv = etcdserverpb::KV::NewStub(e.channel);
    e.lease = etcdserverpb::Lease::NewStub(e.channel);
    e.watch = etcdserverpb::Watch::NewStub(e.channel);
    impl->endpoints.push_back(std::move(e));
  }
  impl->options = std::move(options);
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(impl)));
}

std::string EtcdClient::PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key >= prefix
}

Result<EtcdRange> EtcdClient::Get(const std::string& key) {
  return impl_->Range(key, "");
}

Result<EtcdRange> EtcdClient::GetPrefix(const std::string& prefix) {
  return impl_->Range(prefix, PrefixEnd(prefix));
}

Status EtcdClient::Put(const std::string& key, const std::string& value,
                       int64_t lease) {
  etcdserverpb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_lease(lease);
  etcdserverpb::PutResponse resp;
  return FromGrpc(impl_->Try([&](Endpoint& e, grpc::ClientContext& ctx) {
    return e.kv->Put(&ctx, req, &resp);
  }),
                  "put " + key);
}

Result<int64_t> EtcdClient::Delete(const std::string& key) {
  etcdserverpb::DeleteRangeRequest req;
  req.set_key(key);
  etcdserverpb::DeleteRangeResponse resp;
  grpc::Status s = impl_->Try([&](Endpoint& e, grpc::ClientContext& ctx) {
    return e.kv->DeleteRange(&ctx, req, &resp);
  });
  if (!s.ok()) return FromGrpc(s, "delete " + key);
  return resp.deleted();
}

Result<EtcdLease> EtcdClient::GrantLease(std::chrono::seconds ttl) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl.count());
  etcdserverpb::LeaseGrantResponse resp;
  grpc::Status s = impl_->Try([&](Endpoint& e, grpc::ClientContext& ctx) {
    return e.lease->LeaseGrant(&ctx, req, &resp);
  });
  if (!s.ok()) return FromGrpc(s, "lease grant");
  if (!resp.error().empty())
    return UnavailableError("etcd: lease grant: " + resp.error());
  return EtcdLease{resp.id(), std::chrono::seconds(resp.ttl())};
}

Result<std::chrono::seconds> EtcdClient::KeepAliveOnce(int64_t lease) {
  etcdserverpb::LeaseKeepAliveResponse resp;
  grpc::Status s = impl_->Try([&](Endpoint& e, grpc::ClientContext& ctx) {
    auto stream = e.lease->LeaseKeepAlive(&ctx);
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(lease);
    if (!stream->Write(req)) return stream->Finish();
    stream->WritesDone();
    const bool got = stream->Read(&resp);
    grpc::Status finished = stream->Finish();
    if (!got && finished.ok()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "no keep-alive answer");
    }
    return got ? grpc::Status::OK : finished;
  });
  if (!s.ok()) return FromGrpc(s, "lease keep-alive");
  return std::chrono::seconds(resp.ttl());
}

Status EtcdClient::RevokeLease(int64_t lease) {
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(lease);
  etcdserverpb::LeaseRevokeResponse resp;
  return FromGrpc(impl_->Try([&](Endpoint& e, grpc::ClientContext& ctx) {
    return e.lease->LeaseRevoke(&ctx, req, &resp);
  }),
                  "lease revoke");
}

Result<std::unique_ptr<EtcdWatch>> EtcdClient::WatchPrefix(
    const std::string& prefix, int64_t start_revision,
    std::function<void(const std::vector<EtcdEvent>&, int64_t)> on_events,
    std::function<void(const Status&)> on_error) {
  if (!on_events || !on_error)
    return InvalidArgumentError("etcd: watch without callbacks");
  etcdserverpb::WatchRequest req;
  auto* create = req.mutable_create_request();
  create->set_key(prefix);
  create->set_range_end(PrefixEnd(prefix));
  create->set_start_revision(start_revision);
  Endpoint& e =
      impl_->endpoints[impl_->current.load() % impl_->endpoints.size()];
  return std::unique_ptr<EtcdWatch>(new WatchImpl(e.watch.get(), std::move(req),
                                                  std::move(on_events),
                                                  std::move(on_error)));
}

}  // namespace dtx
