// Coordinator: the DtmApi requests (NewGid, Prepare, Submit, Abort,
// RegisterBranch, Query), in their callback forms.
//
// What is checked here is what every mode shares (the coordinator is open,
// the gid, the options); what a mode accepts is its processor's call
// (trans_type.h). Requests that create a transaction write it to the journal
// first (SaveNew) and start processing once it is durable. Requests that
// change an existing transaction run on its runtime's strand (WithRuntime),
// so that within this process one transaction is changed by one thread at a
// time; between processes, the journal's compare-and-set and leases keep them
// apart. No request waits on a thread: each continues in the completion of
// the step before it, and answers through its ReplyOnce.
//
// A request for a gid that exists is a client's retry when it repeats the
// request that made the transaction (internal::SameRequest), and is then
// answered as the first was; another request for the gid is kAlreadyExists.
// kAborted (dtm's FAILURE, "rolled back" to dtm's SDKs) answers only for a
// transaction that rolls back (docs/semantics.md, "Retries and conflicting
// requests").

#include "dtx/coordinator.h"
#include "dtx/limits.h"

#include "coordinator_impl.h"

#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace dtx {
namespace {

using internal::AbortAdmission;
using internal::Engine;
using internal::NewReply;
using internal::ProcessorFor;
using internal::SubmitAdmission;
using internal::TransProcessor;
using internal::TransRuntime;

Status ValidateOptions(const TransOptions& o) {
  if (o.timeout_to_fail.count() < 0 || o.retry_interval.count() < 0 ||
      o.request_timeout.count() < 0 || o.retry_limit < 0) {
    return InvalidArgumentError(
        "options: negative timeout, interval or retry limit");
  }
  for (const auto& [name, value] :
       {std::pair{"timeout_to_fail", o.timeout_to_fail},
        std::pair{"retry_interval", o.retry_interval},
        std::pair{"request_timeout", o.request_timeout}}) {
    if (value > kMaxDuration) {
      return InvalidArgumentError(
          std::string("options: ") + name + " " +
          std::to_string(value.count()) + " s is over the limit of " +
          std::to_string(kMaxDuration.count()) + " s (366 days)");
    }
  }
  return ValidateBranchHeaders(o.branch_headers);
}

// Logs from a completion that runs on the journal's thread (where a request
// is answered without a thread hop): the line is written from an io thread,
// since writing it there would hold up every later commit.
template <typename Format>
void LogOffJournal(Engine& c, LogLevel level, const Format& format) {
  if (!c.logger->ShouldLog(level)) return;
  std::ostringstream os;
  format(os);
  c.OnIo()([&c, level, line = os.str()] { c.logger->Log(level, line); });
}

// The processor of a request's mode: kUnimplemented for dtm's modes that dtx
// does not run yet.
Result<const TransProcessor*> ProcessorOf(TransType type) {
  const TransProcessor* p = ProcessorFor(type);
  if (p == nullptr) {
    return UnimplementedError("dtx does not support " +
                              std::string(ToString(type)) +
                              " transactions yet");
  }
  return p;
}

// What every request that names a transaction checks first.
// dtm's protocols that this version calls branches with. dtm's "json-rpc"
// (branch calls as JSON-RPC 2.0 requests) is not one of them yet.
Status ValidateProtocol(std::string_view protocol) {
  if (protocol.empty() || protocol == "grpc" || protocol == "http")
    return Status::Ok();
  if (protocol == "json-rpc") {
    return InvalidArgumentError(
        "protocol 'json-rpc' is not supported yet (use 'http' or 'grpc')");
  }
  return InvalidArgumentError("unknown protocol '" + std::string(protocol) +
                              "' (want 'grpc' or 'http')");
}

Result<const TransProcessor*> Admit(Engine& c, const TransRequest& req) {
  DTX_RETURN_IF_ERROR(c.CheckOpen());
  DTX_RETURN_IF_ERROR(ValidateGid(req.gid));
  DTX_RETURN_IF_ERROR(ValidateOptions(req.options));
  DTX_RETURN_IF_ERROR(ValidateProtocol(req.protocol));
  DTX_RETURN_IF_ERROR(ValidateJsonDepth("custom_data", req.custom_data));
  return ProcessorOf(req.trans_type);
}

// BranchTargets (Options::branch_targets): every URL of the transaction's
// branches and its check-back may be called. After the processor's checks,
// so that a malformed URL is reported as the client reads it.
Status CheckTargets(const Engine& c, const std::vector<Branch>& branches,
                    const std::string& query_prepared) {
  const BranchTargets& targets = c.options.branch_targets;
  if (!targets.enforce) return Status::Ok();
  for (const Branch& b : branches) {
    if (!b.url.empty()) {
      DTX_RETURN_IF_ERROR(targets.Check(b.url).WithPrefix(
          "branch " + b.branch_id + " " + std::string(ToString(b.op))));
    }
  }
  if (!query_prepared.empty()) {
    DTX_RETURN_IF_ERROR(
        targets.Check(query_prepared).WithPrefix("query_prepared"));
  }
  return Status::Ok();
}

// A new global transaction from a request.
GlobalTrans NewGlobal(Engine& c, const TransProcessor& p,
                      const TransRequest& req, TransStatus status) {
  GlobalTrans t;
  t.gid = req.gid;
  t.trans_type = req.trans_type;
  t.status = status;
  t.options = internal::EncodeOptions(req.options);
  t.custom_data = req.custom_data;
  t.query_prepared = req.query_prepared;
  t.protocol = req.protocol.empty() ? "grpc" : req.protocol;
  t.create_time = c.clock->Now();
  // The coordinator that admits it owns it (journal.h, Fence).
  t.owner = c.owner;
  t.next_cron_interval = c.BaseInterval(req.options);
  if (status == TransStatus::kPrepared) {
    // Due when it times out: that is when a prepared tcc is cancelled and a
    // prepared msg checked back. One that never times out (a workflow, or
    // any with TimeoutToFail 0) is looked at after the retry interval: a
    // workflow is resumed then.
    const std::chrono::seconds timeout = c.TimeoutOf(p, req.options);
    t.next_cron_time =
        t.create_time + (timeout.count() > 0 ? timeout : t.next_cron_interval);
  } else {
    t.next_cron_time = t.create_time + t.next_cron_interval;
  }
  return t;
}

// What Prepare and PrepareWorkflow admit: the prepared transaction and its
// branch rows, checked.
Result<TransWithBranches> NewPrepared(Engine& c, const TransRequest& req) {
  DTX_ASSIGN_OR_RETURN(const TransProcessor* p, Admit(c, req));
  DTX_ASSIGN_OR_RETURN(std::vector<Branch> branches,
                       p->PrepareBranches(req, *c.client));
  DTX_RETURN_IF_ERROR(CheckTargets(c, branches, req.query_prepared));
  return TransWithBranches{NewGlobal(c, *p, req, TransStatus::kPrepared),
                           std::move(branches)};
}

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

// Submit of a transaction that is rolling back or rolled back: dtm's FAILURE,
// which is what happened to it (and what WaitResult told the first caller).
Status CannotSubmit(const GlobalTrans& t) {
  std::string message = "current status '" + std::string(ToString(t.status)) +
                        "', cannot submit: gid " + t.gid + " rolls back";
  if (!t.rollback_reason.empty()) message += " (" + t.rollback_reason + ")";
  return AbortedError(message);
}

// What a Submit for an existing transaction asks: its trans type and, for a
// mode whose requests carry steps, the request's transaction and rows, as
// the runtime made for it that never ran (SubmitAsync), to tell a retry
// from a conflict (internal::SameRequest).
struct AskedSubmit {
  TransType type = TransType::kSaga;
  std::shared_ptr<const TransRuntime> request;  // null: no steps (tcc)
  // What it decides for a prepared transaction (a workflow: how it ended).
  internal::SubmitDecision decision = {};
};

Status SameAsStored(std::string_view op, const TransRuntime& stored,
                    const AskedSubmit& asked) {
  const TransRuntime* req = asked.request.get();
  return internal::SameRequest(op, stored.trans(), stored.branches(),
                               asked.type, req ? &req->trans() : nullptr,
                               req ? &req->branches() : nullptr);
}

// Submit of a transaction that exists: a prepared tcc or msg, or a retry.
// Answers once: with the decision, or with WaitResult with the outcome
// (whichever error comes first wins). A retry of a Submit that was admitted
// answers as the first one did (OK while submitted or once succeeded), so
// that a client that lost an answer and asks again is not told "failed".
void SubmitExisting(Engine& c, std::string gid, bool wait, AskedSubmit asked,
                    std::shared_ptr<internal::ReplyOnce<Status>> reply) {
  c.WithRuntime(gid, [&c, gid, reply, wait, asked](
                         std::shared_ptr<TransRuntime> rt, Status st) {
    if (!rt) return reply->Set(st);
    if (rt->deciding()) {
      // Another request's decision is under way: admit this one against
      // the status it leaves.
      return rt->WhenSettled([&c, gid, wait, asked, reply] {
        SubmitExisting(c, gid, wait, asked, reply);
      });
    }
    Status same = SameAsStored("submit", *rt, asked);
    if (!same.ok()) {
      reply->Set(std::move(same));
      rt->MaybeEvict();
      return;
    }
    auto outcome = [reply](const GlobalTrans& t, bool stopped) {
      reply->Set(OutcomeOfSubmit(t, stopped));
    };
    const TransStatus status = rt->trans().status;
    const internal::SubmitDecision& decision = asked.decision;
    switch (rt->processor().AdmitSubmit(status, decision)) {
      case SubmitAdmission::kDecide:
        if (wait) rt->AddWaiter(outcome);
        rt->Decide(
            decision.to, decision.rollback_reason, decision.result,
            [rt, reply, wait](Status s) {
              if (!s.ok()) {
                reply->Set(s.code() == StatusCode::kFailedPrecondition
                               ? FailedPreconditionError(
                                     "submit: gid " + rt->trans().gid +
                                     " was changed by another coordinator "
                                     "meanwhile; query it for its status")
                               : s);
              } else if (!wait) {
                reply->Set(Status::Ok());
              }
            });
        return;
      case SubmitAdmission::kContinue:
        // Submitted again: keep processing from the journal's branches (dtm
        // would mark a tcc succeed without confirming; see
        // docs/semantics.md).
        if (wait) {
          rt->AddWaiter(outcome);
        } else {
          reply->Set(Status::Ok());
        }
        rt->Advance();
        return;
      case SubmitAdmission::kDone:
        reply->Set(Status::Ok());
        rt->MaybeEvict();
        return;
      case SubmitAdmission::kRefuse:
        reply->Set(CannotSubmit(rt->trans()));
        rt->MaybeEvict();
        return;
      case SubmitAdmission::kConflict:
        reply->Set(
            FailedPreconditionError("submit: gid " + gid + " already ended " +
                                    std::string(ToString(status)) + ", not " +
                                    std::string(ToString(decision.to))));
        rt->MaybeEvict();
        return;
    }
  });
}

// Submit of a workflow, whose request says how it ended. One this process
// prepared and holds in no runtime (its run is the client's; only a resume
// loads it) is ended by one compare-and-set, answered from the journal's
// completion, with no runtime and no read: the fence is the one it was
// prepared with. Anything else (it moved on, a resume holds it, it is not
// cached) goes the way of every Submit (SubmitExisting), which also answers
// a retry.
void SubmitEnd(Engine& c, std::string gid, TransType type,
               internal::SubmitDecision decision,
               std::shared_ptr<internal::ReplyOnce<Status>> reply) {
  std::optional<TransWithBranches> cached;
  {
    internal::MutexLock lock(&c.mu);
    if (c.active.count(gid) == 0) {
      internal::MutexLock cache_lock(&c.prepared_mu);
      auto it = c.prepared.find(gid);
      if (it != c.prepared.end() && it->second.trans.trans_type == type) {
        cached = std::move(it->second);
        c.prepared.erase(it);
      }
    }
  }
  if (!cached || cached->trans.status != TransStatus::kPrepared) {
    return SubmitExisting(c, gid, /*wait=*/false,
                          AskedSubmit{type, {}, decision}, reply);
  }
  StatusChange change;
  change.gid = gid;
  change.from = TransStatus::kPrepared;
  change.to = decision.to;
  if (!decision.rollback_reason.empty())
    change.rollback_reason = decision.rollback_reason;
  change.result = decision.result;
  change.fence = Fence{cached->trans.owner, cached->trans.fence};
  c.journal->ChangeStatus(
      std::move(change),
      WriteDone([&c, gid, type, decision, reply](Status s) mutable {
        if (s.ok()) {
          c.CountDecision(decision.to);
          LogOffJournal(c, LogLevel::kDebug, [&](std::ostream& os) {
            os << "gid=" << gid << " workflow prepared -> "
               << ToString(decision.to);
          });
          return reply->Set(Status::Ok());
        }
        if (s.code() == StatusCode::kFailedPrecondition ||
            s.code() == StatusCode::kAborted) {
          // It moved on meanwhile (a retry, a force-stop, another
          // coordinator): answered from what the journal holds.
          return c.OnIo()([&c, gid, type, decision, reply] {
            SubmitExisting(c, gid, /*wait=*/false,
                           AskedSubmit{type, {}, decision}, reply);
          });
        }
        reply->Set(std::move(s));
      }));
}

// Prepare of a gid that exists: a retry while it is prepared is OK (dtm);
// once it rolls back, dtm's FAILURE; once submitted, not a rollback, so
// kFailedPrecondition rather than kAborted.
Status PrepareAgain(const TransWithBranches& existing,
                    const TransWithBranches& asked) {
  const GlobalTrans& t = existing.trans;
  DTX_RETURN_IF_ERROR(internal::SameRequest("prepare", t, existing.branches,
                                            asked.trans.trans_type,
                                            &asked.trans, &asked.branches));
  const std::string message = "current status '" +
                              std::string(ToString(t.status)) +
                              "', cannot prepare gid " + t.gid;
  switch (t.status) {
    case TransStatus::kPrepared:
      return Status::Ok();
    case TransStatus::kAborting:
    case TransStatus::kFailed:
      return AbortedError(message);
    default:
      return FailedPreconditionError(message + ": it was submitted");
  }
}

}  // namespace

