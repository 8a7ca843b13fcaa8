"""Review of the session lifetime net owns (issue 15, findings 1-4), as an
attacker and as an ordinary client would meet it. After STARTTLS a
connection is a TLS filter over the plaintext bufferevent it started
with; these tests drive sessions on the STARTTLS ports (143, 110, 587)
where that layering shows."""

import socket
import time

from postern_harness import (client_ctx, connect_from, imap_starttls,
                             next_source_address, pop3_starttls, smtp_cmd,
                             smtp_open, start_mail_server)

ALICE, ALICE_PW = "alice@example.test", "alice-Secret-1"
LISTENERS = [("smtp", "smtp", "starttls"),
             ("imap", "imap", "starttls"),
             ("pop3", "pop3", "starttls")]


def mail_server(factory, tmp_path, cert, **config):
    config.setdefault("auth", {"lockout_failures": 1000})
    return start_mail_server(factory, tmp_path, cert, LISTENERS,
                             users=[(ALICE, ALICE_PW)], **config)


def deliver(srv, body_lines):
    conn, _ = smtp_open(srv, "smtp")
    assert smtp_cmd(conn, "MAIL FROM:<x@example.org>").code == 250
    assert smtp_cmd(conn, "RCPT TO:<%s>" % ALICE).code == 250
    assert smtp_cmd(conn, "DATA").code == 354
    conn.send(b"Subject: big\r\n\r\n" +
              (b"y" * 76 + b"\r\n") * body_lines + b".\r\n")
    assert conn.read_smtp_reply(timeout=30).code == 250
    conn.close()


def imap_login_starttls(srv):
    conn, _ = srv.greet("imap")
    imap_starttls(conn, client_ctx(), server_hostname=None)
    conn.send(b"a LOGIN %s %s\r\n" % (ALICE.encode(), ALICE_PW.encode()))
    others, tagged = conn.read_imap_tagged(b"a", timeout=20)
    assert tagged.startswith(b"a OK"), tagged
    return conn


def test_pop3_retr_after_stls_reaches_a_slow_reader(postern_factory,
                                                    default_cert, tmp_path):
    """A reply streamed after STLS (RETR of a 1 MB message) to a client
    that waits a little before reading: the stream went on only when
    the TLS layer's own buffer drained, never when the socket's layer
    under it did, so the reply stopped after about 64 KiB for good."""
    srv = mail_server(postern_factory, tmp_path, default_cert)
    deliver(srv, 14000)
    conn, _ = srv.greet("pop3")
    pop3_starttls(conn, client_ctx(), server_hostname=None)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.send(b"USER %s\r\n" % ALICE.encode())
    assert conn.readline(timeout=20).startswith(b"+OK")
    conn.send(b"PASS %s\r\n" % ALICE_PW.encode())
    assert conn.readline(timeout=20).startswith(b"+OK")
    conn.send(b"RETR 1\r\n")
    time.sleep(2)
    assert conn.readline().startswith(b"+OK")
    lines = conn.read_pop3_multiline(timeout=20)
    assert lines.count(b"y" * 76 + b"\r\n") == 14000
    conn.close()


def test_imap_fetch_after_starttls_reaches_a_slow_reader(
        postern_factory, default_cert, tmp_path):
    srv = mail_server(postern_factory, tmp_path, default_cert)
    deliver(srv, 14000)
    conn = imap_login_starttls(srv)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.send(b"b SELECT INBOX\r\n")
    others, tagged = conn.read_imap_tagged(b"b")
    assert tagged.startswith(b"b OK"), tagged
    conn.send(b"c FETCH 1 BODY[TEXT]\r\n")
    time.sleep(2)
    others, tagged = conn.read_imap_tagged(b"c", timeout=20)
    assert tagged.startswith(b"c OK"), tagged
    assert others.count(b"y" * 76 + b"\r\n") == 14000
    conn.close()


def test_login_after_starttls_gets_the_logged_in_idle_timeout(
        postern_factory, default_cert, tmp_path):
    """The layer under TLS kept the read timeout it had before STARTTLS,
    the short pre-login one: a user who logged in over STARTTLS on 143
    was told goodbye after [timeouts] prelogin of quiet, not 30 min."""
    srv = mail_server(postern_factory, tmp_path, default_cert,
                      timeouts={"prelogin": "2s"})
    conn = imap_login_starttls(srv)
    time.sleep(5)
    conn.send(b"b NOOP\r\n")
    others, tagged = conn.read_imap_tagged(b"b")
    assert tagged.startswith(b"b OK"), (others, tagged)
    conn.close()


def test_a_quiet_session_after_starttls_is_no_write_stall(
        postern_factory, default_cert, tmp_path):
    """The TLS layer re-armed its write timer after each write even when
    everything had gone out: a quiet session (IMAP IDLE, a submission
    client between messages) was closed as a write stall after
    [timeouts] write_stall though it owed the client nothing."""
    srv = mail_server(postern_factory, tmp_path, default_cert,
                      timeouts={"write_stall": "3s"})
    conn = imap_login_starttls(srv)
    conn.send(b"b IDLE\r\n")
    assert conn.readline().startswith(b"+ ")
    time.sleep(6)
    conn.send(b"DONE\r\n")
    others, tagged = conn.read_imap_tagged(b"b")
    assert tagged.startswith(b"b OK"), (others, tagged)
    conn.close()


def test_shutdown_with_logins_still_being_checked(postern_factory,
                                                  default_cert, tmp_path):
    """SIGTERM while many logins wait for the password hash (one hash
    thread, 150 clients): at the shutdown deadline the workers freed the
    sessions still waiting, and the answers the hash pool gave on its way
    out then ran on freed sessions (a use-after-free in every build; the
    ASan build aborts, so the server does not exit 0). Now a session is
    freed only once its answer came, at shutdown too."""
    srv = start_mail_server(
        postern_factory, tmp_path, default_cert, LISTENERS,
        users=[(ALICE, ALICE_PW)], server={"allow_plaintext_auth": "yes"},
        timeouts={"shutdown_grace": "0s"},
        auth={"lockout_failures": 1000, "hash_threads": 1})
    conns = []
    for _ in range(150):
        c = connect_from(srv.ports["imap"], source=next_source_address())
        assert c.readline().startswith(b"* OK")
        conns.append(c)
    for i, c in enumerate(conns):
        c.send(b"a LOGIN nobody%d@example.test wrong-password\r\n" % i)
    time.sleep(0.5)
    rc = srv.stop()
    for c in conns:
        c.close()
    assert rc == 0, srv.log_text()[-6000:]
