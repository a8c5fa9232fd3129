// Workflows: runs workflow functions against a DtmApi, recording and
// replaying their steps (dtx/workflow.h), and resumes the embedded
// coordinator's due workflows on threads of its own.
//
// A run (WorkflowRun) holds the record read by PrepareWorkflow, keyed by
// (branch id, op), and marks each entry when a step replays it; whatever is
// left unmarked when the run ends a phase is a replay mismatch. The first
// mismatch or misuse sticks: every later step and the run itself return it,
// so that a function that ignores a step's error cannot end the workflow on
// a record that does not match its code.

#include "dtx/workflow.h"

#include "dtx/branch_client.h"
#include "dtx/coordinator.h"
#include "dtx/internal/mutex.h"
#include "dtx/internal/thread_name.h"
#include "dtx/logger.h"

#include "trans_options.h"

#include <deque>
#include <exception>
#include <list>
#include <map>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace dtx {
namespace {

using internal::CondVar;
using internal::Mutex;
using internal::MutexLock;

std::string StepId(int n) {
  // dtm's %02d (BranchIDGen), by appends (GCC 12's -Wrestrict, barrier.cc).
  std::string id(n < 10 ? 1 : 0, '0');
  id += std::to_string(n);
  return id;
}

// A branch call's answer as a step sees it (dtm's classes).
Status StatusOfCall(const BranchResult& r) {
  switch (r.outcome) {
    case BranchOutcome::kSuccess:
      return Status::Ok();
    case BranchOutcome::kFailure:
      return AbortedError(r.status.message());
    case BranchOutcome::kOngoing:
      return FailedPreconditionError(r.status.message());
    case BranchOutcome::kTransient:
      break;
  }
  return r.status.ok() ? UnavailableError("branch call failed") : r.status;
}

// What a recorded step's `url` says it did, for the replay check: for a
// URL, the method or path it names without the address it was sent to
// ("host:port/pkg.Service/Method" -> "/pkg.Service/Method", an HTTP URL's
// path without its query), so that a service that moved between runs (a
// new address, a restarted pod) is the same step; "do" and "do:<name>" as
// they are.
std::string_view StepIdentity(std::string_view what) {
  if (what == "do" || what.rfind("do:", 0) == 0) return what;
  std::size_t from = 0;
  if (auto scheme = what.find("://"); scheme != std::string_view::npos) {
    from = scheme + 3;
    // gRPC's dns:///host:port/... and direct:///...: an empty authority,
    // the address after it.
    if (from < what.size() && what[from] == '/') ++from;
  }
  const std::size_t slash = what.find('/', from);
  if (slash == std::string_view::npos) return what;
  std::string_view path = what.substr(slash);
  return path.substr(0, path.find_first_of("?#"));
}

BranchOutcome OutcomeOf(const Status& s) {
  if (s.ok()) return BranchOutcome::kSuccess;
  if (s.code() == StatusCode::kAborted) return BranchOutcome::kFailure;
  if (s.code() == StatusCode::kFailedPrecondition)
    return BranchOutcome::kOngoing;
  return BranchOutcome::kTransient;
}

}  // namespace

// One run of a workflow function.
class WorkflowRun {
 public:
  WorkflowRun(DtmApi& dtm, std::string name, std::string gid,
              const WorkflowOptions& options, std::vector<Branch> rows)
      : dtm_(dtm),
        name_(std::move(name)),
        gid_(std::move(gid)),
        options_(options) {
    for (Branch& row : rows) {
      Key key{row.branch_id, row.op};
      recorded_.emplace(std::move(key), Recorded{std::move(row), false});
    }
  }

  const std::string& gid() const { return gid_; }
  const std::string& name() const { return name_; }
  const Status& broken() const { return broken_; }

  std::string NewStep() { return StepId(++steps_); }
  // The handle that the workflow function gets.
  Workflow Handle() { return Workflow(*this); }

  void AddCallback(const std::string& branch, BranchOp op,
                   WorkflowPhase2Function fn) {
    if (!broken_.ok()) return;
    StepState& st = state_[branch];
    bool& added = op == BranchOp::kCommit ? st.has_commit : st.has_rollback;
    if (added || !fn) {
      broken_ = InvalidArgumentError(
          Where(branch) +
          (fn ? ": one " + std::string(ToString(op)) + " callback per step"
              : ": an empty callback"));
      return;
    }
    if (st.action_done) {
      broken_ = InvalidArgumentError(
          Where(branch) + ": callbacks are attached before the step's action");
      return;
    }
    added = true;
    (op == BranchOp::kCommit ? commits_ : rollbacks_)
        .push_back(Callback{branch, std::move(fn)});
  }

