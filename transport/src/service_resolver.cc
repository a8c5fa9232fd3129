#include "dtx/transport/service_resolver.h"

namespace dtx {

ServiceResolver::~ServiceResolver() = default;

Result<AddressSet> ServiceResolver::ResolveHttp(const std::string& service) {
  return UnimplementedError("resolver: service '" + service +
                            "': this registry has no HTTP endpoints");
}

void StaticServiceResolver::SetHttp(const std::string& service,
                                    std::vector<std::string> urls) {
  internal::MutexLock lock(&mu_);
  if (urls.empty()) {
    http_.erase(service);
  } else {
    http_[service] =
        std::make_shared<const std::vector<std::string>>(std::move(urls));
  }
}

Result<AddressSet> StaticServiceResolver::ResolveHttp(
    const std::string& service) {
  internal::MutexLock lock(&mu_);
  auto it = http_.find(service);
  if (it == http_.end()) {
    return UnavailableError("resolver: service '" + service +
                            "' has no known http endpoint");
  }
  return it->second;
}

void StaticServiceResolver::Set(const std::string& service,
                                std::vector<std::string> addresses) {
  internal::MutexLock lock(&mu_);
  if (addresses.empty()) {
    services_.erase(service);
  } else {
    services_[service] =
        std::make_shared<const std::vector<std::string>>(std::move(addresses));
  }
}

Result<AddressSet> StaticServiceResolver::Resolve(const std::string& service) {
  internal::MutexLock lock(&mu_);
  auto it = services_.find(service);
  if (it == services_.end()) {
    return UnavailableError("resolver: service '" + service +
                            "' has no known address");
  }
  return it->second;
}

}  // namespace dtx
