// What the two journal writers (JournalWriter for SQLite, PgJournalWriter)
// share about a batch: how it is taken from their queue, lazy writes
// (journal.h, kLazyWriteHold) included, and when its completions may run
// on the writer.

#ifndef DTX_STORAGE_WRITE_BATCH_H_
#define DTX_STORAGE_WRITE_BATCH_H_

#include <algorithm>
#include <cstddef>
#include <deque>
#include <memory>
#include <vector>

namespace dtx::internal {

// Moves up to `max` ops from the front of `queue` into `batch`. When all it
// took are lazy (Op::lazy()), there is room for more and nothing else is
// queued, it first calls `wait_for_more()`, which waits under the writer's
// lock, up to the hold, for another op or a close, and then takes again.
template <typename Op, typename WaitForMore>
void TakeBatch(std::deque<std::unique_ptr<Op>>& queue,
               std::vector<std::unique_ptr<Op>>& batch, std::size_t max,
               WaitForMore wait_for_more) {
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
  if (batch.empty() || batch.size() >= max || !all_lazy || !queue.empty())
    return;
  wait_for_more();
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
