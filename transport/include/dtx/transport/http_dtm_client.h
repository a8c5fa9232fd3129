// HttpDtmClient: DtmApi over dtm's HTTP API (/api/dtmsvr/...), for a
// coordinator in another process: dtm itself or dtx-server (its HttpPort).
// The client API (TccGlobalTransaction, Saga, Msg) runs on it unchanged:
//
//   dtx::HttpDtmClientOptions options;
//   options.address = "http://127.0.0.1:36789/api/dtmsvr";  // dtmcli's form
//   DTX_ASSIGN_OR_RETURN(auto dtm, dtx::HttpDtmClient::Create(options));
//   dtx::Saga(*dtm, gid).Add(action, compensate, R"({"amount":30})").Submit();
//
// Requests are dtmcli's (dtx/transport/dtm_http_json.h): GET newGid, POST
// prepare, submit, abort and registerBranch with dtmcli's JSON bodies, GET
// query?gid= for Query. Answers are read with DtmStatusFromHttp (409, or a
// 200 with "dtm_result":"FAILURE", is kAborted; 425 kFailedPrecondition).
//
// What differs from GrpcDtmClient:
// - Payloads travel as JSON strings, as dtm's HTTP API defines them, so they
//   must be UTF-8 text (a JSON request, as HTTP branches take): a binary
//   payload (a serialized protobuf) is kInvalidArgument before anything is
//   sent. Use GrpcDtmClient for gRPC branches with binary payloads.
// - A request whose protocol is empty is sent with protocol "grpc", which is
//   what an empty protocol means to DtmApi (dtm's HTTP API would take "" as
//   "http"): host:port/pkg.Service/Method URLs stay gRPC calls, http:// and
//   https:// URLs are HTTP calls either way. Set "http" for registry URLs
//   that name HTTP services.
// - Query reads dtm's JSON record; dtx-server's retry state (attempts,
//   last_error) is filled in when the server sends it. dtm answers an
//   unknown gid with a null transaction, which is kNotFound here.
//
// Requests are not retried: a failed Submit may or may not have reached the
// server, and dtm's API makes a repeated Submit of the same gid safe, so the
// caller decides.
//
// Every request is asynchronous on the client's own HttpClient (keep-alive
// connections to the server): the callback forms return at once and run
// `done` on one of its io threads; no thread waits for a request in flight.
//
// Thread safety: thread-safe. Destroying the client fails the requests in
// flight (their `done` gets kUnavailable) and waits until every `done` has
// run, so never destroy it from one of them.

#ifndef DTX_TRANSPORT_HTTP_DTM_CLIENT_H_
#define DTX_TRANSPORT_HTTP_DTM_CLIENT_H_

#include "dtx/branch_client.h"
#include "dtx/dtm_api.h"
#include "dtx/logger.h"
#include "dtx/result.h"
#include "dtx/transport/http_client.h"
#include "dtx/transport/http_export.h"

#include <chrono>
#include <memory>
#include <string>

namespace dtx {

struct DTX_HTTP_EXPORT HttpDtmClientOptions {
  // The API's base URL, as dtmcli takes it:
  // "http://host:36789/api/dtmsvr" (https:// with http.tls_rules). A URL
  // without a path gets "/api/dtmsvr". Required.
  std::string address;
  // Deadline of each request to the coordinator. Submit with WaitResult
  // waits for a processing pass, so this must exceed the branches' time.
  std::chrono::milliseconds timeout{30000};
  // The connections to the coordinator (io threads, TLS rules, response
  // size limit). Its default_timeout is replaced by `timeout`.
  HttpClientOptions http;
  // The client that the client API uses for its own branch calls (TCC try,
  // msg check-back), shared with the caller: for gRPC branches, a
  // RoutingBranchClient over a GrpcBranchClient and an HttpBranchClient.
  // Null: an HttpBranchClient made with `http` (TLS rules included) for
  // http:// and https:// URLs; other URLs are refused ("no gRPC branch
  // client is configured").
  std::shared_ptr<BranchClient> branch_client;
  // Deadline of the default branch client's calls (dtm's RequestTimeout).
  std::chrono::milliseconds branch_timeout{3000};
};

class DTX_HTTP_EXPORT HttpDtmClient final : public DtmApi {
 public:
  // kInvalidArgument for an address that is not an http:// or https:// URL
  // (naming it), and HttpClient::Create's errors.
  static Result<std::unique_ptr<HttpDtmClient>> Create(
      HttpDtmClientOptions options);

  ~HttpDtmClient() override;
  HttpDtmClient(const HttpDtmClient&) = delete;
  HttpDtmClient& operator=(const HttpDtmClient&) = delete;

  // DtmApi: the callback forms; the blocking forms are DtmApi's wrappers.
  // Errors are the server's answer (DtmStatusFromHttp), kInvalidArgument
  // for a payload that is not UTF-8, kDeadlineExceeded after `timeout`,
  // kUnavailable when the server cannot be reached or the client is being
  // destroyed.
  void NewGidAsync(ResultCallback<std::string> done) override;
  void PrepareAsync(TransRequest request, StatusCallback done) override;
  void SubmitAsync(TransRequest request, StatusCallback done) override;
  void AbortAsync(TransRequest request, StatusCallback done) override;
  void RegisterBranchAsync(BranchRegistration branch,
                           StatusCallback done) override;
  // dtm's prepareWorkflow: dtx::Workflows runs against a remote server.
  void PrepareWorkflowAsync(TransRequest request,
                            ResultCallback<TransWithBranches> done) override;
  void QueryAsync(std::string gid,
                  ResultCallback<TransWithBranches> done) override;
  BranchClient& branch_client() override;
  // The base URL ("http://host:36789/api/dtmsvr"), which TCC try calls carry
  // as dtm (dtm-dtm) so that a branch can register nested branches.
  std::string address() const override;

  struct Impl;

 private:
  explicit HttpDtmClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// dtm's JSON record of a transaction and its branches (GET query's answer:
// {"transaction":{...},"branches":[...]}; times in RFC 3339, bin_data in
// base64). kNotFound for a null transaction, kInternal for a body that is
// not such a record (naming the key). For HttpDtmClient and tests.
DTX_HTTP_EXPORT Result<TransWithBranches> DecodeDtmQueryJson(
    std::string_view body);

}  // namespace dtx

#endif  // DTX_TRANSPORT_HTTP_DTM_CLIENT_H_
