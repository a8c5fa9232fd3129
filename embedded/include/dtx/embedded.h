// The zero-configuration coordinator: the SQLite journal at
// EmbeddedOptions::journal_path and the gRPC branch client, wired from Options.
//
//   dtx::EmbeddedOptions embedded;
//   embedded.journal_path = "/var/lib/payments/dtx.db";
//   DTX_ASSIGN_OR_RETURN(auto dtm, dtx::OpenEmbeddedCoordinator({}, embedded));
//
// Part of dtx::dtx (it links dtx::core, dtx::sqlite and dtx::grpc).

#ifndef DTX_EMBEDDED_H_
#define DTX_EMBEDDED_H_

#include "dtx/coordinator.h"
#include "dtx/embedded_export.h"
#include "dtx/transport/tls_options.h"

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
  std::shared_ptr<ServiceResolver> resolver;
  // TLS of the gRPC branch calls to the servers these rules name
  // (GrpcBranchClientOptions::tls_rules; dtx-server's BranchTLS). The
  // target's own etcd TLS is in its query (?tls=true&caPath=...).
  std::vector<TlsClientRule> branch_tls;
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
