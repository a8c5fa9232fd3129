// Size limits of what dtx stores and sends, and the checks that enforce them.
// A value over a limit is rejected with kInvalidArgument (kResourceExhausted
// for payloads) before anything is written.
//
// Identifiers (gid, branch id) travel as gRPC metadata values, which gRPC C++
// only accepts as printable ASCII; dtx accepts the visible subset (0x21-0x7E),
// so that an id never needs quoting in logs either.

#ifndef DTX_LIMITS_H_
#define DTX_LIMITS_H_

#include "dtx/clock.h"
#include "dtx/core_export.h"
#include "dtx/status.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
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
// A transaction's branch headers in all, counted as HTTP/2 counts a header
// list (key + value + 32 bytes per header): gRPC servers refuse metadata
// past 8 KiB by default, so a bigger set could never reach its branch.
inline constexpr std::size_t kMaxBranchHeadersBytes = 8 * 1024;
// Timeouts, intervals and a msg's delay: a year at most. Larger values are
// typos, and time arithmetic in nanoseconds must not overflow.
inline constexpr std::chrono::seconds kMaxDuration{366LL * 24 * 3600};
// Times given in Unix milliseconds (List's created_from and created_to) are
// checked against kMaxUnixMillis (dtx/clock.h: 2200-01-01, inside what a
// time point in nanoseconds holds).

// Non-empty, at most kMaxGidBytes, visible ASCII only.
DTX_CORE_EXPORT Status ValidateGid(std::string_view gid);
// Non-empty, at most kMaxBranchIdBytes, visible ASCII only.
DTX_CORE_EXPORT Status ValidateBranchId(std::string_view branch_id);
// At most kMaxUrlBytes, no control characters (may be empty: dtm's "no call").
DTX_CORE_EXPORT Status ValidateUrl(std::string_view url);
// At most kMaxPayloadBytes (kResourceExhausted otherwise).
DTX_CORE_EXPORT Status ValidatePayload(std::string_view payload);
// A transaction's branch headers (TransOptions::branch_headers), checked at
// Prepare and Submit: kInvalidArgument naming the key when a key is empty or
// has a character other than letters, digits, '-', '_' and '.'; when it is
// one that the transport owns: a "dtm-" key (dtm's metadata: dtm-gid,
// dtm-trans_type, dtm-branch_id, dtm-op, dtm-dtm, which a branch would then
// see twice), a "grpc-" key, a pseudo-header (":path"), a hop-by-hop header
// (connection, keep-alive, te, transfer-encoding, upgrade, proxy-*), host or
// content-length; when a value holds a byte outside 0x20-0x7E (except in a
// "-bin" key); or when the headers total more than kMaxBranchHeadersBytes.
// Keys are compared without regard to case.
DTX_CORE_EXPORT Status
ValidateBranchHeaders(const std::map<std::string, std::string>& headers);
// A time in Unix milliseconds: kInvalidArgument naming `what` unless it is
// in 0..kMaxUnixMillis.
DTX_CORE_EXPORT Status ValidateUnixMillis(std::string_view what, int64_t ms);
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
