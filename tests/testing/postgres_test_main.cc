// main() of the test binaries that need a PostgreSQL (postgres_server.h):
// exits 77 (ctest's SKIP_RETURN_CODE) when PostgreSQL was missing and the
// tests were skipped, so that a skip is not counted as a pass; under CI=true
// a missing PostgreSQL fails them instead.

#include "postgres_server.h"

#include <gtest/gtest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (rc == 0 && std::getenv("CI") == nullptr &&
      dtx::testing::PostgresWasMissing()) {
    return 77;
  }
  return rc;
}
