"""METADATA and METADATA-SERVER (RFC 5464) over raw IMAP: the RFC's
examples (a comment as a multi-line literal, NIL to delete, MAXSIZE with
LONGENTRIES, DEPTH 1 and infinity), entry-name rules (RFC 5464 §3.2),
MAXSIZE and TOOMANY limits, binary values as literal8, /private/specialuse
as the mailbox's SPECIAL-USE (RFC 6154 §4) both ways, entries kept across a
restart, moved by RENAME and gone with DELETE, and what one user can and
cannot see or do of another's."""

import re

import pytest

from imap_helpers import (imap_caps, login, new_user, parse_list, restart,
                          start_imap_server)
from postern_harness import small_asan_quarantine

ENTRIES_MAX = 6


@pytest.fixture(scope="module", autouse=True)
def asan_quarantine():
    # The memory test must not count ASan's quarantine as growth.
    with small_asan_quarantine():
        yield


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-metadata"),
                             default_cert,
                             limits={"imap_metadata_entries": ENTRIES_MAX,
                                     "imap_metadata_size": "1k",
                                     "imap_metadata_total": "4k"})


@pytest.fixture
def user(srv):
    return new_user(srv)


@pytest.fixture
def c(srv, user):
    conn = login(srv, *user)
    yield conn
    conn.close()


def send(c, line):
    tag = next(c.tags)
    c.send(tag + b" " + line + b"\r\n")
    return c.read_reply(tag)


def sync_lit(c, head, data, tail):
    """A command with one synchronizing literal: waits for '+'."""
    tag = next(c.tags)
    c.send(tag + b" " + head + b"{%d}\r\n" % len(data))
    line = c.conn.readline(10)
    assert line.startswith(b"+ "), line
    c.send(data + tail + b"\r\n")
    return c.read_reply(tag)


def metadata(r):
    lines = [l for l in r.untagged if l.startswith(b"* METADATA ")]
    assert len(lines) <= 1, r.untagged
    return lines[0] if lines else None


def test_capabilities(c):
    caps = imap_caps(c.ok("CAPABILITY").untagged[0])
    assert "METADATA" in caps and "METADATA-SERVER" in caps, caps


def test_rfc_example_comment_literal_and_nil(c):
    # RFC 5464 §4.3 example: a value as a literal across two lines.
    value = b"My new comment across\r\ntwo lines."
    r = sync_lit(c, b"SETMETADATA INBOX (/private/comment ", value, b")")
    assert r.status == "OK", r.tagged
    r = c.ok("GETMETADATA INBOX /private/comment")
    assert metadata(r) == (b'* METADATA "INBOX" (/private/comment {33}\r\n'
                           + value + b")\r\n")
    # Case does not matter in entry names (RFC 5464 §3.2).
    r = c.ok("GETMETADATA INBOX /PRIVATE/Comment")
    assert value in metadata(r)
    # NIL deletes; an entry without value is answered NIL.
    c.ok("SETMETADATA INBOX (/private/comment NIL)")
    r = c.ok("GETMETADATA INBOX /private/comment")
    assert metadata(r) == b'* METADATA "INBOX" (/private/comment NIL)\r\n'


def test_rfc_example_maxsize_longentries(c):
    c.ok('SETMETADATA INBOX (/shared/comment "%s" /private/comment "short")'
         % ("x" * 100))
    r = c.ok("GETMETADATA (MAXSIZE 50) INBOX (/shared/comment "
             "/private/comment)")
    # RFC 5464 §4.2.1: the long one is left out, the OK says its size.
    assert r.code == "METADATA LONGENTRIES 100", r.tagged
    assert metadata(r) == (b'* METADATA "INBOX" (/private/comment '
                           b'"short")\r\n')
    r = c.ok("GETMETADATA (MAXSIZE 100) INBOX /shared/comment")
    assert r.code == "" and b"x" * 100 in metadata(r)


