// dtm's HTTP API for transactions, served by dtx-server on its HTTP port
// next to the admin routes of admin_http.h, with dtm's paths, request bodies
// (dtx/transport/dtm_http_json.h) and answers, so that dtm's SDKs over HTTP
// (dtmcli for Go, Python, Java, PHP, C#, Node) and HttpDtmClient work
// against dtx-server as against dtm (docs/http-api.md):
//
//   GET  /api/dtmsvr/newGid           {"gid":"...","dtm_result":"SUCCESS"}
//   POST /api/dtmsvr/prepare          trans JSON -> {"dtm_result":"SUCCESS"}
//   POST /api/dtmsvr/submit           trans JSON -> the same
//   POST /api/dtmsvr/abort            trans JSON -> the same
//   POST /api/dtmsvr/registerBranch   flat string map -> the same (also at
//        /api/dtmsvr/registerTccBranch and registerXaBranch, dtm's aliases
//        for old SDKs; the body's trans_type decides, as in dtm)
//   POST /api/json-rpc                dtm's JSON-RPC 2.0 form of the five
//
// Answers: 409 FAILURE, 425 ONGOING, and for what dtm answers 500 the code
// that says what happened: 400 for a malformed body (naming the field; the
// coordinator is not called, so nothing is written), 404 unknown gid, 413 a
// payload over its limit, 501 what dtx does not support yet, 503 shutting
// down (DtmHttpAnswer). dtm's topic, workflow and KV routes (subscribe,
// unsubscribe, DELETE topic/<name>, prepareWorkflow, scanKV, queryKV) and
// resetCronTime answer 501 {"message":"dtx does not support ... yet"}: any
// dtm SDK reports a non-200 answer as the call's error, and 501 tells an
// operator that retrying cannot help.
//
// Every handler hands its request to DtmApi's callback form and answers
// from the callback, so a WaitResult Submit holds a responder, never an io
// thread.
//
// Thread safety: the handlers are thread-safe.

#ifndef DTX_SERVER_SRC_DTM_HTTP_API_H_
#define DTX_SERVER_SRC_DTM_HTTP_API_H_

#include "dtx/dtm_api.h"
#include "dtx/logger.h"
#include "dtx/status.h"
#include "dtx/transport/http_router.h"

#include <memory>

namespace dtx::server {

struct DtmHttpApiOptions {
  // Requests that dtx cannot serve (faults, not answers such as FAILURE)
  // are logged at warn, the others at debug. Null: no logging.
  std::shared_ptr<Logger> logger;
};

// Adds the routes above to `router`. kInvalidArgument when `dtm` is null.
// REQUIRES: `dtm` outlives every handler the router builds (the HTTP server
// is shut down before the coordinator).
Status AddDtmApiRoutes(HttpRouter& router, DtmApi* dtm,
                       const DtmHttpApiOptions& options);

}  // namespace dtx::server

#endif  // DTX_SERVER_SRC_DTM_HTTP_API_H_
