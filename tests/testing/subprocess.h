// Runs a helper program as a child process (posix_spawn, never a bare fork of
// the test process) with its stdin and stdout connected to pipes.

#ifndef DTX_TESTS_TESTING_SUBPROCESS_H_
#define DTX_TESTS_TESTING_SUBPROCESS_H_

#include "dtx/result.h"

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace dtx::testing {

class Subprocess {
 public:
  // Starts `argv[0]` with `argv`.
  static Result<Subprocess> Start(const std::vector<std::string>& argv);
  // The same with the child's stderr written to the file `stderr_path`
  // (created or truncated) instead of the test's stderr.
  static Result<Subprocess> Start(const std::vector<std::string>& argv,
                                  const std::string& stderr_path);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // Kills the child with SIGKILL if it still runs.
  ~Subprocess();

  // The next line of the child's stdout without its newline; nullopt at end of
  // output or when nothing arrives within `timeout`.
  std::optional<std::string> ReadLine(
      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Writes to the child's stdin.
  bool Write(const std::string& text);
  // Closes the child's stdin.
  void CloseStdin();
  void Kill(int signal);
  // Waits for the child and returns its exit code (128 + signal if killed).
  int Wait();
  // The same, or nullopt if the child is still running after `timeout`.
  std::optional<int> WaitFor(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }

 private:
  Subprocess(pid_t pid, int in_fd, int out_fd)
      : pid_(pid), in_fd_(in_fd), out_fd_(out_fd) {}

  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  std::optional<int> exit_code_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_SUBPROCESS_H_
