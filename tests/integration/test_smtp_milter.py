"""Milters (issue 16): postern speaks the Sendmail milter protocol v6 to
the milters of a listener ([milter NAME], [listener NAME] milters = ...),
as Postfix does. A small milter written here against the raw protocol
(milter_peer.py) refuses at each step, answers with its own reply codes,
tempfails, discards, changes headers and the body, sleeps past the
timeout; a milter that is down or broken stands for its default_action.
Then rspamd from Debian, started privately in milter mode: GTUBE is
refused with rspamd's reply and a clean message arrives carrying
rspamd's headers. What a client sees is checked: SMTP replies and the
stored message over IMAP."""

import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import pytest

from imap_helpers import login
from milter_peer import MilterPeer, packet
from postern_harness import (QUEUED_RE, add_user, admin_ok, smtp_cmd,
                             smtp_open, smtp_send_data, write_mail_config)

RCPT, RCPT_PW = "rcpt@example.test", "rcpt-Secret-1"
OTHER, OTHER_PW = "other@example.test", "other-Secret-1"
SENDER_OK = [b"250 2.1.0 Sender OK\r\n"]
RCPT_OK = [b"250 2.1.5 Recipient OK\r\n"]

# Listeners and the milters each one has (name, protocol, tls, milters).
LISTENERS = [
    ("smtp", "smtp", "none", "peer"),
    ("smtp_tf", "smtp", "none", "peer_tf"),
    ("smtp_chain", "smtp", "none", "peer, second"),
    ("smtp_down", "smtp", "none", "down"),
    ("smtp_down_ok", "smtp", "none", "down_ok"),
    ("imaps", "imap", "implicit", None),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def with_milters(text, listeners, milters):
    """Adds milters = ... to listener sections and [milter NAME]
    sections (name -> {key: value}) to a configuration text."""
    for name, _, _, names in listeners:
        if names:
            text = text.replace("[listener %s]\n" % name,
                                "[listener %s]\nmilters = %s\n" %
                                (name, names))
    for name, keys in milters.items():
        text += "\n[milter %s]\n" % name + "".join(
            "%s = %s\n" % kv for kv in keys.items())
    return text


@pytest.fixture(scope="module")
def peers():
    a, b = MilterPeer(), MilterPeer()
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="module")
def server(module_postern_factory, tmp_path_factory, default_cert, peers):
    a, b = peers
    directory = tmp_path_factory.mktemp("milter")
    plain = [(n, p, t) for n, p, t, _ in LISTENERS]
    path, data, text = write_mail_config(directory, [("main", default_cert)],
                                         plain)
    down = "inet:127.0.0.1:%d" % free_port()
    text = with_milters(text, LISTENERS, {
        "peer": {"socket": a.socket_spec(), "timeout": "2s",
                 "default_action": "accept"},
        # tempfail: the default.
        "peer_tf": {"socket": a.socket_spec(), "timeout": "2s"},
        "second": {"socket": b.socket_spec(), "timeout": "2s",
                   "default_action": "accept"},
        "down": {"socket": down, "default_action": "reject"},
        "down_ok": {"socket": "unix:%s/nothing.sock" % directory,
                    "default_action": "accept"},
    })
    path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, RCPT, RCPT_PW)
    add_user(path, OTHER, OTHER_PW)
    srv = module_postern_factory(config_text=text, listeners=plain)
    srv.admin_config = path
    return srv


def message(tok, extra=b"", body=b"body line\r\n"):
    return (b"From: someone@other.test\r\nTo: " + RCPT.encode() +
            b"\r\nSubject: " + tok.encode() + b"\r\n" + extra + b"\r\n" +
            body)


def transaction(srv, listener="smtp", rcpts=(RCPT,), data=None, tok=None):
    """MAIL, RCPTs, DATA; returns (tok, [replies]) where the replies are
    raw lists, stopping at the first refused step (but every RCPT is
    tried)."""
    tok = tok or uuid.uuid4().hex
    out = []
    conn, _ = smtp_open(srv, listener, ehlo="client.other.test")
    with conn:
        r = smtp_cmd(conn, "MAIL FROM:<someone@other.test> SIZE=100",
                     timeout=30)
        out.append(r.raw)
        if r.raw != SENDER_OK:
            return tok, out
        ok = 0
        for rc in rcpts:
            r = smtp_cmd(conn, "RCPT TO:<%s>" % rc, timeout=30)
            out.append(r.raw)
            ok += r.raw == RCPT_OK
        if not ok:
            return tok, out
        r = smtp_cmd(conn, "DATA")
        assert r.raw[0].startswith(b"354 "), r.raw
        r = smtp_send_data(conn, data if data is not None else message(tok),
                           timeout=30)
        out.append(r.raw)
        smtp_cmd(conn, "QUIT")
    return tok, out


