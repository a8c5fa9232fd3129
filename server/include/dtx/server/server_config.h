// dtx-server's configuration: dtm's YAML keys where they apply, dtm's
// environment variable names, and command-line flags.
//
// Precedence, lowest first: defaults, the YAML file, environment variables,
// flags. (dtm lets the file override the environment; dtx lets the
// environment win, as deployment tools expect. docs/server.md lists this.)
//
// A key dtx does not know is a warning; a dtm key that has no meaning in dtx
// (JsonRpcPort, Store.RedisPrefix, ...) is a warning naming it, and so is a
// key of the other store driver (Store.Host with Store.Driver sqlite); a bad
// value is an error naming the key and the value (never the value of
// Store.Password).

#ifndef DTX_SERVER_SERVER_CONFIG_H_
#define DTX_SERVER_SERVER_CONFIG_H_

#include "dtx/branch_targets.h"
#include "dtx/logger.h"
#include "dtx/result.h"
#include "dtx/transport/tls_options.h"

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dtx::server {

enum class StoreDriver { kSqlite, kPostgres };

// Store.Host ... Store.ConnMaxLifeTime: the PostgreSQL journal's settings,
// used with Store.Driver postgres (docs/server.md, docs/journal.md).
struct PostgresStoreConfig {
  std::string host;  // required with Store.Driver postgres
  int port = 5432;
  std::string user;  // empty: libpq's default (PGUSER, the OS user)
  std::string
      password;  // empty: libpq's (PGPASSWORD, ~/.pgpass); never printed
  std::string db = "dtx";
  std::string schema = "public";
  // Connections of the journal at most, its writers' included; 0: no cap.
  int64_t max_open_conns = 500;
  // Read connections kept open between reads.
  int64_t max_idle_conns = 500;
  // Read connections older than this are closed; 0: kept for ever. dtm's
  // unit: minutes.
  std::chrono::minutes conn_max_lifetime{5};
  // Store.ConnectTimeout (dtx): seconds a connection attempt may take.
  std::chrono::seconds connect_timeout{5};
  // Store.WriterConns (dtx): the journal's write connections, each with its
  // writer thread (PostgresJournalOptions::writers); fewer than
  // max_open_conns when that is set.
  int64_t writer_conns = 1;
};

struct ServerConfig {
  // MicroService.Driver / Target / EndPoint.
  std::string driver = "default";
  std::string target;
  std::string endpoint;
  // MicroService.InstanceId (dtx): the id this server registers under
  // (/microservices/<name>/<id>); empty: a new random one at each start.
  std::string instance_id;
  // Store.Driver: sqlite (the default; dtm's boltdb means the same) or
  // postgres.
  StoreDriver store_driver = StoreDriver::kSqlite;
  // Store.Path / Store.Synchronous (full|normal): the SQLite journal.
  std::string store_path = "dtx.db";
  bool durable_on_power_loss = true;
  // Store.Create (dtx; true|false): false refuses to start on a missing
  // Store.Path instead of creating an empty journal (docs/journal.md,
  // "Identity").
  bool store_create = true;
  // Store.Host, Port, ...: the PostgreSQL journal.
  PostgresStoreConfig postgres;
  // GrpcHost (dtx): the address both listeners (GrpcPort and HttpPort)
  // bind to; 0.0.0.0 (every interface, as dtm) by default. Beyond loopback
  // without Admin.Token the admin service is closed unless Admin.Open
  // (docs/security.md). GrpcPort: 0 picks a free port.
  std::string grpc_host = "0.0.0.0";
  int grpc_port = 36790;
  // HttpPort (dtm's): the HTTP listener, on grpc_host too; 0 picks a free
  // port.
  int http_port = 36789;
  // Seconds.
  std::chrono::seconds retry_interval{10};
  std::chrono::seconds retry_interval_max{3600};  // RetryIntervalMax (dtx)
  std::chrono::seconds timeout_to_fail{35};
  std::chrono::seconds request_timeout{3};
  std::chrono::seconds trans_cron_interval{3};
  std::chrono::seconds shutdown_grace{10};  // ShutdownGrace (dtx)
  // Retention (Store.FinishedDataExpire, Store.DataExpire; dtm's defaults):
  // a finished transaction is removed a day after it ended, or a week after
  // it was created; an unfinished one never. 0 turns a rule off.
  std::chrono::seconds finished_data_expire{86400};
  std::chrono::seconds data_expire{604800};
  // GrpcHandshakeTimeout (dtx): a gRPC connection that has not completed its
  // HTTP/2 handshake by then is closed.
  std::chrono::seconds grpc_handshake_timeout{10};
  int io_threads = 1;  // IoThreads (dtx)
  // Recovery without a stampede (dtx): Options::max_in_memory,
  // max_calls_per_target (0: no cap) and retry.jitter, in percent.
  int64_t max_trans_in_memory = 4096;           // MaxTransInMemory
  int64_t max_calls_per_target = 128;           // MaxCallsPerTarget
  int64_t retry_jitter_percent = 10;            // RetryJitter
  int64_t max_request_bytes = 4 * 1024 * 1024;  // MaxRequestBytes (dtx)
  // MaxConnections (dtx): connections open at once at most on each of the
  // gRPC and HTTP ports; beyond it refused with a message. 0: no limit.
  // Plaintext ports only (an error with TLS.CertFile).
  int64_t max_connections = 0;
  LogLevel log_level = LogLevel::kInfo;
  // Log.SummaryInterval (dtx): every so often one info line counts the
  // transactions finished since the last one and the backlog; 0: none.
  // Per-transaction lines are debug.
  std::chrono::seconds log_summary_interval{60};
  // Log.Outputs (dtm's): "stderr" and/or log file paths. Log.RotationEnable
  // (dtm's): rotate the files. Log.RotationConfigJSON (dtm's, lumberjack's
  // keys): maxsize (MB; dtx: may be fractional) and maxbackups (rotated files
  // kept); maxage, compress and localtime are not supported and are named in
  // log_rotation_ignored (warned at startup).
  std::vector<std::string> log_outputs{"stderr"};
  bool log_rotation_enable = false;
  std::string log_rotation_config_json = "{}";
  int64_t log_rotation_max_bytes = 100LL * 1024 * 1024;
  int64_t log_rotation_max_backups = 10;
  std::vector<std::string> log_rotation_ignored;
  // AlertRetryLimit / AlertWebHook (dtm's): after this many failed attempts
  // of a branch, POST an alert to the webhook (empty: no alerts).
  int64_t alert_retry_limit = 3;
  std::string alert_webhook;
  // Admin.Token (dtx): when set, every call of the admin service
  // (dtx.admin.v1.Admin: Query, List, Stats, ForceStop, RetryNow) and every
  // admin HTTP endpoint but /api/dtmsvr/version needs "Authorization: Bearer
  // TOKEN". dtm's own API (dtmgimp.Dtm, /api/dtmsvr/submit, ...) never does.
  std::string admin_token;
  // Admin.Open (dtx): with no Admin.Token and GrpcHost beyond loopback, the
  // admin service and endpoints answer PERMISSION_DENIED (403) unless this
  // is true. Without a token on loopback they are open, as dtm's.
  bool admin_open = false;
  // GrpcReflection (dtx): serve gRPC server reflection (grpcurl list).
  // Off by default: it advertises the admin service to anyone.
  bool grpc_reflection = false;
  // BranchTargets (dtx): the branch URLs transactions may name
  // (dtx/branch_targets.h, docs/security.md). Always enforced by
  // dtx-server: unix sockets and link-local or metadata addresses are
  // refused unless listed; empty lists allow everything else.
  BranchTargets branch_targets = [] {
    BranchTargets t;
    t.enforce = true;
    return t;
  }();
  // TLS.CertFile / TLS.KeyFile / TLS.ClientCAFile (dtx): both listeners
  // (GrpcPort and HttpPort) serve TLS with this certificate; with a client
  // CA, clients must present a certificate it signed. Unset: plaintext.
  TlsServerOptions tls;
  // BranchTLS (dtx, YAML only): a list of {Target, CAFile, CertFile,
  // KeyFile, ServerName}, the TLS of branch calls to the servers they name.
  std::vector<TlsClientRule> branch_tls;
};

// Where the configuration comes from. `env` looks a variable up (nullopt when
// unset); tests pass a map, main passes getenv.
struct ConfigSources {
  std::string yaml_path;                 // empty: no file
  std::optional<std::string> yaml_text;  // instead of a file, for tests
  std::function<std::optional<std::string>(const std::string&)> env;
  // Flag values by YAML key ("GrpcPort", "Store.Path", ...), applied last.
  std::map<std::string, std::string> flags;
};

struct LoadedConfig {
  ServerConfig config;
  std::vector<std::string> warnings;
};

// kInvalidArgument naming the key (and file) for a bad value or an unreadable
// file; kNotFound when yaml_path does not exist.
Result<LoadedConfig> LoadServerConfig(const ConfigSources& sources);

// dtm's environment name of a YAML key: "MicroService.EndPoint" ->
// "MICRO_SERVICE_END_POINT".
std::string EnvNameOf(const std::string& key);

// The effective configuration as YAML, for --print-config. Store.Password
// and Admin.Token are shown as "(set)", never as themselves.
std::string ToYaml(const ServerConfig& config);

}  // namespace dtx::server

#endif  // DTX_SERVER_SERVER_CONFIG_H_
