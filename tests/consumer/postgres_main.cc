// Builds against the installed package's dtx::postgres and runs without a
// server: an empty connection string (the journal) and a bad table name (the
// barrier) are refused before any connection.

#include "dtx/storage/postgres_barrier.h"
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
  dtx::PostgresBarrierOptions barrier_options;
  barrier_options.table = "no such table";
  auto barrier = dtx::PostgresBarrier::Open(barrier_options);
  if (barrier.ok() ||
      barrier.status().code() != dtx::StatusCode::kInvalidArgument) {
    std::fprintf(stderr, "unexpected: %s\n",
                 barrier.status().ToString().c_str());
    return 1;
  }
  std::printf("dtx::postgres: %s\n", barrier.status().ToString().c_str());
  return 0;
}
