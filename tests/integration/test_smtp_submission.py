"""Submission on 587 (STARTTLS) and 465 (implicit TLS) with
allow_plaintext_auth = no: nothing but the greeting commands before TLS,
AUTH (PLAIN, LOGIN, SCRAM-SHA-256; RFC 4954, 4616, 5802, 7677), MAIL only
after AUTH, the sender check, Date and Message-ID added (RFC 6409 §8),
relaying for authenticated users into the outbound queue, the account's
submission switch and app passwords."""

import base64
import email.utils
import re
import smtplib
import subprocess
import time
import uuid

import pytest

from postern_harness import (QUEUED_RE, add_user, admin_ok,
                             client_ctx, next_source_address,
                             smtp_auth_plain, smtp_cmd, smtp_open,
                             smtp_send_data, smtp_transaction,
                             start_mail_server, ScramSha256Client)
from store_peek import (ADDED_DATE_RE, ADDED_MSGID_RE, StorePeek,
                        parse_received, split_trace)

ALICE, ALICE_PW = "alice@example.test", "alice-Secret-1"
BOB, BOB_PW = "bob@example.test", "bob-Secret-1"
SENDER_OK = b"250 2.1.0 Sender OK\r\n"
RCPT_OK = b"250 2.1.5 Recipient OK\r\n"
GO_AHEAD = b"354 End data with <CR><LF>.<CR><LF>\r\n"
AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_BAD = b"535 5.7.8 Authentication credentials invalid\r\n"
NEED_TLS = b"530 5.7.0 Must issue a STARTTLS command first\r\n"
NEED_AUTH = b"530 5.7.0 Authentication required\r\n"
PORTS = ["submission", "submissions"]


@pytest.fixture(scope="module")
def sub(module_postern_factory, default_cert, tmp_path_factory):
    srv = start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("sub"), default_cert,
        [("submission", "submission", "starttls"),
         ("submissions", "submission", "implicit")],
        users=[(ALICE, ALICE_PW, "name=Alice"), (BOB, BOB_PW)],
        aliases=[("info@example.test", ALICE)],
        server={"allow_plaintext_auth": "no"},
        # Many wrong passwords in this module: no lockout here (that is
        # test_auth_lockout.py); each failing test uses its own address
        # because the delay after a failure grows per client address.
        auth={"lockout_failures": 1000})
    srv.peek = StorePeek(srv.mail_data)
    return srv


def token():
    return uuid.uuid4().hex


def smtplib_client(srv, listener, source=None):
    """An smtplib client in TLS (STARTTLS on 587), not yet logged in."""
    ctx = client_ctx()
    src = (source, 0) if source else None
    if srv.tls_kind(listener) == "implicit":
        s = smtplib.SMTP_SSL("127.0.0.1", srv.ports[listener],
                             local_hostname="client.example", context=ctx,
                             timeout=15, source_address=src)
    else:
        s = smtplib.SMTP("127.0.0.1", srv.ports[listener],
                         local_hostname="client.example", timeout=15,
                         source_address=src)
        s.starttls(context=ctx)
    s.ehlo()
    return s


def logged_in(srv, listener, user=ALICE, password=ALICE_PW, source=None):
    """A raw connection in TLS, authenticated with AUTH PLAIN."""
    conn, _ = smtp_open(srv, listener, source=source,
                        starttls=srv.tls_kind(listener) == "starttls")
    r = smtp_auth_plain(conn, user, password)
    assert r.raw == [AUTH_OK], r.raw
    return conn


def the_one(srv, address, tok):
    if isinstance(tok, str):
        tok = tok.encode()
    found = srv.peek.find(address, tok)
    assert len(found) == 1, "%d messages of %s contain %r" % (
        len(found), address, tok)
    return found[0]


# --- before TLS on 587 -------------------------------------------------------


def test_587_ehlo_before_tls_offers_starttls_and_no_auth(sub):
    conn, reply = smtp_open(sub, "submission")
    with conn:
        kws = [t.split(b" ")[0].upper() for t in reply.lines[1:]]
        assert b"STARTTLS" in kws, reply.raw
        assert b"AUTH" not in kws, reply.raw


