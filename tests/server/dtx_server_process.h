// Runs dtx-server (the real binary) as a child process on 127.0.0.1 with
// ephemeral ports, for tests that talk to it over gRPC (and HTTP).

#ifndef DTX_TESTS_SERVER_DTX_SERVER_PROCESS_H_
#define DTX_TESTS_SERVER_DTX_SERVER_PROCESS_H_

#include "dtx/result.h"

#include "subprocess.h"

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dtx::testing {

struct DtxServerConfig {
  std::string journal_path;
  // The Store section, replacing the SQLite one at journal_path when set
  // (PostgresStoreYaml for Store.Driver postgres).
  std::string store_yaml;
  // Extra YAML appended to the test defaults (short intervals).
  std::string yaml;
  std::string config_path;  // where to write the file
  // 0: any free port.
  int port = 0;
  // HttpPort; 0: any free port, so that parallel tests never meet on 36789.
  int http_port = 0;
  // The retry and timeout keys written before `yaml` (short by default);
  // replace them to test long back-offs.
  // Where the server's stderr (its log) goes; empty: the test's stderr.
  std::string log_path;
  std::string intervals =
      "RetryInterval: 1\nTimeoutToFail: 3\nRequestTimeout: 3\n"
      "TransCronInterval: 1\nRetryIntervalMax: 2\n";
};

// The Store section of a dtx-server on a PostgreSQL server (a test's
// PostgresServer: user dtx, database dtx, trusted on loopback) and schema.
inline std::string PostgresStoreYaml(int port, const std::string& schema) {
  return "Store:\n  Driver: postgres\n  Host: 127.0.0.1\n  Port: " +
         std::to_string(port) +
         "\n  User: dtx\n  Db: dtx\n  Schema: " + schema + "\n";
}

class DtxServerProcess {
 public:
  // Starts the server and waits for "dtx-server: listening on"; the
  // registration line too when the config registers in etcd; then
  // "dtx-server: http listening on".
  static Result<std::unique_ptr<DtxServerProcess>> Start(
      const DtxServerConfig& config, bool expect_registration = false) {
    std::ofstream out(config.config_path);
    out << config.intervals << "ShutdownGrace: 5\n"
        << "LogLevel: info\n";
    if (config.store_yaml.empty()) {
      out << "Store:\n  Driver: sqlite\n  Path: '" << config.journal_path
          << "'\n";
    } else {
      out << config.store_yaml;
    }
    out << config.yaml;
    out.close();
    DTX_ASSIGN_OR_RETURN(
        Subprocess child,
        Subprocess::Start(
            {DTX_SERVER_BINARY, "-c", config.config_path, "--grpc-host",
             "127.0.0.1", "--grpc-port", std::to_string(config.port),
             "--http-port", std::to_string(config.http_port)},
            config.log_path));
    auto self = std::unique_ptr<DtxServerProcess>(
        new DtxServerProcess(std::move(child)));
    auto line = self->child_.ReadLine();
    const std::string prefix = "dtx-server: listening on ";
    if (!line || line->rfind(prefix, 0) != 0) {
      return UnavailableError("dtx-server did not start: " +
                              line.value_or("<no output>"));
    }
    self->address_ = line->substr(prefix.size());
    if (expect_registration) {
      auto registered = self->child_.ReadLine();
      const std::string reg = "dtx-server: registered in etcd as ";
      if (!registered || registered->rfind(reg, 0) != 0) {
        return UnavailableError("dtx-server did not register: " +
                                registered.value_or("<no output>"));
      }
      self->registry_key_ = registered->substr(reg.size());
    }
    auto http = self->child_.ReadLine();
    const std::string http_prefix = "dtx-server: http listening on ";
    if (!http || http->rfind(http_prefix, 0) != 0) {
      return UnavailableError("dtx-server did not listen for HTTP: " +
                              http.value_or("<no output>"));
    }
    self->http_address_ = http->substr(http_prefix.size());
    return self;
  }

  const std::string& address() const { return address_; }
  const std::string& registry_key() const { return registry_key_; }
  int port() const {
    return std::stoi(address_.substr(address_.rfind(':') + 1));
  }
  // host:port of the HTTP listener.
  const std::string& http_address() const { return http_address_; }
  int http_port() const {
    return std::stoi(http_address_.substr(http_address_.rfind(':') + 1));
  }
  pid_t pid() const { return child_.pid(); }
  void Kill(int signal) { child_.Kill(signal); }
  int Wait() { return child_.Wait(); }
  std::optional<int> WaitFor(std::chrono::milliseconds timeout) {
    return child_.WaitFor(timeout);
  }

 private:
  explicit DtxServerProcess(Subprocess child) : child_(std::move(child)) {}
  Subprocess child_;
  std::string address_;
  std::string http_address_;
  std::string registry_key_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_SERVER_DTX_SERVER_PROCESS_H_
