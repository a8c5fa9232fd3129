#include "http_branch_service.h"

#include <utility>

namespace dtx::testing {

Result<std::unique_ptr<HttpBranchService>> HttpBranchService::Start() {
  std::unique_ptr<HttpBranchService> service(new HttpBranchService());
  std::shared_ptr<State> state = service->state_;
  HttpServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.max_body_bytes = 64 * 1024 * 1024;
  auto handler = [state](HttpRequest request, HttpResponder responder) {
    HttpAnswer answer;
    {
      internal::MutexLock lock(&state->mu);
      auto it = state->scripts.find(request.path);
      if (it != state->scripts.end() && !it->second.empty()) {
        std::size_t& n = state->answered[request.path];
        answer = it->second[std::min(n, it->second.size() - 1)];
        ++n;
      }
      state->peers.insert(request.remote_address);
      state->seen.push_back(std::move(request));
      if (answer.hang) state->held.push_back(responder);
      state->cv.SignalAll();
    }
    if (answer.hang) return;
    HttpResponse response;
    response.status = answer.status;
    response.content_type = "application/json";
    response.body = std::move(answer.body);
    responder.Respond(std::move(response));
  };
  DTX_ASSIGN_OR_RETURN(service->server_,
                       HttpServer::Start(std::move(options), handler));
  service->port_ = service->server_->port();
  return service;
}

HttpBranchService::~HttpBranchService() { Stop(); }

std::string HttpBranchService::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port()) + std::string(path);
}

int HttpBranchService::port() const { return port_; }

void HttpBranchService::Script(const std::string& path,
                               std::vector<HttpAnswer> answers) {
  internal::MutexLock lock(&state_->mu);
  state_->scripts[path] = std::move(answers);
  state_->answered[path] = 0;
}

std::vector<HttpRequest> HttpBranchService::Seen(
    const std::string& path) const {
  internal::MutexLock lock(&state_->mu);
  std::vector<HttpRequest> out;
  for (const HttpRequest& r : state_->seen) {
    if (path.empty() || r.path == path) out.push_back(r);
  }
  return out;
}

std::size_t HttpBranchService::Calls(const std::string& path) const {
  return Seen(path).size();
}

bool HttpBranchService::WaitForCalls(const std::string& path, std::size_t n,
                                     std::chrono::milliseconds timeout) const {
  internal::MutexLock lock(&state_->mu);
  return state_->cv.WaitFor(&state_->mu, timeout, [&] {
    state_->mu.AssertHeld();
    std::size_t count = 0;
    for (const HttpRequest& r : state_->seen) count += r.path == path;
    return count >= n;
  });
}

std::size_t HttpBranchService::Connections() const {
  internal::MutexLock lock(&state_->mu);
  return state_->peers.size();
}

void HttpBranchService::Release(HttpAnswer answer) {
  std::vector<HttpResponder> held;
  {
    internal::MutexLock lock(&state_->mu);
    held.swap(state_->held);
  }
  for (const HttpResponder& r : held) {
    HttpResponse response;
    response.status = answer.status;
    response.body = answer.body;
    r.Respond(std::move(response));
  }
}

void HttpBranchService::Stop() {
  // Destroyed, not only shut down, so that the port refuses connections.
  if (server_) server_->Shutdown(std::chrono::milliseconds(0));
  server_.reset();
  internal::MutexLock lock(&state_->mu);
  state_->held.clear();
}

}  // namespace dtx::testing
