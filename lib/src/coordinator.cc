// Coordinator: the scheduler that takes due transactions from the journal,
// administration (ForceStop, RetryNow) and the life cycle. The DtmApi
// requests are in coordinator_api.cc.
//
// The scheduler polls the journal every cron_interval, and earlier when a
// transaction of this process is due (a heap of wake-up times), claiming due
// transactions with a lease and processing them.

#include "dtx/coordinator.h"

#include "coordinator_impl.h"

#include <asio/post.hpp>

#include <chrono>
#include <future>
#include <optional>

namespace dtx {
namespace {

constexpr std::size_t kClaimBatch = 64;

}  // namespace

Status Coordinator::Impl::Await(std::future<Status>& f) {
  while (f.wait_for(std::chrono::milliseconds(50)) !=
         std::future_status::ready) {
    std::lock_guard<std::mutex> lock(mu);
    if (shut_down) return UnavailableError("coordinator: shut down");
  }
  return f.get();
}

Status Coordinator::Impl::CheckOpen() {
  std::lock_guard<std::mutex> lock(mu);
  if (stopping) return UnavailableError("coordinator: shut down");
  return Status::Ok();
}

std::chrono::seconds Coordinator::Impl::Lease() const {
  return std::max(options.retry.initial_interval, 2 * options.request_timeout);
}

std::shared_ptr<TransRuntime> Coordinator::Impl::Activate(
    TransWithBranches data, bool* created, const TransOptions* known_opts) {
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = active[data.trans.gid];
  if (slot) {
    *created = false;
    return slot;
  }
  auto rt = std::make_shared<TransRuntime>(this, asio::make_strand(io));
  rt->trans = std::move(data.trans);
  rt->branches = std::move(data.branches);
  if (known_opts != nullptr) {
    rt->opts = *known_opts;
  } else {
    auto opts = internal::DecodeOptions(rt->trans.options);
    if (opts.ok()) {
      rt->opts = *opts;
    } else {
      DTX_LOG(logger, LogLevel::kError,
              "gid=" << rt->trans.gid << ": " << opts.status());
    }
  }
  if (rt->trans.trans_type == TransType::kSaga) {
    auto custom = internal::DecodeSagaCustom(
        rt->trans.custom_data, static_cast<int>(rt->branches.size() / 2));
    if (custom.ok()) {
      rt->saga = *custom;
    } else {
      DTX_LOG(logger, LogLevel::kError,
              "gid=" << rt->trans.gid << ": " << custom.status());
      rt->saga.orders.assign(rt->branches.size() / 2, {});
    }
  } else if (rt->trans.trans_type == TransType::kMsg) {
    rt->msg_delay_s =
        internal::DecodeMsgDelay(rt->trans.custom_data).value_or(0);
  }
  rt->in_flight.assign(rt->branches.size(), 0);
  rt->blocked.assign(rt->branches.size(), 0);
  rt->interval = rt->trans.next_cron_interval.count() > 0
                     ? rt->trans.next_cron_interval
                     : BaseInterval(*rt);
  slot = rt;
  *created = true;
  return rt;
}

void Coordinator::Impl::WithRuntime(
    const std::string& gid,
    std::function<void(std::shared_ptr<TransRuntime>, Status)> fn) {
  std::shared_ptr<TransRuntime> rt;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping)
      return fn(nullptr, UnavailableError("coordinator: shut down"));
    auto it = active.find(gid);
    if (it != active.end()) rt = it->second;
  }
  if (!rt) {
    std::optional<TransWithBranches> known;
    {
      std::lock_guard<std::mutex> lock(prepared_mu);
      auto it = prepared.find(gid);
      if (it != prepared.end()) {
        known = std::move(it->second);
        prepared.erase(it);
      }
    }
    if (!known) {
      auto data = journal->Find(gid);
      if (!data.ok()) return fn(nullptr, data.status());
      known = std::move(data).value();
    }
    bool created = false;
    rt = Activate(std::move(*known), &created);
  }
  Post(rt, [this, rt, gid, fn] {
    if (rt->evicted) {
      WithRuntime(gid, fn);  // it left memory meanwhile: load it again
      return;
    }
    fn(rt, Status::Ok());
  });
}

Status Coordinator::Impl::ClaimDueOnce(std::size_t* claimed) {
  std::lock_guard<std::mutex> claiming(claim_mu);
  const TimePoint now = clock->Now();
  ClaimRequest req;
  req.now = now;
  req.owner = owner;
  req.lease_until = now + Lease();
  req.limit = kClaimBatch;
  auto got = WaitForClaim(*journal, req);
  if (!got.ok()) return got.status();
  *claimed = got->size();
  for (GlobalTrans& t : *got) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return UnavailableError("coordinator: shut down");
      if (active.count(t.gid) != 0) continue;  // already being worked on here
    }
    {
      std::lock_guard<std::mutex> lock(prepared_mu);
      prepared.erase(t.gid);  // the journal's copy is the one to use now
    }
    auto data = journal->Find(t.gid);
    if (!data.ok()) {
      DTX_LOG(logger, LogLevel::kError,
              "gid=" << t.gid << ": cannot load: " << data.status());
      continue;
    }
    bool created = false;
    auto rt = Activate(std::move(data).value(), &created);
    if (created) {
      DTX_LOG(
          logger, LogLevel::kDebug,
          "gid=" << t.gid << " due (" << ToString(t.status) << "), resuming");
      Post(rt, [this, rt] { Advance(rt); });
    }
  }
  return Status::Ok();
}

