// HttpServer on real sockets (127.0.0.1, ephemeral ports), with a raw client
// (tests/testing/http_test_client.h) that can send what a well-behaved
// client would not. Nothing sleeps: the tests wait on the sockets and on
// condition variables, each with a deadline.

#include "dtx/transport/http_server.h"

#include "dtx/transport/http_router.h"

#include "http_test_client.h"
#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

namespace dtx {
namespace {

using dtx::testing::HttpTestConnection;
using dtx::testing::HttpTestResponse;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr auto kDeadline = seconds(20);

// Requests that the handler keeps unanswered, for the test to answer.
class Parked {
 public:
  HttpHandler Handler() {
    return [this](HttpRequest request, HttpResponder responder) {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(std::move(request));
      responders_.push_back(std::move(responder));
      cv_.notify_all();
    };
  }
  // Waits until `n` requests are parked.
  bool WaitFor(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kDeadline,
                        [&] { return responders_.size() >= n; });
  }
  HttpResponder responder(std::size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return responders_.at(i);
  }
  HttpRequest request(std::size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_.at(i);
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.clear();
    responders_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<HttpRequest> requests_;
  std::vector<HttpResponder> responders_;
};

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    router_.Handle("GET", "/echo", Echo())
        .Handle("HEAD", "/echo", Echo())
        .Handle("POST", "/body",
                [](HttpRequest req, HttpResponder r) {
                  r.Respond(Text(200, req.body));
                })
        .Handle("GET", "/peer",
                [](HttpRequest req, HttpResponder r) {
                  r.Respond(Text(200, req.remote_address));
                })
        .Handle("GET", "/park", parked_.Handler())
        .Handle("GET", "/drop", [](HttpRequest, HttpResponder) {})
        .Handle("GET", "/throw",
                [](HttpRequest, HttpResponder) -> void {
                  throw std::runtime_error("boom");
                })
        .Handle("GET", "/header", [](HttpRequest, HttpResponder r) {
          HttpResponse a = Text(200, "h");
          a.headers = {{"X-Ok", "yes"}, {"X-Bad", "a\r\nInjected: 1"}};
          r.Respond(std::move(a));
        });
  }

  // GET /echo?x=V answers "V"; the decoded path and every parameter too.
  static HttpHandler Echo() {
    return [](HttpRequest req, HttpResponder r) {
      r.Respond(Text(200, req.QueryValue("x").value_or("")));
    };
  }

  void Start(HttpServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    auto handler = router_.Build();
    ASSERT_OK(handler);
    auto server = HttpServer::Start(options, *handler);
    ASSERT_OK(server);
    server_ = std::move(server).value();
  }

  HttpTestConnection Connect() {
    auto c = HttpTestConnection::Connect("127.0.0.1", server_->port());
    EXPECT_OK(c);
    return std::move(c).value();
  }

  HttpRouter router_;
  Parked parked_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  Start();
  EXPECT_EQ(server_->address(), "127.0.0.1:" + std::to_string(server_->port()));
  HttpTestConnection c = Connect();
  std::set<std::string> peers;
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK_AND_ASSIGN(HttpTestResponse r,
                         c.Roundtrip("GET", "/echo?x=" + std::to_string(i)));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, std::to_string(i));
    EXPECT_EQ(r.Header("Connection"), std::nullopt);  // 1.1: keep-alive
    ASSERT_OK_AND_ASSIGN(HttpTestResponse p, c.Roundtrip("GET", "/peer"));
    peers.insert(p.body);
  }
  // One connection served them all: the server saw one peer address.
  EXPECT_EQ(peers.size(), 1u);
  EXPECT_EQ(*peers.begin(), "127.0.0.1:" + std::to_string(c.local_port()));
}

