"""Greetings, the placeholder commands of SMTP, IMAP and POP3, and STARTTLS
on each protocol (including the command-injection case of RFC 3207 §4.2 /
CVE-2011-0411: bytes sent after STARTTLS in the same packet are dropped).
"""

import re
import time

import pytest

from postern_harness import (HOSTNAME, client_ctx, imap_caps, imap_starttls,
                             pop3_starttls, smtp_ehlo_keywords,
                             smtp_starttls)

SMTP_GREETING = b"220 mail.example.test ESMTP postern\r\n"
POP3_GREETING = b"+OK postern ready\r\n"
IMAP_GREETING_RE = re.compile(rb"^\* OK \[CAPABILITY [^\]]*\] postern ready\r\n$")


@pytest.fixture
def tls_ctx(postern):
    return client_ctx(postern.cert.cert_path)


# --- SMTP -------------------------------------------------------------------


@pytest.mark.parametrize("listener",
                         ["smtp", "smtp_plain", "submission", "submissions"])
def test_smtp_greeting_names_the_configured_hostname(postern, listener):
    conn, greeting = postern.greet(listener)
    with conn:
        assert greeting == SMTP_GREETING


def test_smtp_ehlo_offers_starttls_before_tls_and_not_after(postern,
                                                              tls_ctx):
    conn, _ = postern.greet("smtp")
    with conn:
        conn.send(b"EHLO client.example\r\n")
        reply = conn.read_smtp_reply()
        assert reply.code == 250
        assert len(reply.raw) > 1, "EHLO reply should be multi-line"
        assert reply.raw[0].startswith(b"250-mail.example.test"), reply.raw
        assert b"STARTTLS" in smtp_ehlo_keywords(reply), reply.raw

        smtp_starttls(conn, tls_ctx)
        conn.send(b"EHLO client.example\r\n")
        reply = conn.read_smtp_reply()
        assert reply.code == 250
        assert reply.raw[0].startswith(b"250"), reply.raw
        assert b"STARTTLS" not in smtp_ehlo_keywords(reply), reply.raw


def test_smtp_ehlo_offers_no_starttls_on_a_plaintext_listener(postern):
    conn, _ = postern.greet("smtp_plain")
    with conn:
        conn.send(b"EHLO client.example\r\n")
        reply = conn.read_smtp_reply()
        assert reply.code == 250
        assert b"STARTTLS" not in smtp_ehlo_keywords(reply), reply.raw


def test_smtp_ehlo_offers_no_starttls_on_implicit_tls(postern):
    conn, greeting = postern.greet("submissions")
    with conn:
        assert conn.is_tls
        conn.send(b"EHLO client.example\r\n")
        reply = conn.read_smtp_reply()
        assert reply.code == 250
        assert b"STARTTLS" not in smtp_ehlo_keywords(reply), reply.raw


def test_smtp_basic_commands_reply_as_specified(postern):
    conn, _ = postern.greet("smtp")
    with conn:
        conn.send(b"HELO client.example\r\n")
        reply = conn.read_smtp_reply()
        assert reply.code == 250 and len(reply.raw) == 1, reply.raw

        conn.send(b"NOOP\r\n")
        assert conn.readline() == b"250 2.0.0 OK\r\n"

        conn.send(b"XYZZY plugh\r\n")
        line = conn.readline()
        assert line.startswith(b"500 5.5.2 "), line

        conn.send(b"QUIT\r\n")
        assert conn.readline().startswith(b"221 2.0.0 ")
        assert conn.wait_closed() == b""


def test_smtp_commands_are_case_insensitive(postern):
    conn, _ = postern.greet("smtp_plain")
    with conn:
        conn.send(b"noop\r\n")
        assert conn.readline() == b"250 2.0.0 OK\r\n"
        conn.send(b"quit\r\n")
        assert conn.readline().startswith(b"221 2.0.0 ")


def test_smtp_pipelined_commands_each_get_a_reply_in_order(postern):
    conn, _ = postern.greet("smtp_plain")
    with conn:
        conn.send(b"NOOP\r\nXYZZY\r\nNOOP\r\n")
        assert conn.readline() == b"250 2.0.0 OK\r\n"
        assert conn.readline().startswith(b"500 5.5.2 ")
        assert conn.readline() == b"250 2.0.0 OK\r\n"


