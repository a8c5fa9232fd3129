// GrpcBranchClient.
//
// A call goes: route lookup (the URL's parsed server and method, cached per
// URL) -> channel pick (one cached channel per target string; for address
// sets, one per address, picked round-robin) -> GenericStub's
// PrepareUnaryCall with the payload as raw bytes, its completion on the
// client's completion queue -> on the client's one polling thread
// (dtx-grpc-cq), the answer becomes a BranchResult that is handed to the
// caller's executor. CallBlocking takes its answer on the caller's thread
// instead. No callback of gRPC's callback API, so gRPC starts no callback
// threads of its own for dtx's calls (see Impl::Poll for why that matters).
// With Completions::kGrpcCallbackThreads (dtx-server, whose services run
// those threads anyway) a call is made with GenericStub's callback API
// instead, and its answer is taken by them; there is no dtx-grpc-cq then.
//
// Address sets (direct:/// and discovery://) are shared by every URL of the
// same server. When a resolver returns a new snapshot, the set is rebuilt from
// the channel pool, which keeps the channels of addresses still present;
// channels no longer referenced by any set or call are then closed.

#include "dtx/transport/grpc_branch_client.h"

#include "dtx/internal/mutex.h"
#include "dtx/internal/thread_name.h"
#include "dtx/limits.h"
#include "dtx/transport/branch_url.h"

#include "blocking_call.h"
#include "grpc_tls.h"
#include "metadata.h"
#include "outcome_mapping.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/validate_service_config.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace dtx {

using internal::MutexLock;

namespace {

struct Channel {
  std::string target;
  bool tls = false;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
};

// The channels of one address set (direct:/// list or registry service).
struct AddressChannels {
  std::string service;  // empty for a fixed list
  internal::Mutex mu;
  AddressSet snapshot DTX_GUARDED_BY(mu);
  std::vector<std::shared_ptr<Channel>> channels DTX_GUARDED_BY(mu);
  std::atomic<uint64_t> next{0};
};

struct Route {
  std::string method;
  std::shared_ptr<Channel> single;       // kChannel
  std::shared_ptr<AddressChannels> set;  // kAddresses, kService
};

constexpr std::size_t kMaxCachedRoutes = 10000;

// Credentials ready for the channels of one TLS rule (or of grpcs://
// endpoints without one).
struct TlsChannelSettings {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments args;  // the server-name override, if any
};

// The host and port a channel target connects to, for matching TLS rules:
// "h:p", "dns:[//authority/]h:p", "ipv4:a:p" and "ipv6:[a]:p" (one address).
// False for the other forms (unix:, address lists, no port).
bool TargetHostPort(std::string_view target, std::string* host,
                    std::string* port) {
  if (target.rfind("dns:", 0) == 0) {
    target.remove_prefix(4);
    if (target.rfind("//", 0) == 0) {
      const auto slash = target.find('/', 2);
      if (slash == std::string_view::npos) return false;
      target.remove_prefix(slash + 1);
    }
  } else if (target.rfind("ipv4:", 0) == 0 || target.rfind("ipv6:", 0) == 0) {
    target.remove_prefix(5);
    if (target.rfind("///", 0) == 0) target.remove_prefix(3);
    if (target.find(',') != std::string_view::npos) return false;
  } else if (target.find("://") != std::string_view::npos ||
             target.rfind("unix:", 0) == 0) {
    return false;
  }
  const auto colon = target.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view h = target.substr(0, colon);
  if (h.front() == '[') {
    if (h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string_view::npos) {
    return false;
  }
  *host = std::string(h);
  *port = std::string(target.substr(colon + 1));
  return !host->empty() && !port->empty();
}

}  // namespace

struct GrpcBranchClient::Impl {
  explicit Impl(GrpcBranchClientOptions o) : options(std::move(o)) {
    logger = options.logger ? options.logger : NewNullLogger();
  }
  ~Impl() { StopPoller(); }

  Result<std::shared_ptr<Route>> GetRoute(const std::string& url);
  // `grpcs`: the target came from a Kratos grpcs:// endpoint, TLS even
  // without a rule.
  std::shared_ptr<Channel> GetChannel(const std::string& target,
                                      bool grpcs = false);
  // The TLS settings for `target`; null: plaintext.
  const TlsChannelSettings* TlsFor(const std::string& target, bool grpcs) const;
  void SweepChannels();
  Result<std::shared_ptr<Channel>> Pick(Route& route);
  // Rebuilds `set`'s channels for `snapshot`.
  Status Refresh(AddressChannels& set, const AddressSet& snapshot)
      DTX_REQUIRES(set.mu);
  void Finish(Executor& executor, Callback& done, BranchResult result);

