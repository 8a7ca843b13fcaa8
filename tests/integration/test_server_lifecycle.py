"""Signals: SIGTERM (stop accepting, grace, goodbye, exit 0) and SIGHUP
(reload of configuration and certificates; a bad file keeps the old
configuration). Also the shape of the log lines."""

import shutil
import signal

import pytest

from postern_harness import (HOSTNAME, LOG_LINE_RE, Cert, client_ctx,
                             make_cert, smtp_starttls, wait_refused)

SMTP_GREETING = b"220 mail.example.test ESMTP postern\r\n"


# --- SIGTERM ------------------------------------------------------------------


def test_sigterm_on_an_idle_server_exits_0_and_closes_every_port(
        postern_factory):
    srv = postern_factory()
    ports = dict(srv.ports)
    assert srv.stop() == 0, srv.log_text()
    for name, port in ports.items():
        assert wait_refused(port, timeout=1), \
            "listener %s (port %d) still accepts after exit" % (name, port)


def test_sigterm_stops_accepting_but_serves_open_sessions(postern_factory):
    srv = postern_factory(timeouts={"shutdown_grace": "5s"},
                          listeners=[("smtp", "smtp", "none"),
                                     ("imaps", "imap", "implicit")])
    conn, greeting = srv.greet("smtp")
    with conn:
        assert greeting == SMTP_GREETING
        srv.signal(signal.SIGTERM)
        assert wait_refused(srv.ports["smtp"], timeout=3), \
            "new connections still accepted after SIGTERM"
        assert wait_refused(srv.ports["imaps"], timeout=1)
        # Within the grace period the open session is served as usual.
        conn.send(b"NOOP\r\n")
        assert conn.readline() == b"250 2.0.0 OK\r\n"
        conn.send(b"QUIT\r\n")
        assert conn.readline().startswith(b"221 2.0.0 ")
        assert conn.wait_closed() == b""
    assert srv.stop() == 0, srv.log_text()


GOODBYES = {
    "smtp": [("smtp", b"421 4.3.2 "), ("submissions", b"421 4.3.2 ")],
    "imap": [("imap", b"* BYE "), ("imaps", b"* BYE ")],
    "pop3": [("pop3", b"-ERR "), ("pop3s", b"-ERR ")],
}


@pytest.mark.parametrize("protocol", sorted(GOODBYES))
def test_sigterm_says_goodbye_to_sessions_left_at_the_end_of_grace(
        postern_factory, protocol):
    srv = postern_factory(timeouts={"shutdown_grace": "1s"})
    conns = []
    try:
        for listener, _ in GOODBYES[protocol]:
            conn, _ = srv.greet(listener)
            conns.append(conn)
        srv.signal(signal.SIGTERM)
        for conn, (listener, goodbye) in zip(conns, GOODBYES[protocol]):
            line = conn.readline(timeout=srv.grace + 8)
            assert line.startswith(goodbye), \
                "%s: expected %r..., got %r" % (listener, goodbye, line)
            assert line.endswith(b"\r\n"), line
            assert conn.wait_closed(timeout=5) == b"", listener
    finally:
        for conn in conns:
            conn.close()
    assert srv.stop() == 0, srv.log_text()


# --- SIGHUP -------------------------------------------------------------------


def _copy_cert(src, dst):
    shutil.copyfile(src.cert_path, dst.cert_path)
    shutil.copyfile(src.key_path, dst.key_path)


@pytest.fixture
def live_cert(tmp_path, default_cert):
    """A certificate at paths of this test, initially the default one."""
    live = Cert(tmp_path / "live.pem", tmp_path / "live.key")
    _copy_cert(default_cert, live)
    return live


@pytest.fixture
def new_cert(tmp_path):
    """Another certificate for the same name."""
    return make_cert(tmp_path / "new", "new", HOSTNAME, [HOSTNAME])


