// The check of a journal's lazy-write hold (journal.h, kLazyWriteHold) that
// the SQLite and PostgreSQL tests share: a lazy write that is the writer's
// only work waits for the next write and commits with it; a Flush or Close
// ends the wait at once.

#ifndef DTX_TESTS_STORAGE_LAZY_WRITE_CHECK_H_
#define DTX_TESTS_STORAGE_LAZY_WRITE_CHECK_H_

#include "dtx/journal.h"

#include "status_matchers.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <future>
#include <string>

namespace dtx::testing {

// `j` was opened with a hold of an hour (so that only another write, a
// Flush or Close ends it), with one writer, and holds the submitted
// transactions lazy-a, lazy-b and lazy-c; `next` is a new one. `commits`
// reads the journal's commit count. Closes `j`.
inline void CheckLazyWriteHold(Journal& j,
                               const std::function<uint64_t()>& commits,
                               const GlobalTrans& next) {
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
  const uint64_t before = commits();
  std::promise<Status> a;
  finish("lazy-a", a);
  EXPECT_OK(wait([&](WriteDone d) { j.SaveNew(next, {}, std::move(d)); }));
  EXPECT_OK(a.get_future().get());
  EXPECT_EQ(commits(), before + 1) << "the two shared one commit";

  std::promise<Status> b;
  finish("lazy-b", b);
  EXPECT_OK(wait([&](WriteDone d) { j.Flush(std::move(d)); }));
  EXPECT_OK(b.get_future().get());

  std::promise<Status> c;
  finish("lazy-c", c);
  j.Close();
  EXPECT_OK(c.get_future().get());
}

}  // namespace dtx::testing

#endif  // DTX_TESTS_STORAGE_LAZY_WRITE_CHECK_H_
