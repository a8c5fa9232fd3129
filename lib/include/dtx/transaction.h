// The client API: TCC, SAGA and two-phase messages written against DtmApi, so
// the same code runs with the embedded Coordinator or a remote dtm-compatible
// server.
//
//   // SAGA: steps run in order; a FAILURE compensates in reverse.
//   dtx::Status s = dtx::Saga(dtm, gid)
//                       .Add(out + "/TransOut", out + "/TransOutRevert", req)
//                       .Add(in + "/TransIn", in + "/TransInRevert", req)
//                       .WaitResult(true)
//                       .Submit();
//
//   // TCC: each CallBranch registers confirm/cancel, then calls the try.
//   dtx::Status s = dtx::TccGlobalTransaction(dtm, gid, [&](dtx::Tcc& tcc) {
//     DTX_RETURN_IF_ERROR(tcc.CallBranch(req, out + "/TransOutTry",
//                                        out + "/TransOutConfirm",
//                                        out + "/TransOutCancel"));
//     return tcc.CallBranch(req, in + "/TransInTry", in + "/TransInConfirm",
//                           in + "/TransInCancel");
//   });
//
//   // MSG: prepare, do the local work, submit.
//   dtx::Status s = dtx::Msg(dtm, gid)
//                       .Add(in + "/TransIn", req)
//                       .DoAndSubmit(busi + "/QueryPrepared", [&] { ... });
//
// Payloads are bytes; every method taking a payload also takes any protobuf
// message (anything with SerializeAsString()). Builders are not thread-safe;
// use one per transaction.

#ifndef DTX_TRANSACTION_H_
#define DTX_TRANSACTION_H_

