"""SAVEDATE (RFC 8514): FETCH SAVEDATE is when the message came into its
mailbox (APPEND, COPY, delivery), not its INTERNALDATE; SEARCH SAVEDBEFORE,
SAVEDON, SAVEDSINCE and SAVEDATESUPPORTED; a message stored before save
dates were kept (its row has none) answers NIL and is searched by its
internal date."""

import calendar
import re
import sqlite3
import time

import pytest

from imap_helpers import (deliver, imap_caps, login, new_user, parse_fetch,
                          start_again, start_imap_server)

OLD_DATE = "01-Jan-2020 12:00:00 +0000"


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-savedate"),
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
            b"Subject: saved %d\r\n\r\nBody %d.\r\n" % (n, n))


def append(c, mailbox, msg, date=OLD_DATE):
    tag = next(c.tags)
    c.send(b'%s APPEND %s "%s" {%d+}\r\n%s\r\n'
           % (tag, mailbox.encode(), date.encode(), len(msg), msg))
    r = c.read_reply(tag)
    assert r.status == "OK", r.tagged
    return r


def imap_time(text):
    return calendar.timegm(time.strptime(text[:20], "%d-%b-%Y %H:%M:%S"))


def fetch(c, items="(SAVEDATE INTERNALDATE)"):
    r = c.ok("FETCH 1:* " + items)
    return {n: items for n, items in
            (parse_fetch(l) for l in r.untagged if b" FETCH " in l)}


def imap_day(t):
    return time.strftime("%d-%b-%Y", time.gmtime(t))


def test_capability(c):
    assert "SAVEDATE" in imap_caps(c.ok("CAPABILITY").untagged[0])


def test_savedate_is_when_it_was_saved(srv, user, c):
    before = int(time.time())
    append(c, "INBOX", message(1))
    deliver(srv, user[0], "delivered")
    after = int(time.time()) + 1
    c.select("INBOX")
    got = fetch(c)
    assert len(got) == 2, got
    assert bytes(got[1]["INTERNALDATE"]).decode() == \
        "01-Jan-2020 12:00:00 +0000"
    for n in (1, 2):
        saved = bytes(got[n]["SAVEDATE"]).decode()
        assert re.match(r"^\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d "
                        r"\+0000$", saved), saved
        assert before <= imap_time(saved) <= after, (saved, before, after)
    # COPY saves the message again into the destination.
    c.ok("COPY 1 Archive")
    c.select("Archive")
    copied = fetch(c)
    assert imap_time(bytes(copied[1]["SAVEDATE"]).decode()) >= \
        imap_time(bytes(got[1]["SAVEDATE"]).decode())


def test_search_by_save_date(c):
    append(c, "INBOX", message(1))
    append(c, "INBOX", message(2), date="15-Mar-2021 08:00:00 +0000")
    c.select("INBOX")
    saved = imap_time(bytes(fetch(c)[1]["SAVEDATE"]).decode())
    today, tomorrow = imap_day(saved), imap_day(saved + 86400)
    assert c.ok("SEARCH SAVEDSINCE %s" % today).untagged == \
        [b"* SEARCH 1 2\r\n"]
    assert c.ok("SEARCH SAVEDON %s" % today).untagged == \
        [b"* SEARCH 1 2\r\n"]
    assert c.ok("SEARCH SAVEDSINCE %s" % tomorrow).untagged == \
        [b"* SEARCH\r\n"]
    assert c.ok("SEARCH SAVEDBEFORE 1-Jan-2022").untagged == \
        [b"* SEARCH\r\n"]
    # The internal dates are old: BEFORE finds them, SAVEDBEFORE did not.
    assert c.ok("SEARCH BEFORE 1-Jan-2022").untagged == \
        [b"* SEARCH 1 2\r\n"]
    assert c.ok("SEARCH SAVEDATESUPPORTED").untagged == \
        [b"* SEARCH 1 2\r\n"]
    assert c.ok("UID SEARCH NOT SAVEDON %s" % today).untagged == \
        [b"* SEARCH\r\n"]
    assert c.command("SEARCH SAVEDSINCE yesterday").status == "BAD"


def test_rows_without_a_save_date(srv, user):
    c = login(srv, *user)
    append(c, "INBOX", message(1))
    append(c, "INBOX", message(2), date="15-Mar-2021 08:00:00 +0000")
    c.close()
    # As a store from before save dates were kept leaves the first one.
    rc = srv.stop()
    assert rc == 0, srv.log_text()
    db = sqlite3.connect(str(srv.mail_data / "store.db"))
    try:
        db.execute("UPDATE messages SET saved = NULL WHERE uid = 1 AND "
                   "mailbox = (SELECT m.id FROM mailboxes m JOIN accounts "
                   "a ON a.id = m.account WHERE a.address = ? AND "
                   "m.name = 'INBOX')", (user[0],))
        assert db.total_changes == 1
        db.commit()
    finally:
        db.close()
    start_again(srv)
    c = login(srv, *user)
    try:
        c.select("INBOX")
        got = fetch(c)
        assert got[1]["SAVEDATE"] is None, got
        assert got[2]["SAVEDATE"] is not None, got
        # Searched by its internal date (2020).
        assert c.ok("SEARCH SAVEDBEFORE 1-Jan-2021").untagged == \
            [b"* SEARCH 1\r\n"]
        assert c.ok("SEARCH SAVEDON 1-Jan-2020").untagged == \
            [b"* SEARCH 1\r\n"]
    finally:
        c.close()

