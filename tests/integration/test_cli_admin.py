"""The admin command (issue #4) on the configuration of a running server:
domains, users, aliases, catch-all and app passwords, round trip through
the text and --json outputs, the errors (message naming what is wrong,
exit 1; bad usage exit 2), passwords only from stdin, the server seeing
every change at once, and `store check` after deliveries."""

import json
import re
import subprocess
import time

import pytest

from postern_harness import (QUEUED_RE, add_user, admin_ok, postern_bin,
                             run_admin, smtp_auth_plain, smtp_cmd,
                             smtp_open, smtp_transaction, start_mail_server,
                             next_source_address)
from store_peek import StorePeek

AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_BAD = b"535 5.7.8 Authentication credentials invalid\r\n"


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    s = start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("cli"), default_cert,
        [("smtp", "smtp", "starttls"),
         ("submissions", "submission", "implicit")],
        domains=[], auth={"lockout_failures": 1000})
    s.peek = StorePeek(s.mail_data)
    return s


def admin(srv, *args, stdin_text=None):
    return run_admin(srv.admin_config, *args, stdin_text=stdin_text)


def fails(r, status, *words):
    """r failed with status, one message on stderr containing words."""
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "no message on stderr"
    for w in words:
        assert w in r.stderr, (w, r.stderr)


def can_login(srv, user, password):
    conn, _ = smtp_open(srv, "submissions", source=next_source_address())
    with conn:
        return smtp_auth_plain(conn, user, password).raw


def rcpt_reply(srv, rcpt):
    conn, _ = smtp_open(srv, "smtp")
    with conn:
        smtp_cmd(conn, "MAIL FROM:<s@remote.test>")
        return smtp_cmd(conn, "RCPT TO:<%s>" % rcpt).raw[0]


# --- domains -----------------------------------------------------------------


def test_domain_add_list_del(srv):
    assert admin_ok(srv.admin_config, "domain", "add", "one.test") == \
        "domain one.test added\n"
    admin_ok(srv.admin_config, "domain", "add", "two.test")
    listed = admin_ok(srv.admin_config, "domain", "list").split()
    assert "one.test" in listed and "two.test" in listed, listed
    as_json = json.loads(admin_ok(srv.admin_config, "domain", "list",
                                  "--json"))
    assert isinstance(as_json, list) and "one.test" in as_json, as_json
    assert admin_ok(srv.admin_config, "domain", "del", "two.test") == \
        "domain two.test deleted\n"
    assert "two.test" not in json.loads(
        admin_ok(srv.admin_config, "domain", "list", "--json"))


def test_domain_add_twice_fails(srv):
    admin_ok(srv.admin_config, "domain", "add", "twice.test")
    fails(admin(srv, "domain", "add", "twice.test"), 1, "twice.test",
          "exists")


@pytest.mark.parametrize("name", ["bad..name.test", "x.-dash.test",
                                  "space in.test", "trailing-.test"])
def test_domain_add_of_an_invalid_name_fails(srv, name):
    fails(admin(srv, "domain", "add", name), 1, name)
    assert name not in admin_ok(srv.admin_config, "domain", "list")


def test_domain_names_are_case_insensitive(srv):
    admin_ok(srv.admin_config, "domain", "add", "Mixed.Case.TEST")
    assert "mixed.case.test" in admin_ok(srv.admin_config, "domain",
                                         "list").split()
    fails(admin(srv, "domain", "add", "mixed.case.test"), 1, "exists")


def test_domain_del_of_an_unknown_domain_fails(srv):
    fails(admin(srv, "domain", "del", "never.test"), 1, "never.test",
          "no such domain")


