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
"""

import os

import pytest

from postern_harness import HOSTNAME, Postern, make_cert, postern_bin


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
