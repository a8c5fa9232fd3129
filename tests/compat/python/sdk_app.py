#!/usr/bin/env python3
"""dtm's Python SDK (dtmcli from PyPI) against a coordinator's HTTP API.

Each case runs one transaction with dtmcli against http_busi.py, then checks
the final status and branch rows through GET /api/dtmsvr/query and every
call the branch service saw (handler, method, gid, trans_type, branch_id, op,
body). Prints "OK <case> gid=<gid>" per case; a mismatch prints
"FAIL <case> ...", the query answer and the calls. Exit 0 when every case
passed, 1 otherwise.

  sdk_app.py --dtm http://127.0.0.1:<port>/api/dtmsvr --busi http://127.0.0.1:<port>
"""

import argparse
import json
import sys
import time
import traceback

import requests
from dtmcli import msg, saga, tcc, utils

ARGS = None
OK_REQ = {"amount": 30, "user_id": 1}
EXCHANGES = []  # every request the SDK made in the current case, with its answer


def _recording(request):
    def wrapper(method, url, **kwargs):
        r = request(method, url, **kwargs)
        body = kwargs.get("json")
        EXCHANGES.append("%s %s%s%s -> %d %s" % (
            method.upper(), r.url, " " if body is not None else "",
            json.dumps(body) if body is not None else "", r.status_code, r.text.strip()))
        return r
    return wrapper


# dtmcli calls requests.get/post, which go through requests.api.request.
requests.api.request = _recording(requests.api.request)


class Mismatch(Exception):
    pass


class Case:
    def __init__(self, name):
        self.name = name
        self.gid = utils.gen_gid(ARGS.dtm)
        self.last_query = None
        self.last_calls = None

    def busi(self, handler):
        return ARGS.busi + "/api/busi/" + handler

    def query(self):
        r = requests.get(ARGS.dtm + "/query", params={"gid": self.gid}, timeout=10)
        self.last_query = r.text
        if r.status_code != 200:
            raise Mismatch("query: %d %s" % (r.status_code, r.text))
        return r.json()

    def wait_status(self, status):
        deadline = time.time() + ARGS.wait
        while True:
            q = self.query()
            got = (q.get("transaction") or {}).get("status")
            if got == status:
                return q
            if time.time() > deadline:
                raise Mismatch("status %r after %d s, want %r" % (got, ARGS.wait, status))
            time.sleep(0.1)

    def calls(self, n=0):
        """The calls http_busi saw for the gid, waiting for at least n."""
        deadline = time.time() + ARGS.wait
        while True:
            r = requests.get(ARGS.busi + "/api/ctl/calls", params={"gid": self.gid}, timeout=10)
            self.last_calls = r.text
            calls = r.json()
            if len(calls) >= n or time.time() > deadline:
                return calls
            time.sleep(0.05)

    def check_trans(self, q, trans_type, status):
        t = q.get("transaction")
        if not t:
            raise Mismatch("query: no transaction")
        got = (t.get("gid"), t.get("trans_type"), t.get("status"))
        if got != (self.gid, trans_type, status):
            raise Mismatch("query: %r, want %r" % (got, (self.gid, trans_type, status)))
        if t.get("protocol") != "http":
            raise Mismatch("query: protocol %r, want 'http' (dtmcli sends null)" % t.get("protocol"))

    def check_branches(self, q, rows):
        got = {}
        for b in q.get("branches") or []:
            got["%s %s" % (b.get("branch_id"), b.get("op"))] = b.get("status")
        if got != rows:
            raise Mismatch("query: branch rows %r, want %r" % (got, rows))

    def check_calls(self, calls, trans_type, wants):
        """wants: (handler, op, branch_id, status, body) per call, in order."""
        if len(calls) != len(wants):
            raise Mismatch("http_busi saw %d calls, want %d" % (len(calls), len(wants)))
        for i, (c, w) in enumerate(zip(calls, wants)):
            handler, op, branch_id, status, body = w
            q = c["query"]
            got = (c["handler"], q.get("op"), q.get("branch_id"), c["status"])
            if got != (handler, op, branch_id, status):
                raise Mismatch("call %d: %r, want %r" % (i + 1, got, (handler, op, branch_id, status)))
            if q.get("gid") != self.gid or q.get("trans_type") != trans_type:
                raise Mismatch("call %d: gid=%r trans_type=%r" % (i + 1, q.get("gid"), q.get("trans_type")))
            if body is None:
                if c["method"] != "GET" or c["body"]:
                    raise Mismatch("call %d: %s with body %r, want GET with none" % (i + 1, c["method"], c["body"]))
                continue
            if c["method"] != "POST":
                raise Mismatch("call %d: method %s, want POST" % (i + 1, c["method"]))
            if json.loads(c["body"] or "null") != body:
                raise Mismatch("call %d: body %r, want %r" % (i + 1, c["body"], body))
            if not c["content_type"].startswith("application/json"):
                raise Mismatch("call %d: Content-Type %r" % (i + 1, c["content_type"]))


