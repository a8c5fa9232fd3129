// OpenEmbeddedCoordinator with EmbeddedOptions::postgres on a real
// PostgreSQL (scripts/start-postgres.sh, one server for the binary, a fresh
// schema per test): a saga with real gRPC branches runs on the PostgreSQL
// journal, reached by a conninfo or by dtm's parts (host, port, user,
// dbname), and is found there after the coordinator is reopened; an
// unreachable server fails the open with kUnavailable naming it.
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

#include <cstdlib>

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

}  // namespace
}  // namespace dtx::testing

// Exits 77 (ctest's SKIP_RETURN_CODE) when PostgreSQL was missing and the
// tests were skipped, so that a skip is not counted as a pass.
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (rc == 0 && std::getenv("CI") == nullptr &&
      dtx::testing::PostgresWasMissing()) {
    return 77;
  }
  return rc;
}
