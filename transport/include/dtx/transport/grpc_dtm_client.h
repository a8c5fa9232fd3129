// GrpcDtmClient: DtmApi over dtm's gRPC protocol, for a coordinator in
// another process (dtx-server, or dtm itself). The client API
// (TccGlobalTransaction, Saga, Msg) runs on it unchanged:
//
//   dtx::GrpcDtmClientOptions options;
//   options.address = "discovery://127.0.0.1:2379/dtmservice";
//   DTX_ASSIGN_OR_RETURN(auto dtm, dtx::GrpcDtmClient::Create(options));
//   dtx::Saga(*dtm, gid).Add(action, compensate, payload).Submit();
//
// The address takes the forms of a branch URL's server part: host:port,
// dns:///name:port, ipv4:/ipv6: lists, direct:///a,b, and, resolved through
// etcd as Kratos registers services, discovery://<etcd hosts>/<name> (also
// etcd://). Query, List, Stats, ForceStop and RetryNow use dtx's admin service,
// which a dtm server does not have (they fail with kUnimplemented there).
//
// Requests are not retried: a failed Submit may or may not have reached the
// server, and dtm's API makes a repeated Submit of the same gid safe, so the
// caller decides.
//
// Every request is a gRPC callback call: the callback forms (SubmitAsync,
// ListAsync, ...) return at once and run `done` on a gRPC thread when the
// answer arrives (or at once, when no server address is known); no thread
// waits for a request in flight. The blocking forms wait for the callback
// forms.
//
// Thread safety: thread-safe. Destroying the client cancels the requests in
// flight (their `done` gets kUnavailable) and waits until every `done` has
// run, so never destroy it from one of them.

#ifndef DTX_TRANSPORT_GRPC_DTM_CLIENT_H_
#define DTX_TRANSPORT_GRPC_DTM_CLIENT_H_

#include "dtx/dtm_api.h"
#include "dtx/journal.h"
#include "dtx/logger.h"
#include "dtx/result.h"
#include "dtx/transport/grpc_export.h"
#include "dtx/transport/service_resolver.h"
#include "dtx/transport/tls_options.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dtx {

struct DTX_GRPC_EXPORT GrpcDtmClientOptions {
  // The coordinator's address (see above). Required.
  std::string address;
  // Driver of the client's own branch calls (TCC try, msg check-back):
  // "default" or "dtm-driver-kratos". A discovery:// or etcd:// address
  // implies the Kratos driver.
  std::string driver = "default";
  // The registry behind discovery:// (the address and branch URLs). Null:
  // an etcd resolver on the hosts named by a discovery:// address.
  std::shared_ptr<ServiceResolver> resolver;
  // Deadline of each request to the coordinator. Submit with WaitResult
  // waits for a processing pass, so this must exceed the branches' time.
  std::chrono::milliseconds timeout{30000};
  // Deadline of the client's own branch calls (dtm's RequestTimeout).
  std::chrono::milliseconds branch_timeout{3000};
  // dtx-server's Admin.Token, sent with every admin request (Query, List,
  // Stats, ForceStop, RetryNow) as the metadata "authorization: Bearer
  // <token>"; never with dtm's own requests. Empty: none is sent. Visible
  // ASCII only (kInvalidArgument from Create otherwise).
  std::string admin_token;
  // Set: TLS to the coordinator (dtx-server with TLS.CertFile), verifying it
  // against tls->ca_file (empty: the system's roots) and, when
  // tls->server_name is set, for that name; tls->cert_file and key_file
  // when the server asks for client certificates (TLS.ClientCAFile). Unset:
  // plaintext, except to instances registered with grpcs:// endpoints only,
  // which get TLS with the system's roots. Files are read by Create
  // (kInvalidArgument naming one that cannot be used); a server that fails
  // the check fails requests with kUnavailable saying why.
  std::optional<TlsClientOptions> tls;
  // TLS for the client's own branch calls (GrpcBranchClientOptions).
  std::vector<TlsClientRule> branch_tls_rules;
  // Null: no logging.
  std::shared_ptr<Logger> logger;
};

class DTX_GRPC_EXPORT GrpcDtmClient final : public DtmApi {
 public:
  // kInvalidArgument for a malformed address or driver; etcd errors when the
  // address needs a registry that cannot be created. Connects lazily.
  static Result<std::unique_ptr<GrpcDtmClient>> Create(
      GrpcDtmClientOptions options);

  ~GrpcDtmClient() override;
  GrpcDtmClient(const GrpcDtmClient&) = delete;
  GrpcDtmClient& operator=(const GrpcDtmClient&) = delete;

  // DtmApi: the callback forms; the blocking forms are DtmApi's wrappers.
  // Errors are the server's answer (its gRPC code), kDeadlineExceeded after
  // `timeout`, kUnavailable when the server cannot be reached or the client
  // is being destroyed.
  void NewGidAsync(ResultCallback<std::string> done) override;
  void PrepareAsync(TransRequest request, StatusCallback done) override;
  void SubmitAsync(TransRequest request, StatusCallback done) override;
  void AbortAsync(TransRequest request, StatusCallback done) override;
  void RegisterBranchAsync(BranchRegistration branch,
                           StatusCallback done) override;
  // dtm's PrepareWorkflow: dtx::Workflows runs against a remote server.
  void PrepareWorkflowAsync(TransRequest request,
                            ResultCallback<TransWithBranches> done) override;
  void QueryAsync(std::string gid,
                  ResultCallback<TransWithBranches> done) override;
  BranchClient& branch_client() override;
  std::string address() const override;

  // Administration (dtx's admin service), with the same two forms; the
  // server's Coordinator methods of the same names say what they do.
  // A page of transactions, newest first; a limit over kMaxListLimit is
  // sent as kMaxListLimit.
  void ListAsync(ListQuery query, ResultCallback<ListPage> done);
  // Transactions per status and the unfinished summary.
  void StatsAsync(ResultCallback<TransStats> done);
  // Fails an unfinished transaction; kNotFound for an unknown gid, kAborted
  // when it is finished.
  void ForceStopAsync(std::string gid, StatusCallback done);
  // Runs an unfinished transaction now; kNotFound, kAborted as ForceStop.
  void RetryNowAsync(std::string gid, StatusCallback done);
  Result<ListPage> List(const ListQuery& query);
  Result<TransStats> Stats();
  Status ForceStop(const std::string& gid);
  Status RetryNow(const std::string& gid);

  struct Impl;

 private:
  explicit GrpcDtmClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_GRPC_DTM_CLIENT_H_
