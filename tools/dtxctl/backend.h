// dtxctl's back-ends: where the transactions it shows and changes live.
// ServerBackend asks a dtx-server's admin gRPC service (the coordinator does
// the work); JournalBackend reads a journal file directly with SqliteJournal
// and, opened writable, changes it with the journal's compare-and-set writes.
//
// Errors keep the journal's and the server's codes, so that main.cc maps them
// to exit codes: kNotFound (unknown gid), kFailedPrecondition or kAborted
// (finished, or changed meanwhile), kUnavailable (server down), ...

#ifndef DTX_TOOLS_DTXCTL_BACKEND_H_
#define DTX_TOOLS_DTXCTL_BACKEND_H_

#include "dtx/journal.h"
#include "dtx/model.h"
#include "dtx/result.h"
#include "dtx/status.h"
#include "dtx/transport/tls_options.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace dtx::dtxctl {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Result<ListPage> List(const ListQuery& query) = 0;
  virtual Result<TransWithBranches> Find(const std::string& gid) = 0;
  virtual Result<TransStats> Stats() = 0;
  // Makes an unfinished transaction due now.
  virtual Status RetryNow(const std::string& gid) = 0;
  // Fails an unfinished transaction without calling any branch (dtm's
  // forceStop).
  virtual Status ForceStop(const std::string& gid) = 0;
};

struct ServerOptions {
  std::string address;  // what GrpcDtmClient accepts
  std::string token;    // Admin.Token; empty: none sent
  std::chrono::milliseconds timeout{10000};
  // Set: TLS to the server (--tls-ca, --tls-cert, --tls-key,
  // --tls-server-name).
  std::optional<TlsClientOptions> tls;
};

// Fails only for a malformed address or token (or a TLS file that cannot be
// used); the server is reached lazily.
Result<std::unique_ptr<Backend>> OpenServerBackend(
    const ServerOptions& options);

struct JournalOptions {
  std::string path;
  // False: read only (no create, no migration, writes refused).
  bool write = false;
};

// Fails when the file is missing (kNotFound), not a current dtx journal
// (kFailedPrecondition), locked (kUnavailable) or corrupt (kDataLoss).
Result<std::unique_ptr<Backend>> OpenJournalBackend(
    const JournalOptions& options);

// The journal back-end on an open journal (OpenJournalBackend's, or a
// wrapper in a test); the back-end closes it.
std::unique_ptr<Backend> MakeJournalBackend(std::unique_ptr<Journal> journal);

}  // namespace dtx::dtxctl

#endif  // DTX_TOOLS_DTXCTL_BACKEND_H_
