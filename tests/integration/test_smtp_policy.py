"""SMTP policy on the receive side (issue 15): control characters refused
in EHLO and paths, BDAT line ends normalised like DATA's (finding 5); a
logged-in user sends only as its own addresses, on port 25 as on
submission, in the envelope and in From:/Sender: (findings 6, 8); our
domains as envelope sender only after login or from trusted networks
(finding 7); more than 50 Received: fields refused as a loop (finding 9);
postmaster@ every domain, and the bare <postmaster>, always accepted
(finding 16, RFC 5321 §4.5.1, §4.1.1.3)."""

import uuid

import pytest

from postern_harness import (QUEUED_RE, mail_config_text,
                             next_source_address, smtp_auth_plain,
                             smtp_cmd, smtp_open, smtp_send_data,
                             smtp_starttls, start_mail_server)
from store_peek import StorePeek, split_trace

ALICE, ALICE_PW = "alice@example.test", "alice-Secret-1"
BOB, BOB_PW = "bob@example.test", "bob-Secret-1"
CAROL = "carol@second.test"
INFO = "info@example.test"
SENDER_OK = b"250 2.1.0 Sender OK\r\n"
RCPT_OK = b"250 2.1.5 Recipient OK\r\n"
GO_AHEAD = b"354 End data with <CR><LF>.<CR><LF>\r\n"
AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
OWN_DOMAIN = (b"550 5.7.1 Sender address <%s> is in a domain of this "
              b"server: log in to send as it\r\n")
CONTROL = (b"501 5.5.2 Control characters are not allowed in addresses "
           b"or parameters\r\n")


@pytest.fixture(scope="module")
def pol(module_postern_factory, default_cert, tmp_path_factory):
    srv = start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("pol"), default_cert,
        [("smtp", "smtp", "starttls"),
         ("submissions", "submission", "implicit")],
        domains=["example.test", "second.test", "third.test"],
        users=[(ALICE, ALICE_PW), (BOB, BOB_PW), (CAROL, "carol-pw-1")],
        aliases=[(INFO, ALICE), ("postmaster@example.test", BOB)],
        server={"postmaster": ALICE},
        auth={"lockout_failures": 1000})
    srv.peek = StorePeek(srv.mail_data)
    return srv


def token():
    return uuid.uuid4().hex.encode()


def the_one(srv, address, tok):
    found = srv.peek.find(address, tok)
    assert len(found) == 1, "%d messages of %s contain %r" % (
        len(found), address, tok)
    return found[0]


def logged_in(srv, listener="submissions", user=ALICE, password=ALICE_PW):
    """A connection in TLS (STARTTLS on the smtp listener), logged in."""
    conn, _ = smtp_open(srv, listener, starttls=listener == "smtp")
    r = smtp_auth_plain(conn, user, password)
    assert r.raw == [AUTH_OK], r.raw
    return conn


def envelope(conn, mail_from, rcpts):
    assert smtp_cmd(conn, "MAIL FROM:<%s>" % mail_from).raw == [SENDER_OK]
    for r in rcpts:
        assert smtp_cmd(conn, "RCPT TO:<%s>" % r).raw == [RCPT_OK], r


def send(conn, mail_from, rcpts, data):
    """MAIL, RCPT, DATA with data (CRLF lines, no dots to stuff); returns
    the reply to the final dot."""
    envelope(conn, mail_from, rcpts)
    assert smtp_cmd(conn, "DATA").raw == [GO_AHEAD]
    return smtp_send_data(conn, data)


def send_bdat(conn, mail_from, rcpts, data):
    envelope(conn, mail_from, rcpts)
    conn.send(b"BDAT %d LAST\r\n" % len(data) + data)
    return conn.read_smtp_reply(timeout=15)


def queued(reply):
    return len(reply.raw) == 1 and QUEUED_RE.match(reply.raw[0])


# --- finding 5: control characters, BDAT line ends ---------------------------


