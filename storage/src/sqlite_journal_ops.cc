#include "sqlite_journal_ops.h"

#include "dtx/clock.h"
#include "dtx/limits.h"

#include "journal_validate.h"
#include "schema.h"

#include <string>
#include <utility>

namespace dtx::internal {

const std::string& ClaimSql() {
  static const std::string* const sql = new std::string(std::string(R"sql(
UPDATE trans_global SET owner = ?1, next_cron_time = ?2, update_time = ?3,
  fence = CASE WHEN owner <> ?1 THEN fence + 1 ELSE fence END
WHERE id IN (
  SELECT id FROM trans_global
  WHERE status IN ('prepared', 'submitted', 'aborting')
    AND next_cron_time <= ?4
  ORDER BY next_cron_time, id
  LIMIT ?5)
RETURNING )sql") + kGlobalColumns);
  return *sql;
}

const std::string& DueSelectSql() {
  static const std::string* const sql =
      new std::string("SELECT " + std::string(kGlobalColumns) + R"sql(
FROM trans_global
WHERE status IN ('prepared', 'submitted', 'aborting')
  AND next_cron_time <= ?1
  AND (next_cron_time, id) > (?2, ?3)
ORDER BY next_cron_time, id
LIMIT ?4)sql");
  return *sql;
}

namespace {

// A write with a plain completion callback.
class SimpleOp : public WriteOp {
 public:
  explicit SimpleOp(WriteDone done) : done_(std::move(done)) {}
  void Complete(Status status) override { std::move(done_)(std::move(status)); }

 private:
  WriteDone done_;
};

class SaveNewOp final : public SimpleOp {
 public:
  // The gid insert decides (AlreadyExists writes nothing) and the branch
  // rows are unique (checked by MakeSaveNew), so nothing can half-apply.
  bool needs_savepoint() const override { return false; }
  SaveNewOp(GlobalTrans trans, std::vector<Branch> branches, WriteDone done)
      : SimpleOp(std::move(done)),
        trans_(std::move(trans)),
        branches_(std::move(branches)) {}

  Status Apply(Db& db, int64_t now_ms) override {
    DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.PrepareStatic(R"sql(
INSERT INTO trans_global (gid, trans_type, status, protocol, query_prepared,
  options, custom_data, ext_data, result, rollback_reason, create_time,
  update_time, finish_time, rollback_time, next_cron_interval, next_cron_time,
  owner, retry_count, fence)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
  ?17, ?18, ?19)
ON CONFLICT (gid) DO NOTHING)sql"));
    const GlobalTrans& t = trans_;
    {
      StmtGuard guard(stmt);
      stmt->BindTextRef(1, t.gid);
      stmt->BindTextRef(2, ToString(t.trans_type));
      stmt->BindTextRef(3, ToString(t.status));
      stmt->BindTextRef(4, t.protocol);
      stmt->BindTextRef(5, t.query_prepared);
      stmt->BindTextRef(6, t.options);
      stmt->BindTextRef(7, t.custom_data);
      stmt->BindTextRef(8, t.ext_data);
      stmt->BindTextRef(9, t.result);
      stmt->BindTextRef(10, t.rollback_reason);
      stmt->BindInt(11, t.create_time == TimePoint{}
                            ? now_ms
                            : ToUnixMillis(t.create_time));
      stmt->BindInt(12, now_ms);
      stmt->BindOptInt(13, OptMillis(t.finish_time));
      stmt->BindOptInt(14, OptMillis(t.rollback_time));
      stmt->BindInt(15, t.next_cron_interval.count());
      stmt->BindInt(16, ToUnixMillis(t.next_cron_time));
      stmt->BindTextRef(17, t.owner);
      stmt->BindInt(18, t.retry_count);
      stmt->BindInt(19, t.fence);
      const int rc = stmt->Step();
      if (rc != SQLITE_DONE) return db.Error(rc, "insert " + t.gid);
    }
    if (db.changes() == 0)
      return AlreadyExistsError(GidPrefix(t.gid) + "already exists");
    Status s = InsertBranches(db, sqlite3_last_insert_rowid(db.raw()), t.gid,
                              branches_, now_ms);
    if (!s.ok() && !IsStorageFailure(s)) {
      // The request's rows are unique and the gid was new: a conflict means
      // branch rows without their global row. Fail the whole batch rather
      // than leave half of this write (it has no savepoint).
      return DataLossError(GidPrefix(t.gid) +
                           "branch rows exist without their transaction (" +
                           s.message() + ")");
    }
    return s;
  }

 private:
  GlobalTrans trans_;
  std::vector<Branch> branches_;
};

class AppendBranchesOp final : public SimpleOp {
 public:
  AppendBranchesOp(std::string gid, TransStatus expected,
                   std::vector<Branch> branches, WriteDone done)
      : SimpleOp(std::move(done)),
        gid_(std::move(gid)),
        expected_(expected),
        branches_(std::move(branches)) {}

  Status Apply(Db& db, int64_t now_ms) override {
    DTX_ASSIGN_OR_RETURN(StoredTrans stored,
                         RequireStatus(db, gid_, expected_, std::nullopt));
    return InsertBranches(db, stored.id, gid_, branches_, now_ms);
  }

 private:
  std::string gid_;
  TransStatus expected_;
  std::vector<Branch> branches_;
};

class ChangeStatusOp final : public SimpleOp {
 public:
  // Without branch updates, only its one UPDATE writes: it either applies or
  // changes nothing.
  bool needs_savepoint() const override { return !c_.branch_updates.empty(); }
  ChangeStatusOp(StatusChange change, WriteDone done)
      : SimpleOp(std::move(done)), c_(std::move(change)) {}
  bool lazy() const override { return c_.lazy; }

  Status Apply(Db& db, int64_t now_ms) override {
    // Read first, then update by row id: the read tells a wrong status from
    // an unknown gid, and gives the id that the branch rows are keyed by.
    // (An UPDATE ... RETURNING would do both in one statement, but SQLite
    // builds an ephemeral table for every RETURNING, which costs more than
    // the extra lookup.)
    DTX_ASSIGN_OR_RETURN(const StoredTrans stored,
                         RequireStatus(db, c_.gid, c_.from, c_.fence));
    const int64_t trans_id = stored.id;
    DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.PrepareStatic(R"sql(
UPDATE trans_global SET
  status = ?1,
  update_time = ?2,
  finish_time = CASE WHEN ?1 = 'succeed' THEN ?2 ELSE finish_time END,
  rollback_time = CASE WHEN ?1 = 'failed' THEN ?2 ELSE rollback_time END,
  rollback_reason = COALESCE(?3, rollback_reason),
  result = COALESCE(?4, result),
  next_cron_interval = COALESCE(?5, next_cron_interval),
  next_cron_time = COALESCE(?6, next_cron_time),
  owner = COALESCE(?9, owner),
  fence = fence + ?10
WHERE id = ?7
  AND (?8 IS NULL
       OR (SELECT COUNT(*) FROM trans_branch_op WHERE trans_id = ?7) = ?8))sql"));
    StmtGuard guard(stmt);
    stmt->BindTextRef(1, ToString(c_.to));
    stmt->BindInt(2, now_ms);
    stmt->BindOptText(3, c_.rollback_reason);
    stmt->BindOptText(4, c_.result);
    stmt->BindOptInt(
        5, c_.next_cron_interval
               ? std::optional<int64_t>(c_.next_cron_interval->count())
               : std::nullopt);
    stmt->BindOptInt(6, OptMillis(c_.next_cron_time));
    stmt->BindInt(7, trans_id);
    stmt->BindOptInt(8, c_.expected_branch_rows);
    const bool take_over = TakesOver(c_.fence, stored.owner);
    stmt->BindOptText(9, take_over ? std::optional<std::string>(c_.fence->owner)
                                   : std::nullopt);
    stmt->BindInt(10, take_over ? 1 : 0);
    const int rc = stmt->Step();
    if (rc != SQLITE_DONE) return db.Error(rc, "change status of " + c_.gid);
    if (db.changes() == 0) {
      return FailedPreconditionError(
          GidPrefix(c_.gid) + "branch rows changed (expected " +
          std::to_string(c_.expected_branch_rows.value_or(0)) + ")");
    }
    return ApplyBranchUpdates(db, trans_id, c_.gid, c_.branch_updates, now_ms);
  }

 private:
  StatusChange c_;
};

class UpdateBranchesOp final : public SimpleOp {
 public:
  UpdateBranchesOp(BranchResults results, WriteDone done)
      : SimpleOp(std::move(done)), r_(std::move(results)) {}
  bool lazy() const override { return r_.lazy; }

  Status Apply(Db& db, int64_t now_ms) override {
    StoredTrans stored;
    if (r_.expected) {
      DTX_ASSIGN_OR_RETURN(stored,
                           RequireStatus(db, r_.gid, *r_.expected, r_.fence));
    } else {
      DTX_ASSIGN_OR_RETURN(stored, ReadStored(db, r_.gid));
      DTX_RETURN_IF_ERROR(CheckFence(r_.gid, stored, r_.fence));
    }
    DTX_RETURN_IF_ERROR(TakeOver(db, stored, r_.fence));
    return ApplyBranchUpdates(db, stored.id, r_.gid, r_.updates, now_ms);
  }

 private:
  BranchResults r_;
};

class TouchCronOp final : public SimpleOp {
 public:
  bool needs_savepoint() const override { return false; }  // one UPDATE
  TouchCronOp(CronUpdate update, WriteDone done)
      : SimpleOp(std::move(done)), u_(std::move(update)) {}

  Status Apply(Db& db, int64_t now_ms) override {
    DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.PrepareStatic(R"sql(
UPDATE trans_global SET
  next_cron_interval = ?1,
  next_cron_time = ?2,
  update_time = ?3,
  retry_count = COALESCE(?4, retry_count),
  fence = CASE WHEN ?8 IS NOT NULL AND owner <> ?8 THEN fence + 1
               ELSE fence END,
  owner = CASE WHEN ?9 THEN '' ELSE COALESCE(?8, owner) END
WHERE gid = ?5 AND status = ?6 AND (?7 IS NULL OR fence = ?7))sql"));
    StmtGuard guard(stmt);
    stmt->BindInt(1, u_.next_cron_interval.count());
    stmt->BindInt(2, ToUnixMillis(u_.next_cron_time));
    stmt->BindInt(3, now_ms);
    stmt->BindOptInt(4, u_.retry_count);
    stmt->BindText(5, u_.gid);
    stmt->BindText(6, ToString(u_.expected));
    stmt->BindOptInt(
        7, u_.fence ? std::optional<int64_t>(u_.fence->token) : std::nullopt);
    stmt->BindOptText(8, u_.fence ? std::optional<std::string>(u_.fence->owner)
                                  : std::nullopt);
    stmt->BindInt(9, u_.release ? 1 : 0);
    const int rc = stmt->Step();
    if (rc != SQLITE_DONE) return db.Error(rc, "touch cron of " + u_.gid);
    if (db.changes() == 0) {
      return ExplainMiss(
          db, u_.gid, "'" + std::string(ToString(u_.expected)) + "'", u_.fence);
    }
    return Status::Ok();
  }

 private:
  CronUpdate u_;
};

class MakeDueOp final : public SimpleOp {
 public:
  bool needs_savepoint() const override { return false; }  // one UPDATE
  MakeDueOp(std::string gid, TimePoint now, WriteDone done)
      : SimpleOp(std::move(done)), gid_(std::move(gid)), now_(now) {}

  Status Apply(Db& db, int64_t now_ms) override {
    DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.PrepareStatic(R"sql(
UPDATE trans_global SET next_cron_time = ?1, update_time = ?2
WHERE gid = ?3 AND status IN ('prepared', 'submitted', 'aborting'))sql"));
    StmtGuard guard(stmt);
    stmt->BindInt(1, ToUnixMillis(now_));
    stmt->BindInt(2, now_ms);
    stmt->BindText(3, gid_);
    const int rc = stmt->Step();
    if (rc != SQLITE_DONE) return db.Error(rc, "make due " + gid_);
    if (db.changes() == 0) return ExplainMiss(db, gid_, "an unfinished status");
    return Status::Ok();
  }

 private:
  std::string gid_;
  TimePoint now_;
};

class ClaimOp final : public WriteOp {
 public:
  bool needs_savepoint() const override { return false; }  // one UPDATE
  ClaimOp(ClaimRequest request, ClaimDone done)
      : request_(std::move(request)), done_(std::move(done)) {}

  Status Apply(Db& db, int64_t now_ms) override {
    claimed_.clear();
    DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.PrepareStatic(ClaimSql().c_str()));
    StmtGuard guard(stmt);
    stmt->BindText(1, request_.owner);
    stmt->BindInt(2, ToUnixMillis(request_.lease_until));
    stmt->BindInt(3, now_ms);
    stmt->BindInt(4, ToUnixMillis(request_.now));
    stmt->BindInt(5, static_cast<int64_t>(request_.limit));
    for (;;) {
      const int rc = stmt->Step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return db.Error(rc, "claim");
      DTX_ASSIGN_OR_RETURN(GlobalTrans t, ReadGlobalRow(*stmt, db.path()));
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

// One step of retention: a scan of up to scan_limit rows by id, then the
// removal of the finished ones old enough, each with its branch rows (the
// status-count triggers follow the deletes).
class PurgeOp final : public WriteOp {
 public:
  PurgeOp(PurgeRequest request, PurgeDone done)
      : request_(request), done_(std::move(done)) {}

  Status Apply(Db& db, int64_t) override {
    result_ = PurgeResult{};
    result_.next_after_id = request_.after_id;
    const int64_t finished_before = ToUnixMillis(request_.finished_before);
    const int64_t created_before = ToUnixMillis(request_.created_before);
    // A row created at or after this cannot qualify, nor (ids being in
    // creation order, give or take clocks) can the rows after it.
    const int64_t newest = std::max(finished_before, created_before);
    bool reached_new = false;
    ids_.clear();
    {
      DTX_ASSIGN_OR_RETURN(
          Stmt * scan,
          db.PrepareStatic("SELECT id, status, create_time, update_time FROM "
                           "trans_global WHERE id > ?1 ORDER BY id LIMIT ?2"));
      StmtGuard guard(scan);
      scan->BindInt(1, request_.after_id);
      scan->BindInt(2, static_cast<int64_t>(request_.scan_limit));
      for (;;) {
        const int rc = scan->Step();
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return db.Error(rc, "retention scan");
        ++result_.scanned;
        result_.next_after_id = scan->Int(0);
        const std::string status = scan->Text(1);
        const int64_t created = scan->Int(2);
        if (created >= newest) reached_new = true;
        if ((status == "succeed" || status == "failed") &&
            (scan->Int(3) < finished_before || created < created_before)) {
          ids_.push_back(scan->Int(0));
        }
      }
    }
    DTX_ASSIGN_OR_RETURN(
        Stmt * global,
        db.PrepareStatic("DELETE FROM trans_global WHERE id = ?1 AND status "
                         "IN ('succeed', 'failed')"));
    DTX_ASSIGN_OR_RETURN(
        Stmt * branches,
        db.PrepareStatic("DELETE FROM trans_branch_op WHERE trans_id = ?1"));
    for (const int64_t id : ids_) {
      {
        StmtGuard guard(global);
        global->BindInt(1, id);
        DTX_RETURN_IF_ERROR(global->Run("retention: remove a transaction"));
      }
      if (db.changes() == 0) continue;
      StmtGuard guard(branches);
      branches->BindInt(1, id);
      DTX_RETURN_IF_ERROR(branches->Run("retention: remove branch rows"));
      ++result_.removed;
    }
    result_.more = !reached_new && result_.scanned == request_.scan_limit;
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
  std::vector<int64_t> ids_;
};

class NoStoreOp final : public SimpleOp {
 public:
  NoStoreOp(Status status, WriteDone done)
      : SimpleOp(std::move(done)), status_(std::move(status)) {}
  Status Apply(Db&, int64_t) override { return status_; }
  bool touches_db() const override { return false; }

 private:
  Status status_;
};

}  // namespace

std::unique_ptr<WriteOp> MakeSaveNew(GlobalTrans trans,
                                     std::vector<Branch> branches,
                                     WriteDone done) {
  Status s = ValidateTransFields(trans);
  if (s.ok()) s = ValidateBranchFields(trans.gid, branches);
  if (s.ok()) s = CheckNoRepeatedBranch(trans.gid, branches);
  if (!s.ok()) return MakeRejected(std::move(s), std::move(done));
  return std::make_unique<SaveNewOp>(std::move(trans), std::move(branches),
                                     std::move(done));
}

std::unique_ptr<WriteOp> MakeAppendBranches(std::string gid,
                                            TransStatus expected,
                                            std::vector<Branch> branches,
                                            WriteDone done) {
  Status s = ValidateGid(gid).WithPrefix("journal");
  if (s.ok()) s = ValidateBranchFields(gid, branches);
  if (!s.ok()) return MakeRejected(std::move(s), std::move(done));
  return std::make_unique<AppendBranchesOp>(
      std::move(gid), expected, std::move(branches), std::move(done));
}

std::unique_ptr<WriteOp> MakeChangeStatus(StatusChange change, WriteDone done) {
  Status s = ValidateGid(change.gid).WithPrefix("journal");
  if (s.ok() && change.rollback_reason) {
    s = ValidateText("rollback_reason", *change.rollback_reason)
            .WithPrefix("journal");
  }
  if (s.ok() && change.result)
    s = ValidateText("result", *change.result).WithPrefix("journal");
  if (!s.ok()) return MakeRejected(std::move(s), std::move(done));
  return std::make_unique<ChangeStatusOp>(std::move(change), std::move(done));
}

std::unique_ptr<WriteOp> MakeUpdateBranches(BranchResults results,
                                            WriteDone done) {
  Status s = ValidateGid(results.gid).WithPrefix("journal");
  if (!s.ok()) return MakeRejected(std::move(s), std::move(done));
  return std::make_unique<UpdateBranchesOp>(std::move(results),
                                            std::move(done));
}

std::unique_ptr<WriteOp> MakeTouchCron(CronUpdate update, WriteDone done) {
  Status s = ValidateGid(update.gid).WithPrefix("journal");
  if (!s.ok()) return MakeRejected(std::move(s), std::move(done));
  return std::make_unique<TouchCronOp>(std::move(update), std::move(done));
}

std::unique_ptr<WriteOp> MakeMakeDue(std::string gid, TimePoint now,
                                     WriteDone done) {
  Status s = ValidateGid(gid).WithPrefix("journal");
  if (!s.ok()) return MakeRejected(std::move(s), std::move(done));
  return std::make_unique<MakeDueOp>(std::move(gid), now, std::move(done));
}

std::unique_ptr<WriteOp> MakePurge(PurgeRequest request, PurgeDone done) {
  if (request.scan_limit == 0) request.scan_limit = 1;
  return std::make_unique<PurgeOp>(request, std::move(done));
}

std::unique_ptr<WriteOp> MakeClaim(ClaimRequest request, ClaimDone done) {
  if (request.limit == 0) request.limit = 1;
  return std::make_unique<ClaimOp>(std::move(request), std::move(done));
}

std::unique_ptr<WriteOp> MakeFlush(WriteDone done) {
  return std::make_unique<NoStoreOp>(Status::Ok(), std::move(done));
}

std::unique_ptr<WriteOp> MakeRejected(Status status, WriteDone done) {
  return std::make_unique<NoStoreOp>(std::move(status), std::move(done));
}

}  // namespace dtx::internal
