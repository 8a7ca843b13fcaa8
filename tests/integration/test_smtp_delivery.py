"""SMTP on port 25 delivering to local accounts, read back from the store
byte for byte: the stored message is our Return-Path and Received fields
followed by exactly the client's bytes after dot-unstuffing. Aliases,
catch-all, BDAT (RFC 3030), 8-bit and long lines (RFC 6152), message size
(RFC 1870), quota, and the SMTP-smuggling payloads (CVE-2023-51764)."""

import email.utils
import smtplib
import ssl
import time
import uuid

import pytest

from postern_harness import (HOSTNAME, QUEUED_RE, admin_ok, client_ctx,
                             smtp_cmd, smtp_open, smtp_send_data,
                             smtp_transaction, start_mail_server)
from store_peek import StorePeek, parse_received, split_trace

MESSAGE_SIZE = 102400
SENDER_OK = b"250 2.1.0 Sender OK\r\n"
RCPT_OK = b"250 2.1.5 Recipient OK\r\n"
GO_AHEAD = b"354 End data with <CR><LF>.<CR><LF>\r\n"
OK = b"250 2.0.0 OK\r\n"

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.test"


@pytest.fixture(scope="module")
def mx(module_postern_factory, default_cert, tmp_path_factory):
    srv = start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("mx"), default_cert,
        [("smtp", "smtp", "starttls")],
        domains=["example.test", "catchall.test"],
        users=[(ALICE, "alice-pw-1", "name=Alice"),
               (BOB, "bob-pw-1"), (CAROL, "carol-pw-1"),
               ("tiny@example.test", "tiny-pw-1", "quota=1k"),
               ("fwd-keep@example.test", "fwd-pw-1",
                "forward=kept@foreign.test", "keep_copy=yes"),
               ("fwd-away@example.test", "fwd-pw-2",
                "forward=away@foreign.test")],
        aliases=[("info@example.test", ALICE),
                 ("team@example.test", ALICE),
                 ("team@example.test", BOB),
                 ("ext@example.test", "boss@external.test")],
        catchalls=[("catchall.test", BOB)],
        limits={"message_size": MESSAGE_SIZE, "recipients": 3})
    srv.peek = StorePeek(srv.mail_data)
    return srv


def token():
    return uuid.uuid4().hex


def the_one(srv, address, tok):
    """The single stored message of address containing tok."""
    if isinstance(tok, str):
        tok = tok.encode()
    found = srv.peek.find(address, tok)
    assert len(found) == 1, "%d messages of %s contain %r" % (
        len(found), address, tok)
    return found[0]


def deliver(srv, rcpts, data, mail_from="sender@remote.test", **kw):
    """One transaction on the smtp listener; data is sent as it is (the
    caller stuffs dots). Returns the queue id from the 250 reply."""
    conn, _ = smtp_open(srv, "smtp", **kw)
    with conn:
        reply = smtp_transaction(conn, mail_from, rcpts, data)
        m = QUEUED_RE.match(reply.raw[0])
        assert m and len(reply.raw) == 1, reply.raw
        return m.group(1).decode()


def check_stored(stored, client_bytes, mail_from="sender@remote.test"):
    """Return-Path first, then our Received, then the client's bytes."""
    rp, received, rest = split_trace(stored)
    assert rp == b"Return-Path: <%s>\r\n" % mail_from.encode()
    assert rest == client_bytes, \
        "stored body differs from what was sent:\nsent   %r\nstored %r" % (
            client_bytes[:300], rest[:300])
    return parse_received(received)


def check_date(text):
    when = email.utils.parsedate_to_datetime(text).timestamp()
    assert abs(when - time.time()) < 120, text


# --- local delivery ----------------------------------------------------------


