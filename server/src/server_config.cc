#include "dtx/server/server_config.h"

#include "dtx/internal/ascii.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>

namespace dtx::server {
namespace {

std::string Lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Keys compare without the copies Lower makes: they are looked up once per
// YAML node (and the fuzzer loads many files).
bool SameKey(std::string_view a, std::string_view b) {
  return internal::EqualsIgnoreCase(a, b);
}

Result<int64_t> ParseInt(const std::string& text, int64_t min, int64_t max) {
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used, 10);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != text.size()) {
    return InvalidArgumentError("'" + text + "' is not an integer");
  }
  if (value < min || value > max) {
    return InvalidArgumentError("'" + text + "' is outside " +
                                std::to_string(min) + ".." +
                                std::to_string(max));
  }
  return static_cast<int64_t>(value);
}

using Setter = std::function<Status(ServerConfig&, const std::string&)>;

Setter Seconds(std::chrono::seconds ServerConfig::*field, int64_t min,
               int64_t max = 366LL * 24 * 3600) {
  return [field, min, max](ServerConfig& c, const std::string& v) -> Status {
    DTX_ASSIGN_OR_RETURN(int64_t n, ParseInt(v, min, max));
    c.*field = std::chrono::seconds(n);
    return Status::Ok();
  };
}

Setter Text(std::string ServerConfig::*field, bool allow_empty) {
  return [field, allow_empty](ServerConfig& c, const std::string& v) -> Status {
    if (!allow_empty && v.empty()) return InvalidArgumentError("is empty");
    c.*field = v;
    return Status::Ok();
  };
}

// A path inside a nested struct of the config (TLS.CertFile, ...).
template <typename Group>
Setter Text(Group ServerConfig::*group, std::string Group::*field) {
  return [group, field](ServerConfig& c, const std::string& v) -> Status {
    (c.*group).*field = v;
    return Status::Ok();
  };
}

// Log.RotationConfigJSON: lumberjack's options as dtm takes them.
Status SetRotationConfig(ServerConfig& c, const std::string& v) {
  const nlohmann::json j = nlohmann::json::parse(v.empty() ? "{}" : v, nullptr,
                                                 /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return InvalidArgumentError("'" + v + "' is not a JSON object");
  }
  c.log_rotation_ignored.clear();
  for (const auto& [key, value] : j.items()) {
    if (key == "maxsize") {
      if (!value.is_number() || value.get<double>() <= 0 ||
          value.get<double>() > 1024 * 1024) {
        return InvalidArgumentError(
            "maxsize must be a number of megabytes above 0");
      }
      c.log_rotation_max_bytes =
          static_cast<int64_t>(value.get<double>() * 1024 * 1024);
      if (c.log_rotation_max_bytes < 1) c.log_rotation_max_bytes = 1;
    } else if (key == "maxbackups") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
          value.get<int64_t>() > 10000) {
        return InvalidArgumentError(
            "maxbackups must be an integer from 1 to 10000 (lumberjack's 0, "
            "keep every file, is not supported)");
      }
      c.log_rotation_max_backups = value.get<int64_t>();
    } else if (key == "maxage" || key == "compress" || key == "localtime") {
      c.log_rotation_ignored.push_back(key);
    } else if (key == "filename") {
      return InvalidArgumentError("filename: the files are Log.Outputs' paths");
    } else {
      return InvalidArgumentError("unknown key '" + key +
                                  "' (want maxsize, maxbackups)");
    }
  }
  c.log_rotation_config_json = v.empty() ? "{}" : v;
  return Status::Ok();
}

Setter Bool(bool ServerConfig::*field) {
  return [field](ServerConfig& c, const std::string& v) -> Status {
    const std::string s = Lower(v);
    if (s == "true") {
      c.*field = true;
    } else if (s == "false") {
      c.*field = false;
    } else {
      return InvalidArgumentError("'" + v + "' is not true or false");
    }
    return Status::Ok();
  };
}

// A list: a YAML sequence (joined with commas by Walk) or, in the
// environment and flags, comma-separated items; blanks around items are
// dropped, and so are empty items.
std::vector<std::string> SplitList(const std::string& v) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= v.size()) {
    std::size_t comma = v.find(',', start);
    if (comma == std::string::npos) comma = v.size();
    const std::string item = v.substr(start, comma - start);
    const std::size_t first = item.find_first_not_of(" \t");
    const std::size_t last = item.find_last_not_of(" \t");
    if (first != std::string::npos) {
      items.push_back(item.substr(first, last - first + 1));
    }
    start = comma + 1;
  }
  return items;
}

// BranchTargets.Schemes, .Hosts, .Services (checked whole by
// BranchTargets::Validate once every source is read).
Setter TargetList(std::vector<std::string> BranchTargets::*field) {
  return [field](ServerConfig& c, const std::string& v) -> Status {
    c.branch_targets.*field = SplitList(v);
    return Status::Ok();
  };
}

