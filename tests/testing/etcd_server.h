// A throwaway etcd (Debian's etcd-server) on loopback ports for tests, with
// its data in a temporary directory. Killed when the object dies.
//
// When etcd is not installed, Start returns kUnavailable; EtcdTest below then
// skips the test, except under CI=true, where a missing etcd fails it.
//
// With EtcdTls, etcd serves its client port over TLS (--cert-file,
// --key-file) and, with a trusted CA, requires client certificates of that
// CA (--client-cert-auth --trusted-ca-file).

#ifndef DTX_TESTS_TESTING_ETCD_SERVER_H_
#define DTX_TESTS_TESTING_ETCD_SERVER_H_

#include "dtx/result.h"

#include "subprocess.h"
#include "temp_dir.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

namespace dtx::testing {

struct EtcdTls {
  std::string cert_file;
  std::string key_file;
  std::string trusted_ca_file;  // empty: no client certificates asked for
  // The CA that signed cert_file, for the readiness check.
  std::string ca_file;
  // A client certificate of trusted_ca_file, for the readiness check.
  std::string client_cert_file;
  std::string client_key_file;
};

class EtcdServer {
 public:
  static Result<std::unique_ptr<EtcdServer>> Start();
  static Result<std::unique_ptr<EtcdServer>> StartTls(EtcdTls tls);
  ~EtcdServer();

  // "127.0.0.1:<client port>"
  std::string endpoint() const {
    return "127.0.0.1:" + std::to_string(client_port_);
  }
  // Kills etcd (SIGKILL) and waits for it.
  void Kill();
  // Starts it again on the same ports and data.
  Status Restart();

 private:
  EtcdServer() = default;
  Status Launch();

  TempDir dir_;
  std::optional<EtcdTls> tls_;
  int client_port_ = 0;
  int peer_port_ = 0;
  std::optional<Subprocess> process_;
};

}  // namespace dtx::testing

namespace dtx::testing {

// A fixture with a running etcd. Without etcd installed the test is skipped,
// or fails under CI=true.
class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = EtcdServer::Start();
    if (!etcd.ok()) {
      if (std::getenv("CI") != nullptr) FAIL() << etcd.status();
      GTEST_SKIP() << etcd.status();
    }
    etcd_ = std::move(etcd).value();
  }
  std::unique_ptr<EtcdServer> etcd_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_ETCD_SERVER_H_
