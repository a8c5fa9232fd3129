#include "dtx/embedded.h"

#include "dtx/routing_branch_client.h"
#include "dtx/storage/sqlite_journal.h"
#include "dtx/storage/wal_index_guard.h"
#include "dtx/transport/branch_url.h"
#include "dtx/transport/grpc_branch_client.h"
#include "dtx/transport/http_branch_client.h"
#include "dtx/transport/kratos_registry.h"

#ifdef DTX_EMBEDDED_HAS_POSTGRES
#include "dtx/storage/postgres_journal.h"
#endif

#include <algorithm>

namespace dtx {
namespace {

Result<std::unique_ptr<Journal>> OpenPostgresJournal(
    const EmbeddedOptions& embedded) {
  const EmbeddedPostgresOptions& pg = *embedded.postgres;
  if (pg.conninfo.empty() && pg.host.empty()) {
    return InvalidArgumentError(
        "embedded: postgres: neither conninfo nor host is set");
  }
  if (pg.writers == 0)
    return InvalidArgumentError(
        "embedded: postgres: writers is 0 (at least 1)");
  if (pg.max_open_conns != 0 && pg.max_open_conns <= pg.writers) {
    return InvalidArgumentError(
        "embedded: postgres: max_open_conns " +
        std::to_string(pg.max_open_conns) + " is too few: the journal needs " +
        std::to_string(pg.writers) +
        " connection(s) for writes and at least one for reads (0: no cap)");
  }
#ifdef DTX_EMBEDDED_HAS_POSTGRES
  PostgresJournalOptions options;
  if (!pg.conninfo.empty()) {
    options.conninfo = pg.conninfo;
  } else {
    PostgresServerAddress address;
    address.host = pg.host;
    address.port = pg.port;
    address.user = pg.user;
    address.password = pg.password;
    address.dbname = pg.dbname;
    options.conninfo = MakePostgresConninfo(address);
  }
  options.schema = pg.schema;
  // The writers hold connections of max_open_conns; reads share the rest,
  // and no more of them idle than may be open.
  options.writers = pg.writers;
  options.max_readers =
      pg.max_open_conns == 0 ? 0 : pg.max_open_conns - options.writers;
  options.max_idle_readers =
      options.max_readers == 0
          ? pg.max_idle_conns
          : std::min(pg.max_idle_conns, options.max_readers);
  options.reader_max_lifetime = pg.conn_max_lifetime;
  options.connect_timeout = pg.connect_timeout;
  options.clock = embedded.clock;
  options.logger = embedded.logger;
  options.metrics = embedded.metrics;
  DTX_ASSIGN_OR_RETURN(auto journal, PostgresJournal::Open(options));
  return std::unique_ptr<Journal>(std::move(journal));
#else
  return UnimplementedError(
      "embedded: postgres: this dtx was built without the PostgreSQL journal "
      "(libpq was not found: install libpq-dev and build dtx again)");
#endif
}

Result<std::unique_ptr<Journal>> OpenJournal(const EmbeddedOptions& embedded) {
  if (embedded.postgres) return OpenPostgresJournal(embedded);
  if (embedded.journal_path.empty())
    return InvalidArgumentError("embedded: journal_path is empty");
  SqliteJournalOptions journal_options;
  journal_options.path = embedded.journal_path;
  journal_options.synchronous = embedded.durable_on_power_loss
                                    ? SqliteJournalOptions::Sync::kFull
                                    : SqliteJournalOptions::Sync::kNormal;
  journal_options.clock = embedded.clock;
  journal_options.logger = embedded.logger;
  journal_options.metrics = embedded.metrics;
  journal_options.create_if_missing = embedded.journal_create;
  journal_options.on_lost = embedded.on_journal_lost;
  if (embedded.guard_wal_index) {
    DTX_RETURN_IF_ERROR(InstallWalIndexGuard().WithPrefix("embedded"));
  }
  DTX_ASSIGN_OR_RETURN(auto journal, SqliteJournal::Open(journal_options));
  return std::unique_ptr<Journal>(std::move(journal));
}

}  // namespace

Result<std::unique_ptr<Coordinator>> OpenEmbeddedCoordinator(
    Options options, EmbeddedOptions embedded) {
  DTX_RETURN_IF_ERROR(options.Validate());
  DTX_ASSIGN_OR_RETURN(std::unique_ptr<Journal> journal, OpenJournal(embedded));

  std::shared_ptr<ServiceResolver> resolver = embedded.resolver;
  if (!resolver && !embedded.target.empty()) {
    if (embedded.driver != kKratosDriver) {
      return InvalidArgumentError("MicroService.Target '" + embedded.target +
                                  "' needs the driver '" +
                                  std::string(kKratosDriver) + "'");
    }
    DTX_ASSIGN_OR_RETURN(RegistryTarget target,
                         ParseRegistryTarget(embedded.target));
    EtcdServiceResolver::Options resolver_options;
    resolver_options.logger = embedded.logger;
    DTX_ASSIGN_OR_RETURN(
        resolver, EtcdServiceResolver::Connect(EtcdClientOptionsFor(target),
                                               resolver_options));
  }

  const auto request_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          options.request_timeout);
  GrpcBranchClientOptions client_options;
  client_options.driver = embedded.driver;
  client_options.resolver = resolver;
  client_options.default_timeout = request_timeout;
  client_options.tls_rules = embedded.branch_tls;
  client_options.logger = embedded.logger;
  if (embedded.branch_answers_on_grpc_threads) {
    client_options.completions =
        GrpcBranchClientOptions::Completions::kGrpcCallbackThreads;
  }
  DTX_ASSIGN_OR_RETURN(auto grpc, GrpcBranchClient::Create(client_options));

  HttpBranchClientOptions http_options;
  http_options.default_timeout = request_timeout;
  http_options.http.tls_rules = std::move(embedded.branch_tls);
  http_options.http.max_connections_per_host =
      embedded.http_max_connections_per_host;
  http_options.http.max_response_bytes = embedded.http_max_response_bytes;
  http_options.logger = embedded.logger;
  // As the gRPC client: registry URLs only under the Kratos driver.
  if (resolver && embedded.driver == kKratosDriver) {
    http_options.resolver = [resolver](const std::string& service) {
      return resolver->ResolveHttp(service);
    };
  }
  DTX_ASSIGN_OR_RETURN(auto http, HttpBranchClient::Create(http_options));
  auto client =
      std::make_unique<RoutingBranchClient>(std::move(grpc), std::move(http));

  CoordinatorDeps deps;
  deps.journal = std::move(journal);
  deps.branch_client = std::move(client);
  deps.clock = embedded.clock;
  deps.logger = embedded.logger;
  deps.metrics = embedded.metrics;
  deps.alerts = embedded.alerts;
  return Coordinator::Open(std::move(options), std::move(deps));
}

}  // namespace dtx
