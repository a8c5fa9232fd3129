// The PostgreSQL journal's schema and its versioned migrations. See
// postgres_schema.cc for the tables.

#ifndef DTX_STORAGE_POSTGRES_SCHEMA_H_
#define DTX_STORAGE_POSTGRES_SCHEMA_H_

#include "dtx/logger.h"
#include "dtx/status.h"

#include "postgres_conn.h"

#include <cstdint>
#include <string>

namespace dtx::internal {

// The version this build writes (dtx_journal_version.version).
inline constexpr int64_t kPgJournalSchemaVersion = 2;

// kInvalidArgument unless `schema` is a plain identifier (letters, digits,
// '_', not starting with a digit, at most 63 bytes): it is used quoted, and a
// name that needs quoting is more likely a typo than a choice.
Status ValidatePgSchemaName(const std::string& schema);

// Brings `schema` (the search_path of `conn`) to kPgJournalSchemaVersion,
// creating the schema and its tables when absent, in one transaction under
// an advisory lock, so that coordinators opening one database at once
// migrate it once. kFailedPrecondition for a schema holding tables of the
// same names that are not a dtx journal's (dtm's own, say) or a journal of a
// newer dtx.
Status MigratePgSchema(PgConn& conn, const std::string& schema, Logger& logger);

// The columns of trans_global in the order the journal reads them, and the
// same prefixed with "g.".
extern const char* const kPgGlobalColumns;
std::string PgGlobalColumns(const std::string& prefix);
inline constexpr int kPgGlobalColumnCount = 20;
// The columns of trans_branch_op in the order the journal reads them.
extern const char* const kPgBranchColumns;
std::string PgBranchColumns(const std::string& prefix);

}  // namespace dtx::internal

#endif  // DTX_STORAGE_POSTGRES_SCHEMA_H_
