#include "reader_pool.h"

namespace dtx::internal {

ReaderPool::ReaderPool(std::string path, std::chrono::milliseconds busy_timeout)
    : path_(std::move(path)), busy_timeout_(busy_timeout) {}

Result<std::unique_ptr<Db>> ReaderPool::Take() {
  {
    MutexLock lock(&mu_);
    if (closed_)
      return FailedPreconditionError("journal: " + path_ + ": closed");
    if (!idle_.empty()) {
      auto db = std::move(idle_.back());
      idle_.pop_back();
      return db;
    }
  }
  auto opened = Db::Open(path_, /*create=*/false,
                         static_cast<int>(busy_timeout_.count()));
  if (!opened.ok()) {
    // The journal was open a moment ago: a failure to open it again is the
    // store's, never a kNotFound a caller could take for a missing gid.
    if (opened.status().code() == StatusCode::kNotFound)
      return UnavailableError(opened.status().message());
    return opened.status();
  }
  std::unique_ptr<Db> db = std::move(opened).value();
  DTX_RETURN_IF_ERROR(db->Exec("PRAGMA query_only = 1"));
  return db;
}

void ReaderPool::Return(std::unique_ptr<Db> db) {
  MutexLock lock(&mu_);
  if (closed_) return;  // `db` closes once the lock is released
  idle_.push_back(std::move(db));
}

void ReaderPool::Close() {
  std::vector<std::unique_ptr<Db>> idle;
  {
    MutexLock lock(&mu_);
    closed_ = true;
    idle.swap(idle_);
  }
}

}  // namespace dtx::internal
