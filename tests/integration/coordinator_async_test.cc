// The callback forms of the coordinator's API: they return before anything
// waits, every callback runs exactly once, and Shutdown answers the callbacks
// still waiting.

#include "coordinator_test_util.h"

#include <future>
#include <mutex>
#include <pthread.h>
#include <thread>

namespace dtx::testing {
namespace {

class CoordinatorAsyncTest : public CoordinatorTest {
 protected:
  // `method` answers OK once the test releases it; `reached` is set when the
  // first call arrives.
  void HoldBranch(const std::string& method) {
    auto release = release_.get_future().share();
    auto reached = std::make_shared<std::promise<void>>();
    reached_ = reached->get_future();
    auto first = std::make_shared<std::atomic<bool>>(true);
    busi_->SetHandler(method, [release, reached, first](const ReceivedCall&) {
      if (first->exchange(false)) reached->set_value();
      release.wait();
      return TestReply::Ok();
    });
  }
  void TearDown() override {
    if (!released_) release_.set_value();
    CoordinatorTest::TearDown();
  }
  void Release() {
    released_ = true;
    release_.set_value();
  }

  TransRequest SagaRequest(const std::string& gid, const std::string& url) {
    TransRequest req;
    req.gid = gid;
    req.trans_type = TransType::kSaga;
    req.options.wait_result = true;
    req.steps = {{url, ""}};
    req.payloads = {"p"};
    return req;
  }

  std::promise<void> release_;
  bool released_ = false;
  std::future<void> reached_;
};

TEST_F(CoordinatorAsyncTest, SubmitAsyncReturnsBeforeTheBranchAnswers) {
  HoldBranch("/busi.Busi/Slow");
  std::promise<Status> answered;
  dtm_->SubmitAsync(SagaRequest("async-slow", Url("/busi.Busi/Slow")),
                    [&](Status s) { answered.set_value(std::move(s)); });
  // Returned, and the branch was reached: the callback is still waiting.
  reached_.wait();
  auto answer = answered.get_future();
  EXPECT_EQ(answer.wait_for(std::chrono::seconds(0)),
            std::future_status::timeout);
  // Unrelated requests go on meanwhile, on the same io thread.
  EXPECT_OK(dtm_->NewGid());
  EXPECT_OK(
      Saga(*dtm_, "async-fast").Add("", "", "").WaitResult(true).Submit());
  EXPECT_EQ(Global("async-fast").status, TransStatus::kSucceed);
  Release();
  EXPECT_OK(answer.get());
  EXPECT_EQ(Global("async-slow").status, TransStatus::kSucceed);
}

TEST_F(CoordinatorAsyncTest, EveryCallbackRunsOnceEvenForRefusedRequests) {
  std::atomic<int> calls{0};
  Status last;
  auto count = [&](Status s) {
    last = std::move(s);
    ++calls;
  };
  TransRequest bad = SagaRequest("", "");  // no gid
  dtm_->SubmitAsync(bad, count);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_THAT(last, StatusIs(StatusCode::kInvalidArgument));
  TransRequest xa = SagaRequest("async-xa", "");
  xa.trans_type = TransType::kXa;
  dtm_->PrepareAsync(xa, count);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_THAT(last, StatusIs(StatusCode::kUnimplemented));

  std::promise<Result<TransWithBranches>> found;
  dtm_->QueryAsync("async-unknown", [&](Result<TransWithBranches> r) {
    found.set_value(std::move(r));
  });
  EXPECT_THAT(found.get_future().get().status(),
              StatusIs(StatusCode::kNotFound));
}

TEST_F(CoordinatorAsyncTest, ShutdownAnswersTheCallbacksStillWaiting) {
  HoldBranch("/busi.Busi/Hang");
  std::atomic<int> calls{0};
  std::promise<Status> answered;
  dtm_->SubmitAsync(SagaRequest("async-hang", Url("/busi.Busi/Hang")),
                    [&](Status s) {
                      ++calls;
                      answered.set_value(std::move(s));
                    });
  reached_.wait();
  dtm_->Shutdown();
  // Answered by the time Shutdown returned, exactly once, and not as a
  // success: the saga is still submitted in the journal.
  auto answer = answered.get_future();
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(0)),
            std::future_status::ready);
  const Status s = answer.get();
  EXPECT_FALSE(s.ok()) << s;
  EXPECT_TRUE(s.code() == StatusCode::kUnavailable ||
              s.code() == StatusCode::kFailedPrecondition)
      << s;
  EXPECT_EQ(calls.load(), 1);
  // After Shutdown, a request is answered at once.
  std::promise<Status> late;
  dtm_->SubmitAsync(SagaRequest("async-late", ""),
                    [&](Status st) { late.set_value(std::move(st)); });
  EXPECT_THAT(late.get_future().get(), StatusIs(StatusCode::kUnavailable));
  Release();
  EXPECT_EQ(calls.load(), 1);
}

// Review finding: a check-back that answers after an Abort decided must not
// deliver the failed message.
TEST_F(CoordinatorAsyncTest, ACheckBackAnsweringAfterAnAbortDeliversNothing) {
  HoldBranch("/busi.Busi/QueryPrepared");
  TransRequest req;
  req.gid = "async-msg-abort";
  req.trans_type = TransType::kMsg;
  req.steps = {{Url("/busi.Busi/Deliver"), ""}};
  req.payloads = {"p"};
  req.query_prepared = Url("/busi.Busi/QueryPrepared");
  req.options.timeout_to_fail = std::chrono::seconds(5);
  ASSERT_OK(dtm_->Prepare(req));
  clock_.Advance(std::chrono::seconds(6));
  std::thread due([&] { EXPECT_OK(dtm_->RunDue()); });
  reached_.wait();  // the check-back is on the wire
  ASSERT_OK(dtm_->Abort(req));
  Release();  // it answers SUCCESS now
  due.join();
  dtm_->WaitIdle();
  EXPECT_EQ(Global(req.gid).status, TransStatus::kFailed);
  EXPECT_TRUE(Seen("/busi.Busi/Deliver").empty());
}

