// The crash torture's transactions (torture_test.cc, torture_host.cc): a
// random SAGA, TCC or MSG moving an amount between two accounts of the
// ledger service (tests/testing/ledger_service.h), through any DtmApi.
//
//   saga  Move(a, -x) / MoveRevert, then Move(b, +x) / MoveRevert
//   tcc   Try/Confirm/Cancel on a (-x) and on b (+x)
//   msg   two steps, Move(a, -x) and Move(b, +x) (a message, once
//         submitted, is delivered whole, so the money is conserved)
//
// One SAGA or TCC in seven has flag F on its second branch (that branch
// answers FAILURE: the saga compensates, the TCC cancels); one branch in ten
// has flag T (its first call answers UNAVAILABLE, then the coordinator's
// retry applies it).

#ifndef DTX_TESTS_TORTURE_TORTURE_WORKLOAD_H_
#define DTX_TESTS_TORTURE_TORTURE_WORKLOAD_H_

#include "dtx/transaction.h"

#include <cstdint>
#include <random>
#include <string>

namespace dtx::testing {

inline constexpr int kTortureAccounts = 16;
inline constexpr int64_t kTortureBalance = 1000000;

struct TortureTx {
  char kind = 's';     // 's' saga, 't' tcc, 'm' msg
  bool fails = false;  // one branch answers FAILURE
};

// Draws a transaction.
inline TortureTx DrawTortureTx(std::mt19937& rng) {
  TortureTx t;
  const unsigned roll = rng() % 100;
  t.kind = roll < 40 ? 's' : (roll < 75 ? 't' : 'm');
  t.fails = t.kind != 'm' && rng() % 7 == 0;
  return t;
}

// Runs `t` as `gid` through `dtm` against the ledger at `ledger` (host:port).
// OK means acknowledged: a saga or message that succeeded in its first pass
// (WaitResult, which also keeps as many transactions in flight as there are
// callers), a TCC submitted after both tries.
inline Status RunTortureTx(DtmApi& dtm, const std::string& ledger,
                           const std::string& gid, const TortureTx& t,
                           std::mt19937& rng) {
  const std::string url = ledger + "/dtx.test.Ledger/";
  const int64_t a = 1 + static_cast<int64_t>(rng() % kTortureAccounts);
  const int64_t b = 1 + static_cast<int64_t>(rng() % kTortureAccounts);
  const int64_t x = 1 + static_cast<int64_t>(rng() % 100);
  auto flags = [&](bool fail) {
    std::string f;
    if (rng() % 10 == 0) f += "T";
    if (fail) f += "F";
    return f.empty() ? std::string() : " " + f;
  };
  const std::string out =
      std::to_string(a) + " " + std::to_string(-x) + flags(false);
  const std::string in =
      std::to_string(b) + " " + std::to_string(x) + flags(t.fails);
  switch (t.kind) {
    case 's':
      return Saga(dtm, gid)
          .Add(url + "Move", url + "MoveRevert", out)
          .Add(url + "Move", url + "MoveRevert", in)
          .WaitResult(true)
          .Submit();
    case 't':
      return TccGlobalTransaction(dtm, gid, [&](Tcc& tcc) {
        DTX_RETURN_IF_ERROR(
            tcc.CallBranch(out, url + "Try", url + "Confirm", url + "Cancel"));
        return tcc.CallBranch(in, url + "Try", url + "Confirm", url + "Cancel");
      });
    default:
      return Msg(dtm, gid)
          .Add(url + "Move", out)
          .Add(url + "Move", in)
          .WaitResult(true)
          .Submit();
  }
}

}  // namespace dtx::testing

#endif  // DTX_TESTS_TORTURE_TORTURE_WORKLOAD_H_
