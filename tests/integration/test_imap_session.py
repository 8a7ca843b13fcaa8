"""IMAP sessions as clients see them (RFC 9051; RFC 3501 for clients that
do not ENABLE IMAP4rev2): the greeting and CAPABILITY on implicit TLS and
on a STARTTLS listener (LOGINDISABLED before TLS, injected plaintext
dropped), LOGIN, AUTHENTICATE PLAIN (with and without SASL-IR, cancel)
and SCRAM-SHA-256, app passwords, IMAP switched off per account, lockout,
ENABLE, ID, NAMESPACE, NOOP, LOGOUT, commands in the wrong state or with
arguments they do not take, literals ({n}, {n+}, too large), a line too
long, pipelining, IDLE, and the server ending sessions (shutdown,
inactivity)."""

import base64
import re

import pytest

from imap_helpers import (TAGGED_RE, Imap, Reply, admin_ok, imap_caps, login,
                          new_user, start_imap_server)
from postern_harness import (ConnectionClosed, ScramSha256Client,
                             client_ctx, next_source_address)

LITERAL_MAX = 65536          # [limits] imap_literal_max of the server
LINE_LENGTH = 4096           # [limits] line_length (the default)
IMAP_LINE_LENGTH = 65536     # [limits] imap_line_length (the default)


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    s = start_imap_server(module_postern_factory,
                          tmp_path_factory.mktemp("imap-session"),
                          default_cert,
                          limits={"imap_literal_max": LITERAL_MAX,
                                  "line_length": LINE_LENGTH})
    return s


@pytest.fixture
def user(srv):
    return new_user(srv)


def plain_token(user, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password))
                            .encode()).decode()


def assert_refused(r, *statuses):
    """r is a tagged NO or BAD (statuses narrows it), never OK."""
    statuses = statuses or ("NO", "BAD")
    assert r.status in statuses, r.tagged


# --- greeting and capabilities ---------------------------------------------


GREETING_RE = re.compile(rb"^\* OK \[CAPABILITY [^\]\r\n]+\] \S[^\r\n]*\r\n$")


def test_greeting_on_implicit_tls_names_capabilities(srv):
    with Imap.open(srv, "imaps") as c:
        assert c.conn.is_tls
        # RFC 9051 §7.1.1: the greeting is an untagged OK; a CAPABILITY
        # response code saves the client a round trip (§7.1).
        assert GREETING_RE.match(c.greeting), c.greeting
        caps = imap_caps(c.greeting)
        assert "IMAP4REV2" in caps and "IMAP4REV1" in caps, caps
        # TLS is already up: nothing to STARTTLS, login allowed.
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
        assert "AUTH=PLAIN" in caps, caps
        r = c.ok("CAPABILITY")
        assert len(r.untagged) == 1, r.untagged
        assert r.untagged[0].startswith(b"* CAPABILITY "), r.untagged
        assert set(imap_caps(r.untagged[0])) == set(caps)


def test_starttls_listener_disables_login_until_tls(srv, user):
    address, password = user
    with Imap.open(srv, "imap") as c:
        assert not c.conn.is_tls
        assert GREETING_RE.match(c.greeting), c.greeting
        caps = imap_caps(c.greeting)
        # RFC 9051 §6.2.1, §6.2.3: STARTTLS offered, LOGINDISABLED and no
        # plaintext SASL mechanism in clear.
        assert "STARTTLS" in caps and "LOGINDISABLED" in caps, caps
        assert "AUTH=PLAIN" not in caps, caps
        r = c.command('LOGIN "%s" "%s"' % (address, password))
        # RFC 9051 §6.2.3 with RFC 5530 §3: NO [PRIVACYREQUIRED].
        assert r.status == "NO" and r.code_atom == "PRIVACYREQUIRED", \
            r.tagged
        r = c.command("AUTHENTICATE PLAIN " + plain_token(address, password))
        assert r.status == "NO", r.tagged
        # Still not logged in, still usable.
        assert_refused(c.command("SELECT INBOX"))
        c.starttls(srv)
        assert c.conn.is_tls
        r = c.ok("CAPABILITY")
        caps = imap_caps(r.untagged[0])
        # RFC 9051 §6.2.1: the client must ask again after TLS; now
        # STARTTLS and LOGINDISABLED are gone and PLAIN is offered.
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
        assert "AUTH=PLAIN" in caps and "IMAP4REV2" in caps, caps
        c.login(address, password)
        c.select("INBOX")


