// The journal's tables, modelled on dtm's trans_global and trans_branch_op and
// keeping their column names where they mean the same thing.
//
// trans_global: one row per global transaction.
//   id                  INTEGER PRIMARY KEY. Insertion order; List() pages by
//                       it, and branch rows refer to it.
//   gid                 TEXT UNIQUE. The global transaction id.
//   trans_type          TEXT. PERSISTED: tcc | saga | msg | xa | workflow.
//   status              TEXT. PERSISTED: prepared | submitted | aborting |
//                       succeed | failed.
//   query_prepared      TEXT. msg: the check-back URL.
//   protocol            TEXT. grpc (http is dtm's other value).
//   create_time, update_time, finish_time, rollback_time
//                       INTEGER, milliseconds since the Unix epoch (dtm
//                       stores datetimes; integers sort and compare without
//                       parsing). finish_time is set on succeed,
//                       rollback_time on failed.
//   options             TEXT. The per-transaction options as JSON; the
//                       engine owns the format.
//   custom_data         TEXT. Mode-specific JSON (saga orders, msg delay).
//   next_cron_interval  INTEGER, seconds. The current retry interval.
//   next_cron_time      INTEGER, ms. When the transaction is next due.
//   owner               TEXT. The coordinator that last claimed it.
//   fence               INTEGER. Moves on whenever the owner changes; fenced
//                       writes carry the value they expect (journal.h, Fence).
//   ext_data            TEXT. dtm's legacy headers; kept for compatibility.
//   result              TEXT. workflow result.
//   rollback_reason     TEXT. Why it rolled back.
//   retry_count         INTEGER. Saga RetryLimit counter. Not in dtm, which
//                       keeps it in memory and so resets it on every restart.
//
// trans_branch_op: one row per (branch, op) of a transaction, in registration
// order (id). (trans_id, branch_id, op) is unique.
//   id                  INTEGER PRIMARY KEY. Registration order.
//   trans_id            INTEGER. trans_global.id of the transaction (not in
//                       dtm, which keys branch rows by gid; see below).
//   gid, url            as named; url may be empty (dtm: succeed without a
//                       call).
//   bin_data            BLOB. The payload sent with the call.
//   branch_id           TEXT. "01", "02", nested "0201", msg check-back "00".
//   op                  TEXT. PERSISTED: try | confirm | cancel | action |
//                       compensate | commit | rollback | msg.
//   status              TEXT. PERSISTED: prepared | succeed | failed.
//   finish_time, rollback_time, create_time, update_time   INTEGER ms.
//   attempts            INTEGER. Calls of this row so far (not in dtm).
//   last_try_time       INTEGER ms. When the last call was made; NULL before.
//   last_error          TEXT. "<class>: <message>" of the last call when it
//                       did not succeed, '' after a success (not in dtm).
//   (dtm's deprecated `data` column is not kept.)
//
// trans_status_count: how many trans_global rows hold each status (not in
// dtm), so that counting by status (Journal::CountByStatus, which a console
// asks every second) reads five rows instead of the whole table.
//   status              TEXT PRIMARY KEY. PERSISTED: a trans_global status.
//   n                   INTEGER. Rows of trans_global with that status.
// Triggers on trans_global keep it exact in the same SQLite transaction as
// the change, whichever process or statement makes it: an insert adds 1 to
// its status, a change of status moves 1, a delete takes 1 away. A write
// costs one more UPDATE of this one-page table (an index on status would
// cost index entries per row, and counting with it would still read every
// row).
//
// Indexes:
//   trans_global_due    next_cron_time, only over unfinished rows (a partial
//                       index). It plays the part of dtm's
//                       status_next_cron_time: the due scan of Claim and
//                       ListDue is a range scan in due order costing O(due),
//                       and finished rows, the bulk of an old journal, cost
//                       neither index space nor scan time.
//   gid (unique) on trans_global.
//   trans_branch_op_key (trans_id, branch_id, op), unique. Keyed by the
//                       transaction's row id rather than its gid so that the
//                       rows of new transactions land at the right edge of
//                       the index: gids chosen by clients are in no order,
//                       and inserting at random places in a B-tree dirties
//                       a page per row, which every commit then writes to
//                       the WAL (docs/journal.md, "Cost of a transaction").
//
// Versions (PRAGMA user_version; PRAGMA application_id is "dtx1"):
//   1  the tables above, trans_branch_op keyed by (gid, branch_id, op).
//   2  trans_branch_op keyed by (trans_id, branch_id, op).
//   3  trans_branch_op's retry state: attempts, last_try_time, last_error.
//   4  trans_status_count and its triggers, filled from the rows present.
// A migration is appended to kMigrations and never edited once released.

#include "schema.h"

#include <array>
#include <chrono>
#include <string>

