// A Kratos ServiceInstance as Kratos's etcd registry stores it (Go's
// encoding/json, byte for byte), the endpoint Kratos's resolver picks from
// it, and dtm's discovery:// registry targets.

#include "dtx/transport/kratos_registry.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

namespace dtx {
namespace {

// A JSON string as Go's encoding/json writes it: <, > and & (and U+2028,
// U+2029) escaped, so that the value is byte-identical to a Go writer's.
void AppendGoString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '<':
      case '>':
      case '&': {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        *out += buf;
        break;
      }
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          *out += buf;
        } else if (c == 0xe2 && i + 2 < s.size() &&
                   static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
                    static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
          *out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028"
                                                               : "\\u2029";
          i += 2;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

bool GoParseBool(std::string_view v, bool* out) {
  if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" ||
      v == "True") {
    *out = true;
    return true;
  }
  if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" ||
      v == "False") {
    *out = false;
    return true;
  }
  return false;
}

// Go's url.Query decoding of one value: %XX escapes, '+' as a space.
bool PercentDecodeQuery(std::string_view in, std::string* out) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out->push_back(' ');
    } else if (in[i] == '%') {
      const int hi = i + 1 < in.size() ? hex(in[i + 1]) : -1;
      const int lo = i + 2 < in.size() ? hex(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out->push_back(in[i]);
    }
  }
  return true;
}

}  // namespace

std::string EncodeServiceInstance(const ServiceInstance& instance) {
  std::string out = "{\"id\":";
  AppendGoString(&out, instance.id);
  out += ",\"name\":";
  AppendGoString(&out, instance.name);
  out += ",\"version\":";
  AppendGoString(&out, instance.version);
  out += ",\"metadata\":";
  if (instance.metadata.empty()) {
    out += "null";
  } else {
    out += "{";
    bool first = true;
    for (const auto& [k, v] : instance.metadata) {  // Go sorts map keys too
      if (!first) out += ",";
      first = false;
      AppendGoString(&out, k);
      out += ":";
      AppendGoString(&out, v);
    }
    out += "}";
  }
  out += ",\"endpoints\":";
  if (instance.endpoints.empty()) {
    out += "null";
  } else {
    out += "[";
    for (std::size_t i = 0; i < instance.endpoints.size(); ++i) {
      if (i > 0) out += ",";
      AppendGoString(&out, instance.endpoints[i]);
    }
    out += "]";
  }
  out += "}";
  return out;
}

Result<ServiceInstance> DecodeServiceInstance(std::string_view text) {
  nlohmann::json j =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError("registry: not a JSON object");
  }
  ServiceInstance out;
  auto string_field = [&](const char* key, std::string* field) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::Ok();
    if (!it->is_string())
      return InvalidArgumentError(std::string("registry: '") + key +
                                  "' is not a string");
    *field = it->get<std::string>();
    return Status::Ok();
  };
  DTX_RETURN_IF_ERROR(string_field("id", &out.id));
  DTX_RETURN_IF_ERROR(string_field("name", &out.name));
  DTX_RETURN_IF_ERROR(string_field("version", &out.version));
  if (out.name.empty())
    return InvalidArgumentError("registry: instance without a name");
  auto md = j.find("metadata");
  if (md != j.end() && !md->is_null()) {
    if (!md->is_object())
      return InvalidArgumentError("registry: 'metadata' is not an object");
    for (const auto& [k, v] : md->items()) {
      if (!v.is_string())
        return InvalidArgumentError(
            "registry: metadata values must be strings");
      out.metadata[k] = v.get<std::string>();
    }
  }
  auto eps = j.find("endpoints");
  if (eps != j.end() && !eps->is_null()) {
    if (!eps->is_array())
      return InvalidArgumentError("registry: 'endpoints' is not an array");
    for (const auto& e : *eps) {
      if (!e.is_string())
        return InvalidArgumentError("registry: endpoints must be strings");
      out.endpoints.push_back(e.get<std::string>());
    }
  }
  return out;
}

