// dtm's admin HTTP API on a real dtx-server process (journal in a temp dir,
// both ports ephemeral on 127.0.0.1), driven over HTTP with transactions
// submitted through GrpcDtmClient: every endpoint's answers and errors, a
// stuck saga's retry state, retry-now and force-stop changing the journal.

#include "dtx/transaction.h"
#include "dtx/transport/grpc_dtm_client.h"
#include "dtx/version.h"

#include "branch_test_server.h"
#include "dtx_server_process.h"
#include "http_test_client.h"
#include "status_matchers.h"
#include "subprocess.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <functional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace dtx::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Nothing listens on port 1: calls fail at once, a transient error.
constexpr char kUnreachable[] = "127.0.0.1:1/busi.Busi/Nowhere";

// A back-off far longer than any wait below, so that only retry-now can
// make a stuck branch be called again.
constexpr char kLongBackOff[] =
    "RetryInterval: 60\nTimeoutToFail: 120\nRequestTimeout: 3\n"
    "TransCronInterval: 1\nRetryIntervalMax: 3600\n";

// "2026-12-02T10:11:12.345+01:00" as Unix milliseconds; -1 when the text is
// not RFC 3339 as dtx-server writes it.
int64_t ParseRfc3339(const std::string& text) {
  static const std::regex kForm(
      R"((\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d{1,3})?(Z|([+-])(\d\d):(\d\d)))");
  std::smatch m;
  if (!std::regex_match(text, m, kForm)) return -1;
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  if (m[7].matched) {
    std::string frac = m[7].str().substr(1);
    frac.resize(3, '0');
    ms += std::stoi(frac);
  }
  if (m[8] != "Z") {
    const int64_t offset =
        (std::stoi(m[10]) * 60 + std::stoi(m[11])) * 60 * 1000;
    ms -= m[9] == "+" ? offset : -offset;
  }
  return ms;
}

class AdminHttpTest : public ::testing::Test {
 protected:
  void SetUp() override { busi_ = BranchTestServer::Start(); }

  void StartServer(const std::string& intervals = "",
                   const std::string& yaml = "") {
    DtxServerConfig config;
    config.journal_path = dir_.File("dtx.db");
    config.config_path = dir_.File("dtx.yml");
    if (!intervals.empty()) config.intervals = intervals;
    config.yaml = yaml;
    auto server = DtxServerProcess::Start(config);
    ASSERT_OK(server);
    server_ = std::move(server).value();
    GrpcDtmClientOptions options;
    options.address = server_->address();
    auto client = GrpcDtmClient::Create(options);
    ASSERT_OK(client);
    dtm_ = std::move(client).value();
  }

  HttpTestResponse Request(const std::string& method, const std::string& target,
                           const std::string& body = "",
                           const Headers& headers = {}) {
    auto c = HttpTestConnection::Connect("127.0.0.1", server_->http_port());
    EXPECT_OK(c);
    if (!c.ok()) return {};
    auto r = c->Roundtrip(method, target, body, headers);
    EXPECT_OK(r);
    return r.ok() ? std::move(r).value() : HttpTestResponse{};
  }
  HttpTestResponse Get(const std::string& target) {
    return Request("GET", target, "", read_headers_);
  }
  HttpTestResponse Post(const std::string& path, const std::string& body,
                        const Headers& headers = {}) {
    return Request("POST", path, body, headers);
  }
  static std::string GidBody(const std::string& gid) {
    return json{{"gid", gid}}.dump();
  }

  // The JSON body of a response, after checking its status.
  static json Body(const HttpTestResponse& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/json");
    json j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }

  json Query(const std::string& gid) {
    return Body(Get("/api/dtmsvr/query?gid=" + gid), 200);
  }
  // The action branch (after its compensate row) of a one-step saga.
  json Action(const std::string& gid) {
    json q = Query(gid);
    if (!q["branches"].is_array() || q["branches"].size() != 2) return json();
    return q["branches"][1];
  }
  std::vector<std::string> Gids(const std::string& query) {
    json j = Body(Get("/api/dtmsvr/all?" + query), 200);
    std::vector<std::string> out;
    for (const json& t : j["transactions"]) out.push_back(t["gid"]);
    return out;
  }

