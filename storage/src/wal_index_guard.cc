// The WAL index guard (dtx/storage/wal_index_guard.h, wal_index_guard.h):
// the table of guarded journals, the SIGBUS handler that reads it, and the
// SQLite VFS that wraps the default one to refuse a faulted journal's
// writes.
//
// The handler runs on the faulting thread, in the middle of SQLite's code:
// it uses only open, read, close, mmap and sigaction (async-signal-safe
// system calls), lock-free atomics and fixed buffers, and never allocates.

#include "dtx/storage/wal_index_guard.h"

#include "wal_index_guard.h"

#include <sqlite3.h>

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__linux__)
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace dtx {
namespace internal {
namespace {

constexpr const char* kVfsName = "dtx-guard";
constexpr int kSlots = 32;

// One guarded journal. state: 0 free, 1 being written, 2 in use. The paths
// are written while the state is 1 and read only while it is 2.
struct Slot {
  std::atomic<int> state{0};
  std::atomic<uint64_t> faults{0};
  char path[PATH_MAX] = {};  // as the journal names it (absolute)
  char real[PATH_MAX] = {};  // realpath(): how /proc/self/maps names it
};

// Process-wide by nature: a signal handler has no other way to its state.
// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables)
Slot g_slots[kSlots];
std::atomic<uint64_t> g_any_fault{0};
std::atomic<bool> g_installed{false};
sqlite3_vfs g_vfs;
sqlite3_vfs* g_real_vfs = nullptr;
#if defined(__linux__)
struct sigaction g_previous;
uintptr_t g_page_size = 4096;
#endif
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)

// Whether `name` is `base` followed by `suffix` (and nothing else, or, for
// /proc/self/maps, " (deleted)").
bool Names(const char* name, std::size_t len, const char* base,
           const char* suffix, bool deleted_ok) {
  const std::size_t b = std::strlen(base);
  const std::size_t s = std::strlen(suffix);
  if (b == 0 || len < b + s || std::memcmp(name, base, b) != 0 ||
      std::memcmp(name + b, suffix, s) != 0) {
    return false;
  }
  const std::size_t rest = len - b - s;
  if (rest == 0) return true;
  constexpr char kDeleted[] = " (deleted)";
  return deleted_ok && rest == sizeof kDeleted - 1 &&
         std::memcmp(name + b + s, kDeleted, rest) == 0;
}

// The slot whose journal's -shm file `name` is, or -1.
int SlotOfShm(const char* name, std::size_t len) {
  for (int i = 0; i < kSlots; ++i) {
    const Slot& slot = g_slots[i];
    if (slot.state.load(std::memory_order_acquire) != 2) continue;
    if (Names(name, len, slot.real, "-shm", true) ||
        Names(name, len, slot.path, "-shm", true)) {
      return i;
    }
  }
  return -1;
}

// Whether the file `name` (a journal's database, -wal or rollback journal)
// belongs to a journal that has taken a fault.
bool Faulted(const char* name) {
  if (name == nullptr || g_any_fault.load(std::memory_order_acquire) == 0) {
    return false;
  }
  const std::size_t len = std::strlen(name);
  for (const Slot& slot : g_slots) {
    if (slot.state.load(std::memory_order_acquire) != 2 ||
        slot.faults.load(std::memory_order_acquire) == 0) {
      continue;
    }
    for (const char* base : {slot.path, slot.real}) {
      for (const char* suffix : {"", "-wal", "-journal"}) {
        if (Names(name, len, base, suffix, false)) return true;
      }
    }
  }
  return false;
}

#if defined(__linux__)

uintptr_t ParseHex(const char* line, std::size_t len, std::size_t* i) {
  uintptr_t v = 0;
  for (; *i < len; ++*i) {
    const char c = line[*i];
    int d = 0;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      break;
    }
    v = v * 16 + static_cast<uintptr_t>(d);
  }
  return v;
}

// The slot of the mapping that holds `addr`, from its line of
// /proc/self/maps ("start-end perms offset dev inode   path"), or -1.
int SlotOfLine(const char* line, std::size_t len, uintptr_t addr) {
  std::size_t i = 0;
  const uintptr_t start = ParseHex(line, len, &i);
  if (i >= len || line[i] != '-') return -1;
  ++i;
  const uintptr_t end = ParseHex(line, len, &i);
  if (addr < start || addr >= end) return -1;
  // Past perms, offset, dev and inode to the path.
  for (int field = 0; field < 4; ++field) {
    while (i < len && line[i] == ' ') ++i;
    while (i < len && line[i] != ' ') ++i;
  }
  while (i < len && line[i] == ' ') ++i;
  return SlotOfShm(line + i, len - i);
}

int SlotOfAddress(uintptr_t addr) {
  const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  char line[PATH_MAX + 128];
  std::size_t len = 0;
  int found = -1;
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t k = 0; k < n; ++k) {
      if (buf[k] == '\n') {
        found = SlotOfLine(line, len, addr);
        len = 0;
        if (found >= 0) break;
      } else if (len < sizeof line) {
        line[len++] = buf[k];
      }
    }
    if (found >= 0) break;
  }
  ::close(fd);
  return found;
}