std::optional<std::string> PickGrpcEndpoint(const ServiceInstance& instance) {
  std::optional<std::string> secure_pick;
  for (const std::string& e : instance.endpoints) {
    bool secure = false;
    std::string_view rest;
    if (e.rfind("grpc://", 0) == 0) {
      rest = std::string_view(e).substr(7);
    } else if (e.rfind("grpcs://", 0) == 0) {
      rest = std::string_view(e).substr(8);
      secure = true;
    } else {
      continue;
    }
    const auto query_at = rest.find('?');
    std::string_view query =
        query_at == std::string_view::npos ? "" : rest.substr(query_at + 1);
    std::string_view host =
        rest.substr(0, std::min(rest.find_first_of("/?"), rest.size()));
    if (host.empty()) continue;
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      if (pair.rfind("isSecure=", 0) == 0) {
        bool v = false;
        if (GoParseBool(pair.substr(9), &v)) secure = secure || v;
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
    if (!secure) return std::string(host);
    if (!secure_pick) secure_pick = "grpcs://" + std::string(host);
  }
  return secure_pick;
}

std::optional<std::string> PickHttpEndpoint(const ServiceInstance& instance) {
  for (const std::string& e : instance.endpoints) {
    bool tls = false;
    std::string_view rest;
    if (e.rfind("https://", 0) == 0) {
      tls = true;
      rest = std::string_view(e).substr(8);
    } else if (e.rfind("http://", 0) == 0) {
      rest = std::string_view(e).substr(7);
    } else {
      continue;
    }
    const auto query_at = rest.find('?');
    std::string_view query =
        query_at == std::string_view::npos ? "" : rest.substr(query_at + 1);
    const std::string_view host =
        rest.substr(0, std::min(rest.find_first_of("/?"), rest.size()));
    if (host.empty()) continue;
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      if (pair.rfind("isSecure=", 0) == 0) {
        bool v = false;
        if (GoParseBool(pair.substr(9), &v)) tls = tls || v;
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
    return (tls ? "https://" : "http://") + std::string(host);
  }
  return std::nullopt;
}

Result<RegistryTarget> ParseRegistryTarget(std::string_view target_text) {
  // As dtm's driver (v0.0.11) reads it, the target may span lines.
  std::string cleaned;
  for (char c : target_text) {
    if (c != '\n' && c != '\r') cleaned.push_back(c);
  }
  const std::string_view target = cleaned;
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("registry target '" + std::string(target) +
                                "': " + std::string(why));
  };
  std::string_view rest;
  for (std::string_view scheme : {"discovery://", "etcd://"}) {
    if (target.rfind(scheme, 0) == 0) rest = target.substr(scheme.size());
  }
  if (rest.empty()) return bad("want discovery://<etcd host:port>/<service>");
  std::string_view query;
  if (const auto question = rest.find('?');
      question != std::string_view::npos) {
    query = rest.substr(question + 1);
    rest = rest.substr(0, question);
  }
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0)
    return bad("no etcd address");
  RegistryTarget out;
  std::string_view hosts = rest.substr(0, slash);
  out.service = std::string(rest.substr(slash + 1));
  if (out.service.empty() || out.service.find('/') != std::string::npos) {
    return bad("want exactly one service name after the etcd address");
  }
  while (!hosts.empty()) {
    const auto comma = hosts.find(',');
    std::string_view host = hosts.substr(0, comma);
    if (host.empty()) return bad("empty etcd address");
    out.etcd_endpoints.emplace_back(host);
    if (comma == std::string_view::npos) break;
    hosts.remove_prefix(comma + 1);
  }
  // dtm's Kratos driver: tls=true, caPath, certPath, certKeyPath.
  bool tls = false;
  TlsClientOptions files;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    std::string value;
    if (eq != std::string_view::npos) {
      if (!PercentDecodeQuery(pair.substr(eq + 1), &value)) {
        return bad("the value of '" + std::string(name) +
                   "' has a malformed %-escape");
      }
    }
    if (name == "tls") {
      if (!GoParseBool(value, &tls)) {
        return bad("tls='" + value + "' is not true or false");
      }
    } else if (name == "caPath") {
      files.ca_file = value;
    } else if (name == "certPath") {
      files.cert_file = value;
    } else if (name == "certKeyPath") {
      files.key_file = value;
    } else {
      return bad("unknown parameter '" + std::string(name) +
                 "' (known: tls, caPath, certPath, certKeyPath)");
    }
  }
  const bool any_file = !files.ca_file.empty() || !files.cert_file.empty() ||
                        !files.key_file.empty();
  if (any_file && !tls) {
    return bad("caPath, certPath and certKeyPath need tls=true");
  }
  if (files.cert_file.empty() != files.key_file.empty()) {
    return bad(
        "certPath and certKeyPath go together (a client certificate "
        "and its key)");
  }
  if (tls) out.tls = std::move(files);
  return out;
}

EtcdClientOptions EtcdClientOptionsFor(const RegistryTarget& target) {
  EtcdClientOptions options;
  options.endpoints = target.etcd_endpoints;
  options.tls = target.tls;
  return options;
}

}  // namespace dtx
