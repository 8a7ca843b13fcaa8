"""Lockout (issue #4, reworked by issue 15 #12): failures are counted per
(account, client network) -- a /24 for IPv4, a /64 for IPv6 -- and
answered after a growing delay; at lockout_failures that network is
locked out of that account for lockout_duration, and nobody else is. The
account is locked everywhere (written to the store, where `postern user
unlock` lifts it) only when failures come from lockout_networks networks;
a network is locked for every account after lockout_network_failures.
An unknown account is answered exactly like a wrong password, SCRAM
included. SMTP answers a locked login with 454 4.7.0. The server listens
on 127.0.0.1; clients come from 127.x.y.2 addresses, each in its own /24
(next_source_address)."""

import base64
import hashlib
import hmac
import json
import os
import stat
import time

import pytest

from postern_harness import (add_user, admin_ok, next_source_address,
                             run_admin, smtp_auth_plain, smtp_cmd, smtp_open,
                             start_mail_server, ScramSha256Client)

AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_BAD = b"535 5.7.8 Authentication credentials invalid\r\n"
LOCKED = b"454 4.7.0 Too many failed logins: temporarily locked, try " \
    b"again later\r\n"
LISTENERS = [("submissions", "submission", "implicit")]
AUTH = {"lockout_failures": 3, "lockout_window": "1m",
        "lockout_duration": "1m", "lockout_networks": 2,
        "lockout_network_failures": 5}


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("lockout"),
        default_cert, LISTENERS, server={"allow_plaintext_auth": "no"},
        auth=AUTH)


def neighbour(address):
    """Another host of the same /24."""
    return address.rsplit(".", 1)[0] + ".77"


def login(srv, user, password, source):
    """AUTH PLAIN on a connection of its own from source; returns the
    reply lines."""
    conn, _ = smtp_open(srv, "submissions", source=source)
    with conn:
        return smtp_auth_plain(conn, user, password).raw


def show_json(srv, user):
    return json.loads(admin_ok(srv.admin_config, "user", "show", user,
                               "--json"))


def test_a_network_is_locked_out_of_one_account_not_the_owner(srv):
    user, pw = "locky@example.test", "locky-Secret-1"
    other_user, other_pw = "neighbour@example.test", "neighbour-Secret-1"
    add_user(srv.admin_config, user, pw)
    add_user(srv.admin_config, other_user, other_pw)
    attacker, elsewhere = next_source_address(), next_source_address()

    for i in range(3):
        assert login(srv, user, "guess-%d" % i, attacker) == [AUTH_BAD], i
    # The right password no longer helps from the attacker's network ...
    assert login(srv, user, pw, attacker) == [LOCKED]
    assert login(srv, user, pw, neighbour(attacker)) == [LOCKED]
    # ... but the owner elsewhere is not locked out,
    assert login(srv, user, pw, elsewhere) == [AUTH_OK]
    # other accounts are not locked for that network,
    assert login(srv, other_user, other_pw, attacker) == [AUTH_OK]
    # and the account itself is not locked.
    assert show_json(srv, user)["locked_until"] == 0
    # The owner's success does not lift the attacker's lock.
    assert login(srv, user, pw, attacker) == [LOCKED]


def test_account_locked_everywhere_when_many_networks_fail(srv):
    user, pw = "spread@example.test", "spread-Secret-1"
    add_user(srv.admin_config, user, pw)
    first, second, third = (next_source_address() for _ in range(3))
    for source in (first, second):
        for i in range(3):
            assert login(srv, user, "guess-%d" % i, source) == [AUTH_BAD]
    assert login(srv, user, pw, third) == [LOCKED]

    # The lock is in the store, where the admin command sees it.
    shown = show_json(srv, user)
    now = time.time()
    assert now < shown["locked_until"] <= now + 60 + 5, shown
    text = admin_ok(srv.admin_config, "user", "show", user)
    assert "locked:       yes (temporarily)" in text, text

    admin_ok(srv.admin_config, "user", "unlock", user)
    assert show_json(srv, user)["locked_until"] == 0
    # Unlocked: the user gets in from a network that did not attack ...
    assert login(srv, user, pw, third) == [AUTH_OK]
    # ... while the attacking networks stay locked until their lock ends.
    assert login(srv, user, pw, first) == [LOCKED]


