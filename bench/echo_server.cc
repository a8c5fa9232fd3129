// dtx_echo_server: the branch service of the benchmarks, run in its own
// process. Serves dtx.test.Busi/Echo (callback API) on 127.0.0.1 and prints
// "port <n>" once ready; exits when stdin closes. With --delay-ms every
// answer waits that long on a gRPC alarm (no thread waits). With --http it
// also serves every path over HTTP/1.1 (dtx::HttpServer, two io threads) as
// a dtm HTTP branch does: 200 with the request's body, or
// {"dtm_result":"SUCCESS"} when it has none; it prints "http-port <n>" after
// the gRPC port. --delay-ms does not apply to HTTP. With --workers N (and a
// delay) at most N gRPC calls are served at once and the rest wait in
// arrival order, as in a service with N worker threads: its capacity is
// N / delay. Each line on stdin makes it print "calls <n>", the gRPC calls
// received so far.
//
//   dtx_echo_server [--port 0] [--delay-ms 0] [--workers 0] [--http]

#include "dtx/transport/grpc_process.h"
#include "dtx/transport/http_server.h"

#include "bench_util.h"
#include "dtx_test.grpc.pb.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unistd.h>

namespace {

class EchoService final : public dtx::test::Busi::CallbackService {
 public:
  EchoService(std::chrono::milliseconds delay, int workers)
      : delay_(delay), workers_(workers) {}

  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const dtx::test::Payload* request,
                                 dtx::test::Payload* reply) override {
    calls_.fetch_add(1, std::memory_order_relaxed);
    reply->set_data(request->data());
    auto* reactor = context->DefaultReactor();
    if (delay_.count() == 0) {
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    if (workers_ > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      if (busy_ >= workers_) {
        waiting_.push_back(reactor);
        return reactor;
      }
      ++busy_;
    }
    Serve(reactor);
    return reactor;
  }

  std::atomic<int64_t> calls_{0};

 private:
  // Answers after the delay, then (with workers) serves the next in line.
  void Serve(grpc::ServerUnaryReactor* reactor) {
    // Freed in its own callback, which gRPC allows.
    auto* alarm = new grpc::Alarm;
    alarm->Set(std::chrono::system_clock::now() + delay_,
               [this, alarm, reactor](bool) {
                 reactor->Finish(grpc::Status::OK);
                 delete alarm;
                 if (workers_ > 0) Next();
               });
  }
  void Next() {
    grpc::ServerUnaryReactor* next = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiting_.empty()) {
        --busy_;
        return;
      }
      next = waiting_.front();
      waiting_.pop_front();
    }
    Serve(next);
  }

  const std::chrono::milliseconds delay_;
  const int workers_;
  std::mutex mu_;
  int busy_ = 0;
  std::deque<grpc::ServerUnaryReactor*> waiting_;
};

}  // namespace

int main(int argc, char** argv) {
  // As dtx-server does; this service answers both sides of each comparison
  // alike (grpc_process.h).
  dtx::DisableMutexDeadlockDetection();
  dtx::bench::RefuseUnknownFlags(argc, argv, "dtx_echo_server",
                                 {"--port", "--delay-ms", "--workers"},
                                 {"--http"});
  const std::string port_flag = dtx::bench::Flag(argc, argv, "--port", "0");
  EchoService service(
      std::chrono::milliseconds(
          std::stoi(dtx::bench::Flag(argc, argv, "--delay-ms", "0"))),
      std::stoi(dtx::bench::Flag(argc, argv, "--workers", "0")));
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + port_flag,
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "dtx_echo_server: cannot listen\n");
    return 1;
  }
  std::printf("port %d\n", port);
  std::unique_ptr<dtx::HttpServer> http;
  if (dtx::bench::HasFlag(argc, argv, "--http")) {
    dtx::HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 2;
    auto started = dtx::HttpServer::Start(
        options, [](dtx::HttpRequest request, dtx::HttpResponder responder) {
          responder.Respond(dtx::HttpResponse::Json(
              200, request.body.empty() ? R"({"dtm_result":"SUCCESS"})"
                                        : std::move(request.body)));
        });
    if (!started.ok()) {
      std::fprintf(stderr, "dtx_echo_server: %s\n",
                   started.status().ToString().c_str());
      return 1;
    }
    http = std::move(started).value();
    std::printf("http-port %d\n", http->port());
  }
  std::fflush(stdout);
  // Each line on stdin asks for the gRPC calls answered so far ("calls N");
  // the end of stdin stops the server.
  std::string line;
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
    if (c != '\n') continue;
    std::printf("calls %lld\n", static_cast<long long>(service.calls_.load()));
    std::fflush(stdout);
  }
  if (http) http->Shutdown(std::chrono::milliseconds(0));
  server->Shutdown();
  return 0;
}
