#include "etcd_server.h"

#include "dtx/transport/etcd_client.h"

#include "free_port.h"

#include <arpa/inet.h>
#include <chrono>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace dtx::testing {
namespace {

constexpr const char* kEtcd = "/usr/bin/etcd";

bool PortOpen(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool open =
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return open;
}

}  // namespace

Result<std::unique_ptr<EtcdServer>> EtcdServer::Start() {
  if (access(kEtcd, X_OK) != 0) {
    return UnavailableError(
        "etcd is not installed (apt-get install etcd-server)");
  }
  std::unique_ptr<EtcdServer> server(new EtcdServer());
  server->client_port_ = FreeLoopbackPort();
  server->peer_port_ = FreeLoopbackPort();
  DTX_RETURN_IF_ERROR(server->Launch());
  return server;
}

Result<std::unique_ptr<EtcdServer>> EtcdServer::StartTls(EtcdTls tls) {
  if (access(kEtcd, X_OK) != 0) {
    return UnavailableError(
        "etcd is not installed (apt-get install etcd-server)");
  }
  std::unique_ptr<EtcdServer> server(new EtcdServer());
  server->tls_ = std::move(tls);
  server->client_port_ = FreeLoopbackPort();
  server->peer_port_ = FreeLoopbackPort();
  DTX_RETURN_IF_ERROR(server->Launch());
  return server;
}

Status EtcdServer::Launch() {
  const std::string client_url = std::string(tls_ ? "https" : "http") +
                                 "://127.0.0.1:" + std::to_string(client_port_);
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> tls_flags;
  if (tls_) {
    tls_flags = {"--cert-file", tls_->cert_file, "--key-file", tls_->key_file};
    if (!tls_->trusted_ca_file.empty()) {
      tls_flags.insert(
          tls_flags.end(),
          {"--client-cert-auth", "--trusted-ca-file", tls_->trusted_ca_file});
    }
  }
  std::vector<std::string> args = {kEtcd,
                                   "--name",
                                   "dtx-test",
                                   "--data-dir",
                                   dir_.File("data"),
                                   "--listen-client-urls",
                                   client_url,
                                   "--advertise-client-urls",
                                   client_url,
                                   "--listen-peer-urls",
                                   peer,
                                   "--initial-advertise-peer-urls",
                                   peer,
                                   "--initial-cluster",
                                   "dtx-test=" + peer,
                                   "--unsafe-no-fsync",
                                   "--logger",
                                   "zap",
                                   "--log-level",
                                   "error"};
  args.insert(args.end(), tls_flags.begin(), tls_flags.end());
  auto p = Subprocess::Start(args);
  if (!p.ok()) return p.status();
  process_.emplace(std::move(p).value());
  // First wait for the port with plain sockets: a gRPC channel that met a
  // refused connection would wait out its reconnect back-off.
  const auto port_deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!PortOpen(client_port_)) {
    if (std::chrono::steady_clock::now() > port_deadline) {
      return UnavailableError("etcd did not listen on " + endpoint());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Then ready when it answers a read (it has elected itself leader).
  EtcdClientOptions options;
  options.endpoints = {endpoint()};
  options.timeout = std::chrono::milliseconds(500);
  if (tls_) {
    TlsClientOptions client;
    client.ca_file = tls_->ca_file;
    client.cert_file = tls_->client_cert_file;
    client.key_file = tls_->client_key_file;
    options.tls = client;
  }
  DTX_ASSIGN_OR_RETURN(auto client, EtcdClient::Create(options));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  Status last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = client->Get("/dtx-test-ready");
    if (r.ok()) return Status::Ok();
    last = r.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return UnavailableError("etcd did not start on " + endpoint() + ": " +
                          last.ToString());
}

void EtcdServer::Kill() {
  if (process_) {
    process_->Kill(SIGKILL);
    process_->Wait();
    process_.reset();
  }
}

Status EtcdServer::Restart() {
  Kill();
  return Launch();
}

// A throwaway server: no need for a graceful stop, which waits for open
// client streams to drain.
EtcdServer::~EtcdServer() { Kill(); }

}  // namespace dtx::testing
