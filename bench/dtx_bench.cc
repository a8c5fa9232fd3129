// dtx_bench: transactions per second of the embedded coordinator, against the
// zero-overhead plan of the same transactions.
//
// The branch service (dtx_echo_server, dtx.test.Busi/Echo for every branch)
// runs in another process; the journal is SQLite with synchronous=FULL. Closed
// loops of 1, 16 and 64 transactions in flight (a thread each) run
//   tcc         TccGlobalTransaction with 2 branches, WaitResult
//   saga        a 2-step saga, WaitResult
//   msg         a 2-step message submitted directly, WaitResult
//   saga_empty  a 2-step saga with empty URLs (dtm's benchEmptyUrl):
//               coordinator and journal only
//   http_saga   saga with HTTP branches (http://, dtm's HTTP calls)
//   http_tcc    tcc with HTTP branches
// and, in the same run, each scenario's baseline: the same
// journal writes (durable where dtx waits, queued where dtx does not) and the
// same gRPC calls (a generated stub with dtm's metadata), in the same order,
// with no coordinator in between (docs/architecture.md, "Minimum durable
// points"). saga_empty is also compared with the single-commit SQLite rate (one
// row per FULL commit, one writer).
//
// With --server PATH the same loops also run through GrpcDtmClient against a
// dtx-server process (FULL journal, same io threads): the "server" rows. Their
// baseline, the "relay" rows, is the same client against dtx_dtm_relay, a bare
// gRPC server that receives the same dtmgimp requests and makes the same
// journal writes and branch calls (the same plan, journal_plan.h) with no
// coordinator: the same client-to-coordinator round trips on both sides.
// With --poll-http too, the saga loop at the most in flight also runs on one
// dtx-server in alternating rounds with and without a poller that GETs what
// the web console polls, once a second (kConsolePolls): the cost of serving
// metrics and the console to the engine, as server_saga_<n>_polled.
// The http_ scenarios' server rows go through dtx-server's HTTP API
// (HttpDtmClient, dtmcli's requests) and their relay rows through the
// relay's HTTP front (dtx_dtm_relay --http), which makes the same HTTP
// branch calls: HTTP end to end on both sides.
// Then slow_branch: 5,000 (--slow-sagas) WaitResult sagas whose branch
// answers after 1 s, all in flight at once on one dtx-server, while NewGid
// and a saga with an immediate branch run one at a time; their p50 and p99
// under that load against the same calls on the idle server.
//
//   dtx_bench [--seconds 10]
//             [--scenario
//             tcc|saga|msg|saga_empty|http_saga|http_tcc|slow_branch]
//             [--inflight 1,16,64] [--io-threads 1] [--server dtx-server]
//             [--slow-sagas 5000] [--rounds 6] [--poll-http]
//
// Each figure comes from --rounds alternating rounds of dtx and its baseline
// (--seconds split among them); RESULT lines give the means of the rounds and,
// as `ratio`, the median of the rounds' ratios, which a burst of slow disk
// in one round cannot move much.

#include "dtx/embedded.h"
#include "dtx/id_generator.h"
#include "dtx/storage/sqlite_journal.h"
#include "dtx/transaction.h"
#include "dtx/transport/grpc_dtm_client.h"
#include "dtx/transport/http_branch_client.h"
#include "dtx/transport/http_client.h"
#include "dtx/transport/http_dtm_client.h"

#include "bench_util.h"
#include "dtx_test.grpc.pb.h"
#include "journal_plan.h"

#include <grpcpp/grpcpp.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <signal.h>
#include <stdlib.h>
#include <string>
#include <thread>
#include <vector>

namespace dtx::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Figures {
  double tx_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;

  Figures operator/(double n) const {
    return {tx_per_s / n, p50_ms / n, p99_ms / n};
  }
  Figures& operator+=(const Figures& o) {
    tx_per_s += o.tx_per_s;
    p50_ms += o.p50_ms;
    p99_ms += o.p99_ms;
    return *this;
  }
};