def fetch(srv, tok, user=RCPT, pw=RCPT_PW, mailbox="INBOX"):
    """The whole message whose Subject holds tok, or None."""
    c = login(srv, user, pw)
    try:
        c.ok('SELECT "%s"' % mailbox)
        r = c.ok("UID SEARCH SUBJECT %s" % tok)
        lines = r.lines(b"SEARCH")
        uids = lines[0].split()[2:] if lines else []
        if not uids:
            return None
        assert len(uids) == 1, r.untagged
        r = c.ok("UID FETCH %s (BODY.PEEK[])" % uids[0].decode())
        line = b"".join(r.untagged)
        m = re.search(rb"\{(\d+)\}\r\n", line)
        return line[m.end():m.end() + int(m.group(1))]
    finally:
        c.close()


def header_and_body(msg):
    h, _, b = msg.partition(b"\r\n\r\n")
    return h + b"\r\n", b


def test_accepting_milter_sees_the_whole_conversation(server, peers):
    a, _ = peers
    a.reset()
    tok, replies = transaction(server, data=message(
        "x", extra=b"X-Folded: one\r\n two\r\n"))
    assert replies[:2] == [SENDER_OK, RCPT_OK]
    assert QUEUED_RE.match(replies[2][0]), replies
    conn = a.seen("connect")[-1]
    assert conn.startswith(b"[127.0.0.1]\x004") and conn.endswith(
        b"127.0.0.1\x00"), conn
    assert a.seen("helo")[-1] == b"client.other.test\x00"
    assert a.seen("mail")[-1] == b"<someone@other.test>\x00SIZE=100\x00"
    assert a.seen("rcpt")[-1] == b"<%s>\x00" % RCPT.encode()
    headers = a.seen("header")
    names = [h.split(b"\0")[0] for h in headers]
    # Our Received: is shown, Return-Path: is not (the store's).
    assert names == [b"Received", b"From", b"To", b"Subject",
                     b"X-Folded"], names
    assert headers[-1] == b"X-Folded\x00one\n two\x00"
    assert a.seen("body") == [b"body line\r\n"]
    assert len(a.seen("eom")) == 1
    macros = b"".join(a.seen("macro"))
    for m in (b"{client_addr}\x00127.0.0.1\x00", b"j\x00mail.example.test",
              b"{daemon_name}\x00smtp\x00",
              b"{mail_addr}\x00someone@other.test\x00",
              b"{rcpt_addr}\x00" + RCPT.encode()):
        assert m in macros, (m, macros)
    # i: the queue id the client is told, at MAIL, DATA and EOM.
    qid = QUEUED_RE.match(replies[2][0]).group(1)
    for cmd in (b"M", b"T", b"E"):
        assert cmd + b"i\x00" + qid + b"\x00" in macros, (cmd, macros)


def test_milter_sees_the_dkim_results_of_a_signed_message(server, peers):
    """A signed message's body waits for its DKIM results (our header goes
    above it); with milters it then goes their way: they see our
    Authentication-Results: with the dkim= result, the signature and the
    body, and the stored message carries it. The signature expired long
    ago: a fail without any DNS question."""
    a, _ = peers
    a.reset()
    tok = uuid.uuid4().hex
    sig = (b"DKIM-Signature: v=1; a=rsa-sha256; d=other.test; s=s1; t=1;"
           b" x=2;\r\n\th=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hS"
           b"uFU=; b=AAAA\r\n")
    _, replies = transaction(server, data=sig + message(tok), tok=tok)
    assert QUEUED_RE.match(replies[2][0]), replies
    names = [h.split(b"\0")[0] for h in a.seen("header")]
    assert names == [b"Authentication-Results", b"Received",
                     b"DKIM-Signature", b"From", b"To", b"Subject"], names
    ar = a.seen("header")[0]
    assert b"dkim=fail (signature expired at 2) header.d=other.test " \
        b"header.s=s1 header.b=AAAA" in ar, ar
    assert a.seen("body") == [b"body line\r\n"]
    got = fetch(server, tok)
    assert b"dkim=fail (signature expired at 2)" in got
    assert got.endswith(b"\r\n\r\nbody line\r\n")


