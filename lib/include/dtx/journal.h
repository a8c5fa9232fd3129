// Journal: the durable record of global transactions and their branches. The
// coordinator calls it; storage/ implements it (SqliteJournal), and every
// implementation passes the same contract tests (tests/storage/
// journal_contract_test.h).
//
// Writes are asynchronous: each is queued and its completion (`done`, a
// Completion below) runs once the write is durable (or has failed, in which
// case nothing of it was written). An implementation may commit many queued
// writes together (group commit); each write still succeeds or fails on its
// own. The completions of one transaction's writes (one gid) are handed off
// in the order the writes were made; a journal with one writer
// (SqliteJournal) keeps that order across transactions too, one with several
// (PostgresJournal) need not. Flush's completion comes after every earlier
// write's. A completion made with an Executor runs through that executor; one
// made from a callable alone runs on the journal's own thread, where it holds
// up every later write: it must then be trivial (fulfil a promise, post
// elsewhere) and must never block, in particular not on another journal
// write.
//
// Reads are synchronous and see every write whose completion has run.
//
// Status codes returned by writes:
//   kInvalidArgument     a field over its limit (dtx/limits.h) or malformed;
//   kResourceExhausted   a payload over kMaxPayloadBytes, or the disk is full;
//   kAlreadyExists       the gid (SaveNew) or a (branch_id, op) exists;
//   kNotFound            no transaction with that gid (or branch row);
//   kFailedPrecondition  the stored status is not the expected one, or the
//                        journal is closed;
//   kAborted             a fenced write whose fence is stale: another
//                        coordinator has claimed the transaction since
//                        (see Fence);
//   kUnavailable         the store is busy or locked by another process, or an
//                        i/o error: retrying may succeed;
//   kDataLoss            the store is corrupt.
//
// Thread safety: implementations are thread-safe.

#ifndef DTX_JOURNAL_H_
#define DTX_JOURNAL_H_

#include "dtx/core_export.h"
#include "dtx/executor.h"
#include "dtx/model.h"
#include "dtx/result.h"
#include "dtx/status.h"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace dtx {

namespace internal {
// Whether a Completion<T> can be made from an F.
template <typename Self, typename T, typename F>
inline constexpr bool kIsCompletionCallable =
    !std::is_same_v<std::decay_t<F>, Self> &&
    !std::is_same_v<std::decay_t<F>, std::nullptr_t> &&
    std::is_invocable_v<std::decay_t<F>&, T>;
}  // namespace internal

// The completion of one journal write: a callable run once with the write's
// outcome (a T), either on the journal's own thread or through an Executor
// that the caller names.
//
//   // Trivial work may run on the journal's thread:
//   journal->Flush([promise](Status s) { promise->set_value(s); });
//   // Anything else runs where the caller says:
//   journal->ChangeStatus(change, WriteDone(on_strand, [rt](Status s) {
//     rt->OnStatusWritten(s);  // on the transaction's strand
//   }));
//
// T must be copyable (an Executor takes a copyable closure).
//
// Thread safety: thread-compatible; the journal owns it once it is passed.
template <typename T>
class Completion {
 public:
  // Empty: the write's outcome is dropped.
  Completion() = default;
  Completion(std::nullptr_t) {}  // NOLINT(google-explicit-constructor)

  // From any callable taking a T: it runs on the journal's own thread and
  // must be trivial (see the top of this file). Implicit, so that a lambda
  // can be passed where a Completion is expected.
  template <typename F, typename = std::enable_if_t<
                            internal::kIsCompletionCallable<Completion, T, F>>>
  Completion(F&& fn)  // NOLINT(google-explicit-constructor)
      : fn_(std::forward<F>(fn)) {}

  // From a callable that the journal hands, with its value, to `executor`.
  // An empty executor is the same as none.
  template <typename F, typename = std::enable_if_t<
                            internal::kIsCompletionCallable<Completion, T, F>>>
  Completion(Executor executor, F&& fn)
      : executor_(std::move(executor)), fn_(std::forward<F>(fn)) {}

  // Runs the callable with `value`, through the executor when there is one,
  // and leaves *this empty. Does nothing when *this is empty.
  void operator()(T value) && {
    std::function<void(T)> fn = std::exchange(fn_, nullptr);
    Executor executor = std::exchange(executor_, nullptr);
    if (!fn) return;
    if (executor) {
      executor([fn = std::move(fn), value = std::move(value)]() mutable {
        fn(std::move(value));
      });
    } else {
      fn(std::move(value));
    }
  }
  // The same without consuming *this (it copies the callable when there is
  // an executor), for code that calls a completion it captured by value.
  void operator()(T value) const& {
    if (!fn_) return;
    if (executor_) {
      executor_([fn = fn_, value = std::move(value)]() mutable {
        fn(std::move(value));
      });
    } else {
      fn_(std::move(value));
    }
  }

