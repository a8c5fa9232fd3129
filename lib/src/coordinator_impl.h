// The coordinator's engine, shared by coordinator.cc (life cycle, scheduler,
// administration), coordinator_api.cc (the DtmApi requests) and the
// per-transaction sessions (trans_runtime.cc).
//
// A transaction being worked on has a TransRuntime, owned by its strand. It is
// created when a request touches the transaction or when the scheduler claims
// it from the journal, and evicted (dropped from memory) when nothing more can
// be done now: finished, or waiting for a retry time that is then recorded as
// its next_cron_time. The scheduler claims it again when due. One path thus
// serves retries, timeouts and recovery after a crash.
//
// Threads: io threads run the strands and the scheduler's strand and never
// block; the read pool runs the journal's synchronous reads (a Find for a
// request, a claim and the loads it needs), so that no io thread waits for
// the disk; journal and gRPC completions are posted to the strands. On a
// host's EventLoop (CoordinatorDeps::loop) there are no threads: the strands'
// drains and the reads are closures of the loop (through a LoopQueue), and the
// scheduler's timer is a closure the loop runs at a time of the clock.

#ifndef DTX_LIB_COORDINATOR_IMPL_H_
#define DTX_LIB_COORDINATOR_IMPL_H_

#include "dtx/coordinator.h"
#include "dtx/internal/mutex.h"

#include "alert_tracker.h"
#include "engine_metrics.h"
#include "loop_queue.h"
#include "serial.h"
#include "trans_options.h"
#include "trans_runtime.h"
#include "trans_type.h"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace dtx::internal {

// The requests not answered yet.
class OpenReply {
 public:
  virtual ~OpenReply() = default;
  // Claims the reply; returns its callback bound to kUnavailable, or null
  // when it was answered already.
  virtual std::function<void()> Take() = 0;
};

class Replies {
 public:
  static Status ShutDown() {
    return UnavailableError(
        "coordinator: the request was not answered before the coordinator "
        "shut down");
  }
  // false once closed.
  bool Add(OpenReply* r) DTX_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (closed_) return false;
    open_.insert(r);
    return true;
  }
  void Remove(OpenReply* r) DTX_EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    open_.erase(r);
  }
  // Answers every open reply kUnavailable; later ones are answered so at
  // once.
  void Close() DTX_EXCLUDES(mu_) {
    std::vector<std::function<void()>> answers;
    {
      MutexLock lock(&mu_);
      closed_ = true;
      for (OpenReply* r : open_) {
        if (auto answer = r->Take()) answers.push_back(std::move(answer));
      }
      open_.clear();
    }
    for (auto& answer : answers) answer();
  }

 private:
  Mutex mu_;
  std::unordered_set<OpenReply*> open_ DTX_GUARDED_BY(mu_);
  bool closed_ DTX_GUARDED_BY(mu_) = false;
};

// The coordinator's state and shared machinery. Thread-safe where marked
// (mutex-guarded members); the rest is set at Open and read-only after.
struct Engine {
  Engine() : poll_timer(io), retention_timer(io) {}
  // The journal's completions use the members declared after it (mu,
  // active...): it is closed, running every completion still queued, before
  // those are destroyed.
  ~Engine() {
    if (reads) {
      reads->stop();
      reads->join();
    }
    if (journal) journal->Close();
  }