// Runs `one(worker, i)` (one whole transaction) in `inflight` threads.
Figures ClosedLoop(int inflight, double seconds,
                   const std::function<bool(int worker, int64_t i)>& one) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  SharedLatencies shared;
  std::vector<std::thread> threads;
  const auto start = SteadyClock::now();
  for (int w = 0; w < inflight; ++w) {
    threads.emplace_back([&, w] {
      Latencies mine;
      for (int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const auto t0 = SteadyClock::now();
        if (!one(w, i)) {
          std::fprintf(stderr, "transaction failed\n");
          std::exit(1);
        }
        mine.Add(SteadyClock::now() - t0);
        done.fetch_add(1, std::memory_order_relaxed);
      }
      shared.Merge(mine);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t n = done.load();
  const double elapsed =
      std::chrono::duration<double>(SteadyClock::now() - start).count();
  stop = true;
  for (auto& t : threads) t.join();
  Latencies all = shared.Take();
  Figures f;
  f.tx_per_s = static_cast<double>(n) / elapsed;
  f.p50_ms = all.Percentile(0.5) / 1000.0;
  f.p99_ms = all.Percentile(0.99) / 1000.0;
  return f;
}

// A dtx-server process on 127.0.0.1 (FULL journal in a fresh directory);
// SIGTERM and a wait when destroyed.
class ServerProcess {
 public:
  ServerProcess(const std::string& binary, std::size_t io_threads)
      : dir_(FreshDir()) {
    std::ofstream(dir_ + "/dtx.yml")
        << "Store:\n  Path: '" << dir_ << "/dtx.db'\nIoThreads: " << io_threads
        << "\nLogLevel: warn\n";
    child_ = std::make_unique<testing::Subprocess>(
        StartChild({binary, "-c", dir_ + "/dtx.yml", "--grpc-host", "127.0.0.1",
                    "--grpc-port", "0", "--http-port", "0"}));
    const std::string line = child_->ReadLine().value_or("");
    const std::string prefix = "dtx-server: listening on ";
    if (line.rfind(prefix, 0) != 0) {
      std::fprintf(stderr, "dtx-server did not start: %s\n", line.c_str());
      std::exit(1);
    }
    address_ = line.substr(prefix.size());
    const std::string http = child_->ReadLine().value_or("");
    const std::string http_prefix = "dtx-server: http listening on ";
    if (http.rfind(http_prefix, 0) != 0) {
      std::fprintf(stderr, "dtx-server did not listen for HTTP: %s\n",
                   http.c_str());
      std::exit(1);
    }
    http_port_ = std::stoi(http.substr(http.rfind(':') + 1));
  }
  ~ServerProcess() {
    child_->Kill(SIGTERM);
    while (child_->ReadLine()) {
    }
    child_->Wait();
    child_.reset();
    std::filesystem::remove_all(dir_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& address() const { return address_; }
  int http_port() const { return http_port_; }

 private:
  std::string dir_;
  std::unique_ptr<testing::Subprocess> child_;
  std::string address_;
  int http_port_ = 0;
};

// What the web console polls, every second, while it is open.
constexpr const char* kConsolePolls[] = {
    "/api/metrics", "/api/dtx/stats",
    "/api/dtmsvr/all?limit=50&unfinished=true", "/api/dtmsvr/all?limit=50"};

// GETs kConsolePolls from a dtx-server's HTTP port at once and then every
// second, on a thread of its own, until destroyed.
class ConsolePoller {
 public:
  explicit ConsolePoller(int port)
      : thread_([this, port] {
          for (;;) {
            for (const char* target : kConsolePolls) {
              const int status = HttpGetStatus(port, target);
              ++gets_;
              if (status < 200 || status >= 300) ++not_ok_;
            }
            internal::MutexLock lock(&mu_);
            if (cv_.WaitFor(&mu_, std::chrono::seconds(1), [this] {
                  mu_.AssertHeld();
                  return stop_;
                })) {
              return;
            }
          }
        }) {}
  ~ConsolePoller() {
    {
      internal::MutexLock lock(&mu_);
      stop_ = true;
      cv_.SignalAll();
    }
    thread_.join();
  }
  ConsolePoller(const ConsolePoller&) = delete;
  ConsolePoller& operator=(const ConsolePoller&) = delete;

  // GETs made, and those not answered 2xx (an endpoint not served yet).
  static std::atomic<long> gets_;
  static std::atomic<long> not_ok_;

 private:
  internal::Mutex mu_;
  internal::CondVar cv_{&mu_};
  bool stop_ DTX_GUARDED_BY(mu_) = false;
  std::thread thread_;
};
std::atomic<long> ConsolePoller::gets_{0};
std::atomic<long> ConsolePoller::not_ok_{0};

std::unique_ptr<GrpcDtmClient> Connect(const std::string& address) {
  GrpcDtmClientOptions o;
  o.address = address;
  auto client = GrpcDtmClient::Create(o);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(client).value();
}

class Bench {
 public:
  // `echo_address`: the echo's gRPC host:port; `http_echo`: its HTTP URL.
  Bench(std::string echo_address, std::string http_echo, std::size_t io_threads)
      : echo_(std::move(echo_address)),
        http_echo_(std::move(http_echo)),
        io_threads_(io_threads) {
    channel_ = grpc::CreateChannel(echo_, grpc::InsecureChannelCredentials());
    stub_ = dtx::test::Busi::NewStub(channel_);
    http_ = Check(HttpClient::Create(HttpClientOptions{}));
    http_branches_ = Check(HttpBranchClient::Create(HttpBranchClientOptions{}));
  }

  // "http_saga" -> "saga": the transaction's shape, whatever the transport.
  static std::string Shape(const std::string& scenario) {
    return scenario.rfind("http_", 0) == 0 ? scenario.substr(5) : scenario;
  }
  static bool OverHttp(const std::string& scenario) {
    return scenario.rfind("http_", 0) == 0;
  }

  Figures RunDtx(const std::string& scenario, int inflight, double seconds) {
    const std::string dir = FreshDir();
    Options options;
    options.io_threads = io_threads_;
    EmbeddedOptions embedded;
    embedded.journal_path = dir + "/dtx.db";
    auto dtm_or = OpenEmbeddedCoordinator(options, embedded);
    if (!dtm_or.ok()) {
      std::fprintf(stderr, "%s\n", dtm_or.status().ToString().c_str());
      std::exit(1);
    }
    Figures f = RunOn(**dtm_or, scenario, inflight, seconds);
    (*dtm_or)->Shutdown();
    std::filesystem::remove_all(dir);
    return f;
  }

  // The same loop through GrpcDtmClient on a dtx-server process.
  Figures RunServer(const std::string& server, const std::string& scenario,
                    int inflight, double seconds) {
    ServerProcess child(server, io_threads_);
    if (OverHttp(scenario)) {
      auto client = ConnectHttp(child.http_port());
      return RunOn(*client, scenario, inflight, seconds);
    }
    auto client = Connect(child.address());
    Figures f = RunOn(*client, scenario, inflight, seconds);
    return f;
  }

  // The same loop through GrpcDtmClient on the relay: the same requests,
  // journal writes and branch calls as with dtx-server, no coordinator.
  Figures RunRelay(const std::string& scenario, int inflight, double seconds) {
    const std::string dir = FreshDir();
    Figures f;
    {
      testing::Subprocess relay =
          StartChild({DTX_DTM_RELAY, "--journal", dir + "/relay.db", "--branch",
                      echo_, "--http", "--http-branch", http_echo_});
      const int grpc_port = ReadPort(relay);
      const int http_port = ReadPort(relay, "http-port");
      if (OverHttp(scenario)) {
        auto client = ConnectHttp(http_port);
        f = RunOn(*client, scenario, inflight, seconds);
      } else {
        auto client = Connect("127.0.0.1:" + std::to_string(grpc_port));
        f = RunOn(*client, scenario, inflight, seconds);
      }
    }
    std::filesystem::remove_all(dir);
    return f;
  }

  // A slow branch next to unrelated transactions on one dtx-server: `slow`
  // WaitResult sagas whose branch answers after 1 s, all in flight at once
  // (callback form, no thread each), while NewGid and a saga with an
  // immediate branch run one at a time until the slow ones are answered;
  // their latencies compared with the same calls on the idle server.
  void SlowBranch(const std::string& server, int slow, double seconds) {
    testing::Subprocess slow_echo =
        StartChild({DTX_ECHO_SERVER, "--delay-ms", "1000"});
    const std::string slow_url =
        "127.0.0.1:" + std::to_string(ReadPort(slow_echo)) +
        "/dtx.test.Busi/Echo";
    const std::string fast_url = echo_ + "/dtx.test.Busi/Echo";
    ServerProcess child(server, io_threads_);
    auto dtm = Connect(child.address());
    auto saga = [](const std::string& gid, const std::string& url) {
      TransRequest r;
      r.gid = gid;
      r.trans_type = TransType::kSaga;
      r.options.wait_result = true;
      r.steps = {{url, url}};
      r.payloads = {""};
      return r;
    };
    Latencies idle_gid;
    Latencies idle_saga;
    Latencies load_gid;
    Latencies load_saga;
    std::atomic<int> slow_done{0};
    auto probe = [&](Latencies& gid, Latencies& fast) {
      auto t0 = SteadyClock::now();
      if (!dtm->NewGid().ok()) std::exit(1);
      gid.Add(SteadyClock::now() - t0);
      t0 = SteadyClock::now();
      Status s = dtm->Submit(saga(ids_->NewGid(), fast_url));
      if (!s.ok()) {
        std::fprintf(stderr, "fast saga: %s\n", s.ToString().c_str());
        std::exit(1);
      }
      fast.Add(SteadyClock::now() - t0);
    };
    const auto idle_until =
        SteadyClock::now() + std::chrono::duration<double>(seconds);
    while (SteadyClock::now() < idle_until) probe(idle_gid, idle_saga);
    const auto start = SteadyClock::now();
    for (int i = 0; i < slow; ++i) {
      dtm->SubmitAsync(saga(ids_->NewGid(), slow_url), [&](Status s) {
        if (!s.ok()) {
          std::fprintf(stderr, "slow saga: %s\n", s.ToString().c_str());
          std::exit(1);
        }
        ++slow_done;
      });
    }
    while (slow_done.load() < slow) probe(load_gid, load_saga);
    const double slow_s =
        std::chrono::duration<double>(SteadyClock::now() - start).count();
    std::printf(
        "\nslow_branch: %d sagas with a 1 s branch answered in %.2f s; "
        "meanwhile %zu NewGid and %zu fast sagas, one at a time\n",
        slow, slow_s, load_gid.count(), load_saga.count());
    std::printf("%-22s %9s %9s %9s %9s\n", "slow_branch", "idle p50",
                "idle p99", "load p50", "load p99");
    auto row = [](const char* what, Latencies& idle, Latencies& load) {
      std::printf("%-22s %9.2f %9.2f %9.2f %9.2f\n", what,
                  idle.Percentile(0.5) / 1000, idle.Percentile(0.99) / 1000,
                  load.Percentile(0.5) / 1000, load.Percentile(0.99) / 1000);
      for (const double q : {0.5, 0.99}) {
        const double v = load.Percentile(q) / 1000;
        const double b = idle.Percentile(q) / 1000;
        std::printf(
            "RESULT server_slow_branch_%s_p%d_ms value=%.3f baseline=%.3f "
            "ratio=%.2f\n",
            what, q < 0.9 ? 50 : 99, v, b, b > 0 ? v / b : 0.0);
      }
      std::fflush(stdout);
    };
    row("newgid", idle_gid, load_gid);
    row("saga", idle_saga, load_saga);
  }

  Figures RunOn(DtmApi& dtm, const std::string& scenario, int inflight,
                double seconds) {
    const std::string url =
        OverHttp(scenario) ? http_echo_ : echo_ + "/dtx.test.Busi/Echo";
    const std::string empty;
    const std::string shape = Shape(scenario);
    Figures f = ClosedLoop(inflight, seconds, [&](int, int64_t) {
      const std::string gid = ids_->NewGid();
      Status s;
      if (shape == "saga" || shape == "saga_empty") {
        const std::string& u = shape == "saga" ? url : empty;
        s = Saga(dtm, gid)
                .Add(u, u, "")
                .Add(u, u, "")
                .WaitResult(true)
                .Submit();
      } else if (shape == "msg") {
        s = Msg(dtm, gid).Add(url, "").Add(url, "").WaitResult(true).Submit();
      } else {
        TransOptions o;
        o.wait_result = true;
        s = TccGlobalTransaction(dtm, gid, o, [&](Tcc& tcc) {
          DTX_RETURN_IF_ERROR(tcc.CallBranch("", url, url, url));
          return tcc.CallBranch("", url, url, url);
        });
      }
      if (!s.ok())
        std::fprintf(stderr, "%s: %s\n", gid.c_str(), s.ToString().c_str());
      return s.ok();
    });
    return f;
  }

  Figures RunBaseline(const std::string& scenario, int inflight,
                      double seconds) {
    const std::string dir = FreshDir();
    SqliteJournalOptions jo;
    jo.path = dir + "/dtx.db";
    auto journal_or = SqliteJournal::Open(jo);
    if (!journal_or.ok()) std::exit(1);
    SqliteJournal& j = **journal_or;
    const bool over_http = OverHttp(scenario);
    const std::string shape = Shape(scenario);
    auto call = [&](const PlanStep& s) {
      if (over_http) {
        // dtm's HTTP branch call, as HttpBranchClient makes it.
        HttpClientRequest req;
        req.method = "GET";
        req.url = http_echo_ + "?gid=" + s.gid + "&trans_type=" + s.trans_type +
                  "&branch_id=" + s.branch_id + "&op=" + s.op;
        req.headers = {{"Content-Type", "application/json"}};
        req.timeout = std::chrono::seconds(3);
        auto r = http_->SendBlocking(std::move(req));
        return r.ok() && r->status == 200;
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(3));
      ctx.AddMetadata("dtm-gid", s.gid);
      ctx.AddMetadata("dtm-trans_type", s.trans_type);
      ctx.AddMetadata("dtm-branch_id", s.branch_id);
      ctx.AddMetadata("dtm-op", s.op);
      ctx.AddMetadata("dtm-dtm", "");
      dtx::test::Payload req;
      dtx::test::Payload reply;
      return stub_->Echo(&ctx, req, &reply).ok();
    };
    Figures f = ClosedLoop(inflight, seconds, [&](int, int64_t) {
      const std::string gid = ids_->NewGid();
      Plan plan;
      if (shape == "tcc") {
        plan = TccPlan(gid, {"01", "02"});
      } else {
        const bool calls = shape != "saga_empty";
        plan =
            StepsPlan(gid, shape == "msg" ? TransType::kMsg : TransType::kSaga,
                      {calls, calls});
      }
      return RunBlocking(plan, j, call);
    });
    j.Close();
    std::filesystem::remove_all(dir);
    return f;
  }

  // One row per FULL commit, one writer: SQLite's own floor.
  static double SingleCommitRate(double seconds) {
    const std::string dir = FreshDir();
    sqlite3* db = nullptr;
    sqlite3_open((dir + "/floor.db").c_str(), &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
                 nullptr, nullptr, nullptr);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES ('row')", -1, &stmt,
                       nullptr);
    const auto start = SteadyClock::now();
    const auto until = start + std::chrono::duration<double>(seconds);
    uint64_t n = 0;
    while (SteadyClock::now() < until) {
      sqlite3_step(stmt);
      sqlite3_reset(stmt);
      ++n;
    }
    const double elapsed =
        std::chrono::duration<double>(SteadyClock::now() - start).count();
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    std::filesystem::remove_all(dir);
    return static_cast<double>(n) / elapsed;
  }

 private:
  // An HttpDtmClient on 127.0.0.1:`port` (dtx-server's or the relay's HTTP
  // API), with the HTTP branch client for TCC's try calls.
  std::unique_ptr<HttpDtmClient> ConnectHttp(int port) {
    HttpDtmClientOptions o;
    o.address = "http://127.0.0.1:" + std::to_string(port) + "/api/dtmsvr";
    o.branch_client = http_branches_;
    return Check(HttpDtmClient::Create(std::move(o)));
  }

  template <typename T>
  static T Check(Result<T> r) {
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      std::exit(1);
    }
    return std::move(r).value();
  }

  std::string echo_;
  std::string http_echo_;
  std::size_t io_threads_;
  std::unique_ptr<HttpClient> http_;  // the baselines' HTTP calls
  std::shared_ptr<HttpBranchClient> http_branches_;
  // Gids as the coordinator's NewGid makes them, for dtx and the baselines
  // alike; made here so that the server rows need no extra round trip.
  std::unique_ptr<IdGenerator> ids_ = NewTimeOrderedIdGenerator();
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<dtx::test::Busi::Stub> stub_;
};

void Row(const char* who, const std::string& scenario, int inflight,
         const Figures& f) {
  std::printf("%-10s %-11s %8d %10.0f %9.2f %9.2f\n", who, scenario.c_str(),
              inflight, f.tx_per_s, f.p50_ms, f.p99_ms);
  std::fflush(stdout);
}

// The rounds of one scenario: dtx (or dtx-server) and its baseline, run
// alternately. Prints the means and the median of the rounds' ratios.
class Paired {
 public:
  void Add(const Figures& baseline, const Figures& value) {
    baselines_.push_back(baseline);
    values_.push_back(value);
  }
  Figures baseline() const { return Mean(baselines_); }
  Figures value() const { return Mean(values_); }
  void Print(const std::string& name, bool with_p50 = true) const {
    std::vector<double> tx;
    std::vector<double> p50;
    for (std::size_t i = 0; i < values_.size(); ++i) {
      if (baselines_[i].tx_per_s > 0)
        tx.push_back(values_[i].tx_per_s / baselines_[i].tx_per_s);
      if (baselines_[i].p50_ms > 0)
        p50.push_back(values_[i].p50_ms / baselines_[i].p50_ms);
    }
    std::printf("RESULT %s value=%.0f baseline=%.0f ratio=%.2f\n", name.c_str(),
                value().tx_per_s, baseline().tx_per_s, Median(tx));
    if (with_p50) {
      std::printf("RESULT %s_p50 value=%.3f baseline=%.3f ratio=%.2f\n",
                  name.c_str(), value().p50_ms, baseline().p50_ms, Median(p50));
    }
    std::fflush(stdout);
  }

 private:
  static Figures Mean(const std::vector<Figures>& all) {
    Figures sum;
    for (const Figures& f : all) sum += f;
    return all.empty() ? sum : sum / static_cast<double>(all.size());
  }
  static double Median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  std::vector<Figures> baselines_;
  std::vector<Figures> values_;
};

// The saga loop on one dtx-server, `rounds` times without and with the
// console's poller, alternately: the same process, so that only the polling
// differs.
void Polled(Bench& bench, const std::string& server, std::size_t io_threads,
            int inflight, int rounds, double per_run) {
  ServerProcess child(server, io_threads);
  auto client = Connect(child.address());
  Paired polled;
  for (int round = 0; round < rounds; ++round) {
    const Figures alone = bench.RunOn(*client, "saga", inflight, per_run);
    Figures watched;
    {
      ConsolePoller poller(child.http_port());
      watched = bench.RunOn(*client, "saga", inflight, per_run);
    }
    polled.Add(alone, watched);
  }
  Row("unpolled", "saga", inflight, polled.baseline());
  Row("polled", "saga", inflight, polled.value());
  std::printf("console polls: %ld GETs, %ld not answered 2xx\n",
              ConsolePoller::gets_.load(), ConsolePoller::not_ok_.load());
  polled.Print("server_saga_" + std::to_string(inflight) + "_polled");
}

int Main(int argc, char** argv) {
  const double seconds = std::stod(Flag(argc, argv, "--seconds", "10"));
  const std::string only = Flag(argc, argv, "--scenario", "");
  const std::vector<int> inflights =
      ParseIntList(Flag(argc, argv, "--inflight", "1,16,64"));
  const auto io_threads = static_cast<std::size_t>(
      std::stoi(Flag(argc, argv, "--io-threads", "1")));
  const std::string server_binary = Flag(argc, argv, "--server", "");
  const int rounds = std::max(1, std::stoi(Flag(argc, argv, "--rounds", "6")));
  const double per_run = seconds / (2.0 * rounds);
  const int slow_sagas = std::stoi(Flag(argc, argv, "--slow-sagas", "5000"));
  const bool poll_http = HasFlag(argc, argv, "--poll-http");
  testing::Subprocess server = StartChild({DTX_ECHO_SERVER, "--http"});
  const std::string echo = "127.0.0.1:" + std::to_string(ReadPort(server));
  const std::string http_echo =
      "http://127.0.0.1:" + std::to_string(ReadPort(server, "http-port")) +
      "/echo";
  Bench bench(echo, http_echo, io_threads);
  std::printf(
      "dtx_bench: %.1f s per run, FULL journal, branch service in another "
      "process "
      "(%s), %zu io thread(s)\n\n",
      seconds, echo.c_str(), io_threads);
  std::printf("%-10s %-11s %8s %10s %9s %9s\n", "what", "scenario", "inflight",
              "tx/s", "p50 ms", "p99 ms");
  // Warm up connections and code paths.
  bench.RunBaseline("saga", 4, 0.3);
  bench.RunDtx("saga", 4, 0.3);
  for (const std::string scenario :
       {"tcc", "saga", "msg", "saga_empty", "http_saga", "http_tcc"}) {
    if (!only.empty() && only != scenario) continue;
    for (int inflight : inflights) {
      // Alternating short rounds, so that drift of the machine (this disk's
      // fsync time varies several-fold within a minute) falls on both
      // sides; the ratios printed are the medians of the rounds' ratios.
      // saga_empty at the most in flight is also compared with the
      // single-commit SQLite rate, measured in the same rounds.
      const bool vs_floor =
          scenario == "saga_empty" && inflight == inflights.back();
      Paired local;
      Paired floor;
      for (int round = 0; round < rounds; ++round) {
        const Figures base = bench.RunBaseline(scenario, inflight, per_run);
        const Figures mine = bench.RunDtx(scenario, inflight, per_run);
        local.Add(base, mine);
        if (vs_floor) {
          floor.Add(Figures{Bench::SingleCommitRate(per_run / 2), 0, 0}, mine);
        }
      }
      Row("baseline", scenario, inflight, local.baseline());
      Row("dtx", scenario, inflight, local.value());
      local.Print(scenario + "_" + std::to_string(inflight));
      if (!server_binary.empty()) {
        // dtx-server against the relay, which has the same client round
        // trips, journal writes and branch calls; alternating rounds again.
        Paired remote;
        for (int round = 0; round < rounds; ++round) {
          remote.Add(
              bench.RunRelay(scenario, inflight, per_run),
              bench.RunServer(server_binary, scenario, inflight, per_run));
        }
        Row("relay", scenario, inflight, remote.baseline());
        Row("server", scenario, inflight, remote.value());
        remote.Print("server_" + scenario + "_" + std::to_string(inflight));
      }
      if (vs_floor) {
        std::printf("%-10s %-11s %8d %10.0f\n", "sqlite", "one-commit", 1,
                    floor.baseline().tx_per_s);
        floor.Print("saga_empty_vs_single_commit_" + std::to_string(inflight),
                    /*with_p50=*/false);
      }
    }
  }
  if (poll_http && !server_binary.empty() && (only.empty() || only == "saga")) {
    Polled(bench, server_binary, io_threads, inflights.back(), rounds, per_run);
  }
  if (!server_binary.empty() && (only.empty() || only == "slow_branch")) {
    bench.SlowBranch(server_binary, slow_sagas, seconds / 4);
  }
  return 0;
}

}  // namespace
}  // namespace dtx::bench

int main(int argc, char** argv) { return dtx::bench::Main(argc, argv); }
