// Coordinator: dtm's transaction modes (TCC, SAGA, two-phase messages) running
// inside the host process. Every decision is written to the Journal before a
// branch call depends on it; branches are called through a BranchClient; an
// asio io_context (io_threads threads, a strand per transaction) drives the
// state machines; unfinished transactions are resumed from the journal when
// they are due, after a crash or restart as well.
//
//   dtx::CoordinatorDeps deps;
//   deps.journal = ...;        // e.g. SqliteJournal::Open(...)
//   deps.branch_client = ...;  // e.g. GrpcBranchClient::Create(...)
//   DTX_ASSIGN_OR_RETURN(auto dtm, dtx::Coordinator::Open(options,
//   std::move(deps))); dtx::Saga(*dtm, gid).Add(action, compensate,
//   payload).Submit();
//
// dtx::OpenEmbeddedCoordinator (dtx/embedded.h) wires the SQLite journal and
// the gRPC client from Options alone.
//
// Thread safety: thread-safe. Never destroy a coordinator from one of its own
// callbacks.

#ifndef DTX_COORDINATOR_H_
#define DTX_COORDINATOR_H_

#include "dtx/branch_client.h"
#include "dtx/clock.h"
#include "dtx/core_export.h"
#include "dtx/dtm_api.h"
#include "dtx/id_generator.h"
#include "dtx/journal.h"
#include "dtx/logger.h"
#include "dtx/options.h"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace dtx {

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

  // DtmApi.
  Result<std::string> NewGid() override;
  Status Prepare(const TransRequest& request) override;
  Status Submit(const TransRequest& request) override;
  Status Abort(const TransRequest& request) override;
  Status RegisterBranch(const BranchRegistration& branch) override;
  Result<TransWithBranches> Query(const std::string& gid) override;
  BranchClient& branch_client() override;
  std::string address() const override;

  // Administration.
  // A page of transactions, newest first.
  Result<ListPage> List(const ListQuery& query);
  // Fails an unfinished transaction without calling any branch (dtm's
  // forceStop). kAborted when it is already finished.
  Status ForceStop(const std::string& gid);
  // Makes an unfinished transaction due now (dtm's resetNextCronTime).
  Status RetryNow(const std::string& gid);

  // Scheduling.
  // Takes every transaction due at clock->Now() from the journal and processes
  // it until nothing more can be done now, then returns. The scheduler does
  // this by itself; tests with a FakeClock call it after moving the clock.
  Status RunDue();
  // Blocks until no transaction is being processed in memory.
  void WaitIdle();

  // Stops intake (new requests fail with kUnavailable), cancels branch calls
  // and timers, lets in-flight journal writes finish, and joins the threads.
  // Unfinished transactions stay in the journal and resume on the next Open.
  // Idempotent.
  void Shutdown();

  struct Impl;

 private:
  explicit Coordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_COORDINATOR_H_