TEST_F(HttpServerTest, DecodesThePathAndTheQuery) {
  Start();
  ASSERT_OK_AND_ASSIGN(
      HttpTestResponse r,
      testing::HttpGet(server_->port(), "/e%63ho?x=a%20b+c%2B"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "a b c+");
}

TEST_F(HttpServerTest, DeferredAnswerFromAnotherThreadAfterTheHandlerReturned) {
  Start();
  HttpTestConnection c = Connect();
  ASSERT_OK(c.SendRequest("GET", "/park?x=late"));
  ASSERT_TRUE(parked_.WaitFor(1));
  // The handler has returned; the request waits, holding no thread.
  EXPECT_EQ(parked_.request(0).QueryValue("x"), "late");
  HttpResponder responder = parked_.responder(0);
  std::thread([responder] {
    responder.Respond(Text(200, "answered later"));
  }).join();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "answered later");
  // The connection is still usable.
  ASSERT_OK_AND_ASSIGN(HttpTestResponse again, c.Roundtrip("GET", "/echo?x=1"));
  EXPECT_EQ(again.body, "1");
}

// A request after which the server reads no more ("Connection: close",
// HTTP/1.0, the client's end of stream) and whose answer comes later: the
// connection must wait for it, though no read of its own is outstanding.
TEST_F(HttpServerTest, DeferredAnswerAfterTheLastRequestOfAConnection) {
  Start();  // one io thread
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Connection: close",
       "GET /park HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"},
      {"HTTP/1.0", "GET /park HTTP/1.0\r\n\r\n"},
      {"end of stream", "GET /park HTTP/1.1\r\nHost: t\r\n\r\n"},
  };
  for (const auto& [name, request] : cases) {
    SCOPED_TRACE(name);
    parked_.Clear();
    HttpTestConnection c = Connect();
    ASSERT_OK(c.Send(request));
    if (name == "end of stream") c.ShutdownWrite();
    ASSERT_TRUE(parked_.WaitFor(1));
    // Another connection's request runs on the same io thread, so the parked
    // request's read completion has returned before it is answered.
    HttpTestConnection other = Connect();
    ASSERT_OK_AND_ASSIGN(HttpTestResponse o,
                         other.Roundtrip("GET", "/echo?x=o"));
    EXPECT_EQ(o.body, "o");
    parked_.responder(0).Respond(Text(200, "answered later"));
    ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "answered later");
    EXPECT_TRUE(c.ReadsEof());
  }
}

TEST_F(HttpServerTest, DeferredAnswerToARequestThatClosesIsDelivered) {
  // "Connection: close": no further request is read, so no read holds the
  // connection while the answer is pending.
  Start();
  HttpTestConnection c = Connect();
  ASSERT_OK(
      c.SendRequest("GET", "/park?x=close", "", {{"Connection", "close"}}));
  ASSERT_TRUE(parked_.WaitFor(1));
  HttpResponder responder = parked_.responder(0);
  parked_.Clear();
  std::thread([responder] {
    responder.Respond(Text(200, "answered later"));
  }).join();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "answered later");
  EXPECT_EQ(r.Header("Connection"), "close");
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  HttpTestConnection c = Connect();
  // Three requests in one write; the two parked ones are answered last
  // first, the middle one at once.
  ASSERT_OK(
      c.Send("GET /park?x=0 HTTP/1.1\r\nHost: t\r\n\r\n"
             "GET /echo?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"
             "GET /park?x=2 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(parked_.WaitFor(2));
  EXPECT_EQ(parked_.request(1).QueryValue("x"), "2");
  parked_.responder(1).Respond(Text(200, "2"));
  parked_.responder(0).Respond(Text(200, "0"));
  for (const char* expected : {"0", "1", "2"}) {
    ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
    EXPECT_EQ(r.body, expected);
  }
}

TEST_F(HttpServerTest, TwoHundredConcurrentConnectionsOnOneIoThread) {
  HttpServerOptions options;
  options.io_threads = 1;
  Start(options);
  constexpr int kClients = 200;
  std::vector<HttpTestConnection> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(Connect());
    ASSERT_OK(
        clients.back().SendRequest("GET", "/park?x=" + std::to_string(i)));
  }
  // All 200 are held at once by one io thread: none is answered until the
  // last has arrived.
  ASSERT_TRUE(parked_.WaitFor(kClients));
  for (int i = 0; i < kClients; ++i) {
    HttpRequest request = parked_.request(static_cast<std::size_t>(i));
    parked_.responder(static_cast<std::size_t>(i))
        .Respond(Text(200, *request.QueryValue("x")));
  }
  for (int i = 0; i < kClients; ++i) {
    ASSERT_OK_AND_ASSIGN(HttpTestResponse r, clients[i].ReadResponse());
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, std::to_string(i));
  }
}

