"""SPF (RFC 7208) on port 25 (issue 16): a private DNS (dnsmasq) publishes
SPF records for .test domains; mail comes over SMTP from loopback
addresses the records name or do not; the result is read back over IMAP
in the Authentication-Results: header (RFC 8601) at the top of the
delivered message, and compared with Debian's pyspf (python3-spf) asking
the same DNS. With [spf] fail = reject a fail is refused at MAIL FROM
(550 5.7.23, RFC 7372) with the domain's explanation; a temperror is 451
4.7.24. A forged Authentication-Results: naming our host is removed.
Loopback is not checked by default (local mail)."""

import json
import re
import socket
import time
import uuid

import dns.resolver
import pytest
import spf

from dns_helpers import Dnsmasq, needs_dnsmasq
from imap_helpers import IMAP_LISTENERS, login
from postern_harness import (HOSTNAME, QUEUED_RE, add_user, admin_ok,
                             run_admin, smtp_cmd, smtp_open, smtp_send_data,
                             write_mail_config)

RCPT, RCPT_PW = "rcpt@example.test", "rcpt-Secret-1"
SENDER_OK = b"250 2.1.0 Sender OK\r\n"

# name, TXT value: the SPF world of the tests.
TXT = [
    ("pass.test", "v=spf1 ip4:127.0.0.1 -all"),
    ("fail.test", "v=spf1 ip4:192.0.2.1 -all exp=exp.fail.test"),
    ("exp.fail.test", "%{i} is not one of %{d}'s senders"),
    ("soft.test", "v=spf1 ~all"),
    ("neutral.test", "v=spf1 ?all"),
    ("perm.test", "v=spf1 ip4:127.0.0.5/33 -all"),
    ("mx.test", "v=spf1 mx -all"),
    ("inc.test", "v=spf1 include:incl.test -all"),
    ("incl.test", "v=spf1 ip4:127.0.0.8 -all"),
    ("macro.test", "v=spf1 exists:%{ir}.%{l}._spf.%{d} -all"),
    ("limit.test", "v=spf1 " + "mx:mx.test " * 11 + "-all"),
    ("void.test", "v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test "
     "-all"),
    ("redirect.test", "v=spf1 redirect=target.test"),
    ("target.test", "v=spf1 ip4:127.0.0.12 -all"),
    ("helo.test", "v=spf1 ip4:127.0.0.13 -all"),
    ("ptr.test", "v=spf1 ptr -all"),
    ("temp.test", "v=spf1 a:x.broken.test -all"),
    ("cidr.test", "v=spf1 ip4:127.0.0.16/30 a:cidr-a.test/29 -all"),
]
DNSMASQ_LINES = (
    ["txt-record=%s,\"%s\"" % (n, v) for n, v in TXT] +
    ["mx-host=mx.test,mail.mx.test,10",
     "host-record=mail.mx.test,127.0.0.7",
     "host-record=9.0.0.127.alice._spf.macro.test,127.0.0.2",
     "host-record=host.ptr.test,127.0.0.15",
     "host-record=cidr-a.test,127.0.0.30",
     # A zone whose server does not answer: a DNS error.
     "server=/broken.test/127.0.0.1#9"])

# (client address, MAIL FROM, HELO, result of the MAIL FROM identity).
CASES = [
    ("127.0.0.1", "a@pass.test", "helo-none.test", "pass"),
    ("127.0.0.2", "a@fail.test", "helo-none.test", "fail"),
    ("127.0.0.3", "a@soft.test", "helo-none.test", "softfail"),
    ("127.0.0.4", "a@neutral.test", "helo-none.test", "neutral"),
    ("127.0.0.5", "a@perm.test", "helo-none.test", "permerror"),
    ("127.0.0.6", "a@nospf.test", "helo-none.test", "none"),
    ("127.0.0.7", "a@mx.test", "helo-none.test", "pass"),
    ("127.0.0.8", "a@inc.test", "helo-none.test", "pass"),
    ("127.0.0.9", "alice@macro.test", "helo-none.test", "pass"),
    ("127.0.0.9", "bob@macro.test", "helo-none.test", "fail"),
    ("127.0.0.10", "a@limit.test", "helo-none.test", "permerror"),
    ("127.0.0.11", "a@void.test", "helo-none.test", "permerror"),
    ("127.0.0.12", "a@redirect.test", "helo-none.test", "pass"),
    ("127.0.0.13", "", "helo.test", "pass"),
    ("127.0.0.14", "a@temp.test", "helo-none.test", "temperror"),
    ("127.0.0.15", "a@ptr.test", "helo-none.test", "pass"),
    ("127.0.0.14", "a@ptr.test", "helo-none.test", "fail"),
    ("127.0.0.19", "a@cidr.test", "helo-none.test", "pass"),
    ("127.0.0.25", "a@cidr.test", "helo-none.test", "pass"),
    ("127.0.0.20", "a@cidr.test", "helo-none.test", "fail"),
]