  // The action of step `branch`: replayed when recorded, else run by `fn`
  // and recorded when it succeeds or fails. `what`: what the step does, as
  // recorded (BranchRegistration::url).
  Result<std::string> Action(const std::string& branch, const std::string& what,
                             const WorkflowStepFunction& fn) {
    if (!broken_.ok()) return broken_;
    StepState& st = state_[branch];
    if (st.action_done) {
      broken_ = InvalidArgumentError(Where(branch) + ": one action per step");
      return broken_;
    }
    st.action_done = true;
    auto it = recorded_.find(Key{branch, BranchOp::kAction});
    if (it != recorded_.end()) {
      Recorded& rec = it->second;
      rec.consumed = true;
      if (!rec.row.url.empty() &&
          StepIdentity(rec.row.url) != StepIdentity(what)) {
        broken_ = Mismatch(Where(branch) + " was recorded as '" +
                           LoggableText(rec.row.url) + "' but now is '" +
                           LoggableText(what) + "'");
        return broken_;
      }
      if (rec.row.status == BranchStatus::kSucceed) return rec.row.bin_data;
      StepFailed(branch);
      return AbortedError(rec.row.bin_data);
    }
    Result<std::string> r = InternalError("not run");
    try {
      r = fn(BranchOf(branch, BranchOp::kAction));
    } catch (const std::exception& e) {
      return InternalError(Where(branch) + " threw: " + e.what());
    }
    if (r.ok()) {
      DTX_RETURN_IF_ERROR(
          Record(branch, BranchOp::kAction, BranchStatus::kSucceed, *r, what));
      return r;
    }
    if (r.status().code() == StatusCode::kAborted) {
      DTX_RETURN_IF_ERROR(Record(branch, BranchOp::kAction,
                                 BranchStatus::kFailed,
                                 std::string(r.status().message()), what));
      StepFailed(branch);
    }
    return r;  // ONGOING and errors are not recorded: run again next time
  }

  // Every recorded action was replayed by this run.
  Status CheckActionsReplayed() {
    for (const auto& [key, rec] : recorded_) {
      if (key.op == BranchOp::kAction && !rec.consumed) {
        broken_ = Mismatch(Where(key.branch) +
                           " was recorded but this run ended before it");
        return broken_;
      }
    }
    return Status::Ok();
  }

  // Phase 2: the commit (or rollback) callbacks, the last step's first.
  Status RunPhase2(bool commit) {
    const BranchOp op = commit ? BranchOp::kCommit : BranchOp::kRollback;
    const std::vector<Callback>& ops = commit ? commits_ : rollbacks_;
    for (auto p = ops.rbegin(); p != ops.rend(); ++p) {
      auto it = recorded_.find(Key{p->branch, op});
      if (it != recorded_.end()) {
        it->second.consumed = true;
        continue;
      }
      Status s = InternalError("not run");
      try {
        s = p->fn(BranchOf(p->branch, op));
      } catch (const std::exception& e) {
        return InternalError(Where(p->branch) + " " +
                             std::string(ToString(op)) + " threw: " + e.what());
      }
      if (s.code() == StatusCode::kAborted) {
        return InternalError(
            Where(p->branch) + "'s " + std::string(ToString(op)) +
            " callback returned FAILURE (kAborted), which phase 2 cannot "
            "take: return OK, or another error to be run again: " +
            std::string(s.message()));
      }
      DTX_RETURN_IF_ERROR(s);
      DTX_RETURN_IF_ERROR(
          Record(p->branch, op, BranchStatus::kSucceed, "", ""));
    }
    for (const auto& [key, rec] : recorded_) {
      if (!rec.consumed) {
        broken_ =
            Mismatch(Where(key.branch) + "'s " + std::string(ToString(key.op)) +
                     " was recorded but this run has no such callback");
        return broken_;
      }
    }
    return Status::Ok();
  }

 private:
  struct Key {
    std::string branch;
    BranchOp op;
    bool operator<(const Key& o) const {
      return branch != o.branch ? branch < o.branch : op < o.op;
    }
  };
  struct Recorded {
    Branch row;
    bool consumed = false;
  };
  struct StepState {
    bool action_done = false;
    bool has_commit = false;
    bool has_rollback = false;
  };
  struct Callback {
    std::string branch;
    WorkflowPhase2Function fn;
  };

  std::string Where(const std::string& branch) const {
    return "workflow '" + LoggableText(name_) + "' gid " + gid_ + " step " +
           branch;
  }
  Status Mismatch(const std::string& what) const {
    return InternalError("replay mismatch: " + what +
                         "; the workflow's code must take the steps it "
                         "recorded (docs/workflow.md)");
  }

