// Builds against the installed package: one transaction through the SQLite
// journal, printed back.

#include "dtx/dtx.h"
#include "dtx/storage/sqlite_journal.h"

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer <journal path>\n");
    return 2;
  }
  dtx::SqliteJournalOptions options;
  options.path = argv[1];
  auto journal = dtx::SqliteJournal::Open(options);
  if (!journal.ok()) {
    std::fprintf(stderr, "%s\n", journal.status().ToString().c_str());
    return 1;
  }
  auto ids = dtx::NewRandomIdGenerator();
  dtx::GlobalTrans trans;
  trans.gid = ids->NewGid();
  trans.trans_type = dtx::TransType::kSaga;
  trans.status = dtx::TransStatus::kSubmitted;
  dtx::Status s = dtx::WaitForWrite([&](dtx::WriteDone done) {
    (*journal)->SaveNew(trans, {}, std::move(done));
  });
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto found = (*journal)->Find(trans.gid);
  if (!found.ok()) return 1;
  std::printf("dtx %s: %s %s %s\n", dtx::kVersion, found->trans.gid.c_str(),
              std::string(dtx::ToString(found->trans.trans_type)).c_str(),
              std::string(dtx::ToString(found->trans.status)).c_str());
  return 0;
}
