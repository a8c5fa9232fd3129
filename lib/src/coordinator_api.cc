// Coordinator: the DtmApi requests (NewGid, Prepare, Submit, Abort,
// RegisterBranch, Query) and List.
//
// Requests that create a transaction write it to the journal first (SaveNew)
// and start processing once it is durable. Requests that change an existing
// transaction run on its runtime's strand (WithRuntime), so that within this
// process one transaction is changed by one thread at a time; between
// processes, the journal's compare-and-set and leases keep them apart.

#include "dtx/coordinator.h"
#include "dtx/limits.h"

#include "coordinator_impl.h"

#include <atomic>
#include <future>
#include <map>
#include <string>
#include <vector>

namespace dtx {
namespace {

std::string StepId(std::size_t i) {
  std::string id = std::to_string(i + 1);
  return id.size() < 2 ? "0" + id : id;
}

Status ValidateHeaders(const std::map<std::string, std::string>& headers) {
  for (const auto& [key, value] : headers) {
    if (key.empty() || key.rfind("grpc-", 0) == 0) {
      return InvalidArgumentError("branch header key '" + key +
                                  "' is empty or reserved");
    }
    for (char c : key) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                      c == '.';
      if (!ok)
        return InvalidArgumentError("branch header key '" + key +
                                    "' has a bad character");
    }
    const bool binary = key.size() >= 4 && key.substr(key.size() - 4) == "-bin";
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if (!binary && (u < 0x20 || u > 0x7e)) {
        return InvalidArgumentError("branch header '" + key +
                                    "' has a value with a non-printable byte");
      }
    }
  }
  return Status::Ok();
}

Status ValidateOptions(const TransOptions& o) {
  if (o.timeout_to_fail.count() < 0 || o.retry_interval.count() < 0 ||
      o.request_timeout.count() < 0 || o.retry_limit < 0) {
    return InvalidArgumentError(
        "options: negative timeout, interval or retry limit");
  }
  return ValidateHeaders(o.branch_headers);
}

// A new global transaction from a request.
GlobalTrans NewGlobal(const TransRequest& req, TransStatus status,
                      TimePoint now) {
  GlobalTrans t;
  t.gid = req.gid;
  t.trans_type = req.trans_type;
  t.status = status;
  t.options = internal::EncodeOptions(req.options);
  t.custom_data = req.custom_data;
  t.query_prepared = req.query_prepared;
  t.create_time = now;
  return t;
}

// The branch rows of a saga (per step: compensate, then action) or a msg
// (per step: action), after checking the steps, payloads, URLs and custom
// data of the request.
Result<std::vector<Branch>> StepBranches(const TransRequest& req,
                                         BranchClient& client) {
  const std::string mode(ToString(req.trans_type));
  const bool saga = req.trans_type == TransType::kSaga;
  if (req.steps.empty()) return InvalidArgumentError(mode + ": no steps");
  if (req.payloads.size() > req.steps.size()) {
    return InvalidArgumentError(mode + ": more payloads than steps");
  }
  if (saga) {
    DTX_RETURN_IF_ERROR(internal::DecodeSagaCustom(
                            req.custom_data, static_cast<int>(req.steps.size()))
                            .status());
  } else {
    DTX_RETURN_IF_ERROR(internal::DecodeMsgDelay(req.custom_data).status());
    if (!req.query_prepared.empty()) {
      DTX_RETURN_IF_ERROR(client.ValidateUrl(req.query_prepared));
    }
  }
  std::vector<Branch> branches;
  for (std::size_t i = 0; i < req.steps.size(); ++i) {
    const TransStep& step = req.steps[i];
    if (!saga && !step.compensate.empty()) {
      return InvalidArgumentError("msg: steps have no compensate");
    }
    for (const std::string* url : {&step.compensate, &step.action}) {
      if (!url->empty()) {
        Status v = client.ValidateUrl(*url);
        if (!v.ok()) return v.WithPrefix(mode + " step " + std::to_string(i));
      }
    }
    Branch b;
    b.branch_id = StepId(i);
    b.bin_data = i < req.payloads.size() ? req.payloads[i] : std::string();
    if (saga) {
      b.op = BranchOp::kCompensate;
      b.url = step.compensate;
      branches.push_back(b);
    }
    b.op = BranchOp::kAction;
    b.url = step.action;
    branches.push_back(std::move(b));
  }
  return branches;
}

}  // namespace

Result<std::string> Coordinator::NewGid() {
  DTX_RETURN_IF_ERROR(impl_->CheckOpen());
  return impl_->ids->NewGid();
}

