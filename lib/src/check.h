// DTX_DCHECK(condition): a broken invariant is a bug, not a Status (house
// style 2.4). Debug builds abort with the condition and its place; release
// builds (NDEBUG) compile it away. DTX_CHECK always aborts: only for states
// that would otherwise corrupt the journal.

#ifndef DTX_LIB_CHECK_H_
#define DTX_LIB_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define DTX_CHECK(condition)                                                \
  do {                                                                      \
    if (!(condition)) {                                                     \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #condition);                                             \
      std::abort();                                                         \
    }                                                                       \
  } while (false)

#ifdef NDEBUG
#define DTX_DCHECK(condition) \
  do {                        \
    (void)sizeof(condition);  \
  } while (false)
#else
#define DTX_DCHECK(condition) DTX_CHECK(condition)
#endif

#endif  // DTX_LIB_CHECK_H_
