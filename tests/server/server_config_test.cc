#include "dtx/server/server_config.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dtx::server {
namespace {

using dtx::testing::StatusIs;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ConfigSources Yaml(const std::string& text) {
  ConfigSources s;
  s.yaml_text = text;
  return s;
}

TEST(ServerConfigTest, NoConfigAtAllGivesDtmsDefaults) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig({}));
  const ServerConfig& c = loaded.config;
  EXPECT_EQ(c.grpc_port, 36790);
  EXPECT_EQ(c.http_port, 36789);
  EXPECT_EQ(c.retry_interval, seconds(10));
  EXPECT_EQ(c.timeout_to_fail, seconds(35));
  EXPECT_EQ(c.request_timeout, seconds(3));
  EXPECT_EQ(c.trans_cron_interval, seconds(3));
  EXPECT_EQ(c.store_path, "dtx.db");
  EXPECT_EQ(c.driver, "default");
  EXPECT_TRUE(loaded.warnings.empty());
}

TEST(ServerConfigTest, ReadsTheSeedsMicroServiceBlockAndDtmKeys) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(Yaml(R"(
MicroService:
  Driver: 'dtm-driver-kratos'
  Target: 'discovery://127.0.0.1:2379/dtmservice'
  EndPoint: 'grpc://localhost:36790'
Store:
  Driver: sqlite
  Path: /var/lib/dtx/dtx.db
  Synchronous: normal
GrpcPort: 36791
HttpPort: 36792
RetryInterval: 12
TimeoutToFail: 40
RequestTimeout: 5
TransCronInterval: 2
LogLevel: debug
)")));
  const ServerConfig& c = loaded.config;
  EXPECT_EQ(c.driver, "dtm-driver-kratos");
  EXPECT_EQ(c.target, "discovery://127.0.0.1:2379/dtmservice");
  EXPECT_EQ(c.endpoint, "grpc://localhost:36790");
  EXPECT_EQ(c.store_path, "/var/lib/dtx/dtx.db");
  EXPECT_FALSE(c.durable_on_power_loss);
  EXPECT_EQ(c.grpc_port, 36791);
  EXPECT_EQ(c.http_port, 36792);
  EXPECT_EQ(c.retry_interval, seconds(12));
  EXPECT_EQ(c.timeout_to_fail, seconds(40));
  EXPECT_EQ(c.request_timeout, seconds(5));
  EXPECT_EQ(c.trans_cron_interval, seconds(2));
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_TRUE(loaded.warnings.empty());
}

TEST(ServerConfigTest, RetentionTakesDtmsKeysDefaultsAndEnvironment) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig defaults, LoadServerConfig({}));
  EXPECT_EQ(defaults.config.finished_data_expire, seconds(86400));
  EXPECT_EQ(defaults.config.data_expire, seconds(604800));

  ConfigSources s = Yaml(
      "Store:\n  FinishedDataExpire: 3600\n"
      "  DataExpire: 0\n");
  std::map<std::string, std::string> env;
  s.env = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(s));
  EXPECT_TRUE(loaded.warnings.empty());  // no longer ignored dtm keys
  EXPECT_EQ(loaded.config.finished_data_expire, seconds(3600));
  EXPECT_EQ(loaded.config.data_expire, seconds(0));

  EXPECT_EQ(EnvNameOf("Store.FinishedDataExpire"),
            "STORE_FINISHED_DATA_EXPIRE");
  env["STORE_FINISHED_DATA_EXPIRE"] = "0";
  env["STORE_DATA_EXPIRE"] = "315360000";  // ten years
  ASSERT_OK_AND_ASSIGN(loaded, LoadServerConfig(s));
  EXPECT_EQ(loaded.config.finished_data_expire, seconds(0));
  EXPECT_EQ(loaded.config.data_expire, seconds(315360000));

  env["STORE_DATA_EXPIRE"] = "-1";
  EXPECT_THAT(LoadServerConfig(s),
              StatusIs(StatusCode::kInvalidArgument, "STORE_DATA_EXPIRE"));
  env.erase("STORE_DATA_EXPIRE");
  env["STORE_FINISHED_DATA_EXPIRE"] = "315360001";
  EXPECT_THAT(LoadServerConfig(s), StatusIs(StatusCode::kInvalidArgument,
                                            "STORE_FINISHED_DATA_EXPIRE"));
}

TEST(ServerConfigTest, RecoveryCapsAndJitter) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig defaults, LoadServerConfig({}));
  EXPECT_EQ(defaults.config.max_trans_in_memory, 4096);
  EXPECT_EQ(defaults.config.max_calls_per_target, 128);
  EXPECT_EQ(defaults.config.retry_jitter_percent, 10);
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig off,
      LoadServerConfig(
          Yaml("MaxTransInMemory: 0\nMaxCallsPerTarget: 0\nRetryJitter: 0\n")));
  EXPECT_EQ(off.config.max_trans_in_memory, 0);
  EXPECT_EQ(off.config.max_calls_per_target, 0);
  EXPECT_EQ(off.config.retry_jitter_percent, 0);
  EXPECT_TRUE(off.warnings.empty());
  EXPECT_THAT(LoadServerConfig(Yaml("RetryJitter: 101\n")),
              StatusIs(StatusCode::kInvalidArgument, "RetryJitter"));
  EXPECT_THAT(LoadServerConfig(Yaml("MaxCallsPerTarget: -1\n")),
              StatusIs(StatusCode::kInvalidArgument, "MaxCallsPerTarget"));
}

