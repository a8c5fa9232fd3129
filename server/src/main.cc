// dtx-server: the coordinator as a standalone server speaking dtm's gRPC
// protocol (dtmgimp.Dtm), with a SQLite journal (or a PostgreSQL one,
// Store.Driver postgres), and an HTTP listener on dtm's HttpPort. See
// docs/server.md.
//
//   dtx-server [-c conf.yml] [-d] [--grpc-host H] [--grpc-port N]
//              [--http-port N] [--store-path FILE] [--log-level L]
//              [--print-config]
//
// Prints "dtx-server: listening on H:PORT" (gRPC) once it serves,
// "dtx-server: registered in etcd as KEY" after registering, then
// "dtx-server: http listening on H:PORT". SIGTERM or SIGINT: leaves the
// registry, finishes requests in progress on both listeners (ShutdownGrace),
// hands unfinished transactions back to the journal, exits 0.

#include "dtx/embedded.h"
#include "dtx/metrics.h"
#include "dtx/server/server_config.h"
#include "dtx/server_metrics.h"
#include "dtx/transport/dtm_server.h"
#include "dtx/transport/grpc_process.h"
#include "dtx/transport/http_router.h"
#include "dtx/transport/http_server.h"
#include "dtx/transport/webhook_alert_sink.h"
#include "dtx/version.h"

#include "admin_http.h"
#include "console.h"
#include "dtm_http_api.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <sstream>
#include <sys/resource.h>
#include <thread>

namespace {

// host:port, with an IPv6 host in brackets (given with or without them).
std::string JoinHostPort(const std::string& host, int64_t port) {
  const bool bracketed =
      host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (!bracketed && host.find(':') != std::string::npos)
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<std::string> GetEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// Where the journal is, for messages: never the password. The SQLite file's
// absolute path, which the journal also opens.
std::string JournalName(const dtx::server::ServerConfig& config) {
  if (config.store_driver != dtx::server::StoreDriver::kPostgres) {
    std::error_code ec;
    auto absolute = std::filesystem::absolute(config.store_path, ec);
    return ec ? config.store_path : absolute.lexically_normal().string();
  }
  const dtx::server::PostgresStoreConfig& pg = config.postgres;
  return "postgres " + JoinHostPort(pg.host, pg.port) + "/" + pg.db +
         " schema " + pg.schema;
}

// Store.Host ... as the embedded coordinator takes them.
dtx::EmbeddedPostgresOptions PostgresOptions(
    const dtx::server::PostgresStoreConfig& pg) {
  dtx::EmbeddedPostgresOptions out;
  out.host = pg.host;
  out.port = pg.port;
  out.user = pg.user;
  out.password = pg.password;
  out.dbname = pg.db;
  out.schema = pg.schema;
  out.max_open_conns = static_cast<std::size_t>(pg.max_open_conns);
  out.max_idle_conns = static_cast<std::size_t>(pg.max_idle_conns);
  out.conn_max_lifetime = pg.conn_max_lifetime;
  out.connect_timeout = pg.connect_timeout;
  out.writers = static_cast<std::size_t>(pg.writer_conns);
  return out;
}

// A journal lost while serving (deleted, replaced or moved: docs/journal.md,
// "Identity"): the journal answers UNAVAILABLE from then on; this turns both
// health checks to NOT_SERVING. The journal's callback may run before the
// gRPC server exists or while it stops, hence the mutex.
struct JournalHealth {
  std::atomic<bool> lost{false};
  std::mutex mu;
  dtx::DtmServer* server = nullptr;  // guarded by mu

  void Lost() {
    lost = true;
    std::lock_guard<std::mutex> lock(mu);
    if (server != nullptr) server->SetServing(false);
  }
  void Attach(dtx::DtmServer* s) {
    std::lock_guard<std::mutex> lock(mu);
    server = s;
    if (server != nullptr && lost) server->SetServing(false);
  }
};

// Log.SummaryInterval: one info line every interval, in place of the
// per-transaction lines (debug): what this coordinator finished since the
// last line and what the journal still holds.
class SummaryLog {
 public:
  SummaryLog(dtx::Coordinator& coordinator, std::shared_ptr<dtx::Logger> logger,
             std::chrono::seconds interval)
      : coordinator_(coordinator),
        logger_(std::move(logger)),
        interval_(interval) {
    if (interval_.count() <= 0) return;
    last_ = coordinator_.Decisions();
    thread_ = std::thread([this] { Run(); });
  }
  ~SummaryLog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
      lock.unlock();
      Report();
      lock.lock();
    }
  }

