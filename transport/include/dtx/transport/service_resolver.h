// ServiceResolver: the registry behind discovery:// branch URLs. It maps a
// service name to the "host:port" addresses of its instances (gRPC calls),
// and to the base URLs of their http:// endpoints (HTTP calls of protocol
// http transactions).
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
  // The base URLs ("http://10.0.0.5:8000", "https://...") of `service`'s
  // instances' HTTP endpoints; same rules as Resolve. The default is
  // kUnimplemented (a registry without HTTP endpoints).
  virtual Result<AddressSet> ResolveHttp(const std::string& service);
};

// Addresses set by hand.
class DTX_GRPC_EXPORT StaticServiceResolver final : public ServiceResolver {
 public:
  // Replaces the addresses of `service`; an empty list forgets it.
  void Set(const std::string& service, std::vector<std::string> addresses);
  // Replaces the HTTP base URLs of `service`; an empty list forgets them.
  void SetHttp(const std::string& service, std::vector<std::string> urls);
  Result<AddressSet> Resolve(const std::string& service) override;
  Result<AddressSet> ResolveHttp(const std::string& service) override;

 private:
  internal::Mutex mu_;
  std::map<std::string, AddressSet> services_ DTX_GUARDED_BY(mu_);
  std::map<std::string, AddressSet> http_ DTX_GUARDED_BY(mu_);
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_SERVICE_RESOLVER_H_
