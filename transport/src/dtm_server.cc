#include "dtx/transport/dtm_server.h"

#include "dtx/admin.grpc.pb.h"
#include "dtx/id_generator.h"
#include "dtx/internal/mutex.h"
#include "dtx/transport/bearer_token.h"
#include "dtx/transport/branch_url.h"
#include "dtx/transport/kratos_registry.h"

#include "dtm/dtmgimp.grpc.pb.h"
#include "dtm_proto.h"
#include "grpc_limited_listener.h"
#include "grpc_tls.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

namespace dtx {
namespace {

using google::protobuf::Empty;
using internal::FromProto;
using internal::ToGrpcStatus;
using SteadyClock = std::chrono::steady_clock;

// A request's entry in dtm_server_* (ServerMetrics): its api's series and
// when it arrived. Recorded once, when the call is finished. A null api: no
// metrics.
struct Measure {
  const ServerMetrics::Api* api = nullptr;
  SteadyClock::time_point arrived;

  void Record(const grpc::Status& status) const {
    if (api != nullptr) api->Record(status.ok(), SteadyClock::now() - arrived);
  }
};

// One call that waits for the coordinator. It is finished exactly once, by
// whichever comes first: the coordinator's callback (the answer), the
// caller cancelling (OnCancel), or the server's shutdown once the grace is
// over. The coordinator's callback holds this object, never the reactor, so
// it may run after the call is gone (and after the server is destroyed).
//
// Thread safety: thread-safe.
// Writes the reply message of a method registered raw (Handlers::Decoded)
// into its reply bytes, once an OK answer has filled it in; returns the
// status to finish with.
using Seal = std::function<grpc::Status()>;

class PendingCall {
 public:
  PendingCall(grpc::ServerUnaryReactor* reactor, Measure measure)
      : reactor_(reactor), measure_(measure) {}

  // REQUIRES: before the call is handed on (no Finish can run yet).
  void set_seal(Seal seal) { seal_ = std::move(seal); }

  // Finishes the call with what `answer()` returns, unless it is finished
  // already. `answer` runs only while the call is alive, so it may write the
  // reply message.
  template <typename Answer>
  void Finish(Answer&& answer) {
    grpc::ServerUnaryReactor* reactor = reactor_.exchange(nullptr);
    if (reactor == nullptr) return;
    grpc::Status status = answer();
    if (status.ok() && seal_) status = seal_();
    measure_.Record(status);
    reactor->Finish(status);
  }
  void FinishWith(const grpc::Status& status) {
    Finish([&status] { return status; });
  }

 private:
  std::atomic<grpc::ServerUnaryReactor*> reactor_;
  const Measure measure_;
  Seal seal_;
};

// The calls waiting for the coordinator, so that Shutdown can wait for them
// and answer those still waiting after the grace.
//
// Thread safety: thread-safe.
class CallTable {
 public:
  // Registers `call`; false once the server shuts down.
  bool Add(const std::shared_ptr<PendingCall>& call) {
    internal::MutexLock lock(&mu_);
    if (closed_) {
      last_refused_ = SteadyClock::now();
      return false;
    }
    calls_.insert(call);
    return true;
  }

  // After Close: waits until no call was refused for `quiet`, or until
  // `until`. Clients learn of the shutdown only from gRPC's GOAWAY; a call
  // that reaches gRPC while it stops is cancelled by gRPC without a word
  // (CANCELLED), so gRPC is stopped once callers have gone quiet, while
  // dtx still answers them UNAVAILABLE with its message.
  void WaitQuiet(std::chrono::milliseconds quiet,
                 SteadyClock::time_point until) {
    internal::MutexLock lock(&mu_);
    for (;;) {
      const SteadyClock::time_point now = SteadyClock::now();
      const SteadyClock::time_point quiet_at = last_refused_ + quiet;
      if (now >= quiet_at || now >= until) return;
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::min(quiet_at, until) - now);
      cv_.WaitFor(&mu_, wait + std::chrono::milliseconds(1),
                  [] { return false; });
    }
  }

  std::size_t size() {
    internal::MutexLock lock(&mu_);
    return calls_.size();
  }

  void Remove(const std::shared_ptr<PendingCall>& call) {
    internal::MutexLock lock(&mu_);
    calls_.erase(call);
    if (calls_.empty()) cv_.SignalAll();
  }

  // Refuses new calls, waits up to `grace` for the registered ones to end,
  // then answers the rest UNAVAILABLE. Their transactions stay in the
  // journal, and the coordinator's late callbacks find them finished.
  void Close(std::chrono::milliseconds grace) {
    std::vector<std::shared_ptr<PendingCall>> left;
    {
      internal::MutexLock lock(&mu_);
      closed_ = true;
      cv_.WaitFor(&mu_, grace, [this] {
        mu_.AssertHeld();
        return calls_.empty() || ended_;
      });
      left.assign(calls_.begin(), calls_.end());
    }
    // Outside the lock: finishing may run OnDone, which removes the call.
    for (const auto& call : left) {
      call->FinishWith(
          grpc::Status(grpc::StatusCode::UNAVAILABLE,
                       "dtx-server: shutting down; the request did "
                       "not finish within the shutdown grace (its "
                       "transaction stays in the journal)"));
    }
  }

