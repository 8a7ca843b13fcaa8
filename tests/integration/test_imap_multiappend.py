"""MULTIAPPEND (RFC 3502) and REPLACE (RFC 8508): several messages in one
APPEND stored all or none (one store commit: an empty one, a missing
mailbox or a quota refuses them all) answered APPENDUID with a UID set;
REPLACE and UID REPLACE store the new message and expunge the old one in
one commit, with the untagged APPENDUID, refused for a missing message, a
read-only mailbox or a missing target (the old message stays)."""

import re

import pytest

from imap_helpers import (admin_ok, flag_set, imap_caps, login, new_user,
                          parse_fetch, parse_status, start_imap_server)


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-multiappend"),
                             default_cert)


@pytest.fixture
def user(srv):
    return new_user(srv)


@pytest.fixture
def c(srv, user):
    conn = login(srv, *user)
    yield conn
    conn.close()


def message(n):
    return (b"From: a@other.test\r\nTo: b@example.test\r\n"
            b"Subject: multi %d\r\n\r\nBody %d.\r\n" % (n, n))


def lit(msg):
    return b"{%d+}\r\n%s" % (len(msg), msg)


def send(c, line):
    tag = next(c.tags)
    c.send(tag + b" " + line + b"\r\n")
    return c.read_reply(tag)


def count(c, mailbox):
    r = c.ok("STATUS %s (MESSAGES)" % mailbox)
    return parse_status(r.untagged[0])[1]["MESSAGES"]


def subjects(c, mailbox):
    c.select(mailbox)
    r = c.ok("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])") \
        if count(c, mailbox) else None
    out = []
    for l in (r.untagged if r else []):
        if b" FETCH " in l:
            n, it = parse_fetch(l)
            subj = bytes(it["BODY[HEADER.FIELDS (SUBJECT)]"]).strip()
            out.append((subj.decode(), flag_set(it["FLAGS"])))
    return out


def test_capabilities(c):
    caps = imap_caps(c.ok("CAPABILITY").untagged[0])
    assert "MULTIAPPEND" in caps and "REPLACE" in caps, caps


def test_multiappend_stores_all_with_one_appenduid(c):
    r = send(c, b"APPEND Archive (\\Seen) " + lit(message(1)) +
             b' (\\Flagged) "05-Jan-2021 10:00:00 +0000" ' +
             lit(message(2)) + b" " + lit(message(3)))
    assert r.status == "OK", r.tagged
    m = re.match(r"^APPENDUID (\d+) 1:3$", r.code)
    assert m, r.tagged
    # New in Archive: recent for the first session to select it.
    assert subjects(c, "Archive") == [
        ("Subject: multi 1", {"\\Seen", "\\Recent"}),
        ("Subject: multi 2", {"\\Flagged", "\\Recent"}),
        ("Subject: multi 3", {"\\Recent"})]
    r = c.ok("FETCH 2 INTERNALDATE")
    assert b'"05-Jan-2021 10:00:00 +0000"' in r.untagged[0]


def test_multiappend_with_synchronizing_literals(c):
    # RFC 3502 §6 example shape: each literal waits for "+".
    m1, m2 = message(1), message(2)
    c.send(b"s1 APPEND Drafts (\\Draft) {%d}\r\n" % len(m1))
    assert c.read_line().startswith(b"+ ")
    c.send(m1 + b" {%d}\r\n" % len(m2))
    assert c.read_line().startswith(b"+ ")
    c.send(m2 + b"\r\n")
    r = c.read_reply(b"s1")
    assert r.status == "OK" and r.code.endswith(" 1:2"), r.tagged
    assert count(c, "Drafts") == 2


