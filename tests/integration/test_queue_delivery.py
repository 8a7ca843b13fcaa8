"""Outbound delivery (issue #8) between real servers: postern A
(a.test, SMTP on 127.0.0.2:25) and postern B (b.test, SMTP on
127.0.0.3:25), with dnsmasq on loopback publishing their MX records. Mail
submitted on A for b.test is looked up (MX by preference, a dead first MX
skipped, then the host's address), handed to B over SMTP with STARTTLS,
PIPELINING and several recipients in one transaction, DKIM-signed
(rsa-sha256 and ed25519-sha256, checked with dkimpy against the record
`postern dkim show` prints), and lands in B's INBOX. Refusals (550), DNS
failures (NXDOMAIN, null MX) and a message too big for the peer come back
to the sender's INBOX on A as RFC 3464 reports, never for the null
sender; a 4xx or a peer that is down leaves the mail deferred with the
reason (and a delay warning), and `postern queue retry` delivers it once
the peer takes it; a kill -9 of A in the middle of a delivery costs a
duplicate, never the message. Fake peers on further loopback addresses
check the client's bytes on the wire and the TLS policies."""

import email
import email.policy
import json
import os
import re
import shutil
import socket
import signal
import subprocess
import threading
import time
import uuid

import pytest

from postern_harness import (QUEUED_RE, add_user, admin_ok, connect_from,
                             render_config, smtp_auth_plain, smtp_cmd,
                             smtp_open, smtp_send_data)
from store_peek import StorePeek

ALICE, ALICE_PW = "alice@a.test", "alice-Secret-1"
AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
A_IP, B_IP, C_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
D_IP, A2_IP = "127.0.0.5", "127.0.0.6"
E_IP, F_IP = "127.0.0.7", "127.0.0.8"
I_IP, J_IP, M_IP = "127.0.0.10", "127.0.0.11", "127.0.0.12"
# A client in A's trusted_networks: it may use a.test as sender without
# logging in (a forwarding host, an application).
TRUSTED_IP = "127.0.0.20"

