// dtm's HTTP API in JSON: the request bodies its SDKs (dtmcli for Go,
// Python, Java, ...) post to /api/dtmsvr/{prepare,submit,abort} and
// /api/dtmsvr/registerBranch, and the answers' classes. dtx-server's HTTP
// API decodes with these functions and HttpDtmClient encodes with them, so
// both ends agree by construction. docs/http-api.md has the tables.
//
//   // What dtmcli posts for a saga (its TransBase, options flattened):
//   {"gid":"g1","trans_type":"saga","concurrent":false,"protocol":"",
//    "steps":[{"action":"http://b/TransOut","compensate":"http://b/Rev"}],
//    "payloads":["{\"amount\":30}"],"wait_result":true,"retry_limit":2}
//   DTX_ASSIGN_OR_RETURN(dtx::TransRequest r, dtx::DecodeDtmTransJson(body));
//
// The decoders are strict where dtm's Go decoder is strict and lenient
// where it is lenient: unknown keys are ignored and a null value counts as
// absent (encoding/json's rules), but a value of the wrong type is
// kInvalidArgument naming the key ("wait_result must be a boolean, not a
// string"), as are bodies that are not a JSON object. Keys are matched
// exactly (Go also matches "GID"; no SDK sends such keys).
//
// Thread safety: pure functions.

#ifndef DTX_TRANSPORT_DTM_HTTP_JSON_H_
#define DTX_TRANSPORT_DTM_HTTP_JSON_H_

#include "dtx/dtm_api.h"
#include "dtx/result.h"
#include "dtx/status.h"
#include "dtx/transport/http_export.h"
#include "dtx/transport/http_message.h"

#include <string>
#include <string_view>

namespace dtx {

// dtmcli's TransBase: gid and trans_type (required), custom_data,
// wait_result, timeout_to_fail, request_timeout, retry_interval (whole
// seconds, 0..366 days), retry_limit (>= 0), retry_count (read, unused: the
// server keeps its own), branch_headers (string map), concurrent, steps
// (array of string maps; "action", "compensate" and the legacy "data" are
// read), payloads (array of strings: each the JSON text of a step's request,
// stored and sent as those bytes), query_prepared, protocol ("" means
// "http", as dtm's HTTP API takes it), rollback_reason. Steps and payloads,
// when both are sent, have one entry each per step; an old SDK's
// steps[i].data stands for payloads[i] when no payloads are sent.
// req_extra (a workflow's Submit) is an object of strings.
// kUnimplemented for a non-empty passthrough_headers (dtm's removed option).
DTX_HTTP_EXPORT Result<TransRequest> DecodeDtmTransJson(std::string_view body);
// The body dtmcli would send for `request` (zero options omitted,
// "concurrent" and "protocol" always present; protocol "" when it is
// "http" or empty). Decoding it gives `request` back, protocol "http".
DTX_HTTP_EXPORT std::string EncodeDtmTransJson(const TransRequest& request);

// prepareWorkflow's answer, as dtm's encoding/json writes
// DtmProgressesReply: {"transaction":{"gid","status","rollback_reason",
// "result"},"progresses":[{"status","bin_data" (base64),"branch_id","op"}]},
// with dtm_result SUCCESS.
DTX_HTTP_EXPORT std::string EncodeWorkflowProgressJson(
    const TransWithBranches& record);
DTX_HTTP_EXPORT Result<TransWithBranches> DecodeWorkflowProgressJson(
    std::string_view body);

// registerBranch's flat map of strings: gid, trans_type, branch_id, data
// (the payload), and tcc's confirm and cancel or xa's url (which becomes
// both), and dtx's "protocol" (the transaction's, which the URLs are
// checked against; "http" when absent, as dtm's SDKs send none over HTTP).
// Every value must be a string; dtm ignores "op" here and so does this.
DTX_HTTP_EXPORT Result<BranchRegistration> DecodeDtmBranchJson(
    std::string_view body);
DTX_HTTP_EXPORT std::string EncodeDtmBranchJson(
    const BranchRegistration& branch);

// A coordinator's answer as dtm's HTTP API sends it: 200
// {"dtm_result":"SUCCESS"}, kAborted 409 {"dtm_result":"FAILURE",
// "message":...}, kFailedPrecondition 425 {"dtm_result":"ONGOING",...};
// for what dtm answers 500, dtx says what happened: kInvalidArgument 400,
// kNotFound 404, kResourceExhausted 413, kUnimplemented 501, kUnavailable
// 503, kDeadlineExceeded 504, anything else 500, each {"message":...}.
DTX_HTTP_EXPORT HttpResponse DtmHttpAnswer(const Status& status);

// The other way, as a client reads dtm's (or dtx-server's) answer: 200 is
// OK unless its body is {"dtm_result":"FAILURE",...} (how dtm before v1.10
// answered FAILURE: kAborted). dtmcli looks for the word FAILURE anywhere in
// the body; a gid or message that happens to contain it is no failure here.
// 409 is kAborted, 425 kFailedPrecondition, and the codes of DtmHttpAnswer
// map back to theirs (500 kInternal, any other status kUnknown). The
// message is the body's "message" (or "error") when it is JSON, else the
// body itself (cut to 1 KiB).
DTX_HTTP_EXPORT Status DtmStatusFromHttp(int http_status,
                                         std::string_view body);

}  // namespace dtx

#endif  // DTX_TRANSPORT_DTM_HTTP_JSON_H_
