// `dtxctl import-dtm`: moving a dtm deployment to dtx with work in flight.
// Reads the transactions of dtm's relational store (its trans_global and
// trans_branch_op tables, ../shared/reference/dtm-semantics.md §3.1) and
// writes each into a dtx journal with Journal::SaveNew, the transaction and
// its branch rows in one atomic write: one is imported whole or not at all,
// and one whose gid the journal holds already is left as it is (a re-run
// imports nothing twice). docs/migrating-from-dtm.md is the manual; it lists
// the mapping of every column.
//
// The mapping (MapDtmTrans) is a pure function of the rows, so that unit
// tests check it without a database; ReadDtmPostgres reads the rows from a
// dtm PostgreSQL store in one read-only snapshot.
//
// Thread safety: plain functions and values; thread-compatible.

#ifndef DTX_TOOLS_DTXCTL_DTM_IMPORT_H_
#define DTX_TOOLS_DTXCTL_DTM_IMPORT_H_

#include "dtx/journal.h"
#include "dtx/model.h"
#include "dtx/result.h"
#include "dtx/status.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace dtx::dtxctl {

// One row of dtm's trans_branch_op, as read (times in ms since the epoch).
struct DtmBranchRow {
  int64_t id = 0;
  std::string url;
  std::optional<std::string> bin_data;  // bytea; NULL stays unset
  std::string branch_id;
  std::string op;
  std::string status;
  std::optional<int64_t> create_time_ms, update_time_ms, finish_time_ms,
      rollback_time_ms;
};

// One row of dtm's trans_global with its branch rows in id order. Columns an
// older dtm lacks (ext_data, result, rollback_reason) read as empty.
struct DtmTransRow {
  int64_t id = 0;
  std::string gid;
  std::string trans_type;
  std::string status;
  std::string query_prepared;
  std::string protocol;
  std::string options;
  std::string custom_data;
  std::string ext_data;
  std::string result;
  std::string rollback_reason;
  std::optional<int64_t> create_time_ms, update_time_ms, finish_time_ms,
      rollback_time_ms, next_cron_time_ms;
  std::optional<int64_t> next_cron_interval;  // seconds
  std::vector<DtmBranchRow> branches;
};

struct MapOptions {
  // Set: every imported transaction is due at this time (--due-now) instead
  // of when dtm scheduled it.
  std::optional<TimePoint> due_at;
  // What a NULL next_cron_time or create_time becomes (the time of the
  // import).
  TimePoint now{};
  // dtm's back-off has no cap, so a branch that failed for long may be due
  // days from now; dtx caps it (RetryPolicy::max_interval, dtx-server's
  // RetryIntervalMax, one hour by default). Positive: next_cron_time is at
  // most now + max_delay and next_cron_interval at most max_delay. Zero:
  // dtm's schedule as it is (--max-delay 0).
  std::chrono::seconds max_delay{3600};
};

// dtm's rows as a dtx transaction, or kInvalidArgument / kUnimplemented
// naming why dtx cannot take it over (an xa or workflow transaction, a
// json-rpc one, an unknown status or op, malformed options, saga rows that
// are not compensate/action pairs).
Result<TransWithBranches> MapDtmTrans(const DtmTransRow& row,
                                      const MapOptions& options);

// Where dtm's store is and what to read from it.
struct DtmSource {
  std::string conninfo;  // libpq conninfo or postgres[ql]:// URI
  std::string schema = "dtm";
  // False: only unfinished transactions (prepared, submitted, aborting).
  bool all = false;
  std::chrono::milliseconds connect_timeout{5000};
};

// Calls `each` with every selected transaction of dtm's store, in
// trans_global id order, all read in one REPEATABLE READ READ ONLY
// transaction (a consistent snapshot while dtm is still running). Stops at
// the first error `each` returns and returns it. kInvalidArgument for a
// malformed conninfo, kUnavailable for an unreachable server,
// kPermissionDenied for a refused login, kNotFound for a missing database,
// schema or table, kFailedPrecondition for tables that are not dtm's.
Status ReadDtmPostgres(const DtmSource& source,
                       const std::function<Status(DtmTransRow)>& each);

// What an import did.
struct ImportSummary {
  int64_t read = 0;
  int64_t imported = 0;  // (with --dry-run: would be)
  int64_t present = 0;   // skipped: the journal holds the gid already
  int64_t refused = 0;   // dtx cannot take them over; reasons printed
};

struct ImportOptions {
  DtmSource source;
  MapOptions map;
  bool dry_run = false;
  // Progress lines every this many transactions read (0: none).
  int64_t progress_every = 100;
  // Opens the destination journal; called once, when the first transaction
  // that maps is met, so that a failure to read dtm's store (or nothing to
  // import) creates no journal. It may return null with dry_run: nothing is
  // then checked against a journal.
  std::function<Result<Journal*>()> open_journal;
};

// Reads dtm's store and writes what it maps into the journal. Prints one line
// per refused transaction and per `progress_every` read to `out`, and with
// dry_run one line per transaction it would import. Returns the first error
// of reading or of writing (other than kAlreadyExists and a refused
// transaction's kInvalidArgument); `summary` counts what was done until
// then.
Status ImportDtm(const ImportOptions& options, std::ostream& out,
                 ImportSummary* summary);

}  // namespace dtx::dtxctl

#endif  // DTX_TOOLS_DTXCTL_DTM_IMPORT_H_
