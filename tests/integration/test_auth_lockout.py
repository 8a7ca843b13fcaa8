"""Lockout (issue #4): failures are counted per client address and per
account, each answered after a growing delay; at lockout_failures the
address and the account are locked for lockout_duration. SMTP answers a
locked login with 454 4.7.0 and a sentence saying so. `postern user
unlock` lifts the account's lock (written in the store); the address lock
lives in the server's memory and holds until it expires (src/auth/auth.c).
The server listens on 127.0.0.1; clients vary their address with
127.0.0.x source addresses."""

import json
import time

import pytest

from postern_harness import (add_user, admin_ok, next_source_address,
                             run_admin, smtp_auth_plain, smtp_cmd, smtp_open,
                             start_mail_server, ScramSha256Client)

AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_BAD = b"535 5.7.8 Authentication credentials invalid\r\n"
LOCKED = b"454 4.7.0 Too many failed logins: temporarily locked, try " \
    b"again later\r\n"


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("lockout"),
        default_cert, [("submissions", "submission", "implicit")],
        server={"allow_plaintext_auth": "no"},
        auth={"lockout_failures": 3, "lockout_window": "1m",
              "lockout_duration": "1m"})


def login(srv, user, password, source):
    """AUTH PLAIN on a connection of its own from source; returns the
    reply lines."""
    conn, _ = smtp_open(srv, "submissions", source=source)
    with conn:
        return smtp_auth_plain(conn, user, password).raw


def show_json(srv, user):
    return json.loads(admin_ok(srv.admin_config, "user", "show", user,
                               "--json"))


def test_lockout_reached_and_lifted_by_unlock(srv):
    user, pw = "locky@example.test", "locky-Secret-1"
    other_user, other_pw = "neighbour@example.test", "neighbour-Secret-1"
    add_user(srv.admin_config, user, pw)
    add_user(srv.admin_config, other_user, other_pw)
    attacker, elsewhere = next_source_address(), next_source_address()

    for i in range(3):
        assert login(srv, user, "guess-%d" % i, attacker) == [AUTH_BAD], i
    # The right password no longer helps, from the same address ...
    assert login(srv, user, pw, attacker) == [LOCKED]
    # ... nor from another one: the account is locked.
    assert login(srv, user, pw, elsewhere) == [LOCKED]
    # The address is locked for every account.
    assert login(srv, other_user, other_pw, attacker) == [LOCKED]

    # The lock is in the store, where the admin command sees it.
    shown = show_json(srv, user)
    now = time.time()
    assert now < shown["locked_until"] <= now + 60 + 5, shown
    text = admin_ok(srv.admin_config, "user", "show", user)
    assert "locked:       yes (temporarily)" in text, text

    admin_ok(srv.admin_config, "user", "unlock", user)
    assert show_json(srv, user)["locked_until"] == 0
    # Unlocked: the user gets in from an address that did not attack ...
    assert login(srv, user, pw, elsewhere) == [AUTH_OK]
    # ... while the attacking address stays locked until the lock expires.
    assert login(srv, user, pw, attacker) == [LOCKED]


def test_locked_account_is_locked_for_scram_too(srv):
    user, pw = "scrammy@example.test", "scrammy-Secret-1"
    add_user(srv.admin_config, user, pw)
    attacker, elsewhere = next_source_address(), next_source_address()
    for i in range(3):
        assert login(srv, user, "guess-%d" % i, attacker) == [AUTH_BAD]
    conn, _ = smtp_open(srv, "submissions", source=elsewhere)
    with conn:
        import base64
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


def test_unknown_users_count_against_the_address(srv):
    source = next_source_address()
    for i in range(3):
        assert login(srv, "ghost%d@example.test" % i, "x", source) == \
            [AUTH_BAD]
    user, pw = "innocent@example.test", "innocent-Secret-1"
    add_user(srv.admin_config, user, pw)
    assert login(srv, user, pw, source) == [LOCKED]
    assert login(srv, user, pw, next_source_address()) == [AUTH_OK]


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
