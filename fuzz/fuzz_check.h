// FUZZ_CHECK: a property every input must keep (a decode of an encode gives
// the value back, ...). A violation prints the condition and aborts, which
// libFuzzer reports as a crash and saves the input.

#ifndef DTX_FUZZ_FUZZ_CHECK_H_
#define DTX_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                   \
      std::abort();                                                    \
    }                                                                  \
  } while (false)

#endif  // DTX_FUZZ_FUZZ_CHECK_H_
