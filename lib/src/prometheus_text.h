// The lexical rules of Prometheus's text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/) that
// metrics.cc renders with: valid names, escaping, UTF-8 and how a number is
// spelled. Stateless; thread-safe.

#ifndef DTX_LIB_PROMETHEUS_TEXT_H_
#define DTX_LIB_PROMETHEUS_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dtx::internal {

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsMetricName(std::string_view s);
// [a-zA-Z_][a-zA-Z0-9_]*
bool IsLabelName(std::string_view s);

bool IsUtf8(std::string_view s);
// The length of the well-formed UTF-8 sequence starting at s[i] (Unicode's
// table 3-7), or 0. Also used for Branch::last_error (trans_runtime.cc).
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i);
// `s` with each byte that is not part of a well-formed UTF-8 sequence (no
// overlong forms, no surrogates, nothing above U+10FFFF) replaced by U+FFFD.
std::string ToUtf8(std::string_view s);

// HELP text escapes backslash and newline.
void AppendEscapedHelp(std::string_view s, std::string* out);
// A label value escapes backslash, double quote and newline.
void AppendEscapedLabelValue(std::string_view s, std::string* out);

// A value as Prometheus (Go's strconv.ParseFloat) reads it: +Inf, -Inf, NaN;
// integers below 2^53 in plain digits; other numbers in the shortest form
// that reads back exactly, plain from 1e-4 to 1e15 and scientific outside.
void AppendValue(double v, std::string* out);
std::string ValueText(double v);
// A 64-bit count, exactly.
void AppendCount(std::uint64_t n, std::string* out);

}  // namespace dtx::internal

#endif  // DTX_LIB_PROMETHEUS_TEXT_H_
