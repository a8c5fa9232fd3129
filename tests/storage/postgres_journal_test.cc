// PostgresJournal: the Journal contract on a real PostgreSQL (one fresh
// schema per test), plus what is particular to PostgreSQL: the schema's
// migrations, a server restart, a connection killed in the middle of a
// batch, and two journals claiming from one database.
//
// The server comes from scripts/start-postgres.sh, one per run of this
// binary (tests/testing/postgres_server.h). Without PostgreSQL every test is
// skipped and the binary exits 77 (ctest: skipped), except under CI=true,
// where they fail.

#include "dtx/storage/postgres_journal.h"

#include "dtx/metrics.h"

#include "journal_contract_test.h"
#include "lazy_write_check.h"
#include "postgres_server.h"
#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <libpq-fe.h>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace dtx::testing {
namespace {

// The contract holds with batches pipelined on two writers (which keep the
// order of each transaction's completions only) and with one writer (the
// default) sending every statement on its own round trip.
template <bool kPipeline, std::size_t kWriters>
struct PostgresFactory {
  static constexpr bool kOrdersAcrossTransactions = kWriters == 1;
  std::unique_ptr<Journal> Make(const Clock* clock) {
    PostgresServer* pg = RequirePostgres();
    if (pg == nullptr) return nullptr;
    PostgresJournalOptions options;
    options.conninfo = pg->conninfo();
    options.schema = FreshPostgresSchema();
    options.clock = clock;
    options.pipeline = kPipeline;
    options.writers = kWriters;
    auto journal = PostgresJournal::Open(options);
    EXPECT_OK(journal);
    return journal.ok() ? std::move(journal).value() : nullptr;
  }
};

using PostgresTwoWriters = PostgresFactory<true, 2>;
using PostgresOneWriterOneByOne = PostgresFactory<false, 1>;
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, JournalContractTest,
                               PostgresTwoWriters);
INSTANTIATE_TYPED_TEST_SUITE_P(PostgresOneByOne, JournalContractTest,
                               PostgresOneWriterOneByOne);

// A plain libpq connection of the test's own, to look at and stir the
// database behind the journal's back.
class RawConn {
 public:
  explicit RawConn(const std::string& conninfo)
      : conn_(PQconnectdb(conninfo.c_str())) {
    EXPECT_EQ(PQstatus(conn_), CONNECTION_OK) << PQerrorMessage(conn_);
  }
  ~RawConn() { PQfinish(conn_); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  // Runs `sql`; the first column of the first row ("" without rows), or
  // "ERROR: ..." when it fails.
  std::string Query(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    std::string out;
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) {
      if (PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
    } else if (st != PGRES_COMMAND_OK) {
      out = std::string("ERROR: ") + PQresultErrorMessage(r);
    }
    PQclear(r);
    return out;
  }

 private:
  PGconn* conn_;
};

GlobalTrans Trans(const std::string& gid, const Clock& clock) {
  GlobalTrans t;
  t.gid = gid;
  t.trans_type = TransType::kSaga;
  t.status = TransStatus::kSubmitted;
  t.create_time = clock.Now();
  t.next_cron_time = clock.Now() + std::chrono::seconds(10);
  return t;
}

Status Save(Journal& j, const GlobalTrans& t, std::vector<Branch> b = {}) {
  return WaitForWrite(
      [&](WriteDone done) { j.SaveNew(t, std::move(b), std::move(done)); });
}

Status Change(Journal& j, const std::string& gid, TransStatus from,
              TransStatus to) {
  StatusChange c;
  c.gid = gid;
  c.from = from;
  c.to = to;
  return WaitForWrite(
      [&](WriteDone done) { j.ChangeStatus(c, std::move(done)); });
}

class PostgresJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = RequirePostgres();
    if (pg_ == nullptr) return;
    schema_ = FreshPostgresSchema();
  }

  PostgresJournalOptions Options() {
    PostgresJournalOptions o;
    o.conninfo = pg_->conninfo();
    o.schema = schema_;
    o.clock = &clock_;
    return o;
  }
  std::unique_ptr<PostgresJournal> Open(PostgresJournalOptions o) {
    auto j = PostgresJournal::Open(std::move(o));
    EXPECT_OK(j);
    return j.ok() ? std::move(j).value() : nullptr;
  }
  std::unique_ptr<PostgresJournal> Open() { return Open(Options()); }
  // For tests that make a batch of chosen writes, or count connections: one
  // writer, which takes every write.
  PostgresJournalOptions OneWriter() {
    PostgresJournalOptions o = Options();
    o.writers = 1;
    return o;
  }

  // The pid of the journal's writer connection once it waits for a row
  // lock, or 0 when it does not within 60 s.
  std::string WriterWaitingForALock(RawConn& raw) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string pid = raw.Query(
          "SELECT pid FROM pg_stat_activity WHERE application_name = "
          "'dtx-journal-writer' AND wait_event_type = 'Lock'");
      if (!pid.empty()) return pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return "";
  }

  PostgresServer* pg_ = nullptr;
  std::string schema_;
  FakeClock clock_;
};

