// SimJournal: the Journal contract (dtx/journal.h) on maps, with the
// semantics of SqliteJournal's statements (storage/src/sqlite_journal_ops.cc)
// written out as code: compare-and-set guards, fences and take-overs, branch
// updates all or nothing.

#include "dtx/testing/sim_journal.h"

#include "dtx/clock.h"
#include "dtx/limits.h"

#include "journal_validate.h"  // storage/src: the checks every journal makes

#include <algorithm>
#include <set>
#include <utility>

namespace dtx::testing {
namespace {

std::string Prefix(const std::string& gid) {
  return "journal: gid " + gid + ": ";
}

TimePoint Ms(TimePoint t) { return FromUnixMillis(ToUnixMillis(t)); }

Status StaleFence(const std::string& gid, const Fence& fence,
                  const GlobalTrans& t) {
  return AbortedError(Prefix(gid) + "claimed by coordinator '" + t.owner +
                      "' since (fence " + std::to_string(t.fence) +
                      ", the write's " + std::to_string(fence.token) + " by '" +
                      fence.owner + "'): the write is refused");
}

Status CheckFence(const std::string& gid, const GlobalTrans& t,
                  const std::optional<Fence>& fence) {
  if (!fence || fence->token == t.fence) return Status::Ok();
  return StaleFence(gid, *fence, t);
}

bool Unfinished(TransStatus s) { return !IsFinished(s); }

}  // namespace

// One coordinator incarnation's view of the journal.
class SimJournal::Handle final : public Journal {
 public:
  Handle(SimJournal& j, std::shared_ptr<SimLoop::Process> process, uint64_t id)
      : j_(j), process_(std::move(process)), id_(id) {}
  ~Handle() override { Close(); }

  void SaveNew(GlobalTrans trans, std::vector<Branch> branches,
               WriteDone done) override {
    Status s = internal::ValidateTransFields(trans);
    if (s.ok()) s = internal::ValidateBranchFields(trans.gid, branches);
    if (s.ok()) s = internal::CheckNoRepeatedBranch(trans.gid, branches);
    if (!s.ok()) return Refuse(std::move(s), std::move(done));
    Write([this, trans = std::move(trans),
           branches = std::move(
               branches)]() mutable { return j_.DoSaveNew(trans, branches); },
          std::move(done));
  }
  void AppendBranches(std::string gid, TransStatus expected,
                      std::vector<Branch> branches, WriteDone done) override {
    Status s = ValidateGid(gid).WithPrefix("journal");
    if (s.ok()) s = internal::ValidateBranchFields(gid, branches);
    if (!s.ok()) return Refuse(std::move(s), std::move(done));
    Write(
        [this, gid = std::move(gid), expected,
         branches = std::move(branches)]() mutable {
          return j_.DoAppend(gid, expected, branches);
        },
        std::move(done));
  }
  void ChangeStatus(StatusChange change, WriteDone done) override {
    Status s = ValidateGid(change.gid).WithPrefix("journal");
    if (s.ok() && change.rollback_reason) {
      s = ValidateText("rollback_reason", *change.rollback_reason)
              .WithPrefix("journal");
    }
    if (s.ok() && change.result)
      s = ValidateText("result", *change.result).WithPrefix("journal");
    if (!s.ok()) return Refuse(std::move(s), std::move(done));
    Write([this,
           change = std::move(change)] { return j_.DoChangeStatus(change); },
          std::move(done));
  }
  void UpdateBranches(BranchResults results, WriteDone done) override {
    Write([this, results = std::move(
                     results)] { return j_.DoUpdateBranches(results); },
          std::move(done));
  }
  void TouchCron(CronUpdate update, WriteDone done) override {
    Write([this, update = std::move(update)] { return j_.DoTouchCron(update); },
          std::move(done));
  }
  void MakeDue(std::string gid, TimePoint now, WriteDone done) override {
    Write([this, gid = std::move(gid), now] { return j_.DoMakeDue(gid, now); },
          std::move(done));
  }
  void Claim(ClaimRequest request, ClaimDone done) override {
    Status ready = CommitBeforeSyncWrite("claim");
    if (!ready.ok()) return std::move(done)(std::move(ready));
    std::vector<GlobalTrans> claimed;
    Status s = j_.DoClaim(request, &claimed);
    if (s.ok()) {
      std::move(done)(std::move(claimed));
    } else {
      std::move(done)(std::move(s));
    }
  }
  void PurgeFinished(PurgeRequest request, PurgeDone done) override {
    Status ready = CommitBeforeSyncWrite("purge");
    if (!ready.ok()) return std::move(done)(std::move(ready));
    std::move(done)(j_.DoPurge(request));
  }
  void Flush(WriteDone done) override {
    if (!Usable()) {
      std::move(done)(UnavailableError("journal: the process is gone"));
      return;
    }
    j_.CommitAll();
    std::move(done)(Status::Ok());
  }

