"""SMTP on port 25 (listener protocol smtp, STARTTLS): the greeting, EHLO
and its extensions, the commands that carry no mail (VRFY, HELP, RSET,
NOOP, QUIT, EXPN), the replies to commands out of order, unknown or too
long, parameters of MAIL and RCPT, the relay policy, PIPELINING and
STARTTLS injection (RFC 5321, 1870, 2920, 3207, 3461, 6152, 6531)."""

import time

import pytest

from postern_harness import (HOSTNAME, client_ctx, smtp_cmd,
                             smtp_ehlo_keywords, smtp_open,
                             start_mail_server, QUEUED_RE)

MESSAGE_SIZE = 102400

GREETING = b"220 mail.example.test ESMTP postern\r\n"
SENDER_OK = b"250 2.1.0 Sender OK\r\n"
RCPT_OK = b"250 2.1.5 Recipient OK\r\n"
GO_AHEAD = b"354 End data with <CR><LF>.<CR><LF>\r\n"
OK = b"250 2.0.0 OK\r\n"


@pytest.fixture(scope="module")
def mx(module_postern_factory, default_cert, tmp_path_factory):
    return start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("mx"), default_cert,
        [("smtp", "smtp", "starttls")],
        users=[("alice@example.test", "alice-pw-1")],
        limits={"message_size": MESSAGE_SIZE, "recipients": 3})


def ehlo_lines(reply):
    return [t.decode() for t in reply.lines]


# --- greeting and EHLO -------------------------------------------------------


def test_greeting_is_exactly_the_expected_line(mx):
    conn = mx.connect("smtp")
    with conn:
        assert conn.readline() == GREETING


def test_ehlo_before_tls_lists_every_extension_and_no_auth(mx):
    conn, reply = smtp_open(mx, "smtp")
    with conn:
        assert reply.code == 250
        assert reply.raw[0] == (b"250-mail.example.test Hello client.example "
                                b"[127.0.0.1]\r\n"), reply.raw
        assert ehlo_lines(reply)[1:] == [
            "PIPELINING", "SIZE %d" % MESSAGE_SIZE, "8BITMIME", "SMTPUTF8",
            "CHUNKING", "DSN", "STARTTLS", "ENHANCEDSTATUSCODES"], reply.raw


