// GatedJournal: wraps any Journal and can hold a SaveNew at two points,
// before the write is queued and before its completion runs, so that a test
// can start something else (a shutdown) at exactly that moment.
//
//   auto gated = std::make_unique<GatedJournal>(std::move(journal));
//   gated->hold_completion = true;  // the next SaveNew's completion waits
//   ...                             // start the SaveNew on another thread
//   gated->reached.get_future().wait();
//   ...                             // act while it is held
//   gated->completion_gate.set_value();
//
// Each gate holds one SaveNew (the first after it is armed) and each promise
// can be used once. fail_update_branches fails the next UpdateBranches
// writes (kUnavailable, nothing written), as an i/o error would; the
// ChangeStatus calls are counted. Every other call goes straight to the
// wrapped journal.
//
// Thread safety: as the wrapped journal; the gates are for one test thread.

#ifndef DTX_TESTS_TESTING_GATED_JOURNAL_H_
#define DTX_TESTS_TESTING_GATED_JOURNAL_H_

#include "dtx/journal.h"

#include <atomic>
#include <cstddef>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dtx::testing {

class GatedJournal final : public Journal {
 public:
  explicit GatedJournal(std::unique_ptr<Journal> inner);

  // Opened by the test; each holds one SaveNew.
  std::promise<void> queue_gate, completion_gate;
  // Arm a gate for the next SaveNew.
  std::atomic<bool> hold_queue{false}, hold_completion{false};
  // Set when a SaveNew reaches an armed gate.
  std::promise<void> reached;
  // The next this many UpdateBranches fail with kUnavailable.
  std::atomic<int> fail_update_branches{0};
  // ChangeStatus calls so far, and those marked lazy; UpdateBranches
  // calls marked lazy.
  std::atomic<int> status_changes{0}, lazy_status_changes{0};
  std::atomic<int> lazy_branch_updates{0};

  void SaveNew(GlobalTrans trans, std::vector<Branch> branches,
               WriteDone done) override;
  void AppendBranches(std::string gid, TransStatus expected,
                      std::vector<Branch> branches, WriteDone done) override;
  void ChangeStatus(StatusChange change, WriteDone done) override;
  void UpdateBranches(BranchResults results, WriteDone done) override;
  void TouchCron(CronUpdate update, WriteDone done) override;
  void MakeDue(std::string gid, TimePoint now, WriteDone done) override;
  void Claim(ClaimRequest request, ClaimDone done) override;
  void Flush(WriteDone done) override;
  void PurgeFinished(PurgeRequest request, PurgeDone done) override;
  Result<TransWithBranches> Find(const std::string& gid) override;
  Result<ListPage> List(const ListQuery& query) override;
  Result<UnfinishedSummary> Summarize(TimePoint now) override;
  Result<StatusCounts> CountByStatus() override;
  Result<DuePage> ListDue(TimePoint now, std::size_t limit,
                          DueCursor after) override;
  bool shared() const override;
  void Close() override;

 private:
  std::unique_ptr<Journal> inner_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_GATED_JOURNAL_H_
