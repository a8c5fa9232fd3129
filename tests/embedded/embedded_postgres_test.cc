// OpenEmbeddedCoordinator with EmbeddedOptions::postgres on a real
// PostgreSQL (scripts/start-postgres.sh, one server for the binary, a fresh
// schema per test): a saga with real gRPC branches runs on the PostgreSQL
// journal, reached by a conninfo or by dtm's parts (host, port, user,
// dbname), and is found there after the coordinator is reopened; an
// unreachable server fails the open with kUnavailable naming it. Fencing:
// a coordinator whose transaction another claimed away writes nothing more
// of it and drops it, and one that does not own a transaction calls none of
// its branches.
//
// Without PostgreSQL every test is skipped and the binary exits 77 (ctest:
// skipped), except under CI=true, where they fail.

#include "dtx/dtx.h"
#include "dtx/embedded.h"
#include "dtx/storage/postgres_journal.h"

#include "branch_test_server.h"
#include "postgres_server.h"
#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <libpq-fe.h>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace dtx::testing {
namespace {

using ::testing::ElementsAre;

class EmbeddedPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = RequirePostgres();
    if (pg_ == nullptr) return;
    busi_ = BranchTestServer::Start();
  }

  std::vector<std::string> CallsOf(const std::string& gid) const {
    std::vector<std::string> out;
    for (const ReceivedCall& c : busi_->Calls()) {
      if (c.Get("dtm-gid") == gid) {
        out.push_back(c.method + " " + c.Get("dtm-op"));
      }
    }
    return out;
  }

  // Runs a two-step saga to the end on a coordinator opened with
  // `embedded`, then reopens it and finds the saga final.
  void RunSaga(const EmbeddedOptions& embedded, const std::string& gid) {
    const std::string url = busi_->address();
    {
      ASSERT_OK_AND_ASSIGN(auto dtm,
                           OpenEmbeddedCoordinator(Options(), embedded));
      ASSERT_OK(Saga(*dtm, gid)
                    .Add(url + "/busi.Busi/TransOut",
                         url + "/busi.Busi/TransOutRevert", "o")
                    .Add(url + "/busi.Busi/TransIn",
                         url + "/busi.Busi/TransInRevert", "i")
                    .WaitResult(true)
                    .Submit());
      dtm->Shutdown();
    }
    EXPECT_THAT(CallsOf(gid), ElementsAre("/busi.Busi/TransOut action",
                                          "/busi.Busi/TransIn action"));
    ASSERT_OK_AND_ASSIGN(auto reopened,
                         OpenEmbeddedCoordinator(Options(), embedded));
    ASSERT_OK_AND_ASSIGN(auto found, reopened->Query(gid));
    EXPECT_EQ(found.trans.status, TransStatus::kSucceed);
    EXPECT_EQ(found.branches.size(), 4u);
    reopened->Shutdown();
  }

  // The journal itself, opened by the test.
  Result<TransWithBranches> FindInPostgres(const std::string& schema,
                                           const std::string& gid) {
    PostgresJournalOptions o;
    o.conninfo = pg_->conninfo();
    o.schema = schema;
    DTX_ASSIGN_OR_RETURN(auto journal, PostgresJournal::Open(o));
    return journal->Find(gid);
  }

  PostgresServer* pg_ = nullptr;
  std::unique_ptr<BranchTestServer> busi_;
};

TEST_F(EmbeddedPostgresTest, RunsASagaOnTheJournalOfAConninfo) {
  if (pg_ == nullptr) return;
  EmbeddedOptions embedded;
  embedded.journal_path = "";  // unused with postgres
  EmbeddedPostgresOptions pg;
  pg.conninfo = pg_->url();  // a postgresql:// URI
  pg.schema = FreshPostgresSchema();
  pg.max_open_conns = 3;
  pg.max_idle_conns = 1;
  pg.conn_max_lifetime = std::chrono::minutes(5);
  embedded.postgres = pg;
  RunSaga(embedded, "emb-pg-conninfo");
  ASSERT_OK_AND_ASSIGN(auto found,
                       FindInPostgres(pg.schema, "emb-pg-conninfo"));
  EXPECT_EQ(found.trans.status, TransStatus::kSucceed);
}

TEST_F(EmbeddedPostgresTest, RunsASagaOnTheJournalOfDtmsParts) {
  if (pg_ == nullptr) return;
  EmbeddedOptions embedded;
  EmbeddedPostgresOptions pg;
  pg.host = "127.0.0.1";
  pg.port = pg_->port();
  pg.user = "dtx";
  pg.password = "unused ' dbname=elsewhere";  // trusted loopback; one value
  pg.dbname = "dtx";
  pg.schema = FreshPostgresSchema();
  embedded.postgres = pg;
  RunSaga(embedded, "emb-pg-parts");
  ASSERT_OK_AND_ASSIGN(auto found, FindInPostgres(pg.schema, "emb-pg-parts"));
  EXPECT_EQ(found.trans.status, TransStatus::kSucceed);
}

