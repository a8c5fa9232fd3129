// The branch barrier's contract, as a typed test suite that every database's
// barrier instantiates (SqliteBarrier in sqlite_barrier_test.cc,
// PostgresBarrier in postgres_barrier_test.cc), so that the rules they share
// (BranchBarrier::Run) behave the same on each: the three problems, failed
// businesses, concurrent duplicates, a race of a forward op against its
// compensation, the msg check-back and DoAndSubmit.
//
// A Backend type provides, on a fresh business database with an `effects`
// table (id, what) whose `id` is unique:
//   // Sets up; false (after recording a skip or a fatal failure) when it
//   // cannot.
//   bool Open();
//   // Calls the barrier for `b` with a business that inserts one effect row
//   // `what` and then returns then() (OK when `then` is null). Thread-safe:
//   // each call may use a connection of its own.
//   Status Run(BranchBarrier& b, const std::string& what,
//              const std::function<Status()>& then);
//   // Calls the barrier for `b` with a business that inserts effect `what`,
//   // then an effects row with id 1 twice (the database refuses the second),
//   // and returns that statement's error.
//   Status RunFailingSql(BranchBarrier& b, const std::string& what);
//   Status QueryPrepared(const BranchBarrier& b);
//   // DoAndSubmitWith<Database> with a local transaction that inserts effect
//   // `what` and returns `local`.
//   Status DoAndSubmit(Msg& msg, const std::string& query_prepared,
//                      const std::string& what, Status local);
//   int64_t Effects(const std::string& what);  // effect rows `what`
//   int64_t BarrierRows();                     // rows of the barrier table
//   Result<BarrierPruneResult> Prune(const BarrierPruneOptions& options);
//   // Moves the creation time of gid's rows `by` into the past.
//   void Age(const std::string& gid, std::chrono::seconds by);

#ifndef DTX_TESTS_STORAGE_BARRIER_CONTRACT_TEST_H_
#define DTX_TESTS_STORAGE_BARRIER_CONTRACT_TEST_H_

#include "dtx/barrier.h"
#include "dtx/transaction.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace dtx::testing {

// A coordinator that records what the client API asked of it and agrees to
// everything. The check-back path of DoAndSubmit (which would call a branch)
// is not taken by these tests.
class RecordingDtm final : public DtmApi {
 public:
  void NewGidAsync(ResultCallback<std::string> done) override {
    done(std::string("gid-1"));
  }
  void PrepareAsync(TransRequest, StatusCallback done) override {
    calls.push_back("prepare");
    done(Status::Ok());
  }
  void SubmitAsync(TransRequest, StatusCallback done) override {
    calls.push_back("submit");
    done(Status::Ok());
  }
  void AbortAsync(TransRequest, StatusCallback done) override {
    calls.push_back("abort");
    done(Status::Ok());
  }
  void RegisterBranchAsync(BranchRegistration, StatusCallback done) override {
    done(UnimplementedError("not here"));
  }
  void QueryAsync(std::string,
                  ResultCallback<TransWithBranches> done) override {
    done(UnimplementedError("not here"));
  }
  BranchClient& branch_client() override { std::abort(); }
  std::string address() const override { return ""; }

  std::vector<std::string> calls;
};

template <typename Backend>
class BarrierContractTest : public ::testing::Test {
 protected:
  void SetUp() override { opened_ = backend_.Open(); }

  static BranchBarrier Barrier(BranchOp op, TransType type = TransType::kTcc,
                               const std::string& gid = "g") {
    // The msg barrier is branch "00", as DoAndSubmit uses it.
    auto b = BranchBarrier::FromTransInfo(
        {gid, type, op == BranchOp::kMsg ? "00" : "01", op, ""});
    EXPECT_OK(b);
    return *b;
  }
  // Runs op of branch 01 of gid "g"; the business inserts one effect row
  // named after the op.
  Status Run(BranchOp op, TransType type = TransType::kTcc) {
    BranchBarrier b = Barrier(op, type);
    return backend_.Run(b, std::string(ToString(op)), nullptr);
  }
  int64_t Effects(const std::string& what) { return backend_.Effects(what); }

  Backend backend_;
  bool opened_ = false;
};

TYPED_TEST_SUITE_P(BarrierContractTest);

TYPED_TEST_P(BarrierContractTest, DuplicateConfirmRunsOnce) {
  ASSERT_OK(this->Run(BranchOp::kTry));
  ASSERT_OK(this->Run(BranchOp::kConfirm));
  ASSERT_OK(this->Run(BranchOp::kConfirm));  // the coordinator retried it
  EXPECT_EQ(this->Effects("try"), 1);
  EXPECT_EQ(this->Effects("confirm"), 1);
}

