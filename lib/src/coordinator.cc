// Coordinator: the life cycle, the scheduler that takes due transactions from
// the journal, and administration (List, Stats, ForceStop, RetryNow). The
// DtmApi requests are in coordinator_api.cc, the per-transaction session in
// trans_runtime.cc, the modes in trans_type_<mode>.cc.
//
// The scheduler polls the journal every cron_interval, and earlier when a
// transaction of this process is due (a heap of wake-up times), claiming due
// transactions with a lease and processing them. The claim and the loads it
// needs run on the read pool: no io thread waits for the disk.

#include "dtx/coordinator.h"

#include "dtx/internal/thread_name.h"

#include "check.h"
#include "coordinator_impl.h"
#include "target_limiter.h"

#include <asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <optional>

namespace dtx {
namespace internal {
namespace {

constexpr std::size_t kClaimBatch = 64;
// Rows a retention step looks at (one journal write each).
constexpr std::size_t kRetentionStep = 1000;

}  // namespace

Status Engine::CheckOpen() {
  MutexLock lock(&mu);
  if (stopping) return UnavailableError("coordinator: shut down");
  return Status::Ok();
}

std::chrono::seconds Engine::Lease() const {
  return std::max(options.retry.initial_interval, 2 * options.request_timeout);
}

std::chrono::seconds Engine::BaseInterval(const TransOptions& opts) const {
  const auto global = options.retry.initial_interval;
  if (opts.retry_interval.count() > 0) return opts.retry_interval;
  if (opts.timeout_to_fail.count() > 0 && opts.timeout_to_fail < global) {
    return opts.timeout_to_fail;
  }
  return global;
}

std::chrono::seconds Engine::TimeoutOf(const TransProcessor& processor,
                                       const TransOptions& opts) const {
  ModeDefaults defaults;
  defaults.timeout_to_fail = options.timeout_to_fail;
  return processor.TimeoutOf(opts, defaults);
}

void Engine::Read(std::function<void()> fn) {
  if (reads) {
    asio::post(*reads, std::move(fn));
  } else {
    loop_queue->Post(std::move(fn));
  }
}

void Engine::PostIo(std::function<void()> fn) {
  if (loop_queue) {
    loop_queue->Post(std::move(fn));
  } else {
    asio::post(io, std::move(fn));
  }
}

std::shared_ptr<TransRuntime> Engine::Activate(TransWithBranches data,
                                               bool* created,
                                               const TransOptions* known_opts) {
  *created = false;
  const TransProcessor* processor = ProcessorFor(data.trans.trans_type);
  if (processor == nullptr) {
    DTX_LOG(logger, LogLevel::kError,
            "gid=" << data.trans.gid << " trans type "
                   << ToString(data.trans.trans_type)
                   << " is not supported by this version; left as it is");
    return nullptr;
  }
  MutexLock lock(&mu);
  auto& slot = active[data.trans.gid];
  if (slot) return slot;
  slot =
      std::make_shared<TransRuntime>(*this, std::make_shared<Serial>(OnIo()),
                                     *processor, std::move(data), known_opts);
  *created = true;
  return slot;
}

std::shared_ptr<TransRuntime> Engine::NewRuntime(TransWithBranches data,
                                                 const TransOptions* opts) {
  const TransProcessor* processor = ProcessorFor(data.trans.trans_type);
  if (processor == nullptr) return nullptr;
  return std::make_shared<TransRuntime>(*this, std::make_shared<Serial>(OnIo()),
                                        *processor, std::move(data), opts);
}

std::shared_ptr<TransRuntime> Engine::Register(
    std::shared_ptr<TransRuntime> rt) {
  MutexLock lock(&mu);
  auto& slot = active[rt->trans().gid];
  if (!slot) slot = std::move(rt);
  return slot;
}

Executor Engine::OnIo() {
  return [this](std::function<void()> fn) { PostIo(std::move(fn)); };
}

void Engine::Forget(const TransRuntime& rt, bool finished, TimePoint next,
                    bool wake) {
  wake = wake && !finished;
  bool resume_claims = false;
  {
    MutexLock lock(&mu);
    auto it = active.find(rt.trans().gid);
    if (it != active.end() && it->second.get() == &rt) active.erase(it);
    if (wake) wakeups.emplace(next, rt.trans().gid);
    if (active.empty()) idle_cv.SignalAll();
    if (claims_held && active.size() <= options.max_in_memory / 2) {
      claims_held = false;
      resume_claims = !stopping;
    }
  }
  if (!wake && alert_tracker) alert_tracker->Forget(rt.trans().gid);
  if (resume_claims) {
    sched->Post([this] { Poll(); });
  } else if (wake) {
    sched->Post([this] { ArmPoll(); });
  }
}

void Engine::WithRuntime(
    const std::string& gid,
    std::function<void(std::shared_ptr<TransRuntime>, Status)> fn) {
  std::shared_ptr<TransRuntime> rt;
  {
    MutexLock lock(&mu);
    if (stopping)
      return fn(nullptr, UnavailableError("coordinator: shut down"));
    auto it = active.find(gid);
    if (it != active.end()) rt = it->second;
  }
  // On the request's own thread when the strand is idle (one thread hop
  // fewer per request on a transaction in memory: a TCC's Submit).
  auto on_strand = [this, gid, fn](std::shared_ptr<TransRuntime> runtime) {
    runtime->Dispatch([this, runtime, gid, fn] {
      if (runtime->evicted()) {
        WithRuntime(gid, fn);  // it left memory meanwhile: load it again
        return;
      }
      fn(runtime, Status::Ok());
    });
  };
  if (rt) return on_strand(std::move(rt));
  std::optional<TransWithBranches> known;
  {
    MutexLock lock(&prepared_mu);
    auto it = prepared.find(gid);
    if (it != prepared.end()) {
      // An entry of a mode whose registered rows are not kept (a
      // workflow's record; SubmitEnd needs only the global) is no copy of
      // the journal's rows: read them from the journal.
      const TransProcessor* p = ProcessorFor(it->second.trans.trans_type);
      if (p != nullptr && p->CallsRegisteredBranches())
        known = std::move(it->second);
      prepared.erase(it);
    }
  }
  auto activate = [this, fn, on_strand](TransWithBranches data) {
    bool created = false;
    auto loaded = Activate(std::move(data), &created);
    if (!loaded) {
      return fn(nullptr,
                UnimplementedError("dtx does not run this transaction's mode"));
    }
    on_strand(std::move(loaded));
  };
  if (known) return activate(std::move(*known));
  Read([this, gid, fn, activate] {
    auto data = journal->Find(gid);
    if (!data.ok()) return fn(nullptr, data.status());
    activate(std::move(data).value());
  });
}

Status Engine::ClaimDueOnce(std::size_t* claimed, bool* more) {
  MutexLock claiming(&claim_mu);
  *claimed = 0;
  *more = false;
  std::size_t room = kClaimBatch;
  if (options.max_in_memory > 0) {
    MutexLock lock(&mu);
    const std::size_t in_memory = active.size();
    room = in_memory >= options.max_in_memory
               ? 0
               : std::min(kClaimBatch, options.max_in_memory - in_memory);
    if (room == 0) {
      if (!claims_held) {
        DTX_LOG(logger, LogLevel::kInfo,
                "scheduler: " << in_memory
                              << " transactions in memory (max_in_memory); "
                                 "due ones wait in the journal");
      }
      claims_held = true;
      return Status::Ok();
    }
  }
  const TimePoint now = clock->Now();
  ClaimRequest req;
  req.now = now;
  req.owner = owner;
  req.lease_until = now + Lease();
  req.limit = room;
  auto got = WaitForClaim(*journal, req);
  if (!got.ok()) return got.status();
  *claimed = got->size();
  *more = got->size() == room;
  for (GlobalTrans& t : *got) {
    std::shared_ptr<TransRuntime> existing;
    {
      MutexLock lock(&mu);
      if (stopping) return UnavailableError("coordinator: shut down");
      auto it = active.find(t.gid);
      if (it != active.end()) existing = it->second;
    }
    if (existing) {
      // Being worked on here, or in memory without being driven by this
      // coordinator (loaded for a request, fenced, or let go of): such a
      // copy makes way for the journal's.
      existing->Post([this, existing, gid = t.gid] {
        if (existing->evicted()) return Resume(gid);
        existing->ClaimedHere();
      });
      continue;
    }
    ResumeNow(t.gid);
  }
  return Status::Ok();
}

void Engine::Resume(const std::string& gid) {
  Read([this, gid] { ResumeNow(gid); });
}

void Engine::ResumeNow(const std::string& gid) {
  {
    MutexLock lock(&mu);
    if (stopping || active.count(gid) != 0) return;
  }
  {
    MutexLock lock(&prepared_mu);
    prepared.erase(gid);  // the journal's copy is the one to use now
  }
  auto data = journal->Find(gid);
  if (!data.ok()) {
    DTX_LOG(logger, LogLevel::kError,
            "gid=" << gid << ": cannot load: " << data.status());
    return;
  }
  const TransStatus status = data->trans.status;
  bool created = false;
  auto rt = Activate(std::move(data).value(), &created);
  if (created) {
    DTX_LOG(logger, LogLevel::kDebug,
            "gid=" << gid << " due (" << ToString(status) << "), resuming");
    rt->Post([rt] { rt->Advance(); });
  }
}

void Engine::Poll() {
  DTX_DCHECK(sched->RunningHere());
  {
    MutexLock lock(&mu);
    if (stopping) return;
    const TimePoint now = clock->Now();
    while (!wakeups.empty() && wakeups.top().first <= now) wakeups.pop();
  }
  // The claim waits for the disk: on the read pool, then back here.
  Read([this] {
    std::size_t claimed = 0;
    bool full = false;
    Status s = ClaimDueOnce(&claimed, &full);
    if (!s.ok() && s.code() != StatusCode::kUnavailable) {
      DTX_LOG(logger, LogLevel::kError,
              "scheduler: claiming due transactions: " << s);
    }
    const bool more = s.ok() && full;
    sched->Post([this, more] {
      if (more) {
        Poll();
      } else {
        ArmPoll();
      }
    });
  });
}

void Engine::ArmPoll() {
  DTX_DCHECK(sched->RunningHere());
  TimePoint next;
  const TimePoint now = clock->Now();
  {
    MutexLock lock(&mu);
    if (stopping) return;
    next = now + options.cron_interval;
    if (!wakeups.empty() && wakeups.top().first < next)
      next = wakeups.top().first;
  }
  if (loop_queue) {
    // The loop runs it at `next` of the clock; a later arm or a disarm makes
    // it stale.
    const uint64_t generation = ++poll_generation;
    loop_queue->PostAt(next, [this, generation] {
      sched->Post([this, generation] {
        if (generation == poll_generation) Poll();
      });
    });
    return;
  }
  auto wait = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      next - now);
  if (wait.count() < 0) wait = {};
  poll_timer.expires_after(wait);
  poll_timer.async_wait([this](const asio::error_code& ec) {
    if (!ec) sched->Post([this] { Poll(); });
  });
}

void Engine::DisarmPoll() {
  DTX_DCHECK(sched->RunningHere());
  ++poll_generation;
  poll_timer.cancel();
}

bool Engine::RetentionOn() const {
  return options.finished_data_expire.count() > 0 ||
         options.data_expire.count() > 0;
}

PurgeRequest Engine::RetentionStep(TimePoint now, int64_t after_id) const {
  PurgeRequest r;
  if (options.finished_data_expire.count() > 0)
    r.finished_before = now - options.finished_data_expire;
  if (options.data_expire.count() > 0)
    r.created_before = now - options.data_expire;
  r.after_id = after_id;
  r.scan_limit = kRetentionStep;
  return r;
}

void Engine::RunRetention(TimePoint now, int64_t after_id,
                          std::size_t removed) {
  DTX_DCHECK(sched->RunningHere());
  {
    MutexLock lock(&mu);
    if (stopping) return;
  }
  journal->PurgeFinished(
      RetentionStep(now, after_id),
      PurgeDone(
          [this](std::function<void()> fn) { sched->Post(std::move(fn)); },
          [this, now, removed](Result<PurgeResult> r) {
            if (!r.ok()) {
              if (r.status().code() != StatusCode::kUnimplemented) {
                DTX_LOG(logger, LogLevel::kWarn,
                        "retention: " << r.status() << "; tried again in "
                                      << options.retention_interval.count()
                                      << " s");
              }
              return ArmRetention();
            }
            const std::size_t total = removed + r->removed;
            if (r->more) return RunRetention(now, r->next_after_id, total);
            if (total > 0) {
              DTX_LOG(
                  logger, LogLevel::kInfo,
                  "retention: removed " << total << " finished transaction(s)");
            }
            ArmRetention();
          }));
}

void Engine::ArmRetention() {
  DTX_DCHECK(sched->RunningHere());
  {
    MutexLock lock(&mu);
    if (stopping) return;
  }
  const uint64_t generation = ++retention_generation;
  auto run = [this, generation] {
    sched->Post([this, generation] {
      if (generation == retention_generation) RunRetention(clock->Now(), 0, 0);
    });
  };
  if (loop_queue) {
    loop_queue->PostAt(clock->Now() + options.retention_interval,
                       std::move(run));
    return;
  }
  retention_timer.expires_after(options.retention_interval);
  retention_timer.async_wait([run](const asio::error_code& ec) {
    if (!ec) run();
  });
}

}  // namespace internal