# ---- refusals at each step ------------------------------------------------

@pytest.mark.parametrize("step", ["connect", "helo", "mail"])
def test_reject_before_rcpt_refuses_mail(server, peers, step):
    a, _ = peers
    a.reset(**{step: b"r"})
    _, replies = transaction(server)
    assert replies == [[b"550 5.7.1 Command rejected\r\n"]]


def test_rcpt_reject_refuses_that_recipient_only(server, peers):
    a, _ = peers
    a.reset(rcpt={OTHER: b"r"})
    tok, replies = transaction(server, rcpts=(OTHER, RCPT))
    assert replies[:3] == [SENDER_OK, [b"550 5.7.1 Recipient rejected\r\n"],
                           RCPT_OK]
    assert QUEUED_RE.match(replies[3][0]), replies
    assert fetch(server, tok) is not None
    assert fetch(server, tok, OTHER, OTHER_PW) is None


def test_rcpt_tempfail_and_replycode(server, peers):
    a, _ = peers
    a.reset(rcpt={OTHER: b"t",
                  RCPT: (b"y", b"553 5.1.8 Not for you\0")})
    _, replies = transaction(server, rcpts=(OTHER, RCPT))
    assert replies == [
        SENDER_OK,
        [b"451 4.7.1 Service unavailable - try again later\r\n"],
        [b"553 5.1.8 Not for you\r\n"]]


@pytest.mark.parametrize("step", ["data", "header", "eoh", "body", "eom"])
def test_reject_in_the_message_refuses_it(server, peers, step):
    a, _ = peers
    a.reset(**{step: b"r"})
    tok, replies = transaction(server)
    assert replies[-1] == [b"550 5.7.1 Command rejected\r\n"]
    assert fetch(server, tok) is None
    # The next transaction of the session is whole again.
    a.reset()
    tok, replies = transaction(server)
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert fetch(server, tok) is not None


def test_multiline_replycode_at_eom(server, peers):
    a, _ = peers
    a.reset(eom=(b"y", b"554 5.7.1 Spam\r\n554 5.7.1 see http://x.test/\0"))
    tok, replies = transaction(server)
    assert replies[-1] == [b"554-5.7.1 Spam\r\n",
                           b"554 5.7.1 see http://x.test/\r\n"]
    assert fetch(server, tok) is None


def test_replycode_with_control_bytes_is_cleaned(server, peers):
    a, _ = peers
    a.reset(mail=(b"y", b"450 4.7.1 a\x01b\x7fc\0"))
    _, replies = transaction(server)
    assert replies == [[b"450 4.7.1 a?b?c\r\n"]]


def test_tempfail_at_eom(server, peers):
    a, _ = peers
    a.reset(eom=b"t")
    tok, replies = transaction(server)
    assert replies[-1] == [
        b"451 4.7.1 Service unavailable - try again later\r\n"]
    assert fetch(server, tok) is None


@pytest.mark.parametrize("step", ["mail", "rcpt", "eom"])
def test_discard_says_250_and_keeps_nothing(server, peers, step):
    a, _ = peers
    a.reset(**{step: b"d"})
    tok, replies = transaction(server)
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert fetch(server, tok) is None


def test_accept_at_mail_skips_the_rest_of_the_message(server, peers):
    a, _ = peers
    a.reset(mail=b"a")
    tok, replies = transaction(server)
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert a.seen("rcpt") == [] and a.seen("eom") == []
    assert fetch(server, tok) is not None


# ---- changes at end of message -------------------------------------------

