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
// Inline completions. A service thread that hands out completions may say,
// for that span, that its thread is on offer (InlineCompletionScope):
//   - kIdle: it has no other work waiting (a journal writer completing a
//     batch of one write, its queue empty). An executor that finds
//     InlineCompletionAllowed() may then run a short closure right there
//     instead of waking another thread: at one transaction in flight a
//     thread hop costs more than the work it hands over.
//   - kBusy: it has more work waiting (the next commit). An executor whose
//     own threads could not run the closure any sooner may still take it
//     (the coordinator with one io thread: docs/architecture.md, "Thread
//     hops"); one with threads to spare should not hold the service up.
//
//   {
//     dtx::InlineCompletionScope offer(queue.empty() ? InlineOffer::kIdle
//                                                    : InlineOffer::kBusy);
//     op.Complete(status);  // an executor may run the closure here
//   }

#ifndef DTX_EXECUTOR_H_
#define DTX_EXECUTOR_H_

#include "dtx/core_export.h"

#include <cstdint>
#include <functional>

namespace dtx {

using Executor = std::function<void(std::function<void()>)>;

enum class InlineOffer : uint8_t {
  kNone,  // nothing on offer: closures go to their executor's threads
  kBusy,  // on offer to an executor with no threads to spare (see above)
  kIdle,  // on offer: the thread has nothing else to do
};

// Marks, for its lifetime, what the current thread offers while it hands
// out completions (see above). Scopes nest; the innermost wins. Not
// copyable.
class DTX_CORE_EXPORT InlineCompletionScope {
 public:
  explicit InlineCompletionScope(InlineOffer offer);
  // kIdle when `idle`, else kNone.
  explicit InlineCompletionScope(bool idle);
  ~InlineCompletionScope();
  InlineCompletionScope(const InlineCompletionScope&) = delete;
  InlineCompletionScope& operator=(const InlineCompletionScope&) = delete;

 private:
  InlineOffer outer_;
};

// What this thread offers now: kNone outside any scope.
DTX_CORE_EXPORT InlineOffer InlineCompletionOffered();
// True inside an InlineCompletionScope of kIdle on this thread.
DTX_CORE_EXPORT bool InlineCompletionAllowed();

}  // namespace dtx

#endif  // DTX_EXECUTOR_H_
