// TargetLimiter: at most N calls in flight per target, the rest queued in
// order and sent as calls end; a queued call past its start_by fails unsent;
// Shutdown fails what is queued. With a fake client that holds every call
// until the test answers it.

#include "target_limiter.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

namespace dtx::internal {
namespace {

using dtx::testing::StatusIs;
using ::testing::ElementsAre;

// Holds every call; Answer(i) completes the i-th one it was given.
class HeldClient final : public BranchClient {
 public:
  void Call(BranchRequest request, Executor, Callback done) override {
    std::lock_guard<std::mutex> lock(mu_);
    sent_.push_back(request.url + " " + request.payload);
    held_.push_back(std::move(done));
  }
  BranchResult CallBlocking(BranchRequest request) override {
    std::lock_guard<std::mutex> lock(mu_);
    sent_.push_back("blocking " + request.url + " " + request.payload);
    BranchResult r;
    r.outcome = BranchOutcome::kSuccess;
    return r;
  }
  Status ValidateUrl(std::string_view, std::string_view) override {
    return Status::Ok();
  }
  void Shutdown() override { shut_down_ = true; }

  void Answer(std::size_t i) {
    Callback done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done = std::move(held_.at(i));
    }
    BranchResult r;
    r.outcome = BranchOutcome::kSuccess;
    done(std::move(r));
  }
  std::vector<std::string> sent() {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }
  bool shut_down_ = false;