def test_domain_del_is_refused_while_accounts_exist(srv):
    admin_ok(srv.admin_config, "domain", "add", "busy.test")
    add_user(srv.admin_config, "someone@busy.test", "pw-Busy-1")
    fails(admin(srv, "domain", "del", "busy.test"), 1, "busy.test",
          "accounts")
    assert "busy.test" in admin_ok(srv.admin_config, "domain",
                                   "list").split()
    admin_ok(srv.admin_config, "user", "del", "someone@busy.test")
    admin_ok(srv.admin_config, "domain", "del", "busy.test")
    assert "busy.test" not in admin_ok(srv.admin_config, "domain",
                                       "list").split()


def test_domain_added_while_running_is_ours_at_once(srv):
    assert rcpt_reply(srv, "x@late.test").startswith(b"554 5.7.1 "), \
        "late.test should not be ours yet"
    admin_ok(srv.admin_config, "domain", "add", "late.test")
    assert rcpt_reply(srv, "x@late.test").startswith(b"550 5.1.1 ")


@pytest.mark.parametrize("args", [("domain",), ("domain", "frobnicate"),
                                  ("domain", "add"),
                                  ("domain", "add", "a.test", "b.test")])
def test_domain_bad_usage_exits_2(srv, args):
    r = admin(srv, *args) if len(args) > 1 else subprocess.run(
        [postern_bin(), *args], capture_output=True, text=True, timeout=20,
        stdin=subprocess.DEVNULL,
        env=no_config_env(srv.admin_config.parent))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "usage" in r.stderr, r.stderr


# --- users -------------------------------------------------------------------


@pytest.fixture(scope="module")
def alice(srv):
    admin_ok(srv.admin_config, "domain", "add", "example.test")
    out = add_user(srv.admin_config, "alice@example.test", "alice-Pw-1",
                   "name=Alice Example", "quota=1M")
    assert out == "user alice@example.test added\n", out
    return "alice@example.test"


def test_user_show_json_has_every_field(srv, alice):
    j = json.loads(admin_ok(srv.admin_config, "user", "show", alice,
                            "--json"))
    assert j["address"] == alice
    assert j["name"] == "Alice Example"
    assert j["quota_bytes"] == 1048576
    assert j["quota_messages"] == 0
    assert j["enabled"] is True
    assert (j["imap"], j["pop3"], j["submission"]) == ("default",) * 3
    assert j["forward"] is None
    assert j["locked_until"] == 0
    assert abs(j["created"] - time.time()) < 300
    # Never the password or its hash.
    text = json.dumps(j)
    assert "alice-Pw-1" not in text and "$y$" not in text and \
        "SCRAM" not in text, text


def test_user_show_text(srv, alice):
    out = admin_ok(srv.admin_config, "user", "show", alice)
    assert re.search(r"^address: +alice@example\.test$", out, re.M), out
    assert re.search(r"^name: +Alice Example$", out, re.M), out
    assert re.search(r"^locked: +no$", out, re.M), out
    assert "alice-Pw-1" not in out


def test_user_list_text_and_json(srv, alice):
    add_user(srv.admin_config, "zed@example.test", "zed-Pw-1",
             "enabled=no")
    out = admin_ok(srv.admin_config, "user", "list")
    lines = out.splitlines()
    assert "alice@example.test" in lines, out
    assert "zed@example.test (disabled)" in lines, out
    j = json.loads(admin_ok(srv.admin_config, "user", "list", "--json"))
    by = {u["address"]: u for u in j}
    assert by["alice@example.test"]["name"] == "Alice Example"
    assert by["zed@example.test"]["enabled"] is False
    only = json.loads(admin_ok(srv.admin_config, "user", "list",
                               "example.test", "--json"))
    assert {u["address"] for u in only} >= {"alice@example.test",
                                            "zed@example.test"}
    assert all(u["address"].endswith("@example.test") for u in only)


def test_user_list_of_an_unknown_domain_fails(srv, alice):
    fails(admin(srv, "user", "list", "nowhere.test"), 1, "no such domain")


def test_new_user_can_log_in_at_once(srv, alice):
    assert can_login(srv, alice, "alice-Pw-1") == [AUTH_OK]


