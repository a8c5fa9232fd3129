// BranchTargets (dtx/branch_targets.h): a URL is read into its scheme, its
// addresses (host and port) and, for a registry URL, its service; each is
// then held against the lists. The reading follows the forms the branch
// clients take (transport/src/branch_url.cc, http_branch_client.cc) without
// depending on them: the core links neither, and a URL that a client would
// refuse is refused by the client's own check first (ValidateUrl).

#include "dtx/branch_targets.h"

#include "dtx/result.h"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <optional>

namespace dtx {
namespace {

constexpr std::array<std::string_view, 12> kSchemes = {
    "http",        "https",  "grpc",      "dns",  "ipv4", "ipv6",
    "passthrough", "direct", "discovery", "etcd", "unix", "unix-abstract"};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.substr(s.size() - suffix.size()) == suffix;
}

// An IP address, v4 mapped into v6 so that one comparison covers both.
struct Ip {
  std::array<unsigned char, 16> bytes{};
  bool v4 = false;
};

// Every form the resolver takes for an IPv4 address, not only the dotted
// quad: inet_aton's "2852039166", "0xa9fea9fe", "0251.0376.0251.0376" and
// "169.254.43518" are 169.254.169.254 to getaddrinfo too.
std::optional<Ip> ParseIp(const std::string& text) {
  Ip ip;
  in_addr v4{};
  if (!text.empty() && inet_aton(text.c_str(), &v4) != 0) {
    ip.v4 = true;
    ip.bytes[10] = 0xff;
    ip.bytes[11] = 0xff;
    std::memcpy(ip.bytes.data() + 12, &v4.s_addr, 4);
    return ip;
  }
  if (inet_pton(AF_INET6, text.c_str(), ip.bytes.data()) == 1) {
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0,    0,
                                                  0, 0, 0, 0, 0xff, 0xff};
    ip.v4 = std::memcmp(ip.bytes.data(), kMapped, 12) == 0;
    return ip;
  }
  return std::nullopt;
}

// An address range: `bits` leading bits of `base` (of the 128-bit form).
struct Range {
  Ip base;
  int bits = 128;

  bool Contains(const Ip& ip) const {
    int left = bits;
    for (std::size_t i = 0; i < 16 && left > 0; ++i, left -= 8) {
      const int n = std::min(left, 8);
      const auto mask = static_cast<unsigned char>(0xff << (8 - n));
      if ((ip.bytes[i] & mask) != (base.bytes[i] & mask)) return false;
    }
    return true;
  }
};

// "10.0.0.0/8", "fe80::/10", or one address.
std::optional<Range> ParseRange(const std::string& text) {
  const std::size_t slash = text.find('/');
  auto ip = ParseIp(text.substr(0, slash));
  if (!ip) return std::nullopt;
  Range r;
  r.base = *ip;
  if (slash == std::string::npos) return r;
  const std::string len = text.substr(slash + 1);
  if (len.empty() || len.size() > 3 ||
      !std::all_of(len.begin(), len.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const int n = std::stoi(len);
  const int max = ip->v4 ? 32 : 128;
  if (n > max) return std::nullopt;
  r.bits = ip->v4 ? n + 96 : n;
  return r;
}

// Link-local and cloud metadata addresses.
bool IsMetadata(const std::string& host) {
  if (host == "metadata.google.internal" || host == "metadata") return true;
  auto ip = ParseIp(host);
  if (!ip) return false;
  static const Range kRanges[] = {*ParseRange("169.254.0.0/16"),
                                  *ParseRange("fe80::/10"),
                                  *ParseRange("fd00:ec2::254")};
  return std::any_of(std::begin(kRanges), std::end(kRanges),
                     [&](const Range& r) { return r.Contains(*ip); });
}

struct Address {
  std::string host;  // lower case, without brackets
  int port = 0;      // 0: not given
};

struct Target {
  std::string scheme;
  std::vector<Address> addresses;
  std::string service;  // discovery, etcd
};

// "h:p", "[v6]:p", "h", "v6" (several colons, no brackets).
std::optional<Address> ParseAddress(std::string_view text) {
  Address a;
  std::string_view port;
  if (StartsWith(text, "[")) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    a.host = Lower(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    a.host = Lower(text);
  } else {
    const std::size_t colon = text.find(':');
    a.host = Lower(text.substr(0, colon));
    if (colon != std::string_view::npos) port = text.substr(colon + 1);
  }
  // An IPv6 zone ("fe80::1%eth0", "%25eth0" in a URL) names an interface,
  // not another address.
  if (const std::size_t zone = a.host.find('%'); zone != std::string::npos) {
    a.host.resize(zone);
  }
  while (!a.host.empty() && a.host.back() == '.') a.host.pop_back();
  if (a.host.empty()) return std::nullopt;
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) {
          return c >= '0' && c <= '9';
        })) {
      return std::nullopt;
    }
    a.port = std::stoi(std::string(port));
  }
  return a;
}

