"""What a hostile client can do to a session's lifetime (issue 15,
findings 1-4): free it under a pending timer, make us queue replies without
bound, run commands after QUIT, and hold a slot forever by not logging in or
not reading. Each test drives the server over the wire; under `make asan`
a use-after-free aborts the server, which the fixtures report at teardown
(the server must exit 0 after SIGTERM)."""

import base64
import imaplib
import os
import socket
import ssl
import time

import pytest

from postern_harness import (ConnectionClosed, ScramSha256Client,
                             client_ctx, next_source_address, smtp_cmd,
                             smtp_open, start_mail_server)

ALICE, ALICE_PW = "alice@example.test", "alice-Secret-1"
LISTENERS = [("smtp", "smtp", "starttls"),
             ("submission", "submission", "starttls"),
             ("submissions", "submission", "implicit"),
             ("imap", "imap", "starttls"),
             ("imaps", "imap", "implicit"),
             ("pop3", "pop3", "starttls"),
             ("pop3s", "pop3", "implicit")]


def mail_server(factory, tmp_path, cert, **config):
    config.setdefault("auth", {"lockout_failures": 1000})
    return start_mail_server(factory, tmp_path, cert, LISTENERS,
                             users=[(ALICE, ALICE_PW)], **config)


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return mail_server(module_postern_factory,
                       tmp_path_factory.mktemp("life"), default_cert)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def still_serves(srv):
    """The server is alive and greets on every protocol."""
    assert srv.is_running(), "the server died:\n" + srv.log_text()[-3000:]
    for listener in ("smtp", "imap", "pop3"):
        conn, greeting = srv.greet(listener)
        conn.close()


# --- 1. a session freed while its slow-down timer waits ---------------------

def test_auth_failure_in_the_tarpit_then_close_does_not_crash(srv):
    """The transcript of the crash: EHLO, four unknown commands (the
    fifth error starts the one-second slow-down), an AUTH SCRAM-SHA-256
    whose final message is wrong, then the client leaves. Before the fix
    the slow-down timer fired on the freed session a second later and the
    whole server (every session on every port) was gone."""
    for round_ in range(3):
        conn, _ = smtp_open(srv, "submissions",
                            source=next_source_address())
        for _ in range(4):
            r = smtp_cmd(conn, "XYZZY")
            assert r.code == 500, r.raw
        scram = ScramSha256Client(ALICE, "wrong-password")
        r = smtp_cmd(conn, "AUTH SCRAM-SHA-256 " +
                     base64.b64encode(scram.first().encode()).decode())
        assert r.code == 334, r.raw
        conn.send(base64.b64encode(b"c=biws,r=not-the-nonce,p=AAAA") +
                  b"\r\n")
        # The failure counts as the sixth error: its reply is slowed down,
        # and the client does not wait for it.
        conn.close()
    time.sleep(2.5)
    still_serves(srv)


def test_client_gone_while_login_is_checked(srv):
    """A client that sends a login and leaves before the answer: the
    answer arrives for a session whose connection is gone, on all three
    protocols."""
    plain = base64.b64encode(b"\0" + ALICE.encode() + b"\0" +
                             ALICE_PW.encode())
    for _ in range(5):
        conn, _ = smtp_open(srv, "submissions")
        conn.send(b"AUTH PLAIN " + plain + b"\r\nXYZZY\r\n")
        conn.close()
        conn, _ = srv.greet("imaps")
        conn.send(b"a LOGIN " + ALICE.encode() + b" " + ALICE_PW.encode() +
                  b"\r\nb NOOP\r\n")
        conn.close()
        conn, _ = srv.greet("pop3s")
        conn.send(b"USER " + ALICE.encode() + b"\r\nPASS " +
                  ALICE_PW.encode() + b"\r\nSTAT\r\n")
        conn.close()
    time.sleep(1)
    still_serves(srv)


def test_slow_down_still_answers_every_command(srv):
    """Past five errors each error costs a second, but nothing is lost:
    every pipelined command is answered, in order."""
    conn, _ = smtp_open(srv, "smtp", source=next_source_address())
    conn.send(b"XYZZY\r\n" * 7 + b"NOOP\r\n")
    for _ in range(7):
        assert conn.read_smtp_reply(timeout=15).code == 500
    assert conn.read_smtp_reply(timeout=15).code == 250
    conn.close()


# --- 2. replies piling up unread --------------------------------------------

