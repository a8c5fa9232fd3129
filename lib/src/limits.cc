#include "dtx/limits.h"

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

}  // namespace

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