# dnsmasq is in the Makefile's PACKAGES: a missing one fails the run
# (tests/skip-allowlist.txt); only an ordinary user may skip these.
pytestmark = [
    pytest.mark.skipif(shutil.which("dnsmasq") is None,
                       reason="needs dnsmasq (Debian package dnsmasq-base)"),
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="needs root (CI runs as root) for port 25"),
]


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    """dnsmasq on 127.0.0.1, authoritative for .test: MX records of
    b.test and c.test, a null MX (RFC 7505) for nullmx.test; every other
    name under .test is NXDOMAIN."""
    d = tmp_path_factory.mktemp("dns")
    port = free_udp_port()
    conf = d / "dnsmasq.conf"
    conf.write_text("\n".join([
        "port=%d" % port, "listen-address=127.0.0.1", "bind-interfaces",
        "no-resolv", "no-hosts", "local=/test/",
        "mx-host=a.test,mx.a.test,10", "host-record=mx.a.test,%s" % A_IP,
        # b.test: a dead first MX, then the real one (RFC 5321 §5.1).
        "mx-host=b.test,mx0.b.test,5", "host-record=mx0.b.test,127.0.0.9",
        "mx-host=b.test,mx.b.test,10", "host-record=mx.b.test,%s" % B_IP,
        "mx-host=c.test,mx.c.test,10", "host-record=mx.c.test,%s" % C_IP,
        "mx-host=d.test,mx.d.test,10", "host-record=mx.d.test,%s" % D_IP,
        "mx-host=e.test,mx.e.test,10", "host-record=mx.e.test,%s" % E_IP,
        # f.test has no MX: its own address (RFC 5321 §5.1).
        "host-record=f.test,%s" % F_IP,
        "mx-host=i.test,mx.i.test,10", "host-record=mx.i.test,%s" % I_IP,
        "mx-host=j.test,mx.j.test,10", "host-record=mx.j.test,%s" % J_IP,
        "mx-host=k.test,mx.k.test,10", "host-record=mx.k.test,%s" % B_IP,
        "mx-host=m.test,mx.m.test,10", "host-record=mx.m.test,%s" % M_IP,
        "mx-host=nullmx.test,.,0", ""]))
    log = open(d / "dnsmasq.log", "wb")
    proc = subprocess.Popen(
        ["dnsmasq", "--keep-in-foreground", "--conf-file=%s" % conf,
         "--pid-file=", "--log-facility=-", "--log-queries"],
        stdout=log, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    assert proc.poll() is None, (d / "dnsmasq.log").read_text()
    yield port
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def start_mx(factory, tmp_path_factory, cert, name, ip, domain, users,
             dns_port, submission=False, queue=None, server=None):
    d = tmp_path_factory.mktemp(name)
    data = d / "data"
    data.mkdir(mode=0o700)
    listeners = [("smtp", "smtp", "starttls", 25)]
    sections = [
        ("server", dict({"hostname": "mx.%s" % domain,
                         "data_dir": str(data), "workers": 2,
                         "log_level": "debug", "user": "root",
                         "allow_plaintext_auth": "yes"}, **(server or {}))),
        ("timeouts", {"shutdown_grace": "1s"}),
        ("queue", dict({"resolver": "127.0.0.1",
                        "resolver_port": dns_port, "poll_interval": "1s",
                        "retry_first": "1h", "timeout": "10s"},
                       **(queue or {}))),
        ("certificate main", {"cert": str(cert.cert_path),
                              "key": str(cert.key_path)}),
        ("listener smtp", {"address": ip, "port": 25, "protocol": "smtp",
                           "tls": "starttls"}),
    ]
    if submission:
        listeners.append(("submission", "submission", "none"))
        sections.append(("listener submission",
                         {"address": "127.0.0.1", "port": 0,
                          "protocol": "submission", "tls": "none"}))
    text, _ = render_config(sections)
    path = d / "postern.conf"
    path.write_text(text)
    admin_ok(path, "domain", "add", domain)
    for address, password in users:
        add_user(path, address, password)
    srv = factory(config_text=text, listeners=listeners)
    srv.admin_config = path
    srv.peek = StorePeek(data)
    return srv


@pytest.fixture(scope="module")
def servers(module_postern_factory, default_cert, tmp_path_factory, dns):
    a = start_mx(module_postern_factory, tmp_path_factory, default_cert,
                 "a", A_IP, "a.test", [(ALICE, ALICE_PW)], dns,
                 submission=True, queue={
                     "delay_warning": "1s", "concurrency_per_domain": 1,
                     "tls_domains": "i.test:none j.test:encrypt "
                                    "k.test:verify"},
                 server={"trusted_networks": TRUSTED_IP + "/32"})
    b = start_mx(module_postern_factory, tmp_path_factory, default_cert,
                 "b", B_IP, "b.test", [("bob@b.test", "bob-Secret-1"),
                                       ("carol@b.test", "carol-Secret-1")],
                 dns)
    return a, b


def submit(a, rcpts, extra=b"", mail_params="", rcpt_params=""):
    """alice submits a message to rcpts on A; returns its token."""
    tok = uuid.uuid4().hex
    conn, _ = smtp_open(a, "submission")
    with conn:
        assert smtp_auth_plain(conn, ALICE, ALICE_PW).raw == [AUTH_OK]
        assert smtp_cmd(conn, "MAIL FROM:<%s>%s" % (ALICE, mail_params)) \
            .code == 250
        for r in rcpts:
            assert smtp_cmd(conn, "RCPT TO:<%s>%s" % (r, rcpt_params)) \
                .code == 250, r
        assert smtp_cmd(conn, "DATA").code == 354
        r = smtp_send_data(conn, b"From: Alice <alice@a.test>\r\n"
                           b"To: someone@elsewhere\r\n"
                           b"Subject: t " + tok.encode() +
                           b"\r\nMessage-ID: <" + tok.encode() +
                           b"@a.test>\r\n\r\nhello " + tok.encode() +
                           b"\r\n..a line starting with a dot\r\n" + extra)
        assert QUEUED_RE.match(r.raw[0]), r.raw
    return tok


def wait_for(what, fn, timeout=30):
    end = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > end:
            pytest.fail("timed out waiting for " + what)
        time.sleep(0.2)


def queue_of(srv):
    return json.loads(admin_ok(srv.admin_config, "queue", "list", "--json"))


def entries_for(srv, rcpt):
    return [e for e in queue_of(srv) if e["rcpt"] == rcpt]


def stored(srv, address, tok):
    found = srv.peek.find(address, tok.encode())
    return found


def report_of(a, tok):
    """The report in alice's INBOX that quotes the message tok, parsed."""
    found = wait_for("a report to alice", lambda: stored(a, ALICE, tok))
    assert len(found) == 1, found
    raw = found[0] if isinstance(found[0], bytes) else \
        a.peek.blob_bytes(found[0]["blob"])
    return raw, email.message_from_bytes(raw, policy=email.policy.default)


def test_mx_delivery_with_starttls_to_b_inbox(servers):
    a, b = servers
    tok = submit(a, ["bob@b.test"])
    found = wait_for("bob's copy on B", lambda: stored(b, "bob@b.test", tok))
    assert len(found) == 1
    raw = found[0] if isinstance(found[0], bytes) else \
        b.peek.blob_bytes(found[0]["blob"])
    # The dot-stuffed line arrived unstuffed (RFC 5321 §4.5.2).
    assert b"\r\n.a line starting with a dot\r\n" in raw
    wait_for("A's queue to empty", lambda: entries_for(a, "bob@b.test") == [])
    log = a.log_text()
    # The dead MX (preference 5) was tried first, then mx.b.test.
    assert "queue.connect host=mx0.b.test address=127.0.0.9" in log
    assert "queue.connect host=mx.b.test address=127.0.0.3 port=25" in log
    assert "queue.tls host=mx.b.test version=TLSv1.3" in log
    # B's Received line records TLS.
    assert b"ESMTPS" in raw or b"TLS" in raw, raw[:600]


def test_several_recipients_in_one_transaction(servers):
    a, b = servers
    mark = len(a.log_text())
    tok = submit(a, ["bob@b.test", "carol@b.test"])
    wait_for("bob's copy", lambda: stored(b, "bob@b.test", tok))
    wait_for("carol's copy", lambda: stored(b, "carol@b.test", tok))
    log = a.log_text()[mark:]
    assert "queue.start domain=b.test from=<%s> recipients=2" % ALICE in log
    assert b.peek.total_messages() >= 2


def test_550_comes_back_as_a_report_naming_the_recipient(servers):
    a, b = servers
    tok = submit(a, ["nobody@b.test", "bob@b.test"])
    wait_for("bob's copy", lambda: stored(b, "bob@b.test", tok))
    raw, msg = report_of(a, tok)
    head = raw.split(b"\r\n\r\n")[0] + b"\r\n"
    assert head.startswith(
        b"From: Mail Delivery System <MAILER-DAEMON@mx.a.test>\r\n"
        b"To: <alice@a.test>\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"), head
    assert b"\r\nAuto-Submitted: auto-replied\r\n" in head
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    text = parts[0].get_content()
    assert "<nobody@b.test>: host mx.b.test said: 550" in text, text
    status = raw.split(b"Content-Type: message/delivery-status")[1]
    assert b"Reporting-MTA: dns; mx.a.test\r\n" in status
    assert b"Final-Recipient: rfc822; nobody@b.test\r\n" in status
    assert b"Action: failed\r\n" in status
    assert b"Status: 5.1.1\r\n" in status
    assert b"Remote-MTA: dns; mx.b.test\r\n" in status
    assert b"Diagnostic-Code: smtp; 550 5.1.1 " in status
    assert b"bob@b.test" not in status.split(b"text/rfc822-headers")[0]
    assert b"Message-ID: <" + tok.encode() + b"@a.test>" in raw
    assert entries_for(a, "nobody@b.test") == []


def test_nxdomain_and_null_mx_bounce_at_once(servers):
    a, _ = servers
    tok = submit(a, ["x@nx.test"])
    raw, _ = report_of(a, tok)
    assert b"Final-Recipient: rfc822; x@nx.test\r\n" in raw
    assert b"Status: 5.1.2\r\n" in raw
    assert b"the domain nx.test does not exist" in raw
    tok = submit(a, ["x@nullmx.test"])
    raw, _ = report_of(a, tok)
    assert b"Final-Recipient: rfc822; x@nullmx.test\r\n" in raw
    assert b"Status: 5.1.10\r\n" in raw
    assert b"accepts no mail (null MX)" in raw


def test_no_report_for_the_null_sender(servers):
    """A message with the null sender that fails is dropped without a
    report: a report about a report could loop (RFC 5321 §4.5.5). It
    comes in on A's port 25 for an alias that forwards to a domain that
    does not exist."""
    a, _ = servers
    admin_ok(a.admin_config, "alias", "add", "fwd@a.test", "y@nx.test")
    tok = uuid.uuid4().hex
    conn = connect_from(25, host=A_IP)
    with conn:
        assert conn.readline().startswith(b"220 ")
        assert smtp_cmd(conn, "EHLO outside.example").code == 250
        assert smtp_cmd(conn, "MAIL FROM:<>").code == 250
        assert smtp_cmd(conn, "RCPT TO:<fwd@a.test>").code == 250
        assert smtp_cmd(conn, "DATA").code == 354
        r = smtp_send_data(conn, b"Subject: n " + tok.encode() +
                           b"\r\n\r\nnull sender\r\n")
        assert r.code == 250, r.raw
    wait_for("the entry to go",
             lambda: not entries_for(a, "y@nx.test") and
             "to=<y@nx.test>" in a.log_text())
    time.sleep(1)
    assert stored(a, ALICE, tok) == []


def test_peer_down_defers_then_retry_delivers(servers, module_postern_factory,
                                              default_cert, tmp_path_factory,
                                              dns):
    a, _ = servers
    tok = submit(a, ["dave@c.test"])
    e = wait_for("a deferral", lambda: [x for x in entries_for(
        a, "dave@c.test") if x["attempts"] == 1])[0]
    assert e["state"] == "queued"
    assert e["last_reply"] == "connection refused with mx.c.test", e
    assert e["next_attempt"] > e["created"]
    text = admin_ok(a.admin_config, "queue", "show", str(e["id"]))
    assert "attempts: 1\n" in text
    assert "last reply: connection refused with mx.c.test\n" in text
    # Still down a second later: a second attempt, and the sender hears
    # of the delay once (delay_warning = 1s here; RFC 3464 Action:
    # delayed).
    time.sleep(1.1)
    admin_ok(a.admin_config, "queue", "retry", str(e["id"]))
    wait_for("a second deferral", lambda: [x for x in entries_for(
        a, "dave@c.test") if x["attempts"] == 2])
    raw, msg = report_of(a, tok)
    assert b"Subject: Delayed Mail (still being retried)\r\n" in raw
    assert b"Final-Recipient: rfc822; dave@c.test\r\nAction: delayed\r\n" \
        b"Status: 4.4.1\r\n" in raw, raw
    assert entries_for(a, "dave@c.test")[0]["warned"] is True
    c = start_mx(module_postern_factory, tmp_path_factory, default_cert,
                 "c", C_IP, "c.test", [("dave@c.test", "dave-Secret-1")],
                 dns)
    out = admin_ok(a.admin_config, "queue", "retry", str(e["id"]))
    assert out == "queue entry %d scheduled for delivery now\n" % e["id"]
    wait_for("dave's copy on C", lambda: stored(c, "dave@c.test", tok))
    wait_for("A's queue to empty", lambda: entries_for(a, "dave@c.test") == [])
    # One warning only.
    assert len(stored(a, ALICE, tok)) == 1


def test_4xx_defers_with_the_reply_then_retry_delivers(servers):
    a, b = servers
    add_user(b.admin_config, "erin@b.test", "erin-Secret-1",
             "quota_messages=1")
    first = submit(a, ["erin@b.test"])
    wait_for("erin's first copy", lambda: stored(b, "erin@b.test", first))
    # Erin's mailbox is full now: B answers 452 (RFC 5321 §4.2.5), A
    # keeps the message and says why.
    tok = submit(a, ["erin@b.test"])
    e = wait_for("a deferral", lambda: [x for x in entries_for(
        a, "erin@b.test") if x["attempts"] == 1])[0]
    assert e["last_reply"].startswith("452 4.2.2 <erin@b.test>: Mailbox "
                                      "full"), e
    assert e["state"] == "queued"
    text = admin_ok(a.admin_config, "queue", "list")
    assert ("%d queued from=<%s> to=<erin@b.test> attempts=1 next="
            % (e["id"], ALICE)) in text
    assert "    last reply: 452 4.2.2 <erin@b.test>: Mailbox full" in text
    # No bounce for a 4xx (at most a delay warning).
    assert not [m for m in stored(a, ALICE, tok) if b"Action: failed" in m]
    admin_ok(b.admin_config, "user", "set", "erin@b.test",
             "quota_messages=0")
    admin_ok(a.admin_config, "queue", "retry", "--all")
    wait_for("erin's second copy", lambda: stored(b, "erin@b.test", tok))
    wait_for("A's queue to empty", lambda: entries_for(a, "erin@b.test") == [])


class StallingPeer:
    """A fake MX on D_IP:25 that takes the whole message and then, the
    first time, never answers the final dot (so that the sender is in the
    middle of delivery); later sessions get 250. Keeps every message."""

    def __init__(self):
        self.messages = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((D_IP, 25))
        self.sock.listen(8)
        self.stalled = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,),
                             daemon=True).start()

    def session(self, conn):
        f = conn.makefile("rb")
        try:
            conn.sendall(b"220 mx.d.test fake\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line[:4].upper()
                if cmd == b"DATA":
                    conn.sendall(b"354 go\r\n")
                    body = b""
                    while not body.endswith(b"\r\n.\r\n"):
                        chunk = f.readline()
                        if not chunk:
                            return
                        body += chunk
                    self.messages.append(body)
                    if len(self.messages) == 1:
                        self.stalled.set()
                        f.read()        # until the sender is gone
                        return
                    conn.sendall(b"250 2.0.0 ok\r\n")
                elif cmd == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def test_kill_9_in_the_middle_of_delivery_loses_nothing(
        postern_factory, default_cert, tmp_path_factory, dns):
    peer = StallingPeer()
    try:
        a = start_mx(postern_factory, tmp_path_factory, default_cert, "a2",
                     A2_IP, "a.test", [(ALICE, ALICE_PW)], dns,
                     submission=True)
        tok = submit(a, ["dan@d.test"])
        assert peer.stalled.wait(20), a.log_text()
        # The entry is leased, the peer has the data but said nothing.
        e = entries_for(a, "dan@d.test")[0]
        assert e["in_delivery"] is True and e["attempts"] == 0
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        # The same data directory again: the lease of the dead process
        # ends at start, the message goes again and is delivered.
        again = postern_factory(config_text=a.admin_config.read_text(),
                                listeners=[("smtp", "smtp", "starttls", 25),
                                           ("submission", "submission",
                                            "none")])
        again.admin_config = a.admin_config
        wait_for("the second delivery", lambda: len(peer.messages) == 2)
        wait_for("A's queue to empty",
                 lambda: entries_for(again, "dan@d.test") == [])
        assert all(tok.encode() in m for m in peer.messages)
        assert "result=delivered" in again.log_text()
    finally:
        peer.close()


def dkim_dns(a):
    """What a verifier's DNS lookup of a.test's selector would return: the
    record `postern dkim show` says to publish."""
    rec = json.loads(admin_ok(a.admin_config, "dkim", "show", "a.test",
                              "--json"))

    def lookup(name, timeout=5):
        if name.decode().rstrip(".") == rec["name"]:
            return rec["value"].encode()
        return None
    return rec, lookup


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_dkim_signature_made_on_a_verifies_at_b(servers, kind):
    dkim = pytest.importorskip("dkim")
    a, b = servers
    sel = "s-" + kind
    args = ["--ed25519"] if kind == "ed25519" else []
    out = admin_ok(a.admin_config, "dkim", "generate", "a.test",
                   "--selector", sel, *args)
    assert ('%s._domainkey.a.test. IN TXT ("v=DKIM1; k=%s; " "p='
            % (sel, kind)) in out, out
    rec, lookup = dkim_dns(a)
    assert rec["selector"] == sel and rec["key_type"] == kind
    tok = submit(a, ["bob@b.test"], extra=b"trailing spaces   \r\n\r\n\r\n")
    raw = wait_for("bob's copy", lambda: stored(b, "bob@b.test", tok))[0]
    algo = b"ed25519-sha256" if kind == "ed25519" else b"rsa-sha256"
    assert (b"\r\nDKIM-Signature: v=1; a=" + algo +
            b"; c=relaxed/relaxed; d=a.test; s=" + sel.encode() +
            b";\r\n\tt=") in raw, raw[:800]
    assert dkim.verify(raw, dnsfunc=lookup)
    # The check is real: a changed body or a changed subject fails.
    assert not dkim.verify(raw.replace(b"hello", b"jello"), dnsfunc=lookup)
    assert not dkim.verify(raw.replace(b"Subject: t", b"Subject: T"),
                           dnsfunc=lookup)
    assert ("queue.dkim domain=a.test selector=%s result=signed" % sel) \
        in a.log_text()


def test_dkim_generate_refuses_foreign_domains_and_bad_selectors(servers):
    a, _ = servers
    from postern_harness import run_admin
    r = run_admin(a.admin_config, "dkim", "generate", "b.test")
    assert r.returncode == 1
    assert r.stderr == "postern: cannot make a DKIM key for b.test: not " \
        "one of our domains (postern domain add)\n"
    r = run_admin(a.admin_config, "dkim", "generate", "a.test",
                  "--selector", "bad.sel")
    assert r.returncode == 2
    r = run_admin(a.admin_config, "dkim", "show", "b.test")
    assert r.returncode == 1


class ScriptedPeer:
    """A fake MX on ip:25 that keeps a transcript of what the client
    sends, byte for byte, and answers from a script: ehlo is its EHLO
    reply; rcpt_replies answer the RCPTs in order. With pipelining it
    reads MAIL, every RCPT and DATA before it answers any of them (a
    client that waited for the MAIL reply would stall the test)."""

    def __init__(self, ip, ehlo, rcpt_replies, pipelining, greet_delay=0):
        self.ehlo, self.rcpt_replies = ehlo, rcpt_replies
        self.greet_delay = greet_delay
        self.accepted = 0
        self.pipelining = pipelining
        self.lines, self.bodies = [], []
        self.done = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, 25))
        self.sock.listen(4)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.accepted += 1
        conn.settimeout(10)
        f = conn.makefile("rb")

        def line():
            ln = f.readline()
            self.lines.append(ln)
            return ln
        try:
            time.sleep(self.greet_delay)
            conn.sendall(b"220 fake ESMTP\r\n")
            while True:
                ln = line()
                if not ln or ln.upper().startswith(b"QUIT"):
                    conn.sendall(b"221 bye\r\n")
                    break
                if ln.upper().startswith(b"EHLO"):
                    conn.sendall(self.ehlo)
                elif ln.upper().startswith(b"MAIL"):
                    replies = [b"250 2.1.0 ok\r\n"]
                    if self.pipelining:
                        for r in self.rcpt_replies:
                            assert line().upper().startswith(b"RCPT")
                            replies.append(r)
                        assert line().upper().startswith(b"DATA")
                        replies.append(b"354 go\r\n")
                        conn.sendall(b"".join(replies))
                    else:
                        conn.sendall(replies[0])
                        for r in self.rcpt_replies:
                            assert line().upper().startswith(b"RCPT")
                            conn.sendall(r)
                        assert line().upper().startswith(b"DATA")
                        conn.sendall(b"354 go\r\n")
                    body = b""
                    while not body.endswith(b"\r\n.\r\n"):
                        chunk = f.readline()
                        if not chunk:
                            return
                        body += chunk
                    self.bodies.append(body)
                    conn.sendall(b"250 2.0.0 taken\r\n")
                else:
                    conn.sendall(b"502 5.5.1 what\r\n")
        except (OSError, AssertionError) as e:
            self.lines.append(repr(e).encode())
        finally:
            conn.close()
            self.done.set()

    def close(self):
        self.sock.close()


