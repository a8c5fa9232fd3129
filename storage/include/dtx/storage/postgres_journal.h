// PostgresJournal: the Journal on a PostgreSQL database, which several
// coordinators (processes, machines) may share.
//
// Writes go through writer threads (`writers`, 1 by default), each with its
// own connection, which commits whatever is queued for it in one PostgreSQL
// transaction (group commit); every write of a transaction (one gid) goes to
// the same writer, so they apply in the order they were made, while the
// writers' batches overlap (one's statements run while another's COMMIT
// waits for its WAL flush). A write's completion runs only after the COMMIT
// that made it durable, handed to the executor it was made with, in commit
// order for its writer (one without runs on the writer thread and holds up
// that writer's later commits while it runs). Reads use a small
// pool of their own connections and never wait for the writer. Claim() takes
// due transactions with FOR UPDATE SKIP LOCKED and leases them (owner,
// next_cron_time), so that coordinators sharing the database never process
// the same transaction at once and never wait for each other's claims.
// docs/journal.md ("PostgreSQL") describes the schema, the batching and the
// failures.
//
//   dtx::PostgresJournalOptions options;
//   options.conninfo = "host=db.internal port=5432 user=dtx dbname=dtx";
//   options.schema = "payments";
//   DTX_ASSIGN_OR_RETURN(auto journal, dtx::PostgresJournal::Open(options));
//
// Open() connects, creates the schema and its tables when absent and brings
// an older journal up to date (versioned migrations, one coordinator at a
// time). It returns kInvalidArgument for a malformed option, kUnavailable when
// the server cannot be reached, kPermissionDenied when it refuses the login
// or the DDL, kNotFound for a database that does not exist, and
// kFailedPrecondition for a schema that holds another application's
// trans_global (dtm's, say) or a newer dtx's journal.
//
// A lost connection fails the writes (or the read) under way with
// kUnavailable naming the server, and the next write or read connects again:
// a restarted server needs no restart of the journal.
//
// Thread safety: thread-safe.

#ifndef DTX_STORAGE_POSTGRES_JOURNAL_H_
#define DTX_STORAGE_POSTGRES_JOURNAL_H_

#include "dtx/clock.h"
#include "dtx/journal.h"
#include "dtx/logger.h"
#include "dtx/storage/postgres_export.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace dtx {

class MetricsRegistry;

struct DTX_POSTGRES_EXPORT PostgresJournalOptions {
  // A libpq connection string ("host=... port=... user=... password=...
  // dbname=...") or URI ("postgresql://user@host:port/dbname"); libpq's
  // environment variables (PGHOST, PGPASSWORD...) fill what it leaves out.
  std::string conninfo;

  // The schema of the journal's tables (dtm's Store.Schema); created when
  // absent. A plain identifier: letters, digits and '_'.
  std::string schema = "public";

  // Most writes committed in one transaction. 1 turns group commit off (one
  // commit per write); for comparisons only.
  std::size_t max_batch_writes = 1024;

  // How long a lazy write (StatusChange::lazy) that is the writer's only
  // work waits for another write to share its commit. 0: committed at once.
  std::chrono::microseconds lazy_write_hold = kLazyWriteHold;

  // Send a batch's statements in libpq's pipeline mode: one round trip for
  // a batch's statements, and one for its COMMIT. A batch in which a write
  // does not apply (a compare-and-set that matches nothing, an SQL error)
  // is then run again one statement at a time, so that each write gets its
  // own answer. false: one statement at a time always; for comparisons.
  bool pipeline = true;

  // Read connections kept open between reads (dtm's MaxIdleConns); more
  // are opened while more reads run at once, and closed after.
  std::size_t max_idle_readers = 4;

  // Write connections, each with its writer thread (at least 1). A
  // transaction's writes all go to one of them (chosen by its gid), so that
  // several writers commit different transactions' writes side by side:
  // worth it when the database has cores to spare and one writer's cycle
  // (statements, COMMIT, WAL flush) is the limit. On a database sharing two
  // cores with the coordinator and its branches, 2 writers took the empty-URL
  // saga 20 % higher and sagas with real branches lower (docs/journal.md).
  std::size_t writers = 1;