  Result<TransWithBranches> Find(const std::string& gid) override {
    if (closed_) return FailedPreconditionError("journal: closed");
    if (j_.random_.Chance(j_.faults_.read_error)) {
      ++j_.injected_errors_;
      return UnavailableError("journal: injected i/o error (read)");
    }
    auto it = j_.rows_.find(gid);
    if (it == j_.rows_.end()) return NotFoundError(Prefix(gid) + "not found");
    return it->second;
  }

  Result<ListPage> List(const ListQuery& q) override {
    if (closed_) return FailedPreconditionError("journal: closed");
    const std::size_t limit = q.limit == 0 ? kDefaultListLimit : q.limit;
    std::vector<const GlobalTrans*> all;
    for (const auto& [gid, t] : j_.rows_) all.push_back(&t.trans);
    std::sort(all.begin(), all.end(),
              [](const GlobalTrans* a, const GlobalTrans* b) {
                return a->id > b->id;
              });
    ListPage page;
    for (const GlobalTrans* t : all) {
      if (q.cursor > 0 && t->id >= q.cursor) continue;
      if (q.status && t->status != *q.status) continue;
      if (q.trans_type && t->trans_type != *q.trans_type) continue;
      if (q.created_from && t->create_time < *q.created_from) continue;
      if (q.created_to && t->create_time > *q.created_to) continue;
      if (t->gid.compare(0, q.gid_prefix.size(), q.gid_prefix) != 0) continue;
      if (q.unfinished_only && !Unfinished(t->status)) continue;
      page.transactions.push_back(*t);
      if (page.transactions.size() == limit) break;
    }
    if (page.transactions.size() == limit)
      page.next_cursor = page.transactions.back().id;
    return page;
  }

  Result<DuePage> ListDue(TimePoint now, std::size_t limit,
                          DueCursor after) override {
    if (closed_) return FailedPreconditionError("journal: closed");
    if (limit == 0) limit = 1;
    std::vector<const GlobalTrans*> due;
    for (const auto& [gid, t] : j_.rows_) {
      const GlobalTrans& g = t.trans;
      if (!Unfinished(g.status) || g.next_cron_time > now) continue;
      if (std::make_pair(g.next_cron_time, g.id) <=
          std::make_pair(after.next_cron_time, after.id))
        continue;
      due.push_back(&g);
    }
    std::sort(due.begin(), due.end(),
              [](const GlobalTrans* a, const GlobalTrans* b) {
                return std::make_pair(a->next_cron_time, a->id) <
                       std::make_pair(b->next_cron_time, b->id);
              });
    DuePage page;
    for (const GlobalTrans* g : due) {
      page.transactions.push_back(*g);
      if (page.transactions.size() == limit) break;
    }
    if (page.transactions.size() == limit) {
      page.next = DueCursor{page.transactions.back().next_cron_time,
                            page.transactions.back().id};
    }
    return page;
  }

