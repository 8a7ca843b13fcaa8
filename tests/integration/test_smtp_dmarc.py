"""DMARC (RFC 7489, DMARCbis tree walk) on port 25 (issue 16): a private
DNS (dnsmasq) publishes SPF and DMARC records for .test domains and for
example.co.uk (relaxed alignment by the Public Suffix List of Debian's
publicsuffix package); mail comes over SMTP from 127.0.0.1 with a From:
of those domains. What a client sees: the reply at the end of DATA (550
5.7.1 for a p=reject domain's forgery, 451 4.7.1 when the policy cannot
be read and reject is on), the mailbox the message lands in (INBOX, or
Junk for quarantine), and the dmarc= result in the Authentication-Results:
header, read back over IMAP. `postern check dmarc` gives the server's
result."""

import base64
import json
import re
import socket
import uuid

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dns_helpers import Dnsmasq, needs_dnsmasq, records_to_dnsmasq
from imap_helpers import IMAP_LISTENERS, login
from postern_harness import (HOSTNAME, QUEUED_RE, add_user, admin_ok,
                             run_admin, smtp_cmd, smtp_open, smtp_send_data,
                             write_mail_config)

RCPT, RCPT_PW = "rcpt@example.test", "rcpt-Secret-1"
SENDER_OK = b"250 2.1.0 Sender OK\r\n"
SPF_OK = "v=spf1 ip4:127.0.0.1 -all"	# the test client's address
SPF_NO = "v=spf1 ip4:192.0.2.1 -all"	# anyone but the client

TXT = [
    # Our own domain: only 192.0.2.1 sends its mail, and it says reject.
    ("example.test", SPF_NO),
    ("_dmarc.example.test", "v=DMARC1; p=reject"),
    ("good.test", SPF_OK),
    ("evil.test", SPF_OK),
    ("_dmarc.quar.test", "v=DMARC1; p=quarantine"),
    ("quar.test", SPF_NO),
    # Relaxed (default) and strict SPF alignment.
    ("_dmarc.relaxed.test", "v=DMARC1; p=reject"),
    ("bounce.relaxed.test", SPF_OK),
    ("_dmarc.strict.test", "v=DMARC1; p=reject; aspf=s"),
    ("bounce.strict.test", SPF_OK),
    ("strict.test", SPF_OK),
    # A parent's record for subdomains: sp= applies.
    ("_dmarc.parent.test", "v=DMARC1; p=reject; sp=none"),
    ("_dmarc.parentq.test", "v=DMARC1; p=none; sp=quarantine"),
    # An organizational domain under a two-label public suffix.
    ("_dmarc.example.co.uk", "v=DMARC1; p=reject"),
    ("bounce.example.co.uk", SPF_OK),
    ("other.co.uk", SPF_OK),
    # pct=0: a reject policy applied one step down (quarantine).
    ("_dmarc.pct0.test", "v=DMARC1; p=reject; pct=0"),
]

def rsa_key(bits):
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = k.private_bytes(serialization.Encoding.PEM,
                          serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    pub = k.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(pub).decode()


# DKIM (python3-dkim signs): fwd.test says reject and lets no one but
# 192.0.2.1 send for it, so a forwarded copy fails SPF here; its
# signature is what passes DMARC. evil.test signs too (its own d=).
DKIM_PEM, DKIM_PUB = rsa_key(2048)
TXT += [
    ("fwd.test", SPF_NO),
    ("_dmarc.fwd.test", "v=DMARC1; p=reject"),
    ("sel._domainkey.fwd.test", "v=DKIM1; k=rsa; p=" + DKIM_PUB),
    ("sel._domainkey.evil.test", "v=DKIM1; k=rsa; p=" + DKIM_PUB),
    ("sel._domainkey.news.fwd.test", "v=DKIM1; k=rsa; p=" + DKIM_PUB),
]
DNSMASQ_LINES = (
    records_to_dnsmasq([(n, "TXT", v) for n, v in TXT]) + ["local=/uk/"])


@pytest.fixture(scope="module")
def dnsserver(tmp_path_factory):
    # A DNS server that never answers, for the zone slow.test: bound, so
    # that no ICMP error tells dnsmasq to give up early.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    lines = DNSMASQ_LINES + ["server=/slow.test/127.0.0.1#%d" %
                             silent.getsockname()[1]]
    d = Dnsmasq(tmp_path_factory.mktemp("dmarcdns"), lines)
    yield d
    d.stop()
    silent.close()


