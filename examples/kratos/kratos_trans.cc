// kratos-trans: the `trans` branch service of dtm's Kratos example, in C++.
//
// Every handler logs what it does, as the Go example does:
//   2026/11/23 21:40:02 transfer in 30 cents to 1
// (--verbose adds dtm's metadata of each call). It listens on 127.0.0.1
// (--port, default 9000; 0 picks a free port), prints "listening on
// <host:port>" when ready, and stops on SIGTERM or SIGINT. With --etcd it
// registers itself as `trans` in that etcd, as a Kratos service does
// (/microservices/trans/<id>, endpoint grpc://127.0.0.1:<port>), and
// deregisters when it stops.
//
//   kratos-trans [--port 9000] [--etcd 127.0.0.1:2379 [--ttl 15]] [--verbose]

#include "dtx/id_generator.h"
#include "dtx/transport/etcd_client.h"
#include "dtx/transport/kratos_registry.h"
#include "dtx/transport/trans_info.h"

#include "api/trans/v1/trans.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <signal.h>
#include <string>
#include <thread>
#include <unistd.h>

namespace {

using api::trans::v1::AdjustInfo;
using api::trans::v1::Response;

std::atomic<bool> g_stop{false};  // set by the signal handler only
bool g_verbose = false;           // set once in main, before serving

void OnSignal(int) { g_stop = true; }

// One line in Go's log format, as the Kratos example prints.
void Log(const std::string& text) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y/%m/%d %H:%M:%S", &tm);
  std::printf("%s %s\n", stamp, text.c_str());
  std::fflush(stdout);
}

grpc::Status Handle(grpc::ServerContext* ctx, const std::string& what,
                    const AdjustInfo* req, bool in) {
  auto info = dtx::TransInfoFromServerContext(*ctx);
  if (!info.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        info.status().message());
  }
  const std::string cents = std::to_string(req->amount()) + " cents";
  const std::string who = std::to_string(req->userid());
  std::string line;
  if (what.empty()) {
    line = in ? "transfer in " + cents + " to " + who
              : "transfer out " + cents + " from " + who;
  } else {
    line = what + " transfer " + (in ? "in " : "out ") + cents +
           (in ? " to " : " from ") + who;
  }
  if (g_verbose) {
    line += "  (gid=" + info->gid + " " +
            std::string(dtx::ToString(info->trans_type)) + " " +
            std::string(dtx::ToString(info->op)) + " branch " +
            info->branch_id + ")";
  }
  Log(line);
  return grpc::Status::OK;
}

class TransService final : public api::trans::v1::Trans::Service {
 public:
  grpc::Status TransIn(grpc::ServerContext* c, const AdjustInfo* r,
                       Response*) override {
    return Handle(c, "", r, true);
  }
  grpc::Status TransInConfirm(grpc::ServerContext* c, const AdjustInfo* r,
                              Response*) override {
    return Handle(c, "confirm", r, true);
  }
  grpc::Status TransInCancel(grpc::ServerContext* c, const AdjustInfo* r,
                             Response*) override {
    return Handle(c, "cancel", r, true);
  }
  grpc::Status TransInRevert(grpc::ServerContext* c, const AdjustInfo* r,
                             Response*) override {
    return Handle(c, "revert", r, true);
  }
  grpc::Status TransOut(grpc::ServerContext* c, const AdjustInfo* r,
                        Response*) override {
    return Handle(c, "", r, false);
  }
  grpc::Status TransOutConfirm(grpc::ServerContext* c, const AdjustInfo* r,
                               Response*) override {
    return Handle(c, "confirm", r, false);
  }
  grpc::Status TransOutCancel(grpc::ServerContext* c, const AdjustInfo* r,
                              Response*) override {
    return Handle(c, "cancel", r, false);
  }
  grpc::Status TransOutRevert(grpc::ServerContext* c, const AdjustInfo* r,
                              Response*) override {
    return Handle(c, "revert", r, false);
  }
  grpc::Status QueryPrepared(grpc::ServerContext* c, const AdjustInfo*,
                             Response*) override {
    auto info = dtx::TransInfoFromServerContext(*c);
    Log("check-back of gid=" + (info.ok() ? info->gid : std::string("?")) +
        ": the local transaction committed");
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string port = "9000";
  std::string etcd;
  int ttl = 15;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--port" && i + 1 < argc) port = argv[i + 1];
    if (std::string(argv[i]) == "--etcd" && i + 1 < argc) etcd = argv[i + 1];
    if (std::string(argv[i]) == "--ttl" && i + 1 < argc)
      ttl = std::stoi(argv[i + 1]);
    if (std::string(argv[i]) == "--verbose") g_verbose = true;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  TransService service;
  int bound = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + port,
                           grpc::InsecureServerCredentials(), &bound);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || bound == 0) {
    std::fprintf(stderr, "kratos-trans: cannot listen on 127.0.0.1:%s\n",
                 port.c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%d\n", bound);
  std::fflush(stdout);
  std::unique_ptr<dtx::KratosRegistrar> registration;
  if (!etcd.empty()) {
    dtx::EtcdClientOptions options;
    options.endpoints = {etcd};
    auto client = dtx::EtcdClient::Create(options);
    if (!client.ok()) {
      std::fprintf(stderr, "kratos-trans: %s\n",
                   client.status().ToString().c_str());
      return 1;
    }
    dtx::ServiceInstance instance;
    instance.id = dtx::NewRandomIdGenerator()->NewGid();
    instance.name = "trans";
    instance.endpoints = {"grpc://127.0.0.1:" + std::to_string(bound)};
    dtx::KratosRegistrar::Options registry_options;
    registry_options.ttl = std::chrono::seconds(ttl);
    auto registered = dtx::KratosRegistrar::Register(
        std::shared_ptr<dtx::EtcdClient>(std::move(client).value()), instance,
        registry_options);
    if (!registered.ok()) {
      std::fprintf(stderr, "kratos-trans: %s\n",
                   registered.status().ToString().c_str());
      return 1;
    }
    registration = std::move(registered).value();
    std::printf("registered in etcd as %s\n", registration->key().c_str());
    std::fflush(stdout);
  }
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  registration.reset();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
