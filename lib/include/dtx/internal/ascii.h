// ASCII case-insensitive comparison, for names whose case does not matter
// (HTTP header names, dtx-server's configuration keys). Internal to dtx
// (its adapters share it); not part of the API.

#ifndef DTX_INTERNAL_ASCII_H_
#define DTX_INTERNAL_ASCII_H_

#include <cstddef>
#include <string_view>

namespace dtx::internal {

// True when `a` and `b` are equal ignoring the case of ASCII letters; no
// copy is made (the locale is not consulted).
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace dtx::internal

#endif  // DTX_INTERNAL_ASCII_H_
