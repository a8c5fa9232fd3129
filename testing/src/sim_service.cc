#include "dtx/testing/sim_service.h"

#include <algorithm>
#include <set>
#include <utility>

namespace dtx::testing {

BranchResult SimAnswer(BranchOutcome outcome, std::string message) {
  BranchResult r;
  r.outcome = outcome;
  switch (outcome) {
    case BranchOutcome::kSuccess:
      r.status = Status::Ok();
      break;
    case BranchOutcome::kFailure:
      r.status = AbortedError(message.empty() ? "FAILURE" : message);
      break;
    case BranchOutcome::kOngoing:
      r.status = FailedPreconditionError(message.empty() ? "ONGOING" : message);
      break;
    case BranchOutcome::kTransient:
      r.status = UnavailableError(message.empty() ? "unavailable" : message);
      break;
  }
  return r;
}

struct SimService::InFlight {
  int64_t id = 0;
  BranchRequest request;
  Executor executor;
  BranchClient::Callback done;
  std::shared_ptr<SimLoop::Process> process;
  Client* client = nullptr;  // null once the client is gone
  bool answered = false;
};

class SimService::Client final : public BranchClient {
 public:
  Client(SimService& s, std::shared_ptr<SimLoop::Process> process)
      : s_(s), process_(std::move(process)) {}
  ~Client() override {
    Shutdown();
    for (auto* call : in_flight_) call->client = nullptr;
  }

  void Call(BranchRequest request, Executor executor, Callback done) override {
    auto call = std::make_shared<InFlight>();
    call->id = ++s_.next_id_;
    call->request = std::move(request);
    call->executor = std::move(executor);
    call->done = std::move(done);
    call->process = process_;
    if (!process_->alive()) return;  // the caller is gone
    if (shut_down_) {
      call->client = nullptr;
      s_.Answer(call,
                BranchResult{BranchOutcome::kTransient,
                             CancelledError("sim: client shut down"), ""});
      return;
    }
    call->client = this;
    in_flight_.insert(call.get());
    s_.Send(std::move(call));
  }

  BranchResult CallBlocking(BranchRequest) override {
    // One thread drives the simulation: nothing could answer while it waits.
    return BranchResult{
        BranchOutcome::kTransient,
        FailedPreconditionError("sim: CallBlocking on the simulation's loop "
                                "would never return; use Call"),
        ""};
  }

  Status ValidateUrl(std::string_view url, std::string_view) override {
    if (s_.Find(std::string(url)) == nullptr) {
      return InvalidArgumentError("sim: no handler serves url '" +
                                  std::string(url) + "'");
    }
    return Status::Ok();
  }

  void Shutdown() override {
    if (shut_down_) return;
    shut_down_ = true;
    // Answered kCancelled, in the order they were sent.
    std::vector<InFlight*> calls(in_flight_.begin(), in_flight_.end());
    std::sort(calls.begin(), calls.end(),
              [](InFlight* a, InFlight* b) { return a->id < b->id; });
    std::vector<std::shared_ptr<InFlight>> held;
    for (InFlight* c : calls) held.push_back(calls_[c].lock());
    for (auto& c : held) {
      if (c) {
        s_.Answer(c, BranchResult{BranchOutcome::kTransient,
                                  CancelledError("sim: client shut down"), ""});
      }
    }
  }

  void Track(const std::shared_ptr<InFlight>& call) {
    calls_[call.get()] = call;
  }
  void Done(InFlight* call) {
    in_flight_.erase(call);
    calls_.erase(call);
  }

