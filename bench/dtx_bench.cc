// dtx_bench: transactions per second of the embedded coordinator, against the
// zero-overhead plan of the same transactions.
//
// The branch service (dtx_echo_server, dtx.test.Busi/Echo for every branch)
// runs in another process; the journal is SQLite with synchronous=FULL. Closed
// loops of 1, 16 and 64 transactions in flight (a thread each) run
//   tcc         TccGlobalTransaction with 2 branches, WaitResult
//   saga        a 2-step saga, WaitResult
//   msg         a 2-step message submitted directly, WaitResult
//   saga_empty  a 2-step saga with empty URLs (dtm's benchEmptyUrl):
//               coordinator and journal only
//   http_saga   saga with HTTP branches (http://, dtm's HTTP calls)
//   http_tcc    tcc with HTTP branches
// and, in the same run, each scenario's baseline: the same
// journal writes (durable where dtx waits, queued where dtx does not) and the
// same gRPC calls (a generated stub with dtm's metadata), in the same order,
// with no coordinator in between (docs/architecture.md, "Minimum durable
// points"). saga_empty is also compared with the single-commit SQLite rate (one
// row per FULL commit, one writer).
//
// With --server PATH the same loops also run through GrpcDtmClient against a
// dtx-server process (FULL journal, same io threads): the "server" rows. Their
// baseline, the "relay" rows, is the same client against dtx_dtm_relay, a bare
// gRPC server that receives the same dtmgimp requests and makes the same
// journal writes and branch calls (the same plan, journal_plan.h) with no
// coordinator: the same client-to-coordinator round trips on both sides.
// With --poll-http too, the saga loop at the most in flight also runs on one
// dtx-server in alternating rounds with and without a poller that GETs what
// the web console polls, once a second (kConsolePolls): the cost of serving
// metrics and the console to the engine, as server_saga_<n>_polled.
// The http_ scenarios' server rows go through dtx-server's HTTP API
// (HttpDtmClient, dtmcli's requests) and their relay rows through the
// relay's HTTP front (dtx_dtm_relay --http), which makes the same HTTP
// branch calls: HTTP end to end on both sides.
// Then slow_branch: 5,000 (--slow-sagas) WaitResult sagas whose branch
// answers after 1 s, all in flight at once on one dtx-server, while NewGid
// and a saga with an immediate branch run one at a time; their p50 and p99
// under that load against the same calls on the idle server.
//
// With --journal postgres every embedded scenario runs on PostgresJournal
// instead: on the server --pg-conninfo names, or on a throwaway PostgreSQL
// that dtx_bench starts itself (scripts/start-postgres.sh, fsync on) and
// stops at exit. Each run (each round of dtx, and each of its baseline) gets
// a fresh schema, dropped after. The baseline makes the same writes through
// PostgresJournal with no coordinator; saga_empty at the most in flight is
// also compared with PostgreSQL's own single-commit rate: one autocommit
// INSERT at a time on one connection (the ratio, as SQLite's: the store's
// floor for one writer) and, printed beside it, the same with as many
// clients as transactions in flight, each its own connection (what a client
// gets from PostgreSQL's own grouping of concurrent WAL flushes).
// --coordinators 1,2,4 runs the series with N coordinators (each its own
// Coordinator and PostgresJournal, in this process) sharing one schema, the
// in-flight loops dealt round-robin to them; the baseline for N deals the
// same loops to N PostgresJournals on one schema, so that only the
// coordinators differ. Rows give the total and each coordinator's share.
// With --server too, dtx-server runs with Store.Driver postgres on a fresh
// schema of the same database and its baseline, dtx_dtm_relay, writes
// through PostgresJournal (--pg-conninfo): the pg_server_ rows, with the
// first --coordinators count only (one dtx-server process).
// --payload 32,1024,1048576 (with --scenario saga or msg) runs the loops once
// per size: every branch call's request and every branch row carries that
// many bytes (a dtx.test.Payload), in dtx and in the baseline alike; RESULT
// names get _p<bytes>.
// --pg-no-pipeline sends every journal statement on its own round trip
// (PostgresJournalOptions::pipeline = false), dtx and baseline alike: run
// it beside a default run to see what pipelining brings. --pg-writers N
// gives every PostgresJournal N write connections
// (PostgresJournalOptions::writers; 1 by default), dtx and baseline alike.
//
//   dtx_bench [--seconds 10]
//             [--scenario
//             tcc|saga|msg|saga_empty|http_saga|http_tcc|slow_branch]
//             [--inflight 1,16,64] [--io-threads 1] [--server dtx-server]
//             [--slow-sagas 5000] [--rounds 6] [--poll-http]
//             [--journal sqlite|postgres] [--pg-conninfo CONNINFO]
//             [--coordinators 1,2,4] [--pg-no-pipeline] [--pg-writers 2]
//             [--payload 32,1024,32768,262144,1048576]
//
// An unknown flag is refused (exit 2). With --journal postgres and no
// --pg-conninfo, exit 77 when PostgreSQL is not installed.
//
// Each figure comes from --rounds alternating rounds of dtx and its baseline
// (--seconds split among them); RESULT lines give the means of the rounds and,
// as `ratio`, the median of the rounds' ratios, which a burst of slow disk
// in one round cannot move much. A summary table of every RESULT's tx/s ends
// the output.

#include "dtx/coordinator.h"
#include "dtx/embedded.h"
#include "dtx/id_generator.h"
#include "dtx/routing_branch_client.h"
#ifdef DTX_BENCH_POSTGRES
#include "dtx/storage/postgres_journal.h"
#endif
#include "dtx/storage/sqlite_journal.h"
#include "dtx/transaction.h"
#include "dtx/transport/grpc_branch_client.h"
#include "dtx/transport/grpc_dtm_client.h"
#include "dtx/transport/grpc_process.h"
#include "dtx/transport/http_branch_client.h"
#include "dtx/transport/http_client.h"
#include "dtx/transport/http_dtm_client.h"
#include "dtx/workflow.h"

#include "bench_util.h"
#include "dtx_test.grpc.pb.h"
#include "journal_plan.h"

#include <grpcpp/grpcpp.h>
#ifdef DTX_BENCH_POSTGRES
#include <libpq-fe.h>
#endif
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <signal.h>
#include <stdlib.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace dtx::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Figures {
  double tx_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  // tx/s of each group of workers (worker w is in group w % groups): each
  // coordinator's (or journal's) share of tx_per_s.
  std::vector<double> per_group;

  Figures operator/(double n) const {
    Figures f{tx_per_s / n, p50_ms / n, p99_ms / n, per_group};
    for (double& g : f.per_group) g /= n;
    return f;
  }
  Figures& operator+=(const Figures& o) {
    tx_per_s += o.tx_per_s;
    p50_ms += o.p50_ms;
    p99_ms += o.p99_ms;
    if (per_group.size() < o.per_group.size())
      per_group.resize(o.per_group.size());
    for (std::size_t g = 0; g < o.per_group.size(); ++g)
      per_group[g] += o.per_group[g];
    return *this;
  }
};

