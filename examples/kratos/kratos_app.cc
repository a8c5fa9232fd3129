// kratos-app: runs a TCC, a SAGA and a two-phase message against the `trans`
// service with the embedded coordinator (SQLite journal, gRPC branch calls),
// and prints each transaction's final status.
//
// With --etcd, as in dtm's Kratos example, the coordinator uses the Kratos
// driver (MicroService.Target discovery://<etcd>/dtmservice) and the branches
// are discovery://<etcd>/trans/api.trans.v1.Trans/...; without it the service
// is reached directly at --trans.
//
// With --dtm the transactions run on a remote coordinator (dtx-server, or
// dtm itself) instead: host:port, or discovery://<etcd>/dtmservice as dtm's
// Kratos example writes it. The code below is the same either way: it is
// written against dtx::DtmApi.
//
//   kratos-app --etcd 127.0.0.1:2379 | --trans 127.0.0.1:9000
//             [--dtm ADDRESS] [--journal dtx.db] [--log info]

#include "dtx/dtx.h"
#include "dtx/embedded.h"
#include "dtx/transport/grpc_dtm_client.h"
#include "dtx/transport/kratos_registry.h"

#include "api/trans/v1/trans.pb.h"

#include <cstdio>
#include <memory>
#include <string>

namespace {

std::string Flag(int argc, char** argv, const std::string& name,
                 const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return fallback;
}

dtx::Status Run(dtx::DtmApi& dtm, const std::string& busi) {
  api::trans::v1::AdjustInfo req;
  req.set_amount(30);
  req.set_userid(1);

  // TCC: try both branches, then the coordinator confirms them.
  DTX_ASSIGN_OR_RETURN(std::string tcc_gid, dtm.NewGid());
  dtx::TransOptions wait;
  wait.wait_result = true;
  DTX_RETURN_IF_ERROR(
      dtx::TccGlobalTransaction(dtm, tcc_gid, wait, [&](dtx::Tcc& tcc) {
        DTX_RETURN_IF_ERROR(tcc.CallBranch(req, busi + "/TransOut",
                                           busi + "/TransOutConfirm",
                                           busi + "/TransOutCancel"));
        return tcc.CallBranch(req, busi + "/TransIn", busi + "/TransInConfirm",
                              busi + "/TransInCancel");
      }));

  // SAGA: the coordinator calls each action, compensating on failure.
  DTX_ASSIGN_OR_RETURN(std::string saga_gid, dtm.NewGid());
  DTX_RETURN_IF_ERROR(
      dtx::Saga(dtm, saga_gid)
          .Add(busi + "/TransOut", busi + "/TransOutRevert", req)
          .Add(busi + "/TransIn", busi + "/TransInRevert", req)
          .WaitResult(true)
          .Submit());

  // MSG: prepared, local work done, submitted; the coordinator delivers it.
  DTX_ASSIGN_OR_RETURN(std::string msg_gid, dtm.NewGid());
  DTX_RETURN_IF_ERROR(dtx::Msg(dtm, msg_gid)
                          .Add(busi + "/TransOut", req)
                          .Add(busi + "/TransIn", req)
                          .WaitResult(true)
                          .DoAndSubmit(busi + "/QueryPrepared",
                                       [] { return dtx::Status::Ok(); }));

  for (const auto& [kind, gid] :
       {std::pair<const char*, std::string>{"tcc", tcc_gid},
        {"saga", saga_gid},
        {"msg", msg_gid}}) {
    DTX_ASSIGN_OR_RETURN(auto t, dtm.Query(gid));
    std::printf("%-4s gid=%s %s\n", kind, gid.c_str(),
                std::string(dtx::ToString(t.trans.status)).c_str());
  }
  return dtx::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string trans = Flag(argc, argv, "--trans", "127.0.0.1:9000");
  auto level = dtx::ParseLogLevel(Flag(argc, argv, "--log", "warn"));
  if (!level.ok()) {
    std::fprintf(stderr, "kratos-app: %s\n", level.status().ToString().c_str());
    return 2;
  }
  dtx::Options options;
  dtx::EmbeddedOptions embedded;
  embedded.journal_path = Flag(argc, argv, "--journal", "dtx.db");
  embedded.logger = dtx::NewStderrLogger(*level);
  const std::string etcd = Flag(argc, argv, "--etcd", "");
  std::string busi = trans + "/api.trans.v1.Trans";
  if (!etcd.empty()) {
    embedded.driver = "dtm-driver-kratos";
    embedded.target = "discovery://" + etcd + "/dtmservice";
    busi = "discovery://" + etcd + "/trans/api.trans.v1.Trans";
  }
  std::unique_ptr<dtx::DtmApi> dtm;
  const std::string remote = Flag(argc, argv, "--dtm", "");
  if (remote.empty()) {
    auto opened = dtx::OpenEmbeddedCoordinator(options, embedded);
    if (!opened.ok()) {
      std::fprintf(stderr, "kratos-app: %s\n",
                   opened.status().ToString().c_str());
      return 1;
    }
    dtm = std::move(opened).value();
  } else {
    dtx::GrpcDtmClientOptions client_options;
    client_options.address = remote;
    client_options.driver = embedded.driver;
    client_options.logger = embedded.logger;
    if (!etcd.empty()) {
      // The app's own TCC try calls go to discovery:// URLs as well.
      dtx::EtcdServiceResolver::Options resolver_options;
      resolver_options.logger = embedded.logger;
      auto resolver =
          dtx::EtcdServiceResolver::Connect({etcd}, resolver_options);
      if (!resolver.ok()) {
        std::fprintf(stderr, "kratos-app: %s\n",
                     resolver.status().ToString().c_str());
        return 1;
      }
      client_options.resolver = *resolver;
    }
    auto connected = dtx::GrpcDtmClient::Create(client_options);
    if (!connected.ok()) {
      std::fprintf(stderr, "kratos-app: %s\n",
                   connected.status().ToString().c_str());
      return 1;
    }
    dtm = std::move(connected).value();
    std::printf("coordinator at %s\n", remote.c_str());
  }
  std::printf("branches at %s\n", busi.c_str());
  dtx::Status s = Run(*dtm, busi);
  if (!s.ok()) {
    std::fprintf(stderr, "kratos-app: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
