// LedgerService: a gRPC branch service on 127.0.0.1 (ephemeral port) for
// failover tests. Its branches move amounts between accounts of an SQLite
// ledger, each under SqliteBarrier (so a repeated, late or out-of-order call
// has its effect at most once), and it logs every call it receives with who
// made it and when, so that a test can check afterwards that two
// coordinators never worked on one transaction at the same moment.
//
// Methods of service dtx.test.Ledger (any payload of the form
// "<account> <amount>[ <flags>]", flags a string of letters):
//   Move         SAGA action, MSG step: balance += amount
//   MoveRevert   SAGA compensation:     balance -= amount
//   Try          TCC try: records the reservation, no balance change
//   Confirm      TCC confirm:           balance += amount
//   Cancel       TCC cancel: records the release, no balance change
//   QueryPrepared  a MSG check-back (SqliteBarrier::QueryPrepared)
// Flag F makes Move and Try answer ABORTED (dtm's FAILURE) without an
// effect; flag T makes the first call of each (gid, branch, op) other than a
// try answer UNAVAILABLE (a transient error, retried by the coordinator)
// before it touches the ledger. Every call waits a pseudo-random 10-150 ms
// (by gid, branch and op) before it applies, so that a test always finds
// calls in flight; with flag S, 600 ms (a slow branch: a pass over two of
// them outlasts a one-second retry interval, yet each call stays within a
// one-second request timeout).
//
// Every effect that applied is a row of table `effect` (gid, branch_id, op,
// account, amount), written in the same local transaction as the barrier
// rows and the balance: a branch whose effect applied twice shows two rows.
//
// Who called: each dtx-server process calls from connections of its own, so
// the service takes the peer address of the call (127.0.0.1:<port>), finds
// the socket's inode in /proc/net/tcp and the process holding it in
// /proc/<pid>/fd, and logs the name the test gave that process
// (NameCaller), "self" for this process (the test's own TCC tries and MSG
// local transactions) or "pid:<n>" / "peer:<address>" when it cannot tell.
// dtm's metadata has no field naming the calling coordinator (dtm-dtm is
// empty in calls a coordinator makes), so the connection is the one honest
// witness; a Linux-only test helper may read /proc.
//
// Calls are served by a pool of worker threads (gRPC's callback threads
// never block on SQLite or the delay).
//
// Thread safety: thread-safe.

#ifndef DTX_TESTS_TESTING_LEDGER_SERVICE_H_
#define DTX_TESTS_TESTING_LEDGER_SERVICE_H_

#include "dtx/result.h"
#include "dtx/status.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

namespace dtx {
class Msg;
}  // namespace dtx

namespace dtx::testing {

struct LedgerCall {
  std::string method;  // "Move", "Try", ...
  std::string gid;
  std::string branch_id;
  std::string op;      // dtm-op: action, compensate, try, confirm, cancel, msg
  std::string caller;  // see the file comment
  std::chrono::system_clock::time_point start;  // the request arrived
  std::chrono::system_clock::time_point end;    // the answer was sent
  int code = 0;                                 // the gRPC code answered
};

struct LedgerEffect {
  std::string gid;
  std::string branch_id;
  std::string op;
  int64_t account = 0;
  int64_t amount = 0;
};

class LedgerService {
 public:
  // The ledger in `path` (created), with `accounts` accounts 1..accounts of
  // `initial_balance` each.
  // On `port` of 127.0.0.1 (0: an ephemeral one). A ledger already in
  // `path` (a restarted service) is used as it is. Without
  // `identify_callers`, calls are logged with an empty caller (finding the
  // calling process scans /proc for every call).
  static Result<std::unique_ptr<LedgerService>> Start(
      const std::string& path, int accounts, int64_t initial_balance,
      int port = 0, bool identify_callers = true);
  // Stops serving and joins the workers.
  ~LedgerService();
  LedgerService(const LedgerService&) = delete;
  LedgerService& operator=(const LedgerService&) = delete;

  // "127.0.0.1:<port>/dtx.test.Ledger/<method>", a branch URL.
  std::string Url(const std::string& method) const;

  // Runs `hook` for every call once its effect (if any) is committed and
  // before it is answered, on a worker thread: a crash test kills the caller
  // there, so that the call took effect but its caller never learns it.
  void SetBeforeAnswer(std::function<void(const LedgerCall&)> hook);

  // Calls from process `pid` are logged as `name`.
  void NameCaller(pid_t pid, const std::string& name);

  // Msg::DoAndSubmit with the MSG's local transaction in this ledger
  // (balance of `account` += amount, effect (gid, "00", "msg")) under the
  // barrier, and QueryPrepared of this service as its check-back.
  Status SubmitMsg(Msg& msg, int64_t account, int64_t amount);

  std::vector<LedgerCall> Calls() const;
  Result<std::vector<LedgerEffect>> Effects() const;
  // The sum of all balances.
  Result<int64_t> Total() const;

 private:
  struct Impl;
  explicit LedgerService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_LEDGER_SERVICE_H_
