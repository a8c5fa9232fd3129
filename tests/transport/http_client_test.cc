// HttpClient against real servers on 127.0.0.1 (HttpBranchService, a
// dtx::HttpServer that records what it saw), plus ParseHttpUrl. Nothing
// sleeps: the tests wait on futures and on the service's condition
// variable, each with a deadline.

#include "dtx/transport/http_client.h"

#include "http_branch_service.h"
#include "status_matchers.h"
#include "test_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <atomic>
#include <filesystem>
#include <future>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace dtx {
namespace {

using dtx::testing::HttpAnswer;
using dtx::testing::HttpBranchService;
using dtx::testing::StatusIs;
using dtx::testing::TestExecutor;
using std::chrono::milliseconds;

std::unique_ptr<HttpClient> NewClient(HttpClientOptions options = {}) {
  auto client = HttpClient::Create(std::move(options));
  EXPECT_OK(client.status());
  return client.ok() ? std::move(client).value() : nullptr;
}

HttpClientRequest Get(std::string url) {
  HttpClientRequest r;
  r.url = std::move(url);
  return r;
}

// A server on a raw socket that answers the n-th request of each connection
// with answers[n] (bytes as given, malformed or doubled ones too), for what
// a well-behaved HttpServer never sends.
class RawHttpServer {
 public:
  explicit RawHttpServer(std::vector<std::string> answers)
      : answers_(std::move(answers)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "raw server: cannot listen";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~RawHttpServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  void Serve() {
    while (!stop_) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      char buf[4096];
      for (std::size_t n = 0; n < answers_.size();) {
        const auto end = in.find("\r\n\r\n");
        if (end != std::string::npos) {
          in.erase(0, end + 4);
          const std::string& a = answers_[n++];
          if (write(c, a.data(), a.size()) < 0) break;
          continue;
        }
        const ssize_t got = read(c, buf, sizeof(buf));
        if (got <= 0) break;
        in.append(buf, static_cast<std::size_t>(got));
      }
      close(c);
    }
  }