def test_wire_bytes_pipelining_size_dsn_and_partial_refusal(servers):
    a, _ = servers
    peer = ScriptedPeer(E_IP, b"250-mx.e.test\r\n250-PIPELINING\r\n"
                        b"250-SIZE 1000000\r\n250-8BITMIME\r\n"
                        b"250 DSN\r\n",
                        [b"250 2.1.5 ok\r\n",
                         b"550 5.1.1 <u2@e.test>: unknown\r\n"],
                        pipelining=True)
    try:
        tok = submit(a, ["u1@e.test", "u2@e.test"],
                     mail_params=" RET=HDRS ENVID=env42")
        assert peer.done.wait(20), a.log_text()
        lines = peer.lines
        assert lines[0] == b"EHLO mx.a.test\r\n"
        assert lines[1].startswith(b"MAIL FROM:<alice@a.test> SIZE="), lines
        assert lines[1].endswith(b" BODY=8BITMIME RET=HDRS ENVID=env42\r\n")
        assert lines[2:5] == [b"RCPT TO:<u1@e.test>\r\n",
                              b"RCPT TO:<u2@e.test>\r\n", b"DATA\r\n"]
        assert lines[-1] == b"QUIT\r\n"
        body = peer.bodies[0]
        # Dot-stuffed on the wire (RFC 5321 §4.5.2), ending in CRLF.CRLF.
        assert b"\r\n..a line starting with a dot\r\n" in body
        assert body.endswith(b"\r\n.\r\n")
        # SIZE (RFC 1870) is the message as stored, before stuffing.
        n = int(lines[1].split(b"SIZE=")[1].split(b" ")[0])
        assert n == len(body.replace(b"\r\n..", b"\r\n.")) - 3
        # u1 delivered, u2 bounced with the peer's words.
        raw, _ = report_of(a, tok)
        assert b"Final-Recipient: rfc822; u2@e.test\r\n" in raw
        assert b"Diagnostic-Code: smtp; 550 5.1.1 <u2@e.test>: unknown" \
            in raw
        assert b"u1@e.test" not in raw.split(b"message/delivery-status")[1] \
            .split(b"text/rfc822-headers")[0]
        wait_for("A's queue to empty", lambda: not [
            e for e in queue_of(a) if e["domain"] == "e.test"])
    finally:
        peer.close()


