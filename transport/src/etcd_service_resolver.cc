// EtcdServiceResolver: the addresses of Kratos services registered in etcd,
// for discovery:// branch URLs. One worker thread lists each service asked
// for and keeps a prefix watch on it; a watch event marks the service for a
// new listing, and each listing swaps in new immutable address sets: one of
// grpc:// addresses (Resolve), one of http:// base URLs (ResolveHttp).

#include "dtx/internal/mutex.h"
#include "dtx/transport/kratos_registry.h"

#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dtx {

using internal::MutexLock;

struct EtcdServiceResolver::Impl {
  struct Service {
    AddressSet set;       // last non-empty grpc set, or null
    AddressSet http_set;  // last non-empty http set, or null
    bool listed = false;
    bool dirty = true;  // must be listed again
    bool watching = false;
    std::unique_ptr<EtcdWatch> watch;
  };

  std::shared_ptr<EtcdClient> etcd;
  Options options;
  std::shared_ptr<Logger> logger;
  internal::Mutex mu;
  internal::CondVar cv{&mu};  // work for the worker, or a listing done
  std::map<std::string, Service> services DTX_GUARDED_BY(mu);
  bool stop DTX_GUARDED_BY(mu) = false;
  std::thread worker;

  // The services to list (again) or to watch (again).
  std::vector<std::string> Pending() const DTX_REQUIRES(mu) {
    std::vector<std::string> todo;
    for (const auto& [name, s] : services) {
      if (s.dirty || !s.watching) todo.push_back(name);
    }
    return todo;
  }

  struct Listing {
    std::vector<std::string> grpc;  // "host:port", sorted, unique
    std::vector<std::string> http;  // "http://host:port", sorted, unique
    int64_t revision = 0;
  };

  // Lists `name`: its instances' addresses and the revision.
  Result<Listing> List(const std::string& name) {
    DTX_ASSIGN_OR_RETURN(EtcdRange range,
                         etcd->GetPrefix(options.ns + "/" + name + "/"));
    std::set<std::string> addresses;
    std::set<std::string> http;
    for (const auto& kv : range.kvs) {
      auto instance = DecodeServiceInstance(kv.value);
      if (!instance.ok()) {
        DTX_LOG(logger, LogLevel::kWarn,
                "registry: skipping " << kv.key << ": " << instance.status());
        continue;
      }
      if (instance->name != name) continue;  // Kratos filters by name too
      auto address = PickGrpcEndpoint(*instance);
      auto http_base = PickHttpEndpoint(*instance);
      if (!address && !http_base) {
        DTX_LOG(logger, LogLevel::kWarn,
                "registry: skipping " << kv.key
                                      << ": no grpc://, grpcs:// or http:// "
                                         "endpoint");
        continue;
      }
      if (address) addresses.insert(*address);
      if (http_base) http.insert(*http_base);
    }
    Listing out;
    out.grpc.assign(addresses.begin(), addresses.end());
    out.http.assign(http.begin(), http.end());
    out.revision = range.revision;
    return out;
  }

  // Resolve and ResolveHttp.
  Result<AddressSet> Lookup(const std::string& service, bool http);

  void Run() {
    bool failed = false;
    for (;;) {
      std::vector<std::string> todo;
      {
        MutexLock lock(&mu);
        // Back off while etcd is unreachable.
        if (failed) {
          cv.WaitFor(&mu, std::chrono::seconds(1), [this] {
            mu.AssertHeld();
            return stop;
          });
        }
        cv.WaitFor(&mu, std::chrono::seconds(10), [&] {
          mu.AssertHeld();
          todo = Pending();
          return stop || !todo.empty();
        });
        if (stop) return;
      }
      failed = false;
      for (const std::string& name : todo) failed = !Refresh(name) || failed;
    }
  }