  // Ends a Close that is still waiting (every call ended, or Shutdown is
  // over).
  void End() {
    internal::MutexLock lock(&mu_);
    ended_ = true;
    cv_.SignalAll();
  }

 private:
  internal::Mutex mu_;
  internal::CondVar cv_{&mu_};
  std::unordered_set<std::shared_ptr<PendingCall>> calls_ DTX_GUARDED_BY(mu_);
  bool closed_ DTX_GUARDED_BY(mu_) = false;
  bool ended_ DTX_GUARDED_BY(mu_) = false;
  SteadyClock::time_point last_refused_ DTX_GUARDED_BY(mu_);
};

// The reactor of a call handed to the coordinator. Owned by gRPC from the
// handler's return until OnDone.
class CallReactor final : public grpc::ServerUnaryReactor {
 public:
  CallReactor(CallTable& table, Measure measure)
      : table_(table), pending_(std::make_shared<PendingCall>(this, measure)) {}

  const std::shared_ptr<PendingCall>& pending() const { return pending_; }

  void OnCancel() override {
    // The caller gave up (or its deadline passed): free the call now; the
    // coordinator's answer, when it comes, is dropped.
    pending_->FinishWith(grpc::Status(grpc::StatusCode::CANCELLED,
                                      "dtx-server: the caller cancelled"));
  }

  void OnDone() override {
    table_.Remove(pending_);
    delete this;
  }

  // Both reactions are short and never block (a Finish that gRPC queues; a
  // set's erase and a delete), so gRPC may run them on its callback thread
  // that takes the call's last completion instead of handing each to its
  // executor thread, one more thread woken per request (that thread's CPU in
  // a 2-s TCC run at 64 in flight: 0.17 s with the hand-off, 0.08-0.09 s
  // without, the relay's share, whose gRPC default reactor is inlineable
  // too; docs/architecture.md, Thread hops). gRPC marks this method as not
  // API; should a later gRPC drop it, `override` stops the build, not the
  // server.
  bool InternalInlineable() override { return true; }