def case_saga(t):
    s = saga.Saga(ARGS.dtm, t.gid)
    s.add(OK_REQ, t.busi("TransOut"), t.busi("TransOutCompensate"))
    s.add(OK_REQ, t.busi("TransIn"), t.busi("TransInCompensate"))
    s.trans_base.wait_result = True
    s.submit()
    q = t.wait_status("succeed")
    t.check_trans(q, "saga", "succeed")
    t.check_branches(q, {"01 action": "succeed", "01 compensate": "prepared",
                         "02 action": "succeed", "02 compensate": "prepared"})
    t.check_calls(t.calls(2), "saga", [("TransOut", "action", "01", 200, OK_REQ),
                                       ("TransIn", "action", "02", 200, OK_REQ)])


def case_saga_rollback(t):
    refused = dict(OK_REQ, fail="TransIn")
    s = saga.Saga(ARGS.dtm, t.gid)
    s.add(OK_REQ, t.busi("TransOut"), t.busi("TransOutCompensate"))
    s.add(refused, t.busi("TransIn"), t.busi("TransInCompensate"))
    s.trans_base.wait_result = True
    try:
        s.submit()
        raise Mismatch("submit: no error, want FAILURE (HTTP 409)")
    except utils.DTMFailureError:
        pass
    q = t.wait_status("failed")
    t.check_trans(q, "saga", "failed")
    t.check_branches(q, {"01 action": "succeed", "01 compensate": "succeed",
                         "02 action": "failed", "02 compensate": "succeed"})
    t.check_calls(t.calls(4), "saga", [("TransOut", "action", "01", 200, OK_REQ),
                                       ("TransIn", "action", "02", 409, refused),
                                       ("TransInCompensate", "compensate", "02", 200, refused),
                                       ("TransOutCompensate", "compensate", "01", 200, OK_REQ)])


def case_saga_rollback_200(t):
    # A service written for dtm before v1.10 answers FAILURE with a 200
    # whose body says so: the saga rolls back all the same.
    refused = dict(OK_REQ, fail_with_200="TransIn")
    s = saga.Saga(ARGS.dtm, t.gid)
    s.add(OK_REQ, t.busi("TransOut"), t.busi("TransOutCompensate"))
    s.add(refused, t.busi("TransIn"), t.busi("TransInCompensate"))
    s.trans_base.wait_result = True
    try:
        s.submit()
        raise Mismatch("submit: no error, want FAILURE (HTTP 409)")
    except utils.DTMFailureError:
        pass
    q = t.wait_status("failed")
    t.check_trans(q, "saga", "failed")
    t.check_calls(t.calls(4), "saga", [("TransOut", "action", "01", 200, OK_REQ),
                                       ("TransIn", "action", "02", 200, refused),
                                       ("TransInCompensate", "compensate", "02", 200, refused),
                                       ("TransOutCompensate", "compensate", "01", 200, OK_REQ)])


def tcc_branches(t, trans_in):
    def body(tc):
        tc.call_branch(OK_REQ, t.busi("TransOutTry"), t.busi("TransOutConfirm"), t.busi("TransOutCancel"))
        tc.call_branch(trans_in, t.busi("TransInTry"), t.busi("TransInConfirm"), t.busi("TransInCancel"))
    return body


