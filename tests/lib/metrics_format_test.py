#!/usr/bin/env python3
"""dtx's Prometheus text exposition against a parser nobody here wrote.

Runs the program built from tests/lib/metrics_render_main.cc (or reads its
output from standard input), then:

1. checks every line against the text format 0.0.4's grammar, because
   prometheus_client's parser is lax (its docstring says so) and accepts
   lines that Prometheus rejects;
2. parses the text with prometheus_client.parser.text_string_to_metric_families
   (Debian's python3-prometheus-client) and checks that every family, type,
   help text, label and value is the one the program registered, in order.

With --server, the text is instead what a real dtx-server (temporary journal,
ephemeral ports on 127.0.0.1) answers at GET /api/metrics after a few HTTP
requests: every line must match the grammar, the parser must read the whole
of it, and dtm's and dtx's families must be there with their types, labels
and the requests just made.

Usage:
  metrics_format_test.py --render PATH/dtx_metrics_render [unittest args]
  metrics_format_test.py --server PATH/dtx-server [unittest args]
  PATH/dtx_metrics_render | metrics_format_test.py [unittest args]

Exit codes: 0 passed, 1 failed, 77 skipped (no prometheus_client for Python;
under CI=true that is a failure instead).
"""

import argparse
import http.client
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import prereq  # noqa: E402  (tests/testing/prereq.py)

REEXEC_GUARD = "DTX_METRICS_TEST_REEXEC"


try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as import_error:
    prereq.reexec_with_system_python(REEXEC_GUARD)
    prereq.unavailable("metrics_format_test", "the Python module prometheus_client is needed "
                                              "(Debian: python3-prometheus-client): %s" % import_error)

# The text format 0.0.4's grammar
# (https://prometheus.io/docs/instrumenting/exposition_formats/).
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
LABEL = r"(%s)=(%s)" % (LABEL_NAME, LABEL_VALUE)
# What Go's strconv.ParseFloat, which Prometheus uses, reads.
VALUE = r"[+-]?Inf|NaN|[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
HELP_RE = re.compile(r"# HELP (%s) ((?:[^\\\n]|\\[\\n])*)" % METRIC_NAME)
TYPE_RE = re.compile(r"# TYPE (%s) (counter|gauge|histogram|summary|untyped)"
                     % METRIC_NAME)
SAMPLE_RE = re.compile(r"(?P<name>%s)(?:\{(?P<labels>%s(?:,%s)*)?\})? (?P<value>%s)"
                       % (METRIC_NAME, LABEL, LABEL, VALUE))
LABEL_RE = re.compile(LABEL)
UNESCAPE_RE = re.compile(r'\\([\\"n])')

OVERFLOW = "__overflow__"
MAX_SERIES = 10  # metrics_render_main.cc's kMaxSeries
DEFAULT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1, 2.5, 5, 10, 30]
INF = float("inf")
NAN = float("nan")
LABEL_VALUES = ["back\\slash", 'say "hi"', "line1\nline2", "trailing\\",
                "\\n literally", "{braces}=,commas", "caf\u00e9 \u2713 \u65e5\u672c",
                "", "bad\ufffdbyte", "tab\there"]
DROPPED_HELP = ("Lookups of a label-value tuple sent to its family's overflow "
                "series (every label \"__overflow__\"), because the family was "
                "at its series cap or the number of values was wrong.")

TEXT = None  # the program's output, set by main()


def _unescape(quoted):
    return UNESCAPE_RE.sub(
        lambda m: "\n" if m.group(1) == "n" else m.group(1), quoted[1:-1])


def _labels(block):
    return [(m.group(1), _unescape(m.group(2)))
            for m in LABEL_RE.finditer(block or "")]


def _series(name, label_names, label_values, value):
    return (name, dict(zip(label_names, label_values)), value)


def _sorted(series, label_names):
    return sorted(series, key=lambda s: tuple(s[1][n] for n in label_names))