def test_locked_account_is_locked_for_scram_too(srv):
    user, pw = "scrammy@example.test", "scrammy-Secret-1"
    add_user(srv.admin_config, user, pw)
    for source in (next_source_address(), next_source_address()):
        for i in range(3):
            assert login(srv, user, "guess-%d" % i, source) == [AUTH_BAD]
    conn, _ = smtp_open(srv, "submissions", source=next_source_address())
    with conn:
        c = ScramSha256Client(user, pw)
        r = smtp_cmd(conn, "AUTH SCRAM-SHA-256 " +
                     base64.b64encode(c.first().encode()).decode())
        assert r.code == 334, r.raw
        r = smtp_cmd(conn, base64.b64encode(c.final(
            base64.b64decode(r.lines[0])).encode()).decode(), timeout=15)
        if r.code == 334:
            r = smtp_cmd(conn, "", timeout=15)
        assert r.raw == [LOCKED]


def test_failures_below_the_limit_do_not_lock_and_success_resets(srv):
    user, pw = "careful@example.test", "careful-Secret-1"
    add_user(srv.admin_config, user, pw)
    a, b, c = (next_source_address() for _ in range(3))
    for i in range(2):
        assert login(srv, user, "typo-%d" % i, a) == [AUTH_BAD]
    assert login(srv, user, pw, a) == [AUTH_OK]
    # The success cleared the account's count: two more failures (from
    # another address) still do not lock it.
    for i in range(2):
        assert login(srv, user, "typo-b%d" % i, b) == [AUTH_BAD]
    assert login(srv, user, pw, c) == [AUTH_OK]


def test_failures_are_answered_after_a_growing_delay(srv):
    user, pw = "slow@example.test", "slow-Secret-1"
    add_user(srv.admin_config, user, pw)
    source = next_source_address()
    conn, _ = smtp_open(srv, "submissions", source=source)
    with conn:
        times = []
        for i in range(2):
            t0 = time.monotonic()
            assert smtp_auth_plain(conn, user, "bad-%d" % i).raw == \
                [AUTH_BAD]
            times.append(time.monotonic() - t0)
    assert times[0] >= 0.2, times
    assert times[1] >= 0.45 and times[1] > times[0], times


def test_one_network_trying_many_accounts_is_locked_for_all(srv):
    """Password spraying: lockout_network_failures (5) failures from one
    network, on five names, lock that network for every account."""
    source = next_source_address()
    for i in range(5):
        assert login(srv, "ghost%d@example.test" % i, "x", source) == \
            [AUTH_BAD]
    user, pw = "innocent@example.test", "innocent-Secret-1"
    add_user(srv.admin_config, user, pw)
    assert login(srv, user, pw, neighbour(source)) == [LOCKED]
    assert login(srv, user, pw, next_source_address()) == [AUTH_OK]


def test_unknown_account_is_answered_like_a_wrong_password(srv):
    """The same sequence of failures, on a real account and on a name no
    account has, gets the same answers: the lock of one network, then the
    lock everywhere once two networks failed."""
    real = "really@example.test"
    add_user(srv.admin_config, real, "really-Secret-1")
    answers = {}
    for user in (real, "nobody-here@example.test"):
        nets = [next_source_address() for _ in range(3)]
        seen = []
        for source in nets[:2]:
            seen += [login(srv, user, "wrong-%d" % i, source)[0]
                     for i in range(3)]
            seen.append(login(srv, user, "wrong-x", source)[0])
        seen.append(login(srv, user, "wrong-y", nets[2])[0])
        answers[user] = seen
    # The sixth failure (second network, third try) locks the name.
    want = [AUTH_BAD] * 3 + [LOCKED] + [AUTH_BAD] * 3 + [LOCKED, LOCKED]
    assert answers[real] == want, answers
    assert answers["nobody-here@example.test"] == want, answers


