"""APPENDLIMIT (RFC 7889): the server-wide limit ([limits]
imap_literal_max) in CAPABILITY after login and per mailbox in STATUS and
LIST-STATUS, and an APPEND past it refused with [TOOBIG] before the
message is sent."""

import pytest

from imap_helpers import (imap_caps, login, new_user, parse_list,
                          parse_status, start_imap_server)

LIMIT = 65536


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-appendlimit"),
                             default_cert,
                             limits={"imap_literal_max": LIMIT})


@pytest.fixture
def c(srv):
    conn = login(srv, *new_user(srv))
    yield conn
    conn.close()


def test_capability_names_the_limit(c):
    caps = imap_caps(c.ok("CAPABILITY").untagged[0])
    assert "APPENDLIMIT=%d" % LIMIT in caps, caps


def test_status_and_list_status_give_the_limit_per_mailbox(c):
    r = c.ok("STATUS INBOX (APPENDLIMIT MESSAGES)")
    assert parse_status(r.untagged[0]) == (b"INBOX", {
        "MESSAGES": 0, "APPENDLIMIT": LIMIT}), r.untagged
    r = c.ok('LIST "" "Sent" RETURN (STATUS (APPENDLIMIT))')
    assert len(r.lines(b"LIST")) == 1, r.untagged
    assert parse_list(r.lines(b"LIST")[0]).name == b"Sent"
    assert r.lines(b"STATUS") == [
        b'* STATUS "Sent" (APPENDLIMIT %d)\r\n' % LIMIT], r.untagged


def test_append_past_the_limit_is_toobig(c):
    tag = next(c.tags)
    c.send(b"%s APPEND INBOX {%d}\r\n" % (tag, LIMIT + 1))
    r = c.read_reply(tag)
    # Refused before the continuation, by the parser (BAD or NO, RFC 9051
    # §7.1 TOOBIG); the session goes on.
    assert r.status in ("NO", "BAD") and r.code_atom == "TOOBIG", r.tagged
    msg = b"Subject: fits\r\n\r\n" + b"x" * (LIMIT - 100)
    c.send(b"%s APPEND INBOX {%d+}\r\n%s\r\n" % (b"b1", len(msg), msg))
    assert c.read_reply(b"b1").status == "OK"
