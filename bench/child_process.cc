#include "child_process.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace dtx::bench {

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
  int in_pipe[2];
  int out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
    std::perror("pipe");
    std::exit(1);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int rc =
      posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in_pipe[0]);
  close(out_pipe[1]);
  if (rc != 0) {
    std::fprintf(stderr, "spawn %s: %s\n", args[0], std::strerror(rc));
    std::exit(1);
  }
  in_fd_ = in_pipe[1];
  out_fd_ = out_pipe[0];
}

ChildProcess::~ChildProcess() {
  close(in_fd_);
  int status = 0;
  waitpid(pid_, &status, 0);
  close(out_fd_);
}

void ChildProcess::Signal(int signal) { kill(pid_, signal); }

std::string ChildProcess::ReadLine() {
  for (;;) {
    const auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    char chunk[256];
    const ssize_t n = read(out_fd_, chunk, sizeof(chunk));
    if (n <= 0) return "";
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

int ChildProcess::ReadPort() {
  const std::string line = ReadLine();
  if (line.rfind("port ", 0) != 0) {
    std::fprintf(stderr, "child did not report its port: '%s'\n", line.c_str());
    std::exit(1);
  }
  return std::stoi(line.substr(5));
}

}  // namespace dtx::bench