def test_starttls_drops_command_injected_before_handshake(srv):
    """RFC 9051 §6.2.1 / RFC 3207 §6 style attack: plaintext sent after
    STARTTLS in the same packet must not be executed inside TLS."""
    with Imap.open(srv, "imap") as c:
        c.send(b"s1 STARTTLS\r\nx1 CAPABILITY\r\nx2 NOOP\r\n")
        line = c.conn.readline()
        assert line.startswith(b"s1 OK "), line
        # Conn.starttls refuses when the server sent more bytes (it must
        # not answer x1/x2 in clear either).
        c.conn.starttls(client_ctx(srv.cert.cert_path),
                        server_hostname="mail.example.test")
        c.send(b"t1 NOOP\r\n")
        r = c.read_reply(b"t1")
        assert r.status == "OK", r.tagged
        for l in r.untagged:
            assert not l.startswith((b"x1", b"x2", b"* CAPABILITY")), \
                "injected command was executed: %r" % r.untagged


def test_starttls_refused_when_tls_is_active(srv):
    with Imap.open(srv, "imaps") as c:
        assert_refused(c.command("STARTTLS"))
        c.noop()
    with Imap.open(srv, "imap") as c:
        c.starttls(srv)
        assert_refused(c.command("STARTTLS"))
        c.noop()


# --- LOGIN -------------------------------------------------------------------


AUTH_FAILED_RE = re.compile(rb"^(\S+) NO \[AUTHENTICATIONFAILED\] \S.*\r\n$")


def test_login_success_and_failure(srv, user):
    address, password = user
    with Imap.open(srv, "imaps", source=next_source_address()) as c:
        r = c.command('LOGIN "%s" "wrong-password"' % address)
        # RFC 9051 §6.2.3, RFC 5530 §3: NO [AUTHENTICATIONFAILED].
        assert AUTH_FAILED_RE.match(r.tagged), r.tagged
        assert r.untagged == [], r.untagged
        bad_text = r.text
        r = c.command('LOGIN "nobody-here@example.test" "%s"' % password)
        assert AUTH_FAILED_RE.match(r.tagged), r.tagged
        # The same answer for an unknown user: no account enumeration.
        assert r.text == bad_text, (r.text, bad_text)
        assert_refused(c.command("SELECT INBOX"))
        r = c.login(address, password)
        # Logged in: INBOX can be selected now.
        c.select("INBOX")
        # RFC 9051 §6.2.3: LOGIN only in the not-authenticated state.
        assert_refused(c.command('LOGIN "%s" "%s"' % (address, password)))


def test_login_arguments_as_atoms(srv, user):
    address, password = user
    with Imap.open(srv, "imaps") as c:
        # Astrings: atoms are fine for both arguments (RFC 9051 §9).
        c.ok("LOGIN %s %s" % (address, password))
        c.select("INBOX")


def test_login_refused_when_imap_is_off_for_the_account(srv):
    address, password = new_user(srv, "imap=off")
    with Imap.open(srv, "imaps", source=next_source_address()) as c:
        r = c.command('LOGIN "%s" "%s"' % (address, password))
        # RFC 5530: AUTHENTICATIONFAILED or UNAVAILABLE, with a sentence
        # saying what is wrong (like POP3's "POP3 access is disabled").
        assert r.status == "NO", r.tagged
        assert r.code_atom in ("AUTHENTICATIONFAILED", "UNAVAILABLE"), \
            r.tagged
        assert re.search(rb"IMAP", r.text) and \
            re.search(rb"disabled", r.text, re.I), r.tagged
        # Not logged in.
        assert_refused(c.command("SELECT INBOX"))
        # AUTHENTICATE is refused the same way.
        r = c.command("AUTHENTICATE PLAIN " + plain_token(address, password))
        assert r.status == "NO" and b"disabled" in r.text, r.tagged
        assert_refused(c.command("SELECT INBOX"))


def test_login_refused_for_a_disabled_account(srv):
    address, password = new_user(srv, "enabled=no")
    with Imap.open(srv, "imaps", source=next_source_address()) as c:
        r = c.command('LOGIN "%s" "%s"' % (address, password))
        assert r.status == "NO", r.tagged
        assert r.code_atom in ("AUTHENTICATIONFAILED", "UNAVAILABLE",
                               "CONTACTADMIN"), r.tagged
        assert_refused(c.command("SELECT INBOX"))


def test_imap_switch_changed_on_a_running_server(srv, user):
    address, password = user
    login(srv, address, password).logout()
    admin_ok(srv.admin_config, "user", "set", address, "imap=off")
    with Imap.open(srv, "imaps", source=next_source_address()) as c:
        r = c.command('LOGIN "%s" "%s"' % (address, password))
        assert r.status == "NO" and b"disabled" in r.text.lower(), r.tagged
    admin_ok(srv.admin_config, "user", "set", address, "imap=on")
    login(srv, address, password).logout()