TEST_F(HttpServerTest, OversizedBodyIs413BeforeTheBodyIsRead) {
  HttpServerOptions options;
  options.max_body_bytes = 1024;
  Start(options);
  {
    // Only the header is sent: the answer comes from Content-Length.
    HttpTestConnection c = Connect();
    ASSERT_OK(
        c.Send("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: "
               "9000000\r\n\r\n"));
    ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.Header("Connection"), "close");
    EXPECT_THAT(r.body, HasSubstr("larger than 1024 bytes"));
    EXPECT_TRUE(c.ReadsEof());
  }
  {
    // A chunked body that grows past the limit.
    HttpTestConnection c = Connect();
    ASSERT_OK(
        c.Send("POST /body HTTP/1.1\r\nHost: t\r\n"
               "Transfer-Encoding: chunked\r\n\r\n"
               "400\r\n" +
               std::string(1024, 'a') +
               "\r\n"
               "10\r\n" +
               std::string(16, 'b') + "\r\n0\r\n\r\n"));
    ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
    EXPECT_EQ(r.status, 413);
  }
  // At the limit is fine.
  HttpTestConnection c = Connect();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse ok,
                       c.Roundtrip("POST", "/body", std::string(1024, 'z')));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body.size(), 1024u);
}

TEST_F(HttpServerTest, OversizedHeaderIs431) {
  HttpServerOptions options;
  options.max_header_bytes = 1024;
  Start(options);
  HttpTestConnection c = Connect();
  ASSERT_OK(c.Send("GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: " +
                   std::string(4096, 'h') + "\r\n\r\n"));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
  EXPECT_EQ(r.status, 431);
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(HttpServerTest, MalformedRequestsAre400AndClose) {
  Start();
  for (const std::string bad :
       {"NOT HTTP AT ALL\r\n\r\n", "GET /echo HTTP/9.x\r\n\r\n",
        "GET /echo HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET /echo HTTP/1.1\r\nContent-Length: -5\r\n\r\n"}) {
    HttpTestConnection c = Connect();
    ASSERT_OK(c.Send(bad));
    ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.Header("Content-Type"), "application/json");
    EXPECT_THAT(r.body, HasSubstr("http: malformed request")) << bad;
    EXPECT_TRUE(c.ReadsEof()) << bad;
  }
  // A target that is not a path.
  HttpTestConnection c = Connect();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.Roundtrip("GET", "echo"));
  EXPECT_EQ(r.status, 400);
}

TEST_F(HttpServerTest, BadPercentEscapeIs400AndTheConnectionStaysOpen) {
  Start();
  HttpTestConnection c = Connect();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse q, c.Roundtrip("GET", "/echo?x=%zz"));
  EXPECT_EQ(q.status, 400);
  EXPECT_THAT(q.body, HasSubstr("malformed percent-escape '%zz'"));
  EXPECT_THAT(q.body, HasSubstr("'x'"));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse p, c.Roundtrip("GET", "/ec%ho"));
  EXPECT_EQ(p.status, 400);
  EXPECT_THAT(p.body, HasSubstr("request path"));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse ok, c.Roundtrip("GET", "/echo?x=%41"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "A");
}

TEST_F(HttpServerTest, UnknownPathIs404AndOtherMethodIs405) {
  Start();
  HttpTestConnection c = Connect();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse missing, c.Roundtrip("GET", "/nope"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, R"({"error":"http: no route for GET /nope"})");
  ASSERT_OK_AND_ASSIGN(HttpTestResponse wrong, c.Roundtrip("DELETE", "/echo"));
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.Header("Allow"), "GET, HEAD");
}

TEST_F(HttpServerTest, DroppedResponderAnswers503) {
  Start();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r,
                       testing::HttpGet(server_->port(), "/drop"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, HttpResponse::Dropped().body);
}

