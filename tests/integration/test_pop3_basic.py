"""POP3 (RFC 1939, 2449) over implicit TLS and STLS with Python's poplib:
login, STAT/LIST/UIDL/RETR/TOP, DELE applied only at QUIT, the per-account
switch, one session per maildrop, and pipelined commands."""

import poplib
import smtplib
import socket
import time

import pytest

from postern_harness import admin_ok, client_ctx, start_mail_server

ALICE = "alice@example.test"
BOB = "bob@example.test"


@pytest.fixture
def mail(postern_factory, default_cert, tmp_path):
    return start_mail_server(
        postern_factory, tmp_path, default_cert,
        [("smtp", "smtp", "none"), ("pop3s", "pop3", "implicit"),
         ("pop3", "pop3", "starttls")],
        users=[(ALICE, "alice-pw-1"), (BOB, "bob-pw-1", "pop3=off")])


def deliver(srv, rcpt, body):
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=15) as s:
        s.sendmail("sender@other.test", [rcpt], body)


def pop_login(srv, user=ALICE, password="alice-pw-1"):
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"],
                        context=client_ctx(), timeout=15)
    p.user(user)
    p.pass_(password)
    return p


def test_pop3_retr_returns_the_stored_message(mail):
    body = b"Subject: one\r\n\r\nline 1\r\n.dotted line\r\nline 3\r\n"
    deliver(mail, ALICE, body)
    p = pop_login(mail)
    count, size = p.stat()
    assert count == 1
    resp, lines, octets = p.retr(1)
    assert resp.startswith(b"+OK")
    text = b"\r\n".join(lines) + b"\r\n"
    # Our trace fields come first, then the client's bytes exactly.
    assert text.startswith(b"Return-Path: <sender@other.test>\r\nReceived: ")
    assert text.endswith(body)
    assert octets == size
    uid = p.uidl(1).split()[2]
    assert b"." in uid
    p.quit()


def test_pop3_top_gives_header_and_n_lines(mail):
    deliver(mail, ALICE, b"Subject: top\r\n\r\na\r\nb\r\nc\r\n")
    p = pop_login(mail)
    resp, lines, _ = p.top(1, 2)
    assert lines[-3:] == [b"", b"a", b"b"]
    assert b"Subject: top" in lines
    p.quit()


def test_pop3_dele_applies_only_at_quit(mail):
    for i in range(3):
        deliver(mail, ALICE, b"Subject: m%d\r\n\r\nbody\r\n" % i)
    p = pop_login(mail)
    assert p.stat()[0] == 3
    p.dele(2)
    with pytest.raises(poplib.error_proto):
        p.retr(2)
    # A dropped connection deletes nothing (the server may take a moment
    # to see the close and free the maildrop).
    p.sock.close()
    p.file.close()
    for _ in range(50):
        try:
            p = pop_login(mail)
            break
        except poplib.error_proto as e:
            assert e.args[0].startswith(b"-ERR [IN-USE]")
            time.sleep(0.1)
    assert p.stat()[0] == 3
    p.dele(1)
    p.rset()
    p.dele(3)
    assert p.quit().startswith(b"+OK")
    p = pop_login(mail)
    assert p.stat()[0] == 2
    subjects = [b"\n".join(p.top(i, 0)[1]) for i in (1, 2)]
    assert b"Subject: m0" in subjects[0] and b"Subject: m1" in subjects[1]
    p.quit()


def test_pop3_uidl_stable_across_sessions(mail):
    deliver(mail, ALICE, b"Subject: u\r\n\r\nx\r\n")
    p = pop_login(mail)
    first = p.uidl()[1]
    p.quit()
    p = pop_login(mail)
    assert p.uidl()[1] == first
    p.quit()


def test_pop3_wrong_password_and_disabled_account(mail):
    p = poplib.POP3_SSL("127.0.0.1", mail.ports["pop3s"],
                        context=client_ctx(), timeout=15)
    p.user(ALICE)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("wrong")
    assert e.value.args[0].startswith(b"-ERR [AUTH]")
    p.close()
    p = poplib.POP3_SSL("127.0.0.1", mail.ports["pop3s"],
                        context=client_ctx(), timeout=15)
    p.user(BOB)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("bob-pw-1")
    assert e.value.args[0] == \
        b"-ERR [AUTH] POP3 access is disabled for this account"
    p.close()


def test_pop3_second_session_gets_in_use(mail):
    p = pop_login(mail)
    q = poplib.POP3_SSL("127.0.0.1", mail.ports["pop3s"],
                        context=client_ctx(), timeout=15)
    q.user(ALICE)
    with pytest.raises(poplib.error_proto) as e:
        q.pass_("alice-pw-1")
    assert e.value.args[0].startswith(b"-ERR [IN-USE]")
    q.close()
    p.quit()


def test_pop3_user_refused_before_stls_then_works_after(mail):
    p = poplib.POP3("127.0.0.1", mail.ports["pop3"], timeout=15)
    with pytest.raises(poplib.error_proto):
        p.user(ALICE)
    p.stls(context=client_ctx())
    p.user(ALICE)
    assert p.pass_("alice-pw-1").startswith(b"+OK")
    p.quit()


def test_pop3_pipelined_commands_answered_in_order(mail):
    deliver(mail, ALICE, b"Subject: p\r\n\r\nx\r\n")
    ctx = client_ctx()
    raw = ctx.wrap_socket(socket.create_connection(
        ("127.0.0.1", mail.ports["pop3s"]), timeout=15))
    f = raw.makefile("rb")
    assert f.readline().startswith(b"+OK")
    raw.sendall(b"USER %s\r\nPASS alice-pw-1\r\nSTAT\r\nNOOP\r\nQUIT\r\n"
                % ALICE.encode())
    replies = [f.readline() for _ in range(5)]
    assert replies[0].startswith(b"+OK")
    assert replies[1].startswith(b"+OK Logged in")
    assert replies[2].startswith(b"+OK 1 ")
    assert replies[3] == b"+OK\r\n"
    assert replies[4].startswith(b"+OK postern signing off")
    raw.close()


def test_pop3_capa_lists_extensions(mail):
    p = pop_login(mail)
    caps = p.capa()
    for c in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
              "EXPIRE", "LOGIN-DELAY", "IMPLEMENTATION"):
        assert c in caps
    p.quit()


def test_account_named_twice_in_the_envelope_gets_one_copy(postern_factory,
                                                           default_cert,
                                                           tmp_path):
    srv = start_mail_server(
        postern_factory, tmp_path, default_cert,
        [("smtp", "smtp", "none"), ("pop3s", "pop3", "implicit")],
        users=[(ALICE, "alice-pw-1")],
        aliases=[("info@example.test", ALICE)])
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=15) as s:
        s.sendmail("sender@other.test",
                   [ALICE, ALICE.upper(), "info@example.test"],
                   b"Subject: once\r\n\r\nx\r\n")
    p = pop_login(srv)
    assert p.stat()[0] == 1
    p.quit()
