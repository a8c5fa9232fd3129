// ReadDtmPostgres: dtm's trans_global and trans_branch_op rows from a dtm
// PostgreSQL store, through the journal's libpq wrapper (PgConn: binary
// results, so that bin_data comes back as its bytes). The columns are looked
// up first, so that the stores of older dtm versions (without ext_data,
// result or rollback_reason) read too, and so that a schema without dtm's
// tables, or with dtx's own, is named as such before anything is read.

#include "dtm_import.h"
#include "postgres_conn.h"

#include <cctype>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace dtx::dtxctl {
namespace {

using internal::PgConn;
using internal::PgParams;
using internal::PgResult;

constexpr int64_t kPage = 500;

Status Prefixed(const Status& s) {
  if (s.ok()) return s;
  std::string message = s.message();
  // PgConn names itself "journal: postgres"; here it is dtm's store.
  const std::string journal = "journal: postgres";
  if (message.rfind(journal, 0) == 0) message.erase(0, journal.size());
  if (!message.empty() && (message[0] == ':' || message[0] == ' '))
    message.erase(0, message[0] == ':' ? 1 : 0);
  while (!message.empty() && message[0] == ' ') message.erase(0, 1);
  return Status(s.code(), "import-dtm: dtm's store: " + message);
}

bool PlainIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return !std::isdigit(static_cast<unsigned char>(s[0]));
}

// Milliseconds since the epoch of a timestamp column, or NULL.
std::string Ms(const std::set<std::string>& columns, const std::string& table,
               const std::string& column) {
  if (columns.count(column) == 0) return "NULL::bigint";
  return "(floor(extract(epoch from " + table + "." + column +
         ") * 1000))::bigint";
}

std::string TextOr(const std::set<std::string>& columns,
                   const std::string& column) {
  if (columns.count(column) == 0) return "''::text";
  return "coalesce(" + column + "::text, '')";
}

std::optional<std::string> OptText(const PgResult& r, int row, int col) {
  if (r.IsNull(row, col)) return std::nullopt;
  return r.Text(row, col);
}

}  // namespace

