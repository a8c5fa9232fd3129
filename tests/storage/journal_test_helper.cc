// A second process for the journal tests.
//
//   journal_test_helper stream <path> <threads> <prefix>
//       Writes transactions (gids <prefix>s<thread>-<n>) from <threads>
//       threads until killed. For each
//       write it prints one line once the write is acknowledged:
//         new <gid>   SaveNew(gid, submitted, branches 01/compensate,
//         01/action) br <gid>    UpdateBranches(gid, 01/action -> succeed) end
//         <gid>   ChangeStatus(gid, submitted -> succeed)
//   journal_test_helper lock <path>
//       Holds the write lock of a journal (BEGIN IMMEDIATE), prints "locked",
//       and releases it when stdin closes.
//   journal_test_helper exclusive <path>
//       Holds the file in exclusive locking mode, so that no other process can
//       even read it; prints "locked"; releases it when stdin closes.
//   journal_test_helper open <path> [--as-nobody]
//       Opens the journal (after switching to uid/gid 65534 when asked),
//       writes one transaction, and prints the status of each step.
//   journal_test_helper shm <path> guard|noguard
//       Installs the WAL index guard (or not), opens the journal, writes one
//       transaction ("first <status>"), truncates <path>-shm to nothing,
//       writes another ("second <status>"), reads the first ("find
//       <status>") and prints "lost" if on_lost was called. Unguarded, the
//       second write dies of SIGBUS.
//   journal_test_helper other-fault <path> chain|nochain
//       Installs a SIGBUS handler of its own that exits 42 (chain) or none,
//       then the guard, opens a guarded journal, and touches a page of
//       another mapped file past its end: a fault the guard must pass on.

#include "dtx/journal.h"
#include "dtx/storage/sqlite_journal.h"
#include "dtx/storage/wal_index_guard.h"

#include <sqlite3.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <mutex>
#include <string>
#include <sys/mman.h>
#include <sys/types.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

std::mutex out_mu;

// One write(2) per line: the line reaches the pipe whole, and is there even if
// the process is killed right after.
void Emit(const std::string& line) {
  std::lock_guard<std::mutex> lock(out_mu);
  const std::string text = line + "\n";
  if (write(STDOUT_FILENO, text.data(), text.size()) < 0) _exit(3);
}

void WaitForStdinClose() {
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
}

int Stream(const std::string& path, int threads, const std::string& prefix) {
  dtx::SqliteJournalOptions options;
  options.path = path;
  auto journal_or = dtx::SqliteJournal::Open(options);
  if (!journal_or.ok()) {
    std::cerr << journal_or.status() << "\n";
    return 2;
  }
  auto journal = std::move(journal_or).value();
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&journal, &prefix, w] {
      for (int i = 0;; ++i) {
        const std::string gid =
            prefix + "s" + std::to_string(w) + "-" + std::to_string(i);
        dtx::GlobalTrans t;
        t.gid = gid;
        t.trans_type = dtx::TransType::kSaga;
        t.status = dtx::TransStatus::kSubmitted;
        std::vector<dtx::Branch> branches(2);
        branches[0].branch_id = branches[1].branch_id = "01";
        branches[0].op = dtx::BranchOp::kCompensate;
        branches[1].op = dtx::BranchOp::kAction;
        branches[1].bin_data = "payload of " + gid;
        dtx::Status s = dtx::WaitForWrite([&](dtx::WriteDone done) {
          journal->SaveNew(t, branches, std::move(done));
        });
        if (!s.ok()) _exit(4);
        Emit("new " + gid);
        s = dtx::WaitForWrite([&](dtx::WriteDone done) {
          journal->UpdateBranches(
              {gid,
               dtx::TransStatus::kSubmitted,
               {{"01", dtx::BranchOp::kAction, dtx::BranchStatus::kSucceed}}},
              std::move(done));
        });
        if (!s.ok()) _exit(5);
        Emit("br " + gid);
        dtx::StatusChange c;
        c.gid = gid;
        c.from = dtx::TransStatus::kSubmitted;
        c.to = dtx::TransStatus::kSucceed;
        s = dtx::WaitForWrite([&](dtx::WriteDone done) {
          journal->ChangeStatus(c, std::move(done));
        });
        if (!s.ok()) _exit(6);
        Emit("end " + gid);
      }
    });
  }
  for (auto& t : workers) t.join();  // never: the test kills us
  return 0;
}

