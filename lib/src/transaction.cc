#include "dtx/transaction.h"

#include "dtx/branch_client.h"

namespace dtx {
namespace {

// A branch call made by the client itself (TCC try, msg check-back), as a
// Status in dtm's classes.
Status AsStatus(const BranchResult& r) {
  switch (r.outcome) {
    case BranchOutcome::kSuccess:
      return Status::Ok();
    case BranchOutcome::kFailure:
      return r.status.code() == StatusCode::kAborted
                 ? r.status
                 : AbortedError(r.status.message());
    case BranchOutcome::kOngoing:
      return FailedPreconditionError(r.status.message());
    case BranchOutcome::kTransient:
      return r.status.ok() ? UnavailableError("branch call failed") : r.status;
  }
  return UnknownError("branch call");
}

}  // namespace

// Saga.
Saga::Saga(DtmApi& dtm, std::string gid) : dtm_(dtm) {
  request_.gid = std::move(gid);
  request_.trans_type = TransType::kSaga;
}

Saga& Saga::Add(std::string action, std::string compensate,
                std::string payload) {
  request_.steps.push_back({std::move(action), std::move(compensate)});
  request_.payloads.push_back(std::move(payload));
  return *this;
}

Saga& Saga::AddBranchOrder(int step, std::vector<int> prerequisites) {
  orders_[step] = std::move(prerequisites);
  return *this;
}

Saga& Saga::EnableConcurrent() {
  concurrent_ = true;
  return *this;
}

Status Saga::Submit() {
  request_.options = options_;
  if (concurrent_) {
    // dtm's custom data; as in dtm's SDK, orders travel only with concurrency.
    std::string json = "{\"orders\":{";
    bool first = true;
    for (const auto& [step, prereqs] : orders_) {
      json += first ? "" : ",";
      first = false;
      // Appends only: "literal" + std::string inserts at the front, which
      // GCC 12 at -O3 reports as a -Wrestrict false positive.
      json += "\"";
      json += std::to_string(step);
      json += "\":[";
      for (std::size_t i = 0; i < prereqs.size(); ++i) {
        if (i) json += ",";
        json += std::to_string(prereqs[i]);
      }
      json += "]";
    }
    json += "},\"concurrent\":true}";
    request_.custom_data = json;
  }
  return dtm_.Submit(request_);
}

// Msg.
Msg::Msg(DtmApi& dtm, std::string gid) : dtm_(dtm) {
  request_.gid = std::move(gid);
  request_.trans_type = TransType::kMsg;
}

Msg& Msg::Add(std::string action, std::string payload) {
  request_.steps.push_back({std::move(action), ""});
  request_.payloads.push_back(std::move(payload));
  return *this;
}

Msg& Msg::SetDelay(std::chrono::seconds delay) {
  delay_s_ = delay.count();
  return *this;
}

Msg& Msg::EnableConcurrent() {
  options_.concurrent = true;
  return *this;
}

namespace {

// {"delay":5}, by appends (see Saga::Submit).
std::string DelayJson(int64_t delay_s) {
  std::string json = "{\"delay\":";
  json += std::to_string(delay_s);
  json += "}";
  return json;
}

}  // namespace

Status Msg::Prepare(std::string query_prepared) {
  request_.query_prepared = std::move(query_prepared);
  request_.options = options_;
  if (delay_s_ > 0) request_.custom_data = DelayJson(delay_s_);
  return dtm_.Prepare(request_);
}

Status Msg::Submit() {
  request_.options = options_;
  if (delay_s_ > 0) request_.custom_data = DelayJson(delay_s_);
  return dtm_.Submit(request_);
}

Status Msg::Abort() { return dtm_.Abort(request_); }

Status Msg::DoAndSubmit(std::string query_prepared,
                        const std::function<Status()>& local) {
  DTX_RETURN_IF_ERROR(Prepare(query_prepared));
  Status s = local();
  if (s.ok()) return Submit();
  if (s.code() == StatusCode::kAborted) {
    Abort().IgnoreError();  // the local error is what the caller needs
    return s;
  }
  // Unclear whether the local transaction committed: ask, as the
  // coordinator's check-back would.
  BranchRequest check;
  check.url = request_.query_prepared;
  check.info = {request_.gid, TransType::kMsg, "00", BranchOp::kMsg,
                dtm_.address()};
  const BranchResult r = CallAndWait(dtm_.branch_client(), std::move(check));
  if (r.outcome == BranchOutcome::kSuccess) {
    Submit().IgnoreError();
  } else if (r.outcome == BranchOutcome::kFailure) {
    Abort().IgnoreError();
  }
  // Otherwise leave it prepared: the coordinator checks back after the
  // timeout.
  return s;
}

// Tcc.
Tcc::Tcc(DtmApi& dtm, std::string gid, TransOptions options,
         std::string parent_branch_id)
    : dtm_(dtm),
      gid_(std::move(gid)),
      options_(std::move(options)),
      parent_branch_id_(std::move(parent_branch_id)) {}

Tcc Tcc::FromTransInfo(DtmApi& dtm, const TransInfo& info) {
  return Tcc(dtm, info.gid, TransOptions{}, info.branch_id);
}

Result<std::string> Tcc::NextBranchId() {
  if (next_ >= 99)
    return InvalidArgumentError("tcc: branch id is larger than 99");
  if (parent_branch_id_.size() >= 20) {
    return InvalidArgumentError("tcc: total branch id is longer than 20");
  }
  ++next_;
  return parent_branch_id_ + (next_ < 10 ? "0" : "") + std::to_string(next_);
}

Status Tcc::CallBranch(std::string payload, const std::string& try_url,
                       std::string confirm_url, std::string cancel_url,
                       std::string* reply) {
  DTX_ASSIGN_OR_RETURN(std::string branch_id, NextBranchId());
  BranchRegistration reg;
  reg.gid = gid_;
  reg.trans_type = TransType::kTcc;
  reg.branch_id = branch_id;
  reg.confirm_url = std::move(confirm_url);
  reg.cancel_url = std::move(cancel_url);
  reg.payload = payload;
  DTX_RETURN_IF_ERROR(dtm_.RegisterBranch(reg));
  BranchRequest req;
  req.url = try_url;
  req.payload = std::move(payload);
  req.info = {gid_, TransType::kTcc, branch_id, BranchOp::kTry, dtm_.address()};
  for (const auto& [k, v] : options_.branch_headers)
    req.headers.emplace_back(k, v);
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      options_.request_timeout);
  BranchResult r = CallAndWait(dtm_.branch_client(), std::move(req));
  if (reply != nullptr) *reply = std::move(r.reply);
  return AsStatus(r).WithPrefix("tcc: gid " + gid_ + " branch " + branch_id +
                                " try");
}

Status TccGlobalTransaction(DtmApi& dtm, const std::string& gid,
                            const TransOptions& options,
                            const std::function<Status(Tcc&)>& fn) {
  TransRequest req;
  req.gid = gid;
  req.trans_type = TransType::kTcc;
  req.options = options;
  DTX_RETURN_IF_ERROR(dtm.Prepare(req));
  Tcc tcc(dtm, gid, options, "");
  Status s = fn(tcc);
  if (s.ok()) return dtm.Submit(req);
  req.rollback_reason = s.message();
  dtm.Abort(req).IgnoreError();  // fn's error is what the caller needs
  return s;
}

Status TccGlobalTransaction(DtmApi& dtm, const std::string& gid,
                            const std::function<Status(Tcc&)>& fn) {
  return TccGlobalTransaction(dtm, gid, TransOptions{}, fn);
}

}  // namespace dtx
