// ReaderPool: the read connections of a SqliteJournal, one per concurrent
// reader, opened on demand and kept for reuse. Each read runs in a read
// transaction of its own for a consistent snapshot; WAL mode lets reads run
// beside the writer.
//
// Thread safety: thread-safe. A connection belongs to the one read that
// borrowed it until that read returns.

#ifndef DTX_STORAGE_READER_POOL_H_
#define DTX_STORAGE_READER_POOL_H_

#include "dtx/internal/mutex.h"
#include "dtx/result.h"
#include "dtx/status.h"

#include "sqlite_handle.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dtx::internal {

class ReaderPool {
 public:
  // Connections to `path`, which must exist, waiting up to `busy_timeout` for
  // a lock.
  ReaderPool(std::string path, std::chrono::milliseconds busy_timeout);
  ReaderPool(const ReaderPool&) = delete;
  ReaderPool& operator=(const ReaderPool&) = delete;

  // Runs `fn(Db&)` in a read transaction on a borrowed connection and returns
  // what it returns (a Status or a Result). kFailedPrecondition after Close.
  template <typename Fn>
  auto WithReader(Fn&& fn) -> decltype(fn(std::declval<Db&>()));

  // Closes the idle connections and refuses new reads; a read under way
  // closes its connection when it ends. Idempotent.
  void Close();

 private:
  Result<std::unique_ptr<Db>> Take();
  void Return(std::unique_ptr<Db> db);

  const std::string path_;
  const std::chrono::milliseconds busy_timeout_;

  Mutex mu_;
  std::vector<std::unique_ptr<Db>> idle_ DTX_GUARDED_BY(mu_);
  bool closed_ DTX_GUARDED_BY(mu_) = false;
};

template <typename Fn>
auto ReaderPool::WithReader(Fn&& fn) -> decltype(fn(std::declval<Db&>())) {
  auto db_or = Take();
  if (!db_or.ok()) return db_or.status();
  std::unique_ptr<Db> db = std::move(db_or).value();
  Status begin = db->Exec("BEGIN");
  if (!begin.ok()) return begin;
  auto result = fn(*db);
  // A read transaction: ending it cannot lose data.
  db->Exec("COMMIT").IgnoreError();
  Return(std::move(db));
  return result;
}

}  // namespace dtx::internal

#endif  // DTX_STORAGE_READER_POOL_H_
