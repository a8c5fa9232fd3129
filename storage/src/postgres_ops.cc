// The PostgreSQL journal's writes. Each keeps to few round trips: a write
// whose outcome one statement decides is one statement (a data-modifying
// WITH that also reads the stored status, so that a miss is explained
// without a second query), and guards every compare-and-set on the row it
// updates, where PostgreSQL re-checks it after waiting for another
// coordinator's lock (READ COMMITTED).

#include "postgres_ops.h"

#include "dtx/clock.h"
#include "dtx/limits.h"

#include "journal_validate.h"
#include "postgres_schema.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace dtx::internal {
namespace {

constexpr const char* kUnfinished = "('prepared', 'submitted', 'aborting')";

std::optional<int64_t> OptMillis(const std::optional<TimePoint>& t) {
  if (!t) return std::nullopt;
  return ToUnixMillis(*t);
}

std::optional<TimePoint> OptTime(const PgResult& r, int row, int col) {
  if (r.IsNull(row, col)) return std::nullopt;
  return FromUnixMillis(r.Int(row, col));
}

Status StatusMiss(const std::string& gid, const std::string& stored,
                  const std::string& expected) {
  return FailedPreconditionError(GidPrefix(gid) + "status is '" + stored +
                                 "', expected " + expected);
}

std::string Quoted(TransStatus s) {
  return "'" + std::string(ToString(s)) + "'";
}

// Branch rows per INSERT: 8 parameters each, well under PostgreSQL's 65535.
constexpr std::size_t kBranchesPerInsert = 1000;
constexpr int kBranchParams = 8;

// "($a, ...), ($b, ...)": `rows` rows of `cols` parameters each, numbered
// from $first on; with `ord`, each row starts with its index (0, 1, ...).
std::string ValuesRows(std::size_t rows, int cols, int first, bool ord) {
  std::string sql;
  int p = first;
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r == 0 ? "(" : ", (";
    if (ord) sql += std::to_string(r);
    for (int c = 0; c < cols; ++c) {
      if (ord || c > 0) sql += ", ";
      sql += "$" + std::to_string(p++);
    }
    sql += ")";
  }
  return sql;
}

// "(VALUES ($a, ...), ...) AS v(ord, url, ...)" for `n` rows whose
// parameters start at $first, in the order PgAddBranchParams binds them.
std::string BranchValues(std::size_t n, int first) {
  return "(VALUES " + ValuesRows(n, kBranchParams, first, /*ord=*/true) +
         ") AS v(ord, url, bin_data, branch_id, op, status, finish_time, "
         "rollback_time, create_time)";
}

void AddBranchParams(PgParams& p, const Branch& b, int64_t now_ms) {
  p.Text(b.url)
      .Bytes(b.bin_data)
      .Text(b.branch_id)
      .Text(ToString(b.op))
      .Text(ToString(b.status))
      .OptInt(OptMillis(b.finish_time))
      .OptInt(OptMillis(b.rollback_time))
      .Int(b.create_time == TimePoint{} ? now_ms : ToUnixMillis(b.create_time));
}

// The INSERT of branches[first, first + n) for the transaction `gid` ($1,
// update_time $2). The row id is found by gid, so that the statement needs
// no earlier result (PgWriteOp::Statements).
PgStatement BranchChunk(const std::string& gid,
                        const std::vector<Branch>& branches, std::size_t first,
                        std::size_t n, int64_t now_ms, bool skip_conflicts) {
  PgStatement st;
  st.params.Text(gid).Int(now_ms);
  for (std::size_t i = first; i < first + n; ++i)
    AddBranchParams(st.params, branches[i], now_ms);
  st.sql =
      "INSERT INTO trans_branch_op (trans_id, gid, url, bin_data, branch_id, "
      "op, status, finish_time, rollback_time, create_time, update_time) "
      "SELECT (SELECT id FROM trans_global WHERE gid = $1), $1, v.url, "
      "v.bin_data, v.branch_id, v.op, v.status, v.finish_time, "
      "v.rollback_time, v.create_time, $2 FROM " +
      BranchValues(n, 3) + " ORDER BY v.ord";
  if (skip_conflicts)
    st.sql += " ON CONFLICT DO NOTHING RETURNING branch_id, op";
  st.context = "insert branches of " + gid;
  return st;
}

// A write with a plain completion callback.
class SimpleOp : public PgWriteOp {
 public:
  explicit SimpleOp(WriteDone done) : done_(std::move(done)) {}
  void Complete(Status status) override { std::move(done_)(std::move(status)); }

 private:
  WriteDone done_;
};

class SaveNewOp final : public SimpleOp {
 public:
  SaveNewOp(GlobalTrans trans, std::vector<Branch> branches, WriteDone done)
      : SimpleOp(std::move(done)),
        trans_(std::move(trans)),
        branches_(std::move(branches)) {}
  // Only a transaction with more branches than one INSERT takes runs more
  // statements after the one that decides.
  bool may_half_apply() const override {
    return branches_.size() > kBranchesPerInsert;
  }