namespace {

template <typename T, typename Start>
T Wait(Start start) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> future = promise->get_future();
  start([promise](T value) { promise->set_value(std::move(value)); });
  return future.get();
}

}  // namespace

using internal::Engine;
using internal::NewReply;
using internal::TransRuntime;

Coordinator::Coordinator(std::unique_ptr<Engine> engine)
    : engine_(std::move(engine)) {}

Coordinator::~Coordinator() { Shutdown(); }

Result<std::unique_ptr<Coordinator>> Coordinator::Open(Options options,
                                                       CoordinatorDeps deps) {
  DTX_RETURN_IF_ERROR(options.Validate());
  if (!deps.journal) return InvalidArgumentError("coordinator: no journal");
  if (!deps.branch_client)
    return InvalidArgumentError("coordinator: no branch client");
  auto e = std::make_unique<Engine>();
  e->options = std::move(options);
  e->journal = std::move(deps.journal);
  e->client = std::move(deps.branch_client);
  e->clock = deps.clock != nullptr ? deps.clock : &SystemClock();
  if (e->options.max_calls_per_target > 0) {
    e->client = std::make_unique<internal::TargetLimiter>(
        std::move(e->client), e->options.max_calls_per_target, e->clock);
  }
  e->logger = deps.logger ? deps.logger : NewNullLogger();
  e->ids =
      deps.ids ? std::move(deps.ids) : NewTimeOrderedIdGenerator(*e->clock);
  e->owner = "dtx-" + e->ids->NewGid();
  Engine* raw = e.get();
  if (deps.alerts != nullptr) {
    e->alerts = deps.alerts;
    e->alert_tracker =
        std::make_unique<internal::AlertTracker>(e->options.alert_retry_limit);
  }
  // What a restart picks up: logged below, and the first value of the
  // journal's gauges.
  const TimePoint now = raw->clock->Now();
  auto summary = raw->journal->Summarize(now);
  if (deps.metrics != nullptr) {
    std::unique_ptr<internal::SummaryCache> cache;
    if (summary.ok()) {
      cache = std::make_unique<internal::SummaryCache>(
          *raw->clock, Engine::kSummaryMaxAge, [raw] {
            internal::SummaryCache* c = raw->metrics->summary();
            raw->Read([raw, c] {
              const TimePoint at = raw->clock->Now();
              c->Update(raw->journal->Summarize(at), at);
            });
          });
      cache->Update(summary, now);
    }
    DTX_ASSIGN_OR_RETURN(e->metrics,
                         internal::EngineMetrics::Register(
                             *deps.metrics,
                             [raw] {
                               internal::MutexLock lock(&raw->mu);
                               return static_cast<double>(raw->active.size());
                             },
                             std::move(cache)));
  }
  if (deps.loop != nullptr) {
    e->loop = deps.loop;
    e->loop_queue = std::make_shared<internal::LoopQueue>(*deps.loop);
  } else {
    e->reads.emplace(Engine::kReadThreads);
  }
  e->sched = std::make_shared<internal::Serial>(e->OnIo());
  if (e->loop == nullptr) {
    e->work.emplace(e->io.get_executor());
    for (std::size_t i = 0; i < raw->options.io_threads; ++i) {
      raw->threads.emplace_back([raw] {
        internal::NameThisThread("dtx-io");
        raw->io.run();
      });
    }
    DTX_LOG(raw->logger, LogLevel::kInfo,
            "coordinator: started as " << raw->owner << " with "
                                       << raw->options.io_threads
                                       << " io thread(s)");
  } else {
    DTX_LOG(raw->logger, LogLevel::kInfo,
            "coordinator: started as " << raw->owner
                                       << " on the host's event loop");
  }
  if (!summary.ok()) {
    DTX_LOG(raw->logger, LogLevel::kWarn,
            "coordinator: cannot count unfinished transactions: "
                << summary.status());
  } else if (summary->unfinished == 0) {
    DTX_LOG(raw->logger, LogLevel::kInfo,
            "coordinator: no unfinished transaction in the journal");
  } else {
    const auto age = std::chrono::duration_cast<std::chrono::seconds>(
        now - summary->oldest_create_time.value_or(now));
    DTX_LOG(raw->logger, LogLevel::kInfo,
            "coordinator: " << summary->unfinished
                            << " unfinished transaction(s) in the journal, "
                            << summary->due
                            << " due now and resumed at once, the rest when "
                               "due (oldest created "
                            << age.count() << " s ago)");
  }
  raw->sched->Post([raw] { raw->Poll(); });
  if (raw->RetentionOn()) {
    DTX_LOG(raw->logger, LogLevel::kInfo,
            "coordinator: finished transactions are removed "
                << (raw->options.finished_data_expire.count() > 0
                        ? std::to_string(
                              raw->options.finished_data_expire.count()) +
                              " s after their end"
                        : std::string())
                << (raw->options.finished_data_expire.count() > 0 &&
                            raw->options.data_expire.count() > 0
                        ? " or "
                        : "")
                << (raw->options.data_expire.count() > 0
                        ? std::to_string(raw->options.data_expire.count()) +
                              " s after their creation"
                        : std::string())
                << " (Store.FinishedDataExpire, Store.DataExpire)");
    raw->sched->Post([raw] { raw->RunRetention(raw->clock->Now(), 0, 0); });
  }
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(e)));
}