  // False when empty (default-made, from nullptr or an empty callable, or
  // already run as an rvalue).
  explicit operator bool() const { return static_cast<bool>(fn_); }

 private:
  Executor executor_;
  std::function<void(T)> fn_;
};

using WriteDone = Completion<Status>;
using ClaimDone = Completion<Result<std::vector<GlobalTrans>>>;

// One call of a branch row, as the row's retry state records it.
struct BranchAttempt {
  TimePoint time{};
  std::string error;  // Branch::last_error: empty for a success
};

// The result of one branch call: the row's status and, when set, the
// attempt (attempts + 1, last_try_time and last_error written).
struct BranchUpdate {
  BranchUpdate() = default;
  // So that {branch_id, op, status} keeps working without an attempt.
  BranchUpdate(std::string id, BranchOp o, BranchStatus s,
               std::optional<BranchAttempt> a = std::nullopt)
      : branch_id(std::move(id)), op(o), status(s), attempt(std::move(a)) {}

  std::string branch_id;
  BranchOp op = BranchOp::kAction;
  BranchStatus status = BranchStatus::kSucceed;
  std::optional<BranchAttempt> attempt;
};

// The claim a write is made under (fencing; docs/journal.md, "Leases and
// fencing"). Every transaction row has an owner (the coordinator that last
// claimed it) and a fence, a counter that moves on whenever the owner
// changes. A fenced write applies only while the stored fence equals
// `token`; otherwise it writes nothing and fails with kAborted: another
// coordinator has claimed the transaction since, and the writer must drop
// it. A fenced write by a coordinator that is not the stored owner takes
// the transaction over, atomically with the write: the row's owner becomes
// `owner` and its fence token + 1, which the writer's later writes carry.
// Unfenced writes (no Fence) are not checked and change neither.
struct Fence {
  std::string owner;
  int64_t token = 0;
};

// A compare-and-set of a global status.
struct StatusChange {
  std::string gid;
  TransStatus from = TransStatus::kPrepared;
  TransStatus to = TransStatus::kSubmitted;
  // Written when set.
  std::optional<std::string> rollback_reason;
  std::optional<std::string> result;
  // Rescheduling written with the change, when set.
  std::optional<std::chrono::seconds> next_cron_interval;
  std::optional<TimePoint> next_cron_time;
  // Branch results written in the same atomic step, after the change
  // applied (the row must exist: kNotFound otherwise, and nothing is
  // written).
  std::vector<BranchUpdate> branch_updates;
  // When set, the change applies only if the transaction has exactly this
  // many branch rows (kFailedPrecondition otherwise): lets a TCC leave
  // `prepared` knowing that no branch was registered meanwhile.
  std::optional<int64_t> expected_branch_rows;
  // Checked first, when set (kAborted).
  std::optional<Fence> fence;
  // No one waits for this write to be durable (a final status or branch
  // results written lazily): the journal may hold it back for a moment
  // (kLazyWriteHold), until another write comes to share its commit. Its
  // completion still runs once it is durable.
  bool lazy = false;
};

// How long a journal holds back, by default, a lazy write (StatusChange::lazy,
// BranchResults::lazy) that is its only work, waiting for another write to
// commit with it. One transaction at a time, the answer to a caller comes
// before its final status is written, and the caller's next transaction
// soon after: held, the two share one commit (one fsync) instead of two.
inline constexpr std::chrono::microseconds kLazyWriteHold{1000};

// Branch results of one transaction (UpdateBranches).
struct BranchResults {
  BranchResults() = default;
  // So that {gid, expected, updates} works without a fence.
  BranchResults(std::string g, std::optional<TransStatus> e,
                std::vector<BranchUpdate> u,
                std::optional<Fence> f = std::nullopt)
      : gid(std::move(g)),
        expected(e),
        updates(std::move(u)),
        fence(std::move(f)) {}

  std::string gid;
  // When set, they are written only while the transaction has this status.
  std::optional<TransStatus> expected;
  std::vector<BranchUpdate> updates;
  // Checked first, when set (kAborted).
  std::optional<Fence> fence;
  // No one waits for this write to be durable (results written lazily): the
  // journal may hold it back for up to kLazyWriteHold, until another write
  // comes to share its commit. Its completion still runs once it is durable.
  bool lazy = false;
};