def test_without_mx_the_domain_itself_and_no_pipelining(servers):
    """f.test has no MX record: its A record is used (RFC 5321 §5.1). The
    peer offers nothing: one command at a time, no SIZE, no BODY."""
    a, _ = servers
    peer = ScriptedPeer(F_IP, b"250 f.test\r\n", [b"250 ok\r\n"],
                        pipelining=False)
    try:
        submit(a, ["v@f.test"])
        assert peer.done.wait(20), a.log_text()
        assert peer.lines[:4] == [b"EHLO mx.a.test\r\n",
                                  b"MAIL FROM:<alice@a.test>\r\n",
                                  b"RCPT TO:<v@f.test>\r\n", b"DATA\r\n"]
        assert peer.lines[-1] == b"QUIT\r\n"
        wait_for("A's queue to empty", lambda: entries_for(a, "v@f.test")
                 == [])
        assert "queue.connect host=f.test address=127.0.0.8 port=25" in \
            a.log_text()
    finally:
        peer.close()


def test_too_big_for_the_peer_bounces_without_sending(servers):
    a, _ = servers
    peer = ScriptedPeer(E_IP, b"250-mx.e.test\r\n250 SIZE 100\r\n",
                        [b"250 ok\r\n"], pipelining=False)
    try:
        tok = submit(a, ["big@e.test"], extra=b"x" * 200 + b"\r\n")
        raw, _ = report_of(a, tok)
        assert b"Status: 5.3.4\r\n" in raw
        assert b"is larger than mx.e.test accepts (100)" in raw
        assert peer.done.wait(10)
        assert not [ln for ln in peer.lines if ln.startswith(b"MAIL")]
    finally:
        peer.close()