namespace {

void ForceStopOn(Engine& c, std::string gid,
                 std::shared_ptr<internal::ReplyOnce<Status>> reply) {
  c.WithRuntime(gid, [&c, gid, reply](std::shared_ptr<TransRuntime> rt,
                                      Status st) {
    if (!rt) return reply->Set(st);
    if (rt->deciding()) {
      // Once the decision under way is durable, look again.
      return rt->WhenSettled([&c, gid, reply] { ForceStopOn(c, gid, reply); });
    }
    if (IsFinished(rt->trans().status)) {
      reply->Set(AbortedError("global transaction force stop error. status: " +
                              std::string(ToString(rt->trans().status))));
      rt->MaybeEvict();
      return;
    }
    rt->Decide(TransStatus::kFailed, "force stopped",
               [reply](Status s) { reply->Set(s); });
  });
}

}  // namespace

void Coordinator::ForceStopAsync(std::string gid, StatusCallback done) {
  Engine& c = *engine_;
  Status open = c.CheckOpen();
  if (!open.ok()) return done(open);
  ForceStopOn(c, std::move(gid), NewReply<Status>(c, std::move(done)));
}

Status Coordinator::ForceStop(const std::string& gid) {
  return Wait<Status>(
      [&](StatusCallback done) { ForceStopAsync(gid, std::move(done)); });
}