AR_RE = re.compile(rb"^Authentication-Results: ([^;\r\n]+);(.*?)\r\n(?=\S)",
                   re.M | re.S)


@pytest.fixture(scope="module")
def dnsserver(tmp_path_factory):
    # A DNS server that never answers, for slow.test: bound, so that no
    # ICMP error tells dnsmasq to give up early.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    lines = DNSMASQ_LINES + ["server=/slow.test/127.0.0.1#%d" %
                             silent.getsockname()[1]]
    d = Dnsmasq(tmp_path_factory.mktemp("spfdns"), lines)
    yield d
    d.stop()
    silent.close()


def start_with_spf(factory, tmp_path_factory, cert, dnsserver, name,
                   spf_keys, server=None):
    """A server whose configuration has an [spf] section of spf_keys."""
    directory = tmp_path_factory.mktemp(name)
    path, data, text = write_mail_config(
        directory, [("main", cert)], IMAP_LISTENERS, server=server,
        queue={"resolver": "127.0.0.1", "resolver_port": dnsserver.port},
        auth={"lockout_failures": 1000})
    if spf_keys is not None:
        text += "\n[spf]\n" + "".join("%s = %s\n" % kv
                                      for kv in spf_keys.items())
        path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, RCPT, RCPT_PW)
    srv = factory(config_text=text, listeners=IMAP_LISTENERS)
    srv.admin_config = path
    return srv


@pytest.fixture(scope="module")
def marking(module_postern_factory, tmp_path_factory, default_cert,
            dnsserver):
    return start_with_spf(module_postern_factory, tmp_path_factory,
                          default_cert, dnsserver, "mark",
                          {"skip_networks": "127.0.0.200"})


@pytest.fixture(scope="module")
def rejecting(module_postern_factory, tmp_path_factory, default_cert,
              dnsserver):
    return start_with_spf(module_postern_factory, tmp_path_factory,
                          default_cert, dnsserver, "reject",
                          {"skip_networks": "", "fail": "reject",
                           "timeout": "20s"})


def send(srv, source, sender, helo, extra=b""):
    """One message from source; returns (token, MAIL reply, final reply)."""
    tok = uuid.uuid4().hex
    conn, _ = smtp_open(srv, "smtp", source=source, ehlo=helo)
    with conn:
        mail = smtp_cmd(conn, "MAIL FROM:<%s>" % sender, timeout=30)
        if mail.raw != [SENDER_OK]:
            return tok, mail, None
        r = smtp_cmd(conn, "RCPT TO:<%s>" % RCPT)
        assert r.raw == [b"250 2.1.5 Recipient OK\r\n"], r.raw
        r = smtp_cmd(conn, "DATA")
        assert r.raw[0].startswith(b"354 "), r.raw
        msg = (b"From: x@y.test\r\nTo: " + RCPT.encode() + b"\r\n" + extra +
               b"Subject: " + tok.encode() + b"\r\n\r\nbody\r\n")
        final = smtp_send_data(conn, msg)
        assert QUEUED_RE.match(final.raw[0]), final.raw
        smtp_cmd(conn, "QUIT")
    return tok, mail, final