// Runs `one(worker, i)` (one whole transaction) in `inflight` threads; with
// `groups` > 1 also counts each group's transactions (worker w in w % groups).
Figures ClosedLoop(int inflight, double seconds,
                   const std::function<bool(int worker, int64_t i)>& one,
                   int groups = 1) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  std::vector<std::atomic<uint64_t>> group_done(
      static_cast<std::size_t>(groups));
  SharedLatencies shared;
  std::vector<std::thread> threads;
  const auto start = SteadyClock::now();
  for (int w = 0; w < inflight; ++w) {
    threads.emplace_back([&, w] {
      Latencies mine;
      for (int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const auto t0 = SteadyClock::now();
        if (!one(w, i)) {
          std::fprintf(stderr, "transaction failed\n");
          std::exit(1);
        }
        mine.Add(SteadyClock::now() - t0);
        done.fetch_add(1, std::memory_order_relaxed);
        group_done[static_cast<std::size_t>(w % groups)].fetch_add(
            1, std::memory_order_relaxed);
      }
      shared.Merge(mine);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t n = done.load();
  std::vector<uint64_t> group_n;
  for (const auto& g : group_done) group_n.push_back(g.load());
  const double elapsed =
      std::chrono::duration<double>(SteadyClock::now() - start).count();
  stop = true;
  for (auto& t : threads) t.join();
  Latencies all = shared.Take();
  Figures f;
  f.tx_per_s = static_cast<double>(n) / elapsed;
  f.p50_ms = all.Percentile(0.5) / 1000.0;
  f.p99_ms = all.Percentile(0.99) / 1000.0;
  if (groups > 1) {
    for (uint64_t g : group_n)
      f.per_group.push_back(static_cast<double>(g) / elapsed);
  }
  return f;
}

template <typename T>
T CheckOrExit(Result<T> r, const std::string& what) {
  if (!r.ok()) {
    std::fprintf(stderr, "dtx_bench: %s: %s\n", what.c_str(),
                 r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

// The journal every run uses: SQLite files (FULL), or schemas of one
// PostgreSQL database.
struct Store {
  bool postgres = false;
  std::string conninfo;  // postgres: libpq's connection string or URI
  bool pipeline = true;  // postgres: PostgresJournalOptions::pipeline
  int writers = 0;  // postgres: PostgresJournalOptions::writers; 0: its default
};

#ifdef DTX_BENCH_POSTGRES
// `conninfo` fit to print: libpq's keywords with their values, a password
// shown as "(set)"; "(unparsable)" when libpq cannot read it.
std::string Redacted(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return "(unparsable)";
  }
  std::string out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    if (!out.empty()) out += ' ';
    out += o->keyword;
    out += '=';
    out += std::string(o->keyword) == "password" ? "(set)" : o->val;
  }
  PQconninfoFree(options);
  return out;
}

// One libpq connection, closed when destroyed; exits the benchmark when it
// cannot connect.
class PgConnection {
 public:
  explicit PgConnection(const std::string& conninfo)
      : conn_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::fprintf(stderr, "dtx_bench: cannot connect to PostgreSQL (%s): %s",
                   Redacted(conninfo).c_str(), PQerrorMessage(conn_));
      std::exit(1);
    }
    // DROP SCHEMA ... CASCADE's NOTICEs would interleave with the table.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~PgConnection() { PQfinish(conn_); }
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs `sql` (statements without results); exits when it fails.
  void Exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
      std::fprintf(stderr, "dtx_bench: %s: %s", sql.c_str(),
                   PQerrorMessage(conn_));
      std::exit(1);
    }
  }
  void Prepare(const std::string& name, const std::string& sql) {
    PGresult* r = PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
      std::fprintf(stderr, "dtx_bench: prepare %s: %s", sql.c_str(),
                   PQerrorMessage(conn_));
      std::exit(1);
    }
  }
  // Runs the prepared statement `name` (no parameters); false when it fails.
  bool RunPrepared(const std::string& name) {
    PGresult* r =
        PQexecPrepared(conn_, name.c_str(), 0, nullptr, nullptr, nullptr, 0);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) std::fprintf(stderr, "dtx_bench: %s", PQerrorMessage(conn_));
    PQclear(r);
    return ok;
  }

 private:
  PGconn* conn_;
};

// A throwaway PostgreSQL from scripts/start-postgres.sh, stopped (and its
// data removed) when destroyed; the script also stops it when this process
// dies, since its stdin closes then.
class PgServer {
 public:
  PgServer() {
    if (!Installed()) {
      std::fprintf(stderr,
                   "dtx_bench: --journal postgres without --pg-conninfo "
                   "starts a PostgreSQL, and none is installed "
                   "(scripts/setup.sh installs postgresql)\n");
      std::exit(77);
    }
    script_.emplace(StartChild({DTX_START_POSTGRES_SCRIPT, "--stop-on-eof"}));
    line_ = script_->ReadLine(std::chrono::seconds(120)).value_or("");
    if (line_.rfind("postgres ", 0) != 0) {
      std::fprintf(stderr,
                   "dtx_bench: scripts/start-postgres.sh did not start "
                   "PostgreSQL (its errors are above)\n");
      std::exit(1);
    }
    const std::string port = Field("port");
    conninfo_ = "host=127.0.0.1 port=" + port + " user=dtx dbname=dtx";
  }
  ~PgServer() {
    script_->Kill(SIGTERM);
    script_->Wait();
  }
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  const std::string& conninfo() const { return conninfo_; }
  // What the script printed: url=, port=, dir=, pid=.
  const std::string& line() const { return line_; }

 private:
  static bool Installed() {
    for (int v = 10; v <= 30; ++v) {
      const std::string bin =
          "/usr/lib/postgresql/" + std::to_string(v) + "/bin/";
      if (access((bin + "postgres").c_str(), X_OK) == 0 &&
          access((bin + "initdb").c_str(), X_OK) == 0)
        return true;
    }
    return false;
  }
  std::string Field(const std::string& key) const {
    const std::size_t at = line_.find(" " + key + "=");
    if (at == std::string::npos) return "";
    const std::size_t from = at + key.size() + 2;
    return line_.substr(from, line_.find(' ', from) - from);
  }

  std::optional<testing::Subprocess> script_;
  std::string line_;
  std::string conninfo_;
};
#else
std::string Redacted(const std::string& conninfo) { return conninfo; }
#endif  // DTX_BENCH_POSTGRES

// Where one run's journal lives: a fresh SQLite directory, or a fresh
// schema of the PostgreSQL database; removed (dropped) when destroyed, after
// every journal opened on it has closed.
class JournalPlace {
 public:
  explicit JournalPlace(const Store& store) : store_(store) {
    if (!store_.postgres) {
      dir_ = FreshDir();
      return;
    }
    static std::atomic<int> next{0};
    schema_ =
        "bench_" + std::to_string(getpid()) + "_" + std::to_string(++next);
  }
  ~JournalPlace() {
    if (!store_.postgres) {
      std::filesystem::remove_all(dir_);
      return;
    }
#ifdef DTX_BENCH_POSTGRES
    PgConnection(store_.conninfo)
        .Exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
#endif
  }
  JournalPlace(const JournalPlace&) = delete;
  JournalPlace& operator=(const JournalPlace&) = delete;

