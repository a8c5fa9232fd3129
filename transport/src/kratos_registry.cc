// Kratos's etcd registry: the instance JSON (Go's encoding), registration
// with a kept-alive lease, and a resolver that lists and watches a service.

#include "dtx/transport/kratos_registry.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

namespace dtx {
namespace {

// A JSON string as Go's encoding/json writes it: <, > and & (and U+2028,
// U+2029) escaped, so that the value is byte-identical to a Go writer's.
void AppendGoString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '<':
      case '>':
      case '&': {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        *out += buf;
        break;
      }
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          *out += buf;
        } else if (c == 0xe2 && i + 2 < s.size() &&
                   static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
                    static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
          *out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028"
                                                               : "\\u2029";
          i += 2;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

bool GoParseBool(std::string_view v, bool* out) {
  if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" ||
      v == "True") {
    *out = true;
    return true;
  }
  if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" ||
      v == "False") {
    *out = false;
    return true;
  }
  return false;
}

std::string InstanceKey(const std::string& ns, const ServiceInstance& i) {
  return ns + "/" + i.name + "/" + i.id;
}

}  // namespace

std::string EncodeServiceInstance(const ServiceInstance& instance) {
  std::string out = "{\"id\":";
  AppendGoString(&out, instance.id);
  out += ",\"name\":";
  AppendGoString(&out, instance.name);
  out += ",\"version\":";
  AppendGoString(&out, instance.version);
  out += ",\"metadata\":";
  if (instance.metadata.empty()) {
    out += "null";
  } else {
    out += "{";
    bool first = true;
    for (const auto& [k, v] : instance.metadata) {  // Go sorts map keys too
      if (!first) out += ",";
      first = false;
      AppendGoString(&out, k);
      out += ":";
      AppendGoString(&out, v);
    }
    out += "}";
  }
  out += ",\"endpoints\":";
  if (instance.endpoints.empty()) {
    out += "null";
  } else {
    out += "[";
    for (std::size_t i = 0; i < instance.endpoints.size(); ++i) {
      if (i > 0) out += ",";
      AppendGoString(&out, instance.endpoints[i]);
    }
    out += "]";
  }
  out += "}";
  return out;
}

Result<ServiceInstance> DecodeServiceInstance(std::string_view text) {
  nlohmann::json j =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgumentError("registry: not a JSON object");
  }
  ServiceInstance out;
  auto string_field = [&](const char* key, std::string* field) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::Ok();
    if (!it->is_string())
      return InvalidArgumentError(std::string("registry: '") + key +
                                  "' is not a string");
    *field = it->get<std::string>();
    return Status::Ok();
  };
  DTX_RETURN_IF_ERROR(string_field("id", &out.id));
  DTX_RETURN_IF_ERROR(string_field("name", &out.name));
  DTX_RETURN_IF_ERROR(string_field("version", &out.version));
  if (out.name.empty())
    return InvalidArgumentError("registry: instance without a name");
  auto md = j.find("metadata");
  if (md != j.end() && !md->is_null()) {
    if (!md->is_object())
      return InvalidArgumentError("registry: 'metadata' is not an object");
    for (const auto& [k, v] : md->items()) {
      if (!v.is_string())
        return InvalidArgumentError(
            "registry: metadata values must be strings");
      out.metadata[k] = v.get<std::string>();
    }
  }
  auto eps = j.find("endpoints");
  if (eps != j.end() && !eps->is_null()) {
    if (!eps->is_array())
      return InvalidArgumentError("registry: 'endpoints' is not an array");
    for (const auto& e : *eps) {
      if (!e.is_string())
        return InvalidArgumentError("registry: endpoints must be strings");
      out.endpoints.push_back(e.get<std::string>());
    }
  }
  return out;
}