def flood(conn_sock, line, seconds=4.0, limit=64 << 20):
    """Sends line over and over without reading, for seconds or until
    limit bytes went out or the server stops reading. Returns bytes sent."""
    conn_sock.setblocking(False)
    chunk = line * (65536 // len(line))
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and sent < limit:
        try:
            sent += conn_sock.send(chunk)
        except (BlockingIOError, ssl.SSLWantWriteError):
            time.sleep(0.01)
        except (ConnectionResetError, BrokenPipeError):
            break  # the server gave up on us
    return sent


@pytest.mark.parametrize("listener,line", [
    ("smtp", b"HELP\r\n"),
    ("pop3", b"CAPA\r\n"),
    ("imap", b"a CAPABILITY\r\n"),
])
def test_a_client_that_never_reads_cannot_grow_the_server(srv, listener,
                                                          line):
    """HELP answers 28 times its size: before the fix a client sending it
    in a loop without reading grew the server without bound. Now the
    server stops reading while its replies wait; its memory stays flat."""
    before = rss_kib(srv.proc.pid)
    s = socket.create_connection(("127.0.0.1", srv.ports[listener]))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.recv(4096)
    sent = flood(s, line)
    grown = rss_kib(srv.proc.pid) - before
    s.close()
    # The kernel buffers some MB each way; the server itself must not
    # hold more than a bounded amount (far below 28x what was sent).
    assert grown < 48 * 1024, "server grew by %d KiB after %d bytes" % (
        grown, sent)
    still_serves(srv)


# --- 3. nothing runs after QUIT ---------------------------------------------

def test_mail_after_quit_in_the_same_packet_is_not_delivered(srv):
    """QUIT, then a whole transaction in the same packet: the session
    ends at QUIT and delivers nothing."""
    subject = "after-quit-%s" % os.urandom(4).hex()
    conn, _ = smtp_open(srv, "smtp")
    conn.send(b"QUIT\r\nMAIL FROM:<x@example.org>\r\nRCPT TO:<" +
              ALICE.encode() + b">\r\nDATA\r\nSubject: " + subject.encode() +
              b"\r\n\r\nhello\r\n.\r\n")
    assert conn.read_smtp_reply().code == 221
    rest = conn.pending(wait=1.0)
    assert rest == b"", rest
    conn.close()
    # A message sent normally afterwards arrives; the other does not.
    conn, _ = smtp_open(srv, "smtp")
    for line, code in (("MAIL FROM:<x@example.org>", 250),
                       ("RCPT TO:<%s>" % ALICE, 250), ("DATA", 354)):
        assert smtp_cmd(conn, line).code == code
    conn.send(b"Subject: marker\r\n\r\nx\r\n.\r\n")
    assert conn.read_smtp_reply().code == 250
    conn.close()
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                          ssl_context=client_ctx())
    m.login(ALICE, ALICE_PW)
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", "marker")
    assert data[0], "the marker message did not arrive"
    typ, data = m.search(None, "SUBJECT", subject)
    assert data == [b""], "a command after QUIT ran: %r" % data
    m.logout()


def test_pop3_commands_after_quit_are_not_run(srv):
    conn, _ = srv.greet("pop3s")
    conn.send(b"QUIT\r\nCAPA\r\n")
    assert conn.readline().startswith(b"+OK")
    assert conn.pending(wait=1.0) == b""
    conn.close()


def test_imap_commands_after_logout_are_not_run(srv):
    conn, _ = srv.greet("imaps")
    conn.send(b"a LOGOUT\r\nb CAPABILITY\r\n")
    others, tagged = conn.read_imap_tagged(b"a")
    assert tagged.startswith(b"a OK"), tagged
    assert conn.pending(wait=1.0) == b""
    conn.close()


# --- 4. slots held forever --------------------------------------------------

def test_prelogin_idle_timeout(postern_factory, default_cert, tmp_path):
    """RFC 9051 §5.4 allows a shorter autologout before login: a client
    that connects and says nothing is told goodbye after [timeouts]
    prelogin, on IMAP and POP3, not after the 30 minutes of IMAP."""
    srv = mail_server(postern_factory, tmp_path, default_cert,
                      timeouts={"prelogin": "2s"})
    for listener, bye in (("imaps", b"* BYE"), ("pop3s", b"-ERR")):
        conn, _ = srv.greet(listener)
        line = conn.readline(timeout=20)
        assert line.startswith(bye), line
        conn.wait_closed(timeout=10)


def test_login_deadline_closes_a_busy_session_that_never_logs_in(
        postern_factory, default_cert, tmp_path):
    """NOOP every half second keeps the idle timer happy, but a session
    that does not log in within [timeouts] login_deadline is closed."""
    srv = mail_server(postern_factory, tmp_path, default_cert,
                      timeouts={"login_deadline": "3s"})
    conn, _ = srv.greet("imaps")
    closed = False
    for i in range(40):
        try:
            conn.send(b"n%d NOOP\r\n" % i)
            others, _ = conn.read_imap_tagged(b"n%d" % i, timeout=5)
        except (ConnectionClosed, OSError):
            closed = True
            break
        if any(line.startswith(b"* BYE") for line in others):
            closed = True
            break
        time.sleep(0.5)
    assert closed, "the session was still open after 20 s"
    assert "net.timeout during=login" in srv.log_text()


