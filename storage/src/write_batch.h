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

// Moves up to `max` ops from the front of `queue` into `batch`. When all it
// took are lazy (Op::lazy()), there is room for more, nothing else is queued
// and the writer is not `closing`, it first waits on `cv`, up to `hold`, for
// another op or a close (which signal `cv`), and then takes again. `queue`
// and `closing` are guarded by `mu`, which the caller holds.
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
  take();
  const bool all_lazy =
      std::all_of(batch.begin(), batch.end(),
                  [](const std::unique_ptr<Op>& op) { return op->lazy(); });
  if (batch.empty() || batch.size() >= max || !all_lazy || !queue.empty() ||
      closing || hold.count() <= 0)
    return;
  cv->WaitFor(mu, hold, [&] { return !queue.empty() || closing; });
  take();
}

// Whether the writer may run `batch`'s completions itself when nothing is
// queued behind it (dtx/executor.h, inline completions): a batch of one
// write, or of one write and one lazy write (one transaction at a time: a
// final status held for company and the caller's next transaction).
// Completions continue transactions (a lazy write's may start calls), so a
// batch of more is handed to the io threads, leaving the writer to commit.
template <typename Op>
bool InlineBatch(const std::vector<std::unique_ptr<Op>>& batch) {
  if (batch.size() <= 1) return true;
  if (batch.size() > 2) return false;
  return batch[0]->lazy() || batch[1]->lazy();
}

}  // namespace dtx::internal

#endif  // DTX_STORAGE_WRITE_BATCH_H_
