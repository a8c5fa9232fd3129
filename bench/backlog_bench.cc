// dtx_backlog_bench: recovery after an outage (issue #19 item 3). A dtx-server
// process takes --sagas one-step sagas while their branch service is down;
// every first call fails and every saga waits in its back-off. Then the
// service comes up with a fixed capacity (dtx_echo_server --workers W
// --delay-ms D: W calls at once, D ms each, the rest in line as in a thread
// pool) and the bench measures, until every saga has succeeded:
//   drain     seconds from the service's return to the last success;
//   rss       dtx-server's peak resident memory (VmHWM), MB;
//   calls     calls the service received per saga (1.0: not one wasted;
//             calls beyond it are retries of calls that timed out in line).
// Each --sagas count runs twice on fresh journals: with dtx-server's
// defaults (MaxTransInMemory, MaxCallsPerTarget, RetryJitter) and with the
// caps off (0, 0, 0: every due saga taken at once and called at once, as
// dtm does), which is the baseline the caps are measured against.
//
//   dtx_backlog_bench --server build/server/dtx-server
//                     [--sagas 20000,60000] [--workers 64] [--delay-ms 10]
//                     [--request-timeout 3]

#include "dtx/storage/sqlite_journal.h"
#include "dtx/transaction.h"
#include "dtx/transport/grpc_dtm_client.h"

#include "bench_util.h"
#include "free_port.h"

#include <atomic>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace dtx::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

double Since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

// VmHWM of `pid` in MB; 0 when it cannot be read.
double PeakRssMb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      double kb = 0;
      in >> kb;
      return kb / 1024;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return 0;
}

struct Outcome {
  double drain_s = 0;
  double rss_mb = 0;
  double calls_per_saga = 0;
  int64_t left = 0;  // not succeeded when the bench gave up
};

int64_t Calls(testing::Subprocess& echo) {
  echo.Write("\n");
  auto line = echo.ReadLine(std::chrono::seconds(10));
  long long n = 0;
  if (!line || std::sscanf(line->c_str(), "calls %lld", &n) != 1) return -1;
  return n;
}

