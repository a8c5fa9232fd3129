#include "bench_util.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdlib.h>
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

std::vector<int> ParseIntList(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(std::stoi(item));
  }
  return out;
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

int ReadPort(testing::Subprocess& child) {
  const std::string line = child.ReadLine().value_or("");
  if (line.rfind("port ", 0) != 0) {
    std::fprintf(stderr, "child did not report its port: '%s'\n", line.c_str());
    std::exit(1);
  }
  return std::stoi(line.substr(5));
}

void PrintResult(const std::string& name, double value, double baseline) {
  std::printf("RESULT %s value=%.0f baseline=%.0f ratio=%.2f\n", name.c_str(),
              value, baseline, baseline > 0 ? value / baseline : 0.0);
  std::fflush(stdout);
}

}  // namespace dtx::bench
