// Executor: how a caller names the execution context that its completions run
// on (an asio strand, a thread pool, a test's own thread). An asynchronous
// service that takes one (BranchClient::Call, a journal write's Completion)
// hands the finished work to it instead of running the caller's code on one of
// its own threads.
//
// An Executor must not block and must not run the closure inline when the
// caller may hold locks that the closure needs: it queues the closure and
// returns.
//
//   dtx::Executor on_strand = [&strand](std::function<void()> fn) {
//     asio::post(strand, std::move(fn));
//   };
//
// Thread safety: an Executor is called from the service's threads; it must be
// safe to call from any thread.

#ifndef DTX_EXECUTOR_H_
#define DTX_EXECUTOR_H_

#include <functional>

namespace dtx {

using Executor = std::function<void(std::function<void()>)>;

}  // namespace dtx

#endif  // DTX_EXECUTOR_H_
