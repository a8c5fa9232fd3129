// A Logger that keeps every line, for tests that read what was logged.

#ifndef DTX_TESTS_TESTING_RECORDING_LOGGER_H_
#define DTX_TESTS_TESTING_RECORDING_LOGGER_H_

#include "dtx/internal/mutex.h"
#include "dtx/logger.h"

#include <string>
#include <string_view>
#include <vector>

namespace dtx::testing {

class RecordingLogger final : public Logger {
 public:
  bool ShouldLog(LogLevel) const override { return true; }
  // Each line is "<level> <message>", as a log file would show it.
  void Log(LogLevel level, std::string_view message) override {
    dtx::internal::MutexLock lock(&mu_);
    lines_.push_back(std::string(ToString(level)) + " " + std::string(message));
  }
  std::vector<std::string> Lines() const {
    dtx::internal::MutexLock lock(&mu_);
    return lines_;
  }
  // Every line, each ended by a newline.
  std::string Text() const {
    std::string out;
    for (const std::string& line : Lines()) out += line + "\n";
    return out;
  }

 private:
  mutable dtx::internal::Mutex mu_;
  std::vector<std::string> lines_ DTX_GUARDED_BY(mu_);
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_RECORDING_LOGGER_H_