Status Unreadable(std::string_view url) {
  return InvalidArgumentError("branch url '" + std::string(url) +
                              "': cannot tell which host it calls");
}

// Everything of a gRPC URL before "/<Service>/<Method>".
std::string_view ServerPart(std::string_view url) {
  std::size_t end = url.size();
  for (int i = 0; i < 2; ++i) {
    const std::size_t slash = url.rfind('/', end == 0 ? 0 : end - 1);
    if (slash == std::string_view::npos) return url.substr(0, 0);
    end = slash;
  }
  return url.substr(0, end);
}

// Drops "//authority/" (dns://8.8.8.8/h:p, passthrough:///h:p).
std::string_view SkipAuthority(std::string_view s) {
  if (!StartsWith(s, "//")) return s;
  const std::size_t slash = s.find('/', 2);
  return slash == std::string_view::npos ? std::string_view()
                                         : s.substr(slash + 1);
}

Result<Target> Read(std::string_view url) {
  Target t;
  const std::size_t colon = url.find(':');
  std::string scheme = colon == std::string_view::npos
                           ? std::string()
                           : Lower(url.substr(0, colon));
  const bool known =
      std::find(kSchemes.begin(), kSchemes.end(), scheme) != kSchemes.end();
  if (scheme == "http" || scheme == "https") {
    if (url.substr(colon, 3) != "://") return Unreadable(url);
    std::string_view rest = url.substr(colon + 3);
    std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    const std::size_t at = authority.rfind('@');
    if (at != std::string_view::npos) authority = authority.substr(at + 1);
    auto a = ParseAddress(authority);
    if (!a) return Unreadable(url);
    if (a->port == 0) a->port = scheme == "http" ? 80 : 443;
    t.scheme = scheme;
    t.addresses.push_back(std::move(*a));
    return t;
  }
  if (scheme == "discovery" || scheme == "etcd") {
    std::string_view rest = SkipAuthority(url.substr(colon + 1));
    t.scheme = scheme;
    t.service = std::string(rest.substr(0, rest.find('/')));
    if (t.service.empty()) return Unreadable(url);
    return t;
  }
  if (scheme == "unix" || scheme == "unix-abstract") {
    t.scheme = scheme;
    return t;
  }
  const std::string_view server = ServerPart(url);
  if (!known) {
    // host:port: "localhost:9000/pkg.Svc/M" reads "localhost" as a scheme.
    // Other schemes (xds:, kubernetes://) are the branch client's to
    // refuse, before this check runs.
    auto a = ParseAddress(server);
    if (!a) return Unreadable(url);
    t.scheme = "grpc";
    t.addresses.push_back(std::move(*a));
    return t;
  }
  t.scheme = scheme;
  std::string_view list = server.substr(colon + 1);
  if (scheme == "dns" || scheme == "passthrough" || scheme == "direct") {
    list = SkipAuthority(list);
  }
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    auto a = ParseAddress(list.substr(start, comma - start));
    if (!a) return Unreadable(url);
    t.addresses.push_back(std::move(*a));
    start = comma + 1;
  }
  return t;
}

