// Rows of the journal's tables: reading them, and writing a transaction's
// branch rows. Used by the writes (sqlite_journal_ops.cc) and the reads
// (sqlite_journal.cc).

#include "journal_rows.h"

#include "dtx/clock.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>

namespace dtx::internal {

std::optional<int64_t> OptMillis(const std::optional<TimePoint>& t) {
  if (!t) return std::nullopt;
  return ToUnixMillis(*t);
}

std::optional<TimePoint> ReadOptTime(const Stmt& s, int col) {
  if (s.IsNull(col)) return std::nullopt;
  return FromUnixMillis(s.Int(col));
}

Result<StoredTrans> ReadStored(Db& db, const std::string& gid) {
  DTX_ASSIGN_OR_RETURN(
      Stmt * stmt, db.PrepareStatic(
                       R"sql(SELECT id, status, owner, fence FROM trans_global
WHERE gid = ?1)sql"));
  StmtGuard guard(stmt);
  stmt->BindTextRef(1, gid);
  const int rc = stmt->Step();
  if (rc == SQLITE_DONE) return NotFoundError(GidPrefix(gid) + "not found");
  if (rc != SQLITE_ROW) return db.Error(rc, "read status of " + gid);
  return StoredTrans{stmt->Int(0), stmt->Text(1), stmt->Text(2), stmt->Int(3)};
}

Status CheckFence(const std::string& gid, const StoredTrans& stored,
                  const std::optional<Fence>& fence) {
  if (!fence || fence->token == stored.fence) return Status::Ok();
  return StaleFenceError(gid, *fence, stored.owner, stored.fence);
}

// After a guarded UPDATE changed nothing: tells apart an unknown gid and a
// stale fence from a status that is not the expected one.
Status ExplainMiss(Db& db, const std::string& gid, std::string_view expected,
                   const std::optional<Fence>& fence) {
  DTX_ASSIGN_OR_RETURN(StoredTrans stored, ReadStored(db, gid));
  DTX_RETURN_IF_ERROR(CheckFence(gid, stored, fence));
  return FailedPreconditionError(GidPrefix(gid) + "status is '" +
                                 stored.status + "', expected " +
                                 std::string(expected));
}

Result<StoredTrans> RequireStatus(Db& db, const std::string& gid,
                                  TransStatus expected,
                                  const std::optional<Fence>& fence) {
  DTX_ASSIGN_OR_RETURN(StoredTrans stored, ReadStored(db, gid));
  DTX_RETURN_IF_ERROR(CheckFence(gid, stored, fence));
  if (stored.status != ToString(expected)) {
    return FailedPreconditionError(GidPrefix(gid) + "status is '" +
                                   stored.status + "', expected '" +
                                   std::string(ToString(expected)) + "'");
  }
  return stored;
}

Status TakeOver(Db& db, const StoredTrans& stored,
                const std::optional<Fence>& fence) {
  if (!TakesOver(fence, stored.owner)) return Status::Ok();
  DTX_ASSIGN_OR_RETURN(
      Stmt * stmt,
      db.PrepareStatic(
          R"sql(UPDATE trans_global SET owner = ?1, fence = fence + 1
WHERE id = ?2)sql"));
  StmtGuard guard(stmt);
  stmt->BindTextRef(1, fence->owner);
  stmt->BindInt(2, stored.id);
  const int rc = stmt->Step();
  if (rc != SQLITE_DONE)
    return db.Error(rc, "take over row " + std::to_string(stored.id));
  return Status::Ok();
}

namespace {

// The INSERT of `rows` branch rows in one statement (?1, ?2... numbered row
// after row, kBranchInsertParams each). One statement for several rows costs
// less than one per row; the text is built once per row count.
constexpr int kBranchInsertParams = 11;
constexpr std::size_t kMaxRowsPerInsert = 8;

const std::string& BranchInsertSql(std::size_t rows) {
  static const auto* const texts = [] {
    auto* t = new std::array<std::string, kMaxRowsPerInsert + 1>();
    for (std::size_t n = 1; n <= kMaxRowsPerInsert; ++n) {
      std::string& sql = (*t)[n];
      sql = R"sql(
INSERT INTO trans_branch_op (trans_id, gid, url, bin_data, branch_id, op,
  status, finish_time, rollback_time, create_time, update_time)
VALUES )sql";
      for (std::size_t r = 0; r < n; ++r) {
        sql += r == 0 ? "(" : ", (";
        for (int c = 1; c <= kBranchInsertParams; ++c) {
          if (c > 1) sql += ", ";
          sql += "?" + std::to_string(r * kBranchInsertParams +
                                      static_cast<std::size_t>(c));
        }
        sql += ")";
      }
    }
    return t;
  }();
  return (*texts)[rows];
}

// After an insert of `rows` failed on the unique key: the first of them that
// repeats an earlier one or a stored row, for the error message.
Status DuplicateBranch(Db& db, int64_t trans_id, const std::string& gid,
                       const std::vector<Branch>& rows) {
  auto exists = [&gid](const Branch& b) {
    return AlreadyExistsError(GidPrefix(gid) + "branch " + b.branch_id + "/" +
                              std::string(ToString(b.op)) + " already exists");
  };
  DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.PrepareStatic(R"sql(
SELECT 1 FROM trans_branch_op
WHERE trans_id = ?1 AND branch_id = ?2 AND op = ?3)sql"));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (rows[j].branch_id == rows[i].branch_id && rows[j].op == rows[i].op)
        return exists(rows[i]);
    }
    StmtGuard guard(stmt);
    stmt->BindInt(1, trans_id);
    stmt->BindText(2, rows[i].branch_id);
    stmt->BindText(3, ToString(rows[i].op));
    const int rc = stmt->Step();
    if (rc == SQLITE_ROW) return exists(rows[i]);
    if (rc != SQLITE_DONE) return db.Error(rc, "find branch of " + gid);
  }
  return AlreadyExistsError(GidPrefix(gid) + "a branch already exists");
}

}  // namespace