// The journal's writer connections on the server, as pg_stat_activity
// shows them: polled until there are `want` (a closed journal's backends
// take a moment to go), or the last count after 30 s.
int WriterConnections(const PostgresServer& pg, int want) {
  PGconn* conn = PQconnectdb(pg.conninfo().c_str());
  int n = -1;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (PQstatus(conn) == CONNECTION_OK) {
    PGresult* r = PQexec(conn,
                         "SELECT count(*) FROM pg_stat_activity WHERE "
                         "application_name = 'dtx-journal-writer'");
    n = PQresultStatus(r) == PGRES_TUPLES_OK ? std::atoi(PQgetvalue(r, 0, 0))
                                             : -1;
    PQclear(r);
    if (n == want || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  PQfinish(conn);
  return n;
}

// Several writer connections (EmbeddedPostgresOptions::writers) under a
// coordinator: sagas, msgs and TCCs from 8 threads at once, each
// transaction's writes on the writer its gid picks, while claims go to the
// first. Every one succeeds with its branches called in order, and is
// found succeeded, with all its rows, by a coordinator opened after.
TEST_F(EmbeddedPostgresTest, RunsConcurrentTransactionsOnThreeWriters) {
  if (pg_ == nullptr) return;
  EmbeddedOptions embedded;
  EmbeddedPostgresOptions pg;
  pg.conninfo = pg_->conninfo();
  pg.schema = FreshPostgresSchema();
  pg.writers = 3;
  embedded.postgres = pg;
  const std::string url = busi_->address();
  constexpr int kThreads = 8;
  constexpr int kEach = 6;  // 2 of each mode
  auto gid = [](int t, int i) {
    return "w3-" + std::to_string(t) + "-" + std::to_string(i);
  };
  {
    ASSERT_OK_AND_ASSIGN(auto dtm,
                         OpenEmbeddedCoordinator(Options(), embedded));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          const std::string g = gid(t, i);
          if (i % 3 == 0) {
            EXPECT_OK(Saga(*dtm, g)
                          .Add(url + "/busi.Busi/TransOut",
                               url + "/busi.Busi/TransOutRevert", "o")
                          .Add(url + "/busi.Busi/TransIn",
                               url + "/busi.Busi/TransInRevert", "i")
                          .WaitResult(true)
                          .Submit())
                << g;
          } else if (i % 3 == 1) {
            EXPECT_OK(Msg(*dtm, g)
                          .Add(url + "/busi.Busi/TransOut", "o")
                          .Add(url + "/busi.Busi/TransIn", "i")
                          .WaitResult(true)
                          .Submit())
                << g;
          } else {
            TransOptions o;
            o.wait_result = true;
            EXPECT_OK(TccGlobalTransaction(*dtm, g, o, [&](Tcc& tcc) {
              DTX_RETURN_IF_ERROR(
                  tcc.CallBranch("o", url + "/busi.Busi/TransOutTry",
                                 url + "/busi.Busi/TransOutConfirm",
                                 url + "/busi.Busi/TransOutCancel"));
              return tcc.CallBranch("i", url + "/busi.Busi/TransInTry",
                                    url + "/busi.Busi/TransInConfirm",
                                    url + "/busi.Busi/TransInCancel");
            })) << g;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    // Counted after the load, when the writer connections of journals that
    // earlier tests closed have long left pg_stat_activity: with one writer
    // the count would stay 1.
    EXPECT_EQ(WriterConnections(*pg_, 3), 3);
    dtm->Shutdown();
  }
  ASSERT_OK_AND_ASSIGN(auto reopened,
                       OpenEmbeddedCoordinator(Options(), embedded));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kEach; ++i) {
      const std::string g = gid(t, i);
      ASSERT_OK_AND_ASSIGN(auto found, reopened->Query(g));
      EXPECT_EQ(found.trans.status, TransStatus::kSucceed) << g;
      if (i % 3 == 0) {
        EXPECT_EQ(found.branches.size(), 4u) << g;
        EXPECT_THAT(CallsOf(g), ElementsAre("/busi.Busi/TransOut action",
                                            "/busi.Busi/TransIn action"));
      } else if (i % 3 == 1) {
        EXPECT_EQ(found.branches.size(), 2u) << g;
        EXPECT_THAT(CallsOf(g), ElementsAre("/busi.Busi/TransOut action",
                                            "/busi.Busi/TransIn action"));
      } else {
        EXPECT_EQ(found.branches.size(), 4u) << g;
        EXPECT_THAT(CallsOf(g), ::testing::UnorderedElementsAre(
                                    "/busi.Busi/TransOutTry try",
                                    "/busi.Busi/TransInTry try",
                                    "/busi.Busi/TransOutConfirm confirm",
                                    "/busi.Busi/TransInConfirm confirm"));
      }
    }
  }
  reopened->Shutdown();
}

TEST_F(EmbeddedPostgresTest, AnUnreachableServerFailsTheOpen) {
  if (pg_ == nullptr) return;
  EmbeddedOptions embedded;
  EmbeddedPostgresOptions pg;
  pg.host = "127.0.0.1";
  pg.port = 1;
  pg.password = "hunter2";
  embedded.postgres = pg;
  auto dtm = OpenEmbeddedCoordinator(Options(), embedded);
  EXPECT_THAT(dtm, StatusIs(StatusCode::kUnavailable, "port 1 failed"));
  EXPECT_THAT(dtm.status().message(),
              ::testing::Not(::testing::HasSubstr("hunter2")));
}

// The other coordinator, played by the test: it claims every unfinished
// transaction of `schema` as if their leases had run out.
std::vector<GlobalTrans> ClaimAway(PostgresServer& pg,
                                   const std::string& schema,
                                   const std::string& owner) {
  PostgresJournalOptions o;
  o.conninfo = pg.conninfo();
  o.schema = schema;
  auto journal = PostgresJournal::Open(o);
  EXPECT_OK(journal.status());
  if (!journal.ok()) return {};
  ClaimRequest req;
  req.now = SystemClock().Now() + std::chrono::hours(1);
  req.owner = owner;
  req.lease_until = req.now + std::chrono::hours(1);
  req.limit = 10;
  auto claimed = WaitForClaim(**journal, req);
  EXPECT_OK(claimed.status());
  return claimed.ok() ? *claimed : std::vector<GlobalTrans>{};
}

TEST_F(EmbeddedPostgresTest, AStaleCoordinatorWritesNothingAndDropsIt) {
  if (pg_ == nullptr) return;
  EmbeddedOptions embedded;
  EmbeddedPostgresOptions pg;
  pg.conninfo = pg_->conninfo();
  pg.schema = FreshPostgresSchema();
  embedded.postgres = pg;
  // The branch answers only once another coordinator has claimed the saga.
  auto reached = std::make_shared<std::promise<void>>();
  auto release = std::make_shared<std::promise<void>>();
  std::shared_future<void> released = release->get_future().share();
  busi_->SetHandler("/busi.Busi/Hold",
                    [reached, released](const ReceivedCall&) {
                      reached->set_value();
                      released.wait();
                      return TestReply::Ok();
                    });
  const std::string url = busi_->address();
  ASSERT_OK_AND_ASSIGN(auto dtm, OpenEmbeddedCoordinator(Options(), embedded));
  ASSERT_OK(
      Saga(*dtm, "fenced-saga")
          .Add(url + "/busi.Busi/Hold", url + "/busi.Busi/HoldRevert", "h")
          .Submit());
  reached->get_future().wait();
  const auto claimed = ClaimAway(*pg_, pg.schema, "the-other-one");
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].fence, 1);
  release->set_value();

  // Its answer is not recorded, nor the success it would decide, and the
  // saga leaves this coordinator's memory (else WaitIdle would not return).
  dtm->WaitIdle();
  ASSERT_OK_AND_ASSIGN(auto row, FindInPostgres(pg.schema, "fenced-saga"));
  EXPECT_EQ(row.trans.status, TransStatus::kSubmitted);
  EXPECT_EQ(row.trans.owner, "the-other-one");
  EXPECT_EQ(row.trans.fence, 1);
  for (const Branch& b : row.branches) {
    EXPECT_EQ(b.status, BranchStatus::kPrepared) << b.branch_id;
    EXPECT_EQ(b.attempts, 0) << b.branch_id;
  }
  EXPECT_EQ(row.trans.next_cron_time, claimed[0].next_cron_time);

  // Asked to go on with it, this coordinator leaves it to its owner, whose
  // lease has not run out: no call, nothing written.
  EXPECT_THAT(dtm->RetryNow("fenced-saga"),
              StatusIs(StatusCode::kFailedPrecondition,
                       "worked on by coordinator 'the-other-one'"));
  dtm->WaitIdle();
  EXPECT_EQ(busi_->CallCount("/busi.Busi/Hold"), 1u);
  ASSERT_OK_AND_ASSIGN(row, FindInPostgres(pg.schema, "fenced-saga"));
  EXPECT_EQ(row.trans.owner, "the-other-one");
  EXPECT_EQ(row.trans.fence, 1);
  dtm->Shutdown();
}