@pytest.mark.parametrize("verb", ["EHLO", "HELO"])
def test_ehlo_with_a_bare_cr_is_refused(pol, verb):
    conn, _ = smtp_open(pol, "smtp", ehlo=None)
    with conn:
        r = smtp_cmd(conn, verb.encode() + b" evil.example\rX-Injected: 1")
        assert r.raw == [b"501 5.5.2 Control characters are not allowed "
                         b"in the host name\r\n"]
        # Still before EHLO: nothing was taken.
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [
            b"503 5.5.1 Send EHLO or HELO first\r\n"]


@pytest.mark.parametrize("line", [
    b"MAIL FROM:<s@[192.0.2.1\r]>",
    b"MAIL FROM:<s\r@remote.test>",
    b"MAIL FROM:<s@remote.test> ENVID=a\rb",
    b"MAIL FROM:<s@remote.test\x7f>",
])
def test_mail_with_control_characters_is_refused(pol, line):
    conn, _ = smtp_open(pol, "smtp")
    with conn:
        assert smtp_cmd(conn, line).raw == [CONTROL]
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [
            SENDER_OK]


def test_rcpt_with_control_characters_is_refused(pol):
    conn, _ = smtp_open(pol, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [
            SENDER_OK]
        assert smtp_cmd(conn, b"RCPT TO:<alice@[10.0.0.1]\x0b>").raw == [
            CONTROL]
        assert smtp_cmd(conn, b"RCPT TO:<alice@example.test> "
                        b"ORCPT=rfc822;a\rb").raw == [CONTROL]


def test_address_literal_that_is_no_address_is_refused(pol):
    conn, _ = smtp_open(pol, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@[not an address]>").raw == [
            b"501 5.1.3 Bad address syntax\r\n"]
        assert smtp_cmd(conn, "MAIL FROM:<s@[192.0.2.1]>").raw == [
            SENDER_OK]


def test_bdat_bare_cr_and_lf_are_stored_as_crlf(pol):
    tok = token()
    chunks = [b"Subject: bdat bare " + tok + b"\r\n\r\nbare lf\nbare cr\r",
              b"x\r", b"\nsplit crlf\r\n.\nend\r"]
    conn, _ = smtp_open(pol, "smtp")
    with conn:
        envelope(conn, "s@remote.test", [BOB])
        for c in chunks:
            conn.send(b"BDAT %d\r\n" % len(c) + c)
            assert conn.read_smtp_reply().code == 250
        conn.send(b"BDAT 0 LAST\r\n")
        assert queued(conn.read_smtp_reply(timeout=15))
    _, _, rest = split_trace(the_one(pol, BOB, tok))
    assert rest == (b"Subject: bdat bare " + tok + b"\r\n\r\nbare lf\r\n"
                    b"bare cr\r\nx\r\nsplit crlf\r\n.\r\nend\r\n")


# --- finding 6: the envelope sender of a logged-in user, on port 25 ---------


def test_port_25_login_cannot_send_as_another_user(pol):
    conn = logged_in(pol, "smtp")
    with conn:
        for sender in (BOB, "ceo@foreign.test", ""):
            assert smtp_cmd(conn, "MAIL FROM:<%s>" % sender).raw == [
                b"553 5.7.1 Sender address <%s> is not owned by user %s\r\n"
                % (sender.encode(), ALICE.encode())]


def test_port_25_login_sends_as_itself_and_its_alias(pol):
    tok = token()
    conn = logged_in(pol, "smtp")
    with conn:
        r = send(conn, INFO, [BOB], b"From: " + INFO.encode() +
                 b"\r\nSubject: " + tok + b"\r\n\r\nhi\r\n")
        assert queued(r), r.raw
    rp, _, _ = split_trace(the_one(pol, BOB, tok))
    assert rp == b"Return-Path: <info@example.test>\r\n"


# --- finding 7: our domains as sender without login --------------------------


@pytest.mark.parametrize("sender", [ALICE, "Nobody@EXAMPLE.test",
                                    "x@second.test"])
def test_our_domain_as_sender_without_login_is_refused(pol, sender):
    conn, _ = smtp_open(pol, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<%s>" % sender).raw == [
            OWN_DOMAIN % sender.encode()]
        # Strangers' domains and the null sender are fine.
        assert smtp_cmd(conn, "MAIL FROM:<%s>" % "s@remote.test").raw == [
            SENDER_OK]
        assert smtp_cmd(conn, "RSET").code == 250
        assert smtp_cmd(conn, "MAIL FROM:<>").raw == [SENDER_OK]


def test_trusted_network_may_use_our_domain_others_may_not(
        module_postern_factory, default_cert, tmp_path_factory):
    srv = start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("trusted"),
        default_cert, [("smtp", "smtp", "none")],
        users=[(ALICE, ALICE_PW)],
        server={"trusted_networks": "127.0.0.1/32, 10.0.0.0/8"})
    peek = StorePeek(srv.mail_data)
    tok = token()
    conn, _ = smtp_open(srv, "smtp")
    with conn:
        r = send(conn, "app@example.test", [ALICE],
                 b"Subject: " + tok + b"\r\n\r\nfrom the web app\r\n")
        assert queued(r), r.raw
    assert len(peek.find(ALICE, tok)) == 1
    outsider = next_source_address()
    assert outsider != "127.0.0.1"
    conn, _ = smtp_open(srv, "smtp", source=outsider)
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<app@example.test>").raw == [
            OWN_DOMAIN % b"app@example.test"]


