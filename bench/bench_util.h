// Small helpers shared by dtx's benchmarks: flags, latency percentiles, child
// processes and the RESULT line format.

#ifndef DTX_BENCH_BENCH_UTIL_H_
#define DTX_BENCH_BENCH_UTIL_H_

#include "dtx/internal/mutex.h"

#include "subprocess.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
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

// The latencies of a closed loop's threads, each merging its own when it
// stops. Thread-safe.
class SharedLatencies {
 public:
  void Merge(const Latencies& mine) DTX_EXCLUDES(mu_) {
    internal::MutexLock lock(&mu_);
    all_.Merge(mine);
  }
  // Everything merged so far; leaves this empty.
  Latencies Take() DTX_EXCLUDES(mu_) {
    internal::MutexLock lock(&mu_);
    return std::exchange(all_, Latencies());
  }

 private:
  internal::Mutex mu_;
  Latencies all_ DTX_GUARDED_BY(mu_);
};

// "--name value" from argv, or `fallback`.
std::string Flag(int argc, char** argv, const std::string& name,
                 const std::string& fallback);
// True when argv has "--name" (a flag without a value).
bool HasFlag(int argc, char** argv, const std::string& name);
// Exits the benchmark (code 2) with a message naming the argument when argv
// has one that is not a known flag, or a flag of `with_value` without a
// value: a mistyped flag must not silently run the default benchmark.
// `program` names the benchmark in the message.
void RefuseUnknownFlags(int argc, char** argv, const std::string& program,
                        const std::vector<std::string>& with_value,
                        const std::vector<std::string>& bare);
// "1,16,64" -> {1, 16, 64}; exits the benchmark (code 2) when an item is
// not a number.
std::vector<int> ParseIntList(const std::string& text);
// The whole of `text` as a number; else exits (code 2) with a message
// naming `what` (the flag, say).
int ParseInt(const std::string& what, const std::string& text);
double ParseDouble(const std::string& what, const std::string& text);

// A new empty directory under the system's temporary directory; exits the
// benchmark when none can be made.
std::string FreshDir();

// Starts `argv` as a child process (tests/testing/subprocess.h), its stdin
// and stdout on pipes; exits the benchmark when it cannot. The child is
// killed when the Subprocess goes, unless it was waited for.
testing::Subprocess StartChild(const std::vector<std::string>& argv);
// The n of the child's next line, "<name> <n>" ("port 4000"); exits the
// benchmark when the line is something else or does not come.
int ReadPort(testing::Subprocess& child, const std::string& name = "port");

// GET `target` from 127.0.0.1:`port` on a new connection (Connection:
// close) and read the whole answer; the status code, or 0 when the
// connection or the answer failed.
int HttpGetStatus(int port, const std::string& target);

// RESULT <name> value=<v> baseline=<b> ratio=<v/b>
void PrintResult(const std::string& name, double value, double baseline);

}  // namespace dtx::bench

#endif  // DTX_BENCH_BENCH_UTIL_H_
