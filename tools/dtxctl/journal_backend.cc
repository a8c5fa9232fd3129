// JournalBackend: dtxctl on a journal file. Reads need nothing of the
// coordinator (SQLite's WAL lets readers run beside its writer); the two
// writes are compare-and-set writes of the journal, so that one racing the
// coordinator fails instead of overwriting what it wrote.

#include "dtx/storage/sqlite_journal.h"

#include "backend.h"

#include <chrono>
#include <memory>
#include <utility>

namespace dtx::dtxctl {
namespace {

class JournalBackend final : public Backend {
 public:
  explicit JournalBackend(std::unique_ptr<Journal> journal)
      : journal_(std::move(journal)) {}
  ~JournalBackend() override { journal_->Close(); }

  Result<ListPage> List(const ListQuery& query) override {
    ListQuery q = query;
    if (q.limit > kMaxListLimit) q.limit = kMaxListLimit;
    return journal_->List(q);
  }
  Result<TransWithBranches> Find(const std::string& gid) override {
    return journal_->Find(gid);
  }
  Result<TransStats> Stats() override {
    TransStats out;
    DTX_ASSIGN_OR_RETURN(out.counts, journal_->CountByStatus());
    DTX_ASSIGN_OR_RETURN(out.unfinished,
                         journal_->Summarize(std::chrono::system_clock::now()));
    return out;
  }

  Status RetryNow(const std::string& gid) override {
    DTX_ASSIGN_OR_RETURN(TransStatus status, Unfinished(gid));
    (void)status;
    const TimePoint now = std::chrono::system_clock::now();
    Status s = WaitForWrite(
        [&](WriteDone done) { journal_->MakeDue(gid, now, std::move(done)); });
    if (s.code() == StatusCode::kFailedPrecondition) {
      return FailedPreconditionError(
          "transaction " + gid +
          " finished meanwhile (the coordinator changed it): " + s.message());
    }
    return s;
  }

  Status ForceStop(const std::string& gid) override {
    DTX_ASSIGN_OR_RETURN(TransStatus status, Unfinished(gid));
    StatusChange change;
    change.gid = gid;
    change.from = status;
    change.to = TransStatus::kFailed;
    change.rollback_reason = "force stopped by dtxctl";
    Status s = WaitForWrite([&](WriteDone done) {
      journal_->ChangeStatus(std::move(change), std::move(done));
    });
    if (s.code() == StatusCode::kFailedPrecondition) {
      return FailedPreconditionError(
          "transaction " + gid + " changed meanwhile (it was " +
          std::string(ToString(status)) +
          "; the coordinator wrote it since): nothing written; look again "
          "with `dtxctl show`");
    }
    return s;
  }

 private:
  // The stored status of `gid` when it is unfinished; kFailedPrecondition
  // naming its status when it is finished.
  Result<TransStatus> Unfinished(const std::string& gid) {
    DTX_ASSIGN_OR_RETURN(TransWithBranches found, journal_->Find(gid));
    if (IsFinished(found.trans.status)) {
      return FailedPreconditionError("transaction " + gid + " is finished (" +
                                     std::string(ToString(found.trans.status)) +
                                     ")");
    }
    return found.trans.status;
  }

  std::unique_ptr<Journal> journal_;
};

}  // namespace

Result<std::unique_ptr<Backend>> OpenJournalBackend(
    const JournalOptions& options) {
  SqliteJournalOptions journal_options;
  journal_options.path = options.path;
  journal_options.busy_timeout = std::chrono::milliseconds(2000);
  journal_options.read_only = true;
  // Read-only first, also for --write: it checks that the file exists and
  // is a journal of this version without creating or migrating anything.
  DTX_ASSIGN_OR_RETURN(auto journal, SqliteJournal::Open(journal_options));
  if (options.write) {
    journal->Close();
    journal.reset();
    journal_options.read_only = false;
    journal_options.create_if_missing = false;
    DTX_ASSIGN_OR_RETURN(journal, SqliteJournal::Open(journal_options));
  }
  return MakeJournalBackend(std::move(journal));
}

std::unique_ptr<Backend> MakeJournalBackend(std::unique_ptr<Journal> journal) {
  return std::make_unique<JournalBackend>(std::move(journal));
}

}  // namespace dtx::dtxctl
