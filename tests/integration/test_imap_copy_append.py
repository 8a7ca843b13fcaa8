"""IMAP COPY, MOVE, EXPUNGE and APPEND as clients see them: COPY and UID
COPY with COPYUID (RFC 4315 §3) checked against the destination, TRYCREATE,
COPY out of a read-only mailbox and onto the selected one; MOVE (RFC 6851)
with its untagged COPYUID before the EXPUNGE responses, VANISHED under
QRESYNC, refused READ-ONLY; EXPUNGE and UID EXPUNGE of a subset (RFC 4315
§2.1), what another session hears; APPEND (RFC 9051 §6.3.12) with flags,
date-time and APPENDUID, TRYCREATE, refused flags, dates and empty
messages, LITERAL+ (RFC 7888) and literal8 (RFC 3516), into the selected
mailbox (EXISTS), OVERQUOTA for APPEND and COPY after a quota set with the
admin command, and a 5 MB literal. Replies are checked as bytes."""

import hashlib
import re

import pytest

from imap_helpers import (admin_ok, flag_set, login, new_user, parse_fetch,
                          start_imap_server, wait_for)


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-copy"),
                             default_cert)


@pytest.fixture
def user(srv):
    return new_user(srv)


@pytest.fixture
def c(srv, user):
    conn = login(srv, *user)
    yield conn
    conn.close()


