// HttpBranchClient: BranchClient over HTTP (dtx::HttpClient), calling a
// branch exactly as dtm does (dtm-semantics §1.4):
//
//   POST <url>?branch_id=01&gid=g1&op=action&trans_type=saga    (GET when the
//   Content-Type: application/json                    payload is empty and
//   <branch headers>                                  the trans type is not
//                                                     xa; &dtm=<address>
//   <payload>                                         when TransInfo.dtm is
//                                                     set)
//
// and classifying the answer into dtm's result classes (§1.3):
//
//   425, or a body that says ONGOING     kOngoing    (checked first)
//   409, or a body that says FAILURE     kFailure
//   200                                  kSuccess    (reply = the body)
//   any other status, no answer          kTransient
//
// "A body that says X" is a body that is exactly X (surrounding whitespace
// aside) or a JSON object whose "dtm_result" is X. dtm itself looks for X
// anywhere in the body, so that a 200 whose data happens to contain the word
// FAILURE rolls a saga back; dtx does not (docs/semantics.md).
//
// URLs:
//   http://host[:port]/path[?query]    https://...    (IP literals, names)
//   discovery://[registry]/<service>/<path>, etcd://... under protocol http:
//   an http:// (or https://) endpoint of one of the service's Kratos
//   instances, picked round-robin, then <path>.
//
//   dtx::HttpBranchClientOptions options;
//   options.http.tls_rules = rules;
//   DTX_ASSIGN_OR_RETURN(auto client, dtx::HttpBranchClient::Create(options));
//
// Thread safety: thread-safe.

#ifndef DTX_TRANSPORT_HTTP_BRANCH_CLIENT_H_
#define DTX_TRANSPORT_HTTP_BRANCH_CLIENT_H_

#include "dtx/branch_client.h"
#include "dtx/logger.h"
#include "dtx/result.h"
#include "dtx/transport/http_client.h"
#include "dtx/transport/http_export.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dtx {

// The base URLs ("http://10.0.0.5:8000", "https://...") of a service's
// instances. EtcdServiceResolver::ResolveHttp gives them; bound as a
// function so that dtx::http does not link dtx::grpc.
using HttpEndpointResolver =
    std::function<Result<std::shared_ptr<const std::vector<std::string>>>(
        const std::string& service)>;

struct DTX_HTTP_EXPORT HttpBranchClientOptions {
  // The connections, limits and TLS rules of the client's HttpClient.
  HttpClientOptions http;
  // Deadline of calls whose request has none (dtm's RequestTimeout).
  std::chrono::milliseconds default_timeout{3000};
  // discovery:// and etcd:// URLs of protocol-http transactions. Null: they
  // are refused (kFailedPrecondition).
  HttpEndpointResolver resolver;
  // Null: no logging.
  std::shared_ptr<Logger> logger;
};

// dtm's classes of an HTTP answer (see above); kSuccess needs status 200.
DTX_HTTP_EXPORT BranchOutcome ClassifyHttpAnswer(int status,
                                                 std::string_view body);

// The request HttpBranchClient sends for `request` to `url` (an http:// or
// https:// URL: the branch's, or a registry URL's resolved one).
DTX_HTTP_EXPORT HttpClientRequest
BuildHttpBranchRequest(const BranchRequest& request, const std::string& url,
                       std::chrono::milliseconds default_timeout);

// A registry URL under protocol http: "discovery://[registry]/<service>/
// <path>" (or etcd://).
struct RegistryHttpUrl {
  std::string service;
  std::string path;  // "/api/busi/TransIn?x=1"; "/" when none
};
// kInvalidArgument naming the URL when it is not of that form.
DTX_HTTP_EXPORT Result<RegistryHttpUrl> ParseRegistryHttpUrl(
    std::string_view url);

class DTX_HTTP_EXPORT HttpBranchClient final : public BranchClient {
 public:
  // HttpClient::Create's errors; kInvalidArgument for a zero timeout.
  static Result<std::unique_ptr<HttpBranchClient>> Create(
      HttpBranchClientOptions options);

  ~HttpBranchClient() override;
  HttpBranchClient(const HttpBranchClient&) = delete;
  HttpBranchClient& operator=(const HttpBranchClient&) = delete;

  void Call(BranchRequest request, Executor executor, Callback done) override;
  BranchResult CallBlocking(BranchRequest request) override;
  // http:// and https:// URLs whatever the protocol; under protocol http
  // also discovery:// and etcd:// (kFailedPrecondition without a resolver).
  // Anything else is kInvalidArgument saying what protocol http takes.
  Status ValidateUrl(std::string_view url, std::string_view protocol) override;
  void Shutdown() override;

  HttpClient::Stats stats() const;

 private:
  struct Impl;
  explicit HttpBranchClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_HTTP_BRANCH_CLIENT_H_