def header_of(srv, tok):
    """The header of the message whose Subject is tok, read over IMAP."""
    c = login(srv, RCPT, RCPT_PW)
    try:
        c.select()
        r = c.ok("UID SEARCH SUBJECT %s" % tok)
        uids = r.lines(b"SEARCH")[0].split()[2:]
        assert len(uids) == 1, r.untagged
        r = c.ok("UID FETCH %s (BODY.PEEK[HEADER])" % uids[0].decode())
        line = b"".join(r.untagged)
        m = re.search(rb"\{(\d+)\}\r\n", line)
        return line[m.end():m.end() + int(m.group(1))]
    finally:
        c.close()


def results_of(header):
    """[(authserv-id, [resinfo, ...])] of every Authentication-Results."""
    out = []
    for m in AR_RE.finditer(header):
        body = re.sub(rb"\r\n[ \t]+", b" ", m.group(2))
        out.append((m.group(1).decode(),
                    [p.strip().decode() for p in body.split(b";")]))
    return out


def pyspf(dnsserver, ip, sender, helo):
    """pyspf's result for the MAIL FROM identity (the HELO one for <>),
    asking the same DNS."""
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = dnsserver.port
    saved = dns.resolver.default_resolver
    dns.resolver.default_resolver = r
    try:
        return spf.check2(i=ip, s=sender, h=helo, timeout=5,
                          querytime=5)[0]
    finally:
        dns.resolver.default_resolver = saved


@needs_dnsmasq
def test_smtp_spf_timeout_counts_the_wait_for_a_thread(postern_factory,
                                                       tmp_path_factory,
                                                       default_cert,
                                                       dnsserver):
    """Review (pool DoS): one SPF thread and a 2 s timeout. Four clients
    send MAIL FROM for a domain whose DNS server never answers, at once;
    a fifth sends an ordinary one. Each check used to start its 2 s only
    once a thread took it, so the queue was served one after the other
    (the fifth waited 8 s and more: a few clients could hold back all
    port-25 mail for as long as they liked). The timeout now counts from
    MAIL FROM: checks whose time ran out in the queue are answered as
    temperror without asking DNS, and the log says so (no timed assertion:
    what is checked is that the queue was cut short, not how fast)."""
    srv = start_with_spf(postern_factory, tmp_path_factory, default_cert,
                         dnsserver, "queued", {"skip_networks": "",
                                               "threads": "1",
                                               "timeout": "2s"})
    conns = [smtp_open(srv, "smtp", source="127.0.0.1",
                       ehlo="helo-none.test")[0] for _ in range(5)]
    try:
        for c in conns[:4]:
            c.send(b"MAIL FROM:<a@slow.test>\r\n")
        time.sleep(0.2)
        conns[4].send(b"MAIL FROM:<a@pass.test>\r\n")
        for c in conns:
            assert c.read_smtp_reply(60).raw == [SENDER_OK]
    finally:
        for c in conns:
            c.close()
    assert srv.wait_log(r"mailfrom=temperror .*from=<a@slow\.test>")
    assert srv.wait_log(r"mailfrom=temperror .*from=<a@slow\.test> .*"
                        r"reason=\"no SPF thread was free within the "
                        r"check's time limit")


@needs_dnsmasq
@pytest.mark.parametrize("ip,sender,helo,want", CASES)
def test_smtp_spf_result_in_header_matches_pyspf(marking, dnsserver, ip,
                                                 sender, helo, want):
    tok, mail, _ = send(marking, ip, sender, helo)
    assert mail.raw == [SENDER_OK]
    results = results_of(header_of(marking, tok))
    assert len(results) == 1, results
    authserv, res = results[0]
    assert authserv == HOSTNAME
    # DMARC adds its own result (test_smtp_dmarc.py).
    res = [r for r in res if not r.startswith("dmarc=")]
    if sender:
        first = res[0]
        assert first.startswith("spf=%s " % want), res
        assert first.endswith(" smtp.mailfrom=%s" % sender), res
        assert res[1].startswith("spf=none ") and \
            res[1].endswith(" smtp.helo=%s" % helo), res
    else:
        # RFC 7208 §2.4: for <> the HELO identity is the MAIL FROM one.
        assert len(res) == 2 and res[0].startswith("spf=%s " % want) and \
            res[0].endswith(" smtp.helo=%s" % helo), res
    # The message is not signed: DKIM adds its "none" to the field.
    assert res[-1] == "dkim=none", res
    assert pyspf(dnsserver, ip, sender, helo) == want