Status ReadDtmPostgres(const DtmSource& source,
                       const std::function<Status(DtmTransRow)>& each) {
  if (!PlainIdentifier(source.schema)) {
    return InvalidArgumentError(
        "import-dtm: --schema '" + source.schema +
        "' is not a plain identifier (letters, digits and '_')");
  }
  PgConn::Options o;
  o.conninfo = source.conninfo;
  o.schema = source.schema;
  o.application_name = "dtxctl import-dtm";
  o.connect_timeout = source.connect_timeout;
  auto connected = PgConn::Connect(o);
  if (!connected.ok()) {
    Status s = Prefixed(connected.status());
    // libpq parses the conninfo before it connects: "invalid integer value
    // ... for connection option \"port\"", "invalid URI query parameter",
    // ... are the caller's mistake, not an unreachable server.
    if (s.code() == StatusCode::kUnavailable &&
        s.message().find(": invalid ") != std::string::npos) {
      return InvalidArgumentError(s.message());
    }
    return s;
  }
  PgConn& conn = **connected;

  PgParams schema_param;
  schema_param.Text(source.schema);
  auto ns = conn.Exec(
      "SELECT count(*)::bigint FROM pg_catalog.pg_namespace WHERE nspname = $1",
      schema_param, "find the schema");
  if (!ns.ok()) return Prefixed(ns.status());

  // Schemas of this database that hold a trans_global, for the messages.
  auto elsewhere = [&]() -> std::string {
    auto r = conn.Exec(
        "SELECT string_agg(table_schema::text, ', ' ORDER BY table_schema) "
        "FROM information_schema.tables WHERE table_name = 'trans_global'",
        "find dtm's tables");
    if (!r.ok() || r->rows() == 0 || r->IsNull(0, 0)) return "";
    return " (schemas with a trans_global table: " + r->Text(0, 0) +
           "; pass one with --schema)";
  };
  if (ns->Int(0, 0) == 0) {
    return NotFoundError("import-dtm: dtm's store " + conn.target() +
                         ": schema '" + source.schema + "' does not exist" +
                         elsewhere());
  }

  auto cols = conn.Exec(
      "SELECT table_name::text, column_name::text, data_type::text "
      "FROM information_schema.columns WHERE table_schema = $1 AND "
      "table_name IN ('trans_global', 'trans_branch_op')",
      schema_param, "read dtm's columns");
  if (!cols.ok()) return Prefixed(cols.status());
  std::map<std::string, std::set<std::string>> columns;
  std::map<std::string, std::string> types;
  for (int i = 0; i < cols->rows(); ++i) {
    columns[cols->Text(i, 0)].insert(cols->Text(i, 1));
    types[cols->Text(i, 0) + "." + cols->Text(i, 1)] = cols->Text(i, 2);
  }
  for (const char* table : {"trans_global", "trans_branch_op"}) {
    if (columns.count(table) == 0) {
      return NotFoundError("import-dtm: dtm's store " + conn.target() +
                           ": schema '" + source.schema + "' has no table " +
                           table + elsewhere());
    }
  }
  const auto& g = columns["trans_global"];
  const auto& b = columns["trans_branch_op"];
  for (const char* c : {"id", "gid", "trans_type", "status", "query_prepared",
                        "protocol", "create_time", "options", "custom_data",
                        "next_cron_interval", "next_cron_time"}) {
    if (g.count(c) == 0) {
      return FailedPreconditionError(
          "import-dtm: " + source.schema +
          ".trans_global is not dtm's table: it has no column " + c);
    }
  }
  for (const char* c :
       {"id", "gid", "url", "bin_data", "branch_id", "op", "status"}) {
    if (b.count(c) == 0) {
      return FailedPreconditionError(
          "import-dtm: " + source.schema +
          ".trans_branch_op is not dtm's table: it has no column " + c);
    }
  }
  const std::string& ct = types["trans_global.create_time"];
  if (ct.rfind("timestamp", 0) != 0) {
    return FailedPreconditionError(
        "import-dtm: " + source.schema +
        ".trans_global is not dtm's table: its create_time is " + ct +
        ", not a timestamp (a dtx journal?)");
  }

  const std::string filter =
      source.all ? "" : " AND status IN ('prepared', 'submitted', 'aborting')";
  const std::string trans_sql =
      "SELECT id::bigint, gid::text, trans_type::text, status::text, "
      "coalesce(query_prepared::text, ''), coalesce(protocol::text, ''), " +
      TextOr(g, "options") + ", " + TextOr(g, "custom_data") + ", " +
      TextOr(g, "ext_data") + ", " + TextOr(g, "result") + ", " +
      TextOr(g, "rollback_reason") + ", " +
      Ms(g, "trans_global", "create_time") + ", " +
      Ms(g, "trans_global", "update_time") + ", " +
      Ms(g, "trans_global", "finish_time") + ", " +
      Ms(g, "trans_global", "rollback_time") + ", " +
      Ms(g, "trans_global", "next_cron_time") +
      ", next_cron_interval::bigint FROM trans_global WHERE id > $1" + filter +
      " ORDER BY id LIMIT " + std::to_string(kPage);
  const std::string branch_sql =
      "SELECT gid::text, id::bigint, coalesce(url::text, ''), bin_data, "
      "branch_id::text, op::text, status::text, " +
      Ms(b, "trans_branch_op", "create_time") + ", " +
      Ms(b, "trans_branch_op", "update_time") + ", " +
      Ms(b, "trans_branch_op", "finish_time") + ", " +
      Ms(b, "trans_branch_op", "rollback_time") +
      " FROM trans_branch_op WHERE gid IN (SELECT gid FROM trans_global "
      "WHERE id > $1 AND id <= $2" +
      filter + ") ORDER BY id";

  // One snapshot for every page, so that a transaction and its branch rows
  // are read as of the same moment even while dtm still writes.
  auto begin = conn.ExecSimple(
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "begin");
  if (!begin.ok()) return Prefixed(begin.status());
  int64_t after = 0;
  Status status;
  for (;;) {
    PgParams page_params;
    page_params.Int(after);
    auto trans = conn.Exec(trans_sql, page_params, "read trans_global");
    if (!trans.ok()) {
      status = Prefixed(trans.status());
      break;
    }
    if (trans->rows() == 0) break;
    const int64_t last = trans->Int(trans->rows() - 1, 0);
    PgParams branch_params;
    branch_params.Int(after).Int(last);
    auto branches =
        conn.Exec(branch_sql, branch_params, "read trans_branch_op");
    if (!branches.ok()) {
      status = Prefixed(branches.status());
      break;
    }
    std::map<std::string, std::vector<DtmBranchRow>> by_gid;
    for (int i = 0; i < branches->rows(); ++i) {
      DtmBranchRow r;
      r.id = branches->Int(i, 1);
      r.url = branches->Text(i, 2);
      r.bin_data = OptText(*branches, i, 3);
      r.branch_id = branches->Text(i, 4);
      r.op = branches->Text(i, 5);
      r.status = branches->Text(i, 6);
      r.create_time_ms = branches->OptInt(i, 7);
      r.update_time_ms = branches->OptInt(i, 8);
      r.finish_time_ms = branches->OptInt(i, 9);
      r.rollback_time_ms = branches->OptInt(i, 10);
      by_gid[branches->Text(i, 0)].push_back(std::move(r));
    }
    for (int i = 0; i < trans->rows() && status.ok(); ++i) {
      DtmTransRow t;
      t.id = trans->Int(i, 0);
      t.gid = trans->Text(i, 1);
      t.trans_type = trans->Text(i, 2);
      t.status = trans->Text(i, 3);
      t.query_prepared = trans->Text(i, 4);
      t.protocol = trans->Text(i, 5);
      t.options = trans->Text(i, 6);
      t.custom_data = trans->Text(i, 7);
      t.ext_data = trans->Text(i, 8);
      t.result = trans->Text(i, 9);
      t.rollback_reason = trans->Text(i, 10);
      t.create_time_ms = trans->OptInt(i, 11);
      t.update_time_ms = trans->OptInt(i, 12);
      t.finish_time_ms = trans->OptInt(i, 13);
      t.rollback_time_ms = trans->OptInt(i, 14);
      t.next_cron_time_ms = trans->OptInt(i, 15);
      t.next_cron_interval = trans->OptInt(i, 16);
      auto it = by_gid.find(t.gid);
      if (it != by_gid.end()) t.branches = std::move(it->second);
      status = each(std::move(t));
    }
    if (!status.ok() || trans->rows() < kPage) break;
    after = last;
  }
  conn.ExecSimple("ROLLBACK", "end").status().IgnoreError();
  return status;
}

}  // namespace dtx::dtxctl