  WorkflowBranch BranchOf(const std::string& branch, BranchOp op) const {
    TransInfo info;
    info.gid = gid_;
    info.trans_type = TransType::kWorkflow;
    info.branch_id = branch;
    info.op = op;
    return WorkflowBranch(dtm_, std::move(info), &options_.trans);
  }

  // dtm: the failed step's rollback is dropped unless compensate_error_branch.
  void StepFailed(const std::string& branch) {
    if (options_.compensate_error_branch) return;
    if (!rollbacks_.empty() && rollbacks_.back().branch == branch) {
      rollbacks_.pop_back();
    }
  }

  Status Record(const std::string& branch, BranchOp op, BranchStatus status,
                std::string data, std::string what) {
    BranchRegistration b;
    b.gid = gid_;
    b.trans_type = TransType::kWorkflow;
    b.branch_id = branch;
    b.op = op;
    b.status = status;
    b.payload = std::move(data);
    b.url = std::move(what);
    return dtm_.RegisterBranch(b).WithPrefix("record " + Where(branch));
  }

  DtmApi& dtm_;
  const std::string name_;
  const std::string gid_;
  const WorkflowOptions& options_;
  std::map<Key, Recorded> recorded_;
  std::unordered_map<std::string, StepState> state_;
  std::vector<Callback> commits_;
  std::vector<Callback> rollbacks_;
  int steps_ = 0;
  Status broken_;
};

Result<std::string> WorkflowBranch::Call(const std::string& url,
                                         std::string payload) const {
  BranchRequest req;
  req.url = url;
  req.payload = std::move(payload);
  req.info = info_;
  if (options_ != nullptr) {
    for (const auto& [k, v] : options_->branch_headers)
      req.headers.emplace_back(k, v);
    req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        options_->request_timeout);
  }
  BranchResult r = dtm_->branch_client().CallBlocking(std::move(req));
  DTX_RETURN_IF_ERROR(StatusOfCall(r));
  return std::move(r.reply);
}

WorkflowStep& WorkflowStep::OnRollback(WorkflowPhase2Function fn) {
  run_->AddCallback(branch_id_, BranchOp::kRollback, std::move(fn));
  return *this;
}

WorkflowStep& WorkflowStep::OnCommit(WorkflowPhase2Function fn) {
  run_->AddCallback(branch_id_, BranchOp::kCommit, std::move(fn));
  return *this;
}

WorkflowStep& WorkflowStep::OnFinish(
    std::function<Status(const WorkflowBranch&, bool rolled_back)> fn) {
  if (!fn) {
    run_->AddCallback(branch_id_, BranchOp::kCommit, nullptr);
    return *this;
  }
  run_->AddCallback(branch_id_, BranchOp::kCommit,
                    [fn](const WorkflowBranch& b) { return fn(b, false); });
  run_->AddCallback(branch_id_, BranchOp::kRollback,
                    [fn](const WorkflowBranch& b) { return fn(b, true); });
  return *this;
}

Result<std::string> WorkflowStep::Call(const std::string& url,
                                       std::string payload) {
  return run_->Action(branch_id_, url,
                      [&url, &payload](const WorkflowBranch& b) {
                        return b.Call(url, std::move(payload));
                      });
}

Result<std::string> WorkflowStep::Do(WorkflowStepFunction fn) {
  return Do(std::string(), std::move(fn));
}

Result<std::string> WorkflowStep::Do(std::string name,
                                     WorkflowStepFunction fn) {
  if (!fn) return InvalidArgumentError("workflow step: an empty function");
  return run_->Action(branch_id_, name.empty() ? "do" : "do:" + name, fn);
}

const std::string& Workflow::gid() const { return run_->gid(); }
const std::string& Workflow::name() const { return run_->name(); }

WorkflowStep Workflow::Step() { return WorkflowStep(*run_, run_->NewStep()); }

// The registry, and the in-process resumer of the embedded coordinator (a
// BranchClient whose "calls" run a workflow on one of its threads).
class Workflows::Impl final : public BranchClient {
 public:
  Impl(DtmApi& dtm, Options options)
      : dtm_(dtm), callback_url_(std::move(options.callback_url)) {
    const int n = options.resume_threads > 0 ? options.resume_threads : 1;
    for (int i = 0; i < n; ++i)
      threads_.emplace_back([this] {
        internal::NameThisThread("dtx-workflow");
        Loop();
      });
  }

  ~Impl() override { Stop(); }