def test_tls_policy_none_encrypt_verify(servers):
    a, _ = servers
    # none: STARTTLS offered, never used.
    peer = ScriptedPeer(I_IP, b"250-mx.i.test\r\n250 STARTTLS\r\n",
                        [b"250 ok\r\n"], pipelining=False)
    try:
        submit(a, ["w@i.test"])
        assert peer.done.wait(20), a.log_text()
        assert peer.lines[:2] == [b"EHLO mx.a.test\r\n",
                                  b"MAIL FROM:<alice@a.test>\r\n"]
    finally:
        peer.close()
    # encrypt: a peer without STARTTLS gets nothing; the mail waits.
    peer = ScriptedPeer(J_IP, b"250 mx.j.test\r\n", [b"250 ok\r\n"],
                        pipelining=False)
    try:
        submit(a, ["w@j.test"])
        e = wait_for("a deferral", lambda: [x for x in entries_for(
            a, "w@j.test") if x["attempts"] == 1])[0]
        assert e["last_reply"] == "TLS is required for j.test but " \
            "mx.j.test does not offer STARTTLS", e
        assert not [ln for ln in peer.lines if ln.startswith(b"MAIL")]
    finally:
        peer.close()
    # verify: B's certificate does not name mx.k.test (nor chain to a
    # trusted root): no delivery.
    submit(a, ["w@k.test"])
    e = wait_for("a deferral", lambda: [x for x in entries_for(
        a, "w@k.test") if x["attempts"] == 1])[0]
    assert e["last_reply"] == "TLS handshake failed with mx.k.test " \
        "(certificate not verified)", e
    for rcpt in ("w@j.test", "w@k.test"):
        admin_ok(a.admin_config, "queue", "delete",
                 str(entries_for(a, rcpt)[0]["id"]))


