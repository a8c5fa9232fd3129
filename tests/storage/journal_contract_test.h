// The Journal contract, as a typed test suite that every implementation
// instantiates (SqliteJournal, PostgresJournal, the simulation's journal), so
// that they cannot drift apart.
//
// A Factory type provides:
//   // A fresh, empty journal whose timestamps come from `clock`.
//   std::unique_ptr<Journal> Make(const Clock* clock);
// and may declare
//   // False for a journal with several writers, whose completions keep the
//   // order of each transaction's writes only (journal.h); true when absent.
//   static constexpr bool kOrdersAcrossTransactions = false;

#ifndef DTX_TESTS_STORAGE_JOURNAL_CONTRACT_TEST_H_
#define DTX_TESTS_STORAGE_JOURNAL_CONTRACT_TEST_H_

#include "dtx/clock.h"
#include "dtx/journal.h"
#include "dtx/limits.h"

#include "status_matchers.h"
#include "test_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace dtx::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Factory::kOrdersAcrossTransactions, true when it declares none.
template <typename Factory, typename = void>
struct OrdersAcrossTransactions : std::true_type {};
template <typename Factory>
struct OrdersAcrossTransactions<
    Factory, std::void_t<decltype(Factory::kOrdersAcrossTransactions)>>
    : std::bool_constant<Factory::kOrdersAcrossTransactions> {};

inline Branch MakeBranch(std::string branch_id, BranchOp op,
                         std::string url = "", std::string payload = "") {
  Branch b;
  b.branch_id = std::move(branch_id);
  b.op = op;
  b.url = std::move(url);
  b.bin_data = std::move(payload);
  return b;
}

// A saga as dtm stores it: per step a compensate row, then an action row.
inline std::vector<Branch> SagaBranches(int steps) {
  std::vector<Branch> out;
  for (int i = 1; i <= steps; ++i) {
    const std::string id = (i < 10 ? "0" : "") + std::to_string(i);
    out.push_back(MakeBranch(id, BranchOp::kCompensate,
                             "localhost:9000/busi.Busi/Revert" + id,
                             "payload-" + id));
    out.push_back(MakeBranch(id, BranchOp::kAction,
                             "localhost:9000/busi.Busi/Do" + id,
                             "payload-" + id));
  }
  return out;
}

template <typename Factory>
class JournalContractTest : public ::testing::Test {
 protected:
  void SetUp() override { journal_ = factory_.Make(&clock_); }

  GlobalTrans NewTrans(std::string gid,
                       TransStatus status = TransStatus::kSubmitted,
                       TransType type = TransType::kSaga) {
    GlobalTrans t;
    t.gid = std::move(gid);
    t.trans_type = type;
    t.status = status;
    t.create_time = clock_.Now();
    t.next_cron_interval = seconds(10);
    t.next_cron_time = clock_.Now() + seconds(10);
    return t;
  }

  Status Save(const GlobalTrans& t, std::vector<Branch> branches = {}) {
    return WaitForWrite([&](WriteDone done) {
      journal_->SaveNew(t, std::move(branches), std::move(done));
    });
  }
  Status Append(const std::string& gid, TransStatus expected,
                std::vector<Branch> branches) {
    return WaitForWrite([&](WriteDone done) {
      journal_->AppendBranches(gid, expected, std::move(branches),
                               std::move(done));
    });
  }
  Status Change(StatusChange c) {
    return WaitForWrite(
        [&](WriteDone done) { journal_->ChangeStatus(c, std::move(done)); });
  }
  Status Change(const std::string& gid, TransStatus from, TransStatus to) {
    StatusChange c;
    c.gid = gid;
    c.from = from;
    c.to = to;
    return Change(c);
  }
  Status Update(const std::string& gid, std::optional<TransStatus> expected,
                std::vector<BranchUpdate> updates) {
    return WaitForWrite([&](WriteDone done) {
      journal_->UpdateBranches({gid, expected, std::move(updates)},
                               std::move(done));
    });
  }
  Status Touch(CronUpdate u) {
    return WaitForWrite(
        [&](WriteDone done) { journal_->TouchCron(u, std::move(done)); });
  }
  Result<std::vector<GlobalTrans>> ClaimDue(std::string owner, seconds lease,
                                            std::size_t limit = 16) {
    ClaimRequest r;
    r.now = clock_.Now();
    r.owner = std::move(owner);
    r.lease_until = clock_.Now() + lease;
    r.limit = limit;
    return WaitForClaim(*journal_, r);
  }
  // gids of the transactions due now, read page by page.
  std::vector<std::string> DueGids(std::size_t page_size) {
    std::vector<std::string> out;
    DueCursor cursor;
    for (int pages = 0; pages < 10000; ++pages) {
      auto page = journal_->ListDue(clock_.Now(), page_size, cursor);
      EXPECT_OK(page);
      if (!page.ok()) break;
      for (const auto& t : page->transactions) out.push_back(t.gid);
      if (!page->next) break;
      cursor = *page->next;
    }
    return out;
  }

  Factory factory_;
  FakeClock clock_;
  std::unique_ptr<Journal> journal_;
};

TYPED_TEST_SUITE_P(JournalContractTest);

TYPED_TEST_P(JournalContractTest, SaveNewThenFindRoundTripsEveryField) {
  GlobalTrans t =
      this->NewTrans("g-roundtrip", TransStatus::kPrepared, TransType::kMsg);
  t.protocol = "grpc";
  t.query_prepared = "localhost:9000/busi.Busi/QueryPrepared";
  t.options = R"({"wait_result":true,"branch_headers":{"x-test":"1"}})";
  t.custom_data = R"({"delay":5})";
  t.ext_data = "{}";
  t.rollback_reason = "";
  t.owner = "coordinator-a";
  t.fence = 3;
  t.retry_count = 2;
  t.next_cron_interval = seconds(20);
  t.next_cron_time = this->clock_.Now() + seconds(20);
  std::vector<Branch> branches = SagaBranches(2);
  branches[1].bin_data = std::string("\0\x01\xff binary", 10);
  ASSERT_OK(this->Save(t, branches));

  ASSERT_OK_AND_ASSIGN(TransWithBranches got,
                       this->journal_->Find("g-roundtrip"));
  EXPECT_GT(got.trans.id, 0);
  EXPECT_EQ(got.trans.gid, "g-roundtrip");
  EXPECT_EQ(got.trans.trans_type, TransType::kMsg);
  EXPECT_EQ(got.trans.status, TransStatus::kPrepared);
  EXPECT_EQ(got.trans.protocol, "grpc");
  EXPECT_EQ(got.trans.query_prepared, t.query_prepared);
  EXPECT_EQ(got.trans.options, t.options);
  EXPECT_EQ(got.trans.custom_data, t.custom_data);
  EXPECT_EQ(got.trans.ext_data, "{}");
  EXPECT_EQ(got.trans.owner, "coordinator-a");
  EXPECT_EQ(got.trans.fence, 3);
  EXPECT_EQ(got.trans.retry_count, 2);
  EXPECT_EQ(got.trans.create_time, this->clock_.Now());
  EXPECT_EQ(got.trans.update_time, this->clock_.Now());
  EXPECT_FALSE(got.trans.finish_time.has_value());
  EXPECT_FALSE(got.trans.rollback_time.has_value());
  EXPECT_EQ(got.trans.next_cron_interval, seconds(20));
  EXPECT_EQ(got.trans.next_cron_time, t.next_cron_time);

  ASSERT_EQ(got.branches.size(), 4u);
  for (std::size_t i = 0; i < branches.size(); ++i) {
    EXPECT_EQ(got.branches[i].gid, "g-roundtrip");
    EXPECT_EQ(got.branches[i].branch_id, branches[i].branch_id);
    EXPECT_EQ(got.branches[i].op, branches[i].op);
    EXPECT_EQ(got.branches[i].url, branches[i].url);
    EXPECT_EQ(got.branches[i].bin_data, branches[i].bin_data);
    EXPECT_EQ(got.branches[i].status, BranchStatus::kPrepared);
    EXPECT_EQ(got.branches[i].create_time, this->clock_.Now());
    if (i > 0) {
      EXPECT_GT(got.branches[i].id, got.branches[i - 1].id);
    }
  }
}

TYPED_TEST_P(JournalContractTest, FindUnknownGidIsNotFound) {
  EXPECT_THAT(this->journal_->Find("nope"),
              StatusIs(StatusCode::kNotFound, "nope"));
}

TYPED_TEST_P(JournalContractTest, SaveNewOfAnExistingGidWritesNothing) {
  ASSERT_OK(this->Save(this->NewTrans("g-dup"), SagaBranches(1)));
  GlobalTrans second =
      this->NewTrans("g-dup", TransStatus::kPrepared, TransType::kTcc);
  second.custom_data = "changed";
  EXPECT_THAT(this->Save(second, SagaBranches(3)),
              StatusIs(StatusCode::kAlreadyExists, "g-dup"));
  ASSERT_OK_AND_ASSIGN(auto got, this->journal_->Find("g-dup"));
  EXPECT_EQ(got.trans.trans_type, TransType::kSaga);
  EXPECT_EQ(got.trans.status, TransStatus::kSubmitted);
  EXPECT_EQ(got.trans.custom_data, "");
  EXPECT_EQ(got.branches.size(), 2u);
}