TEST_F(HttpServerTest, ThrowingHandlerIs500) {
  Start();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r,
                       testing::HttpGet(server_->port(), "/throw"));
  EXPECT_EQ(r.status, 500);
}

TEST_F(HttpServerTest, HeadersWithLineBreaksAreDropped) {
  Start();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r,
                       testing::HttpGet(server_->port(), "/header"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("X-Ok"), "yes");
  EXPECT_EQ(r.Header("X-Bad"), std::nullopt);
  EXPECT_EQ(r.Header("Injected"), std::nullopt);
}

TEST_F(HttpServerTest, HeadAnswerHasALengthButNoBody) {
  Start();
  HttpTestConnection c = Connect();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse head,
                       c.Roundtrip("HEAD", "/echo?x=abc"));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("Content-Length"), "3");
  // Had a body been sent, it would be read as the next status line.
  ASSERT_OK_AND_ASSIGN(HttpTestResponse next, c.Roundtrip("GET", "/echo?x=z"));
  EXPECT_EQ(next.body, "z");
}

TEST_F(HttpServerTest, ExpectContinueIsAnswered) {
  Start();
  HttpTestConnection c = Connect();
  ASSERT_OK(
      c.Send("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
             "Expect: 100-continue\r\n\r\n"));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse interim, c.ReadResponse());
  EXPECT_EQ(interim.status, 100);
  ASSERT_OK(c.Send("hello"));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
}

TEST_F(HttpServerTest, ConnectionCloseAndHttp10AreHonoured) {
  Start();
  {
    HttpTestConnection c = Connect();
    ASSERT_OK_AND_ASSIGN(
        HttpTestResponse r,
        c.Roundtrip("GET", "/echo?x=1", {}, {{"Connection", "close"}}));
    EXPECT_EQ(r.Header("Connection"), "close");
    EXPECT_TRUE(c.ReadsEof());
  }
  {
    HttpTestConnection c = Connect();
    ASSERT_OK(c.Send("GET /echo?x=2 HTTP/1.0\r\n\r\n"));
    ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
    EXPECT_EQ(r.body, "2");
    EXPECT_TRUE(c.ReadsEof());
  }
  {
    // A client that ends its side after the request still gets the answer.
    HttpTestConnection c = Connect();
    ASSERT_OK(c.SendRequest("GET", "/echo?x=3"));
    c.ShutdownWrite();
    ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
    EXPECT_EQ(r.body, "3");
    EXPECT_TRUE(c.ReadsEof());
  }
}

TEST_F(HttpServerTest, IdleConnectionIsClosedAfterTheReadTimeout) {
  HttpServerOptions options;
  options.read_timeout = milliseconds(200);
  Start(options);
  HttpTestConnection idle = Connect();
  EXPECT_TRUE(idle.ReadsEof());
  // So is one that stalls in the middle of a request, and one idle after a
  // request.
  HttpTestConnection partial = Connect();
  ASSERT_OK(partial.Send("GET /echo HTTP/1.1\r\nHo"));
  EXPECT_TRUE(partial.ReadsEof());
  HttpTestConnection after = Connect();
  ASSERT_OK(after.Roundtrip("GET", "/echo?x=1"));
  EXPECT_TRUE(after.ReadsEof());
  // A parked request is not timed out by the server.
  HttpTestConnection waiting = Connect();
  ASSERT_OK(waiting.SendRequest("GET", "/park"));
  ASSERT_TRUE(parked_.WaitFor(1));
  HttpTestConnection probe = Connect();  // outlives two read timeouts
  EXPECT_TRUE(probe.ReadsEof());
  ASSERT_OK_AND_ASSIGN(
      HttpTestConnection probe2,
      HttpTestConnection::Connect("127.0.0.1", server_->port()));
  EXPECT_TRUE(probe2.ReadsEof());
  parked_.responder(0).Respond(Text(200, "still here"));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, waiting.ReadResponse());
  EXPECT_EQ(r.body, "still here");
}