def test_smtp_command_split_across_packets_is_one_command(postern):
    conn, _ = postern.greet("smtp_plain")
    with conn:
        for piece in (b"N", b"OO", b"P\r", b"\n"):
            conn.send(piece)
            time.sleep(0.05)
        assert conn.readline() == b"250 2.0.0 OK\r\n"
        assert conn.pending(0.3) == b""


def test_smtp_starttls_drops_commands_sent_in_the_same_packet(postern,
                                                              tls_ctx):
    conn, _ = postern.greet("smtp")
    with conn:
        conn.send(b"STARTTLS\r\nNOOP\r\n")
        assert conn.readline() == b"220 2.0.0 Ready to start TLS\r\n"
        # A server that ran the injected NOOP in plaintext would have sent
        # "250 2.0.0 OK" here and broken the handshake.
        conn.starttls(tls_ctx, HOSTNAME)
        conn.send(b"EHLO client.example\r\n")
        reply = conn.read_smtp_reply()
        assert reply.raw[0] != b"250 2.0.0 OK\r\n", \
            "the NOOP sent before the handshake was executed after it"
        assert reply.code == 250 and len(reply.raw) > 1, reply.raw
        assert conn.pending(0.3) == b""


def test_smtp_starttls_again_inside_tls_is_refused(postern, tls_ctx):
    conn, _ = postern.greet("smtp")
    with conn:
        smtp_starttls(conn, tls_ctx)
        conn.send(b"STARTTLS\r\n")
        reply = conn.read_smtp_reply()
        assert 500 <= reply.code <= 599, reply.raw
        conn.send(b"NOOP\r\n")
        assert conn.readline() == b"250 2.0.0 OK\r\n"


def test_smtp_starttls_on_a_plaintext_listener_is_refused(postern):
    conn, _ = postern.greet("smtp_plain")
    with conn:
        conn.send(b"STARTTLS\r\n")
        reply = conn.read_smtp_reply()
        assert 500 <= reply.code <= 599, reply.raw
        conn.send(b"NOOP\r\n")
        assert conn.readline() == b"250 2.0.0 OK\r\n"


def test_submission_starttls_gives_a_verified_tls_session(postern, tls_ctx):
    conn, _ = postern.greet("submission")
    with conn:
        smtp_starttls(conn, tls_ctx)
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        conn.send(b"NOOP\r\n")
        assert conn.readline() == b"250 2.0.0 OK\r\n"


# --- IMAP -------------------------------------------------------------------


def test_imap_greeting_lists_capabilities_with_starttls(postern):
    conn, greeting = postern.greet("imap")
    with conn:
        assert IMAP_GREETING_RE.match(greeting), greeting
        caps = imap_caps(greeting)
        for cap in (b"IMAP4REV2", b"IMAP4REV1", b"STARTTLS",
                    b"LOGINDISABLED"):
            assert cap in caps, greeting


def test_imap_implicit_tls_greeting_offers_no_starttls(postern):
    conn, greeting = postern.greet("imaps")
    with conn:
        assert conn.is_tls
        assert IMAP_GREETING_RE.match(greeting), greeting
        caps = imap_caps(greeting)
        assert b"IMAP4REV2" in caps and b"IMAP4REV1" in caps, greeting
        assert b"STARTTLS" not in caps, greeting


def test_imap_placeholder_commands_reply_as_specified(postern):
    conn, _ = postern.greet("imap")
    with conn:
        conn.send(b"a1 CAPABILITY\r\n")
        others, tagged = conn.read_imap_tagged(b"a1")
        assert tagged.startswith(b"a1 OK"), tagged
        assert len(others) == 1 and others[0].startswith(b"* CAPABILITY "), \
            others
        caps = imap_caps(others[0])
        for cap in (b"IMAP4REV2", b"IMAP4REV1", b"STARTTLS",
                    b"LOGINDISABLED"):
            assert cap in caps, others

        conn.send(b"a2 NOOP\r\n")
        others, tagged = conn.read_imap_tagged(b"a2")
        assert tagged.startswith(b"a2 OK"), tagged

        conn.send(b"a3 XYZZY\r\n")
        others, tagged = conn.read_imap_tagged(b"a3")
        assert tagged.startswith(b"a3 BAD"), tagged

        conn.send(b"a4 noop\r\n")
        others, tagged = conn.read_imap_tagged(b"a4")
        assert tagged.startswith(b"a4 OK"), tagged

        conn.send(b"a5 LOGOUT\r\n")
        others, tagged = conn.read_imap_tagged(b"a5")
        assert [o[:6] for o in others] == [b"* BYE "], others
        assert tagged.startswith(b"a5 OK"), tagged
        assert conn.wait_closed() == b""


