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
// and, in the same run (alternating rounds), each scenario's baseline: the same
// journal writes (durable where dtx waits, queued where dtx does not) and the
// same gRPC calls (a generated stub with dtm's metadata), in the same order,
// with no coordinator in between (docs/architecture.md, "Minimum durable
// points"). saga_empty is also compared with the single-commit SQLite rate (one
// row per FULL commit, one writer).
//
// With --server PATH the same loops also run through GrpcDtmClient against a
// dtx-server process (FULL journal, same io threads): the "server" rows, each
// compared with the same baseline (which has no client-to-coordinator hop).
//
//   dtx_bench [--seconds 10] [--scenario tcc|saga|msg|saga_empty]
//             [--inflight 1,16,64] [--io-threads 1] [--server dtx-server]

#include "dtx/embedded.h"
#include "dtx/id_generator.h"
#include "dtx/storage/sqlite_journal.h"
#include "dtx/transaction.h"
#include "dtx/transport/grpc_dtm_client.h"

#include "bench_util.h"
#include "dtx_test.grpc.pb.h"

#include <grpcpp/grpcpp.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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
};

// Runs `one(worker, i)` (one whole transaction) in `inflight` threads.
Figures ClosedLoop(int inflight, double seconds,
                   const std::function<bool(int worker, int64_t i)>& one) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  std::mutex mu;
  Latencies all;
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
      std::lock_guard<std::mutex> lock(mu);
      all.Merge(mine);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t n = done.load();
  const double elapsed =
      std::chrono::duration<double>(SteadyClock::now() - start).count();
  stop = true;
  for (auto& t : threads) t.join();
  Figures f;
  f.tx_per_s = static_cast<double>(n) / elapsed;
  f.p50_ms = all.Percentile(0.5) / 1000.0;
  f.p99_ms = all.Percentile(0.99) / 1000.0;
  return f;
}

class Bench {
 public:
  Bench(std::string echo_address, std::size_t io_threads)
      : echo_(std::move(echo_address)), io_threads_(io_threads) {
    channel_ = grpc::CreateChannel(echo_, grpc::InsecureChannelCredentials());
    stub_ = dtx::test::Busi::NewStub(channel_);
  }

  Figures RunDtx(const std::string& scenario, int inflight, double seconds) {
    const std::string dir = FreshDir();
    Options options;
    options.journal_path = dir + "/dtx.db";
    options.io_threads = io_threads_;
    auto dtm_or = OpenEmbeddedCoordinator(options);
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
    const std::string dir = FreshDir();
    std::ofstream(dir + "/dtx.yml")
        << "Store:\n  Path: '" << dir << "/dtx.db'\nIoThreads: " << io_threads_
        << "\nLogLevel: warn\n";
    testing::Subprocess child =
        StartChild({server, "-c", dir + "/dtx.yml", "--grpc-host", "127.0.0.1",
                    "--grpc-port", "0"});
    const std::string line = child.ReadLine().value_or("");
    const std::string prefix = "dtx-server: listening on ";
    if (line.rfind(prefix, 0) != 0) {
      std::fprintf(stderr, "dtx-server did not start: %s\n", line.c_str());
      std::exit(1);
    }
    GrpcDtmClientOptions o;
    o.address = line.substr(prefix.size());
    auto client = GrpcDtmClient::Create(o);
    if (!client.ok()) {
      std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
      std::exit(1);
    }
    Figures f = RunOn(**client, scenario, inflight, seconds);
    client->reset();
    child.Kill(SIGTERM);
    while (child.ReadLine()) {
    }
    child.Wait();
    std::filesystem::remove_all(dir);
    return f;
  }