void Coordinator::NewGidAsync(ResultCallback<std::string> done) {
  Status open = engine_->CheckOpen();
  if (!open.ok()) return done(open);
  done(engine_->ids->NewGid());
}

void Coordinator::PrepareAsync(TransRequest req, StatusCallback done) {
  Engine& c = *engine_;
  auto prepared = NewPrepared(c, req);
  if (!prepared.ok()) return done(prepared.status());
  auto reply = NewReply<Status>(c, std::move(done));
  TransWithBranches data = *prepared;  // for the prepared cache
  // Completes on the journal's thread: what it does is short (a cache entry,
  // the answer), and the caller is answered one thread hop sooner.
  c.journal->SaveNew(
      std::move(prepared->trans), std::move(prepared->branches),
      WriteDone([&c, reply, data = std::move(data)](Status s) mutable {
        if (s.code() == StatusCode::kAlreadyExists) {
          // Prepared again: fine while it is prepared.
          c.Read([&c, reply, data = std::move(data)] {
            auto existing = c.journal->Find(data.trans.gid);
            if (!existing.ok()) return reply->Set(existing.status());
            reply->Set(PrepareAgain(*existing, data));
          });
          return;
        }
        if (s.ok()) {
          LogOffJournal(c, LogLevel::kDebug, [&](std::ostream& os) {
            os << "gid=" << data.trans.gid << " "
               << ToString(data.trans.trans_type) << " prepared";
          });
          // Cached only while it has no branch rows (a tcc's prepare):
          // rows carry payloads of up to 4 MiB each, too much to keep.
          internal::MutexLock lock(&c.prepared_mu);
          if (data.branches.empty() &&
              c.prepared.size() < Engine::kMaxPrepared) {
            const std::string gid = data.trans.gid;
            c.prepared[gid] = std::move(data);
          }
        }
        reply->Set(std::move(s));
      }));
}

