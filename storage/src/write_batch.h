// What the two journal writers (JournalWriter for SQLite, PgJournalWriter)
// share about a batch: how it is taken from their queue, lazy writes
// (journal.h, kLazyWriteHold) included, and when its completions may run
// on the writer.

#ifndef DTX_STORAGE_WRITE_BATCH_H_
#define DTX_STORAGE_WRITE_BATCH_H_

#include "dtx/internal/mutex.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <vector>

namespace dtx::internal {

// Moves up to `max` ops from the front of `queue` into `batch`. While all it
// took are lazy (Op::lazy()), there is room for more, nothing else is queued
// and the writer is not `closing`, it waits on `cv` for another op or a close
// (which signal `cv`) and takes again, up to `hold` in all. A lazy op that
// arrives meanwhile joins the batch and the wait goes on: one transaction at
// a time ends with two lazy writes (its last results, then its final
// status), and it is the caller's next transaction, sent once the answer is
// out, that they wait for; the first eager op, a flush or a close ends the
// wait. `queue` and `closing` are guarded by `mu`, which the caller holds.
template <typename Op>
void TakeBatch(Mutex* mu, CondVar* cv, std::deque<std::unique_ptr<Op>>& queue,
               const bool& closing, std::size_t max,
               std::chrono::microseconds hold,
               std::vector<std::unique_ptr<Op>>& batch) DTX_REQUIRES(mu) {
  auto take = [&] {
    while (!queue.empty() && batch.size() < max) {
      batch.push_back(std::move(queue.front()));
      queue.pop_front();
    }
  };
  auto all_lazy = [&batch] {
    return std::all_of(
        batch.begin(), batch.end(),
        [](const std::unique_ptr<Op>& op) { return op->lazy(); });
  };
  take();
  if (hold.count() <= 0) return;
  const auto deadline = std::chrono::steady_clock::now() + hold;
  while (!batch.empty() && batch.size() < max && queue.empty() && !closing &&
         all_lazy()) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    const bool woken =
        cv->WaitFor(mu, left, [&] { return !queue.empty() || closing; });
    take();
    if (!woken) return;
  }
}

// Whether the writer may run `batch`'s completions itself when nothing is
// queued behind it (dtx/executor.h, inline completions): one transaction at
// a time, that is a batch of at most one eager write and at most two lazy
// ones (the previous transaction's last results and final status, held for
// company, and the caller's next write). Completions continue transactions
// (a lazy write's may start calls), so a batch of more is handed to the io
// threads, leaving the writer to commit.
template <typename Op>
bool InlineBatch(const std::vector<std::unique_ptr<Op>>& batch) {
  if (batch.size() > 3) return false;
  const auto lazy =
      std::count_if(batch.begin(), batch.end(),
                    [](const std::unique_ptr<Op>& op) { return op->lazy(); });
  return batch.size() - static_cast<std::size_t>(lazy) <= 1;
}

}  // namespace dtx::internal

#endif  // DTX_STORAGE_WRITE_BATCH_H_
