// compat-http-app: dtx's embedded coordinator calling branch services it did
// not write: the Go HTTP service of tests/compat/go/cmd/http-busi (dtm's
// HTTP conventions) and the go-kratos gRPC service cmd/trans-go, in one
// program and, for the mixed sagas, in one transaction. It checks each
// transaction's final status and its branch rows; tests/compat/run_compat.sh
// checks what the services saw.
//
//   compat-http-app --busi http://127.0.0.1:<port> --etcd 127.0.0.1:<port>
//                   --journal FILE
//
// HTTP branches are http://<busi>/api/busi/<handler> with JSON payloads;
// gRPC ones are discovery://<etcd>/trans/api.trans.v1.Trans/<method> with
// AdjustInfo payloads, resolved through etcd by the Kratos driver. Prints
// "OK <case> gid=<gid> <status>" per case, "FAIL <case> ..." and exit 1 on
// the first unexpected answer.

#include "dtx/dtx.h"
#include "dtx/embedded.h"

#include "api/trans/v1/trans.pb.h"

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

std::string Flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return "";
}

struct Env {
  dtx::DtmApi* dtm = nullptr;
  std::string http;  // http://host:port/api/busi
  std::string grpc;  // discovery://etcd/trans/api.trans.v1.Trans
};

constexpr const char* kOk = R"({"amount":30,"user_id":1})";
// http-busi's TransIn answers 409 FAILURE to this one.
constexpr const char* kRefusedIn =
    R"({"amount":30,"user_id":1,"fail":"TransIn"})";

api::trans::v1::AdjustInfo Adjust() {
  api::trans::v1::AdjustInfo req;
  req.set_amount(30);
  req.set_userid(1);
  return req;
}

// The query's final status and branch rows ("<branch_id> <op>" -> status).
dtx::Status Expect(Env& env, const std::string& gid, dtx::TransStatus status,
                   const std::map<std::string, dtx::BranchStatus>& rows) {
  DTX_ASSIGN_OR_RETURN(auto t, env.dtm->Query(gid));
  if (t.trans.status != status) {
    return dtx::InternalError("status " +
                              std::string(dtx::ToString(t.trans.status)) +
                              ", want " + std::string(dtx::ToString(status)));
  }
  std::map<std::string, dtx::BranchStatus> got;
  for (const dtx::Branch& b : t.branches) {
    got[b.branch_id + " " + std::string(dtx::ToString(b.op))] = b.status;
  }
  if (got != rows) {
    std::string text;
    for (const auto& [k, v] : got) {
      text += " [" + k + " " + std::string(dtx::ToString(v)) + "]";
    }
    return dtx::InternalError("branch rows:" + text);
  }
  return dtx::Status::Ok();
}

using dtx::BranchStatus;
using dtx::TransStatus;
constexpr auto P = BranchStatus::kPrepared;
constexpr auto S = BranchStatus::kSucceed;
constexpr auto F = BranchStatus::kFailed;

dtx::Status HttpSaga(Env& env, const std::string& gid) {
  DTX_RETURN_IF_ERROR(
      dtx::Saga(*env.dtm, gid)
          .Add(env.http + "/TransOut", env.http + "/TransOutCompensate", kOk)
          .Add(env.http + "/TransIn", env.http + "/TransInCompensate", kOk)
          .WaitResult(true)
          .Submit());
  return Expect(env, gid, TransStatus::kSucceed,
                {{"01 action", S},
                 {"01 compensate", P},
                 {"02 action", S},
                 {"02 compensate", P}});
}

dtx::Status HttpSagaRollback(Env& env, const std::string& gid) {
  dtx::Status s =
      dtx::Saga(*env.dtm, gid)
          .Add(env.http + "/TransOut", env.http + "/TransOutCompensate", kOk)
          .Add(env.http + "/TransIn", env.http + "/TransInCompensate",
               kRefusedIn)
          .WaitResult(true)
          .Submit();
  if (s.code() != dtx::StatusCode::kAborted) {
    return dtx::InternalError("submit: want kAborted (409 from TransIn), got " +
                              s.ToString());
  }
  return Expect(env, gid, TransStatus::kFailed,
                {{"01 action", S},
                 {"01 compensate", S},
                 {"02 action", F},
                 {"02 compensate", S}});
}

dtx::Status HttpTcc(Env& env, const std::string& gid) {
  dtx::TransOptions wait;
  wait.wait_result = true;
  DTX_RETURN_IF_ERROR(
      dtx::TccGlobalTransaction(*env.dtm, gid, wait, [&](dtx::Tcc& tcc) {
        DTX_RETURN_IF_ERROR(tcc.CallBranch(
            std::string(kOk), env.http + "/TransOutTry",
            env.http + "/TransOutConfirm", env.http + "/TransOutCancel"));
        return tcc.CallBranch(std::string(kOk), env.http + "/TransInTry",
                              env.http + "/TransInConfirm",
                              env.http + "/TransInCancel");
      }));
  return Expect(env, gid, TransStatus::kSucceed,
                {{"01 cancel", P},
                 {"01 confirm", S},
                 {"02 cancel", P},
                 {"02 confirm", S}});
}

