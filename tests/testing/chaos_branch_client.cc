#include "chaos_branch_client.h"

#include <utility>

namespace dtx::testing {

ChaosBranchClient::ChaosBranchClient(std::unique_ptr<BranchClient> inner,
                                     uint32_t seed)
    : inner_(std::move(inner)), rng_(seed) {}

void ChaosBranchClient::Call(BranchRequest req, Executor executor,
                             Callback done) {
  const int roll = Roll();
  if (req.info.op == BranchOp::kTry && roll < 5) {
    // Late: the try reaches the service only after everything else.
    {
      std::lock_guard<std::mutex> lock(mu_);
      late_.push_back(req);
    }
    return Fail(executor, done, "try delayed");
  }
  if (roll < 10) return Fail(executor, done, "call dropped");
  if (roll < 25) {
    // Duplicate: the same call twice; the caller sees the second answer.
    auto second = req;
    inner_->Call(std::move(req), nullptr,
                 [this, second = std::move(second), executor,
                  done](BranchResult) mutable {
                   inner_->Call(std::move(second), executor, done);
                 });
    return;
  }
  if (roll < 35) {
    // Lost reply: the branch ran; the caller is told it failed transiently.
    inner_->Call(std::move(req), nullptr, [executor, done](BranchResult) {
      BranchResult r;
      r.outcome = BranchOutcome::kTransient;
      r.status = UnavailableError("reply lost");
      executor ? executor([done, r] { done(r); }) : done(r);
    });
    return;
  }
  inner_->Call(std::move(req), std::move(executor), std::move(done));
}

Status ChaosBranchClient::ValidateUrl(std::string_view url,
                                      std::string_view protocol) {
  return inner_->ValidateUrl(url, protocol);
}

void ChaosBranchClient::Shutdown() { inner_->Shutdown(); }

void ChaosBranchClient::DeliverLate() {
  std::vector<BranchRequest> late;
  {
    std::lock_guard<std::mutex> lock(mu_);
    late.swap(late_);
  }
  for (auto& r : late) CallAndWait(*inner_, r);
}

int ChaosBranchClient::Roll() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::uniform_int_distribution<int>(0, 99)(rng_);
}

void ChaosBranchClient::Fail(const Executor& executor, const Callback& done,
                             const char* why) {
  BranchResult r;
  r.outcome = BranchOutcome::kTransient;
  r.status = UnavailableError(why);
  executor ? executor([done, r] { done(r); }) : done(r);
}

}  // namespace dtx::testing
