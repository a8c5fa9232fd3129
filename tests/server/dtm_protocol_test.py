#!/usr/bin/env python3
"""A client in another language speaks dtm's gRPC protocol to dtx-server.

The client is Python with grpcio and protobuf only: the messages come from
dtm's proto (transport/proto/dtm/dtmgimp.proto, dtm's field numbers), compiled
with `protoc --python_out` into a temporary directory at test time, and the
calls go through `channel.unary_unary('/dtmgimp.Dtm/...')` without generated
stubs. A Python gRPC service on 127.0.0.1 plays the branches (`busi.Busi`),
records every call dtx-server makes with its metadata and payload, and can be
told to answer ABORTED.

Every test starts its own dtx-server (temporary config and journal, ephemeral
port) and stops it with SIGTERM, expecting exit code 0.

Usage:
  dtm_protocol_test.py --server PATH/dtx-server [--proto-dir transport/proto]
                       [unittest arguments, e.g. -v or a test name]
  (or DTX_SERVER / DTX_PROTO_DIR in the environment;
   DTX_TEST_SHOW_SERVER_LOG=1 prints each server's output when it stops)

Exit codes: 0 passed, 1 failed, 77 skipped (no grpc/protobuf module for
Python or no protoc; under CI=true that is a failure instead).
"""

import argparse
import glob
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import prereq  # noqa: E402  (tests/testing/prereq.py)

REEXEC_GUARD = "DTX_PROTOCOL_TEST_REEXEC"


# gRPC's fork handlers are not needed (subprocesses exec at once) and only warn.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
try:
    import grpc
    from google.protobuf import empty_pb2
except ImportError as import_error:
    # `python3` may be a Python without Debian's modules (pyenv, venv): try the
    # system one once before giving up.
    prereq.reexec_with_system_python(REEXEC_GUARD)
    prereq.unavailable("dtm_protocol_test", "Python modules grpc and google.protobuf are needed "
                                            "(Debian: python3-grpcio python3-protobuf): %s" % import_error)

RPC_TIMEOUT_S = 20.0       # every call to dtx-server or the branch service
START_TIMEOUT_S = 30.0     # until dtx-server prints its address
STOP_TIMEOUT_S = 15.0      # SIGTERM to exit
POLL_DEADLINE_S = 20.0     # waiting for background processing (cron)
BUSI_SERVICE = "busi.Busi"
BUSI_METHODS = ("TransOut", "TransIn", "TransOutRevert", "TransInRevert",
                "TransOutConfirm", "TransInConfirm", "TransOutCancel",
                "TransInCancel", "QueryPrepared")
LISTENING = re.compile(r"dtx-server: listening on (\S+):(\d+)")
HTTP_LISTENING = re.compile(r"dtx-server: http listening on (\S+):(\d+)")

ARGS = None   # parsed command line
PB = None     # generated modules: PB.dtm, PB.admin


class Generated(object):
    """dtm's and dtx's protos compiled for Python into a temporary directory."""

    def __init__(self, proto_dir, out_dir):
        protoc = shutil.which("protoc")
        if not protoc:
            prereq.unavailable("dtm_protocol_test", "protoc is needed (Debian: protobuf-compiler)")
        includes = ["-I" + proto_dir]
        if os.path.exists("/usr/include/google/protobuf/empty.proto"):
            includes.append("-I/usr/include")
        cmd = [protoc] + includes + ["--python_out=" + out_dir,
                                     "dtm/dtmgimp.proto", "dtx/admin.proto"]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        if done.returncode != 0:
            raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), done.stdout))
        for package in ("dtm", "dtx"):
            open(os.path.join(out_dir, package, "__init__.py"), "a").close()
        sys.path.insert(0, out_dir)
        from dtm import dtmgimp_pb2
        from dtx import admin_pb2
        self.dtm = dtmgimp_pb2
        self.admin = admin_pb2


# --- the branch service --------------------------------------------------------

class Call(object):
    def __init__(self, method, metadata, payload):
        self.method = method
        self.metadata = metadata
        self.payload = payload
        self.time = time.monotonic()

    @property
    def gid(self):
        return self.metadata.get("dtm-gid")

    @property
    def op(self):
        return self.metadata.get("dtm-op")

    @property
    def branch_id(self):
        return self.metadata.get("dtm-branch_id")

    @property
    def trans_type(self):
        return self.metadata.get("dtm-trans_type")

    def __repr__(self):
        return "Call(%s %r %r)" % (self.method, self.metadata, self.payload)


class BusiService(object):
    """busi.Busi over raw bytes: records calls, answers OK unless told otherwise."""

    def __init__(self):
        self._lock = threading.Lock()
        self._calls = []
        self._answers = {}   # (gid, method) -> (grpc.StatusCode, message)
        self._delays = {}    # method -> seconds every call of it takes
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
        handlers = {}
        for method in BUSI_METHODS:
            handlers[method] = grpc.unary_unary_rpc_method_handler(
                self._handler(method))  # no (de)serializers: raw bytes
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(BUSI_SERVICE, handlers),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise RuntimeError("cannot bind the branch service on 127.0.0.1:0")
        self._server.start()

    def url(self, method):
        return "127.0.0.1:%d/%s/%s" % (self.port, BUSI_SERVICE, method)

    def fail(self, gid, method, code=grpc.StatusCode.ABORTED, message="FAILURE"):
        with self._lock:
            self._answers[(gid, method)] = (code, message)

    def slow(self, method, seconds):
        """Every later call of `method` answers after `seconds`."""
        with self._lock:
            self._delays[method] = seconds

    def all_calls(self):
        with self._lock:
            return list(self._calls)

    def calls(self, gid, op=None):
        with self._lock:
            return [c for c in self._calls
                    if c.gid == gid and (op is None or c.op == op)]

    def stop(self):
        self._server.stop(grace=None).wait(5)

    def _handler(self, method):
        def handle(request, context):
            metadata = {}
            for key, value in context.invocation_metadata():
                metadata[key] = value
            with self._lock:
                self._calls.append(Call(method, metadata, request))
                answer = self._answers.get((metadata.get("dtm-gid"), method))
                delay = self._delays.get(method)
            if delay:
                time.sleep(delay)
            if answer is not None:
                context.abort(answer[0], answer[1])
            return b""
        return handle


# --- dtx-server ----------------------------------------------------------------

