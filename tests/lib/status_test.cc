#include "dtx/status.h"

#include <gtest/gtest.h>

#include <sstream>

namespace dtx {
namespace {

TEST(StatusTest, DefaultIsOkWithEmptyMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = NotFoundError("journal: gid g1: not found");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "journal: gid g1: not found");
  EXPECT_EQ(s.ToString(), "NOT_FOUND: journal: gid g1: not found");
}

TEST(StatusTest, OkCodeDropsTheMessage) {
  Status s(StatusCode::kOk, "ignored");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
}

TEST(StatusTest, CodesHaveGrpcNumbers) {
  EXPECT_EQ(static_cast<int>(StatusCode::kCancelled), 1);
  EXPECT_EQ(static_cast<int>(StatusCode::kInvalidArgument), 3);
  EXPECT_EQ(static_cast<int>(StatusCode::kNotFound), 5);
  EXPECT_EQ(static_cast<int>(StatusCode::kAlreadyExists), 6);
  EXPECT_EQ(static_cast<int>(StatusCode::kFailedPrecondition), 9);
  EXPECT_EQ(static_cast<int>(StatusCode::kAborted), 10);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnimplemented), 12);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnavailable), 14);
  EXPECT_EQ(static_cast<int>(StatusCode::kDataLoss), 15);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnauthenticated), 16);
}

TEST(StatusTest, EveryBuilderSetsItsCode) {
  EXPECT_EQ(CancelledError("x").code(), StatusCode::kCancelled);
  EXPECT_EQ(UnknownError("x").code(), StatusCode::kUnknown);
  EXPECT_EQ(InvalidArgumentError("x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DeadlineExceededError("x").code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(NotFoundError("x").code(), StatusCode::kNotFound);
  EXPECT_EQ(AlreadyExistsError("x").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(PermissionDeniedError("x").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ResourceExhaustedError("x").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(FailedPreconditionError("x").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(AbortedError("x").code(), StatusCode::kAborted);
  EXPECT_EQ(OutOfRangeError("x").code(), StatusCode::kOutOfRange);
  EXPECT_EQ(UnimplementedError("x").code(), StatusCode::kUnimplemented);
  EXPECT_EQ(InternalError("x").code(), StatusCode::kInternal);
  EXPECT_EQ(UnavailableError("x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(DataLossError("x").code(), StatusCode::kDataLoss);
}

TEST(StatusTest, CodeNamesAreGrpcSpellings) {
  EXPECT_EQ(StatusCodeName(StatusCode::kFailedPrecondition),
            "FAILED_PRECONDITION");
  EXPECT_EQ(StatusCodeName(StatusCode::kDataLoss), "DATA_LOSS");
  EXPECT_EQ(StatusCodeName(static_cast<StatusCode>(99)), "UNKNOWN_CODE");
}

TEST(StatusTest, CopiesCompareEqual) {
  Status a = AbortedError("roll back");
  Status b = a;
  EXPECT_EQ(a, b);
  EXPECT_NE(a, AbortedError("other"));
  EXPECT_NE(a, UnavailableError("roll back"));
  EXPECT_EQ(Status(), Status::Ok());
}

TEST(StatusTest, WithPrefixKeepsCode) {
  Status s = InvalidArgumentError("gid is empty").WithPrefix("journal");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "journal: gid is empty");
  EXPECT_TRUE(Status::Ok().WithPrefix("journal").ok());
}

TEST(StatusTest, StreamsItsString) {
  std::ostringstream os;
  os << UnavailableError("busy");
  EXPECT_EQ(os.str(), "UNAVAILABLE: busy");
}

Status FailsWhen(bool fail) {
  if (fail) return DataLossError("corrupt");
  return Status::Ok();
}

Status Propagates(bool fail, bool* reached_end) {
  DTX_RETURN_IF_ERROR(FailsWhen(fail));
  *reached_end = true;
  return Status::Ok();
}

TEST(StatusTest, ReturnIfErrorPropagatesOnlyErrors) {
  bool reached = false;
  EXPECT_EQ(Propagates(true, &reached).code(), StatusCode::kDataLoss);
  EXPECT_FALSE(reached);
  EXPECT_TRUE(Propagates(false, &reached).ok());
  EXPECT_TRUE(reached);
}

}  // namespace
}  // namespace dtx