dtx::Status HttpMsgCheckBack(Env& env, const std::string& gid) {
  // The local part fails with an unknown outcome: the client asks
  // QueryPrepared (HTTP GET), which says it committed, and submits.
  dtx::Status s =
      dtx::Msg(*env.dtm, gid)
          .Add(env.http + "/TransIn", kOk)
          .WaitResult(true)
          .DoAndSubmit(env.http + "/QueryPrepared", [] {
            return dtx::UnavailableError("local commit: connection lost");
          });
  if (s.code() != dtx::StatusCode::kUnavailable) {
    return dtx::InternalError("DoAndSubmit: want the local error, got " +
                              s.ToString());
  }
  return Expect(env, gid, TransStatus::kSucceed, {{"01 action", S}});
}

dtx::Status MixedSaga(Env& env, const std::string& gid) {
  DTX_RETURN_IF_ERROR(
      dtx::Saga(*env.dtm, gid)
          .Add(env.grpc + "/TransOut", env.grpc + "/TransOutRevert", Adjust())
          .Add(env.http + "/TransIn", env.http + "/TransInCompensate", kOk)
          .WaitResult(true)
          .Submit());
  return Expect(env, gid, TransStatus::kSucceed,
                {{"01 action", S},
                 {"01 compensate", P},
                 {"02 action", S},
                 {"02 compensate", P}});
}

dtx::Status MixedSagaRollback(Env& env, const std::string& gid) {
  // The HTTP step refuses: both compensations run, the gRPC one last.
  dtx::Status s =
      dtx::Saga(*env.dtm, gid)
          .Add(env.grpc + "/TransOut", env.grpc + "/TransOutRevert", Adjust())
          .Add(env.http + "/TransIn", env.http + "/TransInCompensate",
               kRefusedIn)
          .WaitResult(true)
          .Submit();
  if (s.code() != dtx::StatusCode::kAborted) {
    return dtx::InternalError("submit: want kAborted, got " + s.ToString());
  }
  return Expect(env, gid, TransStatus::kFailed,
                {{"01 action", S},
                 {"01 compensate", S},
                 {"02 action", F},
                 {"02 compensate", S}});
}

}  // namespace

int main(int argc, char** argv) {
  const std::string busi = Flag(argc, argv, "--busi");
  const std::string etcd = Flag(argc, argv, "--etcd");
  const std::string journal = Flag(argc, argv, "--journal");
  if (busi.empty() || etcd.empty() || journal.empty()) {
    std::fprintf(stderr,
                 "usage: compat-http-app --busi http://HOST:PORT --etcd "
                 "HOST:PORT --journal FILE\n");
    return 2;
  }
  dtx::EmbeddedOptions embedded;
  embedded.journal_path = journal;
  embedded.durable_on_power_loss = false;
  embedded.driver = "dtm-driver-kratos";
  embedded.target = "discovery://" + etcd + "/dtmservice";
  embedded.logger = dtx::NewStderrLogger(dtx::LogLevel::kWarn);
  auto opened = dtx::OpenEmbeddedCoordinator({}, embedded);
  if (!opened.ok()) {
    std::fprintf(stderr, "compat-http-app: %s\n",
                 opened.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<dtx::Coordinator> dtm = std::move(opened).value();
  Env env{dtm.get(), busi + "/api/busi",
          "discovery://" + etcd + "/trans/api.trans.v1.Trans"};

  const std::vector<
      std::pair<const char*, dtx::Status (*)(Env&, const std::string&)>>
      cases = {{"http-saga", HttpSaga},
               {"http-saga-rollback", HttpSagaRollback},
               {"http-tcc", HttpTcc},
               {"http-msg-checkback", HttpMsgCheckBack},
               {"mixed-saga", MixedSaga},
               {"mixed-saga-rollback", MixedSagaRollback}};
  int failed = 0;
  for (const auto& [name, fn] : cases) {
    auto gid = dtm->NewGid();
    dtx::Status s = gid.ok() ? fn(env, *gid) : gid.status();
    if (s.ok()) {
      auto t = dtm->Query(*gid);
      std::printf("OK %s gid=%s %s\n", name, gid->c_str(),
                  std::string(dtx::ToString(t->trans.status)).c_str());
    } else {
      ++failed;
      std::printf("FAIL %s gid=%s: %s\n", name, gid.ok() ? gid->c_str() : "-",
                  s.ToString().c_str());
    }
  }
  std::fflush(stdout);
  dtm->Shutdown();
  return failed == 0 ? 0 : 1;
}
