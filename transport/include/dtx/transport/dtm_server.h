// DtmServer: serves a Coordinator over dtm's gRPC protocol, so that dtm's SDKs
// (Go, Java, Python, ...), Kratos apps and GrpcDtmClient can use it.
//
//   dtmgimp.Dtm           NewGid, Prepare, Submit, Abort, RegisterBranch;
//                         PrepareWorkflow, Subscribe, Unsubscribe, DeleteTopic
//                         answer UNIMPLEMENTED.
//   dtx.admin.v1.Admin    Query, List, Stats, ForceStop, RetryNow.
//   grpc.health.v1.Health, and server reflection when asked for.
//
// Errors as dtm maps them: FAILURE is ABORTED, ONGOING is FAILED_PRECONDITION;
// a malformed request is INVALID_ARGUMENT and changes nothing (a request of
// Prepare, Submit, Abort, RegisterBranch, ForceStop or RetryNow whose bytes
// are not the method's message too, with a message saying so, where gRPC's
// own handlers would answer UNIMPLEMENTED with none).
//
// Requests are answered on gRPC's callback reactors: each handler hands the
// request to the coordinator's callback form and finishes the call when the
// coordinator's callback runs. No thread waits for a request, so a Submit
// with WaitResult whose branch is slow holds memory, not a thread, and
// unrelated requests are not delayed by it. A caller that cancels (or whose
// deadline passes) is answered CANCELLED at once; the coordinator's answer,
// when it comes, is dropped.
//
// With a registry target (dtm's MicroService.Target and EndPoint) the server
// registers itself in etcd the way dtm's Kratos driver does, once it serves,
// and deregisters first thing in Shutdown.
//
//   dtx::DtmServerOptions options;
//   options.listen_address = "0.0.0.0:36790";
//   DTX_ASSIGN_OR_RETURN(auto server, dtx::DtmServer::Start(*coordinator,
//                                                           options));
//   ...
//   server->Shutdown(std::chrono::seconds(10));
//
// Thread safety: thread-safe. The coordinator must outlive the server.

#ifndef DTX_TRANSPORT_DTM_SERVER_H_
#define DTX_TRANSPORT_DTM_SERVER_H_

#include "dtx/coordinator.h"
#include "dtx/logger.h"
#include "dtx/result.h"
#include "dtx/server_metrics.h"
#include "dtx/transport/grpc_export.h"
#include "dtx/transport/tls_options.h"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace dtx {

struct DTX_GRPC_EXPORT DtmServerOptions {
  // "host:port"; port 0 picks a free one (see DtmServer::port()).
  std::string listen_address = "0.0.0.0:36790";
  // The listener's certificate and key (dtx-server's TLS.CertFile and
  // TLS.KeyFile), and the CAs of client certificates (TLS.ClientCAFile:
  // clients must then present one). Not enabled: plaintext. The files are
  // read by Start: kInvalidArgument naming the file when one cannot be
  // read, holds no PEM certificate or key, or the key does not belong to the
  // certificate; an expired certificate is a warning in the log.
  TlsServerOptions tls;
  // Largest request accepted, in bytes; larger ones get RESOURCE_EXHAUSTED.
  std::size_t max_request_bytes = 4 * 1024 * 1024;
  // A connection that has not completed its HTTP/2 handshake (the client's
  // preface and SETTINGS, after TLS when on) within this is closed: raw TCP
  // connections that never speak HTTP/2 held descriptors for two minutes,
  // gRPC's default. Zero: gRPC's default.
  std::chrono::milliseconds handshake_timeout{10000};
  // Connections open at once at most (dtx-server's MaxConnections); a
  // connection beyond it is closed at once, which a gRPC client reports as
  // UNAVAILABLE, instead of hanging at the descriptor limit, and the log
  // says why (a warning at most every 10 s, with the count). Counted from
  // accept until the connection closes. Zero: no limit (gRPC's own listener). A
  // plaintext port only: with `tls`, Start answers kInvalidArgument (gRPC 1.51
  // cannot hand an accepted connection to a TLS listener).
  std::size_t max_connections = 0;
  // gRPC server reflection (grpcurl list), for this server only. Off by
  // default: it advertises every service, the admin service included.
  bool reflection = false;
  bool health = true;
  // dtm's MicroService block. With driver "dtm-driver-kratos" and a
  // "discovery://<etcd hosts>/<name>" target, the server registers
  // `endpoint` (e.g. "grpc://10.0.0.5:36790"; comma-separated for several)
  // under /microservices/<name>/<id>. An empty target: no registration.
  std::string driver = "default";
  std::string registry_target;
  std::string endpoint;
  // The <id> of the registration (dtx-server's MicroService.InstanceId):
  // visible ASCII without '/', at most 128 bytes. Empty: a new random id at
  // each start. Two servers given one id share one key (the later
  // replaces the other's registration).
  std::string instance_id;
  std::chrono::seconds registry_ttl{15};
  // dtx-server's Admin.Token. When non-empty, every call of the admin
  // service (Query, List, Stats, ForceStop, RetryNow) needs the call
  // metadata "authorization: Bearer <token>" (UNAUTHENTICATED otherwise;
  // compared in constant time). dtmgimp.Dtm never needs it. Empty: the admin
  // service is open, as dtm's admin API is, unless admin_closed.
  std::string admin_token;
  // With no admin_token: every admin call answers PERMISSION_DENIED saying
  // how to open it (dtx-server sets it when it listens beyond loopback
  // without Admin.Token or Admin.Open). Ignored when admin_token is set.
  bool admin_closed = false;
  // Null: no logging.
  std::shared_ptr<Logger> logger;
  // Borrowed; must outlive the server. Every request of dtmgimp.Dtm and
  // dtx.admin.v1.Admin is counted and timed in it, from its arrival to its
  // answer, as dtm_server_process_total{type="grpc",api,status} and
  // dtm_server_response_duration{type="grpc",api}, with api the method's
  // name in lower case as dtm spells it ("submit", "registerbranch",
  // "query"). Null: none.
  ServerMetrics* metrics = nullptr;
};

// The version of the gRPC library dtx runs on ("1.51.1"), for
// dtm_server_info's grpc_version.
DTX_GRPC_EXPORT std::string GrpcVersion();

class DTX_GRPC_EXPORT DtmServer {
 public:
  // Binds, starts serving, then registers (when configured). Errors:
  // kInvalidArgument for bad options, kUnavailable when the address cannot be
  // bound or etcd cannot be reached; nothing is left running on error.
  static Result<std::unique_ptr<DtmServer>> Start(Coordinator& coordinator,
                                                  DtmServerOptions options);

  // Shutdown(0).
  ~DtmServer();
  DtmServer(const DtmServer&) = delete;
  DtmServer& operator=(const DtmServer&) = delete;

  // The bound port.
  int port() const;
  // The etcd key this server is registered under; empty when it is not.
  std::string registry_key() const;
  // Requests handed to the coordinator and not answered yet (a gauge).
  std::size_t requests_waiting() const;

  // Sets what grpc.health.v1.Health answers (SERVING at Start); dtx-server
  // turns it to NOT_SERVING when its journal is lost. Thread-safe; no effect
  // without options.health.
  void SetServing(bool serving);

  // Deregisters, stops accepting requests, lets requests in progress finish
  // for up to `grace`, then answers those still waiting for the coordinator
  // UNAVAILABLE (their transactions stay in the journal). The coordinator is
  // not shut down; its callbacks for those requests may still run later and
  // are dropped. Idempotent.
  void Shutdown(std::chrono::milliseconds grace);

  struct Impl;

 private:
  explicit DtmServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_DTM_SERVER_H_
