"""DKIM verification (RFC 6376, RFC 8463) on port 25 (issue 16): a private
DNS (dnsmasq) publishes RSA and ed25519 keys for .test domains; messages
signed by Debian's dkimpy (python3-dkim) in every canonicalization, with
l=, with oversigned h=, with two signatures, tampered after signing, under
a revoked key, a strict (t=s) key, a 512-bit key, an expired x= and a
selector whose DNS server never answers, are checked by `postern check
dkim` and sent over SMTP; the dkim= results of the Authentication-Results:
header read back over IMAP must be the CLI's, and pass exactly where
dkimpy's own verify() says True, asking the same DNS."""

import base64
import json
import re
import socket
import time
import uuid

import dkim
import dns.resolver
import nacl.signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dns_helpers import Dnsmasq, needs_dnsmasq, records_to_dnsmasq
from imap_helpers import IMAP_LISTENERS, login
from postern_harness import (HOSTNAME, QUEUED_RE, add_user, admin_ok,
                             run_admin, smtp_cmd, smtp_open, smtp_send_data,
                             write_mail_config)

RCPT, RCPT_PW = "rcpt@example.test", "rcpt-Secret-1"
LISTENERS = IMAP_LISTENERS + [("sub", "submission", "implicit")]


def rsa_key(bits):
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = k.private_bytes(serialization.Encoding.PEM,
                          serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    pub = k.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(pub).decode()


def ed_key():
    k = nacl.signing.SigningKey.generate()
    return (base64.b64encode(bytes(k)),
            base64.b64encode(bytes(k.verify_key)).decode())


RSA_PEM, RSA_PUB = rsa_key(2048)
RSA2_PEM, RSA2_PUB = rsa_key(1024)
SMALL_PEM, SMALL_PUB = rsa_key(512)
ED_PRIV, ED_PUB = ed_key()

# (selector, domain) -> key record
KEYS = {
    ("r1", "a.test"): "v=DKIM1; k=rsa; p=" + RSA_PUB,
    ("r2", "b.test"): "v=DKIM1; p=" + RSA2_PUB,
    ("e1", "a.test"): "v=DKIM1; k=ed25519; p=" + ED_PUB,
    ("gone", "a.test"): "v=DKIM1; k=rsa; p=",
    ("strict", "a.test"): "v=DKIM1; k=rsa; t=s; p=" + RSA_PUB,
    ("small", "a.test"): "v=DKIM1; k=rsa; p=" + SMALL_PUB,
    ("sha1only", "a.test"): "v=DKIM1; k=rsa; h=sha1; p=" + RSA_PUB,
    ("test", "a.test"): "v=DKIM1; k=rsa; t=y; p=" + RSA2_PUB,
}
PRIV = {"r1": RSA_PEM, "r2": RSA2_PEM, "e1": ED_PRIV, "gone": RSA_PEM,
        "strict": RSA_PEM, "small": SMALL_PEM, "sha1only": RSA_PEM,
        "test": RSA_PEM, "slow": RSA_PEM, "nokey": RSA_PEM}

BODY = (b"Hello  world \t\r\n\r\n"
        b"A line with  two  spaces.\r\n"
        b"..a line that starts with a dot\r\n"
        b"\r\n\r\n")


def message(tok, extra=b""):
    return (b"From: Alice <alice@a.test>\r\n"
            b"To: " + RCPT.encode() + b"\r\n"
            b"Subject:  " + tok.encode() + b"  folded\r\n\t subject\r\n"
            b"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
            b"Message-ID: <" + tok.encode() + b"@a.test>\r\n" + extra +
            b"\r\n" + BODY)


def sign(msg, selector, domain="a.test", canon=(b"relaxed", b"relaxed"),
         ed=False, **kw):
    sig = dkim.sign(msg, selector.encode(), domain.encode(), PRIV[selector],
                    canonicalize=canon,
                    signature_algorithm=b"ed25519-sha256" if ed
                    else b"rsa-sha256", linesep=b"\r\n", **kw)
    return sig + msg


def sign_expired(msg, selector="r1", domain="a.test"):
    """A signature whose x= is two days past (dkimpy allows 10 hours of
    slop): dkimpy's own signing core with the fields given."""
    d = dkim.DKIM(msg, linesep=b"\r\n")
    policy = dkim.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    include = (b"from", b"to", b"subject")
    d.hasher = dkim.HASH_ALGORITHMS[b"rsa-sha256"]
    h = d.hasher()
    h.update(policy.canonicalize_body(d.body))
    now = int(time.time())
    fields = [(b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", b"relaxed/relaxed"),
              (b"d", domain.encode()), (b"s", selector.encode()),
              (b"t", str(now - 3 * 86400).encode()),
              (b"x", str(now - 2 * 86400).encode()),
              (b"h", b":".join(include)),
              (b"bh", base64.b64encode(h.digest())), (b"b", b"0" * 60)]
    pk = dkim.parse_pem_private_key(PRIV[selector])
    return b"DKIM-Signature: " + d.gen_header(
        fields, include, policy, b"DKIM-Signature", pk) + msg


def tamper_header(m):
    return m.replace(b"Subject:  ", b"Subject:  Re: ", 1)


def tamper_body(m):
    return m.replace(b"Hello  world", b"Hello  World", 1)


def two_signatures(tok):
    """The first (topmost) good, the second broken after signing."""
    m = sign(message(tok), "e1", ed=True)
    inner = sign(m, "r1")
    # Break the inner (now second) signature's b= without touching the
    # first one's signed fields (the first signs no DKIM-Signature).
    top, rest = inner.split(b"DKIM-Signature:", 2)[1:]
    return b"DKIM-Signature:" + top + b"DKIM-Signature:" + \
        re.sub(rb"b=([A-Za-z0-9+/])", lambda x: b"b=" + (
            b"A" if x.group(1) != b"A" else b"B"), rest, count=1)


# name -> (make(tok) -> message bytes, [expected result per signature]
#          [, dkimpy's verify() where it departs from the RFC])
CASES = {
    "rsa_simple_simple": (lambda t: sign(message(t), "r1",
                                         canon=(b"simple", b"simple")),
                          ["pass"]),
    "rsa_relaxed_relaxed": (lambda t: sign(message(t), "r1"), ["pass"]),
    "rsa_simple_relaxed": (lambda t: sign(message(t), "r1",
                                          canon=(b"simple", b"relaxed")),
                           ["pass"]),
    "rsa_relaxed_simple": (lambda t: sign(message(t), "r1",
                                          canon=(b"relaxed", b"simple")),
                           ["pass"]),
    "rsa1024_other_domain": (lambda t: sign(message(t), "r2", "b.test"),
                             ["pass"]),
    "ed25519_relaxed": (lambda t: sign(message(t), "e1", ed=True), ["pass"]),
    "ed25519_simple": (lambda t: sign(message(t), "e1", ed=True,
                                      canon=(b"simple", b"simple")),
                       ["pass"]),
    "length_with_tail": (lambda t: sign(message(t), "r1", length=True) +
                         b"Unsubscribe: added by a list\r\n", ["pass"]),
    "oversigned": (lambda t: sign(message(t), "r1", include_headers=[
        b"from", b"from", b"to", b"subject", b"subject", b"reply-to",
        b"message-id"]), ["pass"]),
    "oversigned_then_added": (lambda t: b"Reply-To: evil@x.test\r\n" + sign(
        message(t), "r1", include_headers=[b"from", b"from", b"to",
                                           b"subject", b"reply-to"]),
        ["fail"]),
    "tampered_header": (lambda t: tamper_header(sign(message(t), "r1")),
                        ["fail"]),
    "tampered_body": (lambda t: tamper_body(sign(message(t), "r1")),
                      ["fail"]),
    "tampered_body_simple": (lambda t: tamper_body(sign(
        message(t), "r1", canon=(b"simple", b"simple"))), ["fail"]),
    "tampered_ed25519": (lambda t: tamper_header(sign(message(t), "e1",
                                                      ed=True)), ["fail"]),
    "two_one_bad": (two_signatures, ["pass", "fail"]),
    "revoked": (lambda t: sign(message(t), "gone"), ["fail"]),
    # RFC 6376 §3.6.1 t=s: i= must be in d= itself; dkimpy does not
    # look at the key's t= and passes it.
    "strict_mismatch": (lambda t: sign(message(t), "strict",
                                       identity=b"@sub.a.test"), ["fail"],
                        [True]),
    "strict_ok": (lambda t: sign(message(t), "strict",
                                 identity=b"someone@a.test"), ["pass"]),
    "small_key": (lambda t: sign(message(t), "small"), ["policy"]),
    # RFC 6376 §3.6.1, §6.1.2 step 8: a key whose h= leaves out sha256
    # is PERMFAIL; dkimpy ignores the key's h= and passes it.
    "key_refuses_sha256": (lambda t: sign(message(t), "sha1only"),
                           ["permerror"], [True]),
    "expired": (lambda t: sign_expired(message(t)), ["fail"]),
    "no_key": (lambda t: sign(message(t), "nokey"), ["permerror"]),
    "testing_key_fails": (lambda t: tamper_body(sign(message(t), "test")),
                          ["neutral"]),
    "unsigned": (lambda t: message(t), []),
}

AR_RE = re.compile(rb"^Authentication-Results: ([^;\r\n]+);(.*?)\r\n(?=\S)",
                   re.M | re.S)


@pytest.fixture(scope="module")
def dnsserver(tmp_path_factory):
    # A DNS server that never answers, for slow.test.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    lines = records_to_dnsmasq(
        [("%s._domainkey.%s" % k, "TXT", v) for k, v in KEYS.items()])
    lines.append("server=/slow.test/127.0.0.1#%d" % silent.getsockname()[1])
    # Keys with a TTL, as published keys have (dnsmasq's default is 0):
    # the server keeps them that long.
    lines.append("local-ttl=300")
    d = Dnsmasq(tmp_path_factory.mktemp("dkimdns"), lines)
    yield d
    d.stop()
    silent.close()


def start(factory, tmp_path_factory, cert, dnsserver, name, dkim_keys):
    directory = tmp_path_factory.mktemp(name)
    path, data, text = write_mail_config(
        directory, [("main", cert)], LISTENERS,
        queue={"resolver": "127.0.0.1", "resolver_port": dnsserver.port},
        auth={"lockout_failures": 1000})
    text += "\n[dkim]\n" + "".join("%s = %s\n" % kv
                                   for kv in dkim_keys.items())
    path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, RCPT, RCPT_PW)
    srv = factory(config_text=text, listeners=LISTENERS)
    srv.admin_config = path
    srv.config_dir = directory
    return srv


