"""Fixtures for the integration tests.

    def test_x(postern):                 # DEFAULT_LISTENERS, shared by
                                         # the tests of the module
        conn, greeting = postern.greet("smtp")

    def test_y(postern_factory):         # a server of its own
        srv = postern_factory(limits={"max_connections_per_ip": 2},
                              listeners=[("s", "smtp", "none")])

Every server gets a fresh directory with a configuration, a data
directory and the session's test certificate; it is started, its ports
are read from the listener.ready lines, and at teardown it gets SIGTERM
and must exit with status 0. Helpers for talking live in
postern_harness.py.

A skipped (or xfail) test fails the run unless its reason matches a line
of tests/skip-allowlist.txt; see pytest_runtest_makereport below.
"""

import os
import re
import subprocess
import time

import pytest

from postern_harness import (HOSTNAME, REPO, Cert, Postern, make_cert,
                             postern_bin)

SKIP_ALLOWLIST = REPO / "tests" / "skip-allowlist.txt"


# --- skips must be explained -------------------------------------------------


def _load_skip_allowlist():
    """[(compiled pattern, why)] from SKIP_ALLOWLIST: one 'PATTERN -- WHY'
    a line; '#' lines and blank lines are comments. A line without a
    reason is an error: the file is there to be reviewed."""
    allowed = []
    for n, line in enumerate(SKIP_ALLOWLIST.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, why = line.partition(" -- ")
        if not sep or not pattern.strip() or not why.strip():
            raise pytest.UsageError(
                "%s:%d: expected 'PATTERN -- WHY', got %r"
                % (SKIP_ALLOWLIST, n, line))
        try:
            allowed.append((re.compile(pattern.strip()), why.strip()))
        except re.error as e:
            raise pytest.UsageError("%s:%d: bad pattern: %s"
                                    % (SKIP_ALLOWLIST, n, e))
    return allowed


_ALLOWED_SKIPS = _load_skip_allowlist()
_REFUSED_SKIPS = []


def _skip_reason(report):
    """The reason a skipped report gives, without pytest's 'Skipped: '."""
    if hasattr(report, "wasxfail"):
        return "xfail: %s" % (report.wasxfail or "(no reason)")
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = longrepr[2]
    else:
        reason = str(longrepr)
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") \
        else reason


def _refuse_unlisted_skip(report):
    """Turns a skip (or an xfail, or an xpass) whose reason no line of the
    allow-list matches into a failure that says which test and why."""
    if not (report.skipped or hasattr(report, "wasxfail")):
        return
    reason = _skip_reason(report)
    if any(p.search(reason) for p, _ in _ALLOWED_SKIPS):
        return
    what = "%s: skipped (%s), and the reason is not allow-listed in %s; " \
        "install what it needs (make deps) or fix the test" % (
            report.nodeid, reason, SKIP_ALLOWLIST.relative_to(REPO))
    _REFUSED_SKIPS.append(what)
    report.outcome = "failed"
    report.longrepr = what
    if hasattr(report, "wasxfail"):
        del report.wasxfail


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _refuse_unlisted_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _refuse_unlisted_skip(outcome.get_result())


_STARTED = time.monotonic()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Names every refused skip, and writes one summary line for the run
    to $POSTERN_TEST_SUMMARY when set (the Makefile prints them all)."""
    for what in _REFUSED_SKIPS:
        terminalreporter.write_line("REFUSED SKIP " + what, red=True)
    path = os.environ.get("POSTERN_TEST_SUMMARY")
    if not path:
        return
    stats = terminalreporter.stats
    counts = {k: len(stats.get(k, []))
              for k in ("passed", "skipped", "failed", "error")}
    args = [os.path.basename(str(a)) for a in config.args] or ["(all)"]
    line = "%s passed=%d skipped=%d failed=%d errors=%d exit=%d " \
        "seconds=%.0f" % (
            " ".join(args), counts["passed"], counts["skipped"],
            counts["failed"], counts["error"], int(exitstatus),
            time.monotonic() - _STARTED)
    reasons = sorted({_skip_reason(r) for r in stats.get("skipped", [])})
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(line + "\n")
        for r in reasons:
            f.write("    skipped (allow-listed): %s\n" % r)


@pytest.fixture(scope="session")
def postern_binary():
    path = postern_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("postern binary not found at %s: build it (make build) "
                    "or set POSTERN_BIN" % path, pytrace=False)
    return path


@pytest.fixture(scope="session")
def default_cert(tmp_path_factory):
    """Self-signed certificate for mail.example.test (the default
    certificate of every test server)."""
    return make_cert(tmp_path_factory.mktemp("certs"), "main", HOSTNAME,
                     [HOSTNAME])


@pytest.fixture(scope="session")
def ip_cert(tmp_path_factory):
    """A self-signed certificate that names 127.0.0.1 (as a DNS name, for
    clients that only compare names, and as an IP address) and
    mail.example.test, so that real clients (mbsync, mutt) can verify it
    when connecting to 127.0.0.1."""
    d = tmp_path_factory.mktemp("ipcert")
    cert, key = d / "main.pem", d / "main.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "7",
         "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:mail.example.test"],
        check=True, capture_output=True, timeout=60)
    return Cert(cert, key)


class _Servers:
    """Starts servers in directories under base; finish() stops them and
    reports any that did not exit with status 0 after SIGTERM."""

    def __init__(self, base, default_cert):
        self.base = base
        self.default_cert = default_cert
        self.servers = []

    def start(self, certs=None, wait=True, **kw):
        d = self.base / ("srv%d" % len(self.servers))
        d.mkdir()
        srv = Postern(d, certs or [("main", self.default_cert)], **kw)
        self.servers.append(srv)
        return srv.start(wait=wait)

    def finish(self):
        problems = []
        for srv in self.servers:
            if srv.proc is None:
                continue
            if srv.is_running():
                try:
                    rc = srv.stop()
                except AssertionError as e:
                    problems.append(str(e))
                    continue
                if rc != 0:
                    problems.append("postern exited with status %s after "
                                    "SIGTERM (expected 0); stderr:\n%s"
                                    % (rc, srv.log_text()))
            # Shown by pytest only when the test failed.
            print("---- postern stderr (%s) ----\n%s" % (srv.tmp,
                                                         srv.log_text()))
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def postern_factory(postern_binary, default_cert, tmp_path):
    """Returns start(**kw) -> a started Postern of this test. Keywords:
    listeners ([(name, protocol, tls)]), server / limits / timeouts (dicts
    of keys; None removes a key), certs ([(name, Cert)], the first is the
    default), config_text (the whole file), wait (for server.ready)."""
    servers = _Servers(tmp_path, default_cert)
    yield servers.start
    servers.finish()


@pytest.fixture(scope="module")
def module_postern_factory(postern_binary, default_cert, tmp_path_factory):
    """Like postern_factory, for servers shared by a module's tests."""
    servers = _Servers(tmp_path_factory.mktemp("module"), default_cert)
    yield servers.start
    servers.finish()


@pytest.fixture(scope="module")
def postern(postern_binary, default_cert, tmp_path_factory):
    """A server with DEFAULT_LISTENERS (every protocol on starttls and
    implicit TLS, SMTP also on plaintext), shared by the tests of one
    module: tests only connect to it, they never signal or reconfigure
    it (use postern_factory for that)."""
    servers = _Servers(tmp_path_factory.mktemp("shared"), default_cert)
    yield servers.start()
    servers.finish()
