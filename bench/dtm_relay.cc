// dtx_dtm_relay: the baseline of dtx_bench's dtx-server rows. It serves
// dtmgimp.Dtm as dtx-server does, so GrpcDtmClient sends it exactly what it
// sends dtx-server, and answers each request once it has made that request's
// part of the zero-overhead plan (journal_plan.h): the same durable and
// queued journal writes (SQLite, synchronous=FULL) and the same branch calls
// (a generated stub with dtm's metadata, to the benchmark's echo service),
// with no coordinator in between. Everything runs on completions (gRPC's
// callback API, the journal's WriteDone), as dtx-server does.
//
// With --http it also serves dtm's HTTP API (newGid, prepare,
// registerBranch, submit) on dtx::HttpServer, decoding the bodies with the
// codec dtx-server uses (dtm_http_json.h), and makes the plan's branch calls
// as dtm's HTTP calls (dtx::HttpClient, query gid/trans_type/branch_id/op)
// to --http-branch: the baseline of the rows through dtx-server's HTTP API.
//
// With --pg-conninfo instead of --journal the journal is PostgresJournal
// (in --pg-schema, default public): the baseline of dtx_bench --journal
// postgres --server.
//
//   dtx_dtm_relay --journal FILE | --pg-conninfo CONNINFO [--pg-schema S]
//                 --branch HOST:PORT [--port 0]
//                 [--http --http-branch http://127.0.0.1:PORT/echo]
//
// Prints "port <n>" (and with --http "http-port <n>") once it serves; exits
// when stdin closes. Only what the benchmark sends is served: NewGid; Submit
// of a saga or msg; Prepare, RegisterBranch and Submit of a tcc;
// PrepareWorkflow, RegisterBranch and Submit of a workflow (whose steps'
// calls the client makes). Anything
// else is UNIMPLEMENTED (HTTP 501).

#include "dtx/id_generator.h"
#ifdef DTX_RELAY_POSTGRES
#include "dtx/storage/postgres_journal.h"
#endif
#include "dtx/storage/sqlite_journal.h"
#include "dtx/transport/dtm_http_json.h"
#include "dtx/transport/grpc_process.h"
#include "dtx/transport/http_client.h"
#include "dtx/transport/http_server.h"

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

