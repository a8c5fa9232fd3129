// The WAL index guard's internals (dtx/storage/wal_index_guard.h): the table
// of guarded journals that the SIGBUS handler reads, and the SQLite VFS that
// refuses a faulted journal's writes.
//
// Why not the simpler ways. PRAGMA locking_mode=EXCLUSIVE keeps the WAL
// index in heap memory, but then no other connection may open the file: not
// the journal's own readers, not dtxctl beside a running server, not a
// second coordinator. A handler that maps a zero page over the faulting page
// and lets SQLite go on (the first attempt at this) keeps the process
// alive, but SQLite then reads an index of zeros: a page looked up in it is
// read from the database file instead of its newer copy in the WAL, and the
// transaction in progress can write pages computed from stale ones into the
// WAL, which a restart then replays: a corrupt journal. So the guard also
// owns the journal's file writes (a VFS wrapping the default one): from the
// fault on, every write, sync, truncate and delete of its files fails
// with SQLITE_IOERR, and the reads that preceded it lead nowhere.
//
// The handler only takes faults in the -shm mapping of a journal in the
// table (matched by path in /proc/self/maps, with async-signal-safe calls
// only); another SQLite database of the host is not the guard's to keep
// alive, since its connections do not use the guard's VFS.
//
// Thread safety: thread-safe; Faults may be read from any thread.

#ifndef DTX_STORAGE_SRC_WAL_INDEX_GUARD_H_
#define DTX_STORAGE_SRC_WAL_INDEX_GUARD_H_

#include <cstdint>
#include <string>

namespace dtx::internal {

// The VFS name to open a journal's connections with: the guard's when it is
// installed, else nullptr (SQLite's default).
const char* GuardedVfsName();

// A journal's entry in the table, from Register to its destruction.
// Movable; an entry that registered nothing (no guard, a full table) counts
// no faults.
class WalIndexWatch {
 public:
  WalIndexWatch() = default;
  // Registers the journal at `path` (absolute) when the guard is installed.
  static WalIndexWatch Register(const std::string& path);
  ~WalIndexWatch();
  WalIndexWatch(WalIndexWatch&& other) noexcept;
  WalIndexWatch& operator=(WalIndexWatch&& other) noexcept;
  WalIndexWatch(const WalIndexWatch&) = delete;
  WalIndexWatch& operator=(const WalIndexWatch&) = delete;

  // Faults taken in this journal's -shm mapping so far.
  uint64_t faults() const;

 private:
  explicit WalIndexWatch(int slot) : slot_(slot) {}
  int slot_ = -1;
};

}  // namespace dtx::internal

#endif  // DTX_STORAGE_SRC_WAL_INDEX_GUARD_H_
