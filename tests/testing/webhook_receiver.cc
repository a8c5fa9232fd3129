#include "webhook_receiver.h"

#include <utility>

namespace dtx::testing {

Result<std::unique_ptr<WebhookReceiver>> WebhookReceiver::Start(
    std::vector<int> statuses) {
  std::unique_ptr<WebhookReceiver> self(new WebhookReceiver());
  self->state_->statuses = std::move(statuses);
  std::shared_ptr<State> state = self->state_;
  HttpServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  DTX_ASSIGN_OR_RETURN(
      self->server_,
      HttpServer::Start(options, [state](HttpRequest request,
                                         HttpResponder responder) {
        int status = 200;
        {
          internal::MutexLock lock(&state->mu);
          const std::size_t i = state->requests.size();
          if (!state->statuses.empty()) {
            status = state->statuses[std::min(i, state->statuses.size() - 1)];
          }
          state->requests.push_back(
              {request.method, request.target,
               request.Header("Content-Type").value_or(""), request.body});
          state->cv.SignalAll();
          if (status == 0) {
            state->held.push_back(responder);
            return;
          }
        }
        responder.Respond(HttpResponse::Json(status, "{}"));
      }));
  return self;
}

WebhookReceiver::~WebhookReceiver() { Stop(); }

std::string WebhookReceiver::url() const {
  return "http://127.0.0.1:" + std::to_string(port()) + "/alerts";
}

int WebhookReceiver::port() const { return server_->port(); }

std::vector<ReceivedPost> WebhookReceiver::requests() const {
  internal::MutexLock lock(&state_->mu);
  return state_->requests;
}

bool WebhookReceiver::WaitForRequests(std::size_t n,
                                      std::chrono::milliseconds timeout) const {
  internal::MutexLock lock(&state_->mu);
  return state_->cv.WaitFor(&state_->mu, timeout, [this, n] {
    state_->mu.AssertHeld();
    return state_->requests.size() >= n;
  });
}

void WebhookReceiver::Stop() {
  if (!server_) return;
  std::vector<HttpResponder> held;
  {
    internal::MutexLock lock(&state_->mu);
    held.swap(state_->held);
  }
  for (const HttpResponder& r : held) {
    r.Respond(HttpResponse::Error(503, "receiver stopped"));
  }
  server_->Shutdown(std::chrono::milliseconds(0));
  server_.reset();
}

}  // namespace dtx::testing
