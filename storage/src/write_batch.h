// What the two journal writers (JournalWriter for SQLite, PgJournalWriter)
// share about a batch: how it is taken from their queue, lazy writes
// (journal.h, kLazyWriteHold) included, and which of its writes count
// against inline completions.

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

// Writes of `batch` that are not lazy: when there is at most one and nothing
// is queued behind, the writer may run the completions itself (dtx/
// executor.h, inline completions). Lazy ones do not count: their completions
// are trivial, and one held for company shares its batch with the next
// transaction's first write.
template <typename Op>
std::size_t EagerWrites(const std::vector<std::unique_ptr<Op>>& batch) {
  return static_cast<std::size_t>(
      std::count_if(batch.begin(), batch.end(),
                    [](const std::unique_ptr<Op>& op) { return !op->lazy(); }));
}

}  // namespace dtx::internal

#endif  // DTX_STORAGE_WRITE_BATCH_H_
