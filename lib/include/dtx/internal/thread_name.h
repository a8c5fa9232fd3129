// Names the calling thread, so that top -H, perf, gdb and /proc show which of
// dtx's threads is which ("dtx-io", "dtx-journal", ...). Linux keeps at most
// 15 characters; elsewhere this does nothing.

#ifndef DTX_INTERNAL_THREAD_NAME_H_
#define DTX_INTERNAL_THREAD_NAME_H_

#if defined(__linux__)
#include <pthread.h>
#endif

namespace dtx::internal {

inline void NameThisThread(const char* name) {
#if defined(__linux__)
  pthread_setname_np(pthread_self(), name);
#else
  (void)name;
#endif
}

}  // namespace dtx::internal

#endif  // DTX_INTERNAL_THREAD_NAME_H_