def test_second_message_reuses_the_connection(servers):
    """concurrency_per_domain = 1 on A: a second message for m.test waits
    for the first one's session and goes on in it (RFC 5321 §3.3), one
    connection, two transactions, one QUIT."""
    a, _ = servers
    peer = ScriptedPeer(M_IP, b"250-mx.m.test\r\n250 PIPELINING\r\n",
                        [b"250 ok\r\n"], pipelining=True, greet_delay=2.5)
    try:
        t1 = submit(a, ["x@m.test"])
        time.sleep(1.2)         # the first is connecting by now
        t2 = submit(a, ["y@m.test"])
        assert peer.done.wait(30), a.log_text()
        assert peer.accepted == 1
        mails = [ln for ln in peer.lines if ln.startswith(b"MAIL")]
        assert len(mails) == 2, peer.lines
        assert peer.lines.count(b"QUIT\r\n") == 1
        assert peer.lines.count(b"EHLO mx.a.test\r\n") == 1
        assert t1.encode() in peer.bodies[0] and t2.encode() in peer.bodies[1]
        assert "queue.reuse host=mx.m.test after=" in a.log_text()
        wait_for("A's queue to empty", lambda: not [
            e for e in queue_of(a) if e["domain"] == "m.test"])
    finally:
        peer.close()


