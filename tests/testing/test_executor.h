// TestExecutor: a one-thread executor standing in for the coordinator's
// strand. Closures posted to it run in order on its own thread; it counts
// them, so that a test can check that a service handed its completions over
// rather than running them on a thread of its own.
//
//   TestExecutor strand;
//   client->Call(request, strand.executor(), [&](BranchResult r) {
//     // runs on strand.id()
//   });
//
// Thread safety: executor() may be called from any thread, and the Executor
// it returns too. The destructor runs what is queued, then joins the thread;
// nothing may post afterwards.

#ifndef DTX_TESTS_TESTING_TEST_EXECUTOR_H_
#define DTX_TESTS_TESTING_TEST_EXECUTOR_H_

#include "dtx/executor.h"
#include "dtx/internal/mutex.h"

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>

namespace dtx::testing {

class TestExecutor {
 public:
  TestExecutor();
  ~TestExecutor();
  TestExecutor(const TestExecutor&) = delete;
  TestExecutor& operator=(const TestExecutor&) = delete;

  // Queues its closure to run on this executor's thread.
  Executor executor();
  // The thread the closures run on.
  std::thread::id id() const { return thread_.get_id(); }
  // Closures posted so far.
  std::size_t posted() const DTX_EXCLUDES(mu_);
  // Blocks until every closure posted before the call has run.
  void Drain() DTX_EXCLUDES(mu_);

 private:
  void Loop() DTX_EXCLUDES(mu_);

  mutable dtx::internal::Mutex mu_;
  dtx::internal::CondVar cv_{&mu_};
  std::deque<std::function<void()>> queue_ DTX_GUARDED_BY(mu_);
  std::size_t posted_ DTX_GUARDED_BY(mu_) = 0;
  std::size_t ran_ DTX_GUARDED_BY(mu_) = 0;
  bool stop_ DTX_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_TEST_EXECUTOR_H_
