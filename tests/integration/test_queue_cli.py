"""`postern queue list|show|retry|delete|hold|release` (issue #8): mail a
user submits for a foreign domain waits in the outbound queue, and the
command shows it with its envelope and reasons, as text and as --json, and
steers it. Outbound delivery is off here ([queue] concurrency = 0), so the
entries stay as the commands leave them; delivery itself is in
test_queue_delivery.py."""

import json
import uuid

import pytest

from postern_harness import (QUEUED_RE, add_user, admin_ok, run_admin,
                             run_postern, smtp_auth_plain, smtp_open,
                             smtp_transaction, write_mail_config)
from store_peek import StorePeek

ALICE, ALICE_PW = "alice@example.test", "alice-Secret-1"
AUTH_OK = b"235 2.7.0 Authentication successful\r\n"


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    listeners = [("submission", "submission", "none")]
    path, data, text = write_mail_config(
        tmp_path_factory.mktemp("queue-cli"), [("main", default_cert)],
        listeners, server={"allow_plaintext_auth": "yes"})
    text += "\n[queue]\nconcurrency = 0\n"
    path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, ALICE, ALICE_PW)
    s = module_postern_factory(config_text=text, listeners=listeners)
    s.admin_config = path
    s.mail_data = data
    s.peek = StorePeek(data)
    return s


def submit(srv, rcpts, mail_params=""):
    """Submits one message from alice to rcpts; returns its token."""
    tok = uuid.uuid4().hex
    conn, _ = smtp_open(srv, "submission")
    with conn:
        assert smtp_auth_plain(conn, ALICE, ALICE_PW).raw == [AUTH_OK]
        r = smtp_transaction(conn, ALICE, rcpts,
                             b"From: " + ALICE.encode() +
                             b"\r\nSubject: q " + tok.encode() +
                             b"\r\n\r\nhello\r\n", mail_params)
        assert QUEUED_RE.match(r.raw[0]), r.raw
    return tok


def queue_json(srv, *args):
    return json.loads(admin_ok(srv.admin_config, "queue", *args, "--json"))


def entry_for(srv, rcpt):
    found = [e for e in queue_json(srv, "list") if e["rcpt"] == rcpt]
    assert len(found) == 1, found
    return found[0]


def test_queue_list_shows_submitted_foreign_recipients(srv):
    a = "a-%s@remote.test" % uuid.uuid4().hex[:8]
    b = "b-%s@other.test" % uuid.uuid4().hex[:8]
    submit(srv, [a, b], " RET=HDRS ENVID=e1")
    ea, eb = entry_for(srv, a), entry_for(srv, b)
    assert ea["sender"] == ALICE and ea["domain"] == "remote.test"
    assert eb["domain"] == "other.test"
    assert ea["state"] == "queued" and ea["attempts"] == 0
    assert ea["last_reply"] is None
    assert ea["dsn_envelope"] == "RET=HDRS ENVID=e1"
    assert ea["size"] > 0 and ea["size"] == eb["size"]
    assert ea["next_attempt"].endswith("Z")
    text = admin_ok(srv.admin_config, "queue", "list")
    line = [ln for ln in text.splitlines() if "to=<%s>" % a in ln]
    assert len(line) == 1, text
    assert line[0].startswith("%d queued from=<%s> to=<%s> attempts=0 "
                              "next=" % (ea["id"], ALICE, a)), line


def test_queue_list_marks_success_reports_and_logged_in_senders(srv):
    """A local recipient with NOTIFY=SUCCESS leaves a success-report
    entry (the runner, off here, would write the report); every entry
    says whether a logged-in account sent the message (issue 15)."""
    from postern_harness import smtp_cmd, smtp_send_data
    far = "f-%s@remote.test" % uuid.uuid4().hex[:8]
    conn, _ = smtp_open(srv, "submission")
    with conn:
        assert smtp_auth_plain(conn, ALICE, ALICE_PW).raw == [AUTH_OK]
        assert smtp_cmd(conn, "MAIL FROM:<%s>" % ALICE).code == 250
        assert smtp_cmd(conn, "RCPT TO:<%s> NOTIFY=SUCCESS" % ALICE) \
            .code == 250
        assert smtp_cmd(conn, "RCPT TO:<%s>" % far).code == 250
        assert smtp_cmd(conn, "DATA").code == 354
        r = smtp_send_data(conn, b"From: " + ALICE.encode() +
                           b"\r\nSubject: r\r\n\r\nhi\r\n")
        assert QUEUED_RE.match(r.raw[0]), r.raw
    mine = entry_for(srv, ALICE)
    assert mine["report"] is True and mine["authenticated"] is True
    assert mine["dsn_rcpt"] == "NOTIFY=SUCCESS"
    e = entry_for(srv, far)
    assert e["report"] is False and e["authenticated"] is True
    text = admin_ok(srv.admin_config, "queue", "list")
    assert "%d queued from=<%s> to=<%s> attempts=0 next=" % (
        mine["id"], ALICE, ALICE) in text
    assert [ln for ln in text.splitlines() if "to=<%s>" % ALICE in ln][0] \
        .endswith(" (success report)"), text
    admin_ok(srv.admin_config, "queue", "delete", str(mine["id"]))
    admin_ok(srv.admin_config, "queue", "delete", str(e["id"]))