 private:
  CallTable& table_;
  const std::shared_ptr<PendingCall> pending_;
};

// The gRPC status of a coordinator answer; faults are logged.
grpc::Status Answer(Logger& logger, const char* method, const std::string& gid,
                    const Status& status) {
  if (!status.ok()) {
    // FAILURE and ONGOING are answers, not faults; requests that dtx
    // cannot serve are worth a warning.
    const StatusCode code = status.code();
    const LogLevel level =
        (code == StatusCode::kAborted ||
         code == StatusCode::kFailedPrecondition ||
         code == StatusCode::kAlreadyExists ||
         code == StatusCode::kInvalidArgument ||
         code == StatusCode::kNotFound || code == StatusCode::kUnimplemented)
            ? LogLevel::kDebug
            : LogLevel::kWarn;
    DTX_LOG(
        &logger, level,
        method << " gid=" << gid << ": " << LoggableText(status.ToString()));
  }
  return ToGrpcStatus(status);
}

grpc::ServerUnaryReactor* Now(grpc::CallbackServerContext* context,
                              const Measure& measure,
                              const grpc::Status& status) {
  measure.Record(status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// What every service handler shares: the coordinator and the calls waiting
// for it.
class Handlers {
 public:
  Handlers(Coordinator& coordinator, CallTable& calls,
           std::shared_ptr<Logger> logger, ServerMetrics* metrics)
      : coordinator_(coordinator),
        calls_(calls),
        logger_(std::move(logger)),
        metrics_(metrics) {}

 protected:
  // The series of method `api` (dtm's spelling: lower case); null without
  // metrics. For the services' members, looked up once.
  const ServerMetrics::Api* ApiOf(std::string_view api) const {
    return metrics_ != nullptr ? metrics_->ForApi("grpc", api) : nullptr;
  }
  // A request of `api` arrives.
  static Measure Arrive(const ServerMetrics::Api* api) {
    return Measure{
        api, api != nullptr ? SteadyClock::now() : SteadyClock::time_point()};
  }

  // Starts a call that `start(pending)` hands to the coordinator; the
  // coordinator's callback finishes `pending`. A caller that gave up before
  // the handler ran, or a server shutting down, is answered at once. The
  // callback may run after the call is gone: it owns what it uses, except
  // the reply message, which only a Finish answer may touch.
  template <typename Start>
  grpc::ServerUnaryReactor* Defer(grpc::CallbackServerContext* context,
                                  const Measure& measure, Start start,
                                  Seal seal = nullptr) {
    if (context->IsCancelled()) {
      return Now(context, measure,
                 grpc::Status(grpc::StatusCode::CANCELLED,
                              "dtx-server: the caller cancelled"));
    }
    auto* reactor = new CallReactor(calls_, measure);
    std::shared_ptr<PendingCall> pending = reactor->pending();
    pending->set_seal(std::move(seal));
    if (!calls_.Add(pending)) {
      pending->FinishWith(grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          "dtx-server: shutting down; the request was not taken (send it "
          "to another coordinator, or again once this one is back)"));
      return reactor;
    }
    start(std::move(pending));
    // Valid: gRPC calls OnDone only after the handler returned the reactor.
    return reactor;
  }

  // Every method is registered raw (its request as bytes), so that bytes
  // that are not its request message are answered INVALID_ARGUMENT with a
  // message; gRPC's typed handlers answer UNIMPLEMENTED with none. Decoded
  // decodes the request and hands it to `typed`, which answers as a typed
  // handler does. A method whose reply is google.protobuf.Empty (or that
  // never answers OK) has its reply bytes written here, `typed(request)`;
  // DecodedReply's `typed(request, reply, seal)` fills in a reply message,
  // which `seal` (handed to Defer) writes into the bytes when it answers OK.
  template <typename Message, typename Typed>
  grpc::ServerUnaryReactor* Decoded(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* raw,
                                    grpc::ByteBuffer* reply, const char* method,
                                    const char* type,
                                    const ServerMetrics::Api* api,
                                    Typed typed) {
    Message request;
    if (auto refused = Undecodable(context, raw, &request, method, type)) {
      return Now(context, Arrive(api), *refused);
    }
    bool own_buffer = false;
    const grpc::Status empty = grpc::SerializationTraits<Empty>::Serialize(
        Empty(), reply, &own_buffer);
    if (!empty.ok()) return Now(context, Arrive(api), empty);
    return typed(&request);
  }

  template <typename Message, typename Reply, typename Typed>
  grpc::ServerUnaryReactor* DecodedReply(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* raw,
                                         grpc::ByteBuffer* reply,
                                         const char* method, const char* type,
                                         const ServerMetrics::Api* api,
                                         Typed typed) {
    Message request;
    if (auto refused = Undecodable(context, raw, &request, method, type)) {
      return Now(context, Arrive(api), *refused);
    }
    // Owned by the seal, which the call keeps until it is finished: the
    // answers that fill it in run only before that.
    auto message = std::make_shared<Reply>();
    Reply* out = message.get();
    Seal seal = [message = std::move(message), reply] {
      bool own_buffer = false;
      return grpc::SerializationTraits<Reply>::Serialize(*message, reply,
                                                         &own_buffer);
    };
    return typed(&request, out, std::move(seal));
  }

  // INVALID_ARGUMENT when `raw` is not a `Message`, or nullopt with
  // `request` decoded.
  template <typename Message>
  std::optional<grpc::Status> Undecodable(grpc::CallbackServerContext* context,
                                          const grpc::ByteBuffer* raw,
                                          Message* request, const char* method,
                                          const char* type) const {
    grpc::ByteBuffer bytes(*raw);
    const grpc::Status parsed =
        grpc::SerializationTraits<Message>::Deserialize(&bytes, request);
    if (parsed.ok()) return std::nullopt;
    DTX_LOG(logger_, LogLevel::kDebug,
            method << " from " << context->peer()
                   << ": undecodable request: " << parsed.error_message());
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        std::string("dtx-server: ") + method +
                            ": the request is not a valid " + type +
                            " message (" + parsed.error_message() + ")");
  }

  // A callback that answers `pending` with the coordinator's status.
  StatusCallback AnswerWith(std::shared_ptr<PendingCall> pending,
                            const char* method, std::string gid) const {
    return [pending = std::move(pending), logger = logger_, method,
            gid = std::move(gid)](Status status) {
      pending->Finish([&] { return Answer(*logger, method, gid, status); });
    };
  }

  Coordinator& coordinator_;
  CallTable& calls_;
  std::shared_ptr<Logger> logger_;
  ServerMetrics* const metrics_;
};

// Every method takes its request as bytes (Handlers::Decoded).
using DtmBase = dtmgimp::Dtm::WithRawCallbackMethod_NewGid<
    dtmgimp::Dtm::WithRawCallbackMethod_Submit<
        dtmgimp::Dtm::WithRawCallbackMethod_Prepare<
            dtmgimp::Dtm::WithRawCallbackMethod_Abort<
                dtmgimp::Dtm::WithRawCallbackMethod_RegisterBranch<
                    dtmgimp::Dtm::WithRawCallbackMethod_PrepareWorkflow<
                        dtmgimp::Dtm::WithRawCallbackMethod_Subscribe<
                            dtmgimp::Dtm::WithRawCallbackMethod_Unsubscribe<
                                dtmgimp::Dtm::WithRawCallbackMethod_DeleteTopic<
                                    dtmgimp::Dtm::CallbackService>>>>>>>>>;

class DtmService final : public DtmBase, private Handlers {
 public:
  using Handlers::Handlers;

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* raw,
                                   grpc::ByteBuffer* reply) override {
    return Decoded<dtmgimp::DtmRequest>(
        context, raw, reply, "Submit", "dtmgimp.DtmRequest", submit_,
        [&](const dtmgimp::DtmRequest* r) { return OnSubmit(context, r); });
  }
  grpc::ServerUnaryReactor* Prepare(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* raw,
                                    grpc::ByteBuffer* reply) override {
    return Decoded<dtmgimp::DtmRequest>(
        context, raw, reply, "Prepare", "dtmgimp.DtmRequest", prepare_,
        [&](const dtmgimp::DtmRequest* r) { return OnPrepare(context, r); });
  }
  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* raw,
                                  grpc::ByteBuffer* reply) override {
    return Decoded<dtmgimp::DtmRequest>(
        context, raw, reply, "Abort", "dtmgimp.DtmRequest", abort_,
        [&](const dtmgimp::DtmRequest* r) { return OnAbort(context, r); });
  }
  grpc::ServerUnaryReactor* RegisterBranch(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* raw,
                                           grpc::ByteBuffer* reply) override {
    return Decoded<dtmgimp::DtmBranchRequest>(
        context, raw, reply, "RegisterBranch", "dtmgimp.DtmBranchRequest",
        register_branch_, [&](const dtmgimp::DtmBranchRequest* r) {
          return OnRegisterBranch(context, r);
        });
  }

  grpc::ServerUnaryReactor* NewGid(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* raw,
                                   grpc::ByteBuffer* bytes) override {
    return DecodedReply<Empty, dtmgimp::DtmGidReply>(
        context, raw, bytes, "NewGid", "google.protobuf.Empty", new_gid_,
        [&](const Empty*, dtmgimp::DtmGidReply* reply, Seal seal) {
          return OnNewGid(context, reply, std::move(seal));
        });
  }
  grpc::ServerUnaryReactor* PrepareWorkflow(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw,
      grpc::ByteBuffer* reply) override {
    return DecodedReply<dtmgimp::DtmRequest, dtmgimp::DtmProgressesReply>(
        context, raw, reply, "PrepareWorkflow", "dtmgimp.DtmRequest",
        prepare_workflow_,
        [&](const dtmgimp::DtmRequest* r, dtmgimp::DtmProgressesReply* out,
            Seal seal) {
          return OnPrepareWorkflow(context, r, out, std::move(seal));
        });
  }
  grpc::ServerUnaryReactor* Subscribe(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* raw,
                                      grpc::ByteBuffer* reply) override {
    return Decoded<dtmgimp::DtmTopicRequest>(
        context, raw, reply, "Subscribe", "dtmgimp.DtmTopicRequest", subscribe_,
        [&](const dtmgimp::DtmTopicRequest*) {
          return Now(context, Arrive(subscribe_), Topics("Subscribe"));
        });
  }
  grpc::ServerUnaryReactor* Unsubscribe(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* raw,
                                        grpc::ByteBuffer* reply) override {
    return Decoded<dtmgimp::DtmTopicRequest>(
        context, raw, reply, "Unsubscribe", "dtmgimp.DtmTopicRequest",
        unsubscribe_, [&](const dtmgimp::DtmTopicRequest*) {
          return Now(context, Arrive(unsubscribe_), Topics("Unsubscribe"));
        });
  }
  grpc::ServerUnaryReactor* DeleteTopic(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* raw,
                                        grpc::ByteBuffer* reply) override {
    return Decoded<dtmgimp::DtmTopicRequest>(
        context, raw, reply, "DeleteTopic", "dtmgimp.DtmTopicRequest",
        delete_topic_, [&](const dtmgimp::DtmTopicRequest*) {
          return Now(context, Arrive(delete_topic_), Topics("DeleteTopic"));
        });
  }

 private:
  grpc::ServerUnaryReactor* OnNewGid(grpc::CallbackServerContext* context,
                                     dtmgimp::DtmGidReply* reply, Seal seal) {
    return Defer(
        context, Arrive(new_gid_),
        [this, reply](std::shared_ptr<PendingCall> p) {
          coordinator_.NewGidAsync([p = std::move(p), logger = logger_,
                                    reply](Result<std::string> gid) {
            p->Finish([&] {
              if (gid.ok()) reply->set_gid(std::move(gid).value());
              return Answer(*logger, "NewGid", "", gid.status());
            });
          });
        },
        std::move(seal));
  }

  grpc::ServerUnaryReactor* OnSubmit(grpc::CallbackServerContext* context,
                                     const dtmgimp::DtmRequest* request) {
    return Run(context, "Submit", Arrive(submit_), request,
               [this](TransRequest r, StatusCallback done) {
                 coordinator_.SubmitAsync(std::move(r), std::move(done));
               });
  }

  grpc::ServerUnaryReactor* OnPrepare(grpc::CallbackServerContext* context,
                                      const dtmgimp::DtmRequest* request) {
    return Run(context, "Prepare", Arrive(prepare_), request,
               [this](TransRequest r, StatusCallback done) {
                 coordinator_.PrepareAsync(std::move(r), std::move(done));
               });
  }

  grpc::ServerUnaryReactor* OnAbort(grpc::CallbackServerContext* context,
                                    const dtmgimp::DtmRequest* request) {
    return Run(context, "Abort", Arrive(abort_), request,
               [this](TransRequest r, StatusCallback done) {
                 coordinator_.AbortAsync(std::move(r), std::move(done));
               });
  }

  grpc::ServerUnaryReactor* OnRegisterBranch(
      grpc::CallbackServerContext* context,
      const dtmgimp::DtmBranchRequest* request) {
    const Measure measure = Arrive(register_branch_);
    auto branch = FromProto(*request);
    if (!branch.ok()) {
      return Now(
          context, measure,
          Answer(*logger_, "RegisterBranch", request->gid(), branch.status()));
    }
    return Defer(context, measure,
                 [this, b = std::move(branch).value()](
                     std::shared_ptr<PendingCall> p) mutable {
                   std::string gid = b.gid;
                   coordinator_.RegisterBranchAsync(
                       std::move(b),
                       AnswerWith(std::move(p), "RegisterBranch", gid));
                 });
  }

  // The workflow, recorded now or before, and its recorded steps.
  grpc::ServerUnaryReactor* OnPrepareWorkflow(
      grpc::CallbackServerContext* context, const dtmgimp::DtmRequest* request,
      dtmgimp::DtmProgressesReply* reply, Seal seal) {
    auto parsed = FromProto(*request);
    if (!parsed.ok()) {
      return Now(
          context, Arrive(prepare_workflow_),
          Answer(*logger_, "PrepareWorkflow", request->gid(), parsed.status()));
    }
    return Defer(
        context, Arrive(prepare_workflow_),
        [this, reply, r = std::move(parsed).value()](
            std::shared_ptr<PendingCall> p) mutable {
          std::string gid = r.gid;
          coordinator_.PrepareWorkflowAsync(
              std::move(r), [p = std::move(p), logger = logger_, reply,
                             gid](Result<TransWithBranches> record) {
                p->Finish([&] {
                  if (record.ok()) internal::ToProto(*record, reply);
                  return Answer(*logger, "PrepareWorkflow", gid,
                                record.status());
                });
              });
        },
        std::move(seal));
  }
  template <typename Fn>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                const char* method, const Measure& measure,
                                const dtmgimp::DtmRequest* request, Fn fn) {
    auto parsed = FromProto(*request);
    if (!parsed.ok()) {
      // Malformed: answered at once, nothing reaches the coordinator.
      return Now(context, measure,
                 Answer(*logger_, method, request->gid(), parsed.status()));
    }
    return Defer(
        context, measure,
        [this, method, fn = std::move(fn), r = std::move(parsed).value()](
            std::shared_ptr<PendingCall> p) mutable {
          std::string gid = r.gid;
          fn(std::move(r), AnswerWith(std::move(p), method, std::move(gid)));
        });
  }

  grpc::Status Topics(const char* method) {
    return Answer(*logger_, method, "",
                  UnimplementedError(std::string("dtx does not support msg "
                                                 "topics yet (dtmgimp.Dtm/") +
                                     method + ")"));
  }

  // dtm's api label: the method's name in lower case.
  const ServerMetrics::Api* const new_gid_ = ApiOf("newgid");
  const ServerMetrics::Api* const submit_ = ApiOf("submit");
  const ServerMetrics::Api* const prepare_ = ApiOf("prepare");
  const ServerMetrics::Api* const abort_ = ApiOf("abort");
  const ServerMetrics::Api* const register_branch_ = ApiOf("registerbranch");
  const ServerMetrics::Api* const prepare_workflow_ = ApiOf("prepareworkflow");
  const ServerMetrics::Api* const subscribe_ = ApiOf("subscribe");
  const ServerMetrics::Api* const unsubscribe_ = ApiOf("unsubscribe");
  const ServerMetrics::Api* const delete_topic_ = ApiOf("deletetopic");
};