TEST_F(PostgresJournalTest, MigratesAnEmptySchemaAndReopensIdempotently) {
  if (pg_ == nullptr) return;
  RawConn raw(pg_->conninfo());
  EXPECT_EQ(raw.Query("SELECT count(*) FROM pg_namespace WHERE nspname = '" +
                      schema_ + "'"),
            "0");
  {
    auto j = Open();
    ASSERT_NE(j, nullptr);
    ASSERT_OK(Save(*j, Trans("g-kept", clock_), SagaBranches(2)));
  }
  EXPECT_EQ(
      raw.Query("SELECT version FROM \"" + schema_ + "\".dtx_journal_version"),
      "2");
  EXPECT_EQ(raw.Query("SELECT string_agg(tablename, ',' ORDER BY tablename) "
                      "FROM pg_tables WHERE schemaname = '" +
                      schema_ + "'"),
            "dtx_journal_version,trans_branch_op,trans_global");
  // Opening again (twice at once, as two coordinators starting together
  // would) changes nothing and keeps the data.
  std::vector<std::unique_ptr<PostgresJournal>> again(2);
  std::thread other([&] { again[1] = Open(); });
  again[0] = Open();
  other.join();
  for (auto& j : again) {
    ASSERT_NE(j, nullptr);
    ASSERT_OK_AND_ASSIGN(auto got, j->Find("g-kept"));
    EXPECT_EQ(got.branches.size(), 4u);
  }
  EXPECT_EQ(
      raw.Query("SELECT count(*) FROM \"" + schema_ + "\".dtx_journal_version"),
      "1");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM \"" + schema_ + "\".trans_global"),
            "1");
}

TEST_F(PostgresJournalTest, TheDefaultSchemaIsPublic) {
  if (pg_ == nullptr) return;
  PostgresJournalOptions o = Options();
  EXPECT_EQ(PostgresJournalOptions().schema, "public");
  // A database of its own, so that "public" is fresh.
  RawConn raw(pg_->conninfo());
  const std::string db = "d" + FreshPostgresSchema();
  ASSERT_EQ(raw.Query("CREATE DATABASE " + db), "");
  o.conninfo = "host=127.0.0.1 port=" + std::to_string(pg_->port()) +
               " user=dtx dbname=" + db;
  o.schema = PostgresJournalOptions().schema;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  ASSERT_OK(Save(*j, Trans("g-public", clock_)));
  RawConn in_db(o.conninfo);
  EXPECT_EQ(in_db.Query("SELECT gid FROM public.trans_global"), "g-public");
}

TEST_F(PostgresJournalTest, RefusesTablesThatAreNotAJournals) {
  if (pg_ == nullptr) return;
  RawConn raw(pg_->conninfo());
  // dtm's own trans_global, say.
  ASSERT_EQ(raw.Query("CREATE SCHEMA " + schema_ + "; CREATE TABLE " + schema_ +
                      ".trans_global (id bigint, gid varchar(128))"),
            "");
  EXPECT_THAT(PostgresJournal::Open(Options()),
              StatusIs(StatusCode::kFailedPrecondition, "not a dtx journal"));
  EXPECT_EQ(raw.Query("SELECT count(*) FROM pg_tables WHERE schemaname = '" +
                      schema_ + "'"),
            "1");
}

TEST_F(PostgresJournalTest, RefusesAJournalOfANewerDtx) {
  if (pg_ == nullptr) return;
  { ASSERT_NE(Open(), nullptr); }
  RawConn raw(pg_->conninfo());
  ASSERT_EQ(raw.Query("UPDATE \"" + schema_ +
                      "\".dtx_journal_version SET version = 99"),
            "");
  EXPECT_THAT(PostgresJournal::Open(Options()),
              StatusIs(StatusCode::kFailedPrecondition, "newer dtx"));
}

TEST(MakePostgresConninfoTest, QuotesEveryValue) {
  PostgresServerAddress a;
  EXPECT_EQ(MakePostgresConninfo(a), "");
  a.host = "db.internal";
  a.port = 5433;
  a.user = "dtx";
  a.password = "p w'd\\ dbname=evil";
  a.dbname = "dtm";
  EXPECT_EQ(MakePostgresConninfo(a),
            "host='db.internal' port='5433' user='dtx' "
            "password='p w\\'d\\\\ dbname=evil' dbname='dtm'");
}

TEST_F(PostgresJournalTest, ConnectsWithAConninfoFromItsParts) {
  if (pg_ == nullptr) return;
  PostgresServerAddress a;
  a.host = "127.0.0.1";
  a.port = pg_->port();
  a.user = "dtx";
  // The throwaway server trusts loopback and ignores it; libpq must still
  // parse it as one value (unquoted, "dbname=x" would change the database).
  a.password = "not used ' dbname=x";
  a.dbname = "dtx";
  PostgresJournalOptions o = Options();
  o.conninfo = MakePostgresConninfo(a);
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  EXPECT_OK(Save(*j, Trans("g-parts", clock_)));
}

// A role of its own for a test, owning the test's schema, so that the
// journal's connections can be told apart in pg_stat_activity (and limited
// with CONNECTION LIMIT, which does not bind superusers).
std::string OwnRole(RawConn& raw, const std::string& schema,
                    const std::string& limit) {
  const std::string role = "r_" + schema;
  EXPECT_EQ(raw.Query("CREATE ROLE " + role + " LOGIN" + limit), "");
  EXPECT_EQ(raw.Query("CREATE SCHEMA " + schema + " AUTHORIZATION " + role),
            "");
  return role;
}