def test_smtplib_delivery_is_stored_byte_exact(mx):
    tok = token()
    msg = (b"From: Sender <sender@remote.test>\r\n"
           b"To: Alice <alice@example.test>\r\n"
           b"Subject: hello " + tok.encode() + b"\r\n"
           b"Message-ID: <" + tok.encode() + b"@remote.test>\r\n"
           b"\r\n"
           b"Hello Alice,\r\n\r\nthis is a test.\r\n")
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"],
                      local_hostname="client.example", timeout=15) as s:
        refused = s.sendmail("sender@remote.test", [ALICE], msg)
        assert refused == {}
    rcv = check_stored(the_one(mx, ALICE, tok), msg)
    assert rcv["helo"] == "client.example"
    assert rcv["peer"] == "127.0.0.1"
    assert rcv["by"] == HOSTNAME
    assert rcv["with"] == "ESMTP"
    assert rcv["tls"] is None
    assert rcv["for"] == ALICE
    check_date(rcv["date"])


def test_received_id_is_the_queue_id_of_the_reply(mx):
    tok = token()
    data = b"Subject: id " + tok.encode() + b"\r\n\r\nbody\r\n"
    qid = deliver(mx, [ALICE], data)
    rcv = check_stored(the_one(mx, ALICE, tok), data)
    assert rcv["id"] == qid


def test_helo_session_is_received_with_smtp(mx):
    tok = token()
    data = b"Subject: helo " + tok.encode() + b"\r\n\r\nbody\r\n"
    conn, _ = smtp_open(mx, "smtp", ehlo=None)
    with conn:
        assert smtp_cmd(conn, "HELO old.example").code == 250
        reply = smtp_transaction(conn, "sender@remote.test", [ALICE], data)
        assert QUEUED_RE.match(reply.raw[0]), reply.raw
    rcv = check_stored(the_one(mx, ALICE, tok), data)
    assert rcv["helo"] == "old.example"
    assert rcv["with"] == "SMTP"


@pytest.mark.parametrize("version,name", [(ssl.TLSVersion.TLSv1_3, "TLSv1.3"),
                                          (ssl.TLSVersion.TLSv1_2, "TLSv1.2")])
def test_received_after_starttls_names_esmtps_version_and_cipher(
        mx, version, name):
    tok = token()
    data = b"Subject: tls " + tok.encode() + b"\r\n\r\nover TLS\r\n"
    ctx = client_ctx(mx.cert.cert_path, minimum=version, maximum=version)
    conn, _ = smtp_open(mx, "smtp", ehlo=None)
    with conn:
        smtp_cmd(conn, "EHLO client.example")
        conn.send(b"STARTTLS\r\n")
        assert conn.readline() == b"220 2.0.0 Ready to start TLS\r\n"
        conn.starttls(ctx, HOSTNAME)
        cipher = conn.sock.cipher()[0]
        assert smtp_cmd(conn, "EHLO client.example").code == 250
        reply = smtp_transaction(conn, "sender@remote.test", [ALICE], data)
        assert QUEUED_RE.match(reply.raw[0]), reply.raw
    stored = the_one(mx, ALICE, tok)
    rcv = check_stored(stored, data)
    assert rcv["with"] == "ESMTPS"
    assert rcv["tls"] == name
    assert rcv["cipher"] == cipher
    assert b"(using %s with cipher " % name.encode() in stored


def test_alias_delivers_to_its_target(mx):
    tok = token()
    data = b"Subject: alias " + tok.encode() + b"\r\n\r\nto info\r\n"
    deliver(mx, ["info@example.test"], data)
    rcv = check_stored(the_one(mx, ALICE, tok), data)
    assert rcv["for"] == "info@example.test"
    assert mx.peek.find(BOB, tok.encode()) == []


def test_alias_with_two_targets_delivers_one_copy_to_each(mx):
    tok = token()
    data = b"Subject: team " + tok.encode() + b"\r\n\r\nto the team\r\n"
    deliver(mx, ["team@example.test"], data)
    a = the_one(mx, ALICE, tok)
    b = the_one(mx, BOB, tok)
    check_stored(a, data)
    assert a == b


def test_catchall_takes_any_local_part_of_its_domain(mx):
    tok = token()
    data = b"Subject: catch-all " + tok.encode() + b"\r\n\r\nanyone\r\n"
    deliver(mx, ["whoever-%s@catchall.test" % tok[:8]], data)
    rcv = check_stored(the_one(mx, BOB, tok), data)
    assert rcv["for"] == "whoever-%s@catchall.test" % tok[:8]


