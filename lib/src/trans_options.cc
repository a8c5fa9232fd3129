#include "trans_options.h"

#include <nlohmann/json.hpp>

namespace dtx::internal {

using nlohmann::json;

std::string EncodeOptions(const TransOptions& o) {
  json j = {{"wait_result", o.wait_result},
            {"timeout_to_fail", o.timeout_to_fail.count()},
            {"retry_interval", o.retry_interval.count()},
            {"request_timeout", o.request_timeout.count()},
            {"retry_limit", o.retry_limit},
            {"concurrent", o.concurrent}};
  if (!o.branch_headers.empty()) j["branch_headers"] = o.branch_headers;
  return j.dump();
}

namespace {

template <typename T>
bool ReadNumber(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_number_integer()) return false;
  *out = it->get<T>();
  return true;
}

}  // namespace

Result<TransOptions> DecodeOptions(const std::string& text) {
  TransOptions o;
  if (text.empty()) return o;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError("options: not a JSON object: " + text);
  }
  int64_t timeout = 0;
  int64_t retry = 0;
  int64_t request = 0;
  auto wait = j.find("wait_result");
  if (wait != j.end() && wait->is_boolean()) o.wait_result = wait->get<bool>();
  auto conc = j.find("concurrent");
  if (conc != j.end() && conc->is_boolean()) o.concurrent = conc->get<bool>();
  if (!ReadNumber(j, "timeout_to_fail", &timeout) ||
      !ReadNumber(j, "retry_interval", &retry) ||
      !ReadNumber(j, "request_timeout", &request) ||
      !ReadNumber(j, "retry_limit", &o.retry_limit)) {
    return InvalidArgumentError("options: a number field is not an integer: " +
                                text);
  }
  o.timeout_to_fail = std::chrono::seconds(timeout);
  o.retry_interval = std::chrono::seconds(retry);
  o.request_timeout = std::chrono::seconds(request);
  auto headers = j.find("branch_headers");
  if (headers != j.end() && headers->is_object()) {
    for (const auto& [k, v] : headers->items()) {
      if (!v.is_string())
        return InvalidArgumentError(
            "options: branch_headers values must be strings");
      o.branch_headers[k] = v.get<std::string>();
    }
  }
  return o;
}

Result<SagaCustom> DecodeSagaCustom(const std::string& text, int steps) {
  SagaCustom out;
  out.orders.assign(static_cast<std::size_t>(steps), {});
  if (text.empty()) return out;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError("saga: custom data is not a JSON object: " +
                                text);
  }
  auto conc = j.find("concurrent");
  if (conc != j.end()) {
    if (!conc->is_boolean())
      return InvalidArgumentError("saga: 'concurrent' must be a boolean");
    out.concurrent = conc->get<bool>();
  }
  auto orders = j.find("orders");
  if (orders != j.end() && !orders->is_null()) {
    if (!orders->is_object())
      return InvalidArgumentError("saga: 'orders' must be an object");
    for (const auto& [key, deps] : orders->items()) {
      int step = -1;
      try {
        std::size_t used = 0;
        step = std::stoi(key, &used);
        if (used != key.size()) step = -1;
      } catch (...) {
        step = -1;
      }
      if (step < 0 || step >= steps) {
        return InvalidArgumentError("saga: orders name step '" + key +
                                    "', but there are " +
                                    std::to_string(steps) + " steps");
      }
      if (!deps.is_array())
        return InvalidArgumentError("saga: orders[" + key +
                                    "] must be an array");
      for (const auto& d : deps) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0 ||
            d.get<int64_t>() >= steps) {
          return InvalidArgumentError(
              "saga: orders[" + key + "] names a missing step: " +
              // Never dump() what a client sent: the serializer recurses,
              // and deeply nested JSON would overflow the stack.
              (d.is_number_integer() ? std::to_string(d.get<int64_t>())
                                     : std::string("a ") + d.type_name()));
        }
        const int dep = d.get<int>();
        if (dep == step) {
          return InvalidArgumentError("saga: step " + key +
                                      " depends on itself");
        }
        out.orders[static_cast<std::size_t>(step)].push_back(dep);
      }
    }
  }
  // Reject cycles: Kahn's algorithm must consume every step.
  std::vector<int> indegree(static_cast<std::size_t>(steps), 0);
  std::vector<std::vector<int>> dependents(static_cast<std::size_t>(steps));
  for (int s = 0; s < steps; ++s) {
    for (int d : out.orders[static_cast<std::size_t>(s)]) {
      dependents[static_cast<std::size_t>(d)].push_back(s);
      ++indegree[static_cast<std::size_t>(s)];
    }
  }
  std::vector<int> ready;
  for (int s = 0; s < steps; ++s) {
    if (indegree[static_cast<std::size_t>(s)] == 0) ready.push_back(s);
  }
  int seen = 0;
  while (!ready.empty()) {
    const int s = ready.back();
    ready.pop_back();
    ++seen;
    for (int d : dependents[static_cast<std::size_t>(s)]) {
      if (--indegree[static_cast<std::size_t>(d)] == 0) ready.push_back(d);
    }
  }
  if (seen != steps) return InvalidArgumentError("saga: orders form a cycle");
  return out;
}

Result<int64_t> DecodeMsgDelay(const std::string& text) {
  if (text.empty()) return int64_t{0};
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError("msg: custom data is not a JSON object: " +
                                text);
  }
  auto delay = j.find("delay");
  if (delay == j.end() || delay->is_null()) return int64_t{0};
  if (!delay->is_number_integer() || delay->get<int64_t>() < 0) {
    return InvalidArgumentError("msg: 'delay' must be a non-negative integer");
  }
  return delay->get<int64_t>();
}

}  // namespace dtx::internal
