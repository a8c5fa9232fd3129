// dtx_echo_server: the branch service of the benchmarks, run in its own
// process. Serves dtx.test.Busi/Echo (callback API) on 127.0.0.1 and prints
// "port <n>" once ready; exits when stdin closes. With --delay-ms every
// answer waits that long on a gRPC alarm (no thread waits). With --http it
// also serves every path over HTTP/1.1 (dtx::HttpServer, two io threads) as
// a dtm HTTP branch does: 200 with the request's body, or
// {"dtm_result":"SUCCESS"} when it has none; it prints "http-port <n>" after
// the gRPC port. --delay-ms does not apply to HTTP.
//
//   dtx_echo_server [--port 0] [--delay-ms 0] [--http]

#include "dtx/transport/http_server.h"

#include "bench_util.h"
#include "dtx_test.grpc.pb.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <unistd.h>

namespace {

class EchoService final : public dtx::test::Busi::CallbackService {
 public:
  explicit EchoService(std::chrono::milliseconds delay) : delay_(delay) {}

  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const dtx::test::Payload* request,
                                 dtx::test::Payload* reply) override {
    reply->set_data(request->data());
    auto* reactor = context->DefaultReactor();
    if (delay_.count() == 0) {
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    // Freed in its own callback, which gRPC allows.
    auto* alarm = new grpc::Alarm;
    alarm->Set(std::chrono::system_clock::now() + delay_,
               [alarm, reactor](bool) {
                 reactor->Finish(grpc::Status::OK);
                 delete alarm;
               });
    return reactor;
  }

 private:
  const std::chrono::milliseconds delay_;
};

}  // namespace

int main(int argc, char** argv) {
  dtx::bench::RefuseUnknownFlags(argc, argv, "dtx_echo_server",
                                 {"--port", "--delay-ms"}, {"--http"});
  const std::string port_flag = dtx::bench::Flag(argc, argv, "--port", "0");
  EchoService service(std::chrono::milliseconds(
      std::stoi(dtx::bench::Flag(argc, argv, "--delay-ms", "0"))));
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
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
  if (http) http->Shutdown(std::chrono::milliseconds(0));
  server->Shutdown();
  return 0;
}
