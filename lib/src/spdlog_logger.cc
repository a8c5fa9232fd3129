#include "dtx/spdlog_logger.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace dtx {
namespace {

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

class SpdlogLogger final : public Logger {
 public:
  explicit SpdlogLogger(std::shared_ptr<spdlog::logger> logger)
      : logger_(std::move(logger)) {}

  bool ShouldLog(LogLevel level) const override {
    return level != LogLevel::kOff && logger_->should_log(ToSpdlog(level));
  }
  void Log(LogLevel level, std::string_view message) override {
    if (level == LogLevel::kOff) return;
    logger_->log(ToSpdlog(level), "{}", message);
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace

std::shared_ptr<Logger> NewSpdlogLogger(
    std::shared_ptr<spdlog::logger> logger) {
  if (logger == nullptr) std::abort();  // REQUIRES violated: a bug in the host
  return std::make_shared<SpdlogLogger>(std::move(logger));
}

}  // namespace dtx