def scram_server_first(srv, user, source=None):
    conn, _ = smtp_open(srv, "submissions", source=source)
    with conn:
        c = ScramSha256Client(user, "whatever")
        r = smtp_cmd(conn, "AUTH SCRAM-SHA-256 " +
                     base64.b64encode(c.first().encode()).decode())
        assert r.code == 334, r.raw
        first = base64.b64decode(r.lines[0]).decode()
        attrs = dict(kv.split("=", 1) for kv in first.split(","))
        smtp_cmd(conn, "*")
        return attrs["s"], int(attrs["i"])


def test_scram_salt_of_an_unknown_account_looks_real_and_is_secret(
        postern_factory, default_cert, tmp_path):
    srv = start_mail_server(
        postern_factory, tmp_path / "one", default_cert, LISTENERS,
        users=[("known@example.test", "known-Secret-1")])
    real_salt, real_iter = scram_server_first(srv, "known@example.test")
    fake_salt, fake_iter = scram_server_first(srv, "unknown@example.test")
    # Same shape as a real account's: 16 bytes of salt, the same count.
    assert len(base64.b64decode(fake_salt)) == \
        len(base64.b64decode(real_salt)) == 16
    assert fake_iter == real_iter == 4096
    # Stable: the same on every try, whatever the case of the name.
    assert scram_server_first(srv, "Unknown@Example.test")[0] == fake_salt
    # Not the public constant anyone could compute (the code before).
    public = base64.b64encode(hmac.new(
        b"postern-scram", b"unknown@example.test",
        hashlib.sha256).digest()[:16]).decode()
    assert fake_salt != public
    # The secret it comes from: in the data directory, mode 0600.
    secret = srv.mail_data / "auth.secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert os.stat(secret).st_size == 32
    # The same after a restart on the same data directory ...
    text = srv.config_path.read_text()
    assert srv.stop() == 0
    again = postern_factory(config_text=text, listeners=LISTENERS)
    assert scram_server_first(again, "unknown@example.test")[0] == fake_salt
    # ... and different on another server.
    other = start_mail_server(postern_factory, tmp_path / "two",
                              default_cert, LISTENERS)
    assert scram_server_first(other, "unknown@example.test")[0] != fake_salt


def test_admin_lock_and_unlock(srv):
    user, pw = "held@example.test", "held-Secret-1"
    add_user(srv.admin_config, user, pw)
    admin_ok(srv.admin_config, "user", "lock", user, "5")
    shown = show_json(srv, user)
    assert shown["locked_until"] > time.time() + 4 * 60, shown
    r = login(srv, user, pw, next_source_address())
    assert r[0].startswith(b"454 4.7.0 ") and b"locked" in r[0], r
    admin_ok(srv.admin_config, "user", "unlock", user)
    assert login(srv, user, pw, next_source_address()) == [AUTH_OK]


def test_lock_without_minutes_and_bad_minutes(srv):
    user, pw = "forever@example.test", "forever-Secret-1"
    add_user(srv.admin_config, user, pw)
    r = run_admin(srv.admin_config, "user", "lock", user, "soon")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "soon" in r.stderr, r.stderr
    admin_ok(srv.admin_config, "user", "lock", user)
    assert show_json(srv, user)["locked_until"] > time.time() + 86400 * 365
    assert login(srv, user, pw, next_source_address()) == [LOCKED]


def test_lock_expires_after_lockout_duration(postern_factory, default_cert,
                                             tmp_path):
    quick = start_mail_server(
        postern_factory, tmp_path / "quick", default_cert,
        [("submissions", "submission", "implicit")],
        users=[("brief@example.test", "brief-Secret-1")],
        auth={"lockout_failures": 2, "lockout_window": "1m",
              "lockout_duration": "2s"})
    source = next_source_address()
    for i in range(2):
        assert login(quick, "brief@example.test", "no-%d" % i, source) == \
            [AUTH_BAD]
    assert login(quick, "brief@example.test", "brief-Secret-1", source) == \
        [LOCKED]
    time.sleep(2.5)
    assert login(quick, "brief@example.test", "brief-Secret-1", source) == \
        [AUTH_OK]
