"""OBJECTID (RFC 8474) as clients see it: MAILBOXID in SELECT, STATUS and
the OK of CREATE, kept by RENAME and new for a mailbox created again under
an old name; EMAILID and THREADID (NIL: no threads are kept) in FETCH,
EMAILID kept by COPY and MOVE and new for the same bytes appended again;
SEARCH EMAILID and THREADID; identifiers that say nothing across accounts
(one message delivered to two accounts has unrelated EMAILIDs, INBOXes
unrelated MAILBOXIDs) and that survive a restart."""

import re

import pytest

from imap_helpers import (deliver, imap_caps, login, new_user, parse_fetch,
                          parse_status, restart, start_imap_server)

OBJECTID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-objectid"),
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
            b"Subject: objectid %d\r\n\r\nBody %d.\r\n" % (n, n))


def append(c, mailbox, msg):
    tag = next(c.tags)
    c.send(b"%s APPEND %s {%d+}\r\n%s\r\n" % (tag, mailbox.encode(),
                                              len(msg), msg))
    r = c.read_reply(tag)
    assert r.status == "OK", r.tagged
    return r


def select_mailboxid(c, mailbox):
    r = c.ok("SELECT %s" % mailbox)
    ids = [m.group(1).decode() for l in r.untagged
           for m in [re.match(rb"^\* OK \[MAILBOXID \(([^)]*)\)\]", l)] if m]
    assert len(ids) == 1, r.untagged
    assert OBJECTID_RE.match(ids[0]), ids
    return ids[0]


def status_mailboxid(c, mailbox):
    r = c.ok("STATUS %s (MAILBOXID MESSAGES)" % mailbox)
    assert len(r.untagged) == 1, r.untagged
    m = re.match(rb'^\* STATUS "?[^ "]+"? \((?:MESSAGES \d+ )?'
                 rb'MAILBOXID \(([^)]*)\)(?: MESSAGES \d+)?\)\r\n$',
                 r.untagged[0])
    assert m, r.untagged
    return m.group(1).decode()


def email_ids(c, seqset="1:*", uid=False):
    r = c.ok("%sFETCH %s (EMAILID THREADID)" % ("UID " if uid else "",
                                                 seqset))
    out = {}
    for l in r.untagged:
        if b" FETCH " not in l:
            continue
        n, items = parse_fetch(l)
        assert items["THREADID"] is None, l
        assert isinstance(items["EMAILID"], list) and \
            len(items["EMAILID"]) == 1, l
        eid = bytes(items["EMAILID"][0]).decode()
        assert OBJECTID_RE.match(eid), l
        out[n] = eid
    return out


def test_capability(c):
    assert "OBJECTID" in imap_caps(c.ok("CAPABILITY").untagged[0])


def test_mailboxid_in_select_status_and_create(c):
    inbox = select_mailboxid(c, "INBOX")
    assert status_mailboxid(c, "INBOX") == inbox
    r = c.ok("CREATE Projects")
    m = re.match(r"^MAILBOXID \(([A-Za-z0-9_-]+)\)$", r.code)
    assert m, r.tagged
    created = m.group(1)
    assert created != inbox
    assert status_mailboxid(c, "Projects") == created
    assert select_mailboxid(c, "Projects") == created
    # Every mailbox has its own.
    ids = {status_mailboxid(c, mb) for mb in
           ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive",
            "Projects")}
    assert len(ids) == 7


def test_rename_keeps_the_mailboxid_and_recreation_gets_a_new_one(c):
    r = c.ok("CREATE Old")
    old = re.match(r"^MAILBOXID \((\S+)\)$", r.code).group(1)
    c.ok("RENAME Old New")
    assert status_mailboxid(c, "New") == old
    c.ok("RENAME New Old")
    assert status_mailboxid(c, "Old") == old
    c.ok("DELETE Old")
    r = c.ok("CREATE Old")
    again = re.match(r"^MAILBOXID \((\S+)\)$", r.code).group(1)
    assert again != old


def test_emailid_kept_by_copy_and_move_new_for_a_new_append(c):
    append(c, "INBOX", message(1))
    append(c, "INBOX", message(1))     # the same bytes: another message
    c.select("INBOX")
    ids = email_ids(c)
    assert len(ids) == 2 and ids[1] != ids[2], ids
    c.ok("COPY 1 Archive")
    c.ok("MOVE 2 Trash")
    c.select("Archive")
    assert email_ids(c) == {1: ids[1]}
    c.select("Trash")
    assert email_ids(c, "1", uid=True) == {1: ids[2]}


def test_search_emailid_and_threadid(c):
    for n in range(3):
        append(c, "INBOX", message(n))
    c.select("INBOX")
    ids = email_ids(c)
    r = c.ok("SEARCH EMAILID %s" % ids[2])
    assert r.untagged == [b"* SEARCH 2\r\n"], r.untagged
    r = c.ok("UID SEARCH OR EMAILID %s EMAILID %s" % (ids[1], ids[3]))
    assert r.untagged == [b"* SEARCH 1 3\r\n"], r.untagged
    r = c.ok("SEARCH EMAILID Mnosuchmessage")
    assert r.untagged == [b"* SEARCH\r\n"], r.untagged
    r = c.ok("SEARCH THREADID T1234")
    assert r.untagged == [b"* SEARCH\r\n"], r.untagged
    r = c.command("SEARCH EMAILID (x)")
    assert r.status == "BAD", r.tagged
    r = c.command('SEARCH EMAILID "a.b"')
    assert r.status == "BAD", r.tagged


def test_identifiers_say_nothing_across_accounts(srv):
    a, b = new_user(srv), new_user(srv)
    # One delivery to both: the store keeps one body.
    with __import__("smtplib").SMTP("127.0.0.1", srv.ports["smtp"],
                                    timeout=30) as s:
        s.sendmail("x@other.test", [a[0], b[0]], message(7))
    ca, cb = login(srv, *a), login(srv, *b)
    try:
        ia, ib = select_mailboxid(ca, "INBOX"), select_mailboxid(cb, "INBOX")
        assert ia != ib
        ea, eb = email_ids(ca), email_ids(cb)
        assert len(ea) == 1 and len(eb) == 1
        assert ea[1] != eb[1]
        # b cannot find a's message by a's identifier.
        r = cb.ok("SEARCH EMAILID %s" % ea[1])
        assert r.untagged == [b"* SEARCH\r\n"], r.untagged
    finally:
        ca.close()
        cb.close()


def test_identifiers_survive_a_restart(srv):
    user = new_user(srv)
    c = login(srv, *user)
    append(c, "INBOX", message(5))
    mbid = select_mailboxid(c, "INBOX")
    eid = email_ids(c)[1]
    c.close()
    restart(srv)
    c = login(srv, *user)
    try:
        assert select_mailboxid(c, "INBOX") == mbid
        assert email_ids(c) == {1: eid}
    finally:
        c.close()