  std::vector<PgStatement> Statements(int64_t now_ms) override {
    const GlobalTrans& t = trans_;
    std::vector<PgStatement> out(1);
    PgParams& p = out[0].params;
    p.Text(t.gid)
        .Text(ToString(t.trans_type))
        .Text(ToString(t.status))
        .Text(t.protocol)
        .Text(t.query_prepared)
        .Text(t.options)
        .Text(t.custom_data)
        .Text(t.ext_data)
        .Text(t.result)
        .Text(t.rollback_reason)
        .Int(t.create_time == TimePoint{} ? now_ms
                                          : ToUnixMillis(t.create_time))
        .Int(now_ms)
        .OptInt(OptMillis(t.finish_time))
        .OptInt(OptMillis(t.rollback_time))
        .Int(t.next_cron_interval.count())
        .Int(ToUnixMillis(t.next_cron_time))
        .Text(t.owner)
        .Int(t.retry_count)
        .Int(t.fence);
    // The transaction and its first branch rows in one statement: the
    // branch INSERT reads the new row's id, and inserts nothing when the gid
    // existed.
    const std::size_t first = std::min(branches_.size(), kBranchesPerInsert);
    std::string& sql = out[0].sql;
    sql = R"sql(
WITH g AS (
  INSERT INTO trans_global (gid, trans_type, status, protocol, query_prepared,
    options, custom_data, ext_data, result, rollback_reason, create_time,
    update_time, finish_time, rollback_time, next_cron_interval,
    next_cron_time, owner, retry_count, fence)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
    $16, $17, $18, $19)
  ON CONFLICT (gid) DO NOTHING
  RETURNING id))sql";
    if (first > 0) {
      for (std::size_t i = 0; i < first; ++i)
        AddBranchParams(p, branches_[i], now_ms);
      sql += R"sql(,
b AS (
  INSERT INTO trans_branch_op (trans_id, gid, url, bin_data, branch_id, op,
    status, finish_time, rollback_time, create_time, update_time)
  SELECT g.id, $1, v.url, v.bin_data, v.branch_id, v.op, v.status,
    v.finish_time, v.rollback_time, v.create_time, $12
  FROM g, )sql" +
             BranchValues(first, 20) + " ORDER BY v.ord)";
    }
    sql += "\nSELECT id FROM g";
    out[0].context = "insert " + t.gid;
    // Only after the first statement inserted the row (Check): the rest
    // finds it by gid.
    for (std::size_t from = first; from < branches_.size();
         from += kBranchesPerInsert) {
      const std::size_t n =
          std::min(kBranchesPerInsert, branches_.size() - from);
      out.push_back(BranchChunk(t.gid, branches_, from, n, now_ms, false));
    }
    return out;
  }

  Status Check(std::size_t k, const PgResult& r, PgConn*) override {
    if (k == 0 && r.rows() == 0)
      return AlreadyExistsError(GidPrefix(trans_.gid) + "already exists");
    return Status::Ok();
  }

  Status OnError(std::size_t, Status s) override {
    if (s.code() == StatusCode::kAlreadyExists) {
      // The request's rows are unique and the gid was new: a conflict
      // means branch rows without their global row.
      return DataLossError(GidPrefix(trans_.gid) +
                           "branch rows exist without their transaction (" +
                           s.message() + ")");
    }
    return s;
  }

 private:
  GlobalTrans trans_;
  std::vector<Branch> branches_;
};

// Reads `gid`'s row, locked with `lock` ("FOR SHARE", "FOR UPDATE") against
// status changes by other coordinators until the batch commits: id, status,
// owner, fence.
PgStatement LockRow(const std::string& gid, const char* lock) {
  PgStatement st;
  st.params.Text(gid);
  st.sql = std::string(
               "SELECT id, status, owner, fence FROM trans_global WHERE gid = "
               "$1 ") +
           lock;
  st.context = "read status of " + gid;
  return st;
}

// Checks a LockRow result: kNotFound; kAborted when `fence` is set and
// stale; kFailedPrecondition when `expected` is set and differs.
Status CheckLocked(const PgResult& r, const std::string& gid,
                   std::optional<TransStatus> expected,
                   const std::optional<Fence>& fence) {
  if (r.rows() == 0) return NotFoundError(GidPrefix(gid) + "not found");
  if (fence && fence->token != r.Int(0, 3))
    return StaleFenceError(gid, *fence, r.Text(0, 2), r.Int(0, 3));
  const std::string stored = r.Text(0, 1);
  if (expected && stored != ToString(*expected))
    return StatusMiss(gid, stored, Quoted(*expected));
  return Status::Ok();
}

// The owner and fence columns of a fenced write's UPDATE of trans_global
// `g`: $<owner> is the fence's owner (NULL for an unfenced write). Both
// read the row's old values, as SET does.
// With `release` > 0, $<release> = 1 makes the owner "" instead
// (CronUpdate::release).
std::string FenceSet(int owner, int release = 0) {
  const std::string o = "$" + std::to_string(owner);
  std::string owner_value = "COALESCE(" + o + ", g.owner)";
  if (release > 0) {
    owner_value = "CASE WHEN $" + std::to_string(release) +
                  "::bigint = 1 THEN '' ELSE " + owner_value + " END";
  }
  return ",\n  fence = CASE WHEN " + o + "::text IS NOT NULL AND g.owner <> " +
         o + " THEN g.fence + 1 ELSE g.fence END,\n  owner = " + owner_value;
}

