// A throwaway PostgreSQL for tests: scripts/start-postgres.sh (Debian's
// postgresql package, a free port of 127.0.0.1, its data in a temporary
// directory, fsync on), stopped when the object dies or the test process
// exits.
//
// Without PostgreSQL installed, Start returns kUnavailable. The test macro
// below then skips the test, except under CI=true, where it fails it.
//
//   PostgresServer* pg = RequirePostgres();  // skips or fails when none
//   if (pg == nullptr) return;
//   options.conninfo = pg->conninfo();
//   options.schema = FreshPostgresSchema();        // one per test
//
// Thread safety: thread-compatible.

#ifndef DTX_TESTS_TESTING_POSTGRES_SERVER_H_
#define DTX_TESTS_TESTING_POSTGRES_SERVER_H_

#include "dtx/result.h"
#include "dtx/status.h"

#include "subprocess.h"
#include "temp_dir.h"

#include <memory>
#include <optional>
#include <string>

namespace dtx::testing {

class PostgresServer {
 public:
  // Starts a server (initdb on first use of its directory). kUnavailable
  // when PostgreSQL is not installed or does not start.
  static Result<std::unique_ptr<PostgresServer>> Start();
  // Stops the server and removes its data.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // "postgresql://dtx@127.0.0.1:<port>/dtx": the superuser `dtx` (trusted on
  // loopback), database `dtx`.
  const std::string& url() const { return url_; }
  // The same as libpq keywords: "host=127.0.0.1 port=<port> user=dtx
  // dbname=dtx".
  std::string conninfo() const;
  int port() const { return port_; }

  // Stops the server (a fast shutdown: open connections are cut).
  void Stop();
  // Starts it again on the same port and data, after Stop.
  Status StartAgain();

 private:
  PostgresServer() = default;
  Status Launch();

  TempDir dir_;
  int port_ = 0;
  std::string url_;
  std::optional<Subprocess> script_;
};

// The server shared by every test of this process, started on first use and
// stopped at exit. Null with *why set when there is none.
PostgresServer* SharedPostgres(Status* why);

// Whether SharedPostgres was asked for a server and had none.
bool PostgresWasMissing();

// A schema name no other test of this run uses ("t_<pid>_<n>").
std::string FreshPostgresSchema();

// The shared server, or null after recording why: a skip locally, a fatal
// failure under CI=true. Call it in a test body or SetUp (gtest runs no test
// body after a skip or a fatal failure in SetUp) and return when it is null.
PostgresServer* RequirePostgres();

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_POSTGRES_SERVER_H_
