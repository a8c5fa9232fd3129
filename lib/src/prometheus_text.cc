#include "prometheus_text.h"

#include <charconv>
#include <cmath>

namespace dtx::internal {
namespace {

bool IsAsciiLetter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

void AppendEscaped(std::string_view s, bool quote, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '"' && quote) {
      *out += "\\\"";
    } else {
      *out += c;
    }
  }
}

// Every integer a double holds exactly is below 2^53.
constexpr double kExactIntegerLimit = 9007199254740992.0;

template <typename T, typename... Format>
void AppendToChars(T value, std::string* out, Format... format) {
  char buf[64];  // the longest double, -1.2345678901234567e-308, is 24
  const auto [end, ec] =
      std::to_chars(buf, buf + sizeof(buf), value, format...);
  if (ec == std::errc()) out->append(buf, end);
}

}  // namespace

// The length of the well-formed UTF-8 sequence starting at s[i] (Unicode's
// table 3-7), or 0.
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80;  // the range of the second byte
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < lo || b > hi) return 0;
    lo = 0x80;
    hi = 0xBF;
  }
  return n;
}

bool IsMetricName(std::string_view s) {
  if (s.empty() || IsDigit(s[0])) return false;
  for (char c : s) {
    if (!IsAsciiLetter(c) && !IsDigit(c) && c != '_' && c != ':') return false;
  }
  return true;
}

bool IsLabelName(std::string_view s) {
  if (s.empty() || IsDigit(s[0])) return false;
  for (char c : s) {
    if (!IsAsciiLetter(c) && !IsDigit(c) && c != '_') return false;
  }
  return true;
}

bool IsUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ToUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

void AppendEscapedHelp(std::string_view s, std::string* out) {
  AppendEscaped(s, /*quote=*/false, out);
}

void AppendEscapedLabelValue(std::string_view s, std::string* out) {
  AppendEscaped(s, /*quote=*/true, out);
}

void AppendValue(double v, std::string* out) {
  if (std::isnan(v)) {
    *out += "NaN";
  } else if (std::isinf(v)) {
    *out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == 0) {
    *out += '0';  // -0 too
  } else if (std::trunc(v) == v && std::fabs(v) < kExactIntegerLimit) {
    AppendToChars(static_cast<std::int64_t>(v), out);
  } else if (std::fabs(v) >= 1e-4 && std::fabs(v) < 1e15) {
    AppendToChars(v, out, std::chars_format::fixed);
  } else {
    AppendToChars(v, out, std::chars_format::scientific);
  }
}

std::string ValueText(double v) {
  std::string s;
  AppendValue(v, &s);
  return s;
}

void AppendCount(std::uint64_t n, std::string* out) { AppendToChars(n, out); }

}  // namespace dtx::internal