Outcome Run(const std::string& server_binary, int sagas, bool capped,
            int workers, int delay_ms, int request_timeout) {
  const std::string dir = FreshDir();
  const std::string journal = dir + "/dtx.db";
  const int service_port = testing::FreeLoopbackPort();
  const std::string url =
      "127.0.0.1:" + std::to_string(service_port) + "/dtx.test.Busi/Echo";
  {
    std::ofstream config(dir + "/dtx.yml");
    config << "Store:\n  Path: '" << journal << "'\n"
           << "RetryInterval: 1\nRetryIntervalMax: 4\nTimeoutToFail: 3600\n"
           << "RequestTimeout: " << request_timeout << "\n"
           << "TransCronInterval: 1\nLogLevel: error\n";
    if (!capped) {
      config << "MaxTransInMemory: 0\nMaxCallsPerTarget: 0\nRetryJitter: 0\n";
    }
  }
  testing::Subprocess server =
      StartChild({server_binary, "-c", dir + "/dtx.yml", "--grpc-host",
                  "127.0.0.1", "--grpc-port", "0", "--http-port", "0"});
  auto first = server.ReadLine(std::chrono::seconds(30));
  const std::string prefix = "dtx-server: listening on ";
  if (!first || first->rfind(prefix, 0) != 0) {
    std::fprintf(stderr, "dtx_backlog_bench: dtx-server did not start: %s\n",
                 first.value_or("<nothing>").c_str());
    std::exit(1);
  }
  const std::string address = first->substr(prefix.size());

  // The outage: every saga's first call is refused.
  std::atomic<int> next{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t) {
    clients.emplace_back([&] {
      GrpcDtmClientOptions o;
      o.address = address;
      auto client = GrpcDtmClient::Create(o);
      if (!client.ok()) {
        ++errors;
        return;
      }
      for (int i = next++; i < sagas; i = next++) {
        Status s = Saga(**client, "backlog-" + std::to_string(i))
                       .Add(url, url, "")
                       .Submit();
        if (!s.ok() && ++errors < 5) {
          std::fprintf(stderr, "submit: %s\n", s.ToString().c_str());
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  if (errors > 0) {
    std::fprintf(stderr, "dtx_backlog_bench: %d submits failed\n",
                 errors.load());
    std::exit(1);
  }
  // Long enough for every saga to have failed once and be waiting.
  std::this_thread::sleep_for(std::chrono::seconds(3));

  // The service returns.
  testing::Subprocess echo = StartChild(
      {DTX_ECHO_SERVER, "--port", std::to_string(service_port), "--workers",
       std::to_string(workers), "--delay-ms", std::to_string(delay_ms)});
  ReadPort(echo);
  const auto back = SteadyClock::now();
  SqliteJournalOptions ro;
  ro.path = journal;
  ro.read_only = true;
  auto reader = SqliteJournal::Open(ro);
  if (!reader.ok()) {
    std::fprintf(stderr, "dtx_backlog_bench: %s\n",
                 reader.status().ToString().c_str());
    std::exit(1);
  }
  Outcome out;
  for (;;) {
    auto counts = (*reader)->CountByStatus();
    if (counts.ok()) {
      out.left = sagas - (*counts)[TransStatus::kSucceed];
      if (out.left <= 0) break;
    }
    if (Since(back) > 900) break;  // reported as left over
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  out.drain_s = Since(back);
  out.rss_mb = PeakRssMb(server.pid());
  out.calls_per_saga =
      static_cast<double>(Calls(echo)) / static_cast<double>(sagas);
  (*reader)->Close();
  server.Kill(SIGTERM);
  server.Wait();
  std::filesystem::remove_all(dir);
  return out;
}

int Main(int argc, char** argv) {
  RefuseUnknownFlags(
      argc, argv, "dtx_backlog_bench",
      {"--server", "--sagas", "--workers", "--delay-ms", "--request-timeout"},
      {});
  const std::string server = Flag(argc, argv, "--server", "");
  if (server.empty()) {
    std::fprintf(stderr, "dtx_backlog_bench: --server PATH (dtx-server)\n");
    return 2;
  }
  const std::vector<int> counts =
      ParseIntList(Flag(argc, argv, "--sagas", "20000,60000"));
  const int workers =
      ParseInt("--workers", Flag(argc, argv, "--workers", "64"));
  const int delay =
      ParseInt("--delay-ms", Flag(argc, argv, "--delay-ms", "10"));
  const int timeout =
      ParseInt("--request-timeout", Flag(argc, argv, "--request-timeout", "3"));
  if (workers < 1 || delay < 1 || timeout < 1 || counts.empty()) {
    std::fprintf(stderr,
                 "dtx_backlog_bench: --workers, --delay-ms and "
                 "--request-timeout need at least 1\n");
    return 2;
  }
  std::printf(
      "dtx_backlog_bench: one-step sagas wait on a dead service, which comes "
      "back serving %d calls at once, %d ms each (%d calls/s); "
      "RequestTimeout %d s\n\n",
      workers, delay, workers * 1000 / delay, timeout);
  std::printf("%-8s %8s %9s %9s %11s %6s\n", "caps", "sagas", "drain s",
              "rss MB", "calls/saga", "left");
  for (int n : counts) {
    Outcome on = Run(server, n, true, workers, delay, timeout);
    std::printf("%-8s %8d %9.1f %9.1f %11.2f %6" PRId64 "\n", "on", n,
                on.drain_s, on.rss_mb, on.calls_per_saga, on.left);
    std::fflush(stdout);
    Outcome off = Run(server, n, false, workers, delay, timeout);
    std::printf("%-8s %8d %9.1f %9.1f %11.2f %6" PRId64 "\n", "off", n,
                off.drain_s, off.rss_mb, off.calls_per_saga, off.left);
    std::fflush(stdout);
    std::printf(
        "RESULT backlog_%d_drain_s value=%.1f baseline=%.1f "
        "ratio=%.2f\n",
        n, on.drain_s, off.drain_s, on.drain_s / off.drain_s);
    std::printf(
        "RESULT backlog_%d_rss_mb value=%.1f baseline=%.1f "
        "ratio=%.2f\n",
        n, on.rss_mb, off.rss_mb, on.rss_mb / off.rss_mb);
    std::printf(
        "RESULT backlog_%d_calls_per_saga value=%.2f baseline=%.2f "
        "ratio=%.2f\n",
        n, on.calls_per_saga, off.calls_per_saga,
        on.calls_per_saga / off.calls_per_saga);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace dtx::bench

int main(int argc, char** argv) { return dtx::bench::Main(argc, argv); }
