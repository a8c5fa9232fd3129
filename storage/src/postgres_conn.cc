// libpq wrappers and the mapping of PostgreSQL errors (SQLSTATE classes,
// https://www.postgresql.org/docs/current/errcodes-appendix.html) to
// dtx::Status.

#include "postgres_conn.h"

#include <cstring>
#include <poll.h>
#include <utility>

namespace dtx::internal {
namespace {

// Type OIDs of pg_type (stable across PostgreSQL versions).
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaOid = 17;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The status of an error whose SQLSTATE is `state` (five characters).
StatusCode CodeOf(std::string_view state) {
  if (state == "23505") return StatusCode::kAlreadyExists;
  if (state == "53100" || state == "53200" || state == "53400")
    return StatusCode::kResourceExhausted;  // disk full, out of memory
  if (state == "55P03" || state == "57014")
    return StatusCode::kUnavailable;  // lock timeout, statement timeout
  if (state == "XX001" || state == "XX002")
    return StatusCode::kDataLoss;  // data or index corrupted
  if (state == "42501") return StatusCode::kPermissionDenied;
  const std::string_view cls = state.substr(0, 2);
  if (cls == "22" || cls == "23")
    return StatusCode::kInvalidArgument;  // a value the server refuses
  if (cls == "54") return StatusCode::kResourceExhausted;  // program limit
  if (cls == "08" || cls == "40" || cls == "53" || cls == "57" || cls == "58")
    return StatusCode::kUnavailable;  // connection, conflict, shutdown, i/o
  if (cls == "28") return StatusCode::kPermissionDenied;
  if (cls == "3D") return StatusCode::kNotFound;  // no such database
  return StatusCode::kInternal;
}

}  // namespace

bool IsPgStorageFailure(const Status& status) {
  switch (status.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
    case StatusCode::kPermissionDenied:
      return true;
    default:
      return false;
  }
}

PgParams::PgParams(const PgParams& other)
    : types_(other.types_),
      values_(other.values_),
      lengths_(other.lengths_),
      formats_(other.formats_),
      ints_(other.ints_),
      int_values_(other.int_values_) {
  for (std::size_t k = 0; k < int_values_.size(); ++k)
    values_[int_values_[k]] = ints_[k].data();
}

PgParams& PgParams::operator=(const PgParams& other) {
  if (this != &other) *this = PgParams(other);
  return *this;
}

void PgParams::Add(Oid type, const char* data, int length) {
  types_.push_back(type);
  values_.push_back(data);
  lengths_.push_back(length);
  formats_.push_back(1);
}

PgParams& PgParams::Int(int64_t v) {
  std::array<char, 8>& b = ints_.emplace_back();
  const auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i)
    b[static_cast<std::size_t>(i)] = static_cast<char>(u >> (56 - 8 * i));
  int_values_.push_back(values_.size());
  Add(kInt8Oid, b.data(), 8);
  return *this;
}

PgParams& PgParams::Text(std::string_view v) {
  // A non-null pointer even for an empty value (null means SQL NULL).
  Add(kTextOid, v.empty() ? "" : v.data(), static_cast<int>(v.size()));
  return *this;
}

PgParams& PgParams::Bytes(std::string_view v) {
  Add(kByteaOid, v.empty() ? "" : v.data(), static_cast<int>(v.size()));
  return *this;
}

PgParams& PgParams::NullInt() {
  Add(kInt8Oid, nullptr, 0);
  return *this;
}

PgParams& PgParams::NullText() {
  Add(kTextOid, nullptr, 0);
  return *this;
}

int64_t PgResult::Int(int row, int col) const {
  const auto* p =
      reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, col));
  const int n = PQgetlength(r_.get(), row, col);
  uint64_t u = 0;
  for (int i = 0; i < n; ++i) u = (u << 8) | p[i];
  if (n == 4) return static_cast<int32_t>(static_cast<uint32_t>(u));
  return static_cast<int64_t>(u);
}

int64_t PgResult::affected() const {
  const char* n = r_ ? PQcmdTuples(r_.get()) : "";
  return *n == '\0' ? 0 : std::strtoll(n, nullptr, 10);
}

