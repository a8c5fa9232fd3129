// workflow_transfer: the seed's transfer as a durable workflow, in one
// process: the embedded coordinator (its journal in <dir>/workflow.db), the
// account service (examples/account, its ledger in <dir>/accounts.db, under
// the branch barrier) on 127.0.0.1, and the workflow
//
//   step 01  TransOut of user 1   (rolled back by TransOutRevert)
//   step 02  TransIn of user <to> (rolled back by TransInRevert)
//
//   workflow_transfer --dir DIR [--gid G] [--amount 30] [--to 2]
//                     [--crash-after-step N]
//
// It runs the workflow as transaction G, waits until G has ended (its own
// run, or the coordinator resuming it) and prints the balances. With
// --crash-after-step N the process kills itself (SIGKILL) right after step N
// was recorded: run it again without the flag and the workflow resumes,
// replaying the recorded steps: each account moves exactly once.
// --to 99 (no such account) makes step 02 fail: step 01 is rolled back.
// scripts/workflow-demo.sh runs the kill-and-resume walk-through.

#include "dtx/embedded.h"
#include "dtx/workflow.h"

#include "account_service.h"
#include "api/trans/v1/trans.pb.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

namespace {

std::string Flag(int argc, char** argv, const std::string& name,
                 const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return fallback;
}

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = Flag(argc, argv, "--dir", "");
  if (dir.empty()) {
    std::fprintf(stderr,
                 "usage: workflow_transfer --dir DIR [--gid G] [--amount N] "
                 "[--to USER] [--crash-after-step N]\n");
    return 2;
  }
  const std::string gid = Flag(argc, argv, "--gid", "transfer-1");
  const int crash_after =
      std::stoi(Flag(argc, argv, "--crash-after-step", "0"));
  api::trans::v1::AdjustInfo out;
  out.set_userid(1);
  out.set_amount(std::stoll(Flag(argc, argv, "--amount", "30")));
  api::trans::v1::AdjustInfo in = out;
  in.set_userid(std::stoll(Flag(argc, argv, "--to", "2")));

  // The branch service: two accounts of 10000 on a new ledger.
  dtx::examples::AccountService accounts(dir + "/accounts.db");
  dtx::Status s = accounts.Init(2, 10000);
  if (!s.ok()) {
    std::fprintf(stderr, "accounts: %s\n", s.ToString().c_str());
    return 1;
  }
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&accounts);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "accounts: cannot listen\n");
    return 1;
  }
  // A new port each run: a replayed step is the same step whatever address
  // its service has now (docs/workflow.md#determinism).
  const std::string busi =
      "127.0.0.1:" + std::to_string(port) + "/api.trans.v1.Trans/";

  dtx::EmbeddedOptions embedded;
  embedded.journal_path = dir + "/workflow.db";
  auto dtm_or = dtx::OpenEmbeddedCoordinator(dtx::Options(), embedded);
  if (!dtm_or.ok()) {
    std::fprintf(stderr, "%s\n", dtm_or.status().ToString().c_str());
    return 1;
  }
  dtx::Coordinator& dtm = **dtm_or;
  dtx::Workflows workflows(dtm);
  dtx::WorkflowOptions options;
  // Resumed 2 s after it started (dtm's default is 10 s), then with back-off.
  options.trans.retry_interval = std::chrono::seconds(2);
  s = workflows.Register(
      "transfer",
      [&](dtx::Workflow& wf, const std::string&) -> dtx::Result<std::string> {
        auto moved = wf.Step()
                         .OnRollback([&](const dtx::WorkflowBranch& b) {
                           Say("  rollback of step 01: TransOutRevert");
                           return b.Call(busi + "TransOutRevert", out).status();
                         })
                         .Call(busi + "TransOut", out);
        if (!moved.ok()) return moved.status();
        Say("  step 01 done: TransOut of user 1");
        if (crash_after == 1) raise(SIGKILL);
        moved = wf.Step()
                    .OnRollback([&](const dtx::WorkflowBranch& b) {
                      Say("  rollback of step 02: TransInRevert");
                      return b.Call(busi + "TransInRevert", in).status();
                    })
                    .Call(busi + "TransIn", in);
        if (!moved.ok()) return moved.status();
        Say("  step 02 done: TransIn of user " + std::to_string(in.userid()));
        if (crash_after == 2) raise(SIGKILL);
        return std::string("moved ") + std::to_string(out.amount());
      },
      options);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }

  auto before = dtm.Query(gid);
  if (before.ok() && !IsFinished(before->trans.status)) {
    Say("workflow " + gid + " is " +
        std::string(ToString(before->trans.status)) + " with " +
        std::to_string(before->branches.size()) +
        " recorded step(s): the coordinator resumes it");
  } else if (!before.ok()) {
    Say("workflow " + gid + ": transfer " + std::to_string(out.amount()) +
        " from user 1 to user " + std::to_string(in.userid()));
    auto r = workflows.Execute("transfer", gid, std::string());
    Say("  Execute: " + (r.ok() ? *r : r.status().ToString()));
  }
  // Until it has ended (a resume takes up to the retry interval).
  for (int i = 0; i < 600; ++i) {
    auto t = dtm.Query(gid);
    if (t.ok() && IsFinished(t->trans.status)) {
      Say("workflow " + gid + " " + std::string(ToString(t->trans.status)) +
          (t->trans.rollback_reason.empty()
               ? ""
               : " (" + t->trans.rollback_reason + ")"));
      for (const dtx::Branch& b : t->branches) {
        Say("  recorded " + b.branch_id + " " + std::string(ToString(b.op)) +
            " " + std::string(ToString(b.status)));
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (const auto& [user, balance] : accounts.Balances()) {
    Say("balance of user " + std::to_string(user) + ": " +
        std::to_string(balance.first));
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