def test_app_password_logs_in_and_honours_protocols(srv, user):
    address, password = user
    out = admin_ok(srv.admin_config, "app-password", "add", address, "phone")
    app = re.search(r"\b([a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4})\b", out)
    assert app, out
    app = app.group(1)
    c = login(srv, address, app)
    c.select("INBOX")
    c.logout()
    # AUTHENTICATE PLAIN takes it too.
    with Imap.open(srv, "imaps") as c:
        c.ok("AUTHENTICATE PLAIN " + plain_token(address, app))
    # One limited to POP3 does not open IMAP.
    out = admin_ok(srv.admin_config, "app-password", "add", address,
                   "popper", "protocols=pop3")
    pop_only = re.search(r"\b([a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4})\b",
                         out).group(1)
    with Imap.open(srv, "imaps", source=next_source_address()) as c:
        r = c.command('LOGIN "%s" "%s"' % (address, pop_only))
        assert r.status == "NO", r.tagged
    # Revoked: refused.
    admin_ok(srv.admin_config, "app-password", "revoke", address, "phone")
    with Imap.open(srv, "imaps", source=next_source_address()) as c:
        r = c.command('LOGIN "%s" "%s"' % (address, app))
        assert AUTH_FAILED_RE.match(r.tagged), r.tagged


def test_lockout_after_repeated_failures(postern_factory, default_cert,
                                         tmp_path):
    srv = start_imap_server(postern_factory, tmp_path, default_cert,
                            auth={"lockout_failures": 3,
                                  "lockout_window": "1m",
                                  "lockout_duration": "1m"})
    address, password = new_user(srv)
    attacker, elsewhere = next_source_address(), next_source_address()
    with Imap.open(srv, "imaps", source=attacker) as c:
        for i in range(3):
            r = c.command('LOGIN "%s" "guess-%d"' % (address, i))
            assert AUTH_FAILED_RE.match(r.tagged), (i, r.tagged)
    # Locked: the right password is refused from the attacker's network;
    # the owner elsewhere is not locked out (test_auth_lockout.py).
    with Imap.open(srv, "imaps", source=attacker) as c:
        r = c.command('LOGIN "%s" "%s"' % (address, password))
        assert r.status == "NO", (attacker, r.tagged)
        assert r.code_atom in ("AUTHENTICATIONFAILED", "UNAVAILABLE"), \
            r.tagged
        assert_refused(c.command("SELECT INBOX"))
    login(srv, address, password, source=elsewhere).logout()


# --- AUTHENTICATE ------------------------------------------------------------


def test_authenticate_plain_with_sasl_ir(srv, user):
    address, password = user
    with Imap.open(srv, "imaps") as c:
        assert "SASL-IR" in imap_caps(c.greeting), c.greeting
        r = c.ok("AUTHENTICATE PLAIN " + plain_token(address, password))
        assert r.untagged == [] or all(
            l.startswith(b"* CAPABILITY ") for l in r.untagged), r.untagged
        c.select("INBOX")


def test_authenticate_plain_without_initial_response(srv, user):
    address, password = user
    with Imap.open(srv, "imaps") as c:
        c.send(b"p1 AUTHENTICATE PLAIN\r\n")
        cont = c.conn.readline()
        # RFC 9051 §6.2.2: an empty challenge; continue-req is
        # "+" SP (resp-text / base64) CRLF (§9).
        assert cont == b"+ \r\n", cont
        c.send(plain_token(address, password).encode() + b"\r\n")
        r = c.read_reply(b"p1")
        assert r.status == "OK", r.tagged
        c.select("INBOX")


def test_authenticate_plain_wrong_password(srv, user):
    address, _ = user
    with Imap.open(srv, "imaps", source=next_source_address()) as c:
        r = c.command("AUTHENTICATE PLAIN " + plain_token(address, "nope"))
        assert AUTH_FAILED_RE.match(r.tagged), r.tagged


def scram_login(c, user, password):
    """AUTHENTICATE SCRAM-SHA-256 with SASL-IR; returns (Reply, whether
    the server proved it knows the password)."""
    sc = ScramSha256Client(user, password)
    c.send(b"s1 AUTHENTICATE SCRAM-SHA-256 " +
           base64.b64encode(sc.first().encode()) + b"\r\n")
    line = c.conn.readline()
    assert line.startswith(b"+ "), line
    c.send(base64.b64encode(sc.final(base64.b64decode(line[2:].strip()))
                            .encode()) + b"\r\n")
    line = c.read_line()
    verified = False
    if line.startswith(b"+ "):
        # RFC 9051 §6.2.2: the server's final data comes as a challenge,
        # answered with an empty line.
        verified = sc.verify(base64.b64decode(line[2:].strip()))
        c.send(b"\r\n")
        return c.read_reply(b"s1"), verified
    return _tagged(line), verified