Result<std::unique_ptr<PgConn>> PgConn::Connect(const Options& options) {
  const std::string timeout = std::to_string(
      std::max<int64_t>(1, (options.connect_timeout.count() + 999) / 1000));
  const char* keywords[] = {"dbname", "connect_timeout",
                            "fallback_application_name", nullptr};
  const char* values[] = {options.conninfo.c_str(), timeout.c_str(),
                          options.application_name.c_str(), nullptr};
  PGconn* raw = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (raw == nullptr)
    return ResourceExhaustedError(options.subsystem +
                                  ": postgres: out of memory");
  if (PQstatus(raw) != CONNECTION_OK) {
    std::string message = Trim(PQerrorMessage(raw));
    PQfinish(raw);
    StatusCode code = StatusCode::kUnavailable;
    // A role that does not exist or may not log in is a refused login too,
    // not a missing database.
    const bool no_role =
        message.find("role \"") != std::string::npos &&
        (message.find("does not exist") != std::string::npos ||
         message.find("is not permitted to log in") != std::string::npos);
    if (no_role || message.find("authentication failed") != std::string::npos ||
        message.find("no pg_hba.conf entry") != std::string::npos ||
        message.find("permission denied") != std::string::npos) {
      code = StatusCode::kPermissionDenied;
    } else if (message.find("does not exist") != std::string::npos) {
      code = StatusCode::kNotFound;
    } else if (message.find("invalid connection option") != std::string::npos ||
               message.find("invalid URI") != std::string::npos ||
               message.find("missing \"=\"") != std::string::npos) {
      code = StatusCode::kInvalidArgument;
    }
    return Status(code,
                  options.subsystem + ": postgres: cannot connect: " + message);
  }
  auto or_empty = [](const char* v) { return v != nullptr ? v : ""; };
  std::string target = std::string(or_empty(PQhost(raw))) + ":" +
                       or_empty(PQport(raw)) + "/" + or_empty(PQdb(raw));
  std::unique_ptr<PgConn> conn(
      new PgConn(raw, std::move(target), options.subsystem));
  if (options.schema.empty()) return conn;
  // Every statement names its tables unqualified: the schema is the session's
  // search_path. pg_catalog stays first, as it always is implicitly.
  PgParams p;
  p.Text(options.schema);
  DTX_ASSIGN_OR_RETURN(PgResult set,
                       conn->Exec("SELECT pg_catalog.set_config('search_path', "
                                  "pg_catalog.quote_ident($1), false)",
                                  p, "set search_path"));
  (void)set;
  return conn;
}

PgConn::~PgConn() { PQfinish(conn_); }

Status PgConn::ErrorOf(const PGresult* r, std::string_view context) {
  const std::string prefix =
      subsystem_ + ": postgres " + target_ + ": " + std::string(context) + ": ";
  last_sqlstate_.clear();
  if (r == nullptr || PQstatus(conn_) != CONNECTION_OK) {
    return UnavailableError(prefix + "connection lost (" +
                            Trim(PQerrorMessage(conn_)) +
                            "); it is reopened on the next use");
  }
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const std::string message = Trim(PQresultErrorMessage(r));
  if (state == nullptr || std::strlen(state) != 5)
    return UnavailableError(prefix + message);
  last_sqlstate_ = state;
  return Status(CodeOf(state), prefix + message + " (SQLSTATE " + state + ")");
}

Result<std::string> PgConn::Prepared(const std::string& sql,
                                     const PgParams& params,
                                     std::string_view context) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return it->second;
  if (prepared_.size() >= kMaxPrepared) return std::string();
  std::string name = "s" + std::to_string(next_name_++);
  PGresult* r = PQprepare(conn_, name.c_str(), sql.c_str(), params.size(),
                          params.types());
  const bool ok = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) {
    Status s = ErrorOf(r, context);
    PQclear(r);
    return s;
  }
  PQclear(r);
  prepared_.emplace(sql, name);
  return name;
}

Result<PgResult> PgConn::Exec(std::string_view sql, const PgParams& params,
                              std::string_view context) {
  const std::string text(sql);
  DTX_ASSIGN_OR_RETURN(std::string name, Prepared(text, params, context));
  PGresult* r =
      name.empty()
          ? PQexecParams(conn_, text.c_str(), params.size(), params.types(),
                         params.values(), params.lengths(), params.formats(),
                         /*resultFormat=*/1)
          : PQexecPrepared(conn_, name.c_str(), params.size(), params.values(),
                           params.lengths(), params.formats(),
                           /*resultFormat=*/1);
  const ExecStatusType st =
      r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return PgResult(r);
  Status s = ErrorOf(r, context);
  PQclear(r);
  return s;
}

Result<PgResult> PgConn::ExecText(
    std::string_view sql, const std::vector<std::optional<std::string>>& params,
    std::string_view context) {
  const std::string text(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* r =
      PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()),
                   /*paramTypes=*/nullptr, values.data(),
                   /*paramLengths=*/nullptr, /*paramFormats=*/nullptr,
                   /*resultFormat=*/0);
  const ExecStatusType st =
      r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return PgResult(r);
  Status s = ErrorOf(r, context);
  PQclear(r);
  return s;
}

Result<PgResult> PgConn::ExecSimple(const std::string& sql,
                                    std::string_view context) {
  PGresult* r = PQexec(conn_, sql.c_str());
  const ExecStatusType st =
      r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return PgResult(r);
  Status s = ErrorOf(r, context);
  PQclear(r);
  return s;
}

