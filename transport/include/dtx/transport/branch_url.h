// Branch URLs: "<server>/<pkg.Service>/<Method>", split and classified the way
// dtm's drivers read them.
//
//   localhost:9000/api.trans.v1.Trans/TransIn                 default driver
//   dns:///trans.ns.svc.cluster.local:9000/api.trans.v1.Trans/TransIn
//   ipv4:10.0.0.1:9000,10.0.0.2:9000/pkg.Svc/M   ipv6:[::1]:9000/pkg.Svc/M
//   unix:///run/trans.sock/pkg.Svc/M             passthrough:///host:9000/...
//   direct:///10.0.0.1:9000,10.0.0.2:9000/pkg.Svc/M
//   discovery://127.0.0.1:2379/trans/api.trans.v1.Trans/TransIn   kratos
//   discovery:///trans/...   etcd://127.0.0.1:2379/trans/...       kratos
//
// The method is always the last two path segments (a gRPC method is
// "/package.Service/Method"); everything before is the server. For every form
// dtm accepts this is the same split as dtm's ParseServerMethod.

#ifndef DTX_TRANSPORT_BRANCH_URL_H_
#define DTX_TRANSPORT_BRANCH_URL_H_

#include "dtx/result.h"
#include "dtx/transport/grpc_export.h"

#include <string>
#include <string_view>
#include <vector>

namespace dtx {

struct BranchUrl {
  std::string server;  // "localhost:9000", "discovery://h:2379/trans", ...
  std::string method;  // "/api.trans.v1.Trans/TransIn"
};

// Splits `url`. kInvalidArgument naming the URL when it is empty, holds
// whitespace or control characters, or has no "/<Service>/<Method>" tail.
DTX_GRPC_EXPORT Result<BranchUrl> SplitBranchUrl(std::string_view url);

// Where a server part leads.
struct BranchTarget {
  enum class Kind {
    // One gRPC channel on `channel_target` (gRPC resolves names itself, e.g.
    // by DNS, and balances over all addresses round-robin).
    kChannel,
    // A fixed list of "host:port" addresses; dtx picks one per call.
    kAddresses,
    // A service found through the registry (discovery:// and etcd://).
    kService,
  };
  Kind kind = Kind::kChannel;
  std::string channel_target;          // kChannel
  std::vector<std::string> addresses;  // kAddresses
  std::string service;                 // kService
};

// Names of the drivers, as dtm's MicroService.Driver spells them.
inline constexpr std::string_view kDefaultDriver = "default";
inline constexpr std::string_view kKratosDriver = "dtm-driver-kratos";

// Classifies the server part of a branch URL under `driver`. Both drivers take
// host:port, dns:, ipv4:, ipv6:, unix:, passthrough:/// and direct:///; only
// the Kratos driver takes discovery:// and etcd://. kInvalidArgument for an
// unknown driver, an unsupported scheme (kubernetes:///, consul://, http://
// ...), a registry scheme under the default driver, or a malformed address.
DTX_GRPC_EXPORT Result<BranchTarget> ParseBranchServer(std::string_view server,
                                                       std::string_view driver);

// The gRPC channel target for one "host:port" address: ipv4:/ipv6: for IP
// literals, dns:/// for names. kInvalidArgument when malformed.
DTX_GRPC_EXPORT Result<std::string> ChannelTargetForAddress(
    std::string_view address);

}  // namespace dtx

#endif  // DTX_TRANSPORT_BRANCH_URL_H_
