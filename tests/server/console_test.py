#!/usr/bin/env python3
"""The web console in a real browser, against a real dtx-server.

Starts a dtx-server (temporary config and SQLite journal, ephemeral ports, an
admin token) and a Python gRPC service that plays the branches, creates
transactions through dtx-server's gRPC API (dtm's protocol, messages compiled
from transport/proto at test time, as tests/server/dtm_protocol_test.py does):
sagas that succeed, one that fails, a prepared TCC and one saga stuck on a
branch at an address nobody listens on. Then drives Debian's chromium
(headless, through chromium-driver and selenium) over the console: counts and
charts, the list (unfinished first, filters, paging), a transaction's detail
and its branch timeline, Retry now (without and with the token) and Force
stop, each checked in the query API and the journal file. Every test fails on
a JavaScript error in the browser's log.

Screenshots (list, detail, after force-stop) go to console-screenshots/ in
the working directory (ctest's: the build tree's tests/); their paths are
printed.

Usage:
  console_test.py --server PATH/dtx-server [--proto-dir transport/proto]
                  [--screenshots DIR] [unittest arguments]
  (or DTX_SERVER / DTX_PROTO_DIR in the environment;
   DTX_TEST_SHOW_SERVER_LOG=1 prints the server's output at the end)

Exit codes: 0 passed, 1 failed, 77 skipped (no selenium, chromium,
chromium-driver, grpc or protoc; under CI=true that is a failure instead).
"""

import argparse
import json
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import prereq  # noqa: E402  (tests/testing/prereq.py)

REEXEC_GUARD = "DTX_CONSOLE_TEST_REEXEC"


os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
try:
    import grpc
    from google.protobuf import empty_pb2
    from selenium import webdriver
    from selenium.common.exceptions import (StaleElementReferenceException,
                                            TimeoutException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as import_error:
    prereq.reexec_with_system_python(REEXEC_GUARD)
    prereq.unavailable("console_test", "Python modules grpc, google.protobuf and selenium are needed "
                                       "(Debian: python3-grpcio python3-protobuf python3-selenium): %s"
                                       % import_error)

RPC_TIMEOUT_S = 20.0
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
WAIT_S = 20.0              # for the page, and for background processing
TOKEN = "console-test-token"
UNREACHABLE = "127.0.0.1:1"   # nothing listens on port 1: connection refused
BUSI = "busi.Busi"
BUSI_METHODS = ("TransOut", "TransIn", "TransOutRevert", "TransInRevert")
GRPC_LISTENING = re.compile(r"dtx-server: listening on (\S+):(\d+)")
HTTP_LISTENING = re.compile(r"dtx-server: http listening on (\S+):(\d+)")
FINAL = ("succeed", "failed")

ARGS = None
PB = None


# --- dtm's messages ------------------------------------------------------------

class Generated(object):
    def __init__(self, proto_dir, out_dir):
        protoc = shutil.which("protoc")
        if not protoc:
            prereq.unavailable("console_test", "protoc is needed (Debian: protobuf-compiler)")
        includes = ["-I" + proto_dir]
        if os.path.exists("/usr/include/google/protobuf/empty.proto"):
            includes.append("-I/usr/include")
        cmd = [protoc] + includes + ["--python_out=" + out_dir, "dtm/dtmgimp.proto"]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        if done.returncode != 0:
            raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), done.stdout))
        open(os.path.join(out_dir, "dtm", "__init__.py"), "a").close()
        sys.path.insert(0, out_dir)
        from dtm import dtmgimp_pb2
        self.dtm = dtmgimp_pb2


# --- the branches --------------------------------------------------------------

class BusiService(object):
    """busi.Busi over raw bytes: OK, or ABORTED for the (gid, method)s told."""

    def __init__(self):
        self._lock = threading.Lock()
        self._aborted = set()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handlers = dict((m, grpc.unary_unary_rpc_method_handler(self._handler(m)))
                        for m in BUSI_METHODS)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(BUSI, handlers),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise RuntimeError("cannot bind the branch service on 127.0.0.1:0")
        self._server.start()

    def url(self, method):
        return "127.0.0.1:%d/%s/%s" % (self.port, BUSI, method)

    def abort(self, gid, method):
        with self._lock:
            self._aborted.add((gid, method))

    def stop(self):
        self._server.stop(grace=None).wait(5)

    def _handler(self, method):
        def handle(request, context):
            gid = dict(context.invocation_metadata()).get("dtm-gid")
            with self._lock:
                aborted = (gid, method) in self._aborted
            if aborted:
                context.abort(grpc.StatusCode.ABORTED, "FAILURE")
            return b""
        return handle


