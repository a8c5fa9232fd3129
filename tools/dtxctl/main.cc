// dtxctl: the operator's command line for dtx. Lists, shows, retries and
// force-stops transactions, shows counts, and follows changes (tail), either
// through a dtx-server's admin gRPC service (--server) or on a journal file
// (--journal). docs/operations.md, "dtxctl", is its manual. import-dtm moves
// a dtm store's transactions into a dtx journal (docs/migrating-from-dtm.md).

#include "dtx/limits.h"
#include "dtx/version.h"

#include "backend.h"
#include "dtm_import.h"
#include "import_journal.h"
#include "output.h"

#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <signal.h>
#include <string>
#include <time.h>
#include <utility>
#include <vector>

namespace dtx::dtxctl {
namespace {

using nlohmann::json;

enum Exit : int {
  kExitOk = 0,
  kExitError = 1,
  kExitUsage = 2,
  kExitNotFound = 3,
  kExitConflict = 4,
  kExitUnavailable = 5,
};

constexpr const char* kFooter =
    "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 conflict (finished, "
    "changed meanwhile, refused), 5 unavailable (server down, journal "
    "missing, locked or corrupt).\n"
    "With a coordinator running, prefer --server: a coordinator holding a "
    "transaction in memory may go on calling its branches after a --journal "
    "--write change, until it next reads it.";

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kNotFound:
      return kExitNotFound;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
    case StatusCode::kAlreadyExists:
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated:
      return kExitConflict;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kDataLoss:
      return kExitUnavailable;
    case StatusCode::kInvalidArgument:
      return kExitUsage;
    default:
      return kExitError;
  }
}

int Fail(const Status& s, int code) {
  std::cerr << "dtxctl: " << s.message() << '\n';
  return code;
}
int Fail(const Status& s) { return Fail(s, ExitCodeFor(s)); }

struct Flags {
  std::string server;
  std::string journal;
  std::string token;
  bool write = false;
  bool json = false;
  int timeout_seconds = 10;
  // --server over TLS.
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
};

std::string NextRetryText(const GlobalTrans& t, TimePoint now) {
  auto next = NextRetry(t);
  if (!next) return "-";
  if (*next <= now) return "due";
  return "in " + Age(*next - now);
}

// list
struct ListFlags {
  std::string status;
  std::string mode;
  std::string gid_prefix;
  bool unfinished = false;
  std::size_t limit = kDefaultListLimit;
  int64_t position = 0;
};

Result<ListQuery> MakeQuery(const ListFlags& f) {
  ListQuery q;
  if (!f.status.empty()) {
    DTX_ASSIGN_OR_RETURN(TransStatus s, ParseTransStatus(f.status));
    q.status = s;
  }
  if (!f.mode.empty()) {
    DTX_ASSIGN_OR_RETURN(TransType t, ParseTransType(f.mode));
    q.trans_type = t;
  }
  q.gid_prefix = f.gid_prefix;
  q.unfinished_only = f.unfinished;
  q.limit = f.limit;
  q.cursor = f.position;
  return q;
}

int RunList(Backend& backend, const Flags& flags, const ListQuery& q) {
  auto page = backend.List(q);
  if (!page.ok()) return Fail(page.status());
  const TimePoint now = std::chrono::system_clock::now();
  if (flags.json) {
    json list = json::array();
    for (const auto& t : page->transactions) list.push_back(TransJson(t));
    std::cout << json{{"transactions", std::move(list)},
                      {"next_position",
                       page->next_cursor == 0
                           ? std::string()
                           : std::to_string(page->next_cursor)}}
                     .dump()
              << '\n';
    return kExitOk;
  }
  Table table({"GID", "MODE", "STATUS", "CREATED", "AGE", "NEXT RETRY"});
  for (const auto& t : page->transactions) {
    table.Add({t.gid, std::string(ToString(t.trans_type)),
               std::string(ToString(t.status)), LocalTime(t.create_time),
               Age(now - t.create_time), NextRetryText(t, now)});
  }
  table.Print(std::cout);
  if (page->next_cursor != 0) {
    std::cout << "more: --position " << page->next_cursor << '\n';
  }
  return kExitOk;
}

