"""No SASL mechanism before TLS (issue 15, finding 11), on every protocol:
SMTP on 25 and 587, IMAP on 143, POP3 on 110. Before STARTTLS/STLS the
capability lists name no mechanism (no AUTH in EHLO, no AUTH= in IMAP
CAPABILITY, no SASL in POP3 CAPA) and every mechanism is refused, SCRAM
included; after the upgrade they are all there. allow_plaintext_auth
(loopback testing) brings them back in clear."""

import base64

import pytest

from postern_harness import (ScramSha256Client, client_ctx, imap_caps,
                             imap_starttls, next_source_address,
                             pop3_starttls, smtp_cmd, smtp_open,
                             start_mail_server)

USER, PASSWORD = "alice@example.test", "alice-Secret-1"
LISTENERS = [("smtp", "smtp", "starttls"),
             ("submission", "submission", "starttls"),
             ("imap", "imap", "starttls"),
             ("pop3", "pop3", "starttls")]
ENCRYPTION_REQUIRED = (b"538 5.7.11 Encryption required for the requested "
                       b"authentication mechanism\r\n")


def scram_first_b64(user=USER):
    return base64.b64encode(ScramSha256Client(user, "x").first().encode()
                            ).decode()


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_mail_server(module_postern_factory,
                             tmp_path_factory.mktemp("pretls"), default_cert,
                             LISTENERS, users=[(USER, PASSWORD)],
                             server={"allow_plaintext_auth": "no"})


@pytest.fixture(scope="module")
def plain_srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_mail_server(module_postern_factory,
                             tmp_path_factory.mktemp("pretls-allowed"),
                             default_cert, LISTENERS,
                             users=[(USER, PASSWORD)],
                             server={"allow_plaintext_auth": "yes"})


# --- SMTP --------------------------------------------------------------------


def test_smtp_25_offers_and_accepts_no_mechanism_before_starttls(srv):
    conn, ehlo = smtp_open(srv, "smtp", source=next_source_address())
    with conn:
        kws = [t.split(b" ")[0].upper() for t in ehlo.lines[1:]]
        assert b"AUTH" not in kws, ehlo.raw
        # SCRAM sends no password, but is refused all the same.
        assert smtp_cmd(conn, "AUTH SCRAM-SHA-256 " +
                        scram_first_b64()).raw == [ENCRYPTION_REQUIRED]
        assert smtp_cmd(conn, "AUTH SCRAM-SHA-256").raw == \
            [ENCRYPTION_REQUIRED]
        assert smtp_cmd(conn, "AUTH LOGIN").raw == [ENCRYPTION_REQUIRED]
        # An unknown mechanism is still just unknown.
        assert smtp_cmd(conn, "AUTH X-NOPE").code == 504
        # The session goes on: STARTTLS, then SCRAM is offered.
        assert smtp_cmd(conn, "NOOP").code == 250


@pytest.mark.parametrize("listener", ["smtp", "submission"])
def test_smtp_offers_every_mechanism_after_starttls(srv, listener):
    conn, ehlo = smtp_open(srv, listener, source=next_source_address(),
                           starttls=True)
    with conn:
        auth = [t for t in ehlo.lines if t.upper().startswith(b"AUTH ")]
        assert len(auth) == 1, ehlo.raw
        assert set(auth[0].split()[1:]) == {b"PLAIN", b"LOGIN",
                                             b"SCRAM-SHA-256"}, auth
        c = ScramSha256Client(USER, PASSWORD)
        r = smtp_cmd(conn, "AUTH SCRAM-SHA-256 " +
                     base64.b64encode(c.first().encode()).decode())
        assert r.code == 334, r.raw


def test_smtp_587_has_no_auth_in_ehlo_before_starttls(srv):
    conn, ehlo = smtp_open(srv, "submission", source=next_source_address())
    with conn:
        kws = [t.split(b" ")[0].upper() for t in ehlo.lines[1:]]
        assert b"AUTH" not in kws, ehlo.raw
        assert b"STARTTLS" in kws, ehlo.raw
        r = smtp_cmd(conn, "AUTH SCRAM-SHA-256 " + scram_first_b64())
        assert r.code == 530, r.raw


# --- IMAP --------------------------------------------------------------------


def imap_open(srv, listener="imap"):
    conn = srv.connect(listener)
    greeting = conn.readline()
    assert greeting.startswith(b"* OK"), greeting
    return conn, greeting


def imap_cmd(conn, tag, line):
    conn.send(tag + b" " + line + b"\r\n")
    return conn.read_imap_tagged(tag)