namespace {

Status Finished(const std::string& gid, TransStatus status) {
  return AbortedError("retry now: gid " + gid + " is " +
                      std::string(ToString(status)) +
                      "; a finished transaction is not run again");
}

void MakeDueInJournal(Engine& c, std::string gid,
                      std::shared_ptr<internal::ReplyOnce<Status>> reply);

void RetryNowOn(Engine& c, std::string gid,
                std::shared_ptr<internal::ReplyOnce<Status>> reply) {
  std::shared_ptr<TransRuntime> rt;
  {
    internal::MutexLock lock(&c.mu);
    if (c.stopping)
      return reply->Set(UnavailableError("coordinator: shut down"));
    auto it = c.active.find(gid);
    if (it != c.active.end()) rt = it->second;
  }
  if (rt) {
    rt->Post([&c, rt, gid, reply] {
      if (rt->evicted()) {
        // It left memory (its back-off written) after the lookup: the
        // journal's path below makes it due instead.
        return RetryNowOn(c, gid, reply);
      }
      if (IsFinished(rt->trans().status)) {
        reply->Set(Finished(gid, rt->trans().status));
        rt->MaybeEvict();
        return;
      }
      if (rt->hands_off()) {
        // Not this coordinator's to run (loaded for a request on a shared
        // journal): the journal makes it due, or says whose lease runs.
        return MakeDueInJournal(c, gid, reply);
      }
      rt->RetryNow();
      reply->Set(Status::Ok());
    });
    return;
  }
  MakeDueInJournal(c, std::move(gid), std::move(reply));
}

void MakeDueInJournal(Engine& c, std::string gid,
                      std::shared_ptr<internal::ReplyOnce<Status>> reply) {
  c.journal->MakeDue(
      gid, c.clock->Now(), WriteDone(c.OnIo(), [&c, gid, reply](Status s) {
        if (s.ok()) {
          c.sched->Post([&c] { c.Poll(); });
          return reply->Set(std::move(s));
        }
        if (s.code() != StatusCode::kFailedPrecondition) return reply->Set(s);
        // Finished, or the journal is closed: the row tells which.
        c.Read([&c, gid, reply, s] {
          auto found = c.journal->Find(gid);
          if (found.ok() && IsFinished(found->trans.status)) {
            return reply->Set(Finished(gid, found->trans.status));
          }
          reply->Set(s);
        });
      }));
}

}  // namespace