// show
int RunShow(Backend& backend, const Flags& flags, const std::string& gid) {
  auto found = backend.Find(gid);
  if (!found.ok()) return Fail(found.status());
  const GlobalTrans& t = found->trans;
  if (flags.json) {
    json branches = json::array();
    for (const auto& b : found->branches) branches.push_back(BranchJson(b));
    std::cout << json{{"transaction", TransJson(t)},
                      {"branches", std::move(branches)}}
                     .dump()
              << '\n';
    return kExitOk;
  }
  const TimePoint now = std::chrono::system_clock::now();
  Table head({"gid", t.gid});
  head.Add({"mode", std::string(ToString(t.trans_type))});
  head.Add({"status", std::string(ToString(t.status))});
  head.Add({"created", LocalTime(t.create_time) + " (" +
                           Age(now - t.create_time) + " ago)"});
  head.Add({"updated", LocalTime(t.update_time)});
  if (t.finish_time) head.Add({"finished", LocalTime(t.finish_time)});
  if (t.rollback_time) head.Add({"rolled back", LocalTime(t.rollback_time)});
  if (auto next = NextRetry(t)) {
    head.Add(
        {"next retry", LocalTime(*next) + " (" + NextRetryText(t, now) + ")"});
  } else {
    head.Add({"next retry", "- (finished)"});
  }
  if (!t.rollback_reason.empty())
    head.Add({"rollback reason", t.rollback_reason});
  if (!t.owner.empty()) head.Add({"owner", t.owner});
  if (t.retry_count != 0) head.Add({"retries", std::to_string(t.retry_count)});
  head.Print(std::cout);
  std::cout << '\n';
  Table branches(
      {"BRANCH", "OP", "URL", "STATUS", "ATTEMPTS", "LAST TRY", "LAST ERROR"});
  for (const auto& b : found->branches) {
    branches.Add({b.branch_id, std::string(ToString(b.op)), b.url,
                  std::string(ToString(b.status)), std::to_string(b.attempts),
                  LocalTime(b.last_try_time),
                  b.last_error.empty() ? "-" : b.last_error});
  }
  branches.Print(std::cout);
  return kExitOk;
}

// retry, force-stop
int RunChange(Backend& backend, const Flags& flags, const std::string& gid,
              bool force_stop) {
  Status s = force_stop ? backend.ForceStop(gid) : backend.RetryNow(gid);
  if (!s.ok()) return Fail(s);
  const char* what = force_stop ? "force-stopped" : "due now";
  if (flags.json) {
    std::cout << json{{"gid", gid}, {"result", what}}.dump() << '\n';
  } else {
    std::cout << gid << ": " << what << '\n';
  }
  return kExitOk;
}

// stats
int RunStats(Backend& backend, const Flags& flags) {
  auto stats = backend.Stats();
  if (!stats.ok()) return Fail(stats.status());
  const TimePoint now = std::chrono::system_clock::now();
  if (flags.json) {
    std::cout << StatsJson(*stats, now).dump() << '\n';
    return kExitOk;
  }
  Table table({"STATUS", "COUNT"});
  for (TransStatus s :
       {TransStatus::kPrepared, TransStatus::kSubmitted, TransStatus::kAborting,
        TransStatus::kSucceed, TransStatus::kFailed}) {
    table.Add({std::string(ToString(s)), std::to_string(stats->counts[s])});
  }
  table.Print(std::cout);
  std::cout << '\n';
  Table summary({"unfinished", std::to_string(stats->unfinished.unfinished)});
  summary.Add({"due", std::to_string(stats->unfinished.due)});
  const auto& oldest = stats->unfinished.oldest_create_time;
  summary.Add({"oldest unfinished",
               oldest ? LocalTime(*oldest) + " (" + Age(now - *oldest) + " ago)"
                      : "-"});
  summary.Print(std::cout);
  return kExitOk;
}

// tail
struct Seen {
  TransStatus status;
  int64_t attempts;
  std::optional<TimePoint> next_retry;
};

int64_t Attempts(const TransWithBranches& t) {
  int64_t n = 0;
  for (const auto& b : t.branches) n += b.attempts;
  return n;
}

// Waits up to `seconds` for SIGINT or SIGTERM (blocked by the caller).
bool WaitForStop(double seconds) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts;
  ts.tv_sec = static_cast<time_t>(seconds);
  ts.tv_nsec =
      static_cast<long>((seconds - static_cast<double>(ts.tv_sec)) * 1e9);
  return sigtimedwait(&set, nullptr, &ts) > 0;
}