void Coordinator::PrepareWorkflowAsync(TransRequest req,
                                       ResultCallback<TransWithBranches> done) {
  Engine& c = *engine_;
  const TransProcessor* mode = ProcessorFor(req.trans_type);
  if (mode != nullptr && !mode->AnswersProgress()) {
    return done(InvalidArgumentError("prepare workflow: trans type '" +
                                     std::string(ToString(req.trans_type)) +
                                     "' is not workflow"));
  }
  auto prepared = NewPrepared(c, req);
  if (!prepared.ok()) return done(prepared.status());
  auto reply = NewReply<Result<TransWithBranches>>(c, std::move(done));
  TransWithBranches created{prepared->trans, {}};
  c.journal->SaveNew(
      std::move(prepared->trans), std::move(prepared->branches),
      WriteDone([&c, reply, created = std::move(created)](Status s) mutable {
        if (s.ok()) {
          LogOffJournal(c, LogLevel::kDebug, [&](std::ostream& os) {
            os << "gid=" << created.trans.gid << " workflow prepared";
          });
          {
            // Its Submit then needs no read (SubmitEnd). The entry keeps
            // no recorded steps, and only SubmitEnd uses it.
            internal::MutexLock lock(&c.prepared_mu);
            if (c.prepared.size() < Engine::kMaxPrepared)
              c.prepared.emplace(created.trans.gid, created);
          }
          return reply->Set(std::move(created));
        }
        if (s.code() != StatusCode::kAlreadyExists) return reply->Set(s);
        // Run before (a resume, or a retry): its record so far, once what
        // is queued for the journal (a lazily written end) is written.
        c.journal->Flush([&c, reply, created = std::move(created)](Status f) {
          if (!f.ok()) return reply->Set(f);
          c.Read([&c, reply, asked = created.trans] {
            auto existing = c.journal->Find(asked.gid);
            if (!existing.ok()) return reply->Set(existing.status());
            const GlobalTrans& stored = existing->trans;
            Status same =
                internal::SameRequest("prepare workflow", stored, {},
                                      asked.trans_type, nullptr, nullptr);
            const bool same_custom =
                ProcessorFor(asked.trans_type)
                    ->SameCustomData(stored.custom_data, asked.custom_data);
            if (same.ok() && !same_custom) {
              same = AlreadyExistsError(
                  "prepare workflow: gid " + asked.gid +
                  " exists with another workflow name or input; a resume "
                  "must repeat the request that made it, another workflow "
                  "needs another gid");
            }
            if (!same.ok()) return reply->Set(same);
            reply->Set(std::move(existing).value());
          });
        });
      }));
}

