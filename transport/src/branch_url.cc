#include "dtx/transport/branch_url.h"

#include <arpa/inet.h>
#include <cctype>
#include <string>
#include <vector>

namespace dtx {
namespace {

// "a,b,c" -> {"a", "b", "c"} (an empty text is one empty entry).
std::vector<std::string_view> SplitCommas(std::string_view list) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = list.find(',', start);
    out.push_back(list.substr(start, comma == std::string_view::npos
                                         ? std::string_view::npos
                                         : comma - start));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

Status BadUrl(std::string_view url, std::string_view why) {
  return InvalidArgumentError("branch url '" + std::string(url) +
                              "': " + std::string(why));
}

bool IsValidSegment(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Splits "host:port" (host may be "[v6]"). Returns false when malformed.
bool SplitHostPort(std::string_view address, std::string* host,
                   std::string* port) {
  std::string_view h;
  std::string_view p;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return false;
    }
    h = address.substr(1, close - 1);
    p = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) return false;
    h = address.substr(0, colon);
    p = address.substr(colon + 1);
    if (h.find(':') != std::string_view::npos) return false;  // bare IPv6
  }
  if (h.empty() || !AllDigits(p) || p.size() > 5) return false;
  const int port_number = std::stoi(std::string(p));
  if (port_number < 1 || port_number > 65535) return false;
  for (char c : h) {
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || c == '.' || c == '-' || c == '_' || c == ':' ||
          c == '%')) {
      return false;
    }
  }
  *host = std::string(h);
  *port = std::string(p);
  return true;
}

bool IsIpv4(const std::string& host) {
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool IsIpv6(const std::string& host) {
  in6_addr a{};
  return inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

// "ipv4:a:p,b:p" / "ipv6:[a]:p,..." lists: each entry must be a literal of
// that family, or gRPC fails the whole channel with a misleading error.
Status CheckLiteralList(std::string_view server, std::string_view list,
                        bool v6) {
  if (list.rfind("//", 0) == 0) {  // ipv4:///a:p
    list.remove_prefix(2);
    const auto slash = list.find('/');
    if (slash == std::string_view::npos) return BadUrl(server, "no address");
    list.remove_prefix(slash + 1);
  }
  if (list.empty()) return BadUrl(server, "no address");
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = list.find(',', start);
    const std::string_view entry = list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos
                                               : comma - start);
    std::string host;
    std::string port;
    if (!SplitHostPort(entry, &host, &port) ||
        (v6 ? !IsIpv6(host) : !IsIpv4(host))) {
      return BadUrl(server, "'" + std::string(entry) + "' is not an " +
                                (v6 ? "IPv6" : "IPv4") +
                                " address with a port");
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return Status::Ok();
}

}  // namespace

Result<BranchUrl> SplitBranchUrl(std::string_view url) {
  if (url.empty()) return InvalidArgumentError("branch url is empty");
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return BadUrl(url, "contains whitespace or a control character");
    }
  }
  if (url.find_first_of("?#") != std::string_view::npos) {
    return BadUrl(url, "a query or fragment is not allowed");
  }
  const auto last = url.rfind('/');
  if (last == std::string_view::npos || last + 1 == url.size()) {
    return BadUrl(url, "no method: want <server>/<pkg.Service>/<Method>");
  }
  const auto second =
      last == 0 ? std::string_view::npos : url.rfind('/', last - 1);
  if (second == std::string_view::npos) {
    return BadUrl(url, "no method: want <server>/<pkg.Service>/<Method>");
  }
  const std::string_view service = url.substr(second + 1, last - second - 1);
  const std::string_view method = url.substr(last + 1);
  if (!IsValidSegment(service) || !IsValidSegment(method)) {
    return BadUrl(url, "no method: want <server>/<pkg.Service>/<Method>");
  }
  BranchUrl out;
  out.server = std::string(url.substr(0, second));
  out.method = std::string(url.substr(second));
  if (out.server.empty() || out.server.back() == '/' ||
      out.server.back() == ':') {
    return BadUrl(url, "no server before the method");
  }
  return out;
}

Result<std::string> ChannelTargetForAddress(std::string_view address) {
  std::string host;
  std::string port;
  if (!SplitHostPort(address, &host, &port)) {
    return InvalidArgumentError("address '" + std::string(address) +
                                "' is not host:port");
  }
  if (IsIpv4(host)) return "ipv4:" + host + ":" + port;
  if (IsIpv6(host)) return "ipv6:[" + host + "]:" + port;
  return "dns:///" + host + ":" + port;
}

