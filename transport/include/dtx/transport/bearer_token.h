// The check of an admin bearer token (RFC 6750, "Authorization: Bearer
// <token>"), shared by DtmServer's admin service (gRPC metadata
// "authorization") and dtx-server's admin HTTP API, so that both accept
// exactly the same credentials.
//
// Thread safety: pure functions.

#ifndef DTX_TRANSPORT_BEARER_TOKEN_H_
#define DTX_TRANSPORT_BEARER_TOKEN_H_

#include "dtx/transport/grpc_export.h"

#include <optional>
#include <string_view>

namespace dtx {

enum class BearerCheck {
  kOk,       // "Bearer <token>" with the expected token
  kMissing,  // no Authorization value, or not a Bearer one
  kWrong,    // a Bearer token, not the expected one
};

// Checks an Authorization value (nullopt when there is none) against
// `token`. The scheme is matched case-insensitively, spaces around the
// credentials are ignored, and the token is compared in constant time.
// REQUIRES: !token.empty().
DTX_GRPC_EXPORT BearerCheck CheckBearer(
    std::optional<std::string_view> authorization, std::string_view token);

// Whether `given` equals `secret`, in a time that depends on the secret's
// length only, not on where the first difference is.
DTX_GRPC_EXPORT bool ConstantTimeEquals(std::string_view given,
                                        std::string_view secret);

}  // namespace dtx

#endif  // DTX_TRANSPORT_BEARER_TOKEN_H_