def test_trusted_networks_and_postmaster_change_on_sighup(
        postern_factory, default_cert, tmp_path):
    listeners = [("smtp", "smtp", "none")]
    srv = start_mail_server(
        postern_factory, tmp_path / "mail", default_cert, listeners,
        users=[(ALICE, ALICE_PW), (BOB, BOB_PW)])
    peek = StorePeek(srv.mail_data)
    conn, _ = smtp_open(srv, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<app@example.test>").raw == [
            OWN_DOMAIN % b"app@example.test"]
    srv.config_path.write_text(mail_config_text(
        srv.mail_data, [("main", srv.cert)], listeners,
        server={"trusted_networks": "127.0.0.0/8", "postmaster": BOB}))
    assert "event=config.reloaded" in srv.reload()
    tok = token()
    conn, _ = smtp_open(srv, "smtp", source=next_source_address())
    with conn:
        r = send(conn, "app@example.test", ["postmaster@example.test"],
                 b"Subject: " + tok + b"\r\n\r\nreloaded\r\n")
        assert queued(r), r.raw
    # The new [server] postmaster, not the oldest account.
    assert len(peek.find(BOB, tok)) == 1
    assert peek.find(ALICE, tok) == []


# --- finding 8: From: and Sender: of a logged-in user ------------------------


def msg(tok, header):
    return header + b"Subject: " + tok + b"\r\n\r\nbody\r\n"


@pytest.mark.parametrize("header", [
    b"From: Alice <alice@example.test>\r\n",
    b"From: \"Alice\" <ALICE@Example.Test>\r\n",
    b"From: info@example.test\r\n",
    b"From: (me) alice@example.test (Alice)\r\n",
    b"From: =?utf-8?q?Al=C3=AFce?= <alice@example.test>\r\n",
    b"From: \"alice\"@example.test\r\n",
    b"From: Alice\r\n <alice@example.test>\r\n",
    b"From: Team: alice@example.test, Info <info@example.test>;\r\n",
    b"From: info@example.test\r\nSender: alice@example.test\r\n",
])
def test_from_owned_by_the_user_is_accepted(pol, header):
    tok = token()
    conn = logged_in(pol)
    with conn:
        r = send(conn, ALICE, [BOB], msg(tok, header))
        assert queued(r), r.raw
    assert the_one(pol, BOB, tok)