  // Runs `fn` on the strand of gid's runtime, loading it from the journal
  // (on the read pool) when it is not in memory. `fn` gets null and the
  // status when the gid is unknown or cannot be read, or the coordinator is
  // stopping.
  void WithRuntime(
      const std::string& gid,
      std::function<void(std::shared_ptr<TransRuntime>, Status)> fn);
  // Creates and registers the runtime of a transaction read from the journal
  // (or just saved); returns the existing one when already in memory.
  // `opts`, when given, are the transaction's options already decoded. Null
  // when dtx does not run the transaction's mode.
  std::shared_ptr<TransRuntime> Activate(TransWithBranches data, bool* created,
                                         const TransOptions* opts = nullptr);
  // A runtime not yet in memory's map, for a transaction being saved: its
  // strand is where the save completes. Null when dtx does not run its mode.
  std::shared_ptr<TransRuntime> NewRuntime(TransWithBranches data,
                                           const TransOptions* opts);
  // Puts `rt` in the map, or returns the runtime already there.
  std::shared_ptr<TransRuntime> Register(std::shared_ptr<TransRuntime> rt);
  // Runs closures on an io thread: for journal completions that answer a
  // caller, so that the journal's writer only hands them over.
  Executor OnIo();
  // Posts to the io_context, or to the host's loop (CoordinatorDeps::loop).
  void PostIo(std::function<void()> fn);
  // The runtime left memory: finished, or due again at `next`. `wake`:
  // whether this coordinator looks at it again then (not when another
  // coordinator owns it).
  void Forget(const TransRuntime& rt, bool finished, TimePoint next,
              bool wake = true);
  // Runs `fn` on the read pool.
  void Read(std::function<void()> fn);

  // Scheduler (on sched, except ClaimDueOnce, which blocks: read pool or a
  // host thread).
  void Poll();
  void ArmPoll();
  // Cancels the armed poll (on sched).
  void DisarmPoll();
  // Claims up to a batch of due transactions and resumes them; *more: the
  // batch was full (more may be due). At Options::max_in_memory it claims
  // nothing and holds claims until Forget has let half of them go.
  Status ClaimDueOnce(std::size_t* claimed, bool* more);
  // Retention (Options::finished_data_expire): whether a rule is on, the
  // request of a step at `now`, one run in steps (on sched, each step a
  // journal write; the next armed at the end), and its timer.
  bool RetentionOn() const;
  // One io thread and no loop: a journal writer's busy offer is taken
  // (dtx/executor.h, inline completions; TransRuntime::executor).
  bool TakesBusyOffers() const {
    return loop == nullptr && options.io_threads == 1;
  }
  PurgeRequest RetentionStep(TimePoint now, int64_t after_id) const;
  void RunRetention(TimePoint now, int64_t after_id, std::size_t removed);
  void ArmRetention();
  // Loads gid from the journal (on the read pool) and runs it, when not in
  // memory: a transaction this coordinator has claimed.
  void Resume(const std::string& gid);
  // Resume's blocking part, on the read pool or a host thread.
  void ResumeNow(const std::string& gid);
  std::chrono::seconds Lease() const;
  Status CheckOpen();

  // dtm's base retry interval and timeout of a transaction.
  std::chrono::seconds BaseInterval(const TransOptions& opts) const;
  std::chrono::seconds TimeoutOf(const TransProcessor& processor,
                                 const TransOptions& opts) const;

  static constexpr std::size_t kReadThreads = 2;
  // How old the journal's summary behind the metrics may get before a
  // scrape asks for a new one (SummaryCache).
  static constexpr std::chrono::seconds kSummaryMaxAge{5};

  // First, so that it outlives every reply still held by a closure of the
  // members below when they are destroyed.
  Replies replies;

  Options options;
  const Clock* clock = nullptr;
  std::shared_ptr<Logger> logger;
  std::unique_ptr<IdGenerator> ids;
  std::string owner;  // this coordinator's name in the journal's leases

  // Declared before the journal and client, so that their completions, run
  // while they close, can still post to it.
  asio::io_context io;
  // Borrowed (CoordinatorDeps::loop); null: io threads and a read pool.
  EventLoop* loop = nullptr;
  // Set with `loop`: what io and the read pool do without threads.
  std::shared_ptr<LoopQueue> loop_queue;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work;
  // The scheduler's serial (set at Open).
  std::shared_ptr<Serial> sched;
  asio::steady_timer poll_timer;  // armed and cancelled on sched
  // On a loop: the armed poll is the one of this generation (on sched).
  uint64_t poll_generation = 0;
  asio::steady_timer retention_timer;  // armed and cancelled on sched
  // The armed retention run is the one of this generation (on sched).
  uint64_t retention_generation = 0;
  std::vector<std::thread> threads;
  std::optional<asio::thread_pool> reads;  // unset on a loop

