// dtx::Status: the outcome of an operation that can fail, with a code and a
// message.
//
// The codes carry the numbers of the gRPC and abseil canonical codes, so the
// transport converts them with a static_cast. An OK status holds no
// allocation and is cheap to copy. Choose codes with abseil's rule:
//   kUnavailable         the call may be retried as it is;
//   kAborted             the global transaction must roll back;
//   kFailedPrecondition  not in the required state (yet);
//   kAlreadyExists       a duplicate gid or branch;
//   kNotFound            an unknown gid;
//   kDataLoss            the journal is corrupt;
//   kInvalidArgument     a bad request from the caller;
//   kResourceExhausted   a size limit or a full disk.
//
// Messages are lowercase and start with the subsystem ("journal: gid x: ...").
//
// Thread safety: a Status is immutable once built; const methods may be called
// from any thread.

#ifndef DTX_STATUS_H_
#define DTX_STATUS_H_

#include "dtx/core_export.h"

#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace dtx {

// PERSISTED and on the wire: the numbers are gRPC's; never renumber.
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "OK", "INVALID_ARGUMENT", ... as gRPC spells them.
DTX_CORE_EXPORT std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] DTX_CORE_EXPORT Status {
 public:
  // An OK status.
  Status() = default;
  // REQUIRES: code != kOk, or message is empty (an OK status has no message).
  Status(StatusCode code, std::string_view message);

  static Status Ok() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  // Empty for an OK status.
  const std::string& message() const;

  // "OK" or "NOT_FOUND: journal: gid x not found".
  std::string ToString() const;

  // Returns a status with the same code and "prefix: message".
  Status WithPrefix(std::string_view prefix) const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message();
  }
  friend bool operator!=(const Status& a, const Status& b) { return !(a == b); }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  // Null when OK, so OK statuses are free to copy; shared because a Status is
  // immutable.
  std::shared_ptr<const Rep> rep_;
};

DTX_CORE_EXPORT std::ostream& operator<<(std::ostream& os, const Status& s);

// Builders, one per code used by dtx.
DTX_CORE_EXPORT Status CancelledError(std::string_view message);
DTX_CORE_EXPORT Status UnknownError(std::string_view message);
DTX_CORE_EXPORT Status InvalidArgumentError(std::string_view message);
DTX_CORE_EXPORT Status DeadlineExceededError(std::string_view message);
DTX_CORE_EXPORT Status NotFoundError(std::string_view message);
DTX_CORE_EXPORT Status AlreadyExistsError(std::string_view message);
DTX_CORE_EXPORT Status PermissionDeniedError(std::string_view message);
DTX_CORE_EXPORT Status ResourceExhaustedError(std::string_view message);
DTX_CORE_EXPORT Status FailedPreconditionError(std::string_view message);
DTX_CORE_EXPORT Status AbortedError(std::string_view message);
DTX_CORE_EXPORT Status OutOfRangeError(std::string_view message);
DTX_CORE_EXPORT Status UnimplementedError(std::string_view message);
DTX_CORE_EXPORT Status InternalError(std::string_view message);
DTX_CORE_EXPORT Status UnavailableError(std::string_view message);
DTX_CORE_EXPORT Status DataLossError(std::string_view message);

}  // namespace dtx

#define DTX_STATUS_CONCAT_INNER_(a, b) a##b
#define DTX_STATUS_CONCAT_(a, b) DTX_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define DTX_RETURN_IF_ERROR(expr) \
  DTX_RETURN_IF_ERROR_IMPL_(DTX_STATUS_CONCAT_(dtx_status_, __COUNTER__), expr)
#define DTX_RETURN_IF_ERROR_IMPL_(tmp, expr) \
  do {                                       \
    ::dtx::Status tmp = (expr);              \
    if (!tmp.ok()) return tmp;               \
  } while (false)

#endif  // DTX_STATUS_H_