@pytest.fixture(scope="module")
def server(module_postern_factory, tmp_path_factory, default_cert,
           dnsserver):
    return start(module_postern_factory, tmp_path_factory, default_cert,
                 dnsserver, "dkim", {"timeout": "3s"})


def dnsfunc(dnsserver):
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = dnsserver.port

    def get(name, timeout=5):
        try:
            a = r.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        except Exception:
            return None
        return b"".join(b"".join(rr.strings) for rr in a)
    return get


def dkimpy_results(msg, dnsserver):
    """dkimpy's verify() of each signature: True or False."""
    d = dkim.DKIM(msg, minkey=1024)
    n = len([1 for k, _ in d.headers if k.lower() == b"dkim-signature"])
    out = []
    for i in range(n):
        try:
            out.append(bool(dkim.DKIM(msg, minkey=1024).verify(
                idx=i, dnsfunc=dnsfunc(dnsserver))))
        except dkim.DKIMException:
            out.append(False)
    return out


def send(srv, msg):
    conn, _ = smtp_open(srv, "smtp", source="127.0.0.1", ehlo="mx.a.test")
    with conn:
        r = smtp_cmd(conn, "MAIL FROM:<alice@a.test>", timeout=30)
        assert r.raw == [b"250 2.1.0 Sender OK\r\n"], r.raw
        r = smtp_cmd(conn, "RCPT TO:<%s>" % RCPT)
        assert r.raw == [b"250 2.1.5 Recipient OK\r\n"], r.raw
        r = smtp_cmd(conn, "DATA")
        assert r.raw[0].startswith(b"354 "), r.raw
        # Dot-stuffed on the wire (RFC 5321 §4.5.2); the server takes
        # the dots off again, so the body is the one signed.
        stuffed = re.sub(rb"(?m)^\.", b"..", msg)
        final = smtp_send_data(conn, stuffed, timeout=30)
        assert QUEUED_RE.match(final.raw[0]), final.raw
        smtp_cmd(conn, "QUIT")