TEST_F(EmbeddedPostgresTest, ADecisionOfAnotherCoordinatorTakesItOver) {
  if (pg_ == nullptr) return;
  EmbeddedOptions embedded;
  EmbeddedPostgresOptions pg;
  pg.conninfo = pg_->conninfo();
  pg.schema = FreshPostgresSchema();
  embedded.postgres = pg;
  const std::string url = busi_->address();
  // A tcc prepared through coordinator A, submitted through coordinator B
  // (as a client behind a load balancer would): B's decision takes it over
  // and B confirms it; A writes nothing of it afterwards.
  ASSERT_OK_AND_ASSIGN(auto a, OpenEmbeddedCoordinator(Options(), embedded));
  ASSERT_OK_AND_ASSIGN(auto b, OpenEmbeddedCoordinator(Options(), embedded));
  TransRequest req;
  req.gid = "tcc-moved";
  req.trans_type = TransType::kTcc;
  ASSERT_OK(a->Prepare(req));
  BranchRegistration branch;
  branch.gid = req.gid;
  branch.branch_id = "01";
  branch.confirm_url = url + "/busi.Busi/Confirm";
  branch.cancel_url = url + "/busi.Busi/Cancel";
  ASSERT_OK(a->RegisterBranch(branch));
  req.options.wait_result = true;
  ASSERT_OK(b->Submit(req));
  b->WaitIdle();
  a->WaitIdle();
  ASSERT_OK_AND_ASSIGN(auto row, FindInPostgres(pg.schema, "tcc-moved"));
  EXPECT_EQ(row.trans.status, TransStatus::kSucceed);
  EXPECT_EQ(row.trans.fence, 1);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/Confirm"), 1u);
  EXPECT_EQ(busi_->CallCount("/busi.Busi/Cancel"), 0u);
  b->Shutdown();
  a->Shutdown();
}

