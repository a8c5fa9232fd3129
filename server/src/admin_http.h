// dtm's admin HTTP API, served by dtx-server on its HTTP port, with dtm's
// paths and JSON and a few additions of dtx's (docs/operations.md, "Admin
// HTTP API"):
//
//   GET  /api/dtmsvr/version            {"version":"<dtx's version>"}
//   GET  /api/dtmsvr/query?gid=G {"transaction":{...}|null,"branches":[...]}
//   GET  /api/dtmsvr/all?... {"transactions":[...],"next_position":"..."} POST
//   /api/dtmsvr/forceStop          {"gid":G} -> {"dtm_result":"SUCCESS"} POST
//   /api/dtmsvr/resetNextCronTime  {"gid":G} -> {"dtm_result":"SUCCESS"} POST
//   /api/dtx/retryNow              {"gid":G} -> {"dtm_result":"SUCCESS"} GET
//   /api/dtx/stats                 counts by status and the unfinished
//
// Errors: 400 for a bad parameter or body (naming it), 401 for a missing or
// wrong bearer token, 403 while the admin API is closed (AdminHttpOptions), 404
// for an unknown gid, 409 with dtm's FAILURE body for a finished transaction,
// 503 while the coordinator shuts down; bodies are dtm's {"message":"..."}
// ({"dtm_result":"FAILURE","message":"..."} for 409).
//
// Every handler hands its request to the coordinator's callback API and
// answers from the callback: no thread waits for a request.
//
// Thread safety: the handlers are thread-safe.

#ifndef DTX_SERVER_SRC_ADMIN_HTTP_H_
#define DTX_SERVER_SRC_ADMIN_HTTP_H_

#include "dtx/coordinator.h"
#include "dtx/model.h"
#include "dtx/status.h"
#include "dtx/transport/http_router.h"

#include <string>

namespace dtx::server {

struct AdminHttpOptions {
  // Admin.Token. When non-empty, every endpoint above but version needs
  // "Authorization: Bearer <admin_token>" (401 otherwise). Empty: every
  // endpoint is open, as dtm's, unless `closed`.
  std::string admin_token;
  // With no admin_token: every endpoint but version answers 403 saying how
  // to open it (dtx-server beyond loopback without Admin.Token or
  // Admin.Open).
  bool closed = false;
};

// Adds the routes above to `router`. kInvalidArgument when `coordinator` is
// null (route errors are reported by router.Build()).
// REQUIRES: `coordinator` outlives every handler the router builds (the HTTP
// server is shut down before the coordinator).
Status AddAdminRoutes(HttpRouter& router, Coordinator* coordinator,
                      const AdminHttpOptions& options);

// Whether `host` (GrpcHost, where dtx-server's listeners bind) is reachable
// from this machine only: localhost, 127.x.y.z, ::1 (bracketed or not).
// Beyond loopback without Admin.Token, dtx-server closes its admin API
// unless Admin.Open.
bool IsLoopbackHost(std::string host);

// RFC 3339 with the server's UTC offset and milliseconds when not zero, as
// dtm's JSON shows times: "2026-12-02T10:11:12.345+01:00" ("Z" at offset 0).
std::string Rfc3339(TimePoint time);

}  // namespace dtx::server

#endif  // DTX_SERVER_SRC_ADMIN_HTTP_H_
