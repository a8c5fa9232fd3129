#include "trans_options.h"

#include "dtx/limits.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <optional>

namespace dtx::internal {

using nlohmann::json;

namespace {

bool IsBinaryHeader(const std::string& key) {
  return key.size() >= 4 && key.compare(key.size() - 4, 4, "-bin") == 0;
}

constexpr char kBase64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::string Base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) |
                       static_cast<uint8_t>(in[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6)
      out += kBase64[(v >> shift) & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kBase64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = in[i + k];
      uint32_t d = 0;
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        ++pad;
      } else if (pad > 0) {
        return std::nullopt;
      } else {
        const char* at = std::strchr(kBase64, c);
        if (c == '\0' || at == nullptr) return std::nullopt;
        d = static_cast<uint32_t>(at - kBase64);
      }
      v = (v << 6) | d;
    }
    out += static_cast<char>((v >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((v >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(v & 0xff);
  }
  return out;
}

std::string EncodeOptions(const TransOptions& o) {
  json j = json::object();
  if (o.wait_result) j["wait_result"] = true;
  if (o.timeout_to_fail.count() != 0)
    j["timeout_to_fail"] = o.timeout_to_fail.count();
  if (o.retry_interval.count() != 0)
    j["retry_interval"] = o.retry_interval.count();
  if (o.request_timeout.count() != 0)
    j["request_timeout"] = o.request_timeout.count();
  if (o.retry_limit != 0) j["retry_limit"] = o.retry_limit;
  if (o.concurrent) j["concurrent"] = true;
  // A "-bin" header may carry any bytes, which JSON strings cannot: those
  // values are stored in base64 (as gRPC sends them) under a key of their own.
  for (const auto& [key, value] : o.branch_headers) {
    if (IsBinaryHeader(key)) {
      j["branch_headers_bin"][key] = Base64Encode(value);
    } else {
      j["branch_headers"][key] = value;
    }
  }
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
  auto binary = j.find("branch_headers_bin");
  if (binary != j.end() && binary->is_object()) {
    for (const auto& [k, v] : binary->items()) {
      // Only a "-bin" header may carry bytes that are not text; under any
      // other name they could be neither sent as gRPC metadata nor encoded
      // again (EncodeOptions writes such a value as a JSON string).
      if (!IsBinaryHeader(k)) {
        return InvalidArgumentError("options: branch_headers_bin['" + k +
                                    "'] is not a -bin header");
      }
      std::optional<std::string> value;
      if (v.is_string()) value = Base64Decode(v.get<std::string>());
      if (!value) {
        return InvalidArgumentError("options: branch_headers_bin['" + k +
                                    "'] is not base64");
      }
      o.branch_headers[k] = std::move(*value);
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
  // Seconds past the limit would overflow as nanoseconds of a time point
  // (a number past int64 reads as negative above).
  if (delay->get<int64_t>() > kMaxDuration.count()) {
    return InvalidArgumentError(
        "msg: 'delay' " + delay->dump() + " s is over the limit of " +
        std::to_string(kMaxDuration.count()) + " s (366 days)");
  }
  return delay->get<int64_t>();
}

std::string EncodeWorkflowCustom(const WorkflowCustom& custom) {
  json j = json::object();
  j["name"] = custom.name;
  j["data"] = Base64Encode(custom.data);
  return j.dump();
}

Result<WorkflowCustom> DecodeWorkflowCustom(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError(
        "workflow: custom data is not a JSON object "
        "{\"name\":...,\"data\":...}");
  }
  WorkflowCustom out;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() ||
      name->get_ref<const std::string&>().empty()) {
    return InvalidArgumentError("workflow: custom data has no workflow 'name'");
  }
  out.name = name->get<std::string>();
  // It travels as gRPC metadata (dtm-op) and an HTTP query value when the
  // workflow is resumed: printable ASCII, as gRPC requires of metadata.
  bool printable = out.name.size() <= 128;
  for (const char c : out.name) printable = printable && c >= 0x20 && c < 0x7f;
  if (!printable) {
    return InvalidArgumentError(
        "workflow: the name must be 1 to 128 printable ASCII characters "
        "(it is sent as gRPC metadata when the workflow is resumed)");
  }
  auto data = j.find("data");
  if (data != j.end() && !data->is_null()) {
    // Go's encoding/json writes []byte as standard base64.
    std::optional<std::string> bytes;
    if (data->is_string()) bytes = Base64Decode(data->get<std::string>());
    if (!bytes) {
      return InvalidArgumentError(
          "workflow: custom data's 'data' is not base64 text");
    }
    out.data = std::move(*bytes);
  }
  return out;
}

}  // namespace dtx::internal
