#include "dtx/transport/bearer_token.h"

#include <cctype>
#include <cstddef>

namespace dtx {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool IsBearer(std::string_view scheme) {
  constexpr std::string_view kBearer = "bearer";
  if (scheme.size() != kBearer.size()) return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(scheme[i])) != kBearer[i])
      return false;
  }
  return true;
}

}  // namespace

bool ConstantTimeEquals(std::string_view given, std::string_view secret) {
  // Every byte of the secret is looked at whatever `given` holds; the
  // differences are OR-ed together, with no early exit.
  unsigned diff = given.size() == secret.size() ? 0u : 1u;
  for (std::size_t i = 0; i < secret.size(); ++i) {
    const unsigned char g =
        i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned>(g ^ static_cast<unsigned char>(secret[i]));
  }
  return diff == 0;
}

BearerCheck CheckBearer(std::optional<std::string_view> authorization,
                        std::string_view token) {
  if (!authorization) return BearerCheck::kMissing;
  const std::string_view value = Trim(*authorization);
  const std::size_t space = value.find_first_of(" \t");
  if (space == std::string_view::npos || !IsBearer(value.substr(0, space))) {
    return BearerCheck::kMissing;
  }
  const std::string_view given = Trim(value.substr(space));
  if (given.empty()) return BearerCheck::kMissing;
  return ConstantTimeEquals(given, token) ? BearerCheck::kOk
                                          : BearerCheck::kWrong;
}

}  // namespace dtx