int RunTail(Backend& backend, const Flags& flags, ListQuery q,
            double interval) {
  std::map<std::string, Seen> seen;
  for (;;) {
    auto page = backend.List(q);
    if (!page.ok()) return Fail(page.status());
    const TimePoint now = std::chrono::system_clock::now();
    // Oldest first, so that lines come in the order things happened.
    for (auto it = page->transactions.rbegin(); it != page->transactions.rend();
         ++it) {
      const GlobalTrans& listed = *it;
      auto prev = seen.find(listed.gid);
      // Attempts change while a transaction is unfinished (and on the pass
      // that finishes it); a finished one seen finished before is skipped.
      if (prev != seen.end() && IsFinished(prev->second.status) &&
          prev->second.status == listed.status)
        continue;
      auto found = backend.Find(listed.gid);
      if (!found.ok()) {
        if (found.status().code() == StatusCode::kNotFound) continue;
        return Fail(found.status());
      }
      const GlobalTrans& t = found->trans;
      Seen now_seen{t.status, Attempts(*found), NextRetry(t)};
      std::string event;
      if (prev == seen.end()) {
        event = "new";
      } else if (prev->second.status != now_seen.status) {
        event = "status";
      } else if (prev->second.attempts != now_seen.attempts) {
        event = "attempts";
      } else if (prev->second.next_retry != now_seen.next_retry) {
        event = "next_retry";
      } else {
        continue;
      }
      if (flags.json) {
        json line = TransJson(t);
        line["event"] = event;
        line["time"] = LocalTime(now);
        line["attempts"] = now_seen.attempts;
        if (prev != seen.end()) {
          line["previous_status"] = std::string(ToString(prev->second.status));
        }
        std::cout << line.dump() << std::endl;
      } else {
        std::string status(ToString(t.status));
        if (prev != seen.end() && prev->second.status != t.status) {
          status = std::string(ToString(prev->second.status)) + "->" + status;
        }
        std::cout << LocalTime(now) << "  " << event << "  " << t.gid << "  "
                  << ToString(t.trans_type) << "  " << status
                  << "  attempts=" << now_seen.attempts
                  << "  next_retry=" << NextRetryText(t, now) << std::endl;
      }
      seen[t.gid] = now_seen;
    }
    if (WaitForStop(interval)) return kExitOk;
  }
}

// import-dtm
struct ImportFlags {
  std::string from;
  std::string schema = "dtm";
  std::string to;
  std::string to_schema = "public";
  bool dry_run = false;
  bool all = false;
  bool due_now = false;
  int64_t max_delay_seconds = 3600;
};