  Result<UnfinishedSummary> Summarize(TimePoint now) override {
    if (closed_) return FailedPreconditionError("journal: closed");
    UnfinishedSummary s;
    for (const auto& [gid, t] : j_.rows_) {
      const GlobalTrans& g = t.trans;
      if (!Unfinished(g.status)) continue;
      ++s.unfinished;
      if (g.next_cron_time <= now) ++s.due;
      if (!s.oldest_create_time || g.create_time < *s.oldest_create_time)
        s.oldest_create_time = g.create_time;
    }
    return s;
  }

  Result<StatusCounts> CountByStatus() override {
    if (closed_) return FailedPreconditionError("journal: closed");
    StatusCounts c;
    for (const auto& [gid, t] : j_.rows_) ++c[t.trans.status];
    return c;
  }

  bool shared() const override { return j_.shared_; }

  void Close() override {
    if (closed_) return;
    if (Usable()) j_.CommitAll();
    closed_ = true;
  }

 private:
  // A write that completes before it returns (Claim, PurgeFinished): what
  // is queued commits first, then an injected i/o error may fail it.
  Status CommitBeforeSyncWrite(const char* what) {
    if (!Usable()) return UnavailableError("journal: the process is gone");
    j_.CommitAll();
    if (j_.random_.Chance(j_.faults_.write_error)) {
      ++j_.injected_errors_;
      return UnavailableError(std::string("journal: injected i/o error (") +
                              what + ")");
    }
    return Status::Ok();
  }
  bool Usable() const { return !closed_ && process_->alive(); }

  // A write refused before it is queued, answered from the journal's own
  // "thread" as any other.
  void Refuse(Status s, WriteDone done) {
    if (!process_->alive()) return;
    auto d = std::make_shared<WriteDone>(std::move(done));
    j_.disk_->Post([d, s] { std::move (*d)(s); });
  }

  void Write(std::function<Status()> apply, WriteDone done) {
    if (!process_->alive()) return;  // the process is gone: so is `done`
    if (closed_) {
      return Refuse(FailedPreconditionError("journal: closed"),
                    std::move(done));
    }
    Pending p;
    p.handle = id_;
    p.process = process_.get();
    p.apply = std::move(apply);
    auto d = std::make_shared<WriteDone>(std::move(done));
    p.done = [d](Status s) { std::move (*d)(std::move(s)); };
    j_.Enqueue(std::move(p));
  }

  SimJournal& j_;
  std::shared_ptr<SimLoop::Process> process_;
  const uint64_t id_;
  bool closed_ = false;
};

SimJournal::SimJournal(SimLoop& loop, SimRandom& random, const Clock* clock)
    : loop_(loop),
      random_(random),
      clock_(clock != nullptr ? *clock : loop),
      disk_(loop.NewProcess("journal")) {}

SimJournal::~SimJournal() = default;

std::unique_ptr<Journal> SimJournal::Open(
    std::shared_ptr<SimLoop::Process> process) {
  return std::make_unique<Handle>(*this, std::move(process), ++next_handle_);
}

TimePoint SimJournal::Now() const { return Ms(clock_.Now()); }

void SimJournal::Enqueue(Pending p) {
  pending_.push_back(std::move(p));
  ScheduleCommit();
}

void SimJournal::ScheduleCommit() {
  if (commit_scheduled_ || pending_.empty()) return;
  commit_scheduled_ = true;
  disk_->PostAfter(
      random_.Millis(faults_.commit_delay_min, faults_.commit_delay_max),
      [this] {
        commit_scheduled_ = false;
        CommitBatch();
        ScheduleCommit();
      });
}

Status SimJournal::ApplyOne(Pending& p) {
  ++writes_;
  if (p.injectable && random_.Chance(faults_.write_error)) {
    ++injected_errors_;
    return UnavailableError("journal: injected i/o error");
  }
  return p.apply();
}

void SimJournal::CommitBatch() {
  if (pending_.empty()) return;
  const std::size_t n = std::min<std::size_t>(
      pending_.size(),
      1 + random_.Below(std::max<std::size_t>(faults_.max_batch, 1)));
  std::vector<std::pair<Pending, Status>> batch;
  for (std::size_t i = 0; i < n; ++i) {
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    Status s = ApplyOne(p);
    batch.emplace_back(std::move(p), std::move(s));
  }
  ++commits_;
  for (auto& [p, s] : batch) {
    if (p.process->alive()) p.done(s);
  }
}

void SimJournal::CommitAll() {
  while (!pending_.empty()) CommitBatch();
}

void SimJournal::Crash(const SimLoop::Process& process) {
  std::deque<Pending> keep;
  std::vector<Pending> mine;
  for (auto& p : pending_) {
    if (p.process == &process) {
      mine.push_back(std::move(p));
    } else {
      keep.push_back(std::move(p));
    }
  }
  pending_.swap(keep);
  std::size_t durable = 0;
  if (!mine.empty() && random_.Chance(faults_.torn_at_crash))
    durable = random_.Below(mine.size() + 1);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (i < durable) {
      ApplyOne(mine[i]).IgnoreError();
      ++torn_writes_;
    } else {
      ++dropped_writes_;
    }
  }
  // `mine` (their completions) goes here, unrun.
}