  struct CallState;
  std::unique_ptr<CallState> Prepare(BranchRequest& request,
                                     BranchResult& failed);
  // Adds a call to `calls` (which Shutdown cancels); false once shut down.
  bool Track(CallState* call);
  void Untrack(CallState* call);
  // A completion on gRPC's callback threads (Completions::
  // kGrpcCallbackThreads): `call` leaves `calls`, so that Shutdown no longer
  // cancels it, but Shutdown waits until its state is destroyed (Released),
  // which drops its channel: a last grpc::Channel released after Shutdown
  // returned could outlive the client (and would end gRPC's shared callback
  // queue from one of its own threads). The own thread's completions need
  // no count: Shutdown joins that thread.
  void Releasing(CallState* call);
  void Released();
  // `channel`: the one the call went on (a plaintext channel's error may
  // get a hint that the server wants TLS).
  static BranchResult ResultOf(const grpc::Status& status,
                               const grpc::ByteBuffer& response,
                               const Channel& channel);

  GrpcBranchClientOptions options;
  std::shared_ptr<Logger> logger;
  // One per options.tls_rules entry, same order; set by Create.
  std::vector<TlsChannelSettings> rule_tls;
  TlsChannelSettings default_tls;  // grpcs:// endpoints without a rule

  // A lookup holds it for a hash probe and a shared_ptr copy, so one plain
  // mutex serves readers as well as a reader-writer lock would.
  internal::Mutex routes_mu;
  std::unordered_map<std::string, std::shared_ptr<Route>> routes
      DTX_GUARDED_BY(routes_mu);

  internal::Mutex sets_mu;
  std::unordered_map<std::string, std::shared_ptr<AddressChannels>> sets
      DTX_GUARDED_BY(sets_mu);

  mutable internal::Mutex channels_mu;
  std::unordered_map<std::string, std::shared_ptr<Channel>> channels
      DTX_GUARDED_BY(channels_mu);

  mutable internal::Mutex calls_mu;
  internal::CondVar calls_cv{&calls_mu};
  std::unordered_set<CallState*> calls DTX_GUARDED_BY(calls_mu);
  bool shut_down DTX_GUARDED_BY(calls_mu) = false;
  std::size_t releasing DTX_GUARDED_BY(calls_mu) = 0;  // see Releasing

