// journal_tour: the durable journal under dtx's coordinator, step by step.
//
// A saga with two steps is journaled, found due by the scheduler's claim,
// its branch results recorded, and finished; the journal is then closed and
// reopened to show that everything acknowledged is still there.
//
//   journal_tour <path/to/dtx.db>

#include "dtx/dtx.h"
#include "dtx/storage/sqlite_journal.h"

#include <cstdio>
#include <string>

namespace {

dtx::Status Run(const std::string& path) {
  auto logger = dtx::NewStderrLogger(dtx::LogLevel::kInfo);
  dtx::SqliteJournalOptions options;
  options.path = path;
  options.logger = logger;
  DTX_ASSIGN_OR_RETURN(auto journal, dtx::SqliteJournal::Open(options));

  auto ids = dtx::NewRandomIdGenerator();
  const std::string gid = ids->NewGid();
  const dtx::TimePoint now = dtx::SystemClock().Now();

  // 1. Submit: the global transaction and all its branch rows, durable before
  //    any branch would be called.
  dtx::GlobalTrans saga;
  saga.gid = gid;
  saga.trans_type = dtx::TransType::kSaga;
  saga.status = dtx::TransStatus::kSubmitted;
  saga.next_cron_interval = std::chrono::seconds(10);
  saga.next_cron_time = now;  // due at once
  std::vector<dtx::Branch> branches;
  for (const char* id : {"01", "02"}) {
    for (auto op : {dtx::BranchOp::kCompensate, dtx::BranchOp::kAction}) {
      dtx::Branch b;
      b.branch_id = id;
      b.op = op;
      b.url = std::string("localhost:9000/api.trans.v1.Trans/") +
              (std::string(id) == "01" ? "TransOut" : "TransIn") +
              (op == dtx::BranchOp::kCompensate ? "Revert" : "");
      b.bin_data = "{\"amount\":30}";
      branches.push_back(b);
    }
  }
  DTX_RETURN_IF_ERROR(dtx::WaitForWrite([&](dtx::WriteDone done) {
    journal->SaveNew(saga, branches, std::move(done));
  }));
  std::printf("1. submitted saga gid=%s with %zu branch rows\n", gid.c_str(),
              branches.size());

  // 2. The scheduler claims due work with a lease.
  dtx::ClaimRequest claim;
  claim.now = now;
  claim.owner = "journal-tour";
  claim.lease_until = now + std::chrono::seconds(10);
  DTX_ASSIGN_OR_RETURN(auto claimed, dtx::WaitForClaim(*journal, claim));
  std::printf("2. claimed %zu due transaction(s) until the lease ends\n",
              claimed.size());

  // 3. Both actions succeed: their results, then the final status.
  DTX_RETURN_IF_ERROR(dtx::WaitForWrite([&](dtx::WriteDone done) {
    journal->UpdateBranches(
        {gid,
         dtx::TransStatus::kSubmitted,
         {{"01", dtx::BranchOp::kAction, dtx::BranchStatus::kSucceed},
          {"02", dtx::BranchOp::kAction, dtx::BranchStatus::kSucceed}}},
        std::move(done));
  }));
  dtx::StatusChange finish;
  finish.gid = gid;
  finish.from = dtx::TransStatus::kSubmitted;
  finish.to = dtx::TransStatus::kSucceed;
  DTX_RETURN_IF_ERROR(dtx::WaitForWrite([&](dtx::WriteDone done) {
    journal->ChangeStatus(finish, std::move(done));
  }));
  std::printf("3. recorded both actions and the final status\n");

  // 4. Close, reopen, read back.
  journal->Close();
  journal.reset();
  DTX_ASSIGN_OR_RETURN(journal, dtx::SqliteJournal::Open(options));
  DTX_ASSIGN_OR_RETURN(auto found, journal->Find(gid));
  std::printf("4. after reopening: gid=%s %s %s\n", gid.c_str(),
              std::string(dtx::ToString(found.trans.trans_type)).c_str(),
              std::string(dtx::ToString(found.trans.status)).c_str());
  for (const auto& b : found.branches) {
    std::printf("     branch %s %-10s %-8s %s\n", b.branch_id.c_str(),
                std::string(dtx::ToString(b.op)).c_str(),
                std::string(dtx::ToString(b.status)).c_str(), b.url.c_str());
  }
  return dtx::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
    std::fprintf(stderr, "usage: journal_tour [path/to/dtx.db]\n");
    return 2;
  }
  const std::string path = argc > 1 ? argv[1] : "dtx.db";
  dtx::Status s = Run(path);
  if (!s.ok()) {
    std::fprintf(stderr, "journal_tour: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
