// A transaction can be followed through the coordinator's log by its gid
// alone: every line about a transaction names it as gid=<gid>, and the lines
// of one gid tell its story in order (issue #4, "Done when").

#include "coordinator_test_util.h"
#include "recording_logger.h"

#include <gmock/gmock.h>

#include <regex>
#include <string>
#include <vector>

namespace dtx::testing {
namespace {

using std::chrono::seconds;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

class LogTrailTest : public CoordinatorTest {
 protected:
  void SetUp() override {
    recorder_ = std::make_shared<RecordingLogger>();
    logger_ = recorder_;
    CoordinatorTest::SetUp();
  }

  // What `grep gid=<gid>` would show.
  std::vector<std::string> Trail(const std::string& gid) const {
    std::vector<std::string> out;
    for (const std::string& line : recorder_->Lines()) {
      if (line.find("gid=" + gid + " ") != std::string::npos ||
          line.find("gid=" + gid + ":") != std::string::npos) {
        out.push_back(line);
      }
    }
    return out;
  }

  // Lines that are about some transaction but do not say which.
  std::vector<std::string> Anonymous() const {
    std::vector<std::string> out;
    for (const std::string& line : recorder_->Lines()) {
      const bool process_wide =
          line.find(" journal: ") != std::string::npos ||
          line.find(" coordinator: ") != std::string::npos ||
          line.find(" scheduler: ") != std::string::npos;
      if (!process_wide && line.find("gid=") == std::string::npos)
        out.push_back(line);
    }
    return out;
  }

  // `trail` has lines matching each of `patterns`, in this order.
  static void ExpectInOrder(const std::vector<std::string>& trail,
                            const std::vector<std::string>& patterns) {
    std::size_t at = 0;
    for (const std::string& pattern : patterns) {
      const std::regex re(pattern);
      while (at < trail.size() && !std::regex_search(trail[at], re)) ++at;
      ASSERT_LT(at, trail.size())
          << "no line matching '" << pattern << "' in order in:\n"
          << ::testing::PrintToString(trail);
      ++at;
    }
  }

