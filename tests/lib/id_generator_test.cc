#include "dtx/id_generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace dtx {
namespace {

struct Generator {
  const char* name;
  std::function<std::unique_ptr<IdGenerator>()> make;
};

void PrintTo(const Generator& g, std::ostream* os) { *os << g.name; }

class IdGeneratorTest : public ::testing::TestWithParam<Generator> {};

INSTANTIATE_TEST_SUITE_P(
    Both, IdGeneratorTest,
    ::testing::Values(Generator{"TimeOrdered",
                                [] { return NewTimeOrderedIdGenerator(); }},
                      Generator{"Random", NewRandomIdGenerator}),
    [](const ::testing::TestParamInfo<Generator>& p) { return p.param.name; });

TEST_P(IdGeneratorTest, GidsHaveDtmsFormat) {
  auto gen = GetParam().make();
  const std::string alphabet = kGidAlphabet;
  EXPECT_EQ(alphabet.size(), 57u);
  for (int i = 0; i < 1000; ++i) {
    const std::string gid = gen->NewGid();
    ASSERT_EQ(gid.size(), kGidLength) << gid;
    for (char c : gid) ASSERT_NE(alphabet.find(c), std::string::npos) << gid;
  }
}

TEST_P(IdGeneratorTest, AMillionGidsAreUnique) {
  auto gen = GetParam().make();
  std::unordered_set<std::string> seen;
  seen.reserve(1'000'000);
  for (int i = 0; i < 1'000'000; ++i) {
    ASSERT_TRUE(seen.insert(gen->NewGid()).second) << "duplicate after " << i;
  }
}

TEST_P(IdGeneratorTest, ConcurrentCallersGetDistinctGids) {
  auto gen = GetParam().make();
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

TEST(TimeOrderedIdGeneratorTest, LaterGidsSortAfterEarlierOnes) {
  FakeClock clock;
  auto gen = NewTimeOrderedIdGenerator(clock);
  std::vector<std::string> earlier;
  for (int i = 0; i < 100; ++i) earlier.push_back(gen->NewGid());
  clock.Advance(std::chrono::milliseconds(1));
  // Gids of one millisecond are in random order; every gid of a later one is
  // greater than every gid of an earlier one.
  for (int i = 0; i < 100; ++i) {
    const std::string later = gen->NewGid();
    for (const std::string& e : earlier) ASSERT_LT(e, later);
  }
  std::sort(earlier.begin(), earlier.end());
  EXPECT_EQ(std::unique(earlier.begin(), earlier.end()), earlier.end());
  // The random low digits vary within a millisecond.
  std::unordered_set<char> final_digit;
  for (int i = 0; i < 2000; ++i) final_digit.insert(gen->NewGid().back());
  EXPECT_GT(final_digit.size(), 10u);
}

TEST(RandomIdGeneratorTest, LeadingCharactersVary) {
  // 128 random bits spread over all 22 digits: the first digit is not stuck.
  auto gen = NewRandomIdGenerator();
  std::unordered_set<char> first;
  for (int i = 0; i < 2000; ++i) first.insert(gen->NewGid()[0]);
  EXPECT_GT(first.size(), 10u);
}

}  // namespace
}  // namespace dtx