Status SimJournal::DoSaveNew(GlobalTrans t, std::vector<Branch> branches) {
  if (rows_.count(t.gid) != 0)
    return AlreadyExistsError(Prefix(t.gid) + "already exists");
  std::set<std::pair<std::string, BranchOp>> seen;
  for (const Branch& b : branches) {
    if (!seen.emplace(b.branch_id, b.op).second) {
      return AlreadyExistsError(Prefix(t.gid) + "branch " + b.branch_id + "/" +
                                std::string(ToString(b.op)) +
                                " repeated in the request");
    }
  }
  const TimePoint now = Now();
  t.id = ++next_trans_id_;
  if (t.create_time == TimePoint{}) t.create_time = now;
  t.create_time = Ms(t.create_time);
  t.update_time = now;
  t.next_cron_time = Ms(t.next_cron_time);
  for (Branch& b : branches) {
    b.id = ++next_branch_id_;
    b.gid = t.gid;
    if (b.create_time == TimePoint{}) b.create_time = now;
    b.update_time = now;
  }
  history_[t.gid].push_back(t.status);
  if (Unfinished(t.status)) ++unfinished_;
  TransWithBranches row{std::move(t), std::move(branches)};
  const std::string gid = row.trans.gid;
  rows_.emplace(gid, std::move(row));
  return Status::Ok();
}

Status SimJournal::DoAppend(const std::string& gid, TransStatus expected,
                            std::vector<Branch> branches) {
  auto it = rows_.find(gid);
  if (it == rows_.end()) return NotFoundError(Prefix(gid) + "not found");
  TransWithBranches& t = it->second;
  if (t.trans.status != expected) {
    return FailedPreconditionError(
        Prefix(gid) + "status is '" + std::string(ToString(t.trans.status)) +
        "', expected '" + std::string(ToString(expected)) + "'");
  }
  std::set<std::pair<std::string, BranchOp>> seen;
  for (const Branch& b : t.branches) seen.emplace(b.branch_id, b.op);
  for (const Branch& b : branches) {
    if (!seen.emplace(b.branch_id, b.op).second) {
      return AlreadyExistsError(Prefix(gid) + "branch " + b.branch_id + "/" +
                                std::string(ToString(b.op)) +
                                " already exists");
    }
  }
  const TimePoint now = Now();
  for (Branch& b : branches) {
    b.id = ++next_branch_id_;
    b.gid = gid;
    if (b.create_time == TimePoint{}) b.create_time = now;
    b.update_time = now;
    t.branches.push_back(std::move(b));
  }
  return Status::Ok();
}