def start(factory, tmp_path_factory, cert, dnsserver, name, dmarc_keys):
    directory = tmp_path_factory.mktemp(name)
    path, data, text = write_mail_config(
        directory, [("main", cert)], IMAP_LISTENERS,
        queue={"resolver": "127.0.0.1", "resolver_port": dnsserver.port},
        auth={"lockout_failures": 1000})
    text += "\n[spf]\nskip_networks = 127.0.0.200\n"
    text += "\n[dmarc]\n" + "".join("%s = %s\n" % kv
                                    for kv in dmarc_keys.items())
    path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, RCPT, RCPT_PW)
    srv = factory(config_text=text, listeners=IMAP_LISTENERS)
    srv.admin_config = path
    return srv


@pytest.fixture(scope="module")
def enforcing(module_postern_factory, tmp_path_factory, default_cert,
              dnsserver):
    """The defaults: reject = yes, quarantine = yes."""
    return start(module_postern_factory, tmp_path_factory, default_cert,
                 dnsserver, "enforce", {})


@pytest.fixture(scope="module")
def marking(module_postern_factory, tmp_path_factory, default_cert,
            dnsserver):
    return start(module_postern_factory, tmp_path_factory, default_cert,
                 dnsserver, "markonly", {"reject": "no", "quarantine": "no"})


def send(srv, sender, from_hdr, helo="client.good.test"):
    """One message from 127.0.0.1: (Subject token, final reply)."""
    tok = uuid.uuid4().hex
    conn, _ = smtp_open(srv, "smtp", source="127.0.0.1", ehlo=helo)
    with conn:
        r = smtp_cmd(conn, "MAIL FROM:<%s>" % sender, timeout=30)
        assert r.raw == [SENDER_OK], r.raw
        r = smtp_cmd(conn, "RCPT TO:<%s>" % RCPT)
        assert r.raw == [b"250 2.1.5 Recipient OK\r\n"], r.raw
        r = smtp_cmd(conn, "DATA")
        assert r.raw[0].startswith(b"354 "), r.raw
        msg = (b"From: " + from_hdr.encode() + b"\r\nTo: " +
               RCPT.encode() + b"\r\nSubject: " + tok.encode() +
               b"\r\n\r\nbody\r\n")
        final = smtp_send_data(conn, msg, timeout=60)
        smtp_cmd(conn, "QUIT")
    return tok, final


def search(c, tok):
    """UIDs of the selected mailbox's messages whose Subject is tok."""
    r = c.ok("UID SEARCH SUBJECT %s" % tok)
    for line in r.untagged:
        if line.startswith(b"* SEARCH"):
            return line.split()[2:]
    return []


def send_raw(srv, sender, msg, helo="client.good.test"):
    """A whole message (CRLF lines) from 127.0.0.1: the final reply."""
    conn, _ = smtp_open(srv, "smtp", source="127.0.0.1", ehlo=helo)
    with conn:
        r = smtp_cmd(conn, "MAIL FROM:<%s>" % sender, timeout=30)
        assert r.raw == [SENDER_OK], r.raw
        r = smtp_cmd(conn, "RCPT TO:<%s>" % RCPT)
        assert r.raw == [b"250 2.1.5 Recipient OK\r\n"], r.raw
        r = smtp_cmd(conn, "DATA")
        assert r.raw[0].startswith(b"354 "), r.raw
        final = smtp_send_data(conn, msg, timeout=60)
        smtp_cmd(conn, "QUIT")
    return final


