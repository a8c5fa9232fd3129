// BranchBarrier: dtm's barrier rules (dtm-semantics.md §4), once for every
// database. A database's barrier supplies a BarrierStore; nothing here knows
// SQL.

#include "dtx/barrier.h"

#include "dtx/dtm_api.h"
#include "dtx/limits.h"

namespace dtx {

BarrierStore::~BarrierStore() = default;

Result<BranchBarrier> BranchBarrier::FromTransInfo(const TransInfo& info) {
  DTX_RETURN_IF_ERROR(ValidateGid(info.gid).WithPrefix("barrier"));
  DTX_RETURN_IF_ERROR(ValidateBranchId(info.branch_id).WithPrefix("barrier"));
  return BranchBarrier(info);
}

std::string BranchBarrier::NextBarrierId() {
  ++next_id_;
  // dtm's fmt.Sprintf("%02d", id). Appending to the padding, rather than
  // `"0" + std::to_string(id)` (an insert at the front), also keeps GCC 12 at
  // -O3 from a -Wrestrict false positive inside basic_string.
  std::string id(next_id_ < 10 ? 1 : 0, '0');
  id += std::to_string(next_id_);
  return id;
}

std::optional<BranchOp> BranchBarrier::OriginOp(BranchOp op) {
  switch (op) {
    case BranchOp::kCancel:
      return BranchOp::kTry;
    case BranchOp::kCompensate:
    case BranchOp::kRollback:
      return BranchOp::kAction;
    default:
      return std::nullopt;
  }
}

BranchBarrier::Decision BranchBarrier::Decide(BranchOp op, bool origin_inserted,
                                              bool current_inserted) {
  if (op == BranchOp::kMsg && !current_inserted) return Decision::kDuplicated;
  const bool compensating = OriginOp(op).has_value();
  // Null compensation: the forward op never ran (its row is ours now).
  if (compensating && origin_inserted) return Decision::kSkip;
  // Duplicate, or hanging (the compensation inserted our row first).
  if (!current_inserted) return Decision::kSkip;
  return Decision::kRun;
}

Status BranchBarrier::Run(BarrierStore& store,
                          const std::function<Status()>& business) {
  DTX_RETURN_IF_ERROR(store.Begin());
  auto commit = [&]() -> Status {
    Status s = store.Commit();
    if (!s.ok()) store.Rollback();
    return s;
  };
  BarrierRow row{info_.trans_type, info_.gid,
                 info_.branch_id,  info_.op,
                 NextBarrierId(),  std::string(ToString(info_.op))};
  bool origin_inserted = false;
  if (auto origin = OriginOp(info_.op)) {
    BarrierRow origin_row = row;
    origin_row.op = *origin;
    Result<bool> inserted = store.InsertIfAbsent(origin_row);
    if (!inserted.ok()) {
      store.Rollback();
      return inserted.status();
    }
    origin_inserted = *inserted;
  }
  Result<bool> current_inserted = store.InsertIfAbsent(row);
  if (!current_inserted.ok()) {
    store.Rollback();
    return current_inserted.status();
  }
  switch (Decide(info_.op, origin_inserted, *current_inserted)) {
    case Decision::kDuplicated:
      store.Rollback();
      return AbortedError(
          "barrier: gid " + info_.gid +
          ": DUPLICATED (the check-back already failed this message)");
    case Decision::kSkip:
      // Keep the rows: a null compensation must block its late forward op.
      return commit();
    case Decision::kRun:
      break;
  }
  Status s = business();
  if (!s.ok()) {
    store.Rollback();
    return s;
  }
  return commit();
}

Status BranchBarrier::QueryPrepared(BarrierStore& store) const {
  const BarrierRow row{TransType::kMsg, info_.gid, "00",
                       BranchOp::kMsg,  "01",      kBarrierRollbackReason};
  // If the local transaction has not committed, this row makes sure it never
  // will: its own insert of the same row will find it.
  DTX_ASSIGN_OR_RETURN(bool inserted, store.InsertIfAbsent(row));
  (void)inserted;
  DTX_ASSIGN_OR_RETURN(std::string reason, store.ReadReason(row));
  if (reason == kBarrierRollbackReason) {
    return AbortedError("barrier: gid " + info_.gid +
                        ": the local transaction did not commit");
  }
  return Status::Ok();
}

BarrierPruneStore::~BarrierPruneStore() = default;

Result<BarrierPruneResult> PruneBarriers(BarrierPruneStore& store,
                                         const BarrierPruneOptions& options,
                                         TimePoint now) {
  if (!options.finished) {
    return InvalidArgumentError(
        "barrier prune: options.finished is not set (FinishedAt(dtm) asks a "
        "coordinator)");
  }
  if (options.min_age.count() < 0) {
    return InvalidArgumentError("barrier prune: min_age is negative");
  }
  const TimePoint before = now - options.min_age;
  const std::size_t page = options.page == 0 ? 1 : options.page;
  BarrierPruneResult out;
  std::string after;
  for (;;) {
    DTX_ASSIGN_OR_RETURN(std::vector<std::string> gids,
                         store.OldGids(after, before, page));
    std::vector<std::string> done;
    for (const std::string& gid : gids) {
      ++out.checked;
      DTX_ASSIGN_OR_RETURN(bool finished, options.finished(gid));
      if (finished) done.push_back(gid);
    }
    if (!done.empty()) {
      DTX_ASSIGN_OR_RETURN(std::size_t rows, store.Remove(done, before));
      out.pruned += done.size();
      out.rows += rows;
    }
    if (gids.size() < page) return out;
    after = gids.back();
  }
}

std::function<Result<bool>(const std::string&)> FinishedAt(DtmApi& dtm) {
  return [&dtm](const std::string& gid) -> Result<bool> {
    Result<TransWithBranches> t = dtm.Query(gid);
    if (t.ok()) return IsFinished(t->trans.status);
    if (t.status().code() == StatusCode::kNotFound) return true;
    return Status(t.status().code(),
                  "barrier prune: asking the coordinator "
                  "about " +
                      gid + ": " + t.status().message());
  };
}

}  // namespace dtx