@needs_dnsmasq
def test_smtp_spf_header_is_at_the_top_with_a_comment(marking):
    tok, _, _ = send(marking, "127.0.0.1", "a@pass.test", "helo-none.test")
    header = header_of(marking, tok)
    lines = header.split(b"\r\n")
    assert lines[0] == b"Return-Path: <a@pass.test>"
    assert lines[1] == b"Authentication-Results: mail.example.test;"
    assert lines[2] == (b"\tspf=pass (domain of pass.test designates "
                        b"127.0.0.1 as permitted sender) "
                        b"smtp.mailfrom=a@pass.test;")
    assert lines[3].startswith(b"\tspf=none (no SPF record at "
                               b"helo-none.test) smtp.helo=helo-none.test")
    assert lines[4] == b"\tdkim=none;"
    # DMARC's result follows (test_smtp_dmarc.py): y.test has no record.
    assert lines[5].startswith(b"\tdmarc=none ")
    assert lines[6].startswith(b"Received: from helo-none.test")


@needs_dnsmasq
def test_smtp_spf_forged_results_for_our_host_are_removed(marking):
    forged = (b"Authentication-Results: mail.example.test; spf=pass "
              b"smtp.mailfrom=boss@bank.test\r\n"
              b"authentication-results: (sneaky) MAIL.EXAMPLE.TEST;\r\n"
              b"\tdkim=pass header.d=bank.test\r\n"
              b"Authentication-Results: relay.other.test; spf=pass\r\n")
    tok, _, _ = send(marking, "127.0.0.2", "a@fail.test", "helo-none.test",
                     extra=forged)
    header = header_of(marking, tok)
    results = results_of(header)
    assert [r[0] for r in results] == [HOSTNAME, "relay.other.test"]
    assert results[0][1][0].startswith("spf=fail ")
    assert b"bank.test" not in header
    assert b"sneaky" not in header
    assert marking.wait_log(r"smtp\.auth_results_removed count=2")


@needs_dnsmasq
def test_smtp_spf_forged_results_after_64k_of_header_are_removed(marking):
    """Review: the header section is kept in a 64 KB buffer; past it the
    rest used to be written as it came, so a forged field for our host
    after 64 KB of padding reached the mailbox. Fields past the buffer
    are now stripped one by one (one that starts inside the buffer and
    ends after it too); a single Authentication-Results: longer than
    the buffer is dropped; other fields and the body are untouched."""
    # send() puts From: and To: before extra; the first forged field
    # starts 10 bytes before the end of the buffer.
    first = len(b"From: x@y.test\r\nTo: " + RCPT.encode() + b"\r\n")
    q, r = divmod(65536 - 10 - first, 70)
    fill = (b"X-Fill: " + b"f" * 60 + b"\r\n") * (q - 1) + (
        b"X-Fill: " + b"f" * (60 + r) + b"\r\n")
    pad = b"".join(b"X-Pad-%04d: %s\r\n" % (i, b"p" * 60)
                   for i in range(1200))
    extra = (fill +
             b"Authentication-Results:\r\n mail.example.test; spf=pass "
             b"smtp.mailfrom=boss@bank.test\r\n" +
             pad +
             b"Authentication-Results : mail.example.test; dkim=pass "
             b"header.d=bank.test\r\n"
             b"Authentication-Results: mail.example.test;\r\n"
             b"\tdmarc=pass header.from=bank.test\r\n"
             b"Authentication-Results: (" +
             b"".join(b"c" * 70 + b"\r\n " for _ in range(1000)) +
             b") mail.example.test; arc=pass smtp.remote-ip=bank.test\r\n"
             b"Authentication-Results: relay.other.test; spf=pass\r\n"
             b"X-Last: kept\r\n")
    assert len(fill) + first == 65536 - 10
    tok, _, _ = send(marking, "127.0.0.2", "a@fail.test", "helo-none.test",
                     extra=extra)
    header = header_of(marking, tok)
    assert b"bank.test" not in header
    assert [r[0] for r in results_of(header)] == [HOSTNAME,
                                                  "relay.other.test"]
    assert header.count(b"X-Pad-") == 1200
    assert b"\r\nX-Fill: fff" in header
    assert b"X-Last: kept\r\n" in header
    assert b"\r\nSubject: " + tok.encode() + b"\r\n" in header


