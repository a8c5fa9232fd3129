// ServiceResolver: the registry behind discovery:// branch URLs. It maps a
// service name to the "host:port" addresses of its instances.
// EtcdServiceResolver (dtx/transport/kratos_registry.h) reads Kratos's etcd
// registry; StaticServiceResolver serves fixed lists.
//
// Thread safety: implementations are thread-safe.

#ifndef DTX_TRANSPORT_SERVICE_RESOLVER_H_
#define DTX_TRANSPORT_SERVICE_RESOLVER_H_

#include "dtx/internal/mutex.h"
#include "dtx/result.h"
#include "dtx/transport/grpc_export.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dtx {

// An immutable snapshot of a service's addresses. A new set means a change:
// callers compare pointers to notice it.
using AddressSet = std::shared_ptr<const std::vector<std::string>>;

class DTX_GRPC_EXPORT ServiceResolver {
 public:
  virtual ~ServiceResolver();
  // The current addresses of `service`, starting to follow it if needed. Must
  // be cheap (it runs on every call). kUnavailable when no address is known.
  virtual Result<AddressSet> Resolve(const std::string& service) = 0;
};

// Addresses set by hand.
class DTX_GRPC_EXPORT StaticServiceResolver final : public ServiceResolver {
 public:
  // Replaces the addresses of `service`; an empty list forgets it.
  void Set(const std::string& service, std::vector<std::string> addresses);
  Result<AddressSet> Resolve(const std::string& service) override;

 private:
  internal::Mutex mu_;
  std::map<std::string, AddressSet> services_ DTX_GUARDED_BY(mu_);
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_SERVICE_RESOLVER_H_