// Every method takes its request as bytes (Handlers::Decoded).
using AdminBase = dtx::admin::v1::Admin::WithRawCallbackMethod_Query<
    dtx::admin::v1::Admin::WithRawCallbackMethod_List<
        dtx::admin::v1::Admin::WithRawCallbackMethod_Stats<
            dtx::admin::v1::Admin::WithRawCallbackMethod_ForceStop<
                dtx::admin::v1::Admin::WithRawCallbackMethod_RetryNow<
                    dtx::admin::v1::Admin::CallbackService>>>>>;

class AdminService final : public AdminBase, private Handlers {
 public:
  AdminService(Coordinator& coordinator, CallTable& calls,
               std::shared_ptr<Logger> logger, ServerMetrics* metrics,
               std::string admin_token, bool closed)
      : Handlers(coordinator, calls, std::move(logger), metrics),
        admin_token_(std::move(admin_token)),
        closed_(closed) {}

  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* raw,
                                  grpc::ByteBuffer* bytes) override {
    return DecodedReply<dtx::admin::v1::QueryRequest,
                        dtx::admin::v1::QueryReply>(
        context, raw, bytes, "Query", "dtx.admin.v1.QueryRequest", query_,
        [&](const dtx::admin::v1::QueryRequest* r,
            dtx::admin::v1::QueryReply* reply,
            Seal seal) { return OnQuery(context, r, reply, std::move(seal)); });
  }
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const grpc::ByteBuffer* raw,
                                 grpc::ByteBuffer* bytes) override {
    return DecodedReply<dtx::admin::v1::ListRequest, dtx::admin::v1::ListReply>(
        context, raw, bytes, "List", "dtx.admin.v1.ListRequest", list_,
        [&](const dtx::admin::v1::ListRequest* r,
            dtx::admin::v1::ListReply* reply,
            Seal seal) { return OnList(context, r, reply, std::move(seal)); });
  }
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* raw,
                                  grpc::ByteBuffer* bytes) override {
    return DecodedReply<dtx::admin::v1::StatsRequest,
                        dtx::admin::v1::StatsReply>(
        context, raw, bytes, "Stats", "dtx.admin.v1.StatsRequest", stats_,
        [&](const dtx::admin::v1::StatsRequest*,
            dtx::admin::v1::StatsReply* reply,
            Seal seal) { return OnStats(context, reply, std::move(seal)); });
  }
  grpc::ServerUnaryReactor* ForceStop(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* raw,
                                      grpc::ByteBuffer* reply) override {
    return Decoded<dtx::admin::v1::GidRequest>(
        context, raw, reply, "ForceStop", "dtx.admin.v1.GidRequest",
        force_stop_, [&](const dtx::admin::v1::GidRequest* r) {
          return OnForceStop(context, r);
        });
  }
  grpc::ServerUnaryReactor* RetryNow(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* raw,
                                     grpc::ByteBuffer* reply) override {
    return Decoded<dtx::admin::v1::GidRequest>(
        context, raw, reply, "RetryNow", "dtx.admin.v1.GidRequest", retry_now_,
        [&](const dtx::admin::v1::GidRequest* r) {
          return OnRetryNow(context, r);
        });
  }

 private:
  grpc::ServerUnaryReactor* OnQuery(grpc::CallbackServerContext* context,
                                    const dtx::admin::v1::QueryRequest* request,
                                    dtx::admin::v1::QueryReply* reply,
                                    Seal seal) {
    const Measure measure = Arrive(query_);
    if (auto refused = Refused(context, "Query", request->gid())) {
      return Now(context, measure, *refused);
    }
    return Defer(
        context, measure,
        [this, gid = request->gid(), reply](std::shared_ptr<PendingCall> p) {
          coordinator_.QueryAsync(
              gid, [p = std::move(p), reply](Result<TransWithBranches> found) {
                p->Finish([&] {
                  if (!found.ok()) return ToGrpcStatus(found.status());
                  internal::ToProto(found->trans, reply->mutable_transaction());
                  for (const Branch& b : found->branches) {
                    internal::ToProto(b, reply->add_branches());
                  }
                  return grpc::Status::OK;
                });
              });
        },
        std::move(seal));
  }

  grpc::ServerUnaryReactor* OnList(grpc::CallbackServerContext* context,
                                   const dtx::admin::v1::ListRequest* request,
                                   dtx::admin::v1::ListReply* reply,
                                   Seal seal) {
    const Measure measure = Arrive(list_);
    if (auto refused = Refused(context, "List", "")) {
      return Now(context, measure, *refused);
    }
    auto query = internal::FromProto(*request);
    if (!query.ok()) {
      return Now(context, measure, ToGrpcStatus(query.status()));
    }
    return Defer(
        context, measure,
        [this, q = std::move(query).value(),
         reply](std::shared_ptr<PendingCall> p) mutable {
          coordinator_.ListAsync(
              std::move(q), [p = std::move(p), reply](Result<ListPage> page) {
                p->Finish([&] {
                  if (!page.ok()) return ToGrpcStatus(page.status());
                  for (const GlobalTrans& t : page->transactions) {
                    internal::ToProto(t, reply->add_transactions());
                  }
                  reply->set_next_cursor(page->next_cursor);
                  return grpc::Status::OK;
                });
              });
        },
        std::move(seal));
  }

  grpc::ServerUnaryReactor* OnStats(grpc::CallbackServerContext* context,
                                    dtx::admin::v1::StatsReply* reply,
                                    Seal seal) {
    const Measure measure = Arrive(stats_);
    if (auto refused = Refused(context, "Stats", "")) {
      return Now(context, measure, *refused);
    }
    return Defer(
        context, measure,
        [this, reply](std::shared_ptr<PendingCall> p) {
          coordinator_.StatsAsync(
              [p = std::move(p), reply](Result<TransStats> stats) {
                p->Finish([&] {
                  if (!stats.ok()) return ToGrpcStatus(stats.status());
                  internal::ToProto(*stats, reply);
                  return grpc::Status::OK;
                });
              });
        },
        std::move(seal));
  }

  grpc::ServerUnaryReactor* OnForceStop(
      grpc::CallbackServerContext* context,
      const dtx::admin::v1::GidRequest* request) {
    const Measure measure = Arrive(force_stop_);
    if (auto refused = Refused(context, "ForceStop", request->gid())) {
      return Now(context, measure, *refused);
    }
    return Defer(context, measure,
                 [this, gid = request->gid()](std::shared_ptr<PendingCall> p) {
                   coordinator_.ForceStopAsync(
                       gid, AnswerWith(std::move(p), "ForceStop", gid));
                 });
  }

  grpc::ServerUnaryReactor* OnRetryNow(
      grpc::CallbackServerContext* context,
      const dtx::admin::v1::GidRequest* request) {
    const Measure measure = Arrive(retry_now_);
    if (auto refused = Refused(context, "RetryNow", request->gid())) {
      return Now(context, measure, *refused);
    }
    return Defer(context, measure,
                 [this, gid = request->gid()](std::shared_ptr<PendingCall> p) {
                   coordinator_.RetryNowAsync(
                       gid, AnswerWith(std::move(p), "RetryNow", gid));
                 });
  }

  // PERMISSION_DENIED when the service is closed; UNAUTHENTICATED when a
  // token is set and the call does not carry it.
  std::optional<grpc::Status> Refused(grpc::CallbackServerContext* context,
                                      const char* method,
                                      const std::string& gid) const {
    if (closed_) {
      DTX_LOG(logger_, LogLevel::kWarn,
              method << " gid=" << gid << " from " << context->peer()
                     << " refused: the admin service is closed");
      return grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          std::string("dtx-server: ") + method +
              ": the admin service is closed: dtx-server listens beyond "
              "loopback and no Admin.Token is set; set Admin.Token (and send "
              "\"authorization: Bearer <token>\"), or Admin.Open: true to "
              "open it to everyone who reaches the port (docs/security.md)");
    }
    if (admin_token_.empty()) return std::nullopt;
    std::optional<std::string_view> authorization;
    const auto& metadata = context->client_metadata();
    auto it = metadata.find("authorization");
    if (it != metadata.end()) {
      authorization = std::string_view(it->second.data(), it->second.size());
    }
    const BearerCheck check = CheckBearer(authorization, admin_token_);
    if (check == BearerCheck::kOk) return std::nullopt;
    DTX_LOG(logger_, LogLevel::kWarn,
            method << " gid=" << gid << " from " << context->peer()
                   << " refused: "
                   << (check == BearerCheck::kMissing ? "no bearer token"
                                                      : "wrong bearer token"));
    return grpc::Status(
        grpc::StatusCode::UNAUTHENTICATED,
        check == BearerCheck::kMissing
            ? std::string("dtx-server: ") + method +
                  " needs the metadata \"authorization: Bearer <token>\" "
                  "(Admin.Token)"
            : std::string("dtx-server: ") + method +
                  ": the bearer token is not Admin.Token");
  }

  const std::string admin_token_;
  const bool closed_;
  const ServerMetrics::Api* const query_ = ApiOf("query");
  const ServerMetrics::Api* const list_ = ApiOf("list");
  const ServerMetrics::Api* const stats_ = ApiOf("stats");
  const ServerMetrics::Api* const force_stop_ = ApiOf("forcestop");
  const ServerMetrics::Api* const retry_now_ = ApiOf("retrynow");
};

