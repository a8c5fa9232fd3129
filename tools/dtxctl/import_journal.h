// The journal `dtxctl import-dtm --to` names: a SQLite file, or a PostgreSQL
// database (a conninfo with '=' or a postgres[ql]:// URI) and schema.
//
// Thread safety: a plain function.

#ifndef DTX_TOOLS_DTXCTL_IMPORT_JOURNAL_H_
#define DTX_TOOLS_DTXCTL_IMPORT_JOURNAL_H_

#include "dtx/journal.h"
#include "dtx/result.h"

#include <chrono>
#include <memory>
#include <string>

namespace dtx::dtxctl {

struct ImportTarget {
  std::string to;
  std::string schema = "public";  // a PostgreSQL journal's
  // Opens nothing that does not exist and writes nothing: a SQLite file is
  // opened read-only when it exists (null when it does not), a PostgreSQL
  // journal not at all (null).
  bool dry_run = false;
  std::chrono::milliseconds connect_timeout{5000};
};

// True when `to` names a PostgreSQL database rather than a file.
bool IsPostgresTarget(const std::string& to);

// The journal, created when missing (not with dry_run). The journals' own
// Open errors: kInvalidArgument, kUnavailable, kFailedPrecondition (not a
// dtx journal of this version, or dtm's own schema), ... kUnimplemented for
// a PostgreSQL target in a dtxctl built without PostgreSQL.
Result<std::unique_ptr<Journal>> OpenImportJournal(const ImportTarget& target);

}  // namespace dtx::dtxctl

#endif  // DTX_TOOLS_DTXCTL_IMPORT_JOURNAL_H_