def test_rfc_example_depth(c):
    c.ok('SETMETADATA INBOX (/private/filters/values/small "From Boss" '
         '/private/filters/values/big "Subject Urgent" '
         '/private/filters/values/big/deeper "x")')
    r = c.ok("GETMETADATA (DEPTH 1) INBOX (/private/filters/values)")
    line = metadata(r)
    assert b"/private/filters/values/small" in line
    assert b"/private/filters/values/big " in line
    assert b"deeper" not in line
    # RFC 5464 §4.2.2: the entries below, not "/private/filters/values NIL".
    assert b"/private/filters/values NIL" not in line, line
    r = c.ok("GETMETADATA (DEPTH infinity) INBOX /private/filters")
    assert b"/private/filters/values/big/deeper" in metadata(r)
    r = c.ok("GETMETADATA INBOX /private/filters/values")
    assert metadata(r) == (b'* METADATA "INBOX" (/private/filters/values '
                           b'NIL)\r\n')


@pytest.mark.parametrize("name", [
    b"/private/a*b", b"/shared/a%", b"/private//x", b"/private/x/",
    b"/other/x", b"private/x", b"/privatex", b'"/private/a b"'])
def test_entry_names_checked(c, name):
    r = send(c, b"GETMETADATA INBOX " + name)
    assert r.status == "BAD", (name, r.tagged)
    r = send(c, b"SETMETADATA INBOX (" + name + b' "v")')
    assert r.status == "BAD", (name, r.tagged)


def test_set_needs_an_entry_below_private(c):
    assert send(c, b'SETMETADATA INBOX (/private "v")').status == "BAD"
    assert send(c, b"GETMETADATA (DEPTH infinity) INBOX /private") \
        .status == "OK"


def test_value_too_large_and_too_many(c):
    r = send(c, b'SETMETADATA INBOX (/private/big "%s")' % (b"y" * 1025))
    assert (r.status, r.code) == ("NO", "METADATA MAXSIZE 1024"), r.tagged
    names = b" ".join(b'/private/n%d "v"' % i for i in range(ENTRIES_MAX))
    c.ok(b"SETMETADATA INBOX (" + names + b")")
    r = send(c, b'SETMETADATA "" (/private/one-more "v")')
    assert (r.status, r.code) == ("NO", "METADATA TOOMANY"), r.tagged
    # All or nothing: a command over the limit stored none of its entries.
    r = send(c, b'SETMETADATA INBOX (/private/n0 NIL /private/a "1" '
              b'/private/b "2")')
    assert r.code == "METADATA TOOMANY", r.tagged
    r = c.ok("GETMETADATA INBOX (/private/n0 /private/a)")
    assert metadata(r) == (b'* METADATA "INBOX" (/private/n0 "v" '
                           b'/private/a NIL)\r\n')
    # Deleting as much as one adds passes.
    c.ok('SETMETADATA INBOX (/private/n0 NIL /private/a "1")')


def test_binary_value_as_literal8(c):
    value = b"\x00\x01\x02\xff\xfe"
    tag = next(c.tags)
    c.send(tag + b" SETMETADATA INBOX (/private/vendor/bin ~{%d+}\r\n"
           % len(value) + value + b")\r\n")
    r = c.read_reply(tag)
    assert r.status == "OK", r.tagged
    r = c.ok("GETMETADATA INBOX /private/vendor/bin")
    assert metadata(r) == (b'* METADATA "INBOX" (/private/vendor/bin ~{5}'
                           b'\r\n' + value + b")\r\n")


def test_server_entries(c, srv):
    c.ok('SETMETADATA "" (/private/vendor/x/theme "dark")')
    r = c.ok('GETMETADATA "" /private/vendor/x/theme')
    assert metadata(r) == (b'* METADATA "" (/private/vendor/x/theme '
                           b'"dark")\r\n')
    # Shared server entries are the administrator's.
    r = send(c, b'SETMETADATA "" (/shared/comment "hello all")')
    assert (r.status, r.code) == ("NO", "NOPERM"), r.tagged
    r = c.ok('GETMETADATA "" /shared/comment')
    assert metadata(r) == b'* METADATA "" (/shared/comment NIL)\r\n'