def message(n, size=0):
    body = b"Message number %d.\r\n" % n
    if size:
        body += b"x" * 76 + b"\r\n"
        body *= max(1, size // len(body))
    return (b"From: sender@other.test\r\nTo: someone@example.test\r\n"
            b"Subject: message %d\r\n\r\n" % n) + body


def append(c, mailbox, msg, flags=None, date=None, literal="sync"):
    """APPEND msg to mailbox; literal is "sync" ({n}, waiting for the
    continuation), "plus" ({n+}) or "binary" (~{n}). Returns the Reply."""
    tag = next(c.tags)
    head = b"%s APPEND %s" % (tag, mailbox.encode())
    if flags is not None:
        head += b" " + flags.encode()
    if date is not None:
        head += b' "' + date.encode() + b'"'
    if literal == "plus":
        c.send(head + b" {%d+}\r\n" % len(msg) + msg + b"\r\n")
        return c.read_reply(tag)
    prefix = b"~" if literal == "binary" else b""
    c.send(head + b" %s{%d}\r\n" % (prefix, len(msg)))
    cont = c.read_line()
    assert cont == b"+ Ready for literal data\r\n", cont
    c.send(msg + b"\r\n")
    return c.read_reply(tag)


def appenduid(r):
    m = re.match(r"^APPENDUID (\d+) (\d+)$", r.code)
    assert r.status == "OK" and m, r.tagged
    return int(m.group(1)), int(m.group(2))


def fill(c, n, mailbox="INBOX", flags=None):
    """APPENDs n messages; returns their UIDs."""
    return [appenduid(append(c, mailbox, message(i + 1), flags))[1]
            for i in range(n)]


def fetch(c, cmd):
    """{seq: {item: value}} of a FETCH that must succeed."""
    r = c.ok(cmd)
    out = {}
    for l in r.untagged:
        if re.match(rb"^\* \d+ FETCH ", l):
            n, items = parse_fetch(l)
            out.setdefault(n, {}).update(items)
    return out


def uid_set(uids):
    """A compact set as the server writes it for ascending runs."""
    out, i = [], 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(str(uids[i]) if i == j else "%d:%d" % (uids[i], uids[j]))
        i = j + 1
    return ",".join(out)


def expand(s):
    out = []
    for part in s.split(","):
        a, _, b = part.partition(":")
        out += list(range(int(a), int(b or a) + 1))
    return out


def mailbox_status(c, name):
    r = c.ok("STATUS %s (MESSAGES UIDNEXT UIDVALIDITY)" % name)
    m = re.match(rb"^\* STATUS \S+ \(MESSAGES (\d+) UIDNEXT (\d+) "
                 rb"UIDVALIDITY (\d+)\)\r\n$", r.untagged[0])
    assert m, r.untagged
    return tuple(int(x) for x in m.groups())


# --- COPY -----------------------------------------------------------------


def test_copy_answers_copyuid_that_matches_the_destination(c):
    src = fill(c, 4, flags="(\\Flagged $Label1)")
    c.ok("CREATE Dest")
    _, dst_next, dst_validity = mailbox_status(c, "Dest")
    c.select("INBOX")
    r = c.ok("COPY 2:4 Dest")
    m = re.match(rb"^(\S+) OK \[COPYUID (\d+) (\S+) (\S+)\] COPY completed"
                 rb"\r\n$", r.tagged)
    assert m, r.tagged
    assert r.untagged == []
    assert int(m.group(2)) == dst_validity
    assert expand(m.group(3).decode()) == src[1:4]
    dst = expand(m.group(4).decode())
    assert dst == list(range(dst_next, dst_next + 3)), dst
    # What the destination holds: the same messages, flags kept; new
    # there, so recent for the first session to select it (RFC 3501
    # §6.4.7: the copy SHOULD be \Recent).
    c.select("Dest")
    got = fetch(c, "UID FETCH 1:* (UID FLAGS BODY.PEEK[])")
    assert sorted(int(v["UID"]) for v in got.values()) == dst
    for seq, items in got.items():
        assert items["BODY[]"] == message(seq + 1), items
        assert flag_set(items["FLAGS"]) == {"\\Flagged", "$Label1",
                                            "\\Recent"}
    # The source is unchanged.
    assert mailbox_status(c, "INBOX")[0] == 4


def test_uid_copy_of_a_scattered_set(c):
    src = fill(c, 5)
    c.ok("CREATE Scatter")
    c.select("INBOX")
    r = c.ok("UID COPY %d,%d:%d Scatter" % (src[0], src[2], src[3]))
    m = re.match(rb"^\S+ OK \[COPYUID \d+ (\S+) (\S+)\] UID COPY completed",
                 r.tagged)
    assert m, r.tagged
    assert expand(m.group(1).decode()) == [src[0], src[2], src[3]]
    assert len(expand(m.group(2).decode())) == 3
    # UIDs that name nothing: OK, and no COPYUID (nothing was copied).
    r = c.ok("UID COPY %d:%d Scatter" % (src[-1] + 10, src[-1] + 20))
    assert r.tagged == r.tag + b" OK UID COPY completed\r\n", r.tagged


def test_copy_to_a_missing_mailbox_says_trycreate(c):
    fill(c, 1)
    c.select("INBOX")
    r = c.command("COPY 1 Nowhere")
    assert r.tagged == r.tag + b" NO [TRYCREATE] No such mailbox\r\n"
    r = c.command("MOVE 1 Nowhere")
    assert r.tagged == r.tag + b" NO [TRYCREATE] No such mailbox\r\n"
    assert mailbox_status(c, "INBOX")[0] == 1


def test_copy_syntax_errors(c):
    fill(c, 2)
    c.select("INBOX")
    for cmd, text in [("COPY 1", b"Syntax: COPY sequence-set mailbox"),
                      ("UID MOVE 1", b"Syntax: UID MOVE sequence-set "
                       b"mailbox"),
                      ("COPY x Trash", b"Invalid sequence set"),
                      ("COPY 3 Trash", b"Message sequence number beyond "
                       b"the last message")]:
        r = c.command(cmd)
        assert r.tagged == r.tag + b" BAD " + text + b"\r\n", r.tagged


def test_copy_out_of_a_read_only_mailbox_and_onto_itself(c):
    fill(c, 2)
    c.select("INBOX", examine=True)
    r = c.ok("COPY 1 Trash")
    assert b"[COPYUID " in r.tagged, r.tagged
    c.select("INBOX")
    r = c.ok("COPY 1:2 INBOX")
    # RFC 9051 §7.5.1: the new messages are announced before the tagged
    # reply; the first SELECT took 1:2 as recent, the copies join them
    # (RFC 3501 §7.3.2).
    assert r.untagged == [b"* 4 EXISTS\r\n", b"* 4 RECENT\r\n"], \
        r.untagged
    assert re.match(rb"^\S+ OK \[COPYUID \d+ 1:2 3:4\] COPY completed\r\n$",
                    r.tagged), r.tagged


# --- MOVE -----------------------------------------------------------------


def test_move_sends_copyuid_then_expunges(c):
    src = fill(c, 4)
    c.ok("CREATE Moved")
    _, dst_next, validity = mailbox_status(c, "Moved")
    c.select("INBOX")
    r = c.ok("MOVE 2:3 Moved")
    assert r.untagged == [
        b"* OK [COPYUID %d %d:%d %d:%d] Moved\r\n"
        % (validity, src[1], src[2], dst_next, dst_next + 1),
        b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"], r.untagged
    assert r.tagged == r.tag + b" OK MOVE completed\r\n", r.tagged
    # The numbers moved down: message 2 is the old message 4.
    got = fetch(c, "FETCH 1:* (UID)")
    assert [int(got[n]["UID"]) for n in sorted(got)] == [src[0], src[3]]
    assert mailbox_status(c, "Moved")[0] == 2


def test_uid_move_under_qresync_says_vanished(c):
    src = fill(c, 3)
    c.ok("ENABLE QRESYNC")
    c.select("INBOX")
    r = c.ok("UID MOVE %d Trash" % src[1])
    assert re.match(rb"^\* OK \[COPYUID \d+ %d \d+\] Moved\r\n$" % src[1],
                    r.untagged[0]), r.untagged
    assert r.untagged[1:] == [b"* VANISHED %d\r\n" % src[1]], r.untagged
    assert r.tagged == r.tag + b" OK UID MOVE completed\r\n"


def test_move_in_a_read_only_mailbox_is_refused(c):
    fill(c, 1)
    c.select("INBOX", examine=True)
    r = c.command("MOVE 1 Trash")
    assert r.tagged == r.tag + b" NO [READ-ONLY] The mailbox is read-only\r\n"
    assert mailbox_status(c, "Trash")[0] == 0


def test_move_with_the_saved_search_result(c):
    src = fill(c, 4)
    c.select("INBOX")
    c.ok("STORE 1,3 +FLAGS (\\Flagged)")
    c.ok("SEARCH RETURN (SAVE) FLAGGED")
    r = c.ok("MOVE $ Archive")
    # Both sets list the messages in the same order (RFC 4315 §3), so a
    # range is used only where both sides run on.
    assert re.match(rb"^\* OK \[COPYUID \d+ %d,%d 1,2\] Moved\r\n$"
                    % (src[0], src[2]), r.untagged[0]), r.untagged
    assert r.untagged[1:] == [b"* 3 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]


# --- EXPUNGE --------------------------------------------------------------


def test_expunge_removes_deleted_messages(srv, user, c):
    src = fill(c, 5)
    c.select("INBOX")
    other = login(srv, *user)
    other.select("INBOX")
    c.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    r = c.ok("EXPUNGE")
    assert r.untagged == [b"* 4 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"], \
        r.untagged
    assert r.tagged == r.tag + b" OK EXPUNGE completed\r\n"
    got = fetch(c, "FETCH 1:* (UID)")
    assert [int(got[n]["UID"]) for n in sorted(got)] == \
        [src[0], src[2], src[4]]
    # Another session on the mailbox hears of it at its next command.
    lines = wait_for(lambda: [l for l in other.ok("NOOP").untagged
                              if l.endswith(b" EXPUNGE\r\n")],
                     what="EXPUNGE in the other session")
    assert lines == [b"* 4 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"], lines
    other.close()
    # Nothing to expunge: OK, no responses.
    r = c.ok("EXPUNGE")
    assert r.untagged == []


def test_expunge_sees_deleted_set_by_another_session(srv, user, c):
    fill(c, 2)
    c.select("INBOX")
    other = login(srv, *user)
    other.select("INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.close()
    r = c.ok("EXPUNGE")
    assert b"* 1 EXPUNGE\r\n" in r.untagged, r.untagged
    assert mailbox_status(c, "INBOX")[0] == 1


def test_uid_expunge_removes_only_the_set(c):
    src = fill(c, 4)
    c.select("INBOX")
    c.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    r = c.ok("UID EXPUNGE %d,%d" % (src[1], src[3]))
    # src[3] is not \Deleted: only src[1] goes.
    assert r.untagged == [b"* 2 EXPUNGE\r\n"], r.untagged
    assert r.tagged == r.tag + b" OK UID EXPUNGE completed\r\n"
    got = fetch(c, "FETCH 1:* (UID FLAGS)")
    assert [int(got[n]["UID"]) for n in sorted(got)] == \
        [src[0], src[2], src[3]]
    assert "\\Deleted" in flag_set(got[1]["FLAGS"])
    assert "\\Deleted" in flag_set(got[2]["FLAGS"])
    r = c.command("UID EXPUNGE")
    assert r.tagged == r.tag + b" BAD Syntax: UID EXPUNGE uid-set\r\n"
    r = c.command("EXPUNGE 1")
    assert r.tagged == r.tag + b" BAD EXPUNGE takes no arguments\r\n"


def test_expunge_in_a_read_only_mailbox_is_refused(c):
    fill(c, 1, flags="(\\Deleted)")
    c.select("INBOX", examine=True)
    for cmd in ("EXPUNGE", "UID EXPUNGE 1:*"):
        r = c.command(cmd)
        assert r.tagged == r.tag + b" NO [READ-ONLY] The mailbox is " \
            b"read-only\r\n", r.tagged
    assert mailbox_status(c, "INBOX")[0] == 1


# --- APPEND ---------------------------------------------------------------


def test_append_with_flags_and_date_answers_appenduid(c):
    _, uidnext, validity = mailbox_status(c, "Drafts")
    msg = message(1)
    r = append(c, "Drafts", msg, "(\\Draft \\Seen $Pending)",
               "05-Jul-2023 14:30:00 +0200")
    assert r.tagged == r.tag + b" OK [APPENDUID %d %d] APPEND completed\r\n" \
        % (validity, uidnext), r.tagged
    c.select("Drafts")
    got = fetch(c, "UID FETCH %d (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
                % uidnext)
    items = got[1]
    assert flag_set(items["FLAGS"]) == {"\\Draft", "\\Seen", "$Pending",
                                        "\\Recent"}
    # Stored as an instant: the same moment in UTC.
    assert items["INTERNALDATE"] == b"05-Jul-2023 12:30:00 +0000", items
    assert int(items["RFC822.SIZE"]) == len(msg)
    assert items["BODY[]"] == msg
    # No flags, no date: none set, and now.
    r = append(c, "Drafts", message(2))
    assert appenduid(r) == (validity, uidnext + 1)


def test_append_variants_of_the_arguments(c):
    # Flags only, date only, an empty flag list.
    assert appenduid(append(c, "INBOX", message(1), "(\\Flagged)"))
    assert appenduid(append(c, "INBOX", message(2), None,
                            " 1-Jan-2020 00:00:00 +0000"))
    assert appenduid(append(c, "INBOX", message(3), "()"))
    # UTF-8-free mailbox names in any case of INBOX.
    assert appenduid(append(c, "inbox", message(4)))
    assert mailbox_status(c, "INBOX")[0] == 4


def test_append_to_a_missing_mailbox_says_trycreate(c):
    r = append(c, "Nowhere", message(1))
    assert r.tagged == r.tag + b" NO [TRYCREATE] No such mailbox\r\n"
    c.ok("CREATE Nowhere")
    assert appenduid(append(c, "Nowhere", message(1)))[1] == 1


@pytest.mark.parametrize("flags,date,text", [
    ("(\\Recent)", None, b"Invalid flag list"),
    ("(\\Bogus)", None, b"Invalid flag list"),
    (None, "31-Foo-2023 00:00:00 +0000", b"Invalid date-time, expected "
     b"\"dd-Mon-yyyy hh:mm:ss +zzzz\""),
    (None, "01-Jan-2023", b"Invalid date-time, expected "
     b"\"dd-Mon-yyyy hh:mm:ss +zzzz\""),
])
def test_append_refuses_bad_flags_and_dates(c, flags, date, text):
    r = append(c, "INBOX", message(1), flags, date)
    assert r.tagged == r.tag + b" BAD " + text + b"\r\n", r.tagged
    assert mailbox_status(c, "INBOX")[0] == 0


def test_append_syntax_and_empty_message(c):
    r = c.command("APPEND INBOX")
    assert r.tagged == r.tag + b" BAD Syntax: APPEND mailbox [(flags)] " \
        b"[date-time] message\r\n", r.tagged
    r = c.command('APPEND INBOX "not a literal"')
    assert r.status == "BAD", r.tagged
    r = append(c, "INBOX", b"")
    assert r.tagged == r.tag + b" NO An empty message cannot be stored\r\n"
    assert mailbox_status(c, "INBOX")[0] == 0


def test_append_literal_plus_and_literal8(c):
    msg = message(1)
    r = append(c, "INBOX", msg, "(\\Seen)", literal="plus")
    assert appenduid(r)[1] == 1
    # RFC 3516 §4.4: ~{n} may carry any bytes; they are stored as given.
    binary = b"Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\n" \
        b"\x00\x01\x02\xff\r\n"
    r = append(c, "INBOX", binary, literal="binary")
    assert appenduid(r)[1] == 2
    c.select("INBOX")
    got = fetch(c, "FETCH 1:2 (RFC822.SIZE)")
    assert int(got[1]["RFC822.SIZE"]) == len(msg)
    assert int(got[2]["RFC822.SIZE"]) == len(binary)


def test_append_keeps_8bit_bytes_of_a_plain_literal(c):
    # Not UTF-8 and no Content-Transfer-Encoding: stored as given.
    msg = b"Subject: caf\xe9\r\n\r\nna\xefve \xff\r\n"
    assert appenduid(append(c, "INBOX", msg))[1] == 1
    c.select("INBOX")
    got = fetch(c, "FETCH 1 (BODY.PEEK[])")
    assert got[1]["BODY[]"] == msg


def test_append_to_the_selected_mailbox_announces_exists(c):
    fill(c, 1)
    c.select("INBOX")
    r = append(c, "INBOX", message(2))
    # Both recent for this session: the first by its SELECT, the new one
    # as it arrives (RFC 3501 §7.3.2: RECENT with the new size).
    assert r.untagged == [b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n"], r.untagged
    assert appenduid(r)[1] == 2
    # Into another mailbox: nothing about INBOX.
    r = append(c, "Trash", message(3))
    assert r.untagged == [], r.untagged


def test_append_pipelined_after_literal_plus(c):
    """Two APPENDs with LITERAL+ and a NOOP in one write: each answered
    in order."""
    m1, m2 = message(1), message(2)
    c.send(b"p1 APPEND INBOX {%d+}\r\n%s\r\np2 APPEND INBOX (\\Seen) "
           b"{%d+}\r\n%s\r\np3 NOOP\r\n" % (len(m1), m1, len(m2), m2))
    r1 = c.read_reply(b"p1")
    r2 = c.read_reply(b"p2")
    r3 = c.read_reply(b"p3")
    assert appenduid(r1)[1] == 1 and appenduid(r2)[1] == 2
    assert r3.status == "OK"


def test_overquota_for_append_and_copy(srv, user, c):
    fill(c, 2)
    c.ok("CREATE Full")
    used = sum(len(message(i + 1)) for i in range(2))
    admin_ok(srv.admin_config, "user", "set", user[0],
             "quota=%d" % (used + len(message(9)) // 2))
    try:
        r = append(c, "INBOX", message(9))
        assert r.tagged == r.tag + b" NO [OVERQUOTA] Quota exceeded\r\n", \
            r.tagged
        c.select("INBOX")
        r = c.command("COPY 1:2 Full")
        assert r.tagged == r.tag + b" NO [OVERQUOTA] Quota exceeded\r\n", \
            r.tagged
        # A MOVE within the account takes no new space: allowed.
        r = c.ok("MOVE 1 Full")
        assert r.untagged[0].startswith(b"* OK [COPYUID "), r.untagged
        assert mailbox_status(c, "Full")[0] == 1
    finally:
        admin_ok(srv.admin_config, "user", "set", user[0], "quota=0")
    assert appenduid(append(c, "INBOX", message(9)))


def test_append_of_a_5_mb_literal(c):
    msg = message(1, size=5 * 1024 * 1024)
    assert len(msg) > 5 * 1000 * 1000
    r = append(c, "INBOX", msg, "(\\Seen)")
    uid = appenduid(r)[1]
    c.select("INBOX")
    got = fetch(c, "UID FETCH %d (RFC822.SIZE BODY.PEEK[])" % uid)
    assert int(got[1]["RFC822.SIZE"]) == len(msg)
    assert hashlib.sha256(got[1]["BODY[]"]).digest() == \
        hashlib.sha256(msg).digest()
    # And a search finds words in it.
    r = c.ok("SEARCH BODY \"Message number 1.\"")
    assert r.untagged[-1] == b"* SEARCH 1\r\n", r.untagged


def test_long_copyuid_is_whole_for_move_and_copy(c):
    """300 messages sent pipelined with LITERAL+, every other one
    expunged: COPY 1:* and MOVE 1:* name 150 scattered UIDs."""
    n = 300
    out = b""
    for i in range(n):
        m = message(i + 1)
        out += b"p%d APPEND INBOX {%d+}\r\n%s\r\n" % (i, len(m), m)
    c.send(out)
    for i in range(n):
        assert appenduid(c.read_reply(b"p%d" % i))[1] == i + 1
    c.select("INBOX")
    # Keep the odd UIDs: expunge the even ones.
    evens = ",".join(str(u) for u in range(2, n + 1, 2))
    c.ok("UID STORE %s +FLAGS.SILENT (\\Deleted)" % evens)
    r = c.ok("EXPUNGE")
    assert len(r.untagged) == n // 2
    odds = list(range(1, n + 1, 2))
    c.ok("CREATE Copies")
    c.ok("CREATE Moves")
    # The COPYUID is about 1,100 bytes: COPY sends it whole, tagged.
    r = c.ok("COPY 1:* Copies")
    m = re.match(rb"^\S+ OK \[COPYUID \d+ (\S+) (\S+)\] COPY completed\r\n$",
                 r.tagged)
    assert m, r.tagged[:200]
    assert m.group(1) == b",".join(b"%d" % u for u in odds)
    assert len(r.tagged) > 1024
    # MOVE sends it untagged, whole.
    r = c.ok("MOVE 1:* Moves")
    m = re.match(rb"^\* OK \[COPYUID \d+ (\S+) (\S+)\] Moved\r\n$",
                 r.untagged[0])
    assert m, r.untagged[0][:200]
    assert expand(m.group(1).decode()) == odds
    assert expand(m.group(2).decode()) == list(range(1, n // 2 + 1))
    assert r.untagged[1:] == [b"* %d EXPUNGE\r\n" % i
                              for i in range(n // 2, 0, -1)]
    assert mailbox_status(c, "Copies")[0] == n // 2
    assert mailbox_status(c, "Moves")[0] == n // 2


def test_append_literal_plus_above_the_prelogin_limit(c):
    msg = message(1, size=64 * 1024)
    r = append(c, "INBOX", msg, literal="plus")
    assert appenduid(r)[1] == 1