def test_queue_show_text_and_json(srv):
    a = "s-%s@remote.test" % uuid.uuid4().hex[:8]
    submit(srv, [a])
    e = entry_for(srv, a)
    text = admin_ok(srv.admin_config, "queue", "show", str(e["id"]))
    lines = text.splitlines()
    assert lines[0] == "id: %d" % e["id"]
    assert "state: queued" in lines
    assert "from: <%s>" % ALICE in lines
    assert "to: <%s>" % a in lines
    assert "attempts: 0" in lines
    assert "last reply: -" in lines
    assert queue_json(srv, "show", str(e["id"])) == e


def test_queue_hold_release_retry_delete(srv):
    a = "h-%s@remote.test" % uuid.uuid4().hex[:8]
    submit(srv, [a])
    e = entry_for(srv, a)
    qid = str(e["id"])
    out = admin_ok(srv.admin_config, "queue", "hold", qid)
    assert out == "queue entry %s held\n" % qid
    assert entry_for(srv, a)["state"] == "held"
    assert "held" in admin_ok(srv.admin_config, "queue", "show", qid)
    out = admin_ok(srv.admin_config, "queue", "release", qid)
    assert out == "queue entry %s released\n" % qid
    assert entry_for(srv, a)["state"] == "queued"
    out = admin_ok(srv.admin_config, "queue", "retry", qid)
    assert out == "queue entry %s scheduled for delivery now\n" % qid
    r = queue_json(srv, "retry", "--all")
    assert r["result"] == "scheduled for delivery now"
    assert isinstance(r["entries"], int)
    out = admin_ok(srv.admin_config, "queue", "delete", qid)
    assert out == "queue entry %s deleted\n" % qid
    assert not [x for x in queue_json(srv, "list") if x["rcpt"] == a]
    assert srv.peek.queue_rows_for(a) == []


def test_queue_errors_are_plain(srv):
    r = run_admin(srv.admin_config, "queue", "show", "999999")
    assert r.returncode == 1
    assert r.stderr == "postern: cannot show queue entry 999999: no such " \
        "entry\n"
    r = run_admin(srv.admin_config, "queue", "delete", "999999")
    assert r.returncode == 1
    assert "no such entry" in r.stderr
    for args in (("show", "x1"), ("delete", "--all"), ("hold",),
                 ("list", "5"), ("frobnicate", "1")):
        r = run_admin(srv.admin_config, "queue", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("usage: postern queue list"), r.stderr


@pytest.mark.parametrize("line, message", [
    ("tls = maybe", "key 'tls': 'maybe' is not none, may, encrypt or "
     "verify"),
    ("tls_domains = a.test:sometimes", "key 'tls_domains': "
     "'a.test:sometimes' is not a list of DOMAIN:POLICY (none, may, "
     "encrypt, verify)"),
    ("resolver = dns.example", "key 'resolver': 'dns.example' is not a "
     "numeric IPv4 or IPv6 address"),
    ("retry_first = soon", "key 'retry_first': 'soon' is not a duration "
     "(like 30s, 5m, 1h)"),
    ("concurrency = 5000", "key 'concurrency': 5000 is out of range (0 to "
     "1000)"),
    ("frobs = 1", "key 'frobs': unknown in section [queue]"),
])
def test_queue_config_keys_are_checked(tmp_path, default_cert, line,
                                       message):
    path, _, text = write_mail_config(tmp_path, [("main", default_cert)],
                                      [("smtp", "smtp", "none")])
    text += "\n[queue]\ntls = may\n" + line + "\n"
    path.write_text(text)
    r = run_postern("config", "check", "-c", path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lineno = len(text.rstrip("\n").split("\n"))
    assert r.stderr == "%s:%d: %s\n" % (path, lineno, message)
