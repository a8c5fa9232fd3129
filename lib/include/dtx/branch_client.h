// BranchClient: how the coordinator calls a branch (a confirm, cancel,
// action, compensate or check-back) of a global transaction. transport/
// implements it over gRPC (GrpcBranchClient) and HTTP (HttpBranchClient);
// RoutingBranchClient (dtx/routing_branch_client.h) sends each call to one of
// them; tests script it.
//
// A call never throws and never aborts the process: every problem, from a
// malformed URL to a dead service, comes back as a BranchResult.
//
// Thread safety: implementations are thread-safe.

#ifndef DTX_BRANCH_CLIENT_H_
#define DTX_BRANCH_CLIENT_H_

#include "dtx/core_export.h"
#include "dtx/executor.h"
#include "dtx/model.h"
#include "dtx/status.h"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dtx {

// dtm's classes of a branch answer. Not a Status: what each class means
// depends on the op (only a saga action's kFailure is final).
enum class BranchOutcome {
  kSuccess,    // gRPC OK
  kFailure,    // gRPC ABORTED: roll back (or retry, for ops that must finish)
  kOngoing,    // gRPC FAILED_PRECONDITION: not yet; call again later
  kTransient,  // anything else: retry with back-off
};

DTX_CORE_EXPORT std::string_view ToString(BranchOutcome outcome);

// dtm's protocols of a transaction (GlobalTrans::protocol): which transport
// a registry URL (discovery://, etcd://) is called over. http:// and
// https:// URLs are HTTP calls whatever the protocol.
inline constexpr std::string_view kProtocolGrpc = "grpc";
inline constexpr std::string_view kProtocolHttp = "http";

// One call of a branch.
struct BranchRequest {
  // gRPC: "<server>/<pkg.Service>/<Method>", e.g.
  // "localhost:9000/api.trans.v1.Trans/TransIn" or
  // "discovery://127.0.0.1:2379/trans/api.trans.v1.Trans/TransIn".
  // HTTP: "http://host:port/path", "https://...", or under protocol http
  // "discovery://127.0.0.1:2379/trans/api/busi/TransIn".
  std::string url;
  // The transaction's protocol: kProtocolGrpc (also when empty) or
  // kProtocolHttp.
  std::string protocol = std::string(kProtocolGrpc);
  // The serialized request message (gRPC) or the body (HTTP), sent as is.
  std::string payload;
  // dtm's metadata: dtm-gid, dtm-trans_type, dtm-branch_id, dtm-op, dtm-dtm
  // (gRPC); the query parameters gid, trans_type, branch_id, op and dtm
  // (HTTP).
  TransInfo info;
  // Added after dtm's keys (dtm's BranchHeaders). gRPC lower-cases keys; a
  // key or value the transport would reject fails this call only.
  std::vector<std::pair<std::string, std::string>> headers;
  // Deadline of the call; zero means the client's default.
  std::chrono::milliseconds timeout{0};
  // When set, a call that waited for a free slot of its target
  // (Options::max_calls_per_target) and could not be sent before this time
  // of the coordinator's Clock is not sent and fails (kTransient,
  // kDeadlineExceeded). A call sent at once is never refused by it.
  std::optional<TimePoint> start_by;
};

struct BranchResult {
  BranchOutcome outcome = BranchOutcome::kTransient;
  // The gRPC status of the answer (its code and message), the HTTP status
  // and body for an HTTP answer that is not a success, or the local error
  // that prevented the call (kInvalidArgument for a bad URL or header,
  // kResourceExhausted for an oversized payload or reply, kCancelled at
  // shutdown).
  Status status;
  // The reply message bytes (gRPC) or the body (HTTP) on success.
  std::string reply;
};

class DTX_CORE_EXPORT BranchClient {
 public:
  using Callback = std::function<void(BranchResult)>;

  virtual ~BranchClient();

  // Starts the call and returns at once. `done` runs exactly once, through
  // `executor`; with no executor it runs on the transport's thread and must
  // then be trivial (fulfil a promise, post elsewhere).
  virtual void Call(BranchRequest request, Executor executor,
                    Callback done) = 0;

  // Makes the call and waits for its result on the caller's thread. The
  // default is Call and a wait; a transport may do better (the caller's
  // thread taking the answer itself). Never from a callback of this client.
  virtual BranchResult CallBlocking(BranchRequest request);

  // Checks that `url` can be called in a transaction of `protocol`
  // (kProtocolGrpc, also when empty, or kProtocolHttp): kInvalidArgument
  // naming the URL when it is malformed, uses a scheme the configured driver
  // does not support, or does not fit the protocol. Lets a coordinator reject
  // a bad transaction at Submit.
  virtual Status ValidateUrl(std::string_view url,
                             std::string_view protocol) = 0;

  // Cancels calls in flight (their callbacks run with kCancelled), refuses new
  // ones, and waits until every callback has been handed off. Idempotent.
  virtual void Shutdown() = 0;
};

// Blocks until the call completes (client.CallBlocking). For tools, tests and
// host threads; never call it from a callback of the same client.
DTX_CORE_EXPORT BranchResult CallAndWait(BranchClient& client,
                                         BranchRequest request);

}  // namespace dtx

#endif  // DTX_BRANCH_CLIENT_H_