  Status Register(std::string name, WorkflowFunction fn,
                  WorkflowOptions options) {
    if (name.empty()) return InvalidArgumentError("workflow: an empty name");
    if (!fn)
      return InvalidArgumentError("workflow '" + name + "': no function");
    MutexLock lock(&mu_);
    auto [it, inserted] =
        registered_.try_emplace(name, Entry{std::move(fn), std::move(options)});
    if (!inserted) {
      return AlreadyExistsError("workflow '" + name +
                                "' is registered already");
    }
    return Status::Ok();
  }

  Result<std::string> Execute(const std::string& name, const std::string& gid,
                              const std::string& input) {
    Entry entry;
    {
      MutexLock lock(&mu_);
      auto it = registered_.find(name);
      if (it == registered_.end()) {
        return NotFoundError("workflow '" + LoggableText(name) +
                             "' is not registered (Workflows::Register)");
      }
      entry = it->second;
      if (!running_.insert(gid).second) {
        return FailedPreconditionError("workflow gid " + gid +
                                       " is running in this process");
      }
    }
    Result<std::string> out = Run(name, gid, input, entry);
    MutexLock lock(&mu_);
    running_.erase(gid);
    return out;
  }

  // BranchClient: a resume of the embedded coordinator.
  void Call(BranchRequest request, Executor executor, Callback done) override {
    auto call = std::make_shared<Pending>();
    call->executor = std::move(executor);
    call->done = std::move(done);
    call->name = std::move(request.info.custom_op);
    call->gid = std::move(request.info.gid);
    call->input = std::move(request.payload);
    {
      MutexLock lock(&mu_);
      if (!stopped_) {
        queue_.push_back(call);
        cv_.Signal();
        return;
      }
    }
    Answer(*call, UnavailableError("workflows: shut down"));
  }

  Status ValidateUrl(std::string_view, std::string_view) override {
    return Status::Ok();
  }

  // The coordinator shuts down: every resume not yet answered is answered
  // now (kCancelled); the runs in progress go on, answering no one.
  void Shutdown() override {
    std::vector<std::shared_ptr<Pending>> cut;
    {
      MutexLock lock(&mu_);
      stopped_ = true;
      coordinator_gone_ = true;
      for (auto& c : queue_) cut.push_back(c);
      queue_.clear();
      for (auto& c : in_progress_) {
        if (!c->answered) cut.push_back(c);
        c->answered = true;
      }
      cv_.SignalAll();
    }
    for (auto& c : cut) Answer(*c, CancelledError("coordinator: shut down"));
  }

  // Stops the threads once their runs end; what is queued is answered
  // kUnavailable first.
  void Stop() {
    std::deque<std::shared_ptr<Pending>> queued;
    {
      MutexLock lock(&mu_);
      if (threads_stopping_) return;
      threads_stopping_ = true;
      stopped_ = true;
      queued.swap(queue_);
      cv_.SignalAll();
    }
    for (auto& c : queued) Answer(*c, UnavailableError("workflows: shut down"));
    for (std::thread& t : threads_) t.join();
  }

  void SetCallbackUrl(std::string url) {
    MutexLock lock(&mu_);
    callback_url_ = std::move(url);
  }

  bool coordinator_gone() {
    MutexLock lock(&mu_);
    return coordinator_gone_;
  }

 private:
  struct Entry {
    WorkflowFunction fn;
    WorkflowOptions options;
  };
  struct Pending {
    Executor executor;
    Callback done;
    std::string name;
    std::string gid;
    std::string input;
    bool answered = false;  // guarded by mu_ once queued
  };

  static void Answer(Pending& c, const Status& s) {
    BranchResult r;
    r.outcome = OutcomeOf(s);
    r.status = s;
    auto done = std::move(c.done);
    if (c.executor) {
      c.executor([done = std::move(done), r = std::move(r)]() mutable {
        done(std::move(r));
      });
    } else {
      done(std::move(r));
    }
  }

  void Loop() {
    for (;;) {
      std::shared_ptr<Pending> call;
      {
        MutexLock lock(&mu_);
        cv_.Wait(&mu_, [this] {
          mu_.AssertHeld();
          return threads_stopping_ || !queue_.empty();
        });
        if (queue_.empty()) return;
        call = queue_.front();
        queue_.pop_front();
        in_progress_.push_back(call);
      }
      Result<std::string> r = Execute(call->name, call->gid, call->input);
      bool answer = false;
      {
        MutexLock lock(&mu_);
        in_progress_.remove(call);
        answer = !call->answered;
        call->answered = true;
      }
      if (answer) Answer(*call, r.status());
    }
  }

