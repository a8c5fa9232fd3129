// dtx_big_journal_bench: the embedded coordinator on a large journal
// (issue #17: "a journal that stays fast when large").
//
//   full     2-step sagas (WaitResult, gRPC branches in another process) at
//            --inflight in flight on a journal that already holds --finished
//            finished sagas (1,000,000 by default, each with its four branch
//            rows), against the same loop on an empty journal: alternating
//            rounds, the ratio the median of the rounds' ratios. The same
//            calls and writes on both sides; only the journal's size differs.
//   resume   a journal holding --pending unfinished sagas (100,000 and 1,000
//            by default), all due, opened by a fresh process: the time until
//            every one has succeeded and that process's peak RSS. The 1,000
//            run is the baseline: peak memory should grow with what is in
//            flight, not with what is pending. Throughput is compared with
//            the "full" phase's empty-journal rate.
//
//   dtx_big_journal_bench [--phase full,resume] [--finished 1000000]
//                         [--pending 1000,100000] [--seconds 12]
//                         [--rounds 4] [--inflight 64] [--dir DIR]
//
// The journals are built with the journal's own API (SaveNew, group
// committed, synchronous=NORMAL while filling) in --dir (a fresh temporary
// directory by default, removed at the end); the measured runs use the
// coordinator's defaults (FULL). RESULT lines as dtx_bench's.

#include "dtx/embedded.h"
#include "dtx/storage/sqlite_journal.h"
#include "dtx/transaction.h"

#include "bench_util.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace dtx::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

double Seconds(SteadyClock::time_point since) {
  return std::chrono::duration<double>(SteadyClock::now() - since).count();
}

int64_t PeakRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// Writes `count` sagas of two steps into the journal at `path`: finished
// (succeed, every row succeeded) or pending (submitted and due now, every
// row prepared, calling `url`). In windows of 4,096 writes, group committed.
void Fill(const std::string& path, int64_t count, bool finished,
          const std::string& url, const char* prefix) {
  SqliteJournalOptions o;
  o.path = path;
  o.synchronous = SqliteJournalOptions::Sync::kNormal;
  auto journal = SqliteJournal::Open(o);
  if (!journal.ok()) {
    std::fprintf(stderr, "dtx_big_journal_bench: %s\n",
                 journal.status().ToString().c_str());
    std::exit(1);
  }
  const TimePoint now = SystemClock().Now();
  const auto start = SteadyClock::now();
  constexpr int64_t kWindow = 4096;
  std::mutex mu;
  std::condition_variable cv;
  int64_t outstanding = 0;
  std::atomic<int64_t> failed{0};
  for (int64_t n = 0; n < count;) {
    const int64_t window = std::min(kWindow, count - n);
    {
      std::lock_guard<std::mutex> lock(mu);
      outstanding = window;
    }
    for (int64_t i = 0; i < window; ++i, ++n) {
      GlobalTrans t;
      t.gid = std::string(prefix) + std::to_string(n);
      t.trans_type = TransType::kSaga;
      t.status = finished ? TransStatus::kSucceed : TransStatus::kSubmitted;
      t.create_time = now;
      t.next_cron_interval = std::chrono::seconds(10);
      t.next_cron_time = now;
      if (finished) t.finish_time = now;
      std::vector<Branch> rows;
      for (const char* id : {"01", "02"}) {
        for (BranchOp op : {BranchOp::kCompensate, BranchOp::kAction}) {
          Branch b;
          b.branch_id = id;
          b.op = op;
          b.url = url;
          b.status = finished && op == BranchOp::kAction
                         ? BranchStatus::kSucceed
                         : BranchStatus::kPrepared;
          rows.push_back(std::move(b));
        }
      }
      (*journal)->SaveNew(std::move(t), std::move(rows), [&](Status s) {
        if (!s.ok()) ++failed;
        std::lock_guard<std::mutex> lock(mu);
        if (--outstanding == 0) cv.notify_one();
      });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return outstanding == 0; });
    if (n % 100000 < kWindow || n == count) {
      std::printf("  filled %" PRId64 " of %" PRId64 " (%.0f/s)\n", n, count,
                  static_cast<double>(n) / Seconds(start));
      std::fflush(stdout);
    }
  }
  (*journal)->Close();
  if (failed > 0) {
    std::fprintf(stderr, "dtx_big_journal_bench: %" PRId64 " writes failed\n",
                 failed.load());
    std::exit(1);
  }
}