def test_bare_cr_and_lf_go_out_as_crlf_with_dots_stuffed(servers):
    """A body with a bare CR and a bare LF (BDAT takes bytes as they
    are) reaches the next hop with every line end as CRLF (RFC 5321
    §2.3.8) and the dot behind the bare CR doubled (§4.5.2): a peer that
    ends lines at a bare CR must not see a lone "." and end the message
    there, with the rest read as commands."""
    a, _ = servers
    peer = ScriptedPeer(E_IP, b"250-mx.e.test\r\n250 8BITMIME\r\n",
                        [b"250 ok\r\n"], pipelining=False)
    tok = uuid.uuid4().hex.encode()
    body = (b"From: <alice@a.test>\r\nSubject: " + tok + b"\r\n\r\n"
            b"one\r.\r\nMAIL FROM:<x@y>\rtwo\nthree\r\n")
    try:
        conn, _ = smtp_open(a, "submission")
        with conn:
            assert smtp_auth_plain(conn, ALICE, ALICE_PW).raw == [AUTH_OK]
            assert smtp_cmd(conn, "MAIL FROM:<%s>" % ALICE).code == 250
            assert smtp_cmd(conn, "RCPT TO:<cr@e.test>").code == 250
            conn.send(b"BDAT %d LAST\r\n" % len(body) + body)
            r = conn.read_smtp_reply()
            assert QUEUED_RE.match(r.raw[0]), r.raw
        assert peer.done.wait(20), a.log_text()
        got = peer.bodies[0]
        assert tok in got
        assert re.search(rb"\r(?!\n)|(?<!\r)\n", got) is None, got
        assert got.endswith(b"one\r\n..\r\nMAIL FROM:<x@y>\r\ntwo\r\n"
                            b"three\r\n.\r\n"), got
    finally:
        peer.close()


def send_unauthenticated(a, sender, rcpt, body, mail_params="",
                         rcpt_params="", source=None):
    """Another server (no AUTH) hands A a message on port 25, from
    source (an address of ours as sender needs TRUSTED_IP)."""
    conn = connect_from(25, host=A_IP, source=source)
    with conn:
        assert conn.readline().startswith(b"220 ")
        assert smtp_cmd(conn, "EHLO outside.example").code == 250
        r = smtp_cmd(conn, "MAIL FROM:<%s>%s" % (sender, mail_params))
        assert r.code == 250, r.raw
        r = smtp_cmd(conn, "RCPT TO:<%s>%s" % (rcpt, rcpt_params))
        assert r.code == 250, r.raw
        assert smtp_cmd(conn, "DATA").code == 354
        r = smtp_send_data(conn, body)
        assert r.code == 250, r.raw


def test_forwarded_mail_keeps_its_sender_and_is_not_signed(servers):
    """Issue 15, finding 7: a client that did not log in (from a trusted
    network, so that it may use one of our addresses as sender at all)
    writes as ceo@a.test to an alias of A that forwards to b.test. The
    message reaches B with the sender it claimed and without a DKIM
    signature of a.test: only mail a logged-in account sent is signed
    as ours. alice's own submission still is."""
    from postern_harness import run_admin
    a, b = servers
    if run_admin(a.admin_config, "dkim", "show", "a.test").returncode != 0:
        admin_ok(a.admin_config, "dkim", "generate", "a.test",
                 "--selector", "s-fwd")
    admin_ok(a.admin_config, "alias", "add", "fwd-bob@a.test", "bob@b.test")
    tok = uuid.uuid4().hex
    send_unauthenticated(a, "ceo@a.test", "fwd-bob@a.test",
                         b"From: The CEO <ceo@a.test>\r\nSubject: wire "
                         b"money " + tok.encode() + b"\r\n\r\nnow\r\n",
                         source=TRUSTED_IP)
    raw = wait_for("bob's copy", lambda: stored(b, "bob@b.test", tok))[0]
    assert raw.startswith(b"Return-Path: <ceo@a.test>\r\n"), raw[:200]
    assert b"DKIM-Signature:" not in raw, raw[:1500]
    assert "queue.dkim domain=a.test result=unsigned reason=\"not sent " \
        "by a logged-in account\"" in a.log_text()
    tok2 = submit(a, ["bob@b.test"])
    raw = wait_for("bob's copy", lambda: stored(b, "bob@b.test", tok2))[0]
    assert b"\r\nDKIM-Signature: v=1; a=" in raw and b"; d=a.test; " in raw


def test_no_backscatter_from_forwarded_mail(servers):
    """Issue 15, finding 9: mail from a client that did not log in,
    forwarded by an alias, fails (the target domain does not exist) or
    waits: the sender it claimed is outside our domains, so no bounce
    and no delay warning go there, only a log line. A sender of ours
    still hears of the failure, with the header only, whatever RET
    asked: a report never carries such a message back whole."""
    a, _ = servers
    admin_ok(a.admin_config, "alias", "add", "fwd-nx@a.test", "z@nx.test")
    admin_ok(a.admin_config, "alias", "add", "fwd-slow@a.test",
             "slow@j.test")
    victim = "victim-%s@b.test" % uuid.uuid4().hex[:12]
    tok = uuid.uuid4().hex.encode()
    body = b"Subject: bs " + tok + b"\r\n\r\n" + b"x" * 5000 + b"\r\n"
    send_unauthenticated(a, victim, "fwd-nx@a.test", body,
                         mail_params=" RET=FULL")
    wait_for("the bounce to be dropped", lambda: (
        "queue.report to=<%s> action=failed result=dropped" % victim)
        in a.log_text())
    assert "queue.report to=<%s> action=failed recipients" % victim \
        not in a.log_text()
    assert entries_for(a, victim) == []
    # A delay: no warning to the outside sender either (delay_warning
    # is 1 s on A; j.test has no server, every try is refused).
    send_unauthenticated(a, victim, "fwd-slow@a.test", body)
    e = wait_for("a deferral", lambda: [x for x in entries_for(
        a, "slow@j.test") if x["attempts"] == 1])[0]
    time.sleep(1.1)
    admin_ok(a.admin_config, "queue", "retry", str(e["id"]))
    wait_for("the warning to be dropped", lambda: (
        "queue.report to=<%s> action=delayed result=dropped" % victim)
        in a.log_text())
    assert entries_for(a, victim) == []
    admin_ok(a.admin_config, "queue", "delete", str(e["id"]))
    # A sender in our domains (from a trusted network) gets the bounce,
    # the header only.
    send_unauthenticated(a, ALICE, "fwd-nx@a.test", body,
                         mail_params=" RET=FULL", source=TRUSTED_IP)
    raw, msg = report_of(a, tok.decode())
    assert [p.get_content_type() for p in msg.iter_parts()] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert b"xxxxxxxxxx" not in raw


