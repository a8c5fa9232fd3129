#include "dtx/journal.h"

#include <future>
#include <memory>

namespace dtx {

Journal::~Journal() = default;

Result<UnfinishedSummary> Journal::Summarize(TimePoint) {
  return UnimplementedError("journal: Summarize is not implemented");
}

Result<StatusCounts> Journal::CountByStatus() {
  return UnimplementedError("journal: CountByStatus is not implemented");
}

bool Journal::shared() const { return false; }

Status WaitForWrite(const std::function<void(WriteDone)>& start) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> future = promise->get_future();
  start([promise](Status s) { promise->set_value(std::move(s)); });
  return future.get();
}

Result<std::vector<GlobalTrans>> WaitForClaim(Journal& journal,
                                              ClaimRequest request) {
  auto promise =
      std::make_shared<std::promise<Result<std::vector<GlobalTrans>>>>();
  auto future = promise->get_future();
  journal.Claim(std::move(request),
                [promise](Result<std::vector<GlobalTrans>> r) {
                  promise->set_value(std::move(r));
                });
  return future.get();
}

void Journal::PurgeFinished(PurgeRequest, PurgeDone done) {
  std::move(done)(
      UnimplementedError("journal: this journal does not remove finished "
                         "transactions"));
}

Result<PurgeResult> WaitForPurge(Journal& journal, PurgeRequest request) {
  auto promise = std::make_shared<std::promise<Result<PurgeResult>>>();
  auto future = promise->get_future();
  journal.PurgeFinished(std::move(request), [promise](Result<PurgeResult> r) {
    promise->set_value(std::move(r));
  });
  return future.get();
}

}  // namespace dtx