def fetch(srv, tok):
    """The delivered message whose Message-ID holds tok, over IMAP."""
    c = login(srv, RCPT, RCPT_PW)
    try:
        c.select()
        r = c.ok("UID SEARCH HEADER Message-ID %s" % tok)
        uids = r.lines(b"SEARCH")[0].split()[2:]
        assert len(uids) == 1, r.untagged
        r = c.ok("UID FETCH %s (BODY.PEEK[])" % uids[0].decode())
        line = b"".join(r.untagged)
        m = re.search(rb"\{(\d+)\}\r\n", line)
        return line[m.end():m.end() + int(m.group(1))]
    finally:
        c.close()


def dkim_results(msg):
    """[{result, d, s, b, comment}] of the dkim= entries of our
    Authentication-Results field."""
    fields = [m for m in AR_RE.finditer(msg) if m.group(1) == HOSTNAME.encode()]
    if not fields:
        return []
    assert len(fields) == 1, msg[:2000]
    body = re.sub(rb"\r\n[ \t]+", b" ", fields[0].group(2)).decode()
    out = []
    for part in body.split(";"):
        part = part.strip()
        m = re.match(r"dkim=(\w+)(?: \((.*)\))?((?: header\.\w+=\S+)*)$",
                     part)
        if not m:
            continue
        props = dict(re.findall(r"header\.(\w+)=(\S+)", m.group(3)))
        out.append({"result": m.group(1), "comment": m.group(2) or "",
                    **{k: v.strip('"') for k, v in props.items()}})
    return out


