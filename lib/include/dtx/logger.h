// Logger: where dtx writes what it does. A small seam so that hosts choose the
// backend; dtx never touches a global logger.
//
// Every line about a transaction contains "gid=<gid>", so one transaction can
// be followed with grep.
//
// Thread safety: implementations must be thread-safe.

#ifndef DTX_LOGGER_H_
#define DTX_LOGGER_H_

#include "dtx/core_export.h"
#include "dtx/result.h"

#include <memory>
#include <sstream>
#include <string_view>

namespace dtx {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

DTX_CORE_EXPORT std::string_view ToString(LogLevel level);
// "debug", "info", "warn" (or "warning"), "error", "off"; case-insensitive.
DTX_CORE_EXPORT Result<LogLevel> ParseLogLevel(std::string_view text);

class DTX_CORE_EXPORT Logger {
 public:
  virtual ~Logger();
  // True when a message at `level` would be written; lets callers skip
  // building it.
  virtual bool ShouldLog(LogLevel level) const = 0;
  virtual void Log(LogLevel level, std::string_view message) = 0;
};

// Discards everything.
DTX_CORE_EXPORT std::shared_ptr<Logger> NewNullLogger();

// Writes "<time> [dtx] [level] message" lines to stderr (through spdlog).
DTX_CORE_EXPORT std::shared_ptr<Logger> NewStderrLogger(
    LogLevel min_level = LogLevel::kInfo);

}  // namespace dtx

// Logs `expr`, a chain of `<<` operands, when `logger` (a pointer) wants the
// level: DTX_LOG(logger_, dtx::LogLevel::kInfo, "gid=" << gid << " submitted");
#define DTX_LOG(logger, level, expr)              \
  do {                                            \
    auto* dtx_logger_ = &*(logger);               \
    if (dtx_logger_->ShouldLog(level)) {          \
      std::ostringstream dtx_log_os_;             \
      dtx_log_os_ << expr;                        \
      dtx_logger_->Log(level, dtx_log_os_.str()); \
    }                                             \
  } while (false)

#endif  // DTX_LOGGER_H_
