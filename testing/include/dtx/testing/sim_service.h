// SimService: branch services in the simulation's process, and the network
// between them and their callers. A handler (a function of the request that
// returns the answer) serves a URL; scripts override what a given call of a
// given gid, branch and op does (answer, delay, crash point); random faults
// drop requests, delay them (past the caller's deadline too, the call still
// reaching the service later), deliver them twice, lose replies after the
// handler ran, and answer errors, ONGOING or FAILURE without reaching the
// handler. Every call sent and every call that reached a service is recorded
// for the simulation's checks.
//
//   service.Handle("svc/Transfer", [&](const dtx::BranchRequest& r) {
//     ledger += 10;
//     return dtx::testing::SimAnswer(dtx::BranchOutcome::kSuccess);
//   });
//   dtx::testing::ScriptRule rule;
//   rule.gid = "g1";
//   rule.op = dtx::BranchOp::kAction;
//   rule.crash = dtx::testing::CrashPoint::kAfterApply;  // reply never comes
//   service.Script(rule);
//
// A handler registered for U serves U and every URL that starts with "U/".
// Calls travel as closures of the network's own process on the SimLoop: a
// call on the wire still arrives after its coordinator crashed; its reply is
// then dropped.
//
// Thread safety: thread-compatible: used from the loop's thread only.

#ifndef DTX_TESTING_SIM_SERVICE_H_
#define DTX_TESTING_SIM_SERVICE_H_

#include "dtx/branch_client.h"
#include "dtx/model.h"
#include "dtx/testing/sim_loop.h"
#include "dtx/testing_export.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dtx::testing {

// What a service answers, with a Status of the matching code (kFailure is
// ABORTED, kOngoing FAILED_PRECONDITION, kTransient UNAVAILABLE).
DTX_TESTING_EXPORT BranchResult SimAnswer(BranchOutcome outcome,
                                          std::string message = "");

// Where a scripted call crashes the coordinator (Simulation::Crash, through
// SimService::set_crash_handler).
enum class CrashPoint {
  kNone,
  kBeforeApply,  // as the call reaches the service: the handler never runs
  kAfterApply,   // after the handler ran: the reply never arrives
};

// Which calls a rule changes, and how. Empty fields match any call.
struct ScriptRule {
  std::string gid;
  std::string branch_id;
  std::optional<BranchOp> op;
  // The rule applies to this many matching calls, then lapses; 0: all.
  int times = 1;
  // Set: answered so without calling the handler.
  std::optional<BranchOutcome> answer;
  std::string message;
  // Added to the time the request takes to reach the service.
  std::chrono::milliseconds delay{0};
  CrashPoint crash = CrashPoint::kNone;
};

// Random faults, each a probability per call.
struct NetworkFaults {
  double drop = 0;        // the request is lost: the caller's deadline ends it
  double lose_reply = 0;  // the handler runs, the reply is lost
  double duplicate = 0;   // the request reaches the service twice
  double error = 0;       // UNAVAILABLE without reaching the handler
  double ongoing = 0;     // ONGOING without reaching the handler
  double failure = 0;     // FAILURE without reaching the handler
  // Each way; a call that takes longer than its deadline ends with
  // DEADLINE_EXCEEDED for the caller but still reaches the service.
  std::chrono::milliseconds delay_min{0};
  std::chrono::milliseconds delay_max{20};
  double slow = 0;  // the request takes up to slow_max instead
  std::chrono::milliseconds slow_max{5000};
};

// One call as its caller sent it.
struct SentCall {
  int64_t id = 0;
  TimePoint time{};
  std::string url;
  TransInfo info;
  std::string caller;  // the process's name
};

// One call as it reached a service (twice for a duplicate).
struct ArrivedCall {
  int64_t id = 0;  // the SentCall's
  TimePoint time{};
  std::string url;
  TransInfo info;
  BranchResult result;
  bool handled = false;  // the handler ran (not answered by a fault/script)
};

class DTX_TESTING_EXPORT SimService {
 public:
  using Handler = std::function<BranchResult(const BranchRequest&)>;

  // `loop` and `random` must outlive the service and its clients.
  SimService(SimLoop& loop, SimRandom& random);
  ~SimService();
  SimService(const SimService&) = delete;
  SimService& operator=(const SimService&) = delete;

  void Handle(std::string url, Handler handler);
  void Script(ScriptRule rule);
  void ClearScripts() { scripts_.clear(); }
  void set_faults(const NetworkFaults& faults) { faults_ = faults; }
  const NetworkFaults& faults() const { return faults_; }
  // What a CrashPoint does, given the name of the caller's process
  // (Simulation sets it to crash that coordinator).
  void set_crash_handler(std::function<void(const std::string&)> crash) {
    crash_ = std::move(crash);
  }
  // The deadline of calls whose request has none.
  void set_default_timeout(std::chrono::milliseconds t) {
    default_timeout_ = t;
  }

  // A client for callers running in `process`: replies to a killed process
  // are dropped.
  std::unique_ptr<BranchClient> ClientFor(
      std::shared_ptr<SimLoop::Process> process);

  const std::vector<SentCall>& sent() const { return sent_; }
  const std::vector<ArrivedCall>& arrived() const { return arrived_; }
  // Calls of (gid, branch_id, op) that reached the handler.
  int64_t Handled(const std::string& gid, const std::string& branch_id,
                  BranchOp op) const;

 private:
  class Client;
  struct InFlight;
  const Handler* Find(const std::string& url) const;
  void Send(std::shared_ptr<InFlight> call);
  void Arrive(std::shared_ptr<InFlight> call, CrashPoint crash,
              std::optional<BranchOutcome> scripted, std::string message,
              bool faults, bool duplicate);
  void Answer(const std::shared_ptr<InFlight>& call, BranchResult result);

  SimLoop& loop_;
  SimRandom& random_;
  std::shared_ptr<SimLoop::Process> net_;
  std::map<std::string, Handler> handlers_;
  std::vector<ScriptRule> scripts_;
  NetworkFaults faults_;
  std::function<void(const std::string&)> crash_;
  std::chrono::milliseconds default_timeout_{3000};
  int64_t next_id_ = 0;
  std::vector<SentCall> sent_;
  std::vector<ArrivedCall> arrived_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTING_SIM_SERVICE_H_