std::optional<std::string> PickGrpcEndpoint(const ServiceInstance& instance) {
  constexpr std::string_view kScheme = "grpc://";
  for (const std::string& e : instance.endpoints) {
    if (e.rfind(kScheme, 0) != 0) continue;
    std::string_view rest = std::string_view(e).substr(kScheme.size());
    const auto query_at = rest.find('?');
    std::string_view query =
        query_at == std::string_view::npos ? "" : rest.substr(query_at + 1);
    std::string_view host =
        rest.substr(0, std::min(rest.find_first_of("/?"), rest.size()));
    if (host.empty()) continue;
    bool secure = false;
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      if (pair.rfind("isSecure=", 0) == 0) {
        bool v = false;
        if (GoParseBool(pair.substr(9), &v)) secure = v;
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
    if (!secure) return std::string(host);
  }
  return std::nullopt;
}

Result<RegistryTarget> ParseRegistryTarget(std::string_view target) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("registry target '" + std::string(target) +
                                "': " + std::string(why));
  };
  std::string_view rest;
  for (std::string_view scheme : {"discovery://", "etcd://"}) {
    if (target.rfind(scheme, 0) == 0) rest = target.substr(scheme.size());
  }
  if (rest.empty()) return bad("want discovery://<etcd host:port>/<service>");
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0)
    return bad("no etcd address");
  RegistryTarget out;
  std::string_view hosts = rest.substr(0, slash);
  out.service = std::string(rest.substr(slash + 1));
  if (out.service.empty() || out.service.find('/') != std::string::npos) {
    return bad("want exactly one service name after the etcd address");
  }
  while (!hosts.empty()) {
    const auto comma = hosts.find(',');
    std::string_view host = hosts.substr(0, comma);
    if (host.empty()) return bad("empty etcd address");
    out.etcd_endpoints.emplace_back(host);
    if (comma == std::string_view::npos) break;
    hosts.remove_prefix(comma + 1);
  }
  return out;
}

// KratosRegistrar.

struct KratosRegistrar::Impl {
  std::shared_ptr<EtcdClient> etcd;
  ServiceInstance instance;
  Options options;
  std::string key;
  std::string value;
  std::shared_ptr<Logger> logger;

  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // guarded by mu
  int64_t lease = 0;  // guarded by mu
  std::thread thread;

  Status PutWithNewLease() {
    DTX_ASSIGN_OR_RETURN(EtcdLease l, etcd->GrantLease(options.ttl));
    Status s = etcd->Put(key, value, l.id);
    if (!s.ok()) {
      etcd->RevokeLease(l.id).IgnoreError();
      return s;
    }
    std::lock_guard<std::mutex> lock(mu);
    lease = l.id;
    return Status::Ok();
  }

  void KeepAlive() {
    auto period = std::max<std::chrono::milliseconds>(
        options.ttl / 3, std::chrono::milliseconds(500));
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, period, [this] { return stop; })) {
      const int64_t id = lease;
      lock.unlock();
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
      lock.lock();
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
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
  impl_->etcd->Delete(impl_->key).status().IgnoreError();
  impl_->etcd->RevokeLease(impl_->lease).IgnoreError();
}

const std::string& KratosRegistrar::key() const { return impl_->key; }

// EtcdServiceResolver.

struct EtcdServiceResolver::Impl {
  struct Service {
    AddressSet set;  // last non-empty set, or null
    bool listed = false;
    bool dirty = true;  // must be listed again
    bool watching = false;
    std::unique_ptr<EtcdWatch> watch;
  };

  std::shared_ptr<EtcdClient> etcd;
  Options options;
  std::shared_ptr<Logger> logger;
  std::mutex mu;
  std::condition_variable cv;  // work for the worker, or a listing done
  std::map<std::string, Service> services;  // guarded by mu
  bool stop = false;                        // guarded by mu
  std::thread worker;

