// The branch barrier end to end: the account-transfer example service behind
// the coordinator, with duplicated, lost and late calls injected between
// them. Whatever the injections, every transaction ends final and the ledger
// balances.

#include "dtx/storage/sqlite_barrier.h"

#include "account_service.h"
#include "api/trans/v1/trans.pb.h"
#include "chaos_branch_client.h"
#include "coordinator_test_util.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>

#include <random>

namespace dtx::testing {
namespace {

using std::chrono::seconds;

class BarrierLedgerTest : public CoordinatorTest {
 protected:
  static constexpr int kUsers = 10;
  static constexpr int64_t kBalance = 10000;

  void SetUp() override {
    service_ =
        std::make_unique<examples::AccountService>(dir_.File("accounts.db"));
    ASSERT_OK(service_->Init(kUsers, kBalance));
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port_, 0);
    const uint32_t seed = std::random_device{}();
    std::cout << "chaos seed " << seed << "\n";
    wrap_client_ = [this, seed](std::unique_ptr<BranchClient> inner) {
      auto chaos = std::make_unique<ChaosBranchClient>(std::move(inner), seed);
      chaos_ = chaos.get();
      return std::unique_ptr<BranchClient>(std::move(chaos));
    };
    Open();
  }
  void TearDown() override {
    CoordinatorTest::TearDown();
    if (server_) server_->Shutdown();
  }

  std::string Busi() const {
    return "127.0.0.1:" + std::to_string(port_) + "/api.trans.v1.Trans";
  }

  void ExpectLedgerBalances() {
    int64_t total = 0;
    for (const auto& [user, b] : service_->Balances()) {
      total += b.first;
      EXPECT_EQ(b.second, 0) << "user " << user << " has money in flight";
      EXPECT_GE(b.first, 0) << "user " << user;
    }
    EXPECT_EQ(total, kUsers * kBalance);
  }

  std::unique_ptr<examples::AccountService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  ChaosBranchClient* chaos_ = nullptr;
};

TEST_F(BarrierLedgerTest, AThousandRandomTransfersKeepTheLedgerBalanced) {
  std::mt19937 rng(12345);
  const std::string busi = Busi();
  int tcc = 0;
  int saga = 0;
  for (int i = 0; i < 1000; ++i) {
    api::trans::v1::AdjustInfo out;
    api::trans::v1::AdjustInfo in;
    const int64_t amount = std::uniform_int_distribution<int64_t>(1, 4000)(rng);
    const int64_t from = std::uniform_int_distribution<int64_t>(1, kUsers)(rng);
    int64_t to = std::uniform_int_distribution<int64_t>(1, kUsers - 1)(rng);
    if (to >= from) ++to;
    out.set_amount(amount);
    out.set_userid(from);
    in.set_amount(amount);
    in.set_userid(to);
    const std::string gid = "ledger-" + std::to_string(i);
    if (i % 2 == 0) {
      ++tcc;
      // The try may fail (insufficient balance, or injected): the TCC then
      // rolls back, which is part of the test.
      TccGlobalTransaction(*dtm_, gid, [&](Tcc& t) {
        DTX_RETURN_IF_ERROR(t.CallBranch(out, busi + "/TransOut",
                                         busi + "/TransOutConfirm",
                                         busi + "/TransOutCancel"));
        return t.CallBranch(in, busi + "/TransIn", busi + "/TransInConfirm",
                            busi + "/TransInCancel");
      }).IgnoreError();
    } else {
      ++saga;
      ASSERT_OK(Saga(*dtm_, gid)
                    .Add(busi + "/TransOut", busi + "/TransOutRevert", out)
                    .Add(busi + "/TransIn", busi + "/TransInRevert", in)
                    .Submit());
    }
  }
  dtm_->WaitIdle();
  Settle();
  chaos_->DeliverLate();  // hanging tries, after their cancels
  Settle();
  ExpectLedgerBalances();

  const std::vector<GlobalTrans> all = AllTransactions();
  EXPECT_EQ(all.size(), static_cast<std::size_t>(tcc + saga));
  int succeeded = 0;
  for (const auto& t : all) succeeded += t.status == TransStatus::kSucceed;
  // Both outcomes happened: the test exercised commits and rollbacks.
  EXPECT_GT(succeeded, 100);
  EXPECT_LT(succeeded, tcc + saga);
}

TEST_F(BarrierLedgerTest, MsgLocalTransactionUnderTheBarrier) {
  // The local transaction debits user 1 in the service's own ledger; the
  // message credits user 2 through the service. A crash between the local
  // commit and Submit is played by never submitting: the check-back finds
  // the commit and the message is delivered.
  const std::string busi = Busi();
  api::trans::v1::AdjustInfo in;
  in.set_amount(500);
  in.set_userid(2);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.File("accounts.db").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  auto debit = [](sqlite3* tx) {
    return sqlite3_exec(tx,
                        "UPDATE user_account SET balance = balance - 500 WHERE "
                        "user_id = 1",
                        nullptr, nullptr, nullptr) == SQLITE_OK
               ? Status::Ok()
               : InternalError("debit");
  };
  Msg committed(*dtm_, "msg-committed");
  committed.Add(busi + "/TransIn", in);
  ASSERT_OK(committed.Prepare(busi + "/QueryPrepared"));
  TransInfo info{"msg-committed", TransType::kMsg, "00", BranchOp::kMsg, ""};
  auto barrier = BranchBarrier::FromTransInfo(info);
  ASSERT_OK(barrier);
  ASSERT_OK(
      SqliteBarrier::Call(*barrier, db, debit));  // committed; Submit "lost"

  Msg never_ran(*dtm_, "msg-rolled-back");
  never_ran.Add(busi + "/TransIn", in);
  ASSERT_OK(
      never_ran.Prepare(busi + "/QueryPrepared"));  // local work never ran

  Settle();
  EXPECT_EQ(dtm_->Query("msg-committed")->trans.status, TransStatus::kSucceed);
  EXPECT_EQ(dtm_->Query("msg-rolled-back")->trans.status, TransStatus::kFailed);
  // The late local transaction of the failed message is refused.
  TransInfo late_info{"msg-rolled-back", TransType::kMsg, "00", BranchOp::kMsg,
                      ""};
  auto late = BranchBarrier::FromTransInfo(late_info);
  EXPECT_THAT(SqliteBarrier::Call(*late, db, debit),
              StatusIs(StatusCode::kAborted, "DUPLICATED"));
  sqlite3_close(db);
  ExpectLedgerBalances();

  // DoAndSubmitWithSqlite ties it together.
  ASSERT_EQ(sqlite3_open(dir_.File("accounts.db").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  Msg msg(*dtm_, "msg-do");
  msg.Add(busi + "/TransIn", in);
  // The chaos client may make DoAndSubmit's own calls fail; the message is
  // then settled by the check-back.
  DoAndSubmitWithSqlite(msg, busi + "/QueryPrepared", db, debit).IgnoreError();
  sqlite3_close(db);
  Settle();
  EXPECT_EQ(dtm_->Query("msg-do")->trans.status, TransStatus::kSucceed);
  ExpectLedgerBalances();
}

}  // namespace
}  // namespace dtx::testing
