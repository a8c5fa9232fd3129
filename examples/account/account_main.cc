// account_service: the account-transfer branch service (see
// account_service.h) on its own SQLite ledger.
//
//   account_service --ledger accounts.db [--port 9000] [--users 10]
//                   [--balance 10000]

#include "account_service.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <signal.h>
#include <string>
#include <thread>

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
std::string Flag(int argc, char** argv, const std::string& name,
                 const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return fallback;
}
}  // namespace

int main(int argc, char** argv) {
  dtx::examples::AccountService service(
      Flag(argc, argv, "--ledger", "accounts.db"));
  dtx::Status s =
      service.Init(std::stoi(Flag(argc, argv, "--users", "10")),
                   std::stoll(Flag(argc, argv, "--balance", "10000")));
  if (!s.ok()) {
    std::fprintf(stderr, "account_service: %s\n", s.ToString().c_str());
    return 1;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + Flag(argc, argv, "--port", "9000"),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "account_service: cannot listen\n");
    return 1;
  }
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