// Rescheduling of an unfinished transaction (dtm's TouchCronTime).
struct CronUpdate {
  std::string gid;
  TransStatus expected = TransStatus::kSubmitted;  // compare-and-set guard
  std::chrono::seconds next_cron_interval{0};
  TimePoint next_cron_time{};
  std::optional<int64_t> retry_count;  // written when set
  // Checked first, when set (kAborted).
  std::optional<Fence> fence;
  // The writer stops working on it until it is due: the owner becomes ""
  // (no coordinator holds it; the fence moves on when one claims it).
  bool release = false;
};

// A request to take due transactions for processing.
struct ClaimRequest {
  // Unfinished transactions with next_cron_time <= now are due.
  TimePoint now{};
  // Recorded in `owner` of each claimed transaction; the fence of one that
  // had another owner moves on by one (see Fence).
  std::string owner;
  // The claimed transactions' next_cron_time becomes this, so that no other
  // claimer takes them before the lease runs out.
  TimePoint lease_until{};
  std::size_t limit = 16;
};

// A step of retention (Journal::PurgeFinished): looks at up to scan_limit
// transactions in row-id order after `after_id` and removes, with their
// branch rows, those finished (succeed or failed) whose last change is
// before finished_before, or created before created_before. Unfinished
// transactions are never touched.
struct PurgeRequest {
  TimePoint finished_before{};
  // TimePoint{} (the epoch): no removal by creation time.
  TimePoint created_before{};
  int64_t after_id = 0;
  std::size_t scan_limit = 1000;
};

struct PurgeResult {
  std::size_t removed = 0;  // transactions removed
  std::size_t scanned = 0;  // transactions looked at
  // Where the next step starts (the last row id looked at), and whether one
  // is worth taking: false once the rows looked at reach those too new to
  // remove, or the end of the table.
  int64_t next_after_id = 0;
  bool more = false;
};

using PurgeDone = Completion<Result<PurgeResult>>;

// The page size of a List() with limit 0, and the largest page the
// coordinator and the admin APIs hand out (larger limits are clamped to it:
// a page is read into memory and sent as one message).
inline constexpr std::size_t kDefaultListLimit = 100;
inline constexpr std::size_t kMaxListLimit = 1000;

// Filters of List(); all optional, combined with AND.
struct ListQuery {
  std::optional<TransStatus> status;
  std::optional<TransType> trans_type;
  std::optional<TimePoint> created_from;  // inclusive
  std::optional<TimePoint> created_to;    // inclusive
  // Only gids that start with these bytes, compared exactly (no wildcard:
  // '%' and '_' are plain characters); empty: any gid.
  std::string gid_prefix;
  // Only unfinished transactions (prepared, submitted or aborting).
  bool unfinished_only = false;
  // 0 for the first page, then ListPage::next_cursor.
  int64_t cursor = 0;
  // 0: kDefaultListLimit. The journal takes any size; Coordinator::List
  // clamps it to kMaxListLimit.
  std::size_t limit = kDefaultListLimit;
};

struct ListPage {
  std::vector<GlobalTrans> transactions;  // newest first
  int64_t next_cursor = 0;                // 0 when there is no next page
};

// Position in the due order (next_cron_time, id); default = the beginning.
struct DueCursor {
  TimePoint next_cron_time{};
  int64_t id = 0;
};

// The unfinished part of a journal, for operators and metrics.
struct UnfinishedSummary {
  int64_t unfinished = 0;  // prepared, submitted or aborting
  int64_t due = 0;         // of those, next_cron_time <= now
  std::optional<TimePoint> oldest_create_time;  // unset when none
};

// How many transactions the journal holds in each status.
struct StatusCounts {
  // Indexed by TransStatus's numeric value.
  std::array<int64_t, 5> by_status{};
  static_assert(static_cast<int>(TransStatus::kFailed) == 4,
                "one count per TransStatus");

  int64_t& operator[](TransStatus s) {
    return by_status[static_cast<std::size_t>(s)];
  }
  int64_t operator[](TransStatus s) const {
    return by_status[static_cast<std::size_t>(s)];
  }
};

// What an operator's overview shows (Coordinator::Stats): transactions per
// status and the unfinished part of the journal.
struct TransStats {
  StatusCounts counts;
  UnfinishedSummary unfinished;
};

struct DuePage {
  std::vector<GlobalTrans> transactions;  // by next_cron_time, then id
  std::optional<DueCursor> next;          // unset when this was the last page
};

class DTX_CORE_EXPORT Journal {
 public:
  virtual ~Journal();

  // Writes.
  // Inserts `trans` and its `branches` (in order) if trans.gid is new; the gid
  // of each branch is taken from trans. kAlreadyExists, with nothing written,
  // when the gid exists. A zero create_time / update_time is set to now.
  // trans.owner and trans.fence are stored as given: the coordinator that
  // admits a transaction owns it from the start.
  virtual void SaveNew(GlobalTrans trans, std::vector<Branch> branches,
                       WriteDone done) = 0;

