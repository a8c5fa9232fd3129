// RoutingBranchClient: which client a URL goes to under each protocol, with
// two recording fakes (the transports themselves are tested in
// tests/transport).

#include "dtx/routing_branch_client.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dtx {
namespace {

using dtx::testing::StatusIs;
using Transport = RoutingBranchClient::Transport;

// Answers every call at once with its name in the reply; records what it
// was asked.
class NamedClient final : public BranchClient {
 public:
  explicit NamedClient(std::string name, std::vector<std::string>* log)
      : name_(std::move(name)), log_(log) {}
  void Call(BranchRequest request, Executor, Callback done) override {
    log_->push_back(name_ + " call " + request.url);
    BranchResult r;
    r.outcome = BranchOutcome::kSuccess;
    r.reply = name_;
    done(std::move(r));
  }
  Status ValidateUrl(std::string_view url, std::string_view protocol) override {
    log_->push_back(name_ + " validate " + std::string(url) + " " +
                    std::string(protocol));
    return Status::Ok();
  }
  void Shutdown() override { log_->push_back(name_ + " shutdown"); }

 private:
  std::string name_;
  std::vector<std::string>* log_;
};

TEST(RoutingBranchClientTest, RouteFollowsDtm) {
  EXPECT_EQ(RoutingBranchClient::Route("http://h/x", "grpc"), Transport::kHttp);
  EXPECT_EQ(RoutingBranchClient::Route("https://h/x", ""), Transport::kHttp);
  EXPECT_EQ(RoutingBranchClient::Route("localhost:1/a.B/C", "grpc"),
            Transport::kGrpc);
  EXPECT_EQ(RoutingBranchClient::Route("localhost:1/a.B/C", ""),
            Transport::kGrpc);
  EXPECT_EQ(RoutingBranchClient::Route("discovery://h/s/a.B/C", "grpc"),
            Transport::kGrpc);
  // Protocol http: registry URLs (and anything else, which the HTTP client
  // refuses) go to HTTP.
  EXPECT_EQ(RoutingBranchClient::Route("discovery://h/s/api/x", "http"),
            Transport::kHttp);
  EXPECT_EQ(RoutingBranchClient::Route("localhost:1/a.B/C", "http"),
            Transport::kHttp);
}

TEST(RoutingBranchClientTest, SendsEachCallToItsTransport) {
  std::vector<std::string> log;
  RoutingBranchClient client(std::make_unique<NamedClient>("grpc", &log),
                             std::make_unique<NamedClient>("http", &log));
  BranchRequest a;
  a.url = "localhost:1/a.B/C";
  EXPECT_EQ(client.CallBlocking(a).reply, "grpc");
  BranchRequest b;
  b.url = "http://h/x";
  EXPECT_EQ(client.CallBlocking(b).reply, "http");
  BranchRequest c;
  c.url = "discovery:///s/api/x";
  c.protocol = "http";
  EXPECT_EQ(client.CallBlocking(c).reply, "http");
  EXPECT_OK(client.ValidateUrl("discovery:///s/a.B/C", "grpc"));
  EXPECT_OK(client.ValidateUrl("discovery:///s/api/x", "http"));
  client.Shutdown();
  EXPECT_THAT(log, ::testing::ElementsAre(
                       "grpc call localhost:1/a.B/C", "http call http://h/x",
                       "http call discovery:///s/api/x",
                       "grpc validate discovery:///s/a.B/C grpc",
                       "http validate discovery:///s/api/x http",
                       "grpc shutdown", "http shutdown"));
}

TEST(RoutingBranchClientTest, AMissingTransportIsNamed) {
  std::vector<std::string> log;
  RoutingBranchClient client(std::make_unique<NamedClient>("grpc", &log),
                             nullptr);
  EXPECT_THAT(client.ValidateUrl("http://h/x", "grpc"),
              StatusIs(StatusCode::kInvalidArgument,
                       "no HTTP branch client is configured"));
  BranchRequest r;
  r.url = "http://h/x";
  BranchResult result = client.CallBlocking(r);
  EXPECT_EQ(result.outcome, BranchOutcome::kTransient);
  EXPECT_THAT(result.status, StatusIs(StatusCode::kFailedPrecondition,
                                      "no HTTP branch client"));
}

}  // namespace
}  // namespace dtx