def signed(tok, from_addr, d):
    msg = (b"From: " + from_addr.encode() + b"\r\nTo: " + RCPT.encode() +
           b"\r\nSubject: " + tok.encode() + b"\r\nDate: Mon, 7 Dec 2026 "
           b"10:00:00 +0000\r\nMessage-ID: <" + tok.encode() +
           b"@fwd.test>\r\n\r\nThe body.\r\n")
    return dkim.sign(msg, b"sel", d.encode(), DKIM_PEM,
                     canonicalize=(b"relaxed", b"relaxed"),
                     linesep=b"\r\n") + msg


def find(srv, tok):
    """(mailbox, header) of the message whose Subject is tok."""
    c = login(srv, RCPT, RCPT_PW)
    try:
        found = []
        for mbox in ("INBOX", "Junk"):
            c.ok("SELECT %s" % mbox)
            for uid in search(c, tok):
                r = c.ok("UID FETCH %s (BODY.PEEK[HEADER])" % uid.decode())
                line = b"".join(r.untagged)
                m = re.search(rb"\{(\d+)\}\r\n", line)
                found.append((mbox, line[m.end():m.end() +
                                         int(m.group(1))]))
        assert len(found) == 1, found
        return found[0]
    finally:
        c.close()


def dmarc_result(header):
    """The dmarc= result of our Authentication-Results field."""
    m = re.search(rb"^Authentication-Results: " + HOSTNAME.encode() +
                  rb";(.*?)\r\n(?=\S)", header, re.M | re.S)
    assert m, header
    body = re.sub(rb"\r\n[ \t]+", b" ", m.group(1)).decode()
    got = [p.strip() for p in body.split(";") if p.strip()
           .startswith("dmarc=")]
    assert len(got) == 1, body
    return got[0]


def delivered(srv, tok, final):
    assert QUEUED_RE.match(final.raw[0]), final.raw
    return find(srv, tok)


@needs_dnsmasq
def test_forged_from_our_domain_is_rejected(enforcing):
    """Issue 16: a stranger writes as our own domain (p=reject), SPF of
    its envelope passes for its domain, not ours: 550 5.7.1 naming the
    domain, and nothing is delivered."""
    tok, final = send(enforcing, "a@evil.test", "ceo@example.test")
    assert final.raw[0].startswith(b"550 5.7.1 "), final.raw
    assert b"example.test" in final.raw[0]
    assert b"DMARC" in final.raw[0]
    c = login(enforcing, RCPT, RCPT_PW)
    try:
        c.ok("SELECT INBOX")
        assert search(c, tok) == []
    finally:
        c.close()


@needs_dnsmasq
def test_same_forgery_is_delivered_and_marked_when_reject_is_off(marking):
    tok, final = send(marking, "a@evil.test", "ceo@example.test")
    mbox, header = delivered(marking, tok, final)
    assert mbox == "INBOX"
    assert dmarc_result(header) == \
        "dmarc=fail (p=reject dis=reject) header.from=example.test"


@needs_dnsmasq
def test_aligned_spf_pass_is_delivered_with_pass(enforcing):
    tok, final = send(enforcing, "a@relaxed.test", "boss@relaxed.test")
    # relaxed.test itself publishes no SPF: SPF none, DMARC fail.
    assert final.raw[0].startswith(b"550 5.7.1 "), final.raw
    tok, final = send(enforcing, "a@bounce.relaxed.test",
                      "boss@relaxed.test")
    mbox, header = delivered(enforcing, tok, final)
    assert mbox == "INBOX"
    assert dmarc_result(header) == \
        "dmarc=pass (p=reject dis=none) header.from=relaxed.test"


@needs_dnsmasq
def test_strict_spf_alignment_needs_the_same_domain(enforcing):
    tok, final = send(enforcing, "a@bounce.strict.test", "boss@strict.test")
    assert final.raw[0].startswith(b"550 5.7.1 "), final.raw
    tok, final = send(enforcing, "a@strict.test", "boss@strict.test")
    mbox, header = delivered(enforcing, tok, final)
    assert dmarc_result(header).startswith("dmarc=pass ")