def test_two_recipients_share_the_message_and_received_has_no_for(mx):
    tok = token()
    data = b"Subject: both " + tok.encode() + b"\r\n\r\nto both\r\n"
    deliver(mx, [ALICE, BOB], data)
    a = the_one(mx, ALICE, tok)
    assert a == the_one(mx, BOB, tok)
    assert check_stored(a, data)["for"] is None


def test_recipient_address_is_case_insensitive(mx):
    tok = token()
    data = b"Subject: case " + tok.encode() + b"\r\n\r\nshouting\r\n"
    deliver(mx, ["ALICE@Example.Test"], data)
    check_stored(the_one(mx, ALICE, tok), data)


# --- the bytes of the message -----------------------------------------------


def test_dot_stuffed_lines_are_stored_unstuffed(mx):
    tok = token().encode()
    sent = (b"Subject: dots " + tok + b"\r\n\r\n"
            b"..leading dot\r\n"
            b"...two dots\r\n"
            b"..\r\n"
            b"a line with . inside\r\n"
            b". \r\n"
            b"end\r\n")
    want = (b"Subject: dots " + tok + b"\r\n\r\n"
            b".leading dot\r\n"
            b"..two dots\r\n"
            b".\r\n"
            b"a line with . inside\r\n"
            b" \r\n"
            b"end\r\n")
    deliver(mx, [ALICE], sent)
    check_stored(the_one(mx, ALICE, tok), want)


def test_smtplib_message_with_leading_dots_round_trips(mx):
    tok = token().encode()
    msg = (b"Subject: smtplib dots " + tok + b"\r\n\r\n"
           b".\r\n..\r\n.hidden\r\n.\r\n\r\nlast\r\n")
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"],
                      local_hostname="client.example", timeout=15) as s:
        s.sendmail("sender@remote.test", [ALICE], msg)
    check_stored(the_one(mx, ALICE, tok), msg)


def test_8bit_body_and_a_2000_character_line_are_stored_byte_exact(mx):
    tok = token().encode()
    msg = (b"Subject: 8bit " + tok + b"\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n" +
           "Gr\u00fc\u00dfe aus K\u00f6ln, \u65e5\u672c\u8a9e\r\n".encode() +
           bytes(range(0x80, 0x100)) + b"\r\n" +
           bytes(range(1, 10)) + b"\x0b\x0c" + bytes(range(14, 32)) +
           b"\x7f\r\n" +
           b"L" * 2000 + b"\r\n" +
           b"end\r\n")
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"],
                      local_hostname="client.example", timeout=15) as s:
        s.ehlo()
        assert s.has_extn("8bitmime")
        s.sendmail("sender@remote.test", [ALICE], msg,
                   mail_options=["BODY=8BITMIME"])
    check_stored(the_one(mx, ALICE, tok), msg)


def test_very_long_body_line_is_not_cut(mx):
    """The command line limit (4096) does not apply to message lines."""
    tok = token().encode()
    data = b"Subject: long " + tok + b"\r\n\r\n" + b"x" * 20000 + b"\r\n"
    deliver(mx, [ALICE], data)
    check_stored(the_one(mx, ALICE, tok), data)