Status SimJournal::ApplyUpdates(TransWithBranches& t,
                                const std::vector<BranchUpdate>& updates) {
  // All or nothing: every row must exist first.
  std::vector<Branch*> rows;
  for (const BranchUpdate& u : updates) {
    Branch* found = nullptr;
    for (Branch& b : t.branches) {
      if (b.branch_id == u.branch_id && b.op == u.op) found = &b;
    }
    if (found == nullptr) {
      return NotFoundError(Prefix(t.trans.gid) + "branch " + u.branch_id + "/" +
                           std::string(ToString(u.op)) + " not found");
    }
    rows.push_back(found);
  }
  const TimePoint now = Now();
  for (std::size_t i = 0; i < updates.size(); ++i) {
    const BranchUpdate& u = updates[i];
    Branch& b = *rows[i];
    b.status = u.status;
    b.update_time = now;
    if (u.status != BranchStatus::kPrepared) b.finish_time = now;
    if (u.attempt) {
      ++b.attempts;
      b.last_try_time = Ms(u.attempt->time);
      b.last_error = u.attempt->error;
    }
  }
  return Status::Ok();
}

Status SimJournal::DoChangeStatus(const StatusChange& c) {
  auto it = rows_.find(c.gid);
  if (it == rows_.end()) return NotFoundError(Prefix(c.gid) + "not found");
  TransWithBranches& t = it->second;
  GlobalTrans& g = t.trans;
  DTX_RETURN_IF_ERROR(CheckFence(c.gid, g, c.fence));
  if (g.status != c.from) {
    return FailedPreconditionError(
        Prefix(c.gid) + "status is '" + std::string(ToString(g.status)) +
        "', expected '" + std::string(ToString(c.from)) + "'");
  }
  if (c.expected_branch_rows &&
      static_cast<int64_t>(t.branches.size()) != *c.expected_branch_rows) {
    return FailedPreconditionError(
        Prefix(c.gid) + "branch rows changed (expected " +
        std::to_string(*c.expected_branch_rows) + ")");
  }
  // The branch rows are checked before anything is written.
  TransWithBranches copy = t;
  DTX_RETURN_IF_ERROR(ApplyUpdates(copy, c.branch_updates));
  GlobalTrans& n = copy.trans;
  const TimePoint now = Now();
  n.status = c.to;
  n.update_time = now;
  if (c.to == TransStatus::kSucceed) n.finish_time = now;
  if (c.to == TransStatus::kFailed) n.rollback_time = now;
  if (c.rollback_reason) n.rollback_reason = *c.rollback_reason;
  if (c.result) n.result = *c.result;
  if (c.next_cron_interval) n.next_cron_interval = *c.next_cron_interval;
  if (c.next_cron_time) n.next_cron_time = Ms(*c.next_cron_time);
  if (c.fence && c.fence->owner != n.owner) {
    n.owner = c.fence->owner;
    ++n.fence;
  }
  if (Unfinished(c.from) && !Unfinished(c.to)) {
    --unfinished_;
    finished_at_[c.gid] = loop_.Now();
  }
  t = std::move(copy);
  history_[c.gid].push_back(c.to);
  return Status::Ok();
}

Status SimJournal::DoUpdateBranches(const BranchResults& r) {
  auto it = rows_.find(r.gid);
  if (it == rows_.end()) return NotFoundError(Prefix(r.gid) + "not found");
  TransWithBranches& t = it->second;
  DTX_RETURN_IF_ERROR(CheckFence(r.gid, t.trans, r.fence));
  if (r.expected && t.trans.status != *r.expected) {
    return FailedPreconditionError(
        Prefix(r.gid) + "status is '" + std::string(ToString(t.trans.status)) +
        "', expected '" + std::string(ToString(*r.expected)) + "'");
  }
  TransWithBranches copy = t;
  DTX_RETURN_IF_ERROR(ApplyUpdates(copy, r.updates));
  if (r.fence && r.fence->owner != copy.trans.owner) {
    copy.trans.owner = r.fence->owner;
    ++copy.trans.fence;
  }
  t = std::move(copy);
  return Status::Ok();
}