namespace dtx::internal {

const char* const kGlobalColumns = R"sql(id, gid, trans_type, status,
  protocol, query_prepared, options, custom_data, ext_data, result,
  rollback_reason, create_time, update_time, finish_time, rollback_time,
  next_cron_interval, next_cron_time, owner, retry_count, fence)sql";

const char* const kBranchColumns = R"sql(id, gid, url, bin_data, branch_id,
  op, status, create_time, update_time, finish_time, rollback_time, attempts,
  last_try_time, last_error)sql";

namespace {

// kMigrations[v] takes a database from version v to v + 1.
constexpr std::array<const char*, 5> kMigrations = {
    // 0 -> 1
    R"sql(
CREATE TABLE trans_global (
  id INTEGER PRIMARY KEY,
  gid TEXT NOT NULL UNIQUE,
  trans_type TEXT NOT NULL,
  status TEXT NOT NULL,
  query_prepared TEXT NOT NULL DEFAULT '',
  protocol TEXT NOT NULL DEFAULT 'grpc',
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  finish_time INTEGER,
  rollback_time INTEGER,
  options TEXT NOT NULL DEFAULT '',
  custom_data TEXT NOT NULL DEFAULT '',
  next_cron_interval INTEGER NOT NULL DEFAULT 0,
  next_cron_time INTEGER NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT '',
  ext_data TEXT NOT NULL DEFAULT '',
  result TEXT NOT NULL DEFAULT '',
  rollback_reason TEXT NOT NULL DEFAULT '',
  retry_count INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX trans_global_due ON trans_global(next_cron_time)
  WHERE status IN ('prepared', 'submitted', 'aborting');
CREATE TABLE trans_branch_op (
  id INTEGER PRIMARY KEY,
  gid TEXT NOT NULL,
  url TEXT NOT NULL DEFAULT '',
  bin_data BLOB NOT NULL DEFAULT x'',
  branch_id TEXT NOT NULL,
  op TEXT NOT NULL,
  status TEXT NOT NULL,
  finish_time INTEGER,
  rollback_time INTEGER,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  UNIQUE (gid, branch_id, op)
) STRICT;
)sql",
    // 1 -> 2. SQLite cannot drop a table constraint, so the table is rebuilt.
    // Every row is kept; one without its transaction (which no version
    // writes) gets trans_id 0 and is never read.
    R"sql(
CREATE TABLE trans_branch_op_v2 (
  id INTEGER PRIMARY KEY,
  trans_id INTEGER NOT NULL,
  gid TEXT NOT NULL,
  url TEXT NOT NULL DEFAULT '',
  bin_data BLOB NOT NULL DEFAULT x'',
  branch_id TEXT NOT NULL,
  op TEXT NOT NULL,
  status TEXT NOT NULL,
  finish_time INTEGER,
  rollback_time INTEGER,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL
) STRICT;
INSERT INTO trans_branch_op_v2 (id, trans_id, gid, url, bin_data, branch_id,
  op, status, finish_time, rollback_time, create_time, update_time)
SELECT b.id, COALESCE(g.id, 0), b.gid, b.url, b.bin_data, b.branch_id, b.op,
  b.status, b.finish_time, b.rollback_time, b.create_time, b.update_time
FROM trans_branch_op AS b LEFT JOIN trans_global AS g ON g.gid = b.gid;
DROP TABLE trans_branch_op;
ALTER TABLE trans_branch_op_v2 RENAME TO trans_branch_op;
CREATE UNIQUE INDEX trans_branch_op_key
  ON trans_branch_op(trans_id, branch_id, op);
)sql",
    // 2 -> 3. Columns added in place: no row is rewritten.
    R"sql(
ALTER TABLE trans_branch_op ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trans_branch_op ADD COLUMN last_try_time INTEGER;
ALTER TABLE trans_branch_op ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
)sql",
    // 3 -> 4. One scan of trans_global fills the counts; the triggers keep
    // them from then on.
    R"sql(
CREATE TABLE trans_status_count (
  status TEXT PRIMARY KEY,
  n INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO trans_status_count (status, n)
  SELECT status, COUNT(*) FROM trans_global GROUP BY status;
CREATE TRIGGER trans_status_count_insert AFTER INSERT ON trans_global
BEGIN
  INSERT INTO trans_status_count (status, n) VALUES (NEW.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER trans_status_count_update AFTER UPDATE OF status ON trans_global
  WHEN OLD.status IS NOT NEW.status
BEGIN
  UPDATE trans_status_count SET n = n - 1 WHERE status = OLD.status;
  INSERT INTO trans_status_count (status, n) VALUES (NEW.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER trans_status_count_delete AFTER DELETE ON trans_global
BEGIN
  UPDATE trans_status_count SET n = n - 1 WHERE status = OLD.status;
END;
)sql",
    // 4 -> 5. The fence of fenced writes (journal.h, Fence), in place.
    R"sql(
ALTER TABLE trans_global ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
)sql",
};