def test_login_ends_the_deadline(postern_factory, default_cert, tmp_path):
    """After login the deadline no longer applies."""
    srv = mail_server(postern_factory, tmp_path, default_cert,
                      timeouts={"login_deadline": "2s", "prelogin": "2s"})
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                          ssl_context=client_ctx())
    m.login(ALICE, ALICE_PW)
    time.sleep(4)
    assert m.noop()[0] == "OK"
    m.logout()


def test_a_client_that_stops_reading_is_disconnected(postern_factory,
                                                     default_cert, tmp_path):
    """A client that sends commands but reads no reply holds its slot
    only for [timeouts] write_stall: pausing its input no longer leaves
    it without any timer."""
    srv = mail_server(postern_factory, tmp_path, default_cert,
                      timeouts={"write_stall": "2s"})
    s = socket.create_connection(("127.0.0.1", srv.ports["smtp"]))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.recv(100)
    mark = srv.log_mark()
    flood(s, b"HELP\r\n", seconds=3)
    srv.wait_log(r"net\.timeout during=write", timeout=30, since=mark)
    s.close()


# --- 11. STARTTLS forgets a login -------------------------------------------

def test_smtp_starttls_forgets_a_login(postern_factory, default_cert,
                                       tmp_path):
    """RFC 3207 §4.2: after STARTTLS the client must start over; a login
    made in plaintext (possible only with allow_plaintext_auth) must not
    carry into the TLS session, where MAIL then needs AUTH again."""
    srv = mail_server(postern_factory, tmp_path, default_cert,
                      server={"allow_plaintext_auth": "yes"})
    conn, _ = smtp_open(srv, "submission")
    plain = base64.b64encode(b"\0" + ALICE.encode() + b"\0" +
                             ALICE_PW.encode()).decode()
    assert smtp_cmd(conn, "AUTH PLAIN " + plain).code == 235
    assert smtp_cmd(conn, "STARTTLS").code == 220
    conn.starttls(client_ctx(), server_hostname=None)
    r = smtp_cmd(conn, "EHLO client.example")
    assert any(line.startswith(b"AUTH ") for line in r.lines), r.raw
    r = smtp_cmd(conn, "MAIL FROM:<%s>" % ALICE)
    assert r.code == 530, r.raw
    assert smtp_cmd(conn, "AUTH PLAIN " + plain).code == 235
    assert smtp_cmd(conn, "MAIL FROM:<%s>" % ALICE).code == 250
    conn.close()


def test_smtp_starttls_brings_the_login_deadline_back(postern_factory,
                                                       default_cert,
                                                       tmp_path):
    """The login forgotten at STARTTLS is forgotten by the timeouts too: a
    session that logged in in plaintext and then started TLS is closed at
    the login deadline unless it logs in again."""
    srv = mail_server(postern_factory, tmp_path, default_cert,
                      server={"allow_plaintext_auth": "yes"},
                      timeouts={"login_deadline": "3s"})
    conn, _ = smtp_open(srv, "submission")
    plain = base64.b64encode(b"\0" + ALICE.encode() + b"\0" +
                             ALICE_PW.encode()).decode()
    assert smtp_cmd(conn, "AUTH PLAIN " + plain).code == 235
    mark = srv.log_mark()
    assert smtp_cmd(conn, "STARTTLS").code == 220
    conn.starttls(client_ctx(), server_hostname=None)
    assert smtp_cmd(conn, "EHLO client.example").code == 250
    srv.wait_log(r"net\.timeout during=login", timeout=30, since=mark)
    conn.close()


@pytest.mark.parametrize("listener", ["pop3s"])
def test_pop3_line_with_a_nul_is_refused(srv, listener):
    """A NUL inside a POP3 line used to make the server wipe the whole
    line's length of a copy cut short at the NUL: a heap overflow before
    login (found by the fuzz helper). The line is refused; the session and
    the server go on."""
    conn, _ = srv.greet(listener)
    conn.send(b"USER a\0" + b"b" * 1000 + b"\r\nNOOP\r\n")
    assert conn.readline().startswith(b"-ERR ")
    assert conn.readline().startswith(b"-ERR ")   # NOOP before login
    conn.send(b"QUIT\r\n")
    assert conn.readline().startswith(b"+OK")
    conn.close()
    still_serves(srv)
