// Builds against the installed package as a service's own test would:
// dtx::testing runs a two-step transfer saga through the real coordinator in
// a simulation, crashes the coordinator right after step 02's service did its
// work, restarts it, and checks that the saga, timed out, compensated both
// steps. Prints "simulation: <gid> failed, compensated 2 of 2 steps".

#include "dtx/testing/simulation.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

int main() {
  using std::chrono::milliseconds;
  dtx::testing::SimulationOptions opts;
  opts.seed = 42;
  opts.network.delay_max = milliseconds(5);
  dtx::testing::Simulation sim(opts);

  std::map<std::string, int> done, undone;
  sim.service().Handle("bank/Debit", [&](const dtx::BranchRequest& r) {
    if (undone[r.info.branch_id] == 0) done[r.info.branch_id] = 1;
    return dtx::testing::SimAnswer(dtx::BranchOutcome::kSuccess);
  });
  sim.service().Handle("bank/Refund", [&](const dtx::BranchRequest& r) {
    undone[r.info.branch_id] = 1;
    return dtx::testing::SimAnswer(dtx::BranchOutcome::kSuccess);
  });
  dtx::testing::ScriptRule crash;
  crash.gid = "t1";
  crash.branch_id = "02";
  crash.op = dtx::BranchOp::kAction;
  crash.crash = dtx::testing::CrashPoint::kAfterApply;
  sim.service().Script(crash);

  if (!sim.Start().ok()) return 1;
  dtx::TransRequest saga;
  saga.gid = "t1";
  saga.trans_type = dtx::TransType::kSaga;
  saga.steps = {{"bank/Debit", "bank/Refund"}, {"bank/Debit", "bank/Refund"}};
  saga.payloads = {"", ""};
  saga.options.timeout_to_fail = std::chrono::seconds(1);
  dtx::Status submitted = dtx::UnavailableError("not answered");
  sim.coordinator()->SubmitAsync(saga, [&](dtx::Status s) { submitted = s; });
  sim.RunFor(std::chrono::seconds(1));
  if (!submitted.ok() || sim.running() || done["02"] != 1) {
    std::fprintf(stderr, "the scripted crash did not happen: %s\n",
                 submitted.ToString().c_str());
    return 1;
  }
  if (!sim.Start().ok()) return 1;
  if (!sim.RunUntilAllFinished(std::chrono::minutes(5))) {
    std::fprintf(stderr, "the saga did not finish\n");
    return 1;
  }
  const auto& t = sim.journal().rows().at("t1").trans;
  const int compensated = undone["01"] + undone["02"];
  std::printf("simulation: %s %s, compensated %d of 2 steps\n", t.gid.c_str(),
              std::string(dtx::ToString(t.status)).c_str(), compensated);
  return t.status == dtx::TransStatus::kFailed && compensated == 2 ? 0 : 1;
}