TEST_F(HttpServerTest, ShutdownClosesIdleKeepAliveConnectionsPromptly) {
  Start();
  std::vector<HttpTestConnection> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(Connect());
    ASSERT_OK(clients.back().Roundtrip("GET", "/echo?x=1"));
  }
  const auto started = std::chrono::steady_clock::now();
  server_->Shutdown(seconds(30));
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(5));
  for (HttpTestConnection& c : clients) EXPECT_TRUE(c.ReadsEof());
  EXPECT_FALSE(HttpTestConnection::Connect("127.0.0.1", server_->port()).ok());
  server_->Shutdown(seconds(30));  // again: returns at once
}

TEST_F(HttpServerTest, ShutdownLetsARequestInProgressFinish) {
  Start();
  std::optional<HttpTestConnection> busy_client(Connect());
  HttpTestConnection& busy = *busy_client;
  ASSERT_OK(busy.SendRequest("GET", "/park"));
  ASSERT_TRUE(parked_.WaitFor(1));
  HttpTestConnection idle = Connect();
  ASSERT_OK(idle.Roundtrip("GET", "/echo?x=1"));
  std::thread shutdown([&] { server_->Shutdown(seconds(30)); });
  // The idle connection closing shows the shutdown has begun.
  EXPECT_TRUE(idle.ReadsEof());
  parked_.responder(0).Respond(Text(200, "finished"));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, busy.ReadResponse());
  EXPECT_EQ(r.body, "finished");
  EXPECT_EQ(r.Header("Connection"), "close");
  EXPECT_TRUE(busy.ReadsEof());
  // The server lingers until the client closes its side too.
  busy_client.reset();
  shutdown.join();
}

TEST_F(HttpServerTest, ShutdownAnswers503AfterTheGrace) {
  Start();
  HttpTestConnection c = Connect();
  ASSERT_OK(c.SendRequest("GET", "/park"));
  ASSERT_TRUE(parked_.WaitFor(1));
  HttpResponder late = parked_.responder(0);
  parked_.Clear();
  server_->Shutdown(milliseconds(100));
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, c.ReadResponse());
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("shutting down"));
  EXPECT_TRUE(c.ReadsEof());
  // A responder that outlives the server answers into nothing.
  server_.reset();
  late.Respond(Text(200, "too late"));
}

TEST_F(HttpServerTest, PortInUseIsUnavailableNamingTheAddress) {
  Start();
  HttpServerOptions options;
  options.host = "127.0.0.1";
  options.port = server_->port();
  auto second = HttpServer::Start(options, [](HttpRequest, HttpResponder) {});
  EXPECT_THAT(second, testing::StatusIs(StatusCode::kUnavailable,
                                        "cannot listen on 127.0.0.1:"));
  options.port = 70000;
  EXPECT_THAT(HttpServer::Start(options, [](HttpRequest, HttpResponder) {}),
              testing::StatusIs(StatusCode::kInvalidArgument, "70000"));
}

TEST_F(HttpServerTest, AConnectionBeyondTheLimitIsAnswered503AndClosed) {
  HttpServerOptions options;
  options.max_connections = 2;
  Start(options);
  HttpTestConnection a = Connect();
  HttpTestConnection b = Connect();
  ASSERT_OK_AND_ASSIGN(HttpTestResponse r, a.Roundtrip("GET", "/echo?x=a"));
  EXPECT_EQ(r.body, "a");

  HttpTestConnection c = Connect();
  ASSERT_OK_AND_ASSIGN(r, c.Roundtrip("GET", "/echo?x=c"));
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, ::testing::HasSubstr("too many connections (at most 2"));
  EXPECT_EQ(r.Header("Connection"), "close");
  EXPECT_TRUE(c.ReadsEof());
  // The admitted ones go on.
  ASSERT_OK_AND_ASSIGN(r, b.Roundtrip("GET", "/echo?x=b"));
  EXPECT_EQ(r.body, "b");

  // A closed one frees its place once the server has seen it close.
  a.ShutdownWrite();
  EXPECT_TRUE(a.ReadsEof());
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    HttpTestConnection d = Connect();
    auto got = d.Roundtrip("GET", "/echo?x=d");
    served = got.ok() && got->status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
}

}  // namespace
}  // namespace dtx
