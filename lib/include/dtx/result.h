// dtx::Result<T>: either a value of type T or a non-OK Status, like abseil's
// StatusOr. Thread-compatible.
//
//   Result<int> ParsePort(std::string_view s);
//
//   DTX_ASSIGN_OR_RETURN(int port, ParsePort(text));   // in a function
//                                                      // returning Status
//                                                      // or Result<U>

#ifndef DTX_RESULT_H_
#define DTX_RESULT_H_

#include "dtx/status.h"

#include <cstdlib>
#include <optional>
#include <type_traits>
#include <utility>

namespace dtx {

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, Status>,
                "Result<Status> is meaningless: use Status");

 public:
  // A value. Implicit so that `return value;` works.
  Result(const T& value) : value_(value) {}        // NOLINT
  Result(T&& value) : value_(std::move(value)) {}  // NOLINT
  // An error. REQUIRES: !status.ok(); an OK status becomes kInternal.
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) {
      status_ =
          Status(StatusCode::kInternal, "result: built from an OK status");
    }
  }
  template <typename U, typename = std::enable_if_t<
                            std::is_constructible_v<T, U&&> &&
                            !std::is_same_v<std::decay_t<U>, T> &&
                            !std::is_same_v<std::decay_t<U>, Status>>>
  Result(U&& value) : value_(std::forward<U>(value)) {}  // NOLINT

  bool ok() const { return value_.has_value(); }
  // OK when a value is held.
  const Status& status() const { return status_; }

  // REQUIRES: ok(). Aborts otherwise: reading an error as a value is a bug.
  const T& value() const& {
    CheckOk();
    return *value_;
  }
  T& value() & {
    CheckOk();
    return *value_;
  }
  T&& value() && {
    CheckOk();
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // The value, or `fallback` when this holds an error.
  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }

  void IgnoreError() const {}

 private:
  void CheckOk() const {
    if (!value_.has_value()) std::abort();
  }

  std::optional<T> value_;
  Status status_;
};

}  // namespace dtx

// Evaluates `expr` (a Result<T>); on error returns its Status from the
// enclosing function, otherwise moves the value into `lhs`, which may be a
// declaration ("auto x") or an existing variable.
#define DTX_ASSIGN_OR_RETURN(lhs, expr)                                    \
  DTX_ASSIGN_OR_RETURN_IMPL_(DTX_STATUS_CONCAT_(dtx_result_, __COUNTER__), \
                             lhs, expr)

#define DTX_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#endif  // DTX_RESULT_H_