def test_disabled_user_cannot_log_in(srv, alice):
    # zed was added with enabled=no; the client hears only "invalid".
    add_user(srv.admin_config, "yve@example.test", "yve-Pw-1")
    assert can_login(srv, "yve@example.test", "yve-Pw-1") == [AUTH_OK]
    admin_ok(srv.admin_config, "user", "set", "yve@example.test",
             "enabled=no")
    assert can_login(srv, "yve@example.test", "yve-Pw-1") == [AUTH_BAD]
    admin_ok(srv.admin_config, "user", "set", "yve@example.test",
             "enabled=yes")
    assert can_login(srv, "yve@example.test", "yve-Pw-1") == [AUTH_OK]


def test_user_add_duplicate_fails(srv, alice):
    fails(admin(srv, "user", "add", alice, stdin_text="other-Pw-1\n"), 1,
          alice, "exists")
    # The first password still works.
    assert can_login(srv, alice, "alice-Pw-1") == [AUTH_OK]


def test_user_add_in_an_unknown_domain_fails(srv, alice):
    fails(admin(srv, "user", "add", "bob@nowhere.test",
                stdin_text="bob-Pw-1\n"), 1, "nowhere.test", "domain")


def test_user_add_without_an_at_sign_fails(srv, alice):
    r = admin(srv, "user", "add", "justaname", stdin_text="pw-Pw-1\n")
    assert r.returncode in (1, 2), r
    assert "justaname" in r.stderr, r.stderr


@pytest.mark.parametrize("key,word", [("colour=blue", "colour"),
                                      ("quota=lots", "quota"),
                                      ("enabled=maybe", "enabled"),
                                      ("pop3=sometimes", "pop3"),
                                      ("forward=nobody", "forward"),
                                      ("name", "name")])
def test_user_add_with_a_bad_key_exits_2_and_adds_nothing(srv, alice, key,
                                                          word):
    addr = "bad-%s@example.test" % word
    fails(admin(srv, "user", "add", addr, key, stdin_text="pw-Pw-1\n"), 2,
          word)
    fails(admin(srv, "user", "show", addr), 1, "no such user")


@pytest.mark.parametrize("key", ["quota=lots", "colour=blue"])
def test_user_set_with_a_bad_key_exits_2_and_changes_nothing(srv, alice,
                                                            key):
    before = json.loads(admin_ok(srv.admin_config, "user", "show", alice,
                                 "--json"))
    fails(admin(srv, "user", "set", alice, "name=Changed", key), 2,
          key.split("=")[0])
    after = json.loads(admin_ok(srv.admin_config, "user", "show", alice,
                                "--json"))
    assert after == before


def test_password_is_never_taken_from_argv(srv, alice):
    addr = "argv@example.test"
    # A password given as an argument is refused, as a key or alone.
    for extra in (["password=Secret-1"], ["Secret-1"], ["--password",
                                                         "Secret-1"]):
        r = admin(srv, "user", "add", addr, *extra)
        assert r.returncode == 2, (extra, r.returncode, r.stderr)
        fails(admin(srv, "user", "show", addr), 1, "no such user")
    r = admin(srv, "user", "passwd", alice, "New-Secret-1")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert can_login(srv, alice, "alice-Pw-1") == [AUTH_OK]


def test_user_add_without_a_password_on_stdin_fails(srv, alice):
    fails(admin(srv, "user", "add", "nopw@example.test"), 1, "password")
    fails(admin(srv, "user", "add", "nopw@example.test", stdin_text="\n"),
          1, "password")
    fails(admin(srv, "user", "show", "nopw@example.test"), 1,
          "no such user")


