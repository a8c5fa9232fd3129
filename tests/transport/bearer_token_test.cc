#include "dtx/transport/bearer_token.h"

#include <gtest/gtest.h>

#include <string>

namespace dtx {
namespace {

TEST(BearerTokenTest, AcceptsOnlyTheTokenAsABearerCredential) {
  const std::string token = "s3cr3t-T0ken";
  EXPECT_EQ(CheckBearer("Bearer s3cr3t-T0ken", token), BearerCheck::kOk);
  EXPECT_EQ(CheckBearer("bearer s3cr3t-T0ken", token), BearerCheck::kOk);
  EXPECT_EQ(CheckBearer("  BEARER \t s3cr3t-T0ken  ", token), BearerCheck::kOk);

  EXPECT_EQ(CheckBearer(std::nullopt, token), BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer("", token), BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer("Bearer", token), BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer("Bearer   ", token), BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer("s3cr3t-T0ken", token), BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer("Basic s3cr3t-T0ken", token), BearerCheck::kMissing);
  EXPECT_EQ(CheckBearer("Bearers s3cr3t-T0ken", token), BearerCheck::kMissing);

  EXPECT_EQ(CheckBearer("Bearer s3cr3t-t0ken", token), BearerCheck::kWrong);
  EXPECT_EQ(CheckBearer("Bearer s3cr3t-T0ke", token), BearerCheck::kWrong);
  EXPECT_EQ(CheckBearer("Bearer s3cr3t-T0ken0", token), BearerCheck::kWrong);
  EXPECT_EQ(CheckBearer("Bearer s3cr3t-T0ken x", token), BearerCheck::kWrong);
  EXPECT_EQ(CheckBearer(std::string("Bearer s3cr3t-T0ken\0", 20), token),
            BearerCheck::kWrong);
}

TEST(BearerTokenTest, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abd", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("ab\0", 3), "ab"));
}

}  // namespace
}  // namespace dtx
