// gtest helpers for Status and Result.
//
//   EXPECT_OK(journal->Flush());
//   ASSERT_OK_AND_ASSIGN(auto page, journal->List({}));
//   EXPECT_THAT(status, StatusIs(StatusCode::kNotFound));

#ifndef DTX_TESTS_TESTING_STATUS_MATCHERS_H_
#define DTX_TESTS_TESTING_STATUS_MATCHERS_H_

#include "dtx/result.h"
#include "dtx/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dtx::testing {

inline const Status& GetStatus(const Status& s) { return s; }
template <typename T>
const Status& GetStatus(const Result<T>& r) {
  return r.status();
}

MATCHER(IsOk, "is OK") {
  const Status& s = ::dtx::testing::GetStatus(arg);
  if (!s.ok()) *result_listener << s.ToString();
  return s.ok();
}

MATCHER_P(StatusIs, code,
          "has code " + std::string(::dtx::StatusCodeName(code))) {
  const Status& s = ::dtx::testing::GetStatus(arg);
  *result_listener << s.ToString();
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, substring,
           "has code " + std::string(::dtx::StatusCodeName(code)) +
               " and a message containing '" + std::string(substring) + "'") {
  const Status& s = ::dtx::testing::GetStatus(arg);
  *result_listener << s.ToString();
  return s.code() == code && s.message().find(substring) != std::string::npos;
}

}  // namespace dtx::testing

#define EXPECT_OK(expr) EXPECT_THAT((expr), ::dtx::testing::IsOk())
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::dtx::testing::IsOk())

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                      \
  ASSERT_OK_AND_ASSIGN_IMPL_(DTX_STATUS_CONCAT_(dtx_test_result_, __LINE__), \
                             lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_OK(tmp);                                  \
  lhs = std::move(tmp).value()

#endif  // DTX_TESTS_TESTING_STATUS_MATCHERS_H_