def _tagged(line):
    m = TAGGED_RE.match(line)
    assert m, line
    return Reply(b"s1", [], line, m.group(2).upper().decode(),
                 (m.group(3) or b"").decode(), m.group(4) or b"")


def test_authenticate_scram_sha_256(srv, user):
    with Imap.open(srv, "imaps") as c:
        assert "AUTH=SCRAM-SHA-256" in imap_caps(c.greeting), c.greeting
        r, verified = scram_login(c, *user)
        assert r.status == "OK", r.tagged
        assert verified, "server signature did not verify"
        c.select("INBOX")
    with Imap.open(srv, "imaps", source=next_source_address()) as c:
        r, _ = scram_login(c, user[0], "not-the-password")
        assert AUTH_FAILED_RE.match(r.tagged), r.tagged
        assert_refused(c.command("SELECT INBOX"))


def test_authenticate_cancel_with_star(srv, user):
    address, password = user
    with Imap.open(srv, "imaps") as c:
        c.send(b"p1 AUTHENTICATE PLAIN\r\n")
        assert c.conn.readline() == b"+ \r\n"
        c.send(b"*\r\n")
        r = c.read_reply(b"p1")
        # RFC 9051 §6.2.2: a "*" line cancels; the server MUST reject the
        # command with a tagged BAD.
        assert r.status == "BAD", r.tagged
        assert_refused(c.command("SELECT INBOX"))
        c.login(address, password)


def test_authenticate_invalid_base64_is_bad(srv):
    with Imap.open(srv, "imaps") as c:
        c.send(b"p1 AUTHENTICATE PLAIN\r\n")
        assert c.conn.readline() == b"+ \r\n"
        c.send(b"not base64!!\r\n")
        r = c.read_reply(b"p1")
        # RFC 9051 §6.2.2: invalid base64 -> tagged BAD.
        assert r.status == "BAD", r.tagged
        c.noop()


def test_authenticate_unknown_mechanism(srv):
    with Imap.open(srv, "imaps") as c:
        r = c.command("AUTHENTICATE X-NO-SUCH-MECH")
        # RFC 9051 §6.2.2: NO for an unsupported mechanism.
        assert_refused(r)
        c.noop()


# --- ENABLE, ID, NAMESPACE, NOOP, LOGOUT ------------------------------------


def test_capabilities_after_login_name_the_extensions(srv, user):
    c = login(srv, *user)
    caps = imap_caps(c.ok("CAPABILITY").untagged[0])
    for cap in ("IMAP4REV2", "IMAP4REV1", "ENABLE", "IDLE", "NAMESPACE",
                "ID", "UNSELECT", "SASL-IR", "SPECIAL-USE", "LIST-EXTENDED",
                "LIST-STATUS", "CONDSTORE", "QRESYNC", "CREATE-SPECIAL-USE",
                "UTF8=ACCEPT", "STATUS=SIZE"):
        assert cap in caps, (cap, caps)
    # RFC 7888: one of the literal extensions.
    assert "LITERAL+" in caps or "LITERAL-" in caps, caps
    assert "LOGINDISABLED" not in caps and "STARTTLS" not in caps, caps
    c.logout()


@pytest.mark.parametrize("ext", ["IMAP4rev2", "CONDSTORE", "QRESYNC"])
def test_enable_replies_enabled(srv, user, ext):
    c = login(srv, *user)
    r = c.ok("ENABLE " + ext)
    enabled = [l for l in r.untagged if l.startswith(b"* ENABLED")]
    # RFC 5161 §3.1 / RFC 9051 §6.3.1: "* ENABLED" names what it enabled.
    assert len(enabled) == 1, r.untagged
    assert ext.upper().encode() in enabled[0].upper().split(), enabled
    # The same extension again is not enabled again (RFC 5161 §3.1: only
    # the extensions this command enabled are listed).
    r = c.ok("ENABLE " + ext)
    again = [l for l in r.untagged if l.startswith(b"* ENABLED")]
    assert len(again) == 1, r.untagged
    assert ext.upper().encode() not in again[0].upper().split(), again
    c.logout()


