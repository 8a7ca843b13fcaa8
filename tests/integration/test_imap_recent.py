"""\\Recent and RECENT for IMAP4rev1 sessions (issue #22, RFC 3501
§2.3.2): a message is recent in exactly one session, the first to select
its mailbox (or, with the mailbox selected, to hear of it) after it
arrived. SELECT answers `* N RECENT`, FETCH FLAGS shows `\\Recent`, SEARCH
RECENT/NEW/OLD use it, EXAMINE and STATUS look without claiming (RFC 3501
§6.3.2, §6.3.10), and IMAP4rev2 sessions neither see nor take it (RFC 9051
Appendix E). Replies are checked as bytes on the wire; one test drives
Python's imaplib."""

import imaplib
import re
import ssl
import threading

import pytest

from imap_helpers import (Imap, deliver, flag_set, login, new_user,
                          parse_fetch, parse_status, quote, restart,
                          start_imap_server, untagged_numbers, wait_for)

NOTIFY_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-recent"),
                             default_cert)


@pytest.fixture
def user(srv):
    return new_user(srv)


def recent_of(lines):
    """The number of the last '* N RECENT' among lines, or None."""
    n = untagged_numbers(lines, b"RECENT")
    return n[-1] if n else None


def fetch_flags(c, what="1:*"):
    """{sequence number: set of flags} from FETCH FLAGS."""
    out = {}
    for l in c.ok("FETCH %s FLAGS" % what).untagged:
        if re.match(rb"^\* \d+ FETCH ", l):
            seq, items = parse_fetch(l)
            out[seq] = flag_set(items["FLAGS"])
    return out


def recent_seqs(c):
    return sorted(s for s, f in fetch_flags(c).items() if "\\Recent" in f)


def search(c, keys):
    for l in c.ok("SEARCH %s" % keys).untagged:
        m = re.match(rb"^\* SEARCH((?: \d+)*)\r\n$", l)
        if m:
            return [int(x) for x in m.group(1).split()]
    raise AssertionError("no SEARCH response to %s" % keys)


def status_recent(c, mailbox="INBOX"):
    r = c.ok("STATUS %s (RECENT MESSAGES)" % quote(mailbox))
    (line,) = [l for l in r.untagged if l.startswith(b"* STATUS ")]
    return parse_status(line)[1]["RECENT"]


def test_select_takes_recent_once(srv, user):
    deliver(srv, user[0], "r1")
    deliver(srv, user[0], "r2")
    a = login(srv, *user)
    r = a.ok("SELECT INBOX")
    assert b"* 2 EXISTS\r\n" in r.untagged, r.untagged
    assert b"* 2 RECENT\r\n" in r.untagged, r.untagged
    # RFC 3501 §7.2.6: FLAGS lists the system flags, \Recent among them;
    # it is never a permanent flag (nobody can STORE it).
    assert (b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
            b"\\Recent)\r\n") in r.untagged, r.untagged
    assert (b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
            b"\\Draft \\*)] Flags permitted\r\n") in r.untagged, r.untagged
    assert a.ok("FETCH 1:* FLAGS").untagged == [
        b"* 1 FETCH (FLAGS (\\Recent))\r\n",
        b"* 2 FETCH (FLAGS (\\Recent))\r\n"]
    # \Seen and \Recent together; \Recent stays through STORE.
    r = a.ok("STORE 1 +FLAGS (\\Seen)")
    assert r.untagged == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n"], \
        r.untagged
    # \Recent is the server's (RFC 3501 §2.3.2): STORE cannot set it.
    assert a.command("STORE 2 -FLAGS (\\Recent)").status == "BAD"
    assert fetch_flags(a)[2] == {"\\Recent"}
    # The next session, and a SELECT again by the first, get nothing.
    b = login(srv, *user)
    r = b.ok("SELECT INBOX")
    assert b"* 0 RECENT\r\n" in r.untagged, r.untagged
    assert recent_seqs(b) == []
    r = a.ok("SELECT INBOX")
    assert b"* 0 RECENT\r\n" in r.untagged, r.untagged
    a.logout()
    b.logout()


