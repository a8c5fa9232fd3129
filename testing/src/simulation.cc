#include "dtx/testing/simulation.h"

#include "dtx/id_generator.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

namespace dtx::testing {
namespace {

// Gids and coordinator names from a counter: the same on every replay.
class CountingIds final : public IdGenerator {
 public:
  explicit CountingIds(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string NewGid() override { return prefix_ + "-" + std::to_string(++n_); }

 private:
  std::string prefix_;
  int64_t n_ = 0;
};

// Log lines after the simulated time since the start of the run.
class SimLogger final : public Logger {
 public:
  SimLogger(const SimLoop& loop, LogLevel min)
      : loop_(loop), start_(loop.Now()), min_(min) {}
  bool ShouldLog(LogLevel level) const override {
    return level >= min_ && level != LogLevel::kOff;
  }
  void Log(LogLevel level, std::string_view message) override {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        loop_.Now() - start_)
                        .count();
    std::fprintf(stderr, "[sim +%lld.%03llds] %s %.*s\n",
                 static_cast<long long>(ms / 1000),
                 static_cast<long long>(ms % 1000),
                 std::string(ToString(level)).c_str(),
                 static_cast<int>(message.size()), message.data());
  }

 private:
  const SimLoop& loop_;
  const TimePoint start_;
  const LogLevel min_;
};

}  // namespace

Options SimCoordinatorOptions() {
  Options o;
  o.retry.initial_interval = std::chrono::seconds(1);
  o.retry.max_interval = std::chrono::seconds(8);
  o.timeout_to_fail = std::chrono::seconds(10);
  o.request_timeout = std::chrono::seconds(1);
  o.cron_interval = std::chrono::seconds(1);
  return o;
}

Simulation::Simulation(SimulationOptions options)
    : options_(std::move(options)),
      random_(options_.seed),
      journal_(loop_, random_),
      service_(loop_, random_),
      app_(loop_.NewProcess("app")),
      world_(loop_.NewProcess("world")) {
  journal_.set_faults(options_.journal);
  service_.set_faults(options_.network);
  service_.set_crash_handler([this](const std::string& caller) {
    const int i = CoordinatorNamed(caller);
    if (i >= 0) Crash(i);
  });
  journal_.set_shared(options_.coordinators > 1);
  slots_.resize(static_cast<std::size_t>(std::max(options_.coordinators, 1)));
  app_client_ = service_.ClientFor(app_);
  if (options_.log_level != LogLevel::kOff)
    logger_ = std::make_shared<SimLogger>(loop_, options_.log_level);
}

Simulation::~Simulation() {
  for (int i = 0; i < coordinators(); ++i) Stop(i);
  app_->Kill();
  app_client_.reset();
}

std::size_t Simulation::Slot(int i) const {
  return i >= 0 && static_cast<std::size_t>(i) < slots_.size()
             ? static_cast<std::size_t>(i)
             : 0;
}

int Simulation::CoordinatorNamed(const std::string& process) const {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].process && slots_[i].process->name() == process)
      return static_cast<int>(i);
  }
  return -1;
}

Status Simulation::Start(int i) {
  Running& slot = slots_[Slot(i)];
  if (slot.coordinator)
    return FailedPreconditionError("sim: the coordinator runs");
  ++starts_;
  slot.process = loop_.NewProcess("coordinator-" + std::to_string(starts_));
  CoordinatorDeps deps;
  deps.journal = journal_.Open(slot.process);
  deps.branch_client = service_.ClientFor(slot.process);
  deps.clock = &loop_;
  deps.loop = slot.process.get();
  deps.logger = logger_;
  deps.ids = std::make_unique<CountingIds>("c" + std::to_string(starts_));
  auto c = Coordinator::Open(options_.coordinator, std::move(deps));
  if (!c.ok()) {
    slot.process->Kill();
    slot.process.reset();
    return c.status();
  }
  slot.coordinator = std::move(c).value();
  return Status::Ok();
}

void Simulation::Crash(int i) {
  Running& slot = slots_[Slot(i)];
  if (!slot.coordinator) return;
  ++crashes_;
  journal_.Crash(*slot.process);
  slot.process->Kill();
  slot.coordinator.reset();
  slot.process.reset();
}

void Simulation::CrashAndRestart(std::chrono::milliseconds downtime, int i) {
  Crash(i);
  world_->PostAfter(downtime, [this, i] {
    if (!running(i)) Start(i).IgnoreError();
  });
}

void Simulation::Stop(int i) {
  Running& slot = slots_[Slot(i)];
  if (!slot.coordinator) return;
  slot.coordinator->Shutdown();
  slot.coordinator.reset();
  slot.process->Kill();
  slot.process.reset();
}

void Simulation::StopFaults() {
  JournalFaults j = journal_.faults();
  j.write_error = 0;
  j.read_error = 0;
  journal_.set_faults(j);
  service_.set_faults(NetworkFaults{});
}

int64_t Simulation::Unfinished() const { return journal_.unfinished(); }

bool Simulation::RunUntilAllFinished(std::chrono::milliseconds bound) {
  return loop_.RunUntil(
      [this] { return Unfinished() == 0 && journal_.queued() == 0; },
      loop_.Now() + bound);
}

}  // namespace dtx::testing
