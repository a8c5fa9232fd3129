#include "dtx/logger.h"

#include "dtx/spdlog_logger.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <string>

namespace dtx {
namespace {

class NullLogger final : public Logger {
 public:
  bool ShouldLog(LogLevel) const override { return false; }
  void Log(LogLevel, std::string_view) override {}
};

}  // namespace

Logger::~Logger() = default;

std::string_view ToString(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
    case LogLevel::kOff:
      return "off";
  }
  return "?";
}

Result<LogLevel> ParseLogLevel(std::string_view text) {
  std::string lower(text);
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warn" || lower == "warning") return LogLevel::kWarn;
  if (lower == "error") return LogLevel::kError;
  if (lower == "off" || lower == "none") return LogLevel::kOff;
  return InvalidArgumentError("unknown log level '" + std::string(text) +
                              "' (want debug, info, warn, error or off)");
}

std::shared_ptr<Logger> NewNullLogger() {
  return std::make_shared<NullLogger>();
}

std::shared_ptr<Logger> NewStderrLogger(LogLevel min_level) {
  // Not registered in spdlog's global registry: dtx keeps no global state.
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("dtx", std::move(sink));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f [%n] [%l] %v");
  switch (min_level) {
    case LogLevel::kDebug:
      logger->set_level(spdlog::level::debug);
      break;
    case LogLevel::kInfo:
      logger->set_level(spdlog::level::info);
      break;
    case LogLevel::kWarn:
      logger->set_level(spdlog::level::warn);
      break;
    case LogLevel::kError:
      logger->set_level(spdlog::level::err);
      break;
    case LogLevel::kOff:
      logger->set_level(spdlog::level::off);
      break;
  }
  return NewSpdlogLogger(std::move(logger));
}

}  // namespace dtx
