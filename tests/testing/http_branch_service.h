// An HTTP branch service for tests: a dtx::HttpServer on 127.0.0.1 (an
// ephemeral port) that records every request it receives (method, path,
// query, headers, body, the peer's address) and answers each path with the
// next answer of its script (the last one repeats; no script: 200
// {"dtm_result":"SUCCESS"}). An answer can also hang (held unanswered until
// Release or the service stops) or be a huge body.
//
//   ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
//   svc->Script("/TransIn", {HttpAnswer::Status(500), HttpAnswer::Ok()});
//   ... dtm calls svc->url("/TransIn") ...
//   ASSERT_TRUE(svc->WaitForCalls("/TransIn", 2));
//   EXPECT_EQ(svc->Seen("/TransIn")[0].QueryValue("op"), "action");
//
// Connections() counts the distinct client connections (peer addresses) the
// service has seen, for keep-alive tests.
//
// Thread safety: thread-safe.

#ifndef DTX_TESTS_TESTING_HTTP_BRANCH_SERVICE_H_
#define DTX_TESTS_TESTING_HTTP_BRANCH_SERVICE_H_

#include "dtx/internal/mutex.h"
#include "dtx/result.h"
#include "dtx/transport/http_message.h"
#include "dtx/transport/http_server.h"

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace dtx::testing {

struct HttpAnswer {
  int status = 200;
  std::string body = R"({"dtm_result":"SUCCESS"})";
  bool hang = false;  // hold the request unanswered

  static HttpAnswer Ok() { return {}; }
  static HttpAnswer Status(int status, std::string body = "") {
    return {status, std::move(body), false};
  }
  static HttpAnswer Hang() { return {0, "", true}; }
  // 200 with a body of `bytes` 'x's.
  static HttpAnswer Huge(std::size_t bytes) {
    return {200, std::string(bytes, 'x'), false};
  }
};

class HttpBranchService {
 public:
  static Result<std::unique_ptr<HttpBranchService>> Start();
  ~HttpBranchService();

  // "http://127.0.0.1:<port><path>".
  std::string url(std::string_view path) const;
  int port() const;

  // The answers for requests to `path` (the decoded path, no query), in
  // order; the last repeats.
  void Script(const std::string& path, std::vector<HttpAnswer> answers);

  // The requests to `path` so far (all paths when empty), in order.
  std::vector<HttpRequest> Seen(const std::string& path = "") const;
  std::size_t Calls(const std::string& path) const;
  // Waits up to `timeout` until `path` has had at least `n` requests.
  bool WaitForCalls(
      const std::string& path, std::size_t n,
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  // Distinct client connections seen.
  std::size_t Connections() const;
  // Answers the held (hanging) requests with `answer`.
  void Release(HttpAnswer answer = HttpAnswer::Ok());
  // Answers held requests 503 and closes the listener.
  void Stop();

 private:
  struct State {
    mutable internal::Mutex mu;
    mutable internal::CondVar cv{&mu};
    std::map<std::string, std::vector<HttpAnswer>> scripts DTX_GUARDED_BY(mu);
    std::map<std::string, std::size_t> answered DTX_GUARDED_BY(mu);
    std::vector<HttpRequest> seen DTX_GUARDED_BY(mu);
    std::set<std::string> peers DTX_GUARDED_BY(mu);
    std::vector<HttpResponder> held DTX_GUARDED_BY(mu);
  };
  HttpBranchService() = default;
  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_HTTP_BRANCH_SERVICE_H_
