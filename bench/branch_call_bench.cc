// dtx_branch_call_bench: what GrpcBranchClient costs over a bare gRPC call.
//
// Against one echo server in another process, it runs closed loops with 1 and
// 64 calls in flight of
//   baseline  the generated stub of dtx.test.Busi/Echo (callback API) sending
//             the same call on the wire: the payload, dtm's five metadata
//             keys (dtm-gid, dtm-trans_type, dtm-branch_id, dtm-op, dtm-dtm)
//             and a deadline;
//   dtx       GrpcBranchClient::Call of the same method: URL routing, channel
//             pick, metadata checks, raw bytes, outcome mapping, callback;
//   no-md     for reference, the generated stub without any metadata: what
//             dtm's protocol itself costs (HPACK on both sides).
// Runs alternate to spread drift over all three. Prints calls/s and p50/p99
// for each, then
//   RESULT branch_call_<inflight> value=<dtx calls/s> baseline=<baseline
//   calls/s>
//
//   dtx_branch_call_bench [--seconds 5] [--inflight 1,64] [--payload 32]

#include "dtx/transport/grpc_branch_client.h"

#include "bench_util.h"
#include "dtx_test.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace dtx::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Figures {
  uint64_t calls = 0;
  double seconds = 0;
  Latencies latencies;
};

// Keeps `inflight` chains of calls running for `seconds`; `start_call(done)`
// starts one call and runs done(ok) when it completes.
template <typename StartCall>
Figures ClosedLoop(int inflight, double seconds, StartCall start_call) {
  struct Slot {
    Latencies latencies;
    SteadyClock::time_point started;
  };
  std::vector<Slot> slots(static_cast<std::size_t>(inflight));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> completed{0};
  std::atomic<int> running{inflight};
  // Wakes this thread when the last call has completed.
  internal::Mutex mu;
  internal::CondVar cv(&mu);
  std::function<void(std::size_t)> issue = [&](std::size_t i) {
    slots[i].started = SteadyClock::now();
    start_call([&, i](bool ok) {
      if (!ok) {
        std::fprintf(stderr, "call failed\n");
        std::exit(1);
      }
      slots[i].latencies.Add(SteadyClock::now() - slots[i].started);
      completed.fetch_add(1, std::memory_order_relaxed);
      if (!stop.load(std::memory_order_relaxed)) {
        issue(i);
      } else if (--running == 0) {
        internal::MutexLock lock(&mu);
        cv.SignalAll();
      }
    });
  };
  const auto begin = SteadyClock::now();
  for (std::size_t i = 0; i < slots.size(); ++i) issue(i);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  Figures f;
  f.calls = completed.load();
  f.seconds = std::chrono::duration<double>(SteadyClock::now() - begin).count();
  stop = true;
  {
    internal::MutexLock lock(&mu);
    cv.Wait(&mu, [&] { return running.load() == 0; });
  }
  for (auto& s : slots) f.latencies.Merge(s.latencies);
  return f;
}

Figures RunBare(dtx::test::Busi::Stub& stub, const std::string& payload,
                int inflight, double seconds, bool with_metadata) {
  return ClosedLoop(inflight, seconds, [&](std::function<void(bool)> done) {
    struct Call {
      grpc::ClientContext context;
      dtx::test::Payload request;
      dtx::test::Payload reply;
    };
    auto* call = new Call;
    call->request.set_data(payload);
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::seconds(3));
    if (with_metadata) {
      call->context.AddMetadata("dtm-gid", "bench-gid-0123456789ab");
      call->context.AddMetadata("dtm-trans_type", "saga");
      call->context.AddMetadata("dtm-branch_id", "01");
      call->context.AddMetadata("dtm-op", "action");
      call->context.AddMetadata("dtm-dtm", "");
    }
    stub.async()->Echo(&call->context, &call->request, &call->reply,
                       [call, done = std::move(done)](grpc::Status s) {
                         delete call;
                         done(s.ok());
                       });
  });
}

