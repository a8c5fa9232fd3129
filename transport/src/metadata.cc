#include "metadata.h"

#include <string>

namespace dtx::internal {

Status NormalizeMetadataKey(std::string* key) {
  if (key->empty()) return InvalidArgumentError("header key is empty");
  for (char& c : *key) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) {
      return InvalidArgumentError(
          "header key '" + *key +
          "' may only hold letters, digits, '-', '_' and '.'");
    }
  }
  if (key->rfind("grpc-", 0) == 0) {
    return InvalidArgumentError("header key '" + *key +
                                "' is reserved by gRPC");
  }
  return Status::Ok();
}

Status CheckMetadataValue(std::string_view key, std::string_view value) {
  if (key.size() >= 4 && key.substr(key.size() - 4) == "-bin") {
    return Status::Ok();
  }
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      return InvalidArgumentError(
          "header '" + std::string(key) +
          "' has a value with a non-printable or non-ASCII byte (only "
          "'-bin' keys may carry binary values)");
    }
  }
  return Status::Ok();
}

}  // namespace dtx::internal