def test_enable_unknown_extension_is_empty(srv, user):
    c = login(srv, *user)
    r = c.ok("ENABLE X-POSTERN-NOTHING")
    assert r.untagged == [b"* ENABLED\r\n"], r.untagged
    c.logout()


def test_enable_before_login_is_refused(srv):
    with Imap.open(srv, "imaps") as c:
        r = c.command("ENABLE IMAP4rev2")
        assert_refused(r)
        assert not any(l.startswith(b"* ENABLED") for l in r.untagged)


def test_id_before_and_after_login(srv, user):
    with Imap.open(srv, "imaps") as c:
        assert "ID" in imap_caps(c.greeting)
        # RFC 2971 §3.1: allowed in any state; answered by "* ID".
        r = c.ok('ID ("name" "pytest" "version" "1.0")')
        ids = [l for l in r.untagged if l.startswith(b"* ID ")]
        assert len(ids) == 1, r.untagged
        assert re.match(rb'^\* ID (NIL|\((("[^"]*"|NIL) ?)*\))\r\n$',
                        ids[0]), ids[0]
        c.login(*user)
        r = c.ok("ID NIL")
        assert len([l for l in r.untagged if l.startswith(b"* ID ")]) == 1
        # A malformed ID is BAD (RFC 2971 §3.1: field/value pairs).
        assert c.command('ID ("name")').status == "BAD"


def id_of_largest_size():
    """An ID at RFC 2971 §3.3's maxima: 30 pairs, 30-octet fields,
    1,024-octet values (about 31,800 octets on one line)."""
    pairs = " ".join('"%s" "%s"' % (("f%02d" % i) * 10, chr(97 + i % 26) *
                                    1024) for i in range(30))
    return "ID (%s)" % pairs


def test_long_id_line_before_and_after_login(srv, user):
    """RFC 9051 §4: lines of at least 8,192 octets after login. Before
    login the line limit stays small (line_length), except for ID, which
    may come in any state (RFC 2971 §3.1) and reach about 32 KB at its
    maxima; every other command still ends at line_length."""
    big_id = id_of_largest_size()
    assert len(big_id) > 8 * LINE_LENGTH - 1024, len(big_id)
    with Imap.open(srv, "imaps") as c:
        r = c.ok(big_id)
        assert len([l for l in r.untagged if l.startswith(b"* ID ")]) == 1
        # Any other command keeps the small pre-login limit.
        c.send(b"n1 NOOP " + b"x" * (2 * LINE_LENGTH) + b"\r\n")
        line = c.read_line()
        assert re.match(rb"^(n1|\*) BAD \[TOOBIG\]", line), line
        assert c.noop().untagged == []
        # An ID beyond the maxima is refused, and dropped, not run.
        c.send(b"i2 ID (" + b'"f" "' + b"v" * (40 * 1024) + b'")\r\n')
        line = c.read_line()
        assert re.match(rb"^(i2|\*) BAD \[TOOBIG\]", line), line
        assert c.noop().untagged == []
        c.login(*user)
        r = c.ok(big_id)
        assert len([l for l in r.untagged if l.startswith(b"* ID ")]) == 1
        # After login an 8 KiB line of any command is taken (a SEARCH of
        # a long UID set).
        uids = ",".join(str(n) for n in range(1, 4000, 2))
        assert len(uids) > 8192
        c.select("INBOX")
        c.ok("UID SEARCH UID " + uids)
        # 31 pairs are one too many (RFC 2971 §3.1).
        many = "ID (%s)" % " ".join('"f%d" "v"' % i for i in range(31))
        assert c.command(many).status == "BAD"


def test_namespace(srv, user):
    c = login(srv, *user)
    r = c.ok("NAMESPACE")
    # RFC 2342 / RFC 9051 §6.3.10: one personal namespace, prefix "",
    # hierarchy separator "/"; the other users' (ACL, test_imap_acl.py);
    # no shared namespace.
    assert r.untagged == [b'* NAMESPACE (("" "/")) (("Other Users/" "/")) '
                          b'NIL\r\n'], r.untagged
    c.logout()


def test_noop_in_every_state(srv, user):
    with Imap.open(srv, "imaps") as c:
        assert c.noop().untagged == []
        c.login(*user)
        c.noop()
        c.select("INBOX")
        c.noop()


def test_logout_says_bye_then_ok_then_closes(srv, user):
    c = login(srv, *user)
    c.send(b"z9 LOGOUT\r\n")
    bye = c.conn.readline()
    # RFC 9051 §6.1.3: untagged BYE, then the tagged OK, then close.
    assert re.match(rb"^\* BYE \S[^\r\n]*\r\n$", bye), bye
    tagged = c.conn.readline()
    assert re.match(rb"^z9 OK\b[^\r\n]*\r\n$", tagged), tagged
    assert c.conn.wait_closed() == b""
    c.close()


