// TLS material for dtx's transports (gRPC and HTTP): the PEM files of
// TlsServerOptions and TlsClientOptions read and checked with OpenSSL, and a
// server's certificate chain verified the way a client must, with an error
// that says why it was refused.
//
// Every error names the setting and the file's path, never a byte of its
// contents: these messages are logged. OpenSSL's error queue is cleared
// before returning, so that a failure here is not reported again by a later,
// unrelated TLS operation on the same thread.
//
// Inline (this header is private and included by one file of dtx_grpc and
// one of dtx_http), so that both libraries can use it without either
// exporting it.

#ifndef DTX_TRANSPORT_TLS_FILES_H_
#define DTX_TRANSPORT_TLS_FILES_H_

#include "dtx/result.h"
#include "dtx/transport/tls_options.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace dtx::internal {

struct OpenSslDeleter {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};
template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslDeleter>;

// Never asks for a passphrase (OpenSSL's default prompts on the terminal).
inline int NoPassphrase(char*, int, int, void*) { return 0; }

// The whole of `path`. `what` names the setting ("TLS.KeyFile", "the CA
// file"); the error is kInvalidArgument naming it, the path and the reason.
inline Result<std::string> ReadTlsFile(std::string_view who,
                                       std::string_view what,
                                       const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int e = errno;
    return InvalidArgumentError(std::string(who) + ": cannot read " +
                                std::string(what) + " '" + path +
                                "': " + std::strerror(e != 0 ? e : ENOENT));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    return InvalidArgumentError(std::string(who) + ": cannot read " +
                                std::string(what) + " '" + path + "'");
  }
  return buffer.str();
}

// Every certificate in `pem`, in order.
inline std::vector<OpenSslPtr<X509>> ParseCertificates(std::string_view pem) {
  std::vector<OpenSslPtr<X509>> out;
  OpenSslPtr<BIO> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (bio) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, &NoPassphrase, nullptr);
    if (cert == nullptr) break;
    out.emplace_back(cert);
  }
  ERR_clear_error();
  return out;
}

// "Feb  1 00:00:00 2020 GMT".
inline std::string FormatAsn1Time(const ASN1_TIME* time) {
  OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print(bio.get(), time) != 1) return "?";
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// A certificate chain file: at least one certificate.
inline Result<std::string> ReadCertificateFile(std::string_view who,
                                               std::string_view what,
                                               const std::string& path) {
  DTX_ASSIGN_OR_RETURN(std::string pem, ReadTlsFile(who, what, path));
  if (ParseCertificates(pem).empty()) {
    return InvalidArgumentError(std::string(who) + ": " + std::string(what) +
                                " '" + path + "' holds no PEM certificate");
  }
  return pem;
}

// A key file that belongs to the first certificate of `cert_pem`.
inline Result<std::string> ReadKeyFile(std::string_view who,
                                       std::string_view what,
                                       const std::string& path,
                                       std::string_view cert_pem,
                                       const std::string& cert_path) {
  DTX_ASSIGN_OR_RETURN(std::string pem, ReadTlsFile(who, what, path));
  OpenSslPtr<BIO> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  OpenSslPtr<EVP_PKEY> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, &NoPassphrase, nullptr)
          : nullptr);
  ERR_clear_error();
  if (!key) {
    return InvalidArgumentError(
        std::string(who) + ": " + std::string(what) + " '" + path +
        "' holds no PEM private key (an encrypted key is not supported)");
  }
  auto certs = ParseCertificates(cert_pem);
  if (!certs.empty() &&
      X509_check_private_key(certs[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgumentError(std::string(who) + ": the key in '" + path +
                                "' does not belong to the certificate in '" +
                                cert_path + "'");
  }
  return pem;
}

// A listener's files, read and checked.
struct ServerTlsMaterial {
  std::string cert_chain;
  std::string key;
  std::string client_ca;  // empty: client certificates are not asked for
  // Not errors (tests serve expired certificates on purpose): an expired or
  // not yet valid certificate, to be logged as warnings.
  std::vector<std::string> warnings;
};

// `names` are the setting names used in errors: {cert, key, client CA}.
inline Result<ServerTlsMaterial> LoadServerTls(const TlsServerOptions& options,
                                               std::string_view who,
                                               const char* const (&names)[3]) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    return InvalidArgumentError(
        std::string(who) + ": TLS needs both " + names[0] + " and " + names[1] +
        " (" + (options.cert_file.empty() ? names[0] : names[1]) +
        " is empty)");
  }
  ServerTlsMaterial out;
  DTX_ASSIGN_OR_RETURN(out.cert_chain,
                       ReadCertificateFile(who, names[0], options.cert_file));
  DTX_ASSIGN_OR_RETURN(out.key, ReadKeyFile(who, names[1], options.key_file,
                                            out.cert_chain, options.cert_file));
  if (!options.client_ca_file.empty()) {
    DTX_ASSIGN_OR_RETURN(
        out.client_ca,
        ReadCertificateFile(who, names[2], options.client_ca_file));
  }
  auto certs = ParseCertificates(out.cert_chain);
  const X509* leaf = certs.front().get();
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    out.warnings.push_back(std::string(who) + ": the certificate in '" +
                           options.cert_file + "' expired on " +
                           FormatAsn1Time(X509_get0_notAfter(leaf)) +
                           "; clients will refuse it");
  } else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    out.warnings.push_back(std::string(who) + ": the certificate in '" +
                           options.cert_file + "' is not valid before " +
                           FormatAsn1Time(X509_get0_notBefore(leaf)) +
                           "; clients will refuse it");
  }
  return out;
}