@pytest.mark.parametrize("header,why", [
    (b"From: bob@example.test\r\n",
     b"From: address <bob@example.test> is not owned by user "
     b"alice@example.test"),
    (b"From: Alice <alice@example.test>, Bob <bob@example.test>\r\n",
     b"From: address <bob@example.test> is not owned by user "
     b"alice@example.test"),
    (b"From: \"alice@example.test\" <boss@example.test>\r\n",
     b"From: address <boss@example.test> is not owned by user "
     b"alice@example.test"),
    (b"From: =?utf-8?q?alice=40example=2Etest?= <bob@example.test>\r\n",
     b"From: address <bob@example.test> is not owned by user "
     b"alice@example.test"),
    (b"From: Staff: alice@example.test, bob@example.test;\r\n",
     b"From: address <bob@example.test> is not owned by user "
     b"alice@example.test"),
    (b"From: alice@example.test,\r\n\tbob@example.test\r\n",
     b"From: address <bob@example.test> is not owned by user "
     b"alice@example.test"),
    (b"From: (alice@example.test) bob@example.test\r\n",
     b"From: address <bob@example.test> is not owned by user "
     b"alice@example.test"),
    (b"From: \"bo\x01b\"@example.test\r\n",
     b"From: address <bo?b@example.test> is not owned by user "
     b"alice@example.test"),
    (b"From: alice@example.test\r\nSender: bob@example.test\r\n",
     b"Sender: address <bob@example.test> is not owned by user "
     b"alice@example.test"),
    (b"From: alice@example.test <bob@example.test>\r\n",
     b"The From: field cannot be read as a list of addresses"),
    (b"From: Alice\r\n",
     b"The From: field cannot be read as a list of addresses"),
    (b"From: <alice@example.test\r\n",
     b"The From: field cannot be read as a list of addresses"),
    (b"From: alice@example.test\r\nFrom: bob@example.test\r\n",
     b"The message has 2 From: fields; one is allowed"),
    (b"To: bob@example.test\r\n",
     b"The message has no From: address; RFC 5322 requires one"),
    (b"From: undisclosed:;\r\n",
     b"The message has no From: address; RFC 5322 requires one"),
])
@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_from_not_owned_is_refused_and_nothing_stored(pol, header, why,
                                                      how):
    tok = token()
    conn = logged_in(pol)
    with conn:
        r = (send if how == "DATA" else send_bdat)(conn, ALICE, [BOB],
                                                   msg(tok, header))
        assert r.raw == [b"550 5.7.1 " + why + b"\r\n"]
        # The session goes on.
        assert smtp_cmd(conn, "NOOP").code == 250
    assert pol.peek.find(BOB, tok) == []


def test_header_too_long_to_check_is_refused_after_login(pol):
    """The header section is kept in a 64 KiB buffer to be checked; a
    longer one could hide a second From: past it."""
    tok = token()
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 200)
                      for i in range(330))
    conn = logged_in(pol)
    with conn:
        r = send(conn, ALICE, [BOB], b"From: alice@example.test\r\n" +
                 filler + b"From: bob@example.test\r\n" + msg(tok, b""))
        assert r.raw == [b"552 5.3.4 Header section longer than 65536 "
                         b"bytes\r\n"]
    assert pol.peek.find(BOB, tok) == []


def test_from_not_owned_is_refused_on_port_25_after_login(pol):
    tok = token()
    conn = logged_in(pol, "smtp")
    with conn:
        r = send(conn, ALICE, [BOB], msg(tok, b"From: bob@example.test\r\n"))
        assert r.raw == [b"550 5.7.1 From: address <bob@example.test> is "
                         b"not owned by user alice@example.test\r\n"]
    assert pol.peek.find(BOB, tok) == []


def test_from_is_not_checked_for_mail_from_other_servers(pol):
    tok = token()
    conn, _ = smtp_open(pol, "smtp")
    with conn:
        r = send(conn, "s@remote.test", [BOB],
                 msg(tok, b"From: Someone <someone@remote.test>\r\n"))
        assert queued(r), r.raw
    assert the_one(pol, BOB, tok)


