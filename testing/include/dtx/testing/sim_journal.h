// SimJournal: an in-memory Journal for simulations, on a SimLoop. It keeps
// the durable state (what a restarted coordinator reads) apart from the
// writes still queued: those commit in batches, after a simulated disk
// delay, each write succeeding or failing on its own (an injected i/o error
// fails one with kUnavailable, writing nothing). A coordinator's crash
// (Crash) drops its queued writes, or commits a prefix of them without
// acknowledging any (a torn batch: the commit landed, the process died
// before the completions ran).
//
// Writes are checked as SqliteJournal checks them (dtx/limits.h, repeated
// branches), with the same errors.
//
// Each coordinator incarnation gets its own handle (Open), tied to the
// SimLoop::Process it runs in; the state outlives handles. Claim and Flush
// commit everything queued before them and complete before returning, as a
// coordinator on a loop needs (CoordinatorDeps::loop). Reads see the durable
// state.
//
// The journal records every global status a transaction had, in commit
// order (history), for the simulation's state-machine check.
//
// Thread safety: thread-compatible: used from the loop's thread only.

#ifndef DTX_TESTING_SIM_JOURNAL_H_
#define DTX_TESTING_SIM_JOURNAL_H_

#include "dtx/journal.h"
#include "dtx/testing/sim_loop.h"
#include "dtx/testing_export.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dtx::testing {

struct JournalFaults {
  // Probability that one write (or claim) fails with kUnavailable, writing
  // nothing.
  double write_error = 0;
  // Probability that one read (Find) fails with kUnavailable.
  double read_error = 0;
  // Probability that a crash commits a prefix of the queued writes (torn)
  // instead of dropping them all.
  double torn_at_crash = 0.5;
  // A batch commits this long after the first write queued for it.
  std::chrono::milliseconds commit_delay_min{0};
  std::chrono::milliseconds commit_delay_max{2};
  // At most this many writes per batch (each batch takes a random number
  // from 1 to this).
  std::size_t max_batch = 8;
};

class DTX_TESTING_EXPORT SimJournal {
 public:
  // `loop` and `random` (and `clock`, when given) must outlive the journal
  // and its handles. Timestamps it sets (update_time, finish_time, a zero
  // create_time) come from `clock`, by default the loop.
  SimJournal(SimLoop& loop, SimRandom& random, const Clock* clock = nullptr);
  ~SimJournal();
  SimJournal(const SimJournal&) = delete;
  SimJournal& operator=(const SimJournal&) = delete;

  // A handle for a coordinator running in `process`: its writes' completions
  // are dropped once the process is killed.
  std::unique_ptr<Journal> Open(std::shared_ptr<SimLoop::Process> process);

  // The process of a handle died: its queued writes are dropped or, with
  // probability faults().torn_at_crash, a random prefix of them commits
  // unacknowledged. Call it when killing the process.
  void Crash(const SimLoop::Process& process);

  void set_faults(const JournalFaults& faults) { faults_ = faults; }
  // Whether handles say that coordinators in other processes may share it
  // (Journal::shared()): MakeDue then leaves a transaction with an owner to
  // that owner's lease. Default false.
  void set_shared(bool shared) { shared_ = shared; }
  const JournalFaults& faults() const { return faults_; }

  // The durable state.
  const std::map<std::string, TransWithBranches>& rows() const { return rows_; }
  // Every global status of each transaction, in commit order (the first is
  // the status it was saved with).
  const std::map<std::string, std::vector<TransStatus>>& history() const {
    return history_;
  }
  // When each transaction's status became final (committed), if it did.
  const std::map<std::string, TimePoint>& finished_at() const {
    return finished_at_;
  }

  // Writes queued, not yet committed.
  std::size_t queued() const { return pending_.size(); }
  // Unfinished transactions in the durable state.
  int64_t unfinished() const { return unfinished_; }

  // Counters.
  int64_t commits() const { return commits_; }
  int64_t writes() const { return writes_; }
  int64_t injected_errors() const { return injected_errors_; }
  int64_t torn_writes() const { return torn_writes_; }
  int64_t dropped_writes() const { return dropped_writes_; }

 private:
  class Handle;
  struct Pending {
    uint64_t handle = 0;
    const SimLoop::Process* process = nullptr;
    std::function<Status()> apply;
    std::function<void(Status)> done;
    bool injectable = true;
  };

  void Enqueue(Pending p);
  void ScheduleCommit();
  void CommitBatch();
  // Commits everything queued, completions included, before returning.
  void CommitAll();
  Status ApplyOne(Pending& p);

  // The operations on the durable state (journal.h's contract).
  Status DoSaveNew(GlobalTrans trans, std::vector<Branch> branches);
  Status DoAppend(const std::string& gid, TransStatus expected,
                  std::vector<Branch> branches);
  Status DoChangeStatus(const StatusChange& c);
  Status DoUpdateBranches(const BranchResults& r);
  Status DoTouchCron(const CronUpdate& u);
  Status DoMakeDue(const std::string& gid, TimePoint now);
  Status DoClaim(const ClaimRequest& req, std::vector<GlobalTrans>* out);
  PurgeResult DoPurge(const PurgeRequest& req);
  Status ApplyUpdates(TransWithBranches& t,
                      const std::vector<BranchUpdate>& updates);
  TimePoint Now() const;

  friend class Handle;
  SimLoop& loop_;
  SimRandom& random_;
  const Clock& clock_;
  std::shared_ptr<SimLoop::Process> disk_;
  JournalFaults faults_;
  bool shared_ = false;
  std::deque<Pending> pending_;
  bool commit_scheduled_ = false;
  std::map<std::string, TransWithBranches> rows_;
  std::map<std::string, std::vector<TransStatus>> history_;
  std::map<std::string, TimePoint> finished_at_;
  int64_t next_trans_id_ = 0;
  int64_t next_branch_id_ = 0;
  uint64_t next_handle_ = 0;
  int64_t unfinished_ = 0;
  int64_t commits_ = 0;
  int64_t writes_ = 0;
  int64_t injected_errors_ = 0;
  int64_t torn_writes_ = 0;
  int64_t dropped_writes_ = 0;
};

}  // namespace dtx::testing

#endif  // DTX_TESTING_SIM_JOURNAL_H_
