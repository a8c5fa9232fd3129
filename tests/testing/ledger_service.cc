#include "ledger_service.h"

#include "dtx/barrier.h"
#include "dtx/internal/mutex.h"
#include "dtx/storage/sqlite_barrier.h"
#include "dtx/transaction.h"
#include "dtx/transport/trans_info.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>

#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace dtx::testing {
namespace {

using std::chrono::system_clock;

constexpr int kWorkers = 16;
constexpr const char* kService = "/dtx.test.Ledger/";

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

Result<DbPtr> OpenDb(const std::string& path) {
  sqlite3* raw = nullptr;
  if (sqlite3_open(path.c_str(), &raw) != SQLITE_OK) {
    const std::string err = raw != nullptr ? sqlite3_errmsg(raw) : "no memory";
    sqlite3_close(raw);
    return UnavailableError("ledger: open " + path + ": " + err);
  }
  DbPtr db(raw);
  sqlite3_busy_timeout(raw, 10000);
  sqlite3_exec(raw, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  sqlite3_exec(raw, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
  return db;
}

Status Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string text = err != nullptr ? err : "?";
    sqlite3_free(err);
    return UnavailableError("ledger: " + text + " (" + sql + ")");
  }
  return Status::Ok();
}

// Balance change and effect row of one branch, inside the barrier's local
// transaction.
Status Record(sqlite3* tx, const TransInfo& info, int64_t account,
              int64_t amount, int64_t balance_change) {
  if (balance_change != 0) {
    DTX_RETURN_IF_ERROR(Exec(tx, "UPDATE account SET balance = balance + " +
                                     std::to_string(balance_change) +
                                     " WHERE id = " + std::to_string(account)));
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(tx,
                         "INSERT INTO effect (gid, branch_id, op, account, "
                         "amount) VALUES (?1, ?2, ?3, ?4, ?5)",
                         -1, &stmt, nullptr) != SQLITE_OK) {
    return InternalError(std::string("ledger: ") + sqlite3_errmsg(tx));
  }
  const std::string op(ToString(info.op));
  sqlite3_bind_text(stmt, 1, info.gid.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, info.branch_id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 3, op.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt, 4, account);
  sqlite3_bind_int64(stmt, 5, amount);
  const int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) {
    return UnavailableError(std::string("ledger: ") + sqlite3_errmsg(tx));
  }
  return Status::Ok();
}

struct Payload {
  int64_t account = 0;
  int64_t amount = 0;
  std::string flags;
};

Payload Parse(const std::string& text) {
  Payload p;
  std::istringstream in(text);
  in >> p.account >> p.amount >> p.flags;
  return p;
}

std::string Bytes(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!b.Dump(&slices).ok()) return out;
  for (const auto& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// The inode of the socket 127.0.0.1:<from_port> -> 127.0.0.1:<to_port> in
// `table` (/proc/net/tcp, or tcp6 with the IPv4-mapped form, which gRPC's
// clients use), or 0.
unsigned long SocketInode(const char* table, const char* host, int from_port,
                          int to_port) {
  char local[64];
  char remote[64];
  std::snprintf(local, sizeof(local), "%s:%04X", host, from_port);
  std::snprintf(remote, sizeof(remote), "%s:%04X", host, to_port);
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, loc, rem, st, queues, tr, retr, uid, timeout;
    unsigned long inode = 0;
    fields >> sl >> loc >> rem >> st >> queues >> tr >> retr >> uid >>
        timeout >> inode;
    if (loc == local && rem == remote) return inode;
  }
  return 0;
}

unsigned long SocketInode(int from_port, int to_port) {
  const unsigned long v4 =
      SocketInode("/proc/net/tcp", "0100007F", from_port, to_port);
  if (v4 != 0) return v4;
  return SocketInode("/proc/net/tcp6", "0000000000000000FFFF00000100007F",
                     from_port, to_port);
}

