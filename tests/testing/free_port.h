// A port of 127.0.0.1 that the kernel just handed out (bound, then
// released): free for a moment, for a child process that must listen on a
// known port (a restarted service keeps its own). 0 when none was given.

#ifndef DTX_TESTS_TESTING_FREE_PORT_H_
#define DTX_TESTS_TESTING_FREE_PORT_H_

namespace dtx::testing {

int FreeLoopbackPort();

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_FREE_PORT_H_
