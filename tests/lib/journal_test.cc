// Tests of the helpers in dtx/journal.h; the Journal contract itself is tested
// against every implementation in tests/storage.

#include "dtx/journal.h"

#include <gtest/gtest.h>

#include <thread>

namespace dtx {
namespace {

TEST(JournalHelpersTest, WaitForWriteReturnsTheCompletionStatus) {
  EXPECT_TRUE(WaitForWrite([](WriteDone done) { done(Status::Ok()); }).ok());
  EXPECT_EQ(
      WaitForWrite([](WriteDone done) { done(NotFoundError("x")); }).code(),
      StatusCode::kNotFound);
}

TEST(JournalHelpersTest, WaitForWriteWaitsForAnotherThread) {
  std::thread completer;
  Status s = WaitForWrite([&](WriteDone done) {
    completer = std::thread(
        [done = std::move(done)] { done(AlreadyExistsError("dup")); });
  });
  completer.join();
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace dtx