TEST(ServerConfigTest, MaxConnections) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig defaults, LoadServerConfig({}));
  EXPECT_EQ(defaults.config.max_connections, 0);  // no limit
  ASSERT_OK_AND_ASSIGN(LoadedConfig set,
                       LoadServerConfig(Yaml("MaxConnections: 5000\n")));
  EXPECT_EQ(set.config.max_connections, 5000);
  ConfigSources env;
  env.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "MAX_CONNECTIONS") return "7";
    return std::nullopt;
  };
  ASSERT_OK_AND_ASSIGN(LoadedConfig from_env, LoadServerConfig(env));
  EXPECT_EQ(from_env.config.max_connections, 7);
  EXPECT_THAT(LoadServerConfig(Yaml("MaxConnections: -1\n")),
              StatusIs(StatusCode::kInvalidArgument, "MaxConnections"));
  // Not enforceable on a TLS port with gRPC 1.51: said at once.
  EXPECT_THAT(LoadServerConfig(Yaml("MaxConnections: 10\nTLS:\n  CertFile: "
                                    "c.pem\n  KeyFile: k.pem\n")),
              StatusIs(StatusCode::kInvalidArgument, "plaintext ports only"));
}

TEST(ServerConfigTest, UnknownAndUnusedKeysAreWarnings) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(Yaml(R"(
JsonRpcPort: 36791
Store:
  Host: localhost
  TransGlobalTable: dtm.trans_global
Colour: blue
HttpMicroService:
  RegistryOptions: {a: b}
)")));
  EXPECT_THAT(
      loaded.warnings,
      ElementsAre(HasSubstr("JsonRpcPort is a dtm setting"),
                  HasSubstr("Store.TransGlobalTable is a dtm setting"),
                  HasSubstr("unknown key Colour"),
                  HasSubstr("HttpMicroService is a dtm setting"),
                  HasSubstr("Store.Host is set but Store.Driver is sqlite")));
}

// Issue 19 item 7: dtm's Log keys, a file beside stderr, rotated.
TEST(ServerConfigTest, LogOutputsAndRotationTakeDtmsKeys) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig defaults, LoadServerConfig({}));
  EXPECT_THAT(defaults.config.log_outputs, ElementsAre("stderr"));
  EXPECT_FALSE(defaults.config.log_rotation_enable);
  EXPECT_EQ(defaults.config.log_summary_interval, seconds(60));
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(Yaml(R"(
Log:
  Outputs: [stderr, /var/log/dtx/dtx.log]
  RotationEnable: 1
  RotationConfigJSON: '{"maxsize": 0.5, "maxbackups": 3, "compress": true}'
  SummaryInterval: 0
)")));
  const ServerConfig& c = loaded.config;
  EXPECT_THAT(c.log_outputs, ElementsAre("stderr", "/var/log/dtx/dtx.log"));
  EXPECT_TRUE(c.log_rotation_enable);
  EXPECT_EQ(c.log_rotation_max_bytes, 512 * 1024);
  EXPECT_EQ(c.log_rotation_max_backups, 3);
  EXPECT_THAT(c.log_rotation_ignored, ElementsAre("compress"));
  EXPECT_EQ(c.log_summary_interval, seconds(0));
  EXPECT_TRUE(loaded.warnings.empty());
  // Printed and read back.
  ASSERT_OK_AND_ASSIGN(LoadedConfig again, LoadServerConfig(Yaml(ToYaml(c))));
  EXPECT_EQ(ToYaml(again.config), ToYaml(c));
  // dtm's environment names.
  ConfigSources env;
  env.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "LOG_OUTPUTS") return "/tmp/a.log";
    if (name == "LOG_ROTATION_ENABLE") return "true";
    return std::nullopt;
  };
  ASSERT_OK_AND_ASSIGN(LoadedConfig from_env, LoadServerConfig(env));
  EXPECT_THAT(from_env.config.log_outputs, ElementsAre("/tmp/a.log"));
  EXPECT_TRUE(from_env.config.log_rotation_enable);
  // Mistakes name the key and the cause.
  EXPECT_THAT(LoadServerConfig(Yaml("Log:\n  Outputs: stdout\n")),
              StatusIs(StatusCode::kInvalidArgument,
                       "Log.Outputs: 'stdout' carries dtx-server's"));
  EXPECT_THAT(LoadServerConfig(Yaml("Log:\n  RotationEnable: yes\n")),
              StatusIs(StatusCode::kInvalidArgument, "Log.RotationEnable"));
  EXPECT_THAT(LoadServerConfig(
                  Yaml("Log:\n  RotationConfigJSON: '{\"maxbackups\": 0}'\n")),
              StatusIs(StatusCode::kInvalidArgument, "maxbackups must be"));
  EXPECT_THAT(LoadServerConfig(
                  Yaml("Log:\n  RotationConfigJSON: '{\"maxsize\": -1}'\n")),
              StatusIs(StatusCode::kInvalidArgument, "maxsize must be"));
  EXPECT_THAT(LoadServerConfig(Yaml("Log:\n  RotationConfigJSON: '[1]'\n")),
              StatusIs(StatusCode::kInvalidArgument, "not a JSON object"));
  EXPECT_THAT(
      LoadServerConfig(Yaml("Log:\n  RotationConfigJSON: '{\"size\": 1}'\n")),
      StatusIs(StatusCode::kInvalidArgument, "unknown key 'size'"));
}

