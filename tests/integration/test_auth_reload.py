"""SIGHUP reloads every section that can change while running (issue 15,
finding 18): [auth] settings take effect for the next login, [queue]
settings reach the queue runner, and each changed key that needs a restart
is named in the log (config.reload_needs_restart key=...) while the rest
of the file is still applied."""

import pytest

from postern_harness import (mail_config_text, next_source_address,
                             smtp_auth_plain, smtp_open, start_mail_server)

USER, PASSWORD = "alice@example.test", "alice-Secret-1"
AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
SUBMISSION_OFF = (b"535 5.7.8 Sending mail (SMTP submission) is disabled "
                  b"for this account\r\n")
LOCKED = b"454 4.7.0 Too many failed logins: temporarily locked, try " \
    b"again later\r\n"
LISTENERS = [("submissions", "submission", "implicit")]


def login(srv, password=PASSWORD, source=None):
    conn, _ = smtp_open(srv, "submissions",
                        source=source or next_source_address())
    with conn:
        return smtp_auth_plain(conn, USER, password).raw


def rewrite(srv, tmp_path, **kw):
    """Writes a new configuration over the running server's file."""
    text = mail_config_text(srv.mail_data, [("main", srv.cert)], LISTENERS,
                            **kw)
    srv.config_path.write_text(text)
    return text


@pytest.fixture
def srv(postern_factory, default_cert, tmp_path):
    return start_mail_server(postern_factory, tmp_path / "mail",
                             default_cert, LISTENERS,
                             users=[(USER, PASSWORD)])


def test_auth_settings_take_effect_on_sighup(srv, tmp_path):
    assert login(srv) == [AUTH_OK]
    rewrite(srv, tmp_path, auth={"submission": "no",
                                 "lockout_failures": 2})
    line = srv.reload()
    assert "event=config.reloaded" in line, line
    # The protocol switch is off for accounts that do not say.
    assert login(srv) == [SUBMISSION_OFF]
    # And the lockout counts to 2 now (10 before).
    source = next_source_address()
    assert login(srv, "wrong-1", source)[0].startswith(b"535 ")
    assert login(srv, "wrong-2", source)[0].startswith(b"535 ")
    assert login(srv, PASSWORD, source) == [LOCKED]
    # Back on.
    rewrite(srv, tmp_path, auth={"submission": "yes"})
    assert "event=config.reloaded" in srv.reload()
    assert login(srv) == [AUTH_OK]


def test_queue_settings_reach_the_runner_on_sighup(srv, tmp_path):
    mark = srv.log_mark()
    rewrite(srv, tmp_path, queue={"concurrency": 7, "retry_first": "2m",
                                  "timeout": "45s"})
    assert "event=config.reloaded" in srv.reload()
    srv.wait_log(r"event=queue\.reloaded concurrency=7 .*retry_first=120 "
                 r".*timeout=45 ", since=mark)


def test_restart_only_keys_are_named_and_the_rest_applied(srv, tmp_path):
    mark = srv.log_mark()
    # A listener's port and the worker count need a restart; the host
    # name does not.
    text = rewrite(srv, tmp_path, server={"workers": 3,
                                          "hostname": "mx9.example.test"})
    text = text.replace("port = 0", "port = 1")
    srv.config_path.write_text(text)
    line = srv.reload()
    assert "event=config.reloaded" in line, line
    srv.wait_log(r"level=warn .*event=config\.reload_needs_restart "
                 r"key=server\.workers ", since=mark)
    srv.wait_log(r"event=config\.reload_needs_restart "
                 r"key=listener\.submissions ", since=mark)
    names = [l for l in srv.log_lines()[mark:]
             if "reload_needs_restart" in l]
    assert len(names) == 2, names
    # Still serving on the old port, with the new host name.
    conn, greeting = srv.greet("submissions")
    with conn:
        assert greeting == b"220 mx9.example.test ESMTP postern\r\n"