std::string ConninfoAs(const PostgresServer& pg, const std::string& role) {
  return "host=127.0.0.1 port=" + std::to_string(pg.port()) + " user=" + role +
         " dbname=dtx";
}

// max_readers caps the read connections: with a role that PostgreSQL lets
// open 3 connections (one writer's and two), six reads at once all succeed,
// two on the server and four waiting for a free connection. Without the
// cap the third would be refused ("too many connections for role").
TEST_F(PostgresJournalTest, ReadsBeyondMaxReadersWaitForAFreeConnection) {
  if (pg_ == nullptr) return;
  RawConn raw(pg_->conninfo());
  const std::string role = OwnRole(raw, schema_, " CONNECTION LIMIT 3");
  PostgresJournalOptions o = OneWriter();
  o.conninfo = ConninfoAs(*pg_, role);
  o.max_readers = 2;
  o.max_idle_readers = 2;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  ASSERT_OK(Save(*j, Trans("g-cap", clock_)));

  // Reads wait on a lock of the table while the test holds it.
  RawConn locker(pg_->conninfo());
  ASSERT_EQ(locker.Query("BEGIN; LOCK TABLE " + schema_ +
                         ".trans_global IN ACCESS EXCLUSIVE MODE"),
            "");
  std::vector<std::future<Status>> reads;
  for (int i = 0; i < 6; ++i) {
    reads.push_back(std::async(std::launch::async, [&j] {
      auto found = j->Find("g-cap");
      return found.ok() ? Status::Ok() : found.status();
    }));
  }
  const std::string waiting_readers =
      "SELECT count(*) FROM pg_stat_activity WHERE usename = '" + role +
      "' AND application_name = 'dtx-journal-reader' AND wait_event_type = "
      "'Lock'";
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (raw.Query(waiting_readers) != "2" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(raw.Query(waiting_readers), "2");
  ASSERT_EQ(locker.Query("COMMIT"), "");
  for (auto& read : reads) EXPECT_OK(read.get());
  EXPECT_EQ(raw.Query("SELECT count(*) FROM pg_stat_activity WHERE usename "
                      "= '" +
                      role + "' AND application_name = 'dtx-journal-reader'"),
            "2");
}

// reader_max_lifetime: a read connection past it is closed and the next
// read gets a new one; without it the same connection serves every read.
TEST_F(PostgresJournalTest, ReadConnectionsPastTheirLifetimeAreReplaced) {
  if (pg_ == nullptr) return;
  RawConn raw(pg_->conninfo());
  auto reader_pids = [&raw](const std::string& role) {
    return raw.Query(
        "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE "
        "usename = '" +
        role + "' AND application_name = 'dtx-journal-reader'");
  };
  for (const bool limited : {false, true}) {
    SCOPED_TRACE(limited ? "with a lifetime" : "without");
    const std::string schema = FreshPostgresSchema();
    const std::string role = OwnRole(raw, schema, "");
    PostgresJournalOptions o = Options();
    o.schema = schema;
    o.conninfo = ConninfoAs(*pg_, role);
    if (limited) o.reader_max_lifetime = std::chrono::milliseconds(50);
    auto j = Open(o);
    ASSERT_NE(j, nullptr);
    ASSERT_OK(Save(*j, Trans("g-life", clock_)));
    ASSERT_OK(j->Find("g-life"));
    const std::string first = reader_pids(role);
    ASSERT_FALSE(first.empty());
    ASSERT_EQ(first.find(','), std::string::npos) << first;
    // Past the lifetime (this test's one sleep: the limit is wall time).
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_OK(j->Find("g-life"));
    if (!limited) {
      EXPECT_EQ(reader_pids(role), first);
      continue;
    }
    // The old backend goes away once its connection is closed.
    std::string now = reader_pids(role);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (now.find(',') != std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      now = reader_pids(role);
    }
    EXPECT_NE(now, first);
    EXPECT_FALSE(now.empty());
    EXPECT_EQ(now.find(','), std::string::npos) << now;
  }
}

// Shared by coordinators: a transaction one of them owns keeps its lease;
// made due, another would claim it while the owner works on it.
TEST_F(PostgresJournalTest, MakeDueLeavesAnOwnedTransactionToItsOwner) {
  auto j = Open();
  ASSERT_NE(j, nullptr);
  EXPECT_TRUE(j->shared());
  GlobalTrans t = Trans("g-owned", clock_);
  t.owner = "busy-one";
  ASSERT_OK(Save(*j, t));
  Status s = WaitForWrite([&](WriteDone done) {
    j->MakeDue("g-owned", clock_.Now(), std::move(done));
  });
  EXPECT_THAT(s, StatusIs(StatusCode::kFailedPrecondition,
                          "worked on by coordinator 'busy-one'"));
  ASSERT_OK_AND_ASSIGN(auto row, j->Find("g-owned"));
  EXPECT_EQ(row.trans.next_cron_time, t.next_cron_time);

  // Once its owner lets go of it, it is made due.
  CronUpdate u;
  u.gid = "g-owned";
  u.next_cron_interval = std::chrono::seconds(10);
  u.next_cron_time = t.next_cron_time;
  u.fence = Fence{"busy-one", 0};
  u.release = true;
  ASSERT_OK(
      WaitForWrite([&](WriteDone done) { j->TouchCron(u, std::move(done)); }));
  ASSERT_OK(WaitForWrite([&](WriteDone done) {
    j->MakeDue("g-owned", clock_.Now(), std::move(done));
  }));
  ASSERT_OK_AND_ASSIGN(row, j->Find("g-owned"));
  EXPECT_EQ(row.trans.next_cron_time, clock_.Now());
  EXPECT_EQ(row.trans.owner, "");
}

TEST_F(PostgresJournalTest, RefusesBadOptions) {
  if (pg_ == nullptr) return;
  PostgresJournalOptions o = Options();
  o.conninfo = "";
  EXPECT_THAT(PostgresJournal::Open(o),
              StatusIs(StatusCode::kInvalidArgument, "conninfo"));
  o = Options();
  o.schema = "bad-name";
  EXPECT_THAT(PostgresJournal::Open(o),
              StatusIs(StatusCode::kInvalidArgument, "bad-name"));
  o = Options();
  o.conninfo = pg_->conninfo() + " no_such_option=1";
  EXPECT_THAT(PostgresJournal::Open(o),
              StatusIs(StatusCode::kInvalidArgument, "no_such_option"));
  o = Options();
  o.conninfo = "host=127.0.0.1 port=1 user=dtx dbname=dtx";
  EXPECT_THAT(PostgresJournal::Open(o),
              StatusIs(StatusCode::kUnavailable, "cannot connect"));
  o = Options();
  o.conninfo = pg_->conninfo() + "x";  // dbname=dtxx
  EXPECT_THAT(PostgresJournal::Open(o), StatusIs(StatusCode::kNotFound));
  // A role that does not exist, or may not log in: a refused login.
  o = Options();
  o.conninfo = ConninfoAs(*pg_, "no_such_role");
  EXPECT_THAT(PostgresJournal::Open(o),
              StatusIs(StatusCode::kPermissionDenied,
                       "role \"no_such_role\" does not exist"));
  RawConn raw(pg_->conninfo());
  const std::string nologin = "nologin_" + schema_;
  ASSERT_EQ(raw.Query("CREATE ROLE " + nologin + " NOLOGIN"), "");
  o.conninfo = ConninfoAs(*pg_, nologin);
  EXPECT_THAT(PostgresJournal::Open(o), StatusIs(StatusCode::kPermissionDenied,
                                                 "not permitted to log in"));
}

TEST_F(PostgresJournalTest, TextTheServerRefusesFailsAloneInItsBatch) {
  if (pg_ == nullptr) return;
  auto j = Open();
  ASSERT_NE(j, nullptr);
  // Queued together, so that they likely share batches; each must fail or
  // succeed on its own whatever the batching.
  std::vector<std::promise<Status>> done(21);
  for (int i = 0; i < 21; ++i) {
    GlobalTrans t = Trans("g-text-" + std::to_string(i), clock_);
    if (i % 10 == 5) t.custom_data = std::string("nul\0inside", 10);
    if (i % 10 == 7) t.options = "\xff\xfe not UTF-8";
    j->SaveNew(t, SagaBranches(1),
               [&done, i](Status s) { done[i].set_value(std::move(s)); });
  }
  // A key that is no gid (not even UTF-8) is simply not found.
  EXPECT_THAT(j->Find("\xff\xfe"), StatusIs(StatusCode::kNotFound));
  for (int i = 0; i < 21; ++i) {
    const Status s = done[i].get_future().get();
    const std::string gid = "g-text-" + std::to_string(i);
    if (i % 10 == 5 || i % 10 == 7) {
      EXPECT_THAT(s, StatusIs(StatusCode::kInvalidArgument)) << gid;
      EXPECT_THAT(j->Find(gid), StatusIs(StatusCode::kNotFound));
    } else {
      EXPECT_OK(s) << gid;
      EXPECT_OK(j->Find(gid));
    }
  }
}

TEST_F(PostgresJournalTest, ReconnectsAfterTheServerRestarts) {
  if (pg_ == nullptr) return;
  auto j = Open();
  ASSERT_NE(j, nullptr);
  ASSERT_OK(Save(*j, Trans("g-before", clock_), SagaBranches(1)));
  ASSERT_OK(j->Find("g-before"));

  pg_->Stop();
  EXPECT_THAT(Save(*j, Trans("g-while-down", clock_)),
              StatusIs(StatusCode::kUnavailable, "postgres"));
  EXPECT_THAT(j->Find("g-before"), StatusIs(StatusCode::kUnavailable));
  ASSERT_OK(pg_->StartAgain());

  // The next write and the next read connect again, without a reopen.
  ASSERT_OK(Save(*j, Trans("g-after", clock_)));
  ASSERT_OK_AND_ASSIGN(auto before, j->Find("g-before"));
  EXPECT_EQ(before.branches.size(), 2u);
  EXPECT_OK(j->Find("g-after"));
  EXPECT_THAT(j->Find("g-while-down"), StatusIs(StatusCode::kNotFound));
  EXPECT_GE(j->stats().reconnects, 1u);
}

TEST_F(PostgresJournalTest, AKilledConnectionFailsItsWholeBatchAndReconnects) {
  if (pg_ == nullptr) return;
  auto j = Open(OneWriter());
  ASSERT_NE(j, nullptr);
  ASSERT_OK(Save(*j, Trans("g-z", clock_)));
  ASSERT_OK(Save(*j, Trans("g-x", clock_)));
  const std::string table = "\"" + schema_ + "\".trans_global";
  RawConn lock_z(pg_->conninfo());
  RawConn lock_x(pg_->conninfo());
  RawConn watch(pg_->conninfo());
  ASSERT_EQ(lock_z.Query("BEGIN"), "");
  ASSERT_EQ(
      lock_z.Query("SELECT 1 FROM " + table + " WHERE gid = 'g-z' FOR UPDATE"),
      "1");
  ASSERT_EQ(lock_x.Query("BEGIN"), "");
  ASSERT_EQ(
      lock_x.Query("SELECT 1 FROM " + table + " WHERE gid = 'g-x' FOR UPDATE"),
      "1");

  // The first batch waits for g-z; the next two writes queue behind it and
  // so form the second batch together.
  std::promise<Status> z, a, x;
  StatusChange cz;
  cz.gid = "g-z";
  cz.from = TransStatus::kSubmitted;
  cz.to = TransStatus::kSucceed;
  j->ChangeStatus(cz, [&](Status s) { z.set_value(std::move(s)); });
  ASSERT_NE(WriterWaitingForALock(watch), "");
  j->SaveNew(Trans("g-a", clock_), SagaBranches(1),
             [&](Status s) { a.set_value(std::move(s)); });
  StatusChange cx = cz;
  cx.gid = "g-x";
  j->ChangeStatus(cx, [&](Status s) { x.set_value(std::move(s)); });
  ASSERT_EQ(lock_z.Query("ROLLBACK"), "");
  EXPECT_OK(z.get_future().get());

  // The second batch has inserted g-a and waits for g-x: kill its
  // connection there.
  const std::string pid = WriterWaitingForALock(watch);
  ASSERT_NE(pid, "");
  EXPECT_EQ(watch.Query("SELECT pg_terminate_backend(" + pid + ")"), "t");
  EXPECT_THAT(a.get_future().get(),
              StatusIs(StatusCode::kUnavailable, "postgres"));
  EXPECT_THAT(x.get_future().get(), StatusIs(StatusCode::kUnavailable));
  ASSERT_EQ(lock_x.Query("ROLLBACK"), "");

  // Nothing of the killed batch was written, and the journal goes on.
  EXPECT_THAT(j->Find("g-a"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto still, j->Find("g-x"));
  EXPECT_EQ(still.trans.status, TransStatus::kSubmitted);
  EXPECT_OK(Change(*j, "g-x", TransStatus::kSubmitted, TransStatus::kSucceed));
  EXPECT_OK(Save(*j, Trans("g-a", clock_)));
  EXPECT_GE(j->stats().reconnects, 1u);
}

TEST_F(PostgresJournalTest, AConnectionLostDuringCommitReportsTheOutcome) {
  if (pg_ == nullptr) return;
  auto j = Open();
  ASSERT_NE(j, nullptr);
  ASSERT_OK(Save(*j, Trans("g-c", clock_)));
  // A deferred trigger makes the writer's COMMIT wait for a lock the test
  // holds: the connection is then killed inside COMMIT, where the client
  // cannot tell whether the transaction committed.
  const std::string s = "\"" + schema_ + "\"";
  RawConn raw(pg_->conninfo());
  ASSERT_EQ(raw.Query("CREATE FUNCTION " + s +
                      ".hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                      "PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END "
                      "$$"),
            "");
  ASSERT_EQ(raw.Query("CREATE CONSTRAINT TRIGGER hold AFTER UPDATE ON " + s +
                      ".trans_global DEFERRABLE INITIALLY DEFERRED FOR EACH "
                      "ROW EXECUTE FUNCTION " +
                      s + ".hold()"),
            "");
  RawConn holder(pg_->conninfo());
  ASSERT_EQ(holder.Query("SELECT pg_advisory_lock(4242)"), "");
  std::promise<Status> changed;
  StatusChange c;
  c.gid = "g-c";
  c.from = TransStatus::kSubmitted;
  c.to = TransStatus::kSucceed;
  j->ChangeStatus(c, [&](Status st) { changed.set_value(std::move(st)); });
  const std::string pid = WriterWaitingForALock(raw);
  ASSERT_NE(pid, "");
  EXPECT_EQ(raw.Query("SELECT pg_terminate_backend(" + pid + ")"), "t");
  // The writer asked a new connection: the transaction did not commit.
  EXPECT_THAT(changed.get_future().get(),
              StatusIs(StatusCode::kUnavailable, "did not commit"));
  ASSERT_EQ(holder.Query("SELECT pg_advisory_unlock(4242)"), "t");
  ASSERT_EQ(raw.Query("DROP TRIGGER hold ON " + s + ".trans_global"), "");
  ASSERT_OK_AND_ASSIGN(auto got, j->Find("g-c"));
  EXPECT_EQ(got.trans.status, TransStatus::kSubmitted);
  EXPECT_OK(Change(*j, "g-c", TransStatus::kSubmitted, TransStatus::kSucceed));
}

TEST_F(PostgresJournalTest, ABatchThatLosesADeadlockRunsAgain) {
  if (pg_ == nullptr) return;
  auto j = Open(OneWriter());
  ASSERT_NE(j, nullptr);
  for (const char* gid : {"p-z", "p-a", "p-b"})
    ASSERT_OK(Save(*j, Trans(gid, clock_)));
  const std::string table = "\"" + schema_ + "\".trans_global";
  auto lock = [&](RawConn& c, const std::string& gid) {
    return c.Query("SELECT 1 FROM " + table + " WHERE gid = '" + gid +
                   "' FOR UPDATE");
  };
  RawConn blocker(pg_->conninfo());
  RawConn other(pg_->conninfo());
  RawConn watch(pg_->conninfo());
  ASSERT_EQ(blocker.Query("BEGIN"), "");
  ASSERT_EQ(lock(blocker, "p-z"), "1");
  // `other` waits a minute before looking for deadlocks; the journal's
  // connection, one second (the server's default): the journal's batch is
  // the one PostgreSQL aborts.
  ASSERT_EQ(other.Query("BEGIN"), "");
  ASSERT_EQ(other.Query("SET LOCAL deadlock_timeout = '60s'"), "");
  ASSERT_EQ(lock(other, "p-a"), "1");

  auto change = [&](const std::string& gid, std::promise<Status>& done) {
    StatusChange c;
    c.gid = gid;
    c.from = TransStatus::kSubmitted;
    c.to = TransStatus::kSucceed;
    j->ChangeStatus(c, [&done](Status st) { done.set_value(std::move(st)); });
  };
  std::promise<Status> z, b, a;
  change("p-z", z);
  ASSERT_NE(WriterWaitingForALock(watch), "");
  change("p-b", b);  // the next batch: locks p-b, then waits for p-a
  change("p-a", a);
  ASSERT_EQ(blocker.Query("ROLLBACK"), "");
  EXPECT_OK(z.get_future().get());
  ASSERT_NE(WriterWaitingForALock(watch), "");
  // Closes the cycle; returns once the journal's batch has been aborted.
  EXPECT_EQ(lock(other, "p-b"), "1");
  ASSERT_EQ(other.Query("ROLLBACK"), "");
  EXPECT_OK(b.get_future().get());
  EXPECT_OK(a.get_future().get());
  // Run again: one statement at a time after a pipelined batch lost it.
  EXPECT_GE(j->stats().reruns + j->stats().fallbacks, 1u);
  for (const char* gid : {"p-a", "p-b"}) {
    ASSERT_OK_AND_ASSIGN(auto got, j->Find(gid));
    EXPECT_EQ(got.trans.status, TransStatus::kSucceed) << gid;
  }
}

TEST_F(PostgresJournalTest, APipelinedBatchWithAMissRunsAgainOneByOne) {
  if (pg_ == nullptr) return;
  auto j = Open(OneWriter());
  ASSERT_NE(j, nullptr);
  for (int i = 0; i < 5; ++i)
    ASSERT_OK(Save(*j, Trans("q-" + std::to_string(i), clock_)));
  EXPECT_EQ(j->stats().pipelined, j->stats().commits);
  EXPECT_EQ(j->stats().fallbacks, 0u);
  const std::string table = "\"" + schema_ + "\".trans_global";
  RawConn blocker(pg_->conninfo());
  RawConn watch(pg_->conninfo());
  ASSERT_EQ(blocker.Query("BEGIN"), "");
  ASSERT_EQ(
      blocker.Query("SELECT 1 FROM " + table + " WHERE gid = 'q-0' FOR UPDATE"),
      "1");
  std::promise<Status> done[6];
  auto change = [&](const std::string& gid, TransStatus from, int k) {
    StatusChange c;
    c.gid = gid;
    c.from = from;
    c.to = TransStatus::kSucceed;
    j->ChangeStatus(c, [&done, k](Status st) { done[k].set_value(st); });
  };
  auto save = [&](const std::string& gid, int k) {
    j->SaveNew(Trans(gid, clock_), {},
               [&done, k](Status st) { done[k].set_value(st); });
  };
  // The writer waits on q-0's lock while the rest queue up: they are taken
  // as one batch once it is free.
  change("q-0", TransStatus::kSubmitted, 0);
  ASSERT_NE(WriterWaitingForALock(watch), "");
  change("q-1", TransStatus::kSubmitted, 1);
  change("q-2", TransStatus::kPrepared, 2);  // not its status: a miss
  change("q-3", TransStatus::kSubmitted, 3);
  save("q-4", 4);  // exists
  save("q-new", 5);
  const uint64_t fallbacks = j->stats().fallbacks;
  ASSERT_EQ(blocker.Query("ROLLBACK"), "");
  EXPECT_OK(done[0].get_future().get());
  EXPECT_OK(done[1].get_future().get());
  EXPECT_THAT(done[2].get_future().get(),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_OK(done[3].get_future().get());
  EXPECT_THAT(done[4].get_future().get(), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_OK(done[5].get_future().get());
  EXPECT_GT(j->stats().fallbacks, fallbacks);
  for (const char* gid : {"q-0", "q-1", "q-3"}) {
    ASSERT_OK_AND_ASSIGN(auto got, j->Find(gid));
    EXPECT_EQ(got.trans.status, TransStatus::kSucceed) << gid;
  }
  ASSERT_OK_AND_ASSIGN(auto q2, j->Find("q-2"));
  EXPECT_EQ(q2.trans.status, TransStatus::kSubmitted);
  EXPECT_OK(j->Find("q-new"));
}

TEST_F(PostgresJournalTest, WithoutThePipelineEveryStatementIsARoundTrip) {
  if (pg_ == nullptr) return;
  PostgresJournalOptions o = Options();
  o.pipeline = false;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  ASSERT_OK(Save(*j, Trans("n-0", clock_), SagaBranches(2)));
  ASSERT_OK(Change(*j, "n-0", TransStatus::kSubmitted, TransStatus::kSucceed));
  EXPECT_EQ(j->stats().commits, 2u);
  EXPECT_EQ(j->stats().pipelined, 0u);
  EXPECT_EQ(j->stats().fallbacks, 0u);
}

TEST_F(PostgresJournalTest, TwoJournalsOnOneDatabaseClaimDisjointSets) {
  if (pg_ == nullptr) return;
  auto a = Open();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  constexpr int kTrans = 300;
  for (int i = 0; i < kTrans; ++i) {
    GlobalTrans t = Trans("d-" + std::to_string(i), clock_);
    t.next_cron_time = clock_.Now() - std::chrono::seconds(1);
    ASSERT_OK(Save(i % 2 == 0 ? *a : *b, t));
  }
  std::mutex mu;
  std::map<std::string, std::set<std::string>> claimed_by;  // gid -> owners
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      Journal& j = w % 2 == 0 ? *a : *b;
      const std::string owner = "coordinator-" + std::to_string(w);
      for (;;) {
        ClaimRequest r;
        r.now = clock_.Now();
        r.owner = owner;
        r.lease_until = clock_.Now() + std::chrono::seconds(60);
        r.limit = 7;
        auto got = WaitForClaim(j, r);
        ASSERT_OK(got);
        if (got->empty()) return;
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& t : *got) {
          EXPECT_EQ(t.owner, owner);
          claimed_by[t.gid].insert(owner);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(claimed_by.size(), static_cast<std::size_t>(kTrans));
  for (const auto& [gid, owners] : claimed_by)
    EXPECT_EQ(owners.size(), 1u) << gid;
}

TEST_F(PostgresJournalTest, ClaimSkipsRowsAnotherCoordinatorHasLocked) {
  if (pg_ == nullptr) return;
  auto a = Open();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (int i = 0; i < 6; ++i) {
    GlobalTrans t = Trans("s-" + std::to_string(i), clock_);
    t.next_cron_time = clock_.Now() - std::chrono::seconds(10 - i);
    ASSERT_OK(Save(*a, t));
  }
  // Another coordinator's open transaction holds the two earliest rows (as
  // a claim or a status change in its batch would): a claim does not wait
  // for them, it takes the next ones.
  RawConn other(pg_->conninfo());
  ASSERT_EQ(other.Query("BEGIN"), "");
  ASSERT_EQ(other.Query("SELECT gid FROM \"" + schema_ +
                        "\".trans_global WHERE gid IN ('s-0', 's-1') ORDER "
                        "BY gid FOR UPDATE"),
            "s-0");
  ClaimRequest r;
  r.now = clock_.Now();
  r.owner = "b";
  r.lease_until = clock_.Now() + std::chrono::seconds(30);
  r.limit = 3;
  ASSERT_OK_AND_ASSIGN(auto got, WaitForClaim(*b, r));
  std::vector<std::string> gids;
  for (const auto& t : got) gids.push_back(t.gid);
  EXPECT_THAT(gids, ::testing::ElementsAre("s-2", "s-3", "s-4"));
  ASSERT_EQ(other.Query("ROLLBACK"), "");
  r.owner = "a";
  ASSERT_OK_AND_ASSIGN(got, WaitForClaim(*a, r));
  gids.clear();
  for (const auto& t : got) gids.push_back(t.gid);
  EXPECT_THAT(gids, ::testing::ElementsAre("s-0", "s-1", "s-5"));
}

TEST_F(PostgresJournalTest, GroupCommitSharesCommitsBetweenWriters) {
  if (pg_ == nullptr) return;
  auto j = Open();
  ASSERT_NE(j, nullptr);
  constexpr int kThreads = 16;
  constexpr int kEach = 10;
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_OK(
            Save(*j, Trans("gc-" + std::to_string(w) + "-" + std::to_string(i),
                           clock_)));
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto stats = j->stats();
  EXPECT_EQ(stats.writes, static_cast<uint64_t>(kThreads * kEach));
  // 16 writers waiting on fsync: commits carry several writes each.
  EXPECT_LT(stats.commits, stats.writes);
  // Every one of them applies: each batch is committed from its pipeline.
  EXPECT_EQ(stats.pipelined, stats.commits);
  EXPECT_EQ(stats.fallbacks, 0u);
}

// With several writers, each transaction's writes go to one of them and
// apply in the order made, even when each is made before the last is
// durable; the transactions are spread over every writer's connection.
TEST_F(PostgresJournalTest, EachTransactionsWritesKeepTheirOrderAcrossWriters) {
  if (pg_ == nullptr) return;
  PostgresJournalOptions o = Options();
  o.writers = 3;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  RawConn raw(pg_->conninfo());
  EXPECT_EQ(raw.Query("SELECT count(*) FROM pg_stat_activity WHERE "
                      "application_name = 'dtx-journal-writer'"),
            "3");
  constexpr int kTrans = 200;
  std::vector<std::promise<Status>> done(3 * kTrans);
  auto record = [&](std::size_t k) {
    return [&done, k](Status s) { done[k].set_value(std::move(s)); };
  };
  for (int i = 0; i < kTrans; ++i) {
    const std::string gid = "w-" + std::to_string(i);
    const auto k = static_cast<std::size_t>(3 * i);
    j->SaveNew(Trans(gid, clock_), {MakeBranch("01", BranchOp::kAction)},
               record(k));
    j->UpdateBranches({gid,
                       TransStatus::kSubmitted,
                       {{"01", BranchOp::kAction, BranchStatus::kSucceed}}},
                      record(k + 1));
    StatusChange c;
    c.gid = gid;
    c.from = TransStatus::kSubmitted;
    c.to = TransStatus::kSucceed;
    j->ChangeStatus(c, record(k + 2));
  }
  for (std::size_t k = 0; k < done.size(); ++k)
    EXPECT_OK(done[k].get_future().get()) << "write " << k;
  for (int i = 0; i < kTrans; ++i) {
    ASSERT_OK_AND_ASSIGN(auto got, j->Find("w-" + std::to_string(i)));
    EXPECT_EQ(got.trans.status, TransStatus::kSucceed);
    ASSERT_EQ(got.branches.size(), 1u);
    EXPECT_EQ(got.branches[0].status, BranchStatus::kSucceed);
  }
  EXPECT_EQ(j->stats().writes, static_cast<uint64_t>(3 * kTrans));
  // Flush waits for every writer's earlier writes.
  ASSERT_OK(WaitForWrite([&](WriteDone d) { j->Flush(std::move(d)); }));
}

// As SqliteJournal: a lazy write alone waits for the next write of its
// writer to share its commit; a Flush or Close ends the wait at once.
TEST_F(PostgresJournalTest, ALazyWriteAloneWaitsToShareTheNextCommit) {
  if (pg_ == nullptr) return;
  PostgresJournalOptions o = OneWriter();
  o.lazy_write_hold = std::chrono::hours(1);
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  for (const char* gid : {"lazy-a", "lazy-b", "lazy-c", "lazy-d"})
    ASSERT_OK(Save(*j, Trans(gid, clock_)));
  CheckLazyWriteHold(*j, Trans("lazy-next", clock_));
}

TEST_F(PostgresJournalTest, MetricsCountEveryCommitAndItsWrites) {
  if (pg_ == nullptr) return;
  MetricsRegistry registry;
  PostgresJournalOptions o = Options();
  o.metrics = &registry;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 5; ++i) {
        ASSERT_OK(Save(
            *j,
            Trans("m-" + std::to_string(w) + "-" + std::to_string(i), clock_)));
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto stats = j->stats();
  const std::string text = registry.RenderText();
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "\ndtx_journal_commit_duration_seconds_count " +
                        std::to_string(stats.commits) + "\n"));
  EXPECT_THAT(text,
              ::testing::HasSubstr("\ndtx_journal_batch_writes_sum 20\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("\ndtx_journal_queued_writes 0\n"));
  j->Close();
  j.reset();
  EXPECT_THAT(
      registry.RenderText(),
      ::testing::Not(::testing::HasSubstr("\ndtx_journal_queued_writes ")));
}

// A server that refuses a writer's connection (here the second, past the
// role's CONNECTION LIMIT) fails the Open with a clear error and leaves
// nothing in the registry: the host can open again with the same one.
TEST_F(PostgresJournalTest, AnOpenThatCannotConnectEveryWriterLeavesNoMetrics) {
  if (pg_ == nullptr) return;
  RawConn raw(pg_->conninfo());
  const std::string role = OwnRole(raw, schema_, " CONNECTION LIMIT 1");
  MetricsRegistry registry;
  PostgresJournalOptions o = Options();
  o.conninfo = ConninfoAs(*pg_, role);
  o.metrics = &registry;
  o.writers = 2;
  auto refused = PostgresJournal::Open(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              ::testing::HasSubstr("too many connections"));
  EXPECT_THAT(registry.RenderText(),
              ::testing::Not(::testing::HasSubstr("dtx_journal_")));
  // The refused Open's first connection is closed; its backend may take a
  // moment to leave the role's count.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (raw.Query("SELECT count(*) FROM pg_stat_activity WHERE usename = '" +
                   role + "'") != "0" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  o.writers = 1;
  auto j = Open(o);
  ASSERT_NE(j, nullptr);
  ASSERT_OK(Save(*j, Trans("after-refusal", clock_)));
  EXPECT_THAT(registry.RenderText(),
              ::testing::HasSubstr("\ndtx_journal_batch_writes_sum 1\n"));
}

}  // namespace
}  // namespace dtx::testing