void Coordinator::SubmitAsync(TransRequest req, StatusCallback done) {
  Engine& c = *engine_;
  auto processor = Admit(c, req);
  if (!processor.ok()) return done(processor.status());
  const bool wait = req.options.wait_result;
  auto decision = (*processor)->DecideSubmit(req);
  if (!decision.ok()) return done(decision.status());
  if (IsFinished(decision->to)) {
    // A workflow's Submit: its end, decided by the client.
    return SubmitEnd(c, req.gid, req.trans_type, std::move(decision).value(),
                     NewReply<Status>(c, std::move(done)));
  }
  if (!(*processor)->SubmitCreates()) {
    return SubmitExisting(
        c, req.gid, wait,
        AskedSubmit{req.trans_type, {}, std::move(decision).value()},
        NewReply<Status>(c, std::move(done)));
  }
  // A new saga or msg is written whole, already submitted. Once it is
  // durable, the journal's completion hands it to its strand; the caller is
  // answered then (or with WaitResult, with the outcome). A gid that exists
  // (a msg prepared earlier, a resubmission) goes on as an existing one.
  auto branches = (*processor)->SubmitBranches(req, *c.client);
  if (!branches.ok()) return done(branches.status());
  Status allowed = CheckTargets(c, *branches, req.query_prepared);
  if (!allowed.ok()) return done(allowed);
  GlobalTrans t = NewGlobal(c, **processor, req, TransStatus::kSubmitted);
  auto reply = NewReply<Status>(c, std::move(done));
  // Its runtime is made now, off the journal's thread, and the save
  // completes on its strand; it enters memory's map only once durable.
  auto rt = c.NewRuntime(TransWithBranches{t, *branches}, &req.options);
  c.journal->SaveNew(
      std::move(t), std::move(branches).value(),
      WriteDone(rt->executor(), [&c, reply, wait, rt,
                                 steps = req.steps.size()](Status s) {
        const std::string& gid = rt->trans().gid;
        {
          internal::MutexLock lock(&c.mu);
          if (c.stopping) {
            // The coordinator shut down meanwhile: no one here will
            // process it now (and its journal may be closed).
            reply->Set(UnavailableError(
                s.ok() ? "coordinator: shut down; gid " + gid +
                             " is in the journal and resumes when a "
                             "coordinator opens it"
                       : "coordinator: shut down before gid " + gid +
                             " was written"));
            return;
          }
        }
        if (s.code() == StatusCode::kAlreadyExists) {
          // A retry, or another request for the gid: rt holds the request.
          return SubmitExisting(c, gid, wait,
                                AskedSubmit{rt->trans().trans_type, rt}, reply);
        }
        if (!s.ok()) return reply->Set(std::move(s));
        DTX_LOG(c.logger, LogLevel::kDebug,
                "gid=" << gid << " " << ToString(rt->trans().trans_type)
                       << " submitted with " << steps << " step(s)");
        auto active = c.Register(rt);
        if (!wait) reply->Set(Status::Ok());
        auto start = [&c, active, wait, reply] {
          if (active->evicted()) {
            // It left memory before this ran: go on from the journal.
            return SubmitExisting(c, active->trans().gid, wait,
                                  AskedSubmit{active->trans().trans_type, {}},
                                  reply);
          }
          if (wait) {
            active->AddWaiter([reply](const GlobalTrans& g, bool stopped) {
              reply->Set(OutcomeOfSubmit(g, stopped));
            });
          }
          active->Advance();
        };
        if (active == rt) return start();
        active->Post(start);  // loaded by another request meanwhile
      }));
}