TYPED_TEST_P(BarrierContractTest,
             NullCompensationIsSkippedAndBlocksTheLateTry) {
  ASSERT_OK(this->Run(BranchOp::kCancel));  // the try never arrived
  EXPECT_EQ(this->Effects("cancel"), 0);
  ASSERT_OK(this->Run(BranchOp::kTry));  // hanging: arrives after its cancel
  EXPECT_EQ(this->Effects("try"), 0);
  // The cancel's two rows (try's, as origin, and its own) stay.
  EXPECT_EQ(this->backend_.BarrierRows(), 2);
}

TYPED_TEST_P(BarrierContractTest, NormalTryThenCancelBothRun) {
  ASSERT_OK(this->Run(BranchOp::kTry));
  ASSERT_OK(this->Run(BranchOp::kCancel));
  ASSERT_OK(this->Run(BranchOp::kCancel));
  EXPECT_EQ(this->Effects("try"), 1);
  EXPECT_EQ(this->Effects("cancel"), 1);
}

TYPED_TEST_P(BarrierContractTest, SagaCompensationOfAFailedActionIsNull) {
  BranchBarrier b = this->Barrier(BranchOp::kAction, TransType::kSaga);
  // The action fails: its rows roll back with it.
  EXPECT_THAT(
      this->backend_.Run(b, "action",
                         [] { return AbortedError("insufficient balance"); }),
      StatusIs(StatusCode::kAborted, "insufficient balance"));
  EXPECT_EQ(this->Effects("action"), 0);
  EXPECT_EQ(this->backend_.BarrierRows(), 0);
  ASSERT_OK(this->Run(BranchOp::kCompensate, TransType::kSaga));
  EXPECT_EQ(this->Effects("compensate"), 0);
}

TYPED_TEST_P(BarrierContractTest,
             WorkflowRollbackOfAnActionThatNeverRanIsNull) {
  ASSERT_OK(this->Run(BranchOp::kRollback, TransType::kWorkflow));
  EXPECT_EQ(this->Effects("rollback"), 0);
  ASSERT_OK(this->Run(BranchOp::kAction, TransType::kWorkflow));
  EXPECT_EQ(this->Effects("action"), 0);
}

