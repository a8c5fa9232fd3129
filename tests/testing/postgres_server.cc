#include "postgres_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <unistd.h>

namespace dtx::testing {
namespace {

#ifndef DTX_START_POSTGRES_SCRIPT
#error "DTX_START_POSTGRES_SCRIPT must name scripts/start-postgres.sh"
#endif

bool PostgresInstalled() {
  // What the script looks for: a server and initdb of some major version.
  for (int v = 10; v <= 30; ++v) {
    const std::string bin =
        "/usr/lib/postgresql/" + std::to_string(v) + "/bin/";
    if (access((bin + "postgres").c_str(), X_OK) == 0 &&
        access((bin + "initdb").c_str(), X_OK) == 0)
      return true;
  }
  return false;
}

// The value of `key=` in the script's line, or "".
std::string Field(const std::string& line, const std::string& key) {
  const std::string needle = " " + key + "=";
  const std::size_t at = line.find(needle);
  if (at == std::string::npos) return "";
  const std::size_t from = at + needle.size();
  const std::size_t to = line.find(' ', from);
  return line.substr(from,
                     to == std::string::npos ? std::string::npos : to - from);
}

}  // namespace

Result<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  if (!PostgresInstalled()) {
    return UnavailableError(
        "PostgreSQL is not installed (scripts/setup.sh installs postgresql)");
  }
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  DTX_RETURN_IF_ERROR(server->Launch());
  return server;
}

Status PostgresServer::Launch() {
  std::vector<std::string> argv = {DTX_START_POSTGRES_SCRIPT, "--dir",
                                   dir_.File("pg"), "--stop-on-eof"};
  if (port_ != 0) {
    argv.push_back("--port");
    argv.push_back(std::to_string(port_));
  }
  DTX_ASSIGN_OR_RETURN(Subprocess p, Subprocess::Start(argv));
  script_.emplace(std::move(p));
  // initdb and a first start take a few seconds on a loaded machine.
  const std::optional<std::string> line =
      script_->ReadLine(std::chrono::seconds(120));
  if (!line || line->rfind("postgres ", 0) != 0) {
    const int rc = script_->Wait();
    script_.reset();
    return UnavailableError(
        "scripts/start-postgres.sh did not start PostgreSQL (exit " +
        std::to_string(rc) + "; its errors are above)");
  }
  url_ = Field(*line, "url");
  port_ = std::atoi(Field(*line, "port").c_str());
  if (url_.empty() || port_ <= 0) {
    return InternalError(
        "scripts/start-postgres.sh printed an unexpected line: " + *line);
  }
  return Status::Ok();
}

std::string PostgresServer::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) +
         " user=dtx dbname=dtx";
}

void PostgresServer::Stop() {
  if (!script_) return;
  // The script stops the server (fast shutdown) on SIGTERM and then exits.
  script_->Kill(SIGTERM);
  script_->Wait();
  script_.reset();
}

Status PostgresServer::StartAgain() {
  Stop();
  return Launch();
}

PostgresServer::~PostgresServer() { Stop(); }

namespace {

struct Shared {
  std::mutex mu;
  std::unique_ptr<PostgresServer> server;
  Status failure;
  bool tried = false;
};

Shared& TheShared() {
  static Shared* const shared = new Shared();
  return *shared;
}

// Stops the shared server at exit (a leaked Shared would leave it running
// until its script sees stdin close).
struct StopAtExit {
  ~StopAtExit() {
    Shared& s = TheShared();
    std::lock_guard<std::mutex> lock(s.mu);
    s.server.reset();
  }
} stop_at_exit;

}  // namespace

PostgresServer* SharedPostgres(Status* why) {
  Shared& s = TheShared();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.tried) {
    s.tried = true;
    auto started = PostgresServer::Start();
    if (started.ok()) {
      s.server = std::move(started).value();
    } else {
      s.failure = started.status();
    }
  }
  if (s.server == nullptr && why != nullptr) *why = s.failure;
  return s.server.get();
}

bool PostgresWasMissing() {
  Shared& s = TheShared();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.tried && s.server == nullptr;
}

std::string FreshPostgresSchema() {
  static std::atomic<int> next{0};
  return "t_" + std::to_string(getpid()) + "_" + std::to_string(++next);
}

PostgresServer* RequirePostgres() {
  Status why;
  PostgresServer* pg = SharedPostgres(&why);
  if (pg != nullptr) return pg;
  if (std::getenv("CI") != nullptr) {
    GTEST_MESSAGE_(
        ("PostgreSQL is required under CI=true: " + why.ToString()).c_str(),
        ::testing::TestPartResult::kFatalFailure);
  } else {
    GTEST_MESSAGE_(("skipped: " + why.ToString()).c_str(),
                   ::testing::TestPartResult::kSkip);
  }
  return nullptr;
}

}  // namespace dtx::testing