def _histogram(name, label_names, observed, bounds):
    """The samples of a histogram family, `observed` mapping label-value tuples
    to observations."""
    samples = []
    for values in sorted(observed):
        labels = dict(zip(label_names, values))
        obs = observed[values]
        for bound in list(bounds) + [INF]:
            samples.append((name + "_bucket", dict(labels, le=bound),
                            sum(1 for v in obs if v <= bound)))
        total = 0.0
        for v in obs:  # in the order the program observed them
            total += v
        samples.append((name + "_sum", labels, total))
        samples.append((name + "_count", labels, len(obs)))
    return samples


def expected_families():
    """(name as the parser reports it, type, help, samples) in render order.
    The parser drops a counter family's _total suffix, not its samples'."""
    process_labels = ["type", "api", "status"]
    process = [_series("dtm_server_process_total", process_labels,
                       ["grpc", "api%d" % i, "ok"], i + 1)
               for i in range(MAX_SERIES)]
    process.append(_series("dtm_server_process_total", process_labels,
                           [OVERFLOW] * 3, 5 + 1))
    special = {"nan": NAN, "pos_inf": INF, "neg_inf": -INF, "million": 1e6,
               "tiny": 1e-7, "negative": -0.5, "big_int": 9007199254740991.0,
               "huge": 1e300, "fraction": 0.1, "neg_zero": 0.0}
    return [
        ("dtm_server_info", "gauge", "Build information.",
         [_series("dtm_server_info", ["gin_version", "grpc_version"],
                  ["none", "1.51.1"], 1)]),
        ("dtm_server_process", "counter", "API requests.",
         _sorted(process, process_labels)),
        ("dtm_server_response_duration", "histogram", "API latency (seconds).",
         _histogram("dtm_server_response_duration", ["type", "api"],
                    {("grpc", "submit"): [0.0003, 0.004, 0.2, 45.0],
                     ("grpc", "prepare"): [0.001]}, DEFAULT_BUCKETS)),
        ("dtx_label_values", "gauge",
         'Label values with \\ backslashes, "quotes" and a\nnewline.',
         _sorted([_series("dtx_label_values", ["value"], [v], i + 1)
                  for i, v in enumerate(LABEL_VALUES)], ["value"])),
        ("dtx_special_values", "gauge", "Special values.",
         _sorted([_series("dtx_special_values", ["case"], [k], v)
                  for k, v in special.items()], ["case"])),
        ("dtx_bytes", "counter", "A count past 2^53.",
         [("dtx_bytes_total", {}, float(2 ** 60))]),
        ("dtx_seconds", "counter", "Fractional amounts.",
         [("dtx_seconds_total", {}, 2.75)]),
        ("dtx_transactions_in_memory", "gauge", "Read at render.",
         [("dtx_transactions_in_memory", {}, 7)]),
        ("dtx_unregistered_callback", "gauge", "Reset before render.", []),
        ("dtx_unused", "counter", "No series yet.", []),
        ("dtx_batch_size", "histogram", "Custom bounds.",
         _histogram("dtx_batch_size", [], {(): [1.0, 3.0, 3.0, 100.0]},
                    [1, 2, 4, 8])),
        ("dtx:colon_name", "gauge", "Colons are allowed.",
         [("dtx:colon_name", {}, 0.5)]),
        ("dtx_metrics_dropped_series", "counter", DROPPED_HELP,
         [("dtx_metrics_dropped_series_total",
           {"family": "dtm_server_process_total"}, 2)]),
    ]