TYPED_TEST_P(BarrierContractTest, FailedBusinessRollsBackAndCanRunAgain) {
  int calls = 0;
  auto business = [&] {
    ++calls;
    return calls == 1 ? UnavailableError("downstream busy") : Status::Ok();
  };
  BranchBarrier first = this->Barrier(BranchOp::kConfirm);
  EXPECT_THAT(this->backend_.Run(first, "confirm", business),
              StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(this->Effects("confirm"), 0);  // rolled back with the rows
  EXPECT_EQ(this->backend_.BarrierRows(), 0);
  BranchBarrier again = this->Barrier(BranchOp::kConfirm);
  ASSERT_OK(this->backend_.Run(again, "confirm", business));
  EXPECT_EQ(this->Effects("confirm"), 1);
  EXPECT_EQ(calls, 2);
}

TYPED_TEST_P(BarrierContractTest, FailedBusinessSqlRollsBackTheBarrierRows) {
  BranchBarrier first = this->Barrier(BranchOp::kAction, TransType::kSaga);
  Status s = this->backend_.RunFailingSql(first, "action");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(this->Effects("action"), 0);
  EXPECT_EQ(this->backend_.BarrierRows(), 0);
  // Nothing remembers the failed attempt: the retry runs the business.
  ASSERT_OK(this->Run(BranchOp::kAction, TransType::kSaga));
  EXPECT_EQ(this->Effects("action"), 1);
}

TYPED_TEST_P(BarrierContractTest, EachCallOfOneRequestTakesTheNextBarrierId) {
  BranchBarrier b = this->Barrier(BranchOp::kAction, TransType::kSaga);
  ASSERT_OK(this->backend_.Run(b, "first", nullptr));   // barrier id 01
  ASSERT_OK(this->backend_.Run(b, "second", nullptr));  // barrier id 02
  EXPECT_EQ(this->Effects("first"), 1);
  EXPECT_EQ(this->Effects("second"), 1);
  // The same request again: both are duplicates.
  BranchBarrier repeat = this->Barrier(BranchOp::kAction, TransType::kSaga);
  ASSERT_OK(this->backend_.Run(repeat, "first", nullptr));
  ASSERT_OK(this->backend_.Run(repeat, "second", nullptr));
  EXPECT_EQ(this->Effects("first"), 1);
  EXPECT_EQ(this->Effects("second"), 1);
  EXPECT_EQ(this->backend_.BarrierRows(), 2);
}

TYPED_TEST_P(BarrierContractTest, ConcurrentDuplicatesTakeEffectOnce) {
  constexpr int kThreads = 8;
  std::atomic<int> ran{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      BranchBarrier b = this->Barrier(BranchOp::kAction, TransType::kSaga);
      EXPECT_OK(this->backend_.Run(b, "action", [&] {
        ++ran;
        return Status::Ok();
      }));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(this->Effects("action"), 1);
}

// A forward op and its compensation (each sent twice) race on one branch: a
// TCC try and cancel, a saga action and compensate. Whichever takes the
// forward op's row first decides: the forward op first, then both run (the
// compensation undoes it); the compensation first, then neither runs. Never
// a compensation without its forward op, nor a forward op after its
// compensation, nor anything twice.
TYPED_TEST_P(BarrierContractTest, RacingForwardOpAndCompensationAgree) {
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    const bool tcc = round % 2 == 0;
    const TransType type = tcc ? TransType::kTcc : TransType::kSaga;
    const BranchOp forward = tcc ? BranchOp::kTry : BranchOp::kAction;
    const BranchOp undo = tcc ? BranchOp::kCancel : BranchOp::kCompensate;
    const std::string gid = "race-" + std::to_string(round);
    std::vector<std::thread> threads;
    for (BranchOp op : {forward, undo, forward, undo}) {
      threads.emplace_back([&, op] {
        BranchBarrier b = this->Barrier(op, type, gid);
        EXPECT_OK(this->backend_.Run(b, gid + "/" + std::string(ToString(op)),
                                     nullptr));
      });
    }
    for (auto& t : threads) t.join();
    const int64_t forwards =
        this->Effects(gid + "/" + std::string(ToString(forward)));
    const int64_t undos =
        this->Effects(gid + "/" + std::string(ToString(undo)));
    EXPECT_LE(forwards, 1) << gid;
    EXPECT_EQ(forwards, undos) << gid;
  }
}

TYPED_TEST_P(BarrierContractTest,
             QueryPreparedFindsTheCommittedLocalTransaction) {
  ASSERT_OK(this->Run(BranchOp::kMsg, TransType::kMsg));
  EXPECT_EQ(this->Effects("msg"), 1);
  EXPECT_OK(this->backend_.QueryPrepared(
      this->Barrier(BranchOp::kMsg, TransType::kMsg)));
}

TYPED_TEST_P(BarrierContractTest,
             QueryPreparedBeforeTheLocalTransactionFailsItForGood) {
  const BranchBarrier b = this->Barrier(BranchOp::kMsg, TransType::kMsg);
  EXPECT_THAT(this->backend_.QueryPrepared(b), StatusIs(StatusCode::kAborted));
  // The local transaction starting late finds the check-back's row.
  EXPECT_THAT(this->Run(BranchOp::kMsg, TransType::kMsg),
              StatusIs(StatusCode::kAborted, "DUPLICATED"));
  EXPECT_EQ(this->Effects("msg"), 0);
  EXPECT_THAT(this->backend_.QueryPrepared(b), StatusIs(StatusCode::kAborted));
}

TYPED_TEST_P(BarrierContractTest, QueryPreparedAfterAFailedLocalTransaction) {
  BranchBarrier b = this->Barrier(BranchOp::kMsg, TransType::kMsg);
  EXPECT_THAT(
      this->backend_.Run(b, "msg", [] { return InternalError("boom"); }),
      StatusIs(StatusCode::kInternal));
  EXPECT_THAT(this->backend_.QueryPrepared(b), StatusIs(StatusCode::kAborted));
  EXPECT_EQ(this->Effects("msg"), 0);
}

TYPED_TEST_P(BarrierContractTest, DoAndSubmitCommitsThenSubmits) {
  RecordingDtm dtm;
  Msg msg(dtm, "g");
  msg.Add("localhost:1/busi.Busi/TransIn", "payload");
  ASSERT_OK(this->backend_.DoAndSubmit(msg, "localhost:1/busi.Busi/Query",
                                       "debit", Status::Ok()));
  EXPECT_THAT(dtm.calls, ::testing::ElementsAre("prepare", "submit"));
  EXPECT_EQ(this->Effects("debit"), 1);
  EXPECT_OK(this->backend_.QueryPrepared(
      this->Barrier(BranchOp::kMsg, TransType::kMsg)));
}

TYPED_TEST_P(BarrierContractTest, DoAndSubmitOfAFailedLocalTransactionAborts) {
  RecordingDtm dtm;
  Msg msg(dtm, "g");
  msg.Add("localhost:1/busi.Busi/TransIn", "payload");
  EXPECT_THAT(this->backend_.DoAndSubmit(msg, "localhost:1/busi.Busi/Query",
                                         "debit", AbortedError("no funds")),
              StatusIs(StatusCode::kAborted, "no funds"));
  EXPECT_THAT(dtm.calls, ::testing::ElementsAre("prepare", "abort"));
  EXPECT_EQ(this->Effects("debit"), 0);
  EXPECT_THAT(this->backend_.QueryPrepared(
                  this->Barrier(BranchOp::kMsg, TransType::kMsg)),
              StatusIs(StatusCode::kAborted));
}

TYPED_TEST_P(BarrierContractTest, PruneRemovesOnlyOldRowsOfFinishedGids) {
  using std::chrono::hours;
  auto run = [&](const std::string& gid, BranchOp op) {
    BranchBarrier b = this->Barrier(op, TransType::kSaga, gid);
    return this->backend_.Run(b, gid, nullptr);
  };
  for (const char* gid :
       {"p-done-1", "p-done-2", "p-done-3", "p-open", "p-young"}) {
    ASSERT_OK(run(gid, BranchOp::kAction));
  }
  ASSERT_OK(run("p-done-1", BranchOp::kCompensate));
  for (const char* gid : {"p-done-1", "p-done-2", "p-done-3", "p-open"}) {
    this->backend_.Age(gid, hours(24 * 8));
  }
  const int64_t before = this->backend_.BarrierRows();
  ASSERT_EQ(before, 6);

  BarrierPruneOptions options;
  EXPECT_THAT(this->backend_.Prune(options),
              StatusIs(StatusCode::kInvalidArgument, "finished"));
  // A coordinator that cannot be asked: nothing goes.
  options.finished = [](const std::string&) -> Result<bool> {
    return UnavailableError("coordinator down");
  };
  EXPECT_THAT(this->backend_.Prune(options),
              StatusIs(StatusCode::kUnavailable, "coordinator down"));
  EXPECT_EQ(this->backend_.BarrierRows(), before);

  std::vector<std::string> asked;
  options.finished = [&](const std::string& gid) -> Result<bool> {
    asked.push_back(gid);
    return gid != "p-open";
  };
  options.page = 2;  // three pages
  ASSERT_OK_AND_ASSIGN(BarrierPruneResult r, this->backend_.Prune(options));
  // Only the old ones are asked about, in gid order; the young one (its
  // rows a minute old) is not, finished or not.
  EXPECT_THAT(asked, ::testing::ElementsAre("p-done-1", "p-done-2", "p-done-3",
                                            "p-open"));
  EXPECT_EQ(r.checked, 4u);
  EXPECT_EQ(r.pruned, 3u);
  EXPECT_EQ(r.rows, 4u);  // p-done-1: its action's and compensation's rows
  EXPECT_EQ(this->backend_.BarrierRows(), 2);
  // What is left still works: a duplicate of p-young's action is skipped.
  ASSERT_OK(run("p-young", BranchOp::kAction));
  EXPECT_EQ(this->Effects("p-young"), 1);
}

REGISTER_TYPED_TEST_SUITE_P(
    BarrierContractTest, DuplicateConfirmRunsOnce,
    NullCompensationIsSkippedAndBlocksTheLateTry, NormalTryThenCancelBothRun,
    SagaCompensationOfAFailedActionIsNull,
    WorkflowRollbackOfAnActionThatNeverRanIsNull,
    FailedBusinessRollsBackAndCanRunAgain,
    FailedBusinessSqlRollsBackTheBarrierRows,
    EachCallOfOneRequestTakesTheNextBarrierId,
    ConcurrentDuplicatesTakeEffectOnce, RacingForwardOpAndCompensationAgree,
    QueryPreparedFindsTheCommittedLocalTransaction,
    QueryPreparedBeforeTheLocalTransactionFailsItForGood,
    QueryPreparedAfterAFailedLocalTransaction, DoAndSubmitCommitsThenSubmits,
    DoAndSubmitOfAFailedLocalTransactionAborts,
    PruneRemovesOnlyOldRowsOfFinishedGids);

}  // namespace dtx::testing

#endif  // DTX_TESTS_STORAGE_BARRIER_CONTRACT_TEST_H_