class ServerProcess(object):
    """One dtx-server child with its own config and journal."""

    def __init__(self, binary, work_dir, journal_path, extra_config="",
                 host="127.0.0.1"):
        self.work_dir = work_dir
        self.config_path = os.path.join(work_dir, "conf.yml")
        with open(self.config_path, "w") as f:
            f.write("RetryInterval: 1\n"
                    "TimeoutToFail: 2\n"
                    "RequestTimeout: 3\n"
                    "TransCronInterval: 1\n"
                    "LogLevel: info\n"
                    "Store:\n"
                    "  Driver: sqlite\n"
                    "  Path: %s\n" % journal_path + extra_config)
        self.stderr_path = os.path.join(work_dir, "dtx-server.%d.stderr" % id(self))
        self._stdout_lines = []
        self._lines = queue.Queue()
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "-c", self.config_path, "--grpc-host", host,
             "--grpc-port", "0", "--http-port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self.address = self._wait_listening()
        # The HTTP line follows the gRPC one (main.cc).
        self.http_port = int(self._wait_listening(HTTP_LISTENING).split(":")[-1])

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self, pattern=LISTENING):
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError("dtx-server did not print its address within "
                                     "%.0f s\n%s" % (START_TIMEOUT_S, self.output()))
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(5)
                self._close()
                raise AssertionError("dtx-server exited with %s before serving\n%s"
                                     % (self.proc.returncode, self.output()))
            match = pattern.search(line)
            if match:
                return "%s:%s" % (match.group(1), match.group(2))

    def output(self):
        try:
            with open(self.stderr_path, "rb") as f:
                err = f.read().decode("utf-8", "replace")
        except OSError:
            err = ""
        return ("--- dtx-server stdout ---\n%s\n--- dtx-server stderr (last 8000 "
                "chars) ---\n%s" % ("\n".join(self._stdout_lines), err[-8000:]))

    def terminate(self):
        """SIGTERM; returns the exit code, or None if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close()

    def _close(self):
        self._reader.join(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.close()


class DtmClient(object):
    """dtmgimp.Dtm and dtx.admin.v1.Admin without generated stubs."""

    def __init__(self, address):
        self.channel = grpc.insecure_channel(address)
        dtm, admin, empty = PB.dtm, PB.admin, empty_pb2.Empty

        def rpc(name, request, reply):
            return self.channel.unary_unary(
                name, request_serializer=request.SerializeToString,
                response_deserializer=reply.FromString)

        self.NewGid = rpc("/dtmgimp.Dtm/NewGid", empty, dtm.DtmGidReply)
        self.Submit = rpc("/dtmgimp.Dtm/Submit", dtm.DtmRequest, empty)
        self.Prepare = rpc("/dtmgimp.Dtm/Prepare", dtm.DtmRequest, empty)
        self.Abort = rpc("/dtmgimp.Dtm/Abort", dtm.DtmRequest, empty)
        self.RegisterBranch = rpc("/dtmgimp.Dtm/RegisterBranch",
                                  dtm.DtmBranchRequest, empty)
        self.PrepareWorkflow = rpc("/dtmgimp.Dtm/PrepareWorkflow", dtm.DtmRequest,
                                   dtm.DtmProgressesReply)
        self.Subscribe = rpc("/dtmgimp.Dtm/Subscribe", dtm.DtmTopicRequest, empty)
        self.Query = rpc("/dtx.admin.v1.Admin/Query", admin.QueryRequest,
                         admin.QueryReply)
        self.List = rpc("/dtx.admin.v1.Admin/List", admin.ListRequest,
                        admin.ListReply)

    def close(self):
        self.channel.close()


def raw_call(channel, method, payload, metadata):
    """Calls a branch as a dtm SDK does (raw bytes, dtm's metadata)."""
    return channel.unary_unary(method)(payload, metadata=metadata,
                                       timeout=RPC_TIMEOUT_S)


# --- tests ---------------------------------------------------------------------

class ServerTestCase(unittest.TestCase):
    """Starts a branch service and a fresh dtx-server for every test."""

    def setUp(self):
        self.work_dir = tempfile.mkdtemp(prefix="dtx-dtm-protocol-")
        self.addCleanup(shutil.rmtree, self.work_dir, True)
        self.journal = os.path.join(self.work_dir, "journal.db")
        self.busi = BusiService()
        self.addCleanup(self.busi.stop)
        self.server = None
        self.client = None
        self.start_server()

    def start_server(self, extra_config="", host="127.0.0.1"):
        self.server = ServerProcess(ARGS.server, self.work_dir, self.journal,
                                    extra_config, host)
        address = self.server.address
        if address.startswith("0.0.0.0:"):
            address = "127.0.0.1:" + address.split(":")[1]
        self.client = DtmClient(address)

    def restart_server(self, extra_config="", host="127.0.0.1"):
        self.stop_server()
        self.start_server(extra_config, host)

    def stop_server(self):
        """SIGTERM; asserts a graceful exit with code 0."""
        server, self.server = self.server, None
        if self.client is not None:
            self.client.close()
            self.client = None
        if server is None:
            return
        code = server.terminate()
        if os.environ.get("DTX_TEST_SHOW_SERVER_LOG"):
            sys.stderr.write("\n%s\n" % server.output())
        self.assertEqual(code, 0, "dtx-server did not exit 0 on SIGTERM (None: "
                         "still running after %.0f s, killed)\n%s"
                         % (STOP_TIMEOUT_S, server.output()))

    def tearDown(self):
        server = self.server
        try:
            self.stop_server()
        finally:
            if server is not None:
                server.kill()   # no-op unless it is still running

    # -- helpers --

    def new_gid(self):
        gid = self.client.NewGid(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S).Gid
        self.assertTrue(gid, "NewGid returned an empty gid")
        return gid

    def query(self, gid):
        return self.client.Query(PB.admin.QueryRequest(gid=gid), timeout=RPC_TIMEOUT_S)

    def wait_status(self, gid, status, deadline_s=POLL_DEADLINE_S):
        deadline = time.monotonic() + deadline_s
        while True:
            reply = self.query(gid)
            if reply.transaction.status == status:
                return reply
            if time.monotonic() > deadline:
                self.fail("transaction %s is %r after %.0f s, expected %r; calls: %r\n%s"
                          % (gid, reply.transaction.status, deadline_s, status,
                             self.busi.calls(gid), self.server.output()))
            time.sleep(0.1)

    def expect_error(self, rpc, request, codes, what):
        """Calls rpc expecting a gRPC error with one of `codes`; returns it."""
        if not isinstance(codes, tuple):
            codes = (codes,)
        try:
            rpc(request, timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as error:
            self.assertIn(error.code(), codes,
                          "%s: got %s %r, expected %s"
                          % (what, error.code(), error.details(), codes))
            self.assertTrue(error.details(), "%s: %s without a message"
                            % (what, error.code()))
            return error
        self.fail("%s: got OK, expected %s" % (what, codes))

    def branches(self, reply):
        """{(branch_id, op): Branch} of a Query reply."""
        return dict(((b.branch_id, b.op), b) for b in reply.branches)

    def steps_json(self, *steps):
        return json.dumps(list(steps))

    def saga_request(self, gid, payloads, wait_result=True, **options):
        steps = self.steps_json(
            {"action": self.busi.url("TransOut"),
             "compensate": self.busi.url("TransOutRevert")},
            {"action": self.busi.url("TransIn"),
             "compensate": self.busi.url("TransInRevert")})
        return PB.dtm.DtmRequest(
            Gid=gid, TransType="saga", Steps=steps, BinPayloads=payloads,
            TransOptions=PB.dtm.DtmTransOptions(WaitResult=wait_result, **options))

    def assert_calls(self, calls, expected, trans_type):
        """calls match expected [(method, op, branch_id, payload)] in order."""
        got = [(c.method, c.op, c.branch_id, c.payload) for c in calls]
        self.assertEqual(got, expected, "branch calls differ")
        for call in calls:
            self.assertEqual(call.trans_type, trans_type, call)
            self.assertIn("dtm-dtm", call.metadata, call)


class DtmProtocolTest(ServerTestCase):

    def test_new_gid_returns_unique_gids(self):
        gids = [self.new_gid() for _ in range(50)]
        self.assertEqual(len(set(gids)), len(gids), gids)

    def test_saga_succeeds(self):
        gid = self.new_gid()
        out = b"\x08\x1e\x00out\xff\xfe"   # protobuf-ish bytes, NUL, invalid UTF-8
        into = b"\x08\x1e\x12\x02in\x80"
        request = self.saga_request(gid, [out, into],
                                    BranchHeaders={"x-test-header": "saga-1"})
        self.client.Submit(request, timeout=RPC_TIMEOUT_S)

        calls = self.busi.calls(gid)
        self.assert_calls(calls, [("TransOut", "action", "01", out),
                                  ("TransIn", "action", "02", into)], "saga")
        for call in calls:
            self.assertEqual(call.metadata.get("x-test-header"), "saga-1",
                             "BranchHeaders not sent: %r" % call)

        reply = self.query(gid)
        self.assertEqual(reply.transaction.gid, gid)
        self.assertEqual(reply.transaction.trans_type, "saga")
        self.assertEqual(reply.transaction.status, "succeed")
        self.assertEqual(reply.transaction.protocol, "grpc")
        rows = self.branches(reply)
        self.assertEqual(sorted(rows), [("01", "action"), ("01", "compensate"),
                                        ("02", "action"), ("02", "compensate")])
        self.assertEqual(rows[("01", "action")].status, "succeed")
        self.assertEqual(rows[("02", "action")].status, "succeed")
        self.assertEqual(rows[("01", "compensate")].status, "prepared")
        self.assertEqual(rows[("02", "compensate")].status, "prepared")
        self.assertEqual(rows[("01", "action")].bin_data, out)
        self.assertEqual(rows[("02", "action")].bin_data, into)
        self.assertEqual(rows[("02", "compensate")].url, self.busi.url("TransInRevert"))

    def test_saga_action_failure_compensates_and_answers_aborted(self):
        gid = self.new_gid()
        self.busi.fail(gid, "TransIn", message="insufficient balance")
        out, into = b"\x01out", b"\x02in"
        error = self.expect_error(self.client.Submit, self.saga_request(gid, [out, into]),
                                  grpc.StatusCode.ABORTED, "WaitResult saga, TransIn ABORTED")
        self.assertIn("insufficient balance", error.details())

        # Answered after compensating: every call is already made.
        self.assert_calls(self.busi.calls(gid), [
            ("TransOut", "action", "01", out),
            ("TransIn", "action", "02", into),
            ("TransInRevert", "compensate", "02", into),
            ("TransOutRevert", "compensate", "01", out)], "saga")

        reply = self.query(gid)
        self.assertEqual(reply.transaction.status, "failed")
        self.assertIn("insufficient balance", reply.transaction.rollback_reason)
        rows = self.branches(reply)
        self.assertEqual(rows[("01", "action")].status, "succeed")
        self.assertEqual(rows[("02", "action")].status, "failed")
        self.assertEqual(rows[("01", "compensate")].status, "succeed")
        self.assertEqual(rows[("02", "compensate")].status, "succeed")

    def prepare_tcc(self, gid, payloads, fail_try=None):
        """Prepare, then RegisterBranch and the try call for each payload, as dtm's
        Go SDK does. Returns the try errors (None for OK)."""
        options = PB.dtm.DtmTransOptions(WaitResult=True, TimeoutToFail=60)
        self.client.Prepare(PB.dtm.DtmRequest(Gid=gid, TransType="tcc", Steps="null",
                                              TransOptions=options),
                            timeout=RPC_TIMEOUT_S)
        results = []
        channel = grpc.insecure_channel("127.0.0.1:%d" % self.busi.port)
        self.addCleanup(channel.close)
        for index, (name, payload) in enumerate(zip(("TransOut", "TransIn"), payloads)):
            branch_id = "%02d" % (index + 1)
            self.client.RegisterBranch(PB.dtm.DtmBranchRequest(
                Gid=gid, TransType="tcc", BranchID=branch_id, BusiPayload=payload,
                Data={"confirm": self.busi.url(name + "Confirm"),
                      "cancel": self.busi.url(name + "Cancel")}),
                timeout=RPC_TIMEOUT_S)
            if name == fail_try:
                self.busi.fail(gid, name, message="try refused")
            try:
                raw_call(channel, "/%s/%s" % (BUSI_SERVICE, name), payload,
                         (("dtm-gid", gid), ("dtm-trans_type", "tcc"),
                          ("dtm-branch_id", branch_id), ("dtm-op", "try"),
                          ("dtm-dtm", self.server.address)))
                results.append(None)
            except grpc.RpcError as error:
                results.append(error)
        return results

    def test_tcc_submit_confirms_in_reverse_order(self):
        gid = self.new_gid()
        out, into = b"\x0a\x03out", b"\x0a\x02in\x00"
        self.assertEqual(self.prepare_tcc(gid, [out, into]), [None, None])
        self.assertEqual(self.query(gid).transaction.status, "prepared")

        self.client.Submit(PB.dtm.DtmRequest(
            Gid=gid, TransType="tcc", TransOptions=PB.dtm.DtmTransOptions(WaitResult=True)),
            timeout=RPC_TIMEOUT_S)
        self.assert_calls(self.busi.calls(gid, op="confirm"), [
            ("TransInConfirm", "confirm", "02", into),
            ("TransOutConfirm", "confirm", "01", out)], "tcc")
        self.assertEqual(self.busi.calls(gid, op="cancel"), [])

        reply = self.wait_status(gid, "succeed")
        rows = self.branches(reply)
        self.assertEqual(sorted(rows), [("01", "cancel"), ("01", "confirm"),
                                        ("02", "cancel"), ("02", "confirm")])
        self.assertEqual(rows[("01", "confirm")].status, "succeed")
        self.assertEqual(rows[("02", "confirm")].status, "succeed")
        self.assertEqual(rows[("01", "cancel")].status, "prepared")
        self.assertEqual(rows[("02", "confirm")].bin_data, into)

    def test_tcc_abort_cancels_in_reverse_order_and_keeps_the_reason(self):
        gid = self.new_gid()
        out, into = b"\x0a\x03out", b"\x0a\x02in"
        tries = self.prepare_tcc(gid, [out, into], fail_try="TransIn")
        self.assertIsNone(tries[0])
        self.assertIsNotNone(tries[1])
        self.assertEqual(tries[1].code(), grpc.StatusCode.ABORTED)
        reason = "rpc error: code = Aborted desc = %s" % tries[1].details()

        self.client.Abort(PB.dtm.DtmRequest(
            Gid=gid, TransType="tcc", RollbackReason=reason,
            TransOptions=PB.dtm.DtmTransOptions(WaitResult=True)),
            timeout=RPC_TIMEOUT_S)
        reply = self.wait_status(gid, "failed")
        self.assert_calls(self.busi.calls(gid, op="cancel"), [
            ("TransInCancel", "cancel", "02", into),
            ("TransOutCancel", "cancel", "01", out)], "tcc")
        self.assertEqual(self.busi.calls(gid, op="confirm"), [])
        self.assertEqual(reply.transaction.rollback_reason, reason)

    def test_retries_of_a_succeeded_saga_answer_ok_and_other_steps_conflict(self):
        """Issue 19 item 5's reproducer: 64 concurrent re-submits of a saga
        that succeeded were 45 times ABORTED, which dtm's SDKs read as
        "rolled back". Each retry is OK now; other steps are ALREADY_EXISTS."""
        gid = self.new_gid()
        payloads = [b"\x01out", b"\x02in"]
        self.client.Submit(self.saga_request(gid, payloads), timeout=RPC_TIMEOUT_S)
        self.assertEqual(self.query(gid).transaction.status, "succeed")

        def retry(i):
            try:
                self.client.Submit(self.saga_request(gid, payloads, wait_result=i % 2 == 0),
                                   timeout=RPC_TIMEOUT_S)
                return "OK"
            except grpc.RpcError as error:
                return "%s %s" % (error.code(), error.details())
        with futures.ThreadPoolExecutor(max_workers=64) as pool:
            answers = list(pool.map(retry, range(64)))
        self.assertEqual(answers, ["OK"] * 64)

        error = self.expect_error(self.client.Submit,
                                  self.saga_request(gid, [b"\x01out", b"\x02other"]),
                                  grpc.StatusCode.ALREADY_EXISTS, "a saga with other payloads")
        self.assertIn("gid %s exists with a different step 02's payload" % gid, error.details())
        error = self.expect_error(self.client.Submit, PB.dtm.DtmRequest(
            Gid=gid, TransType="msg", Steps=self.steps_json({"action": self.busi.url("TransIn")}),
            BinPayloads=[b"\x01"]), grpc.StatusCode.ALREADY_EXISTS, "a msg under the saga's gid")
        self.assertIn("trans type 'saga', not 'msg'", error.details())
        self.assertEqual(len(self.busi.calls(gid)), 2, self.busi.calls(gid))

    def test_finished_tcc_refuses_register_submit_prepare_and_abort(self):
        gid = self.new_gid()
        self.assertEqual(self.prepare_tcc(gid, [b"\x01"]), [None])
        self.client.Submit(PB.dtm.DtmRequest(
            Gid=gid, TransType="tcc", TransOptions=PB.dtm.DtmTransOptions(WaitResult=True)),
            timeout=RPC_TIMEOUT_S)
        self.wait_status(gid, "succeed")

        aborted = grpc.StatusCode.ABORTED
        refused = grpc.StatusCode.FAILED_PRECONDITION
        self.expect_error(self.client.RegisterBranch, PB.dtm.DtmBranchRequest(
            Gid=gid, TransType="tcc", BranchID="02", BusiPayload=b"\x02",
            Data={"confirm": self.busi.url("TransInConfirm"),
                  "cancel": self.busi.url("TransInCancel")}),
            aborted, "RegisterBranch on a succeeded tcc")
        # A retry of the Submit: OK, as the first (issue 19 item 5).
        self.client.Submit(PB.dtm.DtmRequest(Gid=gid, TransType="tcc"),
                           timeout=RPC_TIMEOUT_S)
        # Requests it went past: refused, but not with ABORTED ("rolled back").
        self.expect_error(self.client.Prepare,
                          PB.dtm.DtmRequest(Gid=gid, TransType="tcc", Steps="null"),
                          refused, "Prepare of a succeeded tcc")
        self.expect_error(self.client.Abort, PB.dtm.DtmRequest(Gid=gid, TransType="tcc"),
                          refused, "Abort of a succeeded tcc")
        reply = self.query(gid)
        self.assertEqual(reply.transaction.status, "succeed")
        self.assertEqual(len(reply.branches), 2, reply)
        self.assertEqual(len(self.busi.calls(gid, op="confirm")), 1)

    def test_register_branch_on_unknown_gid_is_not_found(self):
        self.expect_error(self.client.RegisterBranch, PB.dtm.DtmBranchRequest(
            Gid="no-such-gid", TransType="tcc", BranchID="01",
            Data={"confirm": self.busi.url("TransInConfirm"),
                  "cancel": self.busi.url("TransInCancel")}),
            grpc.StatusCode.NOT_FOUND, "RegisterBranch on an unknown gid")

    def msg_request(self, gid, payloads, **options):
        steps = self.steps_json({"action": self.busi.url("TransOut")},
                                {"action": self.busi.url("TransIn")})
        return PB.dtm.DtmRequest(
            Gid=gid, TransType="msg", Steps=steps, BinPayloads=payloads,
            QueryPrepared=self.busi.url("QueryPrepared"),
            TransOptions=PB.dtm.DtmTransOptions(**options))

    def test_msg_prepare_and_submit_calls_the_actions(self):
        gid = self.new_gid()
        out, into = b"\x01msg-out", b"\x02msg-in\x00"
        request = self.msg_request(gid, [out, into], TimeoutToFail=60)
        self.client.Prepare(request, timeout=RPC_TIMEOUT_S)
        self.assertEqual(self.query(gid).transaction.status, "prepared")
        self.assertEqual(self.busi.calls(gid), [])

        request.TransOptions.WaitResult = True
        self.client.Submit(request, timeout=RPC_TIMEOUT_S)
        self.assert_calls(self.busi.calls(gid), [("TransOut", "action", "01", out),
                                                 ("TransIn", "action", "02", into)], "msg")
        reply = self.wait_status(gid, "succeed")
        rows = self.branches(reply)
        self.assertEqual(sorted(rows), [("01", "action"), ("02", "action")])
        self.assertEqual(rows[("02", "action")].bin_data, into)

    def test_prepared_msg_is_checked_back_then_its_actions_run(self):
        gid = self.new_gid()
        out, into = b"\x01checked-out", b"\x02checked-in"
        prepared_at = time.monotonic()
        self.client.Prepare(self.msg_request(gid, [out, into]), timeout=RPC_TIMEOUT_S)

        self.wait_status(gid, "succeed")
        calls = self.busi.calls(gid)
        self.assert_calls(calls, [("QueryPrepared", "msg", "00", b""),
                                  ("TransOut", "action", "01", out),
                                  ("TransIn", "action", "02", into)], "msg")
        # Not before TimeoutToFail (2 s; allow for whole-second create times).
        self.assertGreaterEqual(calls[0].time - prepared_at, 1.0,
                                "checked back before TimeoutToFail")

    def test_prepared_msg_checked_back_as_failure_fails(self):
        gid = self.new_gid()
        self.busi.fail(gid, "QueryPrepared", message="local transaction rolled back")
        self.client.Prepare(self.msg_request(gid, [b"\x01", b"\x02"]),
                            timeout=RPC_TIMEOUT_S)
        self.wait_status(gid, "failed")
        calls = self.busi.calls(gid)
        self.assertEqual([(c.method, c.op, c.branch_id) for c in calls],
                         [("QueryPrepared", "msg", "00")])

    def test_health_and_reflection_are_served(self):
        self.restart_server("GrpcReflection: true\n")
        channel = self.client.channel
        # grpc.health.v1.HealthCheckResponse{status: SERVING (1)}.
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        self.assertEqual(check(b"", timeout=RPC_TIMEOUT_S), b"\x08\x01")
        # ServerReflectionRequest{list_services: ""} (field 7); the reply
        # names every service.
        reflect = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        reply = next(iter(reflect(iter([b"\x3a\x00"]), timeout=RPC_TIMEOUT_S)))
        for service in (b"dtmgimp.Dtm", b"dtx.admin.v1.Admin", b"grpc.health.v1.Health"):
            self.assertIn(service, reply)

    def test_deleted_journal_stops_intake_and_health(self):
        # Issue 19's reproducer: `rm journal.db*` under a running server. The
        # writer used to commit into the unlinked file and answer OK.
        check = self.client.channel.unary_unary("/grpc.health.v1.Health/Check")
        before = self.new_gid()
        self.client.Submit(self.saga_request(before, [b"\x01", b"\x02"]),
                           timeout=RPC_TIMEOUT_S)
        self.wait_status(before, "succeed")
        removed = glob.glob(self.journal + "*")
        self.assertIn(self.journal, removed)
        for path in removed:
            os.remove(path)
        # From the rm on, no Submit is acknowledged; the health check turns
        # NOT_SERVING (HealthCheckResponse{status: 2}) soon after.
        deadline = time.monotonic() + POLL_DEADLINE_S
        n = 0
        while True:
            n += 1
            error = self.expect_error(
                self.client.Submit,
                self.saga_request("after-rm-%d" % n, [b"\x01", b"\x02"]),
                grpc.StatusCode.UNAVAILABLE, "Submit after rm")
            self.assertIn(self.journal, error.details())
            if check(b"", timeout=RPC_TIMEOUT_S) == b"\x08\x02":
                break
            self.assertLess(time.monotonic(), deadline,
                            "health still SERVING after the journal was deleted")
            time.sleep(0.05)
        # A gid acknowledged before is not reported missing: the store failed.
        self.expect_error(self.client.Query, PB.admin.QueryRequest(gid=before),
                          grpc.StatusCode.UNAVAILABLE, "Query after rm")
        self.assertIn("journal file is gone", self.server.output())
        self.assertFalse(os.path.exists(self.journal),
                         "the lost journal was created again")

    def test_truncated_wal_index_stops_intake_not_the_process(self):
        # Issue 19's reproducer: the -shm file becomes unusable under a running
        # server (truncated here); its next access raised SIGBUS, which killed
        # the process without a word.
        check = self.client.channel.unary_unary("/grpc.health.v1.Health/Check")
        before = self.new_gid()
        self.client.Submit(self.saga_request(before, [b"\x01", b"\x02"]),
                           timeout=RPC_TIMEOUT_S)
        self.wait_status(before, "succeed")
        shm = self.journal + "-shm"
        self.assertGreater(os.path.getsize(shm), 0)
        os.truncate(shm, 0)
        deadline = time.monotonic() + POLL_DEADLINE_S
        n = 0
        while True:
            n += 1
            self.assertIsNone(self.server.proc.poll(), "dtx-server died (exit %s)\n%s"
                              % (self.server.proc.returncode, self.server.output()))
            try:
                self.client.Submit(self.saga_request("after-shm-%d" % n, [b"\x01", b"\x02"]),
                                   timeout=RPC_TIMEOUT_S)
                acknowledged = True
            except grpc.RpcError as error:
                self.assertEqual(error.code(), grpc.StatusCode.UNAVAILABLE,
                                 "%s %r" % (error.code(), error.details()))
                acknowledged = False
            if not acknowledged and check(b"", timeout=RPC_TIMEOUT_S) == b"\x08\x02":
                break
            # The first Submit takes the fault; none is acknowledged after it.
            self.assertEqual(n, 1, "Submit %d acknowledged after the -shm was "
                             "truncated\n%s" % (n, self.server.output()))
            self.assertLess(time.monotonic(), deadline,
                            "health still SERVING after the -shm was truncated")
            time.sleep(0.05)
        self.expect_error(self.client.Query, PB.admin.QueryRequest(gid=before),
                          grpc.StatusCode.UNAVAILABLE, "Query after the fault")
        self.assertIn("WAL index", self.server.output())
        self.assertIsNone(self.server.proc.poll())
        # A restart rebuilds the index: what was acknowledged is there.
        self.restart_server()
        self.assertEqual(self.query(before).transaction.status, "succeed")

    def test_journal_files_are_owner_only(self):
        gid = self.new_gid()
        self.client.Submit(self.saga_request(gid, [b"\x01", b"\x02"]),
                           timeout=RPC_TIMEOUT_S)
        self.wait_status(gid, "succeed")
        for suffix in ("", "-wal", "-shm"):
            mode = os.stat(self.journal + suffix).st_mode & 0o777
            self.assertEqual(mode, 0o600, "%s%s is %o" % (self.journal, suffix, mode))

    def test_prepare_workflow_records_and_answers_the_progress(self):
        custom = json.dumps({"name": "transfer", "data": "AQI="})
        request = PB.dtm.DtmRequest(Gid="wf-1", TransType="workflow", Steps="null",
                                    CustomedData=custom,
                                    QueryPrepared=self.busi.url("TransIn"))
        reply = self.client.PrepareWorkflow(request, timeout=RPC_TIMEOUT_S)
        self.assertEqual(reply.Transaction.Status, "prepared")
        self.assertEqual(list(reply.Progresses), [])
        self.client.RegisterBranch(PB.dtm.DtmBranchRequest(
            Gid="wf-1", TransType="workflow", BranchID="01", BusiPayload=b"out",
            Data={"op": "action", "status": "succeed"}), timeout=RPC_TIMEOUT_S)
        again = self.client.PrepareWorkflow(request, timeout=RPC_TIMEOUT_S)
        self.assertEqual([(p.BranchID, p.Op, p.Status, p.BinData) for p in again.Progresses],
                         [("01", "action", "succeed", b"out")])
        submit = PB.dtm.DtmRequest(Gid="wf-1", TransType="workflow", Steps="null",
                                   ReqExtra={"status": "succeed", "result": "ZG9uZQ==",
                                             "rollback_reason": ""})
        self.client.Submit(submit, timeout=RPC_TIMEOUT_S)
        self.client.Submit(submit, timeout=RPC_TIMEOUT_S)  # a retry: OK
        done = self.client.PrepareWorkflow(request, timeout=RPC_TIMEOUT_S)
        self.assertEqual((done.Transaction.Status, done.Transaction.Result),
                         ("succeed", "ZG9uZQ=="))
        # No name: refused, nothing written.
        self.expect_error(self.client.PrepareWorkflow,
                          PB.dtm.DtmRequest(Gid="wf-2", TransType="workflow"),
                          grpc.StatusCode.INVALID_ARGUMENT, "name")

    def test_topics_are_unimplemented(self):
        unimplemented = grpc.StatusCode.UNIMPLEMENTED
        self.expect_error(self.client.Subscribe,
                          PB.dtm.DtmTopicRequest(Topic="t", URL=self.busi.url("TransIn")),
                          unimplemented, "Subscribe")

    def test_bad_requests_get_clear_errors_and_change_nothing(self):
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        steps = self.steps_json(
            {"action": self.busi.url("TransOut"),
             "compensate": self.busi.url("TransOutRevert")},
            {"action": self.busi.url("TransIn"),
             "compensate": self.busi.url("TransInRevert")})
        two = [b"\x01", b"\x02"]

        def saga(gid, **fields):
            request = dict(Gid=gid, TransType="saga", Steps=steps, BinPayloads=two)
            request.update(fields)
            return PB.dtm.DtmRequest(**request)

        def bad_url_saga(gid, url):
            return saga(gid, Steps=self.steps_json(
                {"action": self.busi.url("TransOut"), "compensate": ""},
                {"action": url, "compensate": ""}))

        # (what, rpc, request, codes, words: one of them in the message)
        cases = [
            ("Submit without gid", self.client.Submit, saga(""), invalid, ["gid"]),
            ("Prepare without gid", self.client.Prepare,
             PB.dtm.DtmRequest(TransType="tcc", Steps="null"), invalid, ["gid"]),
            ("RegisterBranch without gid", self.client.RegisterBranch,
             PB.dtm.DtmBranchRequest(TransType="tcc", BranchID="01", Data={
                 "confirm": self.busi.url("TransInConfirm"),
                 "cancel": self.busi.url("TransInCancel")}), invalid, ["gid"]),
            ("Submit of an unknown trans type", self.client.Submit,
             saga("bad-type", TransType="bogus"), invalid, ["bogus", "type"]),
            ("Submit without trans type", self.client.Submit,
             saga("bad-no-type", TransType=""), invalid, ["type"]),
            ("Prepare of an unknown trans type", self.client.Prepare,
             saga("bad-type-prepare", TransType="bogus"), invalid, ["bogus", "type"]),
            # dtm's, but not run by dtx yet: UNIMPLEMENTED, as Subscribe.
            ("Submit of an xa (not supported)", self.client.Submit,
             PB.dtm.DtmRequest(Gid="bad-xa", TransType="xa", Steps="null"),
             grpc.StatusCode.UNIMPLEMENTED, ["xa"]),
            ("Submit with truncated Steps JSON", self.client.Submit,
             saga("bad-json", Steps='[{"action":"' + self.busi.url("TransOut")),
             invalid, ["steps", "json"]),
            ("Submit with Steps not a JSON array", self.client.Submit,
             saga("bad-json-object", Steps='{"action":"%s"}' % self.busi.url("TransOut")),
             invalid, ["steps", "json", "array"]),
            ("Prepare of a msg with malformed Steps JSON", self.client.Prepare,
             PB.dtm.DtmRequest(Gid="bad-msg-json", TransType="msg", Steps="[{]",
                               BinPayloads=[b"\x01"],
                               QueryPrepared=self.busi.url("QueryPrepared")),
             invalid, ["steps", "json"]),
            ("Submit with 1 payload for 2 steps", self.client.Submit,
             saga("bad-lengths", BinPayloads=[b"\x01"]), invalid,
             ["payload", "steps"]),
            ("Submit with 3 payloads for 2 steps", self.client.Submit,
             saga("bad-lengths-3", BinPayloads=[b"\x01", b"\x02", b"\x03"]), invalid,
             ["payload", "steps"]),
            ("Submit with an action URL without a method", self.client.Submit,
             bad_url_saga("bad-url", "127.0.0.1:1"), invalid, ["127.0.0.1:1"]),
            ("Submit with a kubernetes:/// action URL", self.client.Submit,
             bad_url_saga("bad-scheme", "kubernetes:///busi/busi.Busi/TransIn"), invalid,
             ["kubernetes:///busi"]),
            ("Submit of a 5 MiB request", self.client.Submit,
             saga("bad-huge", BinPayloads=[b"\x01", b"x" * (5 * 1024 * 1024)]),
             (grpc.StatusCode.RESOURCE_EXHAUSTED, invalid), []),
        ]
        for what, rpc, request, codes, words in cases:
            with self.subTest(what):
                error = self.expect_error(rpc, request, codes, what)
                message = error.details().lower()
                if words:
                    self.assertTrue(any(w.lower() in message for w in words),
                                    "%s: message %r names none of %r"
                                    % (what, error.details(), words))

        # Nothing reached the journal, and no branch was called.
        listed = self.client.List(PB.admin.ListRequest(), timeout=RPC_TIMEOUT_S)
        self.assertEqual([t.gid for t in listed.transactions], [],
                         "bad requests created transactions")
        for gid in ("bad-type", "bad-no-type", "bad-type-prepare", "bad-xa", "bad-json",
                    "bad-json-object", "bad-msg-json", "bad-lengths", "bad-lengths-3",
                    "bad-url", "bad-scheme", "bad-huge"):
            self.expect_error(self.client.Query, PB.admin.QueryRequest(gid=gid),
                              grpc.StatusCode.NOT_FOUND, "Query " + gid)
        self.assertEqual(self.busi.all_calls(), [])

        # The server is still well: a good saga goes through and is listed.
        gid = self.new_gid()
        self.client.Submit(self.saga_request(gid, two), timeout=RPC_TIMEOUT_S)
        listed = self.client.List(PB.admin.ListRequest(), timeout=RPC_TIMEOUT_S)
        self.assertEqual([(t.gid, t.status) for t in listed.transactions],
                         [(gid, "succeed")])


class ShutdownTest(ServerTestCase):

    def test_sigterm_exits_zero_and_the_journal_survives(self):
        # An unfinished TCC and a finished saga when SIGTERM arrives.
        tcc = self.new_gid()
        self.client.Prepare(PB.dtm.DtmRequest(
            Gid=tcc, TransType="tcc", Steps="null",
            TransOptions=PB.dtm.DtmTransOptions(TimeoutToFail=600)),
            timeout=RPC_TIMEOUT_S)
        saga = self.new_gid()
        self.client.Submit(self.saga_request(saga, [b"\x01", b"\x02"]),
                           timeout=RPC_TIMEOUT_S)
        self.stop_server()

        self.start_server()
        self.assertEqual(self.query(tcc).transaction.status, "prepared")
        self.assertEqual(self.query(saga).transaction.status, "succeed")
        self.client.Submit(PB.dtm.DtmRequest(
            Gid=tcc, TransType="tcc", TransOptions=PB.dtm.DtmTransOptions(WaitResult=True)),
            timeout=RPC_TIMEOUT_S)
        self.wait_status(tcc, "succeed")
        self.assertEqual(len(self.busi.calls(saga)), 2)


class HostileClientTest(ServerTestCase):
    """Issue 19's attacks as a hostile client makes them (items 1, 2 and 6)."""

    TOKEN = "s3cret-admin-token"

    def http(self, method, path, body=None, token=None):
        """(status, body) of an HTTP request to the server's HttpPort."""
        import urllib.error
        import urllib.request
        request = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.server.http_port, path), method=method,
            data=None if body is None else json.dumps(body).encode())
        if token:
            request.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def admin_calls(self, gid):
        """Every admin method, as (name, callable(metadata)) pairs."""
        admin = PB.admin
        channel = self.client.channel

        def rpc(name, request, reply):
            call = channel.unary_unary(
                "/dtx.admin.v1.Admin/" + name, request_serializer=request.SerializeToString,
                response_deserializer=reply.FromString)
            return lambda metadata: call(request, metadata=metadata, timeout=RPC_TIMEOUT_S)

        empty = empty_pb2.Empty
        return [("Query", rpc("Query", admin.QueryRequest(gid=gid), admin.QueryReply)),
                ("List", rpc("List", admin.ListRequest(), admin.ListReply)),
                ("Stats", rpc("Stats", admin.StatsRequest(), admin.StatsReply)),
                ("ForceStop", rpc("ForceStop", admin.GidRequest(gid=gid), empty)),
                ("RetryNow", rpc("RetryNow", admin.GidRequest(gid=gid), empty))]

    def expect_code(self, call, code, what):
        try:
            call()
        except grpc.RpcError as error:
            self.assertEqual(error.code(), code, "%s: %s %r" % (what, error.code(),
                                                                 error.details()))
            self.assertTrue(error.details(), "%s: no message" % what)
            return error
        self.fail("%s: OK, expected %s" % (what, code))

    # -- item 7: hygiene --

    def test_requests_caught_by_shutdown_answer_unavailable_with_dtxs_message(self):
        """SIGTERM while requests wait for a slow branch and while clients
        keep sending during the grace: each answer is UNAVAILABLE with
        dtx-server's message saying what happened (gRPC's bare "Cancelling
        all calls" or CANCELLED told a client nothing)."""
        self.restart_server("ShutdownGrace: 1\n")
        self.busi.slow("TransIn", 2.5)
        waiting, late = [], []

        def call(rpc, request, into):
            try:
                rpc(request, timeout=RPC_TIMEOUT_S)
                into.append(("OK", ""))
            except grpc.RpcError as error:
                into.append((error.code(), error.details() or ""))
        threads = [threading.Thread(target=call, args=(
            self.client.Submit, self.saga_request(self.new_gid(), [b"\x01", b"\x02"]),
            waiting)) for _ in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + RPC_TIMEOUT_S
        while len(self.busi.all_calls()) < 16 and time.monotonic() < deadline:
            time.sleep(0.02)   # every saga is at its slow TransIn
        server, self.server = self.server, None
        stopper = threading.Thread(target=server.terminate)
        stopper.start()
        time.sleep(0.2)
        for i in range(6):   # during the grace, one after the other
            call(self.client.NewGid if i % 2 else self.client.Submit,
                 empty_pb2.Empty() if i % 2 else
                 self.saga_request("late-%d" % i, [b"\x01", b"\x02"]), late)
            time.sleep(0.05)
        for t in threads:
            t.join()
        stopper.join()
        self.client.close()
        self.client = None
        self.assertEqual(server.proc.returncode, 0, server.output())
        unavailable = grpc.StatusCode.UNAVAILABLE
        self.assertEqual(len(waiting), 8)
        for code, details in waiting:
            self.assertEqual(code, unavailable, details)
            self.assertIn("dtx-server: shutting down; the request did not finish within "
                          "the shutdown grace", details)
        self.assertEqual(len(late), 6)
        for code, details in late:
            self.assertEqual(code, unavailable, details)
            self.assertIn("dtx-server: shutting down; the request was not taken", details)

    def test_per_transaction_lines_are_debug_and_a_summary_counts_them(self):
        """At info, sagas write no line of their own (two per saga filled
        273 MB in five minutes); Log.SummaryInterval's line counts them and
        the backlog."""
        self.restart_server("Log:\n  SummaryInterval: 1\n")
        gids = [self.new_gid() for _ in range(3)]
        for gid in gids:
            self.client.Submit(self.saga_request(gid, [b"\x01", b"\x02"]),
                               timeout=RPC_TIMEOUT_S)
        pattern = re.compile(r"dtx-server: in the last 1 s (\d+) succeeded, (\d+) failed, "
                             r".*; backlog (\d+) unfinished \((\d+) due\)")
        deadline = time.monotonic() + POLL_DEADLINE_S
        while True:
            found = [pattern.search(line) for line in self.server.output().splitlines()]
            found = [m for m in found if m]
            if sum(int(m.group(1)) for m in found) >= 3 and found[-1].group(3) == "0":
                break
            self.assertLess(time.monotonic(), deadline, self.server.output())
            time.sleep(0.2)
        self.assertEqual(sum(int(m.group(1)) for m in found), 3, self.server.output())
        self.assertEqual(sum(int(m.group(2)) for m in found), 0)
        for gid in gids:
            self.assertNotIn("gid=" + gid, self.server.output())

    def test_a_rotated_log_file_beside_stderr(self):
        """dtm's Log.Outputs / Log.RotationEnable / Log.RotationConfigJSON:
        a file beside stderr, owner-only, rotated at maxsize keeping
        maxbackups files; a file that cannot be opened stops the start."""
        logs = os.path.join(self.work_dir, "logs")
        os.mkdir(logs)
        path = os.path.join(logs, "dtx.log")
        self.restart_server(
            "LogLevel: debug\n"
            "Log:\n"
            "  Outputs: stderr, %s\n"
            "  RotationEnable: 1\n"
            "  RotationConfigJSON: '{\"maxsize\": 0.01, \"maxbackups\": 2}'\n" % path)
        gids = [self.new_gid() for _ in range(40)]
        for gid in gids:
            self.client.Submit(self.saga_request(gid, [b"\x01", b"\x02"]),
                               timeout=RPC_TIMEOUT_S)
        self.stop_server()
        self.assertEqual(sorted(os.listdir(logs)), ["dtx.1.log", "dtx.2.log", "dtx.log"])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        text = ""
        for name in ("dtx.2.log", "dtx.1.log", "dtx.log"):
            size = os.path.getsize(os.path.join(logs, name))
            self.assertLessEqual(size, 10486 + 1024, name)
            with open(os.path.join(logs, name)) as f:
                text += f.read()
        # The newest lines are in the files, as on stderr.
        self.assertIn("gid=%s saga submitted -> succeed" % gids[-1], text)
        self.assertIn("dtx-server: stopped", text)

        with open(os.path.join(self.work_dir, "bad.yml"), "w") as f:
            f.write("Log:\n  Outputs: %s\n" % os.path.join(logs, "missing", "x.log"))
        done = subprocess.run([ARGS.server, "-c", os.path.join(self.work_dir, "bad.yml"),
                               "--grpc-port", "0", "--http-port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=START_TIMEOUT_S)
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertIn(b"Log.Outputs: log file %s" % os.path.join(
            logs, "missing", "x.log").encode(), done.stdout)
        self.assertIn(b"No such file or directory", done.stdout)
        self.start_server()  # for tearDown

    def test_the_open_files_limit_is_raised_to_the_hard_limit(self):
        """Started with a soft RLIMIT_NOFILE of 256 (new clients hung at the
        fd limit), dtx-server raises it to the hard limit and says so."""
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        low = min(256, hard)
        config = self.server.config_path
        self.stop_server()
        proc = subprocess.Popen(
            [ARGS.server, "-c", config, "--grpc-port", "0",
             "--http-port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard)))
        try:
            line = proc.stdout.readline().decode()
            self.assertIn("listening on", line)
            with open("/proc/%d/limits" % proc.pid) as f:
                limits = [l for l in f if l.startswith("Max open files")][0].split()
            self.assertEqual(limits[3], str(hard) if hard != resource.RLIM_INFINITY
                             else "unlimited", limits)
            self.assertEqual(limits[3], limits[4], limits)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=STOP_TIMEOUT_S)
        self.assertEqual(proc.returncode, 0, err)
        if low < hard:
            self.assertIn(b"dtx-server: open files limit raised from %d to %d" % (low, hard), err)
        self.start_server()  # for tearDown

    def test_connections_that_never_speak_http2_are_closed(self):
        """Raw TCP connections that never send HTTP/2's preface held a
        descriptor each (2,000 of them, and at the fd limit new clients
        hung); past GrpcHandshakeTimeout the server closes them, and a real
        client is served meanwhile."""
        import socket
        self.restart_server("GrpcHandshakeTimeout: 1\n")
        host, port = self.server.address.rsplit(":", 1)
        silent = [socket.create_connection((host, int(port)), timeout=RPC_TIMEOUT_S)
                  for _ in range(50)]
        self.assertTrue(self.new_gid())
        started = time.monotonic()
        for sock in silent:
            sock.settimeout(max(0.1, started + 8 - time.monotonic()))
            try:
                while sock.recv(4096):
                    pass   # the server's SETTINGS and GOAWAY, then EOF
            except socket.timeout:
                self.fail("a connection that never spoke HTTP/2 was still open "
                          "after %.1f s" % (time.monotonic() - started))
            except ConnectionResetError:
                pass
            finally:
                sock.close()
        self.assertGreater(time.monotonic() - started, 0.5)
        self.assertTrue(self.new_gid())

    # -- item 1: access --

    def test_reflection_is_off_unless_enabled(self):
        reflect = self.client.channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        with self.assertRaises(grpc.RpcError) as caught:
            next(iter(reflect(iter([b"\x3a\x00"]), timeout=RPC_TIMEOUT_S)))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_with_a_token_every_admin_call_needs_it_and_dtms_api_does_not(self):
        self.restart_server("Admin:\n  Token: %s\n" % self.TOKEN)
        gid = self.new_gid()
        # dtm's API stays tokenless: an SDK knows nothing of Admin.Token.
        self.client.Submit(self.saga_request(gid, [b"\x01", b"\x02"],
                                             BranchHeaders={"authorization": "Bearer card"}),
                           timeout=RPC_TIMEOUT_S)
        for name, call in self.admin_calls(gid):
            with self.subTest(name):
                error = self.expect_code(lambda: call(()), grpc.StatusCode.UNAUTHENTICATED,
                                         name + " without a token")
                self.assertIn("Admin.Token", error.details())
                self.expect_code(lambda: call((("authorization", "Bearer wrong"),)),
                                 grpc.StatusCode.UNAUTHENTICATED, name + " with a wrong token")
        good = (("authorization", "Bearer " + self.TOKEN),)
        reply = dict(self.admin_calls(gid))["Query"](good)
        self.assertEqual(reply.transaction.status, "succeed")
        # The HTTP admin endpoints likewise; the version stays open.
        for method, path, body in (("GET", "/api/dtmsvr/query?gid=" + gid, None),
                                   ("GET", "/api/dtmsvr/all", None),
                                   ("GET", "/api/dtx/stats", None),
                                   ("POST", "/api/dtmsvr/forceStop", {"gid": gid}),
                                   ("POST", "/api/dtx/retryNow", {"gid": gid})):
            with self.subTest(path):
                status, text = self.http(method, path, body)
                self.assertEqual(status, 401, text)
                self.assertNotIn("card", text)
        status, text = self.http("GET", "/api/dtmsvr/query?gid=" + gid, token=self.TOKEN)
        self.assertEqual(status, 200, text)
        self.assertEqual(self.http("GET", "/api/dtmsvr/version")[0], 200)
        self.assertIn("admin service and endpoints need Admin.Token", self.server.output())

    def test_beyond_loopback_without_a_token_the_admin_service_is_closed(self):
        # The reproducer: 0.0.0.0, no token, anyone lists payloads and
        # force-stops transactions.
        self.restart_server(host="0.0.0.0")
        gid = self.new_gid()
        self.client.Submit(self.saga_request(gid, [b"\x01", b"\x02"]), timeout=RPC_TIMEOUT_S)
        for name, call in self.admin_calls(gid):
            with self.subTest(name):
                error = self.expect_code(lambda: call(()), grpc.StatusCode.PERMISSION_DENIED,
                                         name)
                self.assertIn("Admin.Open", error.details())
        status, text = self.http("GET", "/api/dtmsvr/all")
        self.assertEqual(status, 403, text)
        self.assertIn("Admin.Token", text)
        self.assertIn("admin service and endpoints CLOSED", self.server.output())
        # Admin.Open opens it, with a warning.
        self.restart_server("Admin:\n  Open: true\n", host="0.0.0.0")
        self.assertEqual(self.query(gid).transaction.status, "succeed")
        self.assertIn("OPEN without a token", self.server.output())

    # -- item 2: targets --

    def test_a_unix_socket_or_metadata_target_is_refused(self):
        # The reproducer: a local-only gRPC service on a unix socket of
        # the coordinator's host, named by a msg step.
        sock = os.path.join(self.work_dir, "local.sock")
        local = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        seen = []

        def handle(request, context):
            seen.append((request, dict(context.invocation_metadata())))
            return b""
        local.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "local.Admin", {"Do": grpc.unary_unary_rpc_method_handler(handle)}),))
        self.assertTrue(local.add_insecure_port("unix:" + sock))
        local.start()
        self.addCleanup(lambda: local.stop(None).wait(5))

        def msg(gid, url):
            return PB.dtm.DtmRequest(
                Gid=gid, TransType="msg",
                Steps=self.steps_json({"action": url}), BinPayloads=[b"attacker"],
                TransOptions=PB.dtm.DtmTransOptions(
                    WaitResult=True, BranchHeaders={"x-forged": "1"}))
        unix_url = "unix://%s/local.Admin/Do" % sock
        for gid, url, words in (("ssrf-unix", unix_url, "scheme unix"),
                                ("ssrf-meta", "169.254.169.254:80/m.Svc/Get",
                                 "link-local or cloud metadata"),
                                ("ssrf-meta-http", "http://169.254.169.254/latest",
                                 "link-local or cloud metadata")):
            with self.subTest(url):
                error = self.expect_error(self.client.Submit, msg(gid, url),
                                          grpc.StatusCode.PERMISSION_DENIED, url)
                self.assertIn(words, error.details())
                self.assertIn("BranchTargets", error.details())
                self.expect_error(self.client.Query, PB.admin.QueryRequest(gid=gid),
                                  grpc.StatusCode.NOT_FOUND, "Query " + gid)
        self.assertEqual(seen, [])
        # RegisterBranch is held to the same list.
        tcc = self.new_gid()
        self.client.Prepare(PB.dtm.DtmRequest(Gid=tcc, TransType="tcc", Steps="null"),
                            timeout=RPC_TIMEOUT_S)
        self.expect_error(self.client.RegisterBranch, PB.dtm.DtmBranchRequest(
            Gid=tcc, TransType="tcc", BranchID="01", BusiPayload=b"x",
            Data={"confirm": self.busi.url("TransInConfirm"), "cancel": unix_url}),
            grpc.StatusCode.PERMISSION_DENIED, "RegisterBranch to a unix socket")
        # Listed, the socket is called.
        self.restart_server("BranchTargets:\n  Schemes: [unix, grpc]\n")
        self.client.Submit(msg("listed-unix", unix_url), timeout=RPC_TIMEOUT_S)
        self.assertEqual(len(seen), 1)
        self.assertEqual(seen[0][0], b"attacker")

    def test_dtms_http_api_is_held_to_the_same_targets(self):
        status, text = self.http("POST", "/api/dtmsvr/submit", {
            "gid": "http-meta", "trans_type": "msg",
            "steps": [{"action": "http://169.254.169.254/latest/meta-data"}],
            "payloads": ["{}"]})
        self.assertEqual(status, 403, text)
        self.assertIn("link-local or cloud metadata", text)
        self.expect_error(self.client.Query, PB.admin.QueryRequest(gid="http-meta"),
                          grpc.StatusCode.NOT_FOUND, "Query http-meta")

    def test_a_host_list_keeps_other_hosts_out(self):
        self.restart_server("BranchTargets:\n  Hosts: [127.0.0.1]\n  Ports: [%d]\n"
                            % self.busi.port)
        self.client.Submit(self.saga_request("listed", [b"\x01", b"\x02"]),
                           timeout=RPC_TIMEOUT_S)
        steps = self.steps_json({"action": "127.0.0.1:22/busi.Busi/TransOut",
                                 "compensate": self.busi.url("TransOutRevert")})
        error = self.expect_error(self.client.Submit, PB.dtm.DtmRequest(
            Gid="port-22", TransType="saga", Steps=steps, BinPayloads=[b"\x01"]),
            grpc.StatusCode.PERMISSION_DENIED, "port 22")
        self.assertIn("port 22 is not in BranchTargets.Ports", error.details())

    # -- item 6: headers and limits --

    def test_headers_that_the_transport_owns_and_too_many_headers_are_refused(self):
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        many = dict(("x-h%d" % i, "v" * 24) for i in range(1000))
        for what, headers, words in (
                ("dtm-gid", {"dtm-gid": "other-gid"}, "dtm's metadata"),
                ("dtm-op", {"dtm-op": "compensate"}, "dtm's metadata"),
                ("dtm-branch_id", {"dtm-branch_id": "99"}, "dtm's metadata"),
                ("dtm-trans_type", {"dtm-trans_type": "tcc"}, "dtm's metadata"),
                ("host", {"host": "internal"}, "set by the transport"),
                ("te", {"te": "trailers"}, "hop-by-hop"),
                ("1,000 headers (30 KB)", many, "over the limit of 8192")):
            with self.subTest(what):
                gid = "hdr-" + what.split(" ")[0]
                error = self.expect_error(
                    self.client.Submit,
                    self.saga_request(gid, [b"\x01", b"\x02"], BranchHeaders=headers),
                    invalid, what)
                self.assertIn(words, error.details())
                self.expect_error(self.client.Query, PB.admin.QueryRequest(gid=gid),
                                  grpc.StatusCode.NOT_FOUND, "Query " + gid)
        self.assertEqual(self.busi.all_calls(), [])

    def test_overflowing_delays_and_ranges_are_refused(self):
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        error = self.expect_error(self.client.Submit, PB.dtm.DtmRequest(
            Gid="delay", TransType="msg",
            Steps=self.steps_json({"action": self.busi.url("TransIn")}),
            BinPayloads=[b"\x01"], CustomedData='{"delay":9223372037}'),
            invalid, "msg delay of 2^63 ns")
        self.assertIn("delay", error.details())
        self.expect_error(self.client.Query, PB.admin.QueryRequest(gid="delay"),
                          grpc.StatusCode.NOT_FOUND, "Query delay")
        self.client.Submit(self.saga_request("one", [b"\x01", b"\x02"]), timeout=RPC_TIMEOUT_S)
        error = self.expect_error(self.client.List,
                                  PB.admin.ListRequest(created_from_ms=2 ** 63 - 1),
                                  invalid, "List(created_from_ms=INT64_MAX)")
        self.assertIn("created_from_ms", error.details())
        status, text = self.http("GET", "/api/dtmsvr/all?createTimeStart=%d" % (2 ** 63 - 1))
        self.assertEqual(status, 400, text)
        self.assertIn("createTimeStart", text)

    def test_unparseable_requests_are_invalid_argument_with_a_message(self):
        # A DtmRequest cut inside a length-delimited field, and bytes that are
        # no protobuf at all.
        good = self.saga_request("cut", [b"\x01", b"\x02"]).SerializeToString()
        for payload in (good[:len(good) // 2], b"\xff\xff\xff\xff"):
            for method in ("/dtmgimp.Dtm/NewGid", "/dtmgimp.Dtm/Submit",
                           "/dtmgimp.Dtm/Prepare", "/dtmgimp.Dtm/Abort",
                           "/dtmgimp.Dtm/RegisterBranch", "/dtmgimp.Dtm/PrepareWorkflow",
                           "/dtmgimp.Dtm/Subscribe", "/dtmgimp.Dtm/Unsubscribe",
                           "/dtmgimp.Dtm/DeleteTopic", "/dtx.admin.v1.Admin/Query",
                           "/dtx.admin.v1.Admin/List", "/dtx.admin.v1.Admin/Stats",
                           "/dtx.admin.v1.Admin/ForceStop", "/dtx.admin.v1.Admin/RetryNow"):
                with self.subTest(method=method, payload=payload[:8]):
                    call = self.client.channel.unary_unary(method)
                    error = self.expect_code(lambda: call(payload, timeout=RPC_TIMEOUT_S),
                                             grpc.StatusCode.INVALID_ARGUMENT, method)
                    self.assertIn("is not a valid", error.details())
        self.assertEqual(list(self.client.List(PB.admin.ListRequest(),
                                               timeout=RPC_TIMEOUT_S).transactions), [])


def main():
    global ARGS, PB
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default=os.environ.get("DTX_SERVER"),
                        help="path of dtx-server (default: $DTX_SERVER)")
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--proto-dir", default=os.environ.get(
        "DTX_PROTO_DIR", os.path.join(here, "..", "..", "transport", "proto")),
        help="directory holding dtm/dtmgimp.proto and dtx/admin.proto")
    ARGS, rest = parser.parse_known_args()
    if not ARGS.server:
        parser.error("--server PATH (or DTX_SERVER) is required")
    if not os.access(ARGS.server, os.X_OK):
        sys.stderr.write("dtm_protocol_test: no executable dtx-server at %s\n" % ARGS.server)
        return 1
    ARGS.server = os.path.abspath(ARGS.server)

    out_dir = tempfile.mkdtemp(prefix="dtx-dtm-proto-py-")
    try:
        PB = Generated(os.path.abspath(ARGS.proto_dir), out_dir)
        program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    finally:
        shutil.rmtree(out_dir, True)
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