  // SQLite: the journal file's path.
  std::string sqlite_path() const { return dir_ + "/dtx.db"; }
  const std::string& schema() const { return schema_; }

  // A journal on this place; PostgreSQL: another one on the same schema each
  // time (one writer connection each, as a coordinator's).
  std::unique_ptr<Journal> Open() const {
    if (!store_.postgres) {
      SqliteJournalOptions jo;
      jo.path = sqlite_path();
      return CheckOrExit(SqliteJournal::Open(jo), "open " + jo.path);
    }
#ifdef DTX_BENCH_POSTGRES
    PostgresJournalOptions po;
    po.conninfo = store_.conninfo;
    po.schema = schema_;
    po.pipeline = store_.pipeline;
    if (store_.writers > 0)
      po.writers = static_cast<std::size_t>(store_.writers);
    return CheckOrExit(PostgresJournal::Open(po), "open schema " + schema_);
#else
    std::exit(1);
#endif
  }

 private:
  const Store& store_;
  std::string dir_;
  std::string schema_;
};

// dtx-server's Store: section for `place` on PostgreSQL (dtm's keys, from
// the conninfo's parts); "" for SQLite (ServerProcess's own file). Exits
// when the conninfo names no host.
std::string StoreYaml(const Store& store, const JournalPlace& place) {
  if (!store.postgres) return "";
  std::string yaml =
      "Store:\n  Driver: postgres\n  Schema: " + place.schema() + "\n";
#ifdef DTX_BENCH_POSTGRES
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(store.conninfo.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    std::fprintf(stderr, "dtx_bench: --pg-conninfo cannot be parsed\n");
    std::exit(2);
  }
  const std::map<std::string, std::string> keys = {{"host", "Host"},
                                                   {"port", "Port"},
                                                   {"user", "User"},
                                                   {"password", "Password"},
                                                   {"dbname", "Db"}};
  bool host = false;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    const auto key = keys.find(o->keyword);
    if (key == keys.end() || o->val == nullptr || *o->val == '\0') continue;
    std::string value = o->val;
    for (std::size_t at = 0; (at = value.find('\'', at)) != std::string::npos;
         at += 2)
      value.insert(at, 1, '\'');
    yaml += "  " + key->second + ": '" + value + "'\n";
    host = host || key->first == "host";
  }
  PQconninfoFree(options);
  if (!host) {
    std::fprintf(stderr,
                 "dtx_bench: --server with --journal postgres needs host= in "
                 "--pg-conninfo (dtx-server's Store.Host)\n");
    std::exit(2);
  }
#endif
  return yaml;
}