  Result<std::string> Run(const std::string& name, const std::string& gid,
                          const std::string& input, const Entry& entry) {
    TransRequest req;
    req.gid = gid;
    req.trans_type = TransType::kWorkflow;
    req.options = entry.options.trans;
    req.options.wait_result = false;
    req.custom_data = internal::EncodeWorkflowCustom({name, input});
    {
      MutexLock lock(&mu_);
      req.query_prepared = callback_url_;
    }
    auto record = dtm_.PrepareWorkflow(req);
    if (!record.ok()) return record.status();
    const GlobalTrans& t = record->trans;
    if (t.status == TransStatus::kSucceed) {
      // dtm's SDKs submit the result in base64.
      std::optional<std::string> bytes = internal::Base64Decode(t.result);
      return bytes ? std::move(*bytes) : t.result;
    }
    if (t.status == TransStatus::kFailed) {
      return AbortedError(t.rollback_reason.empty()
                              ? "workflow gid " + gid + " failed"
                              : t.rollback_reason);
    }
    if (t.status != TransStatus::kPrepared) {
      return FailedPreconditionError("workflow gid " + gid + " is " +
                                     std::string(ToString(t.status)));
    }
    WorkflowRun run(dtm_, name, gid, entry.options,
                    std::move(record->branches));
    Workflow wf = run.Handle();
    Result<std::string> out = InternalError("not run");
    try {
      out = entry.fn(wf, input);
    } catch (const std::exception& e) {
      out = InternalError("workflow '" + LoggableText(name) + "' gid " + gid +
                          " threw: " + e.what());
    }
    // A mismatch or misuse sticks, whatever the function made of it.
    DTX_RETURN_IF_ERROR(run.broken());
    const Status& s = out.status();
    if (!s.ok() && s.code() != StatusCode::kAborted) return s;  // resumed later
    DTX_RETURN_IF_ERROR(run.CheckActionsReplayed());
    DTX_RETURN_IF_ERROR(run.RunPhase2(s.ok()));
    TransRequest submit;
    submit.gid = gid;
    submit.trans_type = TransType::kWorkflow;
    submit.req_extra = {
        {"status", s.ok() ? "succeed" : "failed"},
        {"rollback_reason", s.ok() ? "" : std::string(s.message())},
        {"result", internal::Base64Encode(s.ok() ? *out : std::string())}};
    DTX_RETURN_IF_ERROR(dtm_.Submit(submit));
    return out;
  }

  DtmApi& dtm_;
  Mutex mu_;
  std::string callback_url_ DTX_GUARDED_BY(mu_);
  CondVar cv_{&mu_};
  std::unordered_map<std::string, Entry> registered_ DTX_GUARDED_BY(mu_);
  std::unordered_set<std::string> running_ DTX_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<Pending>> queue_ DTX_GUARDED_BY(mu_);
  std::list<std::shared_ptr<Pending>> in_progress_ DTX_GUARDED_BY(mu_);
  bool stopped_ DTX_GUARDED_BY(mu_) = false;
  bool threads_stopping_ DTX_GUARDED_BY(mu_) = false;
  bool coordinator_gone_ DTX_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

Workflows::Workflows(DtmApi& dtm) : Workflows(dtm, Options{}) {}

Workflows::Workflows(DtmApi& dtm, Options options)
    : impl_(std::make_shared<Impl>(dtm, options)) {
  if (auto* coordinator = dynamic_cast<Coordinator*>(&dtm)) {
    coordinator_ = coordinator;
    coordinator->SetWorkflowResumer(impl_);
  }
}

Workflows::~Workflows() {
  if (coordinator_ != nullptr && !impl_->coordinator_gone()) {
    coordinator_->SetWorkflowResumer(nullptr);
  }
  impl_->Stop();
}

Status Workflows::Register(std::string name, WorkflowFunction fn,
                           WorkflowOptions options) {
  return impl_->Register(std::move(name), std::move(fn), std::move(options));
}

void Workflows::SetCallbackUrl(std::string url) {
  impl_->SetCallbackUrl(std::move(url));
}

void Workflows::ResumeAsync(std::string name, std::string gid,
                            std::string input,
                            std::function<void(Status)> done) {
  BranchRequest request;
  request.info.custom_op = std::move(name);
  request.info.gid = std::move(gid);
  request.payload = std::move(input);
  impl_->Call(std::move(request), nullptr,
              [done = std::move(done)](BranchResult r) { done(r.status); });
}

Result<std::string> Workflows::Execute(const std::string& name,
                                       const std::string& gid,
                                       const std::string& input) {
  return impl_->Execute(name, gid, input);
}

}  // namespace dtx
