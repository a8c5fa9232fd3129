#include "dtx/branch_client.h"

#include <future>
#include <memory>

namespace dtx {

BranchClient::~BranchClient() = default;

std::string_view ToString(BranchOutcome outcome) {
  switch (outcome) {
    case BranchOutcome::kSuccess:
      return "SUCCESS";
    case BranchOutcome::kFailure:
      return "FAILURE";
    case BranchOutcome::kOngoing:
      return "ONGOING";
    case BranchOutcome::kTransient:
      return "TRANSIENT";
  }
  return "?";
}

BranchResult BranchClient::CallBlocking(BranchRequest request) {
  auto promise = std::make_shared<std::promise<BranchResult>>();
  auto future = promise->get_future();
  Call(std::move(request), nullptr,
       [promise](BranchResult r) { promise->set_value(std::move(r)); });
  return future.get();
}

BranchResult CallAndWait(BranchClient& client, BranchRequest request) {
  return client.CallBlocking(std::move(request));
}

}  // namespace dtx
