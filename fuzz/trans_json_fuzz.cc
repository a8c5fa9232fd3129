// The JSON of a transaction that clients send and the journal stores: its
// options (DecodeOptions, the journal's `options` column) and its custom
// data (DecodeSagaCustom for a saga of N steps, DecodeMsgDelay,
// DecodeWorkflowCustom) and base64 (Base64Decode). The first
// byte picks N (0..63); the rest is the JSON. Properties: options that
// decode encode to JSON that decodes to the same options; saga orders that
// decode name only steps in range, never the step itself, and no cycle.

#include "fuzz_check.h"
#include "trans_options.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

bool SameOptions(const dtx::TransOptions& a, const dtx::TransOptions& b) {
  return a.wait_result == b.wait_result &&
         a.timeout_to_fail == b.timeout_to_fail &&
         a.retry_interval == b.retry_interval &&
         a.request_timeout == b.request_timeout &&
         a.retry_limit == b.retry_limit &&
         a.branch_headers == b.branch_headers && a.concurrent == b.concurrent;
}

// True when the dependencies of `orders` have no cycle (depth-first search).
bool Acyclic(const std::vector<std::vector<int>>& orders) {
  std::vector<int> mark(orders.size(), 0);  // 0 new, 1 on the path, 2 done
  std::vector<std::pair<int, std::size_t>> stack;
  for (std::size_t root = 0; root < orders.size(); ++root) {
    if (mark[root] != 0) continue;
    stack.emplace_back(static_cast<int>(root), 0);
    mark[root] = 1;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      const auto& deps = orders[static_cast<std::size_t>(node)];
      if (next == deps.size()) {
        mark[static_cast<std::size_t>(node)] = 2;
        stack.pop_back();
        continue;
      }
      const int dep = deps[next++];
      if (mark[static_cast<std::size_t>(dep)] == 1) return false;
      if (mark[static_cast<std::size_t>(dep)] == 0) {
        mark[static_cast<std::size_t>(dep)] = 1;
        stack.emplace_back(dep, 0);
      }
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int steps = data[0] & 63;
  const std::string json(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto options = dtx::internal::DecodeOptions(json);
  if (options.ok()) {
    const std::string encoded = dtx::internal::EncodeOptions(*options);
    auto again = dtx::internal::DecodeOptions(encoded);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(SameOptions(*options, *again));
    FUZZ_CHECK(dtx::internal::EncodeOptions(*again) == encoded);
  }

  auto saga = dtx::internal::DecodeSagaCustom(json, steps);
  if (saga.ok()) {
    FUZZ_CHECK(saga->orders.size() == static_cast<std::size_t>(steps));
    for (std::size_t s = 0; s < saga->orders.size(); ++s) {
      for (int dep : saga->orders[s]) {
        FUZZ_CHECK(dep >= 0 && dep < steps);
        FUZZ_CHECK(static_cast<std::size_t>(dep) != s);
      }
    }
    FUZZ_CHECK(Acyclic(saga->orders));
  }

  auto delay = dtx::internal::DecodeMsgDelay(json);
  if (delay.ok()) FUZZ_CHECK(*delay >= 0);

  auto workflow = dtx::internal::DecodeWorkflowCustom(json);
  if (workflow.ok()) {
    FUZZ_CHECK(!workflow->name.empty());
    auto again = dtx::internal::DecodeWorkflowCustom(
        dtx::internal::EncodeWorkflowCustom(*workflow));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->name == workflow->name && again->data == workflow->data);
  }
  // Base64 (workflow data and results): what is encoded decodes to the same
  // bytes; any text decodes or is refused, without a crash (non-zero padding
  // bits are accepted, as Go's StdEncoding accepts them).
  (void)dtx::internal::Base64Decode(json);
  auto round = dtx::internal::Base64Decode(dtx::internal::Base64Encode(json));
  FUZZ_CHECK(round && *round == json);
  return 0;
}