// `inflight` threads, each making blocking calls (`call()`, true on
// success) one after another for `seconds`.
template <typename Call>
Figures BlockingLoop(int inflight, double seconds, Call call) {
  std::atomic<bool> stop{false};
  std::vector<Figures> per(static_cast<std::size_t>(inflight));
  std::vector<std::thread> threads;
  const auto begin = SteadyClock::now();
  for (auto& f : per) {
    threads.emplace_back([&, &f = f] {
      while (!stop.load(std::memory_order_relaxed)) {
        const auto started = SteadyClock::now();
        if (!call()) {
          std::fprintf(stderr, "call failed\n");
          std::exit(1);
        }
        f.latencies.Add(SteadyClock::now() - started);
        ++f.calls;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  Figures total;
  total.seconds =
      std::chrono::duration<double>(SteadyClock::now() - begin).count();
  for (auto& f : per) {
    total.calls += f.calls;
    total.latencies.Merge(f.latencies);
  }
  return total;
}

// The generated stub's blocking call: the caller's thread takes the
// completion itself.
Figures RunSync(dtx::test::Busi::Stub& stub, const std::string& payload,
                int inflight, double seconds) {
  return BlockingLoop(inflight, seconds, [&] {
    grpc::ClientContext context;
    dtx::test::Payload request;
    dtx::test::Payload reply;
    request.set_data(payload);
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(3));
    context.AddMetadata("dtm-gid", "bench-gid-0123456789ab");
    context.AddMetadata("dtm-trans_type", "saga");
    context.AddMetadata("dtm-branch_id", "01");
    context.AddMetadata("dtm-op", "action");
    context.AddMetadata("dtm-dtm", "");
    return stub.Echo(&context, request, &reply).ok();
  });
}

// GrpcBranchClient's blocking form (CallAndWait), which the client API's TCC
// try and msg check-back use.
Figures RunDtxWaited(GrpcBranchClient& client, const std::string& url,
                     const std::string& serialized, int inflight,
                     double seconds) {
  return BlockingLoop(inflight, seconds, [&] {
    BranchRequest r;
    r.url = url;
    r.payload = serialized;
    r.info.gid = "bench-gid-0123456789ab";
    r.info.trans_type = TransType::kSaga;
    r.info.branch_id = "01";
    r.info.op = BranchOp::kAction;
    return CallAndWait(client, std::move(r)).outcome == BranchOutcome::kSuccess;
  });
}

Figures RunDtx(GrpcBranchClient& client, const std::string& url,
               const std::string& serialized, int inflight, double seconds) {
  return ClosedLoop(inflight, seconds, [&](std::function<void(bool)> done) {
    BranchRequest r;
    r.url = url;
    r.payload = serialized;
    r.info.gid = "bench-gid-0123456789ab";
    r.info.trans_type = TransType::kSaga;
    r.info.branch_id = "01";
    r.info.op = BranchOp::kAction;
    client.Call(std::move(r), nullptr,
                [done = std::move(done)](BranchResult res) {
                  done(res.outcome == BranchOutcome::kSuccess);
                });
  });
}

void Print(const char* who, int inflight, Figures& f) {
  std::printf("%-9s %8d %12.0f %10.0f %10.0f\n", who, inflight,
              static_cast<double>(f.calls) / f.seconds,
              f.latencies.Percentile(0.5), f.latencies.Percentile(0.99));
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  RefuseUnknownFlags(argc, argv, "dtx_branch_call_bench",
                     {"--seconds", "--inflight", "--payload"}, {});
  const double seconds = std::stod(Flag(argc, argv, "--seconds", "5"));
  const std::vector<int> inflights =
      ParseIntList(Flag(argc, argv, "--inflight", "1,64"));
  const int payload_bytes = std::stoi(Flag(argc, argv, "--payload", "32"));

  testing::Subprocess server = StartChild({DTX_ECHO_SERVER});
  const int port = ReadPort(server);
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::string payload(static_cast<std::size_t>(payload_bytes), 'x');
  dtx::test::Payload message;
  message.set_data(payload);
  const std::string serialized = message.SerializeAsString();

  auto channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = dtx::test::Busi::NewStub(channel);
  auto client_or = GrpcBranchClient::Create({});
  if (!client_or.ok()) return 1;
  auto& client = **client_or;
  const std::string url = address + "/dtx.test.Busi/Echo";

  std::printf(
      "dtx_branch_call_bench: echo server in another process at %s, payload %d "
      "bytes, %.1f s per run, 2 runs each\n\n",
      address.c_str(), payload_bytes, seconds);
  std::printf("%-9s %8s %12s %10s %10s\n", "client", "inflight", "calls/s",
              "p50 us", "p99 us");
  // Warm both paths up (connections, thread pools).
  RunBare(*stub, payload, 16, 0.3, true);
  RunDtx(client, url, serialized, 16, 0.3);

  for (int inflight : inflights) {
    Figures bare_total;
    Figures dtx_total;
    Figures no_md_total;
    for (int round = 0; round < 2; ++round) {
      Figures n = RunBare(*stub, payload, inflight, seconds / 2, false);
      Figures b = RunBare(*stub, payload, inflight, seconds / 2, true);
      Figures d = RunDtx(client, url, serialized, inflight, seconds / 2);
      no_md_total.calls += n.calls;
      no_md_total.seconds += n.seconds;
      no_md_total.latencies.Merge(n.latencies);
      bare_total.calls += b.calls;
      bare_total.seconds += b.seconds;
      bare_total.latencies.Merge(b.latencies);
      dtx_total.calls += d.calls;
      dtx_total.seconds += d.seconds;
      dtx_total.latencies.Merge(d.latencies);
    }
    if (inflight == 1) {
      Figures sync = RunSync(*stub, payload, 1, seconds);
      Figures waited = RunDtxWaited(client, url, serialized, 1, seconds);
      Print("sync", inflight, sync);
      Print("dtx-wait", inflight, waited);
    }
    Print("no-md", inflight, no_md_total);
    Print("baseline", inflight, bare_total);
    Print("dtx", inflight, dtx_total);
    PrintResult("branch_call_" + std::to_string(inflight),
                static_cast<double>(dtx_total.calls) / dtx_total.seconds,
                static_cast<double>(bare_total.calls) / bare_total.seconds);
  }
  client.Shutdown();
  // Exit without static destruction: gRPC's callback threads may still be
  // unwinding the last raw-stub callback (RunBare's completions signal before
  // they return), and gRPC 1.51 then races its own shutdown at exit, a
  // double free in grpc_cq_internal_unref seen about once in 40 ASan runs.
  // Every figure is printed and flushed by now.
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(0);
}

}  // namespace
}  // namespace dtx::bench

int main(int argc, char** argv) { return dtx::bench::Main(argc, argv); }