bool StartsWith(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

int RunImportDtm(const ImportFlags& f, const Flags& flags) {
  auto usage = [](const std::string& message) {
    std::cerr << "dtxctl: import-dtm: " << message << '\n';
    return kExitUsage;
  };
  if (StartsWith(f.from, "mysql://") || StartsWith(f.from, "mysql:") ||
      StartsWith(f.from, "tcp(")) {
    return usage(
        "dtm's MySQL store is not supported: dtxctl reads dtm's PostgreSQL "
        "store only (it links libpq and no MySQL client). Copy dtm's "
        "trans_global and trans_branch_op into PostgreSQL, or finish the "
        "unfinished transactions with dtm (docs/migrating-from-dtm.md)");
  }
  if (flags.json) return usage("--json is not supported by import-dtm");
  ImportOptions options;
  options.source.conninfo = f.from;
  options.source.schema = f.schema;
  options.source.all = f.all;
  options.source.connect_timeout = std::chrono::seconds(flags.timeout_seconds);
  options.dry_run = f.dry_run;
  options.map.now = std::chrono::system_clock::now();
  if (f.due_now) options.map.due_at = options.map.now;
  options.map.max_delay = std::chrono::seconds(f.max_delay_seconds);
  ImportTarget target;
  target.to = f.to;
  target.schema = f.to_schema;
  target.dry_run = f.dry_run;
  target.connect_timeout = std::chrono::seconds(flags.timeout_seconds);
  std::unique_ptr<Journal> journal;
  options.open_journal = [&]() -> Result<Journal*> {
    DTX_ASSIGN_OR_RETURN(journal, OpenImportJournal(target));
    return journal.get();
  };
  ImportSummary summary;
  Status s = ImportDtm(options, std::cout, &summary);
  if (journal) journal->Close();
  // After a failure to reach or read dtm's store, the error alone.
  if (!s.ok() && summary.read == 0) return Fail(s);
  std::cout << (f.dry_run ? "dry run: " : "") << "read " << summary.read
            << " dtm transactions: " << summary.imported
            << (f.dry_run ? " would be imported, " : " imported, ")
            << summary.present << " skipped (already in the journal), "
            << summary.refused << " refused" << std::endl;
  if (!s.ok()) return Fail(s);
  return summary.refused > 0 ? kExitConflict : kExitOk;
}

int Main(int argc, char** argv) {
  CLI::App app{"dtxctl: list, show, retry and force-stop dtx transactions",
               "dtxctl"};
  app.footer(kFooter);
  app.set_version_flag("-v,--version",
                       std::string("dtxctl ") + DTX_VERSION_STRING);
  app.require_subcommand(1);
  app.fallthrough();
  Flags flags;
  auto* server = app.add_option("--server", flags.server,
                                "dtx-server's gRPC address (host:port, "
                                "dns:///..., discovery://<etcd>/<name>)");
  auto* journal = app.add_option("--journal", flags.journal,
                                 "a journal file (read only unless --write)");
  server->excludes(journal);
  app.add_option("--token", flags.token,
                 "dtx-server's Admin.Token (default: $DTX_ADMIN_TOKEN)")
      ->envname("DTX_ADMIN_TOKEN");
  app.add_flag("--tls", flags.tls,
               "with --server: TLS, verifying the server against the "
               "system's roots (or --tls-ca)");
  app.add_option("--tls-ca", flags.tls_ca,
                 "with --server: TLS, verifying the server against this CA "
                 "file (PEM)");
  app.add_option("--tls-cert", flags.tls_cert,
                 "with --server: a client certificate (PEM) for a server "
                 "with TLS.ClientCAFile");
  app.add_option("--tls-key", flags.tls_key, "the key of --tls-cert (PEM)");
  app.add_option("--tls-server-name", flags.tls_server_name,
                 "the name the server's certificate must carry, when not "
                 "the --server host");
  app.add_flag("--write", flags.write,
               "with --journal: allow retry and force-stop on the file");
  app.add_flag("--json", flags.json, "JSON output for scripts");
  app.add_option("--timeout", flags.timeout_seconds,
                 "seconds per request to the server")
      ->check(CLI::Range(1, 3600));

  ListFlags lf;
  auto add_filters = [&lf](CLI::App* cmd) {
    cmd->add_option("--status", lf.status,
                    "prepared|submitted|aborting|succeed|failed");
    cmd->add_option("--mode", lf.mode, "tcc|saga|msg|xa|workflow");
    cmd->add_option("--gid-prefix", lf.gid_prefix, "gids starting with this");
    cmd->add_flag("--unfinished", lf.unfinished,
                  "only prepared, submitted or aborting");
    cmd->add_option("--limit", lf.limit, "rows per page (at most 1000)")
        ->check(CLI::Range(1, static_cast<int>(kMaxListLimit)));
  };
  auto* list = app.add_subcommand("list", "transactions, newest first");
  add_filters(list);
  list->add_option("--position", lf.position,
                   "the page after this position (printed as 'more:')")
      ->check(CLI::NonNegativeNumber);

  std::string gid;
  auto* show = app.add_subcommand(
      "show", "a transaction and its branches, with their retry state");
  show->add_option("gid", gid, "the transaction's gid")->required();
  auto* retry =
      app.add_subcommand("retry", "run an unfinished transaction now");
  retry->add_option("gid", gid, "the transaction's gid")->required();
  auto* force_stop = app.add_subcommand(
      "force-stop",
      "fail an unfinished transaction; no branch is called again");
  force_stop->add_option("gid", gid, "the transaction's gid")->required();
  auto* stats = app.add_subcommand(
      "stats", "counts by status, unfinished, due, oldest unfinished");
  double interval = 1;
  auto* tail = app.add_subcommand(
      "tail", "print transactions as they appear or change, until ^C");
  add_filters(tail);
  tail->add_option("--interval", interval, "seconds between polls")
      ->check(CLI::Range(0.05, 3600.0));

  ImportFlags imf;
  auto* import_dtm = app.add_subcommand(
      "import-dtm",
      "copy the unfinished transactions of a dtm PostgreSQL store into a dtx "
      "journal, so that dtx finishes them (stop dtm first)");
  import_dtm
      ->add_option("--from", imf.from,
                   "dtm's PostgreSQL store: a libpq conninfo (\"host=... "
                   "dbname=dtm\") or postgres[ql]:// URI (MySQL: not "
                   "supported)")
      ->required();
  import_dtm
      ->add_option("--schema", imf.schema,
                   "the schema of dtm's tables (dtm's Store.Schema; "
                   "its SQL script makes 'dtm')")
      ->capture_default_str();
  import_dtm
      ->add_option("--to", imf.to,
                   "the dtx journal: a SQLite file (created when missing) "
                   "or a PostgreSQL conninfo / postgres[ql]:// URI")
      ->required();
  import_dtm
      ->add_option("--to-schema", imf.to_schema,
                   "with a PostgreSQL --to: the journal's schema "
                   "(created when missing; not dtm's)")
      ->capture_default_str();
  import_dtm->add_flag("--dry-run", imf.dry_run,
                       "print what would be imported; write nothing");
  import_dtm->add_flag("--all", imf.all,
                       "finished transactions too (succeed, failed), as "
                       "history");
  import_dtm->add_flag("--due-now", imf.due_now,
                       "make every imported transaction due at once, not "
                       "when dtm scheduled it");
  import_dtm
      ->add_option("--max-delay", imf.max_delay_seconds,
                   "seconds: a transaction dtm scheduled later than this "
                   "from now is due this far from now instead (dtm's back-off "
                   "has no cap, dtx's is an hour); 0: dtm's schedule as is")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  import_dtm->footer(
      "Each transaction is written whole (with its branch rows) or not at "
      "all; one whose gid the journal holds is skipped, so a re-run is "
      "safe. xa and json-rpc transactions (which dtx does not run) and "
      "workflows (finished where they started) are refused: exit code 4 "
      "when any was refused.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "dtxctl: " << e.what() << "\n(see dtxctl --help)\n";
    return kExitUsage;
  }
  auto usage = [](const std::string& message) {
    std::cerr << "dtxctl: " << message << '\n';
    return kExitUsage;
  };
  if (import_dtm->parsed()) {
    if (!flags.server.empty() || !flags.journal.empty()) {
      return usage(
          "import-dtm takes --from and --to, not --server or --journal");
    }
    return RunImportDtm(imf, flags);
  }
  if (flags.server.empty() && flags.journal.empty()) {
    return usage(
        "say where the transactions are: --server host:port or "
        "--journal PATH");
  }
  const bool changes = retry->parsed() || force_stop->parsed();
  if (!flags.journal.empty() && changes && !flags.write) {
    return usage(std::string(retry->parsed() ? "retry" : "force-stop") +
                 " changes the journal: add --write (with a coordinator "
                 "running, prefer --server)");
  }
  if (flags.write && flags.journal.empty()) {
    return usage("--write applies to --journal only");
  }
  if (!gid.empty() || show->parsed() || changes) {
    Status s = ValidateGid(gid);
    if (!s.ok()) return usage(s.message());
  }
  auto query = MakeQuery(lf);
  if (!query.ok()) return usage(query.status().message());

  if (tail->parsed()) {
    // Blocked before the back-end starts its threads, so that they inherit
    // the mask and tail's sigtimedwait receives the signal.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

  ServerOptions server_options;
  server_options.address = flags.server;
  server_options.token = flags.token;
  server_options.timeout = std::chrono::seconds(flags.timeout_seconds);
  if (flags.tls || !flags.tls_ca.empty() || !flags.tls_cert.empty() ||
      !flags.tls_key.empty() || !flags.tls_server_name.empty()) {
    server_options.tls = TlsClientOptions{flags.tls_ca, flags.tls_cert,
                                          flags.tls_key, flags.tls_server_name};
  }
  Result<std::unique_ptr<Backend>> backend =
      flags.server.empty() ? OpenJournalBackend({flags.journal, flags.write})
                           : OpenServerBackend(server_options);
  if (!backend.ok()) {
    // Opening fails for a missing, locked, corrupt or foreign journal, or a
    // malformed address.
    const StatusCode code = backend.status().code();
    return Fail(backend.status(), code == StatusCode::kInvalidArgument
                                      ? kExitUsage
                                      : kExitUnavailable);
  }
  Backend& b = **backend;
  if (list->parsed()) return RunList(b, flags, *query);
  if (show->parsed()) return RunShow(b, flags, gid);
  if (retry->parsed()) return RunChange(b, flags, gid, false);
  if (force_stop->parsed()) return RunChange(b, flags, gid, true);
  if (stats->parsed()) return RunStats(b, flags);
  if (tail->parsed()) return RunTail(b, flags, *query, interval);
  return usage("no command");
}

}  // namespace
}  // namespace dtx::dtxctl

int main(int argc, char** argv) { return dtx::dtxctl::Main(argc, argv); }
