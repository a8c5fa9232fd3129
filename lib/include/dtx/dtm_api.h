// DtmApi: the coordinator's API, shaped like dtm's gRPC service dtmgimp.Dtm
// (NewGid, Prepare, Submit, Abort, RegisterBranch) plus Query. The embedded
// Coordinator implements it in-process; a remote client implements it over
// dtm's protocol. The client API (TccGlobalTransaction, Saga, Msg) is written
// against it, so the same application code runs embedded or remote.
//
// Every request has two forms. The callback form (SubmitAsync, ...) starts
// the request and returns at once; `done` runs exactly once, when the request
// is answered, on a thread of the implementation (a coordinator io thread, a
// journal or gRPC thread), or before the call returns when the answer is
// known at once (a refusal; a request about a transaction the coordinator
// holds in memory may be decided on the caller's thread). `done` must be
// short and must not block: hand the result to your own executor for
// anything more. The blocking form (Submit, ...) wraps the callback form and
// waits; never call it from a `done`.
//
//   dtm.SubmitAsync(request, [reactor](dtx::Status s) { reactor->Finish(s); });
//   dtx::Status s = dtm.Submit(request);  // the same, waiting
//
// Status codes follow dtm's classes: kAborted is dtm's FAILURE (the request
// cannot succeed: wrong status, a failed WaitResult transaction),
// kFailedPrecondition is ONGOING, kInvalidArgument a malformed request,
// kNotFound an unknown gid, kUnavailable a coordinator that is shutting down
// or cannot be reached.
//
// Thread safety: implementations are thread-safe.

#ifndef DTX_DTM_API_H_
#define DTX_DTM_API_H_

#include "dtx/core_export.h"
#include "dtx/model.h"
#include "dtx/result.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dtx {

class BranchClient;

// Per-transaction options (dtm's DtmTransOptions). Zero means "use the
// coordinator's default".
struct TransOptions {
  // Submit/Abort return after the first processing pass, with its outcome.
  bool wait_result = false;
  std::chrono::seconds timeout_to_fail{0};
  std::chrono::seconds retry_interval{0};
  std::chrono::seconds request_timeout{0};
  // Saga: how often one action may be retried before the saga rolls back.
  int64_t retry_limit = 0;
  // Sent as gRPC metadata with every branch call of the transaction.
  std::map<std::string, std::string> branch_headers;
  // Msg: call the steps concurrently instead of in order.
  bool concurrent = false;
};

// One step of a saga (action and compensate) or a msg (action only).
struct TransStep {
  std::string action;
  std::string compensate;
};

// A request to Prepare, Submit or Abort (dtm's DtmRequest).
struct TransRequest {
  std::string gid;
  TransType trans_type = TransType::kSaga;
  TransOptions options;
  // Saga: {"orders":{"1":[0]},"concurrent":true}; msg: {"delay":5}.
  std::string custom_data;
  std::vector<TransStep> steps;
  std::vector<std::string> payloads;  // one per step
  std::string query_prepared;         // msg check-back URL
  std::string rollback_reason;        // tcc Abort
  // Workflow Submit: how it ended, as dtm's ReqExtra: "status" ("succeed" or
  // "failed"), "result" (base64 of the result bytes) and "rollback_reason".
  std::map<std::string, std::string> req_extra;
  // dtm's protocol of the transaction: "grpc" (also when empty) or "http".
  // It decides how registry URLs (discovery://, etcd://) are called; http://
  // and https:// URLs are HTTP calls whatever it says. dtm's HTTP API sets
  // "http"; its gRPC API has no such field and means "grpc".
  std::string protocol;
};

// A TCC branch, or a recorded step of a workflow (dtm's DtmBranchRequest).
struct BranchRegistration {
  std::string gid;
  TransType trans_type = TransType::kTcc;
  std::string branch_id;
  std::string confirm_url;
  std::string cancel_url;
  // tcc: sent again with confirm or cancel. workflow: the step's result (its
  // reply on success, its error text on failure).
  std::string payload;
  // Workflow: the recorded op (action, commit or rollback), its outcome
  // (succeed or failed), and what the step did (the URL it called, "do" or
  // "do:<name>" for a local step; may be empty), which a replay checks.
  BranchOp op = BranchOp::kAction;
  BranchStatus status = BranchStatus::kSucceed;
  std::string url;
  // The transaction's protocol, which the URLs are checked against: "grpc"
  // (also when empty) or "http" (dtm's HTTP API registers http branches).
  std::string protocol = "grpc";
};

using StatusCallback = std::function<void(Status)>;
template <typename T>
using ResultCallback = std::function<void(Result<T>)>;

class DTX_CORE_EXPORT DtmApi {
 public:
  virtual ~DtmApi();

  // Callback forms, which implementations provide.
  virtual void NewGidAsync(ResultCallback<std::string> done) = 0;
  // tcc and msg: records the transaction as prepared. Idempotent while it is
  // prepared; kAborted in any other status.
  virtual void PrepareAsync(TransRequest request, StatusCallback done) = 0;
  // Saga: records and starts it. tcc and msg: commits a prepared one.
  // kAborted when the transaction cannot be submitted.
  virtual void SubmitAsync(TransRequest request, StatusCallback done) = 0;
  // tcc: rolls back (cancels); msg: fails a prepared message.
  virtual void AbortAsync(TransRequest request, StatusCallback done) = 0;
  // tcc: records a branch's confirm and cancel; only while prepared.
  virtual void RegisterBranchAsync(BranchRegistration branch,
                                   StatusCallback done) = 0;
  // The transaction and its branches; kNotFound.
  virtual void QueryAsync(std::string gid,
                          ResultCallback<TransWithBranches> done) = 0;
  // Workflow (dtm's PrepareWorkflow): records the workflow as prepared, or
  // finds the one recorded under the gid, and answers it with its recorded
  // steps (its branch rows). The default answers kUnimplemented.
  virtual void PrepareWorkflowAsync(TransRequest request,
                                    ResultCallback<TransWithBranches> done);

  // Blocking forms: the callback forms, waited for. Never call them from a
  // callback of the same implementation.
  Result<std::string> NewGid();
  Status Prepare(const TransRequest& request);
  Status Submit(const TransRequest& request);
  Status Abort(const TransRequest& request);
  Status RegisterBranch(const BranchRegistration& branch);
  Result<TransWithBranches> Query(const std::string& gid);
  Result<TransWithBranches> PrepareWorkflow(const TransRequest& request);

  // The client that the client API uses for its own branch calls (TCC try,
  // msg check-back); owned by this object.
  virtual BranchClient& branch_client() = 0;
  // This coordinator's address as branch services should see it (dtm-dtm);
  // empty when embedded.
  virtual std::string address() const = 0;
};

}  // namespace dtx

#endif  // DTX_DTM_API_H_
