#!/usr/bin/env python3
"""An HTTP branch service in Python, written to dtm's HTTP conventions.

Plain http.server handlers, as dtm's Python examples write them with Flask:
each reads the branch identity from the query string into dtm's own
dtmcli.barrier.BranchBarrier (its constructor needs no database) and answers
200 {"dtm_result":"SUCCESS"}, 409 {"dtm_result":"FAILURE"} or 425
{"dtm_result":"ONGOING"}. It keeps no balances: it records every call in
memory for the driver (sdk_app.py) to read back.

  http_busi.py [--port 0]

Prints "listening on 127.0.0.1:<port>", then one line per call.

  POST|GET /api/busi/<handler>   TransOut, TransOutCompensate, TransInTry, ...
  GET  /api/ctl/calls?gid=G      the calls recorded for G, in arrival order
  POST /api/ctl/prepared?gid=G&result=R
                                 what QueryPrepared answers for G (SUCCESS,
                                 the default, FAILURE or ONGOING)

A branch's JSON body may name the handler that answers FAILURE
({"fail": "TransIn"}), or that answers it as services written for dtm before
v1.10 do, with a 200 whose body says FAILURE ({"fail_with_200": "TransIn"}).
A query without gid, trans_type, branch_id or op is
recorded with status 400 and answered 400.
"""

import argparse
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dtmcli import barrier

_lock = threading.Lock()
_calls = {}     # gid -> [call]
_prepared = {}  # gid -> QueryPrepared's answer

_ANSWERS = {"SUCCESS": 200, "FAILURE": 409, "ONGOING": 425}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as dtm's callers expect

    def log_message(self, fmt, *args):  # one line per call is printed below
        pass

    def _reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if url.path == "/api/ctl/calls":
            with _lock:
                calls = list(_calls.get(query.get("gid", ""), []))
            return self._reply(200, calls)
        if url.path == "/api/ctl/prepared":
            if query.get("result") not in _ANSWERS or not query.get("gid"):
                return self._reply(400, {"error": "gid=G&result=SUCCESS|FAILURE|ONGOING"})
            with _lock:
                _prepared[query["gid"]] = query["result"]
            return self._reply(200, {"dtm_result": "SUCCESS"})
        if not url.path.startswith("/api/busi/"):
            return self._reply(404, {"error": "no route " + url.path})

        handler = url.path[len("/api/busi/"):]
        call = {
            "handler": handler,
            "method": self.command,
            "query": query,
            "body": body,
            "content_type": self.headers.get("Content-Type", ""),
            "headers": {k: v for k, v in self.headers.items() if k.lower().startswith("x-compat-")},
        }
        b = barrier.BranchBarrier(query.get("trans_type", ""), query.get("gid", ""),
                                  query.get("branch_id", ""), query.get("op", ""))
        if not (b.trans_type and b.gid and b.branch_id and b.op):
            call["status"] = 400
            self._record(query.get("gid", ""), call)
            print("BAD-QUERY %s %s" % (self.command, self.path), flush=True)
            return self._reply(400, {"error": "incomplete branch query: " + url.query})

        result, code = "SUCCESS", None
        if handler == "QueryPrepared":
            with _lock:
                result = _prepared.get(b.gid, "SUCCESS")
        elif body:
            try:
                req = json.loads(body)
            except ValueError:
                return self._reply(400, {"error": "body is not JSON"})
            if req.get("fail") == handler:
                result = "FAILURE"
            elif req.get("fail_with_200") == handler:
                result, code = "FAILURE", 200
        call["status"] = code or _ANSWERS[result]
        self._record(b.gid, call)
        print("%s %s gid=%s trans_type=%s branch_id=%s op=%s -> %d" %
              (self.command, handler, b.gid, b.trans_type, b.branch_id, b.op,
               call["status"]), flush=True)
        self._reply(call["status"], {"dtm_result": result})

    def _record(self, gid, call):
        with _lock:
            _calls.setdefault(gid, []).append(call)

    do_GET = _handle
    do_POST = _handle


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