# --- finding 9: hops ---------------------------------------------------------


def received(n):
    return b"".join(b"Received: from h%d.remote.test by h%d.remote.test; "
                    b"Mon, 1 Jan 2024 00:00:00 +0000\r\n" % (i, i + 1)
                    for i in range(n))


@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_more_than_50_received_fields_is_a_loop(pol, how):
    tok = token()
    conn, _ = smtp_open(pol, "smtp")
    with conn:
        r = (send if how == "DATA" else send_bdat)(
            conn, "s@remote.test", [BOB],
            received(51) + b"Subject: " + tok + b"\r\n\r\nloop\r\n")
        assert r.raw == [b"554 5.4.6 Too many hops (51 Received: fields), "
                         b"mail loop\r\n"]
        assert smtp_cmd(conn, "NOOP").code == 250
    assert pol.peek.find(BOB, tok) == []


def test_50_received_fields_are_accepted(pol):
    tok = token()
    conn, _ = smtp_open(pol, "smtp")
    with conn:
        r = send(conn, "s@remote.test", [BOB],
                 received(50) + b"Subject: " + tok + b"\r\n\r\nfar\r\n")
        assert queued(r), r.raw
    assert the_one(pol, BOB, tok)


# --- finding 16: postmaster --------------------------------------------------


def deliver_to(srv, rcpt, tok, source=None):
    conn, _ = smtp_open(srv, "smtp", source=source)
    with conn:
        r = send(conn, "s@remote.test", [rcpt],
                 b"Subject: " + tok + b"\r\n\r\nfor the postmaster\r\n")
        assert queued(r), r.raw


@pytest.mark.parametrize("rcpt,owner", [
    ("postmaster@example.test", BOB),       # the domain's own alias
    ("PostMaster@Example.TEST", BOB),
    ("postmaster@second.test", ALICE),      # [server] postmaster
    ("POSTMASTER@third.test", ALICE),       # a domain without accounts
    ("postmaster", ALICE),                  # RFC 5321 §4.1.1.3
    ("Postmaster", ALICE),
])
def test_postmaster_of_every_domain_is_accepted(pol, rcpt, owner):
    tok = token()
    deliver_to(pol, rcpt, tok)
    assert the_one(pol, owner, tok)


def test_postmaster_of_a_foreign_domain_is_still_no_relay(pol):
    conn, _ = smtp_open(pol, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<postmaster@foreign.test>").raw == [
            b"554 5.7.1 <postmaster@foreign.test>: Relay access denied\r\n"]


def test_postmaster_with_no_account_anywhere_is_a_temporary_failure(
        module_postern_factory, default_cert, tmp_path_factory):
    srv = start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("empty"),
        default_cert, [("smtp", "smtp", "none")], domains=["d3.test"])
    conn, _ = smtp_open(srv, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<postmaster@d3.test>").raw == [
            b"451 4.3.0 Temporary failure looking up the recipient, try "
            b"again later\r\n"]
    srv.wait_log(r"level=error .*event=smtp\.rcpt "
                 r"to=<postmaster@d3\.test> result=no_postmaster")


def test_postmaster_without_alias_or_setting_goes_to_the_first_account(
        module_postern_factory, default_cert, tmp_path_factory):
    first, second = "first@d1.test", "second@d1.test"
    srv = start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("pm"),
        default_cert, [("smtp", "smtp", "none")],
        domains=["d1.test", "d2.test"],
        users=[(first, "first-pw-1"), (second, "second-pw-1")])
    peek = StorePeek(srv.mail_data)
    for rcpt in ("postmaster@d1.test", "postmaster@d2.test", "postmaster"):
        tok = token()
        mark = srv.log_mark()
        deliver_to(srv, rcpt, tok)
        assert len(peek.find(first, tok)) == 1, rcpt
        assert peek.find(second, tok) == []
        srv.wait_log(r"level=warn .*event=smtp\.rcpt to=<%s> "
                     r"result=postmaster_fallback" % rcpt, since=mark)