@needs_dnsmasq
def test_quarantine_goes_to_junk(enforcing):
    tok, final = send(enforcing, "a@evil.test", "news@quar.test")
    mbox, header = delivered(enforcing, tok, final)
    assert mbox == "Junk"
    assert dmarc_result(header) == \
        "dmarc=fail (p=quarantine dis=quarantine) header.from=quar.test"


@needs_dnsmasq
def test_quarantine_creates_junk_when_the_user_deleted_it(
        module_postern_factory, tmp_path_factory, default_cert, dnsserver):
    srv = start(module_postern_factory, tmp_path_factory, default_cert,
                dnsserver, "nojunk", {})
    c = login(srv, RCPT, RCPT_PW)
    try:
        c.ok("DELETE Junk")
    finally:
        c.close()
    tok, final = send(srv, "a@evil.test", "news@quar.test")
    mbox, _ = delivered(srv, tok, final)
    assert mbox == "Junk"
    c = login(srv, RCPT, RCPT_PW)
    try:
        r = c.ok('LIST "" Junk RETURN (SPECIAL-USE)')
        assert b"\\Junk" in b"".join(r.untagged), r.untagged
    finally:
        c.close()


@needs_dnsmasq
def test_quarantine_stays_in_inbox_when_quarantine_is_off(marking):
    tok, final = send(marking, "a@evil.test", "news@quar.test")
    mbox, header = delivered(marking, tok, final)
    assert mbox == "INBOX"
    assert dmarc_result(header).startswith("dmarc=fail ")


@needs_dnsmasq
def test_subdomain_takes_sp_of_the_parent(enforcing):
    # p=reject, sp=none: a subdomain's forgery is delivered, marked.
    tok, final = send(enforcing, "a@evil.test", "x@mail.parent.test")
    mbox, header = delivered(enforcing, tok, final)
    assert mbox == "INBOX"
    assert dmarc_result(header) == ("dmarc=fail (p=reject sp=none "
                                    "dis=none) header.from=mail.parent.test")
    # ...while the parent itself is refused.
    tok, final = send(enforcing, "a@evil.test", "x@parent.test")
    assert final.raw[0].startswith(b"550 5.7.1 "), final.raw
    # p=none, sp=quarantine: a subdomain's forgery goes to Junk.
    tok, final = send(enforcing, "a@evil.test", "x@a.b.parentq.test")
    mbox, header = delivered(enforcing, tok, final)
    assert mbox == "Junk"


@needs_dnsmasq
def test_organizational_domain_by_the_public_suffix_list(enforcing):
    """a.b.example.co.uk: the tree walk finds _dmarc.example.co.uk; SPF of
    bounce.example.co.uk aligns (same organizational domain by the PSL:
    co.uk is a public suffix), SPF of other.co.uk does not."""
    tok, final = send(enforcing, "a@bounce.example.co.uk",
                      "x@a.b.example.co.uk")
    mbox, header = delivered(enforcing, tok, final)
    assert dmarc_result(header) == \
        "dmarc=pass (p=reject dis=none) header.from=a.b.example.co.uk"
    tok, final = send(enforcing, "a@other.co.uk", "x@a.b.example.co.uk")
    assert final.raw[0].startswith(b"550 5.7.1 "), final.raw


@needs_dnsmasq
def test_pct0_applies_the_next_policy_down(enforcing):
    tok, final = send(enforcing, "a@evil.test", "x@pct0.test")
    mbox, header = delivered(enforcing, tok, final)
    assert mbox == "Junk"
    assert dmarc_result(header) == \
        "dmarc=fail (p=reject dis=quarantine) header.from=pct0.test"


@needs_dnsmasq
def test_no_record_is_none(enforcing):
    tok, final = send(enforcing, "a@evil.test", "x@nodmarc.test")
    mbox, header = delivered(enforcing, tok, final)
    assert mbox == "INBOX"
    assert dmarc_result(header).startswith("dmarc=none ")
    assert dmarc_result(header).endswith(" header.from=nodmarc.test")


