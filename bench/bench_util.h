// Small helpers shared by dtx's benchmarks: flags, latency percentiles, child
// processes and the RESULT line format.

#ifndef DTX_BENCH_BENCH_UTIL_H_
#define DTX_BENCH_BENCH_UTIL_H_

#include "subprocess.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace dtx::bench {

// Latencies of one run, in microseconds.
class Latencies {
 public:
  void Add(std::chrono::nanoseconds d) { us_.push_back(d.count() / 1000.0); }
  void Merge(const Latencies& other) {
    us_.insert(us_.end(), other.us_.begin(), other.us_.end());
  }
  // q in [0, 1]; 0 when empty.
  double Percentile(double q);
  std::size_t count() const { return us_.size(); }

 private:
  std::vector<double> us_;
  bool sorted_ = false;
};

// "--name value" from argv, or `fallback`.
std::string Flag(int argc, char** argv, const std::string& name,
                 const std::string& fallback);
// "1,16,64" -> {1, 16, 64}
std::vector<int> ParseIntList(const std::string& text);

// A new empty directory under the system's temporary directory; exits the
// benchmark when none can be made.
std::string FreshDir();

// Starts `argv` as a child process (tests/testing/subprocess.h), its stdin
// and stdout on pipes; exits the benchmark when it cannot. The child is
// killed when the Subprocess goes, unless it was waited for.
testing::Subprocess StartChild(const std::vector<std::string>& argv);
// The n of the child's next line, "port <n>"; exits the benchmark when the
// line is something else or does not come.
int ReadPort(testing::Subprocess& child);

// RESULT <name> value=<v> baseline=<b> ratio=<v/b>
void PrintResult(const std::string& name, double value, double baseline);

}  // namespace dtx::bench

#endif  // DTX_BENCH_BENCH_UTIL_H_