void OnSigbus(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  if (info->si_code == BUS_ADRERR) {
    const int slot = SlotOfAddress(addr);
    if (slot >= 0) {
      void* page = reinterpret_cast<void*>(addr & ~(g_page_size - 1));
      if (::mmap(page, g_page_size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                 0) != MAP_FAILED) {
        // Counted before the access is made again, so that every write
        // after it is refused (kMethods).
        g_slots[slot].faults.fetch_add(1, std::memory_order_acq_rel);
        g_any_fault.fetch_add(1, std::memory_order_acq_rel);
        return;
      }
    }
  }
  // Not a guarded journal's: what would have happened without the guard.
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 &&
      g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // The default action (an ignored SIGBUS from a fault would fault again
  // for ever): the access faults again on return and ends the process.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGBUS, &dfl, nullptr);
}

#endif  // __linux__

// --- the VFS: the default one, with writes refused after a fault ---------

struct GuardFile {
  sqlite3_file base;  // pMethods: kMethods
  const char* name;   // SQLite keeps it valid until xClose
  sqlite3_file* real;
};

sqlite3_file* Real(sqlite3_file* f) {
  return reinterpret_cast<GuardFile*>(f)->real;
}
bool IsFaulted(sqlite3_file* f) {
  return Faulted(reinterpret_cast<GuardFile*>(f)->name);
}

const sqlite3_io_methods kMethods = {
    3,
    [](sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); },
    [](sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
      return Real(f)->pMethods->xRead(Real(f), buf, n, off);
    },
    [](sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
      if (IsFaulted(f)) return SQLITE_IOERR_WRITE;
      return Real(f)->pMethods->xWrite(Real(f), buf, n, off);
    },
    [](sqlite3_file* f, sqlite3_int64 size) {
      if (IsFaulted(f)) return SQLITE_IOERR_TRUNCATE;
      return Real(f)->pMethods->xTruncate(Real(f), size);
    },
    [](sqlite3_file* f, int flags) {
      if (IsFaulted(f)) return SQLITE_IOERR_FSYNC;
      return Real(f)->pMethods->xSync(Real(f), flags);
    },
    [](sqlite3_file* f, sqlite3_int64* size) {
      return Real(f)->pMethods->xFileSize(Real(f), size);
    },
    [](sqlite3_file* f, int lock) {
      return Real(f)->pMethods->xLock(Real(f), lock);
    },
    [](sqlite3_file* f, int lock) {
      return Real(f)->pMethods->xUnlock(Real(f), lock);
    },
    [](sqlite3_file* f, int* out) {
      return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
    },
    [](sqlite3_file* f, int op, void* arg) {
      return Real(f)->pMethods->xFileControl(Real(f), op, arg);
    },
    [](sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); },
    [](sqlite3_file* f) {
      return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
    },
    [](sqlite3_file* f, int region, int size, int extend, void volatile** p) {
      return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, p);
    },
    [](sqlite3_file* f, int offset, int n, int flags) {
      return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
    },
    [](sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); },
    [](sqlite3_file* f, int drop) {
      return Real(f)->pMethods->xShmUnmap(Real(f), drop);
    },
    [](sqlite3_file* f, sqlite3_int64 off, int n, void** p) {
      return Real(f)->pMethods->xFetch(Real(f), off, n, p);
    },
    [](sqlite3_file* f, sqlite3_int64 off, void* p) {
      return Real(f)->pMethods->xUnfetch(Real(f), off, p);
    },
};

