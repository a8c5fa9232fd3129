// The WAL index guard: keeps a SIGBUS from a SQLite journal's WAL index (its
// "-shm" file) from ending the process.
//
// SQLite maps the -shm file beside a journal into memory. When that file is
// truncated while in use (by an operator, a cleanup script, a full tmpfs),
// the next access to the mapping raises SIGBUS, and the process dies
// without a word. With the guard installed, such a fault in the -shm
// mapping of a dtx SQLite journal opened afterwards is taken instead: the
// page is replaced by a private zero page, every later write of that
// journal fails (an I/O error from the guard's SQLite VFS, so that nothing
// computed from the broken index reaches the disk), and the journal is lost
// as a deleted one is (docs/journal.md, "Identity"): writes and reads answer
// kUnavailable, on_lost is called (dtx-server's health turns NOT_SERVING),
// nothing is acknowledged after the fault. A restart rebuilds the index
// from the WAL. A SIGBUS anywhere else goes to the handler installed before
// the guard, or ends the process as it would have.
//
// The guard installs a process-wide signal handler, so a library does not
// do it by itself: dtx-server installs it at startup, an embedding host opts
// in (EmbeddedOptions::guard_wal_index, or a call of this function before
// the journal is opened). Linux only; elsewhere it returns kUnimplemented.
//
// Thread safety: thread-safe. Call it before other threads install SIGBUS
// handlers of their own, so that the guard can pass their faults on.

#ifndef DTX_STORAGE_WAL_INDEX_GUARD_H_
#define DTX_STORAGE_WAL_INDEX_GUARD_H_

#include "dtx/status.h"
#include "dtx/storage/sqlite_export.h"

namespace dtx {

// Installs the SIGBUS handler and registers the guard's SQLite VFS, once;
// later calls return the first call's status. Journals opened afterwards
// are guarded; journals opened before are not.
DTX_SQLITE_EXPORT Status InstallWalIndexGuard();

// Whether InstallWalIndexGuard has succeeded in this process.
DTX_SQLITE_EXPORT bool WalIndexGuardInstalled();

}  // namespace dtx

#endif  // DTX_STORAGE_WAL_INDEX_GUARD_H_