  // Read connections open at once at most; a read beyond them waits for
  // one to be free. 0: no cap. (dtm's MaxOpenConns counts every
  // connection: dtx-server passes MaxOpenConns less the writers.)
  std::size_t max_readers = 0;

  // A read connection older than this is closed (when next taken or handed
  // back) and replaced by a new one (dtm's ConnMaxLifeTime). 0: kept while
  // it works. The writers' connections are not concerned.
  std::chrono::milliseconds reader_max_lifetime{0};

  // How long a connection attempt may take (libpq's connect_timeout, whole
  // seconds, at least 1).
  std::chrono::milliseconds connect_timeout{5000};

  // Timestamps written by the journal (update_time, finish_time, ...) come
  // from this clock. Borrowed; must outlive the journal. Null: SystemClock().
  const Clock* clock = nullptr;

  // Null: no logging.
  std::shared_ptr<Logger> logger;

  // Borrowed; must outlive the journal. The writers' metrics are registered
  // in it at Open, under the SQLite journal's names
  // (dtx_journal_commit_duration_seconds, dtx_journal_batch_writes,
  // dtx_journal_queued_writes; docs/operations.md). Null: none.
  MetricsRegistry* metrics = nullptr;
};

// Where a PostgreSQL server is and who logs in: the parts of dtm's
// Store settings (Host, Port, User, Password, Db) that make a connection.
struct DTX_POSTGRES_EXPORT PostgresServerAddress {
  std::string host;
  int port = 0;  // 0: libpq's default (5432, or PGPORT)
  std::string user;
  std::string password;
  std::string dbname;
};

// A libpq connection string from `address`, each value quoted as libpq
// requires, so that a password with spaces, quotes or '=' stays one value
// and cannot add options. Empty parts are left out: libpq's defaults and
// its environment variables (PGHOST, PGPASSWORD...) apply.
DTX_POSTGRES_EXPORT std::string MakePostgresConninfo(
    const PostgresServerAddress& address);

class DTX_POSTGRES_EXPORT PostgresJournal final : public Journal {
 public:
  static Result<std::unique_ptr<PostgresJournal>> Open(
      PostgresJournalOptions options);

  ~PostgresJournal() override;
  PostgresJournal(const PostgresJournal&) = delete;
  PostgresJournal& operator=(const PostgresJournal&) = delete;

  void SaveNew(GlobalTrans trans, std::vector<Branch> branches,
               WriteDone done) override;
  void AppendBranches(std::string gid, TransStatus expected,
                      std::vector<Branch> branches, WriteDone done) override;
  void ChangeStatus(StatusChange change, WriteDone done) override;
  void UpdateBranches(BranchResults results, WriteDone done) override;
  void TouchCron(CronUpdate update, WriteDone done) override;
  void MakeDue(std::string gid, TimePoint now, WriteDone done) override;
  void Claim(ClaimRequest request, ClaimDone done) override;
  void Flush(WriteDone done) override;
  void PurgeFinished(PurgeRequest request, PurgeDone done) override;

  Result<TransWithBranches> Find(const std::string& gid) override;
  Result<ListPage> List(const ListQuery& query) override;
  Result<UnfinishedSummary> Summarize(TimePoint now) override;
  // One GROUP BY over trans_global: O(rows), unlike SqliteJournal's O(1)
  // (docs/journal.md says why).
  Result<StatusCounts> CountByStatus() override;
  Result<DuePage> ListDue(TimePoint now, std::size_t limit,
                          DueCursor after) override;

  // True: coordinators in other processes may share the database.
  bool shared() const override;

  void Close() override;

  // Counters since Open, for benchmarks and tests.
  struct Stats {
    uint64_t writes = 0;      // writes applied in committed transactions
    uint64_t commits = 0;     // transactions committed
    uint64_t reruns = 0;      // batches run again without a failed write
    uint64_t reconnects = 0;  // writer connections reopened after a loss
    uint64_t pipelined = 0;   // transactions committed from a pipeline
    uint64_t fallbacks = 0;   // pipelined batches run again one by one
    uint64_t queued = 0;      // writes waiting, not yet taken into a commit
  };
  Stats stats() const;

 private:
  struct Impl;
  explicit PostgresJournal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dtx

#endif  // DTX_STORAGE_POSTGRES_JOURNAL_H_