def _same_value(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


class GrammarTest(unittest.TestCase):
    """Every line is one Prometheus reads, and the blocks are well formed
    (whatever produced the text)."""

    def test_every_line_matches_the_grammar(self):
        self.assertTrue(TEXT.endswith("\n"))
        self.assertNotIn("\r", TEXT)
        for line in TEXT[:-1].split("\n"):
            with self.subTest(line=line):
                self.assertTrue(HELP_RE.fullmatch(line) or
                                TYPE_RE.fullmatch(line) or
                                SAMPLE_RE.fullmatch(line),
                                "not in the text format: %r" % line)

    def test_integers_print_without_an_exponent(self):
        for line in TEXT.splitlines():
            m = SAMPLE_RE.fullmatch(line)
            if not m:
                continue
            text = m.group("value")
            v = float(text)
            if math.isfinite(v) and v == int(v) and abs(v) < 2 ** 53:
                self.assertRegex(text, r"^-?\d+$", line)


class SpellingTest(unittest.TestCase):
    """dtx_metrics_render's values as Prometheus spells them."""

    def test_exact_spellings(self):
        for line in ['dtx_special_values{case="million"} 1000000',
                     'dtx_special_values{case="nan"} NaN',
                     'dtx_special_values{case="pos_inf"} +Inf',
                     'dtx_special_values{case="neg_inf"} -Inf',
                     'dtx_special_values{case="neg_zero"} 0',
                     'dtx_special_values{case="big_int"} 9007199254740991',
                     'dtx_bytes_total 1152921504606846976',
                     'dtm_server_response_duration_bucket'
                     '{type="grpc",api="prepare",le="0.001"} 1',
                     'dtx_label_values{value="back\\\\slash"} 1',
                     'dtx_label_values{value="say \\"hi\\""} 2',
                     'dtx_label_values{value="line1\\nline2"} 3',
                     'dtx_label_values{value="\\\\n literally"} 5']:
            self.assertIn("\n" + line + "\n", TEXT)


class BlockTest(unittest.TestCase):
    """The families of any text."""

    def test_families_are_blocks_in_order(self):
        """HELP then TYPE, then only the family's own samples, each series
        once and sorted by label values; histogram buckets cumulative, in
        increasing le, ending with +Inf and equal to _count."""
        lines = TEXT.splitlines()
        seen_families = set()
        i = 0
        while i < len(lines):
            help_m = HELP_RE.fullmatch(lines[i])
            self.assertIsNotNone(help_m, lines[i])
            name = help_m.group(1)
            self.assertNotIn(name, seen_families)
            seen_families.add(name)
            type_m = TYPE_RE.fullmatch(lines[i + 1])
            self.assertIsNotNone(type_m, lines[i + 1])
            self.assertEqual(type_m.group(1), name)
            typ = type_m.group(2)
            i += 2
            samples = []
            while i < len(lines) and not lines[i].startswith("#"):
                m = SAMPLE_RE.fullmatch(lines[i])
                samples.append((m.group("name"), _labels(m.group("labels")),
                                m.group("value")))
                i += 1
            if typ == "histogram":
                self._check_histogram(name, samples)
            else:
                for sample_name, _, _ in samples:
                    self.assertEqual(sample_name, name)
                keys = [tuple(v for _, v in labels) for _, labels, _ in samples]
                self.assertEqual(keys, sorted(set(keys)), name)

    def _check_histogram(self, name, samples):
        series = []  # [labels without le, buckets, sum, count]
        for sample_name, labels, value in samples:
            if sample_name == name + "_bucket":
                self.assertEqual(labels[-1][0], "le")
                key = labels[:-1]
                if not series or series[-1][0] != key or series[-1][3] is not None:
                    series.append([key, [], None, None])
                series[-1][1].append((float(labels[-1][1]), float(value)))
            elif sample_name == name + "_sum":
                self.assertEqual(series[-1][0], labels)
                series[-1][2] = float(value)
            else:
                self.assertEqual(sample_name, name + "_count")
                self.assertEqual(series[-1][0], labels)
                series[-1][3] = float(value)
        keys = [tuple(v for _, v in s[0]) for s in series]
        self.assertEqual(keys, sorted(set(keys)), name)
        for key, buckets, total, count in series:
            bounds = [b for b, _ in buckets]
            counts = [c for _, c in buckets]
            self.assertEqual(bounds, sorted(set(bounds)), name)
            self.assertEqual(bounds[-1], INF, name)
            self.assertEqual(counts, sorted(counts), name)
            self.assertIsNotNone(total, name)
            self.assertEqual(count, counts[-1], name)


class ParserTest(unittest.TestCase):
    """prometheus_client reads back what the program registered."""

    def test_every_family_round_trips(self):
        parsed = list(text_string_to_metric_families(TEXT))
        expected = expected_families()
        self.assertEqual([f.name for f in parsed], [e[0] for e in expected])
        for family, (name, typ, help_text, samples) in zip(parsed, expected):
            with self.subTest(family=name):
                self.assertEqual(family.type, typ)
                self.assertEqual(family.documentation, help_text)
                got = []
                for s in family.samples:
                    self.assertIsNone(s.timestamp)
                    labels = dict(s.labels)
                    if "le" in labels:
                        labels["le"] = float(labels["le"])
                    got.append((s.name, labels, s.value))
                self.assertEqual(len(got), len(samples), got)
                for g, e in zip(got, samples):
                    self.assertEqual(g[0], e[0])
                    self.assertEqual(g[1], e[1])
                    self.assertTrue(_same_value(g[2], float(e[2])),
                                    "%s %s: %r, expected %r" % (g[0], g[1],
                                                                g[2], e[2]))


# What a dtx-server reports, by family: (type, label names). The parser
# drops a counter's _total suffix from the family's name.
SERVER_FAMILIES = {
    "dtm_server_info": ("gauge", ["gin_version", "grpc_version", "version"]),
    "dtm_server_process": ("counter", ["type", "api", "status"]),
    "dtm_server_response_duration": ("histogram", ["type", "api"]),
    "dtx_journal_commit_duration_seconds": ("histogram", []),
    "dtx_journal_batch_writes": ("histogram", []),
    "dtx_journal_queued_writes": ("gauge", []),
    "dtm_transaction_process": ("counter", ["model", "status"]),
    "dtm_transaction_handled_duration": ("histogram", ["model"]),
    "dtm_branch_process": ("counter", ["model", "branchtype", "status"]),
    "dtx_branch_call_duration_seconds": ("histogram", ["outcome"]),
    "dtx_transactions_in_memory": ("gauge", []),
    "dtx_transactions_unfinished": ("gauge", []),
    "dtx_transactions_due": ("gauge", []),
    "dtx_oldest_unfinished_transaction_age_seconds": ("gauge", []),
    "dtx_metrics_dropped_series": ("counter", ["family"]),
}
# The HTTP requests run_server() makes before the last scrape.
SERVER_REQUESTS = [("/api/ping", 200), ("/api/ping", 200),
                   ("/api/health", 200), ("/no/such/path?gid=x", 404),
                   ("/api/metrics", 200)]


class ServerScrapeTest(unittest.TestCase):
    """A real dtx-server's /api/metrics, read back by prometheus_client."""

    @classmethod
    def setUpClass(cls):
        cls.families = {f.name: f for f in text_string_to_metric_families(TEXT)}

    def _samples(self, family, name=None, **labels):
        return [s for s in self.families[family].samples
                if (name is None or s.name == name) and
                all(s.labels.get(k) == v for k, v in labels.items())]

    def test_every_family_is_there_with_its_type_and_labels(self):
        for name, (typ, label_names) in SERVER_FAMILIES.items():
            with self.subTest(family=name):
                self.assertIn(name, self.families)
                family = self.families[name]
                self.assertEqual(family.type, typ)
                self.assertTrue(family.documentation)
                for sample in family.samples:
                    keys = [k for k in sample.labels if k != "le"]
                    self.assertEqual(sorted(keys), sorted(label_names), sample)

    def test_server_info_is_one(self):
        (info,) = self._samples("dtm_server_info")
        self.assertEqual(info.value, 1)
        self.assertEqual(info.labels["gin_version"], "none")
        self.assertRegex(info.labels["grpc_version"], r"^\d+\.\d+")
        self.assertRegex(info.labels["version"], r"^\d+\.\d+")

    def test_http_requests_are_counted_with_bounded_labels(self):
        def count(api, status):
            (s,) = self._samples("dtm_server_process",
                                 "dtm_server_process_total",
                                 type="http", api=api, status=status)
            return s.value
        self.assertEqual(count("ping", "ok"), 2)
        self.assertEqual(count("health", "ok"), 1)
        self.assertEqual(count("other", "fail"), 1)
        self.assertGreaterEqual(count("metrics", "ok"), 1)
        apis = {s.labels["api"] for s in self.families["dtm_server_process"].samples}
        self.assertNotIn("no", apis)
        self.assertNotIn("path?gid=x", apis)
        # Every gRPC method has its series from the start.
        for api in ("newgid", "submit", "prepare", "abort", "registerbranch",
                    "query", "list", "stats", "forcestop", "retrynow"):
            self.assertTrue(self._samples("dtm_server_process", type="grpc",
                                          api=api), api)

    def test_histogram_counts_agree(self):
        (count,) = self._samples("dtm_server_response_duration",
                                 "dtm_server_response_duration_count",
                                 type="http", api="ping")
        (inf,) = self._samples("dtm_server_response_duration",
                               "dtm_server_response_duration_bucket",
                               type="http", api="ping", le="+Inf")
        self.assertEqual(count.value, 2)
        self.assertEqual(inf.value, 2)
        (commits,) = self._samples("dtx_journal_commit_duration_seconds",
                                   "dtx_journal_commit_duration_seconds_count")
        self.assertGreaterEqual(commits.value, 1)


def _get(port, target):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def run_server(binary):
    """Starts dtx-server, makes SERVER_REQUESTS, returns its last scrape's
    bytes (None after a failure, reported on stderr)."""
    work = tempfile.mkdtemp(prefix="dtx-metrics-")
    config = os.path.join(work, "dtx.yml")
    with open(config, "w") as f:
        f.write("Store:\n  Path: '%s'\nLogLevel: warn\n"
                % os.path.join(work, "dtx.db"))
    child = subprocess.Popen(
        [binary, "-c", config, "--grpc-host", "127.0.0.1", "--grpc-port", "0",
         "--http-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = None
        for line in child.stdout:
            m = re.match(r"dtx-server: http listening on .*:(\d+)$", line.strip())
            if m:
                port = int(m.group(1))
                break
        if port is None:
            sys.stderr.write("metrics_format_test: dtx-server did not start\n")
            return None
        for target, status in SERVER_REQUESTS:
            got, _, _ = _get(port, target)
            if got != status:
                sys.stderr.write("metrics_format_test: GET %s: %d, expected %d\n"
                                 % (target, got, status))
                return None
        status, content_type, body = _get(port, "/api/metrics")
        if status != 200 or content_type != "text/plain; version=0.0.4; charset=utf-8":
            sys.stderr.write("metrics_format_test: /api/metrics: %d %s\n"
                             % (status, content_type))
            return None
        return body
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    global TEXT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", help="the dtx_metrics_render program; "
                        "without it the text is read from standard input")
    parser.add_argument("--server", help="a dtx-server binary to scrape")
    args, rest = parser.parse_known_args()
    tests = ["GrammarTest", "BlockTest", "SpellingTest", "ParserTest"]
    if args.server:
        tests = ["GrammarTest", "BlockTest", "ServerScrapeTest"]
        raw = run_server(args.server)
        if raw is None:
            return 1
    elif args.render:
        run = subprocess.run([args.render], stdout=subprocess.PIPE,
                             timeout=60, check=False)
        if run.returncode != 0:
            sys.stderr.write("metrics_format_test: %s exited with %d\n"
                             % (args.render, run.returncode))
            return 1
        raw = run.stdout
    else:
        raw = sys.stdin.buffer.read()
    try:
        TEXT = raw.decode("utf-8")  # strict: Prometheus rejects bad UTF-8
    except UnicodeDecodeError as e:
        sys.stderr.write("metrics_format_test: output is not UTF-8: %s\n" % e)
        return 1
    program = unittest.main(argv=[sys.argv[0]] + rest, defaultTest=tests,
                            exit=False)
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