@pytest.mark.parametrize("line", [
    "MAIL FROM:<alice@example.test>",
    "RCPT TO:<bob@example.test>",
    "DATA",
    "BDAT 0 LAST",
    "AUTH PLAIN " + base64.b64encode(b"\0alice@example.test\0x").decode(),
    "AUTH LOGIN",
    "AUTH SCRAM-SHA-256",
    "VRFY alice",
    "EXPN staff",
])
def test_587_refuses_commands_before_starttls(sub, line):
    conn, _ = smtp_open(sub, "submission", source=next_source_address())
    with conn:
        assert smtp_cmd(conn, line).raw == [NEED_TLS]
        # The session stays usable for STARTTLS.
        assert smtp_cmd(conn, "NOOP").raw == [b"250 2.0.0 OK\r\n"]


def test_587_refuses_mail_before_starttls_even_before_ehlo(sub):
    conn, _ = smtp_open(sub, "submission", ehlo=None)
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<alice@example.test>").raw == \
            [NEED_TLS]


@pytest.mark.parametrize("line,code", [("NOOP", 250), ("RSET", 250),
                                       ("HELP", 214),
                                       ("EHLO again.example", 250),
                                       ("HELO again.example", 250),
                                       ("QUIT", 221)])
def test_587_allows_the_greeting_commands_before_starttls(sub, line, code):
    conn, _ = smtp_open(sub, "submission")
    with conn:
        assert smtp_cmd(conn, line).code == code


# --- before AUTH -------------------------------------------------------------


@pytest.mark.parametrize("listener", PORTS)
def test_mail_before_auth_gets_530(sub, listener):
    conn, _ = smtp_open(sub, listener,
                        starttls=sub.tls_kind(listener) == "starttls")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<alice@example.test>").raw == \
            [NEED_AUTH]
        # No transaction: relaying (or anything) is impossible.
        assert smtp_cmd(conn, "RCPT TO:<victim@foreign.test>").raw == [
            b"503 5.5.1 Need MAIL before RCPT\r\n"]


@pytest.mark.parametrize("listener", PORTS)
def test_ehlo_in_tls_offers_auth_mechanisms(sub, listener):
    conn, reply = smtp_open(sub, listener,
                            starttls=sub.tls_kind(listener) == "starttls")
    with conn:
        auth = [t for t in reply.lines if t.upper().startswith(b"AUTH ")]
        assert len(auth) == 1, reply.raw
        assert set(auth[0].split()[1:]) >= {b"PLAIN", b"LOGIN",
                                             b"SCRAM-SHA-256"}, auth
        assert b"STARTTLS" not in b" ".join(reply.lines[1:]), reply.raw


# --- AUTH --------------------------------------------------------------------


@pytest.mark.parametrize("listener", PORTS)
def test_auth_plain_with_smtplib(sub, listener):
    s = smtplib_client(sub, listener)
    try:
        code, text = s.login(ALICE, ALICE_PW)  # PLAIN: first one offered
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        # After AUTH, AUTH is no longer offered; a second AUTH is refused.
        assert s.docmd("AUTH", "PLAIN =") == (
            503, b"5.5.1 Already authenticated")
    finally:
        s.close()


@pytest.mark.parametrize("initial", [False, True],
                         ids=["challenges", "initial-response"])
def test_auth_login_with_smtplib(sub, initial):
    s = smtplib_client(sub, "submission")
    try:
        s.user, s.password = ALICE, ALICE_PW
        code, text = s.auth("LOGIN", s.auth_login,
                            initial_response_ok=initial)
        assert (code, text) == (235, b"2.7.0 Authentication successful")
    finally:
        s.close()


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("user,password", [(ALICE, "wrong-password"),
                                           ("nobody@example.test",
                                            ALICE_PW),
                                           (ALICE, "")])
def test_auth_failure_gets_535_5_7_8(sub, mech, user, password):
    s = smtplib_client(sub, "submissions", source=next_source_address())
    try:
        s.user, s.password = user, password
        authobject = s.auth_plain if mech == "PLAIN" else s.auth_login
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.auth(mech, authobject, initial_response_ok=False)
        assert (e.value.smtp_code, e.value.smtp_error) == (
            535, b"5.7.8 Authentication credentials invalid")
        # Not authenticated: MAIL still needs AUTH.
        assert s.docmd("MAIL", "FROM:<alice@example.test>") == (
            530, b"5.7.0 Authentication required")
    finally:
        s.close()


