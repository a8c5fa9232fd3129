// The JSON that dtx stores and dtm sends: per-transaction options (the
// journal's `options` column, dtm's keys) and mode-specific custom data.

#ifndef DTX_LIB_TRANS_OPTIONS_H_
#define DTX_LIB_TRANS_OPTIONS_H_

#include "dtx/dtm_api.h"
#include "dtx/internal/base64.h"
#include "dtx/result.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dtx::internal {

// {"wait_result":true,"timeout_to_fail":60,...,"branch_headers":{...}}, with
// only the options that differ from their defaults (as dtm's omitempty
// JSON); {} when none does. The journal stores it with every transaction.
std::string EncodeOptions(const TransOptions& options);
// Missing keys keep their defaults; kInvalidArgument for malformed JSON.
Result<TransOptions> DecodeOptions(const std::string& json);

// Saga custom data: {"orders":{"1":[0]},"concurrent":true}. orders[i] lists
// the steps that must succeed before step i starts.
struct SagaCustom {
  bool concurrent = false;
  std::vector<std::vector<int>> orders;  // one entry per step
};
// kInvalidArgument for malformed JSON, a step out of range, a step that
// depends on itself, or a cycle.
Result<SagaCustom> DecodeSagaCustom(const std::string& json, int steps);

// Msg custom data: {"delay":5}.
Result<int64_t> DecodeMsgDelay(const std::string& json);

// Workflow custom data, as dtm's SDKs write it: {"name":"transfer",
// "data":"<base64 of the input>"}.
struct WorkflowCustom {
  std::string name;
  std::string data;  // the input bytes
};
std::string EncodeWorkflowCustom(const WorkflowCustom& custom);
// kInvalidArgument without a name, or with data that is not base64.
Result<WorkflowCustom> DecodeWorkflowCustom(const std::string& json);

}  // namespace dtx::internal

#endif  // DTX_LIB_TRANS_OPTIONS_H_