std::uintmax_t FileBytes(const std::string& path) {
  std::error_code ec;
  std::uintmax_t n = std::filesystem::file_size(path, ec);
  if (ec) n = 0;
  const std::uintmax_t wal = std::filesystem::file_size(path + "-wal", ec);
  return ec ? n : n + wal;
}

std::unique_ptr<Coordinator> OpenOn(const std::string& path) {
  Options options;
  options.retry.initial_interval = std::chrono::seconds(1);
  EmbeddedOptions embedded;
  embedded.journal_path = path;
  auto dtm = OpenEmbeddedCoordinator(options, embedded);
  if (!dtm.ok()) {
    std::fprintf(stderr, "dtx_big_journal_bench: %s\n",
                 dtm.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(dtm).value();
}

// Sagas per second at `inflight` in flight for `seconds`.
double SagaRate(Coordinator& dtm, const std::string& url, int inflight,
                double seconds, const std::string& prefix) {
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  const auto start = SteadyClock::now();
  for (int w = 0; w < inflight; ++w) {
    workers.emplace_back([&, w] {
      for (int64_t n = 0; !stop; ++n) {
        const std::string gid =
            prefix + std::to_string(w) + "-" + std::to_string(n);
        Status s = Saga(dtm, gid)
                       .Add(url, url, "")
                       .Add(url, url, "")
                       .WaitResult(true)
                       .Submit();
        if (s.ok()) {
          ++done;
        } else if (++errors < 5) {
          std::fprintf(stderr, "%s: %s\n", gid.c_str(), s.ToString().c_str());
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : workers) t.join();
  return static_cast<double>(done.load()) / Seconds(start);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Resumed {
  double seconds = 0;
  int64_t peak_rss_kb = 0;
};

// The child of the resume phase: opens the coordinator on `path` and waits
// until `pending` sagas have succeeded.
int ResumeChild(const std::string& path, int64_t pending) {
  const auto start = SteadyClock::now();
  auto dtm = OpenOn(path);
  SqliteJournalOptions o;
  o.path = path;
  o.read_only = true;
  auto reader = SqliteJournal::Open(o);
  if (!reader.ok()) return 1;
  for (;;) {
    auto counts = (*reader)->CountByStatus();
    if (counts.ok() && (*counts)[TransStatus::kSucceed] >= pending) break;
    if (Seconds(start) > 3600) return 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double took = Seconds(start);
  dtm->Shutdown();
  std::printf("resumed %.3f %" PRId64 "\n", took,
              static_cast<int64_t>(PeakRssKb()));
  std::fflush(stdout);
  return 0;
}

Resumed RunResume(const std::string& self, const std::string& dir,
                  const std::string& url, int64_t pending) {
  const std::string path = dir + "/pending-" + std::to_string(pending) + ".db";
  std::printf("resume: filling %s with %" PRId64 " due sagas\n", path.c_str(),
              pending);
  Fill(path, pending, /*finished=*/false, url, "pend-");
  testing::Subprocess child =
      StartChild({self, "--resume-child", path, std::to_string(pending)});
  auto line = child.ReadLine(std::chrono::seconds(3600));
  Resumed r;
  if (!line || std::sscanf(line->c_str(), "resumed %lf %" SCNd64, &r.seconds,
                           &r.peak_rss_kb) != 2) {
    std::fprintf(stderr, "dtx_big_journal_bench: the resume child said: %s\n",
                 line.value_or("<nothing>").c_str());
    std::exit(1);
  }
  child.Wait();
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  return r;
}

int Main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--resume-child") {
    return ResumeChild(argv[2], std::stoll(argv[3]));
  }
  RefuseUnknownFlags(argc, argv, "dtx_big_journal_bench",
                     {"--phase", "--finished", "--pending", "--seconds",
                      "--rounds", "--inflight", "--dir"},
                     {});
  const std::string phases = Flag(argc, argv, "--phase", "full,resume");
  const int64_t finished =
      ParseInt("--finished", Flag(argc, argv, "--finished", "1000000"));
  const std::vector<int> pendings =
      ParseIntList(Flag(argc, argv, "--pending", "1000,100000"));
  const double seconds =
      ParseDouble("--seconds", Flag(argc, argv, "--seconds", "12"));
  const int rounds =
      std::max(1, ParseInt("--rounds", Flag(argc, argv, "--rounds", "4")));
  const int inflight =
      std::max(1, ParseInt("--inflight", Flag(argc, argv, "--inflight", "64")));
  const bool own_dir = Flag(argc, argv, "--dir", "").empty();
  const std::string dir = own_dir ? FreshDir() : Flag(argc, argv, "--dir", "");
  if (finished < 0 || seconds <= 0 || pendings.empty()) {
    std::fprintf(stderr,
                 "dtx_big_journal_bench: bad --finished, --seconds "
                 "or --pending\n");
    return 2;
  }

  testing::Subprocess echo = StartChild({DTX_ECHO_SERVER});
  const std::string url =
      "127.0.0.1:" + std::to_string(ReadPort(echo)) + "/dtx.test.Busi/Echo";
  std::printf("dtx_big_journal_bench: journals in %s, branch service %s\n\n",
              dir.c_str(), url.c_str());

  double empty_rate = 0;
  if (phases.find("full") != std::string::npos) {
    const std::string empty = dir + "/empty.db";
    const std::string full = dir + "/full.db";
    std::printf("full: filling %s with %" PRId64 " finished sagas\n",
                full.c_str(), finished);
    const auto fill_start = SteadyClock::now();
    Fill(full, finished, /*finished=*/true, url, "done-");
    std::printf("full: filled in %.1f s, %.1f MB\n", Seconds(fill_start),
                static_cast<double>(FileBytes(full)) / 1e6);
    Fill(empty, 0, true, url, "none-");
    std::vector<double> ratios, on_empty, on_full;
    const double per_run = seconds / (2.0 * rounds);
    {
      // Warm up the branch service's connections and the code paths.
      auto dtm = OpenOn(empty);
      SagaRate(*dtm, url, inflight, std::min(1.0, per_run), "warm-");
      dtm->Shutdown();
    }
    for (int round = 0; round < rounds; ++round) {
      for (int side = 0; side < 2; ++side) {
        const std::string& path = side == 0 ? empty : full;
        auto dtm = OpenOn(path);
        const double rate = SagaRate(
            *dtm, url, inflight, per_run,
            "r" + std::to_string(round) + "s" + std::to_string(side) + "-");
        dtm->Shutdown();
        (side == 0 ? on_empty : on_full).push_back(rate);
      }
      ratios.push_back(on_full.back() / on_empty.back());
      std::printf("  round %d: empty %.0f tx/s, %" PRId64
                  " finished %.0f tx/s\n",
                  round + 1, on_empty.back(), finished, on_full.back());
      std::fflush(stdout);
    }
    double sum_full = 0, sum_empty = 0;
    for (double v : on_full) sum_full += v;
    for (double v : on_empty) sum_empty += v;
    empty_rate = sum_empty / static_cast<double>(rounds);
    std::printf(
        "RESULT big_journal_saga_%d value=%.0f baseline=%.0f "
        "ratio=%.2f\n",
        inflight, sum_full / static_cast<double>(rounds), empty_rate,
        Median(ratios));
    std::printf("full: journal %.1f MB, empty one %.1f MB after the runs\n\n",
                static_cast<double>(FileBytes(full)) / 1e6,
                static_cast<double>(FileBytes(empty)) / 1e6);
  }

  if (phases.find("resume") != std::string::npos) {
    std::vector<std::pair<int64_t, Resumed>> runs;
    for (int p : pendings) {
      const Resumed r = RunResume(argv[0], dir, url, p);
      std::printf(
          "resume: %d pending sagas finished in %.1f s (%.0f/s), "
          "peak RSS %.1f MB\n",
          p, r.seconds, p / r.seconds,
          static_cast<double>(r.peak_rss_kb) / 1024);
      std::fflush(stdout);
      runs.emplace_back(p, r);
    }
    const auto& small = runs.front();
    for (const auto& [p, r] : runs) {
      if (p == small.first) continue;
      std::printf("RESULT resume_%" PRId64
                  "_peak_rss_mb value=%.1f "
                  "baseline=%.1f ratio=%.2f\n",
                  p, static_cast<double>(r.peak_rss_kb) / 1024,
                  static_cast<double>(small.second.peak_rss_kb) / 1024,
                  static_cast<double>(r.peak_rss_kb) /
                      static_cast<double>(small.second.peak_rss_kb));
      if (empty_rate > 0) {
        std::printf("RESULT resume_%" PRId64
                    "_tx_per_s value=%.0f "
                    "baseline=%.0f ratio=%.2f\n",
                    p, static_cast<double>(p) / r.seconds, empty_rate,
                    static_cast<double>(p) / r.seconds / empty_rate);
      }
    }
  }
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace dtx::bench

int main(int argc, char** argv) { return dtx::bench::Main(argc, argv); }
