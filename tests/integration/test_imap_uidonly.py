"""UIDONLY (RFC 9586): after ENABLE UIDONLY every command that names
messages by number answers BAD [UIDREQUIRED] (FETCH, STORE, SEARCH, COPY,
MOVE, and sequence numbers inside UID SEARCH); FETCH replies, solicited or
not, are UIDFETCH named by UID; expunges are announced with VANISHED."""

import re

import pytest

from imap_helpers import imap_caps, login, new_user, start_imap_server


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-uidonly"),
                             default_cert)


@pytest.fixture
def user(srv):
    return new_user(srv)


def message(n):
    return (b"From: a@other.test\r\nTo: b@example.test\r\n"
            b"Subject: uidonly %d\r\n\r\nBody %d.\r\n" % (n, n))


def fill(c, n):
    for i in range(n):
        tag = next(c.tags)
        msg = message(i + 1)
        c.send(b"%s APPEND INBOX {%d+}\r\n%s\r\n" % (tag, len(msg), msg))
        assert c.read_reply(tag).status == "OK"


def test_capability_and_enable(srv, user):
    c = login(srv, *user)
    try:
        assert "UIDONLY" in imap_caps(c.ok("CAPABILITY").untagged[0])
        r = c.ok("ENABLE UIDONLY")
        assert r.untagged == [b"* ENABLED UIDONLY\r\n"], r.untagged
        r = c.ok("ENABLE UIDONLY")
        assert r.untagged == [b"* ENABLED\r\n"], r.untagged
    finally:
        c.close()


def test_sequence_numbers_are_refused(srv, user):
    c = login(srv, *user)
    try:
        fill(c, 3)
        c.ok("ENABLE UIDONLY")
        c.select("INBOX")
        for cmd in ("FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)",
                    "SEARCH ALL", "COPY 1 Archive", "MOVE 1 Archive",
                    "UID SEARCH 1:2", "UID SEARCH NOT 2"):
            r = c.command(cmd)
            assert r.status == "BAD" and r.code_atom == "UIDREQUIRED", \
                (cmd, r.tagged)
        r = c.ok("UID SEARCH UID 1:2")
        assert r.untagged == [b"* SEARCH 1 2\r\n"], r.untagged
        r = c.ok("UID COPY 1 Archive")
        assert r.code.startswith("COPYUID "), r.tagged
    finally:
        c.close()


def test_uidfetch_replies_and_vanished(srv, user):
    c = login(srv, *user)
    other = login(srv, *user)
    try:
        fill(c, 3)
        c.ok("ENABLE UIDONLY")
        c.select("INBOX")
        r = c.ok("UID FETCH 2:3 (FLAGS RFC822.SIZE)")
        assert len(r.untagged) == 2, r.untagged
        for uid, line in zip((2, 3), r.untagged):
            assert re.match(rb"^\* UIDFETCH %d \(FLAGS \(\\Recent\) "
                            rb"RFC822\.SIZE \d+\)\r\n$" % uid, line), line
        r = c.ok("UID STORE 1 +FLAGS (\\Flagged)")
        assert r.untagged == [
            b"* UIDFETCH 1 (FLAGS (\\Flagged \\Recent))\r\n"], r.untagged
        # Another session's changes: UIDFETCH and VANISHED, never
        # numbers.
        other.select("INBOX")
        other.ok("STORE 3 +FLAGS (\\Seen)")
        other.ok("STORE 2 +FLAGS (\\Deleted)")
        other.ok("EXPUNGE")
        r = c.ok("NOOP")
        assert b"* UIDFETCH 3 (FLAGS (\\Seen \\Recent))\r\n" in \
            r.untagged, r.untagged
        assert b"* VANISHED 2\r\n" in r.untagged, r.untagged
        assert not [l for l in r.untagged if re.match(
            rb"^\* \d+ (EXPUNGE|FETCH)", l)], r.untagged
        # Its own EXPUNGE too.
        c.ok("UID STORE 1 +FLAGS (\\Deleted)")
        r = c.ok("EXPUNGE")
        assert r.untagged == [b"* UIDFETCH 1 (FLAGS (\\Flagged "
                              b"\\Deleted \\Recent))\r\n",
                              b"* VANISHED 1\r\n"] or \
            r.untagged == [b"* VANISHED 1\r\n"], r.untagged
    finally:
        c.close()
        other.close()