TEST(ServerConfigTest, RetiredWorkerThreadsIsAWarningNotAnError) {
  ConfigSources s = Yaml("WorkerThreads: 8\nIoThreads: 2\n");
  s.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "WORKER_THREADS") return "16";
    return std::nullopt;
  };
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(s));
  EXPECT_EQ(loaded.config.io_threads, 2);
  EXPECT_THAT(
      loaded.warnings,
      ElementsAre(HasSubstr("WorkerThreads is deprecated and ignored"),
                  HasSubstr("environment WORKER_THREADS: WorkerThreads is "
                            "deprecated")));
  EXPECT_THAT(ToYaml(loaded.config),
              ::testing::Not(HasSubstr("WorkerThreads")));
}

TEST(ServerConfigTest, BadValuesAreErrorsNamingTheKey) {
  EXPECT_THAT(LoadServerConfig(Yaml("GrpcPort: 70000\n")),
              StatusIs(StatusCode::kInvalidArgument, "GrpcPort"));
  EXPECT_THAT(LoadServerConfig(Yaml("HttpPort: -1\n")),
              StatusIs(StatusCode::kInvalidArgument, "HttpPort"));
  EXPECT_THAT(LoadServerConfig(Yaml("GrpcPort: 5000\nHttpPort: 5000\n")),
              StatusIs(StatusCode::kInvalidArgument,
                       "HttpPort and GrpcPort are both 5000"));
  EXPECT_THAT(LoadServerConfig(Yaml("RetryInterval: ten\n")),
              StatusIs(StatusCode::kInvalidArgument,
                       "RetryInterval: 'ten' is not an integer"));
  EXPECT_THAT(LoadServerConfig(Yaml("RetryInterval: 0\n")),
              StatusIs(StatusCode::kInvalidArgument, "RetryInterval"));
  EXPECT_THAT(LoadServerConfig(Yaml("Store:\n  Driver: mysql\n")),
              StatusIs(StatusCode::kInvalidArgument, "SQLite or PostgreSQL"));
  EXPECT_THAT(
      LoadServerConfig(Yaml("MicroService:\n  Driver: dtm-driver-gozero\n")),
      StatusIs(StatusCode::kInvalidArgument, "dtm-driver-kratos"));
  EXPECT_THAT(LoadServerConfig(Yaml("LogLevel: loud\n")),
              StatusIs(StatusCode::kInvalidArgument, "LogLevel"));
  EXPECT_THAT(LoadServerConfig(Yaml("GrpcPort: [1, 2]\n")),
              StatusIs(StatusCode::kInvalidArgument, "single value"));
  EXPECT_THAT(LoadServerConfig(Yaml("GrpcPort: 1\n  bad indent: [\n")),
              StatusIs(StatusCode::kInvalidArgument, "not valid YAML"));
  EXPECT_THAT(LoadServerConfig(Yaml("- a\n- b\n")),
              StatusIs(StatusCode::kInvalidArgument, "top level"));
  // dtm's cross-key rule.
  EXPECT_THAT(
      LoadServerConfig(Yaml("RetryInterval: 20\nTimeoutToFail: 10\n")),
      StatusIs(StatusCode::kInvalidArgument,
               "TimeoutToFail (10) must not be less than RetryInterval"));
  // Registering needs the Kratos driver and an endpoint.
  EXPECT_THAT(LoadServerConfig(Yaml(
                  "MicroService:\n  Target: discovery://127.0.0.1:2379/dtm\n")),
              StatusIs(StatusCode::kInvalidArgument, "MicroService.Driver"));
  EXPECT_THAT(
      LoadServerConfig(Yaml("MicroService:\n  Driver: dtm-driver-kratos\n"
                            "  Target: discovery://127.0.0.1:2379/dtm\n")),
      StatusIs(StatusCode::kInvalidArgument, "EndPoint is empty"));
}

TEST(ServerConfigTest, MissingFileIsNotFound) {
  ConfigSources s;
  s.yaml_path = "/nonexistent/dtx.yml";
  EXPECT_THAT(LoadServerConfig(s),
              StatusIs(StatusCode::kNotFound, "/nonexistent/dtx.yml"));
}

TEST(ServerConfigTest, EnvironmentNamesFollowDtm) {
  EXPECT_EQ(EnvNameOf("MicroService.EndPoint"), "MICRO_SERVICE_END_POINT");
  EXPECT_EQ(EnvNameOf("MicroService.Target"), "MICRO_SERVICE_TARGET");
  EXPECT_EQ(EnvNameOf("GrpcPort"), "GRPC_PORT");
  EXPECT_EQ(EnvNameOf("HttpPort"), "HTTP_PORT");
  EXPECT_EQ(EnvNameOf("TimeoutToFail"), "TIMEOUT_TO_FAIL");
  EXPECT_EQ(EnvNameOf("Store.Path"), "STORE_PATH");
  EXPECT_EQ(EnvNameOf("TransCronInterval"), "TRANS_CRON_INTERVAL");
}

TEST(ServerConfigTest, EnvironmentOverridesTheFileAndFlagsOverrideBoth) {
  ConfigSources s = Yaml("GrpcPort: 1000\nRetryInterval: 11\nLogLevel: warn\n");
  std::map<std::string, std::string> env = {{"GRPC_PORT", "2000"},
                                            {"HTTP_PORT", "2001"},
                                            {"RETRY_INTERVAL", "13"},
                                            {"STORE_PATH", "/tmp/e.db"}};
  s.env = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  s.flags["GrpcPort"] = "3000";
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(s));
  EXPECT_EQ(loaded.config.grpc_port, 3000);
  EXPECT_EQ(loaded.config.http_port, 2001);
  EXPECT_EQ(loaded.config.retry_interval, seconds(13));
  EXPECT_EQ(loaded.config.store_path, "/tmp/e.db");
  EXPECT_EQ(loaded.config.log_level, LogLevel::kWarn);

  // An empty variable is unset, as dtm reads it.
  env["GRPC_PORT"] = "";
  s.flags.clear();
  ASSERT_OK_AND_ASSIGN(LoadedConfig empty_env, LoadServerConfig(s));
  EXPECT_EQ(empty_env.config.grpc_port, 1000);

  env["TIMEOUT_TO_FAIL"] = "soon";
  EXPECT_THAT(LoadServerConfig(s),
              StatusIs(StatusCode::kInvalidArgument,
                       "environment TIMEOUT_TO_FAIL (TimeoutToFail)"));
}

