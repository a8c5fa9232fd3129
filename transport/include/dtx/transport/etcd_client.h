// EtcdClient: a small etcd v3 client over gRPC, for the Kratos registry: KV
// (get, prefix get, put, delete), leases (grant, keep-alive, revoke) and
// prefix watches. Several endpoints may be given; a call that finds an
// endpoint unavailable moves on to the next one. Every call has a deadline.
//
//   dtx::EtcdClientOptions options;
//   options.endpoints = {"127.0.0.1:2379"};
//   DTX_ASSIGN_OR_RETURN(auto etcd, dtx::EtcdClient::Create(options));
//   DTX_ASSIGN_OR_RETURN(auto lease,
//                        etcd->GrantLease(std::chrono::seconds(15)));
//   DTX_RETURN_IF_ERROR(etcd->Put("/microservices/trans/1", json, lease.id));
//
// Errors: kUnavailable when no endpoint answers, kDeadlineExceeded when the
// deadline passes, kNotFound for an unknown lease, kInvalidArgument for bad
// options.
//
// Thread safety: thread-safe.

#ifndef DTX_TRANSPORT_ETCD_CLIENT_H_
#define DTX_TRANSPORT_ETCD_CLIENT_H_

#include "dtx/result.h"
#include "dtx/transport/grpc_export.h"
#include "dtx/transport/tls_options.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dtx {

struct DTX_GRPC_EXPORT EtcdClientOptions {
  // "host:port" of etcd members' client URLs (http://, as etcd prints them,
  // is accepted and dropped; https:// turns TLS on with the default roots
  // when `tls` is unset).
  std::vector<std::string> endpoints;
  // Set: TLS to every endpoint (etcd's --cert-file/--key-file), verifying
  // etcd against tls->ca_file and presenting tls->cert_file when etcd asks
  // for client certificates (--client-cert-auth). Files are read by Create
  // (kInvalidArgument naming one that cannot be used); a server that fails
  // the check fails calls with kUnavailable saying why ("tls: the
  // certificate of 127.0.0.1 is not signed by a CA in the CA file '...'").
  std::optional<TlsClientOptions> tls;
  // Deadline of each call.
  std::chrono::milliseconds timeout{3000};
  // Longest wait between attempts to reconnect to an endpoint that went
  // away (gRPC's default is two minutes; a registry must notice a restarted
  // etcd sooner).
  std::chrono::milliseconds max_reconnect_backoff{5000};
};

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct EtcdRange {
  std::vector<EtcdKeyValue> kvs;
  int64_t revision = 0;  // the store's revision when read
};

struct EtcdLease {
  int64_t id = 0;
  std::chrono::seconds ttl{0};
};

struct EtcdEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  EtcdKeyValue kv;  // for kDelete, only the key and mod_revision are set
};

// A running watch; destroying it cancels the watch and joins its thread.
class DTX_GRPC_EXPORT EtcdWatch {
 public:
  virtual ~EtcdWatch();
  // Stops the watch; no callback runs after Cancel returns. Idempotent.
  virtual void Cancel() = 0;
};

class DTX_GRPC_EXPORT EtcdClient {
 public:
  static Result<std::unique_ptr<EtcdClient>> Create(EtcdClientOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  Result<EtcdRange> Get(const std::string& key);
  // Every key starting with `prefix`.
  Result<EtcdRange> GetPrefix(const std::string& prefix);
  // `lease` 0: no lease.
  Status Put(const std::string& key, const std::string& value,
             int64_t lease = 0);
  // The number of keys deleted.
  Result<int64_t> Delete(const std::string& key);

  Result<EtcdLease> GrantLease(std::chrono::seconds ttl);
  // Renews the lease once; returns its new TTL, 0 when it has expired or
  // does not exist.
  Result<std::chrono::seconds> KeepAliveOnce(int64_t lease);
  Status RevokeLease(int64_t lease);

  // Calls `on_events` (on the watch's own thread) for every change of a key
  // starting with `prefix`, from `start_revision` on (0: from now). When the
  // stream breaks (etcd restarted, network), `on_error` runs once and the
  // watch ends; the caller re-lists and watches again.
  Result<std::unique_ptr<EtcdWatch>> WatchPrefix(
      const std::string& prefix, int64_t start_revision,
      std::function<void(const std::vector<EtcdEvent>&, int64_t revision)>
          on_events,
      std::function<void(const Status&)> on_error);

  // The end of the range of keys starting with `prefix` (etcd's rule).
  static std::string PrefixEnd(const std::string& prefix);

 private:
  struct Impl;
  explicit EtcdClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_TRANSPORT_ETCD_CLIENT_H_