// Inserts the rows of the transaction whose row id is `trans_id`, up to
// kMaxRowsPerInsert in each statement.
Status InsertBranches(Db& db, int64_t trans_id, const std::string& gid,
                      const std::vector<Branch>& branches, int64_t now_ms) {
  for (std::size_t first = 0; first < branches.size();
       first += kMaxRowsPerInsert) {
    const std::size_t n = std::min(kMaxRowsPerInsert, branches.size() - first);
    DTX_ASSIGN_OR_RETURN(Stmt * stmt,
                         db.PrepareStatic(BranchInsertSql(n).c_str()));
    StmtGuard guard(stmt);
    for (std::size_t r = 0; r < n; ++r) {
      const Branch& b = branches[first + r];
      const int p = static_cast<int>(r) * kBranchInsertParams;
      stmt->BindInt(p + 1, trans_id);
      stmt->BindTextRef(p + 2, gid);
      stmt->BindTextRef(p + 3, b.url);
      stmt->BindBlobRef(p + 4, b.bin_data);
      stmt->BindTextRef(p + 5, b.branch_id);
      stmt->BindTextRef(p + 6, ToString(b.op));
      stmt->BindTextRef(p + 7, ToString(b.status));
      stmt->BindOptInt(p + 8, OptMillis(b.finish_time));
      stmt->BindOptInt(p + 9, OptMillis(b.rollback_time));
      stmt->BindInt(p + 10, b.create_time == TimePoint{}
                                ? now_ms
                                : ToUnixMillis(b.create_time));
      stmt->BindInt(p + 11, now_ms);
    }
    const int rc = stmt->Step();
    if (rc != SQLITE_DONE) {
      if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        // SQLite has undone this statement; name the row that repeats.
        const std::vector<Branch> chunk(
            branches.begin() + static_cast<std::ptrdiff_t>(first),
            branches.begin() + static_cast<std::ptrdiff_t>(first + n));
        return DuplicateBranch(db, trans_id, gid, chunk);
      }
      return db.Error(rc, "insert branch of " + gid);
    }
  }
  return Status::Ok();
}