def test_imap_starttls_removes_starttls_from_capabilities(postern, tls_ctx):
    conn, _ = postern.greet("imap")
    with conn:
        imap_starttls(conn, tls_ctx)
        conn.send(b"a1 CAPABILITY\r\n")
        others, tagged = conn.read_imap_tagged(b"a1")
        assert tagged.startswith(b"a1 OK"), tagged
        caps = imap_caps(others[0])
        assert b"IMAP4REV2" in caps, others
        assert b"STARTTLS" not in caps, others


def test_imap_starttls_drops_commands_sent_in_the_same_packet(postern,
                                                              tls_ctx):
    conn, _ = postern.greet("imap")
    with conn:
        conn.send(b"a1 STARTTLS\r\nb1 NOOP\r\n")
        assert conn.readline() == b"a1 OK Begin TLS negotiation now\r\n"
        conn.starttls(tls_ctx, HOSTNAME)
        conn.send(b"c1 NOOP\r\n")
        others, tagged = conn.read_imap_tagged(b"c1")
        assert not any(o.startswith(b"b1 ") for o in others), \
            "the NOOP sent before the handshake was executed: %r" % others
        assert tagged.startswith(b"c1 OK"), tagged
        assert conn.pending(0.3) == b""


def test_imap_starttls_again_inside_tls_is_refused(postern, tls_ctx):
    conn, _ = postern.greet("imap")
    with conn:
        imap_starttls(conn, tls_ctx)
        conn.send(b"a2 STARTTLS\r\n")
        _, tagged = conn.read_imap_tagged(b"a2")
        assert tagged.startswith((b"a2 BAD", b"a2 NO")), tagged


# --- POP3 -------------------------------------------------------------------


@pytest.mark.parametrize("listener", ["pop3", "pop3s"])
def test_pop3_greeting(postern, listener):
    conn, greeting = postern.greet(listener)
    with conn:
        assert greeting == POP3_GREETING


def test_pop3_capa_lists_stls_before_tls_and_not_after(postern, tls_ctx):
    conn, _ = postern.greet("pop3")
    with conn:
        conn.send(b"CAPA\r\n")
        assert conn.readline().startswith(b"+OK")
        caps = [c.split()[0].upper() for c in conn.read_pop3_multiline()]
        assert b"STLS" in caps, caps

        pop3_starttls(conn, tls_ctx)
        conn.send(b"CAPA\r\n")
        assert conn.readline().startswith(b"+OK")
        caps = [c.split()[0].upper() for c in conn.read_pop3_multiline()]
        assert b"STLS" not in caps, caps


def test_pop3_capa_on_implicit_tls_lists_no_stls(postern):
    conn, _ = postern.greet("pop3s")
    with conn:
        conn.send(b"CAPA\r\n")
        assert conn.readline().startswith(b"+OK")
        caps = [c.split()[0].upper() for c in conn.read_pop3_multiline()]
        assert b"STLS" not in caps, caps


def test_pop3_unknown_command_and_quit(postern):
    conn, _ = postern.greet("pop3")
    with conn:
        conn.send(b"XYZZY\r\n")
        assert conn.readline().startswith(b"-ERR")
        conn.send(b"QUIT\r\n")
        assert conn.readline().startswith(b"+OK")
        assert conn.wait_closed() == b""


def test_pop3_stls_drops_commands_sent_in_the_same_packet(postern, tls_ctx):
    conn, _ = postern.greet("pop3")
    with conn:
        conn.send(b"STLS\r\nQUIT\r\n")
        line = conn.readline()
        assert line.startswith(b"+OK Begin TLS negotiation"), line
        conn.starttls(tls_ctx, HOSTNAME)
        # Had the QUIT been kept, the server would now say +OK and close.
        conn.send(b"CAPA\r\n")
        line = conn.readline()
        assert line.startswith(b"+OK"), line
        caps = [c.split()[0].upper() for c in conn.read_pop3_multiline()]
        assert b"STLS" not in caps, \
            "expected the CAPA listing, got %r %r" % (line, caps)
        assert conn.pending(0.3) == b""