bool HoldsSocket(pid_t pid, unsigned long inode) {
  const std::string want = "socket:[" + std::to_string(inode) + "]";
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd/";
  // Descriptor numbers of a dtx-server stay small; a gap of 64 unused ones
  // ends the scan.
  int misses = 0;
  char target[64];
  for (int fd = 0; misses < 64; ++fd) {
    const std::string link = dir + std::to_string(fd);
    const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    if (n < 0) {
      ++misses;
      continue;
    }
    misses = 0;
    target[n] = '\0';
    if (want == target) return true;
  }
  return false;
}

}  // namespace

struct LedgerService::Impl : public grpc::CallbackGenericService {
  class Reactor;

  struct Job {
    Reactor* reactor = nullptr;
    std::string method;
    std::string payload;
    std::string peer;
    std::string caller;  // when identify_callers
    system_clock::time_point start;
  };

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

  bool identify_callers = true;  // set at Start

  void Enqueue(Job job) {
    internal::MutexLock lock(&mu);
    jobs.push_back(std::move(job));
    cv.Signal();
  }

  void WorkerLoop();
  grpc::Status Serve(const Job& job, sqlite3* db, LedgerCall* call);
  std::string CallerOf(const std::string& peer);

  std::string path;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::vector<std::thread> workers;

  mutable internal::Mutex mu;
  internal::CondVar cv{&mu};
  std::deque<Job> jobs DTX_GUARDED_BY(mu);
  bool stopping DTX_GUARDED_BY(mu) = false;
  std::vector<LedgerCall> calls DTX_GUARDED_BY(mu);
  std::map<std::string, int> attempts DTX_GUARDED_BY(mu);
  std::map<pid_t, std::string> names DTX_GUARDED_BY(mu);
  std::map<unsigned long, std::string> inode_names DTX_GUARDED_BY(mu);
  // The same by the connection's source port, for calls that arrive after
  // their socket closed.
  std::map<int, std::string> port_names DTX_GUARDED_BY(mu);
  std::function<void(const LedgerCall&)> before_answer DTX_GUARDED_BY(mu);
};

class LedgerService::Impl::Reactor final
    : public grpc::ServerGenericBidiReactor {
 public:
  Reactor(Impl* service, grpc::GenericCallbackServerContext* context)
      : service_(service), context_(context) {
    StartRead(&request_);
  }

  const grpc::GenericCallbackServerContext& context() const {
    return *context_;
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, "ledger: no request"));
      return;
    }
    Job job;
    job.reactor = this;
    job.start = system_clock::now();
    job.method = context_->method();
    job.payload = Bytes(request_);
    job.peer = context_->peer();
    // Now, while the caller's socket is surely open (a caller killed right
    // after sending is gone from /proc by the time a worker takes the job).
    if (service_->identify_callers) job.caller = service_->CallerOf(job.peer);
    service_->Enqueue(std::move(job));
  }

  void Answer(const grpc::Status& status) {
    if (status.ok()) {
      grpc::Slice slice(std::string{});
      response_ = grpc::ByteBuffer(&slice, 1);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
  }

  void OnDone() override { delete this; }

 private:
  Impl* service_;
  grpc::GenericCallbackServerContext* context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

grpc::ServerGenericBidiReactor* LedgerService::Impl::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  return new Reactor(this, context);
}

std::string LedgerService::Impl::CallerOf(const std::string& peer) {
  // "ipv4:127.0.0.1:<port>"
  const std::size_t colon = peer.rfind(':');
  if (peer.rfind("ipv4:127.0.0.1:", 0) != 0 || colon == std::string::npos) {
    return "peer:" + peer;
  }
  const int from_port = std::atoi(peer.c_str() + colon + 1);
  const unsigned long inode = SocketInode(from_port, port);
  if (inode == 0) {
    // Closed already (its process was killed): the connection's name, when
    // an earlier call on it was identified.
    internal::MutexLock lock(&mu);
    auto it = port_names.find(from_port);
    return it != port_names.end() ? it->second : "peer:" + peer;
  }
  std::map<pid_t, std::string> candidates;
  {
    internal::MutexLock lock(&mu);
    auto it = inode_names.find(inode);
    if (it != inode_names.end()) return it->second;
    candidates = names;
  }
  for (const auto& [pid, name] : candidates) {
    if (HoldsSocket(pid, inode)) {
      internal::MutexLock lock(&mu);
      inode_names[inode] = name;
      port_names[from_port] = name;
      return name;
    }
  }
  return "peer:" + peer;
}