def test_sessions_selecting_at_once_never_share(srv, user):
    """Four sessions send SELECT at the same moment, round after round,
    with new mail before each: each round exactly one of them hears
    all of it as RECENT, and the others none."""
    sessions = [login(srv, *user) for _ in range(4)]
    total = 0
    for rnd in range(8):
        n = 1 + rnd % 3
        for i in range(n):
            deliver(srv, user[0], "round %d.%d" % (rnd, i))
        total += n
        tag = "s%d" % rnd
        barrier = threading.Barrier(len(sessions))
        replies = [None] * len(sessions)

        def run(k):
            c = sessions[k]
            barrier.wait()
            c.send(("%s SELECT INBOX\r\n" % tag).encode())
            replies[k] = c.read_reply(tag)

        threads = [threading.Thread(target=run, args=(k,))
                   for k in range(len(sessions))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        counts = []
        for r in replies:
            assert r.status == "OK", r.tagged
            assert untagged_numbers(r.untagged, b"EXISTS") == [total]
            counts.append(recent_of(r.untagged))
        assert sorted(counts) == [0, 0, 0, n], (rnd, counts)
        # FETCH agrees with what each was told.
        for c, k in zip(sessions, counts):
            assert recent_seqs(c) == list(range(total - k + 1,
                                                total + 1)), (rnd, k)
    for c in sessions:
        c.logout()


def test_new_mail_while_selected_goes_to_the_first_that_hears(srv, user):
    deliver(srv, user[0], "old")
    a = login(srv, *user)
    b = login(srv, *user)
    assert recent_of(a.ok("SELECT INBOX").untagged) == 1
    assert recent_of(b.ok("SELECT INBOX").untagged) == 0
    deliver(srv, user[0], "new")
    seen = []

    def step():
        seen.extend(a.noop().untagged)
        return b"* 2 EXISTS\r\n" in seen
    wait_for(step, timeout=NOTIFY_TIMEOUT, what="EXISTS in session a")
    # RFC 3501 §7.3.2: RECENT right after the new size; a counts both its
    # recent messages.
    i = seen.index(b"* 2 EXISTS\r\n")
    assert seen[i + 1] == b"* 2 RECENT\r\n", seen
    assert recent_seqs(a) == [1, 2]
    # b hears of the message after a took it: not recent for b.
    r = b.noop()
    assert r.untagged == [b"* 2 EXISTS\r\n", b"* 0 RECENT\r\n"], r.untagged
    assert recent_seqs(b) == []
    a.logout()
    b.logout()


def test_append_and_idle_bring_recent(srv, user):
    a = login(srv, *user)
    assert recent_of(a.ok("SELECT INBOX").untagged) == 0
    msg = b"From: a@example.test\r\nSubject: appended\r\n\r\nhi\r\n"
    a.send(b"t1 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    r = a.read_reply("t1")
    assert r.status == "OK", r.tagged
    assert r.untagged == [b"* 1 EXISTS\r\n", b"* 1 RECENT\r\n"], r.untagged
    assert fetch_flags(a) == {1: {"\\Recent"}}
    # IDLE (RFC 2177): the new message is announced, and recent, at once.
    a.send(b"t2 IDLE\r\n")
    assert a.read_line() == b"+ idling\r\n"
    deliver(srv, user[0], "while idle")
    assert a.read_line(timeout=NOTIFY_TIMEOUT) == b"* 2 EXISTS\r\n"
    assert a.read_line() == b"* 2 RECENT\r\n"
    a.send(b"DONE\r\n")
    assert a.read_reply("t2").status == "OK"
    assert recent_seqs(a) == [1, 2]
    a.logout()


def test_examine_shows_recent_without_taking_it(srv, user):
    deliver(srv, user[0], "e1")
    deliver(srv, user[0], "e2")
    ex = login(srv, *user)
    r = ex.ok("EXAMINE INBOX")
    assert b"* 2 RECENT\r\n" in r.untagged, r.untagged
    assert b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n" in r.untagged
    assert recent_seqs(ex) == [1, 2]
    # New mail while examining: shown as recent, still not taken.
    deliver(srv, user[0], "e3")
    seen = []

    def step():
        seen.extend(ex.noop().untagged)
        return b"* 3 EXISTS\r\n" in seen
    wait_for(step, timeout=NOTIFY_TIMEOUT, what="EXISTS after EXAMINE")
    assert seen[seen.index(b"* 3 EXISTS\r\n") + 1] == b"* 3 RECENT\r\n"
    # RFC 3501 §6.3.2: EXAMINE must not make messages lose \Recent; the
    # first SELECT after it gets all three.
    s = login(srv, *user)
    assert recent_of(s.ok("SELECT INBOX").untagged) == 3
    assert recent_seqs(s) == [1, 2, 3]
    # Once taken, a later EXAMINE sees none.
    ex2 = login(srv, *user)
    assert recent_of(ex2.ok("EXAMINE INBOX").untagged) == 0
    assert recent_seqs(ex2) == []
    for c in (ex, s, ex2):
        c.logout()


def test_status_recent_counts_without_taking(srv, user):
    for i in range(3):
        deliver(srv, user[0], "s%d" % i)
    a = login(srv, *user)
    assert status_recent(a) == 3
    assert status_recent(a) == 3
    b = login(srv, *user)
    assert recent_of(b.ok("SELECT INBOX").untagged) == 3
    # Taken by b: none left for anyone else; b counts its own.
    assert status_recent(a) == 0
    assert status_recent(b) == 3
    deliver(srv, user[0], "s3")
    wait_for(lambda: status_recent(a) == 1, timeout=NOTIFY_TIMEOUT,
             what="STATUS RECENT 1")
    # An empty mailbox has none.
    assert status_recent(a, "Drafts") == 0
    a.logout()
    b.logout()


def test_search_recent_new_old(srv, user):
    deliver(srv, user[0], "o1")
    deliver(srv, user[0], "o2")
    first = login(srv, *user)
    first.select("INBOX")
    first.logout()
    deliver(srv, user[0], "n3")
    deliver(srv, user[0], "n4")
    c = login(srv, *user)
    assert recent_of(c.ok("SELECT INBOX").untagged) == 2
    c.ok("STORE 3 +FLAGS.SILENT (\\Seen)")
    assert search(c, "RECENT") == [3, 4]
    assert search(c, "NEW") == [4]
    assert search(c, "OLD") == [1, 2]
    assert search(c, "NOT RECENT") == [1, 2]
    assert search(c, "OR NEW 1") == [1, 4]
    assert search(c, "RECENT SEEN") == [3]
    assert search(c, "NOT OLD") == [3, 4]
    r = c.ok("UID SEARCH RECENT")
    assert b"* SEARCH 3 4\r\n" in r.untagged, r.untagged
    # Mail arriving while selected joins the recent run.
    deliver(srv, user[0], "n5")
    wait_for(lambda: b"* 5 EXISTS\r\n" in c.noop().untagged,
             timeout=NOTIFY_TIMEOUT, what="EXISTS 5")
    assert search(c, "RECENT") == [3, 4, 5]
    assert search(c, "NEW") == [4, 5]
    # SORT takes the same keys (RFC 5256).
    r = c.ok("SORT (REVERSE SUBJECT) UTF-8 RECENT")
    assert b"* SORT 5 4 3\r\n" in r.untagged, r.untagged
    c.logout()


def test_imap4rev2_neither_sees_nor_takes_recent(srv, user):
    deliver(srv, user[0], "v1")
    deliver(srv, user[0], "v2")
    v2 = login(srv, *user)
    v2.ok("ENABLE IMAP4rev2")
    r = v2.ok("SELECT INBOX")
    assert not any(b"RECENT" in l for l in r.untagged), r.untagged
    assert (b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
            in r.untagged), r.untagged
    assert not any(b"Recent" in l for l in v2.ok("FETCH 1:* FLAGS").untagged)
    r = v2.ok("SEARCH RECENT")
    assert r.untagged == [b"* ESEARCH (TAG \"%s\")\r\n" % r.tag], \
        r.untagged
    deliver(srv, user[0], "v3")
    seen = []

    def step():
        seen.extend(v2.noop().untagged)
        return b"* 3 EXISTS\r\n" in seen
    wait_for(step, timeout=NOTIFY_TIMEOUT, what="EXISTS in IMAP4rev2")
    assert not any(b"RECENT" in l for l in seen), seen
    # STATUS RECENT stays 0 for IMAP4rev2, as before.
    r = v2.ok("STATUS INBOX (RECENT)")
    assert r.untagged == [b'* STATUS "INBOX" (RECENT 0)\r\n'], r.untagged
    assert not any(b"Recent" in l for l in v2.ok("FETCH 1:* FLAGS").untagged)
    # The IMAP4rev2 session took nothing: an IMAP4rev1 one gets all three.
    v1 = login(srv, *user)
    assert recent_of(v1.ok("SELECT INBOX").untagged) == 3
    v1.logout()
    v2.logout()


def test_claims_survive_a_restart(srv, user):
    deliver(srv, user[0], "before restart")
    a = login(srv, *user)
    assert recent_of(a.ok("SELECT INBOX").untagged) == 1
    a.logout()
    restart(srv)
    b = login(srv, *user)
    assert recent_of(b.ok("SELECT INBOX").untagged) == 0
    b.logout()
    deliver(srv, user[0], "after restart")
    b = login(srv, *user)
    assert recent_of(b.ok("SELECT INBOX").untagged) == 1
    assert recent_seqs(b) == [2]
    b.logout()


def test_imaplib_sees_recent(srv, user):
    deliver(srv, user[0], "lib1")
    deliver(srv, user[0], "lib2")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=ctx,
                          timeout=60)
    try:
        m.login(*user)
        typ, data = m.select("INBOX")
        assert (typ, data) == ("OK", [b"2"])
        assert m.response("RECENT") == ("RECENT", [b"2"])
        typ, data = m.fetch("1:*", "(FLAGS)")
        assert typ == "OK"
        assert data == [b"1 (FLAGS (\\Recent))", b"2 (FLAGS (\\Recent))"]
        typ, data = m.search(None, "RECENT")
        assert (typ, data) == ("OK", [b"1 2"])
        m.store("1", "+FLAGS", "\\Seen")
        typ, data = m.search(None, "NEW")
        assert (typ, data) == ("OK", [b"2"])
        m.close()
        # Taken: a second SELECT has none.
        typ, data = m.select("INBOX")
        assert m.response("RECENT") == ("RECENT", [b"0"])
        m.logout()
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def test_another_user_with_write_rights_does_not_take_the_owners_recent(srv):
    """R3 (review of \\Recent): a user the owner lets set \\Seen on INBOX
    (a delegate) who keeps an IMAP4rev1 session on it took every \\Recent,
    so the owner's client never heard RECENT of new mail. Another user's
    session now looks without claiming, as EXAMINE does (RFC 3501
    §6.3.2); the owner's sessions still share out \\Recent as before."""
    owner, delegate = new_user(srv), new_user(srv)
    shared = quote("Other Users/%s/INBOX" % owner[0])
    with login(srv, *owner) as a:
        a.ok('SETACL INBOX "%s" lrs' % delegate[0])
    deliver(srv, owner[0], "d1")
    deliver(srv, owner[0], "d2")
    with login(srv, *delegate) as d:
        r = d.ok("SELECT %s" % shared)
        assert b"[READ-WRITE]" in r.tagged, r.tagged
        # Unclaimed, so the delegate sees them recent too.
        assert recent_of(r.untagged) == 2, r.untagged
        assert recent_seqs(d) == [1, 2]
        # New mail while the delegate has the mailbox selected.
        deliver(srv, owner[0], "d3")
        heard = []
        wait_for(lambda: heard.extend(d.ok("NOOP").untagged) or
                 b"* 3 EXISTS\r\n" in heard, what="the delegate hears d3")
        assert 3 in recent_seqs(d)
        # The owner still gets all three.
        with login(srv, *owner) as a:
            assert status_recent(a) == 3
            r = a.ok("SELECT INBOX")
            assert recent_of(r.untagged) == 3, r.untagged
            assert recent_seqs(a) == [1, 2, 3]
            # Claimed by the owner: gone for the owner's next session.
            with login(srv, *owner) as a2:
                r = a2.ok("SELECT INBOX")
                assert recent_of(r.untagged) == 0, r.untagged
        # The delegate's view claimed nothing, and counts only what is
        # unclaimed.
        assert status_recent(d, "Other Users/%s/INBOX" % owner[0]) == 0