  std::shared_ptr<RecordingLogger> recorder_;
};

TEST_F(LogTrailTest, ASagaThatRetriesThenRollsBack) {
  Script("/busi.Busi/TransOut", {Error(), Ok()});
  Script("/busi.Busi/TransIn", {Failure()});
  // Another transaction at the same time, whose lines must not mix in.
  ASSERT_OK(Saga(*dtm_, "other").Add("", "", "").WaitResult(true).Submit());
  ASSERT_OK(
      Saga(*dtm_, "trail-saga")
          .Add(Url("/busi.Busi/TransOut"), Url("/busi.Busi/TransOutRevert"),
               "out")
          .Add(Url("/busi.Busi/TransIn"), Url("/busi.Busi/TransInRevert"), "in")
          .Submit());
  dtm_->WaitIdle();
  Settle(seconds(30));
  ASSERT_EQ(Global("trail-saga").status, TransStatus::kFailed);

  ExpectInOrder(
      Trail("trail-saga"),
      {"saga submitted with 2 step", "branch=01 op=action calling .*TransOut",
       "branch=01 op=action .*busi unavailable.*will retry",
       "waiting until next retry", "branch=01 op=action calling .*TransOut",
       "branch=01 op=action succeeded", "branch=02 op=action calling .*TransIn",
       "branch=02 op=action returned FAILURE",
       "saga submitted -> aborting reason: .*return failed",
       "branch=02 op=compensate calling .*TransInRevert",
       "branch=02 op=compensate succeeded",
       "branch=01 op=compensate calling .*TransOutRevert",
       "branch=01 op=compensate succeeded", "saga aborting -> failed"});
  for (const std::string& line : Trail("trail-saga"))
    EXPECT_THAT(line, ::testing::Not(HasSubstr("gid=other"))) << line;
  EXPECT_THAT(Anonymous(), ::testing::IsEmpty());
}

TEST_F(LogTrailTest, StartupSaysWhatItResumes) {
  EXPECT_THAT(recorder_->Text(),
              HasSubstr("coordinator: no unfinished transaction"));
  Script("/busi.Busi/TransOut", {Error()});
  ASSERT_OK(
      Saga(*dtm_, "stuck-1").Add(Url("/busi.Busi/TransOut"), "", "").Submit());
  ASSERT_OK(
      Saga(*dtm_, "stuck-2").Add(Url("/busi.Busi/TransOut"), "", "").Submit());
  dtm_->WaitIdle();
  clock_.Advance(seconds(25));  // past their first back-off (20 s)
  Reopen();
  EXPECT_THAT(recorder_->Text(),
              HasSubstr("coordinator: 2 unfinished transaction(s) in the "
                        "journal, 2 due now and resumed at once, the rest "
                        "when due (oldest created 25 s ago)"));
}

TEST_F(LogTrailTest, ATccFromPrepareToConfirm) {
  TransOptions o;
  o.wait_result = true;
  ASSERT_OK(TccGlobalTransaction(*dtm_, "trail-tcc", o, [&](Tcc& tcc) {
    return tcc.CallBranch("p", Url("/busi.Busi/TransOutTry"),
                          Url("/busi.Busi/TransOutConfirm"),
                          Url("/busi.Busi/TransOutCancel"));
  }));
  ExpectInOrder(
      Trail("trail-tcc"),
      {"tcc prepared", "branch=01 registered", "tcc prepared -> submitted",
       "branch=01 op=confirm calling .*TransOutConfirm",
       "branch=01 op=confirm succeeded", "tcc submitted -> succeed"});
  EXPECT_THAT(Anonymous(), ::testing::IsEmpty());
}

TEST_F(LogTrailTest, AMessageCheckedBackAfterACrash) {
  TransRequest req;
  req.gid = "trail-msg";
  req.trans_type = TransType::kMsg;
  req.query_prepared = Url("/busi.Busi/QueryPrepared");
  req.steps = {{Url("/busi.Busi/TransIn"), ""}};
  req.payloads = {"in"};
  ASSERT_OK(dtm_->Prepare(req));
  Reopen();  // the process that prepared it is gone
  Settle(seconds(30));
  ASSERT_EQ(Global("trail-msg").status, TransStatus::kSucceed);
  ExpectInOrder(
      Trail("trail-msg"),
      {"msg prepared", "checking back .*QueryPrepared",
       "msg prepared -> submitted", "branch=01 op=action calling .*TransIn",
       "branch=01 op=action succeeded", "msg submitted -> succeed"});
  EXPECT_THAT(Anonymous(), ::testing::IsEmpty());
}

// Issue 19 item 7: a transaction that goes well writes nothing above debug
// (two info lines per saga filled a log at thousands a second); a rollback
// is still told at info. Coordinator::Decisions counts what was decided,
// for a host's periodic summary.
TEST_F(LogTrailTest, ASucceededSagaLogsOnlyAtDebugAndIsCounted) {
  const StatusCounts before = dtm_->Decisions();
  ASSERT_OK(Saga(*dtm_, "quiet")
                .Add(Url("/busi.Busi/TransOut"),
                     Url("/busi.Busi/TransOutRevert"), "out")
                .WaitResult(true)
                .Submit());
  Script("/busi.Busi/TransIn", {Failure()});
  EXPECT_THAT(
      Saga(*dtm_, "loud")
          .Add(Url("/busi.Busi/TransIn"), Url("/busi.Busi/TransInRevert"), "in")
          .WaitResult(true)
          .Submit(),
      StatusIs(StatusCode::kAborted));
  dtm_->WaitIdle();
  EXPECT_THAT(Trail("quiet"), ::testing::Not(::testing::IsEmpty()));
  for (const std::string& line : Trail("quiet"))
    EXPECT_EQ(line.rfind("debug ", 0), 0u) << line;
  std::vector<std::string> loud_info;
  for (const std::string& line : Trail("loud"))
    if (line.rfind("debug ", 0) != 0) loud_info.push_back(line);
  EXPECT_THAT(loud_info,
              ::testing::ElementsAre(HasSubstr("returned FAILURE"),
                                     HasSubstr("submitted -> aborting"),
                                     HasSubstr("aborting -> failed")));
  const StatusCounts after = dtm_->Decisions();
  EXPECT_EQ(after[TransStatus::kSucceed] - before[TransStatus::kSucceed], 1);
  EXPECT_EQ(after[TransStatus::kAborting] - before[TransStatus::kAborting], 1);
  EXPECT_EQ(after[TransStatus::kFailed] - before[TransStatus::kFailed], 1);
}

// Issue 19 item 7: a branch's error text is another program's; logged
// verbatim, a connection string's password reached the log, and newlines and
// ANSI escapes forged lines. Each line that carries it has the password
// masked, control characters escaped and the text cut.
TEST_F(LogTrailTest, ABranchsErrorTextIsSanitisedInEveryLine) {
  const std::string hostile =
      "connect postgres://app:hunter2@db:5432/ledger failed\n"
      "2026-01-01 [dtx] [info] gid=forged saga submitted -> succeed\x1b[2J" +
      std::string(3000, 'z');
  Script("/busi.Busi/TransOut",
         {TestReply::Status(14, hostile), TestReply::Status(10, hostile)});
  ASSERT_OK(Saga(*dtm_, "trail-hostile")
                .Add(Url("/busi.Busi/TransOut"),
                     Url("/busi.Busi/TransOutRevert"), "out")
                .Submit());
  dtm_->WaitIdle();
  Settle(seconds(30));
  ASSERT_EQ(Global("trail-hostile").status, TransStatus::kFailed);
  std::size_t carrying = 0;
  for (const std::string& line : recorder_->Lines()) {
    EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
    EXPECT_LT(line.size(), 1024u) << line;
    if (line.find("postgres://app:***@db:5432") != std::string::npos) {
      ++carrying;
      EXPECT_THAT(line, HasSubstr("failed\\x0a2026-01-01")) << line;
      EXPECT_THAT(line, HasSubstr("bytes cut)")) << line;
    }
  }
  // The retried error, the action's FAILURE and the rollback reason.
  EXPECT_GE(carrying, 3u);
  // The forged line is text inside the real one, not a line of its own.
  for (const std::string& line : Trail("forged")) {
    EXPECT_LT(line.find("gid=trail-hostile"), line.find("gid=forged")) << line;
  }
}

}  // namespace
}  // namespace dtx::testing