Status SetTargetPorts(ServerConfig& c, const std::string& v) {
  c.branch_targets.ports.clear();
  for (const std::string& item : SplitList(v)) {
    DTX_ASSIGN_OR_RETURN(int64_t n, ParseInt(item, 1, 65535));
    c.branch_targets.ports.push_back(static_cast<int>(n));
  }
  return Status::Ok();
}

// As PostgresJournal checks it (postgres_schema.cc), here so that a bad
// Store.Schema is refused with the other settings, before anything starts.
Status CheckSchemaName(const std::string& schema) {
  bool ok = !schema.empty() && schema.size() <= 63 &&
            std::isdigit(static_cast<unsigned char>(schema[0])) == 0;
  for (char c : schema) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 || (std::isalnum(u) == 0 && c != '_')) ok = false;
  }
  if (ok) return Status::Ok();
  return InvalidArgumentError(
      "'" + schema +
      "' is not a plain identifier (letters, digits and '_', not starting "
      "with a digit, at most 63 bytes)");
}

struct Key {
  const char* name;
  Setter set;
};

// Every setting is one line of text: a control character (a CR left by a
// script that wrote an environment variable, a "\t" in a quoted YAML
// string) is a mistake, and --print-config could not show it (found by
// fuzz/server_config: a value ending in CR printed as YAML read back
// without it). The value itself is not echoed: it may be a password.
Status CheckOneLine(const std::string& v) {
  for (char ch : v) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", u);
      return InvalidArgumentError(std::string("holds a control character (") +
                                  hex + "); a setting is one line of text");
    }
  }
  return Status::Ok();
}