// TCC branch ids registered and not submitted yet, per gid (both fronts).
class Registered {
 public:
  void Add(const std::string& gid, const std::string& branch_id) {
    std::lock_guard<std::mutex> lock(mu_);
    ids_[gid].push_back(branch_id);
  }
  // The ids of `gid`, forgotten here.
  std::vector<std::string> Take(const std::string& gid) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> ids;
    auto it = ids_.find(gid);
    if (it != ids_.end()) {
      ids = std::move(it->second);
      ids_.erase(it);
    }
    return ids;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> ids_;  // guarded by mu_
};

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

  grpc::ServerUnaryReactor* PrepareWorkflow(
      grpc::CallbackServerContext* context, const dtmgimp::DtmRequest* request,
      dtmgimp::DtmProgressesReply* reply) override {
    if (request->transtype() != "workflow") return Unimplemented(context);
    // A new workflow each time (the benchmark never resumes one).
    reply->mutable_transaction()->set_gid(request->gid());
    reply->mutable_transaction()->set_status("prepared");
    return Run(context, WorkflowPreparePlan(request->gid()));
  }

  grpc::ServerUnaryReactor* RegisterBranch(
      grpc::CallbackServerContext* context,
      const dtmgimp::DtmBranchRequest* request, Empty*) override {
    if (request->transtype() == "workflow") {
      return Run(context,
                 WorkflowRecordPlan(request->gid(), request->branchid(),
                                    request->busipayload()));
    }
    registered_.Add(request->gid(), request->branchid());
    return Run(context, TccRegisterPlan(request->gid(), request->branchid()));
  }

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context,
                                   const dtmgimp::DtmRequest* request,
                                   Empty*) override {
    if (request->transtype() == "tcc") {
      std::vector<std::string> ids = registered_.Take(request->gid());
      return Run(context, TccSubmitPlan(request->gid(), ids));
    }
    if (request->transtype() == "workflow") {
      return Run(context, WorkflowSubmitPlan(request->gid()));
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
  Registered registered_;
};

// dtm's HTTP API, answered like Relay answers dtmgimp: each request once
// its part of the plan is done, branch calls as dtm's HTTP calls.
class HttpRelay {
 public:
  HttpRelay(Journal& journal, HttpClient& client, std::string branch_url)
      : journal_(journal),
        client_(client),
        branch_url_(std::move(branch_url)),
        call_([this](const PlanStep& s, std::function<void(bool)> done) {
          Call(s, std::move(done));
        }) {}

  void Handle(HttpRequest request, HttpResponder responder) {
    const std::string& path = request.path;
    if (path == "/api/dtmsvr/newGid") {
      return responder.Respond(HttpResponse::Json(
          200,
          R"({"gid":")" + ids_->NewGid() + R"(","dtm_result":"SUCCESS"})"));
    }
    if (path == "/api/dtmsvr/registerBranch") {
      auto branch = DecodeDtmBranchJson(request.body);
      if (!branch.ok())
        return responder.Respond(DtmHttpAnswer(branch.status()));
      registered_.Add(branch->gid, branch->branch_id);
      return Run(responder, TccRegisterPlan(branch->gid, branch->branch_id));
    }
    const bool prepare = path == "/api/dtmsvr/prepare";
    if (!prepare && path != "/api/dtmsvr/submit")
      return Unimplemented(responder);
    auto trans = DecodeDtmTransJson(request.body);
    if (!trans.ok()) return responder.Respond(DtmHttpAnswer(trans.status()));
    if (trans->trans_type == TransType::kTcc) {
      if (prepare) return Run(responder, TccPreparePlan(trans->gid));
      std::vector<std::string> ids = registered_.Take(trans->gid);
      return Run(responder, TccSubmitPlan(trans->gid, ids));
    }
    if (prepare || (trans->trans_type != TransType::kSaga &&
                    trans->trans_type != TransType::kMsg)) {
      return Unimplemented(responder);
    }
    std::vector<bool> has_url;
    for (const TransStep& step : trans->steps) {
      has_url.push_back(!step.action.empty());
    }
    Run(responder, StepsPlan(trans->gid, trans->trans_type, has_url));
  }

 private:
  void Run(HttpResponder responder, Plan plan) {
    RunAsync(std::make_shared<const Plan>(std::move(plan)), journal_, call_,
             [responder](bool ok) {
               responder.Respond(DtmHttpAnswer(
                   ok ? Status::Ok()
                      : UnavailableError("relay: a write or a call failed")));
             });
  }

  // dtm's HTTP branch call: GET (the benchmark's payloads are empty) with
  // the transaction's identity in the query.
  void Call(const PlanStep& s, std::function<void(bool)> done) {
    HttpClientRequest req;
    req.method = "GET";
    req.url = branch_url_ + "?gid=" + s.gid + "&trans_type=" + s.trans_type +
              "&branch_id=" + s.branch_id + "&op=" + s.op;
    req.headers = {{"Content-Type", "application/json"}};
    req.timeout = std::chrono::seconds(3);
    client_.Send(std::move(req), nullptr,
                 [done = std::move(done)](Result<HttpClientResponse> r) {
                   done(r.ok() && r->status == 200);
                 });
  }

  static void Unimplemented(HttpResponder& responder) {
    responder.Respond(
        DtmHttpAnswer(UnimplementedError("relay: not part of the benchmark")));
  }

  Journal& journal_;
  HttpClient& client_;
  const std::string branch_url_;
  const AsyncCall call_;
  std::unique_ptr<IdGenerator> ids_ = NewTimeOrderedIdGenerator();
  Registered registered_;
};

int Main(int argc, char** argv) {
  // As dtx-server does, on both sides of each comparison (grpc_process.h).
  dtx::DisableMutexDeadlockDetection();
  RefuseUnknownFlags(argc, argv, "dtx_dtm_relay",
                     {"--journal", "--branch", "--port", "--http-branch",
                      "--pg-conninfo", "--pg-schema"},
                     {"--http"});
  const std::string path = Flag(argc, argv, "--journal", "");
  const std::string pg_conninfo = Flag(argc, argv, "--pg-conninfo", "");
  const std::string branch = Flag(argc, argv, "--branch", "");
  const std::string port_flag = Flag(argc, argv, "--port", "0");
  if (path.empty() == pg_conninfo.empty() || branch.empty() ||
      (HasFlag(argc, argv, "--http") &&
       Flag(argc, argv, "--http-branch", "").empty())) {
    std::fprintf(stderr,
                 "usage: dtx_dtm_relay --journal FILE | --pg-conninfo "
                 "CONNINFO [--pg-schema S] --branch HOST:PORT [--port 0] "
                 "[--http --http-branch URL]\n");
    return 2;
  }
  // The SQLite file, or the PostgreSQL journal of dtx_bench --journal
  // postgres.
  Result<std::unique_ptr<Journal>> journal = UnimplementedError(
      "--pg-conninfo: this dtx_dtm_relay was built without libpq");
  if (!path.empty()) {
    SqliteJournalOptions options;
    options.path = path;
    auto sqlite = SqliteJournal::Open(options);
    if (sqlite.ok()) {
      journal = std::unique_ptr<Journal>(std::move(sqlite).value());
    } else {
      journal = sqlite.status();
    }
  } else {
#ifdef DTX_RELAY_POSTGRES
    PostgresJournalOptions options;
    options.conninfo = pg_conninfo;
    options.schema = Flag(argc, argv, "--pg-schema", "public");
    auto pg = PostgresJournal::Open(options);
    if (pg.ok()) {
      journal = std::unique_ptr<Journal>(std::move(pg).value());
    } else {
      journal = pg.status();
    }
#endif
  }
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

  std::unique_ptr<HttpClient> http_client;
  std::unique_ptr<HttpRelay> http_relay;
  std::unique_ptr<HttpServer> http_server;
  if (HasFlag(argc, argv, "--http")) {
    HttpClientOptions client_options;
    client_options.io_threads = 1;
    auto client = HttpClient::Create(client_options);
    if (!client.ok()) {
      std::fprintf(stderr, "dtx_dtm_relay: %s\n",
                   client.status().ToString().c_str());
      return 1;
    }
    http_client = std::move(client).value();
    http_relay = std::make_unique<HttpRelay>(
        **journal, *http_client, Flag(argc, argv, "--http-branch", ""));
    HttpServerOptions server_options;
    server_options.host = "127.0.0.1";
    server_options.port = 0;
    auto started = HttpServer::Start(
        server_options, [relay = http_relay.get()](HttpRequest request,
                                                   HttpResponder responder) {
          relay->Handle(std::move(request), std::move(responder));
        });
    if (!started.ok()) {
      std::fprintf(stderr, "dtx_dtm_relay: %s\n",
                   started.status().ToString().c_str());
      return 1;
    }
    http_server = std::move(started).value();
    std::printf("http-port %d\n", http_server->port());
  }
  std::fflush(stdout);
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
  if (http_server) http_server->Shutdown(std::chrono::milliseconds(0));
  if (http_client) http_client->Shutdown();
  server->Shutdown();
  (*journal)->Close();
  return 0;
}

}  // namespace
}  // namespace dtx::bench

int main(int argc, char** argv) { return dtx::bench::Main(argc, argv); }
