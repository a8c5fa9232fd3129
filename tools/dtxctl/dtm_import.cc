// The mapping of dtm's rows to dtx's model, and the import loop. Every
// column's fate is listed in docs/migrating-from-dtm.md ("What is carried
// over"); the choices made around dtm's quirks are in docs/semantics.md.

#include "dtm_import.h"

#include "dtx/clock.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace dtx::dtxctl {
namespace {

using nlohmann::json;

constexpr char kBase64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64(const std::string& in) {
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v =
        (static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << 16) |
        (static_cast<uint32_t>(static_cast<uint8_t>(in[i + 1])) << 8) |
        static_cast<uint8_t>(in[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6)
      out += kBase64[(v >> shift) & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << 16;
    if (i + 1 < in.size())
      v |= static_cast<uint32_t>(static_cast<uint8_t>(in[i + 1])) << 8;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kBase64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<TimePoint> Time(const std::optional<int64_t>& ms) {
  if (!ms) return std::nullopt;
  return FromUnixMillis(*ms);  // clamped: dtm's rows may hold any value
}

// A JSON object from dtm's text column, or null for an empty one; discarded
// when it is not an object. Nesting is bounded by the column (1024 bytes).
json Object(const std::string& text) {
  if (text.empty()) return json::object();
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return json(json::value_t::discarded);
  return j;
}

// dtm's options column (its TransOptions as JSON: wait_result,
// timeout_to_fail, request_timeout, retry_interval, branch_headers,
// concurrent, retry_limit, retry_count) and the legacy headers of ext_data,
// as dtx's options JSON: the same keys, only those that differ from their
// defaults, "-bin" header values in base64 under branch_headers_bin (the
// format of lib/src/trans_options.cc, which decodes it).
Result<std::string> MapOptionsJson(const DtmTransRow& row,
                                   int64_t* retry_count) {
  json in = Object(row.options);
  if (in.is_discarded()) {
    return InvalidArgumentError("options is not a JSON object: " + row.options);
  }
  json out = json::object();
  for (const char* key : {"wait_result", "concurrent"}) {
    auto it = in.find(key);
    if (it == in.end() || it->is_null()) continue;
    if (!it->is_boolean()) {
      return InvalidArgumentError(std::string("options.") + key +
                                  " is not a boolean");
    }
    if (it->get<bool>()) out[key] = true;
  }
  for (const char* key : {"timeout_to_fail", "retry_interval",
                          "request_timeout", "retry_limit", "retry_count"}) {
    auto it = in.find(key);
    if (it == in.end() || it->is_null()) continue;
    if (!it->is_number_integer() || it->get<int64_t>() < 0) {
      return InvalidArgumentError(std::string("options.") + key +
                                  " is not a non-negative integer");
    }
    const int64_t v = it->get<int64_t>();
    if (std::string_view(key) == "retry_count") {
      *retry_count = v;
    } else if (v != 0) {
      out[key] = v;
    }
  }
  // dtm sends ext_data's legacy headers first and BranchHeaders after them,
  // so that a BranchHeaders value wins: merged in that order.
  std::map<std::string, std::string> headers;
  json ext = Object(row.ext_data);
  if (ext.is_discarded()) {
    return InvalidArgumentError("ext_data is not a JSON object: " +
                                row.ext_data);
  }
  for (const json* source : {&ext, &in}) {
    const char* key = source == &ext ? "headers" : "branch_headers";
    auto it = source->find(key);
    if (it == source->end() || it->is_null()) continue;
    if (!it->is_object()) {
      return InvalidArgumentError(
          std::string(source == &ext ? "ext_data." : "options.") + key +
          " is not an object");
    }
    for (const auto& [name, value] : it->items()) {
      if (!value.is_string()) {
        return InvalidArgumentError("header " + name + " is not a string");
      }
      headers[name] = value.get<std::string>();
    }
  }
  for (const auto& [name, value] : headers) {
    const bool binary =
        name.size() >= 4 && name.compare(name.size() - 4, 4, "-bin") == 0;
    if (binary) {
      out["branch_headers_bin"][name] = Base64(value);
    } else {
      out["branch_headers"][name] = value;
    }
  }
  return out.dump();
}

// The ops each mode's rows may have, as dtm writes them.
Status CheckRows(TransType type, const std::vector<Branch>& branches) {
  if (type == TransType::kSaga) {
    // dtm's layout, which dtx's saga shares: per step a compensate row,
    // then its action row, with the same branch id.
    if (branches.size() % 2 != 0) {
      return InvalidArgumentError(
          "saga rows are not compensate/action pairs (odd number of rows)");
    }
    for (std::size_t i = 0; i < branches.size(); i += 2) {
      if (branches[i].op != BranchOp::kCompensate ||
          branches[i + 1].op != BranchOp::kAction ||
          branches[i].branch_id != branches[i + 1].branch_id) {
        return InvalidArgumentError(
            "saga rows are not compensate/action pairs at branch " +
            branches[i].branch_id);
      }
    }
    return Status::Ok();
  }
  for (const Branch& b : branches) {
    const bool fits = type == TransType::kMsg ? b.op == BranchOp::kAction
                                              : b.op == BranchOp::kCancel ||
                                                    b.op == BranchOp::kConfirm;
    if (!fits) {
      return InvalidArgumentError("branch " + b.branch_id + " has op " +
                                  std::string(ToString(b.op)) + ", which a " +
                                  std::string(ToString(type)) +
                                  " transaction does not run");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<TransWithBranches> MapDtmTrans(const DtmTransRow& row,
                                      const MapOptions& options) {
  TransWithBranches out;
  GlobalTrans& t = out.trans;
  t.gid = row.gid;
  auto type = ParseTransType(row.trans_type);
  if (!type.ok()) {
    return InvalidArgumentError("unknown trans_type '" + row.trans_type + "'");
  }
  if (*type == TransType::kXa) {
    return UnimplementedError(
        "trans_type xa: dtx does not run xa "
        "transactions; finish it with dtm");
  }
  if (*type == TransType::kWorkflow) {
    // dtx runs workflows, but a dtm workflow's record may hold steps dtx
    // has no op for (DoXa's "business") and its callback is the dtm
    // application's: moving one between coordinators is not supported.
    return UnimplementedError(
        "trans_type workflow: importing workflows is not supported; let the "
        "application finish it with dtm");
  }
  t.trans_type = *type;
  auto status = ParseTransStatus(row.status);
  if (!status.ok()) {
    return InvalidArgumentError("unknown status '" + row.status + "'");
  }
  t.status = *status;
  // dtm turns an empty protocol into http when it admits a transaction; an
  // empty one in the table calls http:// URLs over HTTP and others over
  // gRPC, which is what dtx does with "grpc".
  if (row.protocol == "http" || row.protocol == "grpc") {
    t.protocol = row.protocol;
  } else if (row.protocol.empty()) {
    t.protocol = "grpc";
  } else if (row.protocol == "json-rpc") {
    return UnimplementedError(
        "protocol json-rpc: dtx does not call json-rpc branches yet");
  } else {
    return InvalidArgumentError("unknown protocol '" + row.protocol + "'");
  }
  t.query_prepared = row.query_prepared;
  DTX_ASSIGN_OR_RETURN(t.options, MapOptionsJson(row, &t.retry_count));
  if (Object(row.custom_data).is_discarded()) {
    return InvalidArgumentError("custom_data is not a JSON object: " +
                                row.custom_data);
  }
  t.custom_data = row.custom_data;
  // The legacy headers are in the options now; dtx reads nothing else there.
  t.ext_data.clear();
  t.result = row.result;
  t.rollback_reason = row.rollback_reason;
  // create_time drives the timeouts (tcc, msg, saga with timeout_to_fail):
  // kept, so that a transaction times out when it would have under dtm.
  t.create_time = Time(row.create_time_ms).value_or(options.now);
  t.update_time = Time(row.update_time_ms).value_or(t.create_time);
  t.finish_time = Time(row.finish_time_ms);
  t.rollback_time = Time(row.rollback_time_ms);
  t.next_cron_interval = std::chrono::seconds(
      std::max<int64_t>(0, row.next_cron_interval.value_or(0)));
  if (options.due_at) {
    t.next_cron_time = *options.due_at;
  } else {
    t.next_cron_time = Time(row.next_cron_time_ms).value_or(options.now);
  }
  if (options.max_delay.count() > 0) {
    t.next_cron_interval = std::min(t.next_cron_interval, options.max_delay);
    t.next_cron_time =
        std::min(t.next_cron_time, options.now + options.max_delay);
  }
  // dtm's owner is the id of the cron pass that last locked the row, which
  // means nothing to a dtx coordinator: no owner, so any may claim it.
  t.owner.clear();

  for (const DtmBranchRow& r : row.branches) {
    Branch b;
    b.gid = row.gid;
    b.url = r.url;
    b.bin_data = r.bin_data.value_or(std::string());
    b.branch_id = r.branch_id;
    auto op = ParseBranchOp(r.op);
    if (!op.ok()) {
      return InvalidArgumentError("branch " + r.branch_id + ": unknown op '" +
                                  r.op + "'");
    }
    b.op = *op;
    auto bs = ParseBranchStatus(r.status);
    if (!bs.ok()) {
      return InvalidArgumentError("branch " + r.branch_id +
                                  ": unknown status '" + r.status + "'");
    }
    b.status = *bs;
    b.create_time = Time(r.create_time_ms).value_or(t.create_time);
    b.update_time = Time(r.update_time_ms).value_or(b.create_time);
    b.finish_time = Time(r.finish_time_ms);
    b.rollback_time = Time(r.rollback_time_ms);
    out.branches.push_back(std::move(b));
  }
  DTX_RETURN_IF_ERROR(CheckRows(t.trans_type, out.branches));
  return out;
}

Status ImportDtm(const ImportOptions& options, std::ostream& out,
                 ImportSummary* summary) {
  *summary = ImportSummary();
  Journal* journal = nullptr;
  bool opened = false;
  auto each = [&](DtmTransRow row) -> Status {
    ++summary->read;
    if (options.progress_every > 0 &&
        summary->read % options.progress_every == 0) {
      out << "read " << summary->read << " (imported " << summary->imported
          << ", already present " << summary->present << ", refused "
          << summary->refused << ")" << std::endl;
    }
    auto mapped = MapDtmTrans(row, options.map);
    if (!mapped.ok()) {
      ++summary->refused;
      out << "refused " << row.gid << " (" << row.trans_type << ", "
          << row.status << "): " << mapped.status().message() << '\n';
      return Status::Ok();
    }
    if (!opened) {
      DTX_ASSIGN_OR_RETURN(journal, options.open_journal());
      opened = true;
      if (journal == nullptr && !options.dry_run) {
        return InternalError("import-dtm: no journal to write to");
      }
    }
    if (journal != nullptr) {
      auto found = journal->Find(row.gid);
      if (found.ok()) {
        ++summary->present;
        return Status::Ok();
      }
      if (found.status().code() != StatusCode::kNotFound) {
        return found.status().WithPrefix("import-dtm: gid " + row.gid);
      }
    }
    if (options.dry_run) {
      ++summary->imported;
      out << "would import " << row.gid << " (" << row.trans_type << ", "
          << row.status << ", " << mapped->branches.size() << " branch rows)"
          << '\n';
      return Status::Ok();
    }
    Status s = WaitForWrite([&](WriteDone done) {
      journal->SaveNew(mapped->trans, mapped->branches, std::move(done));
    });
    if (s.ok()) {
      ++summary->imported;
      return Status::Ok();
    }
    if (s.code() == StatusCode::kAlreadyExists) {
      // Imported (or admitted) between the Find and the write.
      ++summary->present;
      return Status::Ok();
    }
    if (s.code() == StatusCode::kInvalidArgument ||
        s.code() == StatusCode::kResourceExhausted) {
      // Over one of dtx's limits (dtx/limits.h): this one only.
      // A payload over kMaxPayloadBytes is this one's; a full disk or
      // memory is everyone's, and ends the import.
      if (s.code() == StatusCode::kResourceExhausted &&
          s.message().find("over the limit") == std::string::npos) {
        return s.WithPrefix("import-dtm: gid " + row.gid);
      }
      ++summary->refused;
      out << "refused " << row.gid << " (" << row.trans_type << ", "
          << row.status << "): " << s.message() << '\n';
      return Status::Ok();
    }
    return s.WithPrefix("import-dtm: gid " + row.gid);
  };
  return ReadDtmPostgres(options.source, each);
}

}  // namespace dtx::dtxctl