  std::vector<std::string> answers_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(HttpClientTest, RequestHeadersCannotTouchTheConnection) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  auto client = NewClient();
  HttpClientRequest req = Get(svc->url("/x"));
  req.method = "POST";
  req.body = "{}";
  req.headers = {{"expect", "100-continue"},
                 {"Content-Length", "9"},
                 {"Transfer-Encoding", "chunked"},
                 {"Host", "evil"},
                 {"Connection", "close"},
                 {"Upgrade", "h2c"},
                 {"TE", "trailers"},
                 {"x-ok", "1"}};
  ASSERT_OK_AND_ASSIGN(HttpClientResponse r,
                       client->SendBlocking(std::move(req)));
  EXPECT_EQ(r.status, 200);
  const std::vector<HttpRequest> seen = svc->Seen("/x");
  ASSERT_EQ(seen.size(), 1u);
  for (const char* name :
       {"expect", "transfer-encoding", "upgrade", "te", "connection"}) {
    EXPECT_FALSE(seen[0].Header(name).has_value()) << name;
  }
  EXPECT_NE(seen[0].Header("host"), "evil");
  EXPECT_EQ(seen[0].Header("content-length"), "2");
  EXPECT_EQ(seen[0].Header("x-ok"), "1");
  EXPECT_EQ(seen[0].body, "{}");
}

TEST(HttpClientTest, InterimAnswersAreSkippedForTheFinalOne) {
  RawHttpServer server(
      {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n"
       "HTTP/1.1 409 Conflict\r\nContent-Length: 7\r\n\r\nFAILURE",
       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"});
  auto client = NewClient();
  ASSERT_OK_AND_ASSIGN(HttpClientResponse first,
                       client->SendBlocking(Get(server.url("/a"))));
  EXPECT_EQ(first.status, 409);
  EXPECT_EQ(first.body, "FAILURE");
  // The next request, on the same kept-alive connection, gets its own.
  ASSERT_OK_AND_ASSIGN(HttpClientResponse second,
                       client->SendBlocking(Get(server.url("/b"))));
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "ok");
}

TEST(HttpClientTest, BytesBeyondAnAnswerAreNeverTakenForTheNextOne) {
  // A 204 with a body it must not have (the bytes of a second answer): the
  // connection is dropped, so the next request is answered afresh.
  RawHttpServer server(
      {"HTTP/1.1 204 No Content\r\n\r\n"
       "HTTP/1.1 409 Conflict\r\nContent-Length: 7\r\n\r\nFAILURE",
       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"});
  auto client = NewClient();
  ASSERT_OK_AND_ASSIGN(HttpClientResponse first,
                       client->SendBlocking(Get(server.url("/a"))));
  EXPECT_EQ(first.status, 204);
  ASSERT_OK_AND_ASSIGN(HttpClientResponse second,
                       client->SendBlocking(Get(server.url("/b"))));
  // The raw server starts each connection at answers[0]: a new connection
  // gets the 204 again, never the stale 409.
  EXPECT_NE(second.status, 409);
  EXPECT_EQ(client->stats().connections_opened, 2u);
}

std::size_t OpenFds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

TEST(HttpClientTest, IdleConnectionsAreClosedWithoutAnotherRequest) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  HttpClientOptions options;
  options.idle_timeout = milliseconds(100);
  auto client = NewClient(options);
  const std::size_t before = OpenFds();
  ASSERT_OK(client->SendBlocking(Get(svc->url("/x"))).status());
  EXPECT_GT(OpenFds(), before);  // the kept-alive connection, both ends
  // The sweep closes it (and the service its end) with no further request.
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (OpenFds() > before && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(OpenFds(), before);
  // A later request opens a new one.
  ASSERT_OK(client->SendBlocking(Get(svc->url("/y"))).status());
  EXPECT_EQ(client->stats().connections_opened, 2u);
}

TEST(ParseHttpUrlTest, SplitsTheForms) {
  ASSERT_OK_AND_ASSIGN(HttpUrl a, ParseHttpUrl("http://example.com/a/b?x=1"));
  EXPECT_FALSE(a.tls);
  EXPECT_EQ(a.host, "example.com");
  EXPECT_EQ(a.port, "80");
  EXPECT_EQ(a.target, "/a/b?x=1");
  EXPECT_EQ(a.host_header, "example.com");

  ASSERT_OK_AND_ASSIGN(HttpUrl b, ParseHttpUrl("https://[::1]:8443"));
  EXPECT_TRUE(b.tls);
  EXPECT_EQ(b.host, "::1");
  EXPECT_EQ(b.port, "8443");
  EXPECT_EQ(b.target, "/");
  EXPECT_EQ(b.host_header, "[::1]:8443");

  ASSERT_OK_AND_ASSIGN(HttpUrl c, ParseHttpUrl("https://h?q"));
  EXPECT_EQ(c.port, "443");
  EXPECT_EQ(c.target, "/?q");
}

TEST(ParseHttpUrlTest, RefusesMalformedUrlsNamingTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"ftp://h/x", "not an http:// or https:// URL"},
      {"localhost:8080/x", "not an http:// or https:// URL"},
      {"http:///x", "no host"},
      {"http://h:0/x", "bad port '0'"},
      {"http://h:99999/x", "bad port"},
      {"http://h:8x/x", "bad port"},
      {"http://u:p@h/x", "user info"},
      {"http://h/a b", "whitespace"},
      {"http://h/x#frag", "fragment"},
      {"http://[::1/x", "unterminated"},
      {"http://[nothost]/x", "not an IPv6 address"},
      {"http://::1/x", "brackets"},
  };
  for (const auto& [url, why] : cases) {
    EXPECT_THAT(ParseHttpUrl(url).status(),
                StatusIs(StatusCode::kInvalidArgument, std::string(why)))
        << url;
  }
}

TEST(HttpClientTest, CreateRefusesBadOptions) {
  HttpClientOptions zero;
  zero.max_connections_per_host = 0;
  EXPECT_THAT(HttpClient::Create(zero).status(),
              StatusIs(StatusCode::kInvalidArgument));
  HttpClientOptions no_target;
  no_target.tls_rules.push_back({});
  EXPECT_THAT(HttpClient::Create(no_target).status(),
              StatusIs(StatusCode::kInvalidArgument, "no target"));
  HttpClientOptions missing;
  missing.tls_rules.push_back({"h", {"/nonexistent/ca.pem", "", "", ""}});
  EXPECT_THAT(HttpClient::Create(missing).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "'/nonexistent/ca.pem' cannot be read"));
  HttpClientOptions half;
  half.tls_rules.push_back({"h", {"", "/c.pem", "", ""}});
  EXPECT_THAT(
      HttpClient::Create(half).status(),
      StatusIs(StatusCode::kInvalidArgument, "both cert_file and key_file"));
}

TEST(HttpClientTest, SendsMethodTargetHeadersAndBody) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  svc->Script("/api/TransIn", {HttpAnswer::Status(409, "nope")});
  auto client = NewClient();
  HttpClientRequest r;
  r.method = "POST";
  r.url = svc->url("/api/TransIn?gid=g%201&op=action");
  r.headers = {{"Content-Type", "application/json"},
               {"X-Trace", "t1"},
               {"Host", "ignored"},
               {"Content-Length", "999"}};
  r.body = R"({"amount":30})";
  ASSERT_OK_AND_ASSIGN(HttpClientResponse response,
                       client->SendBlocking(std::move(r)));
  EXPECT_EQ(response.status, 409);
  EXPECT_EQ(response.body, "nope");
  EXPECT_EQ(response.Header("content-type"), "application/json");