// The WHERE condition of a fenced write: $<token> is the fence's token
// (NULL for an unfenced write).
std::string FenceWhere(int token) {
  const std::string t = "$" + std::to_string(token);
  return " AND (" + t + "::bigint IS NULL OR g.fence = " + t + ")";
}

PgParams& FenceParams(PgParams& p, const std::optional<Fence>& fence) {
  if (fence) return p.Text(fence->owner).Int(fence->token);
  return p.NullText().NullInt();
}

// Explains a guarded UPDATE of `gid` that changed nothing. The row is read
// again by a statement of its own: the UPDATE may have waited for another
// coordinator's lock and then seen that coordinator's committed row, which
// a read in the UPDATE's own statement (its snapshot is older) would not
// show, and a stale fence would pass for a wrong status.
Status ExplainMiss(PgConn& conn, const std::string& gid,
                   const std::optional<Fence>& fence,
                   const std::string& expected) {
  PgParams p;
  p.Text(gid);
  DTX_ASSIGN_OR_RETURN(
      PgResult r,
      conn.Exec("SELECT status, owner, fence FROM trans_global WHERE gid = $1",
                p, "read status of " + gid));
  if (r.rows() == 0) return NotFoundError(GidPrefix(gid) + "not found");
  if (fence && fence->token != r.Int(0, 2))
    return StaleFenceError(gid, *fence, r.Text(0, 1), r.Int(0, 2));
  return StatusMiss(gid, r.Text(0, 0), expected);
}

// A miss found in a pipeline: the writer runs the batch again one statement
// at a time, where ExplainMiss says what it was.
Status PipelinedMiss(const std::string& gid) {
  return FailedPreconditionError(GidPrefix(gid) + "the write does not apply");
}

class AppendBranchesOp final : public SimpleOp {
 public:
  AppendBranchesOp(std::string gid, TransStatus expected,
                   std::vector<Branch> branches, WriteDone done)
      : SimpleOp(std::move(done)),
        gid_(std::move(gid)),
        expected_(expected),
        branches_(std::move(branches)) {}
  bool may_half_apply() const override { return true; }

  std::vector<PgStatement> Statements(int64_t now_ms) override {
    std::vector<PgStatement> out;
    out.push_back(LockRow(gid_, "FOR SHARE"));
    for (std::size_t from = 0; from < branches_.size();
         from += kBranchesPerInsert) {
      const std::size_t n =
          std::min(kBranchesPerInsert, branches_.size() - from);
      out.push_back(BranchChunk(gid_, branches_, from, n, now_ms, true));
    }
    return out;
  }

  Status Check(std::size_t k, const PgResult& r, PgConn*) override {
    if (k == 0) return CheckLocked(r, gid_, expected_, std::nullopt);
    const std::size_t from = (k - 1) * kBranchesPerInsert;
    const std::size_t n = std::min(kBranchesPerInsert, branches_.size() - from);
    if (static_cast<std::size_t>(r.rows()) == n) return Status::Ok();
    // A row was skipped as a conflict: name the first one (the request
    // itself repeats none, MakePgAppendBranches checked).
    std::set<std::pair<std::string, std::string>> inserted;
    for (int i = 0; i < r.rows(); ++i)
      inserted.emplace(r.Text(i, 0), r.Text(i, 1));
    for (std::size_t i = from; i < from + n; ++i) {
      const Branch& b = branches_[i];
      if (inserted.count({b.branch_id, std::string(ToString(b.op))}) == 0) {
        return AlreadyExistsError(GidPrefix(gid_) + "branch " + b.branch_id +
                                  "/" + std::string(ToString(b.op)) +
                                  " already exists");
      }
    }
    return AlreadyExistsError(GidPrefix(gid_) + "a branch already exists");
  }

 private:
  std::string gid_;
  TransStatus expected_;
  std::vector<Branch> branches_;
};

// Branch results, merged per row. A row named more than once in one write
// ends as SQLite's one UPDATE per result leaves it: the last status, the
// attempts added up, the last attempt's time and error, and a finish time
// once any of the results left 'prepared'.
struct MergedUpdate {
  std::string branch_id;
  BranchOp op = BranchOp::kAction;
  BranchStatus status = BranchStatus::kPrepared;
  bool finishes = false;
  int64_t attempts = 0;
  int64_t try_ms = 0;
  std::string error;
};
using UpdateChunk = std::vector<MergedUpdate>;

// Rows per UPDATE: kUpdateParams parameters each, well under PostgreSQL's
// 65535.
constexpr std::size_t kUpdatesPerStatement = 1000;
constexpr int kUpdateParams = 7;

