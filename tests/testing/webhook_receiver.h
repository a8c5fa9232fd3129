// A webhook for tests: a dtx::HttpServer on 127.0.0.1 (an ephemeral port)
// that records every request it receives and answers each with the next
// status of a script (the last one repeats). Status 0 holds the request
// unanswered until the receiver stops (a webhook that hangs).
//
//   ASSERT_OK_AND_ASSIGN(auto hook, WebhookReceiver::Start({503, 200}));
//   ... POST to hook->url() ...
//   ASSERT_TRUE(hook->WaitForRequests(2));
//
// Thread safety: thread-safe.

#ifndef DTX_TESTS_TESTING_WEBHOOK_RECEIVER_H_
#define DTX_TESTS_TESTING_WEBHOOK_RECEIVER_H_

#include "dtx/internal/mutex.h"
#include "dtx/result.h"
#include "dtx/transport/http_server.h"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace dtx::testing {

struct ReceivedPost {
  std::string method;
  std::string target;
  std::string content_type;
  std::string body;
};

class WebhookReceiver {
 public:
  // `statuses`: the answers in order; empty: always 200.
  static Result<std::unique_ptr<WebhookReceiver>> Start(
      std::vector<int> statuses = {});
  ~WebhookReceiver();

  // "http://127.0.0.1:<port>/alerts".
  std::string url() const;
  int port() const;
  std::vector<ReceivedPost> requests() const;
  // Waits up to `timeout` until at least `n` requests arrived.
  bool WaitForRequests(std::size_t n, std::chrono::milliseconds timeout =
                                          std::chrono::seconds(20)) const;
  // Answers held requests 503 and closes the listener.
  void Stop();

 private:
  struct State {
    std::vector<int> statuses;
    mutable internal::Mutex mu;
    mutable internal::CondVar cv{&mu};
    std::vector<ReceivedPost> requests DTX_GUARDED_BY(mu);
    std::vector<HttpResponder> held DTX_GUARDED_BY(mu);
  };
  WebhookReceiver() = default;
  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::unique_ptr<HttpServer> server_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_WEBHOOK_RECEIVER_H_