def test_header_changes_reach_the_mailbox(server, peers):
    a, _ = peers
    a.reset(eom=[
        (b"h", b"X-Added\0yes\0"),
        (b"h", b"X-Folded-Added\0line one\nline two\0"),
        (b"i", struct.pack(">I", 0) + b"X-Top\0first\0"),
        (b"m", struct.pack(">I", 1) + b"X-Change\0new value\0"),
        (b"m", struct.pack(">I", 2) + b"X-Drop\0\0"),
        (b"m", struct.pack(">I", 1) + b"X-Absent\0\0"),
        (b"c", b"")])
    tok = uuid.uuid4().hex
    _, replies = transaction(server, tok=tok, data=message(
        tok, extra=b"X-Change: old value\r\nX-Drop: first\r\n"
        b"X-Drop: second\r\n"))
    assert QUEUED_RE.match(replies[-1][0]), replies
    msg = fetch(server, tok)
    head, body = header_and_body(msg)
    assert head.startswith(b"Return-Path: <someone@other.test>\r\n"
                           b"X-Top: first\r\nReceived: "), head
    assert b"\r\nX-Change: new value\r\n" in head
    assert b"old value" not in head
    assert b"X-Drop: first\r\n" in head and b"second" not in head
    assert head.endswith(b"X-Added: yes\r\n"
                         b"X-Folded-Added: line one\r\n\tline two\r\n")
    assert body == b"body line\r\n"


def test_header_value_cannot_end_the_header(server, peers):
    a, _ = peers
    a.reset(eom=[(b"h", b"X-Evil\0a\r\n\r\nInjected: yes\r\n\0"),
                 (b"c", b"")])
    tok = uuid.uuid4().hex
    _, replies = transaction(server, tok=tok, data=message(tok))
    assert QUEUED_RE.match(replies[-1][0]), replies
    head, body = header_and_body(fetch(server, tok))
    assert b"X-Evil: a\r\n\tInjected: yes\r\n" in head
    assert body == b"body line\r\n"


def test_body_replaced(server, peers):
    a, _ = peers
    a.reset(eom=[(b"b", b"new body\nwith bare LF\n"),
                 (b"b", b"second chunk\r\n"), (b"c", b"")])
    tok = uuid.uuid4().hex
    _, replies = transaction(server, tok=tok, data=message(tok))
    assert QUEUED_RE.match(replies[-1][0]), replies
    _, body = header_and_body(fetch(server, tok))
    assert body == b"new body\r\nwith bare LF\r\nsecond chunk\r\n"


def test_quarantine_files_into_junk(server, peers):
    a, _ = peers
    a.reset(eom=[(b"q", b"looks bad\0"), (b"a", b"")])
    tok = uuid.uuid4().hex
    _, replies = transaction(server, tok=tok, data=message(tok))
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert fetch(server, tok) is None
    assert fetch(server, tok, mailbox="Junk") is not None


def test_delrcpt_removes_a_recipient(server, peers):
    a, _ = peers
    a.reset(eom=[(b"-", b"<" + OTHER.upper().encode() + b">\0"),
                 (b"c", b"")])
    tok = uuid.uuid4().hex
    _, replies = transaction(server, rcpts=(OTHER, RCPT), tok=tok,
                             data=message(tok))
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert fetch(server, tok) is not None
    assert fetch(server, tok, OTHER, OTHER_PW) is None
    # Every recipient removed: 250, nothing stored.
    a.reset(eom=[(b"-", RCPT.encode() + b"\0"), (b"c", b"")])
    tok = uuid.uuid4().hex
    _, replies = transaction(server, tok=tok, data=message(tok))
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert fetch(server, tok) is None


def test_envelope_changes_not_offered_are_ignored(server, peers):
    a, _ = peers
    # ADDRCPT and CHGFROM were not negotiated: logged, not done.
    a.reset(eom=[(b"+", b"<evil@other.test>\0"),
                 (b"e", b"<evil@other.test>\0"), (b"c", b"")])
    tok = uuid.uuid4().hex
    _, replies = transaction(server, tok=tok, data=message(tok))
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert fetch(server, tok).startswith(
        b"Return-Path: <someone@other.test>\r\n")


def test_changes_of_a_failing_milter_are_not_made(server, peers):
    a, _ = peers
    # Changes, then a reply that is no reply: the milter is broken, the
    # default action (accept) stores the message as it came.
    a.reset(eom=[(b"h", b"X-Half\0done\0"), (b"b", b"replaced\r\n"),
                 (b"Z", b"")])
    tok = uuid.uuid4().hex
    _, replies = transaction(server, tok=tok, data=message(tok))
    assert QUEUED_RE.match(replies[-1][0]), replies
    head, body = header_and_body(fetch(server, tok))
    assert b"X-Half" not in head and body == b"body line\r\n"