TYPED_TEST_P(JournalContractTest, SaveNewWithADuplicateBranchWritesNothing) {
  std::vector<Branch> branches = SagaBranches(1);
  branches.push_back(branches.back());
  EXPECT_THAT(this->Save(this->NewTrans("g-dupbranch"), branches),
              StatusIs(StatusCode::kAlreadyExists, "branch 01/action"));
  EXPECT_THAT(this->journal_->Find("g-dupbranch"),
              StatusIs(StatusCode::kNotFound));
  // The gid is still free.
  EXPECT_OK(this->Save(this->NewTrans("g-dupbranch"), SagaBranches(1)));
}

TYPED_TEST_P(JournalContractTest, AppendBranchesOnlyWhileTheStatusIsExpected) {
  ASSERT_OK(this->Save(
      this->NewTrans("g-tcc", TransStatus::kPrepared, TransType::kTcc)));
  ASSERT_OK(this->Append(
      "g-tcc", TransStatus::kPrepared,
      {MakeBranch("01", BranchOp::kCancel, "h:1/s.S/Cancel", "p1"),
       MakeBranch("01", BranchOp::kConfirm, "h:1/s.S/Confirm", "p1")}));
  ASSERT_OK(this->Append("g-tcc", TransStatus::kPrepared,
                         {MakeBranch("02", BranchOp::kCancel),
                          MakeBranch("02", BranchOp::kConfirm)}));
  ASSERT_OK_AND_ASSIGN(auto got, this->journal_->Find("g-tcc"));
  ASSERT_EQ(got.branches.size(), 4u);
  EXPECT_EQ(got.branches[0].branch_id, "01");
  EXPECT_EQ(got.branches[0].op, BranchOp::kCancel);
  EXPECT_EQ(got.branches[3].branch_id, "02");
  EXPECT_EQ(got.branches[3].op, BranchOp::kConfirm);

  ASSERT_OK(
      this->Change("g-tcc", TransStatus::kPrepared, TransStatus::kSubmitted));
  EXPECT_THAT(this->Append("g-tcc", TransStatus::kPrepared,
                           {MakeBranch("03", BranchOp::kCancel)}),
              StatusIs(StatusCode::kFailedPrecondition, "submitted"));
  ASSERT_OK_AND_ASSIGN(got, this->journal_->Find("g-tcc"));
  EXPECT_EQ(got.branches.size(), 4u);
}

TYPED_TEST_P(JournalContractTest, AppendBranchesToAMissingGidIsNotFound) {
  EXPECT_THAT(this->Append("ghost", TransStatus::kPrepared,
                           {MakeBranch("01", BranchOp::kCancel)}),
              StatusIs(StatusCode::kNotFound, "ghost"));
}

TYPED_TEST_P(JournalContractTest, AppendingADuplicateBranchAppendsNothing) {
  ASSERT_OK(this->Save(
      this->NewTrans("g-tcc2", TransStatus::kPrepared, TransType::kTcc)));
  ASSERT_OK(this->Append("g-tcc2", TransStatus::kPrepared,
                         {MakeBranch("01", BranchOp::kCancel)}));
  EXPECT_THAT(this->Append("g-tcc2", TransStatus::kPrepared,
                           {MakeBranch("02", BranchOp::kCancel),
                            MakeBranch("01", BranchOp::kCancel)}),
              StatusIs(StatusCode::kAlreadyExists, "branch 01/cancel"));
  // A repeat inside one request, and one far into a long request.
  EXPECT_THAT(this->Append("g-tcc2", TransStatus::kPrepared,
                           {MakeBranch("03", BranchOp::kCancel),
                            MakeBranch("03", BranchOp::kCancel)}),
              StatusIs(StatusCode::kAlreadyExists, "branch 03/cancel"));
  std::vector<Branch> many;
  for (int i = 10; i < 30; ++i)
    many.push_back(MakeBranch(std::to_string(i), BranchOp::kConfirm));
  many.push_back(MakeBranch("01", BranchOp::kCancel));
  EXPECT_THAT(this->Append("g-tcc2", TransStatus::kPrepared, many),
              StatusIs(StatusCode::kAlreadyExists, "branch 01/cancel"));
  ASSERT_OK_AND_ASSIGN(auto got, this->journal_->Find("g-tcc2"));
  EXPECT_EQ(got.branches.size(), 1u);  // none of the others was kept
  // Without the repeat, the long request is kept whole and in order.
  many.pop_back();
  ASSERT_OK(this->Append("g-tcc2", TransStatus::kPrepared, many));
  ASSERT_OK_AND_ASSIGN(got, this->journal_->Find("g-tcc2"));
  ASSERT_EQ(got.branches.size(), 21u);
  for (std::size_t i = 1; i < got.branches.size(); ++i)
    EXPECT_EQ(got.branches[i].branch_id, std::to_string(i + 9));
}