  // Polls `done` for up to 20 s (the server works on its own).
  static bool Eventually(const std::function<bool()>& done) {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
  bool AttemptsReach(const std::string& gid, int64_t n) {
    return Eventually([&] {
      json a = Action(gid);
      return a.is_object() && a["attempts"].get<int64_t>() >= n;
    });
  }

  TempDir dir_;
  // Sent with every Get (the bearer token, when the server has one).
  Headers read_headers_;
  std::unique_ptr<BranchTestServer> busi_;
  std::unique_ptr<DtxServerProcess> server_;
  std::unique_ptr<GrpcDtmClient> dtm_;
};

TEST_F(AdminHttpTest, VersionAndStatsOfAnEmptyJournal) {
  StartServer();
  json v = Body(Get("/api/dtmsvr/version"), 200);
  EXPECT_EQ(v, json({{"version", DTX_VERSION_STRING}}));
  json s = Body(Get("/api/dtx/stats"), 200);
  EXPECT_EQ(s["counts"], json({{"prepared", 0},
                               {"submitted", 0},
                               {"aborting", 0},
                               {"succeed", 0},
                               {"failed", 0}}));
  EXPECT_EQ(s["unfinished"], 0);
  EXPECT_EQ(s["due"], 0);
  EXPECT_TRUE(s["oldest_unfinished_create_time"].is_null());
  // Paths are dtm's and their methods too.
  EXPECT_EQ(Post("/api/dtmsvr/version", "").status, 405);
  EXPECT_EQ(Get("/api/dtmsvr/forceStop").status, 405);
}

TEST_F(AdminHttpTest, QueryShowsATransactionInDtmsKeysWithItsRetryState) {
  StartServer();
  const std::string payload("pay\0load", 8);
  ASSERT_OK(Saga(*dtm_, "q-ok")
                .Add(busi_->address() + "/busi.Busi/TransOut", "", payload)
                .WaitResult(true)
                .Submit());
  json q = Query("q-ok");
  const json& t = q["transaction"];
  EXPECT_EQ(t["gid"], "q-ok");
  EXPECT_EQ(t["trans_type"], "saga");
  EXPECT_EQ(t["status"], "succeed");
  EXPECT_EQ(t["protocol"], "grpc");
  EXPECT_TRUE(t["wait_result"].get<bool>());  // the options, flattened
  EXPECT_FALSE(t["concurrent"].get<bool>());
  EXPECT_TRUE(t["id"].is_number_integer());
  EXPECT_GT(ParseRfc3339(t["create_time"]), 0) << t["create_time"];
  EXPECT_GE(ParseRfc3339(t["finish_time"]), ParseRfc3339(t["create_time"]));
  EXPECT_TRUE(t["rollback_time"].is_null());
  EXPECT_TRUE(t["next_cron_time"].is_null()) << "finished: no next retry";
  for (const char* key : {"query_prepared", "options", "custom_data", "owner",
                          "ext_data", "result", "rollback_reason",
                          "update_time", "next_cron_interval", "retry_count"}) {
    EXPECT_TRUE(t.contains(key)) << key;
  }
  ASSERT_EQ(q["branches"].size(), 2u);
  const json& compensate = q["branches"][0];
  const json& action = q["branches"][1];
  EXPECT_EQ(compensate["op"], "compensate");
  EXPECT_EQ(compensate["attempts"], 0);
  EXPECT_TRUE(compensate["last_try_time"].is_null());
  EXPECT_EQ(action["op"], "action");
  EXPECT_EQ(action["branch_id"], "01");
  EXPECT_EQ(action["status"], "succeed");
  EXPECT_EQ(action["url"], busi_->address() + "/busi.Busi/TransOut");
  EXPECT_EQ(action["bin_data"], "cGF5AGxvYWQ=");  // base64 of "pay\0load"
  EXPECT_EQ(action["attempts"], 1);
  EXPECT_EQ(action["last_error"], "");
  EXPECT_GT(ParseRfc3339(action["last_try_time"]), 0);
  EXPECT_GT(ParseRfc3339(action["finish_time"]), 0);
  EXPECT_EQ(action["gid"], "q-ok");

  // dtm's answer for a gid it does not know: null and an empty list.
  EXPECT_EQ(Query("ghost"),
            json({{"transaction", nullptr}, {"branches", json::array()}}));
  // No gid: dtm answers 500; dtx says what is missing.
  for (const char* target : {"/api/dtmsvr/query", "/api/dtmsvr/query?gid="}) {
    json missing = Body(Get(target), 400);
    EXPECT_THAT(missing["message"].get<std::string>(), HasSubstr("gid"));
  }
}

TEST_F(AdminHttpTest, AllFiltersAndPagesAsDtmWithDtxsAdditions) {
  StartServer(kLongBackOff);
  for (const char* gid : {"all-pay-1", "all-pay_2", "all-ship-1"}) {
    ASSERT_OK(Saga(*dtm_, gid).Add("", "", "").WaitResult(true).Submit());
  }
  ASSERT_OK(Saga(*dtm_, "all-stuck").Add(kUnreachable, "", "").Submit());
  using ::testing::ElementsAre;
  EXPECT_THAT(Gids(""),
              ElementsAre("all-stuck", "all-ship-1", "all-pay_2", "all-pay-1"));
  EXPECT_THAT(Gids("gidPrefix=all-pay"), ElementsAre("all-pay_2", "all-pay-1"));
  EXPECT_THAT(Gids("gidPrefix=all-pay_"), ElementsAre("all-pay_2"));
  EXPECT_THAT(Gids("gidPrefix=all-pay%25"), ElementsAre());
  EXPECT_THAT(Gids("unfinished=true"), ElementsAre("all-stuck"));
  EXPECT_THAT(Gids("unfinished=false&status=succeed&gidPrefix=all-s"),
              ElementsAre("all-ship-1"));
  EXPECT_THAT(Gids("status=submitted"), ElementsAre("all-stuck"));
  EXPECT_THAT(Gids("transType=tcc"), ElementsAre());
  EXPECT_THAT(Gids("transType=saga&limit=2"),
              ElementsAre("all-stuck", "all-ship-1"));
  EXPECT_THAT(Gids("createTimeStart=4102444800000"), ElementsAre());  // 2100
  EXPECT_THAT(Gids("createTimeEnd=1000"), ElementsAre());
  EXPECT_EQ(Gids("createTimeStart=0&createTimeEnd=4102444800000").size(), 4u);
  // dtm's gid parameter: that one transaction, or none.
  EXPECT_THAT(Gids("gid=all-ship-1"), ElementsAre("all-ship-1"));
  EXPECT_THAT(Gids("gid=ghost"), ElementsAre());
  EXPECT_THAT(Gids("gid=all-ship-1&status=failed"), ElementsAre());

  // Paging by position, newest first; "" after the last page.
  std::vector<std::string> paged;
  std::string position;
  for (int pages = 0; pages < 10; ++pages) {
    json page = Body(Get("/api/dtmsvr/all?limit=3&position=" + position), 200);
    for (const json& t : page["transactions"]) paged.push_back(t["gid"]);
    position = page["next_position"];
    if (position.empty()) break;
  }
  EXPECT_THAT(paged,
              ElementsAre("all-stuck", "all-ship-1", "all-pay_2", "all-pay-1"));
  EXPECT_EQ(Body(Get("/api/dtmsvr/all?limit=5000"), 200)["transactions"].size(),
            4u);  // clamped to 1000, not refused

  // Bad parameters: 400, naming the parameter.
  for (const auto& [query, name] :
       std::vector<std::pair<std::string, std::string>>{
           {"limit=abc", "limit"},
           {"limit=-1", "limit"},
           {"limit=99999999999999999999", "limit"},
           {"position=x", "position"},
           {"status=weird", "status"},
           {"transType=saga2", "transType"},
           {"createTimeStart=1.5", "createTimeStart"},
           {"createTimeEnd=yesterday", "createTimeEnd"},
           {"unfinished=maybe", "unfinished"},
           {"gidPrefix=a%20b", "gidPrefix"}}) {
    json bad = Body(Get("/api/dtmsvr/all?" + query), 400);
    EXPECT_THAT(bad["message"].get<std::string>(), HasSubstr(name)) << query;
  }
}

TEST_F(AdminHttpTest, AStuckSagaShowsItsRetryStateAndRetryNowRunsItAgain) {
  StartServer(kLongBackOff);
  ASSERT_OK(Saga(*dtm_, "stuck").Add(kUnreachable, "", "").Submit());
  ASSERT_TRUE(AttemptsReach("stuck", 1));
  json q = Query("stuck");
  const json& action = q["branches"][1];
  EXPECT_EQ(action["status"], "prepared");
  EXPECT_THAT(action["last_error"].get<std::string>(), HasSubstr("TRANSIENT"));
  const int64_t tried = ParseRfc3339(action["last_try_time"]);
  const int64_t next = ParseRfc3339(q["transaction"]["next_cron_time"]);
  EXPECT_GT(tried, 0);
  // The next retry is a back-off away (RetryInterval 60 s).
  EXPECT_GE(next - tried, 59000) << q.dump();
  json s = Body(Get("/api/dtx/stats"), 200);
  EXPECT_EQ(s["counts"]["submitted"], 1);
  EXPECT_EQ(s["unfinished"], 1);
  EXPECT_GT(ParseRfc3339(s["oldest_unfinished_create_time"]), 0);

  // Retry-now and dtm's resetNextCronTime: called again at once, not in a
  // minute.
  EXPECT_EQ(Body(Post("/api/dtx/retryNow", GidBody("stuck")), 200),
            json({{"dtm_result", "SUCCESS"}}));
  ASSERT_TRUE(AttemptsReach("stuck", 2));
  EXPECT_EQ(Body(Post("/api/dtmsvr/resetNextCronTime", GidBody("stuck")), 200),
            json({{"dtm_result", "SUCCESS"}}));
  ASSERT_TRUE(AttemptsReach("stuck", 3));
  EXPECT_EQ(Query("stuck")["transaction"]["status"], "submitted");

  // Force-stop: failed in the journal, never called again.
  EXPECT_EQ(Body(Post("/api/dtmsvr/forceStop", GidBody("stuck")), 200),
            json({{"dtm_result", "SUCCESS"}}));
  q = Query("stuck");
  EXPECT_EQ(q["transaction"]["status"], "failed");
  EXPECT_EQ(q["transaction"]["rollback_reason"], "force stopped");
  EXPECT_GT(ParseRfc3339(q["transaction"]["rollback_time"]), 0);
  EXPECT_TRUE(q["transaction"]["next_cron_time"].is_null());
  const int64_t attempts = q["branches"][1]["attempts"];
  EXPECT_THAT(Gids("status=failed"), ::testing::ElementsAre("stuck"));
  s = Body(Get("/api/dtx/stats"), 200);
  EXPECT_EQ(s["counts"]["failed"], 1);
  EXPECT_EQ(s["counts"]["submitted"], 0);
  EXPECT_EQ(s["unfinished"], 0);

  // A finished transaction: dtm's FAILURE, 409, for all three.
  for (const char* path : {"/api/dtmsvr/forceStop", "/api/dtx/retryNow",
                           "/api/dtmsvr/resetNextCronTime"}) {
    json refused = Body(Post(path, GidBody("stuck")), 409);
    EXPECT_EQ(refused["dtm_result"], "FAILURE") << path;
    EXPECT_THAT(refused["message"].get<std::string>(), HasSubstr("failed"))
        << path;
    // An unknown gid: 404.
    json unknown = Body(Post(path, GidBody("ghost")), 404);
    EXPECT_THAT(unknown["message"].get<std::string>(), HasSubstr("ghost"));
  }
  EXPECT_EQ(Action("stuck")["attempts"], attempts);
}

TEST_F(AdminHttpTest, MalformedBodiesAreRefusedAndChangeNothing) {
  StartServer(kLongBackOff);
  ASSERT_OK(Saga(*dtm_, "kept").Add(kUnreachable, "", "").Submit());
  ASSERT_TRUE(AttemptsReach("kept", 1));
  for (const char* path : {"/api/dtmsvr/forceStop", "/api/dtx/retryNow",
                           "/api/dtmsvr/resetNextCronTime"}) {
    for (const std::string& body :
         {std::string("{"), std::string("[\"kept\"]"), std::string("{}"),
          std::string(R"({"gid":5})"), std::string(R"({"gid":""})"),
          std::string(R"({"gid":"has space"})"), std::string("kept"),
          std::string()}) {
      json bad = Body(Post(path, body), 400);
      EXPECT_THAT(bad["message"].get<std::string>(), HasSubstr("gid"))
          << path << " " << body;
    }
  }
  EXPECT_EQ(Query("kept")["transaction"]["status"], "submitted");
  EXPECT_EQ(Action("kept")["attempts"], 1);
}

constexpr char kToken[] = "s3cr3t-T0ken";

class AdminTokenTest : public AdminHttpTest {
 protected:
  void SetUp() override {
    AdminHttpTest::SetUp();
    StartServer(kLongBackOff, std::string("Admin:\n  Token: ") + kToken + "\n");
    read_headers_ = {{"Authorization", std::string("Bearer ") + kToken}};
  }
  std::unique_ptr<GrpcDtmClient> ClientWithToken(const std::string& token) {
    GrpcDtmClientOptions options;
    options.address = server_->address();
    options.admin_token = token;
    auto client = GrpcDtmClient::Create(options);
    EXPECT_OK(client);
    return client.ok() ? std::move(client).value() : nullptr;
  }
};

TEST_F(AdminTokenTest, HttpEndpointsNeedTheBearerTokenButTheVersion) {
  ASSERT_OK(Saga(*dtm_, "guarded").Add(kUnreachable, "", "").Submit());
  ASSERT_TRUE(AttemptsReach("guarded", 1));
  // Reads show payloads and branch headers: they need the token too.
  EXPECT_EQ(Request("GET", "/api/dtmsvr/version").status, 200);
  for (const char* target :
       {"/api/dtmsvr/query?gid=guarded", "/api/dtmsvr/all", "/api/dtx/stats"}) {
    json body = Body(Request("GET", target), 401);
    EXPECT_THAT(body["message"].get<std::string>(),
                HasSubstr("Authorization: Bearer"))
        << target;
    Body(Request("GET", target, "", {{"Authorization", "Bearer wrong"}}), 401);
  }
  EXPECT_EQ(Query("guarded")["transaction"]["status"], "submitted");
  EXPECT_EQ(Gids("unfinished=true"), std::vector<std::string>{"guarded"});
  EXPECT_EQ(Get("/api/dtx/stats").status, 200);

  for (const char* path : {"/api/dtmsvr/forceStop", "/api/dtx/retryNow",
                           "/api/dtmsvr/resetNextCronTime"}) {
    for (const Headers& headers :
         {Headers{}, Headers{{"Authorization", kToken}},
          Headers{{"Authorization", std::string("Basic ") + kToken}},
          Headers{{"Authorization", "Bearer"}}}) {
      HttpTestResponse r = Post(path, GidBody("guarded"), headers);
      json body = Body(r, 401);
      EXPECT_THAT(body["message"].get<std::string>(),
                  HasSubstr("Authorization: Bearer"))
          << path;
      EXPECT_EQ(r.Header("WWW-Authenticate").value_or(""),
                R"(Bearer realm="dtx")");
    }
    for (const std::string& wrong :
         {std::string("s3cr3t-T0ke"), std::string("s3cr3t-T0ken0"),
          std::string("S3CR3T-T0KEN")}) {
      HttpTestResponse r = Post(path, GidBody("guarded"),
                                {{"Authorization", "Bearer " + wrong}});
      json body = Body(r, 401);
      EXPECT_THAT(body["message"].get<std::string>(),
                  HasSubstr("not Admin.Token"));
      EXPECT_EQ(r.Header("WWW-Authenticate").value_or(""),
                R"(Bearer realm="dtx", error="invalid_token")");
    }
    // The token is checked first: a bad body without it is 401, not 400.
    EXPECT_EQ(Post(path, "{").status, 401);
  }
  EXPECT_EQ(Query("guarded")["transaction"]["status"], "submitted");

  const Headers right = {{"Authorization", std::string("Bearer ") + kToken}};
  EXPECT_EQ(Post("/api/dtx/retryNow", GidBody("guarded"), right).status, 200);
  ASSERT_TRUE(AttemptsReach("guarded", 2));
  EXPECT_EQ(Post("/api/dtmsvr/resetNextCronTime", GidBody("guarded"),
                 {{"authorization", std::string("bearer ") + kToken}})
                .status,
            200);
  ASSERT_TRUE(AttemptsReach("guarded", 3));
  EXPECT_EQ(Body(Post("/api/dtmsvr/forceStop", "{", right), 400).is_object(),
            true);
  EXPECT_EQ(Post("/api/dtmsvr/forceStop", GidBody("guarded"), right).status,
            200);
  EXPECT_EQ(Query("guarded")["transaction"]["status"], "failed");
}

TEST_F(AdminTokenTest, GrpcAdminCallsNeedTheToken) {
  ASSERT_OK(Saga(*dtm_, "guarded-rpc").Add(kUnreachable, "", "").Submit());
  ASSERT_TRUE(AttemptsReach("guarded-rpc", 1));
  for (const std::string& token : {std::string(), std::string("wrong")}) {
    auto client = ClientWithToken(token);
    ASSERT_NE(client, nullptr);
    const char* why = token.empty() ? "needs the metadata" : "not Admin.Token";
    EXPECT_THAT(client->ForceStop("guarded-rpc"),
                StatusIs(StatusCode::kUnauthenticated, why));
    EXPECT_THAT(client->RetryNow("guarded-rpc"),
                StatusIs(StatusCode::kUnauthenticated, why));
    // An unknown gid is refused the same way: nothing is revealed.
    EXPECT_THAT(client->ForceStop("ghost"),
                StatusIs(StatusCode::kUnauthenticated));
    EXPECT_THAT(client->Query("guarded-rpc"),
                StatusIs(StatusCode::kUnauthenticated, why));
    EXPECT_THAT(client->List(ListQuery{}),
                StatusIs(StatusCode::kUnauthenticated, why));
    EXPECT_THAT(client->Stats(), StatusIs(StatusCode::kUnauthenticated, why));
    // dtm's API needs no token.
    EXPECT_OK(client->NewGid());
  }
  EXPECT_EQ(Query("guarded-rpc")["transaction"]["status"], "submitted");
  EXPECT_EQ(Action("guarded-rpc")["attempts"], 1);

  auto admin = ClientWithToken(kToken);
  ASSERT_NE(admin, nullptr);
  ASSERT_OK(admin->RetryNow("guarded-rpc"));
  ASSERT_TRUE(AttemptsReach("guarded-rpc", 2));
  ASSERT_OK(admin->ForceStop("guarded-rpc"));
  ASSERT_OK_AND_ASSIGN(TransWithBranches t, admin->Query("guarded-rpc"));
  EXPECT_EQ(t.trans.status, TransStatus::kFailed);
  EXPECT_THAT(admin->ForceStop("guarded-rpc"), StatusIs(StatusCode::kAborted));
  EXPECT_THAT(admin->RetryNow("ghost"), StatusIs(StatusCode::kNotFound));
  // The token option is checked: gRPC cannot send other bytes.
  GrpcDtmClientOptions bad;
  bad.address = server_->address();
  bad.admin_token = "two words";
  EXPECT_THAT(GrpcDtmClient::Create(bad),
              StatusIs(StatusCode::kInvalidArgument, "admin_token"));
}

// The lines dtx-server writes (stdout and stderr) until it serves HTTP.
std::string StartupOutput(const std::string& config_path,
                          const std::string& host) {
  auto child = Subprocess::Start(
      {"/bin/sh", "-c",
       std::string("exec '") + DTX_SERVER_BINARY + "' -c '" + config_path +
           "' --grpc-host " + host + " --grpc-port 0 --http-port 0 2>&1"});
  EXPECT_OK(child);
  if (!child.ok()) return "";
  std::string out;
  while (auto line = child->ReadLine()) {
    out += *line + "\n";
    if (line->rfind("dtx-server: http listening on", 0) == 0) break;
  }
  child->Kill(SIGTERM);
  EXPECT_EQ(child->Wait(), 0) << out;
  return out;
}

TEST_F(AdminHttpTest, StartupSaysOnceWhoMayUseTheAdminApi) {
  const std::string plain = dir_.File("plain.yml");
  std::ofstream(plain) << "Store:\n  Path: '" << dir_.File("a.db") << "'\n";
  const std::string guarded = dir_.File("guarded.yml");
  std::ofstream(guarded) << "Store:\n  Path: '" << dir_.File("b.db")
                         << "'\nAdmin:\n  Token: " << kToken << "\n";
  const std::string opened = dir_.File("opened.yml");
  std::ofstream(opened) << "Store:\n  Path: '" << dir_.File("c.db")
                        << "'\nAdmin:\n  Open: true\n";
  auto once = [](const std::string& out, const std::string& line) {
    const std::size_t first = out.find(line);
    EXPECT_NE(first, std::string::npos) << line << " in\n" << out;
    EXPECT_EQ(out.find("admin service and endpoints",
                       out.find("admin service and endpoints") + 1),
              std::string::npos)
        << "once:\n"
        << out;
  };
  once(StartupOutput(plain, "0.0.0.0"), "admin service and endpoints CLOSED");
  for (const char* host : {"127.0.0.1", "localhost"}) {
    once(StartupOutput(plain, host),
         "admin service and endpoints open without a token (GrpcHost");
  }
  once(StartupOutput(opened, "0.0.0.0"),
       "admin service and endpoints OPEN without a token on 0.0.0.0 "
       "(Admin.Open: true)");
  const std::string with_token = StartupOutput(guarded, "0.0.0.0");
  once(with_token, "admin service and endpoints need Admin.Token");
  EXPECT_THAT(with_token, ::testing::Not(HasSubstr(kToken)));
}

}  // namespace
}  // namespace dtx::testing
