#include "dtx/limits.h"

#include "trans_runtime.h"

#include <gtest/gtest.h>

#include <string>

namespace dtx::internal {
namespace {

BranchResult Result(BranchOutcome outcome, std::string message) {
  BranchResult r;
  r.outcome = outcome;
  r.status = Status(StatusCode::kUnavailable, std::move(message));
  return r;
}

TEST(AttemptErrorTest, ClassAndMessage) {
  EXPECT_EQ(AttemptError(Result(BranchOutcome::kSuccess, "")), "");
  EXPECT_EQ(AttemptError(Result(BranchOutcome::kTransient, "refused")),
            "TRANSIENT: refused");
  EXPECT_EQ(AttemptError(Result(BranchOutcome::kOngoing, "")), "ONGOING");
}

// Shown by Query and sent in alerts: a URL's password is masked.
TEST(AttemptErrorTest, PasswordsAreMasked) {
  EXPECT_EQ(AttemptError(Result(BranchOutcome::kTransient,
                                "dial mysql://root:pw@db:3306 failed")),
            "TRANSIENT: dial mysql://root:***@db:3306 failed");
}

TEST(AttemptErrorTest, CutAtACharacterAndMadeValidUtf8) {
  // 300 two-byte characters: cut to at most kMaxLastErrorBytes, never
  // inside a character.
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "\xc3\xa9";
  const std::string got =
      AttemptError(Result(BranchOutcome::kFailure, long_text));
  EXPECT_LE(got.size(), kMaxLastErrorBytes);
  EXPECT_GE(got.size(), kMaxLastErrorBytes - 1);
  EXPECT_EQ((got.size() - std::string("FAILURE: ").size()) % 2, 0u);
  // Bytes that are not UTF-8 become '?'.
  EXPECT_EQ(AttemptError(Result(BranchOutcome::kFailure, "a\xff\xc3z")),
            "FAILURE: a??z");
  EXPECT_EQ(AttemptError(Result(BranchOutcome::kFailure, "\xe2\x82\xac")),
            "FAILURE: \xe2\x82\xac");
  // Well-formed only: surrogates, overlong forms and code points past
  // U+10FFFF are refused, as proto3 strings refuse them.
  EXPECT_EQ(AttemptError(Result(BranchOutcome::kFailure, "x\xed\xa0\x80y")),
            "FAILURE: x???y");
  EXPECT_EQ(AttemptError(Result(BranchOutcome::kFailure, "\xe0\x80\x80")),
            "FAILURE: ???");
  EXPECT_EQ(AttemptError(Result(BranchOutcome::kFailure, "\xf4\x90\x80\x80")),
            "FAILURE: ????");
}

}  // namespace
}  // namespace dtx::internal