Result<BranchTarget> ParseBranchServer(std::string_view server,
                                       std::string_view driver) {
  const bool kratos = driver == kKratosDriver;
  if (!kratos && driver != kDefaultDriver) {
    return InvalidArgumentError("unknown micro-service driver '" +
                                std::string(driver) + "' (want '" +
                                std::string(kDefaultDriver) + "' or '" +
                                std::string(kKratosDriver) + "')");
  }
  BranchTarget t;
  // A scheme is "name:" followed by something other than a port number.
  std::string scheme;
  std::string_view rest = server;
  const auto colon = server.find(':');
  if (colon != std::string_view::npos && colon > 0 &&
      std::isalpha(static_cast<unsigned char>(server[0])) &&
      !AllDigits(server.substr(colon + 1))) {
    bool scheme_chars = true;
    for (char c : server.substr(0, colon)) {
      const auto u = static_cast<unsigned char>(c);
      if (!(std::isalnum(u) || c == '+' || c == '-' || c == '.')) {
        scheme_chars = false;
      }
    }
    if (scheme_chars) {
      scheme = std::string(server.substr(0, colon));
      for (char& c : scheme) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      rest = server.substr(colon + 1);
    }
  }

  std::string host;
  std::string port;
  if (scheme.empty()) {
    if (!SplitHostPort(server, &host, &port)) {
      return BadUrl(server, "server is not host:port");
    }
    t.channel_target = std::string(server);
    return t;
  }
  // "scheme://authority/path": authority and path.
  std::string_view authority;
  std::string_view path = rest;
  const bool slashes = rest.rfind("//", 0) == 0;
  if (slashes) {
    rest.remove_prefix(2);
    const auto slash = rest.find('/');
    authority = rest.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view()
                                           : rest.substr(slash + 1);
  }

  if (scheme == "dns") {
    if (!SplitHostPort(path, &host, &port)) {
      return BadUrl(server, "dns target is not host:port");
    }
    t.channel_target = std::string(server);
    return t;
  }
  if (scheme == "ipv4" || scheme == "ipv6") {
    const std::string_view list = server.substr(colon + 1);
    DTX_RETURN_IF_ERROR(CheckLiteralList(server, list, scheme == "ipv6"));
    if (list.find(',') == std::string_view::npos) {
      t.channel_target = std::string(server);
      return t;
    }
    // Several addresses: one channel each, picked by dtx per call, as for
    // direct:/// (a channel balancing over several addresses would need
    // gRPC's round_robin, which dtx does not use: GrpcBranchClientOptions).
    t.kind = BranchTarget::Kind::kAddresses;
    std::string_view addresses = list;
    if (addresses.rfind("///", 0) == 0) addresses.remove_prefix(3);
    for (std::string_view entry : SplitCommas(addresses))
      t.addresses.emplace_back(entry);
    return t;
  }
  if (scheme == "unix" || scheme == "unix-abstract") {
    if (server.size() <= colon + 1) return BadUrl(server, "no socket path");
    t.channel_target = std::string(server);
    return t;
  }
  if (scheme == "passthrough") {
    if (!slashes || !SplitHostPort(path, &host, &port)) {
      return BadUrl(server, "want passthrough:///host:port");
    }
    t.channel_target = std::string(path);
    return t;
  }
  if (scheme == "direct") {
    if (!slashes || path.empty()) {
      return BadUrl(server, "want direct:///host:port[,host:port...]");
    }
    t.kind = BranchTarget::Kind::kAddresses;
    for (std::string_view entry : SplitCommas(path)) {
      if (!SplitHostPort(entry, &host, &port)) {
        return BadUrl(server, "'" + std::string(entry) + "' is not host:port");
      }
      t.addresses.emplace_back(entry);
    }
    return t;
  }
  if (scheme == "discovery" || scheme == "etcd") {
    if (!kratos) {
      return BadUrl(server, "the " + scheme +
                                ":// scheme needs the micro-service driver '" +
                                std::string(kKratosDriver) + "'");
    }
    if (!slashes || path.empty() || path.find('/') != std::string_view::npos) {
      return BadUrl(server, "want " + scheme + "://[registry]/<service>");
    }
    (void)authority;  // as in Kratos: the configured registry decides
    t.kind = BranchTarget::Kind::kService;
    t.service = std::string(path);
    return t;
  }
  if (scheme == "http" || scheme == "https") {
    return BadUrl(server,
                  "dtx calls branches over gRPC; HTTP is not supported");
  }
  return BadUrl(server, "unsupported scheme '" + scheme +
                            "' (supported: host:port, dns:, ipv4:, ipv6:, "
                            "unix:, passthrough:, direct:" +
                            std::string(kratos ? ", discovery:, etcd:" : "") +
                            ")");
}

}  // namespace dtx