def test_specialuse_both_ways(c):
    r = c.ok("GETMETADATA Sent /private/specialuse")
    assert metadata(r) == (b'* METADATA "Sent" (/private/specialuse '
                           b'"\\\\Sent")\r\n')
    c.ok("CREATE Outbox")
    r = c.ok("GETMETADATA Outbox /private/specialuse")
    assert metadata(r) == (b'* METADATA "Outbox" (/private/specialuse '
                           b'NIL)\r\n')
    c.ok('SETMETADATA Outbox (/private/specialuse "\\\\Flagged")')
    r = c.ok('LIST "" Outbox RETURN (SPECIAL-USE)')
    assert parse_list(r.untagged[0]).has("\\Flagged"), r.untagged
    r = send(c, b'SETMETADATA Outbox (/private/specialuse "\\\\Bogus")')
    assert (r.status, r.code) == ("NO", "USEATTR"), r.tagged
    c.ok("SETMETADATA Outbox (/private/specialuse NIL)")
    r = c.ok('LIST "" Outbox RETURN (SPECIAL-USE)')
    assert not parse_list(r.untagged[0]).has("\\Flagged"), r.untagged


def test_missing_mailbox(c):
    r = send(c, b"GETMETADATA Nowhere /private/comment")
    assert (r.status, r.code) == ("NO", "NONEXISTENT"), r.tagged
    r = send(c, b'SETMETADATA Nowhere (/private/comment "x")')
    assert (r.status, r.code) == ("NO", "NONEXISTENT"), r.tagged


def test_rename_moves_delete_drops(c):
    c.ok("CREATE Projects")
    c.ok('SETMETADATA Projects (/shared/comment "team stuff")')
    c.ok("RENAME Projects Work")
    r = c.ok("GETMETADATA Work /shared/comment")
    assert b'"team stuff"' in metadata(r)
    c.ok("DELETE Work")
    c.ok("CREATE Work")
    r = c.ok("GETMETADATA Work /shared/comment")
    assert metadata(r) == b'* METADATA "Work" (/shared/comment NIL)\r\n'


def test_other_users_see_nothing(srv, c):
    c.ok('SETMETADATA "" (/private/secret "mine")')
    c.ok('SETMETADATA INBOX (/shared/comment "mine too")')
    other = login(srv, *new_user(srv))
    try:
        r = other.ok('GETMETADATA (DEPTH infinity) "" /private')
        assert b"mine" not in b"".join(r.untagged), r.untagged
        r = other.ok("GETMETADATA INBOX /shared/comment")
        assert metadata(r) == (b'* METADATA "INBOX" (/shared/comment '
                               b'NIL)\r\n')
    finally:
        other.close()


def test_kept_across_restart(srv, user):
    c = login(srv, *user)
    c.ok('SETMETADATA INBOX (/private/vendor/durable "yes")')
    c.close()
    restart(srv)
    c = login(srv, *user)
    try:
        r = c.ok("GETMETADATA INBOX /private/vendor/durable")
        assert b'"yes"' in metadata(r)
    finally:
        c.close()