def test_utf8_envelope_with_smtputf8(mx):
    tok = token().encode()
    sender = "j\u00f6ran@b\u00fccher.test"
    data = ("Subject: \u00fcmlaut ".encode() + tok + b"\r\n"
            b"From: " + sender.encode() + b"\r\n\r\nhej\r\n")
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        r = smtp_cmd(conn, "MAIL FROM:<%s> SMTPUTF8" % sender)
        assert r.raw == [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<%s>" % ALICE).raw == [RCPT_OK]
        assert smtp_cmd(conn, "DATA").raw == [GO_AHEAD]
        reply = smtp_send_data(conn, data)
        assert QUEUED_RE.match(reply.raw[0]), reply.raw
    rcv = check_stored(the_one(mx, ALICE, tok), data, mail_from=sender)
    assert rcv["with"] == "UTF8SMTP"


def test_empty_message_is_stored_with_our_fields_only(mx):
    before = mx.peek.count(BOB)
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        reply = smtp_transaction(conn, "empty@remote.test", [BOB], b"")
        assert QUEUED_RE.match(reply.raw[0]), reply.raw
    msgs = mx.peek.messages(BOB)
    assert len(msgs) == before + 1
    check_stored(msgs[-1], b"", mail_from="empty@remote.test")


# --- size --------------------------------------------------------------------


def test_body_over_message_size_gets_552_and_the_session_goes_on(mx):
    tok = token().encode()
    before = mx.peek.count(ALICE)
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<big@remote.test>").raw == \
            [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<%s>" % ALICE).raw == [RCPT_OK]
        assert smtp_cmd(conn, "DATA").raw == [GO_AHEAD]
        line = b"y" * 998 + b"\r\n"
        big = b"Subject: big " + tok + b"\r\n\r\n" + line * 150  # ~150 kB
        reply = smtp_send_data(conn, big)
        assert reply.raw == [b"552 5.3.4 Message size exceeds fixed limit "
                             b"of %d bytes\r\n" % MESSAGE_SIZE]
        assert smtp_cmd(conn, "NOOP").raw == [OK]
        # The transaction is over; a new one delivers.
        assert smtp_cmd(conn, "RCPT TO:<%s>" % ALICE).raw == [
            b"503 5.5.1 Need MAIL before RCPT\r\n"]
        small = b"Subject: small " + tok + b"\r\n\r\nsmall\r\n"
        reply = smtp_transaction(conn, "big@remote.test", [ALICE], small)
        assert QUEUED_RE.match(reply.raw[0]), reply.raw
    assert mx.peek.count(ALICE) == before + 1
    check_stored(the_one(mx, ALICE, tok), small, mail_from="big@remote.test")


def test_body_of_exactly_message_size_is_accepted(mx):
    tok = token().encode()
    head = b"Subject: exact " + tok + b"\r\n\r\n"
    body = head + b"z" * (MESSAGE_SIZE - len(head) - 2) + b"\r\n"
    assert len(body) == MESSAGE_SIZE
    deliver(mx, [ALICE], body)
    check_stored(the_one(mx, ALICE, tok), body)


# --- quota -------------------------------------------------------------------


def test_recipient_over_quota_gets_452_4_2_2_at_rcpt(mx):
    tok = token().encode()
    data = b"Subject: fill " + tok + b"\r\n\r\n" + b"q" * 2048 + b"\r\n"
    deliver(mx, [CAROL], data)
    admin_ok(mx.admin_config, "user", "set", CAROL, "quota=1k")
    try:
        conn, _ = smtp_open(mx, "smtp")
        with conn:
            assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == \
                [SENDER_OK]
            r = smtp_cmd(conn, "RCPT TO:<%s>" % CAROL)
            assert r.raw == [b"452 4.2.2 <carol@example.test>: Mailbox "
                             b"full, try again later\r\n"]
            # Others still get their mail in the same transaction.
            assert smtp_cmd(conn, "RCPT TO:<%s>" % BOB).raw == [RCPT_OK]
            assert smtp_cmd(conn, "DATA").raw == [GO_AHEAD]
            reply = smtp_send_data(conn, b"Subject: after " + tok +
                                   b"\r\n\r\nx\r\n")
            assert QUEUED_RE.match(reply.raw[0]), reply.raw
        assert len(mx.peek.find(CAROL, tok)) == 1
        assert len(mx.peek.find(BOB, tok)) == 1
    finally:
        admin_ok(mx.admin_config, "user", "set", CAROL, "quota=0")
    # Unlimited again: accepted.
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        smtp_cmd(conn, "MAIL FROM:<s@remote.test>")
        assert smtp_cmd(conn, "RCPT TO:<%s>" % CAROL).raw == [RCPT_OK]