namespace {

// The status a WaitResult caller sees once the first pass is over.
Status OutcomeOfSubmit(const GlobalTrans& t, bool stopped) {
  if (t.status == TransStatus::kSucceed) return Status::Ok();
  if (t.status == TransStatus::kFailed) {
    return AbortedError(t.rollback_reason.empty() ? "gid " + t.gid + " failed"
                                                  : t.rollback_reason);
  }
  if (stopped)
    return UnavailableError("coordinator: shut down before gid " + t.gid +
                            " ended");
  return FailedPreconditionError(
      "gid " + t.gid + " is still " + std::string(ToString(t.status)) +
      " after the first pass; dtx keeps retrying it");
}

Status OutcomeOfAbort(const GlobalTrans& t, bool stopped) {
  if (t.status == TransStatus::kFailed) return Status::Ok();
  if (stopped)
    return UnavailableError("coordinator: shut down before gid " + t.gid +
                            " ended");
  return FailedPreconditionError("gid " + t.gid + " is still " +
                                 std::string(ToString(t.status)) +
                                 "; dtx keeps retrying it");
}

// A reply that the first of several paths sets; later ones are ignored.
struct Once {
  std::promise<Status> promise;
  std::atomic<bool> set{false};
  void Set(Status s) {
    if (!set.exchange(true)) promise.set_value(std::move(s));
  }
};

// dtm's xa and workflow modes are valid types that dtx does not run yet.
Status CheckImplemented(TransType type) {
  if (type == TransType::kXa || type == TransType::kWorkflow) {
    return UnimplementedError("dtx does not support " +
                              std::string(ToString(type)) +
                              " transactions yet");
  }
  return Status::Ok();
}

}  // namespace

Status Coordinator::Prepare(const TransRequest& req) {
  Impl& c = *impl_;
  DTX_RETURN_IF_ERROR(c.CheckOpen());
  DTX_RETURN_IF_ERROR(ValidateGid(req.gid));
  DTX_RETURN_IF_ERROR(ValidateOptions(req.options));
  DTX_RETURN_IF_ERROR(CheckImplemented(req.trans_type));
  if (req.trans_type != TransType::kTcc && req.trans_type != TransType::kMsg) {
    return InvalidArgumentError("prepare: trans type '" +
                                std::string(ToString(req.trans_type)) +
                                "' has no prepare phase (want tcc or msg)");
  }
  GlobalTrans t = NewGlobal(req, TransStatus::kPrepared, c.clock->Now());
  std::vector<Branch> branches;
  if (req.trans_type == TransType::kMsg) {
    DTX_ASSIGN_OR_RETURN(branches, StepBranches(req, *c.client));
  } else if (!req.steps.empty()) {
    return InvalidArgumentError(
        "tcc: steps are registered with RegisterBranch, not sent");
  }
  // Due when it times out: that is when a prepared tcc is cancelled and a
  // prepared msg checked back.
  t.next_cron_interval = c.BaseInterval(req.options);
  t.next_cron_time = t.create_time + c.TimeoutOf(t.trans_type, req.options);
  Status s = WaitForWrite([&](WriteDone done) {
    c.journal->SaveNew(t, branches, std::move(done));
  });
  if (s.code() == StatusCode::kAlreadyExists) {
    DTX_ASSIGN_OR_RETURN(auto existing, c.journal->Find(req.gid));
    if (existing.trans.status == TransStatus::kPrepared) return Status::Ok();
    return AbortedError("current status '" +
                        std::string(ToString(existing.trans.status)) +
                        "', cannot prepare");
  }
  if (s.ok()) {
    DTX_LOG(c.logger, LogLevel::kInfo,
            "gid=" << t.gid << " " << ToString(t.trans_type) << " prepared");
    if (t.trans_type == TransType::kTcc) {
      std::lock_guard<std::mutex> lock(c.prepared_mu);
      if (c.prepared.size() < Impl::kMaxPrepared) c.prepared[t.gid] = {t, {}};
    }
  }
  return s;
}