def test_ehlo_after_starttls_offers_auth_and_no_starttls(mx):
    conn, reply = smtp_open(mx, "smtp", starttls=True)
    with conn:
        kws = smtp_ehlo_keywords(reply)
        assert b"STARTTLS" not in kws, reply.raw
        for k in (b"PIPELINING", b"SIZE", b"8BITMIME", b"SMTPUTF8",
                  b"CHUNKING", b"DSN", b"ENHANCEDSTATUSCODES", b"AUTH"):
            assert k in kws, (k, reply.raw)
        auth = [t for t in reply.lines if t.upper().startswith(b"AUTH ")]
        mechs = auth[0].split()[1:]
        assert set(mechs) >= {b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"}, auth


def test_helo_gets_a_plain_250(mx):
    conn, _ = smtp_open(mx, "smtp", ehlo=None)
    with conn:
        r = smtp_cmd(conn, "HELO client.example")
        assert r.raw == [b"250 mail.example.test\r\n"]


def test_ehlo_without_a_name_is_a_syntax_error(mx):
    conn, _ = smtp_open(mx, "smtp", ehlo=None)
    with conn:
        r = smtp_cmd(conn, "EHLO")
        assert r.raw == [b"501 5.5.4 Syntax: EHLO hostname\r\n"]


# --- commands that carry no mail --------------------------------------------


def test_noop(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "NOOP").raw == [OK]


@pytest.mark.parametrize("who", ["alice@example.test", "nobody@example.test",
                                 "alice"])
def test_vrfy_neither_confirms_nor_denies(mx, who):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        r = smtp_cmd(conn, "VRFY " + who)
        assert r.raw == [b"252 2.5.0 Cannot VRFY user, but will accept "
                         b"message and attempt delivery\r\n"]


def test_expn_is_not_available(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "EXPN staff").raw == [
            b"502 5.5.1 EXPN is not available\r\n"]


def test_help_is_a_multiline_214(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        r = smtp_cmd(conn, "HELP")
        assert r.code == 214, r.raw
        assert len(r.raw) >= 2, r.raw
        assert r.raw[0].startswith(b"214-2.0.0 Commands: "), r.raw
        for verb in (b"EHLO", b"MAIL", b"RCPT", b"DATA", b"BDAT", b"QUIT"):
            assert verb in r.raw[0], r.raw
        assert r.raw[-1].startswith(b"214 2.0.0 "), r.raw


def test_quit_says_221_and_closes(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        conn.send(b"QUIT\r\n")
        assert conn.readline() == b"221 2.0.0 mail.example.test Bye\r\n"
        assert conn.wait_closed() == b""


def test_rset_forgets_the_transaction(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>").raw == \
            [RCPT_OK]
        assert smtp_cmd(conn, "RSET").raw == [OK]
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>").raw == [
            b"503 5.5.1 Need MAIL before RCPT\r\n"]
        # A new transaction works after RSET.
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]


def test_commands_are_case_insensitive(mx):
    conn, _ = smtp_open(mx, "smtp", ehlo=None)
    with conn:
        assert smtp_cmd(conn, "ehlo client.example").code == 250
        assert smtp_cmd(conn, "mail from:<s@remote.test>").raw == [SENDER_OK]
        assert smtp_cmd(conn, "rcpt to:<Alice@Example.TEST>").raw == \
            [RCPT_OK]
        assert smtp_cmd(conn, "rset").raw == [OK]


# --- errors ------------------------------------------------------------------


def test_unknown_command_gets_500(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "FROBNICATE now").raw == [
            b"500 5.5.2 Command not recognized\r\n"]
        assert smtp_cmd(conn, "NOOP").raw == [OK]


def test_too_long_line_gets_500_and_the_session_goes_on(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        conn.send(b"MAIL FROM:<" + b"a" * 6000 + b"@remote.test>\r\nNOOP\r\n")
        assert conn.read_smtp_reply().raw == [b"500 5.5.2 Line too long\r\n"]
        assert conn.read_smtp_reply().raw == [OK]
        assert conn.pending(0.3) == b""
        # The state did not change: MAIL is still possible.
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]


@pytest.mark.parametrize("line,reply", [
    ("MAIL FROM:<s@remote.test>", b"503 5.5.1 Send EHLO or HELO first\r\n"),
    ("RCPT TO:<alice@example.test>",
     b"503 5.5.1 Send EHLO or HELO first\r\n"),
    ("DATA", b"503 5.5.1 Send EHLO or HELO first\r\n"),
])
def test_mail_commands_before_ehlo_get_503(mx, line, reply):
    conn, _ = smtp_open(mx, "smtp", ehlo=None)
    with conn:
        assert smtp_cmd(conn, line).raw == [reply]


def test_commands_out_of_order_get_503(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>").raw == [
            b"503 5.5.1 Need MAIL before RCPT\r\n"]
        assert smtp_cmd(conn, "DATA").raw == [
            b"503 5.5.1 Need RCPT before DATA\r\n"]
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [
            b"503 5.5.1 Nested MAIL command\r\n"]


def test_data_without_an_accepted_recipient_gets_554(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<nobody@example.test>").code == 550
        assert smtp_cmd(conn, "DATA").raw == [
            b"554 5.5.1 No valid recipients\r\n"]


@pytest.mark.parametrize("line,reply", [
    ("MAIL FROM:s@remote.test",
     b"501 5.1.7 Address must be in angle brackets: FROM:<address>\r\n"),
    ("MAIL FROM:<s@remote.test",
     b"501 5.1.7 Missing '>' after the address\r\n"),
    ("MAIL FROM:<no-at-sign>", b"501 5.1.3 Bad address syntax\r\n"),
    ("MAIL FROM:<s@remote.test> FOO=BAR",
     b"555 5.5.4 Unsupported parameter FOO\r\n"),
    ("MAIL FROM:<s@remote.test> SIZE=12k",
     b"501 5.5.4 Bad SIZE parameter\r\n"),
    ("MAIL FROM:<s@remote.test> BODY=9BIT",
     b"501 5.5.4 BODY must be 7BIT or 8BITMIME\r\n"),
    ("MAIL FROM:<j\u00f6ran@remote.test>",
     b"553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n"),
])
def test_bad_mail_from_is_refused_with_its_reason(mx, line, reply):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, line).raw == [reply]


@pytest.mark.parametrize("params", [
    "", " BODY=8BITMIME", " BODY=7BIT", " SIZE=1000",
    " SIZE=%d" % MESSAGE_SIZE, " RET=HDRS ENVID=abc123",
    " SMTPUTF8", " AUTH=<>",
])
def test_mail_from_with_supported_parameters_is_accepted(mx, params):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>" + params).raw == \
            [SENDER_OK]


def test_null_reverse_path_is_accepted(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<>").raw == [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>").raw == \
            [RCPT_OK]


def test_utf8_sender_with_smtputf8_is_accepted(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        r = smtp_cmd(conn, "MAIL FROM:<j\u00f6ran@b\u00fccher.test> SMTPUTF8")
        assert r.raw == [SENDER_OK]


def test_dsn_parameters_of_rcpt_are_accepted(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test> RET=FULL "
                        "ENVID=QQ314159").raw == [SENDER_OK]
        r = smtp_cmd(conn, "RCPT TO:<alice@example.test> "
                     "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test")
        assert r.raw == [RCPT_OK]


def test_size_declared_over_the_limit_gets_552(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        r = smtp_cmd(conn, "MAIL FROM:<s@remote.test> SIZE=%d"
                     % (MESSAGE_SIZE + 1))
        assert r.raw == [b"552 5.3.4 Message size exceeds fixed limit of "
                         b"%d bytes\r\n" % MESSAGE_SIZE]
        # No transaction was started.
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>").raw == [
            b"503 5.5.1 Need MAIL before RCPT\r\n"]


# --- relay policy ------------------------------------------------------------


def test_unknown_local_user_gets_550_5_1_1(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        r = smtp_cmd(conn, "RCPT TO:<nobody@example.test>")
        assert r.raw == [b"550 5.1.1 <nobody@example.test>: Recipient "
                         b"address rejected: no such user here\r\n"]
        # The transaction goes on for the others.
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>").raw == \
            [RCPT_OK]


@pytest.mark.parametrize("rcpt", ["someone@foreign.test",
                                  "alice@example.test.foreign.test",
                                  "alice@sub.example.test",
                                  "postmaster@[192.0.2.1]"])
def test_relay_to_a_foreign_domain_is_denied_without_auth(mx, rcpt):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        r = smtp_cmd(conn, "RCPT TO:<%s>" % rcpt)
        assert r.raw == [b"554 5.7.1 <%s>: Relay access denied\r\n"
                         % rcpt.encode()]


def test_relay_is_denied_after_starttls_too(mx):
    conn, _ = smtp_open(mx, "smtp", starttls=True)
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        r = smtp_cmd(conn, "RCPT TO:<someone@foreign.test>")
        assert r.raw == [b"554 5.7.1 <someone@foreign.test>: Relay access "
                         b"denied\r\n"]


def test_relay_denied_with_a_source_route_to_our_domain(mx):
    """A source route '@ours:victim@foreign' is ignored: the recipient is
    the foreign address."""
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        r = smtp_cmd(conn, "RCPT TO:<@example.test:victim@foreign.test>")
        assert r.raw == [b"554 5.7.1 <victim@foreign.test>: Relay access "
                         b"denied\r\n"]


# --- limits ------------------------------------------------------------------


def test_recipients_over_the_limit_get_452_4_5_3(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        for _ in range(3):
            assert smtp_cmd(conn, "RCPT TO:<alice@example.test>").raw == \
                [RCPT_OK]
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>").raw == [
            b"452 4.5.3 Too many recipients\r\n"]
        assert smtp_cmd(conn, "RSET").raw == [OK]


# --- PIPELINING --------------------------------------------------------------


def test_pipelined_transaction_replies_in_order(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        conn.send(b"MAIL FROM:<s@remote.test>\r\n"
                  b"RCPT TO:<alice@example.test>\r\n"
                  b"RCPT TO:<nobody@example.test>\r\n"
                  b"RCPT TO:<x@foreign.test>\r\n"
                  b"RCPT TO:<ALICE@example.test>\r\n"
                  b"DATA\r\n")
        got = [conn.read_smtp_reply().raw[0] for _ in range(6)]
        assert got[0] == SENDER_OK
        assert got[1] == RCPT_OK
        assert got[2].startswith(b"550 5.1.1 <nobody@example.test>"), got
        assert got[3].startswith(b"554 5.7.1 <x@foreign.test>"), got
        assert got[4] == RCPT_OK
        assert got[5] == GO_AHEAD
        # The message, then the next transaction in the same packet.
        conn.send(b"Subject: pipelined 1\r\n\r\nfirst\r\n.\r\n"
                  b"MAIL FROM:<s2@remote.test>\r\n"
                  b"RCPT TO:<alice@example.test>\r\n"
                  b"DATA\r\n")
        first = conn.read_smtp_reply(timeout=15).raw
        assert len(first) == 1 and QUEUED_RE.match(first[0]), first
        assert conn.read_smtp_reply().raw == [SENDER_OK]
        assert conn.read_smtp_reply().raw == [RCPT_OK]
        assert conn.read_smtp_reply().raw == [GO_AHEAD]
        conn.send(b"Subject: pipelined 2\r\n\r\nsecond\r\n.\r\n"
                  b"NOOP\r\nQUIT\r\n")
        second = conn.read_smtp_reply(timeout=15).raw
        assert len(second) == 1 and QUEUED_RE.match(second[0]), second
        assert conn.read_smtp_reply().raw == [OK]
        assert conn.readline() == b"221 2.0.0 mail.example.test Bye\r\n"


def test_pipelined_commands_split_at_odd_places(mx):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        for piece in (b"MAIL FR", b"OM:<s@remote.test>\r\nRC",
                      b"PT TO:<alice@exam", b"ple.test>\r", b"\nRSET\r\n"):
            conn.send(piece)
        assert conn.read_smtp_reply().raw == [SENDER_OK]
        assert conn.read_smtp_reply().raw == [RCPT_OK]
        assert conn.read_smtp_reply().raw == [OK]


# --- STARTTLS ----------------------------------------------------------------


def test_starttls_injection_is_discarded(mx):
    """RFC 3207 §4.2 / CVE-2011-0411: what came with STARTTLS in the same
    packet is not executed inside TLS, and the transaction and EHLO from
    before TLS are forgotten."""
    ctx = client_ctx(mx.cert.cert_path)
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<before@remote.test>").raw == \
            [SENDER_OK]
        conn.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@remote.test>\r\n"
                  b"RCPT TO:<alice@example.test>\r\n")
        assert conn.readline() == b"220 2.0.0 Ready to start TLS\r\n"
        conn.starttls(ctx, HOSTNAME)
        # Nothing answers the injected commands.
        assert conn.pending(0.7) == b""
        # Not greeted inside TLS yet: the pre-TLS EHLO is forgotten.
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [
            b"503 5.5.1 Send EHLO or HELO first\r\n"]
        assert smtp_cmd(conn, "EHLO client.example").code == 250
        # Neither the pre-TLS MAIL nor the injected one is in effect.
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>").raw == [
            b"503 5.5.1 Need MAIL before RCPT\r\n"]


def test_starttls_inside_tls_is_refused(mx):
    conn, _ = smtp_open(mx, "smtp", starttls=True)
    with conn:
        assert smtp_cmd(conn, "STARTTLS").raw == [
            b"503 5.5.1 TLS is already active or not offered here\r\n"]


# --- a whole delivery through swaks -----------------------------------------


def test_swaks_delivers_with_starttls_and_pipelining(mx):
    import subprocess
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(mx.ports["smtp"]),
         "--ehlo", "swaks.example", "--from", "swaks@remote.test",
         "--to", "alice@example.test", "--tls", "--pipeline",
         "--header", "Subject: via swaks", "--body", "hello from swaks"],
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 OK: queued as" in r.stdout, r.stdout


def test_swaks_relay_attempt_is_refused(mx):
    import subprocess
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(mx.ports["smtp"]),
         "--from", "spammer@remote.test", "--to", "victim@foreign.test"],
        capture_output=True, text=True, timeout=30)
    # swaks exits 24 when RCPT is refused.
    assert r.returncode == 24, r.stdout + r.stderr
    assert "554 5.7.1 <victim@foreign.test>: Relay access denied" in \
        r.stdout, r.stdout