  // Appends `branches` to `gid` if its status is `expected` (checked atomically
  // with the insert). kNotFound, kFailedPrecondition (other status),
  // kAlreadyExists (a duplicate (branch_id, op)); all or nothing.
  virtual void AppendBranches(std::string gid, TransStatus expected,
                              std::vector<Branch> branches, WriteDone done) = 0;

  // Compare-and-set of the global status: applies `change` only if the stored
  // status is change.from. Sets finish_time (to succeed) or rollback_time (to
  // failed). kNotFound, kFailedPrecondition, kAborted (change.fence).
  virtual void ChangeStatus(StatusChange change, WriteDone done) = 0;

  // Records branch results of results.gid while its status is
  // results.expected (when set). kNotFound (gid or a row),
  // kFailedPrecondition, kAborted (results.fence); all or nothing.
  virtual void UpdateBranches(BranchResults results, WriteDone done) = 0;

  // Reschedules an unfinished transaction. kNotFound, kFailedPrecondition,
  // kAborted (update.fence).
  virtual void TouchCron(CronUpdate update, WriteDone done) = 0;

  // Makes an unfinished transaction due at `now` (dtm's resetNextCronTime).
  // kNotFound, kFailedPrecondition (finished). On a shared journal, only
  // one that no coordinator owns (owner "", see CronUpdate::release): one
  // being worked on is left to its owner's lease (kFailedPrecondition
  // naming the owner).
  virtual void MakeDue(std::string gid, TimePoint now, WriteDone done) = 0;

  // Atomically takes up to request.limit due unfinished transactions, the
  // earliest due first, setting their owner and moving their next_cron_time
  // to request.lease_until (and their fence, for those that had another
  // owner). Two claimers never receive the same transaction within one
  // lease. The transactions returned carry their new owner and fence.
  virtual void Claim(ClaimRequest request, ClaimDone done) = 0;

  // `done` runs once every write queued before this call is durable.
  virtual void Flush(WriteDone done) = 0;

  // One step of retention (PurgeRequest), a write like the others: queued,
  // durable when `done` runs. A journal that does not implement it answers
  // kUnimplemented.
  virtual void PurgeFinished(PurgeRequest request, PurgeDone done);

  // Reads.
  // The transaction and its branches in registration order. kNotFound.
  virtual Result<TransWithBranches> Find(const std::string& gid) = 0;

  // A page of transactions matching `query`, newest first.
  virtual Result<ListPage> List(const ListQuery& query) = 0;

  // A page of unfinished transactions due at `now` (next_cron_time <= now),
  // earliest first, starting after `after`. Costs O(limit), not O(all rows).
  virtual Result<DuePage> ListDue(TimePoint now, std::size_t limit,
                                  DueCursor after) = 0;

  // Counts unfinished transactions as of `now`. Costs O(unfinished), not
  // O(all rows).
  // The default answers kUnimplemented (callers treat the summary as
  // optional), so that journals written before it still compile.
  virtual Result<UnfinishedSummary> Summarize(TimePoint now);

  // Counts transactions per status, finished ones included. Costs O(1) in
  // SqliteJournal (the counts are kept as rows change), so that a console
  // may ask every second. The default answers kUnimplemented, as Summarize.
  virtual Result<StatusCounts> CountByStatus();

  // Whether coordinators in other processes may work on this journal's
  // transactions at the same time (a PostgreSQL journal). A coordinator on
  // a shared journal then calls a branch only while its lease on the
  // transaction (next_cron_time) covers the whole call, so that another
  // coordinator cannot claim it meanwhile. The default: false.
  virtual bool shared() const;

  // Life cycle.
  // Completes every queued write, then refuses new ones (kFailedPrecondition)
  // and releases the store. When it returns, every completion has run or has
  // been handed to its executor, and none runs on the journal's thread any
  // more. Idempotent; the destructor calls it. Never call it from a
  // completion that runs on the journal's thread.
  virtual void Close() = 0;
};

// Blocks until the asynchronous write started by `start` completes, and
// returns its status. For tools and tests; never call it from a completion.
//
//   Status s = WaitForWrite([&](WriteDone done) {
//     journal->SaveNew(trans, branches, std::move(done));
//   });
DTX_CORE_EXPORT Status
WaitForWrite(const std::function<void(WriteDone)>& start);

// The same for Claim.
DTX_CORE_EXPORT Result<std::vector<GlobalTrans>> WaitForClaim(
    Journal& journal, ClaimRequest request);

// The same for PurgeFinished.
DTX_CORE_EXPORT Result<PurgeResult> WaitForPurge(Journal& journal,
                                                 PurgeRequest request);

}  // namespace dtx

#endif  // DTX_JOURNAL_H_
