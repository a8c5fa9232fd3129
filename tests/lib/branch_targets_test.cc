#include "dtx/branch_targets.h"

#include <gtest/gtest.h>

#include <string>

namespace dtx {
namespace {

BranchTargets Enforced() {
  BranchTargets t;
  t.enforce = true;
  return t;
}

TEST(BranchTargetsTest, OffAllowsEverything) {
  const BranchTargets t;
  EXPECT_TRUE(t.Check("unix:///run/admin.sock/pkg.Svc/M").ok());
  EXPECT_TRUE(t.Check("http://169.254.169.254/latest/meta-data").ok());
}

TEST(BranchTargetsTest, EnforcedWithEmptyListsRefusesOnlySocketsAndMetadata) {
  const BranchTargets t = Enforced();
  EXPECT_TRUE(t.Check("localhost:9000/busi.Busi/TransIn").ok());
  EXPECT_TRUE(t.Check("http://10.0.0.5:8080/api/busi/TransIn").ok());
  EXPECT_TRUE(t.Check("discovery:///trans/api.trans.v1.Trans/TransIn").ok());
  for (const char* url : {
           "unix:///run/admin.sock/pkg.Svc/M",
           "unix:/run/admin.sock/pkg.Svc/M",
           "unix-abstract:admin/pkg.Svc/M",
           "http://169.254.169.254/latest/meta-data",
           "169.254.169.254:80/pkg.Svc/M",
           "ipv4:10.0.0.1:80,169.254.169.254:80/pkg.Svc/M",
           "ipv6:[fe80::1]:80/pkg.Svc/M",
           "http://[::ffff:169.254.169.254]/x",
           "http://user:pw@169.254.169.254:80/x",
           "dns:///metadata.google.internal:80/pkg.Svc/M",
           "dns://8.8.8.8/169.254.1.1:80/pkg.Svc/M",
           "passthrough:///169.254.1.1:80/pkg.Svc/M",
           "direct:///10.0.0.1:80,[fe80::2]:80/pkg.Svc/M",
           // Other spellings of 169.254.169.254 that the resolver takes.
           "http://2852039166/latest",
           "http://0xa9fea9fe/latest",
           "http://0251.0376.0251.0376/latest",
           "http://169.254.43518/latest",
           "http://169.254.169.254./latest",
           // A zone names an interface, not another address.
           "ipv6:[fe80::1%25eth0]:80/pkg.Svc/M",
           "http://[fe80::1%eth0]:80/x",
       }) {
    const Status s = t.Check(url);
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << url;
    EXPECT_NE(s.message().find(url), std::string::npos) << s.message();
  }
}

TEST(BranchTargetsTest, MessagesNameTheRule) {
  BranchTargets t = Enforced();
  EXPECT_EQ(t.Check("unix:///run/a.sock/pkg.Svc/M").message(),
            "branch url 'unix:///run/a.sock/pkg.Svc/M' is not allowed: scheme "
            "unix (a socket on the coordinator's own host) is refused unless "
            "BranchTargets.Schemes lists it");
  t.hosts = {"*.svc.cluster.local"};
  EXPECT_EQ(t.Check("http://evil.example:80/x").message(),
            "branch url 'http://evil.example:80/x' is not allowed: host "
            "evil.example is not in BranchTargets.Hosts");
}

TEST(BranchTargetsTest, ListedSocketsAndMetadataAreAllowed) {
  BranchTargets t = Enforced();
  t.schemes = {"unix", "http"};
  t.hosts = {"169.254.169.254", "*"};
  EXPECT_TRUE(t.Check("unix:///run/a.sock/pkg.Svc/M").ok());
  EXPECT_TRUE(t.Check("http://169.254.169.254/latest").ok());
  // "*" is not a listing of a metadata address.
  EXPECT_EQ(t.Check("http://169.254.1.2/x").code(),
            StatusCode::kPermissionDenied);
  t.hosts = {"169.254.0.0/16"};
  EXPECT_TRUE(t.Check("http://169.254.1.2/x").ok());
}

TEST(BranchTargetsTest, HostsPortsSchemesAndServices) {
  BranchTargets t = Enforced();
  t.schemes = {"grpc", "http", "discovery"};
  t.hosts = {"*.SVC.cluster.local", "10.0.0.0/8", "Pay.Internal"};
  t.ports = {80, 9000};
  t.services = {"trans"};
  EXPECT_TRUE(t.Check("busi.ns.svc.cluster.local:9000/busi.Busi/TransIn").ok());
  EXPECT_TRUE(t.Check("http://10.1.2.3/api").ok());  // port 80 by default
  EXPECT_TRUE(t.Check("http://pay.internal./api").ok());
  EXPECT_TRUE(t.Check("discovery://etcd:2379/trans/pkg.Svc/M").ok());
  EXPECT_EQ(t.Check("svc.cluster.local:9000/pkg.Svc/M").code(),
            StatusCode::kPermissionDenied);  // the suffix itself is not a name
  EXPECT_EQ(t.Check("busi.svc.cluster.local:22/pkg.Svc/M").code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(t.Check("https://10.1.2.3/api").code(),
            StatusCode::kPermissionDenied);  // scheme
  EXPECT_EQ(t.Check("11.0.0.1:9000/pkg.Svc/M").code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(t.Check("discovery:///other/pkg.Svc/M").code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(t.Check("dns:///10.0.0.1:9000/pkg.Svc/M").code(),
            StatusCode::kPermissionDenied);  // dns not listed
}

TEST(BranchTargetsTest, UnreadableUrlsAreInvalid) {
  const BranchTargets t = Enforced();
  EXPECT_EQ(t.Check("http://[::1/x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.Check("discovery:///").code(), StatusCode::kInvalidArgument);
}

TEST(BranchTargetsTest, ValidateNamesTheBadEntry) {
  BranchTargets t;
  t.schemes = {"gopher"};
  EXPECT_EQ(t.Validate().code(), StatusCode::kInvalidArgument);
  t.schemes = {};
  t.hosts = {"10.0.0.0/99"};
  EXPECT_NE(t.Validate().message().find("10.0.0.0/99"), std::string::npos);
  t.hosts = {"a*.b"};
  EXPECT_EQ(t.Validate().code(), StatusCode::kInvalidArgument);
  t.hosts = {};
  t.ports = {0};
  EXPECT_EQ(t.Validate().code(), StatusCode::kInvalidArgument);
  t.ports = {443};
  EXPECT_TRUE(t.Validate().ok());
}

}  // namespace
}  // namespace dtx
