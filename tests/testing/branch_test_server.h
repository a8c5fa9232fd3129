// A real gRPC server on 127.0.0.1 (ephemeral port) that plays branch
// services in tests: any method, scripted answers, a log of what it received.

#ifndef DTX_TESTS_TESTING_BRANCH_TEST_SERVER_H_
#define DTX_TESTS_TESTING_BRANCH_TEST_SERVER_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace grpc {
class ServerCredentials;
}

namespace dtx::testing {

struct ReceivedCall {
  std::string method;  // "/pkg.Service/Method"
  std::multimap<std::string, std::string> metadata;
  std::string payload;
  // First value of a metadata key, or "" when absent.
  std::string Get(const std::string& key) const;
};

struct TestReply {
  int code = 0;  // a gRPC status code
  std::string message;
  std::string body;  // reply bytes when code == 0
  std::chrono::milliseconds delay{0};
  bool hang = false;  // never answer; ends only when the client cancels

  static TestReply Ok(std::string body = "") {
    TestReply r;
    r.body = std::move(body);
    return r;
  }
  static TestReply Status(int code, std::string message) {
    TestReply r;
    r.code = code;
    r.message = std::move(message);
    return r;
  }
};

using TestHandler = std::function<TestReply(const ReceivedCall&)>;

class BranchTestServer {
 public:
  // kind kGeneric answers every method (echo unless a handler is set);
  // kTypedEchoOnly serves only dtx.test.Busi/Echo, so other methods get
  // gRPC's own UNIMPLEMENTED.
  enum class Kind { kGeneric, kTypedEchoOnly };
  static std::unique_ptr<BranchTestServer> Start(Kind kind = Kind::kGeneric);
  // A generic server over TLS with the PEM files given (gRPC's own
  // SslServerCredentials, not dtx's code); with `client_ca_file`, clients
  // must present a certificate of that CA. Aborts when a file is unreadable.
  static std::unique_ptr<BranchTestServer> StartTls(
      const std::string& cert_file, const std::string& key_file,
      const std::string& client_ca_file = "");
  ~BranchTestServer();

  int port() const;
  // "127.0.0.1:<port>"
  std::string address() const;
  // Answers for `method` ("/pkg.Svc/M"); other methods echo the payload.
  void SetHandler(const std::string& method, TestHandler handler);
  // Answers for methods without a handler of their own (default: echo).
  void SetDefaultHandler(TestHandler handler);
  std::vector<ReceivedCall> Calls() const;
  std::size_t CallCount(const std::string& method) const;
  void Shutdown();

 private:
  struct Impl;
  static std::unique_ptr<BranchTestServer> Start(
      Kind kind, std::shared_ptr<grpc::ServerCredentials> credentials);
  explicit BranchTestServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_BRANCH_TEST_SERVER_H_
