// An account-transfer branch service with its ledger in SQLite, made safe by
// the branch barrier: the `trans` service (api.trans.v1.Trans) for TCC and
// SAGA transactions.
//
// Table user_account(user_id, balance, trading_balance); trading_balance
// holds money on its way, so that a balance is never spent twice. TCC:
//   TransOut  try: balance -= amount, trading += amount (if balance >= amount)
//             confirm: trading_balance -= amount
//             cancel: balance += amount, trading_balance -= amount
//   TransIn   try: trading_balance += amount
//             confirm: balance += amount, trading_balance -= amount
//             cancel: trading_balance -= amount
// SAGA, workflow (and a two-phase message's steps) move the balance directly:
//   TransOut  action: balance -= amount (if balance >= amount); revert: +=
//   TransIn   action: balance += amount (FAILURE for a user with no
//             account); revert: -=
// Every handler runs under SqliteBarrier, so duplicates, null compensations
// and hanging calls leave the ledger right. Insufficient balance answers
// ABORTED (dtm's FAILURE).
//
// Thread safety: the service is thread-safe; each call opens its own
// connection to the ledger file.

#ifndef DTX_EXAMPLES_ACCOUNT_ACCOUNT_SERVICE_H_
#define DTX_EXAMPLES_ACCOUNT_ACCOUNT_SERVICE_H_

#include "dtx/status.h"

#include "api/trans/v1/trans.grpc.pb.h"

#include <cstdint>
#include <map>
#include <string>

namespace dtx::examples {

class AccountService final : public api::trans::v1::Trans::Service {
 public:
  // The ledger lives in `path`; created with `users` accounts of
  // `initial_balance` each when new.
  explicit AccountService(std::string path) : path_(std::move(path)) {}
  Status Init(int users, int64_t initial_balance);

  // user_id -> {balance, trading_balance}
  std::map<int64_t, std::pair<int64_t, int64_t>> Balances() const;

  using AdjustInfo = api::trans::v1::AdjustInfo;
  using Response = api::trans::v1::Response;
  grpc::Status TransIn(grpc::ServerContext* c, const AdjustInfo* r,
                       Response*) override;
  grpc::Status TransInConfirm(grpc::ServerContext* c, const AdjustInfo* r,
                              Response*) override;
  grpc::Status TransInCancel(grpc::ServerContext* c, const AdjustInfo* r,
                             Response*) override;
  grpc::Status TransInRevert(grpc::ServerContext* c, const AdjustInfo* r,
                             Response*) override;
  grpc::Status TransOut(grpc::ServerContext* c, const AdjustInfo* r,
                        Response*) override;
  grpc::Status TransOutConfirm(grpc::ServerContext* c, const AdjustInfo* r,
                               Response*) override;
  grpc::Status TransOutCancel(grpc::ServerContext* c, const AdjustInfo* r,
                              Response*) override;
  grpc::Status TransOutRevert(grpc::ServerContext* c, const AdjustInfo* r,
                              Response*) override;
  grpc::Status QueryPrepared(grpc::ServerContext* c, const AdjustInfo* r,
                             Response*) override;

 private:
  // Runs `sql` (with ?1 = amount, ?2 = user) under the call's barrier; when
  // `must_change` and no row changed, answers FAILURE.
  grpc::Status Apply(grpc::ServerContext* ctx, const AdjustInfo* req,
                     const char* sql, bool must_change);

  std::string path_;
};

}  // namespace dtx::examples

#endif  // DTX_EXAMPLES_ACCOUNT_ACCOUNT_SERVICE_H_
