#include "dtx/testing/sim_loop.h"

#include <vector>

namespace dtx::testing {

uint64_t SimRandom::Next() {
  // splitmix64: fixed, portable, and good enough to drive a simulation.
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int64_t SimRandom::Between(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
}

bool SimRandom::Chance(double p) {
  if (p <= 0) return false;
  // 53 random bits as a double in [0, 1).
  const double u = static_cast<double>(Next() >> 11) * 0x1.0p-53;
  return u < p;
}

std::chrono::milliseconds SimRandom::Millis(std::chrono::milliseconds lo,
                                            std::chrono::milliseconds hi) {
  return std::chrono::milliseconds(Between(lo.count(), hi.count()));
}

void SimLoop::Process::Post(std::function<void()> fn) {
  loop_.Add(id_, loop_.Now(), std::move(fn));
}

void SimLoop::Process::PostAt(TimePoint when, std::function<void()> fn) {
  loop_.Add(id_, when, std::move(fn));
}

void SimLoop::Process::PostAfter(std::chrono::milliseconds delay,
                                 std::function<void()> fn) {
  loop_.Add(id_, loop_.Now() + delay, std::move(fn));
}

void SimLoop::Process::Kill() {
  if (!alive_) return;
  alive_ = false;
  loop_.Kill(id_);
}

SimLoop::SimLoop(TimePoint start) : now_(start) {}

SimLoop::~SimLoop() {
  // Closures are destroyed before the members they may post to.
  for (auto& [id, alive] : alive_) alive = false;
  while (!ready_.empty() || !timers_.empty()) {
    std::deque<Entry> ready = std::move(ready_);
    ready_.clear();
    auto timers = std::move(timers_);
    timers_.clear();
  }
}

std::shared_ptr<SimLoop::Process> SimLoop::NewProcess(std::string name) {
  const uint64_t id = next_process_++;
  alive_[id] = true;
  return std::make_shared<Process>(*this, id, std::move(name));
}

bool SimLoop::Alive(uint64_t process) const {
  auto it = alive_.find(process);
  return it != alive_.end() && it->second;
}

void SimLoop::Add(uint64_t process, TimePoint when, std::function<void()> fn) {
  if (!Alive(process)) return;  // `fn` is destroyed here
  if (when <= now_) {
    ready_.push_back(Entry{process, std::move(fn)});
  } else {
    timers_.emplace(std::make_pair(when, seq_++),
                    Entry{process, std::move(fn)});
  }
}

void SimLoop::Kill(uint64_t process) {
  alive_[process] = false;
  // Destroyed after they leave the queues: destroying one may post more.
  std::vector<std::function<void()>> dropped;
  for (auto it = ready_.begin(); it != ready_.end();) {
    if (it->process == process) {
      dropped.push_back(std::move(it->fn));
      it = ready_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = timers_.begin(); it != timers_.end();) {
    if (it->second.process == process) {
      dropped.push_back(std::move(it->second.fn));
      it = timers_.erase(it);
    } else {
      ++it;
    }
  }
}

bool SimLoop::RunOne() {
  Entry e;
  if (!ready_.empty()) {
    e = std::move(ready_.front());
    ready_.pop_front();
  } else if (!timers_.empty()) {
    auto it = timers_.begin();
    if (it->first.first > now_) now_ = it->first.first;
    e = std::move(it->second);
    timers_.erase(it);
  } else {
    return false;
  }
  ++steps_;
  if (Alive(e.process)) e.fn();
  return true;
}

void SimLoop::RunUntil(TimePoint until) {
  for (;;) {
    if (ready_.empty() &&
        (timers_.empty() || timers_.begin()->first.first > until))
      break;
    RunOne();
  }
  if (now_ < until) now_ = until;
}

bool SimLoop::RunUntil(const std::function<bool()>& done, TimePoint deadline) {
  while (!done()) {
    if (ready_.empty() &&
        (timers_.empty() || timers_.begin()->first.first > deadline)) {
      if (now_ < deadline) now_ = deadline;
      return done();
    }
    RunOne();
  }
  return true;
}

}  // namespace dtx::testing