// The wrapped file follows GuardFile in SQLite's allocation, aligned.
constexpr std::size_t kRealOffset =
    (sizeof(GuardFile) + alignof(std::max_align_t) - 1) /
    alignof(std::max_align_t) * alignof(std::max_align_t);

int GuardOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file,
              int flags, int* out_flags) {
  auto* guard = reinterpret_cast<GuardFile*>(file);
  guard->base.pMethods = nullptr;
  guard->name = name;
  guard->real = reinterpret_cast<sqlite3_file*>(
      reinterpret_cast<unsigned char*>(file) + kRealOffset);
  const int rc =
      g_real_vfs->xOpen(g_real_vfs, name, guard->real, flags, out_flags);
  // SQLite calls xClose when pMethods is set, even after a failed open.
  if (guard->real->pMethods != nullptr) {
    if (guard->real->pMethods->iVersion < 3) {
      guard->real->pMethods->xClose(guard->real);
      return SQLITE_CANTOPEN;
    }
    guard->base.pMethods = &kMethods;
  }
  return rc;
}

// Registers the VFS: the default one with GuardOpen, its other methods
// handed the default VFS itself.
int RegisterVfs() {
  g_real_vfs = sqlite3_vfs_find(nullptr);
  if (g_real_vfs == nullptr || g_real_vfs->iVersion < 3) return SQLITE_ERROR;
  g_vfs = *g_real_vfs;
  g_vfs.zName = kVfsName;
  g_vfs.pNext = nullptr;
  g_vfs.szOsFile = static_cast<int>(kRealOffset) + g_real_vfs->szOsFile;
  g_vfs.xOpen = GuardOpen;
  // A faulted journal's -wal holds what was acknowledged: never deleted.
  g_vfs.xDelete = [](sqlite3_vfs*, const char* name, int sync) {
    if (Faulted(name)) return SQLITE_IOERR_DELETE;
    return g_real_vfs->xDelete(g_real_vfs, name, sync);
  };
  g_vfs.xAccess = [](sqlite3_vfs*, const char* name, int flags, int* out) {
    return g_real_vfs->xAccess(g_real_vfs, name, flags, out);
  };
  g_vfs.xFullPathname = [](sqlite3_vfs*, const char* name, int n, char* out) {
    return g_real_vfs->xFullPathname(g_real_vfs, name, n, out);
  };
  g_vfs.xDlOpen = [](sqlite3_vfs*, const char* name) {
    return g_real_vfs->xDlOpen(g_real_vfs, name);
  };
  g_vfs.xDlError = [](sqlite3_vfs*, int n, char* out) {
    g_real_vfs->xDlError(g_real_vfs, n, out);
  };
  g_vfs.xDlSym = [](sqlite3_vfs*, void* h, const char* sym) {
    return g_real_vfs->xDlSym(g_real_vfs, h, sym);
  };
  g_vfs.xDlClose = [](sqlite3_vfs*, void* h) {
    g_real_vfs->xDlClose(g_real_vfs, h);
  };
  g_vfs.xRandomness = [](sqlite3_vfs*, int n, char* out) {
    return g_real_vfs->xRandomness(g_real_vfs, n, out);
  };
  g_vfs.xSleep = [](sqlite3_vfs*, int us) {
    return g_real_vfs->xSleep(g_real_vfs, us);
  };
  g_vfs.xCurrentTime = [](sqlite3_vfs*, double* out) {
    return g_real_vfs->xCurrentTime(g_real_vfs, out);
  };
  g_vfs.xGetLastError = [](sqlite3_vfs*, int n, char* out) {
    return g_real_vfs->xGetLastError(g_real_vfs, n, out);
  };
  g_vfs.xCurrentTimeInt64 = [](sqlite3_vfs*, sqlite3_int64* out) {
    return g_real_vfs->xCurrentTimeInt64(g_real_vfs, out);
  };
  g_vfs.xSetSystemCall = [](sqlite3_vfs*, const char* name,
                            sqlite3_syscall_ptr call) {
    return g_real_vfs->xSetSystemCall(g_real_vfs, name, call);
  };
  g_vfs.xGetSystemCall = [](sqlite3_vfs*, const char* name) {
    return g_real_vfs->xGetSystemCall(g_real_vfs, name);
  };
  g_vfs.xNextSystemCall = [](sqlite3_vfs*, const char* name) {
    return g_real_vfs->xNextSystemCall(g_real_vfs, name);
  };
  return sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0);
}

