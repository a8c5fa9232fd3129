// TLS settings shared by dtx's gRPC and HTTP transports (plain structs; this
// header includes neither gRPC, OpenSSL nor Boost).
//
// Files are PEM. They are read when a server or client is created: a missing
// or unreadable file is an error that names the file (never its contents),
// and no key material is ever logged.
//
//   dtx::TlsServerOptions tls;           // dtx-server's listeners
//   tls.cert_file = "/etc/dtx/server.pem";
//   tls.key_file = "/etc/dtx/server.key";
//   tls.client_ca_file = "/etc/dtx/clients-ca.pem";  // optional: mutual TLS
//
//   dtx::TlsClientRule rule;             // branch calls to one target
//   rule.target = "payments.internal:9443";
//   rule.tls.ca_file = "/etc/dtx/payments-ca.pem";
//
// Thread safety: plain values; thread-compatible.

#ifndef DTX_TRANSPORT_TLS_OPTIONS_H_
#define DTX_TRANSPORT_TLS_OPTIONS_H_

#include <string>
#include <string_view>
#include <vector>

namespace dtx {

// A listener's certificate. Empty cert_file and key_file: plaintext.
struct TlsServerOptions {
  std::string cert_file;  // certificate chain, leaf first
  std::string key_file;   // its private key
  // When set, a client must present a certificate signed by one of these CAs
  // (mutual TLS); otherwise client certificates are not asked for.
  std::string client_ca_file;

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

// How a client verifies a server, and the certificate it presents.
struct TlsClientOptions {
  // The CAs that may sign the server's certificate; empty: the system's
  // default roots.
  std::string ca_file;
  // A client certificate and key for servers that ask for one (both or none).
  std::string cert_file;
  std::string key_file;
  // The name the server's certificate must carry (and the SNI sent), when it
  // differs from the host the client connects to; empty: that host.
  std::string server_name;
};

// TLS for the branch calls to one target.
struct TlsClientRule {
  // "host:port" (that port only) or "host" (any port), as the branch URL
  // names the server after resolution: a discovery:// URL's instances are
  // matched by their registered host:port.
  std::string target;
  TlsClientOptions tls;
};

// The first rule for `host` and `port`: an exact "host:port" rule wins over a
// "host" rule; null when none matches. Host names compare case-insensitively.
inline const TlsClientRule* FindTlsRule(const std::vector<TlsClientRule>& rules,
                                        std::string_view host,
                                        std::string_view port) {
  auto same = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      char x = a[i], y = b[i];
      if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
      if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
      if (x != y) return false;
    }
    return true;
  };
  const TlsClientRule* by_host = nullptr;
  for (const TlsClientRule& rule : rules) {
    std::string_view t = rule.target;
    const std::size_t colon = t.rfind(':');
    // "[::1]:443" and "host:443" have a port; "[::1]" and "host" do not.
    const bool has_port =
        colon != std::string_view::npos && t.find(']', colon) == t.npos &&
        (t.front() != '[' || (colon > 0 && t[colon - 1] == ']'));
    if (has_port) {
      if (same(t.substr(0, colon), host) && t.substr(colon + 1) == port)
        return &rule;
    } else if (by_host == nullptr && same(t, host)) {
      by_host = &rule;
    }
  }
  return by_host;
}

}  // namespace dtx

#endif  // DTX_TRANSPORT_TLS_OPTIONS_H_
