// dtx_dtm_relay: the baseline of dtx_bench's dtx-server rows. It serves
// dtmgimp.Dtm as dtx-server does, so GrpcDtmClient sends it exactly what it
// sends dtx-server, and answers each request once it has made that request's
// part of the zero-overhead plan (journal_plan.h): the same durable and
// queued journal writes (SQLite, synchronous=FULL) and the same branch calls
// (a generated stub with dtm's metadata, to the benchmark's echo service),
// with no coordinator in between. Everything runs on completions (gRPC's
// callback API, the journal's WriteDone), as dtx-server does.
//
//   dtx_dtm_relay --journal FILE --branch HOST:PORT [--port 0]
//
// Prints "port <n>" once it serves; exits when stdin closes. Only what the
// benchmark sends is served: NewGid; Submit of a saga or msg; Prepare,
// RegisterBranch and Submit of a tcc. Anything else is UNIMPLEMENTED.

#include "dtx/id_generator.h"
#include "dtx/storage/sqlite_journal.h"

#include "bench_util.h"
#include "dtm/dtmgimp.grpc.pb.h"
#include "dtm_proto.h"
#include "dtx_test.grpc.pb.h"
#include "journal_plan.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace dtx::bench {
namespace {

using google::protobuf::Empty;

class Relay final : public dtmgimp::Dtm::CallbackService {
 public:
  Relay(Journal& journal, const std::string& branch_address)
      : journal_(journal),
        stub_(dtx::test::Busi::NewStub(grpc::CreateChannel(
            branch_address, grpc::InsecureChannelCredentials()))),
        call_([this](const PlanStep& s, std::function<void(bool)> done) {
          Call(s, std::move(done));
        }) {}

  grpc::ServerUnaryReactor* NewGid(grpc::CallbackServerContext* context,
                                   const Empty*,
                                   dtmgimp::DtmGidReply* reply) override {
    reply->set_gid(ids_->NewGid());
    return Answer(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* Prepare(grpc::CallbackServerContext* context,
                                    const dtmgimp::DtmRequest* request,
                                    Empty*) override {
    if (request->transtype() != "tcc") return Unimplemented(context);
    return Run(context, TccPreparePlan(request->gid()));
  }

  grpc::ServerUnaryReactor* RegisterBranch(
      grpc::CallbackServerContext* context,
      const dtmgimp::DtmBranchRequest* request, Empty*) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      registered_[request->gid()].push_back(request->branchid());
    }
    return Run(context, TccRegisterPlan(request->gid(), request->branchid()));
  }

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context,
                                   const dtmgimp::DtmRequest* request,
                                   Empty*) override {
    if (request->transtype() == "tcc") {
      std::vector<std::string> ids;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = registered_.find(request->gid());
        if (it != registered_.end()) {
          ids = std::move(it->second);
          registered_.erase(it);
        }
      }
      return Run(context, TccSubmitPlan(request->gid(), ids));
    }
    // Decoded as dtx-server decodes it.
    auto parsed = internal::FromProto(*request);
    if (!parsed.ok() || (parsed->trans_type != TransType::kSaga &&
                         parsed->trans_type != TransType::kMsg)) {
      return Unimplemented(context);
    }
    std::vector<bool> has_url;
    for (const TransStep& step : parsed->steps) {
      has_url.push_back(!step.action.empty());
    }
    return Run(context, StepsPlan(parsed->gid, parsed->trans_type, has_url));
  }

 private:
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                Plan plan) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    RunAsync(std::make_shared<const Plan>(std::move(plan)), journal_, call_,
             [reactor](bool ok) {
               reactor->Finish(ok ? grpc::Status::OK
                                  : grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                                 "relay: a write or a call "
                                                 "failed"));
             });
    return reactor;
  }

  void Call(const PlanStep& s, std::function<void(bool)> done) {
    struct Pending {
      grpc::ClientContext context;
      dtx::test::Payload request;
      dtx::test::Payload reply;
    };
    auto* p = new Pending;
    p->context.set_deadline(std::chrono::system_clock::now() +
                            std::chrono::seconds(3));
    p->context.AddMetadata("dtm-gid", s.gid);
    p->context.AddMetadata("dtm-trans_type", s.trans_type);
    p->context.AddMetadata("dtm-branch_id", s.branch_id);
    p->context.AddMetadata("dtm-op", s.op);
    p->context.AddMetadata("dtm-dtm", "");
    stub_->async()->Echo(&p->context, &p->request, &p->reply,
                         [p, done = std::move(done)](grpc::Status status) {
                           delete p;
                           done(status.ok());
                         });
  }

  static grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context,
                                          const grpc::Status& status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }
  static grpc::ServerUnaryReactor* Unimplemented(
      grpc::CallbackServerContext* context) {
    return Answer(context, grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                        "relay: not part of the benchmark"));
  }

  Journal& journal_;
  std::unique_ptr<dtx::test::Busi::Stub> stub_;
  const AsyncCall call_;
  std::unique_ptr<IdGenerator> ids_ = NewTimeOrderedIdGenerator();
  std::mutex mu_;
  // TCC branch ids registered and not submitted yet, per gid.
  std::map<std::string, std::vector<std::string>> registered_;  // guarded
};

int Main(int argc, char** argv) {
  const std::string path = Flag(argc, argv, "--journal", "");
  const std::string branch = Flag(argc, argv, "--branch", "");
  const std::string port_flag = Flag(argc, argv, "--port", "0");
  if (path.empty() || branch.empty()) {
    std::fprintf(stderr,
                 "usage: dtx_dtm_relay --journal FILE --branch HOST:PORT "
                 "[--port 0]\n");
    return 2;
  }
  SqliteJournalOptions options;
  options.path = path;
  auto journal = SqliteJournal::Open(options);
  if (!journal.ok()) {
    std::fprintf(stderr, "dtx_dtm_relay: %s\n",
                 journal.status().ToString().c_str());
    return 1;
  }
  Relay relay(**journal, branch);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + port_flag,
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&relay);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "dtx_dtm_relay: cannot listen\n");
    return 1;
  }
  std::printf("port %d\n", port);
  std::fflush(stdout);
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
  server->Shutdown();
  (*journal)->Close();
  return 0;
}

}  // namespace
}  // namespace dtx::bench

int main(int argc, char** argv) { return dtx::bench::Main(argc, argv); }
