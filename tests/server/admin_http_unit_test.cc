// The admin HTTP API's time format and loopback check (the endpoints are
// tested against a real dtx-server in admin_http_test.cc).

#include "dtx/clock.h"

#include "admin_http.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>
#include <string>

namespace dtx::server {
namespace {

// Unix milliseconds of what Rfc3339 wrote, read back with the offset it
// wrote.
int64_t ReadBack(const std::string& text) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  EXPECT_NE(rest, nullptr) << text;
  if (rest == nullptr) return -1;
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  std::string tail = rest;
  if (!tail.empty() && tail[0] == '.') {
    std::size_t n = 1;
    while (n < tail.size() && std::isdigit(static_cast<unsigned char>(tail[n])))
      ++n;
    std::string frac = tail.substr(1, n - 1);
    EXPECT_LE(frac.size(), 3u) << text;
    EXPECT_NE(frac.back(), '0') << "trailing zeros are trimmed: " << text;
    frac.resize(3, '0');
    ms += std::stoi(frac);
    tail = tail.substr(n);
  }
  if (tail == "Z") return ms;
  EXPECT_EQ(tail.size(), 6u) << text;
  EXPECT_TRUE(tail[0] == '+' || tail[0] == '-') << text;
  EXPECT_EQ(tail[3], ':') << text;
  const int64_t offset =
      (std::stoi(tail.substr(1, 2)) * 60 + std::stoi(tail.substr(4, 2))) *
      60000;
  return tail[0] == '+' ? ms - offset : ms + offset;
}

TEST(Rfc3339Test, WritesTheInstantWithItsOffsetAndTrimmedMilliseconds) {
  for (int64_t ms : {int64_t{0}, int64_t{1764670272000}, int64_t{1764670272345},
                     int64_t{1764670272500}, int64_t{1764670272010},
                     int64_t{951782400999}, int64_t{4102444799001}}) {
    const std::string text = Rfc3339(FromUnixMillis(ms));
    EXPECT_EQ(ReadBack(text), ms) << text;
    const bool whole = ms % 1000 == 0;
    EXPECT_EQ(text.find('.') == std::string::npos, whole) << text;
  }
  EXPECT_THAT(Rfc3339(FromUnixMillis(1764670272500)),
              ::testing::ContainsRegex("[.]5(Z|[+-])"));
}

TEST(IsLoopbackHostTest, OnlyAddressesOfThisMachine) {
  for (const char* host :
       {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "[::]", "10.0.0.5", "example.com",
                           "128.0.0.1", "localhost.example.com", ""}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

}  // namespace
}  // namespace dtx::server
