// Coordinator: dtm's transaction modes (TCC, SAGA, two-phase messages) running
// inside the host process. Every decision is written to the Journal before a
// branch call depends on it; branches are called through a BranchClient; an
// asio io_context (io_threads threads, a strand per transaction) drives the
// state machines; unfinished transactions are resumed from the journal when
// they are due, after a crash or restart as well.
//
// clang-format off
//   dtx::CoordinatorDeps deps;
//   deps.journal = ...;        // e.g. SqliteJournal::Open(...)
//   deps.branch_client = ...;  // e.g. GrpcBranchClient::Create(...)
//   DTX_ASSIGN_OR_RETURN(auto dtm, dtx::Coordinator::Open(options, std::move(deps)));
//   dtx::Status s = dtx::Saga(*dtm, gid).Add(action, compensate, payload).Submit();
// clang-format on
//
// dtx::OpenEmbeddedCoordinator (dtx/embedded.h) wires the SQLite journal and
// the gRPC client from Options alone.
//
// Every request has a callback form (DtmApi: SubmitAsync, ...; ListAsync,
// ...), which never blocks and never holds a thread while it waits, and a
// blocking form that waits for it. Every callback runs exactly once; requests
// still unanswered when the coordinator shuts down get kUnavailable.
//
// Thread safety: thread-safe. Never destroy a coordinator from one of its own
// callbacks.

#ifndef DTX_COORDINATOR_H_
#define DTX_COORDINATOR_H_

#include "dtx/branch_client.h"
#include "dtx/clock.h"
#include "dtx/core_export.h"
#include "dtx/dtm_api.h"
#include "dtx/event_loop.h"
#include "dtx/id_generator.h"
#include "dtx/journal.h"
#include "dtx/logger.h"
#include "dtx/options.h"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace dtx {

class AlertSink;
class MetricsRegistry;

namespace internal {
struct Engine;  // lib/src/coordinator_impl.h
}  // namespace internal

// What a coordinator runs on. Owned collaborators are unique_ptrs; the clock
// is borrowed.
struct CoordinatorDeps {
  std::unique_ptr<Journal> journal;             // required
  std::unique_ptr<BranchClient> branch_client;  // required
  // Borrowed; must outlive the coordinator. Null: SystemClock().
  const Clock* clock = nullptr;
  // Null: no logging.
  std::shared_ptr<Logger> logger;
  // Null: NewTimeOrderedIdGenerator().
  std::unique_ptr<IdGenerator> ids;
  // Borrowed; must outlive the coordinator. The coordinator registers dtm's
  // transaction and branch metrics in it (docs/operations.md). Null: none.
  MetricsRegistry* metrics = nullptr;
  // Borrowed; must outlive the coordinator. Branches that keep failing are
  // reported to it (Options::alert_retry_limit). Null: no alerts.
  AlertSink* alerts = nullptr;
  // Borrowed; must outlive the coordinator. Set: the coordinator starts no
  // thread (Options::io_threads is ignored) and runs every step as a closure
  // of this loop, on the thread that drives it; its scheduler waits by
  // queuing a closure for a time of `clock` (dtx/event_loop.h). For
  // deterministic simulation (dtx/testing/simulation.h, docs/testing.md).
  // The journal's Claim and Flush are then waited for on that thread: the
  // journal completes them on a thread of its own or before returning.
  // RunDue then answers kFailedPrecondition; WaitIdle and the blocking
  // DtmApi forms would wait for the loop and must not be called on its
  // thread.
  // Null: io_threads threads and a read pool.
  EventLoop* loop = nullptr;
};

class DTX_CORE_EXPORT Coordinator final : public DtmApi {
 public:
  // Validates `options`, starts the io_context threads and begins resuming
  // due transactions from the journal. kInvalidArgument for bad options or a
  // missing dependency.
  static Result<std::unique_ptr<Coordinator>> Open(Options options,
                                                   CoordinatorDeps deps);