static_assert(kMigrations.size() == kJournalSchemaVersion);

Status NotAJournal(const Db& db, std::string_view why) {
  return FailedPreconditionError("journal: " + db.path() + ": " +
                                 std::string(why));
}

}  // namespace

Status CheckSchema(Db& db) {
  DTX_ASSIGN_OR_RETURN(int64_t app_id, db.QueryInt("PRAGMA application_id"));
  DTX_ASSIGN_OR_RETURN(int64_t version, db.QueryInt("PRAGMA user_version"));
  if (app_id == kJournalApplicationId && version == kJournalSchemaVersion)
    return Status::Ok();
  if (app_id == 0 && version == 0) {
    return NotAJournal(db, "is an empty database or not a dtx journal");
  }
  if (app_id != kJournalApplicationId) {
    return NotAJournal(
        db, "is a SQLite database of another application, not a dtx journal");
  }
  if (version > kJournalSchemaVersion) {
    return NotAJournal(db, "was written by a newer dtx (schema version " +
                               std::to_string(version) +
                               ", this build knows up to " +
                               std::to_string(kJournalSchemaVersion) + ")");
  }
  return NotAJournal(
      db, "was written by an older dtx (schema version " +
              std::to_string(version) + ", this build's is " +
              std::to_string(kJournalSchemaVersion) +
              "); a read-only open does not migrate it: open it once with "
              "this version's dtx-server or application");
}

Status MigrateSchema(Db& db, Logger& logger) {
  // Cheap unlocked look first: an up-to-date journal is the common case and
  // must open even while another process holds the write lock.
  DTX_ASSIGN_OR_RETURN(int64_t app_id, db.QueryInt("PRAGMA application_id"));
  DTX_ASSIGN_OR_RETURN(int64_t version, db.QueryInt("PRAGMA user_version"));
  if (app_id == kJournalApplicationId && version == kJournalSchemaVersion)
    return Status::Ok();

  DTX_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  auto fail = [&db](Status s) {
    db.Exec("ROLLBACK").IgnoreError();
    return s;
  };
  // Read again under the write lock: another process may have migrated it.
  auto app_id_now = db.QueryInt("PRAGMA application_id");
  if (!app_id_now.ok()) return fail(app_id_now.status());
  auto version_now = db.QueryInt("PRAGMA user_version");
  if (!version_now.ok()) return fail(version_now.status());
  app_id = *app_id_now;
  version = *version_now;

  if (app_id != 0 && app_id != kJournalApplicationId) {
    return fail(NotAJournal(
        db, "is a SQLite database of another application, not a dtx journal"));
  }
  if (version > kJournalSchemaVersion) {
    return fail(NotAJournal(
        db, "was written by a newer dtx (schema version " +
                std::to_string(version) + ", this build knows up to " +
                std::to_string(kJournalSchemaVersion) + ")"));
  }
  if (app_id == 0) {
    auto tables = db.QueryInt("SELECT COUNT(*) FROM sqlite_schema");
    if (!tables.ok()) return fail(tables.status());
    if (*tables != 0) {
      return fail(NotAJournal(
          db, "is a SQLite database with other tables, not a dtx journal"));
    }
  }
  const auto started = std::chrono::steady_clock::now();
  if (version > 0) {
    auto rows = db.QueryInt("SELECT COUNT(*) FROM trans_branch_op");
    DTX_LOG(&logger, LogLevel::kWarn,
            "journal: " << db.path() << ": migrating from schema version "
                        << version << " to " << kJournalSchemaVersion << " ("
                        << rows.value_or(-1)
                        << " branch rows); processes of older dtx versions "
                           "must not use this file any more");
  }
  for (int64_t v = version; v < kJournalSchemaVersion; ++v) {
    Status s = db.Exec(kMigrations[static_cast<std::size_t>(v)]);
    if (!s.ok())
      return fail(
          s.WithPrefix("migration to schema version " + std::to_string(v + 1)));
  }
  Status s = db.Exec(
      "PRAGMA user_version = " + std::to_string(kJournalSchemaVersion) +
      "; PRAGMA application_id = " + std::to_string(kJournalApplicationId));
  if (!s.ok()) return fail(s);
  s = db.Exec("COMMIT");
  if (!s.ok()) return fail(s);
  if (version > 0) {
    DTX_LOG(
        &logger, LogLevel::kWarn,
        "journal: " << db.path() << ": migrated to schema version "
                    << kJournalSchemaVersion << " in "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - started)
                           .count()
                    << " ms");
  }
  return Status::Ok();
}

}  // namespace dtx::internal
