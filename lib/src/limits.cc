#include "dtx/limits.h"

#include <cctype>
#include <string>

namespace dtx {
namespace {

bool IsVisibleAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

Status ValidateId(std::string_view what, std::string_view id,
                  std::size_t max_bytes) {
  if (id.empty()) return InvalidArgumentError(std::string(what) + " is empty");
  if (id.size() > max_bytes) {
    return InvalidArgumentError(
        std::string(what) + " is " + std::to_string(id.size()) +
        " bytes, over the limit of " + std::to_string(max_bytes));
  }
  if (!IsVisibleAscii(id)) {
    return InvalidArgumentError(
        std::string(what) +
        " must be visible ASCII (0x21-0x7E): no spaces, control "
        "characters or non-ASCII bytes");
  }
  return Status::Ok();
}

std::string LowerCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Why `key` (lower case) belongs to the transport, or nullptr.
const char* ReservedBecause(const std::string& key) {
  if (StartsWith(key, ":")) return "a pseudo-header";
  if (StartsWith(key, "dtm-")) {
    return "dtm's metadata (dtx sends dtm-gid, dtm-trans_type, dtm-branch_id, "
           "dtm-op and dtm-dtm itself)";
  }
  if (StartsWith(key, "grpc-")) return "reserved by gRPC";
  if (key == "connection" || key == "keep-alive" || key == "te" ||
      key == "transfer-encoding" || key == "upgrade" ||
      StartsWith(key, "proxy-")) {
    return "a hop-by-hop header";
  }
  if (key == "host" || key == "content-length") {
    return "set by the transport";
  }
  return nullptr;
}

}  // namespace

Status ValidateBranchHeaders(
    const std::map<std::string, std::string>& headers) {
  std::size_t total = 0;
  for (const auto& [key, value] : headers) {
    if (key.empty()) return InvalidArgumentError("branch header key is empty");
    const std::string lower = LowerCase(key);
    if (const char* why = ReservedBecause(lower)) {
      return InvalidArgumentError("branch header '" + key +
                                  "' is not allowed: " + why);
    }
    for (char c : key) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                      c == '.';
      if (!ok) {
        return InvalidArgumentError(
            "branch header key '" + key +
            "' has a bad character (letters, digits, '-', '_', '.' only)");
      }
    }
    const bool binary =
        lower.size() >= 4 && lower.compare(lower.size() - 4, 4, "-bin") == 0;
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if (!binary && (u < 0x20 || u > 0x7e)) {
        return InvalidArgumentError("branch header '" + key +
                                    "' has a value with a non-printable byte");
      }
    }
    total += key.size() + value.size() + 32;
  }
  if (total > kMaxBranchHeadersBytes) {
    return InvalidArgumentError(
        "branch headers total " + std::to_string(total) +
        " bytes (key + value + 32 per header), over the limit of " +
        std::to_string(kMaxBranchHeadersBytes));
  }
  return Status::Ok();
}

Status ValidateUnixMillis(std::string_view what, int64_t ms) {
  if (ms >= 0 && ms <= kMaxUnixMillis) return Status::Ok();
  return InvalidArgumentError(std::string(what) + " " + std::to_string(ms) +
                              " is outside 0.." +
                              std::to_string(kMaxUnixMillis) +
                              " (Unix milliseconds before the year 2200)");
}

Status ValidateGid(std::string_view gid) {
  return ValidateId("gid", gid, kMaxGidBytes);
}

Status ValidateBranchId(std::string_view branch_id) {
  return ValidateId("branch id", branch_id, kMaxBranchIdBytes);
}

Status ValidateUrl(std::string_view url) {
  if (url.size() > kMaxUrlBytes) {
    return InvalidArgumentError("url is " + std::to_string(url.size()) +
                                " bytes, over the limit of " +
                                std::to_string(kMaxUrlBytes));
  }
  for (unsigned char c : url) {
    if (c < 0x20 || c == 0x7f) {
      return InvalidArgumentError("url contains a control character");
    }
  }
  return Status::Ok();
}

Status ValidatePayload(std::string_view payload) {
  if (payload.size() > kMaxPayloadBytes) {
    return ResourceExhaustedError(
        "payload is " + std::to_string(payload.size()) +
        " bytes, over the limit of " + std::to_string(kMaxPayloadBytes));
  }
  return Status::Ok();
}

Status ValidateText(std::string_view what, std::string_view text) {
  if (text.size() > kMaxTextBytes) {
    return InvalidArgumentError(
        std::string(what) + " is " + std::to_string(text.size()) +
        " bytes, over the limit of " + std::to_string(kMaxTextBytes));
  }
  return Status::Ok();
}

Status ValidateJsonDepth(std::string_view what, std::string_view json) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return InvalidArgumentError(std::string(what) +
                                    ": JSON nested deeper than " +
                                    std::to_string(kMaxJsonDepth) + " levels");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return Status::Ok();
}

}  // namespace dtx