// Records results on the rows of the transaction whose row id is `trans_id`.
Status ApplyBranchUpdates(Db& db, int64_t trans_id, const std::string& gid,
                          const std::vector<BranchUpdate>& updates,
                          int64_t now_ms) {
  if (updates.empty()) return Status::Ok();
  DTX_ASSIGN_OR_RETURN(Stmt * stmt, db.PrepareStatic(R"sql(
UPDATE trans_branch_op SET
  status = ?1,
  update_time = ?2,
  finish_time = CASE WHEN ?1 = 'prepared' THEN finish_time ELSE ?2 END,
  attempts = attempts + ?6,
  last_try_time = CASE WHEN ?6 = 0 THEN last_try_time ELSE ?7 END,
  last_error = CASE WHEN ?6 = 0 THEN last_error ELSE ?8 END
WHERE trans_id = ?3 AND branch_id = ?4 AND op = ?5)sql"));
  for (const BranchUpdate& u : updates) {
    StmtGuard guard(stmt);
    stmt->BindTextRef(1, ToString(u.status));
    stmt->BindInt(2, now_ms);
    stmt->BindInt(3, trans_id);
    stmt->BindTextRef(4, u.branch_id);
    stmt->BindTextRef(5, ToString(u.op));
    stmt->BindInt(6, u.attempt ? 1 : 0);
    stmt->BindInt(7, u.attempt ? ToUnixMillis(u.attempt->time) : 0);
    stmt->BindTextRef(
        8, u.attempt ? std::string_view(u.attempt->error) : std::string_view());
    const int rc = stmt->Step();
    if (rc != SQLITE_DONE) return db.Error(rc, "update branch of " + gid);
    if (db.changes() == 0) {
      return NotFoundError(GidPrefix(gid) + "branch " + u.branch_id + "/" +
                           std::string(ToString(u.op)) + " not found");
    }
  }
  return Status::Ok();
}

namespace {

// kInvalidArgument naming the first of `cols` (named `names`) that holds a
// time outside what TimePoint holds (clock.h, kMaxUnixMillis): converting
// it, or a due time computed from it, would overflow.
Status CheckTimes(const Stmt& s, std::initializer_list<int> cols,
                  std::initializer_list<const char*> names) {
  auto name = names.begin();
  for (int col : cols) {
    const int64_t ms = s.Int(col);
    if (!s.IsNull(col) && (ms > kMaxUnixMillis || ms < -kMaxUnixMillis)) {
      return InvalidArgumentError(std::string(*name) + " " +
                                  std::to_string(ms) +
                                  " ms is outside the years 1740..2200");
    }
    ++name;
  }
  return Status::Ok();
}

}  // namespace

Result<GlobalTrans> ReadGlobalRow(const Stmt& s, const std::string& path) {
  GlobalTrans t;
  t.id = s.Int(0);
  t.gid = s.Text(1);
  auto bad = [&](const Status& st) {
    return DataLossError("journal: " + path + ": gid " + t.gid + ": " +
                         st.message());
  };
  auto type = ParseTransType(s.Text(2));
  if (!type.ok()) return bad(type.status());
  t.trans_type = *type;
  auto status = ParseTransStatus(s.Text(3));
  if (!status.ok()) return bad(status.status());
  t.status = *status;
  if (Status st = CheckTimes(s, {11, 12, 13, 14, 16},
                             {"create_time", "update_time", "finish_time",
                              "rollback_time", "next_cron_time"});
      !st.ok()) {
    return bad(st);
  }
  if (s.Int(15) < 0 || s.Int(15) > kMaxUnixMillis / 1000) {
    return bad(InvalidArgumentError("next_cron_interval " +
                                    std::to_string(s.Int(15)) +
                                    " s is negative or over 230 years"));
  }
  t.protocol = s.Text(4);
  t.query_prepared = s.Text(5);
  t.options = s.Text(6);
  t.custom_data = s.Text(7);
  t.ext_data = s.Text(8);
  t.result = s.Text(9);
  t.rollback_reason = s.Text(10);
  t.create_time = FromUnixMillis(s.Int(11));
  t.update_time = FromUnixMillis(s.Int(12));
  t.finish_time = ReadOptTime(s, 13);
  t.rollback_time = ReadOptTime(s, 14);
  t.next_cron_interval = std::chrono::seconds(s.Int(15));
  t.next_cron_time = FromUnixMillis(s.Int(16));
  t.owner = s.Text(17);
  t.retry_count = s.Int(18);
  t.fence = s.Int(19);
  return t;
}

Result<Branch> ReadBranchRow(const Stmt& s, const std::string& path) {
  Branch b;
  b.id = s.Int(0);
  b.gid = s.Text(1);
  b.url = s.Text(2);
  b.bin_data = s.Blob(3);
  b.branch_id = s.Text(4);
  auto bad = [&](const Status& st) {
    return DataLossError("journal: " + path + ": gid " + b.gid + " branch " +
                         b.branch_id + ": " + st.message());
  };
  auto op = ParseBranchOp(s.Text(5));
  if (!op.ok()) return bad(op.status());
  b.op = *op;
  auto status = ParseBranchStatus(s.Text(6));
  if (!status.ok()) return bad(status.status());
  b.status = *status;
  if (Status st = CheckTimes(s, {7, 8, 9, 10, 12},
                             {"create_time", "update_time", "finish_time",
                              "rollback_time", "last_try_time"});
      !st.ok()) {
    return bad(st);
  }
  b.create_time = FromUnixMillis(s.Int(7));
  b.update_time = FromUnixMillis(s.Int(8));
  b.finish_time = ReadOptTime(s, 9);
  b.rollback_time = ReadOptTime(s, 10);
  b.attempts = s.Int(11);
  b.last_try_time = ReadOptTime(s, 12);
  b.last_error = s.Text(13);
  return b;
}

}  // namespace dtx::internal