Status Install() {
#if defined(__linux__)
  const int rc = RegisterVfs();
  if (rc != SQLITE_OK) {
    return InternalError(std::string("wal index guard: cannot register the "
                                     "SQLite VFS: ") +
                         sqlite3_errstr(rc));
  }
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0) g_page_size = static_cast<uintptr_t>(page);
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_sigaction = OnSigbus;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  if (::sigaction(SIGBUS, &action, &g_previous) != 0) {
    return InternalError(std::string("wal index guard: sigaction: ") +
                         std::strerror(errno));
  }
  g_installed.store(true, std::memory_order_release);
  return Status::Ok();
#else
  return UnimplementedError(
      "wal index guard: only on Linux (it reads /proc/self/maps)");
#endif
}

}  // namespace

const char* GuardedVfsName() {
  return g_installed.load(std::memory_order_acquire) ? kVfsName : nullptr;
}

WalIndexWatch WalIndexWatch::Register(const std::string& path) {
  if (!g_installed.load(std::memory_order_acquire) || path.size() >= PATH_MAX) {
    return WalIndexWatch();
  }
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) == nullptr) real[0] = '\0';
  for (int i = 0; i < kSlots; ++i) {
    int free = 0;
    if (!g_slots[i].state.compare_exchange_strong(free, 1)) continue;
    Slot& slot = g_slots[i];
    std::memcpy(slot.path, path.c_str(), path.size() + 1);
    std::memcpy(slot.real, real, std::strlen(real) + 1);
    slot.faults.store(0, std::memory_order_relaxed);
    slot.state.store(2, std::memory_order_release);
    return WalIndexWatch(i);
  }
  return WalIndexWatch();
}

WalIndexWatch::~WalIndexWatch() {
  if (slot_ >= 0) g_slots[slot_].state.store(0, std::memory_order_release);
}

WalIndexWatch::WalIndexWatch(WalIndexWatch&& other) noexcept
    : slot_(other.slot_) {
  other.slot_ = -1;
}

WalIndexWatch& WalIndexWatch::operator=(WalIndexWatch&& other) noexcept {
  if (this != &other) {
    if (slot_ >= 0) g_slots[slot_].state.store(0, std::memory_order_release);
    slot_ = other.slot_;
    other.slot_ = -1;
  }
  return *this;
}

uint64_t WalIndexWatch::faults() const {
  if (slot_ < 0) return 0;
  return g_slots[slot_].faults.load(std::memory_order_acquire);
}

}  // namespace internal

Status InstallWalIndexGuard() {
  static std::once_flag once;
  // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables)
  static Status result;
  std::call_once(once, [] { result = internal::Install(); });
  return result;
}

bool WalIndexGuardInstalled() { return internal::GuardedVfsName() != nullptr; }

}  // namespace dtx
