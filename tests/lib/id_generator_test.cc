#include "dtx/id_generator.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace dtx {
namespace {

TEST(IdGeneratorTest, GidsHaveDtmsFormat) {
  auto gen = NewRandomIdGenerator();
  const std::string alphabet = kGidAlphabet;
  EXPECT_EQ(alphabet.size(), 57u);
  for (int i = 0; i < 1000; ++i) {
    const std::string gid = gen->NewGid();
    ASSERT_EQ(gid.size(), kGidLength) << gid;
    for (char c : gid) ASSERT_NE(alphabet.find(c), std::string::npos) << gid;
  }
}

TEST(IdGeneratorTest, AMillionGidsAreUnique) {
  auto gen = NewRandomIdGenerator();
  std::unordered_set<std::string> seen;
  seen.reserve(1'000'000);
  for (int i = 0; i < 1'000'000; ++i) {
    ASSERT_TRUE(seen.insert(gen->NewGid()).second) << "duplicate after " << i;
  }
}

TEST(IdGeneratorTest, ConcurrentCallersGetDistinctGids) {
  auto gen = NewRandomIdGenerator();
  constexpr int kThreads = 4;
  constexpr int kEach = 20000;
  std::vector<std::vector<std::string>> out(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) out[t].push_back(gen->NewGid());
    });
  }
  for (auto& th : threads) th.join();
  std::unordered_set<std::string> all;
  for (const auto& v : out) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST(IdGeneratorTest, LeadingCharactersVary) {
  // 128 random bits spread over all 22 digits: the first digit is not stuck.
  auto gen = NewRandomIdGenerator();
  std::unordered_set<char> first;
  for (int i = 0; i < 2000; ++i) first.insert(gen->NewGid()[0]);
  EXPECT_GT(first.size(), 10u);
}

}  // namespace
}  // namespace dtx