void Coordinator::RetryNowAsync(std::string gid, StatusCallback done) {
  Engine& c = *engine_;
  Status open = c.CheckOpen();
  if (!open.ok()) return done(open);
  RetryNowOn(c, std::move(gid), NewReply<Status>(c, std::move(done)));
}

Status Coordinator::RetryNow(const std::string& gid) {
  return Wait<Status>(
      [&](StatusCallback done) { RetryNowAsync(gid, std::move(done)); });
}

void Coordinator::ListAsync(ListQuery query, ResultCallback<ListPage> done) {
  Engine& c = *engine_;
  Status open = c.CheckOpen();
  if (!open.ok()) return done(open);
  if (query.limit == 0) query.limit = kDefaultListLimit;
  query.limit = std::min(query.limit, kMaxListLimit);
  auto reply = NewReply<Result<ListPage>>(c, std::move(done));
  // Final statuses and branch results are queued without waiting (they may
  // be written lazily); a reader waits for what is queued so that it sees
  // every outcome already reported to a caller.
  c.journal->Flush([&c, reply, query = std::move(query)](Status s) {
    if (!s.ok()) return reply->Set(s);
    c.Read([&c, reply, query] { reply->Set(c.journal->List(query)); });
  });
}

Result<ListPage> Coordinator::List(const ListQuery& query) {
  return Wait<Result<ListPage>>([&](ResultCallback<ListPage> done) {
    ListAsync(query, std::move(done));
  });
}