def test_sighup_serves_the_new_certificate_to_new_connections(
        postern_factory, live_cert, new_cert, default_cert):
    srv = postern_factory(certs=[("main", live_cert)])
    old_plain, _ = srv.greet("smtp")
    old_tls = srv.connect("imaps", tls_ctx=client_ctx())
    try:
        assert old_tls.peer_cert_der() == default_cert.der
        assert old_tls.readline().startswith(b"* OK ")

        _copy_cert(new_cert, live_cert)
        line = srv.reload()
        assert "event=config.reloaded" in line, line

        with srv.connect("imaps", tls_ctx=client_ctx()) as conn:
            assert conn.peer_cert_der() == new_cert.der, \
                "implicit TLS still serves the old certificate"
            assert conn.readline().startswith(b"* OK ")
        conn, _ = srv.greet("submission")
        with conn:
            smtp_starttls(conn, client_ctx(new_cert.cert_path))
            assert conn.peer_cert_der() == new_cert.der
            conn.send(b"NOOP\r\n")
            assert conn.readline() == b"250 2.0.0 OK\r\n"

        # Sessions from before the reload are still open and served.
        old_plain.send(b"NOOP\r\n")
        assert old_plain.readline() == b"250 2.0.0 OK\r\n"
        old_tls.send(b"a1 NOOP\r\n")
        _, tagged = old_tls.read_imap_tagged(b"a1")
        assert tagged.startswith(b"a1 OK"), tagged
    finally:
        old_plain.close()
        old_tls.close()


def test_sighup_applies_the_new_configuration_to_new_connections(
        postern_factory):
    srv = postern_factory(listeners=[("smtp", "smtp", "none")])
    old, greeting = srv.greet("smtp")
    with old:
        assert greeting == SMTP_GREETING
        srv.write_config(server={"hostname": "mx2.example.test"})
        line = srv.reload()
        assert "event=config.reloaded" in line, line
        conn, greeting = srv.greet("smtp")
        with conn:
            assert greeting == b"220 mx2.example.test ESMTP postern\r\n"
        old.send(b"NOOP\r\n")
        assert old.readline() == b"250 2.0.0 OK\r\n"


def test_sighup_several_times_keeps_serving(postern_factory):
    srv = postern_factory(listeners=[("smtp", "smtp", "none")])
    for _ in range(3):
        line = srv.reload()
        assert "event=config.reloaded" in line, line
        conn, greeting = srv.greet("smtp")
        with conn:
            assert greeting == SMTP_GREETING


def test_sighup_with_a_bad_file_keeps_the_old_configuration(
        postern_factory):
    srv = postern_factory(listeners=[("smtp", "smtp", "none")])
    good = srv.config_path.read_text()
    bad = good.replace("hostname = mail.example.test",
                       "hostname = mx2.example.test")
    bad = bad.replace("port = 0", "port = 70000")
    bad_line = bad.splitlines().index("port = 70000") + 1
    srv.write_config(config_text=bad)

    line = srv.reload()
    assert "event=config.reload_failed" in line, line
    assert " level=error " in line, line
    assert "key 'port'" in line, line
    assert ":%d:" % bad_line in line, line
    assert srv.is_running()

    # Still serving, with the old hostname.
    conn, greeting = srv.greet("smtp")
    with conn:
        assert greeting == SMTP_GREETING

    # A fixed file is taken by the next SIGHUP.
    srv.write_config(config_text=good.replace(
        "hostname = mail.example.test", "hostname = mx3.example.test"))
    line = srv.reload()
    assert "event=config.reloaded" in line, line
    conn, greeting = srv.greet("smtp")
    with conn:
        assert greeting == b"220 mx3.example.test ESMTP postern\r\n"


def test_sighup_with_a_broken_certificate_keeps_the_old_one(
        postern_factory, live_cert, default_cert):
    srv = postern_factory(certs=[("main", live_cert)])
    live_cert.cert_path.write_text("-----BEGIN CERTIFICATE-----\n"
                                   "bm90IGEgY2VydGlmaWNhdGU=\n"
                                   "-----END CERTIFICATE-----\n")
    line = srv.reload()
    assert "event=config.reload_failed" in line, line
    assert " level=error " in line, line
    assert srv.is_running()
    with srv.connect("imaps", tls_ctx=client_ctx()) as conn:
        assert conn.peer_cert_der() == default_cert.der
        assert conn.readline().startswith(b"* OK ")


# --- logs ---------------------------------------------------------------------


def test_every_log_line_is_timestamped_key_value(postern_factory):
    srv = postern_factory()
    conn, _ = srv.greet("smtp")
    with conn:
        smtp_starttls(conn, client_ctx(srv.cert.cert_path))
        conn.send(b"QUIT\r\n")
        conn.readline()
    conn, _ = srv.greet("pop3s")
    conn.close()
    srv.reload()
    assert srv.stop() == 0
    lines = srv.log_lines()
    assert lines, "nothing logged"
    bad = [l for l in lines if not LOG_LINE_RE.match(l)]
    assert bad == [], bad
