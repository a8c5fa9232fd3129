// OpenImportJournal: SqliteJournal or PostgresJournal, by the form of --to.

#include "import_journal.h"

#include "dtx/storage/sqlite_journal.h"
#ifdef DTXCTL_HAVE_POSTGRES
#include "dtx/storage/postgres_journal.h"
#endif

#include <sys/stat.h>

namespace dtx::dtxctl {

bool IsPostgresTarget(const std::string& to) {
  return to.rfind("postgres://", 0) == 0 || to.rfind("postgresql://", 0) == 0 ||
         to.find('=') != std::string::npos;
}

Result<std::unique_ptr<Journal>> OpenImportJournal(const ImportTarget& target) {
  if (target.to.empty()) return InvalidArgumentError("import-dtm: empty --to");
  if (IsPostgresTarget(target.to)) {
    if (target.dry_run) return std::unique_ptr<Journal>();
#ifndef DTXCTL_HAVE_POSTGRES
    return UnimplementedError(
        "import-dtm: this dtxctl was built without PostgreSQL (libpq)");
#else
    PostgresJournalOptions o;
    o.conninfo = target.to;
    o.schema = target.schema;
    o.connect_timeout = target.connect_timeout;
    auto journal = PostgresJournal::Open(o);
    if (!journal.ok()) return journal.status().WithPrefix("import-dtm: --to");
    return std::unique_ptr<Journal>(std::move(journal).value());
#endif
  }
  SqliteJournalOptions o;
  o.path = target.to;
  o.busy_timeout = std::chrono::milliseconds(5000);
  if (target.dry_run) {
    struct stat st;
    if (::stat(target.to.c_str(), &st) != 0) return std::unique_ptr<Journal>();
    o.read_only = true;
  }
  auto journal = SqliteJournal::Open(o);
  if (!journal.ok()) return journal.status().WithPrefix("import-dtm: --to");
  return std::unique_ptr<Journal>(std::move(journal).value());
}

}  // namespace dtx::dtxctl