  // The asynchronous calls' completion queue and the one thread that takes
  // their completions (see Call). The thread waits in the queue only while
  // a call is outstanding.
  void StartPoller();
  void StopPoller();
  void Poll();
  void CallStarted();
  grpc::CompletionQueue cq;
  internal::Mutex poll_mu;
  internal::CondVar poll_cv{&poll_mu};
  std::size_t outstanding DTX_GUARDED_BY(poll_mu) = 0;
  bool poll_stop DTX_GUARDED_BY(poll_mu) = false;
  std::thread poller;
};

struct GrpcBranchClient::Impl::CallState {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  std::shared_ptr<Channel> channel;
  std::shared_ptr<Route> route;
  Executor executor;
  Callback done;
};

namespace {

void DeleteString(void* p) { delete static_cast<std::string*>(p); }

// Wraps the payload without copying it.
grpc::ByteBuffer ToByteBuffer(std::string payload) {
  if (payload.empty()) return grpc::ByteBuffer(nullptr, 0);
  auto* owned = new std::string(std::move(payload));
  grpc::Slice slice(owned->data(), owned->size(), &DeleteString, owned);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return {};
  std::string out;
  out.reserve(buffer.Length());
  for (const auto& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

}  // namespace

Result<std::shared_ptr<Route>> GrpcBranchClient::Impl::GetRoute(
    const std::string& url) {
  {
    MutexLock lock(&routes_mu);
    auto it = routes.find(url);
    if (it != routes.end()) return it->second;
  }
  DTX_ASSIGN_OR_RETURN(BranchUrl parts, SplitBranchUrl(url));
  DTX_ASSIGN_OR_RETURN(BranchTarget target,
                       ParseBranchServer(parts.server, options.driver));
  auto route = std::make_shared<Route>();
  route->method = parts.method;
  switch (target.kind) {
    case BranchTarget::Kind::kChannel:
      route->single = GetChannel(target.channel_target);
      break;
    case BranchTarget::Kind::kAddresses:
    case BranchTarget::Kind::kService: {
      if (target.kind == BranchTarget::Kind::kService && !options.resolver) {
        return FailedPreconditionError(
            "branch url '" + url + "': no service registry is configured for " +
            "discovery:// URLs (MicroService.Target)");
      }
      MutexLock lock(&sets_mu);
      auto& set = sets[parts.server];
      if (!set) {
        set = std::make_shared<AddressChannels>();
        if (target.kind == BranchTarget::Kind::kService) {
          set->service = target.service;
        } else {
          MutexLock set_lock(&set->mu);
          DTX_RETURN_IF_ERROR(
              Refresh(*set, std::make_shared<const std::vector<std::string>>(
                                std::move(target.addresses))));
        }
      }
      route->set = set;
      break;
    }
  }
  MutexLock lock(&routes_mu);
  if (routes.size() < kMaxCachedRoutes) routes.emplace(url, route);
  return route;
}

const TlsChannelSettings* GrpcBranchClient::Impl::TlsFor(
    const std::string& target, bool grpcs) const {
  std::string host, port;
  if (TargetHostPort(target, &host, &port)) {
    // Rules write IPv6 addresses in brackets ("[::1]:9443").
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    if (const TlsClientRule* rule =
            FindTlsRule(options.tls_rules, host, port)) {
      return &rule_tls[static_cast<std::size_t>(rule -
                                                options.tls_rules.data())];
    }
  }
  return grpcs ? &default_tls : nullptr;
}

std::shared_ptr<Channel> GrpcBranchClient::Impl::GetChannel(
    const std::string& target, bool grpcs) {
  const TlsChannelSettings* tls = TlsFor(target, grpcs);
  // A plaintext and a TLS channel to one target are different channels.
  const std::string key = tls ? target + " (tls)" : target;
  MutexLock lock(&channels_mu);
  auto& slot = channels[key];
  if (!slot) {
    grpc::ChannelArguments args = tls ? tls->args : grpc::ChannelArguments();
    args.SetServiceConfigJSON(options.service_config);
    args.SetMaxReceiveMessageSize(options.max_reply_bytes);
    args.SetMaxSendMessageSize(-1);  // payloads are checked against our limit
    slot = std::make_shared<Channel>();
    slot->target = key;
    slot->tls = tls != nullptr;
    slot->channel = grpc::CreateCustomChannel(
        target, tls ? tls->credentials : grpc::InsecureChannelCredentials(),
        args);
    slot->stub = std::make_unique<grpc::GenericStub>(slot->channel);
    DTX_LOG(logger, LogLevel::kDebug, "branch client: opened channel " << key);
  }
  return slot;
}

void GrpcBranchClient::Impl::SweepChannels() {
  std::vector<std::shared_ptr<Channel>> closing;  // destroyed outside the lock
  {
    MutexLock lock(&channels_mu);
    for (auto it = channels.begin(); it != channels.end();) {
      if (it->second.use_count() == 1) {
        DTX_LOG(logger, LogLevel::kDebug,
                "branch client: closed channel " << it->first);
        closing.push_back(std::move(it->second));
        it = channels.erase(it);
      } else {
        ++it;
      }
    }
  }
}

Status GrpcBranchClient::Impl::Refresh(AddressChannels& set,
                                       const AddressSet& snapshot) {
  std::vector<std::shared_ptr<Channel>> fresh;
  for (const std::string& entry : *snapshot) {
    // A Kratos instance with only a TLS endpoint (PickGrpcEndpoint).
    const bool grpcs = entry.rfind("grpcs://", 0) == 0;
    const std::string_view address =
        grpcs ? std::string_view(entry).substr(8) : std::string_view(entry);
    auto target = ChannelTargetForAddress(address);
    if (!target.ok()) {
      DTX_LOG(logger, LogLevel::kWarn,
              "branch client: skipping address of '"
                  << set.service << "': " << target.status());
      continue;
    }
    fresh.push_back(GetChannel(*target, grpcs));
  }
  if (fresh.empty()) {
    return UnavailableError("branch client: no usable address for '" +
                            set.service + "'");
  }
  set.channels.swap(fresh);
  set.snapshot = snapshot;
  return Status::Ok();
}

Result<std::shared_ptr<Channel>> GrpcBranchClient::Impl::Pick(Route& route) {
  if (route.single) return route.single;
  AddressChannels& set = *route.set;
  bool changed = false;
  std::shared_ptr<Channel> picked;
  {
    AddressSet snapshot;
    if (!set.service.empty()) {
      DTX_ASSIGN_OR_RETURN(snapshot, options.resolver->Resolve(set.service));
    }
    MutexLock lock(&set.mu);
    if (snapshot && snapshot != set.snapshot) {
      DTX_RETURN_IF_ERROR(Refresh(set, snapshot));
      changed = true;
    }
    if (set.channels.empty()) {
      return UnavailableError("branch client: no address for '" + set.service +
                              "'");
    }
    picked = set.channels[set.next.fetch_add(1, std::memory_order_relaxed) %
                          set.channels.size()];
  }
  if (changed) SweepChannels();
  return picked;
}

void GrpcBranchClient::Impl::Finish(Executor& executor, Callback& done,
                                    BranchResult result) {
  if (executor) {
    executor([done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  } else {
    done(std::move(result));
  }
}

GrpcBranchClient::GrpcBranchClient(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

GrpcBranchClient::~GrpcBranchClient() { Shutdown(); }

Result<std::unique_ptr<GrpcBranchClient>> GrpcBranchClient::Create(
    GrpcBranchClientOptions options) {
  if (options.driver != kDefaultDriver && options.driver != kKratosDriver) {
    return InvalidArgumentError(
        "branch client: unknown micro-service driver '" + options.driver +
        "' (want '" + std::string(kDefaultDriver) + "' or '" +
        std::string(kKratosDriver) + "')");
  }
  const std::string error =
      grpc::experimental::ValidateServiceConfigJSON(options.service_config);
  if (!error.empty()) {
    return InvalidArgumentError("branch client: bad service config: " + error);
  }
  if (options.default_timeout.count() <= 0) {
    return InvalidArgumentError(
        "branch client: default_timeout must be positive");
  }
  std::vector<TlsChannelSettings> rule_tls;
  for (std::size_t i = 0; i < options.tls_rules.size(); ++i) {
    const TlsClientRule& rule = options.tls_rules[i];
    const std::string who =
        "branch client: TLS rule " + std::to_string(i + 1) +
        (rule.target.empty() ? std::string() : " (" + rule.target + ")");
    if (rule.target.empty()) return InvalidArgumentError(who + ": no target");
    TlsChannelSettings settings;
    DTX_ASSIGN_OR_RETURN(
        settings.credentials,
        internal::GrpcTlsChannelCredentials(rule.tls, who, &settings.args));
    rule_tls.push_back(std::move(settings));
  }
  TlsChannelSettings default_tls;
  DTX_ASSIGN_OR_RETURN(default_tls.credentials,
                       internal::GrpcTlsChannelCredentials(
                           TlsClientOptions{}, "branch client", nullptr));
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->rule_tls = std::move(rule_tls);
  impl->default_tls = std::move(default_tls);
  try {
    if (impl->options.completions ==
        GrpcBranchClientOptions::Completions::kOwnThread) {
      impl->StartPoller();
    }
  } catch (const std::system_error& e) {
    return ResourceExhaustedError(
        std::string("branch client: cannot start a thread: ") + e.what());
  }
  return std::unique_ptr<GrpcBranchClient>(
      new GrpcBranchClient(std::move(impl)));
}

// Everything a call needs before it reaches gRPC: the route, the metadata
// (checked: gRPC aborts the process on a value it rejects), the deadline, the
// channel. On error, `failed` says what to report and no state is returned.
std::unique_ptr<GrpcBranchClient::Impl::CallState>
GrpcBranchClient::Impl::Prepare(BranchRequest& request, BranchResult& failed) {
  auto fail = [&](BranchOutcome outcome, Status status) {
    failed.outcome = outcome;
    failed.status = std::move(status);
    return nullptr;
  };
  {
    MutexLock lock(&calls_mu);
    if (shut_down) {
      return fail(BranchOutcome::kTransient,
                  CancelledError("branch client: shut down"));
    }
  }
  auto route = GetRoute(request.url);
  if (!route.ok()) {
    const bool permanent =
        route.status().code() == StatusCode::kInvalidArgument;
    return fail(permanent ? BranchOutcome::kFailure : BranchOutcome::kTransient,
                route.status());
  }
  Status s = ValidatePayload(request.payload);
  if (!s.ok()) {
    return fail(BranchOutcome::kFailure,
                s.WithPrefix("branch call " + request.url));
  }

  auto state = std::make_unique<CallState>();
  grpc::ClientContext& ctx = state->context;
  // dtm's keys first, then the branch headers.
  const std::pair<const char*, const std::string*> fixed[] = {
      {"dtm-gid", &request.info.gid},
      {"dtm-branch_id", &request.info.branch_id},
      {"dtm-op", &request.info.custom_op},
      {"dtm-dtm", &request.info.dtm}};
  for (const auto& [key, value] : fixed) {
    s = internal::CheckMetadataValue(key, *value);
    if (!s.ok())
      return fail(BranchOutcome::kFailure, s.WithPrefix("branch call"));
  }
  ctx.AddMetadata("dtm-gid", request.info.gid);
  ctx.AddMetadata("dtm-trans_type",
                  std::string(ToString(request.info.trans_type)));
  ctx.AddMetadata("dtm-branch_id", request.info.branch_id);
  ctx.AddMetadata("dtm-op", std::string(OpOf(request.info)));
  ctx.AddMetadata("dtm-dtm", request.info.dtm);
  for (auto& [key, value] : request.headers) {
    s = internal::NormalizeMetadataKey(&key);
    if (s.ok()) s = internal::CheckMetadataValue(key, value);
    if (!s.ok())
      return fail(BranchOutcome::kFailure, s.WithPrefix("branch call"));
    ctx.AddMetadata(key, value);
  }
  const auto timeout =
      request.timeout.count() > 0 ? request.timeout : options.default_timeout;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);

  auto channel = Pick(**route);
  if (!channel.ok()) return fail(BranchOutcome::kTransient, channel.status());

  state->request = ToByteBuffer(std::move(request.payload));
  state->channel = std::move(channel).value();
  state->route = std::move(route).value();
  return state;
}

bool GrpcBranchClient::Impl::Track(CallState* call) {
  MutexLock lock(&calls_mu);
  if (shut_down) return false;
  calls.insert(call);
  return true;
}

void GrpcBranchClient::Impl::Untrack(CallState* call) {
  MutexLock lock(&calls_mu);
  calls.erase(call);
  if (calls.empty() && releasing == 0) calls_cv.SignalAll();
}

void GrpcBranchClient::Impl::Releasing(CallState* call) {
  MutexLock lock(&calls_mu);
  calls.erase(call);
  ++releasing;
}

void GrpcBranchClient::Impl::Released() {
  MutexLock lock(&calls_mu);
  if (--releasing == 0 && calls.empty()) calls_cv.SignalAll();
}

BranchResult GrpcBranchClient::Impl::ResultOf(const grpc::Status& status,
                                              const grpc::ByteBuffer& response,
                                              const Channel& channel) {
  BranchResult r;
  r.outcome =
      internal::OutcomeFromGrpc(status.error_code(), status.error_message());
  if (status.ok()) {
    r.reply = FromByteBuffer(response);
  } else {
    std::string message = status.error_message();
    if (!channel.tls && status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      message += internal::PlaintextFailureHint(
          message, "give this server a TLS rule (BranchTLS)");
    }
    r.status = Status(static_cast<StatusCode>(status.error_code()), message);
  }
  return r;
}

namespace {

BranchResult ShutDownResult() {
  BranchResult r;
  r.outcome = BranchOutcome::kTransient;
  r.status = CancelledError("branch client: shut down");
  return r;
}

}  // namespace

void GrpcBranchClient::Call(BranchRequest request, Executor executor,
                            Callback done) {
  Impl& impl = *impl_;
  BranchResult failed;
  std::unique_ptr<Impl::CallState> state = impl.Prepare(request, failed);
  if (!state) return impl.Finish(executor, done, std::move(failed));
  state->executor = std::move(executor);
  state->done = std::move(done);
  Impl::CallState* raw = state.get();
  if (!impl.Track(raw)) {
    // Shut down meanwhile: the executor and callback are in `state` now.
    return impl.Finish(state->executor, state->done, ShutDownResult());
  }
  state.release();  // owned by the completion below
  if (impl.options.completions ==
      GrpcBranchClientOptions::Completions::kGrpcCallbackThreads) {
    raw->channel->stub->UnaryCall(
        &raw->context, raw->route->method, grpc::StubOptions(), &raw->request,
        &raw->response, [&impl, raw](const grpc::Status& status) {
          std::unique_ptr<Impl::CallState> owned(raw);
          impl.Finish(owned->executor, owned->done,
                      Impl::ResultOf(status, owned->response, *owned->channel));
          impl.Releasing(raw);
          owned.reset();
          impl.Released();  // the last use of `impl`
        });
    return;
  }
  impl.CallStarted();
  // The completion (Impl::Poll) frees `raw`, possibly before this returns.
  internal::StartUnaryCall(*raw->channel->stub, &raw->context,
                           raw->route->method, raw->request, &impl.cq,
                           &raw->reader, &raw->response, &raw->status, raw);
}

// The caller's thread takes the completion from a queue of its own, as
// gRPC's generated blocking stubs do: no gRPC thread has to wake up and hand
// the answer over (about 0.1 ms per call on an idle machine; the client
// API's TCC try and msg check-back wait like this).
BranchResult GrpcBranchClient::CallBlocking(BranchRequest request) {
  Impl& impl = *impl_;
  BranchResult failed;
  std::unique_ptr<Impl::CallState> state = impl.Prepare(request, failed);
  if (!state) return failed;
  if (!impl.Track(state.get())) return ShutDownResult();
  const grpc::Status status = internal::BlockingUnaryCall(
      *state->channel->stub, &state->context, state->route->method,
      state->request, &state->response);
  BranchResult r = Impl::ResultOf(status, state->response, *state->channel);
  impl.Untrack(state.get());
  return r;
}

// Validation builds the URL's route and keeps it, so that the calls of the
// branch find it parsed: a URL is parsed once, not at admission and again at
// each call.
Status GrpcBranchClient::ValidateUrl(std::string_view url, std::string_view) {
  return impl_->GetRoute(std::string(url)).status();
}

void GrpcBranchClient::Shutdown() {
  {
    MutexLock lock(&impl_->calls_mu);
    impl_->shut_down = true;
    for (auto* call : impl_->calls) call->context.TryCancel();
    impl_->calls_cv.Wait(&impl_->calls_mu, [this] {
      impl_->calls_mu.AssertHeld();
      return impl_->calls.empty() && impl_->releasing == 0;
    });
  }
  impl_->StopPoller();
}

// The completions of asynchronous calls. The thread waits in the queue only
// while a call is outstanding, and otherwise on poll_cv: gRPC 1.51's poller
// (epoll1) lets one thread at a time wait on the process's sockets and hands
// what it reads for another thread's queue over with a wake-up, so a thread
// parked in a queue with nothing to wait for would take the answers of the
// blocking calls (CallBlocking) that their callers wait for themselves. So
// did gRPC's callback threads, which this replaces (two per process, which
// also woke each other for every completion).
void GrpcBranchClient::Impl::StartPoller() {
  poller = std::thread([this] {
    internal::NameThisThread("dtx-grpc-cq");
    Poll();
  });
}

void GrpcBranchClient::Impl::CallStarted() {
  bool wake = false;
  {
    MutexLock lock(&poll_mu);
    wake = outstanding++ == 0;
  }
  if (wake) poll_cv.Signal();
}

void GrpcBranchClient::Impl::Poll() {
  for (;;) {
    {
      MutexLock lock(&poll_mu);
      poll_cv.Wait(&poll_mu, [this] {
        poll_mu.AssertHeld();
        return outstanding > 0 || poll_stop;
      });
      if (outstanding == 0) return;  // stopped, nothing left
    }
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) return;
    {
      std::unique_ptr<CallState> owned(static_cast<CallState*>(tag));
      Finish(owned->executor, owned->done,
             ResultOf(owned->status, owned->response, *owned->channel));
      Untrack(owned.get());
    }
    MutexLock lock(&poll_mu);
    --outstanding;
  }
}

void GrpcBranchClient::Impl::StopPoller() {
  {
    MutexLock lock(&poll_mu);
    if (poll_stop) return;
    poll_stop = true;
  }
  poll_cv.Signal();
  if (poller.joinable()) poller.join();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

std::vector<std::string> GrpcBranchClient::OpenChannelTargets() const {
  std::vector<std::string> out;
  MutexLock lock(&impl_->channels_mu);
  for (const auto& [target, channel] : impl_->channels) out.push_back(target);
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t GrpcBranchClient::InFlight() const {
  MutexLock lock(&impl_->calls_mu);
  return impl_->calls.size();
}

}  // namespace dtx