def vm_hwm(pid):
    """The server's peak resident memory (VmHWM): it never goes down, so
    no sampling can miss a literal held for a moment."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


BIG = 32 * 1024 * 1024


@pytest.mark.parametrize("plus", [False, True], ids=["sync", "literal+"])
def test_huge_value_literal_is_not_held_in_memory(srv, c, plus):
    # Review of METADATA: a SETMETADATA value literal was read whole (up
    # to imap_literal_max, 50 MB) before MAXSIZE was checked, so each of
    # a user's connections could make the server hold that much. It is
    # now dropped as it comes (RFC 7888 §4 lets a {n+} be read and
    # discarded) and answered NO [METADATA MAXSIZE].
    pid = srv.proc.pid
    c.noop()
    # proc(5): 5 in clear_refs sets the peak back to the current size.
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")
    before = vm_hwm(pid)
    tag = next(c.tags)
    if plus:
        c.send(tag + b" SETMETADATA INBOX (/private/big {%d+}\r\n" % BIG)
    else:
        c.send(tag + b" SETMETADATA INBOX (/private/big {%d}\r\n" % BIG)
        line = c.conn.readline(10)
        assert line.startswith(b"+ "), line
    chunk = b"z" * (1024 * 1024)
    for _ in range(BIG // len(chunk)):
        c.send(chunk)
    c.send(b")\r\n")
    r = c.read_reply(tag, timeout=60)
    assert (r.status, r.code) == ("NO", "METADATA MAXSIZE 1024"), r.tagged
    grew = vm_hwm(pid) - before
    # Held, the literal alone took 32 MiB (more with a doubling buffer).
    assert grew < BIG // 4, grew
    # Nothing was stored, and the connection goes on.
    r = c.ok("GETMETADATA INBOX /private/big")
    assert metadata(r) == b'* METADATA "INBOX" (/private/big NIL)\r\n'


def test_small_literal_value_still_taken(c):
    value = b"line one\r\nline two"
    r = sync_lit(c, b"SETMETADATA INBOX (/private/comment ", value, b")")
    assert r.status == "OK", r.tagged
    r = c.ok("GETMETADATA INBOX /private/comment")
    assert metadata(r) == (b'* METADATA "INBOX" (/private/comment {%d}\r\n'
                           % len(value) + value + b")\r\n")


def test_another_users_shared_mailbox_gives_no_entries(srv):
    """Review of METADATA with ACL: entries of another user's mailbox
    ("Other Users/bob/X") are neither read nor written, whatever rights
    bob gave, and a mailbox the user may not see is answered exactly as a
    missing one (RFC 4314 §6): GETMETADATA and SETMETADATA name only the
    user's own mailboxes."""
    bob, alice = new_user(srv), new_user(srv)
    with login(srv, *bob) as b, login(srv, *alice) as a:
        b.ok("CREATE Sales")
        b.ok("CREATE Hidden")
        b.ok('SETMETADATA Sales (/shared/comment "bob shared" '
             '/private/note "bob private" /private/specialuse "\\\\Sent")')
        b.ok('SETMETADATA Hidden (/shared/comment "bob hidden")')
        b.ok('SETACL Sales "%s" lrswipkxtecd' % alice[0])
        b.ok('SETACL Hidden "%s" p' % alice[0])
        sales = "Other Users/%s/Sales" % bob[0]
        hidden = "Other Users/%s/Hidden" % bob[0]
        missing = "Other Users/%s/Nope" % bob[0]
        a.ok('SELECT "%s"' % sales)
        for cmd in ('GETMETADATA (DEPTH infinity) "{}" (/shared /private)',
                    'SETMETADATA "{}" (/shared/comment "alice")',
                    'SETMETADATA "{}" (/private/specialuse NIL)'):
            want = a.command(cmd.format(missing))
            assert want.status == "NO", want.tagged
            for name in (sales, hidden):
                got = a.command(cmd.format(name))
                assert (got.tagged.split(b" ", 1)[1] ==
                        want.tagged.split(b" ", 1)[1]), (cmd, got, want)
                assert got.untagged == want.untagged, (cmd, got)
        r = b.ok("GETMETADATA (DEPTH infinity) Sales (/shared /private)")
        line = metadata(r)
        for want in (b'/private/specialuse "\\\\Sent"',
                     b'/shared/comment "bob shared"',
                     b'/private/note "bob private"'):
            assert want in line, (want, line)
        r = b.ok("GETMETADATA Hidden /shared/comment")
        assert b'"bob hidden"' in metadata(r)


def test_total_bytes_of_an_account_are_bounded(c):
    """Review of METADATA: imap_metadata_entries values of
    imap_metadata_size each (64 MB by default) could be kept outside the
    account's quota, and GETMETADATA reads a mailbox's values into memory;
    imap_metadata_total (4k here) bounds the bytes, all or none."""
    v = b"x" * 1000
    c.ok(b'SETMETADATA INBOX (/private/a "%s" /private/b "%s")' % (v, v))
    c.ok(b'SETMETADATA "" (/private/c "%s" /private/d "%s")' % (v, v))
    r = send(c, b'SETMETADATA INBOX (/private/e "%s")' % v)
    assert (r.status, r.code) == ("NO", "METADATA TOOMANY"), r.tagged
    # 1,020 + 3 x 1,000 + 100 = 4,120 bytes: over by a little.
    r = send(c, b'SETMETADATA INBOX (/private/a "%s" /private/f "%s")'
             % (b"z" * 1020, b"y" * 100))
    assert (r.status, r.code) == ("NO", "METADATA TOOMANY"), r.tagged
    r = c.ok("GETMETADATA INBOX (/private/e /private/f)")
    assert metadata(r) == (b'* METADATA "INBOX" (/private/e NIL '
                           b'/private/f NIL)\r\n')
    # Making room lets it in.
    c.ok(b'SETMETADATA INBOX (/private/a NIL /private/e "%s")' % v)