  // Lists `name` and (re)starts its watch if needed. Called without `mu`.
  bool Refresh(const std::string& name) {
    std::unique_ptr<EtcdWatch> old;
    bool need_watch = false;
    {
      MutexLock lock(&mu);
      Service& s = services[name];
      s.dirty = false;
      need_watch = !s.watching;
      if (need_watch) old = std::move(s.watch);
    }
    old.reset();  // outside the lock: its callbacks take the lock
    auto listed = List(name);
    if (!listed.ok()) {
      DTX_LOG(logger, LogLevel::kWarn,
              "registry: listing '" << name << "': " << listed.status());
      MutexLock lock(&mu);
      services[name].dirty = true;
      return false;
    }
    std::unique_ptr<EtcdWatch> watch;
    if (need_watch) {
      auto w = etcd->WatchPrefix(
          options.ns + "/" + name + "/", listed->revision + 1,
          [this, name](const std::vector<EtcdEvent>&, int64_t) {
            MutexLock lock(&mu);
            services[name].dirty = true;
            cv.SignalAll();
          },
          [this, name](const Status& s) {
            DTX_LOG(logger, LogLevel::kWarn,
                    "registry: watch of '" << name << "' ended: " << s);
            MutexLock lock(&mu);
            services[name].watching = false;
            cv.SignalAll();
          });
      if (w.ok()) watch = std::move(w).value();
    }
    MutexLock lock(&mu);
    Service& s = services[name];
    if (!listed->grpc.empty()) {
      s.set = std::make_shared<const std::vector<std::string>>(
          std::move(listed->grpc));
    }
    if (!listed->http.empty()) {
      s.http_set = std::make_shared<const std::vector<std::string>>(
          std::move(listed->http));
    }
    s.listed = true;
    if (watch) {
      s.watch = std::move(watch);
      s.watching = true;
    }
    cv.SignalAll();
    return true;
  }
};

EtcdServiceResolver::EtcdServiceResolver(std::shared_ptr<EtcdClient> etcd,
                                         Options options)
    : impl_(std::make_unique<Impl>()) {
  impl_->etcd = std::move(etcd);
  impl_->logger = options.logger ? options.logger : NewNullLogger();
  impl_->options = std::move(options);
  Impl* raw = impl_.get();
  impl_->worker = std::thread([raw] { raw->Run(); });
}

EtcdServiceResolver::~EtcdServiceResolver() {
  std::map<std::string, Impl::Service> services;
  {
    MutexLock lock(&impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.SignalAll();
  impl_->worker.join();
  {
    MutexLock lock(&impl_->mu);
    services.swap(impl_->services);
  }
  // The watches are cancelled (and their threads joined) here, unlocked.
}

Result<AddressSet> EtcdServiceResolver::Resolve(const std::string& service) {
  return impl_->Lookup(service, /*http=*/false);
}

Result<AddressSet> EtcdServiceResolver::ResolveHttp(
    const std::string& service) {
  return impl_->Lookup(service, /*http=*/true);
}

Result<AddressSet> EtcdServiceResolver::Impl::Lookup(const std::string& service,
                                                     bool http) {
  MutexLock lock(&mu);
  auto& s = services[service];  // registers it with the worker
  if (!s.listed) {
    cv.SignalAll();
    cv.WaitFor(&mu, options.first_lookup_timeout, [&] {
      mu.AssertHeld();
      return services[service].listed || stop;
    });
  }
  const auto& now = services[service];
  const AddressSet& set = http ? now.http_set : now.set;
  if (!set) {
    return UnavailableError(
        "registry: service '" + service + "' has no instance with " +
        (http ? "an http:// endpoint" : "a grpc:// or grpcs:// endpoint") +
        (now.listed ? "" : " (etcd did not answer)"));
  }
  return set;
}

Result<std::shared_ptr<EtcdServiceResolver>> EtcdServiceResolver::Connect(
    std::vector<std::string> etcd_endpoints, Options options) {
  EtcdClientOptions etcd_options;
  etcd_options.endpoints = std::move(etcd_endpoints);
  return Connect(std::move(etcd_options), std::move(options));
}

Result<std::shared_ptr<EtcdServiceResolver>> EtcdServiceResolver::Connect(
    EtcdClientOptions etcd_options, Options options) {
  DTX_ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> etcd,
                       EtcdClient::Create(etcd_options));
  return std::make_shared<EtcdServiceResolver>(
      std::shared_ptr<EtcdClient>(std::move(etcd)), std::move(options));
}

}  // namespace dtx