def test_logout_before_login(srv):
    with Imap.open(srv, "imap") as c:
        c.send(b"z1 LOGOUT\r\n")
        assert c.conn.readline().startswith(b"* BYE ")
        assert c.conn.readline().startswith(b"z1 OK")
        assert c.conn.wait_closed() == b""


# --- wrong state, unknown commands, syntax ---------------------------------


@pytest.mark.parametrize("cmd", [
    "SELECT INBOX", "EXAMINE INBOX", "CREATE foo", "DELETE foo",
    'LIST "" "*"', "STATUS INBOX (MESSAGES)", "SUBSCRIBE INBOX",
    "NAMESPACE", "IDLE", "FETCH 1 FLAGS", "UNSELECT", "CLOSE"])
def test_commands_before_login_are_refused(srv, cmd):
    with Imap.open(srv, "imaps") as c:
        r = c.command(cmd)
        assert_refused(r)
        # Nothing about mailboxes leaks out.
        assert not any(re.match(rb"^\* (LIST|STATUS|NAMESPACE|\d+ EXISTS)",
                                l) for l in r.untagged), r.untagged
        c.noop()


@pytest.mark.parametrize("cmd", [
    "FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL", "EXPUNGE",
    "CLOSE", "UNSELECT", "UID FETCH 1 FLAGS", "COPY 1 INBOX"])
def test_selected_state_commands_without_a_mailbox(srv, user, cmd):
    c = login(srv, *user)
    # RFC 9051 §6.4: these are valid only in the selected state.
    assert_refused(c.command(cmd))
    c.noop()
    c.logout()


def test_authenticate_after_login_is_refused(srv, user):
    c = login(srv, *user)
    assert_refused(c.command("AUTHENTICATE PLAIN " + plain_token(*user)))
    c.logout()


def test_unknown_command_is_bad(srv, user):
    with Imap.open(srv, "imaps") as c:
        r = c.command("FROBNICATE now")
        assert r.status == "BAD", r.tagged
        c.login(*user)
        r = c.command("XYZZY")
        assert r.status == "BAD", r.tagged
        # A command missing its arguments is BAD too (RFC 9051 §7.1.5).
        assert c.command("SELECT").status == "BAD"
        assert c.command("LOGIN").status == "BAD"
        c.noop()


@pytest.mark.parametrize("cmd", ["CAPABILITY", "NOOP", "LOGOUT", "NAMESPACE",
                                 "IDLE", "UNSELECT", "CLOSE"])
def test_arguments_to_commands_that_take_none_are_bad(srv, user, cmd):
    c = login(srv, *user)
    c.select("INBOX")
    # RFC 9051 §9: e.g. command-any = "CAPABILITY" / "LOGOUT" / "NOOP";
    # trailing arguments are a syntax error (§7.1.5 BAD), and the
    # command is not carried out.
    r = c.command(cmd + " extra")
    assert r.status == "BAD", r.tagged
    assert not any(l.startswith((b"* BYE", b"+")) for l in r.untagged), \
        r.untagged
    # Still connected and still selected.
    c.noop()
    assert c.command("UNSELECT").status == "OK"
    c.logout()


def test_line_without_command_gets_bad(srv):
    with Imap.open(srv, "imaps") as c:
        c.send(b"lonelytag\r\n")
        line = c.read_line()
        # No command: BAD, tagged when a tag could be read, else untagged.
        assert re.match(rb"^(lonelytag|\*) BAD ", line), line
        c.noop()


# --- literals ----------------------------------------------------------------


def test_synchronizing_literals_get_continuations(srv, user):
    address, password = user
    a, p = address.encode(), password.encode()
    with Imap.open(srv, "imaps") as c:
        c.send(b"l1 LOGIN {%d}\r\n" % len(a))
        cont = c.conn.readline()
        # RFC 9051 §7.5: the server says go before the client sends
        # literal data.
        assert cont.startswith(b"+ ") and cont.endswith(b"\r\n"), cont
        c.send(a + b" {%d}\r\n" % len(p))
        cont = c.conn.readline()
        assert cont.startswith(b"+ "), cont
        c.send(p + b"\r\n")
        r = c.read_reply(b"l1")
        assert r.status == "OK", r.tagged
        c.select("INBOX")