// A dtx-server process on 127.0.0.1 (FULL journal in a fresh directory, or
// the `store_yaml` given: a Store: section); SIGTERM and a wait when
// destroyed.
class ServerProcess {
 public:
  // `extra_yaml`: more top-level keys of dtx-server's config.
  ServerProcess(const std::string& binary, std::size_t io_threads,
                const std::string& store_yaml = "",
                const std::string& extra_yaml = "")
      : dir_(FreshDir()) {
    std::ofstream(dir_ + "/dtx.yml")
        << (store_yaml.empty() ? "Store:\n  Path: '" + dir_ + "/dtx.db'\n"
                               : store_yaml)
        << "IoThreads: " << io_threads << "\nLogLevel: warn\n"
        << extra_yaml;
    child_ = std::make_unique<testing::Subprocess>(
        StartChild({binary, "-c", dir_ + "/dtx.yml", "--grpc-host", "127.0.0.1",
                    "--grpc-port", "0", "--http-port", "0"}));
    const std::string line = child_->ReadLine().value_or("");
    const std::string prefix = "dtx-server: listening on ";
    if (line.rfind(prefix, 0) != 0) {
      std::fprintf(stderr, "dtx-server did not start: %s\n", line.c_str());
      std::exit(1);
    }
    address_ = line.substr(prefix.size());
    const std::string http = child_->ReadLine().value_or("");
    const std::string http_prefix = "dtx-server: http listening on ";
    if (http.rfind(http_prefix, 0) != 0) {
      std::fprintf(stderr, "dtx-server did not listen for HTTP: %s\n",
                   http.c_str());
      std::exit(1);
    }
    http_port_ = std::stoi(http.substr(http.rfind(':') + 1));
  }
  ~ServerProcess() {
    child_->Kill(SIGTERM);
    while (child_->ReadLine()) {
    }
    child_->Wait();
    child_.reset();
    std::filesystem::remove_all(dir_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& address() const { return address_; }
  int http_port() const { return http_port_; }

 private:
  std::string dir_;
  std::unique_ptr<testing::Subprocess> child_;
  std::string address_;
  int http_port_ = 0;
};

// What the web console polls, every second, while it is open.
constexpr const char* kConsolePolls[] = {
    "/api/metrics", "/api/dtx/stats",
    "/api/dtmsvr/all?limit=50&unfinished=true", "/api/dtmsvr/all?limit=50"};

// GETs kConsolePolls from a dtx-server's HTTP port at once and then every
// second, on a thread of its own, until destroyed.
class ConsolePoller {
 public:
  explicit ConsolePoller(int port)
      : thread_([this, port] {
          for (;;) {
            for (const char* target : kConsolePolls) {
              const int status = HttpGetStatus(port, target);
              ++gets_;
              if (status < 200 || status >= 300) ++not_ok_;
            }
            internal::MutexLock lock(&mu_);
            if (cv_.WaitFor(&mu_, std::chrono::seconds(1), [this] {
                  mu_.AssertHeld();
                  return stop_;
                })) {
              return;
            }
          }
        }) {}
  ~ConsolePoller() {
    {
      internal::MutexLock lock(&mu_);
      stop_ = true;
      cv_.SignalAll();
    }
    thread_.join();
  }
  ConsolePoller(const ConsolePoller&) = delete;
  ConsolePoller& operator=(const ConsolePoller&) = delete;

  // GETs made, and those not answered 2xx (an endpoint not served yet).
  static std::atomic<long> gets_;
  static std::atomic<long> not_ok_;

 private:
  internal::Mutex mu_;
  internal::CondVar cv_{&mu_};
  bool stop_ DTX_GUARDED_BY(mu_) = false;
  std::thread thread_;
};
std::atomic<long> ConsolePoller::gets_{0};
std::atomic<long> ConsolePoller::not_ok_{0};

std::unique_ptr<GrpcDtmClient> Connect(const std::string& address) {
  GrpcDtmClientOptions o;
  o.address = address;
  auto client = GrpcDtmClient::Create(o);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(client).value();
}

class Bench {
 public:
  // `echo_address`: the echo's gRPC host:port; `http_echo`: its HTTP URL.
  // `store`: the journal of the embedded runs and their baselines; borrowed.
  Bench(std::string echo_address, std::string http_echo, std::size_t io_threads,
        const Store& store)
      : echo_(std::move(echo_address)),
        http_echo_(std::move(http_echo)),
        io_threads_(io_threads),
        store_(store) {
    channel_ = grpc::CreateChannel(echo_, grpc::InsecureChannelCredentials());
    stub_ = dtx::test::Busi::NewStub(channel_);
    http_ = Check(HttpClient::Create(HttpClientOptions{}));
    http_branches_ = Check(HttpBranchClient::Create(HttpBranchClientOptions{}));
  }

  // "http_saga" -> "saga": the transaction's shape, whatever the transport.
  static std::string Shape(const std::string& scenario) {
    return scenario.rfind("http_", 0) == 0 ? scenario.substr(5) : scenario;
  }
  const Store& store() const { return store_; }
  // The request of every branch call of saga and msg (--payload): a
  // serialized dtx.test.Payload, the same bytes on both sides.
  void set_payload(std::string payload) { payload_ = std::move(payload); }

  static bool OverHttp(const std::string& scenario) {
    return scenario.rfind("http_", 0) == 0;
  }

  // The embedded coordinator on a fresh journal. PostgreSQL: `coordinators`
  // of them, each its own Coordinator and PostgresJournal on one fresh
  // schema, the loops dealt round-robin (Coordinator::Open directly, with the
  // branch clients OpenEmbeddedCoordinator would make).
  Figures RunDtx(const std::string& scenario, int inflight, double seconds,
                 int coordinators = 1) {
    const JournalPlace place(store_);  // outlives the coordinators
    Options options;
    options.io_threads = io_threads_;
    std::vector<std::unique_ptr<Coordinator>> dtms;
    if (!store_.postgres) {
      EmbeddedOptions embedded;
      embedded.journal_path = place.sqlite_path();
      dtms.push_back(CheckOrExit(OpenEmbeddedCoordinator(options, embedded),
                                 "open the embedded coordinator"));
    } else {
      for (int c = 0; c < coordinators; ++c) {
        CoordinatorDeps deps;
        deps.journal = place.Open();
        deps.branch_client = BranchClients(options);
        dtms.push_back(CheckOrExit(Coordinator::Open(options, std::move(deps)),
                                   "open a coordinator"));
      }
    }
    std::vector<DtmApi*> apis;
    for (const auto& d : dtms) apis.push_back(d.get());
    Figures f = RunOn(apis, scenario, inflight, seconds);
    for (const auto& d : dtms) d->Shutdown();
    dtms.clear();
    return f;
  }

  // The same loop through GrpcDtmClient on a dtx-server process.
  Figures RunServer(const std::string& server, const std::string& scenario,
                    int inflight, double seconds) {
    const JournalPlace place(store_);
    ServerProcess child(server, io_threads_, StoreYaml(store_, place));
    if (OverHttp(scenario)) {
      auto client = ConnectHttp(child.http_port());
      return RunOn(*client, scenario, inflight, seconds);
    }
    auto client = Connect(child.address());
    Figures f = RunOn(*client, scenario, inflight, seconds);
    return f;
  }

  // The same loop through GrpcDtmClient on the relay: the same requests,
  // journal writes and branch calls as with dtx-server, no coordinator.
  Figures RunRelay(const std::string& scenario, int inflight, double seconds) {
    const JournalPlace place(store_);
    Figures f;
    {
      std::vector<std::string> argv = {DTX_DTM_RELAY};
      if (store_.postgres) {
        argv.insert(argv.end(), {"--pg-conninfo", store_.conninfo,
                                 "--pg-schema", place.schema()});
      } else {
        argv.insert(argv.end(), {"--journal", place.sqlite_path()});
      }
      argv.insert(argv.end(),
                  {"--branch", echo_, "--http", "--http-branch", http_echo_});
      testing::Subprocess relay = StartChild(argv);
      const int grpc_port = ReadPort(relay);
      const int http_port = ReadPort(relay, "http-port");
      if (OverHttp(scenario)) {
        auto client = ConnectHttp(http_port);
        f = RunOn(*client, scenario, inflight, seconds);
      } else {
        auto client = Connect("127.0.0.1:" + std::to_string(grpc_port));
        f = RunOn(*client, scenario, inflight, seconds);
      }
    }
    return f;
  }

  // A slow branch next to unrelated transactions on one dtx-server: `slow`
  // WaitResult sagas whose branch answers after 1 s, all in flight at once
  // (callback form, no thread each), while NewGid and a saga with an
  // immediate branch run one at a time until the slow ones are answered;
  // their latencies compared with the same calls on the idle server.
  // MaxCallsPerTarget 0, as in tests/server/slow_branch_test.cc: with the
  // default cap (128 calls a service) the slow sagas would wait in line for
  // the slow service, 5,000 of them for some 40 s, and the client's deadline
  // would end them first; the cap has a bench of its own (dtx_backlog_bench).
  // False when a call failed (printed), after the server is stopped.
  bool SlowBranch(const std::string& server, int slow, double seconds) {
    testing::Subprocess slow_echo =
        StartChild({DTX_ECHO_SERVER, "--delay-ms", "1000"});
    const std::string slow_url =
        "127.0.0.1:" + std::to_string(ReadPort(slow_echo)) +
        "/dtx.test.Busi/Echo";
    const std::string fast_url = echo_ + "/dtx.test.Busi/Echo";
    const JournalPlace place(store_);
    ServerProcess child(server, io_threads_, StoreYaml(store_, place),
                        "MaxCallsPerTarget: 0\n");
    auto dtm = Connect(child.address());
    auto saga = [](const std::string& gid, const std::string& url) {
      TransRequest r;
      r.gid = gid;
      r.trans_type = TransType::kSaga;
      r.options.wait_result = true;
      r.steps = {{url, url}};
      r.payloads = {""};
      return r;
    };
    Latencies idle_gid;
    Latencies idle_saga;
    Latencies load_gid;
    Latencies load_saga;
    std::atomic<int> slow_done{0};
    std::atomic<bool> failed{false};
    auto probe = [&](Latencies& gid, Latencies& fast) {
      auto t0 = SteadyClock::now();
      Result<std::string> id = dtm->NewGid();
      if (!id.ok()) {
        std::fprintf(stderr, "NewGid: %s\n", id.status().ToString().c_str());
        failed = true;
        return;
      }
      gid.Add(SteadyClock::now() - t0);
      t0 = SteadyClock::now();
      Status s = dtm->Submit(saga(ids_->NewGid(), fast_url));
      if (!s.ok()) {
        std::fprintf(stderr, "fast saga: %s\n", s.ToString().c_str());
        failed = true;
        return;
      }
      fast.Add(SteadyClock::now() - t0);
    };
    const auto idle_until =
        SteadyClock::now() + std::chrono::duration<double>(seconds);
    while (SteadyClock::now() < idle_until && !failed) {
      probe(idle_gid, idle_saga);
    }
    const auto start = SteadyClock::now();
    for (int i = 0; i < slow; ++i) {
      dtm->SubmitAsync(saga(ids_->NewGid(), slow_url), [&](Status s) {
        if (!s.ok()) {
          std::fprintf(stderr, "slow saga: %s\n", s.ToString().c_str());
          failed = true;
        }
        ++slow_done;
      });
    }
    // Every slow saga is answered (or fails) before the client goes.
    while (slow_done.load() < slow) {
      if (!failed) {
        probe(load_gid, load_saga);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    if (failed) return false;
    const double slow_s =
        std::chrono::duration<double>(SteadyClock::now() - start).count();
    std::printf(
        "\nslow_branch: %d sagas with a 1 s branch answered in %.2f s; "
        "meanwhile %zu NewGid and %zu fast sagas, one at a time\n",
        slow, slow_s, load_gid.count(), load_saga.count());
    std::printf("%-22s %9s %9s %9s %9s\n", "slow_branch", "idle p50",
                "idle p99", "load p50", "load p99");
    const char* prefix = store_.postgres ? "pg_" : "";
    auto row = [prefix](const char* what, Latencies& idle, Latencies& load) {
      std::printf("%-22s %9.2f %9.2f %9.2f %9.2f\n", what,
                  idle.Percentile(0.5) / 1000, idle.Percentile(0.99) / 1000,
                  load.Percentile(0.5) / 1000, load.Percentile(0.99) / 1000);
      for (const double q : {0.5, 0.99}) {
        const double v = load.Percentile(q) / 1000;
        const double b = idle.Percentile(q) / 1000;
        std::printf(
            "RESULT %sserver_slow_branch_%s_p%d_ms value=%.3f baseline=%.3f "
            "ratio=%.2f\n",
            prefix, what, q < 0.9 ? 50 : 99, v, b, b > 0 ? v / b : 0.0);
      }
      std::fflush(stdout);
    };
    row("newgid", idle_gid, load_gid);
    row("saga", idle_saga, load_saga);
    return true;
  }

  Figures RunOn(DtmApi& dtm, const std::string& scenario, int inflight,
                double seconds) {
    return RunOn(std::vector<DtmApi*>{&dtm}, scenario, inflight, seconds);
  }

  // Worker w's transactions go to dtms[w % dtms.size()].
  Figures RunOn(const std::vector<DtmApi*>& dtms, const std::string& scenario,
                int inflight, double seconds) {
    const int groups = static_cast<int>(dtms.size());
    const std::string url =
        OverHttp(scenario) ? http_echo_ : echo_ + "/dtx.test.Busi/Echo";
    const std::string empty;
    const std::string shape = Shape(scenario);
    // workflow: a 2-step workflow on each coordinator, each step a call of
    // the echo service with the input as its request.
    std::vector<std::unique_ptr<Workflows>> workflows;
    if (shape == "workflow") {
      for (DtmApi* dtm : dtms) {
        workflows.push_back(std::make_unique<Workflows>(*dtm));
        Status registered = workflows.back()->Register(
            "bench",
            [&url](Workflow& wf,
                   const std::string& input) -> Result<std::string> {
              DTX_RETURN_IF_ERROR(wf.Call(url, input).status());
              return wf.Call(url, input);
            });
        if (!registered.ok()) {
          std::fprintf(stderr, "%s\n", registered.ToString().c_str());
          std::exit(1);
        }
      }
    }
    Figures f = ClosedLoop(
        inflight, seconds,
        [&](int worker, int64_t) {
          DtmApi& dtm = *dtms[static_cast<std::size_t>(worker % groups)];
          const std::string gid = ids_->NewGid();
          Status s;
          if (shape == "saga" || shape == "saga_empty") {
            const std::string& u = shape == "saga" ? url : empty;
            s = Saga(dtm, gid)
                    .Add(u, u, payload_)
                    .Add(u, u, payload_)
                    .WaitResult(true)
                    .Submit();
          } else if (shape == "workflow") {
            s = workflows[static_cast<std::size_t>(worker % groups)]
                    ->Execute("bench", gid, payload_)
                    .status();
          } else if (shape == "msg") {
            s = Msg(dtm, gid)
                    .Add(url, payload_)
                    .Add(url, payload_)
                    .WaitResult(true)
                    .Submit();
          } else {
            TransOptions o;
            o.wait_result = true;
            s = TccGlobalTransaction(dtm, gid, o, [&](Tcc& tcc) {
              DTX_RETURN_IF_ERROR(tcc.CallBranch("", url, url, url));
              return tcc.CallBranch("", url, url, url);
            });
          }
          if (!s.ok())
            std::fprintf(stderr, "%s: %s\n", gid.c_str(), s.ToString().c_str());
          return s.ok();
        },
        groups);
    return f;
  }

  // The same writes and calls with no coordinator, on a fresh journal of the
  // store. PostgreSQL: `journals` PostgresJournals on one fresh schema, the
  // loops dealt round-robin as RunDtx deals them to its coordinators.
  Figures RunBaseline(const std::string& scenario, int inflight, double seconds,
                      int journals = 1) {
    const JournalPlace place(store_);
    std::vector<std::unique_ptr<Journal>> all;
    for (int i = 0; i < journals; ++i) all.push_back(place.Open());
    const bool over_http = OverHttp(scenario);
    const std::string shape = Shape(scenario);
    auto call = [&](const PlanStep& s) {
      if (over_http) {
        // dtm's HTTP branch call, as HttpBranchClient makes it.
        HttpClientRequest req;
        req.method = "GET";
        req.url = http_echo_ + "?gid=" + s.gid + "&trans_type=" + s.trans_type +
                  "&branch_id=" + s.branch_id + "&op=" + s.op;
        req.headers = {{"Content-Type", "application/json"}};
        req.timeout = std::chrono::seconds(3);
        auto r = http_->SendBlocking(std::move(req));
        return r.ok() && r->status == 200;
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(3));
      ctx.AddMetadata("dtm-gid", s.gid);
      ctx.AddMetadata("dtm-trans_type", s.trans_type);
      ctx.AddMetadata("dtm-branch_id", s.branch_id);
      ctx.AddMetadata("dtm-op", s.op);
      ctx.AddMetadata("dtm-dtm", "");
      dtx::test::Payload req;
      if (!req.ParseFromString(payload_)) return false;
      dtx::test::Payload reply;
      return stub_->Echo(&ctx, req, &reply).ok();
    };
    Figures f = ClosedLoop(
        inflight, seconds,
        [&](int worker, int64_t) {
          Journal& j = *all[static_cast<std::size_t>(worker) % all.size()];
          const std::string gid = ids_->NewGid();
          Plan plan;
          if (shape == "tcc") {
            plan = TccPlan(gid, {"01", "02"});
          } else if (shape == "workflow") {
            plan = WorkflowPlan(gid, 2, payload_);
          } else {
            const bool calls = shape != "saga_empty";
            plan = StepsPlan(
                gid, shape == "msg" ? TransType::kMsg : TransType::kSaga,
                {calls, calls}, payload_);
          }
          return RunBlocking(plan, j, call);
        },
        journals);
    for (const auto& j : all) j->Close();
    all.clear();
    return f;
  }

#ifdef DTX_BENCH_POSTGRES
  // PostgreSQL's own commit rate: `clients` connections, each running one
  // autocommit INSERT of a short row at a time (one commit, one WAL flush
  // each, which PostgreSQL groups across concurrent clients), on a table of
  // a fresh schema.
  Figures PgCommitRate(int clients, double seconds) {
    const JournalPlace place(store_);
    const std::string table = place.schema() + ".floor";
    PgConnection(store_.conninfo)
        .Exec("CREATE SCHEMA " + place.schema() + "; CREATE TABLE " + table +
              " (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
              " v TEXT NOT NULL)");
    std::vector<std::unique_ptr<PgConnection>> conns;
    for (int c = 0; c < clients; ++c) {
      conns.push_back(std::make_unique<PgConnection>(store_.conninfo));
      conns.back()->Prepare("floor",
                            "INSERT INTO " + table + " (v) VALUES ('row')");
    }
    Figures f = ClosedLoop(clients, seconds, [&](int worker, int64_t) {
      return conns[static_cast<std::size_t>(worker)]->RunPrepared("floor");
    });
    conns.clear();
    return f;
  }
#endif

  // One row per FULL commit, one writer: SQLite's own floor.
  static double SingleCommitRate(double seconds) {
    const std::string dir = FreshDir();
    sqlite3* db = nullptr;
    sqlite3_open((dir + "/floor.db").c_str(), &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
                 nullptr, nullptr, nullptr);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES ('row')", -1, &stmt,
                       nullptr);
    const auto start = SteadyClock::now();
    const auto until = start + std::chrono::duration<double>(seconds);
    uint64_t n = 0;
    while (SteadyClock::now() < until) {
      sqlite3_step(stmt);
      sqlite3_reset(stmt);
      ++n;
    }
    const double elapsed =
        std::chrono::duration<double>(SteadyClock::now() - start).count();
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    std::filesystem::remove_all(dir);
    return static_cast<double>(n) / elapsed;
  }

 private:
  // An HttpDtmClient on 127.0.0.1:`port` (dtx-server's or the relay's HTTP
  // API), with the HTTP branch client for TCC's try calls.
  // gRPC and HTTP branch clients behind a router, as
  // OpenEmbeddedCoordinator makes them with no registry.
  static std::unique_ptr<BranchClient> BranchClients(const Options& options) {
    const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        options.request_timeout);
    GrpcBranchClientOptions grpc_options;
    grpc_options.default_timeout = timeout;
    HttpBranchClientOptions http_options;
    http_options.default_timeout = timeout;
    return std::make_unique<RoutingBranchClient>(
        Check(GrpcBranchClient::Create(grpc_options)),
        Check(HttpBranchClient::Create(http_options)));
  }

  std::unique_ptr<HttpDtmClient> ConnectHttp(int port) {
    HttpDtmClientOptions o;
    o.address = "http://127.0.0.1:" + std::to_string(port) + "/api/dtmsvr";
    o.branch_client = http_branches_;
    return Check(HttpDtmClient::Create(std::move(o)));
  }

  template <typename T>
  static T Check(Result<T> r) {
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      std::exit(1);
    }
    return std::move(r).value();
  }

  std::string echo_;
  std::string http_echo_;
  std::size_t io_threads_;
  const Store& store_;
  std::unique_ptr<HttpClient> http_;  // the baselines' HTTP calls
  std::shared_ptr<HttpBranchClient> http_branches_;
  // Gids as the coordinator's NewGid makes them, for dtx and the baselines
  // alike; made here so that the server rows need no extra round trip.
  std::unique_ptr<IdGenerator> ids_ = NewTimeOrderedIdGenerator();
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<dtx::test::Busi::Stub> stub_;
  std::string payload_;
};

void Row(const std::string& who, const std::string& scenario, int inflight,
         const Figures& f) {
  std::printf("%-10s %-11s %8d %10.0f %9.2f %9.2f\n", who.c_str(),
              scenario.c_str(), inflight, f.tx_per_s, f.p50_ms, f.p99_ms);
  // Each coordinator's (journal's) share when there are several: "  #2/4",
  // its loops and its tx/s.
  const int groups = static_cast<int>(f.per_group.size());
  for (int g = 0; g < groups; ++g) {
    const std::string label =
        "  #" + std::to_string(g + 1) + "/" + std::to_string(groups);
    std::printf("%-10s %-11s %8d %10.0f\n", label.c_str(), scenario.c_str(),
                inflight / groups + (g < inflight % groups ? 1 : 0),
                f.per_group[static_cast<std::size_t>(g)]);
  }
  std::fflush(stdout);
}

// Every RESULT's tx/s, for the summary table at the end.
struct SummaryLine {
  std::string name;
  double value = 0;
  double baseline = 0;
  double ratio = 0;
  double low = 0;  // the rounds' lowest and highest ratios
  double high = 0;
};
std::vector<SummaryLine>& Summary() {
  static std::vector<SummaryLine> lines;
  return lines;
}

void PrintSummary() {
  if (Summary().empty()) return;
  std::printf(
      "\nsummary (tx/s; ratio: median of the rounds' ratios; rounds: the "
      "lowest and highest of them, this machine's noise)\n");
  std::printf("%-44s %10s %10s %7s %11s\n", "result", "value", "baseline",
              "ratio", "rounds");
  for (const SummaryLine& l : Summary()) {
    std::printf("%-44s %10.0f %10.0f %7.2f %5.2f-%.2f\n", l.name.c_str(),
                l.value, l.baseline, l.ratio, l.low, l.high);
  }
  std::fflush(stdout);
}

// The rounds of one scenario: dtx (or dtx-server) and its baseline, run
// alternately. Prints the means, the median of the rounds' ratios, and the
// lowest and highest of them (`rounds=`): how far one round pair strays
// from another on this machine, whose fsync time drifts within a minute.
class Paired {
 public:
  void Add(const Figures& baseline, const Figures& value) {
    baselines_.push_back(baseline);
    values_.push_back(value);
  }
  Figures baseline() const { return Mean(baselines_); }
  Figures value() const { return Mean(values_); }
  void Print(const std::string& name, bool with_p50 = true) const {
    std::vector<double> tx;
    std::vector<double> p50;
    for (std::size_t i = 0; i < values_.size(); ++i) {
      if (baselines_[i].tx_per_s > 0)
        tx.push_back(values_[i].tx_per_s / baselines_[i].tx_per_s);
      if (baselines_[i].p50_ms > 0)
        p50.push_back(values_[i].p50_ms / baselines_[i].p50_ms);
    }
    const auto [tx_low, tx_high] = Range(tx);
    std::printf(
        "RESULT %s value=%.0f baseline=%.0f ratio=%.2f rounds=%.2f-%.2f\n",
        name.c_str(), value().tx_per_s, baseline().tx_per_s, Median(tx), tx_low,
        tx_high);
    Summary().push_back({name, value().tx_per_s, baseline().tx_per_s,
                         Median(tx), tx_low, tx_high});
    if (with_p50) {
      const auto [p50_low, p50_high] = Range(p50);
      std::printf(
          "RESULT %s_p50 value=%.3f baseline=%.3f ratio=%.2f "
          "rounds=%.2f-%.2f\n",
          name.c_str(), value().p50_ms, baseline().p50_ms, Median(p50), p50_low,
          p50_high);
    }
    std::fflush(stdout);
  }

