#include "dtx/spdlog_logger.h"

#include "prometheus_text.h"  // Utf8SequenceLength

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string>

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

// Messages carry what other programs said (a branch's answer, a peer's
// error text): a control character or a byte that is not UTF-8 is written
// as \xNN, so that one message is one line of text (no forged lines, no
// terminal escapes, nothing that makes grep call the log binary).
bool NeedsEscaping(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (c >= 0x80) {
      const std::size_t n = internal::Utf8SequenceLength(s, i);
      if (n == 0) return true;
      i += n - 1;
    }
  }
  return false;
}

std::string Escaped(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 16);
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c >= 0x80 ? internal::Utf8SequenceLength(s, i) : 1;
    if (c < 0x20 || c == 0x7f || n == 0) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
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
    if (NeedsEscaping(message)) {
      logger_->log(ToSpdlog(level), "{}", Escaped(message));
    } else {
      logger_->log(ToSpdlog(level), "{}", message);
    }
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