  void Report() {
    using dtx::TransStatus;
    const dtx::StatusCounts now = coordinator_.Decisions();
    auto since = [&](TransStatus s) { return now[s] - last_[s]; };
    std::ostringstream line;
    line << "dtx-server: in the last " << interval_.count() << " s "
         << since(TransStatus::kSucceed) << " succeeded, "
         << since(TransStatus::kFailed) << " failed, "
         << since(TransStatus::kAborting) << " began to roll back, "
         << since(TransStatus::kSubmitted) << " prepared were submitted";
    last_ = now;
    auto stats = coordinator_.Stats();
    if (stats.ok()) {
      line << "; backlog " << stats->unfinished.unfinished << " unfinished ("
           << stats->unfinished.due << " due)";
    } else {
      line << "; backlog unknown (" << stats.status() << ")";
    }
    logger_->Log(dtx::LogLevel::kInfo, line.str());
  }

  dtx::Coordinator& coordinator_;
  const std::shared_ptr<dtx::Logger> logger_;
  const std::chrono::seconds interval_;
  dtx::StatusCounts last_;  // only the thread, once started
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

// RLIMIT_NOFILE's soft limit up to its hard limit: each client connection,
// branch channel and journal file is a descriptor, and at the usual soft
// 1024 new clients hung once it was reached. What was done is logged.
std::string RaiseOpenFilesLimit() {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return std::string("cannot read the open files limit: ") +
           std::strerror(errno);
  }
  if (limit.rlim_cur == limit.rlim_max) {
    return "open files limit " + std::to_string(limit.rlim_cur) +
           " (the hard limit)";
  }
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return "open files limit stays " + std::to_string(before) +
           ": cannot raise it to " + std::to_string(limit.rlim_max) + ": " +
           std::strerror(errno);
  }
  return "open files limit raised from " + std::to_string(before) + " to " +
         std::to_string(limit.rlim_max) + " (the hard limit)";
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "dtx-server: %s\n", message.c_str());
  return 1;
}

// The HTTP routes dtx-server has so far: dtm's ping, metrics, transaction
// API (dtm_http_api.h) and admin API (admin_http.h), the web console
// (console.h), and a health check that is 200 while the coordinator takes
// requests (it answers NewGid). REQUIRES: `coordinator` outlives the handler
// (the HTTP server is shut down before the coordinator). Every request is
// counted in `server_metrics` (dtm_server_*{type="http"}).
dtx::Result<dtx::HttpHandler> HttpRoutes(
    dtx::Coordinator* coordinator, const dtx::MetricsRegistry* metrics,
    dtx::ServerMetrics* server_metrics,
    const dtx::server::AdminHttpOptions& admin,
    const dtx::server::DtmHttpApiOptions& api,
    const JournalHealth* journal_health) {
  dtx::HttpRouter router;
  router.set_metrics(server_metrics);
  DTX_RETURN_IF_ERROR(dtx::server::AddDtmApiRoutes(router, coordinator, api));
  DTX_RETURN_IF_ERROR(dtx::server::AddAdminRoutes(router, coordinator, admin));
  // dtm's path; Prometheus's text format (docs/operations.md).
  router.Handle(
      "GET", "/api/metrics",
      [metrics](const dtx::HttpRequest&, const dtx::HttpResponder& r) {
        dtx::HttpResponse response;
        response.content_type = std::string(dtx::kPrometheusTextContentType);
        response.body = metrics->RenderText();
        r.Respond(std::move(response));
      });
  router.Handle(dtx::HttpRouter::kAnyMethod, "/api/ping",
                [](const dtx::HttpRequest&, const dtx::HttpResponder& r) {
                  r.Respond(dtx::HttpResponse::Json(200, R"({"msg":"pong"})"));
                });
  router.Handle(
      "GET", "/api/health",
      [coordinator, journal_health](const dtx::HttpRequest&,
                                    dtx::HttpResponder r) {
        if (journal_health->lost) {
          r.Respond(
              dtx::HttpResponse::Json(503, R"({"status":"NOT_SERVING"})"));
          return;
        }
        coordinator->NewGidAsync([r](const dtx::Result<std::string>& gid) {
          r.Respond(
              gid.ok() ? dtx::HttpResponse::Json(200, R"({"status":"SERVING"})")
                       : dtx::HttpResponse::Json(
                             503, R"({"status":"NOT_SERVING"})"));
        });
      });
  DTX_RETURN_IF_ERROR(dtx::server::AddConsoleRoutes(router));  // GET /
  return router.Build();
}

}  // namespace