@needs_dnsmasq
def test_smtp_spf_skip_networks_get_no_header(marking):
    tok, _, _ = send(marking, "127.0.0.200", "a@fail.test", "helo.test")
    assert results_of(header_of(marking, tok)) == []


@needs_dnsmasq
def test_smtp_spf_loopback_is_not_checked_by_default(postern_factory,
                                                     tmp_path_factory,
                                                     default_cert,
                                                     dnsserver):
    srv = start_with_spf(postern_factory, tmp_path_factory, default_cert,
                         dnsserver, "default", None)
    tok, mail, _ = send(srv, "127.0.0.2", "a@fail.test", "helo-none.test")
    assert mail.raw == [SENDER_OK]
    assert results_of(header_of(srv, tok)) == []


@needs_dnsmasq
def test_smtp_spf_reject_fail_with_explanation(rejecting):
    tok, mail, _ = send(rejecting, "127.0.0.2", "a@fail.test",
                        "helo-none.test")
    assert mail.raw == [b"550 5.7.23 SPF of fail.test: 127.0.0.2 is not one "
                        b"of fail.test's senders\r\n"]
    # Without exp=: our own sentence.
    tok, mail, _ = send(rejecting, "127.0.0.20", "a@cidr.test",
                        "helo-none.test")
    assert mail.raw == [b"550 5.7.23 SPF: the domain cidr.test does not "
                        b"allow 127.0.0.20 to send its mail (MAIL FROM "
                        b"identity)\r\n"]
    # The HELO identity too (RFC 7208 §2.3), for <>.
    tok, mail, _ = send(rejecting, "127.0.0.99", "", "helo.test")
    assert mail.raw == [b"550 5.7.23 SPF: the domain helo.test does not "
                        b"allow 127.0.0.99 to send its mail (HELO "
                        b"identity)\r\n"]


@needs_dnsmasq
def test_smtp_spf_reject_policy_still_delivers_the_rest(rejecting):
    for ip, sender, want in [("127.0.0.1", "a@pass.test", "pass"),
                             ("127.0.0.3", "a@soft.test", "softfail"),
                             ("127.0.0.5", "a@perm.test", "permerror")]:
        tok, mail, final = send(rejecting, ip, sender, "helo-none.test")
        assert mail.raw == [SENDER_OK], (sender, mail.raw)
        res = results_of(header_of(rejecting, tok))[0][1]
        assert res[0].startswith("spf=%s " % want), res


@needs_dnsmasq
def test_smtp_spf_reject_policy_temperror_is_451(rejecting):
    tok, mail, _ = send(rejecting, "127.0.0.14", "a@temp.test",
                        "helo-none.test")
    assert mail.raw == [b"451 4.7.24 SPF could not be checked (DNS error), "
                        b"try again later\r\n"]


@needs_dnsmasq
def test_smtp_spf_pipelined_rcpt_waits_for_the_check(marking):
    """The check runs off the loop; RCPT, DATA and the message sent in
    the same packet as MAIL are answered in order once it is done."""
    tok = uuid.uuid4().hex
    conn, _ = smtp_open(marking, "smtp", source="127.0.0.1",
                        ehlo="helo-none.test")
    with conn:
        conn.send(b"MAIL FROM:<a@pass.test>\r\nRCPT TO:<" + RCPT.encode() +
                  b">\r\nDATA\r\n")
        assert conn.read_smtp_reply(30).raw == [SENDER_OK]
        assert conn.read_smtp_reply().raw == [b"250 2.1.5 Recipient OK\r\n"]
        assert conn.read_smtp_reply().raw[0].startswith(b"354 ")
        # A From: (RFC 5322 §3.6): without one DMARC refuses it.
        final = smtp_send_data(conn, b"From: a@pass.test\r\nSubject: " +
                               tok.encode() + b"\r\n\r\nx\r\n")
        assert QUEUED_RE.match(final.raw[0]), final.raw
    res = results_of(header_of(marking, tok))[0][1]
    assert res[0].startswith("spf=pass ")


