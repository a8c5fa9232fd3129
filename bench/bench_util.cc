#include "bench_util.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdlib.h>

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

void PrintResult(const std::string& name, double value, double baseline) {
  std::printf("RESULT %s value=%.0f baseline=%.0f ratio=%.2f\n", name.c_str(),
              value, baseline, baseline > 0 ? value / baseline : 0.0);
  std::fflush(stdout);
}

}  // namespace dtx::bench
