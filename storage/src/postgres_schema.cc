// The PostgreSQL journal's tables: the SQLite journal's (schema.cc), with
// PostgreSQL's types, in the schema the options name (dtm's Store.Schema,
// default "public").
//
// trans_global, trans_branch_op: the columns of the SQLite journal, same
// names and meanings. Times are BIGINT milliseconds since the Unix epoch (as
// in SQLite; dtm's timestamp(0) drops the milliseconds the journal keeps);
// ids are BIGINT identities; gid and branch_id use the "C" collation, so that
// they sort bytewise whatever the database's locale and a gid prefix is an
// index range; bin_data is BYTEA.
//
// Indexes:
//   trans_global_gid     unique, gid.
//   trans_global_due     (next_cron_time, id) over unfinished rows only
//                        (partial): Claim, ListDue and Summarize scan it in
//                        due order, O(due), however many finished rows the
//                        table holds.
//   trans_branch_op_key  unique (trans_id, branch_id, op), as in SQLite.
//
// There is no trans_status_count table here: in SQLite one writer commits at
// a time, but on PostgreSQL every coordinator's group commit would update
// the same five count rows, and those row locks would serialize the
// coordinators' commits (and deadlock two batches that move counts in
// opposite directions). CountByStatus counts with one GROUP BY instead.
//
// dtx_journal_version: one row, the schema version (1 for the tables above).
// A migration is appended to kMigrations and never edited once released.

#include "postgres_schema.h"

#include <array>
#include <cctype>

namespace dtx::internal {

const char* const kPgGlobalColumns = R"sql(id, gid, trans_type, status,
  protocol, query_prepared, options, custom_data, ext_data, result,
  rollback_reason, create_time, update_time, finish_time, rollback_time,
  next_cron_interval, next_cron_time, owner, retry_count, fence)sql";

const char* const kPgBranchColumns = R"sql(id, gid, url, bin_data, branch_id,
  op, status, create_time, update_time, finish_time, rollback_time, attempts,
  last_try_time, last_error)sql";

namespace {

std::string Prefixed(const char* columns, const std::string& prefix) {
  std::string out;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    if (!out.empty()) out += ", ";
    out += prefix + word;
    word.clear();
  };
  for (const char* c = columns; *c != '\0'; ++c) {
    if (*c == ',' || std::isspace(static_cast<unsigned char>(*c))) {
      flush();
    } else {
      word += *c;
    }
  }
  flush();
  return out;
}

// kMigrations[v] takes a schema from version v to v + 1.
constexpr std::array<const char*, 2> kMigrations = {
    // 0 -> 1
    R"sql(
CREATE TABLE trans_global (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  gid TEXT COLLATE "C" NOT NULL,
  trans_type TEXT NOT NULL,
  status TEXT NOT NULL,
  query_prepared TEXT NOT NULL DEFAULT '',
  protocol TEXT NOT NULL DEFAULT 'grpc',
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  finish_time BIGINT,
  rollback_time BIGINT,
  options TEXT NOT NULL DEFAULT '',
  custom_data TEXT NOT NULL DEFAULT '',
  next_cron_interval BIGINT NOT NULL DEFAULT 0,
  next_cron_time BIGINT NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT '',
  ext_data TEXT NOT NULL DEFAULT '',
  result TEXT NOT NULL DEFAULT '',
  rollback_reason TEXT NOT NULL DEFAULT '',
  retry_count BIGINT NOT NULL DEFAULT 0,
  CONSTRAINT trans_global_gid UNIQUE (gid)
);
CREATE INDEX trans_global_due ON trans_global (next_cron_time, id)
  WHERE status IN ('prepared', 'submitted', 'aborting');
CREATE TABLE trans_branch_op (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  trans_id BIGINT NOT NULL,
  gid TEXT COLLATE "C" NOT NULL,
  url TEXT NOT NULL DEFAULT '',
  bin_data BYTEA NOT NULL DEFAULT '',
  branch_id TEXT COLLATE "C" NOT NULL,
  op TEXT NOT NULL,
  status TEXT NOT NULL,
  finish_time BIGINT,
  rollback_time BIGINT,
  create_time BIGINT NOT NULL,
  update_time BIGINT NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0,
  last_try_time BIGINT,
  last_error TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX trans_branch_op_key
  ON trans_branch_op (trans_id, branch_id, op);
CREATE TABLE dtx_journal_version (
  one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
  version BIGINT NOT NULL
);
INSERT INTO dtx_journal_version (version) VALUES (0);
)sql",
    // 1 -> 2. The fence of fenced writes (journal.h, Fence); a column with a
    // constant default is added without rewriting the table.
    R"sql(
ALTER TABLE trans_global ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
)sql",
};

static_assert(kMigrations.size() == kPgJournalSchemaVersion);

// Key of the advisory lock that serializes migrations in one database
// ("dtxj" in ASCII), with the schema's hash as the second half.
constexpr int64_t kMigrationLockKey = 0x64747A6A;

}  // namespace

std::string PgGlobalColumns(const std::string& prefix) {
  return Prefixed(kPgGlobalColumns, prefix);
}

std::string PgBranchColumns(const std::string& prefix) {
  return Prefixed(kPgBranchColumns, prefix);
}