def test_user_passwd_takes_effect_at_once(srv, alice):
    add_user(srv.admin_config, "pat@example.test", "old-Pw-1")
    assert can_login(srv, "pat@example.test", "old-Pw-1") == [AUTH_OK]
    out = admin_ok(srv.admin_config, "user", "passwd", "pat@example.test",
                   stdin_text="new-Pw-2\n")
    assert "pat@example.test" in out
    assert can_login(srv, "pat@example.test", "new-Pw-2") == [AUTH_OK]
    # Also not through the cache of recent successes.
    assert can_login(srv, "pat@example.test", "old-Pw-1") == [AUTH_BAD]


def test_user_set_switches_and_back(srv, alice):
    admin_ok(srv.admin_config, "user", "set", alice, "pop3=off",
             "imap=on", "submission=off", "name=Alice E.",
             "quota_messages=100", "forward=alice@elsewhere.test",
             "keep_copy=yes")
    j = json.loads(admin_ok(srv.admin_config, "user", "show", alice,
                            "--json"))
    assert (j["pop3"], j["imap"], j["submission"]) == ("off", "on", "off")
    assert j["name"] == "Alice E."
    assert j["quota_messages"] == 100
    assert j["forward"] == "alice@elsewhere.test"
    assert j["keep_copy"] is True
    r = can_login(srv, alice, "alice-Pw-1")
    assert r[0].startswith(b"535 ") and b"disabled" in r[0], r
    admin_ok(srv.admin_config, "user", "set", alice, "pop3=default",
             "imap=default", "submission=default", "name=Alice Example",
             "quota_messages=0", "forward=none", "keep_copy=no")
    j = json.loads(admin_ok(srv.admin_config, "user", "show", alice,
                            "--json"))
    assert (j["pop3"], j["imap"], j["submission"]) == ("default",) * 3
    assert j["forward"] is None and j["name"] == "Alice Example"
    assert can_login(srv, alice, "alice-Pw-1") == [AUTH_OK]


def test_user_lock_unlock(srv, alice):
    add_user(srv.admin_config, "lou@example.test", "lou-Pw-1")
    admin_ok(srv.admin_config, "user", "lock", "lou@example.test")
    out = admin_ok(srv.admin_config, "user", "show", "lou@example.test")
    assert re.search(r"^locked: +yes", out, re.M), out
    r = can_login(srv, "lou@example.test", "lou-Pw-1")
    assert r[0].startswith(b"454 4.7.0 ") and b"locked" in r[0], r
    admin_ok(srv.admin_config, "user", "unlock", "lou@example.test")
    assert json.loads(admin_ok(srv.admin_config, "user", "show",
                               "lou@example.test", "--json")
                      )["locked_until"] == 0
    assert can_login(srv, "lou@example.test", "lou-Pw-1") == [AUTH_OK]


def test_user_del(srv, alice):
    add_user(srv.admin_config, "gone@example.test", "gone-Pw-1")
    out = admin_ok(srv.admin_config, "user", "del", "gone@example.test")
    assert out == "user gone@example.test deleted\n", out
    fails(admin(srv, "user", "show", "gone@example.test"), 1,
          "gone@example.test", "no such user")
    fails(admin(srv, "user", "del", "gone@example.test"), 1,
          "no such user")
    assert can_login(srv, "gone@example.test", "gone-Pw-1") == [AUTH_BAD]
    assert rcpt_reply(srv, "gone@example.test").startswith(b"550 5.1.1 ")


@pytest.mark.parametrize("verb", ["show", "passwd", "unlock", "lock",
                                  "set"])
def test_user_commands_on_an_unknown_user_fail(srv, alice, verb):
    args = ["user", verb, "nobody@example.test"]
    if verb == "set":
        args.append("name=X")
    fails(admin(srv, *args, stdin_text="pw-Pw-1\n"), 1,
          "nobody@example.test", "no such user")


@pytest.mark.parametrize("args", [("user",), ("user", "frobnicate", "x"),
                                  ("user", "show"),
                                  ("user", "set", "alice@example.test"),
                                  ("user", "del", "a@x.test", "b@x.test")])
