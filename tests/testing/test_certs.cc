#include "test_certs.h"

#include "subprocess.h"

#include <fstream>
#include <sstream>
#include <vector>

namespace dtx::testing {
namespace {

Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return InternalError("test_certs: cannot write " + path);
  return Status::Ok();
}

// Runs openssl with `args`, its output appended to <dir>/openssl.log, whose
// tail becomes the error when the step fails.
Status RunOpenssl(const std::string& dir, const std::string& step,
                  std::vector<std::string> args) {
  const std::string log = dir + "/openssl.log";
  std::vector<std::string> argv = {
      "/bin/sh", "-c", "exec openssl \"$@\" >>'" + log + "' 2>&1", "sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  DTX_ASSIGN_OR_RETURN(Subprocess child, Subprocess::Start(argv));
  child.CloseStdin();
  const int code = child.Wait();
  if (code == 0) return Status::Ok();
  std::string tail;
  if (Result<std::string> text = ReadTextFile(log); text.ok()) {
    tail = text->size() > 800 ? text->substr(text->size() - 800) : *text;
  }
  if (code == 127) {
    return UnavailableError("test_certs: the openssl tool is not installed");
  }
  return InternalError("test_certs: openssl failed (exit " +
                       std::to_string(code) + ") at " + step + ": " + tail);
}

// A CA of its own: key, self-signed certificate and `openssl ca`'s database.
struct Ca {
  std::string name;  // file prefix
  std::string cert, key, config;
};

Result<Ca> MakeCa(const std::string& dir, const std::string& name,
                  const std::string& common_name) {
  Ca ca{name, dir + "/" + name + ".pem", dir + "/" + name + ".key",
        dir + "/" + name + ".cnf"};
  DTX_RETURN_IF_ERROR(
      RunOpenssl(dir, name + " certificate",
                 {"req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca.key,
                  "-out", ca.cert, "-days", "30", "-subj", "/CN=" + common_name,
                  "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                  "keyUsage=critical,keyCertSign,cRLSign"}));
  const std::string db = dir + "/" + name + "-db";
  DTX_RETURN_IF_ERROR(WriteTextFile(db + ".index", ""));
  DTX_RETURN_IF_ERROR(WriteTextFile(db + ".serial", "1000\n"));
  // `openssl ca` rather than `openssl x509 -req`: only it sets an explicit
  // validity period (the expired certificate) in OpenSSL 3.0.
  DTX_RETURN_IF_ERROR(WriteTextFile(
      ca.config, "[ca]\ndefault_ca = this\n[this]\ndatabase = " + db +
                     ".index\nserial = " + db + ".serial\nnew_certs_dir = " +
                     dir + "\ndefault_md = sha256\npolicy = any\n" +
                     "unique_subject = no\ncopy_extensions = none\n" +
                     "[any]\ncommonName = supplied\n"));
  return ca;
}

// A key and a certificate for `common_name` signed by `ca`, with the
// extensions in `extensions`; valid from now for 30 days unless `start` and
// `end` (openssl's YYYYMMDDHHMMSSZ) say otherwise.
Result<CertAndKey> MakeLeaf(const std::string& dir, const Ca& ca,
                            const std::string& name,
                            const std::string& common_name,
                            const std::string& extensions,
                            const std::string& start = "",
                            const std::string& end = "") {
  CertAndKey out{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
  const std::string csr = dir + "/" + name + ".csr";
  const std::string ext = dir + "/" + name + ".ext";
  DTX_RETURN_IF_ERROR(
      RunOpenssl(dir, name + " key",
                 {"req", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                  out.key_file, "-out", csr, "-subj", "/CN=" + common_name}));
  DTX_RETURN_IF_ERROR(WriteTextFile(ext, extensions));
  std::vector<std::string> args = {
      "ca",    "-batch", "-notext",     "-config",  ca.config,
      "-cert", ca.cert,  "-keyfile",    ca.key,     "-in",
      csr,     "-out",   out.cert_file, "-extfile", ext};
  if (start.empty()) {
    args.insert(args.end(), {"-days", "30"});
  } else {
    args.insert(args.end(), {"-startdate", start, "-enddate", end});
  }
  DTX_RETURN_IF_ERROR(RunOpenssl(dir, name + " certificate", args));
  return out;
}

constexpr char kServerExtensions[] =
    "basicConstraints = critical, CA:FALSE\n"
    "keyUsage = critical, digitalSignature, keyEncipherment\n"
    "extendedKeyUsage = serverAuth, clientAuth\n"
    "subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1\n";
constexpr char kWrongHostExtensions[] =
    "basicConstraints = critical, CA:FALSE\n"
    "keyUsage = critical, digitalSignature, keyEncipherment\n"
    "extendedKeyUsage = serverAuth\n"
    "subjectAltName = DNS:wrong.example.invalid\n";
constexpr char kClientExtensions[] =
    "basicConstraints = critical, CA:FALSE\n"
    "keyUsage = critical, digitalSignature, keyEncipherment\n"
    "extendedKeyUsage = clientAuth\n";

}  // namespace

Result<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<TestCerts> TestCerts::Generate(const std::string& dir) {
  TestCerts c;
  c.dir = dir;
  DTX_ASSIGN_OR_RETURN(Ca ca, MakeCa(dir, "ca", "dtx test CA"));
  DTX_ASSIGN_OR_RETURN(Ca other, MakeCa(dir, "other-ca", "dtx other CA"));
  c.ca_file = ca.cert;
  c.other_ca_file = other.cert;
  DTX_ASSIGN_OR_RETURN(
      c.server, MakeLeaf(dir, ca, "server", "localhost", kServerExtensions));
  DTX_ASSIGN_OR_RETURN(
      c.expired, MakeLeaf(dir, ca, "expired", "localhost", kServerExtensions,
                          "20200101000000Z", "20200131000000Z"));
  DTX_ASSIGN_OR_RETURN(c.wrong_host,
                       MakeLeaf(dir, ca, "wrong-host", "wrong.example.invalid",
                                kWrongHostExtensions));
  DTX_ASSIGN_OR_RETURN(
      c.other_ca_server,
      MakeLeaf(dir, other, "other-ca-server", "localhost", kServerExtensions));
  DTX_ASSIGN_OR_RETURN(c.client, MakeLeaf(dir, ca, "client", "dtx test client",
                                          kClientExtensions));
  DTX_ASSIGN_OR_RETURN(c.other_ca_client,
                       MakeLeaf(dir, other, "other-ca-client",
                                "dtx test client", kClientExtensions));
  return c;
}

}  // namespace dtx::testing
