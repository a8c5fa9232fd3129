// The journal's schema and its migrations. See schema.cc for the tables.

#ifndef DTX_STORAGE_SCHEMA_H_
#define DTX_STORAGE_SCHEMA_H_

#include "dtx/logger.h"
#include "dtx/status.h"

#include "sqlite_handle.h"

#include <cstdint>

namespace dtx::internal {

// PRAGMA application_id of every dtx journal: "dtx1" in ASCII.
inline constexpr int64_t kJournalApplicationId = 0x64747831;
// PRAGMA user_version written by this build.
inline constexpr int64_t kJournalSchemaVersion = 5;

// Brings the database behind `db` to kJournalSchemaVersion, creating it when
// empty, in one transaction: an error leaves the file as it was. A migration
// of an existing journal is logged. kFailedPrecondition for a database that is
// not a dtx journal or is newer than this build.
Status MigrateSchema(Db& db, Logger& logger);

// Checks, without writing, that the database behind `db` is a dtx journal at
// kJournalSchemaVersion (for a read-only open). kFailedPrecondition for an
// empty database, another application's, an older or a newer journal.
Status CheckSchema(Db& db);

// The columns of trans_global in the order the journal reads them.
extern const char* const kGlobalColumns;
// The columns of trans_branch_op in the order the journal reads them.
extern const char* const kBranchColumns;

}  // namespace dtx::internal

#endif  // DTX_STORAGE_SCHEMA_H_