// Server reflection on one builder's server, or none. Linking gRPC's
// reflection library registers its plugin for every server of the process
// (a static initializer calls InitProtoReflectionServerBuilderPlugin), so
// a server asked for none must take it out.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool on) : on_(on) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>*
                         plugins) override {
    plugins->erase(
        std::remove_if(plugins->begin(), plugins->end(),
                       [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                         return p->name() == kReflectionPlugin;
                       }),
        plugins->end());
    if (on_) {
      plugins->push_back(
          std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>());
    }
  }

 private:
  // ProtoServerReflectionPlugin::name().
  static constexpr std::string_view kReflectionPlugin =
      "proto_server_reflection";
  const bool on_;
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
  CallTable calls;
  std::unique_ptr<DtmService> dtm;
  std::unique_ptr<AdminService> admin;
  std::unique_ptr<grpc::Server> server;
  // With max_connections: the port's own accept loop (stopped first).
  std::unique_ptr<internal::GrpcLimitedListener> listener;
  int port = 0;
  std::unique_ptr<KratosRegistrar> registrar;
  std::mutex mu;
  bool shut_down = false;  // guarded by mu
};

DtmServer::DtmServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

namespace {

// The last part of an etcd key: one path segment of visible ASCII.
Status CheckInstanceId(const std::string& id) {
  if (id.size() > 128) {
    return InvalidArgumentError(
        "DtmServer: instance_id is longer than 128 bytes");
  }
  for (char ch : id) {
    if (ch < 0x21 || ch > 0x7e || ch == '/') {
      return InvalidArgumentError("DtmServer: instance_id '" + id +
                                  "' holds a character other than visible "
                                  "ASCII without '/'");
    }
  }
  return Status::Ok();
}

}  // namespace

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
  for (char ch : options.admin_token) {
    if (ch < 0x21 || ch > 0x7e) {
      return InvalidArgumentError(
          "DtmServer: admin_token must be visible ASCII (it travels in an "
          "Authorization header)");
    }
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
  DTX_RETURN_IF_ERROR(CheckInstanceId(options.instance_id));
  if (options.max_connections > 0 && options.tls.enabled()) {
    return InvalidArgumentError(
        "DtmServer: max_connections (MaxConnections) needs a plaintext gRPC "
        "port: gRPC 1.51 cannot hand an accepted connection to a TLS "
        "listener; limit connections in front of the server instead "
        "(docs/security.md)");
  }

  if (!options.logger) options.logger = NewNullLogger();
  auto impl = std::make_unique<Impl>();
  impl->dtm = std::make_unique<DtmService>(coordinator, impl->calls,
                                           options.logger, options.metrics);
  impl->admin = std::make_unique<AdminService>(
      coordinator, impl->calls, options.logger, options.metrics,
      options.admin_token, options.admin_closed && options.admin_token.empty());

  if (options.health) grpc::EnableDefaultHealthCheckService(true);
  DTX_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                       internal::GrpcServerCredentials(options.tls, "DtmServer",
                                                       *options.logger));
  grpc::ServerBuilder builder;
  std::unique_ptr<internal::GrpcLimitedListener> listener;
  if (options.max_connections > 0) {
    internal::GrpcLimitedListener::Options lo;
    lo.address = options.listen_address;
    lo.max_connections = options.max_connections;
    lo.handshake_timeout = options.handshake_timeout;
    lo.logger = options.logger;
    DTX_ASSIGN_OR_RETURN(listener,
                         internal::GrpcLimitedListener::Bind(std::move(lo)));
    impl->port = listener->port();
  } else {
    builder.AddListeningPort(options.listen_address, credentials, &impl->port);
  }
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind the
  // same port and share its traffic silently; a port in use must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options.handshake_timeout.count() > 0) {
    builder.AddChannelArgument(
        GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
        static_cast<int>(
            std::min<int64_t>(options.handshake_timeout.count(), INT32_MAX)));
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_request_bytes));
  builder.RegisterService(impl->dtm.get());
  builder.RegisterService(impl->admin.get());
  builder.SetOption(std::make_unique<ReflectionOption>(options.reflection));
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
  if (listener) {
    listener->Start(impl->server.get());
    impl->listener = std::move(listener);
  }

  if (target) {
    auto etcd = EtcdClient::Create(EtcdClientOptionsFor(*target));
    Status status = etcd.status();
    if (status.ok()) {
      ServiceInstance instance;
      instance.id = options.instance_id.empty()
                        ? NewRandomIdGenerator()->NewGid()
                        : options.instance_id;
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
      if (impl->listener) impl->listener->Stop();
      impl->server->Shutdown();
      return status.WithPrefix("DtmServer: registering in etcd at " +
                               options.registry_target);
    }
  }
  impl->options = std::move(options);
  return std::unique_ptr<DtmServer>(new DtmServer(std::move(impl)));
}