void Coordinator::StatsAsync(ResultCallback<TransStats> done) {
  Engine& c = *engine_;
  Status open = c.CheckOpen();
  if (!open.ok()) return done(open);
  auto reply = NewReply<Result<TransStats>>(c, std::move(done));
  // As List: what callers were told is in the journal before counting.
  c.journal->Flush([&c, reply](Status s) {
    if (!s.ok()) return reply->Set(s);
    c.Read([&c, reply] {
      TransStats stats;
      auto counts = c.journal->CountByStatus();
      if (!counts.ok()) return reply->Set(counts.status());
      auto summary = c.journal->Summarize(c.clock->Now());
      if (!summary.ok()) return reply->Set(summary.status());
      stats.counts = *counts;
      stats.unfinished = *summary;
      reply->Set(std::move(stats));
    });
  });
}

Result<TransStats> Coordinator::Stats() {
  return Wait<Result<TransStats>>(
      [&](ResultCallback<TransStats> done) { StatsAsync(std::move(done)); });
}

Status Coordinator::RunDue() {
  if (engine_->loop != nullptr) {
    // It would wait for closures that only the host's loop runs.
    return FailedPreconditionError(
        "coordinator: RunDue on a host's event loop (CoordinatorDeps::loop): "
        "run the loop instead");
  }
  DTX_RETURN_IF_ERROR(engine_->CheckOpen());
  for (;;) {
    std::size_t claimed = 0;
    bool more = false;
    DTX_RETURN_IF_ERROR(engine_->ClaimDueOnce(&claimed, &more));
    if (!more) break;
  }
  WaitIdle();
  return Status::Ok();
}

