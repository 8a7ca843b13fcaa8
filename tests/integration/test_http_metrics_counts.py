"""/metrics counts what happened, exactly, read with Prometheus's own
text-format parser (prometheus_client.parser, Debian's
python3-prometheus-client): 3 messages delivered are +3 local deliveries;
2 outside recipients queued are +2 and a queue of 2 with its oldest entry's
age; 2 clients in IDLE are a gauge of 2 that falls as they leave; TLS
handshakes by protocol, ok and failed; the store's commit histogram moves
with each commit; memory in use; a bounce (NXDOMAIN from a private
dnsmasq) is +1 bounced and +1 local delivery (the report)."""

import imaplib
import smtplib
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dns_helpers import Dnsmasq, needs_dnsmasq
from http_helpers import ALICE, ALICE_PW, request, start_http_server
from postern_harness import add_user, client_ctx

BOB, BOB_PW = "bob@example.test", "bob-pw-2"


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    # concurrency = 0: the queue runner starts no delivery, so what is
    # queued stays for the test to count.
    s = start_http_server(module_postern_factory,
                          tmp_path_factory.mktemp("http"), default_cert,
                          queue={"concurrency": 0})
    add_user(s.admin_config, BOB, BOB_PW)
    return s


def scrape(srv):
    """{(sample name, frozenset(labels)): value} and {family: type}."""
    r = request(srv.ports["metrics"], "GET", "/metrics", host="127.0.0.1")
    assert r.status == 200, r.body
    samples, types = {}, {}
    for fam in text_string_to_metric_families(r.body.decode()):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, key
            samples[key] = s.value
    return samples, types


def m(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def wait_metric(srv, fn, want, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        samples, _ = scrape(srv)
        got = fn(samples)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_every_family_parses_with_its_type(srv):
    samples, types = scrape(srv)
    assert types["postern_local_deliveries"] == "counter"
    assert types["postern_queued_recipients"] == "counter"
    assert types["postern_messages_bounced"] == "counter"
    assert types["postern_queue_size"] == "gauge"
    assert types["postern_queue_oldest_age_seconds"] == "gauge"
    assert types["postern_imap_idle_sessions"] == "gauge"
    assert types["postern_store_commit_seconds"] == "histogram"
    assert types["postern_memory_resident_bytes"] == "gauge"
    assert types["postern_memory_heap_bytes"] == "gauge"
    assert types["postern_tls_handshakes"] == "counter"
    for proto in ("smtp", "submission", "imap", "pop3", "http"):
        for result in ("ok", "failed"):
            m(samples, "postern_tls_handshakes_total", protocol=proto,
              result=result)
    # A process of a few threads and a SQLite cache holds megabytes.
    assert m(samples, "postern_memory_resident_bytes") > 1 << 20
    assert m(samples, "postern_memory_heap_bytes") > 0


def commit_histogram(samples):
    buckets = sorted(
        (float(dict(k[1])["le"]), v) for k, v in samples.items()
        if k[0] == "postern_store_commit_seconds_bucket")
    return buckets, m(samples, "postern_store_commit_seconds_count"), \
        m(samples, "postern_store_commit_seconds_sum")


def test_three_messages_are_three_local_deliveries(srv):
    before, _ = scrape(srv)
    for i in range(3):
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=15) as s:
            s.sendmail("someone@other.test", [ALICE],
                       b"Subject: %d\r\n\r\nhello\r\n" % i)
    after, _ = scrape(srv)
    d = lambda name, **kw: m(after, name, **kw) - m(before, name, **kw)
    assert d("postern_local_deliveries_total") == 3
    assert d("postern_messages_received_total") == 3
    assert d("postern_queued_recipients_total") == 0
    # One message to two accounts is two local copies.
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=15) as s:
        s.sendmail("someone@other.test", [ALICE, BOB],
                   b"Subject: both\r\n\r\nhello\r\n")
    later, _ = scrape(srv)
    assert m(later, "postern_local_deliveries_total") - \
        m(after, "postern_local_deliveries_total") == 2
    # Each delivery was a commit of the store (at least; accounts and
    # sessions commit too); the buckets are cumulative, +Inf the count.
    b0, c0, s0 = commit_histogram(before)
    b1, c1, s1 = commit_histogram(later)
    assert c1 - c0 >= 4 and s1 > s0
    assert b1[-1] == (float("inf"), c1)
    values = [v for _, v in b1]
    assert values == sorted(values)
    assert [le for le, _ in b1][:3] == [0.0005, 0.001, 0.0025]


