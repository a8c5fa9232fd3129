#include "branch_test_server.h"

#include "dtx/internal/mutex.h"

#include "dtx_test.grpc.pb.h"
#include "test_certs.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdlib>
#include <queue>
#include <thread>

namespace dtx::testing {

std::string ReceivedCall::Get(const std::string& key) const {
  auto it = metadata.find(key);
  return it == metadata.end() ? std::string() : it->second;
}

namespace {

std::string Bytes(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!b.Dump(&slices).ok()) return out;
  for (const auto& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

class TypedEcho final : public dtx::test::Busi::Service {
 public:
  grpc::Status Echo(grpc::ServerContext*, const dtx::test::Payload* request,
                    dtx::test::Payload* reply) override {
    reply->set_data(request->data());
    return grpc::Status::OK;
  }
};

}  // namespace

struct BranchTestServer::Impl : public grpc::CallbackGenericService {
  class Reactor;

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

  // Runs `fn` after `delay` on the timer thread.
  void After(std::chrono::milliseconds delay, std::function<void()> fn) {
    dtx::internal::MutexLock lock(&timer_mu);
    timers.push({std::chrono::steady_clock::now() + delay, std::move(fn)});
    timer_cv.Signal();
  }

  // Runs each timer when it is due, and every remaining one at once after
  // Shutdown; returns when none is left after Shutdown.
  void TimerLoop() {
    for (;;) {
      std::function<void()> fn;
      {
        dtx::internal::MutexLock lock(&timer_mu);
        if (!NextDueTimer(&fn)) return;
      }
      fn();
    }
  }

  // Waits for the first timer to be due (or for Shutdown) and takes it;
  // false when stopping with no timer left.
  bool NextDueTimer(std::function<void()>* fn) DTX_REQUIRES(timer_mu) {
    for (;;) {
      if (timers.empty()) {
        if (stopping) return false;
        timer_cv.Wait(&timer_mu, [this] {
          timer_mu.AssertHeld();
          return stopping || !timers.empty();
        });
        continue;
      }
      const auto due = timers.top().when;
      const auto now = std::chrono::steady_clock::now();
      if (stopping || now >= due) break;
      // Wakes early for Shutdown or a timer due sooner.
      timer_cv.WaitFor(&timer_mu, due - now, [this, due] {
        timer_mu.AssertHeld();
        return stopping || timers.top().when < due;
      });
    }
    *fn = timers.top().fn;
    timers.pop();
    return true;
  }

  struct Timer {
    std::chrono::steady_clock::time_point when;
    std::function<void()> fn;
    bool operator<(const Timer& o) const { return when > o.when; }
  };

  std::unique_ptr<grpc::Server> server;
  TypedEcho typed;
  int port = 0;
  mutable dtx::internal::Mutex mu;
  std::map<std::string, TestHandler> handlers DTX_GUARDED_BY(mu);
  TestHandler default_handler DTX_GUARDED_BY(mu);
  std::vector<ReceivedCall> calls DTX_GUARDED_BY(mu);
  dtx::internal::Mutex timer_mu;
  dtx::internal::CondVar timer_cv{&timer_mu};
  std::priority_queue<Timer> timers DTX_GUARDED_BY(timer_mu);
  bool stopping DTX_GUARDED_BY(timer_mu) = false;
  std::thread timer_thread;
  bool shut_down = false;
};

class BranchTestServer::Impl::Reactor final
    : public grpc::ServerGenericBidiReactor {
 public:
  Reactor(Impl* server, grpc::GenericCallbackServerContext* context)
      : server_(server), context_(context) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Complete(TestReply::Status(13, "test server: no request message"));
      return;
    }
    ReceivedCall call;
    call.method = context_->method();
    for (const auto& [k, v] : context_->client_metadata()) {
      call.metadata.emplace(std::string(k.data(), k.size()),
                            std::string(v.data(), v.size()));
    }
    call.payload = Bytes(request_);
    TestHandler handler;
    {
      dtx::internal::MutexLock lock(&server_->mu);
      server_->calls.push_back(call);
      auto it = server_->handlers.find(call.method);
      if (it != server_->handlers.end()) {
        handler = it->second;
      } else {
        handler = server_->default_handler;
      }
    }
    TestReply reply = handler ? handler(call) : TestReply::Ok(call.payload);
    if (reply.hang) {
      hanging_ = true;
      return;  // OnCancel finishes it
    }
    if (reply.delay.count() > 0) {
      server_->After(reply.delay, [this, reply] { Complete(reply); });
      return;
    }
    Complete(reply);
  }