TEST(ServerConfigTest, PrintedConfigReadsBackTheSame) {
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig first,
      LoadServerConfig(
          Yaml("GrpcPort: 4000\nHttpPort: 0\nRetryInterval: 15\n"
               "Store:\n  Path: x.db\n  FinishedDataExpire: 60\n")));
  ASSERT_OK_AND_ASSIGN(LoadedConfig second,
                       LoadServerConfig(Yaml(ToYaml(first.config))));
  EXPECT_EQ(ToYaml(second.config), ToYaml(first.config));
  EXPECT_EQ(second.config.finished_data_expire, seconds(60));
  EXPECT_TRUE(second.warnings.empty());
}

// Found by fuzz/server_config: STORE_PATH ending in a CR loaded, and
// --print-config printed YAML that read back without the CR. A setting
// with a control character is refused, naming the key, not the value.
TEST(ServerConfigTest, ControlCharactersInASettingAreErrorsNamingTheKey) {
  ConfigSources s;
  s.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "STORE_PATH") return std::string("\r\xf6\r");
    return std::nullopt;
  };
  EXPECT_THAT(LoadServerConfig(s),
              StatusIs(StatusCode::kInvalidArgument,
                       "environment STORE_PATH (Store.Path): holds a control "
                       "character (0x0d)"));
  EXPECT_THAT(LoadServerConfig(Yaml("Store:\n  Password: \"pw\\tx\"\n")),
              StatusIs(StatusCode::kInvalidArgument,
                       "Store.Password: holds a control character (0x09)"));
  EXPECT_THAT(LoadServerConfig(Yaml("AlertWebHook: \"http://h/\\n\"\n")),
              StatusIs(StatusCode::kInvalidArgument, "AlertWebHook"));
  EXPECT_THAT(
      LoadServerConfig(Yaml("BranchTLS:\n  - Target: \"pay:9443\\r\"\n")),
      StatusIs(StatusCode::kInvalidArgument,
               "BranchTLS[0].Target: holds a control character (0x0d)"));
  ConfigSources flag;
  flag.flags["GrpcHost"] = std::string("h\0st", 4);
  EXPECT_THAT(LoadServerConfig(flag),
              StatusIs(StatusCode::kInvalidArgument, "flag for GrpcHost"));
  // Bytes that are not UTF-8 are no control characters: a path may hold
  // them, and they print and read back as they are.
  s.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "STORE_PATH") return std::string("/tmp/\xf6.db");
    return std::nullopt;
  };
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(s));
  ASSERT_OK_AND_ASSIGN(LoadedConfig again,
                       LoadServerConfig(Yaml(ToYaml(loaded.config))));
  EXPECT_EQ(again.config.store_path, "/tmp/\xf6.db");
}

}  // namespace

TEST(ServerConfigTest, AlertAndAdminKeys) {
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig loaded,
      LoadServerConfig(Yaml("AlertRetryLimit: 5\n"
                            "AlertWebHook: http://127.0.0.1:9/alert\n"
                            "Admin:\n  Token: s3cret\n")));
  EXPECT_EQ(loaded.config.alert_retry_limit, 5);
  EXPECT_EQ(loaded.config.alert_webhook, "http://127.0.0.1:9/alert");
  EXPECT_EQ(loaded.config.admin_token, "s3cret");
  EXPECT_TRUE(loaded.warnings.empty());
  // The token is never printed.
  EXPECT_THAT(ToYaml(loaded.config), ::testing::Not(HasSubstr("s3cret")));

  // A token that cannot travel in a header is refused, without echoing it.
  auto spaced = LoadServerConfig(Yaml("Admin:\n  Token: 'my secret'\n"));
  EXPECT_THAT(spaced.status(),
              StatusIs(StatusCode::kInvalidArgument, "Admin.Token"));
  EXPECT_THAT(spaced.status().message(), ::testing::Not(HasSubstr("secret")));

  EXPECT_THAT(LoadServerConfig(Yaml("AlertWebHook: ftp://x\n")).status(),
              StatusIs(StatusCode::kInvalidArgument, "AlertWebHook"));
  EXPECT_THAT(LoadServerConfig(Yaml("AlertRetryLimit: 0\n")).status(),
              StatusIs(StatusCode::kInvalidArgument, "AlertRetryLimit"));
}

namespace {

TEST(ServerConfigTest, AccessDefaultsAreClosedOnes) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig({}));
  EXPECT_FALSE(loaded.config.admin_open);
  EXPECT_FALSE(loaded.config.grpc_reflection);
  EXPECT_TRUE(loaded.config.branch_targets.enforce);
  EXPECT_TRUE(loaded.config.branch_targets.hosts.empty());
  ASSERT_OK_AND_ASSIGN(
      loaded, LoadServerConfig(Yaml("Admin:\n  Open: true\nGrpcReflection: "
                                    "TRUE\n")));
  EXPECT_TRUE(loaded.config.admin_open);
  EXPECT_TRUE(loaded.config.grpc_reflection);
  EXPECT_THAT(LoadServerConfig(Yaml("Admin:\n  Open: yes please\n")).status(),
              StatusIs(StatusCode::kInvalidArgument, "Admin.Open"));
}