# --- dtx-server ----------------------------------------------------------------

class ServerProcess(object):
    """One dtx-server child; its gRPC and HTTP addresses from its stdout."""

    def __init__(self, binary, work_dir, journal_path):
        config_path = os.path.join(work_dir, "conf.yml")
        with open(config_path, "w") as f:
            # A long RetryInterval: the stuck saga is tried again only when
            # the test presses Retry now.
            f.write("RetryInterval: 300\n"
                    "TimeoutToFail: 600\n"
                    "RequestTimeout: 3\n"
                    "TransCronInterval: 1\n"
                    "LogLevel: info\n"
                    "Admin:\n"
                    "  Token: %s\n"
                    "Store:\n"
                    "  Driver: sqlite\n"
                    "  Path: %s\n" % (TOKEN, journal_path))
        self.stderr_path = os.path.join(work_dir, "dtx-server.stderr")
        self._stdout = []
        self._lines = queue.Queue()
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "-c", config_path, "--grpc-host", "127.0.0.1",
             "--grpc-port", "0", "--http-port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.grpc_address = self._wait_for(GRPC_LISTENING)
        self.http_address = self._wait_for(HTTP_LISTENING)

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._stdout.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for(self, pattern):
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError("dtx-server did not print %r within %.0f s\n%s"
                                     % (pattern.pattern, START_TIMEOUT_S, self.output()))
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(5)
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
        return ("--- dtx-server stdout ---\n%s\n--- dtx-server stderr (last 8000 chars)"
                " ---\n%s" % ("\n".join(self._stdout), err[-8000:]))

    def terminate(self):
        """SIGTERM; the exit code, or None when it had to be killed."""
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


class Dtm(object):
    """dtmgimp.Dtm without generated stubs."""

    def __init__(self, address):
        self.channel = grpc.insecure_channel(address)
        empty = empty_pb2.Empty

        def rpc(name, request, reply):
            return self.channel.unary_unary(
                name, request_serializer=request.SerializeToString,
                response_deserializer=reply.FromString)

        self.Submit = rpc("/dtmgimp.Dtm/Submit", PB.dtm.DtmRequest, empty)
        self.Prepare = rpc("/dtmgimp.Dtm/Prepare", PB.dtm.DtmRequest, empty)

    def close(self):
        self.channel.close()


# --- the test ------------------------------------------------------------------