namespace {

void AbortOn(Engine& c, std::string gid, TransType type, std::string reason,
             bool wait, std::shared_ptr<internal::ReplyOnce<Status>> reply) {
  c.WithRuntime(gid, [&c, gid, type, reason, wait, reply](
                         std::shared_ptr<TransRuntime> rt, Status st) {
    if (!rt) return reply->Set(st);
    if (rt->deciding()) {
      // Another request's decision is under way: admit this one against
      // the status it leaves.
      return rt->WhenSettled([&c, gid, type, reason, wait, reply] {
        AbortOn(c, gid, type, reason, wait, reply);
      });
    }
    const GlobalTrans& t = rt->trans();
    // Not dtm's FAILURE (kAborted): to a dtm SDK that says "rolled back",
    // which an Abort refused for a transaction that went on is not.
    auto refuse = [&](std::string message) {
      reply->Set(FailedPreconditionError(std::move(message)));
      rt->MaybeEvict();
    };
    if (t.trans_type != type) {
      return refuse("abort: gid " + gid + " is a " +
                    std::string(ToString(t.trans_type)) + ", not a " +
                    std::string(ToString(type)));
    }
    auto cannot = [&] {
      refuse("trans type '" + std::string(ToString(t.trans_type)) +
             "' current status '" + std::string(ToString(t.status)) +
             "', cannot abort gid " + gid);
    };
    auto outcome = [reply](const GlobalTrans& g, bool stopped) {
      reply->Set(OutcomeOfAbort(g, stopped));
    };
    switch (rt->processor().AdmitAbort(t.status)) {
      case AbortAdmission::kFail:
        rt->Decide(TransStatus::kFailed, reason,
                   [reply](Status s) { reply->Set(s); });
        return;
      case AbortAdmission::kRollBack:
        rt->Decide(TransStatus::kAborting, reason,
                   [rt, reply, wait, outcome](Status s) {
                     if (s.ok() && wait) {
                       rt->AddWaiter(outcome);
                     } else {
                       reply->Set(s);
                     }
                   });
        return;
      case AbortAdmission::kContinue:
        if (wait) {
          rt->AddWaiter(outcome);
        } else {
          reply->Set(Status::Ok());
        }
        rt->Advance();
        return;
      case AbortAdmission::kDone:
        // Rolled back already: a retry of the Abort that did it, or of one
        // that came after a timeout or a check-back did.
        reply->Set(Status::Ok());
        rt->MaybeEvict();
        return;
      case AbortAdmission::kRefuse:
        return cannot();
    }
  });
}

}  // namespace

