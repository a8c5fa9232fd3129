#include "bench_util.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <netinet/in.h>
#include <sstream>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace dtx::bench {

double Latencies::Percentile(double q) {
  if (us_.empty()) return 0;
  if (!sorted_) {
    std::sort(us_.begin(), us_.end());
    sorted_ = true;
  }
  const auto index =
      static_cast<std::size_t>(q * static_cast<double>(us_.size() - 1));
  return us_[index];
}

std::string Flag(int argc, char** argv, const std::string& name,
                 const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return fallback;
}

bool HasFlag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == name) return true;
  }
  return false;
}

void RefuseUnknownFlags(int argc, char** argv, const std::string& program,
                        const std::vector<std::string>& with_value,
                        const std::vector<std::string>& bare) {
  auto known = [](const std::vector<std::string>& names,
                  const std::string& arg) {
    return std::find(names.begin(), names.end(), arg) != names.end();
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (known(bare, arg)) continue;
    if (known(with_value, arg)) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: %s needs a value\n", program.c_str(),
                     arg.c_str());
        std::exit(2);
      }
      ++i;
      continue;
    }
    std::string all;
    for (const auto* names : {&with_value, &bare}) {
      for (const std::string& n : *names) all += " " + n;
    }
    std::fprintf(stderr, "%s: unknown flag %s (known:%s)\n", program.c_str(),
                 arg.c_str(), all.c_str());
    std::exit(2);
  }
}

int HttpGetStatus(int port, const std::string& target) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + target +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                "Connection: close\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[16384];
      ssize_t n = 0;
      while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) {
        answer.append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  close(fd);
  // "HTTP/1.1 200 OK"
  if (answer.size() < 12 || answer.compare(0, 5, "HTTP/") != 0) return 0;
  return std::atoi(answer.c_str() + 9);
}

namespace {

[[noreturn]] void NotANumber(const std::string& what, const std::string& text) {
  std::fprintf(stderr, "%s: %s: '%s' is not a number\n",
               program_invocation_short_name, what.c_str(), text.c_str());
  std::exit(2);
}

}  // namespace

std::vector<int> ParseIntList(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(ParseInt("a list of numbers", item));
  }
  return out;
}

int ParseInt(const std::string& what, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < INT_MIN || v > INT_MAX)
    NotANumber(what, text);
  return static_cast<int>(v);
}

double ParseDouble(const std::string& what, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v))
    NotANumber(what, text);
  return v;
}

std::string FreshDir() {
  std::string pattern =
      std::filesystem::temp_directory_path().string() + "/dtx-bench-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return pattern;
}

testing::Subprocess StartChild(const std::vector<std::string>& argv) {
  auto child = testing::Subprocess::Start(argv);
  if (!child.ok()) {
    std::fprintf(stderr, "%s\n", child.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(child).value();
}

int ReadPort(testing::Subprocess& child, const std::string& name) {
  const std::string line = child.ReadLine().value_or("");
  const std::string prefix = name + " ";
  if (line.rfind(prefix, 0) != 0) {
    std::fprintf(stderr, "child did not report its %s: '%s'\n", name.c_str(),
                 line.c_str());
    std::exit(1);
  }
  return std::stoi(line.substr(prefix.size()));
}

void PrintResult(const std::string& name, double value, double baseline) {
  std::printf("RESULT %s value=%.0f baseline=%.0f ratio=%.2f\n", name.c_str(),
              value, baseline, baseline > 0 ? value / baseline : 0.0);
  std::fflush(stdout);
}

}  // namespace dtx::bench