// A client's files, read and checked.
struct ClientTlsMaterial {
  std::string ca;  // empty: the system's default roots
  std::string cert_chain;
  std::string key;
};

inline Result<ClientTlsMaterial> LoadClientTls(const TlsClientOptions& options,
                                               std::string_view who) {
  ClientTlsMaterial out;
  if (!options.ca_file.empty()) {
    DTX_ASSIGN_OR_RETURN(
        out.ca, ReadCertificateFile(who, "the CA file", options.ca_file));
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return InvalidArgumentError(
        std::string(who) +
        ": a client certificate needs both a certificate "
        "file and a key file (" +
        (options.cert_file.empty() ? "the certificate file" : "the key file") +
        " is empty)");
  }
  if (!options.cert_file.empty()) {
    DTX_ASSIGN_OR_RETURN(out.cert_chain,
                         ReadCertificateFile(who, "the client certificate file",
                                             options.cert_file));
    DTX_ASSIGN_OR_RETURN(
        out.key, ReadKeyFile(who, "the client key file", options.key_file,
                             out.cert_chain, options.cert_file));
  }
  return out;
}

// Verifies the chain a server presented (`chain_pem`, leaf first) for the
// name `host` (a DNS name or an IP literal) against `ca_pem` (empty: the
// system's default roots). Empty when it is good; otherwise why not, e.g.
// "the certificate of 127.0.0.1 expired on Feb  1 00:00:00 2020 GMT".
// `ca_name` says where the CAs came from ("the CA file '/etc/ca.pem'").
inline std::string VerifyServerChain(std::string_view chain_pem,
                                     const std::string& host,
                                     std::string_view ca_pem,
                                     const std::string& ca_name) {
  auto certs = ParseCertificates(chain_pem);
  if (certs.empty()) return "the server presented no certificate";
  OpenSslPtr<X509_STORE> store(X509_STORE_new());
  if (!store) return "out of memory";
  if (ca_pem.empty()) {
    X509_STORE_set_default_paths(store.get());
  } else {
    for (auto& ca : ParseCertificates(ca_pem)) {
      X509_STORE_add_cert(store.get(), ca.get());
    }
  }
  OpenSslPtr<STACK_OF(X509)> untrusted(sk_X509_new_null());
  for (std::size_t i = 1; i < certs.size(); ++i) {
    X509_up_ref(certs[i].get());
    sk_X509_push(untrusted.get(), certs[i].get());
  }
  OpenSslPtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  X509* leaf = certs.front().get();
  if (!ctx ||
      X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1) {
    ERR_clear_error();
    return "cannot set up the certificate check";
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  // An IP literal is matched against the certificate's IP addresses, a name
  // against its DNS names (wildcards in the leftmost label only).
  if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
    ERR_clear_error();
    X509_VERIFY_PARAM_set_hostflags(param,
                                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  }
  const int ok = X509_verify_cert(ctx.get());
  const int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  if (ok == 1) return "";
  const std::string of = "the certificate of " + host;
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return of + " expired on " + FormatAsn1Time(X509_get0_notAfter(leaf));
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return of + " is not valid before " +
             FormatAsn1Time(X509_get0_notBefore(leaf));
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return of +
             " is not issued for that name (wrong host; set the "
             "server name the certificate carries)";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return of + " is not signed by a CA in " + ca_name + " (unknown CA)";
    default:
      return of + " was refused: " + X509_verify_cert_error_string(error);
  }
}

}  // namespace dtx::internal

#endif  // DTX_TRANSPORT_TLS_FILES_H_
