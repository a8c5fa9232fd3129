#include "dtx/dtm_api.h"

#include <future>
#include <memory>
#include <utility>

namespace dtx {
namespace {

// Runs `start` with a callback and waits for the value it is given.
template <typename T, typename Start>
T Wait(Start start) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> future = promise->get_future();
  start([promise](T value) { promise->set_value(std::move(value)); });
  return future.get();
}

}  // namespace

DtmApi::~DtmApi() = default;

Result<std::string> DtmApi::NewGid() {
  return Wait<Result<std::string>>([this](ResultCallback<std::string> done) {
    NewGidAsync(std::move(done));
  });
}

Status DtmApi::Prepare(const TransRequest& request) {
  return Wait<Status>(
      [&](StatusCallback done) { PrepareAsync(request, std::move(done)); });
}

Status DtmApi::Submit(const TransRequest& request) {
  return Wait<Status>(
      [&](StatusCallback done) { SubmitAsync(request, std::move(done)); });
}

Status DtmApi::Abort(const TransRequest& request) {
  return Wait<Status>(
      [&](StatusCallback done) { AbortAsync(request, std::move(done)); });
}

Status DtmApi::RegisterBranch(const BranchRegistration& branch) {
  return Wait<Status>([&](StatusCallback done) {
    RegisterBranchAsync(branch, std::move(done));
  });
}

Result<TransWithBranches> DtmApi::Query(const std::string& gid) {
  return Wait<Result<TransWithBranches>>(
      [&](ResultCallback<TransWithBranches> done) {
        QueryAsync(gid, std::move(done));
      });
}

void DtmApi::PrepareWorkflowAsync(TransRequest,
                                  ResultCallback<TransWithBranches> done) {
  done(UnimplementedError("this coordinator client does not run workflows"));
}

Result<TransWithBranches> DtmApi::PrepareWorkflow(const TransRequest& request) {
  return Wait<Result<TransWithBranches>>(
      [&](ResultCallback<TransWithBranches> done) {
        PrepareWorkflowAsync(request, std::move(done));
      });
}

}  // namespace dtx