// BranchTLS: a YAML list of rules, {Target, CAFile, CertFile, KeyFile,
// ServerName}; `where` names the source in errors.
Result<std::vector<TlsClientRule>> ParseBranchTls(const YAML::Node& node,
                                                  const std::string& where) {
  if (!node.IsSequence()) {
    return InvalidArgumentError(
        where +
        " must be a list of {Target, CAFile, CertFile, KeyFile, "
        "ServerName}");
  }
  std::vector<TlsClientRule> rules;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string item = where + "[" + std::to_string(i) + "]";
    const YAML::Node& entry = node[i];
    if (!entry.IsMap()) {
      return InvalidArgumentError(item +
                                  " must be a map of Target, CAFile, "
                                  "CertFile, KeyFile, ServerName");
    }
    TlsClientRule rule;
    for (const auto& field : entry) {
      std::string name;
      std::string value;
      try {
        name = field.first.as<std::string>();
        if (!field.second.IsScalar() && !field.second.IsNull()) {
          return InvalidArgumentError(item + "." + name +
                                      " must be a single value");
        }
        if (field.second.IsScalar()) value = field.second.Scalar();
      } catch (const YAML::Exception&) {
        return InvalidArgumentError(item + ": a key is not a string");
      }
      if (Status s = CheckOneLine(value); !s.ok()) {
        return InvalidArgumentError(item + "." + name + ": " + s.message());
      }
      const std::string lower = Lower(name);
      if (lower == "target") {
        rule.target = value;
      } else if (lower == "cafile") {
        rule.tls.ca_file = value;
      } else if (lower == "certfile") {
        rule.tls.cert_file = value;
      } else if (lower == "keyfile") {
        rule.tls.key_file = value;
      } else if (lower == "servername") {
        rule.tls.server_name = value;
      } else {
        return InvalidArgumentError(
            item + ": unknown key " + name +
            " (known: Target, CAFile, CertFile, KeyFile, ServerName)");
      }
    }
    if (rule.target.empty()) {
      return InvalidArgumentError(item +
                                  ": Target is empty; name the "
                                  "server as host:port or host");
    }
    if (rule.target.find('/') != std::string::npos) {
      return InvalidArgumentError(
          item + ": Target '" + rule.target +
          "' is not host:port or host (no scheme or path)");
    }
    if (rule.tls.cert_file.empty() != rule.tls.key_file.empty()) {
      return InvalidArgumentError(item + ": CertFile and KeyFile go together");
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

const std::vector<Key>& Keys() {
  static const std::vector<Key> keys = {
      {"MicroService.Driver",
       [](ServerConfig& c, const std::string& v) -> Status {
         if (v != "default" && v != "dtm-driver-kratos") {
           return InvalidArgumentError(
               "'" + v +
               "' is not a driver dtx has; use 'default' or "
               "'dtm-driver-kratos'");
         }
         c.driver = v;
         return Status::Ok();
       }},
      {"MicroService.Target", Text(&ServerConfig::target, true)},
      {"MicroService.EndPoint", Text(&ServerConfig::endpoint, true)},
      {"MicroService.InstanceId",
       [](ServerConfig& c, const std::string& v) -> Status {
         if (v.size() > 128) return InvalidArgumentError("is over 128 bytes");
         for (char ch : v) {
           if (ch < 0x21 || ch > 0x7e || ch == '/') {
             return InvalidArgumentError(
                 "'" + v +
                 "' holds a character other than visible ASCII without "
                 "'/' (it is the last part of an etcd key)");
           }
         }
         c.instance_id = v;
         return Status::Ok();
       }},
      {"Store.Driver",
       [](ServerConfig& c, const std::string& v) -> Status {
         const std::string d = Lower(v);
         if (d == "sqlite" || d == "sqlite3" || d == "boltdb" || d.empty()) {
           c.store_driver = StoreDriver::kSqlite;
           return Status::Ok();
         }
         if (d == "postgres" || d == "postgresql") {
           c.store_driver = StoreDriver::kPostgres;
           return Status::Ok();
         }
         return InvalidArgumentError(
             "'" + v +
             "': dtx keeps its journal in SQLite or PostgreSQL; set "
             "Store.Driver to sqlite (and Store.Path to the file) or to "
             "postgres (and Store.Host, Store.Port, ...)");
       }},
      {"Store.Host",
       [](ServerConfig& c, const std::string& v) -> Status {
         if (v.find_first_of(" \t\r\n,") != std::string::npos) {
           return InvalidArgumentError("'" + v +
                                       "' is not one host name or address");
         }
         c.postgres.host = v;
         return Status::Ok();
       }},
      {"Store.Port",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(int64_t n, ParseInt(v, 1, 65535));
         c.postgres.port = static_cast<int>(n);
         return Status::Ok();
       }},
      {"Store.User", Text(&ServerConfig::postgres, &PostgresStoreConfig::user)},
      {"Store.Password",
       // Never echoed, not even in an error.
       Text(&ServerConfig::postgres, &PostgresStoreConfig::password)},
      {"Store.Db",
       [](ServerConfig& c, const std::string& v) -> Status {
         if (v.empty()) return InvalidArgumentError("is empty");
         c.postgres.db = v;
         return Status::Ok();
       }},
      {"Store.Schema",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_RETURN_IF_ERROR(CheckSchemaName(v));
         c.postgres.schema = v;
         return Status::Ok();
       }},
      {"Store.MaxOpenConns",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(int64_t n, ParseInt(v, 0, 100000));
         if (n == 1) {
           return InvalidArgumentError(
               "1 is too few: the journal needs a connection for writes "
               "and at least one for reads (0: no cap)");
         }
         c.postgres.max_open_conns = n;
         return Status::Ok();
       }},
      {"Store.MaxIdleConns",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(c.postgres.max_idle_conns,
                              ParseInt(v, 0, 100000));
         return Status::Ok();
       }},
      {"Store.ConnMaxLifeTime",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(int64_t n, ParseInt(v, 0, 366LL * 24 * 60));
         c.postgres.conn_max_lifetime = std::chrono::minutes(n);
         return Status::Ok();
       }},
      {"Store.ConnectTimeout",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(int64_t n, ParseInt(v, 1, 3600));
         c.postgres.connect_timeout = std::chrono::seconds(n);
         return Status::Ok();
       }},
      {"Store.WriterConns",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(c.postgres.writer_conns, ParseInt(v, 1, 64));
         return Status::Ok();
       }},
      {"Store.Path", Text(&ServerConfig::store_path, false)},
      {"Store.Synchronous",
       [](ServerConfig& c, const std::string& v) -> Status {
         const std::string s = Lower(v);
         if (s == "full") {
           c.durable_on_power_loss = true;
         } else if (s == "normal") {
           c.durable_on_power_loss = false;
         } else {
           return InvalidArgumentError("'" + v + "' is not full or normal");
         }
         return Status::Ok();
       }},
      // Up to ten years; 0 keeps finished transactions for ever.
      {"Store.FinishedDataExpire",
       Seconds(&ServerConfig::finished_data_expire, 0, 3650LL * 24 * 3600)},
      {"Store.DataExpire",
       Seconds(&ServerConfig::data_expire, 0, 3650LL * 24 * 3600)},
      {"Store.Create",
       [](ServerConfig& c, const std::string& v) -> Status {
         const std::string s = Lower(v);
         if (s == "true") {
           c.store_create = true;
         } else if (s == "false") {
           c.store_create = false;
         } else {
           return InvalidArgumentError("'" + v + "' is not true or false");
         }
         return Status::Ok();
       }},
      {"GrpcHost", Text(&ServerConfig::grpc_host, false)},
      {"GrpcPort",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(int64_t n, ParseInt(v, 0, 65535));
         c.grpc_port = static_cast<int>(n);
         return Status::Ok();
       }},
      {"HttpPort",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(int64_t n, ParseInt(v, 0, 65535));
         c.http_port = static_cast<int>(n);
         return Status::Ok();
       }},
      {"RetryInterval", Seconds(&ServerConfig::retry_interval, 1)},
      {"RetryIntervalMax", Seconds(&ServerConfig::retry_interval_max, 0)},
      {"TimeoutToFail", Seconds(&ServerConfig::timeout_to_fail, 1)},
      {"RequestTimeout", Seconds(&ServerConfig::request_timeout, 1)},
      {"TransCronInterval", Seconds(&ServerConfig::trans_cron_interval, 1)},
      {"ShutdownGrace", Seconds(&ServerConfig::shutdown_grace, 0)},
      {"GrpcHandshakeTimeout",
       Seconds(&ServerConfig::grpc_handshake_timeout, 1)},
      {"Log.SummaryInterval", Seconds(&ServerConfig::log_summary_interval, 0)},
      {"IoThreads",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(int64_t n, ParseInt(v, 1, 64));
         c.io_threads = static_cast<int>(n);
         return Status::Ok();
       }},
      {"MaxTransInMemory",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(c.max_trans_in_memory, ParseInt(v, 0, 10000000));
         return Status::Ok();
       }},
      {"MaxCallsPerTarget",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(c.max_calls_per_target, ParseInt(v, 0, 1000000));
         return Status::Ok();
       }},
      {"MaxConnections",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(c.max_connections, ParseInt(v, 0, 10000000));
         return Status::Ok();
       }},
      {"RetryJitter",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(c.retry_jitter_percent, ParseInt(v, 0, 100));
         return Status::Ok();
       }},
      {"MaxRequestBytes",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(c.max_request_bytes, ParseInt(v, 1, 1LL << 30));
         return Status::Ok();
       }},
      {"LogLevel",
       [](ServerConfig& c, const std::string& v) -> Status {
         auto level = ParseLogLevel(v);
         if (!level.ok()) {
           return InvalidArgumentError("'" + v +
                                       "' is not debug, info, warn or error");
         }
         c.log_level = *level;
         return Status::Ok();
       }},
      {"AlertRetryLimit",
       [](ServerConfig& c, const std::string& v) -> Status {
         DTX_ASSIGN_OR_RETURN(c.alert_retry_limit, ParseInt(v, 1, 1000000));
         return Status::Ok();
       }},
      {"AlertWebHook",
       [](ServerConfig& c, const std::string& v) -> Status {
         if (!v.empty() && v.rfind("http://", 0) != 0 &&
             v.rfind("https://", 0) != 0) {
           return InvalidArgumentError("'" + v +
                                       "' is not an http:// or https:// URL");
         }
         c.alert_webhook = v;
         return Status::Ok();
       }},
      {"Admin.Token",
       [](ServerConfig& c, const std::string& v) -> Status {
         // Sent as "Bearer <token>" in an HTTP header and in gRPC metadata,
         // which takes printable ASCII only. The value is never echoed.
         for (char ch : v) {
           if (ch < 0x21 || ch > 0x7e) {
             return InvalidArgumentError(
                 "holds a character that is not visible ASCII (0x21-0x7E); "
                 "the token travels in an Authorization header");
           }
         }
         c.admin_token = v;
         return Status::Ok();
       }},
      {"Admin.Open", Bool(&ServerConfig::admin_open)},
      {"GrpcReflection", Bool(&ServerConfig::grpc_reflection)},
      {"BranchTargets.Schemes", TargetList(&BranchTargets::schemes)},
      {"BranchTargets.Hosts", TargetList(&BranchTargets::hosts)},
      {"BranchTargets.Ports", SetTargetPorts},
      {"BranchTargets.Services", TargetList(&BranchTargets::services)},
      {"TLS.CertFile", Text(&ServerConfig::tls, &TlsServerOptions::cert_file)},
      {"TLS.KeyFile", Text(&ServerConfig::tls, &TlsServerOptions::key_file)},
      {"TLS.ClientCAFile",
       Text(&ServerConfig::tls, &TlsServerOptions::client_ca_file)},
      {"Log.Outputs",
       [](ServerConfig& c, const std::string& v) -> Status {
         std::vector<std::string> outputs = SplitList(v);
         if (outputs.empty()) {
           return InvalidArgumentError(
               "is empty (want stderr and/or log file paths)");
         }
         for (const std::string& o : outputs) {
           if (o == "stdout") {
             return InvalidArgumentError(
                 "'stdout' carries dtx-server's listening lines, which "
                 "scripts read; log to stderr or to a file");
           }
         }
         c.log_outputs = std::move(outputs);
         return Status::Ok();
       }},
      {"Log.RotationEnable",
       [](ServerConfig& c, const std::string& v) -> Status {
         const std::string s = Lower(v);
         if (s == "1" || s == "true") {
           c.log_rotation_enable = true;
         } else if (s == "0" || s == "false") {
           c.log_rotation_enable = false;
         } else {
           return InvalidArgumentError("'" + v +
                                       "' is not 0, 1, true or false");
         }
         return Status::Ok();
       }},
      {"Log.RotationConfigJSON", SetRotationConfig},
  };
  return keys;
}