int main(int argc, char** argv) {
  // Signals are taken by sigwait below; block them before any thread starts
  // so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // Before any thread takes an absl::Mutex (grpc_process.h).
  dtx::DisableMutexDeadlockDetection();
  // Before any thread or descriptor; logged once the logger exists.
  const std::string open_files = RaiseOpenFilesLimit();

  CLI::App app{
      "dtx-server: a transaction coordinator speaking dtm's gRPC "
      "protocol, with a SQLite or PostgreSQL journal"};
  std::string config_path;
  bool debug = false;
  bool print_config = false;
  std::string grpc_host, grpc_port, http_port, store_path, log_level;
  app.add_option("-c,--config", config_path, "YAML config file (dtm's keys)");
  app.add_flag("-d,--debug", debug, "log at debug level");
  app.add_option("--grpc-host", grpc_host, "address to listen on (GrpcHost)");
  app.add_option("--grpc-port", grpc_port,
                 "port to listen on, 0 = any (GrpcPort)");
  app.add_option("--http-port", http_port,
                 "HTTP port to listen on, 0 = any (HttpPort)");
  app.add_option("--store-path", store_path,
                 "SQLite journal file (Store.Path)");
  app.add_option("--log-level", log_level, "debug|info|warn|error (LogLevel)");
  app.add_flag("--print-config", print_config,
               "print the effective configuration and exit");
  app.set_version_flag("-v,--version",
                       std::string("dtx-server ") + DTX_VERSION_STRING);
  CLI11_PARSE(app, argc, argv);

  dtx::server::ConfigSources sources;
  sources.yaml_path = config_path;
  sources.env = GetEnv;
  if (!grpc_host.empty()) sources.flags["GrpcHost"] = grpc_host;
  if (!grpc_port.empty()) sources.flags["GrpcPort"] = grpc_port;
  if (!http_port.empty()) sources.flags["HttpPort"] = http_port;
  if (!store_path.empty()) sources.flags["Store.Path"] = store_path;
  if (!log_level.empty()) sources.flags["LogLevel"] = log_level;
  if (debug) sources.flags["LogLevel"] = "debug";
  auto loaded = dtx::server::LoadServerConfig(sources);
  if (!loaded.ok()) return Fail(loaded.status().message());
  const dtx::server::ServerConfig& config = loaded->config;
  if (print_config) {
    std::fputs(dtx::server::ToYaml(config).c_str(), stdout);
    return 0;
  }

  // Log.Outputs: stderr and/or files, rotated with Log.RotationEnable.
  bool to_stderr = false;
  std::vector<dtx::LogFile> log_files;
  for (const std::string& output : config.log_outputs) {
    if (output == "stderr") {
      to_stderr = true;
      continue;
    }
    dtx::LogFile file;
    file.path = output;
    file.rotate = config.log_rotation_enable;
    file.max_bytes = static_cast<std::size_t>(config.log_rotation_max_bytes);
    file.max_files = static_cast<std::size_t>(config.log_rotation_max_backups);
    log_files.push_back(std::move(file));
  }
  auto opened_logger = dtx::NewLogger(config.log_level, to_stderr, log_files);
  if (!opened_logger.ok()) {
    return Fail("Log.Outputs: " + opened_logger.status().message());
  }
  std::shared_ptr<dtx::Logger> logger = *std::move(opened_logger);
  for (const std::string& warning : loaded->warnings) {
    DTX_LOG(logger, dtx::LogLevel::kWarn, warning);
  }
  DTX_LOG(logger, dtx::LogLevel::kInfo, "dtx-server: " << open_files);
  for (const std::string& key : config.log_rotation_ignored) {
    DTX_LOG(logger, dtx::LogLevel::kWarn,
            "Log.RotationConfigJSON: " << key << " is not supported; ignored");
  }
  // Who may use the admin service and endpoints (docs/security.md): said
  // once at startup, whichever it is.
  const bool loopback = dtx::server::IsLoopbackHost(config.grpc_host);
  const bool admin_closed =
      config.admin_token.empty() && !loopback && !config.admin_open;
  if (!config.admin_token.empty()) {
    DTX_LOG(logger, dtx::LogLevel::kInfo,
            "dtx-server: admin service and endpoints need Admin.Token");
  } else if (loopback) {
    DTX_LOG(logger, dtx::LogLevel::kInfo,
            "dtx-server: admin service and endpoints open without a token "
            "(GrpcHost "
                << config.grpc_host << " is loopback)");
  } else if (config.admin_open) {
    DTX_LOG(logger, dtx::LogLevel::kWarn,
            "dtx-server: admin service and endpoints OPEN without a token on "
                << config.grpc_host
                << " (Admin.Open: true): anyone who reaches the ports can read "
                   "every transaction's payloads and headers and force-stop "
                   "them; set Admin.Token");
  } else {
    DTX_LOG(logger, dtx::LogLevel::kWarn,
            "dtx-server: admin service and endpoints CLOSED: GrpcHost "
                << config.grpc_host
                << " is beyond loopback and Admin.Token is not set (set "
                   "Admin.Token, or Admin.Open: true; docs/security.md)");
  }

  dtx::Options options;
  options.retry.initial_interval = config.retry_interval;
  options.retry.max_interval = config.retry_interval_max;
  options.timeout_to_fail = config.timeout_to_fail;
  options.request_timeout = config.request_timeout;
  options.cron_interval = config.trans_cron_interval;
  options.max_in_memory = static_cast<std::size_t>(config.max_trans_in_memory);
  options.max_calls_per_target =
      static_cast<std::size_t>(config.max_calls_per_target);
  options.retry.jitter =
      static_cast<double>(config.retry_jitter_percent) / 100.0;
  options.finished_data_expire = config.finished_data_expire;
  options.data_expire = config.data_expire;
  options.io_threads = static_cast<std::size_t>(config.io_threads);
  options.alert_retry_limit = config.alert_retry_limit;
  options.branch_targets = config.branch_targets;
  // Before the coordinator, which reports to them: they must outlive it.
  dtx::MetricsRegistry metrics;
  dtx::ServerMetrics::Info info;
  info.version = DTX_VERSION_STRING;
  info.grpc_version = dtx::GrpcVersion();
  auto server_metrics = dtx::ServerMetrics::Register(metrics, info);
  if (!server_metrics.ok()) return Fail(server_metrics.status().ToString());
  std::unique_ptr<dtx::WebhookAlertSink> alerts;
  if (!config.alert_webhook.empty()) {
    dtx::WebhookAlertSinkOptions alert_options;
    alert_options.url = config.alert_webhook;
    alert_options.metrics = &metrics;
    alert_options.logger = logger;
    auto started = dtx::WebhookAlertSink::Start(alert_options);
    if (!started.ok()) {
      return Fail(started.status().message() + " (AlertWebHook)");
    }
    alerts = std::move(started).value();
  }
  // The coordinator calls gRPC and HTTP branches (docs/http.md); BranchTLS
  // (embedded.branch_tls) says which servers are called over TLS and how
  // they are checked (docs/tls.md).
  dtx::EmbeddedOptions embedded;
  embedded.metrics = &metrics;
  embedded.alerts = alerts.get();
  embedded.journal_path = config.store_path;
  if (config.store_driver == dtx::server::StoreDriver::kPostgres) {
    embedded.postgres = PostgresOptions(config.postgres);
  }
  embedded.driver = config.driver;
  embedded.target = config.target;
  embedded.branch_tls = config.branch_tls;
  embedded.durable_on_power_loss = config.durable_on_power_loss;
  embedded.logger = logger;
  // dtx-server's services run gRPC's callback threads: they take the
  // branch answers too (EmbeddedOptions::branch_answers_on_grpc_threads).
  embedded.branch_answers_on_grpc_threads = true;
  // Store.Create, and a lost journal turning health to NOT_SERVING.
  static JournalHealth journal_health;
  embedded.journal_create = config.store_create;
  embedded.on_journal_lost = [](const dtx::Status&) { journal_health.Lost(); };
  // A truncated -shm file loses the journal instead of killing the server
  // (docs/journal.md, "The WAL index").
  embedded.guard_wal_index =
      config.store_driver != dtx::server::StoreDriver::kPostgres;
  // Unusable TLS files stop the server before it opens the journal and
  // resumes anything.
  if (dtx::Status tls = dtx::HttpServer::CheckTls(config.tls); !tls.ok()) {
    return Fail(tls.message());
  }
  auto coordinator = dtx::OpenEmbeddedCoordinator(options, embedded);
  if (!coordinator.ok()) {
    const bool missing =
        !config.store_create &&
        config.store_driver != dtx::server::StoreDriver::kPostgres &&
        coordinator.status().code() == dtx::StatusCode::kNotFound;
    return Fail("cannot open the coordinator (journal " + JournalName(config) +
                "): " + coordinator.status().ToString() +
                (missing ? " (Store.Create is false: dtx-server does not "
                           "create a missing journal; restore the file or "
                           "set Store.Create: true for a first start)"
                         : ""));
  }

  // HTTP first: a port in use stops the server before it registers in etcd.
  dtx::server::AdminHttpOptions admin_http;
  admin_http.admin_token = config.admin_token;
  admin_http.closed = admin_closed;
  dtx::server::DtmHttpApiOptions api_http;
  api_http.logger = logger;
  auto routes = HttpRoutes(coordinator->get(), &metrics, server_metrics->get(),
                           admin_http, api_http, &journal_health);
  if (!routes.ok()) {
    (*coordinator)->Shutdown();
    return Fail(routes.status().ToString());
  }
  dtx::HttpServerOptions http_options;
  http_options.host = config.grpc_host;
  http_options.port = config.http_port;
  http_options.max_body_bytes =
      static_cast<std::size_t>(config.max_request_bytes);
  http_options.tls = config.tls;
  http_options.max_connections =
      static_cast<std::size_t>(config.max_connections);
  http_options.logger = logger;
  auto http = dtx::HttpServer::Start(http_options, *std::move(routes));
  if (!http.ok()) {
    (*coordinator)->Shutdown();
    return Fail("HttpPort " + std::to_string(config.http_port) + ": " +
                http.status().message());
  }

  dtx::DtmServerOptions server_options;
  server_options.listen_address =
      JoinHostPort(config.grpc_host, config.grpc_port);
  server_options.max_request_bytes =
      static_cast<std::size_t>(config.max_request_bytes);
  server_options.handshake_timeout = config.grpc_handshake_timeout;
  server_options.max_connections =
      static_cast<std::size_t>(config.max_connections);
  server_options.driver = config.driver;
  server_options.registry_target = config.target;
  server_options.endpoint = config.endpoint;
  server_options.instance_id = config.instance_id;
  server_options.admin_token = config.admin_token;
  server_options.admin_closed = admin_closed;
  server_options.reflection = config.grpc_reflection;
  server_options.tls = config.tls;
  server_options.logger = logger;
  server_options.metrics = server_metrics->get();
  auto server = dtx::DtmServer::Start(**coordinator, server_options);
  if (!server.ok()) {
    (*http)->Shutdown(std::chrono::milliseconds(0));
    (*coordinator)->Shutdown();
    return Fail(server.status().ToString());
  }
  journal_health.Attach(server->get());
  std::printf("dtx-server: listening on %s\n",
              JoinHostPort(config.grpc_host, (*server)->port()).c_str());
  const std::string key = (*server)->registry_key();
  if (!key.empty()) {
    std::printf("dtx-server: registered in etcd as %s\n", key.c_str());
  }
  // After the lines above, which tests and scripts read first.
  std::printf("dtx-server: http listening on %s\n",
              JoinHostPort(config.grpc_host, (*http)->port()).c_str());
  std::fflush(stdout);
  DTX_LOG(logger, dtx::LogLevel::kInfo,
          "dtx-server " << DTX_VERSION_STRING << " serving dtmgimp.Dtm on port "
                        << (*server)->port() << ", HTTP on "
                        << (*http)->address() << ", journal "
                        << JournalName(config)
                        << (config.tls.enabled()
                                ? ", TLS with " + config.tls.cert_file +
                                      (config.tls.client_ca_file.empty()
                                           ? std::string()
                                           : " (client certificates of " +
                                                 config.tls.client_ca_file +
                                                 " required)")
                                : std::string()));

  std::optional<SummaryLog> summary;
  summary.emplace(**coordinator, logger, config.log_summary_interval);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  summary.reset();
  DTX_LOG(logger, dtx::LogLevel::kInfo,
          "dtx-server: " << (signal_number == SIGINT ? "SIGINT" : "SIGTERM")
                         << " received; shutting down");
  // A second signal means "now": exit without draining.
  std::thread([stop_signals] {
    int again = 0;
    sigwait(&stop_signals, &again);
    std::fputs("dtx-server: second signal; exiting at once\n", stderr);
    std::_Exit(1);
  }).detach();
  // Requests still waiting for the coordinator after ShutdownGrace (a
  // WaitResult pass, a slow branch) are answered UNAVAILABLE (gRPC) or 503
  // (HTTP) by the servers, which drain side by side; their transactions stay
  // in the journal. Then the coordinator stops.
  std::thread http_drain(
      [&http, grace = config.shutdown_grace] { (*http)->Shutdown(grace); });
  (*server)->Shutdown(config.shutdown_grace);
  http_drain.join();
  journal_health.Attach(nullptr);
  (*coordinator)->Shutdown();
  // Alerts still being sent get a moment; the coordinator reports no more.
  if (alerts) {
    alerts->Shutdown(std::min<std::chrono::milliseconds>(
        config.shutdown_grace, std::chrono::seconds(2)));
  }
  DTX_LOG(logger, dtx::LogLevel::kInfo, "dtx-server: stopped");
  return 0;
}