  void OnCancel() override {
    if (hanging_) Complete(TestReply::Status(1, "cancelled"));
  }

  void OnDone() override { delete this; }

 private:
  void Complete(const TestReply& reply) {
    if (finished_.exchange(true)) return;
    if (reply.code == 0) {
      grpc::Slice slice(reply.body);
      response_ = grpc::ByteBuffer(&slice, 1);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    } else {
      Finish(grpc::Status(static_cast<grpc::StatusCode>(reply.code),
                          reply.message));
    }
  }

  Impl* server_;
  grpc::GenericCallbackServerContext* context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::atomic<bool> finished_{false};
  std::atomic<bool> hanging_{false};
};

grpc::ServerGenericBidiReactor* BranchTestServer::Impl::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  return new Reactor(this, context);
}

namespace {

std::string ReadOrAbort(const std::string& path) {
  auto text = ReadTextFile(path);
  if (!text.ok()) std::abort();
  return *text;
}

}  // namespace

std::unique_ptr<BranchTestServer> BranchTestServer::StartTls(
    const std::string& cert_file, const std::string& key_file,
    const std::string& client_ca_file) {
  grpc::SslServerCredentialsOptions ssl(
      client_ca_file.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!client_ca_file.empty()) ssl.pem_root_certs = ReadOrAbort(client_ca_file);
  ssl.pem_key_cert_pairs.push_back(
      {ReadOrAbort(key_file), ReadOrAbort(cert_file)});
  return Start(Kind::kGeneric, grpc::SslServerCredentials(ssl));
}

std::unique_ptr<BranchTestServer> BranchTestServer::Start(Kind kind) {
  return Start(kind, grpc::InsecureServerCredentials());
}

std::unique_ptr<BranchTestServer> BranchTestServer::Start(
    Kind kind, std::shared_ptr<grpc::ServerCredentials> credentials) {
  auto impl = std::make_unique<Impl>();
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", std::move(credentials), &impl->port);
  if (kind == Kind::kGeneric) {
    builder.RegisterCallbackGenericService(impl.get());
  } else {
    builder.RegisterService(&impl->typed);
  }
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) std::abort();
  Impl* raw = impl.get();
  impl->timer_thread = std::thread([raw] { raw->TimerLoop(); });
  return std::unique_ptr<BranchTestServer>(
      new BranchTestServer(std::move(impl)));
}

BranchTestServer::BranchTestServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

BranchTestServer::~BranchTestServer() { Shutdown(); }

int BranchTestServer::port() const { return impl_->port; }

std::string BranchTestServer::address() const {
  return "127.0.0.1:" + std::to_string(impl_->port);
}

void BranchTestServer::SetHandler(const std::string& method,
                                  TestHandler handler) {
  dtx::internal::MutexLock lock(&impl_->mu);
  impl_->handlers[method] = std::move(handler);
}

void BranchTestServer::SetDefaultHandler(TestHandler handler) {
  dtx::internal::MutexLock lock(&impl_->mu);
  impl_->default_handler = std::move(handler);
}

std::vector<ReceivedCall> BranchTestServer::Calls() const {
  dtx::internal::MutexLock lock(&impl_->mu);
  return impl_->calls;
}

std::size_t BranchTestServer::CallCount(const std::string& method) const {
  dtx::internal::MutexLock lock(&impl_->mu);
  std::size_t n = 0;
  for (const auto& c : impl_->calls) n += c.method == method ? 1 : 0;
  return n;
}

void BranchTestServer::Shutdown() {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  {
    // Delayed answers go out now, so that Shutdown does not wait for them.
    dtx::internal::MutexLock lock(&impl_->timer_mu);
    impl_->stopping = true;
    impl_->timer_cv.Signal();
  }
  impl_->timer_thread.join();
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          std::chrono::seconds(1));
  impl_->server->Wait();
}

}  // namespace dtx::testing