def test_chain_of_two_milters(server, peers):
    a, b = peers
    a.reset(eom=[(b"h", b"X-First\0one\0"), (b"c", b"")])
    b.reset(eom=[(b"h", b"X-Second\0two\0"), (b"c", b"")])
    tok = uuid.uuid4().hex
    _, replies = transaction(server, "smtp_chain", tok=tok, data=message(tok))
    assert QUEUED_RE.match(replies[-1][0]), replies
    head, _ = header_and_body(fetch(server, tok))
    assert head.endswith(b"X-First: one\r\nX-Second: two\r\n")
    # The second refuses: the first one's changes do not matter.
    b.reset(rcpt=b"r")
    _, replies = transaction(server, "smtp_chain")
    assert replies[-1] == [b"550 5.7.1 Recipient rejected\r\n"]


def test_no_reply_flags_are_honoured(server, peers):
    a, _ = peers
    # NR_HDR and NR_BODY: the peer does not answer headers and body.
    a.reset(protocol=0x80 | 0x80000, eom=[(b"h", b"X-NR\0ok\0"),
                                          (b"c", b"")])
    tok = uuid.uuid4().hex
    _, replies = transaction(server, tok=tok, data=message(tok))
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert b"X-NR: ok\r\n" in fetch(server, tok)


def test_no_steps_flags_are_honoured(server, peers):
    a, _ = peers
    # NOHELO, NORCPT, NOBODY: not sent.
    a.reset(protocol=0x02 | 0x08 | 0x10)
    tok, replies = transaction(server)
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert a.seen("helo") == [] and a.seen("rcpt") == []
    assert a.seen("body") == [] and len(a.seen("eom")) == 1


def test_big_body_goes_in_chunks(server, peers):
    a, _ = peers
    a.reset()
    body = (b"x" * 998 + b"\r\n") * 200
    tok = uuid.uuid4().hex
    _, replies = transaction(server, tok=tok, data=message(tok, body=body))
    assert QUEUED_RE.match(replies[-1][0]), replies
    chunks = a.seen("body")
    assert len(chunks) == 4 and max(map(len, chunks)) <= 65535
    assert b"".join(chunks) == body


def test_pipelined_commands_wait_for_the_milter(server, peers):
    a, _ = peers
    a.reset(rcpt={OTHER: b"r"},
            eom=[(b"h", b"X-Piped\0yes\0"), (b"c", b"")])
    tok = uuid.uuid4().hex
    conn, _ = smtp_open(server, "smtp")
    with conn:
        conn.send(b"MAIL FROM:<someone@other.test>\r\n"
                  b"RCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" %
                  (OTHER.encode(), RCPT.encode()))
        assert conn.read_smtp_reply(30).raw == SENDER_OK
        assert conn.read_smtp_reply(30).raw == [
            b"550 5.7.1 Recipient rejected\r\n"]
        assert conn.read_smtp_reply(30).raw == RCPT_OK
        assert conn.read_smtp_reply(30).raw[0].startswith(b"354 ")
        r = smtp_send_data(conn, message(tok), timeout=30)
        assert QUEUED_RE.match(r.raw[0]), r.raw
    assert b"\r\nX-Piped: yes\r\n" in fetch(server, tok)
    assert fetch(server, tok, OTHER, OTHER_PW) is None


def test_bdat_message_is_changed_too(server, peers):
    a, _ = peers
    a.reset(eom=[(b"h", b"X-Bdat\0yes\0"), (b"c", b"")])
    tok = uuid.uuid4().hex
    msg = message(tok)
    conn, _ = smtp_open(server, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<someone@other.test>",
                        timeout=30).raw == SENDER_OK
        assert smtp_cmd(conn, "RCPT TO:<%s>" % RCPT, timeout=30).raw == \
            RCPT_OK
        conn.send(b"BDAT 10\r\n" + msg[:10])
        assert conn.read_smtp_reply(30).raw == [
            b"250 2.0.0 10 octets received\r\n"]
        conn.send(b"BDAT %d LAST\r\n" % (len(msg) - 10) + msg[10:])
        r = conn.read_smtp_reply(30)
        assert QUEUED_RE.match(r.raw[0]), r.raw
    head, body = header_and_body(fetch(server, tok))
    assert head.endswith(b"X-Bdat: yes\r\n") and body == b"body line\r\n"


# ---- milters down, slow, broken -------------------------------------------