  std::unique_ptr<Journal> journal;
  std::unique_ptr<BranchClient> client;
  // Null without CoordinatorDeps::alerts; borrowed.
  AlertSink* alerts = nullptr;
  // Set with `alerts`.
  std::unique_ptr<AlertTracker> alert_tracker;

  // Held across a claim and the activation of what it claimed, so that
  // RunDue, which claims and then waits for idleness, cannot miss
  // transactions that the scheduler claimed but has not activated yet.
  Mutex claim_mu;
  // Transactions this process prepared, as written to the journal (the
  // global and the branches registered since), so that Submit and Abort need
  // not read them back. A hint only: a stale entry (another process changed
  // the transaction) fails the decision's compare-and-set and is reloaded.
  Mutex prepared_mu;
  std::unordered_map<std::string, TransWithBranches> prepared
      DTX_GUARDED_BY(prepared_mu);
  static constexpr std::size_t kMaxPrepared = 10000;

  // Coordinator::SetWorkflowResumer; copied for each resume, so that one
  // replaced meanwhile lives until its calls have answered.
  Mutex resumer_mu;
  std::shared_ptr<BranchClient> workflow_resumer DTX_GUARDED_BY(resumer_mu);

  Mutex mu;
  CondVar idle_cv{&mu};
  std::unordered_map<std::string, std::shared_ptr<TransRuntime>> active
      DTX_GUARDED_BY(mu);
  using Wakeup = std::pair<TimePoint, std::string>;
  std::priority_queue<Wakeup, std::vector<Wakeup>, std::greater<>> wakeups
      DTX_GUARDED_BY(mu);
  bool stopping DTX_GUARDED_BY(mu) = false;
  // Claims stopped at Options::max_in_memory; Forget polls again once the
  // transactions in memory are down to half of it.
  bool claims_held DTX_GUARDED_BY(mu) = false;
  // Set with `stopping`, read without the lock on the strands: branch
  // results from then on are cut short by Shutdown, not answers.
  std::atomic<bool> closing{false};
  bool shut_down DTX_GUARDED_BY(mu) = false;

  // Null without a registry. Last, so that it goes first: its callback
  // gauge reads `active`.
  std::unique_ptr<EngineMetrics> metrics;
  // Status changes made, by the status reached (Coordinator::Decisions).
  std::array<std::atomic<int64_t>, 5> decisions{};
  void CountDecision(TransStatus to) {
    decisions[static_cast<std::size_t>(to)].fetch_add(
        1, std::memory_order_relaxed);
  }
};

// A reply that runs its callback exactly once: the first Set wins. Every
// reply is registered with its engine until answered, so that Shutdown can
// answer those still open kUnavailable; one dropped unanswered (a closure
// destroyed without running) answers kUnavailable as well. Thread-safe.
template <typename T>
class ReplyOnce final : public OpenReply {
 public:
  ReplyOnce(Replies& replies, std::function<void(T)> done)
      : replies_(replies), done_(std::move(done)) {
    if (!replies_.Add(this)) Set(T(Replies::ShutDown()));
  }
  ~ReplyOnce() override {
    replies_.Remove(this);
    Set(T(Replies::ShutDown()));
  }
  ReplyOnce(const ReplyOnce&) = delete;
  ReplyOnce& operator=(const ReplyOnce&) = delete;

  void Set(T value) {
    if (!set_.exchange(true)) done_(std::move(value));
  }

 private:
  std::function<void()> Take() override {
    if (set_.exchange(true)) return nullptr;
    return [done = std::move(done_)] { done(T(Replies::ShutDown())); };
  }

  Replies& replies_;
  std::atomic<bool> set_{false};
  std::function<void(T)> done_;
};

template <typename T>
std::shared_ptr<ReplyOnce<T>> NewReply(Engine& engine,
                                       std::function<void(T)> done) {
  return std::make_shared<ReplyOnce<T>>(engine.replies, std::move(done));
}

}  // namespace dtx::internal

#endif  // DTX_LIB_COORDINATOR_IMPL_H_
