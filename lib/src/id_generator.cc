#include "dtx/id_generator.h"

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <sys/random.h>

namespace dtx {
namespace {

// Random bits come from getrandom(2) in blocks, so that ids stay unique across
// fork() and process restarts without any seeding of our own.
class RandomBits {
 public:
  // 128 random bits.
  void Next(uint64_t* hi, uint64_t* lo) {
    std::lock_guard<std::mutex> lock(mu_);
    if (pos_ + 2 > pool_.size()) Refill();
    *hi = pool_[pos_++];
    *lo = pool_[pos_++];
  }

 private:
  void Refill() {
    auto* bytes = reinterpret_cast<unsigned char*>(pool_.data());
    std::size_t want = sizeof(pool_);
    std::size_t got = 0;
    while (got < want) {
      const ssize_t n = getrandom(bytes + got, want - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        // Without a random source gids could collide and corrupt the journal.
        std::abort();
      }
      got += static_cast<std::size_t>(n);
    }
    pos_ = 0;
  }

  std::mutex mu_;
  std::array<uint64_t, 64> pool_{};
  std::size_t pos_ = 64;  // empty: the first call refills
};

// Base57 digits of the 128-bit number hi:lo, most significant first,
// zero-padded to kGidLength (57^22 > 2^128, so 22 digits always suffice).
std::string Encode(uint64_t hi, uint64_t lo) {
  constexpr uint32_t kBase = 57;
  std::string out(kGidLength, kGidAlphabet[0]);
  for (std::size_t i = kGidLength; i-- > 0;) {
    // Long division of the 128-bit value by 57, 32 bits at a time.
    const std::array<uint32_t, 4> parts = {
        static_cast<uint32_t>(hi >> 32), static_cast<uint32_t>(hi),
        static_cast<uint32_t>(lo >> 32), static_cast<uint32_t>(lo)};
    std::array<uint32_t, 4> quotient{};
    uint64_t rem = 0;
    for (std::size_t k = 0; k < parts.size(); ++k) {
      const uint64_t cur = (rem << 32) | parts[k];
      quotient[k] = static_cast<uint32_t>(cur / kBase);
      rem = cur % kBase;
    }
    hi = (static_cast<uint64_t>(quotient[0]) << 32) | quotient[1];
    lo = (static_cast<uint64_t>(quotient[2]) << 32) | quotient[3];
    out[i] = kGidAlphabet[rem];
  }
  return out;
}

class RandomIdGenerator final : public IdGenerator {
 public:
  std::string NewGid() override {
    uint64_t hi = 0;
    uint64_t lo = 0;
    bits_.Next(&hi, &lo);
    return Encode(hi, lo);
  }

 private:
  RandomBits bits_;
};

class TimeOrderedIdGenerator final : public IdGenerator {
 public:
  explicit TimeOrderedIdGenerator(const Clock& clock) : clock_(clock) {}

  std::string NewGid() override {
    uint64_t hi = 0;
    uint64_t lo = 0;
    bits_.Next(&hi, &lo);
    // 48 bits of milliseconds last until the year 10889.
    const uint64_t time = static_cast<uint64_t>(ToUnixMillis(clock_.Now())) &
                          ((uint64_t{1} << 48) - 1);
    hi = (time << 16) | (hi & 0xffff);
    return Encode(hi, lo);
  }

 private:
  const Clock& clock_;
  RandomBits bits_;
};

}  // namespace

IdGenerator::~IdGenerator() = default;

std::unique_ptr<IdGenerator> NewTimeOrderedIdGenerator(const Clock& clock) {
  return std::make_unique<TimeOrderedIdGenerator>(clock);
}

std::unique_ptr<IdGenerator> NewRandomIdGenerator() {
  return std::make_unique<RandomIdGenerator>();
}

}  // namespace dtx