bool PgConn::StillUp() {
  if (!ok()) return false;
  pollfd p{};
  p.fd = PQsocket(conn_);
  p.events = POLLIN;
  if (p.fd < 0) return false;
  if (::poll(&p, 1, 0) <= 0) return true;  // nothing arrived: as it was
  // Something arrived while idle: a notice, or the server's goodbye.
  if (PQconsumeInput(conn_) != 1) broken_ = true;
  return ok();
}

Status PgConn::EnterPipeline() {
  if (PQenterPipelineMode(conn_) == 1) return Status::Ok();
  return ErrorOf(nullptr, "enter pipeline mode");
}

Status PgConn::ExitPipeline() {
  if (!broken_ && PQexitPipelineMode(conn_) == 1) return Status::Ok();
  // Results still pending: the connection is in no state to be reused.
  broken_ = true;
  return UnavailableError(
      subsystem_ + ": postgres " + target_ + ": cannot leave pipeline mode (" +
      Trim(PQerrorMessage(conn_)) + "); it is reopened on the next use");
}

Status PgConn::Send(std::string_view sql, const PgParams& params,
                    std::string_view context) {
  Sent sent;
  sent.context = std::string(context);
  const std::string text(sql);
  std::string name;
  if (auto it = prepared_.find(text); it != prepared_.end()) {
    name = it->second;
  } else if (auto p = preparing_.find(text); p != preparing_.end()) {
    name = p->second;
  } else if (prepared_.size() + preparing_.size() < kMaxPrepared) {
    name = "s" + std::to_string(next_name_++);
    if (PQsendPrepare(conn_, name.c_str(), text.c_str(), params.size(),
                      params.types()) != 1) {
      broken_ = true;  // what reached libpq of this pipeline is unknown
      return ErrorOf(nullptr, context);
    }
    preparing_.emplace(text, name);
    sent.prepare_sql = text;
    sent.prepare_name = name;
  }
  const int queued =
      name.empty() ? PQsendQueryParams(conn_, text.c_str(), params.size(),
                                       params.types(), params.values(),
                                       params.lengths(), params.formats(),
                                       /*resultFormat=*/1)
                   : PQsendQueryPrepared(conn_, name.c_str(), params.size(),
                                         params.values(), params.lengths(),
                                         params.formats(), /*resultFormat=*/1);
  if (queued != 1) {
    broken_ = true;
    return ErrorOf(nullptr, context);
  }
  sent_.push_back(std::move(sent));
  return Status::Ok();
}

Status PgConn::Sync(std::vector<PgResult>& results) {
  results.clear();
  const std::vector<Sent> sent = std::move(sent_);
  sent_.clear();
  preparing_.clear();
  if (broken_) return ErrorOf(nullptr, "pipeline sync");
  if (PQpipelineSync(conn_) != 1) {
    broken_ = true;
    return ErrorOf(nullptr, "pipeline sync");
  }
  Status first = Status::Ok();
  // The result of the next queued command, and the null that ends it.
  // Null when the connection is lost (`first` then says so).
  auto next = [&](std::string_view context) -> PGresult* {
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) {
      broken_ = true;
      if (first.ok()) first = ErrorOf(nullptr, context);
      return nullptr;
    }
    if (PGresult* extra = PQgetResult(conn_); extra != nullptr) {
      PQclear(extra);  // one result per command is all dtx sends
      PQclear(r);
      broken_ = true;
      if (first.ok())
        first = UnavailableError(subsystem_ + ": postgres " + target_ + ": " +
                                 std::string(context) +
                                 ": more results than statements");
      return nullptr;
    }
    return r;
  };
  for (const Sent& s : sent) {
    if (!s.prepare_name.empty()) {
      PGresult* r = next(s.context);
      if (r == nullptr) return first;
      const ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_COMMAND_OK) {
        prepared_.emplace(s.prepare_sql, s.prepare_name);
      } else if (first.ok()) {
        first = ErrorOf(r, s.context);
      }
      PQclear(r);
    }
    PGresult* r = next(s.context);
    if (r == nullptr) return first;
    const ExecStatusType st = PQresultStatus(r);
    if (first.ok() && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
      results.emplace_back(r);
      continue;
    }
    // The first failure names the cause; the server skipped the rest.
    if (first.ok() && st != PGRES_PIPELINE_ABORTED) {
      first = ErrorOf(r, s.context);
    } else if (first.ok()) {
      first = UnavailableError(subsystem_ + ": postgres " + target_ + ": " +
                               s.context + ": skipped in the pipeline");
    }
    PQclear(r);
  }
  // The sync's own result ends the round.
  PGresult* r = PQgetResult(conn_);
  const bool synced = r != nullptr && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
  if (r != nullptr) PQclear(r);
  if (!synced) {
    broken_ = true;
    if (first.ok()) first = ErrorOf(nullptr, "pipeline sync");
  }
  return first;
}

}  // namespace dtx::internal