TEST(ServerConfigTest, BranchTargetsFromYamlListsAndTheEnvironment) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(Yaml(R"(
BranchTargets:
  Schemes: [grpc, http]
  Hosts: ['*.svc.cluster.local', 10.0.0.0/8]
  Ports: [8080, 9000]
  Services: [trans]
)")));
  const BranchTargets& t = loaded.config.branch_targets;
  EXPECT_TRUE(t.enforce);
  EXPECT_THAT(t.schemes, ElementsAre("grpc", "http"));
  EXPECT_THAT(t.hosts, ElementsAre("*.svc.cluster.local", "10.0.0.0/8"));
  EXPECT_THAT(t.ports, ElementsAre(8080, 9000));
  EXPECT_THAT(t.services, ElementsAre("trans"));
  EXPECT_TRUE(loaded.warnings.empty());
  // As printed, it reads back the same.
  ASSERT_OK_AND_ASSIGN(LoadedConfig again,
                       LoadServerConfig(Yaml(ToYaml(loaded.config))));
  EXPECT_EQ(ToYaml(again.config), ToYaml(loaded.config));

  ConfigSources env;
  env.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "BRANCH_TARGETS_HOSTS") return " pay.internal , 10.0.0.5 ";
    if (name == "BRANCH_TARGETS_SCHEMES") return "unix";
    return std::nullopt;
  };
  ASSERT_OK_AND_ASSIGN(loaded, LoadServerConfig(env));
  EXPECT_THAT(loaded.config.branch_targets.hosts,
              ElementsAre("pay.internal", "10.0.0.5"));
  EXPECT_THAT(loaded.config.branch_targets.schemes, ElementsAre("unix"));

  for (const char* bad :
       {"BranchTargets:\n  Schemes: [gopher]\n",
        "BranchTargets:\n  Hosts: [10.0.0.0/40]\n",
        "BranchTargets:\n  Ports: [0]\n", "BranchTargets:\n  Ports: [http]\n",
        "BranchTargets:\n  Hosts: [[a]]\n"}) {
    EXPECT_THAT(LoadServerConfig(Yaml(bad)).status(),
                StatusIs(StatusCode::kInvalidArgument, "BranchTargets"))
        << bad;
  }
}

TEST(ServerConfigTest, TlsKeysAndBranchTlsRules) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(Yaml(R"(
TLS:
  CertFile: /etc/dtx/server.pem
  KeyFile: /etc/dtx/server.key
  ClientCAFile: /etc/dtx/clients-ca.pem
BranchTLS:
  - Target: payments.internal:9443
    CAFile: /etc/dtx/payments-ca.pem
  - target: 10.0.0.7
    cafile: /etc/dtx/ca.pem
    CertFile: /etc/dtx/client.pem
    KeyFile: /etc/dtx/client.key
    ServerName: orders.internal
)")));
  const ServerConfig& c = loaded.config;
  EXPECT_TRUE(loaded.warnings.empty());
  EXPECT_EQ(c.tls.cert_file, "/etc/dtx/server.pem");
  EXPECT_EQ(c.tls.key_file, "/etc/dtx/server.key");
  EXPECT_EQ(c.tls.client_ca_file, "/etc/dtx/clients-ca.pem");
  ASSERT_EQ(c.branch_tls.size(), 2u);
  EXPECT_EQ(c.branch_tls[0].target, "payments.internal:9443");
  EXPECT_EQ(c.branch_tls[0].tls.ca_file, "/etc/dtx/payments-ca.pem");
  EXPECT_EQ(c.branch_tls[1].target, "10.0.0.7");
  EXPECT_EQ(c.branch_tls[1].tls.cert_file, "/etc/dtx/client.pem");
  EXPECT_EQ(c.branch_tls[1].tls.key_file, "/etc/dtx/client.key");
  EXPECT_EQ(c.branch_tls[1].tls.server_name, "orders.internal");

  // --print-config shows the paths and reads back the same.
  const std::string printed = ToYaml(c);
  EXPECT_THAT(printed, HasSubstr("/etc/dtx/clients-ca.pem"));
  ASSERT_OK_AND_ASSIGN(LoadedConfig again, LoadServerConfig(Yaml(printed)));
  EXPECT_EQ(ToYaml(again.config), printed);
  EXPECT_TRUE(again.warnings.empty());
}

TEST(ServerConfigTest, TlsFromTheEnvironment) {
  std::map<std::string, std::string> env = {
      {"TLS_CERT_FILE", "/c.pem"},
      {"TLS_KEY_FILE", "/k.pem"},
      {"TLS_CLIENT_CAFILE", "/ca.pem"},
      {"BRANCH_TLS", "[{Target: 'pay:9443', CAFile: /pay-ca.pem}]"}};
  ConfigSources s;
  s.env = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  EXPECT_EQ(EnvNameOf("TLS.ClientCAFile"), "TLS_CLIENT_CAFILE");
  EXPECT_EQ(EnvNameOf("BranchTLS"), "BRANCH_TLS");
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(s));
  EXPECT_EQ(loaded.config.tls.cert_file, "/c.pem");
  EXPECT_EQ(loaded.config.tls.key_file, "/k.pem");
  EXPECT_EQ(loaded.config.tls.client_ca_file, "/ca.pem");
  ASSERT_EQ(loaded.config.branch_tls.size(), 1u);
  EXPECT_EQ(loaded.config.branch_tls[0].target, "pay:9443");
  EXPECT_EQ(loaded.config.branch_tls[0].tls.ca_file, "/pay-ca.pem");

  env["BRANCH_TLS"] = "{Target: pay}";
  EXPECT_THAT(LoadServerConfig(s).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       "environment BRANCH_TLS must be a list"));
}

