// A Logger that keeps every line, for tests that read what was logged.

#ifndef DTX_TESTS_TESTING_RECORDING_LOGGER_H_
#define DTX_TESTS_TESTING_RECORDING_LOGGER_H_

#include "dtx/logger.h"

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace dtx::testing {

class RecordingLogger final : public Logger {
 public:
  bool ShouldLog(LogLevel) const override { return true; }
  // Each line is "<level> <message>", as a log file would show it.
  void Log(LogLevel level, std::string_view message) override {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(std::string(ToString(level)) + " " + std::string(message));
  }
  std::vector<std::string> Lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }
  // Every line, each ended by a newline.
  std::string Text() const {
    std::string out;
    for (const std::string& line : Lines()) out += line + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_RECORDING_LOGGER_H_
