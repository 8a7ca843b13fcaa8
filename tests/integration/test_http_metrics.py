"""/metrics (Prometheus text format) and /healthz, served only on an http
listener with metrics = yes: the counters are real (they move after a
login, a failed login, a message, a TLS handshake)."""

import imaplib
import json
import smtplib

import pytest

from http_helpers import (ALICE, ALICE_PW, metric, parse_prometheus,
                          request, start_http_server)
from postern_harness import client_ctx


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_http_server(module_postern_factory,
                             tmp_path_factory.mktemp("http"), default_cert)


def scrape(srv):
    r = request(srv.ports["metrics"], "GET", "/metrics", host="127.0.0.1")
    assert r.status == 200, r.body
    assert r.header("content-type") == \
        "text/plain; version=0.0.4; charset=utf-8"
    return parse_prometheus(r.body.decode())


def test_metrics_families_and_types(srv):
    samples, types = scrape(srv)
    assert types["postern_connections_total"] == "counter"
    assert types["postern_connections_current"] == "gauge"
    assert types["postern_logins_total"] == "counter"
    assert types["postern_tls_handshakes_total"] == "counter"
    assert types["postern_messages_received_total"] == "counter"
    for proto in ("smtp", "submission", "imap", "pop3", "http"):
        metric(samples, "postern_connections_total", protocol=proto)
        metric(samples, "postern_connections_current", protocol=proto)
    # This scrape's own connection is open while it is answered.
    assert metric(samples, "postern_connections_current",
                  protocol="http") >= 1
    for result in ("ok", "failed", "locked"):
        metric(samples, "postern_logins_total", result=result)


def test_login_counters_move(srv):
    before, _ = scrape(srv)
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                          ssl_context=client_ctx(), timeout=15)
    m.login(ALICE, ALICE_PW)
    m.logout()
    after, _ = scrape(srv)
    assert metric(after, "postern_logins_total", result="ok") == \
        metric(before, "postern_logins_total", result="ok") + 1
    assert metric(after, "postern_connections_total", protocol="imap") == \
        metric(before, "postern_connections_total", protocol="imap") + 1
    assert metric(after, "postern_tls_handshakes_total", protocol="imap",
                  result="ok") == \
        metric(before, "postern_tls_handshakes_total", protocol="imap",
               result="ok") + 1

    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                          ssl_context=client_ctx(), timeout=15)
    with pytest.raises(imaplib.IMAP4.error):
        m.login(ALICE, "wrong")
    m.shutdown()
    later, _ = scrape(srv)
    assert metric(later, "postern_logins_total", result="failed") == \
        metric(after, "postern_logins_total", result="failed") + 1


def test_message_counter_moves(srv):
    before, _ = scrape(srv)
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=15) as s:
        s.sendmail("someone@other.test", [ALICE],
                   b"Subject: hi\r\n\r\nhello\r\n")
    after, _ = scrape(srv)
    assert metric(after, "postern_messages_received_total") == \
        metric(before, "postern_messages_received_total") + 1


def test_healthz(srv):
    r = request(srv.ports["metrics"], "GET", "/healthz", host="127.0.0.1")
    assert r.status == 200
    assert r.body == b"ok\n"
    r = request(srv.ports["metrics"], "HEAD", "/healthz", host="127.0.0.1")
    assert r.status == 200 and r.body == b""


def test_metrics_listener_refuses_other_methods(srv):
    r = request(srv.ports["metrics"], "POST", "/metrics", body=b"x")
    assert r.status == 405
    assert json.loads(r.body)["error"] == 405


def test_healthz_is_503_while_the_data_disk_is_full(postern_factory,
                                                    default_cert, tmp_path):
    """The data directory on a 32 MiB tmpfs of its own: 200, then 503
    naming the full file system once a file takes every block, then 200
    again when it is gone."""
    from scratch_fs import Tmpfs, fill
    with Tmpfs(tmp_path / "fs", size_kb=32 * 1024) as fs:
        srv = start_http_server(postern_factory, fs.mnt / "srv",
                                default_cert)
        try:
            r = request(srv.ports["metrics"], "GET", "/healthz")
            assert r.status == 200, r.body
            filler = fs.mnt / "filler"
            fill(filler)
            r = request(srv.ports["metrics"], "GET", "/healthz")
            assert r.status == 503, r.body
            assert "full" in json.loads(r.body)["message"]
            filler.unlink()
            r = request(srv.ports["metrics"], "GET", "/healthz")
            assert r.status == 200, r.body
        finally:
            srv.stop()
