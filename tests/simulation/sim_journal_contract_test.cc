// SimJournal passes the Journal contract that SqliteJournal passes
// (tests/storage/journal_contract_test.h), so that what the simulation runs
// the coordinator on behaves as the real journal does. The contract's tests
// block for each write and use threads: an adapter serializes every call and
// runs the simulation's loop until the journal is idle after each write.

#include "dtx/testing/sim_journal.h"

#include "journal_contract_test.h"

#include <memory>
#include <mutex>
#include <utility>

namespace dtx::testing {
namespace {

class SyncSimJournal final : public Journal {
 public:
  explicit SyncSimJournal(const Clock* clock)
      : random_(1),
        journal_(loop_, random_, clock),
        process_(loop_.NewProcess("coordinator")),
        handle_(journal_.Open(process_)) {}
  ~SyncSimJournal() override { Close(); }

  void SaveNew(GlobalTrans trans, std::vector<Branch> branches,
               WriteDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    handle_->SaveNew(std::move(trans), std::move(branches), std::move(done));
    Drain();
  }
  void AppendBranches(std::string gid, TransStatus expected,
                      std::vector<Branch> branches, WriteDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    handle_->AppendBranches(std::move(gid), expected, std::move(branches),
                            std::move(done));
    Drain();
  }
  void ChangeStatus(StatusChange change, WriteDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    handle_->ChangeStatus(std::move(change), std::move(done));
    Drain();
  }
  void UpdateBranches(BranchResults results, WriteDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    handle_->UpdateBranches(std::move(results), std::move(done));
    Drain();
  }
  void TouchCron(CronUpdate update, WriteDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    handle_->TouchCron(std::move(update), std::move(done));
    Drain();
  }
  void MakeDue(std::string gid, TimePoint now, WriteDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    handle_->MakeDue(std::move(gid), now, std::move(done));
    Drain();
  }
  void Claim(ClaimRequest request, ClaimDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    handle_->Claim(std::move(request), std::move(done));
    Drain();
  }
  void PurgeFinished(PurgeRequest request, PurgeDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    handle_->PurgeFinished(request, std::move(done));
    Drain();
  }
  void Flush(WriteDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    handle_->Flush(std::move(done));
    Drain();
  }
  Result<TransWithBranches> Find(const std::string& gid) override {
    std::lock_guard<std::mutex> lock(mu_);
    return handle_->Find(gid);
  }
  Result<ListPage> List(const ListQuery& query) override {
    std::lock_guard<std::mutex> lock(mu_);
    return handle_->List(query);
  }
  Result<DuePage> ListDue(TimePoint now, std::size_t limit,
                          DueCursor after) override {
    std::lock_guard<std::mutex> lock(mu_);
    return handle_->ListDue(now, limit, after);
  }
  Result<UnfinishedSummary> Summarize(TimePoint now) override {
    std::lock_guard<std::mutex> lock(mu_);
    return handle_->Summarize(now);
  }
  Result<StatusCounts> CountByStatus() override {
    std::lock_guard<std::mutex> lock(mu_);
    return handle_->CountByStatus();
  }
  void Close() override {
    std::lock_guard<std::mutex> lock(mu_);
    handle_->Close();
    Drain();
  }

 private:
  void Drain() {
    while (loop_.RunOne()) {
    }
  }

  std::mutex mu_;
  SimLoop loop_;
  SimRandom random_;
  SimJournal journal_;
  std::shared_ptr<SimLoop::Process> process_;
  std::unique_ptr<Journal> handle_;
};

struct SimFactory {
  std::unique_ptr<Journal> Make(const Clock* clock) {
    return std::make_unique<SyncSimJournal>(clock);
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sim, JournalContractTest, SimFactory);

}  // namespace
}  // namespace dtx::testing