std::vector<UpdateChunk> MergeUpdates(
    const std::vector<BranchUpdate>& updates) {
  std::vector<MergedUpdate> merged;
  // A transaction may have thousands of rows: found by index, not by scan.
  std::map<std::pair<std::string_view, BranchOp>, std::size_t> index;
  for (const BranchUpdate& u : updates) {
    auto [slot, added] = index.try_emplace({u.branch_id, u.op}, merged.size());
    if (added) {
      MergedUpdate& m = merged.emplace_back();
      m.branch_id = u.branch_id;
      m.op = u.op;
    }
    MergedUpdate& m = merged[slot->second];
    m.status = u.status;
    m.finishes = m.finishes || u.status != BranchStatus::kPrepared;
    if (u.attempt) {
      ++m.attempts;
      m.try_ms = ToUnixMillis(u.attempt->time);
      m.error = u.attempt->error;
    }
  }
  std::vector<UpdateChunk> chunks;
  for (std::size_t i = 0; i < merged.size(); i += kUpdatesPerStatement) {
    const std::size_t n = std::min(kUpdatesPerStatement, merged.size() - i);
    chunks.emplace_back(std::make_move_iterator(merged.begin() + i),
                        std::make_move_iterator(merged.begin() + i + n));
  }
  return chunks;
}

// Records results on the rows of transaction `gid`: one UPDATE per chunk of
// MergeUpdates (most writes: one statement, whatever their rows), appended
// to `out`. Each returns the rows it updated, for CheckBranchUpdates.
void AddBranchUpdates(std::vector<PgStatement>& out, const std::string& gid,
                      const std::vector<UpdateChunk>& chunks, int64_t now_ms) {
  for (const UpdateChunk& chunk : chunks) {
    PgStatement& st = out.emplace_back();
    st.params.Text(gid).Int(now_ms);
    for (const MergedUpdate& m : chunk) {
      st.params.Text(m.branch_id)
          .Text(ToString(m.op))
          .Text(ToString(m.status))
          .Int(m.finishes ? 1 : 0)
          .Int(m.attempts)
          .Int(m.try_ms)
          .Text(m.error);
    }
    const std::string values =
        ValuesRows(chunk.size(), kUpdateParams, 3, /*ord=*/false);
    st.sql = R"sql(
UPDATE trans_branch_op t SET
  status = v.status,
  update_time = $2,
  finish_time = CASE WHEN v.finishes = 0 THEN t.finish_time ELSE $2 END,
  attempts = t.attempts + v.attempts,
  last_try_time = CASE WHEN v.attempts = 0 THEN t.last_try_time
                       ELSE v.try_time END,
  last_error = CASE WHEN v.attempts = 0 THEN t.last_error ELSE v.error END
FROM (VALUES )sql" +
             values +
             R"sql() AS v(branch_id, op, status, finishes, attempts, try_time,
                 error)
WHERE t.trans_id = (SELECT id FROM trans_global WHERE gid = $1)
  AND t.branch_id = v.branch_id AND t.op = v.op
RETURNING t.branch_id, t.op)sql";
    st.context = "update branches of " + gid;
  }
}

// The check of the AddBranchUpdates statement for `chunk`: every row it
// names was there.
Status CheckBranchUpdates(const PgResult& r, const std::string& gid,
                          const UpdateChunk& chunk) {
  if (static_cast<std::size_t>(r.rows()) == chunk.size()) return Status::Ok();
  std::set<std::pair<std::string, std::string>> found;
  for (int i = 0; i < r.rows(); ++i) found.emplace(r.Text(i, 0), r.Text(i, 1));
  for (const MergedUpdate& m : chunk) {
    if (found.count({m.branch_id, std::string(ToString(m.op))}) == 0) {
      return NotFoundError(GidPrefix(gid) + "branch " + m.branch_id + "/" +
                           std::string(ToString(m.op)) + " not found");
    }
  }
  return InternalError(GidPrefix(gid) + "branch update matched " +
                       std::to_string(r.rows()) + " rows, expected " +
                       std::to_string(chunk.size()));
}

constexpr const char* kChangeSet = R"sql(
  status = $1,
  update_time = $2,
  finish_time = CASE WHEN $1 = 'succeed' THEN $2 ELSE g.finish_time END,
  rollback_time = CASE WHEN $1 = 'failed' THEN $2 ELSE g.rollback_time END,
  rollback_reason = COALESCE($3, g.rollback_reason),
  result = COALESCE($4, g.result),
  next_cron_interval = COALESCE($5, g.next_cron_interval),
  next_cron_time = COALESCE($6, g.next_cron_time))sql";

class ChangeStatusOp final : public SimpleOp {
 public:
  ChangeStatusOp(StatusChange change, WriteDone done)
      : SimpleOp(std::move(done)), c_(std::move(change)) {}
  bool lazy() const override { return c_.lazy; }
  bool may_half_apply() const override { return !c_.branch_updates.empty(); }

