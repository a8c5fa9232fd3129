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

#include <cstddef>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

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

// A log file (NewLogger). Created 0600 when it does not exist: lines carry
// gids, URLs and error texts. With `rotate`, once the file reaches
// `max_bytes` it is renamed to <stem>.1<ext> (the older ones shift up to
// .<max_files>, the oldest is removed) and a new one is started.
struct LogFile {
  std::string path;
  bool rotate = false;
  std::size_t max_bytes = 100 * 1024 * 1024;
  std::size_t max_files = 10;
};

// Writes "<time> [dtx] [level] message" lines to stderr (when `to_stderr`)
// and to each of `files`. kInvalidArgument naming the file when one cannot
// be opened (its directory is missing, no permission), or when `max_bytes`
// or `max_files` is 0.
DTX_CORE_EXPORT Result<std::shared_ptr<Logger>> NewLogger(
    LogLevel min_level, bool to_stderr, const std::vector<LogFile>& files);

// Text that another program wrote (a branch's error, a rollback reason, a
// peer's message), made fit for one log line: the password of a URL's user
// info masked (scheme://user:***@host), as the value of a password= or
// pwd= pair (a connection string); control characters and bytes that are
// not UTF-8 written as \xNN (no forged lines, no terminal escapes); and cut
// after `max_bytes` bytes of the text, on a character boundary, with
// "... (N bytes cut)". Used wherever dtx logs such text.
inline constexpr std::size_t kMaxLoggedTextBytes = 512;
DTX_CORE_EXPORT std::string LoggableText(
    std::string_view text, std::size_t max_bytes = kMaxLoggedTextBytes);

// Only the masking of LoggableText: for text kept or sent rather than
// logged (a branch's last error, an alert).
DTX_CORE_EXPORT std::string MaskCredentials(std::string_view text);

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