TYPED_TEST_P(JournalContractTest, ChangeStatusIsACompareAndSet) {
  ASSERT_OK(this->Save(this->NewTrans("g-cas", TransStatus::kPrepared)));
  this->clock_.Advance(seconds(1));
  EXPECT_THAT(
      this->Change("g-cas", TransStatus::kSubmitted, TransStatus::kSucceed),
      StatusIs(StatusCode::kFailedPrecondition, "prepared"));
  ASSERT_OK_AND_ASSIGN(auto got, this->journal_->Find("g-cas"));
  EXPECT_EQ(got.trans.status, TransStatus::kPrepared);

  StatusChange c;
  c.gid = "g-cas";
  c.from = TransStatus::kPrepared;
  c.to = TransStatus::kAborting;
  c.rollback_reason = "Timeout after 35 seconds";
  c.next_cron_interval = seconds(40);
  c.next_cron_time = this->clock_.Now() + seconds(40);
  ASSERT_OK(this->Change(c));
  ASSERT_OK_AND_ASSIGN(got, this->journal_->Find("g-cas"));
  EXPECT_EQ(got.trans.status, TransStatus::kAborting);
  EXPECT_EQ(got.trans.rollback_reason, "Timeout after 35 seconds");
  EXPECT_EQ(got.trans.next_cron_interval, seconds(40));
  EXPECT_EQ(got.trans.next_cron_time, this->clock_.Now() + seconds(40));
  EXPECT_EQ(got.trans.update_time, this->clock_.Now());
  EXPECT_FALSE(got.trans.rollback_time.has_value());

  // A second change from the old status loses.
  EXPECT_THAT(
      this->Change("g-cas", TransStatus::kPrepared, TransStatus::kSubmitted),
      StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(
      this->Change("ghost", TransStatus::kPrepared, TransStatus::kSubmitted),
      StatusIs(StatusCode::kNotFound));
}

TYPED_TEST_P(JournalContractTest, FinalStatusesStampTheirTimes) {
  ASSERT_OK(this->Save(this->NewTrans("g-ok")));
  ASSERT_OK(this->Save(this->NewTrans("g-bad", TransStatus::kAborting)));
  this->clock_.Advance(seconds(3));
  StatusChange ok;
  ok.gid = "g-ok";
  ok.from = TransStatus::kSubmitted;
  ok.to = TransStatus::kSucceed;
  ok.result = "done";
  ASSERT_OK(this->Change(ok));
  ASSERT_OK(
      this->Change("g-bad", TransStatus::kAborting, TransStatus::kFailed));
  ASSERT_OK_AND_ASSIGN(auto good, this->journal_->Find("g-ok"));
  EXPECT_EQ(good.trans.finish_time, this->clock_.Now());
  EXPECT_FALSE(good.trans.rollback_time.has_value());
  EXPECT_EQ(good.trans.result, "done");
  ASSERT_OK_AND_ASSIGN(auto bad, this->journal_->Find("g-bad"));
  EXPECT_EQ(bad.trans.rollback_time, this->clock_.Now());
  EXPECT_FALSE(bad.trans.finish_time.has_value());
}

TYPED_TEST_P(JournalContractTest, UpdateBranchesRecordsResults) {
  ASSERT_OK(this->Save(this->NewTrans("g-br"), SagaBranches(2)));
  this->clock_.Advance(seconds(1));
  ASSERT_OK(this->Update("g-br", TransStatus::kSubmitted,
                         {{"01", BranchOp::kAction, BranchStatus::kSucceed},
                          {"02", BranchOp::kAction, BranchStatus::kFailed}}));
  ASSERT_OK_AND_ASSIGN(auto got, this->journal_->Find("g-br"));
  EXPECT_EQ(got.branches[0].status, BranchStatus::kPrepared);
  EXPECT_EQ(got.branches[1].status, BranchStatus::kSucceed);
  EXPECT_EQ(got.branches[1].finish_time, this->clock_.Now());
  EXPECT_EQ(got.branches[1].update_time, this->clock_.Now());
  EXPECT_EQ(got.branches[3].status, BranchStatus::kFailed);
  EXPECT_FALSE(got.branches[0].finish_time.has_value());
}

TYPED_TEST_P(JournalContractTest, UpdateBranchesRecordsAttempts) {
  ASSERT_OK(this->Save(this->NewTrans("g-att"), SagaBranches(1)));
  const TimePoint first = this->clock_.Now();
  // Two failed calls, then a success; a result without an attempt (recorded
  // without a call) leaves the retry state alone.
  ASSERT_OK(
      this->Update("g-att", TransStatus::kSubmitted,
                   {{"01", BranchOp::kAction, BranchStatus::kPrepared,
                     BranchAttempt{first, "TRANSIENT: connection refused"}}}));
  this->clock_.Advance(seconds(5));
  const TimePoint second = this->clock_.Now();
  ASSERT_OK(this->Update("g-att", TransStatus::kSubmitted,
                         {{"01", BranchOp::kAction, BranchStatus::kPrepared,
                           BranchAttempt{second, "ONGOING: not yet"}}}));
  ASSERT_OK_AND_ASSIGN(auto got, this->journal_->Find("g-att"));
  EXPECT_EQ(got.branches[1].attempts, 2);
  EXPECT_EQ(got.branches[1].last_try_time, second);
  EXPECT_EQ(got.branches[1].last_error, "ONGOING: not yet");
  EXPECT_EQ(got.branches[1].status, BranchStatus::kPrepared);
  EXPECT_FALSE(got.branches[1].finish_time.has_value());
  EXPECT_EQ(got.branches[0].attempts, 0);
  EXPECT_FALSE(got.branches[0].last_try_time.has_value());

  this->clock_.Advance(seconds(5));
  const TimePoint third = this->clock_.Now();
  ASSERT_OK(
      this->Update("g-att", TransStatus::kSubmitted,
                   {{"01", BranchOp::kAction, BranchStatus::kSucceed,
                     BranchAttempt{third, ""}},
                    {"01", BranchOp::kCompensate, BranchStatus::kPrepared}}));
  ASSERT_OK_AND_ASSIGN(got, this->journal_->Find("g-att"));
  EXPECT_EQ(got.branches[1].attempts, 3);
  EXPECT_EQ(got.branches[1].last_try_time, third);
  EXPECT_EQ(got.branches[1].last_error, "");
  EXPECT_EQ(got.branches[1].status, BranchStatus::kSucceed);
  EXPECT_EQ(got.branches[0].attempts, 0);
}

// One write naming a row more than once leaves it as the results applied
// in order would: the last status, every attempt counted, the last attempt's
// time and error, and the finish time of the result that ended it.
TYPED_TEST_P(JournalContractTest, UpdateBranchesNamingARowTwiceAppliesBoth) {
  ASSERT_OK(this->Save(this->NewTrans("g-twice"), SagaBranches(2)));
  this->clock_.Advance(seconds(2));
  const TimePoint now = this->clock_.Now();
  ASSERT_OK(this->Update("g-twice", TransStatus::kSubmitted,
                         {{"01", BranchOp::kAction, BranchStatus::kSucceed,
                           BranchAttempt{now - seconds(1), "first"}},
                          {"02", BranchOp::kAction, BranchStatus::kSucceed},
                          {"01", BranchOp::kAction, BranchStatus::kPrepared,
                           BranchAttempt{now, "ONGOING: second"}}}));
  ASSERT_OK_AND_ASSIGN(auto got, this->journal_->Find("g-twice"));
  EXPECT_EQ(got.branches[1].status, BranchStatus::kPrepared);
  EXPECT_EQ(got.branches[1].attempts, 2);
  EXPECT_EQ(got.branches[1].last_try_time, now);
  EXPECT_EQ(got.branches[1].last_error, "ONGOING: second");
  EXPECT_EQ(got.branches[1].finish_time, now);
  EXPECT_EQ(got.branches[3].status, BranchStatus::kSucceed);
  EXPECT_EQ(got.branches[3].attempts, 0);
  // A row that is not there fails the write whole.
  EXPECT_THAT(
      this->Update("g-twice", TransStatus::kSubmitted,
                   {{"02", BranchOp::kCompensate, BranchStatus::kSucceed},
                    {"09", BranchOp::kAction, BranchStatus::kSucceed}}),
      StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(got, this->journal_->Find("g-twice"));
  EXPECT_EQ(got.branches[2].status, BranchStatus::kPrepared);
}

TYPED_TEST_P(JournalContractTest, SummarizeCountsUnfinishedAndDue) {
  ASSERT_OK_AND_ASSIGN(auto none,
                       this->journal_->Summarize(this->clock_.Now()));
  EXPECT_EQ(none.unfinished, 0);
  EXPECT_EQ(none.due, 0);
  EXPECT_FALSE(none.oldest_create_time.has_value());
  const TimePoint first = this->clock_.Now();
  ASSERT_OK(this->Save(this->NewTrans("g-sum-1"), {}));  // due at +10 s
  this->clock_.Advance(seconds(5));
  ASSERT_OK(this->Save(
      this->NewTrans("g-sum-2", TransStatus::kPrepared, TransType::kTcc), {}));
  GlobalTrans done = this->NewTrans("g-sum-3", TransStatus::kSucceed);
  done.create_time = first - seconds(100);  // finished: not counted
  ASSERT_OK(this->Save(done, {}));
  ASSERT_OK_AND_ASSIGN(auto s, this->journal_->Summarize(this->clock_.Now()));
  EXPECT_EQ(s.unfinished, 2);
  EXPECT_EQ(s.due, 0);
  EXPECT_EQ(s.oldest_create_time, first);
  ASSERT_OK_AND_ASSIGN(s, this->journal_->Summarize(first + seconds(12)));
  EXPECT_EQ(s.due, 1);
}

TYPED_TEST_P(JournalContractTest, UpdateBranchesIsAllOrNothing) {
  ASSERT_OK(this->Save(this->NewTrans("g-br2"), SagaBranches(1)));
  EXPECT_THAT(this->Update("g-br2", std::nullopt,
                           {{"01", BranchOp::kAction, BranchStatus::kSucceed},
                            {"09", BranchOp::kAction, BranchStatus::kSucceed}}),
              StatusIs(StatusCode::kNotFound, "branch 09/action"));
  EXPECT_THAT(this->Update("g-br2", TransStatus::kAborting,
                           {{"01", BranchOp::kAction, BranchStatus::kSucceed}}),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(this->Update("ghost", std::nullopt,
                           {{"01", BranchOp::kAction, BranchStatus::kSucceed}}),
              StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto got, this->journal_->Find("g-br2"));
  EXPECT_EQ(got.branches[1].status, BranchStatus::kPrepared);
}

TYPED_TEST_P(JournalContractTest, TouchCronReschedulesAndKeepsTheRetryCount) {
  ASSERT_OK(this->Save(this->NewTrans("g-cron")));
  CronUpdate u;
  u.gid = "g-cron";
  u.expected = TransStatus::kSubmitted;
  u.next_cron_interval = seconds(20);
  u.next_cron_time = this->clock_.Now() + seconds(20);
  u.retry_count = 3;
  ASSERT_OK(this->Touch(u));
  ASSERT_OK_AND_ASSIGN(auto got, this->journal_->Find("g-cron"));
  EXPECT_EQ(got.trans.next_cron_interval, seconds(20));
  EXPECT_EQ(got.trans.next_cron_time, this->clock_.Now() + seconds(20));
  EXPECT_EQ(got.trans.retry_count, 3);

  u.retry_count.reset();
  u.next_cron_interval = seconds(40);
  ASSERT_OK(this->Touch(u));
  ASSERT_OK_AND_ASSIGN(got, this->journal_->Find("g-cron"));
  EXPECT_EQ(got.trans.retry_count, 3);  // unset means unchanged
  EXPECT_EQ(got.trans.next_cron_interval, seconds(40));

  u.expected = TransStatus::kAborting;
  EXPECT_THAT(this->Touch(u), StatusIs(StatusCode::kFailedPrecondition));
  u.gid = "ghost";
  EXPECT_THAT(this->Touch(u), StatusIs(StatusCode::kNotFound));
}

TYPED_TEST_P(JournalContractTest, MakeDueAppliesOnlyToUnfinishedTransactions) {
  ASSERT_OK(this->Save(this->NewTrans("g-late")));
  ASSERT_OK(this->Save(this->NewTrans("g-done", TransStatus::kSucceed)));
  EXPECT_TRUE(this->DueGids(10).empty());
  ASSERT_OK(WaitForWrite([&](WriteDone done) {
    this->journal_->MakeDue("g-late", this->clock_.Now(), std::move(done));
  }));
  EXPECT_THAT(this->DueGids(10), ::testing::ElementsAre("g-late"));
  EXPECT_THAT(WaitForWrite([&](WriteDone done) {
                this->journal_->MakeDue("g-done", this->clock_.Now(),
                                        std::move(done));
              }),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(WaitForWrite([&](WriteDone done) {
                this->journal_->MakeDue("ghost", this->clock_.Now(),
                                        std::move(done));
              }),
              StatusIs(StatusCode::kNotFound));
}

TYPED_TEST_P(JournalContractTest,
             ListDuePagesUnfinishedDueTransactionsInDueOrder) {
  // 25 due at distinct times (saved in a shuffled order), 5 due at the same
  // instant, some in the future, some finished.
  std::vector<int> order;
  for (int i = 0; i < 25; ++i) order.push_back((i * 7) % 25);
  const TimePoint base = this->clock_.Now();
  for (int i : order) {
    GlobalTrans t = this->NewTrans("due-" + std::to_string(100 + i));
    t.next_cron_time = base - seconds(100 - i);
    ASSERT_OK(this->Save(t));
  }
  for (int i = 0; i < 5; ++i) {
    GlobalTrans t =
        this->NewTrans("tie-" + std::to_string(i), TransStatus::kAborting);
    t.next_cron_time = base;
    ASSERT_OK(this->Save(t));
  }
  GlobalTrans future = this->NewTrans("future");
  future.next_cron_time = base + seconds(1);
  ASSERT_OK(this->Save(future));
  for (auto st : {TransStatus::kSucceed, TransStatus::kFailed}) {
    GlobalTrans t = this->NewTrans(
        std::string("finished-") + std::string(ToString(st)), st);
    t.next_cron_time = base - seconds(1000);
    ASSERT_OK(this->Save(t));
  }
  GlobalTrans prepared = this->NewTrans("prepared", TransStatus::kPrepared);
  prepared.next_cron_time = base - seconds(1);
  ASSERT_OK(this->Save(prepared));

  for (std::size_t page_size : {1u, 4u, 31u, 100u}) {
    const std::vector<std::string> gids = this->DueGids(page_size);
    ASSERT_EQ(gids.size(), 31u) << "page size " << page_size;
    for (int i = 0; i < 25; ++i)
      EXPECT_EQ(gids[i], "due-" + std::to_string(100 + i));
    EXPECT_EQ(gids[25], "prepared");
    for (int i = 0; i < 5; ++i)
      EXPECT_EQ(gids[26 + i], "tie-" + std::to_string(i));
  }
}

TYPED_TEST_P(JournalContractTest, ListFiltersAndPagesNewestFirst) {
  for (int i = 0; i < 12; ++i) {
    GlobalTrans t = this->NewTrans(
        "l-" + std::to_string(i),
        i % 3 == 0 ? TransStatus::kSucceed : TransStatus::kSubmitted,
        i % 2 == 0 ? TransType::kSaga : TransType::kTcc);
    t.create_time = this->clock_.Now() + seconds(i);
    ASSERT_OK(this->Save(t));
  }
  // Everything, 5 per page.
  std::vector<std::string> all;
  ListQuery q;
  q.limit = 5;
  for (int pages = 0; pages < 10; ++pages) {
    ASSERT_OK_AND_ASSIGN(ListPage page, this->journal_->List(q));
    for (const auto& t : page.transactions) all.push_back(t.gid);
    if (page.next_cursor == 0) break;
    q.cursor = page.next_cursor;
  }
  ASSERT_EQ(all.size(), 12u);
  EXPECT_EQ(all.front(), "l-11");
  EXPECT_EQ(all.back(), "l-0");

  ListQuery by_status;
  by_status.status = TransStatus::kSucceed;
  ASSERT_OK_AND_ASSIGN(ListPage s, this->journal_->List(by_status));
  std::vector<std::string> gids;
  for (const auto& t : s.transactions) gids.push_back(t.gid);
  EXPECT_THAT(gids, ::testing::ElementsAre("l-9", "l-6", "l-3", "l-0"));
  EXPECT_EQ(s.next_cursor, 0);

  ListQuery combined;
  combined.trans_type = TransType::kTcc;
  combined.status = TransStatus::kSubmitted;
  combined.created_from = this->clock_.Now() + seconds(3);
  combined.created_to = this->clock_.Now() + seconds(7);
  ASSERT_OK_AND_ASSIGN(ListPage c, this->journal_->List(combined));
  gids.clear();
  for (const auto& t : c.transactions) gids.push_back(t.gid);
  EXPECT_THAT(gids, ::testing::ElementsAre("l-7", "l-5"));
}

TYPED_TEST_P(JournalContractTest, ListFiltersByGidPrefixWithoutWildcards) {
  // '%' and '_' are LIKE's wildcards and '~' is the last character a gid
  // may hold: each is matched as itself.
  const std::vector<std::string> saved = {
      "pay-1", "pay%x", "pay_y", "payz", "pa", "pb",   "pay",
      "pax",   "t~",    "t~a",   "t",    "u",  "pay%", "q%r"};
  for (const std::string& gid : saved)
    ASSERT_OK(this->Save(this->NewTrans(gid)));
  auto gids_with = [&](const std::string& prefix) {
    ListQuery q;
    q.gid_prefix = prefix;
    auto page = this->journal_->List(q);
    EXPECT_OK(page);
    std::vector<std::string> out;
    if (page.ok()) {
      for (const auto& t : page->transactions) out.push_back(t.gid);
    }
    return out;
  };
  using ::testing::ElementsAre;
  EXPECT_THAT(gids_with("pay"),
              ElementsAre("pay%", "pay", "payz", "pay_y", "pay%x", "pay-1"));
  EXPECT_THAT(gids_with("pay%"), ElementsAre("pay%", "pay%x"));
  EXPECT_THAT(gids_with("pay_"), ElementsAre("pay_y"));
  EXPECT_THAT(gids_with("%"), ElementsAre());
  EXPECT_THAT(gids_with("q%"), ElementsAre("q%r"));
  EXPECT_THAT(gids_with("t~"), ElementsAre("t~a", "t~"));
  EXPECT_THAT(gids_with("pay-1"), ElementsAre("pay-1"));
  EXPECT_THAT(gids_with("pay-10"), ElementsAre());
  EXPECT_THAT(gids_with("\xff"), ElementsAre());
  EXPECT_EQ(gids_with("").size(), saved.size());
}

TYPED_TEST_P(JournalContractTest, GidPrefixPagesNewestFirstWithOtherFilters) {
  for (int i = 0; i < 12; ++i) {
    GlobalTrans t = this->NewTrans(
        "order-" + std::to_string(i),
        i % 4 == 0 ? TransStatus::kSucceed : TransStatus::kSubmitted);
    ASSERT_OK(this->Save(t));
    ASSERT_OK(this->Save(this->NewTrans("other-" + std::to_string(i))));
  }
  std::vector<std::string> all;
  ListQuery q;
  q.gid_prefix = "order-";
  q.limit = 5;
  for (int pages = 0; pages < 10; ++pages) {
    ASSERT_OK_AND_ASSIGN(ListPage page, this->journal_->List(q));
    for (const auto& t : page.transactions) all.push_back(t.gid);
    if (page.next_cursor == 0) break;
    q.cursor = page.next_cursor;
  }
  ASSERT_EQ(all.size(), 12u);
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(all[i], "order-" + std::to_string(11 - i));

  ListQuery done;
  done.gid_prefix = "order-";
  done.status = TransStatus::kSucceed;
  ASSERT_OK_AND_ASSIGN(ListPage s, this->journal_->List(done));
  std::vector<std::string> gids;
  for (const auto& t : s.transactions) gids.push_back(t.gid);
  EXPECT_THAT(gids, ::testing::ElementsAre("order-8", "order-4", "order-0"));
}

TYPED_TEST_P(JournalContractTest, ListUnfinishedOnlyPagesNewestFirst) {
  const TransStatus cycle[] = {TransStatus::kPrepared, TransStatus::kSucceed,
                               TransStatus::kSubmitted, TransStatus::kFailed,
                               TransStatus::kAborting};
  std::vector<std::string> unfinished;  // newest first
  for (int i = 0; i < 20; ++i) {
    const TransStatus st = cycle[i % 5];
    GlobalTrans t =
        this->NewTrans("u-" + std::to_string(i), st,
                       i % 2 == 0 ? TransType::kSaga : TransType::kTcc);
    // Due times in no particular order: the due index must not set the
    // order of the page.
    t.next_cron_time = this->clock_.Now() + seconds((i * 7) % 20);
    ASSERT_OK(this->Save(t));
    if (!IsFinished(st)) unfinished.insert(unfinished.begin(), t.gid);
  }
  for (std::size_t page_size : {1u, 3u, 12u, 100u}) {
    std::vector<std::string> got;
    ListQuery q;
    q.unfinished_only = true;
    q.limit = page_size;
    for (int pages = 0; pages < 50; ++pages) {
      ASSERT_OK_AND_ASSIGN(ListPage page, this->journal_->List(q));
      for (const auto& t : page.transactions) got.push_back(t.gid);
      if (page.next_cursor == 0) break;
      q.cursor = page.next_cursor;
    }
    EXPECT_EQ(got, unfinished) << "page size " << page_size;
  }

  ListQuery tcc;
  tcc.unfinished_only = true;
  tcc.trans_type = TransType::kTcc;
  ASSERT_OK_AND_ASSIGN(ListPage t, this->journal_->List(tcc));
  std::vector<std::string> gids;
  for (const auto& g : t.transactions) gids.push_back(g.gid);
  // Odd i are tcc; of those, unfinished: i % 5 in {0, 2, 4}.
  EXPECT_THAT(gids, ::testing::ElementsAre("u-19", "u-17", "u-15", "u-9", "u-7",
                                           "u-5"));

  ListQuery aborting;
  aborting.status = TransStatus::kAborting;
  ASSERT_OK_AND_ASSIGN(ListPage a, this->journal_->List(aborting));
  gids.clear();
  for (const auto& g : a.transactions) gids.push_back(g.gid);
  EXPECT_THAT(gids, ::testing::ElementsAre("u-19", "u-14", "u-9", "u-4"));

  ListQuery none;
  none.unfinished_only = true;
  none.status = TransStatus::kSucceed;
  ASSERT_OK_AND_ASSIGN(ListPage n, this->journal_->List(none));
  EXPECT_TRUE(n.transactions.empty());
}

TYPED_TEST_P(JournalContractTest, CountByStatusFollowsEveryChange) {
  auto counts = [&] {
    auto c = this->journal_->CountByStatus();
    EXPECT_OK(c);
    return c.ok() ? c->by_status : std::array<int64_t, 5>{};
  };
  using Counts = std::array<int64_t, 5>;  // prepared..failed
  EXPECT_EQ(counts(), (Counts{0, 0, 0, 0, 0}));
  ASSERT_OK(this->Save(
      this->NewTrans("c-1", TransStatus::kPrepared, TransType::kTcc)));
  ASSERT_OK(this->Save(this->NewTrans("c-2", TransStatus::kSubmitted)));
  ASSERT_OK(this->Save(this->NewTrans("c-3", TransStatus::kSubmitted)));
  ASSERT_OK(this->Save(this->NewTrans("c-4", TransStatus::kSucceed)));
  EXPECT_EQ(counts(), (Counts{1, 2, 0, 1, 0}));
  // Writes that change nothing count nothing.
  EXPECT_THAT(this->Save(this->NewTrans("c-2", TransStatus::kFailed)),
              StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(this->Change("c-2", TransStatus::kAborting, TransStatus::kFailed),
              StatusIs(StatusCode::kFailedPrecondition));
  StatusChange bad;
  bad.gid = "c-3";
  bad.from = TransStatus::kSubmitted;
  bad.to = TransStatus::kSucceed;
  bad.branch_updates = {{"09", BranchOp::kAction, BranchStatus::kSucceed}};
  EXPECT_THAT(this->Change(bad), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(counts(), (Counts{1, 2, 0, 1, 0}));
  // Status changes move one count each.
  ASSERT_OK(
      this->Change("c-1", TransStatus::kPrepared, TransStatus::kAborting));
  ASSERT_OK(
      this->Change("c-2", TransStatus::kSubmitted, TransStatus::kSucceed));
  ASSERT_OK(
      this->Change("c-3", TransStatus::kSubmitted, TransStatus::kAborting));
  EXPECT_EQ(counts(), (Counts{0, 0, 2, 2, 0}));
  ASSERT_OK(this->Change("c-1", TransStatus::kAborting, TransStatus::kFailed));
  // Rescheduling and claiming are not status changes.
  ASSERT_OK(WaitForWrite([&](WriteDone done) {
    this->journal_->MakeDue("c-3", this->clock_.Now(), std::move(done));
  }));
  ASSERT_OK_AND_ASSIGN(auto claimed, this->ClaimDue("me", seconds(30)));
  EXPECT_EQ(claimed.size(), 1u);
  EXPECT_EQ(counts(), (Counts{0, 0, 1, 2, 1}));
  StatusCounts c;
  ASSERT_OK_AND_ASSIGN(c, this->journal_->CountByStatus());
  EXPECT_EQ(c[TransStatus::kSucceed], 2);
  EXPECT_EQ(c[TransStatus::kFailed], 1);
}

TYPED_TEST_P(JournalContractTest, ClaimLeasesDueTransactions) {
  const TimePoint base = this->clock_.Now();
  for (int i = 0; i < 5; ++i) {
    GlobalTrans t = this->NewTrans("c-" + std::to_string(i));
    t.next_cron_time = base - seconds(10 - i);
    ASSERT_OK(this->Save(t));
  }
  GlobalTrans done = this->NewTrans("c-done", TransStatus::kFailed);
  done.next_cron_time = base - seconds(100);
  ASSERT_OK(this->Save(done));

  ASSERT_OK_AND_ASSIGN(auto first, this->ClaimDue("owner-a", seconds(10), 3));
  ASSERT_EQ(first.size(), 3u);
  std::set<std::string> got;
  for (const auto& t : first) {
    got.insert(t.gid);
    EXPECT_EQ(t.owner, "owner-a");
    EXPECT_EQ(t.next_cron_time, base + seconds(10));
  }
  EXPECT_EQ(
      got, (std::set<std::string>{"c-0", "c-1", "c-2"}));  // earliest due first

  ASSERT_OK_AND_ASSIGN(auto second, this->ClaimDue("owner-b", seconds(10)));
  got.clear();
  for (const auto& t : second) got.insert(t.gid);
  EXPECT_EQ(got, (std::set<std::string>{"c-3", "c-4"}));
  ASSERT_OK_AND_ASSIGN(auto none, this->ClaimDue("owner-c", seconds(10)));
  EXPECT_TRUE(none.empty());

  ASSERT_OK_AND_ASSIGN(auto stored, this->journal_->Find("c-0"));
  EXPECT_EQ(stored.trans.owner, "owner-a");

  // When the lease runs out the transactions are due again.
  this->clock_.Advance(seconds(10));
  ASSERT_OK_AND_ASSIGN(auto again, this->ClaimDue("owner-c", seconds(10)));
  EXPECT_EQ(again.size(), 5u);
}

TYPED_TEST_P(JournalContractTest, ConcurrentClaimersNeverShareATransaction) {
  constexpr int kTrans = 200;
  for (int i = 0; i < kTrans; ++i) {
    GlobalTrans t = this->NewTrans("cc-" + std::to_string(i));
    t.next_cron_time = this->clock_.Now() - seconds(1);
    ASSERT_OK(this->Save(t));
  }
  std::mutex mu;
  std::map<std::string, int> claims;
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (;;) {
        auto r = this->ClaimDue("w" + std::to_string(w), seconds(60), 7);
        ASSERT_OK(r);
        if (r->empty()) return;
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& t : *r) ++claims[t.gid];
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(claims.size(), static_cast<std::size_t>(kTrans));
  for (const auto& [gid, n] : claims) EXPECT_EQ(n, 1) << gid;
}

TYPED_TEST_P(JournalContractTest, ValuesOverTheLimitsWriteNothing) {
  EXPECT_THAT(this->Save(this->NewTrans(std::string(kMaxGidBytes + 1, 'g'))),
              StatusIs(StatusCode::kInvalidArgument, "over the limit"));
  EXPECT_THAT(this->Save(this->NewTrans("bad gid")),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(this->Save(this->NewTrans("")),
              StatusIs(StatusCode::kInvalidArgument));
  std::vector<Branch> big = {
      MakeBranch("01", BranchOp::kAction, "h:1/s.S/M",
                 std::string(kMaxPayloadBytes + 1, 'x'))};
  EXPECT_THAT(this->Save(this->NewTrans("g-big"), big),
              StatusIs(StatusCode::kResourceExhausted, "payload"));
  EXPECT_THAT(this->journal_->Find("g-big"), StatusIs(StatusCode::kNotFound));
  GlobalTrans text = this->NewTrans("g-text");
  text.custom_data = std::string(kMaxTextBytes + 1, 'c');
  EXPECT_THAT(this->Save(text),
              StatusIs(StatusCode::kInvalidArgument, "custom_data"));
  std::vector<Branch> bad_id = {MakeBranch("0\n1", BranchOp::kAction)};
  EXPECT_THAT(this->Save(this->NewTrans("g-badid"), bad_id),
              StatusIs(StatusCode::kInvalidArgument));

  // The largest allowed payload is stored whole.
  std::vector<Branch> max = {MakeBranch("01", BranchOp::kAction, "h:1/s.S/M",
                                        std::string(kMaxPayloadBytes, 'y'))};
  ASSERT_OK(this->Save(this->NewTrans("g-max"), max));
  ASSERT_OK_AND_ASSIGN(auto got, this->journal_->Find("g-max"));
  EXPECT_EQ(got.branches[0].bin_data.size(), kMaxPayloadBytes);
}

TYPED_TEST_P(JournalContractTest, FlushCompletesAfterEarlierWrites) {
  std::atomic<int> done_before_flush{0};
  for (int i = 0; i < 50; ++i) {
    this->journal_->SaveNew(this->NewTrans("f-" + std::to_string(i)), {},
                            [&](Status s) {
                              EXPECT_OK(s);
                              ++done_before_flush;
                            });
  }
  ASSERT_OK(WaitForWrite(
      [&](WriteDone done) { this->journal_->Flush(std::move(done)); }));
  EXPECT_EQ(done_before_flush.load(), 50);
  ListQuery q;
  q.limit = 1000;
  ASSERT_OK_AND_ASSIGN(auto page, this->journal_->List(q));
  EXPECT_EQ(page.transactions.size(), 50u);
}

TYPED_TEST_P(JournalContractTest, ManyThreadsWritingLoseAndDuplicateNothing) {
  constexpr int kThreads = 16;
  constexpr int kEach = 60;
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        const std::string gid =
            "mt-" + std::to_string(w) + "-" + std::to_string(i);
        ASSERT_OK(this->Save(this->NewTrans(gid), SagaBranches(1)));
        ASSERT_OK(
            this->Update(gid, TransStatus::kSubmitted,
                         {{"01", BranchOp::kAction, BranchStatus::kSucceed}}));
        ASSERT_OK(
            this->Change(gid, TransStatus::kSubmitted, TransStatus::kSucceed));
        // A duplicate insert from another thread's point of view fails alone.
        EXPECT_THAT(this->Save(this->NewTrans(gid)),
                    StatusIs(StatusCode::kAlreadyExists));
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> seen;
  ListQuery q;
  q.limit = 97;
  for (int pages = 0; pages < 100; ++pages) {
    ASSERT_OK_AND_ASSIGN(ListPage page, this->journal_->List(q));
    for (const auto& t : page.transactions) {
      EXPECT_TRUE(seen.insert(t.gid).second) << "listed twice: " << t.gid;
      EXPECT_EQ(t.status, TransStatus::kSucceed) << t.gid;
    }
    if (page.next_cursor == 0) break;
    q.cursor = page.next_cursor;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kThreads * kEach));
  ASSERT_OK_AND_ASSIGN(auto one, this->journal_->Find("mt-7-33"));
  ASSERT_EQ(one.branches.size(), 2u);
  EXPECT_EQ(one.branches[1].status, BranchStatus::kSucceed);
}

TYPED_TEST_P(JournalContractTest, ClosedJournalRefusesWork) {
  ASSERT_OK(this->Save(this->NewTrans("g-before-close")));
  this->journal_->Close();
  this->journal_->Close();  // idempotent
  EXPECT_THAT(this->Save(this->NewTrans("g-after-close")),
              StatusIs(StatusCode::kFailedPrecondition, "closed"));
  EXPECT_THAT(this->journal_->Find("g-before-close"),
              StatusIs(StatusCode::kFailedPrecondition));
}

// `order` holds write numbers 0..2n-1 as their completions ran, where
// writes 2i and 2i+1 are transaction i's first and second: each
// transaction's come in the order made, and with one writer all of them do.
template <typename Factory>
void ExpectCompletionOrder(const std::vector<int>& order, int transactions) {
  ASSERT_EQ(order.size(), static_cast<std::size_t>(2 * transactions));
  std::vector<std::size_t> position(order.size());
  for (std::size_t k = 0; k < order.size(); ++k)
    position.at(static_cast<std::size_t>(order[k])) = k;
  for (int i = 0; i < transactions; ++i) {
    EXPECT_LT(position[static_cast<std::size_t>(2 * i)],
              position[static_cast<std::size_t>(2 * i + 1)])
        << "transaction " << i;
  }
  if constexpr (OrdersAcrossTransactions<Factory>::value) {
    for (std::size_t k = 0; k < order.size(); ++k)
      EXPECT_EQ(order[k], static_cast<int>(k));
  }
}

TYPED_TEST_P(JournalContractTest, CompletionsWithAnExecutorRunThroughIt) {
  TestExecutor strand;
  constexpr int kTrans = 20;  // two writes each
  ASSERT_OK(this->Save(this->NewTrans("x-claimable")));
  this->clock_.Advance(seconds(11));
  // Touched only on the strand's thread, except after Drain().
  std::vector<int> order;
  std::vector<Status> statuses(2 * kTrans);
  Status duplicate;
  int off_strand = 0;
  std::size_t claimed = 0;
  const std::thread::id strand_id = strand.id();
  auto record = [&](int n) {
    return WriteDone(strand.executor(), [&, n](Status s) {
      if (std::this_thread::get_id() != strand_id) ++off_strand;
      order.push_back(n);
      statuses[static_cast<std::size_t>(n)] = std::move(s);
    });
  };
  for (int i = 0; i < kTrans; ++i) {
    const std::string gid = "x-" + std::to_string(i);
    // The second write is made before the first is durable.
    this->journal_->SaveNew(this->NewTrans(gid), SagaBranches(1),
                            record(2 * i));
    StatusChange c;
    c.gid = gid;
    c.from = TransStatus::kSubmitted;
    c.to = TransStatus::kSucceed;
    this->journal_->ChangeStatus(c, record(2 * i + 1));
  }
  // A write that fails reports through the executor as well.
  this->journal_->SaveNew(this->NewTrans("x-0"), {},
                          WriteDone(strand.executor(), [&](Status s) {
                            if (std::this_thread::get_id() != strand_id)
                              ++off_strand;
                            duplicate = std::move(s);
                          }));
  ClaimRequest claim;
  claim.now = this->clock_.Now();
  claim.owner = "me";
  claim.lease_until = this->clock_.Now() + seconds(30);
  this->journal_->Claim(
      claim,
      ClaimDone(strand.executor(), [&](Result<std::vector<GlobalTrans>> got) {
        if (std::this_thread::get_id() != strand_id) ++off_strand;
        EXPECT_OK(got);
        if (got.ok()) claimed = got->size();
      }));
  // Once Flush's plain completion has run, every earlier completion is with
  // its executor.
  ASSERT_OK(WaitForWrite(
      [&](WriteDone done) { this->journal_->Flush(std::move(done)); }));
  EXPECT_EQ(strand.posted(), static_cast<std::size_t>(2 * kTrans + 2));
  strand.Drain();
  EXPECT_EQ(off_strand, 0);
  ExpectCompletionOrder<TypeParam>(order, kTrans);
  for (int n = 0; n < 2 * kTrans; ++n)
    EXPECT_OK(statuses[static_cast<std::size_t>(n)]) << n;
  EXPECT_THAT(duplicate, StatusIs(StatusCode::kAlreadyExists));
  // x-claimable was due (the others were written after the clock moved).
  EXPECT_EQ(claimed, 1u);
}

TYPED_TEST_P(JournalContractTest, CompletionsWithoutAnExecutorStillRun) {
  std::promise<Status> saved;
  this->journal_->SaveNew(this->NewTrans("p-1"), {},
                          [&](Status s) { saved.set_value(std::move(s)); });
  EXPECT_OK(saved.get_future().get());
  std::promise<std::size_t> claimed;
  ClaimRequest claim;
  claim.now = this->clock_.Now() + seconds(11);
  claim.owner = "me";
  claim.lease_until = claim.now + seconds(30);
  this->journal_->Claim(claim, [&](Result<std::vector<GlobalTrans>> got) {
    claimed.set_value(got.ok() ? got->size() : 0);
  });
  EXPECT_EQ(claimed.get_future().get(), 1u);
  // An empty completion is allowed: the write still applies.
  this->journal_->SaveNew(this->NewTrans("p-2"), {}, nullptr);
  this->journal_->SaveNew(this->NewTrans("p-3"), {}, WriteDone());
  ASSERT_OK(WaitForWrite(
      [&](WriteDone done) { this->journal_->Flush(std::move(done)); }));
  EXPECT_OK(this->journal_->Find("p-2"));
  EXPECT_OK(this->journal_->Find("p-3"));
}

TYPED_TEST_P(JournalContractTest, CloseHandsEveryCompletionToItsExecutor) {
  TestExecutor strand;
  constexpr int kTrans = 150;  // two writes each
  std::vector<int> order;      // on the strand's thread until Drain()
  int failed = 0;
  auto record = [&](int n) {
    return WriteDone(strand.executor(), [&, n](Status s) {
      if (!s.ok()) ++failed;
      order.push_back(n);
    });
  };
  for (int i = 0; i < kTrans; ++i) {
    const std::string gid = "c-" + std::to_string(i);
    this->journal_->SaveNew(this->NewTrans(gid), {}, record(2 * i));
    StatusChange c;
    c.gid = gid;
    c.from = TransStatus::kSubmitted;
    c.to = TransStatus::kSucceed;
    this->journal_->ChangeStatus(c, record(2 * i + 1));
  }
  this->journal_->Close();
  EXPECT_EQ(strand.posted(), static_cast<std::size_t>(2 * kTrans));
  strand.Drain();
  EXPECT_EQ(failed, 0);
  ExpectCompletionOrder<TypeParam>(order, kTrans);
}

// Fencing (journal.h, Fence): a claim by another owner moves the fence, and
// every fenced write of the old owner is then refused with kAborted and
// writes nothing.
TYPED_TEST_P(JournalContractTest, ClaimMovesTheFenceOnlyWhenTheOwnerChanges) {
  GlobalTrans t = this->NewTrans("f-claim");
  t.owner = "owner-a";
  t.next_cron_time = this->clock_.Now() - seconds(1);
  ASSERT_OK(this->Save(t));
  ASSERT_OK_AND_ASSIGN(auto stored, this->journal_->Find("f-claim"));
  EXPECT_EQ(stored.trans.owner, "owner-a");
  EXPECT_EQ(stored.trans.fence, 0);

  // Claimed again by its owner: the same fence.
  ASSERT_OK_AND_ASSIGN(auto same, this->ClaimDue("owner-a", seconds(5)));
  ASSERT_EQ(same.size(), 1u);
  EXPECT_EQ(same[0].fence, 0);
  this->clock_.Advance(seconds(5));
  // Claimed by another: the fence moves on, and Find shows it.
  ASSERT_OK_AND_ASSIGN(auto other, this->ClaimDue("owner-b", seconds(5)));
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].owner, "owner-b");
  EXPECT_EQ(other[0].fence, 1);
  ASSERT_OK_AND_ASSIGN(stored, this->journal_->Find("f-claim"));
  EXPECT_EQ(stored.trans.owner, "owner-b");
  EXPECT_EQ(stored.trans.fence, 1);
}

TYPED_TEST_P(JournalContractTest, StaleFencedWritesAreRefusedAndWriteNothing) {
  GlobalTrans t = this->NewTrans("f-stale");
  t.owner = "owner-a";
  t.next_cron_time = this->clock_.Now() - seconds(1);
  ASSERT_OK(this->Save(t, SagaBranches(1)));
  ASSERT_OK_AND_ASSIGN(auto claimed, this->ClaimDue("owner-b", seconds(30)));
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_OK_AND_ASSIGN(const auto before, this->journal_->Find("f-stale"));
  const Fence stale{"owner-a", 0};

  StatusChange c;
  c.gid = "f-stale";
  c.from = TransStatus::kSubmitted;
  c.to = TransStatus::kSucceed;
  c.branch_updates.push_back({"01", BranchOp::kAction, BranchStatus::kSucceed});
  c.fence = stale;
  Status s = this->Change(c);
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s;
  EXPECT_THAT(s.message(), ::testing::HasSubstr("owner-b"));
  // Also with the branch-count guard (another path in some journals).
  c.expected_branch_rows = 2;
  EXPECT_EQ(this->Change(c).code(), StatusCode::kAborted);
  // The fence is checked before the status.
  c.from = TransStatus::kAborting;
  c.expected_branch_rows.reset();
  EXPECT_EQ(this->Change(c).code(), StatusCode::kAborted);

  s = WaitForWrite([&](WriteDone done) {
    this->journal_->UpdateBranches(
        {"f-stale",
         TransStatus::kSubmitted,
         {{"01", BranchOp::kAction, BranchStatus::kSucceed}},
         stale},
        std::move(done));
  });
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s;
  s = WaitForWrite([&](WriteDone done) {
    this->journal_->UpdateBranches(
        {"f-stale",
         std::nullopt,
         {{"01", BranchOp::kAction, BranchStatus::kSucceed}},
         stale},
        std::move(done));
  });
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s;

  CronUpdate u;
  u.gid = "f-stale";
  u.expected = TransStatus::kSubmitted;
  u.next_cron_interval = seconds(99);
  u.next_cron_time = this->clock_.Now() + seconds(99);
  u.retry_count = 7;
  u.fence = stale;
  s = this->Touch(u);
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s;

  ASSERT_OK_AND_ASSIGN(const auto after, this->journal_->Find("f-stale"));
  EXPECT_EQ(after.trans.status, TransStatus::kSubmitted);
  EXPECT_EQ(after.trans.owner, "owner-b");
  EXPECT_EQ(after.trans.fence, 1);
  EXPECT_EQ(after.trans.next_cron_time, before.trans.next_cron_time);
  EXPECT_EQ(after.trans.retry_count, 0);
  for (const Branch& b : after.branches)
    EXPECT_EQ(b.status, BranchStatus::kPrepared);

  // The new owner's fence holds; unfenced writes are not checked.
  u.fence = Fence{"owner-b", 1};
  EXPECT_OK(this->Touch(u));
  u.fence.reset();
  EXPECT_OK(this->Touch(u));
  c.from = TransStatus::kSubmitted;
  c.fence = Fence{"owner-b", 1};
  EXPECT_OK(this->Change(c));
  ASSERT_OK_AND_ASSIGN(const auto done, this->journal_->Find("f-stale"));
  EXPECT_EQ(done.trans.status, TransStatus::kSucceed);
  EXPECT_EQ(done.trans.fence, 1);  // the owner wrote: no take-over
}

TYPED_TEST_P(JournalContractTest, AFencedWriteOfAnotherOwnerTakesItOver) {
  GlobalTrans t = this->NewTrans("f-take", TransStatus::kPrepared);
  t.owner = "owner-a";
  ASSERT_OK(this->Save(t, SagaBranches(1)));

  // owner-b decides with the fence it read: it takes the row over.
  StatusChange c;
  c.gid = "f-take";
  c.from = TransStatus::kPrepared;
  c.to = TransStatus::kSubmitted;
  c.fence = Fence{"owner-b", 0};
  ASSERT_OK(this->Change(c));
  ASSERT_OK_AND_ASSIGN(auto stored, this->journal_->Find("f-take"));
  EXPECT_EQ(stored.trans.owner, "owner-b");
  EXPECT_EQ(stored.trans.fence, 1);

  // owner-a's writes with the old fence are refused from then on.
  Status s = WaitForWrite([&](WriteDone done) {
    this->journal_->UpdateBranches(
        {"f-take",
         TransStatus::kSubmitted,
         {{"01", BranchOp::kAction, BranchStatus::kSucceed}},
         Fence{"owner-a", 0}},
        std::move(done));
  });
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s;

  // A take-over by branch results and by a reschedule too.
  ASSERT_OK(WaitForWrite([&](WriteDone done) {
    this->journal_->UpdateBranches(
        {"f-take",
         TransStatus::kSubmitted,
         {{"01", BranchOp::kAction, BranchStatus::kSucceed}},
         Fence{"owner-c", 1}},
        std::move(done));
  }));
  ASSERT_OK_AND_ASSIGN(stored, this->journal_->Find("f-take"));
  EXPECT_EQ(stored.trans.owner, "owner-c");
  EXPECT_EQ(stored.trans.fence, 2);
  EXPECT_EQ(stored.branches[1].status, BranchStatus::kSucceed);

  CronUpdate u;
  u.gid = "f-take";
  u.expected = TransStatus::kSubmitted;
  u.next_cron_interval = seconds(5);
  u.next_cron_time = this->clock_.Now() + seconds(5);
  u.fence = Fence{"owner-d", 2};
  ASSERT_OK(this->Touch(u));
  ASSERT_OK_AND_ASSIGN(stored, this->journal_->Find("f-take"));
  EXPECT_EQ(stored.trans.owner, "owner-d");
  EXPECT_EQ(stored.trans.fence, 3);

  // A take-over whose write does not apply takes nothing over.
  c.from = TransStatus::kAborting;
  c.to = TransStatus::kFailed;
  c.fence = Fence{"owner-e", 3};
  EXPECT_EQ(this->Change(c).code(), StatusCode::kFailedPrecondition);
  u.expected = TransStatus::kAborting;
  u.fence = Fence{"owner-e", 3};
  EXPECT_EQ(this->Touch(u).code(), StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(stored, this->journal_->Find("f-take"));
  EXPECT_EQ(stored.trans.owner, "owner-d");
  EXPECT_EQ(stored.trans.fence, 3);

  // Its owner lets go of it: no owner, the same fence; the next claimer's
  // fence moves on.
  u.expected = TransStatus::kSubmitted;
  u.next_cron_time = this->clock_.Now() - seconds(1);
  u.fence = Fence{"owner-d", 3};
  u.release = true;
  ASSERT_OK(this->Touch(u));
  ASSERT_OK_AND_ASSIGN(stored, this->journal_->Find("f-take"));
  EXPECT_EQ(stored.trans.owner, "");
  EXPECT_EQ(stored.trans.fence, 3);
  ASSERT_OK_AND_ASSIGN(auto claimed, this->ClaimDue("owner-d", seconds(5)));
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].fence, 4);
}

// Two coordinators that read the same fence race to take a transaction
// over, each on its own thread: exactly one write applies, the other is
// refused, whichever order the journal takes them in.
TYPED_TEST_P(JournalContractTest, RacingTakeOversNeverBothApply) {
  ASSERT_OK(this->Save(this->NewTrans("f-race")));
  constexpr int kRounds = 40;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_OK_AND_ASSIGN(auto found, this->journal_->Find("f-race"));
    const int64_t fence = found.trans.fence;
    std::atomic<int> applied{0};
    std::atomic<int> refused{0};
    auto writer = [&](const std::string& me) {
      CronUpdate u;
      u.gid = "f-race";
      u.expected = TransStatus::kSubmitted;
      u.next_cron_interval = seconds(1);
      u.next_cron_time = this->clock_.Now();
      u.fence = Fence{me, fence};
      Status s = this->Touch(u);
      if (s.ok()) ++applied;
      if (s.code() == StatusCode::kAborted) ++refused;
      if (!s.ok() && s.code() != StatusCode::kAborted) ADD_FAILURE() << s;
    };
    const std::string r = std::to_string(round);
    std::thread a(writer, "a-" + r);
    std::thread b(writer, "b-" + r);
    a.join();
    b.join();
    ASSERT_EQ(applied.load(), 1) << "round " << round;
    ASSERT_EQ(refused.load(), 1) << "round " << round;
    ASSERT_OK_AND_ASSIGN(found, this->journal_->Find("f-race"));
    EXPECT_EQ(found.trans.fence, fence + 1);
  }
}

TYPED_TEST_P(JournalContractTest,
             PurgeRemovesOnlyFinishedTransactionsOldEnough) {
  const TimePoint t0 = this->clock_.Now();
  ASSERT_OK(this->Save(this->NewTrans("p-ok"), SagaBranches(2)));
  ASSERT_OK(this->Save(this->NewTrans("p-bad", TransStatus::kAborting),
                       SagaBranches(1)));
  ASSERT_OK(this->Save(this->NewTrans("p-open"), SagaBranches(1)));
  ASSERT_OK(this->Save(
      this->NewTrans("p-tcc", TransStatus::kPrepared, TransType::kTcc)));
  ASSERT_OK(
      this->Change("p-ok", TransStatus::kSubmitted, TransStatus::kSucceed));
  ASSERT_OK(
      this->Change("p-bad", TransStatus::kAborting, TransStatus::kFailed));
  this->clock_.Advance(seconds(10));
  ASSERT_OK(this->Save(this->NewTrans("p-new"), SagaBranches(1)));
  ASSERT_OK(
      this->Change("p-new", TransStatus::kSubmitted, TransStatus::kSucceed));
  this->clock_.Advance(seconds(1));

  PurgeRequest by_finish;
  by_finish.finished_before = t0 + seconds(5);
  ASSERT_OK_AND_ASSIGN(auto r, WaitForPurge(*this->journal_, by_finish));
  EXPECT_EQ(r.removed, 2u);
  EXPECT_EQ(r.scanned, 5u);
  EXPECT_FALSE(r.more);
  EXPECT_THAT(this->journal_->Find("p-ok"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(this->journal_->Find("p-bad"), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto open, this->journal_->Find("p-open"));
  EXPECT_EQ(open.branches.size(), 2u);
  EXPECT_OK(this->journal_->Find("p-tcc"));
  EXPECT_OK(this->journal_->Find("p-new"));
  ASSERT_OK_AND_ASSIGN(auto counts, this->journal_->CountByStatus());
  EXPECT_EQ(counts.by_status, (std::array<int64_t, 5>{1, 1, 0, 1, 0}));

  // A gid removed can be used again, with none of the old branch rows.
  ASSERT_OK(this->Save(this->NewTrans("p-ok")));
  ASSERT_OK_AND_ASSIGN(auto reused, this->journal_->Find("p-ok"));
  EXPECT_TRUE(reused.branches.empty());

  // By creation time: every finished one created before the cutoff, but an
  // unfinished transaction, however old, stays.
  PurgeRequest by_age;
  by_age.created_before = this->clock_.Now() + seconds(1);
  ASSERT_OK_AND_ASSIGN(r, WaitForPurge(*this->journal_, by_age));
  EXPECT_EQ(r.removed, 1u);
  EXPECT_THAT(this->journal_->Find("p-new"), StatusIs(StatusCode::kNotFound));
  EXPECT_OK(this->journal_->Find("p-open"));
  EXPECT_OK(this->journal_->Find("p-tcc"));
  EXPECT_OK(this->journal_->Find("p-ok"));
  ASSERT_OK_AND_ASSIGN(counts, this->journal_->CountByStatus());
  EXPECT_EQ(counts.by_status, (std::array<int64_t, 5>{1, 2, 0, 0, 0}));

  // No rule: nothing goes.
  ASSERT_OK(
      this->Change("p-open", TransStatus::kSubmitted, TransStatus::kSucceed));
  ASSERT_OK_AND_ASSIGN(r, WaitForPurge(*this->journal_, PurgeRequest{}));
  EXPECT_EQ(r.removed, 0u);
  EXPECT_OK(this->journal_->Find("p-open"));
}

TYPED_TEST_P(JournalContractTest, PurgePagesByRowIdAndStopsAtNewRows) {
  for (int i = 0; i < 25; ++i) {
    const std::string gid = "old-" + std::to_string(i);
    ASSERT_OK(this->Save(this->NewTrans(gid), SagaBranches(1)));
    if (i % 5 != 0) {
      ASSERT_OK(
          this->Change(gid, TransStatus::kSubmitted, TransStatus::kSucceed));
    }
  }
  this->clock_.Advance(seconds(60));
  const TimePoint cutoff = this->clock_.Now();
  for (int i = 0; i < 25; ++i) {
    const std::string gid = "young-" + std::to_string(i);
    ASSERT_OK(this->Save(this->NewTrans(gid)));
    ASSERT_OK(
        this->Change(gid, TransStatus::kSubmitted, TransStatus::kSucceed));
  }
  PurgeRequest step;
  step.finished_before = cutoff;
  step.scan_limit = 10;
  std::size_t removed = 0;
  int steps = 0;
  for (;; ++steps) {
    ASSERT_LT(steps, 10);
    ASSERT_OK_AND_ASSIGN(auto r, WaitForPurge(*this->journal_, step));
    EXPECT_LE(r.scanned, 10u);
    EXPECT_GE(r.next_after_id, step.after_id);
    removed += r.removed;
    if (!r.more) break;
    step.after_id = r.next_after_id;
  }
  // 20 old finished ones in three steps of ten; the third reaches the young
  // rows and so is the last.
  EXPECT_EQ(removed, 20u);
  EXPECT_EQ(steps, 2);
  ASSERT_OK_AND_ASSIGN(auto counts, this->journal_->CountByStatus());
  EXPECT_EQ(counts[TransStatus::kSubmitted], 5);
  EXPECT_EQ(counts[TransStatus::kSucceed], 25);
  for (int i = 0; i < 25; i += 5) {
    EXPECT_OK(this->journal_->Find("old-" + std::to_string(i)));
  }
}

REGISTER_TYPED_TEST_SUITE_P(
    JournalContractTest, SaveNewThenFindRoundTripsEveryField,
    UpdateBranchesNamingARowTwiceAppliesBoth, FindUnknownGidIsNotFound,
    SaveNewOfAnExistingGidWritesNothing,
    SaveNewWithADuplicateBranchWritesNothing,
    AppendBranchesOnlyWhileTheStatusIsExpected,
    AppendBranchesToAMissingGidIsNotFound,
    AppendingADuplicateBranchAppendsNothing, ChangeStatusIsACompareAndSet,
    FinalStatusesStampTheirTimes, UpdateBranchesRecordsResults,
    UpdateBranchesRecordsAttempts, SummarizeCountsUnfinishedAndDue,
    UpdateBranchesIsAllOrNothing, TouchCronReschedulesAndKeepsTheRetryCount,
    MakeDueAppliesOnlyToUnfinishedTransactions,
    ListDuePagesUnfinishedDueTransactionsInDueOrder,
    ListFiltersAndPagesNewestFirst, ListFiltersByGidPrefixWithoutWildcards,
    GidPrefixPagesNewestFirstWithOtherFilters,
    ListUnfinishedOnlyPagesNewestFirst, CountByStatusFollowsEveryChange,
    ClaimLeasesDueTransactions, ConcurrentClaimersNeverShareATransaction,
    ValuesOverTheLimitsWriteNothing, FlushCompletesAfterEarlierWrites,
    ManyThreadsWritingLoseAndDuplicateNothing, ClosedJournalRefusesWork,
    CompletionsWithAnExecutorRunThroughIt, CompletionsWithoutAnExecutorStillRun,
    CloseHandsEveryCompletionToItsExecutor,
    ClaimMovesTheFenceOnlyWhenTheOwnerChanges,
    StaleFencedWritesAreRefusedAndWriteNothing,
    AFencedWriteOfAnotherOwnerTakesItOver, RacingTakeOversNeverBothApply,
    PurgeRemovesOnlyFinishedTransactionsOldEnough,
    PurgePagesByRowIdAndStopsAtNewRows);

}  // namespace dtx::testing

#endif  // DTX_TESTS_STORAGE_JOURNAL_CONTRACT_TEST_H_
