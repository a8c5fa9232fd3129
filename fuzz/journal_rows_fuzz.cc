// The journal's stored rows as dtx reads them back: after a crash, from a
// journal another version wrote, or one an operator edited by hand. The
// input fills one trans_global row and up to 8 trans_branch_op rows of an
// in-memory journal (MigrateSchema's tables) with values of any SQLite type
// (integers, text, blobs, reals, NULL; often a valid status or op, so that
// decoding goes on); then the journal's readers decode them (ReadGlobalRow,
// ReadBranchRow, with the columns SqliteJournal selects) and the engine
// decodes what it keeps in them, as a recovered transaction's runtime does:
// the options (DecodeOptions), the mode's custom data
// (TransProcessor::LoadState) and its timeout rule. Property: a stored
// value that cannot be decoded is kDataLoss, never another code.

#include "dtx/logger.h"

#include "fuzz_check.h"
#include "journal_rows.h"
#include "schema.h"
#include "sqlite_handle.h"
#include "trans_options.h"
#include "trans_type.h"

#include <sqlite3.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <fuzzer/FuzzedDataProvider.h>
#include <memory>
#include <string>
#include <vector>

namespace {

using dtx::internal::Db;
using dtx::internal::Stmt;

constexpr std::array<const char*, 5> kTypes = {"saga", "tcc", "msg", "xa",
                                               "workflow"};
constexpr std::array<const char*, 5> kStatuses = {
    "prepared", "submitted", "aborting", "succeed", "failed"};
constexpr std::array<const char*, 8> kOps = {"try",      "confirm",    "cancel",
                                             "action",   "compensate", "commit",
                                             "rollback", "msg"};

// Binds parameter `i` to a value of a type the input picks; `names`, when
// given, offers a valid spelling as one of the choices.
template <std::size_t N>
void BindAny(FuzzedDataProvider& in, Stmt* stmt, int i,
             const std::array<const char*, N>* names = nullptr) {
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0:
      stmt->BindInt(i, in.ConsumeIntegral<int64_t>());
      break;
    case 1:
      stmt->BindBlob(i, in.ConsumeRandomLengthString(64));
      break;
    case 2:
      sqlite3_bind_double(stmt->raw(), i, in.ConsumeFloatingPoint<double>());
      break;
    case 3:
      stmt->BindNull(i);
      break;
    case 4:
      if (names != nullptr) {
        stmt->BindText(
            i, (*names)[in.ConsumeIntegralInRange<std::size_t>(0, N - 1)]);
        break;
      }
      [[fallthrough]];
    default:
      stmt->BindText(i, in.ConsumeRandomLengthString(256));
      break;
  }
}

void BindAny(FuzzedDataProvider& in, Stmt* stmt, int i) {
  BindAny<1>(in, stmt, i, nullptr);
}

Db* OpenJournal() {
  static Db* db = [] {
    auto opened = Db::Open(":memory:", /*create=*/true, 0);
    FUZZ_CHECK(opened.ok());
    auto logger = dtx::NewNullLogger();
    FUZZ_CHECK(dtx::internal::MigrateSchema(**opened, *logger).ok());
    return opened->release();
  }();
  return db;
}

void ExpectDataLoss(const dtx::Status& s) {
  FUZZ_CHECK(s.code() == dtx::StatusCode::kDataLoss);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Db& db = *OpenJournal();
  FUZZ_CHECK(
      db.Exec("DELETE FROM trans_branch_op; DELETE FROM trans_global").ok());

  auto insert = db.PrepareStatic(R"sql(INSERT INTO trans_global (gid,
  trans_type, status, protocol, query_prepared, options, custom_data,
  ext_data, result, rollback_reason, create_time, update_time, finish_time,
  rollback_time, next_cron_interval, next_cron_time, owner, retry_count,
  fence) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
  ?15, ?16, ?17, ?18, ?19))sql");
  FUZZ_CHECK(insert.ok());
  {
    dtx::internal::StmtGuard guard(*insert);
    (*insert)->BindText(1, "g");
    BindAny(in, *insert, 2, &kTypes);
    BindAny(in, *insert, 3, &kStatuses);
    for (int i = 4; i <= 19; ++i) BindAny(in, *insert, i);
    if ((*insert)->Step() != SQLITE_DONE) return 0;  // a NOT NULL column
  }
  const int64_t trans_id = sqlite3_last_insert_rowid(db.raw());

  const int rows = in.ConsumeIntegralInRange<int>(0, 8);
  auto branch = db.PrepareStatic(R"sql(INSERT INTO trans_branch_op (trans_id,
  gid, url, bin_data, branch_id, op, status, create_time, update_time,
  finish_time, rollback_time, attempts, last_try_time, last_error) VALUES
  (?1, 'g', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13))sql");
  FUZZ_CHECK(branch.ok());
  for (int r = 0; r < rows; ++r) {
    dtx::internal::StmtGuard guard(*branch);
    (*branch)->BindInt(1, trans_id);
    BindAny(in, *branch, 2);
    BindAny(in, *branch, 3);
    (*branch)->BindText(4, std::to_string(r / 2));
    BindAny(in, *branch, 5, &kOps);
    BindAny(in, *branch, 6, &kStatuses);
    for (int i = 7; i <= 13; ++i) BindAny(in, *branch, i);
    (void)(*branch)->Step();  // a NOT NULL column refuses the row
  }

  const std::string path = "fuzz.db";
  auto read_global =
      db.Prepare("SELECT " + std::string(dtx::internal::kGlobalColumns) +
                 " FROM trans_global");
  FUZZ_CHECK(read_global.ok());
  dtx::TransWithBranches stored;
  {
    dtx::internal::StmtGuard guard(*read_global);
    FUZZ_CHECK((*read_global)->Step() == SQLITE_ROW);
    auto t = dtx::internal::ReadGlobalRow(**read_global, path);
    if (!t.ok()) {
      ExpectDataLoss(t.status());
      return 0;
    }
    stored.trans = *std::move(t);
  }
  auto read_branches =
      db.Prepare("SELECT " + std::string(dtx::internal::kBranchColumns) +
                 " FROM trans_branch_op ORDER BY id");
  FUZZ_CHECK(read_branches.ok());
  {
    dtx::internal::StmtGuard guard(*read_branches);
    while ((*read_branches)->Step() == SQLITE_ROW) {
      auto b = dtx::internal::ReadBranchRow(**read_branches, path);
      if (!b.ok()) {
        ExpectDataLoss(b.status());
        return 0;
      }
      stored.branches.push_back(*std::move(b));
    }
  }

  // What a recovered transaction's runtime decodes (trans_runtime.cc).
  dtx::TransOptions options;
  if (auto decoded = dtx::internal::DecodeOptions(stored.trans.options);
      decoded.ok()) {
    options = *decoded;
  }
  const dtx::internal::TransProcessor* processor =
      dtx::internal::ProcessorFor(stored.trans.trans_type);
  if (processor != nullptr) {
    dtx::Status error;
    auto state = processor->LoadState(stored.trans, stored.branches, &error);
    FUZZ_CHECK(state != nullptr);
    (void)processor->TimeoutOf(options, dtx::internal::ModeDefaults{});
  }
  return 0;
}
