// KratosRegistrar: one instance kept registered in etcd under a lease, as
// go-kratos/contrib/registry/etcd registers it. A thread of its own renews
// the lease every TTL/3 and registers the instance again under a new lease
// when etcd has lost the old one.

#include "dtx/internal/mutex.h"
#include "dtx/transport/kratos_registry.h"

#include <algorithm>
#include <string>
#include <thread>
#include <utility>

namespace dtx {

using internal::MutexLock;

namespace {

std::string InstanceKey(const std::string& ns, const ServiceInstance& i) {
  return ns + "/" + i.name + "/" + i.id;
}

}  // namespace

struct KratosRegistrar::Impl {
  std::shared_ptr<EtcdClient> etcd;
  ServiceInstance instance;
  Options options;
  std::string key;
  std::string value;
  std::shared_ptr<Logger> logger;

  internal::Mutex mu;
  internal::CondVar cv{&mu};
  bool stop DTX_GUARDED_BY(mu) = false;
  int64_t lease DTX_GUARDED_BY(mu) = 0;
  std::thread thread;

  Status PutWithNewLease() {
    DTX_ASSIGN_OR_RETURN(EtcdLease l, etcd->GrantLease(options.ttl));
    Status s = etcd->Put(key, value, l.id);
    if (!s.ok()) {
      etcd->RevokeLease(l.id).IgnoreError();
      return s;
    }
    MutexLock lock(&mu);
    lease = l.id;
    return Status::Ok();
  }

  void KeepAlive() {
    auto period = std::max<std::chrono::milliseconds>(
        options.ttl / 3, std::chrono::milliseconds(500));
    for (;;) {
      int64_t id = 0;
      {
        MutexLock lock(&mu);
        if (cv.WaitFor(&mu, period, [this] {
              mu.AssertHeld();
              return stop;
            })) {
          return;
        }
        id = lease;
      }
      auto ttl = etcd->KeepAliveOnce(id);
      bool lost = ttl.ok() && ttl->count() == 0;
      lost =
          lost || (!ttl.ok() && ttl.status().code() == StatusCode::kNotFound);
      Status s = ttl.status();
      if (lost) {
        DTX_LOG(logger, LogLevel::kWarn,
                "registry: lease of " << key << " lost; registering again");
        s = PutWithNewLease();
      }
      if (!s.ok()) {
        DTX_LOG(logger, LogLevel::kWarn,
                "registry: keeping " << key << " alive: " << s);
      }
      // After a failure, try again sooner than a whole period.
      period = s.ok() ? std::max<std::chrono::milliseconds>(
                            options.ttl / 3, std::chrono::milliseconds(500))
                      : std::chrono::milliseconds(1000);
    }
  }
};

KratosRegistrar::KratosRegistrar(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

Result<std::unique_ptr<KratosRegistrar>> KratosRegistrar::Register(
    std::shared_ptr<EtcdClient> etcd, ServiceInstance instance,
    Options options) {
  if (!etcd) return InvalidArgumentError("registry: no etcd client");
  if (instance.name.empty() || instance.id.empty() ||
      instance.endpoints.empty()) {
    return InvalidArgumentError(
        "registry: an instance needs a name, an id and endpoints");
  }
  if (instance.name.find('/') != std::string::npos) {
    return InvalidArgumentError("registry: service name '" + instance.name +
                                "' contains '/'");
  }
  if (options.ttl.count() < 2)
    return InvalidArgumentError("registry: ttl must be at least 2 s");
  auto impl = std::make_unique<Impl>();
  impl->etcd = std::move(etcd);
  impl->key = InstanceKey(options.ns, instance);
  impl->value = EncodeServiceInstance(instance);
  impl->instance = std::move(instance);
  impl->logger = options.logger ? options.logger : NewNullLogger();
  impl->options = std::move(options);
  DTX_RETURN_IF_ERROR(impl->PutWithNewLease());
  DTX_LOG(impl->logger, LogLevel::kInfo, "registry: registered " << impl->key);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->KeepAlive(); });
  return std::unique_ptr<KratosRegistrar>(new KratosRegistrar(std::move(impl)));
}

KratosRegistrar::~KratosRegistrar() {
  {
    MutexLock lock(&impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.SignalAll();
  impl_->thread.join();
  int64_t lease = 0;
  {
    MutexLock lock(&impl_->mu);
    lease = impl_->lease;
  }
  impl_->etcd->Delete(impl_->key).status().IgnoreError();
  impl_->etcd->RevokeLease(lease).IgnoreError();
}

const std::string& KratosRegistrar::key() const { return impl_->key; }

}  // namespace dtx