  // Without expected_branch_rows: one guarded UPDATE, then the branch rows.
  // With it: the row locked and checked, the branch rows counted (a
  // statement of its own, so that it sees every branch row committed before
  // the lock was granted), the UPDATE, then the branch rows.
  std::vector<PgStatement> Statements(int64_t now_ms) override {
    std::vector<PgStatement> out;
    if (c_.expected_branch_rows) {
      out.push_back(LockRow(c_.gid, "FOR UPDATE"));
      PgStatement& count = out.emplace_back();
      count.params.Text(c_.gid);
      count.sql =
          "SELECT count(*) FROM trans_branch_op WHERE trans_id = (SELECT id "
          "FROM trans_global WHERE gid = $1)";
      count.context = "count branches of " + c_.gid;
    }
    PgStatement& st = out.emplace_back();
    PgParams& p = st.params;
    p.Text(ToString(c_.to))
        .Int(now_ms)
        .OptText(c_.rollback_reason)
        .OptText(c_.result)
        .OptInt(c_.next_cron_interval
                    ? std::optional<int64_t>(c_.next_cron_interval->count())
                    : std::nullopt)
        .OptInt(OptMillis(c_.next_cron_time));
    st.context = "change status of " + c_.gid;
    if (c_.expected_branch_rows) {
      // The fence was checked under the lock; the owner may change here.
      p.Text(c_.gid);
      if (c_.fence) {
        p.Text(c_.fence->owner);  // borrowed: c_ outlives the statement
      } else {
        p.NullText();
      }
      st.sql = std::string("UPDATE trans_global g SET") + kChangeSet +
               FenceSet(8) + " WHERE g.gid = $7";
    } else {
      p.Text(c_.gid).Text(ToString(c_.from));
      FenceParams(p, c_.fence);
      st.sql = std::string("UPDATE trans_global g SET") + kChangeSet +
               FenceSet(9) + " WHERE g.gid = $7 AND g.status = $8" +
               FenceWhere(10) + " RETURNING g.id";
    }
    first_update_ = out.size();
    chunks_ = MergeUpdates(c_.branch_updates);
    AddBranchUpdates(out, c_.gid, chunks_, now_ms);
    return out;
  }

  Status Check(std::size_t k, const PgResult& r, PgConn* conn) override {
    if (k >= first_update_)
      return CheckBranchUpdates(r, c_.gid, chunks_[k - first_update_]);
    if (c_.expected_branch_rows) {
      if (k == 0) return CheckLocked(r, c_.gid, c_.from, c_.fence);
      if (k == 1 && r.Int(0, 0) != *c_.expected_branch_rows) {
        return FailedPreconditionError(
            GidPrefix(c_.gid) + "branch rows changed (expected " +
            std::to_string(*c_.expected_branch_rows) + ", found " +
            std::to_string(r.Int(0, 0)) + ")");
      }
      return Status::Ok();
    }
    if (r.rows() > 0) return Status::Ok();
    if (conn == nullptr) return PipelinedMiss(c_.gid);
    return ExplainMiss(*conn, c_.gid, c_.fence, Quoted(c_.from));
  }

 private:
  StatusChange c_;
  std::size_t first_update_ = 0;
  std::vector<UpdateChunk> chunks_;
};

class UpdateBranchesOp final : public SimpleOp {
 public:
  UpdateBranchesOp(BranchResults results, WriteDone done)
      : SimpleOp(std::move(done)), r_(std::move(results)) {}
  bool lazy() const override { return r_.lazy; }
  bool may_half_apply() const override {
    return r_.updates.size() > 1 || r_.fence.has_value();
  }

  // The row locked and checked; with a fence of another owner, taken over
  // (journal.h, Fence); then the branch rows. A fenced write may take the
  // row over: locked for update from the start rather than upgraded from a
  // share lock (which two writers could deadlock on).
  std::vector<PgStatement> Statements(int64_t now_ms) override {
    std::vector<PgStatement> out;
    out.push_back(LockRow(r_.gid, r_.fence ? "FOR UPDATE" : "FOR SHARE"));
    if (r_.fence) {
      PgStatement& st = out.emplace_back();
      st.params.Text(r_.fence->owner).Text(r_.gid);
      st.sql =
          "UPDATE trans_global SET owner = $1, fence = fence + 1 WHERE gid = "
          "$2 AND owner <> $1";
      st.context = "take over " + r_.gid;
    }
    first_update_ = out.size();
    chunks_ = MergeUpdates(r_.updates);
    AddBranchUpdates(out, r_.gid, chunks_, now_ms);
    return out;
  }

  Status Check(std::size_t k, const PgResult& r, PgConn*) override {
    if (k == 0) return CheckLocked(r, r_.gid, r_.expected, r_.fence);
    if (k < first_update_) return Status::Ok();
    return CheckBranchUpdates(r, r_.gid, chunks_[k - first_update_]);
  }

 private:
  BranchResults r_;
  std::size_t first_update_ = 0;
  std::vector<UpdateChunk> chunks_;
};

// The outcome of a one-row guarded UPDATE made as "WITH u AS (... RETURNING
// 1) SELECT (SELECT count(*) FROM u), (SELECT status ... gid)": the stored
// status comes from before the UPDATE, to explain a miss.
Status GuardedOutcome(const PgResult& r, const std::string& gid,
                      const std::string& expected) {
  if (r.Int(0, 0) > 0) return Status::Ok();
  if (r.IsNull(0, 1)) return NotFoundError(GidPrefix(gid) + "not found");
  return StatusMiss(gid, r.Text(0, 1), expected);
}