void Coordinator::AbortAsync(TransRequest req, StatusCallback done) {
  Engine& c = *engine_;
  Status open = c.CheckOpen();
  if (open.ok()) open = ValidateGid(req.gid);
  if (open.ok()) open = ValidateText("rollback_reason", req.rollback_reason);
  if (!open.ok()) return done(open);
  AbortOn(c, std::move(req.gid), req.trans_type, std::move(req.rollback_reason),
          req.options.wait_result, NewReply<Status>(c, std::move(done)));
}

void Coordinator::RegisterBranchAsync(BranchRegistration b,
                                      StatusCallback done) {
  Engine& c = *engine_;
  Status open = c.CheckOpen();
  if (open.ok()) open = ValidateGid(b.gid);
  if (!open.ok()) return done(open);
  auto processor = ProcessorOf(b.trans_type);
  if (!processor.ok()) return done(processor.status());
  auto rows = (*processor)->RegisteredBranches(b, *c.client);
  if (!rows.ok()) return done(rows.status());
  // Rows the coordinator never calls (a workflow's record) name no target.
  const bool called = (*processor)->CallsRegisteredBranches();
  if (called) {
    Status allowed = CheckTargets(c, *rows, "");
    if (!allowed.ok()) return done(allowed);
  }
  auto reply = NewReply<Status>(c, std::move(done));
  // A prepared transaction is not processed, and leaving prepared re-reads
  // the journal's branches, so the write needs no runtime.
  std::vector<Branch> cached;
  if (called) cached = *rows;
  // Completes on the journal's thread, as Prepare's save does.
  c.journal->AppendBranches(
      b.gid, TransStatus::kPrepared, std::move(rows).value(),
      WriteDone([&c, reply, gid = b.gid, cached = std::move(cached),
                 confirm = b.confirm_url, cancel = b.cancel_url,
                 branch_id = b.branch_id, called](Status s) mutable {
        if (s.code() == StatusCode::kFailedPrecondition) {
          return reply->Set(AbortedError("no trans with gid: " + gid +
                                         " status: prepared found"));
        }
        if (s.ok()) {
          LogOffJournal(c, LogLevel::kDebug, [&](std::ostream& os) {
            os << "gid=" << gid << " branch=" << branch_id
               << " registered, confirm " << confirm << ", cancel " << cancel;
          });
          internal::MutexLock lock(&c.prepared_mu);
          auto it = c.prepared.find(gid);
          // An entry of uncalled rows keeps none (see SubmitEnd): this
          // completion, on the journal's thread, stays short.
          if (it != c.prepared.end() && called) {
            for (Branch& row : cached)
              it->second.branches.push_back(std::move(row));
          }
        }
        reply->Set(std::move(s));
      }));
}

void Coordinator::QueryAsync(std::string gid,
                             ResultCallback<TransWithBranches> done) {
  Engine& c = *engine_;
  Status open = c.CheckOpen();
  if (!open.ok()) return done(open);
  auto reply = NewReply<Result<TransWithBranches>>(c, std::move(done));
  // Final statuses and branch results are queued without waiting (they may
  // be written lazily); a reader waits for what is queued so that it sees
  // every outcome already reported to a caller.
  c.journal->Flush([&c, reply, gid = std::move(gid)](Status s) {
    if (!s.ok()) return reply->Set(s);
    c.Read([&c, reply, gid] { reply->Set(c.journal->Find(gid)); });
  });
}

StatusCounts Coordinator::Decisions() const {
  StatusCounts counts;
  for (std::size_t i = 0; i < counts.by_status.size(); ++i) {
    counts.by_status[i] = engine_->decisions[i].load(std::memory_order_relaxed);
  }
  return counts;
}

BranchClient& Coordinator::branch_client() { return *engine_->client; }

std::string Coordinator::address() const { return ""; }

}  // namespace dtx
