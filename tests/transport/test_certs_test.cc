// The certificates TestCerts makes are what their names say, checked with
// `openssl verify` (independent of dtx's TLS code, so that a TLS test that
// expects a refusal is refused for the reason it names).

#include "test_certs.h"

#include "status_matchers.h"
#include "subprocess.h"
#include "temp_dir.h"

#include <gtest/gtest.h>

#include <string>

namespace dtx::testing {
namespace {

// `openssl verify`'s exit code and output for `cert` against `ca`.
std::pair<int, std::string> Verify(const std::string& ca,
                                   const std::string& cert,
                                   const std::string& extra = "") {
  auto child = Subprocess::Start({"/bin/sh", "-c",
                                  "openssl verify -CAfile '" + ca + "' " +
                                      extra + " '" + cert + "' 2>&1"});
  if (!child.ok()) return {-1, child.status().ToString()};
  child->CloseStdin();
  std::string out;
  while (auto line = child->ReadLine()) out += *line + "\n";
  return {child->Wait(), out};
}

TEST(TestCertsTest, EachCertificateIsWhatItsNameSays) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(TestCerts c, TestCerts::Generate(dir.path()));

  EXPECT_EQ(Verify(c.ca_file, c.server.cert_file).first, 0);
  EXPECT_EQ(Verify(c.ca_file, c.client.cert_file).first, 0);
  EXPECT_EQ(Verify(c.ca_file, c.server.cert_file, "-verify_ip 127.0.0.1").first,
            0);
  EXPECT_EQ(
      Verify(c.ca_file, c.server.cert_file, "-verify_hostname localhost").first,
      0);

  auto [code, out] = Verify(c.ca_file, c.expired.cert_file);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("expired"), std::string::npos) << out;

  std::tie(code, out) =
      Verify(c.ca_file, c.wrong_host.cert_file, "-verify_hostname localhost");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("mismatch"), std::string::npos) << out;
  EXPECT_EQ(Verify(c.ca_file, c.wrong_host.cert_file).first, 0);

  EXPECT_NE(Verify(c.ca_file, c.other_ca_server.cert_file).first, 0);
  EXPECT_NE(Verify(c.ca_file, c.other_ca_client.cert_file).first, 0);
  EXPECT_EQ(Verify(c.other_ca_file, c.other_ca_server.cert_file).first, 0);

  ASSERT_OK_AND_ASSIGN(std::string key, ReadTextFile(c.server.key_file));
  EXPECT_NE(key.find("PRIVATE KEY"), std::string::npos);
}

}  // namespace
}  // namespace dtx::testing