# --- BDAT --------------------------------------------------------------------


def test_bdat_chunks_are_stored_byte_exact(mx):
    tok = token().encode()
    chunks = [b"Subject: bdat " + tok + b"\r\n",
              b"\r\n.not stuffed\r\n..two\r\n.\r\n",
              b"a chunk that ends mid-li",
              b"ne\r\n\xc3\xa4 8-bit\r\n"]
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<sender@remote.test> "
                        "BODY=8BITMIME").raw == [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<%s>" % ALICE).raw == [RCPT_OK]
        total = 0
        for c in chunks:
            total += len(c)
            conn.send(b"BDAT %d\r\n" % len(c) + c)
            assert conn.read_smtp_reply().raw == [
                b"250 2.0.0 %d octets received\r\n" % total]
        conn.send(b"BDAT 0 LAST\r\n")
        reply = conn.read_smtp_reply(timeout=15)
        assert QUEUED_RE.match(reply.raw[0]), reply.raw
        assert smtp_cmd(conn, "NOOP").raw == [OK]
    check_stored(the_one(mx, ALICE, tok), b"".join(chunks))


def test_bdat_pipelined_in_one_packet_with_last_on_a_chunk(mx):
    tok = token().encode()
    a = b"Subject: bdat pipelined " + tok + b"\r\n\r\n"
    b = b"MAIL FROM:<inside@remote.test>\r\nRSET\r\n"
    c = b"the end\r\n"
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        conn.send(b"MAIL FROM:<sender@remote.test>\r\n"
                  b"RCPT TO:<%s>\r\n" % ALICE.encode() +
                  b"BDAT %d\r\n" % len(a) + a +
                  b"BDAT %d\r\n" % len(b) + b +
                  b"BDAT %d LAST\r\n" % len(c) + c +
                  b"NOOP\r\n")
        assert conn.read_smtp_reply().raw == [SENDER_OK]
        assert conn.read_smtp_reply().raw == [RCPT_OK]
        assert conn.read_smtp_reply().raw == [
            b"250 2.0.0 %d octets received\r\n" % len(a)]
        assert conn.read_smtp_reply().raw == [
            b"250 2.0.0 %d octets received\r\n" % (len(a) + len(b))]
        reply = conn.read_smtp_reply(timeout=15)
        assert QUEUED_RE.match(reply.raw[0]), reply.raw
        assert conn.read_smtp_reply().raw == [OK]
        assert conn.pending(0.3) == b""
    check_stored(the_one(mx, ALICE, tok), a + b + c)


def test_bdat_over_message_size_gets_552(mx):
    tok = token().encode()
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<sender@remote.test>").raw == \
            [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<%s>" % ALICE).raw == [RCPT_OK]
        chunk = b"Subject: bdat big " + tok + b"\r\n\r\n" + \
            b"b" * MESSAGE_SIZE
        conn.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        assert conn.read_smtp_reply(timeout=15).raw == [
            b"552 5.3.4 Message size exceeds fixed limit of %d bytes\r\n"
            % MESSAGE_SIZE]
        assert smtp_cmd(conn, "NOOP").raw == [OK]
    assert mx.peek.find(ALICE, tok) == []


# --- SMTP smuggling ----------------------------------------------------------

# Each payload sits between "before" and a complete fake transaction; only
# CRLF.CRLF ends DATA, so everything up to the real end is one message.
# Bare LF and bare CR are stored as CRLF (smtp_data.c), and a '.' that
# starts a line only after a bare line ending is not a stuffed dot.
SMUGGLING = {
    "LF.LF": b"\n.\n",
    "CR.CR": b"\r.\r",
    "CRLF.LF": b"\r\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.CR": b"\r\n.\r",
}