def test_user_bad_usage_exits_2(srv, alice, args):
    r = admin(srv, *args) if len(args) > 1 else subprocess.run(
        [postern_bin(), *args], capture_output=True, text=True, timeout=20,
        stdin=subprocess.DEVNULL,
        env=no_config_env(srv.admin_config.parent))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "usage" in r.stderr, r.stderr


# --- aliases and catch-all ---------------------------------------------------


def test_alias_add_list_del(srv, alice):
    out = admin_ok(srv.admin_config, "alias", "add", "info@example.test",
                   alice)
    assert out == "alias info@example.test -> alice@example.test added\n"
    admin_ok(srv.admin_config, "alias", "add", "info@example.test",
             "boss@external.test")
    lines = admin_ok(srv.admin_config, "alias", "list").splitlines()
    assert "info@example.test -> alice@example.test" in lines, lines
    assert "info@example.test -> boss@external.test" in lines, lines
    j = json.loads(admin_ok(srv.admin_config, "alias", "list", "--json"))
    assert {"address": "info@example.test",
            "target": "alice@example.test"} in j, j
    # Mail to the alias reaches alice.
    assert rcpt_reply(srv, "info@example.test") == \
        b"250 2.1.5 Recipient OK\r\n"
    # Remove one target, then the alias.
    admin_ok(srv.admin_config, "alias", "del", "info@example.test",
             "boss@external.test")
    j = json.loads(admin_ok(srv.admin_config, "alias", "list", "--json"))
    assert [e["target"] for e in j if e["address"] == "info@example.test"] \
        == ["alice@example.test"], j
    admin_ok(srv.admin_config, "alias", "del", "info@example.test")
    assert all(e["address"] != "info@example.test" for e in json.loads(
        admin_ok(srv.admin_config, "alias", "list", "--json")))
    assert rcpt_reply(srv, "info@example.test").startswith(b"550 5.1.1 ")
    fails(admin(srv, "alias", "del", "info@example.test"), 1,
          "info@example.test", "no such alias")


def test_alias_add_twice_fails(srv, alice):
    admin_ok(srv.admin_config, "alias", "add", "sales@example.test", alice)
    fails(admin(srv, "alias", "add", "sales@example.test", alice), 1,
          "sales@example.test", "exists")


def test_alias_in_a_foreign_domain_fails(srv, alice):
    fails(admin(srv, "alias", "add", "info@foreign.test", alice), 1,
          "info@foreign.test", "domain")


def test_alias_loop_is_refused(srv, alice):
    admin_ok(srv.admin_config, "alias", "add", "loop-a@example.test",
             "loop-b@example.test")
    r = admin(srv, "alias", "add", "loop-b@example.test",
              "loop-a@example.test")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "loop-b@example.test" in r.stderr, r.stderr


def test_catchall_set_and_removed(srv, alice):
    tok = "catch-%d" % time.monotonic_ns()
    assert rcpt_reply(srv, "%s@example.test" % tok).startswith(b"550 5.1.1")
    out = admin_ok(srv.admin_config, "domain", "catchall", "example.test",
                   alice)
    assert out == "catch-all of example.test: alice@example.test\n", out
    try:
        conn, _ = smtp_open(srv, "smtp")
        with conn:
            r = smtp_transaction(conn, "s@remote.test",
                                 ["%s@example.test" % tok],
                                 b"Subject: " + tok.encode() +
                                 b"\r\n\r\ncaught\r\n")
            assert QUEUED_RE.match(r.raw[0]), r.raw
        assert len(srv.peek.find(alice, tok.encode())) == 1
    finally:
        out = admin_ok(srv.admin_config, "domain", "catchall",
                       "example.test", "none")
    assert out == "catch-all of example.test: none\n", out
    assert rcpt_reply(srv, "%s@example.test" % tok).startswith(b"550 5.1.1")


def test_catchall_of_an_unknown_domain_fails(srv, alice):
    fails(admin(srv, "domain", "catchall", "never.test", alice), 1,
          "never.test", "no such domain")


