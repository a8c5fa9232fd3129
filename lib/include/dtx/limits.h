// Size limits of what dtx stores and sends, and the checks that enforce them.
// A value over a limit is rejected with kInvalidArgument (kResourceExhausted
// for payloads) before anything is written.
//
// Identifiers (gid, branch id) travel as gRPC metadata values, which gRPC C++
// only accepts as printable ASCII; dtx accepts the visible subset (0x21-0x7E),
// so that an id never needs quoting in logs either.

#ifndef DTX_LIMITS_H_
#define DTX_LIMITS_H_

#include "dtx/core_export.h"
#include "dtx/status.h"

#include <cstddef>
#include <string_view>

namespace dtx {

inline constexpr std::size_t kMaxGidBytes = 128;       // dtm: varchar(128)
inline constexpr std::size_t kMaxBranchIdBytes = 128;  // dtm: varchar(128)
inline constexpr std::size_t kMaxUrlBytes = 2048;      // dtm: varchar(1024)
// gRPC's default message size limit: a bigger payload could not reach any
// branch with default settings.
inline constexpr std::size_t kMaxPayloadBytes = 4 * 1024 * 1024;
// options, custom_data, ext_data, result, rollback_reason, query_prepared.
inline constexpr std::size_t kMaxTextBytes = 64 * 1024;
inline constexpr std::size_t kMaxBranchesPerTrans = 10000;
// Branch::last_error is cut to this many bytes (at a UTF-8 boundary).
inline constexpr std::size_t kMaxLastErrorBytes = 512;
// Nesting of JSON that dtx takes from its callers (request bodies,
// custom_data): dtm's documents nest three or four levels; writing out a
// document nested ten thousand deep would exhaust a thread's stack.
inline constexpr int kMaxJsonDepth = 64;

// Non-empty, at most kMaxGidBytes, visible ASCII only.
DTX_CORE_EXPORT Status ValidateGid(std::string_view gid);
// Non-empty, at most kMaxBranchIdBytes, visible ASCII only.
DTX_CORE_EXPORT Status ValidateBranchId(std::string_view branch_id);
// At most kMaxUrlBytes, no control characters (may be empty: dtm's "no call").
DTX_CORE_EXPORT Status ValidateUrl(std::string_view url);
// At most kMaxPayloadBytes (kResourceExhausted otherwise).
DTX_CORE_EXPORT Status ValidatePayload(std::string_view payload);
// At most kMaxTextBytes; `what` names the field in the error.
DTX_CORE_EXPORT Status ValidateText(std::string_view what,
                                    std::string_view text);
// kInvalidArgument naming `what` when `json`'s arrays and objects nest more
// than kMaxJsonDepth deep. Checks only the nesting (a scan of the text, in
// constant stack), not that it is JSON.
DTX_CORE_EXPORT Status ValidateJsonDepth(std::string_view what,
                                         std::string_view json);

}  // namespace dtx

#endif  // DTX_LIMITS_H_