def test_auth_plain_with_another_authzid_is_refused(sub):
    conn, _ = smtp_open(sub, "submissions", source=next_source_address())
    with conn:
        tok = base64.b64encode(b"bob@example.test\0" + ALICE.encode() +
                               b"\0" + ALICE_PW.encode()).decode()
        assert smtp_cmd(conn, "AUTH PLAIN " + tok, timeout=15).raw == \
            [AUTH_BAD]


def test_auth_cancelled_by_the_client(sub):
    conn, _ = smtp_open(sub, "submissions")
    with conn:
        assert smtp_cmd(conn, "AUTH LOGIN").raw == [b"334 VXNlcm5hbWU6\r\n"]
        assert smtp_cmd(conn, "*").raw == [
            b"501 5.0.0 Authentication cancelled\r\n"]
        assert smtp_cmd(conn, "MAIL FROM:<alice@example.test>").raw == \
            [NEED_AUTH]


def test_auth_with_an_unknown_mechanism(sub):
    conn, _ = smtp_open(sub, "submissions")
    with conn:
        assert smtp_cmd(conn, "AUTH CRAM-MD5").raw == [
            b"504 5.5.4 Unrecognized authentication type\r\n"]


def test_auth_with_bad_base64(sub):
    conn, _ = smtp_open(sub, "submissions")
    with conn:
        assert smtp_cmd(conn, "AUTH PLAIN not*base64").raw == [
            b"501 5.5.2 Cannot decode the response\r\n"]


def scram(conn, user, password):
    """Runs AUTH SCRAM-SHA-256; returns (final reply, client, server-final
    message or None)."""
    c = ScramSha256Client(user, password)
    first = base64.b64encode(c.first().encode()).decode()
    r = smtp_cmd(conn, "AUTH SCRAM-SHA-256 " + first)
    assert r.code == 334, r.raw
    server_first = base64.b64decode(r.lines[0])
    r = smtp_cmd(conn, base64.b64encode(c.final(server_first).encode())
                 .decode(), timeout=15)
    if r.code != 334:
        return r, c, None
    server_final = base64.b64decode(r.lines[0])
    r = smtp_cmd(conn, "", timeout=15)
    return r, c, server_final


@pytest.mark.parametrize("listener", PORTS)
def test_auth_scram_sha_256(sub, listener):
    conn, _ = smtp_open(sub, listener,
                        starttls=sub.tls_kind(listener) == "starttls")
    with conn:
        r, c, server_final = scram(conn, ALICE, ALICE_PW)
        assert server_final is not None, r.raw
        assert c.verify(server_final), \
            "the server's signature is wrong: %r" % server_final
        assert r.raw == [AUTH_OK]
        assert smtp_cmd(conn, "MAIL FROM:<%s>" % ALICE).raw == [SENDER_OK]


@pytest.mark.parametrize("user,password", [(ALICE, "wrong-password"),
                                           ("nobody@example.test", "x")])
def test_auth_scram_sha_256_failure(sub, user, password):
    conn, _ = smtp_open(sub, "submissions", source=next_source_address())
    with conn:
        r, _, server_final = scram(conn, user, password)
        assert server_final is None, \
            "server sent its final message for a wrong proof"
        assert r.raw == [AUTH_BAD]
        assert smtp_cmd(conn, "MAIL FROM:<%s>" % ALICE).raw == [NEED_AUTH]


def test_scram_salt_for_an_unknown_user_is_stable(sub):
    """RFC 5802 §9: the salt must not reveal that a user does not
    exist, so it is the same on every try."""
    salts = []
    for _ in range(2):
        conn, _ = smtp_open(sub, "submissions")
        with conn:
            c = ScramSha256Client("ghost@example.test", "x")
            r = smtp_cmd(conn, "AUTH SCRAM-SHA-256 " + base64.b64encode(
                c.first().encode()).decode())
            assert r.code == 334, r.raw
            attrs = dict(kv.split("=", 1) for kv in
                         base64.b64decode(r.lines[0]).decode().split(","))
            salts.append((attrs["s"], attrs["i"]))
            smtp_cmd(conn, "*")
    assert salts[0] == salts[1]


def test_swaks_submits_over_implicit_tls_with_auth(sub):
    tok = token()
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port",
         str(sub.ports["submissions"]), "--tlsc", "--ehlo", "swaks.example",
         "--auth", "LOGIN", "--auth-user", ALICE, "--auth-password",
         ALICE_PW, "--from", ALICE, "--to", BOB,
         "--header", "Subject: swaks " + tok, "--body", "via 465"],
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    stored = the_one(sub, BOB, tok)
    _, received, _ = split_trace(stored)
    assert parse_received(received)["with"] == "ESMTPSA"


