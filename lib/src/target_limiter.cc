#include "target_limiter.h"

#include <utility>

namespace dtx::internal {

TargetLimiter::TargetLimiter(std::unique_ptr<BranchClient> inner,
                             std::size_t per_target, const Clock* clock)
    : inner_(std::move(inner)), per_target_(per_target), clock_(clock) {}

TargetLimiter::~TargetLimiter() { Shutdown(); }

std::string TargetLimiter::EndpointOf(std::string_view url) {
  // A gRPC URL names its method last (<target>/pkg.Service/Method), an HTTP
  // or registry URL its path; only a query or fragment is not the endpoint.
  return std::string(url.substr(0, url.find_first_of("?#")));
}

void TargetLimiter::Call(BranchRequest request, Executor executor,
                         Callback done) {
  std::string target = EndpointOf(request.url);
  Queued call{std::move(request), std::move(executor), std::move(done)};
  bool refused = false;
  {
    MutexLock lock(&mu_);
    if (shut_down_) {
      refused = true;
    } else {
      Target& t = targets_[target];
      if (t.in_flight >= per_target_) {
        t.waiting.push_back(std::move(call));
        ++queued_;
        return;
      }
      ++t.in_flight;
    }
  }
  if (refused) {
    BranchResult r;
    r.status = CancelledError("branch client: shut down");
    return Fail(std::move(call), std::move(r));
  }
  Send(target, std::move(call), /*waited=*/false);
}

BranchResult TargetLimiter::CallBlocking(BranchRequest request) {
  const std::string target = EndpointOf(request.url);
  bool in_line = false;
  {
    MutexLock lock(&mu_);
    Target& t = targets_[target];
    // A free slot and nobody ahead: the transport's own blocking call.
    // Otherwise in line with the others (Call, then a wait).
    in_line = shut_down_ || t.in_flight >= per_target_ || !t.waiting.empty();
    if (!in_line) {
      ++t.in_flight;
    } else if (t.in_flight == 0 && t.waiting.empty()) {
      targets_.erase(target);
    }
  }
  if (in_line) return BranchClient::CallBlocking(std::move(request));
  BranchResult r = inner_->CallBlocking(std::move(request));
  Finished(target);
  return r;
}

void TargetLimiter::Send(const std::string& target, Queued call, bool waited) {
  if (waited && call.request.start_by &&
      clock_->Now() > *call.request.start_by) {
    Finished(target);
    BranchResult r;
    r.outcome = BranchOutcome::kTransient;
    r.status = DeadlineExceededError(
        "branch " + call.request.url +
        ": not sent, it waited for a free call slot of its target past the "
        "time it had to start by (max_calls_per_target)");
    return Fail(std::move(call), std::move(r));
  }
  inner_->Call(std::move(call.request), std::move(call.executor),
               [this, target, done = std::move(call.done)](BranchResult r) {
                 // Before `done`: it may be the last thing the caller waits
                 // for before it destroys this client.
                 Finished(target);
                 done(std::move(r));
               });
}

void TargetLimiter::Finished(const std::string& target) {
  Queued next;
  {
    MutexLock lock(&mu_);
    auto it = targets_.find(target);
    if (it == targets_.end()) return;
    Target& t = it->second;
    if (t.waiting.empty() || shut_down_) {
      if (--t.in_flight == 0 && t.waiting.empty()) targets_.erase(it);
      return;
    }
    next = std::move(t.waiting.front());
    t.waiting.pop_front();
    --queued_;
  }
  Send(target, std::move(next), /*waited=*/true);
}

void TargetLimiter::Fail(Queued call, BranchResult result) {
  if (call.executor) {
    call.executor(
        [done = std::move(call.done), result = std::move(result)]() mutable {
          done(std::move(result));
        });
  } else {
    call.done(std::move(result));
  }
}

Status TargetLimiter::ValidateUrl(std::string_view url,
                                  std::string_view protocol) {
  return inner_->ValidateUrl(url, protocol);
}

void TargetLimiter::Shutdown() {
  std::deque<Queued> dropped;
  {
    MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    for (auto& [target, t] : targets_) {
      for (Queued& q : t.waiting) dropped.push_back(std::move(q));
      t.waiting.clear();
    }
    queued_ = 0;
  }
  for (Queued& q : dropped) {
    BranchResult r;
    r.status = CancelledError("branch client: shut down");
    Fail(std::move(q), std::move(r));
  }
  inner_->Shutdown();
}

std::size_t TargetLimiter::queued() const {
  MutexLock lock(&mu_);
  return queued_;
}

}  // namespace dtx::internal
