// IdGenerator: makes global transaction ids (gids).
//
// Both generators here produce dtm-style gids: 22 characters of base57
// (23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz) encoding a
// 128-bit number, most significant digit first.
//
// NewTimeOrderedIdGenerator (the coordinator's default) puts the time in
// milliseconds in the top 48 bits and 80 random bits below, as UUIDv7 does, so
// gids made later sort after earlier ones (across processes, as far as their
// clocks agree) and a journal's or barrier table's gid index grows at its end
// instead of at a random place; 80 random bits per millisecond keep ids made
// by different processes or machines from colliding in practice.
// NewRandomIdGenerator encodes 128 random bits, as dtm does (shortuuid).
// Random bits come from the kernel's random source.
//
// Thread safety: implementations are thread-safe.

#ifndef DTX_ID_GENERATOR_H_
#define DTX_ID_GENERATOR_H_

#include "dtx/clock.h"
#include "dtx/core_export.h"

#include <memory>
#include <string>

namespace dtx {

class DTX_CORE_EXPORT IdGenerator {
 public:
  virtual ~IdGenerator();
  virtual std::string NewGid() = 0;
};

// `clock` (which must outlive the generator) gives the time.
DTX_CORE_EXPORT std::unique_ptr<IdGenerator> NewTimeOrderedIdGenerator(
    const Clock& clock = SystemClock());
DTX_CORE_EXPORT std::unique_ptr<IdGenerator> NewRandomIdGenerator();

// The alphabet and length of generated gids.
inline constexpr char kGidAlphabet[] =
    "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
inline constexpr std::size_t kGidLength = 22;

}  // namespace dtx

#endif  // DTX_ID_GENERATOR_H_