def test_swaks_with_a_wrong_password_fails_auth(sub):
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port",
         str(sub.ports["submission"]), "--tls", "--auth", "PLAIN",
         "--auth-user", ALICE, "--auth-password", "nope", "--from", ALICE,
         "--to", BOB, "--local-interface", next_source_address()],
        capture_output=True, text=True, timeout=30)
    # swaks exits 28 when AUTH fails.
    assert r.returncode == 28, r.stdout + r.stderr
    assert "535 5.7.8 Authentication credentials invalid" in r.stdout


# --- the sender --------------------------------------------------------------


@pytest.mark.parametrize("sender", [BOB, "alice@other.test", "",
                                    "alice@example.test.evil.test"])
def test_sender_not_owned_gets_553_5_7_1(sub, sender):
    conn = logged_in(sub, "submissions")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<%s>" % sender).raw == [
            b"553 5.7.1 Sender address <%s> is not owned by user %s\r\n"
            % (sender.encode(), ALICE.encode())]


@pytest.mark.parametrize("sender", [ALICE, "Alice@Example.TEST",
                                    "info@example.test"])
def test_own_address_or_alias_is_accepted_as_sender(sub, sender):
    conn = logged_in(sub, "submission")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<%s>" % sender).raw == [SENDER_OK]


def test_submission_from_an_alias_is_delivered(sub):
    tok = token().encode()
    data = (b"From: info@example.test\r\nDate: Mon, 1 Jan 2024 00:00:00 "
            b"+0000\r\nMessage-ID: <" + tok + b"@example.test>\r\n"
            b"Subject: from alias " + tok + b"\r\n\r\nhi\r\n")
    conn = logged_in(sub, "submissions")
    with conn:
        r = smtp_transaction(conn, "info@example.test", [BOB], data)
        assert QUEUED_RE.match(r.raw[0]), r.raw
    stored = the_one(sub, BOB, tok)
    rp, received, rest = split_trace(stored)
    assert rp == b"Return-Path: <info@example.test>\r\n"
    assert rest == data


# --- Date and Message-ID -----------------------------------------------------


def submit(srv, data, rcpts=(BOB,), listener="submissions"):
    conn = logged_in(srv, listener)
    with conn:
        r = smtp_transaction(conn, ALICE, list(rcpts), data)
        assert QUEUED_RE.match(r.raw[0]), r.raw


def test_date_and_message_id_are_added_when_missing(sub):
    tok = token().encode()
    data = b"From: alice@example.test\r\nSubject: bare " + tok + \
        b"\r\n\r\nno date, no id\r\n"
    submit(sub, data)
    rp, received, rest = split_trace(the_one(sub, BOB, tok))
    m = ADDED_DATE_RE.match(rest)
    assert m, "no Date field added after Received: %r" % rest[:200]
    when = email.utils.parsedate_to_datetime(m.group(1).decode())
    assert abs(when.timestamp() - time.time()) < 120, m.group(1)
    rest = rest[m.end():]
    m = ADDED_MSGID_RE.match(rest)
    assert m, "no Message-ID field added: %r" % rest[:200]
    assert re.fullmatch(rb"[^@\s]+@mail\.example\.test", m.group(1)), \
        m.group(1)
    assert rest[m.end():] == data


def test_date_and_message_id_present_are_kept_and_not_added(sub):
    tok = token().encode()
    data = (b"Date: Tue, 2 Jan 2024 10:00:00 +0100\r\n"
            b"Message-ID: <" + tok + b"@client.example>\r\n"
            b"From: alice@example.test\r\nSubject: complete " + tok +
            b"\r\n\r\nbody\r\n")
    submit(sub, data)
    rp, received, rest = split_trace(the_one(sub, BOB, tok))
    assert rest == data


def test_only_the_missing_message_id_is_added(sub):
    tok = token().encode()
    data = (b"From: alice@example.test\r\nSubject: half " + tok + b"\r\n"
            b"date: Tue, 2 Jan 2024 10:00:00 +0100\r\n\r\nbody\r\n")
    submit(sub, data)
    _, _, rest = split_trace(the_one(sub, BOB, tok))
    assert not rest.startswith(b"Date:"), rest[:200]
    m = ADDED_MSGID_RE.match(rest)
    assert m, rest[:200]
    assert rest[m.end():] == data


