// Kratos service instances as etcd's registry holds them (values under
// /microservices/<service>/<id>, written by any Kratos service or dtm):
// DecodeServiceInstance, then the endpoint picks of the gRPC and HTTP
// resolvers. Property: an instance that decodes encodes (as Go would) to
// JSON that decodes to the same instance.

#include "dtx/transport/kratos_registry.h"

#include "fuzz_check.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

bool Same(const dtx::ServiceInstance& a, const dtx::ServiceInstance& b) {
  return a.id == b.id && a.name == b.name && a.version == b.version &&
         a.metadata == b.metadata && a.endpoints == b.endpoints;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto instance = dtx::DecodeServiceInstance(json);
  if (!instance.ok()) return 0;
  (void)dtx::PickGrpcEndpoint(*instance);
  (void)dtx::PickHttpEndpoint(*instance);
  const std::string encoded = dtx::EncodeServiceInstance(*instance);
  auto again = dtx::DecodeServiceInstance(encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(Same(*instance, *again));
  FUZZ_CHECK(dtx::EncodeServiceInstance(*again) == encoded);
  return 0;
}
