#include "outcome_mapping.h"

#include <gtest/gtest.h>

namespace dtx::internal {
namespace {

struct Row {
  int code;
  const char* message;
  BranchOutcome want;
};

TEST(OutcomeMappingTest, MapsEveryGrpcCodeAsDtmDoes) {
  const Row rows[] = {
      {0, "", BranchOutcome::kSuccess},
      {1, "cancelled", BranchOutcome::kTransient},
      {2, "unknown", BranchOutcome::kTransient},
      {3, "bad argument", BranchOutcome::kTransient},
      {4, "deadline", BranchOutcome::kTransient},
      {5, "not found", BranchOutcome::kTransient},
      {6, "exists", BranchOutcome::kTransient},
      {7, "denied", BranchOutcome::kTransient},
      {8, "exhausted", BranchOutcome::kTransient},
      {9, "ONGOING", BranchOutcome::kOngoing},
      {9, "anything", BranchOutcome::kOngoing},
      {10, "FAILURE", BranchOutcome::kFailure},
      {10, "reason: insufficient balance", BranchOutcome::kFailure},
      {10, "ONGOING", BranchOutcome::kOngoing},  // services older than v1.10
      {10, "ongoing", BranchOutcome::kFailure},  // exact match only
      {10, "ONGOING ", BranchOutcome::kFailure},
      {11, "out of range", BranchOutcome::kTransient},
      {12, "unimplemented", BranchOutcome::kTransient},
      {13, "internal", BranchOutcome::kTransient},
      {14, "unavailable", BranchOutcome::kTransient},
      {15, "data loss", BranchOutcome::kTransient},
      {16, "unauthenticated", BranchOutcome::kTransient},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(OutcomeFromGrpc(r.code, r.message), r.want)
        << "code " << r.code << " message '" << r.message << "'";
  }
}

TEST(OutcomeMappingTest, OutcomeNamesAreDtms) {
  EXPECT_EQ(ToString(BranchOutcome::kSuccess), "SUCCESS");
  EXPECT_EQ(ToString(BranchOutcome::kFailure), "FAILURE");
  EXPECT_EQ(ToString(BranchOutcome::kOngoing), "ONGOING");
  EXPECT_EQ(ToString(BranchOutcome::kTransient), "TRANSIENT");
}

}  // namespace
}  // namespace dtx::internal