  // Calls Shutdown().
  ~Coordinator() override;
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // DtmApi: the callback forms (the blocking forms wrap them).
  void NewGidAsync(ResultCallback<std::string> done) override;
  void PrepareAsync(TransRequest request, StatusCallback done) override;
  void PrepareWorkflowAsync(TransRequest request,
                            ResultCallback<TransWithBranches> done) override;
  void SubmitAsync(TransRequest request, StatusCallback done) override;
  void AbortAsync(TransRequest request, StatusCallback done) override;
  void RegisterBranchAsync(BranchRegistration branch,
                           StatusCallback done) override;
  void QueryAsync(std::string gid,
                  ResultCallback<TransWithBranches> done) override;
  BranchClient& branch_client() override;
  std::string address() const override;

  // Administration. Every outcome already reported to a caller is visible
  // to List and Stats (they wait for the journal's queued writes first).
  // A page of transactions, newest first. query.limit 0 means
  // kDefaultListLimit (100); a larger limit than kMaxListLimit (1000) is
  // clamped to it (page on with next_cursor).
  void ListAsync(ListQuery query, ResultCallback<ListPage> done);
  Result<ListPage> List(const ListQuery& query);
  // Transactions per status and the unfinished summary (as of the clock's
  // now). kUnimplemented when the journal cannot count.
  void StatsAsync(ResultCallback<TransStats> done);
  Result<TransStats> Stats();
  // How many status changes this coordinator made since it opened, by the
  // status reached (StatusCounts indexed by TransStatus): `succeed` and
  // `failed` count transactions it finished, `aborting` rollbacks it began.
  // Only counters in memory: any thread, never blocks. A host's periodic
  // summary takes differences (dtx-server's "summary" log line).
  StatusCounts Decisions() const;
  // Fails an unfinished transaction without calling any branch (dtm's
  // forceStop). kNotFound for an unknown gid, kAborted when it is already
  // finished.
  void ForceStopAsync(std::string gid, StatusCallback done);
  Status ForceStop(const std::string& gid);
  // Runs an unfinished transaction now (dtm's resetNextCronTime, and more):
  // in memory, its branches blocked by failed calls are called again at
  // once; otherwise it is made due now in the journal and the scheduler
  // takes it at once (respecting another coordinator's lease). The next
  // failure backs off from the current interval. kNotFound for an unknown
  // gid, kAborted when it is finished.
  void RetryNowAsync(std::string gid, StatusCallback done);
  Status RetryNow(const std::string& gid);

  // Scheduling.
  // Takes every transaction due at clock->Now() from the journal and processes
  // it until nothing more can be done now, then returns. The scheduler does
  // this by itself; tests with a FakeClock call it after moving the clock.
  Status RunDue();
  // Runs retention now (Options::finished_data_expire, data_expire) over
  // the whole journal, at clock->Now(), and returns how many finished
  // transactions it removed; 0 when both rules are off. The coordinator
  // does this by itself every retention_interval; for tools and tests with
  // a FakeClock.
  Result<std::size_t> PurgeFinished();
  // Blocks until no transaction is being processed in memory.
  void WaitIdle();

  // Workflows (dtx/workflow.h): where this coordinator resumes a due
  // prepared workflow that has no callback URL (one started in this process
  // through dtx::Workflows, which sets itself here). The resume is a call
  // of `resumer` with the transaction's metadata (op: the workflow's name)
  // and the workflow's input as payload; its answer's class says whether
  // the workflow ended or is to be resumed again later (BranchOutcome).
  // Null: such workflows wait (and are retried with back-off) until one is
  // set. Any thread.
  void SetWorkflowResumer(std::shared_ptr<BranchClient> resumer);

  // Stops intake (new requests fail with kUnavailable), cancels branch calls
  // and timers, lets in-flight journal writes finish, and joins the threads.
  // Unfinished transactions stay in the journal and resume on the next Open.
  // Idempotent.
  void Shutdown();

 private:
  explicit Coordinator(std::unique_ptr<internal::Engine> engine);
  std::unique_ptr<internal::Engine> engine_;
};

}  // namespace dtx

#endif  // DTX_COORDINATOR_H_