Result<std::size_t> Coordinator::PurgeFinished() {
  Engine& c = *engine_;
  if (c.loop != nullptr) {
    return FailedPreconditionError(
        "coordinator: PurgeFinished on a host's event loop "
        "(CoordinatorDeps::loop): retention runs on the loop by itself");
  }
  DTX_RETURN_IF_ERROR(c.CheckOpen());
  if (!c.RetentionOn()) return std::size_t{0};
  const TimePoint now = c.clock->Now();
  std::size_t removed = 0;
  int64_t after = 0;
  for (;;) {
    DTX_ASSIGN_OR_RETURN(PurgeResult r,
                         WaitForPurge(*c.journal, c.RetentionStep(now, after)));
    removed += r.removed;
    if (!r.more) return removed;
    after = r.next_after_id;
  }
}

void Coordinator::WaitIdle() {
  Engine& c = *engine_;
  internal::MutexLock lock(&c.mu);
  c.idle_cv.Wait(&c.mu, [&c]() {
    c.mu.AssertHeld();
    return c.active.empty() || c.shut_down;
  });
}

void Coordinator::SetWorkflowResumer(std::shared_ptr<BranchClient> resumer) {
  Engine& c = *engine_;
  std::shared_ptr<BranchClient> old;
  {
    internal::MutexLock lock(&c.resumer_mu);
    old = std::exchange(c.workflow_resumer, std::move(resumer));
  }
  // `old` is released here, outside the lock: its calls in flight hold
  // their own references.
}

void Coordinator::Shutdown() {
  Engine& c = *engine_;
  {
    internal::MutexLock lock(&c.mu);
    if (c.stopping) return;
    c.stopping = true;
    c.closing.store(true, std::memory_order_release);
  }
  DTX_LOG(c.logger, LogLevel::kInfo, "coordinator: shutting down");
  c.sched->Post([&c] {
    c.DisarmPoll();
    ++c.retention_generation;
    c.retention_timer.cancel();
  });
  c.client->Shutdown();
  // The in-process workflow resumer answers its calls in flight now
  // (kCancelled), so that none reaches a runtime after the threads stop.
  std::shared_ptr<BranchClient> resumer;
  {
    internal::MutexLock lock(&c.resumer_mu);
    resumer = std::move(c.workflow_resumer);
  }
  if (resumer) resumer->Shutdown();
  // Let the writes already queued (branch results, schedules) become durable.
  WaitForWrite([&](WriteDone done) {
    c.journal->Flush(std::move(done));
  }).IgnoreError();
  // Log lines that journal completions handed to the io threads (a Prepare's
  // "prepared", say, posted before its caller was answered) are written, not
  // dropped with the io_context's queue: a closure posted after them is
  // dequeued after them, and joining the threads below waits for any still
  // running.
  // On a host's loop nothing runs meanwhile: what is queued is dropped with
  // the queue, as the io_context's queue is below.
  if (c.loop == nullptr) {
    std::promise<void> drained;
    asio::post(c.io, [&drained] { drained.set_value(); });
    drained.get_future().wait();
  }
  // Reads in progress finish; queued ones are dropped, answering their
  // callers kUnavailable.
  if (c.reads) {
    c.reads->stop();
    c.reads->join();
  }
  c.work.reset();
  c.io.stop();
  for (auto& t : c.threads) t.join();
  c.threads.clear();
  // Writes queued since (a Submit that raced the shutdown) complete now, while
  // every part of the coordinator that their completions touch is alive;
  // none completes after Shutdown returns.
  c.journal->Close();
  std::unordered_map<std::string, std::shared_ptr<TransRuntime>> left;
  {
    internal::MutexLock lock(&c.mu);
    c.shut_down = true;
    left.swap(c.active);
    c.idle_cv.SignalAll();
  }
  for (auto& [gid, rt] : left) rt->ReleaseWaiters(true);
  // Requests still unanswered (their closures queued on a stopped
  // io_context, say) are answered now.
  c.replies.Close();
}

}  // namespace dtx