Status Coordinator::Submit(const TransRequest& req) {
  Impl& c = *impl_;
  DTX_RETURN_IF_ERROR(c.CheckOpen());
  DTX_RETURN_IF_ERROR(ValidateGid(req.gid));
  DTX_RETURN_IF_ERROR(ValidateOptions(req.options));
  DTX_RETURN_IF_ERROR(CheckImplemented(req.trans_type));
  if (req.trans_type != TransType::kSaga && req.trans_type != TransType::kTcc &&
      req.trans_type != TransType::kMsg) {
    return InvalidArgumentError("submit: trans type '" +
                                std::string(ToString(req.trans_type)) +
                                "' is not supported (want saga, tcc or msg)");
  }
  const bool wait = req.options.wait_result;

  if (req.trans_type == TransType::kSaga || req.trans_type == TransType::kMsg) {
    // A new saga or msg is written whole, already submitted. Once it is
    // durable, the journal's completion hands it to its strand; the caller
    // waits once, for that (or the write's error) or, with WaitResult, for
    // the outcome.
    DTX_ASSIGN_OR_RETURN(std::vector<Branch> branches,
                         StepBranches(req, *c.client));
    GlobalTrans t = NewGlobal(req, TransStatus::kSubmitted, c.clock->Now());
    t.next_cron_interval = c.BaseInterval(req.options);
    t.next_cron_time = t.create_time + t.next_cron_interval;
    auto once = std::make_shared<Once>();
    auto future = once->promise.get_future();
    TransWithBranches data{t, branches};  // for the runtime, once durable
    c.journal->SaveNew(
        std::move(t), std::move(branches),
        [&c, once, wait, data = std::move(data), opts = req.options,
         steps = req.steps.size()](Status s) mutable {
          {
            std::lock_guard<std::mutex> lock(c.mu);
            if (c.stopping) {
              // The coordinator shut down meanwhile: no one here will
              // process it now (and its journal may be closed).
              once->Set(UnavailableError(
                  s.ok() ? "coordinator: shut down; gid " + data.trans.gid +
                               " is in the journal and resumes when a "
                               "coordinator opens it"
                         : "coordinator: shut down before gid " +
                               data.trans.gid + " was written"));
              return;
            }
          }
          if (!s.ok()) {
            once->Set(std::move(s));
            return;
          }
          DTX_LOG(c.logger, LogLevel::kInfo,
                  "gid=" << data.trans.gid << " "
                         << ToString(data.trans.trans_type)
                         << " submitted with " << steps << " step(s)");
          bool created = false;
          auto rt = c.Activate(std::move(data), &created, &opts);
          if (!wait) once->Set(Status::Ok());
          c.Post(rt, [&c, rt, wait, once] {
            if (wait) {
              rt->waiters.push_back([once](const GlobalTrans& g, bool stopped) {
                once->Set(OutcomeOfSubmit(g, stopped));
              });
            }
            c.Advance(rt);
          });
        });
    Status s = c.Await(future);
    if (s.code() != StatusCode::kAlreadyExists) return s;
    // The gid exists: a msg prepared earlier, or a resubmission, handled
    // below on the stored transaction.
  }

  // An existing transaction: a prepared tcc or msg, or a resubmission. The
  // caller waits once: for the decision, or with WaitResult for the outcome
  // (whichever error comes first wins).
  auto once = std::make_shared<Once>();
  auto once_future = once->promise.get_future();
  auto outcome = [once](const GlobalTrans& t, bool stopped) {
    once->Set(OutcomeOfSubmit(t, stopped));
  };
  c.WithRuntime(req.gid, [&c, once, wait, outcome](
                             std::shared_ptr<TransRuntime> rt, Status st) {
    if (!rt) {
      once->Set(st);
      return;
    }
    const TransStatus status = rt->trans.status;
    if (status == TransStatus::kPrepared &&
        rt->trans.trans_type != TransType::kSaga) {
      if (wait) rt->waiters.push_back(outcome);
      c.Decide(rt, TransStatus::kSubmitted, "", [rt, once, wait](Status s) {
        if (!s.ok()) {
          once->Set(s.code() == StatusCode::kFailedPrecondition
                        ? AbortedError("current status '" +
                                       std::string(ToString(rt->trans.status)) +
                                       "', cannot submit")
                        : s);
        } else if (!wait) {
          once->Set(Status::Ok());
        }
      });
      return;
    }
    if (status == TransStatus::kSubmitted) {
      // Submitted again: keep processing from the journal's branches (dtm
      // would mark a tcc succeed without confirming; see docs/semantics.md).
      if (wait) {
        rt->waiters.push_back(outcome);
      } else {
        once->Set(Status::Ok());
      }
      c.Advance(rt);
      return;
    }
    once->Set(AbortedError("current status '" + std::string(ToString(status)) +
                           "', cannot submit"));
    c.MaybeEvict(rt);
  });
  return c.Await(once_future);
}

