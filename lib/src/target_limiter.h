// TargetLimiter: a BranchClient that keeps at most `per_target` calls in
// flight to each endpoint and queues the rest, in arrival order, until one of
// that endpoint's calls ends (Options::max_calls_per_target). A queued call's
// deadline starts when it is sent: a service that comes back after an outage
// is called at the rate it answers, not flooded with calls that time out
// while they wait for it (issue #19: recovery without a stampede).
//
// An endpoint is one method of a service: a gRPC URL whole
// ("host:port/pkg.Service/Method", "dns:///name:port/...", "unix:/path/..."),
// an HTTP or discovery:// URL without its query. Counting by method and not
// by host keeps a method that hangs from holding every other method of the
// same service in line (a saga whose branch answers at once must not wait
// behind 5,000 calls to a slow one: SlowBranchTest); a service with M methods
// gets at most M x per_target calls.
//
// A queued call with BranchRequest::start_by that comes to its turn after
// that time (of `clock`, the coordinator's) fails (kTransient,
// kDeadlineExceeded) without being sent: on a shared journal a call must
// start while its transaction's lease covers it. A call sent at once is not
// checked (its lease was checked just before).
//
// Thread safety: thread-safe.

#ifndef DTX_LIB_SRC_TARGET_LIMITER_H_
#define DTX_LIB_SRC_TARGET_LIMITER_H_

#include "dtx/branch_client.h"
#include "dtx/clock.h"
#include "dtx/internal/mutex.h"

#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace dtx::internal {

class TargetLimiter final : public BranchClient {
 public:
  // `clock` is borrowed and must outlive this.
  TargetLimiter(std::unique_ptr<BranchClient> inner, std::size_t per_target,
                const Clock* clock);
  ~TargetLimiter() override;

  // The endpoint `url` is counted under (see the file comment).
  static std::string EndpointOf(std::string_view url);

  void Call(BranchRequest request, Executor executor, Callback done) override;
  BranchResult CallBlocking(BranchRequest request) override;
  Status ValidateUrl(std::string_view url, std::string_view protocol) override;
  void Shutdown() override;

  // Calls queued (not yet sent), over every target.
  std::size_t queued() const DTX_EXCLUDES(mu_);

 private:
  struct Queued {
    BranchRequest request;
    Executor executor;
    Callback done;
  };
  struct Target {
    std::size_t in_flight = 0;
    std::deque<Queued> waiting;
  };

  // `waited`: the call was queued (start_by applies).
  void Send(const std::string& target, Queued call, bool waited);
  // One of `target`'s calls ended: sends the next queued one, if any.
  void Finished(const std::string& target) DTX_EXCLUDES(mu_);
  static void Fail(Queued call, BranchResult result);

  const std::unique_ptr<BranchClient> inner_;
  const std::size_t per_target_;
  const Clock* const clock_;
  mutable Mutex mu_;
  std::map<std::string, Target> targets_ DTX_GUARDED_BY(mu_);
  std::size_t queued_ DTX_GUARDED_BY(mu_) = 0;
  bool shut_down_ DTX_GUARDED_BY(mu_) = false;
};

}  // namespace dtx::internal

#endif  // DTX_LIB_SRC_TARGET_LIMITER_H_
