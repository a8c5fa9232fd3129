// Mutex, MutexLock and CondVar: std::mutex and friends with Clang's
// thread-safety annotations, so that `clang -Wthread-safety` checks that
// state marked DTX_GUARDED_BY(mu_) is only touched with mu_ held, and that
// functions marked DTX_REQUIRES(mu_) are only called with it held (leveldb's
// port/thread_annotations.h and abseil's Mutex follow the same idea).
// libstdc++'s own std::mutex carries no annotations, hence the wrapper.
// Other compilers see plain std::mutex code: the macros expand to nothing.
//
//   class Queue {
//    public:
//     void Push(int v) {
//       dtx::internal::MutexLock lock(&mu_);
//       items_.push_back(v);
//     }
//
//    private:
//     dtx::internal::Mutex mu_;
//     std::vector<int> items_ DTX_GUARDED_BY(mu_);
//   };
//
// For dtx's own code; not part of the supported API.
//
// Thread safety: Mutex and CondVar are thread-safe; a MutexLock belongs to
// the thread that made it.

#ifndef DTX_INTERNAL_MUTEX_H_
#define DTX_INTERNAL_MUTEX_H_

#include <cassert>
#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define DTX_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define DTX_THREAD_ANNOTATION(x)
#endif

#define DTX_CAPABILITY(x) DTX_THREAD_ANNOTATION(capability(x))
#define DTX_SCOPED_CAPABILITY DTX_THREAD_ANNOTATION(scoped_lockable)
#define DTX_GUARDED_BY(x) DTX_THREAD_ANNOTATION(guarded_by(x))
#define DTX_PT_GUARDED_BY(x) DTX_THREAD_ANNOTATION(pt_guarded_by(x))
#define DTX_REQUIRES(...) \
  DTX_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define DTX_EXCLUDES(...) DTX_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define DTX_ACQUIRE(...) DTX_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define DTX_RELEASE(...) DTX_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define DTX_TRY_ACQUIRE(...) \
  DTX_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define DTX_ASSERT_HELD(x) DTX_THREAD_ANNOTATION(assert_capability(x))
#define DTX_NO_THREAD_SAFETY_ANALYSIS \
  DTX_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace dtx::internal {

class DTX_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() DTX_ACQUIRE() { mu_.lock(); }
  void Unlock() DTX_RELEASE() { mu_.unlock(); }
  bool TryLock() DTX_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis that the caller holds the lock (it cannot see through
  // a callback that runs under it).
  void AssertHeld() const DTX_ASSERT_HELD(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` for its scope.
class DTX_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) DTX_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() DTX_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable bound to one Mutex; every wait requires it held.
// The analysis cannot check that requirement: it cannot tell that the
// caller's `mu` and this CondVar's copy of the pointer are the same mutex (a
// DTX_REQUIRES(mu_) here would demand a lock on `cv.mu_`, which no caller can
// name). The waits are therefore unannotated, as leveldb's port::CondVar is.
class CondVar {
 public:
  explicit CondVar(Mutex* mu) : mu_(mu) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Waits until `done()` is true; `done` runs with the mutex held (the
  // analysis cannot see that inside a lambda: start it with mu.AssertHeld()).
  // `mu` is this CondVar's own mutex, passed again so that the analysis can
  // check that the caller holds it: it cannot tell that the pointer kept
  // here is the caller's mutex.
  //
  //   MutexLock lock(&mu_);
  //   cv_.Wait(&mu_, [this] { mu_.AssertHeld(); return !queue_.empty(); });
  template <typename Predicate>
  void Wait(Mutex* mu, Predicate done) DTX_REQUIRES(mu) {
    assert(mu == mu_);
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock, done);
    lock.release();
  }
  // As Wait, giving up after `timeout`; returns done().
  template <typename Rep, typename Period, typename Predicate>
  bool WaitFor(Mutex* mu, std::chrono::duration<Rep, Period> timeout,
               Predicate done) DTX_REQUIRES(mu) {
    assert(mu == mu_);
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool result = cv_.wait_for(lock, timeout, done);
    lock.release();
    return result;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  [[maybe_unused]] Mutex* const mu_;  // checked in debug builds
  std::condition_variable cv_;
};

}  // namespace dtx::internal

#endif  // DTX_INTERNAL_MUTEX_H_
