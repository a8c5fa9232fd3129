// TransProcessor: everything one transaction mode decides, in one place, as
// dtm registers one processor per trans type. A mode is one file,
// trans_type_<mode>.cc, defining its processor, plus one line in the table
// of trans_type.cc. Nothing outside those files switches on the trans type.
//
// A processor is stateless and shared by every transaction of its mode.
// Its request methods (admission, the branches of a request) run on the
// caller's thread; its processing methods (Advance, OnBranchResult, ...)
// run on the strand of one TransRuntime and act through that runtime's
// methods. What a mode keeps per transaction (its decoded custom data, the
// state of a check-back) is its ModeState, made by LoadState.
//
// Adding a mode (workflow, xa):
//   1. trans_type_<mode>.cc: a class deriving from TransProcessor that
//      overrides what the mode accepts and Advance; a function returning its
//      instance, declared below.
//   2. One line in the table in trans_type.cc.
//   3. Tests in tests/integration/<mode>_test.cc.

#ifndef DTX_LIB_TRANS_TYPE_H_
#define DTX_LIB_TRANS_TYPE_H_

#include "dtx/branch_client.h"
#include "dtx/dtm_api.h"
#include "dtx/journal.h"
#include "dtx/model.h"
#include "dtx/result.h"

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dtx::internal {

class TransRuntime;

// Per-transaction state of a mode, owned by the runtime.
struct ModeState {
  virtual ~ModeState() = default;
};

// What Submit does to an existing transaction in a given status, once the
// request is known to repeat the one that made it (SameRequest).
enum class SubmitAdmission {
  kRefuse,    // rolling back or rolled back: kAborted, "cannot submit"
  kDecide,    // make the decision (SubmitDecision) durable, then process
  kContinue,  // already submitted: keep processing
  kDone,      // already decided so: a retry, answered OK
  kConflict,  // ended otherwise than this Submit says: kFailedPrecondition
};

// What a Submit of a prepared transaction decides: `submitted` for every
// mode but workflow, whose Submit says how it ended (req_extra).
struct SubmitDecision {
  TransStatus to = TransStatus::kSubmitted;
  std::string rollback_reason;
  std::optional<std::string> result;
};

// What Abort does to an existing transaction in a given status.
enum class AbortAdmission {
  kRefuse,    // kFailedPrecondition: "... cannot abort"
  kFail,      // make `failed` durable; nothing to undo (a prepared msg)
  kRollBack,  // make `aborting` durable, then undo (a prepared tcc)
  kContinue,  // already aborting: keep undoing
  kDone,      // already failed: a retry, answered OK
};

// The coordinator-wide settings a processor's timeout rule needs.
struct ModeDefaults {
  std::chrono::seconds timeout_to_fail{0};
};

class TransProcessor {
 public:
  virtual ~TransProcessor() = default;

  virtual TransType type() const = 0;

  // Requests; any thread. Each refusal is kInvalidArgument naming the mode.
  // Prepare: the branch rows saved with the prepared transaction.
  virtual Result<std::vector<Branch>> PrepareBranches(
      const TransRequest& request, BranchClient& client) const;
  // Submit of a gid not in the journal: true when the mode creates the
  // transaction from the request (saga, msg without a Prepare); false when
  // only a prepared one can be submitted (tcc).
  virtual bool SubmitCreates() const { return false; }
  // Whether a request carries the transaction's branches (its steps, for
  // saga and msg), so that a retry is told from a conflict by them too;
  // false when branches are registered one by one (tcc).
  virtual bool StepsInRequest() const { return false; }
  // The branch rows of a transaction created by Submit.
  virtual Result<std::vector<Branch>> SubmitBranches(
      const TransRequest& request, BranchClient& client) const;
  // The decision of a Submit request (its req_extra, which only workflow
  // takes: kInvalidArgument for any other mode that sends one).
  virtual Result<SubmitDecision> DecideSubmit(const TransRequest& req) const;
  virtual SubmitAdmission AdmitSubmit(TransStatus status,
                                      const SubmitDecision& decision) const;
  virtual AbortAdmission AdmitAbort(TransStatus status) const;
  // RegisterBranch: the rows of one registered branch.
  virtual Result<std::vector<Branch>> RegisteredBranches(
      const BranchRegistration& branch, BranchClient& client) const;
  // Whether the coordinator calls the rows RegisterBranch appends (a tcc's
  // confirm and cancel); false for a record of what the client did (a
  // workflow's steps): their URLs are then not held to BranchTargets, and
  // the prepared cache keeps no rows of the transaction (so that it serves
  // only the Submit that ends it, never a runtime's load).
  virtual bool CallsRegisteredBranches() const { return true; }
  // Whether the mode is prepared with PrepareWorkflow, which answers the
  // transaction's record so far (a workflow).
  virtual bool AnswersProgress() const { return false; }
  // Whether a call may wait for earlier branch results to be durable
  // (TransRuntime::durable; a saga's steps): results written while another
  // call starts are then not lazy (StatusChange::lazy), since a step waiting
  // for them would wait out the journal's hold.
  virtual bool CallsWaitForResults() const { return false; }
  // Whether two custom data texts of the mode mean the same (a retried
  // request): the same text by default.
  virtual bool SameCustomData(const std::string& a,
                              const std::string& b) const {
    return a == b;
  }
  // How long after its creation an unfinished transaction of this mode
  // times out, given its options; zero: never.
  virtual std::chrono::seconds TimeoutOf(const TransOptions& options,
                                         const ModeDefaults& defaults) const;

  // Processing; on the runtime's strand.
  // Decodes the mode's custom data of a stored transaction. A transaction
  // admitted by this version always decodes; one that does not (written by
  // hand, or by another version) is logged and gets a state that processes
  // safely.
  virtual std::unique_ptr<ModeState> LoadState(
      const GlobalTrans& trans, const std::vector<Branch>& branches,
      Status* error) const;
  // Starts the calls that can start now, or makes the next decision.
  virtual void Advance(TransRuntime& rt) const = 0;
  // A branch call of this transaction answered (success: the default
  // records it; anything else: retried later with back-off).
  virtual void OnBranchResult(TransRuntime& rt, std::size_t index,
                              const BranchResult& result) const;
  // A status change is about to be written: add the mode's guards.
  virtual void OnDecide(const TransRuntime& rt, StatusChange& change) const;
  // The operator asked for a retry now (RetryNow): forget back-offs of the
  // mode's own calls.
  virtual void OnRetryNow(TransRuntime& rt) const;
};

// The processor of `type`; null when dtx does not run that mode.
const TransProcessor* ProcessorFor(TransType type);

// The modes, one function each (trans_type_<mode>.cc).
const TransProcessor& SagaProcessor();
const TransProcessor& TccProcessor();
const TransProcessor& MsgProcessor();
const TransProcessor& WorkflowProcessor();

// Shared by the step modes (saga, msg): the branch rows of `request.steps`
// (per step its compensate, when `with_compensate`, then its action), after
// checking the steps, payloads and URLs.
Result<std::vector<Branch>> StepBranches(const TransRequest& request,
                                         bool with_compensate,
                                         BranchClient& client);

// Whether a request for the existing transaction `stored` (with its rows
// `stored_branches`) repeats the one that made it: the same trans type and,
// for a mode whose requests carry steps, the same steps, payloads and custom
// data (`asked`, `asked_branches`: the request's transaction and rows; null
// when it carries none). Options are not compared: a retry may change
// WaitResult. kAlreadyExists otherwise, naming the gid and what differs (not
// the URLs or payloads themselves: an HTTP client of dtm reads the word
// FAILURE anywhere in an answer as a failure). `op`: "submit", "prepare".
Status SameRequest(std::string_view op, const GlobalTrans& stored,
                   const std::vector<Branch>& stored_branches, TransType type,
                   const GlobalTrans* asked,
                   const std::vector<Branch>* asked_branches);

}  // namespace dtx::internal

#endif  // DTX_LIB_TRANS_TYPE_H_
