// The zero-configuration coordinator: the SQLite journal at
// EmbeddedOptions::journal_path (or, with EmbeddedOptions::postgres set, the
// PostgreSQL journal, which several coordinators may share) and the branch
// clients, wired from Options:
// gRPC (GrpcBranchClient) and HTTP (HttpBranchClient: http://, https:// and
// the discovery:// URLs of protocol-http transactions), behind one
// RoutingBranchClient, so that a transaction may mix both.
//
//   dtx::EmbeddedOptions embedded;
//   embedded.journal_path = "/var/lib/payments/dtx.db";
//   DTX_ASSIGN_OR_RETURN(auto dtm, dtx::OpenEmbeddedCoordinator({}, embedded));
//
//   dtx::EmbeddedPostgresOptions pg;    // or: the PostgreSQL journal
//   pg.host = "db.internal";
//   pg.user = "dtx";
//   pg.dbname = "payments";
//   embedded.postgres = pg;
//
// Part of dtx::dtx (it links dtx::core, dtx::sqlite, dtx::grpc and
// dtx::http, and dtx::postgres when dtx was built with libpq).

#ifndef DTX_EMBEDDED_H_
#define DTX_EMBEDDED_H_

#include "dtx/coordinator.h"
#include "dtx/embedded_export.h"
#include "dtx/transport/tls_options.h"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dtx {

class ServiceResolver;

// The PostgreSQL journal (dtx/storage/postgres_journal.h) under dtm's names:
// Store.Host, Port, User, Password, Db, Schema, MaxOpenConns, MaxIdleConns,
// ConnMaxLifeTime. docs/journal.md ("PostgreSQL") describes the journal.
struct EmbeddedPostgresOptions {
  // A libpq connection string ("host=... port=... user=... dbname=...") or
  // postgresql:// URI. Empty: made from host, port, user, password and
  // dbname (each quoted as libpq requires); libpq's environment variables
  // (PGPASSWORD, ...) fill what both leave out.
  std::string conninfo;
  std::string host;
  int port = 0;  // 0: libpq's default (5432, or PGPORT)
  std::string user;
  std::string password;
  std::string dbname;
  // The schema of the journal's tables, created when absent (Store.Schema).
  std::string schema = "public";
  // Connections of the journal at most, its writers' included
  // (MaxOpenConns): `writers` of them write, the rest read; reads beyond them
  // wait. 0: no cap; else at least writers + 1.
  std::size_t max_open_conns = 0;
  // Read connections kept open between reads (MaxIdleConns).
  std::size_t max_idle_conns = 4;
  // Read connections older than this are replaced (ConnMaxLifeTime);
  // 0: kept while they work. The writers' connections are kept.
  std::chrono::milliseconds conn_max_lifetime{0};
  // How long a connection attempt may take (whole seconds, at least 1).
  std::chrono::milliseconds connect_timeout{5000};
  // Write connections (PostgresJournalOptions::writers), counted in
  // max_open_conns, which must then leave at least one for reads.
  std::size_t writers = 1;
};