@pytest.mark.parametrize("name", list(SMUGGLING))
def test_smuggling_payload_does_not_end_the_message(mx, name):
    tok = token().encode()
    fake = (b"MAIL FROM:<evil@remote.test>\r\n"
            b"RCPT TO:<bob@example.test>\r\n"
            b"DATA\r\n"
            b"Subject: smuggled " + tok + b"\r\n\r\nsmuggled body\r\n")
    sent = (b"Subject: carrier " + tok + b"\r\n\r\nbefore" +
            SMUGGLING[name] + fake)
    want = (b"Subject: carrier " + tok + b"\r\n\r\nbefore\r\n.\r\n" + fake)
    alice_before = mx.peek.count(ALICE)
    bob_before = mx.peek.count(BOB)
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<sender@remote.test>").raw == \
            [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<%s>" % ALICE).raw == [RCPT_OK]
        assert smtp_cmd(conn, "DATA").raw == [GO_AHEAD]
        conn.send(sent + b".\r\n")
        reply = conn.read_smtp_reply(timeout=15)
        assert len(reply.raw) == 1 and QUEUED_RE.match(reply.raw[0]), \
            reply.raw
        # One reply only: nothing answered the fake commands.
        assert conn.pending(0.5) == b""
        assert smtp_cmd(conn, "NOOP").raw == [OK]
    assert mx.peek.count(ALICE) == alice_before + 1
    assert mx.peek.count(BOB) == bob_before
    check_stored(the_one(mx, ALICE, tok), want)


def test_declared_size_over_the_whole_quota_gets_552_at_rcpt(mx):
    """A message larger than the account's whole quota can never fit:
    552, permanent (issue #5 "452 4.2.2 (or 552 when permanent)";
    quota_state() in smtp_cmd_mail.c documents the case)."""
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test> SIZE=5000").raw == \
            [SENDER_OK]
        r = smtp_cmd(conn, "RCPT TO:<tiny@example.test>")
        assert r.code == 552 and r.raw[0].startswith(b"552 5.2.2 "), r.raw


def test_null_sender_is_stored_as_an_empty_return_path(mx):
    tok = token().encode()
    data = b"Subject: bounce " + tok + b"\r\n\r\nundeliverable\r\n"
    deliver(mx, [ALICE], data, mail_from="")
    check_stored(the_one(mx, ALICE, tok), data, mail_from="")


def test_data_after_bdat_is_refused(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<%s>" % ALICE).raw == [RCPT_OK]
        conn.send(b"BDAT 4\r\nab\r\n")
        assert conn.read_smtp_reply().raw == [
            b"250 2.0.0 4 octets received\r\n"]
        assert smtp_cmd(conn, "DATA").raw == [
            b"503 5.5.1 DATA after BDAT is not allowed\r\n"]
        assert smtp_cmd(conn, "RSET").raw == [OK]


def queued_for(srv, rcpt):
    assert srv.peek.queue_tables(), "no outbound queue table in the store"
    return srv.peek.queue_rows_for(rcpt)


def test_forwarding_with_a_local_copy(mx):
    tok = token().encode()
    data = b"Subject: forward kept " + tok + b"\r\n\r\nfw\r\n"
    before = len(queued_for(mx, "kept@foreign.test"))
    deliver(mx, ["fwd-keep@example.test"], data)
    check_stored(the_one(mx, "fwd-keep@example.test", tok), data)
    assert len(queued_for(mx, "kept@foreign.test")) == before + 1, \
        mx.peek.queue_rows()


def test_forwarding_without_a_local_copy(mx):
    tok = token().encode()
    data = b"Subject: forward away " + tok + b"\r\n\r\nfw\r\n"
    before = len(queued_for(mx, "away@foreign.test"))
    deliver(mx, ["fwd-away@example.test"], data)
    assert mx.peek.find("fwd-away@example.test", tok) == []
    assert len(queued_for(mx, "away@foreign.test")) == before + 1, \
        mx.peek.queue_rows()


def test_alias_to_an_external_address_is_queued(mx):
    tok = token().encode()
    data = b"Subject: external alias " + tok + b"\r\n\r\nx\r\n"
    before = len(queued_for(mx, "boss@external.test"))
    deliver(mx, ["ext@example.test"], data)
    assert len(queued_for(mx, "boss@external.test")) == before + 1, \
        mx.peek.queue_rows()