class TouchCronOp final : public SimpleOp {
 public:
  TouchCronOp(CronUpdate update, WriteDone done)
      : SimpleOp(std::move(done)), u_(std::move(update)) {}

  std::vector<PgStatement> Statements(int64_t now_ms) override {
    std::vector<PgStatement> out(1);
    PgParams& p = out[0].params;
    p.Int(u_.next_cron_interval.count())
        .Int(ToUnixMillis(u_.next_cron_time))
        .Int(now_ms)
        .OptInt(u_.retry_count)
        .Text(u_.gid)
        .Text(ToString(u_.expected));
    FenceParams(p, u_.fence);
    p.Int(u_.release ? 1 : 0);
    out[0].sql = std::string(R"sql(
UPDATE trans_global g SET
  next_cron_interval = $1,
  next_cron_time = $2,
  update_time = $3,
  retry_count = COALESCE($4, g.retry_count))sql") +
                 FenceSet(7, 9) + "\nWHERE g.gid = $5 AND g.status = $6" +
                 FenceWhere(8);
    out[0].context = "touch cron of " + u_.gid;
    return out;
  }

  Status Check(std::size_t, const PgResult& r, PgConn* conn) override {
    if (r.affected() > 0) return Status::Ok();
    if (conn == nullptr) return PipelinedMiss(u_.gid);
    return ExplainMiss(*conn, u_.gid, u_.fence, Quoted(u_.expected));
  }

 private:
  CronUpdate u_;
};

class MakeDueOp final : public SimpleOp {
 public:
  MakeDueOp(std::string gid, TimePoint now, WriteDone done)
      : SimpleOp(std::move(done)), gid_(std::move(gid)), now_(now) {}

  std::vector<PgStatement> Statements(int64_t now_ms) override {
    std::vector<PgStatement> out(1);
    out[0].params.Int(ToUnixMillis(now_)).Int(now_ms).Text(gid_);
    // A transaction a coordinator is working on (it owns it) keeps that
    // coordinator's lease: made due, another would claim it meanwhile.
    out[0].sql = std::string(
                     "WITH u AS (UPDATE trans_global SET "
                     "next_cron_time = $1, update_time = $2 WHERE "
                     "gid = $3 AND owner = '' AND status IN ") +
                 kUnfinished +
                 " RETURNING 1), o AS (SELECT status, owner, "
                 "next_cron_time FROM trans_global WHERE gid = $3) "
                 "SELECT (SELECT count(*) FROM u), (SELECT status FROM "
                 "o), (SELECT owner FROM o), (SELECT next_cron_time "
                 "FROM o)";
    out[0].context = "make due " + gid_;
    now_ms_ = now_ms;
    return out;
  }

  Status Check(std::size_t, const PgResult& r, PgConn*) override {
    if (r.Int(0, 0) == 0 && !r.IsNull(0, 1) && !r.Text(0, 2).empty() &&
        !IsFinished(
            ParseTransStatus(r.Text(0, 1)).value_or(TransStatus::kSucceed))) {
      return FailedPreconditionError(
          GidPrefix(gid_) + "is being worked on by coordinator '" +
          r.Text(0, 2) + "', whose lease runs out in " +
          std::to_string(std::max<int64_t>(0, r.Int(0, 3) - now_ms_) / 1000) +
          " s; it is retried then if still unfinished");
    }
    return GuardedOutcome(r, gid_, "an unfinished status");
  }

 private:
  std::string gid_;
  TimePoint now_;
  int64_t now_ms_ = 0;
};