  // Lists `name` and returns its addresses (sorted, unique) and revision.
  Result<std::pair<std::vector<std::string>, int64_t>> List(
      const std::string& name) {
    DTX_ASSIGN_OR_RETURN(EtcdRange range,
                         etcd->GetPrefix(options.ns + "/" + name + "/"));
    std::set<std::string> addresses;
    for (const auto& kv : range.kvs) {
      auto instance = DecodeServiceInstance(kv.value);
      if (!instance.ok()) {
        DTX_LOG(logger, LogLevel::kWarn,
                "registry: skipping " << kv.key << ": " << instance.status());
        continue;
      }
      if (instance->name != name) continue;  // Kratos filters by name too
      auto address = PickGrpcEndpoint(*instance);
      if (!address) {
        DTX_LOG(
            logger, LogLevel::kWarn,
            "registry: skipping " << kv.key << ": no plain grpc:// endpoint");
        continue;
      }
      addresses.insert(*address);
    }
    return std::make_pair(
        std::vector<std::string>(addresses.begin(), addresses.end()),
        range.revision);
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stop) {
      std::vector<std::string> todo;
      for (auto& [name, s] : services) {
        if (s.dirty || !s.watching) todo.push_back(name);
      }
      if (todo.empty()) {
        cv.wait_for(lock, std::chrono::seconds(10));
        continue;
      }
      lock.unlock();
      bool failed = false;
      for (const std::string& name : todo) failed = !Refresh(name) || failed;
      lock.lock();
      // Back off while etcd is unreachable.
      if (failed && !stop) cv.wait_for(lock, std::chrono::seconds(1));
    }
  }

  // Lists `name` and (re)starts its watch if needed. Called without `mu`.
  bool Refresh(const std::string& name) {
    std::unique_ptr<EtcdWatch> old;
    bool need_watch = false;
    {
      std::lock_guard<std::mutex> lock(mu);
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
      std::lock_guard<std::mutex> lock(mu);
      services[name].dirty = true;
      return false;
    }
    std::unique_ptr<EtcdWatch> watch;
    if (need_watch) {
      auto w = etcd->WatchPrefix(
          options.ns + "/" + name + "/", listed->second + 1,
          [this, name](const std::vector<EtcdEvent>&, int64_t) {
            std::lock_guard<std::mutex> lock(mu);
            services[name].dirty = true;
            cv.notify_all();
          },
          [this, name](const Status& s) {
            DTX_LOG(logger, LogLevel::kWarn,
                    "registry: watch of '" << name << "' ended: " << s);
            std::lock_guard<std::mutex> lock(mu);
            services[name].watching = false;
            cv.notify_all();
          });
      if (w.ok()) watch = std::move(w).value();
    }
    std::lock_guard<std::mutex> lock(mu);
    Service& s = services[name];
    if (!listed->first.empty()) {
      s.set = std::make_shared<const std::vector<std::string>>(
          std::move(listed->first));
    }
    s.listed = true;
    if (watch) {
      s.watch = std::move(watch);
      s.watching = true;
    }
    cv.notify_all();
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
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->worker.join();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    services.swap(impl_->services);
  }
  // The watches are cancelled (and their threads joined) here, unlocked.
}

Result<AddressSet> EtcdServiceResolver::Resolve(const std::string& service) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  auto& s = impl_->services[service];  // registers it with the worker
  if (!s.listed) {
    impl_->cv.notify_all();
    impl_->cv.wait_for(lock, impl_->options.first_lookup_timeout, [&] {
      return impl_->services[service].listed || impl_->stop;
    });
  }
  const auto& now = impl_->services[service];
  if (!now.set) {
    return UnavailableError("registry: service '" + service +
                            "' has no instance with a " + "grpc:// endpoint" +
                            (now.listed ? "" : " (etcd did not answer)"));
  }
  return now.set;
}

Result<std::shared_ptr<EtcdServiceResolver>> EtcdServiceResolver::Connect(
    std::vector<std::string> etcd_endpoints, Options options) {
  EtcdClientOptions etcd_options;
  etcd_options.endpoints = std::move(etcd_endpoints);
  DTX_ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> etcd,
                       EtcdClient::Create(etcd_options));
  return std::make_shared<EtcdServiceResolver>(
      std::shared_ptr<EtcdClient>(std::move(etcd)), std::move(options));
}

}  // namespace dtx
