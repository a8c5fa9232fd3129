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
//
// Inline completions. A service thread that hands out completions while it
// has no other work waiting (a journal writer completing a batch of one
// write, its queue empty) may say so for that span with an
// InlineCompletionScope. An executor that finds InlineCompletionAllowed()
// true may then run a short closure right there instead of waking another
// thread: at one transaction in flight a thread hop costs more than the
// work it hands over. Under load the service never says so, so that its own
// work (the next commit) is not held up by its callers'.
//
//   {
//     dtx::InlineCompletionScope idle(batch.size() == 1 && queue.empty());
//     op.Complete(status);  // an executor may run the closure here
//   }

#ifndef DTX_EXECUTOR_H_
#define DTX_EXECUTOR_H_

#include "dtx/core_export.h"

#include <functional>

namespace dtx {

using Executor = std::function<void(std::function<void()>)>;

// Marks, for its lifetime, whether the current thread has nothing else to do
// while it hands out completions (see above). Scopes nest; the innermost
// wins. Not copyable.
class DTX_CORE_EXPORT InlineCompletionScope {
 public:
  explicit InlineCompletionScope(bool allowed);
  ~InlineCompletionScope();
  InlineCompletionScope(const InlineCompletionScope&) = delete;
  InlineCompletionScope& operator=(const InlineCompletionScope&) = delete;

 private:
  bool outer_;
};

// True inside an InlineCompletionScope(true) on this thread.
DTX_CORE_EXPORT bool InlineCompletionAllowed();

}  // namespace dtx

#endif  // DTX_EXECUTOR_H_