class ConsoleTest(unittest.TestCase):
    """One dtx-server with 14 transactions and one browser for all tests."""

    server = None
    driver = None
    dtm = None

    @classmethod
    def setUpClass(cls):
        cls.work_dir = tempfile.mkdtemp(prefix="dtx-console-test-")
        cls.journal = os.path.join(cls.work_dir, "journal.db")
        cls.busi = BusiService()
        try:
            cls.server = ServerProcess(ARGS.server, cls.work_dir, cls.journal)
            cls.base = "http://" + cls.server.http_address
            cls.dtm = Dtm(cls.server.grpc_address)
            cls.create_transactions()
            cls.driver = cls.start_browser()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.driver is not None:
            cls.driver.quit()
            cls.driver = None
        if cls.dtm is not None:
            cls.dtm.close()
            cls.dtm = None
        code = "not started"
        if cls.server is not None:
            code = cls.server.terminate()
            if os.environ.get("DTX_TEST_SHOW_SERVER_LOG"):
                sys.stderr.write("\n%s\n" % cls.server.output())
        cls.busi.stop()
        shutil.rmtree(cls.work_dir, True)
        if cls.server is not None and code != 0:
            raise AssertionError("dtx-server did not exit 0 on SIGTERM (%s)\n%s"
                                 % (code, cls.server.output()))

    # -- setup --

    @classmethod
    def saga(cls, gid, action_out, wait_result):
        steps = json.dumps([
            {"action": action_out, "compensate": cls.busi.url("TransOutRevert")},
            {"action": cls.busi.url("TransIn"), "compensate": cls.busi.url("TransInRevert")}])
        return PB.dtm.DtmRequest(
            Gid=gid, TransType="saga", Steps=steps, BinPayloads=[b"out", b"in"],
            TransOptions=PB.dtm.DtmTransOptions(WaitResult=wait_result))

    @classmethod
    def create_transactions(cls):
        suffix = "%d-%d" % (os.getpid(), int(time.time() * 1000) % 100000)
        cls.ok_gids = ["console-ok-%02d-%s" % (i, suffix) for i in range(11)]
        for gid in cls.ok_gids:
            cls.dtm.Submit(cls.saga(gid, cls.busi.url("TransOut"), True),
                           timeout=RPC_TIMEOUT_S)
        cls.failed_gid = "console-failed-" + suffix
        cls.busi.abort(cls.failed_gid, "TransIn")
        try:
            cls.dtm.Submit(cls.saga(cls.failed_gid, cls.busi.url("TransOut"), True),
                           timeout=RPC_TIMEOUT_S)
            raise AssertionError("the saga whose TransIn is ABORTED succeeded")
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.ABORTED:
                raise
        cls.tcc_gid = "console-tcc-" + suffix
        cls.dtm.Prepare(PB.dtm.DtmRequest(Gid=cls.tcc_gid, TransType="tcc"),
                        timeout=RPC_TIMEOUT_S)
        cls.stuck_gid = "console-stuck-" + suffix
        cls.dtm.Submit(cls.saga(cls.stuck_gid, UNREACHABLE + "/busi.Busi/TransOut", False),
                       timeout=RPC_TIMEOUT_S)
        cls.all_gids = cls.ok_gids + [cls.failed_gid, cls.tcc_gid, cls.stuck_gid]
        # The first call of the stuck branch has failed and been written.
        deadline = time.monotonic() + WAIT_S
        while True:
            action = cls.stuck_action()
            if action and action.get("attempts", 0) >= 1 and action.get("last_error"):
                break
            if time.monotonic() > deadline:
                raise AssertionError("the stuck saga's action shows no failed attempt: "
                                     "%r\n%s" % (cls.query(cls.stuck_gid), cls.server.output()))
            time.sleep(0.1)

    @classmethod
    def start_browser(cls):
        chromium = shutil.which("chromium")
        chromedriver = shutil.which("chromedriver") or (
            "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
        if not chromium or not chromedriver:
            prereq.unavailable("console_test", "chromium and chromedriver are needed (Debian: chromium "
                                               "chromium-driver)")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--disable-gpu", "--window-size=1400,1000", "--lang=en-US",
                    "--no-first-run", "--disable-extensions"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        driver.set_page_load_timeout(WAIT_S)
        return driver

    # -- the HTTP API and the journal --

    @classmethod
    def http(cls, path, params=None):
        url = cls.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        # With Admin.Token set, reads need the token too.
        request = urllib.request.Request(url, headers={"Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S) as response:
            return json.loads(response.read().decode("utf-8"))

    @classmethod
    def query(cls, gid):
        return cls.http("/api/dtmsvr/query", {"gid": gid})

    @classmethod
    def stuck_action(cls):
        for branch in cls.query(cls.stuck_gid).get("branches") or []:
            if branch.get("op") == "action" and UNREACHABLE in branch.get("url", ""):
                return branch
        return None

    def unfinished_gids(self):
        """The prepared TCC, and the stuck saga unless a test force-stopped it."""
        gids = [self.tcc_gid]
        if self.query(self.stuck_gid)["transaction"]["status"] not in FINAL:
            gids.append(self.stuck_gid)
        return gids

    def failed_gids(self):
        return sorted(set(self.all_gids) - set(self.ok_gids) - set(self.unfinished_gids()))

    def journal_status(self, gid):
        connection = sqlite3.connect("file:%s?mode=ro" % self.journal, uri=True, timeout=10)
        try:
            row = connection.execute("SELECT status FROM trans_global WHERE gid = ?",
                                     (gid,)).fetchone()
        finally:
            connection.close()
        return row[0] if row else None

    def wait_api(self, what, check):
        deadline = time.monotonic() + WAIT_S
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail("%s: not within %.0f s\n%s" % (what, WAIT_S, self.server.output()))
            time.sleep(0.1)

    # -- the page --

    def setUp(self):
        self.expected_network_errors = []   # substrings of expected SEVERE lines
        self.driver.get_log("browser")      # a clean log for this test

    def tearDown(self):
        entries = self.driver.get_log("browser")
        severe = [e for e in entries if e.get("level") == "SEVERE" and
                  not any(s in e.get("message", "") for s in self.expected_network_errors)]
        self.assertEqual(severe, [], "errors in the browser's console")

    def open_page(self, fragment=""):
        # The page reads with the token in sessionStorage (Admin.Token guards
        # reads too); it is set from a static file of the same origin, so
        # that no read is made before it.
        # (A file shown as a document makes the browser ask for /favicon.ico.)
        self.expected_network_errors.append("/favicon.ico - Failed to load resource")
        self.driver.get(self.base + "/console/favicon.svg")
        self.driver.execute_script("sessionStorage.setItem('dtx.adminToken', arguments[0])",
                                   TOKEN)
        self.driver.get("about:blank")   # a new document, not a hash change
        self.driver.get(self.base + "/" + fragment)
        self.wait_for("the transaction table", lambda d: d.find_elements(
            By.CSS_SELECTOR, "#trans-body tr[data-gid]"))

    def wait_for(self, what, condition):
        try:
            # Live refresh replaces rows and branches while a condition reads them.
            return WebDriverWait(self.driver, WAIT_S, poll_frequency=0.1,
                                 ignored_exceptions=(StaleElementReferenceException,)
                                 ).until(condition)
        except TimeoutException:
            notice = self.driver.find_element(By.ID, "notice").text
            self.fail("%s: not within %.0f s (page notice: %r)" % (what, WAIT_S, notice))

    def text(self, element_id):
        return self.driver.find_element(By.ID, element_id).text

    # The table and the timeline are read in one script each: live refresh
    # may replace them between two WebDriver calls.

    def table_rows(self):
        """[(gid, status)] of the table, in order."""
        return [tuple(row) for row in self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#trans-body tr[data-gid]'))"
            "  .map((r) => [r.dataset.gid, r.dataset.status]);")]

    def table_gids(self):
        return [gid for gid, _ in self.table_rows()]

    def branch_item(self, branch_id, op):
        """The timeline entry of a branch: {url, attempts, last_error, text}, or None."""
        return self.driver.execute_script(
            "const li = Array.from(document.querySelectorAll('#d-branches li.branch'))"
            "  .find((e) => e.dataset.branchId === arguments[0] && e.dataset.op === arguments[1]);"
            "if (!li) return null;"
            "const text = (sel) => { const e = li.querySelector(sel); return e ? e.textContent : null; };"
            "return {url: text('.url'), attempts: text('.attempts'),"
            "        last_error: text('.last-error pre'), text: li.innerText};",
            branch_id, op)

    def apply_filters(self, status="", mode="", prefix="", start="", end="", limit="50"):
        d = self.driver
        Select(d.find_element(By.ID, "f-status")).select_by_value(status)
        Select(d.find_element(By.ID, "f-mode")).select_by_value(mode)
        gid = d.find_element(By.ID, "f-gid")
        gid.clear()
        if prefix:
            gid.send_keys(prefix)
        # datetime-local inputs take their value in one format whatever the
        # locale shows; typing into them is locale-dependent.
        d.execute_script("document.getElementById('f-from').value = arguments[0];"
                         "document.getElementById('f-to').value = arguments[1];", start, end)
        Select(d.find_element(By.ID, "f-limit")).select_by_value(limit)
        # A live refresh of the previous filters may land meanwhile: wait for
        # rows of these filters (the page counts filter changes).
        body = d.find_element(By.ID, "trans-body")
        before = int(body.get_attribute("data-version") or 0)
        caption = d.find_element(By.ID, "trans-caption")
        d.execute_script("arguments[0].textContent = '';", caption)
        d.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
        self.wait_for("the filtered list", lambda _: caption.text != "" and int(
            body.get_attribute("data-version") or 0) > before)

    def screenshot(self, name):
        directory = ARGS.screenshots
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, name)
        self.assertTrue(self.driver.save_screenshot(path), "screenshot %s" % path)
        print("console_test: screenshot %s" % path)
        return path

    def press(self, button_id, accept):
        """Clicks a button that asks for confirmation; accepts or dismisses."""
        self.driver.execute_script(
            "const e = document.getElementById('action-result');"
            "e.textContent = ''; e.className = 'action-result';")
        self.driver.find_element(By.ID, button_id).click()
        alert = self.wait_for("the confirmation dialog", expected_conditions.alert_is_present())
        self.assertIn(self.stuck_gid, alert.text)
        if accept:
            alert.accept()
        else:
            alert.dismiss()

    def result_line(self, css_class):
        return self.wait_for("an action result (%s)" % css_class, lambda d: [
            e for e in d.find_elements(By.CSS_SELECTOR, "#action-result." + css_class)
            if e.text and not e.text.endswith("…")])[0].text

    # -- tests --

    def test_counts_charts_and_unfinished_first(self):
        unfinished = self.unfinished_gids()
        self.open_page()
        expected = {"prepared": "1", "submitted": str(len(unfinished) - 1), "aborting": "0",
                    "succeed": str(len(self.ok_gids)), "failed": str(len(self.failed_gids())),
                    "unfinished": str(len(unfinished))}
        self.wait_for("the counts %r" % expected, lambda _: all(
            self.text("count-" + k) == v for k, v in expected.items()))
        # Unfinished first, then the rest, each transaction once.
        rows = self.table_rows()
        self.assertEqual(sorted(g for g, _ in rows), sorted(self.all_gids))
        self.assertEqual(sorted(g for g, _ in rows[:len(unfinished)]), sorted(unfinished), rows)
        self.assertTrue(all(s in FINAL for _, s in rows[len(unfinished):]), rows)
        # Charts from successive scrapes of /api/metrics (live refresh).
        self.wait_for("a chart with a line", lambda d: d.find_elements(
            By.CSS_SELECTOR, "#charts .chart[data-family='dtm_branch_process_total'] polyline"))
        self.wait_for("two scrapes", lambda d: "collecting" not in d.find_element(
            By.CSS_SELECTOR, "#charts .chart[data-family='dtm_branch_process_total']").text)
        self.screenshot("list.png")

    def test_filters_and_paging(self):
        unfinished = self.unfinished_gids()
        self.open_page()
        self.apply_filters(status="failed")
        self.assertEqual(sorted(self.table_gids()), self.failed_gids())
        self.apply_filters(mode="tcc")
        self.assertEqual(self.table_gids(), [self.tcc_gid])
        self.apply_filters(status="unfinished")
        self.assertEqual(sorted(self.table_gids()), sorted(unfinished))
        self.apply_filters(prefix="console-ok-0")
        self.assertEqual(sorted(self.table_gids()), sorted(self.ok_gids[:10]))
        # A prefix no gid can have: the server's message, and no stale rows.
        self.expected_network_errors.append("gidPrefix=bad")
        self.apply_filters(prefix="bad prefix")
        self.assertEqual(self.table_gids(), [])
        self.assertIn("gidPrefix", self.text("trans-body"))
        self.wait_for("the notice", lambda _: "gidPrefix" in self.text("notice"))
        self.apply_filters(start="2099-01-01T00:00:00")
        self.assertEqual(self.table_gids(), [])
        self.assertIn("No transactions", self.text("trans-body"))
        self.apply_filters(start="2000-01-01T00:00:00", end="2099-01-01T00:00:00")
        self.assertEqual(sorted(self.table_gids()), sorted(self.all_gids))
        # Ten a page: the unfinished ones first, then the others.
        self.apply_filters(limit="10")
        first = self.table_rows()
        self.assertEqual(len(first), 10, first)
        self.assertEqual(sorted(g for g, _ in first[:len(unfinished)]), sorted(unfinished))
        self.assertTrue(all(s in FINAL for _, s in first[len(unfinished):]), first)
        caption = self.driver.find_element(By.ID, "trans-caption")
        self.driver.execute_script("arguments[0].textContent = '';", caption)
        self.driver.find_element(By.ID, "page-next").click()
        self.wait_for("page 2", lambda _: caption.text.startswith("Page 2"))
        second = self.table_rows()
        self.assertTrue(all(s in FINAL for _, s in second), second)
        gids = [g for g, _ in first + second]
        self.assertEqual(sorted(gids), sorted(self.all_gids), "pages 1 and 2")
        self.assertFalse(self.driver.find_element(By.ID, "page-next").is_enabled())
        self.driver.find_element(By.ID, "page-prev").click()
        self.wait_for("page 1 again", lambda _: caption.text.startswith("Page 1"))
        self.assertEqual(self.table_gids(), [g for g, _ in first])

    def test_shared_link_opens_the_detail(self):
        gid = self.ok_gids[0]
        self.open_page("#gid=" + urllib.parse.quote(gid))
        self.wait_for("the detail of " + gid, lambda _: self.text("d-gid") == gid and
                      self.driver.find_elements(By.CSS_SELECTOR, "#d-branches li.branch"))
        self.assertEqual(self.driver.find_element(By.ID, "detail").get_attribute(
            "data-status"), "succeed")
        branches = self.driver.find_elements(By.CSS_SELECTOR, "#d-branches li.branch")
        self.assertEqual(len(branches), len(self.query(gid)["branches"]))
        self.assertFalse(self.driver.find_element(By.ID, "retry-now").is_enabled())
        self.assertFalse(self.driver.find_element(By.ID, "force-stop").is_enabled())
        # An unknown gid says so.
        self.driver.get(self.base + "/#gid=no-such-gid")
        self.wait_for("not found", lambda _: "No transaction has gid no-such-gid"
                      in self.text("d-fields"))

    def test_stuck_saga_retry_now_and_force_stop(self):
        d = self.driver
        self.open_page()
        self.apply_filters(prefix="console-stuck-")
        self.assertEqual(self.table_gids(), [self.stuck_gid])
        d.find_element(By.CSS_SELECTOR, "#trans-body tr[data-gid] a.gid").click()
        self.wait_for("the stuck saga's detail", lambda _: self.text("d-gid") == self.stuck_gid
                      and d.find_elements(By.CSS_SELECTOR, "#d-branches li.branch"))
        self.assertIn("gid=" + self.stuck_gid, urllib.parse.unquote(d.current_url))

        action = self.stuck_action()
        before = action["attempts"]
        self.assertGreaterEqual(before, 1)
        item = self.branch_item(action["branch_id"], "action")
        self.assertIsNotNone(item, "no timeline entry for the stuck action")
        self.assertIn(UNREACHABLE, item["url"])
        self.assertEqual(item["attempts"], str(before))
        self.assertEqual(item["last_error"], action["last_error"])
        self.assertIn("Next retry", item["text"])
        self.assertIn("Next retry", self.text("d-fields"))
        self.wait_for("two scrapes of the metrics", lambda d: d.find_elements(
            By.CSS_SELECTOR, "#charts .chart") and "collecting" not in self.text("charts"))
        self.screenshot("detail.png")

        # Dismissed: nothing is sent.
        self.press("retry-now", accept=False)
        self.assertEqual(self.text("action-result"), "")
        # Without the token: 401, said plainly. Live refresh off, so that
        # only the button's request goes out without it.
        live = d.find_element(By.ID, "live")
        if live.is_selected():
            live.click()
        token = d.find_element(By.ID, "token")
        token.send_keys(Keys.CONTROL, "a")
        token.send_keys(Keys.DELETE)
        self.assertIsNone(d.execute_script("return sessionStorage.getItem('dtx.adminToken')"))
        # A refresh already under way may be answered 401 as well.
        self.expected_network_errors.append("Failed to load resource: "
                                            "the server responded with a status of 401")
        self.press("retry-now", accept=True)
        message = self.result_line("error")
        self.assertIn("401", message)
        self.assertIn("Admin token", message)
        # A wrong one: 401 too, and the page says the token was refused.
        token.send_keys("not-" + TOKEN)
        self.press("retry-now", accept=True)
        self.assertIn("not accepted", self.result_line("error"))
        # The right one: the branch is called again at once.
        token.send_keys(Keys.CONTROL, "a")
        token.send_keys(TOKEN)
        self.assertEqual(d.execute_script("return sessionStorage.getItem('dtx.adminToken')"),
                         TOKEN)
        self.press("retry-now", accept=True)
        self.assertIn("SUCCESS", self.result_line("ok"))
        live.click()
        after = self.wait_api("attempts beyond %d" % before, lambda: (
            self.stuck_action()["attempts"] > before and self.stuck_action()["attempts"]))
        self.wait_for("the page showing %d+ attempts" % after, lambda _: int(
            self.branch_item(action["branch_id"], "action")["attempts"]) >= after)

        # Force stop: the journal says failed, and so does the page.
        self.press("force-stop", accept=True)
        self.assertIn("SUCCESS", self.result_line("ok"))
        self.wait_api("the query API showing failed", lambda: (
            self.query(self.stuck_gid)["transaction"]["status"] == "failed"))
        self.assertEqual(self.journal_status(self.stuck_gid), "failed")
        self.wait_for("the page showing failed", lambda _: d.find_element(
            By.ID, "detail").get_attribute("data-status") == "failed")
        self.assertFalse(d.find_element(By.ID, "retry-now").is_enabled())
        self.assertFalse(d.find_element(By.ID, "force-stop").is_enabled())
        self.screenshot("after-force-stop.png")
        d.execute_script("sessionStorage.clear()")

    def test_metrics_parser_agrees_with_prometheus_client(self):
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError as error:
            if prereq.in_ci():
                self.fail("prometheus_client is needed under CI=true "
                          "(Debian: python3-prometheus-client): %s" % error)
            self.skipTest("no prometheus_client (Debian: python3-prometheus-client)")
        with urllib.request.urlopen(self.base + "/api/metrics", timeout=RPC_TIMEOUT_S) as r:
            scraped = r.read().decode("utf-8")
        edge_cases = (
            '# HELP edge_total Help with \\\\ and \\n escapes.\n'
            '# TYPE edge_total counter\n'
            'edge_total{a="q\\"b\\\\c\\nd",b=""} 1.5e3\n'
            'edge_total{a="x"} 7 1700000000000\n'
            '# TYPE edge_gauge gauge\n'
            'edge_gauge -Inf\n'
            'edge_gauge{z="1"} NaN\n'
            '# TYPE edge_seconds histogram\n'
            'edge_seconds_bucket{le="0.5"} 1\n'
            'edge_seconds_bucket{le="+Inf"} 2\n'
            'edge_seconds_sum 0.75\n'
            'edge_seconds_count 2\n')
        self.open_page()
        for text in (scraped, edge_cases):
            expected = sorted(
                (s.name, tuple(sorted(s.labels.items())), repr(float(s.value)))
                for f in text_string_to_metric_families(text) for s in f.samples)
            got = self.driver.execute_script(
                "const out = [];"
                "for (const f of DtxMetrics.parse(arguments[0]).values())"
                "  for (const s of f.samples)"
                "    out.push([s.name, Object.entries(s.labels), String(s.value)]);"
                "return out;", text)
            got = sorted((name, tuple(sorted((k, v) for k, v in labels)),
                          repr(float(value.replace("Infinity", "inf"))))
                         for name, labels, value in got)
            self.assertEqual(got, expected, text)
            self.assertTrue(expected)

    def test_console_files_and_errors(self):
        def get(path, headers=None):
            request = urllib.request.Request(self.base + path, headers=headers or {})
            try:
                with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S) as r:
                    return r.status, dict(r.headers), r.read()
            except urllib.error.HTTPError as e:
                return e.code, dict(e.headers), e.read()

        status, headers, body = get("/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn(b"<title>dtx console</title>", body)
        status, headers, _ = get("/console/console.js")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/javascript"))
        status, _, body = get("/console/console.js", {"If-None-Match": headers["ETag"]})
        self.assertEqual((status, body), (304, b""))
        status, _, body = get("/console/missing.js")
        self.assertEqual(status, 404)
        self.assertIn("missing.js", json.loads(body.decode("utf-8"))["error"])


def main():
    global ARGS, PB
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default=os.environ.get("DTX_SERVER"),
                        help="path of dtx-server (default: $DTX_SERVER)")
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--proto-dir", default=os.environ.get(
        "DTX_PROTO_DIR", os.path.join(here, "..", "..", "transport", "proto")),
        help="directory holding dtm/dtmgimp.proto")
    parser.add_argument("--screenshots", default=os.path.join(os.getcwd(),
                                                              "console-screenshots"),
                        help="where the screenshots go (default: ./console-screenshots)")
    ARGS, rest = parser.parse_known_args()
    if not ARGS.server:
        parser.error("--server PATH (or DTX_SERVER) is required")
    if not os.access(ARGS.server, os.X_OK):
        sys.stderr.write("console_test: no executable dtx-server at %s\n" % ARGS.server)
        return 1
    ARGS.server = os.path.abspath(ARGS.server)
    ARGS.screenshots = os.path.abspath(ARGS.screenshots)
    if not shutil.which("chromium") or not (shutil.which("chromedriver") or
                                            os.path.exists("/usr/bin/chromedriver")):
        prereq.unavailable("console_test", "chromium and chromedriver are needed (Debian: chromium "
                                           "chromium-driver)")

    out_dir = tempfile.mkdtemp(prefix="dtx-console-proto-py-")
    try:
        PB = Generated(os.path.abspath(ARGS.proto_dir), out_dir)
        program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    finally:
        shutil.rmtree(out_dir, True)
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