  const auto seen = svc->Seen("/api/TransIn");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].QueryValue("gid"), "g 1");
  EXPECT_EQ(seen[0].QueryValue("op"), "action");
  EXPECT_EQ(seen[0].Header("x-trace"), "t1");
  EXPECT_EQ(seen[0].Header("content-type"), "application/json");
  EXPECT_EQ(seen[0].Header("host"), "127.0.0.1:" + std::to_string(svc->port()));
  EXPECT_EQ(seen[0].Header("content-length"), "13");
  EXPECT_EQ(seen[0].body, R"({"amount":30})");
}

TEST(HttpClientTest, ResolvesHostNames) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  auto client = NewClient();
  ASSERT_OK_AND_ASSIGN(
      HttpClientResponse response,
      client->SendBlocking(
          Get("http://localhost:" + std::to_string(svc->port()) + "/x")));
  EXPECT_EQ(response.status, 200);
}

TEST(HttpClientTest, AnUnknownHostNameIsUnavailable) {
  auto client = NewClient();
  EXPECT_THAT(
      client->SendBlocking(Get("http://no-such-host.invalid/x")).status(),
      StatusIs(StatusCode::kUnavailable, "cannot resolve"));
}

TEST(HttpClientTest, CallbackRunsOnTheExecutor) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  auto client = NewClient();
  TestExecutor strand;
  std::promise<std::thread::id> ran_on;
  client->Send(Get(svc->url("/x")), strand.executor(),
               [&](Result<HttpClientResponse> r) {
                 EXPECT_OK(r.status());
                 ran_on.set_value(std::this_thread::get_id());
               });
  EXPECT_EQ(ran_on.get_future().get(), strand.id());
  EXPECT_EQ(strand.posted(), 1u);
}

TEST(HttpClientTest, KeepsConnectionsAlive) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  auto client = NewClient();
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(HttpClientResponse r,
                         client->SendBlocking(Get(svc->url("/x"))));
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(svc->Connections(), 1u);
  EXPECT_EQ(client->stats().connections_opened, 1u);
  EXPECT_EQ(client->stats().requests_reused, 4u);
}

TEST(HttpClientTest, CapsConnectionsPerHost) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  svc->Script("/slow", {HttpAnswer::Hang()});
  HttpClientOptions options;
  options.max_connections_per_host = 2;
  auto client = NewClient(options);
  std::vector<std::future<Result<HttpClientResponse>>> answers;
  for (int i = 0; i < 6; ++i) {
    auto promise = std::make_shared<std::promise<Result<HttpClientResponse>>>();
    answers.push_back(promise->get_future());
    client->Send(Get(svc->url("/slow")), nullptr,
                 [promise](Result<HttpClientResponse> r) {
                   promise->set_value(std::move(r));
                 });
  }
  // Two reach the service; the other four wait for a connection. Each
  // release lets the waiting ones through on the same two connections.
  ASSERT_TRUE(svc->WaitForCalls("/slow", 2));
  svc->Script("/slow", {HttpAnswer::Ok()});
  svc->Release();
  for (auto& answer : answers) {
    ASSERT_OK_AND_ASSIGN(HttpClientResponse r, answer.get());
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(svc->Calls("/slow"), 6u);
  EXPECT_EQ(svc->Connections(), 2u);
  EXPECT_EQ(client->stats().connections_opened, 2u);
}

