// Simulation: the real dtx::Coordinator on a SimLoop, with a SimJournal and
// a SimService, crashed and restarted at will, all from one seed. A test
// drives it like a user's service drives dtx (through coordinator(), a
// DtmApi), injects faults, crashes the coordinator at any point (Crash, or a
// ScriptRule's crash point), and runs simulated time forward; a minute of
// retries and timeouts takes milliseconds.
//
//   dtx::testing::SimulationOptions opts;
//   opts.seed = 42;
//   dtx::testing::Simulation sim(opts);
//   sim.service().Handle("svc/Debit", ...);
//   sim.service().Handle("svc/Refund", ...);
//   ASSERT_TRUE(sim.Start().ok());
//   dtx::TransRequest saga = ...;
//   sim.coordinator()->SubmitAsync(saga, [](dtx::Status) {});
//   sim.RunFor(std::chrono::milliseconds(5));
//   sim.CrashAndRestart(std::chrono::seconds(1));
//   ASSERT_TRUE(sim.RunUntilAllFinished(std::chrono::minutes(5)));
//
// A crash kills the coordinator's process (SimLoop::Process::Kill): its
// queued closures, its unanswered branch calls and its journal writes not
// yet committed die with it (SimJournal::Crash may commit a prefix of them,
// unacknowledged), and the Coordinator object is destroyed. Requests it had
// not answered get kUnavailable. A restart opens a new coordinator on the
// same journal, which resumes what is unfinished when due.
//
// Callbacks of the coordinator (SubmitAsync's `done`, ...) run on the loop,
// inside the coordinator's closures: they must not call the coordinator
// directly; post the next step to app() instead.
//
// Thread safety: thread-compatible: one thread drives the simulation.

#ifndef DTX_TESTING_SIMULATION_H_
#define DTX_TESTING_SIMULATION_H_

#include "dtx/coordinator.h"
#include "dtx/logger.h"
#include "dtx/options.h"
#include "dtx/testing/sim_journal.h"
#include "dtx/testing/sim_loop.h"
#include "dtx/testing/sim_service.h"
#include "dtx/testing_export.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dtx::testing {

// Coordinator options suited to a simulation: short retry intervals and
// timeouts, so that a run reaches every path within simulated minutes.
DTX_TESTING_EXPORT Options SimCoordinatorOptions();

struct SimulationOptions {
  uint64_t seed = 1;
  Options coordinator = SimCoordinatorOptions();
  JournalFaults journal;
  NetworkFaults network;
  // Coordinators running at once on the one journal. More than one makes
  // the journal shared (Journal::shared(), as PostgreSQL's is): leases,
  // fences and take-overs decide who works on what (docs/journal.md).
  int coordinators = 1;
  // The coordinator's log lines at this level and above go to stderr, each
  // after the simulated time ("[sim +12.345s] ..."); kOff: none.
  LogLevel log_level = LogLevel::kOff;
};

class DTX_TESTING_EXPORT Simulation {
 public:
  explicit Simulation(SimulationOptions options);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  SimLoop& loop() { return loop_; }
  SimRandom& random() { return random_; }
  SimJournal& journal() { return journal_; }
  SimService& service() { return service_; }
  // The process of the application that uses the coordinator: post to it
  // what a callback wants done next.
  const std::shared_ptr<SimLoop::Process>& app() const { return app_; }
  // A branch client for the application (TCC tries, say), over the same
  // simulated network.
  BranchClient& app_client() { return *app_client_; }

  // Opens coordinator `i` (0 to coordinators - 1) on the journal.
  // kFailedPrecondition when it runs.
  Status Start(int i = 0);
  // Coordinator `i`; null between a crash and the restart.
  Coordinator* coordinator(int i = 0) {
    return slots_[Slot(i)].coordinator.get();
  }
  bool running(int i = 0) const {
    return slots_[Slot(i)].coordinator != nullptr;
  }
  int coordinators() const { return static_cast<int>(slots_.size()); }
  // The index of the coordinator whose process has this name (a
  // SentCall::caller), or -1.
  int CoordinatorNamed(const std::string& process) const;

  // Kills coordinator `i` now (see the top of this file). Safe from a
  // closure of the loop (a service's handler, a timer), never from one of
  // the coordinator's own callbacks. Does nothing when it does not run. A
  // ScriptRule's crash point crashes the coordinator that made the call.
  void Crash(int i = 0);
  // Crash, and Start again `downtime` later (simulated).
  void CrashAndRestart(std::chrono::milliseconds downtime, int i = 0);
  // Shuts coordinator `i` down cleanly (Coordinator::Shutdown: queued
  // journal writes commit).
  void Stop(int i = 0);
  int64_t crashes() const { return crashes_; }
  int64_t starts() const { return starts_; }

  // Turns every random fault off (scripts stay).
  void StopFaults();

  void RunFor(std::chrono::milliseconds d) { loop_.RunFor(d); }
  // Runs until every transaction in the journal is finished and no write is
  // queued, for at most `bound` of simulated time; returns whether so. A
  // coordinator must be running (or be restarted by a timer) for anything to
  // finish.
  bool RunUntilAllFinished(std::chrono::milliseconds bound);
  // Unfinished transactions in the durable journal.
  int64_t Unfinished() const;

 private:
  SimulationOptions options_;
  SimLoop loop_;
  SimRandom random_;
  SimJournal journal_;
  SimService service_;
  std::shared_ptr<SimLoop::Process> app_;
  std::unique_ptr<BranchClient> app_client_;
  std::shared_ptr<Logger> logger_;           // null: none
  std::shared_ptr<SimLoop::Process> world_;  // restarts run here
  struct Running {
    std::shared_ptr<SimLoop::Process> process;
    std::unique_ptr<Coordinator> coordinator;
  };
  std::size_t Slot(int i) const;
  std::vector<Running> slots_;
  int64_t crashes_ = 0;
  int64_t starts_ = 0;
};

}  // namespace dtx::testing

#endif  // DTX_TESTING_SIMULATION_H_