TEST(ServerConfigTest, TlsMistakesAreErrorsNamingTheKey) {
  struct Case {
    const char* yaml;
    const char* error;
  };
  for (const Case& c : {
           Case{"TLS:\n  CertFile: /c.pem\n",
                "TLS.CertFile and TLS.KeyFile go together (TLS.KeyFile is "
                "empty)"},
           Case{"TLS:\n  KeyFile: /k.pem\n", "(TLS.CertFile is empty)"},
           Case{"TLS:\n  ClientCAFile: /ca.pem\n",
                "TLS.ClientCAFile is set but TLS.CertFile and TLS.KeyFile "
                "are not"},
           Case{"BranchTLS: pay:9443\n", "config: BranchTLS must be a list"},
           Case{"BranchTLS:\n  - CAFile: /ca.pem\n",
                "config: BranchTLS[0]: Target is empty"},
           Case{"BranchTLS:\n  - Target: grpc://pay:9443\n",
                "BranchTLS[0]: Target 'grpc://pay:9443' is not host:port"},
           Case{"BranchTLS:\n  - Target: pay\n    CaPath: /ca.pem\n",
                "BranchTLS[0]: unknown key CaPath"},
           Case{"BranchTLS:\n  - Target: pay\n    CertFile: /c.pem\n",
                "BranchTLS[0]: CertFile and KeyFile go together"},
       }) {
    EXPECT_THAT(LoadServerConfig(Yaml(c.yaml)).status(),
                StatusIs(StatusCode::kInvalidArgument, c.error))
        << c.yaml;
  }
}

// Store.Driver postgres with every one of dtm's PostgreSQL keys.
TEST(ServerConfigTest, PostgresStoreTakesDtmsKeys) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(Yaml(R"(
Store:
  Driver: postgres
  Host: db.internal
  Port: 5433
  User: dtx_app
  Password: 'p4ss w=rd'
  Db: payments
  Schema: dtx_journal
  MaxOpenConns: 20
  MaxIdleConns: 3
  ConnMaxLifeTime: 7
  ConnectTimeout: 2
  WriterConns: 3
)")));
  const ServerConfig& c = loaded.config;
  EXPECT_EQ(c.store_driver, StoreDriver::kPostgres);
  EXPECT_EQ(c.postgres.host, "db.internal");
  EXPECT_EQ(c.postgres.port, 5433);
  EXPECT_EQ(c.postgres.user, "dtx_app");
  EXPECT_EQ(c.postgres.password, "p4ss w=rd");
  EXPECT_EQ(c.postgres.db, "payments");
  EXPECT_EQ(c.postgres.schema, "dtx_journal");
  EXPECT_EQ(c.postgres.max_open_conns, 20);
  EXPECT_EQ(c.postgres.max_idle_conns, 3);
  EXPECT_EQ(c.postgres.conn_max_lifetime, std::chrono::minutes(7));
  EXPECT_EQ(c.postgres.connect_timeout, seconds(2));
  EXPECT_EQ(c.postgres.writer_conns, 3);
  EXPECT_TRUE(loaded.warnings.empty());
}

TEST(ServerConfigTest, PostgresDefaultsAndSqliteStaysTheDefaultDriver) {
  ASSERT_OK_AND_ASSIGN(LoadedConfig none, LoadServerConfig({}));
  EXPECT_EQ(none.config.store_driver, StoreDriver::kSqlite);
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig loaded,
      LoadServerConfig(Yaml("Store:\n  Driver: PostgreSQL\n  Host: db\n")));
  const PostgresStoreConfig& pg = loaded.config.postgres;
  EXPECT_EQ(loaded.config.store_driver, StoreDriver::kPostgres);
  EXPECT_EQ(pg.port, 5432);
  EXPECT_EQ(pg.user, "");
  EXPECT_EQ(pg.password, "");
  EXPECT_EQ(pg.db, "dtx");
  EXPECT_EQ(pg.schema, "public");
  EXPECT_EQ(pg.max_open_conns, 500);                         // dtm's
  EXPECT_EQ(pg.max_idle_conns, 500);                         // dtm's
  EXPECT_EQ(pg.conn_max_lifetime, std::chrono::minutes(5));  // dtm's
  EXPECT_EQ(pg.connect_timeout, seconds(5));
  EXPECT_EQ(pg.writer_conns, 1);
  // boltdb, dtm's default, still means the SQLite journal.
  ASSERT_OK_AND_ASSIGN(LoadedConfig bolt,
                       LoadServerConfig(Yaml("Store:\n  Driver: boltdb\n")));
  EXPECT_EQ(bolt.config.store_driver, StoreDriver::kSqlite);
}