 private:
  static Figures Mean(const std::vector<Figures>& all) {
    Figures sum;
    for (const Figures& f : all) sum += f;
    return all.empty() ? sum : sum / static_cast<double>(all.size());
  }
  static double Median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  static std::pair<double, double> Range(const std::vector<double>& v) {
    if (v.empty()) return {0, 0};
    const auto [low, high] = std::minmax_element(v.begin(), v.end());
    return {*low, *high};
  }
  std::vector<Figures> baselines_;
  std::vector<Figures> values_;
};

// The saga loop on one dtx-server, `rounds` times without and with the
// console's poller, alternately: the same process, so that only the polling
// differs.
void Polled(Bench& bench, const std::string& server, std::size_t io_threads,
            int inflight, int rounds, double per_run) {
  const JournalPlace place(bench.store());
  ServerProcess child(server, io_threads, StoreYaml(bench.store(), place));
  auto client = Connect(child.address());
  Paired polled;
  for (int round = 0; round < rounds; ++round) {
    const Figures alone = bench.RunOn(*client, "saga", inflight, per_run);
    Figures watched;
    {
      ConsolePoller poller(child.http_port());
      watched = bench.RunOn(*client, "saga", inflight, per_run);
    }
    polled.Add(alone, watched);
  }
  Row("unpolled", "saga", inflight, polled.baseline());
  Row("polled", "saga", inflight, polled.value());
  std::printf("console polls: %ld GETs, %ld not answered 2xx\n",
              ConsolePoller::gets_.load(), ConsolePoller::not_ok_.load());
  polled.Print(std::string(bench.store().postgres ? "pg_" : "") +
               "server_saga_" + std::to_string(inflight) + "_polled");
}

int Main(int argc, char** argv) {
  // As dtx-server does, on both sides of each comparison (grpc_process.h).
  dtx::DisableMutexDeadlockDetection();
  RefuseUnknownFlags(
      argc, argv, "dtx_bench",
      {"--seconds", "--scenario", "--inflight", "--io-threads", "--server",
       "--rounds", "--slow-sagas", "--journal", "--pg-conninfo",
       "--coordinators", "--payload", "--pg-writers"},
      {"--poll-http", "--pg-no-pipeline"});
  auto refuse = [](const std::string& why) {
    std::fprintf(stderr, "dtx_bench: %s\n", why.c_str());
    std::exit(2);
  };
  const double seconds =
      ParseDouble("--seconds", Flag(argc, argv, "--seconds", "10"));
  const std::string only = Flag(argc, argv, "--scenario", "");
  const std::vector<int> inflights =
      ParseIntList(Flag(argc, argv, "--inflight", "1,16,64"));
  const int io_thread_count =
      ParseInt("--io-threads", Flag(argc, argv, "--io-threads", "1"));
  const auto io_threads =
      static_cast<std::size_t>(std::max(io_thread_count, 0));
  const std::string server_binary = Flag(argc, argv, "--server", "");
  const int rounds =
      std::max(1, ParseInt("--rounds", Flag(argc, argv, "--rounds", "6")));
  const double per_run = seconds / (2.0 * rounds);
  const int slow_sagas =
      ParseInt("--slow-sagas", Flag(argc, argv, "--slow-sagas", "5000"));
  const bool poll_http = HasFlag(argc, argv, "--poll-http");
  const std::string journal = Flag(argc, argv, "--journal", "sqlite");
  const std::string pg_conninfo = Flag(argc, argv, "--pg-conninfo", "");
  const std::vector<int> coordinator_counts =
      ParseIntList(Flag(argc, argv, "--coordinators", "1"));
  const std::vector<int> payloads =
      ParseIntList(Flag(argc, argv, "--payload", "0"));
  const std::vector<std::string> scenarios = {
      "tcc", "saga", "msg", "saga_empty", "http_saga", "http_tcc", "workflow"};
  if (!only.empty() && only != "slow_branch" &&
      std::find(scenarios.begin(), scenarios.end(), only) == scenarios.end()) {
    refuse("unknown --scenario " + only +
           " (known: tcc saga msg saga_empty http_saga http_tcc workflow "
           "slow_branch)");
  }
  if (inflights.empty() || std::any_of(inflights.begin(), inflights.end(),
                                       [](int n) { return n < 1; })) {
    refuse("--inflight needs numbers of at least 1 (\"1,16,64\")");
  }
  if (seconds <= 0) refuse("--seconds needs a time above 0");
  if (payloads.empty() ||
      std::any_of(payloads.begin(), payloads.end(),
                  [](int n) { return n < 0 || n > 2 * 1024 * 1024; })) {
    refuse("--payload needs byte counts from 0 to 2097152 (\"32,1024\")");
  }
  if (payloads != std::vector<int>{0} && only != "saga" && only != "msg") {
    refuse(
        "--payload needs --scenario saga or msg (gRPC branch calls that "
        "carry a request)");
  }
  if (payloads != std::vector<int>{0} && !server_binary.empty()) {
    refuse("--payload runs the embedded coordinator only (no --server)");
  }
  if (io_thread_count < 1) refuse("--io-threads needs at least 1");
  if (journal != "sqlite" && journal != "postgres") {
    refuse("unknown --journal " + journal + " (known: sqlite, postgres)");
  }
  Store store;
  store.postgres = journal == "postgres";
  store.pipeline = !HasFlag(argc, argv, "--pg-no-pipeline");
  if (!store.postgres && !store.pipeline)
    refuse("--pg-no-pipeline needs --journal postgres");
  store.writers =
      ParseInt("--pg-writers", Flag(argc, argv, "--pg-writers", "0"));
  if (store.writers < 0) refuse("--pg-writers needs a count of at least 1");
  if (!store.postgres && store.writers > 0)
    refuse("--pg-writers needs --journal postgres");
  if (coordinator_counts.empty() ||
      std::any_of(coordinator_counts.begin(), coordinator_counts.end(),
                  [](int n) { return n < 1; })) {
    refuse("--coordinators needs numbers of at least 1 (\"1,2,4\")");
  }
  if (!store.postgres) {
    if (coordinator_counts != std::vector<int>{1}) {
      refuse(
          "--coordinators needs --journal postgres (coordinators share a "
          "journal only on PostgreSQL)");
    }
    if (!pg_conninfo.empty()) refuse("--pg-conninfo needs --journal postgres");
  }
#ifdef DTX_BENCH_POSTGRES
  std::optional<PgServer> pg_server;
  if (store.postgres) {
    if (pg_conninfo.empty()) {
      pg_server.emplace();
      std::printf(
          "dtx_bench: started a throwaway PostgreSQL (fsync on; stopped and "
          "removed at exit): %s\n",
          pg_server->line().c_str());
      store.conninfo = pg_server->conninfo();
    } else {
      store.conninfo = pg_conninfo;
      PgConnection check(store.conninfo);  // exits when it cannot connect
    }
  }
#else
  if (store.postgres) {
    refuse(
        "--journal postgres: this dtx_bench was built without libpq "
        "(apt-get install libpq-dev, then configure again)");
  }
#endif
  testing::Subprocess server = StartChild({DTX_ECHO_SERVER, "--http"});
  const std::string echo = "127.0.0.1:" + std::to_string(ReadPort(server));
  const std::string http_echo =
      "http://127.0.0.1:" + std::to_string(ReadPort(server, "http-port")) +
      "/echo";
  Bench bench(echo, http_echo, io_threads, store);
  if (store.postgres) {
    std::printf(
        "dtx_bench: %.1f s per run, PostgreSQL journal (%s, a fresh schema "
        "per run), branch service in another process (%s), %zu io "
        "thread(s)\n",
        seconds, Redacted(store.conninfo).c_str(), echo.c_str(), io_threads);
    std::printf(
        "saga_empty at the most in flight is compared with PostgreSQL's "
        "single-commit rate: one INSERT per commit on one connection (the "
        "ratio: the store's floor for one writer, as SQLite's) and the same "
        "with one connection per transaction in flight (printed beside it: "
        "PostgreSQL's own grouping of concurrent commits)\n\n");
  } else {
    std::printf(
        "dtx_bench: %.1f s per run, FULL journal, branch service in another "
        "process "
        "(%s), %zu io thread(s)\n\n",
        seconds, echo.c_str(), io_threads);
  }
  std::printf("%-10s %-11s %8s %10s %9s %9s\n", "what", "scenario", "inflight",
              "tx/s", "p50 ms", "p99 ms");
  // Warm up connections and code paths.
  bench.RunBaseline("saga", 4, 0.3);
  bench.RunDtx("saga", 4, 0.3);
  for (const int coordinators : coordinator_counts) {
    // RESULT names: SQLite's as before; PostgreSQL's pg_..._c<N>.
    const std::string prefix = store.postgres ? "pg_" : "";
    const std::string suffix =
        store.postgres ? "_c" + std::to_string(coordinators) : "";
    if (store.postgres) {
      std::printf(
          "\n-- %d coordinator(s) sharing one schema (baseline: the same "
          "loops on %d journal(s))\n",
          coordinators, coordinators);
      std::fflush(stdout);
    }
    for (const int payload : payloads) {
      std::string payload_bytes;
      if (payload > 0) {
        dtx::test::Payload p;
        p.set_data(std::string(static_cast<std::size_t>(payload), 'p'));
        payload_bytes = p.SerializeAsString();
        std::printf("\n-- payload %d bytes per branch call and row\n", payload);
        std::fflush(stdout);
      }
      bench.set_payload(payload_bytes);
      const std::string payload_suffix =
          payload > 0 ? "_p" + std::to_string(payload) : "";
      for (const std::string& scenario : scenarios) {
        if (!only.empty() && only != scenario) continue;
        for (int inflight : inflights) {
          if (inflight < coordinators) {
            std::printf(
                "(%s at %d in flight skipped: fewer than %d coordinators)\n",
                scenario.c_str(), inflight, coordinators);
            continue;
          }
          // Alternating short rounds, so that drift of the machine (this disk's
          // fsync time varies several-fold within a minute) falls on both
          // sides; the ratios printed are the medians of the rounds' ratios.
          // saga_empty at the most in flight is also compared with the
          // store's single-commit rate, measured in the same rounds.
          const bool vs_floor =
              scenario == "saga_empty" && inflight == inflights.back();
          Paired local;
          Paired floor;
          Paired floor_concurrent;  // PostgreSQL: `inflight` clients
          for (int round = 0; round < rounds; ++round) {
            const Figures base =
                bench.RunBaseline(scenario, inflight, per_run, coordinators);
            const Figures mine =
                bench.RunDtx(scenario, inflight, per_run, coordinators);
            local.Add(base, mine);
            if (vs_floor && !store.postgres) {
              floor.Add(Figures{Bench::SingleCommitRate(per_run / 2), 0, 0, {}},
                        mine);
            }
#ifdef DTX_BENCH_POSTGRES
            if (vs_floor && store.postgres) {
              Figures one = bench.PgCommitRate(1, per_run / 2);
              Figures many = bench.PgCommitRate(inflight, per_run / 2);
              floor.Add(Figures{one.tx_per_s, 0, 0, {}}, mine);
              floor_concurrent.Add(Figures{many.tx_per_s, 0, 0, {}}, mine);
            }
#endif
          }
          const std::string name = prefix + scenario + "_" +
                                   std::to_string(inflight) + suffix +
                                   payload_suffix;
          Row("baseline", scenario, inflight, local.baseline());
          Row("dtx", scenario, inflight, local.value());
          local.Print(name);
          if (!server_binary.empty() &&
              coordinators == coordinator_counts.front()) {
            // dtx-server against the relay, which has the same client round
            // trips, journal writes and branch calls; alternating rounds again.
            Paired remote;
            for (int round = 0; round < rounds; ++round) {
              remote.Add(
                  bench.RunRelay(scenario, inflight, per_run),
                  bench.RunServer(server_binary, scenario, inflight, per_run));
            }
            Row("relay", scenario, inflight, remote.baseline());
            Row("server", scenario, inflight, remote.value());
            remote.Print(prefix + "server_" + scenario + "_" +
                         std::to_string(inflight));
          }
          if (vs_floor && !store.postgres) {
            std::printf("%-10s %-11s %8d %10.0f\n", "sqlite", "one-commit", 1,
                        floor.baseline().tx_per_s);
            floor.Print(
                "saga_empty_vs_single_commit_" + std::to_string(inflight),
                /*with_p50=*/false);
          }
          if (vs_floor && store.postgres) {
            std::printf("%-10s %-11s %8d %10.0f\n", "postgres", "one-commit", 1,
                        floor.baseline().tx_per_s);
            std::printf("%-10s %-11s %8d %10.0f\n", "postgres", "one-commit",
                        inflight, floor_concurrent.baseline().tx_per_s);
            floor.Print(prefix + "saga_empty_vs_single_commit_" +
                            std::to_string(inflight) + suffix,
                        /*with_p50=*/false);
            floor_concurrent.Print(
                prefix + "saga_empty_vs_" + std::to_string(inflight) +
                    "_client_commits_" + std::to_string(inflight) + suffix,
                /*with_p50=*/false);
          }
        }
      }
    }
  }
  if (poll_http && !server_binary.empty() && (only.empty() || only == "saga")) {
    Polled(bench, server_binary, io_threads, inflights.back(), rounds, per_run);
  }
  if (!server_binary.empty() && (only.empty() || only == "slow_branch")) {
    if (!bench.SlowBranch(server_binary, slow_sagas, seconds / 4)) return 1;
  }
  PrintSummary();
  return 0;
}

}  // namespace
}  // namespace dtx::bench

int main(int argc, char** argv) { return dtx::bench::Main(argc, argv); }