int DtmServer::port() const { return impl_->port; }

std::string GrpcVersion() { return grpc::Version(); }

std::string DtmServer::registry_key() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->registrar ? impl_->registrar->key() : std::string();
}

std::size_t DtmServer::requests_waiting() const { return impl_->calls.size(); }

void DtmServer::SetServing(bool serving) {
  if (auto* health = impl_->server->GetHealthCheckService()) {
    health->SetServingStatus(serving);
  }
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
  // No new connection (gRPC's own listener stops in Shutdown below).
  if (impl_->listener) impl_->listener->Stop();
  if (auto* health = impl_->server->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  // The table refuses new calls, gives those in progress up to the grace,
  // and answers the ones still waiting for the coordinator UNAVAILABLE; it
  // returns as soon as none is left. Then gRPC stops, with a short deadline
  // that only ends what the table does not know (health Watch streams), so
  // that an idle client connection does not hold the stop for the grace.
  const auto give_up = SteadyClock::now() + grace;
  impl_->calls.Close(grace);
  // Callers still sending are answered by dtx (above) until they go quiet,
  // for at most the rest of the grace and a second.
  impl_->calls.WaitQuiet(
      std::chrono::milliseconds(100),
      std::min(give_up, SteadyClock::now() + std::chrono::seconds(1)));
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(200));
  impl_->server->Wait();
  impl_->calls.End();
}

}  // namespace dtx