// Review finding: calls cut short by Shutdown are not branch answers: they
// spend no RetryLimit budget and roll nothing back.
TEST_F(CoordinatorAsyncTest, ShutdownSpendsNoRetryBudget) {
  HoldBranch("/busi.Busi/Held");
  TransRequest req = SagaRequest("async-budget", Url("/busi.Busi/Held"));
  req.options.wait_result = false;
  req.options.retry_limit = 1;
  ASSERT_OK(dtm_->Submit(req));
  reached_.wait();
  dtm_->Shutdown();
  Release();
  Open();
  const GlobalTrans t = Global(req.gid);
  EXPECT_EQ(t.status, TransStatus::kSubmitted);
  EXPECT_EQ(t.retry_count, 0);
  busi_->SetHandler("/busi.Busi/Held",
                    [](const ReceivedCall&) { return TestReply::Ok(); });
  Settle();
  EXPECT_EQ(Global(req.gid).status, TransStatus::kSucceed);
}

// Names the thread each branch call starts on, then makes the call.
class ThreadRecordingClient final : public BranchClient {
 public:
  explicit ThreadRecordingClient(std::unique_ptr<BranchClient> inner)
      : inner_(std::move(inner)) {}
  void Call(BranchRequest request, Executor executor, Callback done) override {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads_.emplace_back(name);
    }
    inner_->Call(std::move(request), std::move(executor), std::move(done));
  }
  Status ValidateUrl(std::string_view url, std::string_view protocol) override {
    return inner_->ValidateUrl(url, protocol);
  }
  void Shutdown() override { inner_->Shutdown(); }
  std::vector<std::string> threads() {
    std::lock_guard<std::mutex> lock(mu_);
    return threads_;
  }

 private:
  const std::unique_ptr<BranchClient> inner_;
  std::mutex mu_;
  std::vector<std::string> threads_;
};

// Where a saga goes on once a journal writer that had a batch of writes
// (InlineOffer::kBusy) made it durable: with one io thread, on the writer
// itself (that io thread runs every strand one at a time, so handing it the
// work buys only a hop); with several, on the io threads, which leave the
// writer free for its next commit (trans_runtime.cc, TransRuntime::executor).
class BusyWriterTest : public CoordinatorTest,
                       public ::testing::WithParamInterface<std::size_t> {
 protected:
  void SetUp() override {
    busi_ = BranchTestServer::Start();
    options_.io_threads = GetParam();
    wrap_journal_ = [this](std::unique_ptr<Journal> j) {
      journal_ = j.get();
      return j;
    };
    wrap_client_ = [this](std::unique_ptr<BranchClient> inner) {
      auto recording =
          std::make_unique<ThreadRecordingClient>(std::move(inner));
      client_ = recording.get();
      return std::unique_ptr<BranchClient>(std::move(recording));
    };
    Open();
  }

  Journal* journal_ = nullptr;
  ThreadRecordingClient* client_ = nullptr;
};

TEST_P(BusyWriterTest, SagasOfABatchGoOnOnTheWriterOnlyWithOneIoThread) {
  // Hold the writer in a lone write's completion, so that the sagas' writes
  // queue behind it and are committed as one batch.
  std::promise<void> holding, release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<Status> hold_done;
  GlobalTrans hold;
  hold.gid = "busy-hold";
  hold.trans_type = TransType::kSaga;
  hold.status = TransStatus::kSucceed;
  hold.create_time = clock_.Now();
  hold.next_cron_time = clock_.Now() + std::chrono::hours(1);
  journal_->SaveNew(hold, {},
                    WriteDone(
                        [&](std::function<void()> fn) {
                          holding.set_value();
                          released.wait();
                          fn();
                        },
                        [&](Status s) { hold_done.set_value(std::move(s)); }));
  holding.get_future().wait();

  constexpr int kSagas = 8;
  std::vector<std::promise<Status>> submitted(kSagas);
  for (int i = 0; i < kSagas; ++i) {
    TransRequest req;
    req.gid = "busy-" + std::to_string(i);
    req.trans_type = TransType::kSaga;
    req.steps = {{Url("/busi.Busi/Ok"), ""}};
    req.payloads = {"p"};
    // SubmitAsync queues the saga's write before it returns.
    dtm_->SubmitAsync(req, [&submitted, i](Status s) {
      submitted[static_cast<std::size_t>(i)].set_value(std::move(s));
    });
  }
  release.set_value();
  EXPECT_OK(hold_done.get_future().get());
  for (auto& s : submitted) EXPECT_OK(s.get_future().get());
  dtm_->WaitIdle();
  for (int i = 0; i < kSagas; ++i) {
    EXPECT_EQ(Global("busy-" + std::to_string(i)).status,
              TransStatus::kSucceed);
  }
  const char* expected = GetParam() == 1 ? "dtx-journal" : "dtx-io";
  EXPECT_THAT(client_->threads(), ::testing::Each(std::string(expected)));
  EXPECT_EQ(client_->threads().size(), static_cast<std::size_t>(kSagas));
}

INSTANTIATE_TEST_SUITE_P(IoThreads, BusyWriterTest, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<std::size_t>& p) {
                           return p.param == 1 ? "OneIoThread" : "TwoIoThreads";
                         });

}  // namespace
}  // namespace dtx::testing