grpc::Status LedgerService::Impl::Serve(const Job& job, sqlite3* db,
                                        LedgerCall* call) {
  auto info = TransInfoFromServerContext(job.reactor->context());
  if (!info.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        info.status().message());
  }
  call->gid = info->gid;
  call->branch_id = info->branch_id;
  call->op = std::string(ToString(info->op));
  const Payload p = Parse(job.payload);

  const std::string key = info->gid + "/" + info->branch_id + "/" + call->op;
  const std::size_t hash = std::hash<std::string>{}(key);
  const bool slow = p.flags.find('S') != std::string::npos;
  std::this_thread::sleep_for(
      std::chrono::milliseconds(slow ? 600 : 10 + hash % 141));

  int attempt = 0;
  {
    internal::MutexLock lock(&mu);
    attempt = ++attempts[key];
  }
  if (p.flags.find('T') != std::string::npos && attempt == 1 &&
      info->op != BranchOp::kTry) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "ledger: a transient failure (first call)");
  }

  auto barrier = BranchBarrier::FromTransInfo(*info);
  if (!barrier.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        barrier.status().message());
  }
  const bool fail = p.flags.find('F') != std::string::npos;
  Status s;
  if (call->method == "QueryPrepared") {
    s = SqliteBarrier::QueryPrepared(*barrier, db);
  } else {
    int64_t change = 0;
    bool forward_fails = false;
    if (call->method == "Move") {
      change = p.amount;
      forward_fails = fail;
    } else if (call->method == "MoveRevert") {
      change = -p.amount;
    } else if (call->method == "Try") {
      forward_fails = fail;
    } else if (call->method == "Confirm") {
      change = p.amount;
    } else if (call->method != "Cancel") {
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                          "ledger: no method " + call->method);
    }
    const TransInfo& ti = *info;
    s = SqliteBarrier::Call(*barrier, db, [&](sqlite3* tx) -> Status {
      if (forward_fails) return AbortedError("ledger: refused (flag F)");
      return Record(tx, ti, p.account, p.amount, change);
    });
  }
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

void LedgerService::Impl::WorkerLoop() {
  auto opened = OpenDb(path);
  DbPtr db = opened.ok() ? std::move(opened).value() : nullptr;
  for (;;) {
    Job job;
    {
      internal::MutexLock lock(&mu);
      cv.Wait(&mu, [this] {
        mu.AssertHeld();
        return stopping || !jobs.empty();
      });
      if (jobs.empty()) return;
      job = std::move(jobs.front());
      jobs.pop_front();
    }
    LedgerCall call;
    call.start = job.start;
    call.caller = job.caller;
    call.method = job.method.rfind(kService, 0) == 0
                      ? job.method.substr(std::string(kService).size())
                      : job.method;
    grpc::Status status =
        db == nullptr
            ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "ledger: no db")
            : Serve(job, db.get(), &call);
    call.code = static_cast<int>(status.error_code());
    call.end = system_clock::now();
    std::function<void(const LedgerCall&)> hook;
    {
      internal::MutexLock lock(&mu);
      calls.push_back(call);
      hook = before_answer;
    }
    if (hook) hook(call);  // the effect (if any) is committed; not answered
    job.reactor->Answer(status);
  }
}

