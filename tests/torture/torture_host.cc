// A service that embeds the coordinator (OpenEmbeddedCoordinator, a SQLite
// journal) and runs the crash torture's transactions itself, for
// torture_test.cc to SIGKILL at random and start again on the same journal.
//
//   torture_host <journal> <ledger host:port> <gid prefix> <threads> <seed>
//
// Each of `threads` threads runs transactions one after another until stdin
// closes, gids "<prefix>-<thread>-<n>". Before each it prints
// "plan <gid> <kind> <fails>", after it "ack <gid> <1|0> <status>" (1:
// acknowledged). A restarted host resumes, through its coordinator, what the
// killed one left unfinished in the journal.

#include "dtx/embedded.h"

#include "torture_workload.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

std::mutex out_mu;

void Line(const std::string& text) {
  std::lock_guard<std::mutex> lock(out_mu);
  const std::string line = text + "\n";
  if (write(STDOUT_FILENO, line.data(), line.size()) < 0) _exit(3);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr,
                 "usage: torture_host <journal> <ledger> <prefix> <threads> "
                 "<seed>\n");
    return 2;
  }
  const std::string ledger = argv[2];
  const std::string prefix = argv[3];
  const int threads = std::stoi(argv[4]);
  const unsigned seed = static_cast<unsigned>(std::stoul(argv[5]));
  dtx::Options options;
  // Short intervals, so that a run's retries and timeouts come quickly.
  options.retry.initial_interval = std::chrono::seconds(1);
  options.retry.max_interval = std::chrono::seconds(2);
  options.timeout_to_fail = std::chrono::seconds(4);
  options.request_timeout = std::chrono::seconds(2);
  options.cron_interval = std::chrono::seconds(1);
  dtx::EmbeddedOptions embedded;
  embedded.journal_path = argv[1];
  auto dtm_or = dtx::OpenEmbeddedCoordinator(options, embedded);
  if (!dtm_or.ok()) {
    std::fprintf(stderr, "torture_host: %s\n",
                 dtm_or.status().ToString().c_str());
    return 1;
  }
  dtx::Coordinator& dtm = **dtm_or;
  Line("host ready");
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(seed * 7919u + static_cast<unsigned>(t));
      for (int n = 0; !stop; ++n) {
        const std::string gid =
            prefix + "-" + std::to_string(t) + "-" + std::to_string(n);
        const dtx::testing::TortureTx tx = dtx::testing::DrawTortureTx(rng);
        Line("plan " + gid + " " + tx.kind + " " + (tx.fails ? "1" : "0"));
        const dtx::Status s =
            dtx::testing::RunTortureTx(dtm, ledger, gid, tx, rng);
        Line("ack " + gid + " " + (s.ok() ? "1" : "0") + " " + s.ToString());
        // A failure is often the ledger down: no flood of doomed attempts.
        if (!s.ok())
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
  stop = true;
  for (std::thread& w : workers) w.join();
  dtm.Shutdown();
  return 0;
}
