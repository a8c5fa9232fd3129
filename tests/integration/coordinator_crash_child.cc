// A process running the embedded coordinator, for the crash tests: it runs
// transactions against the test's branch service until the test kills it.
//
//   coordinator_crash_child <journal> <busi host:port>
//       <saga|saga-fail|tcc|msg|workflow|workflow-fail|workflow-ledger>
//       <gid prefix> <count>
//
// workflow: four_step_workflow.h's (workflow-fail: its step 3 fails;
// workflow-ledger: its ledger form, <busi> being a LedgerService).
//
// Prints "done <gid> <status>" after each transaction, then waits for stdin
// to close.

#include "dtx/embedded.h"
#include "dtx/transaction.h"
#include "dtx/workflow.h"

#include "four_step_workflow.h"

#include <cstdio>
#include <string>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr,
                 "usage: coordinator_crash_child <journal> <busi> <mode> "
                 "<prefix> <n>\n");
    return 2;
  }
  const std::string busi = std::string(argv[2]) + "/busi.Busi/";
  const std::string mode = argv[3];
  const std::string prefix = argv[4];
  const int count = std::stoi(argv[5]);
  dtx::EmbeddedOptions embedded;
  embedded.journal_path = argv[1];
  auto dtm_or = dtx::OpenEmbeddedCoordinator(dtx::Options(), embedded);
  if (!dtm_or.ok()) {
    std::fprintf(stderr, "%s\n", dtm_or.status().ToString().c_str());
    return 1;
  }
  dtx::Coordinator& dtm = **dtm_or;
  dtx::Workflows workflows(dtm);
  if (mode == "workflow" || mode == "workflow-fail") {
    dtx::Status s = workflows.Register(
        "four",
        dtx::testing::FourStepWorkflow(busi, mode == "workflow" ? 0 : 3));
    if (!s.ok()) return 1;
  } else if (mode == "workflow-ledger") {
    // argv[2] is a LedgerService: its URLs are "<address>/dtx.test.Ledger/".
    dtx::Status s = workflows.Register(
        "four", dtx::testing::FourStepLedgerWorkflow(std::string(argv[2]) +
                                                     "/dtx.test.Ledger/"));
    if (!s.ok()) return 1;
  }
  for (int i = 0; i < count; ++i) {
    const std::string gid = prefix + std::to_string(i);
    dtx::Status s;
    if (mode == "saga" || mode == "saga-fail") {
      s = dtx::Saga(dtm, gid)
              .Add(busi + "Action1", busi + "Compensate1", "p1")
              .Add(busi + (mode == "saga" ? "Action2" : "FailingAction2"),
                   busi + "Compensate2", "p2")
              .WaitResult(true)
              .Submit();
    } else if (mode == "tcc") {
      dtx::TransOptions o;
      o.wait_result = true;
      s = dtx::TccGlobalTransaction(dtm, gid, o, [&](dtx::Tcc& tcc) {
        DTX_RETURN_IF_ERROR(tcc.CallBranch(
            "p1", busi + "Try1", busi + "Confirm1", busi + "Cancel1"));
        return tcc.CallBranch("p2", busi + "Try2", busi + "Confirm2",
                              busi + "Cancel2");
      });
    } else if (mode == "msg") {
      s = dtx::Msg(dtm, gid)
              .Add(busi + "Action1", "p1")
              .Add(busi + "Action2", "p2")
              .WaitResult(true)
              .DoAndSubmit(busi + "QueryPrepared",
                           [] { return dtx::Status::Ok(); });
    } else if (mode == "workflow" || mode == "workflow-fail" ||
               mode == "workflow-ledger") {
      s = workflows.Execute("four", gid, "p").status();
    } else {
      std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
      return 2;
    }
    const std::string line = "done " + gid + " " + s.ToString() + "\n";
    if (write(STDOUT_FILENO, line.data(), line.size()) < 0) return 3;
  }
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
  return 0;
}