bool HostMatches(const std::string& given, const std::string& host,
                 bool explicit_only) {
  const std::string entry = Lower(given);
  if (entry == "*") return !explicit_only;
  if (StartsWith(entry, "*.")) {
    return !explicit_only && !ParseIp(host) &&
           EndsWith(host, entry.substr(1)) && host.size() > entry.size() - 1;
  }
  if (auto range = ParseRange(entry)) {
    auto ip = ParseIp(host);
    return ip && range->Contains(*ip);
  }
  return entry == host;
}

Status Refuse(std::string_view url, const std::string& why) {
  return PermissionDeniedError("branch url '" + std::string(url) +
                               "' is not allowed: " + why);
}

}  // namespace

Status BranchTargets::Validate() const {
  for (const std::string& s : schemes) {
    if (std::find(kSchemes.begin(), kSchemes.end(), Lower(s)) ==
        kSchemes.end()) {
      return InvalidArgumentError(
          "BranchTargets.Schemes: '" + s +
          "' is not one of http, https, grpc, dns, ipv4, ipv6, passthrough, "
          "direct, discovery, etcd, unix, unix-abstract");
    }
  }
  for (const std::string& h : hosts) {
    if (h.empty())
      return InvalidArgumentError("BranchTargets.Hosts: an entry is empty");
    if (h.find('/') != std::string::npos && !ParseRange(h)) {
      return InvalidArgumentError("BranchTargets.Hosts: '" + h +
                                  "' is not an address range such as "
                                  "10.0.0.0/8");
    }
    if (h != "*" &&
        h.find('*', StartsWith(h, "*.") ? 1 : 0) != std::string::npos) {
      return InvalidArgumentError("BranchTargets.Hosts: '" + h +
                                  "': '*' may only stand alone or start "
                                  "\"*.suffix\"");
    }
  }
  for (int p : ports) {
    if (p < 1 || p > 65535) {
      return InvalidArgumentError("BranchTargets.Ports: " + std::to_string(p) +
                                  " is outside 1..65535");
    }
  }
  for (const std::string& s : services) {
    if (s.empty()) {
      return InvalidArgumentError("BranchTargets.Services: an entry is empty");
    }
  }
  return Status::Ok();
}

Status BranchTargets::Check(std::string_view url) const {
  if (!enforce) return Status::Ok();
  DTX_ASSIGN_OR_RETURN(Target t, Read(url));
  const bool local_socket = t.scheme == "unix" || t.scheme == "unix-abstract";
  const bool listed =
      std::any_of(schemes.begin(), schemes.end(),
                  [&](const std::string& s) { return Lower(s) == t.scheme; });
  if (local_socket && !listed) {
    return Refuse(url, "scheme " + t.scheme +
                           " (a socket on the coordinator's own host) is "
                           "refused unless BranchTargets.Schemes lists it");
  }
  if (!schemes.empty() && !listed) {
    return Refuse(url,
                  "scheme " + t.scheme + " is not in BranchTargets.Schemes");
  }
  for (const Address& a : t.addresses) {
    if (IsMetadata(a.host) &&
        std::none_of(hosts.begin(), hosts.end(), [&](const std::string& e) {
          return HostMatches(e, a.host, /*explicit_only=*/true);
        })) {
      return Refuse(url, "host " + a.host +
                             " is a link-local or cloud metadata address; "
                             "it is refused unless BranchTargets.Hosts names "
                             "it (its address, a range or its exact name)");
    }
    if (!hosts.empty() &&
        std::none_of(hosts.begin(), hosts.end(), [&](const std::string& e) {
          return HostMatches(e, a.host, /*explicit_only=*/false);
        })) {
      return Refuse(url, "host " + a.host + " is not in BranchTargets.Hosts");
    }
    if (!ports.empty()) {
      const int port = a.port != 0 ? a.port : 443;  // gRPC's default
      if (std::find(ports.begin(), ports.end(), port) == ports.end()) {
        return Refuse(url, "port " + std::to_string(port) +
                               " is not in BranchTargets.Ports");
      }
    }
  }
  if (!t.service.empty() && !services.empty() &&
      std::none_of(services.begin(), services.end(), [&](const std::string& s) {
        return s == "*" || s == t.service;
      })) {
    return Refuse(url,
                  "service " + t.service + " is not in BranchTargets.Services");
  }
  return Status::Ok();
}

}  // namespace dtx