// dtm's keys that mean nothing to dtx: accepted with a warning.
const std::vector<std::string>& IgnoredKeys() {
  static const std::vector<std::string> keys = {
      "Store.RedisPrefix",
      "Store.TransGlobalTable",
      "Store.TransBranchOpTable",
      "JsonRpcPort",
      "HttpMicroService",
      "UpdateBranchSync",
      "UpdateBranchAsyncGoroutineNum",
      "TimeZoneOffset",
      "ConfigUpdateInterval",
      "AdminBasePath",
      "GrpcServiceConfig",
  };
  return keys;
}

// dtx's own keys that no longer do anything: accepted with a warning saying
// why, so that old configuration files keep working.
constexpr const char* kRetiredWorkerThreads = "WorkerThreads";
constexpr const char* kRetiredWorkerThreadsWhy =
    "WorkerThreads is deprecated and ignored: dtx-server no longer runs "
    "requests on worker threads (a waiting request holds no thread)";

constexpr const char* kBranchTls = "BranchTLS";

// Sets `key` to `v`, once `v` is one line of text.
Status SetKey(const Key& key, ServerConfig& config, const std::string& v) {
  DTX_RETURN_IF_ERROR(CheckOneLine(v));
  return key.set(config, v);
}

const Key* FindKey(const std::string& path) {
  for (const Key& k : Keys()) {
    if (SameKey(k.name, path)) return &k;
  }
  return nullptr;
}

