// Kratos's etcd registry, as go-kratos/contrib/registry/etcd lays it out, so
// that dtx, Kratos services and dtm find each other:
//
//   key    <namespace>/<service name>/<instance id>
//          (the namespace is /microservices)
//   value  {"id":"..","name":"..","version":"","metadata":null,
//           "endpoints":["grpc://10.0.0.5:9000"]}
//          (Go's encoding/json)
//   lease  TTL 15 s, renewed every TTL/3; re-registered when lost.
//
//   auto etcd = std::shared_ptr<dtx::EtcdClient>(...);  // EtcdClient::Create
//   dtx::ServiceInstance me;
//   me.id = "trans-1";
//   me.name = "trans";
//   me.endpoints = {"grpc://10.0.0.5:9000"};
//   DTX_ASSIGN_OR_RETURN(auto registrar,
//                        dtx::KratosRegistrar::Register(etcd, me, {}));
//   // discovery://127.0.0.1:2379/trans now reaches this process, until
//   // `registrar` is destroyed.
//
// KratosRegistrar keeps one instance registered; EtcdServiceResolver is the
// ServiceResolver behind discovery:// branch URLs: it lists a service's
// instances, watches them, and hands out the grpc:// addresses (Resolve)
// and the http:// endpoints (ResolveHttp).
//
// Thread safety: both classes are thread-safe.

#ifndef DTX_TRANSPORT_KRATOS_REGISTRY_H_
#define DTX_TRANSPORT_KRATOS_REGISTRY_H_

#include "dtx/logger.h"
#include "dtx/result.h"
#include "dtx/transport/etcd_client.h"
#include "dtx/transport/grpc_export.h"
#include "dtx/transport/service_resolver.h"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dtx {

struct ServiceInstance {
  std::string id;
  std::string name;
  std::string version;
  std::map<std::string, std::string> metadata;  // written as null when empty
  std::vector<std::string> endpoints;           // "grpc://host:port", ...
};

// Go's encoding of a Kratos ServiceInstance (fields in Go's order; <, > and &
// escaped as Go escapes them).
DTX_GRPC_EXPORT std::string EncodeServiceInstance(
    const ServiceInstance& instance);
// kInvalidArgument for JSON that is not an instance (no name, bad types).
DTX_GRPC_EXPORT Result<ServiceInstance> DecodeServiceInstance(
    std::string_view json);
// The address ("host:port") of the first plain grpc:// endpoint whose
// isSecure query is absent or false, as Kratos's resolver picks it. When
// there is none, the first TLS endpoint (grpcs://, or grpc:// with
// isSecure=true) as "grpcs://host:port": branch calls to it use TLS.
DTX_GRPC_EXPORT std::optional<std::string> PickGrpcEndpoint(
    const ServiceInstance& instance);
// The base URL ("http://host:port", "https://host:port") of the first
// http:// or https:// endpoint (an http:// one with isSecure=true is
// https://), for HTTP branch calls; the path and query are dropped.
DTX_GRPC_EXPORT std::optional<std::string> PickHttpEndpoint(
    const ServiceInstance& instance);

inline constexpr char kKratosNamespace[] = "/microservices";

// dtm's MicroService.Target for the Kratos driver:
// "discovery://<etcd host:port>[,<host:port>...]/<service name>" (etcd:// is
// accepted as well), with the query of dtm's Kratos driver for etcd over TLS:
// "?tls=true&caPath=/etc/etcd/ca.pem&certPath=/etc/dtx/etcd-client.pem&
// certKeyPath=/etc/dtx/etcd-client.key" (caPath empty: the system's roots;
// the client certificate is optional). Line breaks are dropped first, as
// the driver does.
struct RegistryTarget {
  std::vector<std::string> etcd_endpoints;
  std::string service;                  // the name to register under
  std::optional<TlsClientOptions> tls;  // set by tls=true
};
// kInvalidArgument naming the target when it is not of that form: an
// unknown query parameter, a file without tls=true, certPath without
// certKeyPath (the files themselves are read when the client is created).
DTX_GRPC_EXPORT Result<RegistryTarget> ParseRegistryTarget(
    std::string_view target);
// The etcd client options for a target: its endpoints and TLS.
DTX_GRPC_EXPORT EtcdClientOptions
EtcdClientOptionsFor(const RegistryTarget& target);

class DTX_GRPC_EXPORT KratosRegistrar {
 public:
  struct Options {
    std::string ns = kKratosNamespace;
    std::chrono::seconds ttl{15};
    std::shared_ptr<Logger> logger;
  };
  // Puts the instance under a new lease and keeps it alive until destroyed.
  // `etcd` is shared with the caller. kInvalidArgument for an instance
  // without name, id or endpoints; etcd's errors otherwise.
  static Result<std::unique_ptr<KratosRegistrar>> Register(
      std::shared_ptr<EtcdClient> etcd, ServiceInstance instance,
      Options options);
  // Deregisters (deletes the key, revokes the lease).
  ~KratosRegistrar();
  const std::string& key() const;

 private:
  struct Impl;
  explicit KratosRegistrar(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class DTX_GRPC_EXPORT EtcdServiceResolver final : public ServiceResolver {
 public:
  struct Options {
    std::string ns = kKratosNamespace;
    // How long the first Resolve of a service waits for etcd.
    std::chrono::milliseconds first_lookup_timeout{3000};
    std::shared_ptr<Logger> logger;
  };
  EtcdServiceResolver(std::shared_ptr<EtcdClient> etcd, Options options);
  // A resolver with its own etcd client on `etcd_endpoints` ("host:port").
  static Result<std::shared_ptr<EtcdServiceResolver>> Connect(
      std::vector<std::string> etcd_endpoints, Options options);
  // The same with any etcd client options (TLS: EtcdClientOptionsFor).
  static Result<std::shared_ptr<EtcdServiceResolver>> Connect(
      EtcdClientOptions etcd_options, Options options);
  ~EtcdServiceResolver() override;

  // The addresses of `service`'s instances. The first call lists the service
  // and starts watching it; later calls return the latest set at once. When
  // every instance leaves, the last non-empty set is kept (as Kratos does).
  // kUnavailable when no instance has been seen.
  Result<AddressSet> Resolve(const std::string& service) override;
  // The same for the instances' http:// endpoints (PickHttpEndpoint).
  Result<AddressSet> ResolveHttp(const std::string& service) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_KRATOS_REGISTRY_H_
