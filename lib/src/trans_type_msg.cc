// MSG (two-phase message): Prepare records the steps; Submit (or a check-back
// that answers SUCCESS) commits them. A prepared message past its timeout is
// checked back through its QueryPrepared URL (op "msg", branch "00"): SUCCESS
// submits it, FAILURE fails it, anything else asks again later. Once
// submitted, the steps run in order (or concurrently), after the optional
// delay, and are retried until they succeed: a message never rolls back.

#include "coordinator_impl.h"

#include <asio/post.hpp>

namespace dtx {

void Coordinator::Impl::CallCheckBack(const std::shared_ptr<TransRuntime>& rt) {
  rt->checkback_in_flight = true;
  auto on_result = [this, rt](BranchResult r) {
    rt->checkback_in_flight = false;
    if (rt->evicted) return;
    switch (r.outcome) {
      case BranchOutcome::kSuccess:
        Decide(rt, TransStatus::kSubmitted, "");
        return;
      case BranchOutcome::kFailure:
        Decide(rt, TransStatus::kFailed, r.status.message());
        return;
      case BranchOutcome::kOngoing:
        rt->interval = BaseInterval(*rt);
        [[fallthrough]];
      case BranchOutcome::kTransient:
        DTX_LOG(logger, LogLevel::kWarn,
                "gid=" << rt->trans.gid << " check-back " << ToString(r.outcome)
                       << ": " << r.status << "; will ask again");
        rt->checkback_blocked = true;
        NeedRetry(rt, r.outcome == BranchOutcome::kOngoing);
        break;
    }
    Advance(rt);
  };
  if (rt->trans.query_prepared.empty()) {
    Post(rt, [on_result] {
      BranchResult r;
      r.outcome = BranchOutcome::kSuccess;
      on_result(std::move(r));
    });
    return;
  }
  DTX_LOG(logger, LogLevel::kDebug,
          "gid=" << rt->trans.gid << " branch=00 op=msg checking back "
                 << rt->trans.query_prepared);
  BranchRequest req;
  req.url = rt->trans.query_prepared;
  req.info = {rt->trans.gid, TransType::kMsg, "00", BranchOp::kMsg, ""};
  for (const auto& [k, v] : rt->opts.branch_headers)
    req.headers.emplace_back(k, v);
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      rt->opts.request_timeout.count() > 0 ? rt->opts.request_timeout
                                           : options.request_timeout);
  Strand strand = rt->strand;
  client->Call(
      std::move(req),
      [strand](std::function<void()> fn) { asio::post(strand, std::move(fn)); },
      std::move(on_result));
}

void Coordinator::Impl::AdvanceMsg(const std::shared_ptr<TransRuntime>& rt) {
  if (rt->trans.status == TransStatus::kPrepared) {
    if (TimedOut(*rt) && !rt->checkback_in_flight && !rt->checkback_blocked)
      CallCheckBack(rt);
    return;
  }
  if (rt->trans.status != TransStatus::kSubmitted) return;
  if (rt->msg_delay_s > 0) {
    const TimePoint start =
        rt->trans.create_time + std::chrono::seconds(rt->msg_delay_s);
    if (clock->Now() < start) {
      if (!rt->wake_at || start < *rt->wake_at) rt->wake_at = start;
      return;
    }
  }
  bool all_succeeded = true;
  bool any_in_flight = false;
  for (std::size_t i = 0; i < rt->branches.size(); ++i) {
    all_succeeded =
        all_succeeded && rt->branches[i].status == BranchStatus::kSucceed;
    any_in_flight = any_in_flight || rt->in_flight[i];
  }
  if (all_succeeded) {
    Decide(rt, TransStatus::kSucceed, "");
    return;
  }
  for (std::size_t i = 0; i < rt->branches.size(); ++i) {
    if (rt->branches[i].status == BranchStatus::kSucceed || rt->in_flight[i])
      continue;
    if (!rt->opts.concurrent) {
      if (!any_in_flight && !rt->blocked[i]) CallBranch(rt, i);
      return;  // in order: nothing after a step that has not succeeded
    }
    if (!rt->blocked[i]) CallBranch(rt, i);
  }
}

}  // namespace dtx
