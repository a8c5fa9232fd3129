// Branch URLs, as a transaction's steps and registered branches carry them
// and dtx reads them before every call: gRPC URLs (SplitBranchUrl, then
// ParseBranchServer under both drivers, ChannelTargetForAddress for each
// direct:/// address), HTTP URLs (ParseHttpUrl, ParseRegistryHttpUrl) and
// the Kratos registry target of dtm's MicroService.Target
// (ParseRegistryTarget). Properties: a split URL is its server followed by
// its method; every address of a direct:/// list has a channel target.

#include "dtx/transport/branch_url.h"
#include "dtx/transport/http_branch_client.h"
#include "dtx/transport/http_client.h"
#include "dtx/transport/kratos_registry.h"

#include "fuzz_check.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(data), size);

  auto split = dtx::SplitBranchUrl(url);
  if (split.ok()) {
    FUZZ_CHECK(split->server + split->method == url);
    FUZZ_CHECK(!split->method.empty() && split->method.front() == '/');
    for (std::string_view driver : {dtx::kDefaultDriver, dtx::kKratosDriver}) {
      auto target = dtx::ParseBranchServer(split->server, driver);
      if (!target.ok()) continue;
      if (target->kind == dtx::BranchTarget::Kind::kAddresses) {
        FUZZ_CHECK(!target->addresses.empty());
        for (const std::string& address : target->addresses) {
          FUZZ_CHECK(dtx::ChannelTargetForAddress(address).ok());
        }
      }
      if (target->kind == dtx::BranchTarget::Kind::kService) {
        FUZZ_CHECK(driver == dtx::kKratosDriver);
      }
    }
  }
  (void)dtx::ChannelTargetForAddress(url);
  (void)dtx::ParseRegistryTarget(url);

  auto http = dtx::ParseHttpUrl(url);
  if (http.ok()) {
    FUZZ_CHECK(!http->host.empty());
    FUZZ_CHECK(!http->target.empty() && http->target.front() == '/');
  }
  auto registry = dtx::ParseRegistryHttpUrl(url);
  if (registry.ok()) {
    FUZZ_CHECK(!registry->path.empty() && registry->path.front() == '/');
  }
  return 0;
}
