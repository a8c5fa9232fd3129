#include "gated_journal.h"

#include <utility>

namespace dtx::testing {

GatedJournal::GatedJournal(std::unique_ptr<Journal> inner)
    : inner_(std::move(inner)) {}

void GatedJournal::SaveNew(GlobalTrans trans, std::vector<Branch> branches,
                           WriteDone done) {
  if (hold_queue.exchange(false)) {
    reached.set_value();
    queue_gate.get_future().wait();
  }
  if (hold_completion.exchange(false)) {
    // The wait runs where the wrapped journal runs plain completions (its
    // own thread), as a slow completion would; `done` then goes on as it
    // was given, through its executor if it has one.
    done = [this, done = std::move(done)](Status s) mutable {
      reached.set_value();
      completion_gate.get_future().wait();
      std::move(done)(std::move(s));
    };
  }
  inner_->SaveNew(std::move(trans), std::move(branches), std::move(done));
}

void GatedJournal::AppendBranches(std::string gid, TransStatus expected,
                                  std::vector<Branch> branches,
                                  WriteDone done) {
  inner_->AppendBranches(std::move(gid), expected, std::move(branches),
                         std::move(done));
}

void GatedJournal::ChangeStatus(StatusChange change, WriteDone done) {
  ++status_changes;
  if (change.lazy) ++lazy_status_changes;
  inner_->ChangeStatus(std::move(change), std::move(done));
}

void GatedJournal::UpdateBranches(BranchResults results, WriteDone done) {
  if (results.lazy) ++lazy_branch_updates;
  if (fail_update_branches.fetch_sub(1) > 0) {
    // Answered from the journal's side, as a failed batch would be: through
    // a Flush, so that the completion does not run on the caller's thread.
    inner_->Flush([done = std::move(done)](Status) mutable {
      std::move(done)(UnavailableError("gated journal: injected i/o error"));
    });
    return;
  }
  fail_update_branches.fetch_add(1);
  inner_->UpdateBranches(std::move(results), std::move(done));
}

bool GatedJournal::shared() const { return inner_->shared(); }

void GatedJournal::TouchCron(CronUpdate update, WriteDone done) {
  inner_->TouchCron(std::move(update), std::move(done));
}

void GatedJournal::MakeDue(std::string gid, TimePoint now, WriteDone done) {
  inner_->MakeDue(std::move(gid), now, std::move(done));
}

void GatedJournal::Claim(ClaimRequest request, ClaimDone done) {
  inner_->Claim(std::move(request), std::move(done));
}

void GatedJournal::Flush(WriteDone done) { inner_->Flush(std::move(done)); }

void GatedJournal::PurgeFinished(PurgeRequest request, PurgeDone done) {
  inner_->PurgeFinished(request, std::move(done));
}

Result<TransWithBranches> GatedJournal::Find(const std::string& gid) {
  return inner_->Find(gid);
}

Result<ListPage> GatedJournal::List(const ListQuery& query) {
  return inner_->List(query);
}

Result<UnfinishedSummary> GatedJournal::Summarize(TimePoint now) {
  return inner_->Summarize(now);
}

Result<StatusCounts> GatedJournal::CountByStatus() {
  return inner_->CountByStatus();
}

Result<DuePage> GatedJournal::ListDue(TimePoint now, std::size_t limit,
                                      DueCursor after) {
  return inner_->ListDue(now, limit, after);
}

void GatedJournal::Close() { inner_->Close(); }

}  // namespace dtx::testing