const std::string& ClaimSql() {
  static const std::string* const sql =
      new std::string(std::string(R"sql(
WITH due AS (
  SELECT id, next_cron_time AS due FROM trans_global
  WHERE status IN ('prepared', 'submitted', 'aborting')
    AND next_cron_time <= $4
  ORDER BY next_cron_time, id
  LIMIT $5
  FOR UPDATE SKIP LOCKED),
c AS (
  UPDATE trans_global g SET owner = $1, next_cron_time = $2, update_time = $3,
    fence = CASE WHEN g.owner <> $1 THEN g.fence + 1 ELSE g.fence END
  FROM due
  WHERE g.id = due.id
  RETURNING due.due AS claimed_due, )sql") +
                      PgGlobalColumns("g.") + ")\nSELECT " + kPgGlobalColumns +
                      " FROM c ORDER BY claimed_due, id");
  return *sql;
}

class ClaimOp final : public PgWriteOp {
 public:
  ClaimOp(ClaimRequest request, ClaimDone done)
      : request_(std::move(request)), done_(std::move(done)) {}

  Status Apply(PgConn& conn, int64_t now_ms) override {
    claimed_.clear();
    PgParams p;
    p.Text(request_.owner)
        .Int(ToUnixMillis(request_.lease_until))
        .Int(now_ms)
        .Int(ToUnixMillis(request_.now))
        .Int(static_cast<int64_t>(request_.limit));
    DTX_ASSIGN_OR_RETURN(PgResult r, conn.Exec(ClaimSql(), p, "claim"));
    for (int i = 0; i < r.rows(); ++i) {
      DTX_ASSIGN_OR_RETURN(GlobalTrans t,
                           PgReadGlobalRow(r, i, 0, conn.target()));
      claimed_.push_back(std::move(t));
    }
    return Status::Ok();
  }

  void Complete(Status status) override {
    if (status.ok()) {
      std::move(done_)(std::move(claimed_));
    } else {
      std::move(done_)(std::move(status));
    }
  }

 private:
  ClaimRequest request_;
  ClaimDone done_;
  std::vector<GlobalTrans> claimed_;
};

// One step of retention in one statement: the scan of up to scan_limit rows
// by id, the removal of the finished ones old enough and of their branch
// rows, and what the scan saw.
class PurgeOp final : public PgWriteOp {
 public:
  PurgeOp(PurgeRequest request, PurgeDone done)
      : request_(request), done_(std::move(done)) {}

  std::vector<PgStatement> Statements(int64_t) override {
    result_ = PurgeResult{};
    result_.next_after_id = request_.after_id;
    const int64_t finished_before = ToUnixMillis(request_.finished_before);
    const int64_t created_before = ToUnixMillis(request_.created_before);
    std::vector<PgStatement> out(1);
    out[0]
        .params.Int(request_.after_id)
        .Int(static_cast<int64_t>(request_.scan_limit))
        .Int(finished_before)
        .Int(created_before)
        .Int(std::max(finished_before, created_before));
    out[0].sql = R"sql(
WITH s AS (
  SELECT id, status, create_time, update_time FROM trans_global
  WHERE id > $1 ORDER BY id LIMIT $2),
g AS (
  DELETE FROM trans_global t USING s
  WHERE t.id = s.id AND s.status IN ('succeed', 'failed')
    AND (s.update_time < $3 OR s.create_time < $4)
  RETURNING t.id),
b AS (DELETE FROM trans_branch_op WHERE trans_id IN (SELECT id FROM g))
SELECT (SELECT count(*) FROM s), (SELECT COALESCE(max(id), $1) FROM s),
  (SELECT count(*) FROM g), (SELECT count(*) FROM s WHERE create_time >= $5))sql";
    out[0].context = "retention";
    return out;
  }

  Status Check(std::size_t, const PgResult& r, PgConn*) override {
    result_.scanned = static_cast<std::size_t>(r.Int(0, 0));
    result_.next_after_id = r.Int(0, 1);
    result_.removed = static_cast<std::size_t>(r.Int(0, 2));
    result_.more = r.Int(0, 3) == 0 && result_.scanned == request_.scan_limit;
    return Status::Ok();
  }

  void Complete(Status status) override {
    if (status.ok()) {
      std::move(done_)(result_);
    } else {
      std::move(done_)(std::move(status));
    }
  }

 private:
  PurgeRequest request_;
  PurgeDone done_;
  PurgeResult result_;
};

class NoStoreOp final : public SimpleOp {
 public:
  NoStoreOp(Status status, WriteDone done)
      : SimpleOp(std::move(done)), status_(std::move(status)) {}
  Status Apply(PgConn&, int64_t) override { return status_; }
  bool touches_db() const override { return false; }
  Status Outcome() const override { return status_; }

 private:
  Status status_;
};

}  // namespace

std::unique_ptr<PgWriteOp> MakePgPurge(PurgeRequest request, PurgeDone done) {
  if (request.scan_limit == 0) request.scan_limit = 1;
  return std::make_unique<PurgeOp>(request, std::move(done));
}

Status PgWriteOp::Apply(PgConn& conn, int64_t now_ms) {
  std::vector<PgStatement> statements = Statements(now_ms);
  for (std::size_t k = 0; k < statements.size(); ++k) {
    const PgStatement& st = statements[k];
    auto r = conn.Exec(st.sql, st.params, st.context);
    if (!r.ok()) return OnError(k, r.status());
    DTX_RETURN_IF_ERROR(Check(k, *r, &conn));
  }
  return Status::Ok();
}

std::unique_ptr<PgWriteOp> MakePgSaveNew(GlobalTrans trans,
                                         std::vector<Branch> branches,
                                         WriteDone done) {
  Status s = ValidateTransFields(trans);
  if (s.ok()) s = ValidateBranchFields(trans.gid, branches);
  if (s.ok()) s = CheckNoRepeatedBranch(trans.gid, branches);
  if (!s.ok()) return MakePgRejected(std::move(s), std::move(done));
  return std::make_unique<SaveNewOp>(std::move(trans), std::move(branches),
                                     std::move(done));
}

std::unique_ptr<PgWriteOp> MakePgAppendBranches(std::string gid,
                                                TransStatus expected,
                                                std::vector<Branch> branches,
                                                WriteDone done) {
  Status s = ValidateGid(gid).WithPrefix("journal");
  if (s.ok()) s = ValidateBranchFields(gid, branches);
  if (s.ok()) s = CheckNoRepeatedBranch(gid, branches);
  if (!s.ok()) return MakePgRejected(std::move(s), std::move(done));
  return std::make_unique<AppendBranchesOp>(
      std::move(gid), expected, std::move(branches), std::move(done));
}