TEST(ServerConfigTest, PostgresKeysFromDtmsEnvironmentNames) {
  EXPECT_EQ(EnvNameOf("Store.Driver"), "STORE_DRIVER");
  EXPECT_EQ(EnvNameOf("Store.Host"), "STORE_HOST");
  EXPECT_EQ(EnvNameOf("Store.Port"), "STORE_PORT");
  EXPECT_EQ(EnvNameOf("Store.User"), "STORE_USER");
  EXPECT_EQ(EnvNameOf("Store.Password"), "STORE_PASSWORD");
  EXPECT_EQ(EnvNameOf("Store.Db"), "STORE_DB");
  EXPECT_EQ(EnvNameOf("Store.Schema"), "STORE_SCHEMA");
  EXPECT_EQ(EnvNameOf("Store.MaxOpenConns"), "STORE_MAX_OPEN_CONNS");
  EXPECT_EQ(EnvNameOf("Store.MaxIdleConns"), "STORE_MAX_IDLE_CONNS");
  EXPECT_EQ(EnvNameOf("Store.ConnMaxLifeTime"), "STORE_CONN_MAX_LIFE_TIME");
  EXPECT_EQ(EnvNameOf("Store.ConnectTimeout"), "STORE_CONNECT_TIMEOUT");
  EXPECT_EQ(EnvNameOf("Store.WriterConns"), "STORE_WRITER_CONNS");

  // The file says one server; the environment overrides every key.
  ConfigSources s = Yaml(
      "Store:\n  Driver: sqlite\n  Host: file-host\n  Port: 5000\n"
      "  Password: from-file\n");
  std::map<std::string, std::string> env = {
      {"STORE_DRIVER", "postgres"},   {"STORE_HOST", "env-host"},
      {"STORE_PORT", "6543"},         {"STORE_USER", "env-user"},
      {"STORE_PASSWORD", "env-pass"}, {"STORE_DB", "env_db"},
      {"STORE_SCHEMA", "env_schema"}, {"STORE_MAX_OPEN_CONNS", "9"},
      {"STORE_MAX_IDLE_CONNS", "2"},  {"STORE_CONN_MAX_LIFE_TIME", "0"},
      {"STORE_CONNECT_TIMEOUT", "11"}};
  s.env = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  ASSERT_OK_AND_ASSIGN(LoadedConfig loaded, LoadServerConfig(s));
  const PostgresStoreConfig& pg = loaded.config.postgres;
  EXPECT_EQ(loaded.config.store_driver, StoreDriver::kPostgres);
  EXPECT_EQ(pg.host, "env-host");
  EXPECT_EQ(pg.port, 6543);
  EXPECT_EQ(pg.user, "env-user");
  EXPECT_EQ(pg.password, "env-pass");
  EXPECT_EQ(pg.db, "env_db");
  EXPECT_EQ(pg.schema, "env_schema");
  EXPECT_EQ(pg.max_open_conns, 9);
  EXPECT_EQ(pg.max_idle_conns, 2);
  EXPECT_EQ(pg.conn_max_lifetime, std::chrono::minutes(0));
  EXPECT_EQ(pg.connect_timeout, seconds(11));
  EXPECT_TRUE(loaded.warnings.empty());

  env["STORE_PORT"] = "post";
  EXPECT_THAT(LoadServerConfig(s),
              StatusIs(StatusCode::kInvalidArgument,
                       "environment STORE_PORT (Store.Port): 'post' is not "
                       "an integer"));
}

TEST(ServerConfigTest, PostgresMistakesAreErrorsNamingTheKey) {
  struct Case {
    const char* yaml;
    const char* error;
  };
  const std::string pg = "Store:\n  Driver: postgres\n  Host: db\n";
  for (const Case& c : {
           Case{"Store:\n  Driver: postgres\n",
                "Store.Driver is postgres but Store.Host is empty"},
           Case{"Store:\n  Driver: postgres\n  Host: ''\n",
                "Store.Driver is postgres but Store.Host is empty"},
           Case{"  Port: 0\n", "Store.Port: '0' is outside 1..65535"},
           Case{"  Port: 65536\n", "Store.Port: '65536' is outside 1..65535"},
           Case{"  Port: fivefour\n", "Store.Port: 'fivefour' is not an"},
           Case{"  Host: 'a b'\n", "Store.Host: 'a b' is not one host"},
           Case{"  Host: 'h1:5432,h2:5432'\n", "Store.Host: 'h1:5432,h2:5432'"},
           Case{"  Db: ''\n", "Store.Db: is empty"},
           Case{"  Schema: 'my-schema'\n",
                "Store.Schema: 'my-schema' is not a plain identifier"},
           Case{"  Schema: 1st\n", "Store.Schema: '1st' is not a plain"},
           Case{"  MaxOpenConns: 1\n", "Store.MaxOpenConns: 1 is too few"},
           Case{"  MaxOpenConns: -1\n", "Store.MaxOpenConns: '-1' is outside"},
           Case{"  MaxIdleConns: lots\n", "Store.MaxIdleConns: 'lots'"},
           Case{"  ConnMaxLifeTime: -5\n", "Store.ConnMaxLifeTime: '-5'"},
           Case{"  ConnectTimeout: 0\n", "Store.ConnectTimeout: '0'"},
           Case{"  WriterConns: 0\n", "Store.WriterConns: '0' is outside"},
           Case{"  MaxOpenConns: 3\n  WriterConns: 3\n",
                "Store.MaxOpenConns 3 leaves no connection for reads"},
           Case{"  Driver: mysql\n", "'mysql': dtx keeps its journal in"},
       }) {
    const std::string yaml = c.yaml[0] == ' ' ? pg + c.yaml : c.yaml;
    EXPECT_THAT(LoadServerConfig(Yaml(yaml)).status(),
                StatusIs(StatusCode::kInvalidArgument, c.error))
        << yaml;
  }
}