TEST(HttpClientTest, FindsAServerThatClosedAnIdleConnection) {
  ASSERT_OK_AND_ASSIGN(auto first, HttpBranchService::Start());
  auto client = NewClient();
  ASSERT_OK(client->SendBlocking(Get(first->url("/x"))).status());
  const int port = first->port();
  first->Stop();  // closes the kept-alive connection
  // A new server on another port: the client's pool for the old port holds
  // a closed connection; a request there must not reuse it silently.
  EXPECT_THAT(
      client
          ->SendBlocking(Get("http://127.0.0.1:" + std::to_string(port) + "/x"))
          .status(),
      StatusIs(StatusCode::kUnavailable, "connection refused"));
}

TEST(HttpClientTest, ConnectionRefusedIsNamed) {
  ASSERT_OK_AND_ASSIGN(auto gone, HttpBranchService::Start());
  const std::string url = gone->url("/x");
  gone->Stop();
  auto client = NewClient();
  EXPECT_THAT(client->SendBlocking(Get(url)).status(),
              StatusIs(StatusCode::kUnavailable, "connection refused"));
}

TEST(HttpClientTest, AHangingServerTimesOutAndLosesTheConnection) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  svc->Script("/x", {HttpAnswer::Hang(), HttpAnswer::Ok()});
  auto client = NewClient();
  HttpClientRequest r = Get(svc->url("/x"));
  r.timeout = milliseconds(200);
  EXPECT_THAT(
      client->SendBlocking(r).status(),
      StatusIs(StatusCode::kDeadlineExceeded, "no answer within 200 ms"));
  // The timed-out connection is not reused: its answer could still come.
  ASSERT_OK(client->SendBlocking(r).status());
  EXPECT_EQ(client->stats().connections_opened, 2u);
}

TEST(HttpClientTest, AnOversizedAnswerIsRefused) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  svc->Script("/big", {HttpAnswer::Huge(5000)});
  HttpClientOptions options;
  options.max_response_bytes = 1000;
  auto client = NewClient(options);
  EXPECT_THAT(client->SendBlocking(Get(svc->url("/big"))).status(),
              StatusIs(StatusCode::kResourceExhausted,
                       "larger than the limit of 1000 bytes"));
  ASSERT_OK_AND_ASSIGN(HttpClientResponse small,
                       client->SendBlocking(Get(svc->url("/small"))));
  EXPECT_EQ(small.status, 200);
}

TEST(HttpClientTest, BadRequestsFailWithoutSending) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  auto client = NewClient();
  HttpClientRequest bad_header = Get(svc->url("/x"));
  bad_header.headers = {{"X-A", "a\r\nInjected: 1"}};
  EXPECT_THAT(client->SendBlocking(bad_header).status(),
              StatusIs(StatusCode::kInvalidArgument, "X-A"));
  HttpClientRequest bad_method = Get(svc->url("/x"));
  bad_method.method = "GE T";
  EXPECT_THAT(client->SendBlocking(bad_method).status(),
              StatusIs(StatusCode::kInvalidArgument, "bad method"));
  EXPECT_THAT(client->SendBlocking(Get("localhost:1/x")).status(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(svc->Calls("/x"), 0u);
}

TEST(HttpClientTest, ShutdownCancelsRequestsInFlight) {
  ASSERT_OK_AND_ASSIGN(auto svc, HttpBranchService::Start());
  svc->Script("/x", {HttpAnswer::Hang()});
  auto client = NewClient();
  std::promise<Result<HttpClientResponse>> promise;
  HttpClientRequest r = Get(svc->url("/x"));
  r.timeout = std::chrono::minutes(5);
  client->Send(r, nullptr, [&](Result<HttpClientResponse> result) {
    promise.set_value(std::move(result));
  });
  ASSERT_TRUE(svc->WaitForCalls("/x", 1));
  client->Shutdown();
  EXPECT_THAT(promise.get_future().get().status(),
              StatusIs(StatusCode::kCancelled, "shut down"));
  EXPECT_EQ(client->stats().in_flight, 0u);
  EXPECT_THAT(client->SendBlocking(r).status(),
              StatusIs(StatusCode::kCancelled));
  client->Shutdown();  // idempotent
}

}  // namespace
}  // namespace dtx