def check_cli(srv, dnsserver, msg, tmp_path):
    f = tmp_path / ("m%s.eml" % uuid.uuid4().hex)
    f.write_bytes(msg)
    out = admin_ok(srv.admin_config, "check", "dkim", str(f), "--json",
                   "--resolver", "127.0.0.1:%d" % dnsserver.port)
    return json.loads(out)


@needs_dnsmasq
@pytest.mark.parametrize("case", sorted(CASES))
def test_smtp_dkim_result_matches_dkimpy(server, dnsserver, tmp_path, case):
    make, want, *dkimpy_want = CASES[case]
    tok = uuid.uuid4().hex
    msg = make(tok)
    assert dkimpy_results(msg, dnsserver) == (
        dkimpy_want[0] if dkimpy_want else [r == "pass" for r in want])
    # The CLI, the same code through the same DNS.
    cli = check_cli(server, dnsserver, msg, tmp_path)
    assert [s["result"] for s in cli["signatures"]] == want, cli
    # The server: the header of the delivered message, over IMAP.
    send(server, msg)
    got = fetch(server, tok)
    res = dkim_results(got)
    if not want:
        # Unsigned mail from loopback (no SPF header either): no field.
        assert res == []
        return
    assert [r["result"] for r in res] == want, res
    for r, s in zip(res, cli["signatures"]):
        assert r["d"] == s["domain"] and r["s"] == s["selector"]
        assert r["b"] == s["b"] and len(r["b"]) == 8
    # The delivered message still verifies as it did (nothing we added
    # or changed is signed).
    body = got.split(b"\r\n\r\n", 1)[1]
    assert body == msg.split(b"\r\n\r\n", 1)[1]


@needs_dnsmasq
def test_smtp_dkim_length_tail_is_noted(server, dnsserver, tmp_path):
    """l= signs part of the body: still pass, with the unsigned tail in
    the comment (and the CLI's unsigned_tail, for a later spam score)."""
    tok = uuid.uuid4().hex
    tail = b"Unsubscribe: added by a list\r\n"
    msg = sign(message(tok), "r1", length=True) + tail
    cli = check_cli(server, dnsserver, msg, tmp_path)
    s = cli["signatures"][0]
    assert s["result"] == "pass" and s["has_length"]
    # The two empty lines that ended the signed body are no longer at
    # its end: they count with the tail.
    assert s["unsigned_tail"] == len(tail) + 4
    send(server, msg)
    r = dkim_results(fetch(server, tok))[0]
    assert r["result"] == "pass"
    assert "unsigned body tail of %d bytes after l=" % (len(tail) + 4) in \
        r["comment"]


@needs_dnsmasq
def test_smtp_dkim_keys_are_cached_for_their_ttl(server, dnsserver):
    """Three messages under one key: the server asks for it once at most
    (the key record's TTL is 300 s; the other cases may have asked
    already), and each passes."""
    def asked():
        return dnsserver.log_path.read_text().count(
            "query[TXT] e1._domainkey.a.test ")
    before = asked()
    toks = [uuid.uuid4().hex for _ in range(3)]
    for tok in toks:
        send(server, sign(message(tok), "e1", ed=True))
    for tok in toks:
        assert [r["result"] for r in dkim_results(fetch(server, tok))] == \
            ["pass"]
    assert asked() - before <= 1