def test_multiappend_is_all_or_none(srv, user, c):
    r = send(c, b"APPEND INBOX " + lit(message(1)) + b" " + lit(b""))
    assert r.status == "NO", r.tagged
    assert count(c, "INBOX") == 0
    r = send(c, b"APPEND Nowhere " + lit(message(1)) + b" " +
             lit(message(2)))
    assert r.status == "NO" and r.code_atom == "TRYCREATE", r.tagged
    admin_ok(srv.admin_config, "user", "set", user[0], "quota_messages=2")
    try:
        r = send(c, b"APPEND INBOX " + lit(message(1)) + b" " +
                 lit(message(2)) + b" " + lit(message(3)))
        assert r.status == "NO" and r.code_atom == "OVERQUOTA", r.tagged
        assert count(c, "INBOX") == 0
        r = send(c, b"APPEND INBOX " + lit(message(1)) + b" " +
                 lit(message(2)))
        assert r.status == "OK", r.tagged
        assert count(c, "INBOX") == 2
    finally:
        admin_ok(srv.admin_config, "user", "set", user[0],
                 "quota_messages=0")
    assert send(c, b"APPEND INBOX (\\Seen) " + lit(message(1)) +
                b" (\\Bogus)").status == "BAD"


def test_replace_a_draft(c):
    # RFC 8508 §3.3 example: a draft saved again in Drafts.
    assert send(c, b"APPEND Drafts (\\Draft) " + lit(message(1))).status \
        == "OK"
    info = c.select("Drafts")
    r = send(c, b"REPLACE 1 Drafts (\\Seen \\Draft) " + lit(message(2)))
    assert r.status == "OK", r.tagged
    assert r.untagged[0] == b"* OK [APPENDUID %d 2] Replacement Message " \
        b"ID\r\n" % info.uidvalidity, r.untagged
    assert b"* 1 EXPUNGE\r\n" in r.untagged, r.untagged
    assert r.tagged.endswith(b" OK REPLACE completed\r\n"), r.tagged
    assert subjects(c, "Drafts") == [("Subject: multi 2",
                                      {"\\Seen", "\\Draft"})]


def test_uid_replace_into_another_mailbox_and_under_quota(srv, user, c):
    assert send(c, b"APPEND INBOX " + lit(message(1))).status == "OK"
    c.select("INBOX")
    admin_ok(srv.admin_config, "user", "set", user[0], "quota_messages=1")
    try:
        # One message in, one out: within a quota that is full.
        r = send(c, b"UID REPLACE 1 Archive " + lit(message(5)))
        assert r.status == "OK", r.tagged
        assert r.tagged.endswith(b" OK UID REPLACE completed\r\n")
        assert re.match(rb"^\* OK \[APPENDUID \d+ 1\]", r.untagged[0])
    finally:
        admin_ok(srv.admin_config, "user", "set", user[0],
                 "quota_messages=0")
    assert count(c, "INBOX") == 0
    assert subjects(c, "Archive") == [("Subject: multi 5", {"\\Recent"})]


def test_replace_refused_leaves_everything(c):
    assert send(c, b"APPEND INBOX " + lit(message(1))).status == "OK"
    c.select("INBOX")
    r = send(c, b"UID REPLACE 99 INBOX " + lit(message(2)))
    assert r.status == "NO", r.tagged
    r = send(c, b"REPLACE 1 Nowhere " + lit(message(2)))
    assert r.status == "NO" and r.code_atom == "TRYCREATE", r.tagged
    r = send(c, b"REPLACE 1:2 INBOX " + lit(message(2)))
    assert r.status == "BAD", r.tagged
    r = send(c, b"REPLACE 1 INBOX " + lit(message(2)) + b" " +
             lit(message(3)))
    assert r.status == "BAD", r.tagged
    c.select("INBOX", examine=True)
    r = send(c, b"REPLACE 1 INBOX " + lit(message(2)))
    assert r.status == "NO" and r.code_atom == "READ-ONLY", r.tagged
    assert subjects(c, "INBOX") == [("Subject: multi 1", set())]
    c.ok("UNSELECT")
    assert send(c, b"REPLACE 1 INBOX " + lit(message(2))).status == "BAD"
