// Starts a helper program of the benchmarks (the echo server) as a child
// process and reads its "port <n>" line.

#ifndef DTX_BENCH_CHILD_PROCESS_H_
#define DTX_BENCH_CHILD_PROCESS_H_

#include <string>
#include <sys/types.h>
#include <vector>

namespace dtx::bench {

class ChildProcess {
 public:
  // Starts argv; exits the benchmark when that fails.
  explicit ChildProcess(const std::vector<std::string>& argv);
  // Closes the child's stdin (its signal to exit) and waits for it.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line of the child's stdout ("" at end of output).
  std::string ReadLine();
  // Reads "port <n>" and returns n.
  int ReadPort();
  // Sends `signal` (for children that do not stop when stdin closes).
  void Signal(int signal);

 private:
  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
};

}  // namespace dtx::bench

#endif  // DTX_BENCH_CHILD_PROCESS_H_