def test_queued_recipients_and_the_queue_size_and_age(srv):
    before, _ = scrape(srv)
    with smtplib.SMTP("127.0.0.1", srv.ports["submission"],
                      timeout=15) as s:
        s.starttls(context=client_ctx())
        s.login(ALICE, ALICE_PW)
        s.sendmail(ALICE, ["x@far.test", "y@far.test", BOB],
                   b"From: " + ALICE.encode() +
                   b"\r\nSubject: out\r\n\r\nhello\r\n")
    after, _ = scrape(srv)
    d = lambda name: m(after, name) - m(before, name)
    assert d("postern_queued_recipients_total") == 2
    assert d("postern_local_deliveries_total") == 1
    assert d("postern_queue_size") == 2
    time.sleep(2.1)
    later, _ = scrape(srv)
    assert m(later, "postern_queue_size") == m(after, "postern_queue_size")
    assert m(later, "postern_queue_oldest_age_seconds") >= 2
    assert m(later, "postern_queue_oldest_age_seconds") < 600


def imap_idle(srv):
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                          ssl_context=client_ctx(), timeout=15)
    c.login(ALICE, ALICE_PW)
    c.select("INBOX")
    c.send(b"i1 IDLE\r\n")
    assert c.readline().startswith(b"+ ")
    return c


def idle(samples):
    return m(samples, "postern_imap_idle_sessions")


def test_idle_sessions_gauge(srv):
    assert idle(scrape(srv)[0]) == 0
    a, b = imap_idle(srv), imap_idle(srv)
    assert idle(scrape(srv)[0]) == 2
    a.send(b"DONE\r\n")
    while True:
        line = a.readline()
        if line.startswith(b"i1 "):
            break
    assert line.startswith(b"i1 OK"), line
    assert idle(scrape(srv)[0]) == 1
    # A client that goes away while idling leaves the gauge too.
    b.shutdown()
    assert wait_metric(srv, idle, 0) == 0
    a.logout()
    assert idle(scrape(srv)[0]) == 0


def test_tls_handshakes_by_protocol(srv):
    before, _ = scrape(srv)
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                          ssl_context=client_ctx(), timeout=15)
    c.logout()
    # Not TLS at all: a failed handshake on the IMAP listener.
    with socket.create_connection(("127.0.0.1", srv.ports["imaps"]),
                                  timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            s.recv(100)
        except ConnectionResetError:
            pass
    tls = lambda smp, p, r: m(smp, "postern_tls_handshakes_total",
                              protocol=p, result=r)
    fn = lambda smp: (tls(smp, "imap", "ok") - tls(before, "imap", "ok"),
                      tls(smp, "imap", "failed") -
                      tls(before, "imap", "failed"))
    assert wait_metric(srv, fn, (1, 1)) == (1, 1)
    after, _ = scrape(srv)
    assert tls(after, "pop3", "ok") == tls(before, "pop3", "ok")
    # The scrape itself is plain HTTP: no handshake of its own.
    assert tls(after, "http", "ok") == tls(before, "http", "ok")
    raw = socket.create_connection(("127.0.0.1", srv.ports["https"]),
                                   timeout=10)
    client_ctx().wrap_socket(raw).close()
    fn = lambda smp: tls(smp, "http", "ok") - tls(before, "http", "ok")
    assert wait_metric(srv, fn, 1) == 1


@needs_dnsmasq
def test_a_bounce_is_counted_once(postern_factory, default_cert, tmp_path):
    """x@nx.test does not exist (a private dnsmasq answers NXDOMAIN for
    all of .test): the queue bounces at once, one report to alice for
    both recipients."""
    dns_dir = tmp_path / "dns"
    dns_dir.mkdir()
    dns = Dnsmasq(dns_dir, [])
    try:
        srv = start_http_server(
            postern_factory, tmp_path / "srv", default_cert,
            queue={"resolver": "127.0.0.1", "resolver_port": dns.port})
        before, _ = scrape(srv)
        with smtplib.SMTP("127.0.0.1", srv.ports["submission"],
                          timeout=15) as s:
            s.starttls(context=client_ctx())
            s.login(ALICE, ALICE_PW)
            s.sendmail(ALICE, ["x@nx.test", "y@nx.test"],
                       b"From: " + ALICE.encode() +
                       b"\r\nSubject: nowhere\r\n\r\nhello\r\n")
        # The report is counted before the entries are finished: wait
        # for both.
        fn = lambda smp: (m(smp, "postern_messages_bounced_total") -
                          m(before, "postern_messages_bounced_total"),
                          m(smp, "postern_queue_recipients_total",
                            result="failed") -
                          m(before, "postern_queue_recipients_total",
                            result="failed"),
                          m(smp, "postern_queue_size"))
        assert wait_metric(srv, fn, (1, 2, 0)) == (1, 2, 0)
        after, _ = scrape(srv)
        d = lambda name, **kw: m(after, name, **kw) - m(before, name, **kw)
        assert d("postern_queued_recipients_total") == 2
        assert d("postern_local_deliveries_total") == 1     # the report
        assert m(after, "postern_queue_size") == 0
        assert m(after, "postern_queue_oldest_age_seconds") == 0
        c = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                              ssl_context=client_ctx(), timeout=15)
        c.login(ALICE, ALICE_PW)
        typ, data = c.select("INBOX")
        assert data == [b"1"]
        c.logout()
    finally:
        dns.stop()
