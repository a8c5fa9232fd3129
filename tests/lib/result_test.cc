#include "dtx/result.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace dtx {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  DTX_ASSIGN_OR_RETURN(int half, Half(x));
  DTX_ASSIGN_OR_RETURN(half, Half(half));  // assigns to an existing variable
  return half;
}

Status QuarterStatus(int x, int* out) {
  DTX_ASSIGN_OR_RETURN(*out, Quarter(x));
  return Status::Ok();
}

TEST(ResultTest, HoldsAValue) {
  Result<int> r = Half(8);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(*r, 4);
  EXPECT_EQ(r.value(), 4);
}

TEST(ResultTest, HoldsAnError) {
  Result<int> r = Half(3);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.value_or(-1), -1);
}

TEST(ResultTest, AnOkStatusBecomesInternal) {
  Result<int> r = Status::Ok();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(ResultTest, AssignOrReturnPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Quarter(5).status().code(), StatusCode::kInvalidArgument);
  int out = 0;
  EXPECT_TRUE(QuarterStatus(16, &out).ok());
  EXPECT_EQ(out, 4);
  EXPECT_FALSE(QuarterStatus(2, &out).ok());
}

TEST(ResultTest, HoldsMoveOnlyValues) {
  Result<std::unique_ptr<std::string>> r = std::make_unique<std::string>("x");
  ASSERT_TRUE(r.ok());
  std::unique_ptr<std::string> p = std::move(r).value();
  EXPECT_EQ(*p, "x");
}

TEST(ResultTest, ConvertsFromCompatibleTypes) {
  Result<std::string> r = "literal";
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 7u);
}

TEST(ResultDeathTest, ReadingAnErrorAsAValueAborts) {
  Result<int> r = NotFoundError("x");
  EXPECT_DEATH({ (void)r.value(); }, "");
}

}  // namespace
}  // namespace dtx