def test_non_synchronizing_literals(srv, user):
    address, password = user
    a, p = address.encode(), password.encode()
    with Imap.open(srv, "imaps") as c:
        caps = imap_caps(c.greeting)
        assert "LITERAL+" in caps or "LITERAL-" in caps, caps
        # RFC 7888: {n+} data follows at once, with no continuation.
        c.send(b"l1 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(a), a, len(p),
                                                         p))
        r = c.read_reply(b"l1")
        assert r.status == "OK", r.tagged
        assert not any(l.startswith(b"+") for l in r.untagged), r.untagged
        c.select("INBOX")


def test_literal_too_large_before_login_is_refused_unread(srv):
    """Before authentication the server takes little
    (imap_literal_max_preauth): a large {n} is refused with a tagged
    NO/BAD instead of a continuation, and the client then sends no data
    (RFC 9051 §7.5: the server may reject instead of sending '+')."""
    with Imap.open(srv, "imaps") as c:
        c.send(b"l1 LOGIN {1000000}\r\n")
        line = c.read_line()
        assert not line.startswith(b"+"), line
        assert re.match(rb"^l1 (NO|BAD) ", line), line
        # The server is not waiting for literal data: the next line is a
        # command.
        c.noop()


def test_literal_too_large_after_login_is_refused_unread(srv, user):
    c = login(srv, *user)
    c.send(b"l1 CREATE {%d}\r\n" % (LITERAL_MAX + 1))
    line = c.read_line()
    assert not line.startswith(b"+"), line
    # RFC 9051 §7.1: TOOBIG.
    assert re.match(rb"^l1 (NO|BAD) \[TOOBIG\]", line), line
    c.noop()
    # A literal within the limit still works, on the same connection.
    c.send(b"l2 CREATE {9}\r\n")
    assert c.conn.readline().startswith(b"+ ")
    c.send(b"LitFolder\r\n")
    assert c.read_reply(b"l2").status == "OK"
    r = c.ok('LIST "" "LitFolder"')
    assert len(r.lines(b"LIST")) == 1, r.untagged
    c.logout()


def test_non_synchronizing_literal_too_large(srv, user):
    """RFC 7888 §4: a {n+} too large is refused with [TOOBIG]: either a
    tagged BAD after which the server skips the data, or BYE and close."""
    c = login(srv, *user)
    n = LITERAL_MAX + 10
    c.send(b"l1 CREATE {%d+}\r\n" % n)
    line = c.read_line()
    assert not line.startswith(b"+"), line
    m = re.match(rb"^(\* BYE|l1 BAD|l1 NO) \[TOOBIG\]", line)
    assert m, line
    if m.group(1) == b"* BYE":
        try:
            c.conn.wait_closed()
        except ConnectionClosed:
            pass
    else:
        c.send(b"x" * n + b"\r\n")
        c.noop()
    c.close()


def test_line_too_long_is_refused_and_session_goes_on(srv, user):
    c = login(srv, *user)
    c.send(b"t1 NOOP " + b"x" * (IMAP_LINE_LENGTH * 3) + b"\r\n")
    line = c.read_line()
    assert re.match(rb"^(t1|\*) BAD ", line), line
    # The rest of the long line is dropped, not read as commands.
    r = c.noop()
    assert r.untagged == [], r.untagged
    c.logout()


def test_overlong_lines_in_authenticate_and_idle(srv, user):
    """The plain lines of AUTHENTICATE and IDLE have the same bound as
    commands; the rest of an overlong one is dropped, never run."""
    with Imap.open(srv, "imaps") as c:
        c.send(b"p1 AUTHENTICATE PLAIN\r\n")
        assert c.conn.readline() == b"+ \r\n"
        c.send(b"A" * (LINE_LENGTH * 3) + b"\r\n")
        r = c.read_reply(b"p1")
        assert r.status in ("BAD", "NO"), r.tagged
        assert c.noop().untagged == []
        c.login(*user)
        c.select("INBOX")
        c.send(b"i1 IDLE\r\n")
        assert c.conn.readline().startswith(b"+")
        c.send(b"DONE" + b"x" * (IMAP_LINE_LENGTH * 3) + b"\r\n")
        r = c.read_reply(b"i1")
        assert r.status in ("BAD", "NO"), r.tagged
        assert c.noop().untagged == []


# --- IDLE --------------------------------------------------------------------