Status SimJournal::DoTouchCron(const CronUpdate& u) {
  auto it = rows_.find(u.gid);
  if (it == rows_.end()) return NotFoundError(Prefix(u.gid) + "not found");
  GlobalTrans& g = it->second.trans;
  DTX_RETURN_IF_ERROR(CheckFence(u.gid, g, u.fence));
  if (g.status != u.expected) {
    return FailedPreconditionError(
        Prefix(u.gid) + "status is '" + std::string(ToString(g.status)) +
        "', expected '" + std::string(ToString(u.expected)) + "'");
  }
  g.next_cron_interval = u.next_cron_interval;
  g.next_cron_time = Ms(u.next_cron_time);
  g.update_time = Now();
  if (u.retry_count) g.retry_count = *u.retry_count;
  if (u.fence && g.owner != u.fence->owner) ++g.fence;
  if (u.release) {
    g.owner.clear();
  } else if (u.fence) {
    g.owner = u.fence->owner;
  }
  return Status::Ok();
}

Status SimJournal::DoMakeDue(const std::string& gid, TimePoint now) {
  auto it = rows_.find(gid);
  if (it == rows_.end()) return NotFoundError(Prefix(gid) + "not found");
  GlobalTrans& g = it->second.trans;
  if (!Unfinished(g.status)) {
    return FailedPreconditionError(Prefix(gid) + "status is '" +
                                   std::string(ToString(g.status)) +
                                   "', expected an unfinished status");
  }
  if (shared_ && !g.owner.empty()) {
    return FailedPreconditionError(Prefix(gid) + "coordinator '" + g.owner +
                                   "' is working on it (its lease runs)");
  }
  g.next_cron_time = Ms(now);
  g.update_time = Now();
  return Status::Ok();
}

PurgeResult SimJournal::DoPurge(const PurgeRequest& req) {
  PurgeResult out;
  out.next_after_id = req.after_id;
  std::vector<std::pair<int64_t, const std::string*>> scan;
  for (const auto& [gid, t] : rows_) {
    if (t.trans.id > req.after_id) scan.emplace_back(t.trans.id, &gid);
  }
  std::sort(scan.begin(), scan.end());
  const std::size_t limit = std::max<std::size_t>(req.scan_limit, 1);
  if (scan.size() > limit) scan.resize(limit);
  const TimePoint newest = std::max(req.finished_before, req.created_before);
  bool reached_new = false;
  std::vector<std::string> gone;
  for (const auto& [id, gid] : scan) {
    const GlobalTrans& g = rows_.at(*gid).trans;
    ++out.scanned;
    out.next_after_id = id;
    if (g.create_time >= newest) reached_new = true;
    if (IsFinished(g.status) && (g.update_time < req.finished_before ||
                                 g.create_time < req.created_before)) {
      gone.push_back(*gid);
    }
  }
  // history_ and finished_at_ keep what the checks need.
  for (const std::string& gid : gone) rows_.erase(gid);
  out.removed = gone.size();
  out.more = !reached_new && out.scanned == limit;
  return out;
}

Status SimJournal::DoClaim(const ClaimRequest& req,
                           std::vector<GlobalTrans>* out) {
  std::vector<GlobalTrans*> due;
  for (auto& [gid, t] : rows_) {
    GlobalTrans& g = t.trans;
    if (Unfinished(g.status) && g.next_cron_time <= req.now) due.push_back(&g);
  }
  std::sort(due.begin(), due.end(), [](GlobalTrans* a, GlobalTrans* b) {
    return std::make_pair(a->next_cron_time, a->id) <
           std::make_pair(b->next_cron_time, b->id);
  });
  const std::size_t limit = std::max<std::size_t>(req.limit, 1);
  if (due.size() > limit) due.resize(limit);
  for (GlobalTrans* g : due) {
    if (g->owner != req.owner) ++g->fence;
    g->owner = req.owner;
    g->next_cron_time = Ms(req.lease_until);
    g->update_time = Now();
    out->push_back(*g);
  }
  return Status::Ok();
}

}  // namespace dtx::testing
