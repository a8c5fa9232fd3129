// dtx-server's configuration (LoadServerConfig): the YAML file dtm's users
// bring, and the environment variables that override it. The input is the
// YAML text; when it starts with the byte 0x01, the second byte is n and the
// rest is the value of the n-th environment variable the loader asks for
// (every key has one, BRANCH_TLS takes YAML), with no file. Property: the
// configuration that --print-config prints (ToYaml) loads, and prints the
// same again.

#include "dtx/server/server_config.h"

#include "fuzz_check.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  dtx::server::ConfigSources sources;
  if (size >= 2 && data[0] == 0x01) {
    const int wanted = data[1];
    auto calls = std::make_shared<int>(0);
    const std::string value = input.substr(2);
    sources.env = [wanted, calls,
                   value](const std::string&) -> std::optional<std::string> {
      if ((*calls)++ == wanted) return value;
      return std::nullopt;
    };
  } else {
    sources.yaml_text = input;
  }
  auto loaded = dtx::server::LoadServerConfig(sources);
  if (!loaded.ok()) return 0;

  const std::string printed = dtx::server::ToYaml(loaded->config);
  dtx::server::ConfigSources again;
  again.yaml_text = printed;
  auto reloaded = dtx::server::LoadServerConfig(again);
  if (!reloaded.ok()) {
    std::fprintf(stderr, "printed config does not load: %s\n%s\n",
                 reloaded.status().message().c_str(), printed.c_str());
  }
  FUZZ_CHECK(reloaded.ok());
  const std::string again_printed = dtx::server::ToYaml(reloaded->config);
  if (again_printed != printed) {
    std::fprintf(stderr, "printed:\n%s\nprinted again:\n%s\n", printed.c_str(),
                 again_printed.c_str());
  }
  FUZZ_CHECK(again_printed == printed);
  return 0;
}