#include "dtx/core_export.h"
#include "dtx/dtm_api.h"

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace dtx {

namespace internal {
template <typename M, typename = void>
struct IsMessage : std::false_type {};
template <typename M>
struct IsMessage<
    M, std::void_t<decltype(std::declval<const M&>().SerializeAsString())>>
    : std::true_type {};
}  // namespace internal

// Options shared by the builders (dtm's WithXxx options).
template <typename Self>
class TransOptionsBuilder {
 public:
  Self& WaitResult(bool wait) {
    options_.wait_result = wait;
    return self();
  }
  Self& TimeoutToFail(std::chrono::seconds t) {
    options_.timeout_to_fail = t;
    return self();
  }
  Self& RetryInterval(std::chrono::seconds t) {
    options_.retry_interval = t;
    return self();
  }
  Self& RequestTimeout(std::chrono::seconds t) {
    options_.request_timeout = t;
    return self();
  }
  Self& RetryLimit(int64_t n) {
    options_.retry_limit = n;
    return self();
  }
  Self& BranchHeaders(std::map<std::string, std::string> headers) {
    options_.branch_headers = std::move(headers);
    return self();
  }

 protected:
  TransOptions options_;

 private:
  Self& self() { return static_cast<Self&>(*this); }
};

class DTX_CORE_EXPORT Saga : public TransOptionsBuilder<Saga> {
 public:
  // `dtm` is borrowed for the builder's lifetime.
  Saga(DtmApi& dtm, std::string gid);

  // Appends a step. An empty URL succeeds without a call.
  Saga& Add(std::string action, std::string compensate, std::string payload);
  template <typename M,
            typename = std::enable_if_t<internal::IsMessage<M>::value>>
  Saga& Add(std::string action, std::string compensate, const M& message) {
    return Add(std::move(action), std::move(compensate),
               message.SerializeAsString());
  }
  // Step `step` (0-based) starts only after `prerequisites` succeeded. Used
  // with EnableConcurrent().
  Saga& AddBranchOrder(int step, std::vector<int> prerequisites);
  // Runs steps concurrently, subject to the orders.
  Saga& EnableConcurrent();

  // Records the saga and starts it; with WaitResult, returns its outcome
  // (kAborted with the reason when it rolled back).
  Status Submit();
  const std::string& gid() const { return request_.gid; }

 private:
  DtmApi& dtm_;
  TransRequest request_;
  std::map<int, std::vector<int>> orders_;
  bool concurrent_ = false;
};

class DTX_CORE_EXPORT Msg : public TransOptionsBuilder<Msg> {
 public:
  Msg(DtmApi& dtm, std::string gid);

  Msg& Add(std::string action, std::string payload);
  template <typename M,
            typename = std::enable_if_t<internal::IsMessage<M>::value>>
  Msg& Add(std::string action, const M& message) {
    return Add(std::move(action), message.SerializeAsString());
  }
  // Steps run no earlier than `delay` after the message was created.
  Msg& SetDelay(std::chrono::seconds delay);
  // Calls the steps concurrently instead of in order.
  Msg& EnableConcurrent();

  // Records the message as prepared; `query_prepared` is the URL that tells,
  // if the message is never submitted, whether the local transaction
  // committed (SUCCESS) or not (FAILURE).
  Status Prepare(std::string query_prepared);
  Status Submit();
  // Fails a prepared message.
  Status Abort();
  // Prepare, then `local` (the local transaction, typically under the branch
  // barrier), then Submit. When `local` fails with kAborted the message is
  // aborted; with another error, `query_prepared` is asked whether the local
  // transaction committed after all. Returns `local`'s error if any, else
  // the Prepare or Submit error.
  Status DoAndSubmit(std::string query_prepared,
                     const std::function<Status()>& local);
  const std::string& gid() const { return request_.gid; }

 private:
  DtmApi& dtm_;
  TransRequest request_;
  int64_t delay_s_ = 0;
};

// One TCC global transaction, handed to the function of TccGlobalTransaction.
class DTX_CORE_EXPORT Tcc {
 public:
  // Registers the next branch (its confirm and cancel, with `payload`), then
  // calls `try_url` with dtm's metadata (op "try"). The try's reply bytes go to
  // `reply` when given. A try that does not succeed returns its status
  // (kAborted for FAILURE), and the function should return it.
  Status CallBranch(std::string payload, const std::string& try_url,
                    std::string confirm_url, std::string cancel_url,
                    std::string* reply = nullptr);
  template <typename M,
            typename = std::enable_if_t<internal::IsMessage<M>::value>>
  Status CallBranch(const M& message, const std::string& try_url,
                    std::string confirm_url, std::string cancel_url,
                    std::string* reply = nullptr) {
    return CallBranch(message.SerializeAsString(), try_url,
                      std::move(confirm_url), std::move(cancel_url), reply);
  }
  const std::string& gid() const { return gid_; }

  // A Tcc for a try handler that registers nested branches of its own
  // ("02" -> "0201", "0202"...): the TransInfo of the incoming try.
  static Tcc FromTransInfo(DtmApi& dtm, const TransInfo& info);

 private:
  friend Status TccGlobalTransaction(DtmApi&, const std::string&,
                                     const TransOptions&,
                                     const std::function<Status(Tcc&)>&);
  Tcc(DtmApi& dtm, std::string gid, TransOptions options,
      std::string parent_branch_id);
  Result<std::string> NextBranchId();

  DtmApi& dtm_;
  std::string gid_;
  TransOptions options_;
  std::string parent_branch_id_;
  int next_ = 0;
};

// Prepare, run `fn`, then Submit when it returns OK, or Abort (with its error
// message as the rollback reason) when it fails. Returns fn's error, else the
// Submit error.
DTX_CORE_EXPORT Status TccGlobalTransaction(
    DtmApi& dtm, const std::string& gid, const TransOptions& options,
    const std::function<Status(Tcc&)>& fn);
DTX_CORE_EXPORT Status TccGlobalTransaction(
    DtmApi& dtm, const std::string& gid, const std::function<Status(Tcc&)>& fn);

}  // namespace dtx

#endif  // DTX_TRANSACTION_H_