@needs_dnsmasq
def test_smtp_dkim_dns_timeout_is_temperror_and_delivered(server, dnsserver,
                                                          tmp_path):
    """A key whose DNS server never answers: temperror after [dkim]
    timeout (3 s here), and the message is delivered, never refused."""
    tok = uuid.uuid4().hex
    msg = sign(message(tok), "slow", "slow.test")
    send(server, msg)
    r = dkim_results(fetch(server, tok))
    assert [x["result"] for x in r] == ["temperror"], r
    assert r[0]["d"] == "slow.test"


@needs_dnsmasq
def test_smtp_dkim_many_signatures_are_bounded(server, dnsserver, tmp_path):
    """Twelve signatures: the topmost 5 are checked, the rest ignored."""
    tok = uuid.uuid4().hex
    msg = message(tok)
    for _ in range(12):
        msg = sign(msg, "r1")
    cli = check_cli(server, dnsserver, msg, tmp_path)
    assert len(cli["signatures"]) == 5 and cli["ignored"] == 7
    send(server, msg)
    r = dkim_results(fetch(server, tok))
    assert [x["result"] for x in r] == ["pass"] * 5


@needs_dnsmasq
def test_smtp_dkim_huge_h_list_is_permerror(server, dnsserver, tmp_path):
    """An h= of 200 names (over the bound of 128): permerror, no work."""
    tok = uuid.uuid4().hex
    msg = sign(message(tok), "r1",
               include_headers=[b"from"] + [b"x-h%d" % i for i in range(199)])
    cli = check_cli(server, dnsserver, msg, tmp_path)
    assert cli["signatures"][0]["result"] == "permerror"
    assert "h=" in cli["signatures"][0]["reason"]


@needs_dnsmasq
def test_smtp_dkim_off(module_postern_factory, tmp_path_factory, default_cert,
                       dnsserver):
    """[dkim] verify = no: no dkim= result (and no header when SPF has
    none either)."""
    srv = start(module_postern_factory, tmp_path_factory, default_cert,
                dnsserver, "dkimoff", {"verify": "no"})
    tok = uuid.uuid4().hex
    send(srv, sign(message(tok), "r1"))
    got = fetch(srv, tok)
    assert b"dkim=" not in got.split(b"\r\n\r\n", 1)[0]


@needs_dnsmasq
def test_smtp_dkim_submission_is_not_verified(server, dnsserver):
    """Mail a logged-in client submits carries no dkim= result."""
    tok = uuid.uuid4().hex
    msg = sign(message(tok).replace(b"alice@a.test", RCPT.encode()), "r1")
    conn, _ = smtp_open(server, "sub", ehlo="client.test")
    with conn:
        r = smtp_cmd(conn, "AUTH PLAIN " + base64.b64encode(
            b"\0" + RCPT.encode() + b"\0" + RCPT_PW.encode()).decode())
        assert r.raw[0].startswith(b"235"), r.raw
        smtp_cmd(conn, "MAIL FROM:<%s>" % RCPT)
        smtp_cmd(conn, "RCPT TO:<%s>" % RCPT)
        smtp_cmd(conn, "DATA")
        final = smtp_send_data(conn, re.sub(rb"(?m)^\.", b"..", msg))
        assert QUEUED_RE.match(final.raw[0]), final.raw
    got = fetch(server, tok)
    assert b"dkim=" not in got.split(b"\r\n\r\n", 1)[0]


@needs_dnsmasq
def test_cli_check_dkim_text_and_usage(server, dnsserver, tmp_path):
    tok = uuid.uuid4().hex
    f = tmp_path / "m.eml"
    # A file with LF line ends reads as the same message.
    f.write_bytes(sign(message(tok), "r1").replace(b"\r\n", b"\n"))
    out = admin_ok(server.admin_config, "check", "dkim", str(f),
                   "--resolver", "127.0.0.1:%d" % dnsserver.port)
    assert out.split()[:3] == ["pass", "d=a.test", "s=r1"], out
    f.write_bytes(message(tok))
    out = admin_ok(server.admin_config, "check", "dkim", str(f),
                   "--resolver", "127.0.0.1:%d" % dnsserver.port)
    assert out.startswith("none")
    r = run_admin(server.admin_config, "check", "dkim")
    assert r.returncode == 2 and "usage:" in r.stderr
    r = run_admin(server.admin_config, "check", "dkim", str(f),
                  "--resolver", "nope")
    assert r.returncode == 2 and "IP or IP:PORT" in r.stderr
    r = run_admin(server.admin_config, "check", "dkim",
                  str(tmp_path / "missing"))
    assert r.returncode == 1 and "missing" in r.stderr