Status ValidatePgSchemaName(const std::string& schema) {
  bool ok = !schema.empty() && schema.size() <= 63 &&
            std::isdigit(static_cast<unsigned char>(schema[0])) == 0;
  for (char c : schema) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 || (std::isalnum(u) == 0 && c != '_')) ok = false;
  }
  if (ok) return Status::Ok();
  return InvalidArgumentError(
      "journal: postgres: schema '" + schema +
      "' is not a plain identifier (letters, digits and '_', not starting "
      "with a digit, at most 63 bytes)");
}

Status MigratePgSchema(PgConn& conn, const std::string& schema,
                       Logger& logger) {
  const std::string where = "schema " + schema;
  auto not_a_journal = [&](const std::string& why) {
    return FailedPreconditionError("journal: postgres " + conn.target() +
                                   ": schema " + schema + " " + why);
  };
  PgParams name;
  name.Text(schema);
  // The common case first, without a lock or a transaction: the journal is
  // there and up to date.
  DTX_ASSIGN_OR_RETURN(
      PgResult table,
      conn.Exec("SELECT (pg_catalog.to_regclass(pg_catalog.quote_ident($1) || "
                "'.dtx_journal_version') IS NOT NULL)::int::bigint",
                name, "look for the journal in " + where));
  if (table.Int(0, 0) == 1) {
    DTX_ASSIGN_OR_RETURN(PgResult v,
                         conn.Exec("SELECT version FROM dtx_journal_version",
                                   "read the schema version"));
    if (v.rows() == 1 && v.Int(0, 0) == kPgJournalSchemaVersion)
      return Status::Ok();
  }

  DTX_RETURN_IF_ERROR(conn.Exec("BEGIN", "begin migration").status());
  auto fail = [&conn](Status s) {
    if (conn.ok()) conn.Exec("ROLLBACK", "rollback migration").IgnoreError();
    return s;
  };
  PgParams lock;
  lock.Int(kMigrationLockKey).Text(schema);
  auto locked = conn.Exec(
      "SELECT pg_catalog.pg_advisory_xact_lock($1::bigint # "
      "pg_catalog.hashtext($2)::bigint)",
      lock, "lock for migration");
  if (!locked.ok()) return fail(locked.status());

  auto exists = conn.Exec(
      "SELECT (SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = "
      "$1),"
      " (SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = $1 AND"
      "  tablename IN ('trans_global', 'trans_branch_op')),"
      " (SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = $1 AND"
      "  tablename = 'dtx_journal_version')",
      name, "inspect " + where);
  if (!exists.ok()) return fail(exists.status());
  const bool have_schema = exists->Int(0, 0) > 0;
  const bool have_tables = exists->Int(0, 1) > 0;
  const bool have_version = exists->Int(0, 2) > 0;
  int64_t version = 0;
  if (!have_schema) {
    auto created =
        conn.Exec("CREATE SCHEMA \"" + schema + "\"", "create " + where);
    if (!created.ok()) return fail(created.status());
  } else if (have_version) {
    auto v = conn.Exec("SELECT version FROM dtx_journal_version",
                       "read the schema version");
    if (!v.ok()) return fail(v.status());
    if (v->rows() != 1) {
      return fail(not_a_journal("has a damaged dtx_journal_version table"));
    }
    version = v->Int(0, 0);
  } else if (have_tables) {
    return fail(not_a_journal(
        "has trans_global or trans_branch_op tables that are not a dtx "
        "journal's (dtm's own tables?); give dtx a schema of its own"));
  }
  if (version > kPgJournalSchemaVersion) {
    return fail(not_a_journal("was written by a newer dtx (schema version " +
                              std::to_string(version) +
                              ", this build knows up to " +
                              std::to_string(kPgJournalSchemaVersion) + ")"));
  }
  if (version == kPgJournalSchemaVersion) {
    // Another coordinator migrated it meanwhile, or it was up to date.
    auto done = conn.Exec("COMMIT", "commit");
    return done.ok() ? Status::Ok() : done.status();
  }
  if (version > 0) {
    DTX_LOG(&logger, LogLevel::kWarn,
            "journal: postgres " << conn.target() << ": " << where
                                 << ": migrating from schema version "
                                 << version << " to "
                                 << kPgJournalSchemaVersion);
  }
  for (int64_t v = version; v < kPgJournalSchemaVersion; ++v) {
    auto s =
        conn.ExecSimple(kMigrations[static_cast<std::size_t>(v)],
                        "migration to schema version " + std::to_string(v + 1));
    if (!s.ok()) return fail(s.status());
  }
  PgParams to;
  to.Int(kPgJournalSchemaVersion);
  auto stamped = conn.Exec("UPDATE dtx_journal_version SET version = $1", to,
                           "write the schema version");
  if (!stamped.ok()) return fail(stamped.status());
  auto done = conn.Exec("COMMIT", "commit migration");
  if (!done.ok()) return fail(done.status());
  DTX_LOG(&logger, LogLevel::kInfo,
          "journal: postgres " << conn.target() << ": " << where
                               << " at schema version "
                               << kPgJournalSchemaVersion);
  return Status::Ok();
}

}  // namespace dtx::internal