  Figures RunOn(DtmApi& dtm, const std::string& scenario, int inflight,
                double seconds) {
    const std::string url = echo_ + "/dtx.test.Busi/Echo";
    const std::string empty;
    Figures f = ClosedLoop(inflight, seconds, [&](int, int64_t) {
      const std::string gid = ids_->NewGid();
      Status s;
      if (scenario == "saga" || scenario == "saga_empty") {
        const std::string& u = scenario == "saga" ? url : empty;
        s = Saga(dtm, gid)
                .Add(u, u, "")
                .Add(u, u, "")
                .WaitResult(true)
                .Submit();
      } else if (scenario == "msg") {
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
    auto durable = [&](const std::function<void(WriteDone)>& start) {
      return WaitForWrite(start).ok();
    };
    auto queued = [](const std::function<void(WriteDone)>& start) {
      start(nullptr);
    };
    auto call = [&](const std::string& gid, const char* type, const char* id,
                    const char* op) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(3));
      ctx.AddMetadata("dtm-gid", gid);
      ctx.AddMetadata("dtm-trans_type", type);
      ctx.AddMetadata("dtm-branch_id", id);
      ctx.AddMetadata("dtm-op", op);
      ctx.AddMetadata("dtm-dtm", "");
      dtx::test::Payload req;
      dtx::test::Payload reply;
      return stub_->Echo(&ctx, req, &reply).ok();
    };
    auto branch = [](const char* id, BranchOp op) {
      Branch b;
      b.branch_id = id;
      b.op = op;
      b.url = "echo";
      return b;
    };
    // Branch results are queued, not waited for, as dtx does: those known
    // when a real call starts go to the journal while it is on the wire; the
    // rest travel with the final status.
    struct Pending {
      std::string gid;
      std::vector<BranchUpdate> results;
    };
    auto flush = [&](Pending& p) {
      if (p.results.empty()) return;
      queued([&](WriteDone d) {
        j.UpdateBranches(p.gid, std::nullopt, std::move(p.results),
                         std::move(d));
      });
      p.results.clear();
    };
    auto finish = [&](Pending& p, TransStatus from) {
      StatusChange c;
      c.gid = p.gid;
      c.from = from;
      c.to = TransStatus::kSucceed;
      c.branch_updates = std::move(p.results);
      queued([&](WriteDone d) { j.ChangeStatus(c, std::move(d)); });
      return true;
    };
    Figures f = ClosedLoop(inflight, seconds, [&](int, int64_t) {
      const std::string gid = ids_->NewGid();
      GlobalTrans t;
      t.gid = gid;
      Pending pending{gid, {}};
      bool ok = true;
      if (scenario == "tcc") {
        t.trans_type = TransType::kTcc;
        t.status = TransStatus::kPrepared;
        ok =
            ok && durable([&](WriteDone d) { j.SaveNew(t, {}, std::move(d)); });
        for (const char* id : {"01", "02"}) {
          ok = ok && durable([&](WriteDone d) {
                 j.AppendBranches(gid, TransStatus::kPrepared,
                                  {branch(id, BranchOp::kCancel),
                                   branch(id, BranchOp::kConfirm)},
                                  std::move(d));
               });
          ok = ok && call(gid, "tcc", id, "try");
        }
        StatusChange c;
        c.gid = gid;
        c.from = TransStatus::kPrepared;
        c.to = TransStatus::kSubmitted;
        ok = ok &&
             durable([&](WriteDone d) { j.ChangeStatus(c, std::move(d)); });
        for (const char* id : {"02", "01"}) {
          flush(pending);
          ok = ok && call(gid, "tcc", id, "confirm");
          pending.results.push_back(
              {id, BranchOp::kConfirm, BranchStatus::kSucceed});
        }
        return ok && finish(pending, TransStatus::kSubmitted);
      }
      const bool saga = scenario != "msg";
      t.trans_type = saga ? TransType::kSaga : TransType::kMsg;
      t.status = TransStatus::kSubmitted;
      std::vector<Branch> rows;
      for (const char* id : {"01", "02"}) {
        if (saga) rows.push_back(branch(id, BranchOp::kCompensate));
        rows.push_back(branch(id, BranchOp::kAction));
      }
      ok =
          ok && durable([&](WriteDone d) { j.SaveNew(t, rows, std::move(d)); });
      for (const char* id : {"01", "02"}) {
        if (scenario != "saga_empty") {
          flush(pending);
          ok = ok && call(gid, saga ? "saga" : "msg", id, "action");
        }
        pending.results.push_back(
            {id, BranchOp::kAction, BranchStatus::kSucceed});
      }
      return ok && finish(pending, TransStatus::kSubmitted);
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
  std::string echo_;
  std::size_t io_threads_;
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

int Main(int argc, char** argv) {
  const double seconds = std::stod(Flag(argc, argv, "--seconds", "10"));
  const std::string only = Flag(argc, argv, "--scenario", "");
  const std::vector<int> inflights =
      ParseIntList(Flag(argc, argv, "--inflight", "1,16,64"));
  const auto io_threads = static_cast<std::size_t>(
      std::stoi(Flag(argc, argv, "--io-threads", "1")));
  const std::string server_binary = Flag(argc, argv, "--server", "");
  testing::Subprocess server = StartChild({DTX_ECHO_SERVER});
  const std::string echo = "127.0.0.1:" + std::to_string(ReadPort(server));
  Bench bench(echo, io_threads);
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
  for (const std::string scenario : {"tcc", "saga", "msg", "saga_empty"}) {
    if (!only.empty() && only != scenario) continue;
    for (int inflight : inflights) {
      // Two rounds each, alternating, so that drift of the machine falls on
      // both sides.
      Figures base;
      Figures dtx;
      for (int round = 0; round < 2; ++round) {
        const Figures b = bench.RunBaseline(scenario, inflight, seconds / 4);
        const Figures d = bench.RunDtx(scenario, inflight, seconds / 4);
        base.tx_per_s += b.tx_per_s / 2;
        base.p50_ms += b.p50_ms / 2;
        base.p99_ms += b.p99_ms / 2;
        dtx.tx_per_s += d.tx_per_s / 2;
        dtx.p50_ms += d.p50_ms / 2;
        dtx.p99_ms += d.p99_ms / 2;
      }
      Row("baseline", scenario, inflight, base);
      Row("dtx", scenario, inflight, dtx);
      PrintResult(scenario + "_" + std::to_string(inflight), dtx.tx_per_s,
                  base.tx_per_s);
      if (!server_binary.empty()) {
        const Figures remote =
            bench.RunServer(server_binary, scenario, inflight, seconds / 2);
        Row("server", scenario, inflight, remote);
        PrintResult("server_" + scenario + "_" + std::to_string(inflight),
                    remote.tx_per_s, base.tx_per_s);
      }
      std::printf("RESULT %s_%d_p50 value=%.3f baseline=%.3f ratio=%.2f\n",
                  scenario.c_str(), inflight, dtx.p50_ms, base.p50_ms,
                  base.p50_ms > 0 ? dtx.p50_ms / base.p50_ms : 0.0);
      if (scenario == "saga_empty" && inflight == inflights.back()) {
        const double floor = Bench::SingleCommitRate(seconds / 2);
        std::printf("%-10s %-11s %8d %10.0f\n", "sqlite", "one-commit", 1,
                    floor);
        PrintResult("saga_empty_vs_single_commit_" + std::to_string(inflight),
                    dtx.tx_per_s, floor);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace dtx::bench

int main(int argc, char** argv) { return dtx::bench::Main(argc, argv); }