# --- more of the same class --------------------------------------------------


def test_auth_before_tls_on_port_25_needs_encryption(mx):
    """PLAIN would send the password in clear: 538 (RFC 4954 §4)."""
    import base64
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        tok = base64.b64encode(b"\0alice@example.test\0alice-pw-1").decode()
        assert smtp_cmd(conn, "AUTH PLAIN " + tok).raw == [
            b"538 5.7.11 Encryption required for the requested "
            b"authentication mechanism\r\n"]
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        assert smtp_cmd(conn, "RCPT TO:<x@foreign.test>").code == 554


@pytest.mark.parametrize("greeted", [True, False],
                         ids=["after-ehlo", "before-ehlo"])
def test_bdat_out_of_sequence_does_not_run_its_chunk_as_commands(mx,
                                                                greeted):
    """RFC 3030 §2 and smtp_cmd_bdat ("whatever happens, the chunk's
    bytes are read: they are not commands"): a BDAT refused for its place
    in the dialogue still owns the bytes it announced."""
    chunk = (b"MAIL FROM:<evil@remote.test>\r\n"
             b"RCPT TO:<alice@example.test>\r\n"
             b"NOOP\r\n")
    conn, _ = smtp_open(mx, "smtp", ehlo="client.example" if greeted
                        else None)
    with conn:
        conn.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        first = conn.read_smtp_reply()
        assert first.code == 503, first.raw
        assert conn.pending(0.7) == b"", \
            "the chunk's bytes were executed as commands"
        assert smtp_cmd(conn, "NOOP").raw == [OK]


def test_repeated_errors_slow_the_session_down(mx):
    """After SMTP_SLOW_ERRORS (5) errors every further command waits
    (smtp_session.c: a tarpit against address harvesting)."""
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        t0 = time.monotonic()
        for i in range(5):
            assert smtp_cmd(conn, "BOGUS%d" % i).code == 500
        fast = time.monotonic() - t0
        t1 = time.monotonic()
        assert smtp_cmd(conn, "NOOP", timeout=10).raw == [OK]
        slow = time.monotonic() - t1
    assert fast < 2.0, fast
    assert slow >= 0.8, "no slowdown after 5 errors (%.2fs)" % slow