struct EmbeddedOptions {
  // Path of the SQLite journal (created when missing; dtm's Store.Path).
  // Unused when `postgres` is set.
  std::string journal_path = "dtx.db";
  // false: a missing journal_path fails OpenEmbeddedCoordinator with
  // kNotFound instead of creating an empty journal (dtm-server's
  // Store.Create; SqliteJournalOptions::create_if_missing).
  bool journal_create = true;
  // Called once when the SQLite journal's file is found deleted, replaced or
  // moved while open (SqliteJournalOptions::on_lost): from then on every
  // write and read answers kUnavailable. On the journal's writer thread;
  // keep it short.
  std::function<void(const Status&)> on_journal_lost;
  // Installs the WAL index guard (dtx/storage/wal_index_guard.h) before the
  // SQLite journal is opened: a SIGBUS from the journal's "-shm" mapping
  // (the file truncated while in use) then loses the journal, as a deleted
  // one is (on_journal_lost), instead of killing the process. It installs a
  // process-wide SIGBUS handler (faults elsewhere go on to the handler that
  // was there before), hence off by default; dtx-server turns it on. Linux
  // only: elsewhere OpenEmbeddedCoordinator returns kUnimplemented.
  bool guard_wal_index = false;
  // Set: the journal is in PostgreSQL instead (dtm's Store.Driver
  // postgres). Needs a dtx built with dtx::postgres (libpq found at build
  // time); without it OpenEmbeddedCoordinator returns kUnimplemented.
  std::optional<EmbeddedPostgresOptions> postgres;
  // dtm's MicroService.Driver: "default" or "dtm-driver-kratos".
  std::string driver = "default";
  // dtm's MicroService.Target: with the Kratos driver,
  // "discovery://<etcd host:port>/<name>" makes discovery:// branch URLs
  // resolve through that etcd (Kratos's registry layout). Empty: direct mode.
  std::string target;
  // The registry behind discovery:// URLs; overrides `target` when set.
  // Protocol-http transactions use its HTTP endpoints (ResolveHttp).
  std::shared_ptr<ServiceResolver> resolver;
  // TLS of branch calls, per target (the first rule matching the server's
  // host:port, then host; FindTlsRule): gRPC calls to a matching server use
  // TLS with the rule's CA, client certificate and name (dtx-server's
  // BranchTLS); https:// calls verify a matching server with the rule and
  // any other against the system's CA roots. Files are read at open: a
  // missing one fails OpenEmbeddedCoordinator. The registry's own etcd TLS
  // is in the target's query (?tls=true&caPath=...).
  std::vector<TlsClientRule> branch_tls;
  // HTTP branch calls: open connections per (scheme, host, port), and the
  // largest answer body accepted (a larger one is a transient failure).
  std::size_t http_max_connections_per_host = 64;
  std::size_t http_max_response_bytes = 4 * 1024 * 1024;
  // true: the answers of gRPC branch calls are taken by gRPC's callback
  // threads, not by a thread of the branch client's own. For a host that
  // serves gRPC callback services itself, as dtx-server does: those threads
  // then take its requests and the answers alike (GrpcBranchClientOptions::
  // Completions says why the default is the other way).
  bool branch_answers_on_grpc_threads = false;
  // false: SQLite synchronous=NORMAL (survives a process crash, not power
  // loss). The PostgreSQL journal follows the server's synchronous_commit.
  bool durable_on_power_loss = true;
  // Borrowed; null: the system clock.
  const Clock* clock = nullptr;
  std::shared_ptr<Logger> logger;
  // Borrowed; must outlive the coordinator. The coordinator's metrics
  // (CoordinatorDeps::metrics) and the journal's (SqliteJournalOptions::
  // metrics, PostgresJournalOptions::metrics) are registered in it. Null:
  // none.
  MetricsRegistry* metrics = nullptr;
  // Borrowed; must outlive the coordinator (CoordinatorDeps::alerts). Null:
  // no alerts.
  AlertSink* alerts = nullptr;
};

// Opens the journal (at embedded.journal_path, or in PostgreSQL), then the
// coordinator, which resumes every unfinished transaction found there.
// kInvalidArgument for bad options (an empty journal_path, postgres without
// conninfo or host, max_open_conns 1); the journal's errors as
// SqliteJournal::Open (locked, corrupt, read-only, ...) or PostgresJournal::
// Open (kUnavailable: the server cannot be reached; kPermissionDenied: it
// refuses the login; ...) return them, naming the server.
DTX_EMBEDDED_EXPORT Result<std::unique_ptr<Coordinator>>
OpenEmbeddedCoordinator(Options options, EmbeddedOptions embedded = {});

}  // namespace dtx

#endif  // DTX_EMBEDDED_H_