TEST(ServerConfigTest, PostgresPasswordIsNeverPrintedOrEchoed) {
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig loaded,
      LoadServerConfig(Yaml("Store:\n  Driver: postgres\n  Host: db\n"
                            "  Password: hunter2\n")));
  const std::string printed = ToYaml(loaded.config);
  EXPECT_THAT(printed, ::testing::Not(HasSubstr("hunter2")));
  EXPECT_THAT(printed, HasSubstr("Password: (set)"));
  EXPECT_THAT(printed, HasSubstr("Host: db"));
  // Without a password the line says so.
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig none,
      LoadServerConfig(Yaml("Store:\n  Driver: postgres\n  Host: db\n")));
  EXPECT_THAT(ToYaml(none.config), HasSubstr("Password: \"\""));
  // A password in the wrong shape is refused without showing it.
  auto listed = LoadServerConfig(
      Yaml("Store:\n  Driver: postgres\n  Host: db\n  Password: [hunter2]\n"));
  EXPECT_THAT(listed.status(), StatusIs(StatusCode::kInvalidArgument,
                                        "Store.Password must be a single"));
  EXPECT_THAT(listed.status().message(), ::testing::Not(HasSubstr("hunter2")));
  // A password with Store.Driver sqlite is named in a warning, not shown.
  ASSERT_OK_AND_ASSIGN(LoadedConfig sqlite,
                       LoadServerConfig(Yaml("Store:\n  Password: hunter2\n")));
  ASSERT_EQ(sqlite.warnings.size(), 1u);
  EXPECT_THAT(sqlite.warnings[0],
              HasSubstr("Store.Password is set but Store.Driver is sqlite"));
  EXPECT_THAT(sqlite.warnings[0], ::testing::Not(HasSubstr("hunter2")));
}

TEST(ServerConfigTest, KeysOfTheOtherStoreDriverAreWarnings) {
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig sqlite,
      LoadServerConfig(Yaml("Store:\n  Driver: sqlite\n  Port: 5433\n"
                            "  MaxOpenConns: 10\n  ConnMaxLifeTime: 1\n")));
  EXPECT_THAT(
      sqlite.warnings,
      ElementsAre(
          HasSubstr("Store.Port is set but Store.Driver is sqlite; ignored"),
          HasSubstr("Store.MaxOpenConns is set but Store.Driver is sqlite"),
          HasSubstr("Store.ConnMaxLifeTime is set but Store.Driver is")));
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig pg,
      LoadServerConfig(
          Yaml("Store:\n  Driver: postgres\n  Host: db\n"
               "  Path: /var/lib/dtx.db\n  Synchronous: normal\n")));
  EXPECT_THAT(
      pg.warnings,
      ElementsAre(
          HasSubstr("Store.Path is set but Store.Driver is postgres; ignored"),
          HasSubstr("Store.Synchronous is set but Store.Driver is postgres")));
}

TEST(ServerConfigTest, PrintedPostgresConfigReadsBackTheSame) {
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig first,
      LoadServerConfig(Yaml("Store:\n  Driver: postgres\n  Host: db\n"
                            "  Port: 5499\n  User: u\n  Db: d\n  Schema: s\n"
                            "  MaxOpenConns: 0\n  MaxIdleConns: 0\n"
                            "  ConnMaxLifeTime: 0\n  ConnectTimeout: 9\n"
                            "  WriterConns: 2\n")));
  const std::string printed = ToYaml(first.config);
  EXPECT_THAT(printed, ::testing::Not(HasSubstr("Path:")));
  ASSERT_OK_AND_ASSIGN(LoadedConfig second, LoadServerConfig(Yaml(printed)));
  EXPECT_EQ(ToYaml(second.config), printed);
  EXPECT_TRUE(second.warnings.empty());
}

TEST(ServerConfigTest, InstanceIdNamesTheRegistrationKey) {
  EXPECT_EQ(EnvNameOf("MicroService.InstanceId"), "MICRO_SERVICE_INSTANCE_ID");
  ASSERT_OK_AND_ASSIGN(LoadedConfig none, LoadServerConfig({}));
  EXPECT_EQ(none.config.instance_id, "");  // a random id at each start
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig loaded,
      LoadServerConfig(Yaml("MicroService:\n  Driver: dtm-driver-kratos\n"
                            "  Target: etcd://127.0.0.1:2379/dtmservice\n"
                            "  EndPoint: grpc://10.0.0.5:36790\n"
                            "  InstanceId: dtx-0\n")));
  EXPECT_EQ(loaded.config.instance_id, "dtx-0");
  EXPECT_TRUE(loaded.warnings.empty());
  EXPECT_THAT(ToYaml(loaded.config), HasSubstr("InstanceId: dtx-0"));
  EXPECT_THAT(LoadServerConfig(Yaml("MicroService:\n  InstanceId: a/b\n")),
              StatusIs(StatusCode::kInvalidArgument,
                       "MicroService.InstanceId: 'a/b' holds a character"));
  EXPECT_THAT(
      LoadServerConfig(Yaml("MicroService:\n  InstanceId: 'a b'\n")),
      StatusIs(StatusCode::kInvalidArgument, "MicroService.InstanceId"));
  EXPECT_THAT(LoadServerConfig(Yaml("MicroService:\n  InstanceId: " +
                                    std::string(129, 'x') + "\n")),
              StatusIs(StatusCode::kInvalidArgument, "over 128 bytes"));
  // Without a Target nothing registers: said, not silently dropped.
  ASSERT_OK_AND_ASSIGN(
      LoadedConfig alone,
      LoadServerConfig(Yaml("MicroService:\n  InstanceId: dtx-0\n")));
  EXPECT_THAT(alone.warnings,
              ElementsAre(HasSubstr("MicroService.InstanceId is set but "
                                    "MicroService.Target is empty")));
}

}  // namespace
}  // namespace dtx::server