def test_timeout_gives_default_accept(server, peers):
    a, _ = peers
    a.reset(sleep=("mail", 4.0))
    tok, replies = transaction(server)
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert fetch(server, tok) is not None


def test_timeout_gives_default_tempfail(server, peers):
    a, _ = peers
    a.reset(sleep=("eom", 4.0))
    tok, replies = transaction(server, "smtp_tf")
    assert replies[-1] == [
        b"451 4.7.1 Service unavailable - try again later\r\n"]
    assert fetch(server, tok) is None


def test_reply_trickled_past_the_timeout_gives_default_action(server, peers):
    a, _ = peers
    # Each byte comes well within the 2 s timeout, the packet does not.
    a.reset(trickle=("mail", packet(b"c"), 0.8))
    _, replies = transaction(server, "smtp_tf")
    assert replies == [
        [b"451 4.7.1 Service unavailable - try again later\r\n"]]


def test_milter_down_default_reject(server):
    _, replies = transaction(server, "smtp_down")
    assert replies == [[b"550 5.7.1 Command rejected\r\n"]]


def test_milter_down_default_accept(server):
    tok, replies = transaction(server, "smtp_down_ok")
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert fetch(server, tok) is not None


def test_slow_milter_delays_only_its_own_session(postern_factory, tmp_path,
                                                default_cert, peers):
    """One worker thread: a session whose milter takes 10 s over MAIL
    does not hold up another session's whole transaction."""
    a, _ = peers
    listeners = [("smtp", "smtp", "none", "slowpeer"),
                 ("imaps", "imap", "implicit", None)]
    plain = [(n, p, t) for n, p, t, _ in listeners]
    path, _, text = write_mail_config(tmp_path / "slow",
                                      [("main", default_cert)], plain,
                                      server={"workers": 1})
    text = with_milters(text, listeners, {
        "slowpeer": {"socket": a.socket_spec(), "timeout": "30s"}})
    path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, RCPT, RCPT_PW)
    srv = postern_factory(config_text=text, listeners=plain)
    a.reset(sleep_when=("mail", b"slow@", 10.0))
    slow, _ = smtp_open(srv, "smtp")
    with slow:
        slow.send(b"MAIL FROM:<slow@other.test>\r\n")
        tok, replies = transaction(srv)
        assert QUEUED_RE.match(replies[-1][0]), replies
        # The other session was served while this one's milter thought.
        slow.sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            slow.sock.recv(100)
        slow.sock.settimeout(30)
        assert slow.read_smtp_reply(30).raw == SENDER_OK


@pytest.mark.parametrize("raw", [
    struct.pack(">I", 0x7fffffff) + b"c",         # a length past the bound
    struct.pack(">I", 0),                         # an empty packet
    packet(b"y", b"250 fine\0"),                  # a reply code of success
    packet(b"y", b"550 no NUL"),                  # a reply without its NUL
    packet(b"h", b"X-Early\0no\0"),               # a change before EOM
])
def test_broken_milter_gives_default_action(server, peers, raw):
    a, _ = peers
    a.reset(raw=("rcpt", raw))
    tok, replies = transaction(server, "smtp_tf")
    assert replies[1] == [
        b"451 4.7.1 Service unavailable - try again later\r\n"], replies
    # Accept by default: the message goes on without the milter.
    tok, replies = transaction(server)
    assert QUEUED_RE.match(replies[-1][0]), replies
    assert fetch(server, tok) is not None


# ---- rspamd, from Debian's package, in milter mode ------------------------

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
RSPAMD_READY = 240.0    # it compiles its rules first; slow on a busy machine


