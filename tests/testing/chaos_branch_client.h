// ChaosBranchClient: wraps a real BranchClient and misbehaves like a network
// does: repeats calls, loses replies (the branch ran, the caller does not
// know), drops calls (the branch never ran) and delays some tries until the
// test delivers them, after their transaction ended. The rolls come from a
// seeded generator, so that a failing run can be replayed with its seed.
//
//   auto chaos = std::make_unique<ChaosBranchClient>(std::move(real), seed);
//   ...                    // run transactions through it
//   chaos->DeliverLate();  // hanging tries, after their cancels
//
// Of every 100 calls, about: 5 tries delayed (reported as failed), 5 more
// calls dropped, 15 sent twice, 10 with their reply lost; the rest pass.
//
// Thread safety: thread-safe.

#ifndef DTX_TESTS_TESTING_CHAOS_BRANCH_CLIENT_H_
#define DTX_TESTS_TESTING_CHAOS_BRANCH_CLIENT_H_

#include "dtx/branch_client.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string_view>
#include <vector>

namespace dtx::testing {

class ChaosBranchClient final : public BranchClient {
 public:
  ChaosBranchClient(std::unique_ptr<BranchClient> inner, uint32_t seed);

  void Call(BranchRequest req, Executor executor, Callback done) override;
  Status ValidateUrl(std::string_view url, std::string_view protocol) override;
  void Shutdown() override;

  // Delivers the delayed tries now, one after the other, and waits for each.
  void DeliverLate();

 private:
  int Roll();
  static void Fail(const Executor& executor, const Callback& done,
                   const char* why);

  std::unique_ptr<BranchClient> inner_;
  std::mutex mu_;
  std::mt19937 rng_;                 // guarded by mu_
  std::vector<BranchRequest> late_;  // guarded by mu_
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_CHAOS_BRANCH_CLIENT_H_
