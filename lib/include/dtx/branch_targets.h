// BranchTargets: which branch URLs a coordinator agrees to call.
//
// A coordinator calls whatever URL a transaction names. Where the callers are
// not the coordinator's own code (dtx-server: anyone who reaches its port),
// that is a request forgery: a step pointed at a unix socket or a
// loopback-only service of the coordinator's host, or at a cloud metadata
// address, makes the coordinator deliver the caller's bytes and headers
// there. An allow-list checked when a transaction is admitted (Prepare,
// Submit, RegisterBranch) refuses such a transaction before anything is
// written, with kPermissionDenied naming the URL and the rule.
//
// What a URL is checked by (the forms of docs/transport.md):
//
//   http://h:p/...  https://h:p/...       scheme http / https, host h, port p
//                                         (80 / 443 when not given)
//   h:p/pkg.Svc/M                         scheme grpc, host h, port p
//   dns:///h:p/...  dns://auth/h:p/...    scheme dns, host h, port p (443)
//   ipv4:a:p,b:p/...  ipv6:[a]:p/...      scheme ipv4 / ipv6, every address
//   passthrough:///h:p/...  direct:///a,b scheme passthrough / direct
//   unix:..., unix-abstract:...           scheme unix / unix-abstract only
//   discovery://reg/svc/...  etcd://...   scheme discovery / etcd, service svc
//                                         (the registry part is not used:
//                                         the configured registry decides)
//
// Rules, when `enforce` is true (each empty list allows anything it names,
// except what the last two rules keep out):
//   - the scheme is in `schemes`;
//   - every host is matched by an entry of `hosts`;
//   - every port is in `ports`;
//   - a registry URL's service is in `services`;
//   - unix and unix-abstract are refused unless `schemes` lists them;
//   - link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10,
//     fd00:ec2::254, metadata.google.internal) are refused unless an entry of
//     `hosts` names them itself (an address, a range or the exact name: "*"
//     and "*.suffix" patterns do not).
// Host names are checked as written, not resolved: to keep a name that
// resolves to an internal address out, list the names that are allowed.
//
// Thread safety: plain values; thread-compatible. Check is const.

#ifndef DTX_BRANCH_TARGETS_H_
#define DTX_BRANCH_TARGETS_H_

#include "dtx/core_export.h"
#include "dtx/status.h"

#include <string>
#include <string_view>
#include <vector>

namespace dtx {

struct DTX_CORE_EXPORT BranchTargets {
  // false: every URL that the branch client takes is called (the embedded
  // coordinator's default: the host wrote its own URLs). dtx-server sets it.
  bool enforce = false;
  // "http", "https", "grpc" (host:port with no scheme), "dns", "ipv4",
  // "ipv6", "passthrough", "direct", "discovery", "etcd", "unix",
  // "unix-abstract". Empty: any but unix and unix-abstract.
  std::vector<std::string> schemes;
  // "pay.internal" (a name, compared without case), "*.svc.cluster.local"
  // (names ending so), "10.0.0.5" or "::1" (an address), "10.0.0.0/8" or
  // "fd00::/8" (a range), "*" (any). Empty: any.
  std::vector<std::string> hosts;
  // Ports (1..65535). Empty: any.
  std::vector<int> ports;
  // Registry names of discovery:// and etcd:// URLs; "*": any. Empty: any.
  std::vector<std::string> services;

  // kInvalidArgument naming the first malformed entry (an unknown scheme, a
  // bad range, a port outside 1..65535, an empty entry).
  Status Validate() const;

  // OK when `url` may be called (always, unless enforce). kPermissionDenied
  // naming the URL and the rule that refuses it; kInvalidArgument when the
  // target of `url` cannot be told.
  Status Check(std::string_view url) const;
};

}  // namespace dtx

#endif  // DTX_BRANCH_TARGETS_H_