def test_a_date_only_in_the_body_does_not_count(sub):
    tok = token().encode()
    data = (b"From: alice@example.test\r\nSubject: body date " + tok +
            b"\r\n\r\n"
            b"Date: Tue, 2 Jan 2024 10:00:00 +0100\r\n"
            b"Message-ID: <not-a-header@example.test>\r\n")
    submit(sub, data)
    _, _, rest = split_trace(the_one(sub, BOB, tok))
    m = ADDED_DATE_RE.match(rest)
    assert m, "Date in the body taken for a header field: %r" % rest[:200]
    m2 = ADDED_MSGID_RE.match(rest, m.end())
    assert m2, rest[:300]
    assert rest[m2.end():] == data


def test_received_of_a_submission_says_esmtpsa(sub):
    tok = token().encode()
    data = b"From: alice@example.test\r\nSubject: sa " + tok + \
        b"\r\nDate: Tue, 2 Jan 2024 10:00:00 +0100\r\nMessage-ID: <" + \
        tok + b"@x>\r\n\r\nb\r\n"
    submit(sub, data, listener="submission")
    _, received, _ = split_trace(the_one(sub, BOB, tok))
    rcv = parse_received(received)
    assert rcv["with"] == "ESMTPSA"
    assert rcv["tls"] in ("TLSv1.2", "TLSv1.3")
    assert rcv["for"] == BOB


# --- relaying ----------------------------------------------------------------


def test_authenticated_relay_to_a_foreign_domain_is_queued(sub):
    tok = token()
    rcpt = "friend-%s@foreign.test" % tok[:10]
    data = (b"From: alice@example.test\r\n"
            b"Subject: out " + tok.encode() + b"\r\nDate: Tue, 2 Jan 2024 "
            b"10:00:00 +0100\r\nMessage-ID: <" + tok.encode() +
            b"@x>\r\n\r\nto the world\r\n")
    before = sub.peek.total_messages()
    conn = logged_in(sub, "submissions")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<%s> RET=HDRS ENVID=%s"
                        % (ALICE, tok)).raw == [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<%s> NOTIFY=SUCCESS,FAILURE "
                        "ORCPT=rfc822;%s" % (rcpt, rcpt)).raw == [RCPT_OK]
        assert smtp_cmd(conn, "RCPT TO:<%s>" % BOB).raw == [RCPT_OK]
        assert smtp_cmd(conn, "DATA").raw == [GO_AHEAD]
        r = smtp_send_data(conn, data)
        assert QUEUED_RE.match(r.raw[0]), r.raw
    # The local recipient has it; the foreign one is in the queue, with
    # the sender and the DSN parameters kept for the queue.
    the_one(sub, BOB, tok)
    assert sub.peek.total_messages() == before + 1
    assert sub.peek.queue_tables(), "no outbound queue table in the store"
    rows = sub.peek.queue_rows_for(rcpt)
    assert len(rows) == 1, sub.peek.queue_rows()
    text = " ".join(str(v) for v in rows[0].values())
    assert ALICE in text, rows[0]
    assert "NOTIFY=SUCCESS,FAILURE" in text, rows[0]
    assert "ENVID=" + tok in text and "RET=HDRS" in text, rows[0]


# --- the account's switches and app passwords --------------------------------


def test_submission_switched_off_for_the_account_gets_535_disabled(sub):
    user, pw = "dave@example.test", "dave-Secret-1"
    add_user(sub.admin_config, user, pw)
    admin_ok(sub.admin_config, "user", "set", user, "submission=off")
    conn, _ = smtp_open(sub, "submissions", source=next_source_address())
    with conn:
        r = smtp_auth_plain(conn, user, pw)
        assert r.code == 535, r.raw
        assert r.raw[0].startswith(b"535 5.7.8 "), r.raw
        assert b"disabled" in r.raw[0], r.raw
        assert r.raw == [b"535 5.7.8 Sending mail (SMTP submission) is "
                         b"disabled for this account\r\n"]
    # The server sees the change at once, both ways.
    admin_ok(sub.admin_config, "user", "set", user, "submission=default")
    conn, _ = smtp_open(sub, "submissions")
    with conn:
        assert smtp_auth_plain(conn, user, pw).raw == [AUTH_OK]