@needs_dnsmasq
def test_smtp_spf_slow_dns_delays_only_its_own_session(postern_factory,
                                                      tmp_path_factory,
                                                      default_cert,
                                                      dnsserver):
    """One worker thread: a session whose SPF check waits on a DNS
    server that never answers does not hold up another session on the
    same event loop; it gets temperror (marked) once c-ares gives up."""
    srv = start_with_spf(postern_factory, tmp_path_factory, default_cert,
                         dnsserver, "slow", {"skip_networks": ""},
                         server={"workers": 1})
    slow, _ = smtp_open(srv, "smtp", source="127.0.0.1",
                        ehlo="helo-none.test")
    fast, _ = smtp_open(srv, "smtp", source="127.0.0.1",
                        ehlo="helo-none.test")
    with slow, fast:
        slow.send(b"MAIL FROM:<a@slow.test>\r\n")
        time.sleep(0.3)
        assert smtp_cmd(fast, "MAIL FROM:<a@pass.test>").raw == [SENDER_OK]
        assert smtp_cmd(fast, "NOOP").raw[0].startswith(b"250 ")
        # Order, not speed: the other session was answered while the slow
        # one still waits on its DNS (c-ares: 2 tries of 2 s).
        assert slow.pending(0) == b""
        assert slow.read_smtp_reply(30).raw == [SENDER_OK]
    assert srv.wait_log(r"event=smtp\.spf ip=127\.0\.0\.1 "
                        r"mailfrom=temperror .*from=<a@slow\.test>")


@needs_dnsmasq
@pytest.mark.parametrize("ip,sender,helo,want", CASES)
def test_cli_check_spf_gives_the_servers_result(marking, ip, sender, helo,
                                               want):
    """`postern check spf` runs the server's code through the server's
    resolver: the same result as the header of the delivered message
    (CASES, checked against pyspf above)."""
    out = json.loads(admin_ok(marking.admin_config, "check", "spf", ip,
                              helo, sender, "--json"))
    assert out["mailfrom"]["result"] == want, out
    assert out["helo_result"]["result"] == ("none" if sender else want)
    if want == "fail" and sender == "a@fail.test":
        assert out["mailfrom"]["explanation"] == \
            "%s is not one of fail.test's senders" % ip


@needs_dnsmasq
def test_cli_check_spf_text_and_usage(marking, dnsserver):
    out = admin_ok(marking.admin_config, "check", "spf", "127.0.0.2",
                   "helo-none.test", "a@fail.test")
    assert out.splitlines()[0].split()[:3] == ["mailfrom", "fail",
                                               "fail.test:"]
    assert "explanation: 127.0.0.2 is not one of fail.test's senders" in out
    r = run_admin(marking.admin_config, "check", "spf", "not-an-ip", "h.test",
                  "a@b.test")
    assert r.returncode == 2 and "not an IPv4 or IPv6 address" in r.stderr
    r = run_admin(marking.admin_config, "check", "spf", "127.0.0.1")
    assert r.returncode == 2 and "usage:" in r.stderr
    # --resolver (as check dkim's) names the DNS server to ask.
    out = json.loads(admin_ok(marking.admin_config, "check", "spf",
                              "127.0.0.1", "helo-none.test", "a@pass.test",
                              "--json", "--resolver",
                              "127.0.0.1:%d" % dnsserver.port))
    assert out["mailfrom"]["result"] == "pass", out
    r = run_admin(marking.admin_config, "check", "spf", "127.0.0.1",
                  "h.test", "a@b.test", "--resolver", "127.0.0.1:x")
    assert r.returncode == 2 and "IP or IP:PORT" in r.stderr