Status Coordinator::Abort(const TransRequest& req) {
  Impl& c = *impl_;
  DTX_RETURN_IF_ERROR(c.CheckOpen());
  DTX_RETURN_IF_ERROR(ValidateGid(req.gid));
  DTX_RETURN_IF_ERROR(ValidateText("rollback_reason", req.rollback_reason));
  const bool wait = req.options.wait_result;
  auto outcome = std::make_shared<std::promise<Status>>();
  auto outcome_future = outcome->get_future();
  auto reply = std::make_shared<std::promise<Status>>();
  auto reply_future = reply->get_future();
  c.WithRuntime(req.gid, [&c, req, reply, outcome, wait](
                             std::shared_ptr<TransRuntime> rt, Status st) {
    if (!rt) {
      reply->set_value(st);
      return;
    }
    const GlobalTrans& t = rt->trans;
    auto cannot = [&] {
      reply->set_value(
          AbortedError("trans type '" + std::string(ToString(t.trans_type)) +
                       "' current status '" + std::string(ToString(t.status)) +
                       "', cannot abort"));
      c.MaybeEvict(rt);
    };
    if (t.trans_type != req.trans_type) return cannot();
    auto waiter = [outcome](const GlobalTrans& g, bool stopped) {
      outcome->set_value(OutcomeOfAbort(g, stopped));
    };
    if (t.trans_type == TransType::kMsg && t.status == TransStatus::kPrepared) {
      c.Decide(rt, TransStatus::kFailed, req.rollback_reason,
               [reply, outcome](Status s) {
                 reply->set_value(s);
                 outcome->set_value(s);
               });
      return;
    }
    if (t.trans_type != TransType::kTcc) return cannot();
    if (t.status == TransStatus::kPrepared) {
      c.Decide(rt, TransStatus::kAborting, req.rollback_reason,
               [rt, reply, wait, waiter](Status s) {
                 if (s.ok() && wait) rt->waiters.push_back(waiter);
                 reply->set_value(s);
               });
      return;
    }
    if (t.status == TransStatus::kAborting) {
      if (wait) rt->waiters.push_back(waiter);
      reply->set_value(Status::Ok());
      c.Advance(rt);
      return;
    }
    cannot();
  });
  Status r = c.Await(reply_future);
  if (!r.ok() || !wait) return r;
  return c.Await(outcome_future);
}

Status Coordinator::RegisterBranch(const BranchRegistration& b) {
  Impl& c = *impl_;
  DTX_RETURN_IF_ERROR(c.CheckOpen());
  DTX_RETURN_IF_ERROR(ValidateGid(b.gid));
  DTX_RETURN_IF_ERROR(ValidateBranchId(b.branch_id));
  if (b.trans_type != TransType::kTcc) {
    return InvalidArgumentError("register branch: trans type '" +
                                std::string(ToString(b.trans_type)) +
                                "' is not supported (want tcc)");
  }
  for (const std::string* url : {&b.confirm_url, &b.cancel_url}) {
    if (!url->empty()) DTX_RETURN_IF_ERROR(c.client->ValidateUrl(*url));
  }
  DTX_RETURN_IF_ERROR(ValidatePayload(b.payload));
  Branch cancel;
  cancel.branch_id = b.branch_id;
  cancel.op = BranchOp::kCancel;
  cancel.url = b.cancel_url;
  cancel.bin_data = b.payload;
  Branch confirm = cancel;
  confirm.op = BranchOp::kConfirm;
  confirm.url = b.confirm_url;
  // A prepared tcc is not processed, and leaving prepared re-reads the
  // journal's branches, so the write needs no runtime.
  Status s = WaitForWrite([&](WriteDone done) {
    c.journal->AppendBranches(b.gid, TransStatus::kPrepared, {cancel, confirm},
                              std::move(done));
  });
  if (s.code() == StatusCode::kFailedPrecondition) {
    return AbortedError("no trans with gid: " + b.gid +
                        " status: prepared found");
  }
  if (s.ok()) {
    DTX_LOG(c.logger, LogLevel::kDebug,
            "gid=" << b.gid << " branch=" << b.branch_id
                   << " registered, confirm " << b.confirm_url << ", cancel "
                   << b.cancel_url);
    std::lock_guard<std::mutex> lock(c.prepared_mu);
    auto it = c.prepared.find(b.gid);
    if (it != c.prepared.end()) {
      it->second.branches.push_back(std::move(cancel));
      it->second.branches.push_back(std::move(confirm));
    }
  }
  return s;
}

namespace {

// Final statuses and branch results are queued without waiting (they may be
// written lazily); a reader waits for what is queued so that it sees every
// outcome already reported to a caller.
Status FlushQueued(Journal& journal) {
  return WaitForWrite([&](WriteDone done) { journal.Flush(std::move(done)); });
}

}  // namespace

Result<TransWithBranches> Coordinator::Query(const std::string& gid) {
  DTX_RETURN_IF_ERROR(impl_->CheckOpen());
  DTX_RETURN_IF_ERROR(FlushQueued(*impl_->journal));
  return impl_->journal->Find(gid);
}

BranchClient& Coordinator::branch_client() { return *impl_->client; }

std::string Coordinator::address() const { return ""; }

Result<ListPage> Coordinator::List(const ListQuery& query) {
  DTX_RETURN_IF_ERROR(impl_->CheckOpen());
  DTX_RETURN_IF_ERROR(FlushQueued(*impl_->journal));
  return impl_->journal->List(query);
}

}  // namespace dtx