bool IsIgnored(const std::string& path) {
  for (const std::string& k : IgnoredKeys()) {
    if (SameKey(k, path)) return true;
  }
  return false;
}

bool IsSection(const std::string& path) {
  const std::string lower = Lower(path);
  return lower == "microservice" || lower == "store" || lower == "log" ||
         lower == "admin" || lower == "tls" || lower == "branchtargets";
}

Status Walk(const YAML::Node& node, const std::string& prefix,
            const std::string& file, ServerConfig& config,
            std::vector<std::string>& warnings) {
  for (const auto& entry : node) {
    std::string name;
    try {
      name = entry.first.as<std::string>();
    } catch (const YAML::Exception&) {
      return InvalidArgumentError(file + ": a key is not a string");
    }
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    const YAML::Node& value = entry.second;
    if (IsIgnored(path)) {
      warnings.push_back(file + ": " + path +
                         " is a dtm setting that dtx does not use; ignored");
      continue;
    }
    if (SameKey(path, kRetiredWorkerThreads)) {
      warnings.push_back(file + ": " + kRetiredWorkerThreadsWhy);
      continue;
    }
    if (value.IsMap() && IsSection(path)) {
      DTX_RETURN_IF_ERROR(Walk(value, path, file, config, warnings));
      continue;
    }
    if (SameKey(path, kBranchTls)) {
      if (value.IsNull()) continue;
      DTX_ASSIGN_OR_RETURN(config.branch_tls,
                           ParseBranchTls(value, file + ": " + kBranchTls));
      continue;
    }
    const Key* key = FindKey(path);
    if (key == nullptr) {
      warnings.push_back(file + ": unknown key " + path + "; ignored");
      continue;
    }
    if (value.IsNull()) continue;  // "Target:" with nothing: the default
    if (value.IsSequence() && (Lower(path).rfind("branchtargets.", 0) == 0 ||
                               Lower(path) == "log.outputs")) {
      // Hosts: [a, b]: the items, joined as the environment gives them.
      std::string joined;
      for (const auto& item : value) {
        if (!item.IsScalar() || item.Scalar().find(',') != std::string::npos) {
          return InvalidArgumentError(file + ": " + key->name +
                                      " must be a list of single values");
        }
        if (!joined.empty()) joined += ",";
        joined += item.Scalar();
      }
      Status s = key->set(config, joined);
      if (!s.ok()) {
        return InvalidArgumentError(file + ": " + key->name + ": " +
                                    s.message());
      }
      continue;
    }
    if (!value.IsScalar()) {
      return InvalidArgumentError(file + ": " + path +
                                  " must be a single value");
    }
    Status s = SetKey(*key, config, value.Scalar());
    if (!s.ok()) {
      return InvalidArgumentError(file + ": " + key->name + ": " + s.message());
    }
  }
  return Status::Ok();
}