class Rspamd:
    """rspamd started privately: a configuration directory of our own
    (local.d overriding the workers' sockets: the proxy in milter mode
    scanning itself), run as _rspamd, stopped by PID."""

    def __init__(self):
        # Not under pytest's temporary directory: _rspamd must reach it.
        self.dir = tempfile.mkdtemp(prefix="postern-rspamd-")
        os.chmod(self.dir, 0o755)
        local = self.dir + "/local.d"
        for d in (local, self.dir + "/db", self.dir + "/run",
                  self.dir + "/log"):
            os.mkdir(d)
        self.port = free_port()
        files = {
            "worker-proxy.inc": 'bind_socket = "127.0.0.1:%d";\n'
            'milter = yes;\ntimeout = 120s;\n'
            'upstream "local" {\n  default = yes;\n  self_scan = yes;\n}\n'
            % self.port,
            "worker-normal.inc": 'bind_socket = "127.0.0.1:%d";\n'
            % free_port(),
            "worker-controller.inc": 'bind_socket = "127.0.0.1:%d";\n'
            % free_port(),
            # Its own headers on every message (X-Spamd-Result,
            # X-Rspamd-Server, X-Rspamd-Queue-Id), also for mail from
            # loopback, which it skips by default.
            "milter_headers.conf": "extended_spam_headers = true;\n"
            "skip_local = false;\nskip_authenticated = false;\n",
            # No DNS from the test: a server that is not there.
            "options.inc": 'dns { nameserver = ["127.0.0.1:9"]; '
            'timeout = 0.2s; retransmits = 1; }\n',
        }
        for name, text in files.items():
            with open(local + "/" + name, "w") as f:
                f.write(text)
        pw = pwd.getpwnam("_rspamd")
        for root, dirs, names in os.walk(self.dir):
            for n in dirs + names + [""]:
                os.chown(root + ("/" + n if n else ""), pw.pw_uid,
                         pw.pw_gid)
        self.log = open(self.dir + "/stderr.log", "wb")
        self.proc = subprocess.Popen(
            ["rspamd", "-f", "-u", "_rspamd", "-g", "_rspamd", "-c",
             "/etc/rspamd/rspamd.conf", "--var=LOCAL_CONFDIR=" + self.dir,
             "--var=DBDIR=%s/db" % self.dir, "--var=RUNDIR=%s/run" %
             self.dir, "--var=LOGDIR=%s/log" % self.dir],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + RSPAMD_READY
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise AssertionError("rspamd did not listen in %ds" % RSPAMD_READY)

    def log_text(self):
        try:
            with open(self.dir + "/log/rspamd.log", "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except Exception:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def rspamd_server(module_postern_factory, tmp_path_factory, default_cert):
    rs = Rspamd()
    try:
        directory = tmp_path_factory.mktemp("rspamd")
        listeners = [("smtp", "smtp", "none", "rspamd"),
                     ("imaps", "imap", "implicit", None)]
        plain = [(n, p, t) for n, p, t, _ in listeners]
        path, data, text = write_mail_config(
            directory, [("main", default_cert)], plain)
        text = with_milters(text, listeners, {
            "rspamd": {"socket": "inet:127.0.0.1:%d" % rs.port,
                       "timeout": "60s"}})
        path.write_text(text)
        admin_ok(path, "domain", "add", "example.test")
        add_user(path, RCPT, RCPT_PW)
        srv = module_postern_factory(config_text=text, listeners=plain)
        srv.admin_config = path
        yield srv, rs
    finally:
        rs.stop()


def test_rspamd_refuses_gtube_with_its_reply(rspamd_server):
    srv, rs = rspamd_server
    tok = uuid.uuid4().hex
    _, replies = transaction(srv, tok=tok, data=message(
        tok, body=b"This is spam.\r\n" + GTUBE + b"\r\n"))
    final = b"".join(replies[-1])
    assert final.startswith(b"554 5.7.1 "), (final, rs.log_text())
    assert b"gtube" in final.lower(), final
    assert fetch(srv, tok) is None


def test_rspamd_clean_message_arrives_with_its_headers(rspamd_server):
    srv, rs = rspamd_server
    tok = uuid.uuid4().hex
    _, replies = transaction(srv, tok=tok, data=message(
        tok, extra=b"Date: Mon, 07 Dec 2026 12:00:00 +0000\r\n"
        b"Message-ID: <" + tok.encode() + b"@other.test>\r\n",
        body=b"Hello, see you tomorrow at the meeting.\r\n"))
    m = QUEUED_RE.match(replies[-1][0])
    assert m, (replies, rs.log_text())
    head, body = header_and_body(fetch(srv, tok))
    assert b"\r\nX-Spamd-Result: default: False [" in head, head
    # rspamd's queue id is ours: the i macro reached it.
    assert b"\r\nX-Rspamd-Queue-Id: " + m.group(1) + b"\r\n" in head, head
    assert b"\r\nX-Rspamd-Server: " in head, head
    assert body == b"Hello, see you tomorrow at the meeting.\r\n"