std::unique_ptr<PgWriteOp> MakePgChangeStatus(StatusChange change,
                                              WriteDone done) {
  Status s = ValidateGid(change.gid).WithPrefix("journal");
  if (s.ok() && change.rollback_reason) {
    s = ValidateText("rollback_reason", *change.rollback_reason)
            .WithPrefix("journal");
  }
  if (s.ok() && change.result)
    s = ValidateText("result", *change.result).WithPrefix("journal");
  if (!s.ok()) return MakePgRejected(std::move(s), std::move(done));
  return std::make_unique<ChangeStatusOp>(std::move(change), std::move(done));
}

std::unique_ptr<PgWriteOp> MakePgUpdateBranches(BranchResults results,
                                                WriteDone done) {
  Status s = ValidateGid(results.gid).WithPrefix("journal");
  if (!s.ok()) return MakePgRejected(std::move(s), std::move(done));
  return std::make_unique<UpdateBranchesOp>(std::move(results),
                                            std::move(done));
}

std::unique_ptr<PgWriteOp> MakePgTouchCron(CronUpdate update, WriteDone done) {
  Status s = ValidateGid(update.gid).WithPrefix("journal");
  if (!s.ok()) return MakePgRejected(std::move(s), std::move(done));
  return std::make_unique<TouchCronOp>(std::move(update), std::move(done));
}

std::unique_ptr<PgWriteOp> MakePgMakeDue(std::string gid, TimePoint now,
                                         WriteDone done) {
  Status s = ValidateGid(gid).WithPrefix("journal");
  if (!s.ok()) return MakePgRejected(std::move(s), std::move(done));
  return std::make_unique<MakeDueOp>(std::move(gid), now, std::move(done));
}

std::unique_ptr<PgWriteOp> MakePgClaim(ClaimRequest request, ClaimDone done) {
  if (request.limit == 0) request.limit = 1;
  return std::make_unique<ClaimOp>(std::move(request), std::move(done));
}

std::unique_ptr<PgWriteOp> MakePgFlush(WriteDone done) {
  return std::make_unique<NoStoreOp>(Status::Ok(), std::move(done));
}

std::unique_ptr<PgWriteOp> MakePgRejected(Status status, WriteDone done) {
  return std::make_unique<NoStoreOp>(std::move(status), std::move(done));
}

Result<GlobalTrans> PgReadGlobalRow(const PgResult& r, int row, int c,
                                    const std::string& target) {
  GlobalTrans t;
  t.id = r.Int(row, c + 0);
  t.gid = r.Text(row, c + 1);
  auto bad = [&](const Status& st) {
    return DataLossError("journal: postgres " + target + ": gid " + t.gid +
                         ": " + st.message());
  };
  auto type = ParseTransType(r.Text(row, c + 2));
  if (!type.ok()) return bad(type.status());
  t.trans_type = *type;
  auto status = ParseTransStatus(r.Text(row, c + 3));
  if (!status.ok()) return bad(status.status());
  t.status = *status;
  t.protocol = r.Text(row, c + 4);
  t.query_prepared = r.Text(row, c + 5);
  t.options = r.Text(row, c + 6);
  t.custom_data = r.Text(row, c + 7);
  t.ext_data = r.Text(row, c + 8);
  t.result = r.Text(row, c + 9);
  t.rollback_reason = r.Text(row, c + 10);
  t.create_time = FromUnixMillis(r.Int(row, c + 11));
  t.update_time = FromUnixMillis(r.Int(row, c + 12));
  t.finish_time = OptTime(r, row, c + 13);
  t.rollback_time = OptTime(r, row, c + 14);
  t.next_cron_interval = std::chrono::seconds(r.Int(row, c + 15));
  t.next_cron_time = FromUnixMillis(r.Int(row, c + 16));
  t.owner = r.Text(row, c + 17);
  t.retry_count = r.Int(row, c + 18);
  t.fence = r.Int(row, c + 19);
  return t;
}

Result<Branch> PgReadBranchRow(const PgResult& r, int row, int c,
                               const std::string& target) {
  Branch b;
  b.id = r.Int(row, c + 0);
  b.gid = r.Text(row, c + 1);
  b.url = r.Text(row, c + 2);
  b.bin_data = r.Text(row, c + 3);
  b.branch_id = r.Text(row, c + 4);
  auto bad = [&](const Status& st) {
    return DataLossError("journal: postgres " + target + ": gid " + b.gid +
                         " branch " + b.branch_id + ": " + st.message());
  };
  auto op = ParseBranchOp(r.Text(row, c + 5));
  if (!op.ok()) return bad(op.status());
  b.op = *op;
  auto status = ParseBranchStatus(r.Text(row, c + 6));
  if (!status.ok()) return bad(status.status());
  b.status = *status;
  b.create_time = FromUnixMillis(r.Int(row, c + 7));
  b.update_time = FromUnixMillis(r.Int(row, c + 8));
  b.finish_time = OptTime(r, row, c + 9);
  b.rollback_time = OptTime(r, row, c + 10);
  b.attempts = r.Int(row, c + 11);
  b.last_try_time = OptTime(r, row, c + 12);
  b.last_error = r.Text(row, c + 13);
  return b;
}

}  // namespace dtx::internal