def test_imap_143_offers_and_accepts_no_mechanism_before_starttls(srv):
    conn, greeting = imap_open(srv)
    with conn:
        caps = imap_caps(greeting)
        assert not [c for c in caps if c.startswith(b"AUTH=")], caps
        assert b"STARTTLS" in caps and b"LOGINDISABLED" in caps, caps
        others, tagged = imap_cmd(conn, b"c1", b"CAPABILITY")
        caps = imap_caps(others[0])
        assert not [c for c in caps if c.startswith(b"AUTH=")], caps
        # SCRAM with SASL-IR, and without: no continuation, a NO.
        others, tagged = imap_cmd(conn, b"a1", b"AUTHENTICATE SCRAM-SHA-256 "
                                  + scram_first_b64().encode())
        assert others == [], others
        assert tagged.startswith(b"a1 NO [PRIVACYREQUIRED] "), tagged
        others, tagged = imap_cmd(conn, b"a2", b"AUTHENTICATE SCRAM-SHA-256")
        assert others == [] and tagged.startswith(
            b"a2 NO [PRIVACYREQUIRED] "), (others, tagged)
        others, tagged = imap_cmd(conn, b"a3", b"AUTHENTICATE PLAIN")
        assert tagged.startswith(b"a3 NO [PRIVACYREQUIRED] "), tagged
        # LOGIN (RFC 9051 §6.2.3) is refused before TLS as well.
        others, tagged = imap_cmd(conn, b"l1", ('LOGIN "%s" "%s"' % (
            USER, PASSWORD)).encode())
        assert tagged.startswith(b"l1 NO "), tagged
        others, tagged = imap_cmd(conn, b"s1", b"SELECT INBOX")
        assert tagged.startswith(b"s1 BAD ") or \
            tagged.startswith(b"s1 NO "), tagged
        # After STARTTLS every mechanism is offered.
        imap_starttls(conn, client_ctx(srv.cert.cert_path), tag=b"t1")
        others, tagged = imap_cmd(conn, b"c2", b"CAPABILITY")
        caps = imap_caps(others[0])
        assert {b"AUTH=PLAIN", b"AUTH=LOGIN", b"AUTH=SCRAM-SHA-256"} <= \
            set(caps), caps


# --- POP3 --------------------------------------------------------------------


def pop3_open(srv, listener="pop3"):
    conn = srv.connect(listener)
    greeting = conn.readline()
    assert greeting.startswith(b"+OK"), greeting
    return conn


def pop3_capa(conn):
    conn.send(b"CAPA\r\n")
    line = conn.readline()
    assert line.startswith(b"+OK"), line
    return [c.rstrip(b"\r\n") for c in conn.read_pop3_multiline()]


def test_pop3_110_offers_and_accepts_no_mechanism_before_stls(srv):
    conn = pop3_open(srv)
    with conn:
        capa = pop3_capa(conn)
        assert not [c for c in capa if c.upper().startswith(b"SASL")], capa
        assert b"STLS" in capa, capa
        # RFC 5034 §4: AUTH without an argument lists the mechanisms.
        conn.send(b"AUTH\r\n")
        assert conn.readline().startswith(b"+OK")
        assert conn.read_pop3_multiline() == []
        conn.send(b"AUTH SCRAM-SHA-256 " + scram_first_b64().encode() +
                  b"\r\n")
        assert conn.readline().startswith(b"-ERR ")
        conn.send(b"AUTH SCRAM-SHA-256\r\n")
        assert conn.readline().startswith(b"-ERR ")
        conn.send(b"USER " + USER.encode() + b"\r\n")
        assert conn.readline().startswith(b"-ERR ")
        # After STLS the mechanisms are there.
        pop3_starttls(conn, client_ctx(srv.cert.cert_path))
        capa = pop3_capa(conn)
        sasl = [c for c in capa if c.upper().startswith(b"SASL ")]
        assert len(sasl) == 1, capa
        assert {b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"} <= \
            set(sasl[0].split()[1:]), capa


# --- allow_plaintext_auth ------------------------------------------------------


def test_allow_plaintext_auth_offers_mechanisms_in_clear(plain_srv):
    conn, ehlo = smtp_open(plain_srv, "smtp", source=next_source_address())
    with conn:
        auth = [t for t in ehlo.lines if t.upper().startswith(b"AUTH ")]
        assert len(auth) == 1 and b"SCRAM-SHA-256" in auth[0].split(), \
            ehlo.raw
    conn, greeting = imap_open(plain_srv)
    with conn:
        assert b"AUTH=SCRAM-SHA-256" in imap_caps(greeting), greeting
    conn = pop3_open(plain_srv)
    with conn:
        assert any(c.upper().startswith(b"SASL ") and b"SCRAM-SHA-256" in
                   c.split() for c in pop3_capa(conn))


def test_imap_starttls_refused_after_a_login_in_clear(plain_srv):
    """Once logged in (possible in clear only with allow_plaintext_auth),
    STARTTLS is no longer valid (RFC 9051 §6.2.1: not authenticated state
    only); no handshake follows, the session goes on in clear."""
    conn, _ = imap_open(plain_srv)
    with conn:
        sc = ScramSha256Client(USER, PASSWORD)
        conn.send(b"s1 AUTHENTICATE SCRAM-SHA-256 " +
                  base64.b64encode(sc.first().encode()) + b"\r\n")
        line = conn.readline()
        assert line.startswith(b"+ "), line
        conn.send(base64.b64encode(sc.final(base64.b64decode(
            line[2:].strip())).encode()) + b"\r\n")
        line = conn.readline(timeout=15)
        assert line.startswith(b"+ "), line
        assert sc.verify(base64.b64decode(line[2:].strip()))
        conn.send(b"\r\n")
        _, tagged = conn.read_imap_tagged(b"s1", timeout=15)
        assert tagged.startswith(b"s1 OK"), tagged
        _, tagged = imap_cmd(conn, b"t1", b"STARTTLS")
        assert tagged.startswith(b"t1 BAD") or tagged.startswith(b"t1 NO"), \
            tagged
        _, tagged = imap_cmd(conn, b"n1", b"NOOP")
        assert tagged.startswith(b"n1 OK"), tagged
