// dtx-server's HTTP API as a client reaches it: the bytes are one HTTP/1.1
// request, parsed by Beast's request parser with HttpServer's limits, turned
// into dtx's HttpRequest as HttpServer does (ParseRequestTarget: the path
// and query; the header fields; the body) and handed to dtm's HTTP API
// routes (AddDtmApiRoutes) over a DtmApi that accepts every call, so the
// body decoders of /api/dtmsvr/* and /api/json-rpc run on it. The body alone
// also goes through the decoders directly (DecodeDtmTransJson,
// DecodeDtmBranchJson) and through a client's reading of an answer
// (DtmStatusFromHttp, DecodeDtmQueryJson: HttpDtmClient's Query). Properties:
// every request is answered exactly once, with a status in 100..599; a decoded
// transaction or branch survives its encoding (what HttpDtmClient sends)
// unchanged.

#include "dtx/branch_client.h"
#include "dtx/transport/dtm_http_json.h"
#include "dtx/transport/http_dtm_client.h"
#include "dtx/transport/http_message.h"
#include "dtx/transport/http_router.h"
#include "dtx/transport/http_server.h"

#include "dtm_http_api.h"
#include "fuzz_check.h"

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace {

namespace bhttp = boost::beast::http;

// Accepts every call at once (and knows no gid), as a coordinator that
// always succeeds would answer.
class AcceptingDtm final : public dtx::DtmApi {
 public:
  void NewGidAsync(dtx::ResultCallback<std::string> done) override {
    done(std::string("gid-1"));
  }
  void PrepareAsync(dtx::TransRequest, dtx::StatusCallback done) override {
    done(dtx::Status::Ok());
  }
  void SubmitAsync(dtx::TransRequest, dtx::StatusCallback done) override {
    done(dtx::Status::Ok());
  }
  void AbortAsync(dtx::TransRequest, dtx::StatusCallback done) override {
    done(dtx::Status::Ok());
  }
  void RegisterBranchAsync(dtx::BranchRegistration,
                           dtx::StatusCallback done) override {
    done(dtx::Status::Ok());
  }
  void QueryAsync(std::string gid,
                  dtx::ResultCallback<dtx::TransWithBranches> done) override {
    done(dtx::NotFoundError("gid " + gid + " not found"));
  }
  dtx::BranchClient& branch_client() override { std::abort(); }
  std::string address() const override { return ""; }
};

const dtx::HttpHandler& Handler() {
  static AcceptingDtm* dtm = new AcceptingDtm();
  static const dtx::HttpHandler* handler = [] {
    dtx::HttpRouter router;
    FUZZ_CHECK(dtx::server::AddDtmApiRoutes(router, dtm,
                                            dtx::server::DtmHttpApiOptions{})
                   .ok());
    auto built = router.Build();
    FUZZ_CHECK(built.ok());
    return new dtx::HttpHandler(*std::move(built));
  }();
  return *handler;
}

bool SameTrans(const dtx::TransRequest& a, const dtx::TransRequest& b) {
  bool same = a.gid == b.gid && a.trans_type == b.trans_type &&
              a.custom_data == b.custom_data && a.payloads == b.payloads &&
              a.query_prepared == b.query_prepared &&
              a.rollback_reason == b.rollback_reason &&
              a.protocol == b.protocol &&
              a.options.wait_result == b.options.wait_result &&
              a.options.timeout_to_fail == b.options.timeout_to_fail &&
              a.options.retry_interval == b.options.retry_interval &&
              a.options.request_timeout == b.options.request_timeout &&
              a.options.retry_limit == b.options.retry_limit &&
              a.options.branch_headers == b.options.branch_headers &&
              a.options.concurrent == b.options.concurrent &&
              a.steps.size() == b.steps.size();
  for (std::size_t i = 0; same && i < a.steps.size(); ++i) {
    same = a.steps[i].action == b.steps[i].action &&
           a.steps[i].compensate == b.steps[i].compensate;
  }
  return same;
}

void CheckBody(const std::string& body) {
  auto trans = dtx::DecodeDtmTransJson(body);
  if (trans.ok()) {
    auto again = dtx::DecodeDtmTransJson(dtx::EncodeDtmTransJson(*trans));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(SameTrans(*trans, *again));
  }
  auto branch = dtx::DecodeDtmBranchJson(body);
  if (branch.ok()) {
    auto again = dtx::DecodeDtmBranchJson(dtx::EncodeDtmBranchJson(*branch));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->gid == branch->gid);
    FUZZ_CHECK(again->trans_type == branch->trans_type);
    FUZZ_CHECK(again->branch_id == branch->branch_id);
    FUZZ_CHECK(again->confirm_url == branch->confirm_url);
    FUZZ_CHECK(again->cancel_url == branch->cancel_url);
    FUZZ_CHECK(again->payload == branch->payload);
    FUZZ_CHECK(again->protocol == branch->protocol);
  }
  (void)dtx::DecodeDtmQueryJson(body);
  (void)dtx::DtmStatusFromHttp(200, body);
  (void)dtx::DtmStatusFromHttp(409, body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const dtx::HttpServerOptions limits;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.eager(true);
  parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
      limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  parser.body_limit(limits.max_body_bytes);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) {
    // Only the body decoders, on the bytes as they are.
    CheckBody(std::string(reinterpret_cast<const char*>(data), size));
    return 0;
  }
  bhttp::request<bhttp::string_body> message = parser.release();

  dtx::HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.remote_address = "127.0.0.1:1";
  if (!dtx::ParseRequestTarget(message.target(), &request).ok()) return 0;
  for (const auto& field : message) {
    request.headers.emplace_back(std::string(field.name_string()),
                                 std::string(field.value()));
  }
  request.body = std::move(message.body());
  CheckBody(request.body);

  auto answers = std::make_shared<int>(0);
  auto status = std::make_shared<int>(0);
  Handler()(std::move(request),
            dtx::HttpResponder([answers, status](dtx::HttpResponse r) {
              ++*answers;
              *status = r.status;
            }));
  FUZZ_CHECK(*answers == 1);
  FUZZ_CHECK(*status >= 100 && *status <= 599);
  return 0;
}