Result<std::unique_ptr<LedgerService>> LedgerService::Start(
    const std::string& path, int accounts, int64_t initial_balance, int port,
    bool identify_callers) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->identify_callers = identify_callers;
  {
    DTX_ASSIGN_OR_RETURN(DbPtr db, OpenDb(path));
    DTX_RETURN_IF_ERROR(Exec(db.get(),
                             "CREATE TABLE IF NOT EXISTS account (id INTEGER "
                             "PRIMARY KEY, balance INTEGER NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS effect (gid TEXT, "
                             "branch_id TEXT, "
                             "op TEXT, account INTEGER, amount INTEGER)"));
    DTX_RETURN_IF_ERROR(Exec(db.get(), "BEGIN"));
    for (int a = 1; a <= accounts; ++a) {
      DTX_RETURN_IF_ERROR(
          Exec(db.get(), "INSERT OR IGNORE INTO account VALUES (" +
                             std::to_string(a) + ", " +
                             std::to_string(initial_balance) + ")"));
    }
    DTX_RETURN_IF_ERROR(Exec(db.get(), "COMMIT"));
    DTX_RETURN_IF_ERROR(SqliteBarrier::CreateTable(db.get()));
  }
  {
    internal::MutexLock lock(&impl->mu);
    impl->names[getpid()] = "self";
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                           grpc::InsecureServerCredentials(), &impl->port);
  builder.RegisterCallbackGenericService(impl.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return UnavailableError("ledger: cannot listen on 127.0.0.1");
  }
  Impl* raw = impl.get();
  for (int i = 0; i < kWorkers; ++i) {
    impl->workers.emplace_back([raw] { raw->WorkerLoop(); });
  }
  return std::unique_ptr<LedgerService>(new LedgerService(std::move(impl)));
}

LedgerService::LedgerService(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

LedgerService::~LedgerService() {
  // Calls in flight are answered by the workers (Shutdown waits for them, up
  // to its deadline, and refuses new ones); then the workers stop.
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          std::chrono::seconds(2));
  {
    internal::MutexLock lock(&impl_->mu);
    impl_->stopping = true;
    impl_->cv.SignalAll();
  }
  for (std::thread& t : impl_->workers) t.join();
}

std::string LedgerService::Url(const std::string& method) const {
  return "127.0.0.1:" + std::to_string(impl_->port) + kService + method;
}

void LedgerService::SetBeforeAnswer(
    std::function<void(const LedgerCall&)> hook) {
  internal::MutexLock lock(&impl_->mu);
  impl_->before_answer = std::move(hook);
}

void LedgerService::NameCaller(pid_t pid, const std::string& name) {
  internal::MutexLock lock(&impl_->mu);
  impl_->names[pid] = name;
}

Status LedgerService::SubmitMsg(Msg& msg, int64_t account, int64_t amount) {
  DTX_ASSIGN_OR_RETURN(DbPtr db, OpenDb(impl_->path));
  TransInfo info;
  info.gid = msg.gid();
  info.trans_type = TransType::kMsg;
  info.branch_id = "00";
  info.op = BranchOp::kMsg;
  return DoAndSubmitWithSqlite(
      msg, Url("QueryPrepared"), db.get(),
      [&](sqlite3* tx) { return Record(tx, info, account, amount, amount); });
}

std::vector<LedgerCall> LedgerService::Calls() const {
  internal::MutexLock lock(&impl_->mu);
  return impl_->calls;
}

Result<std::vector<LedgerEffect>> LedgerService::Effects() const {
  DTX_ASSIGN_OR_RETURN(DbPtr db, OpenDb(impl_->path));
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(
          db.get(), "SELECT gid, branch_id, op, account, amount FROM effect",
          -1, &stmt, nullptr) != SQLITE_OK) {
    return InternalError(std::string("ledger: ") + sqlite3_errmsg(db.get()));
  }
  std::vector<LedgerEffect> out;
  auto text = [stmt](int i) {
    const unsigned char* t = sqlite3_column_text(stmt, i);
    return t == nullptr ? std::string() : reinterpret_cast<const char*>(t);
  };
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    out.push_back({text(0), text(1), text(2), sqlite3_column_int64(stmt, 3),
                   sqlite3_column_int64(stmt, 4)});
  }
  sqlite3_finalize(stmt);
  return out;
}

Result<int64_t> LedgerService::Total() const {
  DTX_ASSIGN_OR_RETURN(DbPtr db, OpenDb(impl_->path));
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db.get(), "SELECT SUM(balance) FROM account", -1,
                         &stmt, nullptr) != SQLITE_OK) {
    return InternalError(std::string("ledger: ") + sqlite3_errmsg(db.get()));
  }
  int64_t total = 0;
  if (sqlite3_step(stmt) == SQLITE_ROW) total = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return total;
}

}  // namespace dtx::testing
