// Builds against the installed package's dtx::postgres and runs without a
// server: an empty connection string is refused before any connection.

#include "dtx/storage/postgres_journal.h"

#include <cstdio>

int main() {
  dtx::PostgresJournalOptions options;
  auto journal = dtx::PostgresJournal::Open(options);
  if (journal.ok() ||
      journal.status().code() != dtx::StatusCode::kInvalidArgument) {
    std::fprintf(stderr, "unexpected: %s\n",
                 journal.status().ToString().c_str());
    return 1;
  }
  std::printf("dtx::postgres: %s\n", journal.status().ToString().c_str());
  return 0;
}