@needs_dnsmasq
def test_dns_failure_is_451_with_reject_and_marked_without(enforcing,
                                                          marking):
    """The policy cannot be read (its DNS server does not answer):
    temperror. With reject on the message is deferred (451 4.7.1: the
    policy might be reject); never refused for good; with reject off it
    is delivered, marked."""
    tok, final = send(enforcing, "a@good.test", "x@dm.slow.test")
    assert final.raw[0].startswith(b"451 4.7.1 "), final.raw
    assert b"dm.slow.test" in final.raw[0]
    tok, final = send(marking, "a@good.test", "x@dm.slow.test")
    mbox, header = delivered(marking, tok, final)
    assert mbox == "INBOX"
    assert dmarc_result(header).startswith("dmarc=temperror ")


@needs_dnsmasq
def test_several_from_domains_are_refused_with_reject(enforcing, marking):
    """RFC 7489 §6.6.1: no single author domain; a second address must
    not be a way around the first one's reject policy."""
    tok, final = send(enforcing, "a@evil.test",
                      "ceo@example.test, x@evil.test")
    assert final.raw[0].startswith(b"550 5.7.1 "), final.raw
    tok, final = send(marking, "a@evil.test",
                      "ceo@example.test, x@evil.test")
    mbox, header = delivered(marking, tok, final)
    assert dmarc_result(header).startswith("dmarc=permerror ")


@needs_dnsmasq
@pytest.mark.parametrize("from_hdr", [
    "ceo@example.test;",                 # junk after the address
    "<ceo@example.test> x",
    "ceo@example.test, undisclosed",     # a name with no address
    "undisclosed:;",                     # an empty group: no author
])
def test_unreadable_or_missing_author_is_refused_with_reject(
        enforcing, marking, from_hdr):
    """RFC 7489 §6.6.1: a From: field that names no single readable
    author domain is no way around the reject policy of the domain a
    mail client may still show; with reject off it is marked."""
    tok, final = send(enforcing, "a@evil.test", from_hdr)
    assert final.raw[0].startswith(b"550 5.7.1 "), final.raw
    assert b"author domain" in final.raw[0]
    tok, final = send(marking, "a@evil.test", from_hdr)
    mbox, header = delivered(marking, tok, final)
    assert mbox == "INBOX"
    assert dmarc_result(header).startswith("dmarc=permerror ")


@needs_dnsmasq
@pytest.mark.parametrize("first_from", [b"", b"From: x@evil.test\r\n"])
def test_from_past_the_first_64_kb_of_the_header_is_refused(
        enforcing, marking, first_from):
    """DMARC reads the From: in the header's first 64 KB; a From: past it
    (alone, or after another one) is no way around p=reject."""
    pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 990)
                   for i in range(70))
    msg = (first_from + pad + b"From: ceo@example.test\r\nTo: " +
           RCPT.encode() + b"\r\nSubject: pad\r\n\r\nbody\r\n")
    final = send_raw(enforcing, "a@evil.test", msg)
    assert final.raw[0].startswith(b"550 5.7.1 "), final.raw
    assert b"64 KB" in final.raw[0], final.raw
    final = send_raw(marking, "a@evil.test", msg)
    assert final.raw[0].startswith(b"250 "), final.raw


@needs_dnsmasq
def test_dmarc_check_off_adds_no_result(module_postern_factory,
                                        tmp_path_factory, default_cert,
                                        dnsserver):
    srv = start(module_postern_factory, tmp_path_factory, default_cert,
                dnsserver, "off", {"check": "no"})
    tok, final = send(srv, "a@evil.test", "ceo@example.test")
    mbox, header = delivered(srv, tok, final)
    assert b"dmarc=" not in header
    assert b"spf=pass" in header


