#include "dtx/model.h"

#include <array>
#include <string>
#include <utility>

namespace dtx {
namespace {

// PERSISTED: these spellings are dtm's and are stored in the journal.
constexpr std::array<std::pair<TransType, std::string_view>, 5> kTransTypes = {{
    {TransType::kTcc, "tcc"},
    {TransType::kSaga, "saga"},
    {TransType::kMsg, "msg"},
    {TransType::kXa, "xa"},
    {TransType::kWorkflow, "workflow"},
}};
constexpr std::array<std::pair<TransStatus, std::string_view>, 5>
    kTransStatuses = {{
        {TransStatus::kPrepared, "prepared"},
        {TransStatus::kSubmitted, "submitted"},
        {TransStatus::kAborting, "aborting"},
        {TransStatus::kSucceed, "succeed"},
        {TransStatus::kFailed, "failed"},
    }};
constexpr std::array<std::pair<BranchStatus, std::string_view>, 3>
    kBranchStatuses = {{
        {BranchStatus::kPrepared, "prepared"},
        {BranchStatus::kSucceed, "succeed"},
        {BranchStatus::kFailed, "failed"},
    }};
constexpr std::array<std::pair<BranchOp, std::string_view>, 8> kBranchOps = {{
    {BranchOp::kTry, "try"},
    {BranchOp::kConfirm, "confirm"},
    {BranchOp::kCancel, "cancel"},
    {BranchOp::kAction, "action"},
    {BranchOp::kCompensate, "compensate"},
    {BranchOp::kCommit, "commit"},
    {BranchOp::kRollback, "rollback"},
    {BranchOp::kMsg, "msg"},
}};

template <typename Table, typename Enum>
std::string_view Spell(const Table& table, Enum value) {
  for (const auto& [e, text] : table) {
    if (e == value) return text;
  }
  return "?";
}

template <typename Enum, typename Table>
Result<Enum> Parse(const Table& table, std::string_view what,
                   std::string_view text) {
  for (const auto& [e, spelling] : table) {
    if (spelling == text) return e;
  }
  std::string message = "unknown ";
  message += what;
  message += " '";
  message += text;
  message += "'";
  return InvalidArgumentError(message);
}

}  // namespace

std::string_view ToString(TransType type) { return Spell(kTransTypes, type); }
std::string_view ToString(TransStatus status) {
  return Spell(kTransStatuses, status);
}
std::string_view ToString(BranchStatus status) {
  return Spell(kBranchStatuses, status);
}
std::string_view ToString(BranchOp op) { return Spell(kBranchOps, op); }

Result<TransType> ParseTransType(std::string_view text) {
  return Parse<TransType>(kTransTypes, "trans type", text);
}
Result<TransStatus> ParseTransStatus(std::string_view text) {
  return Parse<TransStatus>(kTransStatuses, "trans status", text);
}
Result<BranchStatus> ParseBranchStatus(std::string_view text) {
  return Parse<BranchStatus>(kBranchStatuses, "branch status", text);
}
Result<BranchOp> ParseBranchOp(std::string_view text) {
  return Parse<BranchOp>(kBranchOps, "branch op", text);
}

}  // namespace dtx
