// The zero-configuration coordinator: the SQLite journal at
// EmbeddedOptions::journal_path and the branch clients, wired from Options:
// gRPC (GrpcBranchClient) and HTTP (HttpBranchClient: http://, https:// and
// the discovery:// URLs of protocol-http transactions), behind one
// RoutingBranchClient, so that a transaction may mix both.
//
//   dtx::EmbeddedOptions embedded;
//   embedded.journal_path = "/var/lib/payments/dtx.db";
//   DTX_ASSIGN_OR_RETURN(auto dtm, dtx::OpenEmbeddedCoordinator({}, embedded));
//
// Part of dtx::dtx (it links dtx::core, dtx::sqlite, dtx::grpc and
// dtx::http).

#ifndef DTX_EMBEDDED_H_
#define DTX_EMBEDDED_H_

#include "dtx/coordinator.h"
#include "dtx/embedded_export.h"
#include "dtx/transport/tls_options.h"

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace dtx {

class ServiceResolver;

struct EmbeddedOptions {
  // Path of the SQLite journal (created when missing; dtm's Store.Path).
  std::string journal_path = "dtx.db";
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
  // false: SQLite synchronous=NORMAL (survives a process crash, not power
  // loss).
  bool durable_on_power_loss = true;
  // Borrowed; null: the system clock.
  const Clock* clock = nullptr;
  std::shared_ptr<Logger> logger;
  // Borrowed; must outlive the coordinator. The coordinator's metrics
  // (CoordinatorDeps::metrics) and the journal's (SqliteJournalOptions::
  // metrics) are registered in it. Null: none.
  MetricsRegistry* metrics = nullptr;
  // Borrowed; must outlive the coordinator (CoordinatorDeps::alerts). Null:
  // no alerts.
  AlertSink* alerts = nullptr;
};

// Opens the journal at embedded.journal_path, then the coordinator, which
// resumes every unfinished transaction found there. kInvalidArgument for bad
// options (an empty journal_path included); the journal's errors (locked,
// corrupt, read-only, ...) as SqliteJournal::Open returns them.
DTX_EMBEDDED_EXPORT Result<std::unique_ptr<Coordinator>>
OpenEmbeddedCoordinator(Options options, EmbeddedOptions embedded = {});

}  // namespace dtx

#endif  // DTX_EMBEDDED_H_