def test_idle_and_done(srv, user):
    c = login(srv, *user)
    assert "IDLE" in imap_caps(c.ok("CAPABILITY").untagged[0])
    c.select("INBOX")
    c.send(b"i1 IDLE\r\n")
    cont = c.conn.readline()
    # RFC 2177 §3 / RFC 9051 §6.3.13: a continuation, then nothing until
    # the mailbox changes or DONE.
    assert cont.startswith(b"+ ") or cont == b"+\r\n", cont
    assert c.conn.pending(0.3) == b""
    c.send(b"DONE\r\n")
    r = c.read_reply(b"i1")
    assert r.status == "OK" and r.untagged == [], (r.tagged, r.untagged)
    c.noop()
    # Anything but DONE ends IDLE with BAD (RFC 9051 §6.3.13 says DONE).
    c.send(b"i2 IDLE\r\n")
    assert c.conn.readline().startswith(b"+")
    c.send(b"NOTDONE\r\n")
    r = c.read_reply(b"i2")
    assert r.status in ("BAD", "NO"), r.tagged
    c.noop()
    c.logout()


def test_idle_done_with_pipelined_command(srv, user):
    c = login(srv, *user)
    c.select("INBOX")
    c.send(b"i1 IDLE\r\n")
    assert c.conn.readline().startswith(b"+")
    # A client may send its next command right behind DONE.
    c.send(b"DONE\r\nn1 NOOP\r\nn2 CAPABILITY\r\n")
    assert c.read_reply(b"i1").status == "OK"
    assert c.read_reply(b"n1").status == "OK"
    r = c.read_reply(b"n2")
    assert r.status == "OK" and r.untagged[0].startswith(b"* CAPABILITY ")
    c.logout()


def test_pipelined_commands_answered_in_order(srv, user):
    address, password = user
    with Imap.open(srv, "imaps") as c:
        c.send(b'p1 LOGIN "%s" "%s"\r\np2 SELECT INBOX\r\np3 NOOP\r\n'
               b"p4 LOGOUT\r\n" % (address.encode(), password.encode()))
        for tag in (b"p1", b"p2", b"p3"):
            assert c.read_reply(tag).status == "OK", tag
        r = c.read_reply(b"p4")
        assert r.status == "OK" and r.untagged[0].startswith(b"* BYE")


def test_idle_in_authenticated_state(srv, user):
    c = login(srv, *user)
    c.send(b"i1 IDLE\r\n")
    assert c.conn.readline().startswith(b"+")
    c.send(b"done\r\n")    # case-insensitive
    assert c.read_reply(b"i1").status == "OK"
    c.logout()


# --- the server ends sessions ------------------------------------------------


def test_shutdown_says_bye_to_idling_and_logged_in_clients(postern_factory,
                                                            default_cert,
                                                            tmp_path):
    srv = start_imap_server(postern_factory, tmp_path, default_cert)
    user = new_user(srv)
    idler = login(srv, *user)
    idler.select("INBOX")
    idler.send(b"i1 IDLE\r\n")
    assert idler.conn.readline().startswith(b"+")
    plain = Imap.open(srv, "imap")
    rc = srv.stop()
    assert rc == 0, srv.log_text()
    # RFC 9051 §7.1.5: BYE when the server is shutting down.
    for c in (idler, plain):
        rest = c.conn.wait_closed(timeout=30)
        assert re.match(rb"^\* BYE \S[^\r\n]*\r\n$", rest), rest
        c.close()


def test_inactive_client_gets_bye_then_close(postern_factory, default_cert,
                                             tmp_path):
    srv = start_imap_server(postern_factory, tmp_path, default_cert,
                            timeouts={"imap": "2s", "shutdown_grace": "1s"})
    user = new_user(srv)
    c = login(srv, *user)
    c.select("INBOX")
    # RFC 9051 §5.4: an autologout is announced with BYE.
    rest = c.conn.wait_closed(timeout=30)
    assert re.match(rb"^\* BYE \S[^\r\n]*\r\n$", rest), rest
    c.close()


@pytest.mark.parametrize("partial", [
    b"d1 LOGIN {40}\r\nsomeone@exa",               # inside a literal
    b"d1 AUTHENTICATE PLAIN\r\n",                   # inside SASL
    b"d1 NOOP an unfinished line",                  # inside a line
])
def test_client_vanishing_mid_command_harms_no_one(srv, user, partial):
    c = Imap.open(srv, "imaps")
    c.send(partial)
    c.conn.pending(0.2)
    c.close()
    # Logged-in sessions vanishing in IDLE and mid-literal too.
    d = login(srv, *user)
    d.select("INBOX")
    d.send(b"i1 IDLE\r\n")
    assert d.conn.readline().startswith(b"+")
    d.close()
    e = login(srv, *user)
    e.send(b"l1 CREATE {100}\r\n")
    assert e.conn.readline().startswith(b"+")
    e.send(b"abc")
    e.close()
    # The server carries on for everyone.
    f = login(srv, *user)
    f.select("INBOX")
    f.logout()