// The rules of the store's keys across each other: what the chosen driver
// needs, and a warning for every key of the other driver that was set (it
// does nothing).
Status CheckStore(const ServerConfig& c, std::vector<std::string>& warnings) {
  const PostgresStoreConfig defaults;
  const PostgresStoreConfig& pg = c.postgres;
  if (c.store_driver == StoreDriver::kSqlite) {
    std::vector<std::string> set;
    if (pg.host != defaults.host) set.push_back("Store.Host");
    if (pg.port != defaults.port) set.push_back("Store.Port");
    if (pg.user != defaults.user) set.push_back("Store.User");
    if (pg.password != defaults.password) set.push_back("Store.Password");
    if (pg.db != defaults.db) set.push_back("Store.Db");
    if (pg.schema != defaults.schema) set.push_back("Store.Schema");
    if (pg.max_open_conns != defaults.max_open_conns)
      set.push_back("Store.MaxOpenConns");
    if (pg.max_idle_conns != defaults.max_idle_conns)
      set.push_back("Store.MaxIdleConns");
    if (pg.conn_max_lifetime != defaults.conn_max_lifetime)
      set.push_back("Store.ConnMaxLifeTime");
    if (pg.connect_timeout != defaults.connect_timeout)
      set.push_back("Store.ConnectTimeout");
    if (pg.writer_conns != defaults.writer_conns)
      set.push_back("Store.WriterConns");
    for (const std::string& key : set) {
      warnings.push_back(key +
                         " is set but Store.Driver is sqlite; ignored (it "
                         "applies to Store.Driver postgres)");
    }
    return Status::Ok();
  }
  if (pg.host.empty()) {
    return InvalidArgumentError(
        "Store.Driver is postgres but Store.Host is empty; set it to the "
        "PostgreSQL server's host name or address");
  }
  if (pg.max_open_conns != 0 && pg.max_open_conns <= pg.writer_conns) {
    return InvalidArgumentError(
        "Store.MaxOpenConns " + std::to_string(pg.max_open_conns) +
        " leaves no connection for reads: Store.WriterConns " +
        std::to_string(pg.writer_conns) +
        " write; set MaxOpenConns above WriterConns (or 0: no cap)");
  }
  if (c.store_path != ServerConfig().store_path) {
    warnings.push_back(
        "Store.Path is set but Store.Driver is postgres; ignored (the "
        "journal is in PostgreSQL at Store.Host)");
  }
  if (c.durable_on_power_loss != ServerConfig().durable_on_power_loss) {
    warnings.push_back(
        "Store.Synchronous is set but Store.Driver is postgres; ignored "
        "(PostgreSQL's own synchronous_commit applies)");
  }
  return Status::Ok();
}

}  // namespace