# --- app passwords -----------------------------------------------------------

APP_PW_RE = re.compile(r"\b([a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4})\b")


def test_app_password_round_trip(srv, alice):
    add_user(srv.admin_config, "ann@example.test", "ann-Pw-1")
    out = admin_ok(srv.admin_config, "app-password", "add",
                   "ann@example.test", "phone")
    m = APP_PW_RE.search(out)
    assert m, out
    app = m.group(1)
    # --json add gives it too, once per add.
    j = json.loads(admin_ok(srv.admin_config, "app-password", "add",
                            "ann@example.test", "laptop",
                            "protocols=imap,submission", "--json"))
    assert j["name"] == "laptop" and APP_PW_RE.fullmatch(j["password"]), j
    listed = admin_ok(srv.admin_config, "app-password", "list",
                      "ann@example.test")
    assert app not in listed and j["password"] not in listed, listed
    lines = {l.split()[0]: l for l in listed.splitlines()}
    assert set(lines) == {"phone", "laptop"}, listed
    assert "protocols=all" in lines["phone"], listed
    assert "protocols=imap,submission" in lines["laptop"], listed
    assert "last_used=never" in lines["phone"], listed
    source = next_source_address()
    conn, _ = smtp_open(srv, "submissions", source=source)
    with conn:
        assert smtp_auth_plain(conn, "ann@example.test", app).raw == \
            [AUTH_OK]
    listed = json.loads(admin_ok(srv.admin_config, "app-password", "list",
                                 "ann@example.test", "--json"))
    by = {e["name"]: e for e in listed}
    assert abs(by["phone"]["last_used"] - time.time()) < 120, by
    assert by["phone"]["last_address"] == source, by
    assert by["laptop"]["last_used"] == 0, by
    assert abs(by["phone"]["created"] - time.time()) < 300, by
    text = admin_ok(srv.admin_config, "app-password", "list",
                    "ann@example.test")
    assert "from=%s" % source in text, text
    out = admin_ok(srv.admin_config, "app-password", "revoke",
                   "ann@example.test", "phone")
    assert "phone" in out, out
    assert can_login(srv, "ann@example.test", app) == [AUTH_BAD]
    assert [e["name"] for e in json.loads(admin_ok(
        srv.admin_config, "app-password", "list", "ann@example.test",
        "--json"))] == ["laptop"]


def test_app_password_errors(srv, alice):
    add_user(srv.admin_config, "ben@example.test", "ben-Pw-1")
    admin_ok(srv.admin_config, "app-password", "add", "ben@example.test",
             "phone")
    fails(admin(srv, "app-password", "add", "ben@example.test", "phone"),
          1, "phone")
    fails(admin(srv, "app-password", "revoke", "ben@example.test",
                "watch"), 1, "watch", "no app password")
    fails(admin(srv, "app-password", "add", "nobody@example.test", "x"), 1,
          "nobody@example.test", "no such user")
    fails(admin(srv, "app-password", "add", "ben@example.test", "t",
                "protocols=gopher"), 2, "protocols")
    r = admin(srv, "app-password", "frobnicate", "ben@example.test")
    assert r.returncode == 2 and "usage" in r.stderr, r


# --- help --------------------------------------------------------------------


def no_config_env(tmp_path):
    """An environment whose default configuration does not exist, so that
    a command run without -c never touches the machine's own
    /etc/postern/postern.conf and its data directory."""
    import os
    env = dict(os.environ)
    env["POSTERN_CONFIG"] = str(tmp_path / "absent" / "postern.conf")
    return env


def test_top_level_help_lists_the_admin_commands(postern_binary, tmp_path):
    r = subprocess.run([postern_bin(), "--help"], capture_output=True,
                       text=True, timeout=20, env=no_config_env(tmp_path))
    assert r.returncode == 0, r
    for cmd in ("domain", "user", "alias", "app-password", "store"):
        assert re.search(r"^\s+%s\s" % cmd, r.stdout, re.M), (cmd, r.stdout)


