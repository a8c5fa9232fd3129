// IdGenerator: makes global transaction ids (gids).
//
// The default produces dtm-style gids: 22 characters of base57
// (23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz) encoding 128
// random bits from the kernel's random source, so ids made by different
// processes or machines do not collide in practice.
//
// Thread safety: implementations are thread-safe.

#ifndef DTX_ID_GENERATOR_H_
#define DTX_ID_GENERATOR_H_

#include "dtx/core_export.h"

#include <memory>
#include <string>

namespace dtx {

class DTX_CORE_EXPORT IdGenerator {
 public:
  virtual ~IdGenerator();
  virtual std::string NewGid() = 0;
};

DTX_CORE_EXPORT std::unique_ptr<IdGenerator> NewRandomIdGenerator();

// The alphabet and length of generated gids.
inline constexpr char kGidAlphabet[] =
    "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
inline constexpr std::size_t kGidLength = 22;

}  // namespace dtx

#endif  // DTX_ID_GENERATOR_H_
