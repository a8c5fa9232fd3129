#include "dtx/logger.h"

#include "dtx/spdlog_logger.h"

#include "prometheus_text.h"  // Utf8SequenceLength

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace dtx {
namespace {

class NullLogger final : public Logger {
 public:
  bool ShouldLog(LogLevel) const override { return false; }
  void Log(LogLevel, std::string_view) override {}
};

char Lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool StartsWithNoCase(std::string_view s, std::size_t at,
                      std::string_view prefix) {
  if (s.size() - at < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (Lower(s[at + i]) != prefix[i]) return false;
  }
  return true;
}

// Where a URL's authority, or a key=value's value, ends.
bool EndsToken(char c) {
  return c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t' ||
         c == '\n' || c == '\r' || c == '"' || c == '\'' || c == ';' ||
         c == ',' || c == '>' || c == ')' || c == ']';
}

}  // namespace

Logger::~Logger() = default;

std::string MaskCredentials(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    // scheme://user:password@host: the password goes.
    if (text.compare(i, 3, "://") == 0) {
      out.append("://");
      i += 3;
      std::size_t end = i;
      while (end < text.size() && !EndsToken(text[end])) ++end;
      const std::string_view authority = text.substr(i, end - i);
      const std::size_t at = authority.rfind('@');
      const std::size_t colon = authority.find(':');
      if (at != std::string_view::npos && colon != std::string_view::npos &&
          colon < at) {
        out.append(authority.substr(0, colon + 1));
        out.append("***");
        out.append(authority.substr(at));
      } else {
        out.append(authority);
      }
      i = end;
      continue;
    }
    // password=secret, pwd=secret (libpq, ODBC): the value goes.
    for (std::string_view key : {"password=", "pwd="}) {
      const bool word_start =
          i == 0 || !(std::isalnum(static_cast<unsigned char>(text[i - 1])) ||
                      text[i - 1] == '_');
      if (word_start && StartsWithNoCase(text, i, key)) {
        out.append(text.substr(i, key.size()));
        i += key.size();
        std::size_t end = i;
        while (end < text.size() && !EndsToken(text[end])) ++end;
        if (end > i) out.append("***");
        i = end;
        break;
      }
    }
    if (i < text.size() && text.compare(i, 3, "://") != 0) {
      out.push_back(text[i]);
      ++i;
    }
  }
  return out;
}

std::string LoggableText(std::string_view text, std::size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string masked = MaskCredentials(text);
  std::string out;
  out.reserve(std::min(masked.size(), max_bytes) + 32);
  std::size_t i = 0;
  while (i < masked.size()) {
    const auto c = static_cast<unsigned char>(masked[i]);
    const std::size_t n =
        c >= 0x80 ? internal::Utf8SequenceLength(masked, i) : 1;
    const std::size_t take = n == 0 ? 1 : n;
    if (i + take > max_bytes) break;
    if (c < 0x20 || c == 0x7f || n == 0) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out.append(masked, i, n);
    }
    i += take;
  }
  if (i < masked.size()) {
    out += "... (" + std::to_string(masked.size() - i) + " bytes cut)";
  }
  return out;
}

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

namespace {

spdlog::level::level_enum SpdlogLevel(LogLevel level) {
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

std::shared_ptr<Logger> FromSinks(LogLevel min_level,
                                  std::vector<spdlog::sink_ptr> sinks) {
  // Not registered in spdlog's global registry: dtx keeps no global state.
  auto logger =
      std::make_shared<spdlog::logger>("dtx", sinks.begin(), sinks.end());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f [%n] [%l] %v");
  logger->set_level(SpdlogLevel(min_level));
  return NewSpdlogLogger(std::move(logger));
}

}  // namespace

std::shared_ptr<Logger> NewStderrLogger(LogLevel min_level) {
  return FromSinks(min_level,
                   {std::make_shared<spdlog::sinks::stderr_color_sink_mt>()});
}

Result<std::shared_ptr<Logger>> NewLogger(LogLevel min_level, bool to_stderr,
                                          const std::vector<LogFile>& files) {
  std::vector<spdlog::sink_ptr> sinks;
  if (to_stderr) {
    sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  }
  for (const LogFile& f : files) {
    if (f.path.empty()) return InvalidArgumentError("log file: empty path");
    if (f.rotate && (f.max_bytes == 0 || f.max_files == 0)) {
      return InvalidArgumentError("log file " + f.path +
                                  ": rotation needs a size and a number of "
                                  "files above 0");
    }
    // Owner-only, as the journal: created here before spdlog opens it
    // (spdlog would create it with the umask's mode). Rotation renames it,
    // keeping the mode.
    const int fd =
        ::open(f.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      return InvalidArgumentError("log file " + f.path +
                                  ": cannot open: " + std::strerror(errno));
    }
    ::close(fd);
    // Each file rotation opens makes is owner-only too.
    spdlog::file_event_handlers owner_only;
    owner_only.after_open = [](const spdlog::filename_t&, std::FILE* file) {
      if (file != nullptr) (void)::fchmod(::fileno(file), 0600);
    };
    try {
      if (f.rotate) {
        sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
            f.path, f.max_bytes, f.max_files, /*rotate_on_open=*/false,
            owner_only));
      } else {
        sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(
            f.path, /*truncate=*/false, owner_only));
      }
    } catch (const std::exception& e) {
      return InvalidArgumentError("log file " + f.path + ": " + e.what());
    }
  }
  return FromSinks(min_level, std::move(sinks));
}

}  // namespace dtx