@pytest.mark.parametrize("cmd,verb", [("domain", "list"), ("user", "list"),
                                      ("alias", "list"),
                                      ("app-password", "list"),
                                      ("store", "check")])
def test_help_on_every_level(postern_binary, tmp_path, cmd, verb):
    """--help needs no configuration (none exists here)."""
    for argv in ([cmd, "--help"], [cmd, verb, "--help"]):
        r = subprocess.run([postern_bin(), *argv], capture_output=True,
                           text=True, timeout=20, stdin=subprocess.DEVNULL,
                           env=no_config_env(tmp_path))
        assert r.returncode == 0, (argv, r.returncode, r.stderr)
        assert "usage" in r.stdout, (argv, r.stdout)


# --- the store ---------------------------------------------------------------


def test_store_check_is_clean_after_deliveries(srv, alice):
    conn, _ = smtp_open(srv, "smtp")
    with conn:
        for i in range(3):
            r = smtp_transaction(conn, "s@remote.test", [alice],
                                 b"Subject: check %d\r\n\r\nx\r\n" % i)
            assert QUEUED_RE.match(r.raw[0]), r.raw
    out = admin_ok(srv.admin_config, "store", "check")
    assert out.strip().splitlines()[-1] == "store check: 0 problems", out


def test_store_check_reports_a_missing_message_file(postern_factory,
                                                    default_cert, tmp_path):
    one = start_mail_server(postern_factory, tmp_path / "one", default_cert,
                            [("smtp", "smtp", "none")],
                            users=[("u@example.test", "u-Pw-1")])
    conn, _ = smtp_open(one, "smtp")
    with conn:
        r = smtp_transaction(conn, "s@remote.test", ["u@example.test"],
                             b"Subject: doomed\r\n\r\nx\r\n")
        assert QUEUED_RE.match(r.raw[0]), r.raw
    peek = StorePeek(one.mail_data)
    blob = peek.message_rows("u@example.test")[0]["blob"]
    peek.blob_path(blob).unlink()
    r = run_admin(one.admin_config, "store", "check")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert re.search(r"^store check: [1-9]\d* problems?$", r.stdout,
                     re.M), r.stdout


# --- logs --------------------------------------------------------------------


def test_logs_tell_login_results_apart_and_hold_no_password(srv, alice):
    """Issue #4: a locked or disabled account, a disabled protocol and a
    wrong password are told apart in logs; passwords never appear."""
    users = {"l-ok": "pw-Ok-1", "l-wrong": "pw-Wrong-1",
             "l-off": "pw-Off-1", "l-proto": "pw-Proto-1",
             "l-locked": "pw-Locked-1"}
    for name, pw in users.items():
        add_user(srv.admin_config, name + "@example.test", pw)
    admin_ok(srv.admin_config, "user", "set", "l-off@example.test",
             "enabled=no")
    admin_ok(srv.admin_config, "user", "set", "l-proto@example.test",
             "submission=off")
    admin_ok(srv.admin_config, "user", "lock", "l-locked@example.test")
    mark = srv.log_mark()
    wrong = "not-the-Password-9"
    for name, pw in users.items():
        can_login(srv, name + "@example.test",
                  wrong if name == "l-wrong" else pw)
    want = {"l-ok": "ok", "l-wrong": "failed", "l-off": "account_disabled",
            "l-proto": "protocol_disabled", "l-locked": "locked"}
    for name, result in want.items():
        srv.wait_log(r"event=auth\.login user=<%s@example\.test> .*"
                     r"result=%s( |$)" % (re.escape(name), result),
                     since=mark)
    log = srv.log_text()
    for secret in list(users.values()) + [wrong, "alice-Pw-1"]:
        assert secret not in log, "password %r in the server log" % secret