int HoldLock(const std::string& path, bool exclusive) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 2;
  const char* sql =
      exclusive ? "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; "
                  "UPDATE trans_global SET owner = owner; COMMIT; "
                  "BEGIN EXCLUSIVE;"
                : "BEGIN IMMEDIATE; UPDATE trans_global SET owner = owner;";
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::cerr << "lock: " << (err ? err : "?") << "\n";
    return 2;
  }
  Emit("locked");
  WaitForStdinClose();
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return 0;
}

int OpenOnce(const std::string& path, bool as_nobody) {
  if (as_nobody) {
    if (setgid(65534) != 0 || setuid(65534) != 0) {
      Emit("setuid failed: " + std::string(std::strerror(errno)));
      return 2;
    }
  }
  dtx::SqliteJournalOptions options;
  options.path = path;
  options.busy_timeout = std::chrono::milliseconds(200);
  auto journal = dtx::SqliteJournal::Open(options);
  if (!journal.ok()) {
    Emit("open " + journal.status().ToString());
    return 0;
  }
  Emit("open OK");
  dtx::GlobalTrans t;
  t.gid = "opened-by-helper";
  dtx::Status s = dtx::WaitForWrite([&](dtx::WriteDone done) {
    (*journal)->SaveNew(t, {}, std::move(done));
  });
  Emit("write " + s.ToString());
  return 0;
}

dtx::Status WriteOne(dtx::Journal& journal, const std::string& gid) {
  dtx::GlobalTrans t;
  t.gid = gid;
  t.trans_type = dtx::TransType::kSaga;
  t.status = dtx::TransStatus::kSubmitted;
  return dtx::WaitForWrite(
      [&](dtx::WriteDone done) { journal.SaveNew(t, {}, std::move(done)); });
}

int TruncateShm(const std::string& path, bool guard) {
  if (guard) {
    dtx::Status installed = dtx::InstallWalIndexGuard();
    if (!installed.ok()) {
      Emit("install " + installed.ToString());
      return 2;
    }
  }
  static std::atomic<bool> lost{false};
  dtx::SqliteJournalOptions options;
  options.path = path;
  options.on_lost = [](const dtx::Status&) { lost = true; };
  auto journal = dtx::SqliteJournal::Open(options);
  if (!journal.ok()) {
    Emit("open " + journal.status().ToString());
    return 2;
  }
  Emit("first " + WriteOne(**journal, "before-truncate").ToString());
  if (truncate((path + "-shm").c_str(), 0) != 0) return 3;
  Emit("second " + WriteOne(**journal, "after-truncate").ToString());
  Emit("find " + (*journal)->Find("before-truncate").status().ToString());
  if (lost) Emit("lost");
  return 0;
}

void ExitWith42(int) { _exit(42); }

int OtherFault(const std::string& path, bool chain) {
  if (chain) {
    struct sigaction action {};
    action.sa_handler = ExitWith42;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, nullptr) != 0) return 2;
  }
  if (!dtx::InstallWalIndexGuard().ok()) return 2;
  dtx::SqliteJournalOptions options;
  options.path = path;
  auto journal = dtx::SqliteJournal::Open(options);
  if (!journal.ok() || !WriteOne(**journal, "guarded").ok()) return 2;
  const std::string other = path + ".other";
  const int fd = ::open(other.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, 4096) != 0) return 2;
  void* map = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED || ftruncate(fd, 0) != 0) return 2;
  Emit("touching");
  volatile char* byte = static_cast<volatile char*>(map);
  *byte = 1;  // SIGBUS: past the end of the file
  Emit("survived");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 4 && args[0] == "stream")
    return Stream(args[1], std::stoi(args[2]), args[3]);
  if (args.size() == 2 && args[0] == "lock") return HoldLock(args[1], false);
  if (args.size() == 2 && args[0] == "exclusive")
    return HoldLock(args[1], true);
  if (args.size() == 3 && args[0] == "shm")
    return TruncateShm(args[1], args[2] == "guard");
  if (args.size() == 3 && args[0] == "other-fault")
    return OtherFault(args[1], args[2] == "chain");
  if (args.size() >= 2 && args[0] == "open") {
    return OpenOnce(args[1], args.size() == 3 && args[2] == "--as-nobody");
  }
  std::cerr << "usage: journal_test_helper stream <path> <threads> <prefix> | "
               "lock <path> | "
               "exclusive <path> | open <path> [--as-nobody] | "
               "shm <path> guard|noguard | other-fault <path> chain|nochain\n";
  return 1;
}