@needs_dnsmasq
@pytest.mark.parametrize("mail_from,from_dom,want", [
    ("a@evil.test", "example.test", "fail"),
    ("a@bounce.relaxed.test", "relaxed.test", "pass"),
    ("a@evil.test", "nodmarc.test", "none"),
    ("a@bounce.example.co.uk", "a.b.example.co.uk", "pass"),
])
def test_cli_check_dmarc_gives_the_servers_result(marking, tmp_path,
                                                 dnsserver, mail_from,
                                                 from_dom, want):
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: X <x@" + from_dom.encode() +
                    b">\r\nSubject: t\r\n\r\nbody\r\n")
    out = json.loads(admin_ok(marking.admin_config, "check", "dmarc",
                              str(msg), "--ip", "127.0.0.1", "--helo",
                              "client.good.test", "--mail-from", mail_from,
                              "--json", "--resolver",
                              "127.0.0.1:%d" % dnsserver.port))
    assert out["dmarc"]["result"] == want, out
    assert out["dmarc"]["from_domain"] == from_dom
    # The server's result for the same message is the same.
    tok, final = send(marking, mail_from, "x@" + from_dom)
    _, header = delivered(marking, tok, final)
    assert dmarc_result(header).startswith("dmarc=%s " % want)


@needs_dnsmasq
def test_cli_check_dmarc_text_and_usage(marking, tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: ceo@example.test\r\n\r\nbody\r\n")
    out = admin_ok(marking.admin_config, "check", "dmarc", str(msg),
                   "--ip", "127.0.0.1", "--helo", "h.good.test",
                   "--mail-from", "a@evil.test")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["spf", "pass", "evil.test:"]
    assert lines[1].split()[:3] == ["dmarc", "fail", "example.test"]
    assert "(p=reject dis=reject)" in lines[1]
    r = run_admin(marking.admin_config, "check", "dmarc", str(msg),
                  "--ip", "127.0.0.1")
    assert r.returncode == 2 and "usage:" in r.stderr
    r = run_admin(marking.admin_config, "check", "dmarc", str(msg),
                  "--ip", "nope", "--helo", "h", "--mail-from", "")
    assert r.returncode == 2 and "not an IPv4 or IPv6 address" in r.stderr


@needs_dnsmasq
def test_aligned_dkim_passes_though_spf_fails(enforcing):
    """The forwarding case: a forwarder (127.0.0.1) hands on mail of
    fwd.test (p=reject), whose SPF does not name it: SPF fails, but the
    author's DKIM signature (relaxed: news.fwd.test aligns with fwd.test)
    still verifies, so DMARC passes and the message is delivered."""
    tok = uuid.uuid4().hex
    final = send_raw(enforcing, "list@fwd.test",
                     signed(tok, "alice@fwd.test", "news.fwd.test"))
    mbox, header = delivered(enforcing, tok, final)
    assert mbox == "INBOX"
    assert b"spf=fail" in header
    assert b"dkim=pass" in header
    assert dmarc_result(header) == \
        "dmarc=pass (p=reject dis=none) header.from=fwd.test"


@needs_dnsmasq
def test_dkim_of_another_domain_or_broken_does_not_pass(enforcing):
    # A valid signature, but of evil.test: not aligned with fwd.test.
    tok = uuid.uuid4().hex
    final = send_raw(enforcing, "a@fwd.test",
                     signed(tok, "alice@fwd.test", "evil.test"))
    assert final.raw[0].startswith(b"550 5.7.1 "), final.raw
    # fwd.test's own signature over a body changed on the way.
    tok = uuid.uuid4().hex
    msg = signed(tok, "alice@fwd.test", "fwd.test").replace(
        b"The body.", b"The body!")
    final = send_raw(enforcing, "a@fwd.test", msg)
    assert final.raw[0].startswith(b"550 5.7.1 "), final.raw


@needs_dnsmasq
def test_cli_check_dmarc_reads_the_dkim_signature(marking, tmp_path):
    tok = uuid.uuid4().hex
    msg = tmp_path / "m.eml"
    msg.write_bytes(signed(tok, "alice@fwd.test", "fwd.test"))
    out = json.loads(admin_ok(marking.admin_config, "check", "dmarc",
                              str(msg), "--ip", "127.0.0.1", "--helo",
                              "fwd.good.test", "--mail-from", "a@fwd.test",
                              "--json"))
    assert out["spf"]["result"] == "fail"
    assert out["dkim"] == "pass"
    assert out["dmarc"]["result"] == "pass"
    assert out["dmarc"]["dkim_aligned"] is True
    assert out["dmarc"]["dkim_domain"] == "fwd.test"
