// dtx_simulate: runs the deterministic simulation (RunRandomSimulation) over
// many seeds, for as long as asked, with progress; or replays one seed.
//
//   dtx_simulate --seconds 3600            # an hour of seeds from 1, 2 threads
//   dtx_simulate --seeds 1000 --first-seed 5000
//   dtx_simulate --seed 1234 --log debug   # replay one run with the log
//
// Exits 1 at the first seed that breaks an invariant, after printing it
// (seed=N ...) and how to replay it; 0 when every run passed.

#include "dtx/logger.h"
#include "dtx/testing/random_workload.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: dtx_simulate [--seed N | --seeds N | --seconds S] "
               "[--first-seed N] [--threads N] [--transactions N] "
               "[--crashes N] [--coordinators N] [--no-faults] "
               "[--log debug|info|warn]\n");
}

}  // namespace

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  uint64_t first_seed = 1;
  int64_t seeds = -1;
  int64_t seconds = -1;
  int threads = 2;
  bool replay = false;
  dtx::testing::WorkloadOptions opts;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        Usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--seed") {
      first_seed = std::stoull(value());
      seeds = 1;
      replay = true;
    } else if (arg == "--seeds") {
      seeds = std::stoll(value());
    } else if (arg == "--first-seed") {
      first_seed = std::stoull(value());
    } else if (arg == "--seconds") {
      seconds = std::stoll(value());
    } else if (arg == "--threads") {
      threads = std::max(1, std::stoi(value()));
    } else if (arg == "--transactions") {
      opts.transactions = std::stoi(value());
    } else if (arg == "--crashes") {
      opts.crashes = std::stoi(value());
    } else if (arg == "--coordinators") {
      opts.coordinators = std::max(1, std::stoi(value()));
    } else if (arg == "--no-faults") {
      opts.faults = false;
    } else if (arg == "--log") {
      auto level = dtx::ParseLogLevel(value());
      if (!level.ok()) {
        std::fprintf(stderr, "dtx_simulate: %s\n",
                     level.status().ToString().c_str());
        return 2;
      }
      opts.log_level = *level;
    } else {
      Usage();
      return 2;
    }
  }
  if (seeds < 0 && seconds < 0) seeds = 100;
  if (replay) threads = 1;

  const auto start = Clock::now();
  const auto deadline = seconds >= 0 ? start + std::chrono::seconds(seconds)
                                     : Clock::time_point::max();
  std::atomic<uint64_t> next{first_seed};
  std::atomic<bool> failed{false};
  std::atomic<int64_t> runs{0}, transactions{0}, crashes{0}, calls{0};
  std::mutex print_mu;
  auto last_progress = start;

  auto worker = [&] {
    for (;;) {
      if (failed || Clock::now() >= deadline) return;
      const uint64_t seed = next.fetch_add(1);
      if (seeds >= 0 && seed >= first_seed + static_cast<uint64_t>(seeds))
        return;
      const dtx::testing::SimReport r =
          dtx::testing::RunRandomSimulation(seed, opts);
      ++runs;
      transactions += r.transactions;
      crashes += r.crashes;
      calls += r.branch_calls;
      std::lock_guard<std::mutex> lock(print_mu);
      if (!r.ok()) {
        if (!failed.exchange(true)) {
          std::printf(
              "FAILED %s\nreplay: dtx_simulate --seed %llu --log "
              "debug\n",
              r.Summary().c_str(), static_cast<unsigned long long>(seed));
        }
        return;
      }
      if (replay) std::printf("%s\n", r.Summary().c_str());
      const auto now = Clock::now();
      if (now - last_progress >= std::chrono::seconds(10)) {
        last_progress = now;
        std::printf(
            "%llds: runs=%lld transactions=%lld crashes=%lld calls=%lld\n",
            static_cast<long long>(
                std::chrono::duration_cast<std::chrono::seconds>(now - start)
                    .count()),
            static_cast<long long>(runs.load()),
            static_cast<long long>(transactions.load()),
            static_cast<long long>(crashes.load()),
            static_cast<long long>(calls.load()));
        std::fflush(stdout);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  const double secs =
      std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "%s: runs=%lld transactions=%lld crashes=%lld calls=%lld in %.1f s\n",
      failed ? "FAILED" : "ok", static_cast<long long>(runs.load()),
      static_cast<long long>(transactions.load()),
      static_cast<long long>(crashes.load()),
      static_cast<long long>(calls.load()), secs);
  return failed ? 1 : 0;
}