void Coordinator::Impl::Poll() {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return;
    const TimePoint now = clock->Now();
    while (!wakeups.empty() && wakeups.top().first <= now) wakeups.pop();
  }
  // Claims run on an io thread; the journal's reads and the claim's commit
  // wait for the disk, but only the scheduler's strand waits with them.
  std::size_t claimed = 0;
  Status s = ClaimDueOnce(&claimed);
  if (!s.ok()) {
    DTX_LOG(logger, LogLevel::kError,
            "scheduler: claiming due transactions: " << s);
  }
  if (s.ok() && claimed == kClaimBatch) {
    asio::post(sched, [this] { Poll(); });
    return;
  }
  ArmPoll();
}

void Coordinator::Impl::ArmPoll() {
  TimePoint next;
  const TimePoint now = clock->Now();
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return;
    next = now + options.cron_interval;
    if (!wakeups.empty() && wakeups.top().first < next)
      next = wakeups.top().first;
  }
  auto wait = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      next - now);
  if (wait.count() < 0) wait = {};
  poll_timer.expires_after(wait);
  poll_timer.async_wait([this](const asio::error_code& ec) {
    if (!ec) Poll();
  });
}

// Coordinator.
Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Coordinator::~Coordinator() { Shutdown(); }

Result<std::unique_ptr<Coordinator>> Coordinator::Open(Options options,
                                                       CoordinatorDeps deps) {
  DTX_RETURN_IF_ERROR(options.Validate());
  if (!deps.journal) return InvalidArgumentError("coordinator: no journal");
  if (!deps.branch_client)
    return InvalidArgumentError("coordinator: no branch client");
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->journal = std::move(deps.journal);
  impl->client = std::move(deps.branch_client);
  impl->clock = deps.clock != nullptr ? deps.clock : &SystemClock();
  impl->logger = deps.logger ? deps.logger : NewNullLogger();
  impl->ids =
      deps.ids ? std::move(deps.ids) : NewTimeOrderedIdGenerator(*impl->clock);
  impl->owner = "dtx-" + impl->ids->NewGid();
  impl->work.emplace(impl->io.get_executor());
  Impl* raw = impl.get();
  for (std::size_t i = 0; i < raw->options.io_threads; ++i) {
    raw->threads.emplace_back([raw] { raw->io.run(); });
  }
  DTX_LOG(raw->logger, LogLevel::kInfo,
          "coordinator: started as " << raw->owner << " with "
                                     << raw->options.io_threads
                                     << " io thread(s)");
  asio::post(raw->sched, [raw] { raw->Poll(); });
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Status Coordinator::ForceStop(const std::string& gid) {
  Impl& c = *impl_;
  DTX_RETURN_IF_ERROR(c.CheckOpen());
  auto reply = std::make_shared<std::promise<Status>>();
  auto future = reply->get_future();
  c.WithRuntime(gid, [&c, reply](std::shared_ptr<TransRuntime> rt, Status st) {
    if (!rt) {
      reply->set_value(st);
      return;
    }
    if (IsFinished(rt->trans.status) || rt->deciding) {
      reply->set_value(
          AbortedError("global transaction force stop error. status: " +
                       std::string(ToString(rt->trans.status))));
      c.MaybeEvict(rt);
      return;
    }
    c.Decide(rt, TransStatus::kFailed, "force stopped",
             [reply](Status s) { reply->set_value(s); });
  });
  return c.Await(future);
}

Status Coordinator::RetryNow(const std::string& gid) {
  Impl& c = *impl_;
  DTX_RETURN_IF_ERROR(c.CheckOpen());
  std::shared_ptr<TransRuntime> rt;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.active.find(gid);
    if (it != c.active.end()) rt = it->second;
  }
  if (rt) {
    c.Post(rt, [&c, rt] {
      std::fill(rt->blocked.begin(), rt->blocked.end(), 0);
      rt->checkback_blocked = false;
      rt->wake_at.reset();
      c.Advance(rt);
    });
    return Status::Ok();
  }
  DTX_RETURN_IF_ERROR(WaitForWrite([&](WriteDone done) {
    c.journal->MakeDue(gid, c.clock->Now(), std::move(done));
  }));
  asio::post(c.sched, [&c] { c.Poll(); });
  return Status::Ok();
}

Status Coordinator::RunDue() {
  DTX_RETURN_IF_ERROR(impl_->CheckOpen());
  for (;;) {
    std::size_t claimed = 0;
    DTX_RETURN_IF_ERROR(impl_->ClaimDueOnce(&claimed));
    if (claimed < kClaimBatch) break;
  }
  WaitIdle();
  return Status::Ok();
}

void Coordinator::WaitIdle() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle_cv.wait(
      lock, [this] { return impl_->active.empty() || impl_->shut_down; });
}

void Coordinator::Shutdown() {
  Impl& c = *impl_;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.stopping) return;
    c.stopping = true;
  }
  DTX_LOG(c.logger, LogLevel::kInfo, "coordinator: shutting down");
  asio::post(c.sched, [&c] { c.poll_timer.cancel(); });
  c.client->Shutdown();
  // Let the writes already queued (branch results, schedules) become durable.
  WaitForWrite([&](WriteDone done) {
    c.journal->Flush(std::move(done));
  }).IgnoreError();
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
    std::lock_guard<std::mutex> lock(c.mu);
    c.shut_down = true;
    left.swap(c.active);
    c.idle_cv.notify_all();
  }
  for (auto& [gid, rt] : left) {
    for (auto& w : rt->waiters) w(rt->trans, true);
    rt->waiters.clear();
  }
}

}  // namespace dtx