def test_submission_switch_applies_to_scram_too(sub):
    user, pw = "dora@example.test", "dora-Secret-1"
    add_user(sub.admin_config, user, pw, "submission=off")
    conn, _ = smtp_open(sub, "submissions", source=next_source_address())
    with conn:
        r, _, _ = scram(conn, user, pw)
        assert r.code == 535 and b"disabled" in r.raw[0], r.raw


APP_PW_RE = re.compile(r"\b([a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4})\b")


def app_password_add(srv, user, name, *protocols):
    out = admin_ok(srv.admin_config, "app-password", "add", user, name,
                   *protocols)
    m = APP_PW_RE.search(out)
    assert m, "no generated password in the output: %r" % out
    return m.group(1)


def test_app_password_logs_in_and_is_refused_after_revoke(sub):
    import json
    user, pw = "erin@example.test", "erin-Secret-1"
    add_user(sub.admin_config, user, pw)
    app = app_password_add(sub, user, "phone")
    assert app != pw
    source = next_source_address()
    conn, _ = smtp_open(sub, "submissions", source=source)
    with conn:
        assert smtp_auth_plain(conn, user, app).raw == [AUTH_OK]
        assert smtp_cmd(conn, "MAIL FROM:<%s>" % user).raw == [SENDER_OK]
    listed = json.loads(admin_ok(sub.admin_config, "app-password", "list",
                                 user, "--json"))
    assert [e["name"] for e in listed] == ["phone"], listed
    assert abs(listed[0]["last_used"] - time.time()) < 120, listed
    assert listed[0]["last_address"] == source, listed
    # The account password still works alongside.
    conn, _ = smtp_open(sub, "submissions")
    with conn:
        assert smtp_auth_plain(conn, user, pw).raw == [AUTH_OK]
    admin_ok(sub.admin_config, "app-password", "revoke", user, "phone")
    conn, _ = smtp_open(sub, "submissions", source=next_source_address())
    with conn:
        assert smtp_auth_plain(conn, user, app).raw == [AUTH_BAD]


def test_app_password_limited_to_imap_is_refused_for_submission(sub):
    user, pw = "fred@example.test", "fred-Secret-1"
    add_user(sub.admin_config, user, pw)
    imap_only = app_password_add(sub, user, "tablet", "protocols=imap")
    sending = app_password_add(sub, user, "laptop",
                               "protocols=imap,submission")
    conn, _ = smtp_open(sub, "submissions", source=next_source_address())
    with conn:
        assert smtp_auth_plain(conn, user, imap_only).raw == [AUTH_BAD]
    conn, _ = smtp_open(sub, "submission", starttls=True)
    with conn:
        assert smtp_auth_plain(conn, user, sending).raw == [AUTH_OK]


def test_app_password_with_scram_is_not_possible_but_plain_is(sub):
    """App passwords have no SCRAM secret: SCRAM with one fails, PLAIN
    with it works."""
    user, pw = "gina@example.test", "gina-Secret-1"
    add_user(sub.admin_config, user, pw)
    app = app_password_add(sub, user, "mail-app")
    conn, _ = smtp_open(sub, "submissions", source=next_source_address())
    with conn:
        r, _, _ = scram(conn, user, app)
        assert r.raw == [AUTH_BAD]
    conn, _ = smtp_open(sub, "submissions")
    with conn:
        assert smtp_auth_plain(conn, user, app).raw == [AUTH_OK]


def test_server_default_submission_off_and_account_switch_on(
        postern_factory, default_cert, tmp_path):
    """[auth] submission = no turns submission off for accounts that do
    not say; an account set to on may still send."""
    srv = start_mail_server(
        postern_factory, tmp_path / "nosub", default_cert,
        [("submissions", "submission", "implicit")],
        users=[("plain@example.test", "plain-Secret-1"),
               ("sender@example.test", "sender-Secret-1", "submission=on")],
        auth={"submission": "no"})
    conn, _ = smtp_open(srv, "submissions")
    with conn:
        r = smtp_auth_plain(conn, "plain@example.test", "plain-Secret-1")
        assert r.code == 535 and b"disabled" in r.raw[0], r.raw
    conn, _ = smtp_open(srv, "submissions")
    with conn:
        assert smtp_auth_plain(conn, "sender@example.test",
                               "sender-Secret-1").raw == [AUTH_OK]
