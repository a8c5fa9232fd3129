// RunRandomSimulation: one seeded run of random SAGA, TCC and MSG
// transactions through the real coordinator under faults (a Simulation),
// then the checks of what must and must not have happened.
//
// A run: the application starts `transactions` transactions spread over the
// fault phase, through barrier-protected model services (saga steps whose
// action may fail for good, TCC branches tried by the application, messages
// whose local transaction commits or rolls back, answered to check-backs),
// with network and journal faults on and the coordinator crashed (or shut
// down cleanly) and restarted at random times and at scripted crash points
// around branch calls; the application sends requests again that a crash
// left unanswered, and an operator asks for retries now (RetryNow). Then faults
// stop and the run goes on until every transaction is final, within
// `settle_bound` of simulated time. The checks:
//   - every transaction in the journal is finished; none acknowledged to the
//     application is missing;
//   - every status sequence is legal for the mode (docs/semantics.md);
//   - no forbidden call: no confirm of a TCC that failed or before its
//     Submit, no cancel of one that succeeded, no compensation of a saga
//     that succeeded or of a step that could not have run, no saga action
//     before the previous one succeeded, no message step before the message
//     was committed, no effect on a service that its barrier would reject;
//   - every required call made: each step of a succeeded saga applied, each
//     step of a failed one without effect (compensated if applied); each
//     branch of a TCC confirmed or cancelled per its outcome; each step of a
//     delivered message applied; a message whose local transaction
//     committed delivered;
//   - Submit or Abort answered OK means that outcome.
// The report lists each violation with the seed and the gid; the same seed
// replays the same run exactly.
//
// Thread safety: each run is independent: runs on different threads may go
// at once.

#ifndef DTX_TESTING_RANDOM_WORKLOAD_H_
#define DTX_TESTING_RANDOM_WORKLOAD_H_

#include "dtx/logger.h"
#include "dtx/testing_export.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dtx::testing {

struct WorkloadOptions {
  // Transactions started per run, spread over the fault phase.
  int transactions = 100;
  std::chrono::milliseconds fault_phase{60'000};
  // Random coordinator crashes per run during the fault phase (each run
  // draws from 0 to twice this), plus the scripted crash points.
  int crashes = 2;
  // Probability per transaction of a scripted crash around one of its calls.
  double crash_point = 0.02;
  std::chrono::milliseconds max_downtime{3000};
  // Once faults stop, every transaction must be final within this.
  std::chrono::milliseconds settle_bound{600'000};
  // Coordinators at once on one shared journal (SimulationOptions::
  // coordinators); the application sends each request to one of those
  // running, and crashes pick one.
  int coordinators = 1;
  // Off: no network or journal faults (crashes still happen).
  bool faults = true;
  // The coordinator's log lines at this level and above, to stderr.
  LogLevel log_level = LogLevel::kOff;
};

struct DTX_TESTING_EXPORT SimReport {
  uint64_t seed = 0;
  int64_t transactions = 0;  // started by the application
  int64_t crashes = 0;
  int64_t clean_stops = 0;  // coordinator shut down cleanly and restarted
  int64_t steps = 0;        // closures the loop ran
  int64_t branch_calls = 0;
  int64_t journal_writes = 0;
  int64_t torn_writes = 0;
  std::chrono::milliseconds simulated{0};
  std::vector<std::string> violations;

  bool ok() const { return violations.empty(); }
  // "seed=N transactions=... crashes=... violations=..." and the first
  // violations.
  std::string Summary() const;
};

DTX_TESTING_EXPORT SimReport RunRandomSimulation(uint64_t seed,
                                                 const WorkloadOptions& opts);

}  // namespace dtx::testing

#endif  // DTX_TESTING_RANDOM_WORKLOAD_H_