def case_tcc(t):
    gid = tcc.tcc_global_transaction(ARGS.dtm, t.gid, tcc_branches(t, OK_REQ))
    if gid != t.gid:
        raise Mismatch("tcc_global_transaction returned %r, want the gid" % gid)
    q = t.wait_status("succeed")
    t.check_trans(q, "tcc", "succeed")
    t.check_branches(q, {"01 confirm": "succeed", "01 cancel": "prepared",
                         "02 confirm": "succeed", "02 cancel": "prepared"})
    t.check_calls(t.calls(4), "tcc", [("TransOutTry", "try", "01", 200, OK_REQ),
                                      ("TransInTry", "try", "02", 200, OK_REQ),
                                      ("TransInConfirm", "confirm", "02", 200, OK_REQ),
                                      ("TransOutConfirm", "confirm", "01", 200, OK_REQ)])


def case_tcc_cancel(t):
    refused = dict(OK_REQ, fail="TransInTry")
    # The SDK prints the try's exception, aborts and returns "".
    gid = tcc.tcc_global_transaction(ARGS.dtm, t.gid, tcc_branches(t, refused))
    if gid != "":
        raise Mismatch("tcc_global_transaction returned %r, want '' (aborted)" % gid)
    q = t.wait_status("failed")
    t.check_trans(q, "tcc", "failed")
    t.check_branches(q, {"01 confirm": "prepared", "01 cancel": "succeed",
                         "02 confirm": "prepared", "02 cancel": "succeed"})
    t.check_calls(t.calls(4), "tcc", [("TransOutTry", "try", "01", 200, OK_REQ),
                                      ("TransInTry", "try", "02", 409, refused),
                                      ("TransInCancel", "cancel", "02", 200, refused),
                                      ("TransOutCancel", "cancel", "01", 200, OK_REQ)])


def case_msg_do_and_submit(t):
    # The local part raises: the SDK asks QueryPrepared itself (SUCCESS), then submits.
    m = msg.Msg(ARGS.dtm, t.gid)
    m.add(OK_REQ, t.busi("TransIn"))

    def local(bb):
        if (bb.gid, bb.branch_id, bb.op) != (t.gid, "00", "msg"):
            raise Mismatch("do_and_submit's barrier: %r" % vars(bb))
        raise RuntimeError("local commit: connection lost")
    try:
        m.do_and_submit(t.busi("QueryPrepared"), local)
        raise Mismatch("do_and_submit: no error, want the local one back")
    except RuntimeError:
        pass
    t.check_trans(t.wait_status("succeed"), "msg", "succeed")
    t.check_calls(t.calls(2), "msg", [("QueryPrepared", "msg", "00", 200, None),
                                      ("TransIn", "action", "01", 200, OK_REQ)])


CASES = [("saga", case_saga), ("saga-rollback", case_saga_rollback),
         ("saga-rollback-200", case_saga_rollback_200), ("tcc", case_tcc),
         ("tcc-cancel", case_tcc_cancel), ("msg-do-and-submit", case_msg_do_and_submit)]


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtm", required=True, help="http://host:port/api/dtmsvr")
    parser.add_argument("--busi", required=True, help="http_busi.py's base URL")
    parser.add_argument("--wait", type=int, default=30, help="seconds to wait for a final status")
    ARGS = parser.parse_args()
    passed = failed = 0
    for name, fn in CASES:
        t = None
        del EXCHANGES[:]
        try:
            t = Case(name)
            fn(t)
            print("OK %s gid=%s" % (name, t.gid), flush=True)
            passed += 1
        except Exception as e:  # a Mismatch, or the SDK's own error
            failed += 1
            print("FAIL %s gid=%s: %s" % (name, t.gid if t else "-", e), flush=True)
            if not isinstance(e, Mismatch):
                traceback.print_exc(file=sys.stdout)
            if t and t.last_query:
                print("  last query answer: %s" % t.last_query)
            if t and t.last_calls:
                print("  calls http_busi saw: %s" % t.last_calls)
            print("  the SDK's requests and answers:")
            for e in EXCHANGES:
                print("    " + e)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