def test_notify_success_on_local_delivery_reports_delivered(servers):
    """Issue 15, finding 19: NOTIFY=SUCCESS for a local recipient gets an
    RFC 3464 report with Action: delivered, to the sender, once the
    message is in the mailbox; ORCPT and ENVID come back in it. From a
    client that did not log in, with a sender outside our domains, the
    report is dropped (no backscatter)."""
    a, _ = servers
    dave = "dave-%s@a.test" % uuid.uuid4().hex[:8]
    add_user(a.admin_config, dave, "dave-Secret-1")
    tok = submit(a, [dave], mail_params=" ENVID=env-ok",
                 rcpt_params=" NOTIFY=SUCCESS ORCPT=rfc822;" + dave.upper())
    wait_for("dave's copy", lambda: stored(a, dave, tok))
    raw, msg = report_of(a, tok)
    assert b"Subject: Successful Mail Delivery Report\r\n" in raw
    status = raw.split(b"Content-Type: message/delivery-status")[1]
    assert b"Original-Envelope-Id: env-ok\r\n" in status
    assert b"Original-Recipient: rfc822;%s\r\nFinal-Recipient: rfc822; " \
        b"%s\r\nAction: delivered\r\nStatus: 2.0.0\r\n" % (
            dave.upper().encode(), dave.encode()) in status, status
    assert [p.get_content_type() for p in msg.iter_parts()][2] == \
        "text/rfc822-headers"
    wait_for("the report entry to go", lambda: entries_for(a, dave) == [])
    # Without NOTIFY=SUCCESS: no report (RFC 3461 §4.1).
    tok = submit(a, [dave], rcpt_params=" NOTIFY=FAILURE")
    wait_for("dave's copy", lambda: stored(a, dave, tok))
    assert entries_for(a, dave) == []
    assert stored(a, ALICE, tok) == []
    # An outside sender that did not log in: dropped, logged.
    outsider = "asker-%s@b.test" % uuid.uuid4().hex[:12]
    send_unauthenticated(a, outsider, dave,
                         b"Subject: ask\r\n\r\nhi\r\n",
                         rcpt_params=" NOTIFY=SUCCESS")
    wait_for("the report to be dropped", lambda: (
        "queue.report to=<%s> action=delivered result=dropped" % outsider)
        in a.log_text())
    assert entries_for(a, outsider) == []


def test_notify_success_relayed_when_the_next_hop_has_no_dsn(servers):
    """RFC 3461 §6.2: a next hop that does not offer DSN will not report
    success, so A does, with Action: relayed; a next hop that offers DSN
    gets NOTIFY and ORCPT on RCPT (§4) and A sends no report."""
    a, _ = servers
    peer = ScriptedPeer(F_IP, b"250 f.test\r\n", [b"250 ok\r\n"],
                        pipelining=False)
    try:
        tok = submit(a, ["r@f.test"], rcpt_params=" NOTIFY=SUCCESS,FAILURE")
        assert peer.done.wait(20), a.log_text()
        assert b"RCPT TO:<r@f.test>\r\n" in peer.lines
        raw, _ = report_of(a, tok)
        assert b"Subject: Relayed Mail Delivery Report\r\n" in raw
        assert b"Final-Recipient: rfc822; r@f.test\r\nAction: relayed\r\n" \
            b"Status: 2.0.0\r\nRemote-MTA: dns; f.test\r\n" in raw, raw
    finally:
        peer.close()
    peer = ScriptedPeer(E_IP, b"250-mx.e.test\r\n250 DSN\r\n",
                        [b"250 ok\r\n"], pipelining=False)
    try:
        tok = submit(a, ["r@e.test"], mail_params=" ENVID=e9",
                     rcpt_params=" NOTIFY=SUCCESS ORCPT=rfc822;r@e.test")
        assert peer.done.wait(20), a.log_text()
        assert b"RCPT TO:<r@e.test> NOTIFY=SUCCESS ORCPT=rfc822;r@e.test" \
            b"\r\n" in peer.lines, peer.lines
        assert [ln for ln in peer.lines if ln.startswith(b"MAIL")][0] \
            .endswith(b" ENVID=e9\r\n")
        # The report would be stored before the entry goes.
        wait_for("A's queue to empty", lambda: entries_for(a, "r@e.test")
                 == [])
        assert stored(a, ALICE, tok) == []
    finally:
        peer.close()
