// The check of a journal's lazy-write hold (journal.h, kLazyWriteHold) that
// the SQLite and PostgreSQL tests share: a lazy write that is the writer's
// only work waits for the next write and commits with it, another lazy
// write joining the wait; a Flush or Close ends the wait at once.

#ifndef DTX_TESTS_STORAGE_LAZY_WRITE_CHECK_H_
#define DTX_TESTS_STORAGE_LAZY_WRITE_CHECK_H_

#include "dtx/journal.h"

#include "status_matchers.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <string>
#include <thread>

namespace dtx::testing {

// `j` (a SqliteJournal or PostgresJournal) was opened with a hold of an
// hour (so that only another write, a Flush or Close ends it), with one
// writer, and holds the submitted transactions lazy-a, lazy-b, lazy-c and
// lazy-d;
// `next` is a new one. Each lazy write is left alone on the writer (taken
// from its queue, so that it would commit by itself without the hold)
// before whatever ends its wait is sent. Closes `j`.
template <typename J>
void CheckLazyWriteHold(J& j, const GlobalTrans& next) {
  // Until the writer has taken every queued write into its batch.
  auto taken = [&j] {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (j.stats().queued > 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    ASSERT_EQ(j.stats().queued, 0u) << "the writer took nothing in 30 s";
  };
  auto finish = [&j](const std::string& gid, std::promise<Status>& done) {
    StatusChange c;
    c.gid = gid;
    c.from = TransStatus::kSubmitted;
    c.to = TransStatus::kSucceed;
    c.lazy = true;
    j.ChangeStatus(c, [&done](Status s) { done.set_value(std::move(s)); });
  };
  auto wait = [](std::function<void(WriteDone)> write) {
    std::promise<Status> p;
    write([&p](Status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  };
  const uint64_t before = j.stats().commits;
  std::promise<Status> a;
  finish("lazy-a", a);
  taken();
  EXPECT_EQ(j.stats().commits, before) << "lazy-a waits";
  // A second lazy write (a transaction's final status after its last
  // results) joins the wait instead of ending it.
  std::promise<Status> second;
  finish("lazy-d", second);
  taken();
  EXPECT_EQ(j.stats().commits, before) << "lazy-a and lazy-d wait";
  EXPECT_OK(wait([&](WriteDone d) { j.SaveNew(next, {}, std::move(d)); }));
  EXPECT_OK(a.get_future().get());
  EXPECT_OK(second.get_future().get());
  EXPECT_EQ(j.stats().commits, before + 1) << "the three shared one commit";

  std::promise<Status> b;
  finish("lazy-b", b);
  taken();
  EXPECT_OK(wait([&](WriteDone d) { j.Flush(std::move(d)); }));
  EXPECT_OK(b.get_future().get());

  std::promise<Status> c;
  finish("lazy-c", c);
  taken();
  j.Close();
  EXPECT_OK(c.get_future().get());
}

}  // namespace dtx::testing

#endif  // DTX_TESTS_STORAGE_LAZY_WRITE_CHECK_H_