std::string EnvNameOf(const std::string& key) {
  std::string out;
  for (std::size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    if (c == '.') {
      out += '_';
      continue;
    }
    const bool upper = std::isupper(static_cast<unsigned char>(c)) != 0;
    if (upper && i > 0 && key[i - 1] != '.' &&
        (std::islower(static_cast<unsigned char>(key[i - 1])) != 0 ||
         std::isdigit(static_cast<unsigned char>(key[i - 1])) != 0)) {
      out += '_';
    }
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

Result<LoadedConfig> LoadServerConfig(const ConfigSources& sources) {
  LoadedConfig loaded;
  ServerConfig& config = loaded.config;

  if (!sources.yaml_path.empty() || sources.yaml_text) {
    const std::string file =
        sources.yaml_path.empty() ? std::string("config") : sources.yaml_path;
    std::string text;
    if (sources.yaml_text) {
      text = *sources.yaml_text;
    } else {
      std::ifstream in(sources.yaml_path);
      if (!in) {
        return NotFoundError("cannot read the config file " +
                             sources.yaml_path);
      }
      std::stringstream buffer;
      buffer << in.rdbuf();
      text = buffer.str();
    }
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return InvalidArgumentError(file + ": not valid YAML: " + e.what());
    }
    if (root.IsDefined() && !root.IsNull()) {
      if (!root.IsMap()) {
        return InvalidArgumentError(file +
                                    ": the top level must be a map of keys");
      }
      DTX_RETURN_IF_ERROR(Walk(root, "", file, config, loaded.warnings));
    }
  }

  if (sources.env) {
    const std::string retired = EnvNameOf(kRetiredWorkerThreads);
    auto retired_value = sources.env(retired);
    if (retired_value && !retired_value->empty()) {
      loaded.warnings.push_back("environment " + retired + ": " +
                                kRetiredWorkerThreadsWhy);
    }
    // BRANCH_TLS: the list in YAML's flow form,
    // [{Target: "pay:9443", CAFile: /etc/dtx/pay-ca.pem}].
    const std::string branch_tls_env = EnvNameOf(kBranchTls);
    if (auto value = sources.env(branch_tls_env); value && !value->empty()) {
      YAML::Node node;
      try {
        node = YAML::Load(*value);
      } catch (const YAML::Exception& e) {
        return InvalidArgumentError("environment " + branch_tls_env +
                                    ": not valid YAML: " + e.what());
      }
      DTX_ASSIGN_OR_RETURN(
          config.branch_tls,
          ParseBranchTls(node, "environment " + branch_tls_env));
    }
    for (const Key& key : Keys()) {
      const std::string name = EnvNameOf(key.name);
      auto value = sources.env(name);
      // As dtm reads them: an empty variable is unset (templates often
      // render unset values as "").
      if (!value || value->empty()) continue;
      Status s = SetKey(key, config, *value);
      if (!s.ok()) {
        return InvalidArgumentError("environment " + name + " (" + key.name +
                                    "): " + s.message());
      }
    }
  }

  for (const auto& [name, value] : sources.flags) {
    const Key* key = FindKey(name);
    if (key == nullptr) return InvalidArgumentError("unknown setting " + name);
    Status s = SetKey(*key, config, value);
    if (!s.ok()) {
      return InvalidArgumentError("flag for " + std::string(key->name) + ": " +
                                  s.message());
    }
  }

  // Rules across keys.
  if (config.timeout_to_fail < config.retry_interval) {
    return InvalidArgumentError(
        "TimeoutToFail (" + std::to_string(config.timeout_to_fail.count()) +
        ") must not be less than RetryInterval (" +
        std::to_string(config.retry_interval.count()) + ")");
  }
  if (config.retry_interval_max.count() != 0 &&
      config.retry_interval_max < config.retry_interval) {
    return InvalidArgumentError(
        "RetryIntervalMax (" +
        std::to_string(config.retry_interval_max.count()) +
        ") must be 0 (no cap) or at least RetryInterval (" +
        std::to_string(config.retry_interval.count()) + ")");
  }
  if (config.http_port != 0 && config.http_port == config.grpc_port) {
    return InvalidArgumentError("HttpPort and GrpcPort are both " +
                                std::to_string(config.grpc_port) +
                                "; the two listeners need two ports");
  }
  if (config.tls.cert_file.empty() != config.tls.key_file.empty()) {
    return InvalidArgumentError(
        std::string("TLS.CertFile and TLS.KeyFile go together (") +
        (config.tls.cert_file.empty() ? "TLS.CertFile" : "TLS.KeyFile") +
        " is empty)");
  }
  if (!config.tls.client_ca_file.empty() && config.tls.cert_file.empty()) {
    return InvalidArgumentError(
        "TLS.ClientCAFile is set but TLS.CertFile and TLS.KeyFile are not; "
        "client certificates are checked only on a TLS listener");
  }
  if (config.max_connections > 0 && config.tls.enabled()) {
    return InvalidArgumentError(
        "MaxConnections is set with TLS.CertFile: the limit is enforced on "
        "plaintext ports only (gRPC 1.51 cannot hand an accepted connection "
        "to a TLS listener); limit connections in front of dtx-server "
        "instead (docs/security.md)");
  }
  DTX_RETURN_IF_ERROR(CheckStore(config, loaded.warnings));
  DTX_RETURN_IF_ERROR(config.branch_targets.Validate());
  if (!config.instance_id.empty() && config.target.empty()) {
    loaded.warnings.push_back(
        "MicroService.InstanceId is set but MicroService.Target is empty; "
        "ignored (nothing is registered)");
  }
  if (!config.target.empty()) {
    if (config.driver != "dtm-driver-kratos") {
      return InvalidArgumentError(
          "MicroService.Target is set but MicroService.Driver is '" +
          config.driver + "'; registering needs 'dtm-driver-kratos'");
    }
    if (config.endpoint.empty()) {
      return InvalidArgumentError(
          "MicroService.Target is set but MicroService.EndPoint is empty; set "
          "it to this server's address as others reach it, e.g. "
          "grpc://10.0.0.5:36790");
    }
  }
  return loaded;
}

std::string ToYaml(const ServerConfig& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "MicroService" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "Driver" << YAML::Value << c.driver;
  out << YAML::Key << "Target" << YAML::Value << c.target;
  out << YAML::Key << "EndPoint" << YAML::Value << c.endpoint;
  out << YAML::Key << "InstanceId" << YAML::Value << c.instance_id;
  out << YAML::EndMap;
  out << YAML::Key << "Store" << YAML::Value << YAML::BeginMap;
  if (c.store_driver == StoreDriver::kPostgres) {
    const PostgresStoreConfig& pg = c.postgres;
    out << YAML::Key << "Driver" << YAML::Value << "postgres";
    out << YAML::Key << "Host" << YAML::Value << pg.host;
    out << YAML::Key << "Port" << YAML::Value << pg.port;
    out << YAML::Key << "User" << YAML::Value << pg.user;
    // Never the password itself: --print-config output ends up in tickets.
    out << YAML::Key << "Password" << YAML::Value
        << (pg.password.empty() ? "" : "(set)");
    out << YAML::Key << "Db" << YAML::Value << pg.db;
    out << YAML::Key << "Schema" << YAML::Value << pg.schema;
    out << YAML::Key << "MaxOpenConns" << YAML::Value << pg.max_open_conns;
    out << YAML::Key << "MaxIdleConns" << YAML::Value << pg.max_idle_conns;
    out << YAML::Key << "ConnMaxLifeTime" << YAML::Value
        << pg.conn_max_lifetime.count();
    out << YAML::Key << "ConnectTimeout" << YAML::Value
        << pg.connect_timeout.count();
    out << YAML::Key << "WriterConns" << YAML::Value << pg.writer_conns;
  } else {
    out << YAML::Key << "Driver" << YAML::Value << "sqlite";
    out << YAML::Key << "Path" << YAML::Value << c.store_path;
    out << YAML::Key << "Synchronous" << YAML::Value
        << (c.durable_on_power_loss ? "full" : "normal");
    out << YAML::Key << "Create" << YAML::Value << c.store_create;
  }
  out << YAML::Key << "FinishedDataExpire" << YAML::Value
      << c.finished_data_expire.count();
  out << YAML::Key << "DataExpire" << YAML::Value << c.data_expire.count();
  out << YAML::EndMap;
  out << YAML::Key << "GrpcHost" << YAML::Value << c.grpc_host;
  out << YAML::Key << "GrpcPort" << YAML::Value << c.grpc_port;
  out << YAML::Key << "HttpPort" << YAML::Value << c.http_port;
  out << YAML::Key << "RetryInterval" << YAML::Value
      << c.retry_interval.count();
  out << YAML::Key << "RetryIntervalMax" << YAML::Value
      << c.retry_interval_max.count();
  out << YAML::Key << "TimeoutToFail" << YAML::Value
      << c.timeout_to_fail.count();
  out << YAML::Key << "RequestTimeout" << YAML::Value
      << c.request_timeout.count();
  out << YAML::Key << "TransCronInterval" << YAML::Value
      << c.trans_cron_interval.count();
  out << YAML::Key << "ShutdownGrace" << YAML::Value
      << c.shutdown_grace.count();
  out << YAML::Key << "GrpcHandshakeTimeout" << YAML::Value
      << c.grpc_handshake_timeout.count();
  out << YAML::Key << "IoThreads" << YAML::Value << c.io_threads;
  out << YAML::Key << "MaxRequestBytes" << YAML::Value << c.max_request_bytes;
  out << YAML::Key << "MaxTransInMemory" << YAML::Value
      << c.max_trans_in_memory;
  out << YAML::Key << "MaxCallsPerTarget" << YAML::Value
      << c.max_calls_per_target;
  out << YAML::Key << "RetryJitter" << YAML::Value << c.retry_jitter_percent;
  out << YAML::Key << "MaxConnections" << YAML::Value << c.max_connections;
  out << YAML::Key << "AlertRetryLimit" << YAML::Value << c.alert_retry_limit;
  out << YAML::Key << "AlertWebHook" << YAML::Value << c.alert_webhook;
  // Never the token itself: --print-config output ends up in tickets.
  out << YAML::Key << "Admin" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "Token" << YAML::Value
      << (c.admin_token.empty() ? "" : "(set)");
  out << YAML::Key << "Open" << YAML::Value << c.admin_open;
  out << YAML::EndMap;
  out << YAML::Key << "GrpcReflection" << YAML::Value << c.grpc_reflection;
  out << YAML::Key << "BranchTargets" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "Schemes" << YAML::Value << YAML::Flow
      << c.branch_targets.schemes;
  out << YAML::Key << "Hosts" << YAML::Value << YAML::Flow
      << c.branch_targets.hosts;
  out << YAML::Key << "Ports" << YAML::Value << YAML::Flow
      << c.branch_targets.ports;
  out << YAML::Key << "Services" << YAML::Value << YAML::Flow
      << c.branch_targets.services;
  out << YAML::EndMap;
  out << YAML::Key << "TLS" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "CertFile" << YAML::Value << c.tls.cert_file;
  out << YAML::Key << "KeyFile" << YAML::Value << c.tls.key_file;
  out << YAML::Key << "ClientCAFile" << YAML::Value << c.tls.client_ca_file;
  out << YAML::EndMap;
  out << YAML::Key << "BranchTLS" << YAML::Value << YAML::BeginSeq;
  for (const TlsClientRule& rule : c.branch_tls) {
    out << YAML::BeginMap;
    out << YAML::Key << "Target" << YAML::Value << rule.target;
    out << YAML::Key << "CAFile" << YAML::Value << rule.tls.ca_file;
    out << YAML::Key << "CertFile" << YAML::Value << rule.tls.cert_file;
    out << YAML::Key << "KeyFile" << YAML::Value << rule.tls.key_file;
    out << YAML::Key << "ServerName" << YAML::Value << rule.tls.server_name;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "LogLevel" << YAML::Value
      << std::string(ToString(c.log_level));
  out << YAML::Key << "Log" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "SummaryInterval" << YAML::Value
      << c.log_summary_interval.count();
  out << YAML::Key << "Outputs" << YAML::Value << YAML::Flow << c.log_outputs;
  out << YAML::Key << "RotationEnable" << YAML::Value
      << (c.log_rotation_enable ? 1 : 0);
  out << YAML::Key << "RotationConfigJSON" << YAML::Value
      << c.log_rotation_config_json;
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace dtx::server