// A coordinator that does not own a transaction decides nothing of it on
// its own: asked to go on with a saga that another coordinator is working on
// (a client submitting it again through a load balancer), it does not time it
// out, take it over and compensate it while the owner's lease runs and the
// owner's calls may be on the wire.
TEST_F(EmbeddedPostgresTest, ANonOwnerDoesNotTimeOutWhatItDoesNotOwn) {
  if (pg_ == nullptr) return;
  EmbeddedOptions embedded;
  EmbeddedPostgresOptions pg;
  pg.conninfo = pg_->conninfo();
  pg.schema = FreshPostgresSchema();
  embedded.postgres = pg;
  const std::string url = busi_->address();
  ASSERT_OK_AND_ASSIGN(auto dtm, OpenEmbeddedCoordinator(Options(), embedded));
  // The saga as its owner left it: submitted an hour ago with a timeout of
  // 1 s, its lease an hour ahead (the owner is calling its step).
  {
    PostgresJournalOptions o;
    o.conninfo = pg_->conninfo();
    o.schema = pg.schema;
    ASSERT_OK_AND_ASSIGN(auto journal, PostgresJournal::Open(o));
    const TimePoint now = SystemClock().Now();
    GlobalTrans t;
    t.gid = "owned-elsewhere";
    t.trans_type = TransType::kSaga;
    t.status = TransStatus::kSubmitted;
    t.protocol = "grpc";
    t.options = R"({"timeout_to_fail":1})";
    t.create_time = now - std::chrono::hours(1);
    t.next_cron_interval = std::chrono::seconds(10);
    t.next_cron_time = now + std::chrono::hours(1);
    t.owner = "the-owner";
    t.fence = 3;
    Branch compensate;
    compensate.branch_id = "01";
    compensate.op = BranchOp::kCompensate;
    compensate.url = url + "/busi.Busi/TransOutRevert";
    Branch action = compensate;
    action.op = BranchOp::kAction;
    action.url = url + "/busi.Busi/TransOut";
    ASSERT_OK(WaitForWrite([&](WriteDone done) {
      journal->SaveNew(t, {compensate, action}, std::move(done));
    }));
  }
  const Status resubmitted = Saga(*dtm, "owned-elsewhere")
                                 .Add(url + "/busi.Busi/TransOut",
                                      url + "/busi.Busi/TransOutRevert", "o")
                                 .Submit();
  (void)resubmitted;  // accepted or not: what matters is what it did
  dtm->WaitIdle();
  EXPECT_THAT(CallsOf("owned-elsewhere"), ::testing::IsEmpty());
  ASSERT_OK_AND_ASSIGN(auto row, FindInPostgres(pg.schema, "owned-elsewhere"));
  EXPECT_EQ(row.trans.status, TransStatus::kSubmitted);
  EXPECT_EQ(row.trans.owner, "the-owner");
  EXPECT_EQ(row.trans.fence, 3);
  dtm->Shutdown();
}

}  // namespace
}  // namespace dtx::testing