 private:
  SimService& s_;
  std::shared_ptr<SimLoop::Process> process_;
  bool shut_down_ = false;
  std::set<InFlight*> in_flight_;
  std::map<InFlight*, std::weak_ptr<InFlight>> calls_;
};

SimService::SimService(SimLoop& loop, SimRandom& random)
    : loop_(loop), random_(random), net_(loop.NewProcess("network")) {}

SimService::~SimService() = default;

void SimService::Handle(std::string url, Handler handler) {
  handlers_[std::move(url)] = std::move(handler);
}

void SimService::Script(ScriptRule rule) {
  scripts_.push_back(std::move(rule));
}

std::unique_ptr<BranchClient> SimService::ClientFor(
    std::shared_ptr<SimLoop::Process> process) {
  return std::make_unique<Client>(*this, std::move(process));
}

const SimService::Handler* SimService::Find(const std::string& url) const {
  auto it = handlers_.find(url);
  if (it != handlers_.end()) return &it->second;
  // The longest registered prefix U of url with url = U + "/" + ...
  for (std::size_t slash = url.rfind('/'); slash != std::string::npos && slash;
       slash = url.rfind('/', slash - 1)) {
    auto p = handlers_.find(url.substr(0, slash));
    if (p != handlers_.end()) return &p->second;
  }
  return nullptr;
}

int64_t SimService::Handled(const std::string& gid,
                            const std::string& branch_id, BranchOp op) const {
  int64_t n = 0;
  for (const ArrivedCall& a : arrived_) {
    if (a.handled && a.info.gid == gid && a.info.branch_id == branch_id &&
        a.info.op == op)
      ++n;
  }
  return n;
}

void SimService::Send(std::shared_ptr<InFlight> call) {
  call->client->Track(call);
  SentCall rec;
  rec.id = call->id;
  rec.time = loop_.Now();
  rec.url = call->request.url;
  rec.info = call->request.info;
  rec.caller = call->process->name();
  sent_.push_back(rec);

  // The first script that matches, if any.
  CrashPoint crash = CrashPoint::kNone;
  std::optional<BranchOutcome> scripted;
  std::string message;
  std::chrono::milliseconds extra{0};
  bool by_script = false;
  const TransInfo& info = call->request.info;
  for (auto it = scripts_.begin(); it != scripts_.end(); ++it) {
    if (!it->gid.empty() && it->gid != info.gid) continue;
    if (!it->branch_id.empty() && it->branch_id != info.branch_id) continue;
    if (it->op && *it->op != info.op) continue;
    crash = it->crash;
    scripted = it->answer;
    message = it->message;
    extra = it->delay;
    by_script = true;
    if (it->times > 0 && --it->times == 0) scripts_.erase(it);
    break;
  }

  const auto timeout = call->request.timeout.count() > 0 ? call->request.timeout
                                                         : default_timeout_;
  net_->PostAfter(timeout, [this, call] {
    Answer(call,
           BranchResult{BranchOutcome::kTransient,
                        DeadlineExceededError("sim: deadline exceeded"), ""});
  });
  const bool faults = !by_script;
  if (faults && random_.Chance(faults_.drop)) return;
  auto there = random_.Millis(faults_.delay_min, faults_.delay_max);
  if (faults && random_.Chance(faults_.slow))
    there = random_.Millis(faults_.delay_min, faults_.slow_max);
  const bool duplicate = faults && random_.Chance(faults_.duplicate);
  net_->PostAfter(there + extra,
                  [this, call, crash, scripted, message, faults] {
                    Arrive(call, crash, scripted, message, faults, false);
                  });
  if (duplicate) {
    net_->PostAfter(there + random_.Millis(faults_.delay_min,
                                           faults_.delay_max * 2 +
                                               std::chrono::milliseconds(1)),
                    [this, call] {
                      Arrive(call, CrashPoint::kNone, std::nullopt, "",
                             /*faults=*/false, /*duplicate=*/true);
                    });
  }
}

void SimService::Arrive(std::shared_ptr<InFlight> call, CrashPoint crash,
                        std::optional<BranchOutcome> scripted,
                        std::string message, bool faults, bool duplicate) {
  if (crash == CrashPoint::kBeforeApply) {
    if (crash_) crash_(call->process->name());
    return;
  }
  ArrivedCall rec;
  rec.id = call->id;
  rec.time = loop_.Now();
  rec.url = call->request.url;
  rec.info = call->request.info;
  if (scripted) {
    rec.result = SimAnswer(*scripted, message);
  } else if (faults && random_.Chance(faults_.error)) {
    rec.result = SimAnswer(BranchOutcome::kTransient, "sim: injected error");
  } else if (faults && random_.Chance(faults_.ongoing)) {
    rec.result = SimAnswer(BranchOutcome::kOngoing, "sim: injected ONGOING");
  } else if (faults && random_.Chance(faults_.failure)) {
    rec.result = SimAnswer(BranchOutcome::kFailure, "sim: injected FAILURE");
  } else if (const Handler* h = Find(call->request.url)) {
    rec.result = (*h)(call->request);
    rec.handled = true;
  } else {
    rec.result = SimAnswer(BranchOutcome::kTransient,
                           "sim: no handler serves " + call->request.url);
  }
  arrived_.push_back(rec);
  if (duplicate) return;  // its caller takes the first answer only
  if (crash == CrashPoint::kAfterApply) {
    if (crash_) crash_(call->process->name());
    return;
  }
  if (faults && random_.Chance(faults_.lose_reply)) return;
  net_->PostAfter(random_.Millis(faults_.delay_min, faults_.delay_max),
                  [this, call, result = std::move(rec.result)]() mutable {
                    Answer(call, std::move(result));
                  });
}

void SimService::Answer(const std::shared_ptr<InFlight>& call,
                        BranchResult result) {
  if (call->answered) return;
  call->answered = true;
  if (call->client != nullptr) call->client->Done(call.get());
  call->client = nullptr;
  // Taken out first: a caller that is gone drops them here, not when the
  // network's last timer of the call runs.
  auto done = std::exchange(call->done, nullptr);
  auto executor = std::exchange(call->executor, nullptr);
  if (!call->process->alive() || !done) return;  // the caller is gone
  if (executor) {
    executor([done = std::move(done), result = std::move(result)]() {
      done(result);
    });
  } else {
    done(std::move(result));
  }
}

}  // namespace dtx::testing
