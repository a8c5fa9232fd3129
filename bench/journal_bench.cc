// dtx_journal_bench: what group commit buys a durable journal.
//
// Each writer thread runs a closed loop over the journal writes of one saga's
// life (SaveNew of a transaction with two branch rows, UpdateBranches,
// ChangeStatus), waiting for each write to be acknowledged before the next.
// Every configuration runs on a fresh file for --seconds:
//   synchronous FULL and NORMAL
//   x one write per SQLite transaction (max_batch_writes = 1), and group commit
//   x 1, 16 and 64 concurrent writers (--writers).
// It prints writes/s and latency percentiles for each, then
//   RESULT journal_group_commit_<sync> value=<group commit, most writers>
//          baseline=<one per commit, same writers> ratio=<value/baseline>
//
//   dtx_journal_bench [--seconds 5] [--writers 1,16,64] [--dir /tmp]

#include "dtx/journal.h"
#include "dtx/storage/sqlite_journal.h"

#include "bench_util.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <stdlib.h>
#include <string>
#include <thread>
#include <vector>

namespace dtx::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct RunResult {
  double writes_per_second = 0;
  double p50_us = 0;
  double p99_us = 0;
  double writes_per_commit = 0;
};

RunResult Run(const std::string& dir, SqliteJournalOptions::Sync sync,
              bool group, int writers, double seconds) {
  const std::string path = dir + "/bench.db";
  for (const char* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(path + suffix);
  SqliteJournalOptions options;
  options.path = path;
  options.synchronous = sync;
  options.max_batch_writes = group ? 1024 : 1;
  auto journal_or = SqliteJournal::Open(options);
  if (!journal_or.ok()) {
    std::fprintf(stderr, "open: %s\n", journal_or.status().ToString().c_str());
    std::exit(1);
  }
  SqliteJournal& journal = **journal_or;

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> writes{0};
  SharedLatencies shared;
  std::vector<std::thread> threads;
  const std::string payload(64, 'p');
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      Latencies mine;
      auto timed = [&](const std::function<void(WriteDone)>& start) {
        const auto t0 = Clock::now();
        Status s = WaitForWrite(start);
        mine.Add(Clock::now() - t0);
        if (!s.ok()) {
          std::fprintf(stderr, "write: %s\n", s.ToString().c_str());
          std::exit(1);
        }
        writes.fetch_add(1, std::memory_order_relaxed);
      };
      for (int i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const std::string gid =
            "b" + std::to_string(w) + "-" + std::to_string(i);
        GlobalTrans t;
        t.gid = gid;
        t.trans_type = TransType::kSaga;
        t.status = TransStatus::kSubmitted;
        std::vector<Branch> branches(2);
        branches[0].branch_id = branches[1].branch_id = "01";
        branches[0].op = BranchOp::kCompensate;
        branches[1].op = BranchOp::kAction;
        branches[0].url = branches[1].url = "localhost:9000/busi.Busi/TransOut";
        branches[0].bin_data = branches[1].bin_data = payload;
        timed([&](WriteDone done) {
          journal.SaveNew(t, branches, std::move(done));
        });
        timed([&](WriteDone done) {
          journal.UpdateBranches(
              {gid,
               TransStatus::kSubmitted,
               {{"01", BranchOp::kAction, BranchStatus::kSucceed}}},
              std::move(done));
        });
        StatusChange c;
        c.gid = gid;
        c.from = TransStatus::kSubmitted;
        c.to = TransStatus::kSucceed;
        timed(
            [&](WriteDone done) { journal.ChangeStatus(c, std::move(done)); });
      }
      shared.Merge(mine);
    });
  }
  const auto start = Clock::now();
  const auto before = journal.stats();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t done_writes = writes.load();
  const auto after = journal.stats();
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (auto& t : threads) t.join();
  journal.Close();

  Latencies all = shared.Take();
  RunResult r;
  r.writes_per_second = static_cast<double>(done_writes) / elapsed;
  r.p50_us = all.Percentile(0.50);
  r.p99_us = all.Percentile(0.99);
  const uint64_t commits = after.commits - before.commits;
  r.writes_per_commit =
      commits > 0 ? static_cast<double>(after.writes - before.writes) /
                        static_cast<double>(commits)
                  : 0;
  return r;
}

int Main(int argc, char** argv) {
  RefuseUnknownFlags(argc, argv, "dtx_journal_bench",
                     {"--seconds", "--writers", "--dir"}, {});
  const double seconds = std::stod(Flag(argc, argv, "--seconds", "5"));
  const std::vector<int> writer_counts =
      ParseIntList(Flag(argc, argv, "--writers", "1,16,64"));
  std::string dir = Flag(argc, argv, "--dir", "");
  std::string made_dir;
  if (dir.empty()) {
    dir = made_dir = FreshDir();
  }
  std::printf(
      "dtx_journal_bench: %.1f s per run, write mix = SaveNew(+2 branches), "
      "UpdateBranches, ChangeStatus; files in %s\n\n",
      seconds, dir.c_str());
  std::printf("%-7s %-16s %8s %12s %10s %10s %14s\n", "sync", "commit",
              "writers", "writes/s", "p50 us", "p99 us", "writes/commit");
  std::fflush(stdout);

  for (auto sync : {SqliteJournalOptions::Sync::kFull,
                    SqliteJournalOptions::Sync::kNormal}) {
    const char* sync_name =
        sync == SqliteJournalOptions::Sync::kFull ? "full" : "normal";
    std::map<std::pair<bool, int>, RunResult> results;
    for (bool group : {false, true}) {
      for (int writers : writer_counts) {
        RunResult r = Run(dir, sync, group, writers, seconds);
        results[{group, writers}] = r;
        std::printf("%-7s %-16s %8d %12.0f %10.0f %10.0f %14.1f\n", sync_name,
                    group ? "group" : "one-per-commit", writers,
                    r.writes_per_second, r.p50_us, r.p99_us,
                    r.writes_per_commit);
        std::fflush(stdout);
      }
    }
    const int most = writer_counts.back();
    PrintResult(std::string("journal_group_commit_") + sync_name,
                results[{true, most}].writes_per_second,
                results[{false, most}].writes_per_second);
    std::printf("\n");
  }
  if (!made_dir.empty()) std::filesystem::remove_all(made_dir);
  return 0;
}

}  // namespace
}  // namespace dtx::bench

int main(int argc, char** argv) { return dtx::bench::Main(argc, argv); }