 private:
  std::mutex mu_;
  std::vector<std::string> sent_;
  std::vector<Callback> held_;
};

BranchRequest Req(const std::string& url, const std::string& payload) {
  BranchRequest r;
  r.url = url;
  r.payload = payload;
  return r;
}

TEST(TargetLimiterTest, EndpointsAreMethodsOfAService) {
  EXPECT_EQ(TargetLimiter::EndpointOf("localhost:9000/pkg.Svc/Method"),
            "localhost:9000/pkg.Svc/Method");
  EXPECT_EQ(TargetLimiter::EndpointOf("dns:///busi.ns:9000/pkg.Svc/M"),
            "dns:///busi.ns:9000/pkg.Svc/M");
  EXPECT_EQ(TargetLimiter::EndpointOf("http://h:8080/api/busi/TransIn?a=1"),
            "http://h:8080/api/busi/TransIn");
  EXPECT_EQ(TargetLimiter::EndpointOf("http://h:8080/api/busi/TransIn#x"),
            "http://h:8080/api/busi/TransIn");
  EXPECT_EQ(TargetLimiter::EndpointOf("discovery://127.0.0.1:2379/trans/a.B/C"),
            "discovery://127.0.0.1:2379/trans/a.B/C");
  EXPECT_EQ(TargetLimiter::EndpointOf("odd"), "odd");
}

// A method that hangs with every slot of its endpoint taken holds no other
// method of the same service in line.
TEST(TargetLimiterTest, ASlowMethodHoldsNoOtherMethodOfItsServiceInLine) {
  FakeClock clock;
  auto held = std::make_unique<HeldClient>();
  HeldClient* inner = held.get();
  TargetLimiter limiter(std::move(held), 2, &clock);
  int fast_done = 0;
  for (const char* p : {"1", "2", "3"}) {
    limiter.Call(Req("a:1/s.S/Slow", p), nullptr, [](BranchResult) {});
  }
  limiter.Call(Req("a:1/s.S/Fast", "1"), nullptr,
               [&](BranchResult) { ++fast_done; });
  EXPECT_THAT(inner->sent(), ElementsAre("a:1/s.S/Slow 1", "a:1/s.S/Slow 2",
                                         "a:1/s.S/Fast 1"));
  EXPECT_EQ(limiter.queued(), 1u);  // the third slow call
  inner->Answer(2);                 // the fast one
  EXPECT_EQ(fast_done, 1);
  limiter.Shutdown();
}

TEST(TargetLimiterTest, AtMostNPerEndpointTheRestInOrder) {
  FakeClock clock;
  auto held = std::make_unique<HeldClient>();
  HeldClient* inner = held.get();
  TargetLimiter limiter(std::move(held), 2, &clock);
  std::vector<std::string> done;
  std::mutex mu;
  auto record = [&](std::string what) {
    return [&, what](BranchResult r) {
      std::lock_guard<std::mutex> lock(mu);
      done.push_back(what + (r.outcome == BranchOutcome::kSuccess ? "" : "!"));
    };
  };
  for (const char* p : {"1", "2", "3", "4"}) {
    limiter.Call(Req("a:1/s.S/M", p), nullptr, record(std::string("a") + p));
  }
  limiter.Call(Req("b:1/s.S/M", "1"), nullptr, record("b1"));
  // Two of a's, and b's (another endpoint) at once; a3 and a4 wait.
  EXPECT_THAT(inner->sent(),
              ElementsAre("a:1/s.S/M 1", "a:1/s.S/M 2", "b:1/s.S/M 1"));
  EXPECT_EQ(limiter.queued(), 2u);
  inner->Answer(1);  // a2 ends: a3 goes
  EXPECT_THAT(inner->sent(), ElementsAre("a:1/s.S/M 1", "a:1/s.S/M 2",
                                         "b:1/s.S/M 1", "a:1/s.S/M 3"));
  inner->Answer(0);  // a1 ends: a4 goes
  inner->Answer(3);
  inner->Answer(4);
  inner->Answer(2);
  EXPECT_EQ(limiter.queued(), 0u);
  EXPECT_THAT(done, ElementsAre("a2", "a1", "a3", "a4", "b1"));
  // A blocking call with a free slot and nobody waiting uses the
  // transport's own.
  EXPECT_EQ(limiter.CallBlocking(Req("a:1/s.S/M", "x")).outcome,
            BranchOutcome::kSuccess);
  EXPECT_EQ(inner->sent().back(), "blocking a:1/s.S/M x");
}

TEST(TargetLimiterTest, AQueuedCallPastItsStartByFailsUnsent) {
  FakeClock clock;
  auto held = std::make_unique<HeldClient>();
  HeldClient* inner = held.get();
  TargetLimiter limiter(std::move(held), 1, &clock);
  // A call sent at once is never refused by its start_by.
  BranchRequest first = Req("a:1/s.S/M", "1");
  first.start_by = clock.Now() - std::chrono::seconds(1);
  limiter.Call(std::move(first), nullptr, [](BranchResult) {});
  BranchRequest late = Req("a:1/s.S/M", "2");
  late.start_by = clock.Now() + std::chrono::milliseconds(5);
  BranchResult got;
  limiter.Call(std::move(late), nullptr, [&](BranchResult r) { got = r; });
  BranchRequest next = Req("a:1/s.S/M", "3");
  next.start_by = clock.Now() + std::chrono::seconds(60);
  limiter.Call(std::move(next), nullptr, [](BranchResult) {});
  clock.Advance(std::chrono::milliseconds(10));  // past late's, not next's
  inner->Answer(0);
  EXPECT_EQ(got.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(got.status, StatusIs(StatusCode::kDeadlineExceeded, "not sent"));
  // The slot went to the next one.
  EXPECT_THAT(inner->sent(), ElementsAre("a:1/s.S/M 1", "a:1/s.S/M 3"));
}

TEST(TargetLimiterTest, ShutdownFailsTheQueuedCalls) {
  FakeClock clock;
  auto held = std::make_unique<HeldClient>();
  HeldClient* inner = held.get();
  TargetLimiter limiter(std::move(held), 1, &clock);
  limiter.Call(Req("a:1/s.S/M", "1"), nullptr, [](BranchResult) {});
  BranchResult queued;
  limiter.Call(Req("a:1/s.S/M", "2"), nullptr,
               [&](BranchResult r) { queued = r; });
  limiter.Shutdown();
  EXPECT_THAT(queued.status, StatusIs(StatusCode::kCancelled));
  EXPECT_TRUE(inner->shut_down_);
  BranchResult after;
  limiter.Call(Req("a:1/s.S/M", "3"), nullptr,
               [&](BranchResult r) { after = r; });
  EXPECT_THAT(after.status, StatusIs(StatusCode::kCancelled));
  EXPECT_THAT(inner->sent(), ElementsAre("a:1/s.S/M 1"));
}

}  // namespace
}  // namespace dtx::internal
