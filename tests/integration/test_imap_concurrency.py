"""Several IMAP sessions on one mailbox (RFC 9051 §7.5.1 and §5.2, RFC
2177, RFC 7162): new messages, flag changes and expunges made by one
session (or by an SMTP delivery) are announced to the others at NOOP or
at once in IDLE; never an EXPUNGE while answering FETCH, STORE or SEARCH,
so sequence numbers hold still until the client may see them shift; and
a QRESYNC client coming back learns what it missed (VANISHED (EARLIER)
and FETCH ... MODSEQ)."""

import random
import re

import pytest

from imap_helpers import (deliver, flag_set, login, new_user, parse_fetch,
                          restart, start_imap_server, untagged_numbers,
                          wait_for)

# Generous bound for a change to reach another session; no assertion on
# how fast it is, only that it comes.
NOTIFY_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-concurrency"),
                             default_cert)


@pytest.fixture
def user(srv):
    return new_user(srv)


@pytest.fixture
def sessions(srv, user):
    """open(n) -> n sessions of user with INBOX selected."""
    opened = []

    def open_(n, enable=None):
        out = []
        for _ in range(n):
            c = login(srv, *user)
            if enable:
                c.ok("ENABLE " + enable)
            c.select("INBOX")
            opened.append(c)
            out.append(c)
        return out
    yield open_
    for c in opened:
        c.close()


def fetch_map(reply):
    """{seq: items} of the FETCH lines of a reply."""
    out = {}
    for l in reply.untagged:
        if re.match(rb"^\* \d+ FETCH ", l):
            n, items = parse_fetch(l)
            out.setdefault(n, {}).update(items)
    return out


def uid_flags(c):
    """[(uid, flags)] of every message of the selected mailbox, by
    sequence number, from FETCH 1:* (UID FLAGS)."""
    r = c.ok("FETCH 1:* (UID FLAGS)")
    m = fetch_map(r)
    assert sorted(m) == list(range(1, len(m) + 1)), r.untagged
    return [(int(m[i]["UID"]), flag_set(m[i]["FLAGS"]))
            for i in range(1, len(m) + 1)]


def uids(c):
    return [u for u, _ in uid_flags(c)]


def without_recent(state):
    """uid_flags() without \\Recent, which is each session's own (RFC 3501
    §2.3.2), not the message's."""
    return [(u, f - {"\\Recent"}) for u, f in state]


def recent_uids(state):
    return {u for u, f in state if "\\Recent" in f}


def apply_expunges(model, lines):
    """Applies '* N EXPUNGE' lines, in order, to a list indexed by
    sequence number - 1 (RFC 9051 §7.5.1: each one renumbers the messages
    after it at once)."""
    model = list(model)
    for n in untagged_numbers(lines, b"EXPUNGE"):
        assert 1 <= n <= len(model), (n, model, lines)
        del model[n - 1]
    return model


def exists_after(lines):
    ns = untagged_numbers(lines, b"EXISTS")
    return ns[-1] if ns else None


def noop_until(c, predicate, what):
    """NOOPs until predicate(all untagged lines so far) holds; returns
    those lines."""
    seen = []

    def step():
        seen.extend(c.noop().untagged)
        return predicate(seen)
    wait_for(step, timeout=NOTIFY_TIMEOUT, interval=0.1, what=what)
    return seen


def deliver_n(srv, address, n, prefix="m"):
    for i in range(1, n + 1):
        deliver(srv, address, "%s%d" % (prefix, i))


def parse_uid_set(text):
    out = set()
    for part in text.split(","):
        if ":" in part:
            a, b = sorted(map(int, part.split(":")))
            out.update(range(a, b + 1))
        else:
            out.add(int(part))
    return out


# --- new messages, flags, expunges at NOOP ---------------------------------


def test_new_message_announced_to_every_session(srv, user, sessions):
    a, b, c = sessions(3)
    deliver(srv, user[0], "hello all")
    for s in (a, b, c):
        lines = noop_until(s, lambda ls: exists_after(ls) == 1,
                           "* 1 EXISTS")
        # Only EXISTS (and perhaps its FETCH/RECENT) - no expunges.
        assert not untagged_numbers(lines, b"EXPUNGE"), lines
    assert len(uids(a)) == 1 and uids(a) == uids(b) == uids(c)


def test_flag_change_announced_at_noop(srv, user, sessions):
    deliver_n(srv, user[0], 2)
    a, b = sessions(2)
    r = b.ok("STORE 2 +FLAGS (\\Flagged)")
    # B's own STORE answers with the new flags.
    assert "\\Flagged" in flag_set(fetch_map(r)[2]["FLAGS"]), r.untagged

    def flagged(lines):
        for l in lines:
            if re.match(rb"^\* 2 FETCH ", l):
                return "\\Flagged" in flag_set(parse_fetch(l)[1]["FLAGS"])
        return False
    lines = noop_until(a, flagged, "* 2 FETCH (FLAGS (\\Flagged))")
    assert not any(re.match(rb"^\* 1 FETCH ", l) for l in lines), lines
    # Removing it is announced the same way.
    b.ok("STORE 2 -FLAGS.SILENT (\\Flagged)")
    noop_until(a, lambda ls: any(
        re.match(rb"^\* 2 FETCH ", l) and "\\Flagged" not in
        flag_set(parse_fetch(l)[1]["FLAGS"]) for l in ls),
        "* 2 FETCH without \\Flagged")


def test_expunge_by_another_session_shifts_numbers_at_noop(srv, user,
                                                           sessions):
    deliver_n(srv, user[0], 5)
    a, b = sessions(2)
    before = uids(a)
    assert len(before) == 5 and uids(b) == before
    b.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    r = b.ok("EXPUNGE")
    expected = [before[0], before[2], before[4]]
    # B learns the numbers at once, in an order it can apply one by one.
    assert apply_expunges(before, r.untagged) == expected, r.untagged
    lines = noop_until(a, lambda ls: len(untagged_numbers(
        ls, b"EXPUNGE")) == 2, "two EXPUNGE responses")
    assert apply_expunges(before, lines) == expected, lines
    assert uids(a) == expected
    # Sequence numbers now follow: message 2 is the old message 3.
    r = a.ok("FETCH 2 (UID)")
    assert int(fetch_map(r)[2]["UID"]) == before[2], r.untagged


def test_no_expunge_while_answering_fetch_store_search(srv, user, sessions):
    """RFC 9051 §7.5.1: an EXPUNGE is not sent while answering FETCH,
    STORE or SEARCH, so that the client's sequence numbers stay valid;
    it comes at the next NOOP."""
    deliver_n(srv, user[0], 3)
    a, b = sessions(2)
    before = uids(a)
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    # FETCH: message 3 is still number 3 for A.
    r = a.ok("FETCH 3 (UID)")
    assert not untagged_numbers(r.untagged, b"EXPUNGE"), r.untagged
    assert not any(b"VANISHED" in l for l in r.untagged), r.untagged
    assert int(fetch_map(r)[3]["UID"]) == before[2], r.untagged
    r = a.ok("FETCH 1:3 (FLAGS)")
    assert not untagged_numbers(r.untagged, b"EXPUNGE"), r.untagged
    # STORE on message 3 changes the old message 3.
    r = a.ok("STORE 3 +FLAGS (\\Seen)")
    assert not untagged_numbers(r.untagged, b"EXPUNGE"), r.untagged
    fm = fetch_map(r)
    assert 3 in fm and "\\Seen" in flag_set(fm[3]["FLAGS"]), r.untagged
    r = a.ok("SEARCH ALL")
    assert not untagged_numbers(r.untagged, b"EXPUNGE"), r.untagged
    search = [l for l in r.untagged if l.startswith(b"* SEARCH")]
    assert len(search) == 1, r.untagged
    # Numbers in the SEARCH result are still the old ones: 3 is there.
    assert b"3" in search[0].split(), search
    # NOOP: now the expunge is announced, and numbers shift.
    lines = noop_until(a, lambda ls: untagged_numbers(ls, b"EXPUNGE"),
                       "* 2 EXPUNGE")
    assert untagged_numbers(lines, b"EXPUNGE") == [2], lines
    got = uid_flags(a)
    assert [u for u, _ in got] == [before[0], before[2]], got
    assert "\\Seen" in got[1][1], got
    # B sees A's \Seen on the same message.
    assert "\\Seen" in dict(uid_flags(b))[before[2]]


# RFC 9051 §6.4.1 and §6.4.3: CLOSE and EXPUNGE remove the messages that
# have \Deleted in the mailbox, whoever set it; a session's own picture of
# the flags may be behind another session's STORE when the command comes.


@pytest.mark.parametrize("cmd", ["CLOSE", "EXPUNGE"])
def test_removes_messages_deleted_by_another_session(srv, user, sessions,
                                                     cmd):
    deliver_n(srv, user[0], 3)
    a, b = sessions(2)
    u = uids(b)
    b.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % u[0])
    r = a.ok(cmd)
    if cmd == "EXPUNGE":
        assert apply_expunges(u, r.untagged) == u[1:], r.untagged
    noop_until(b, lambda ls: untagged_numbers(ls, b"EXPUNGE"),
               "the expunge of %d" % u[0])
    assert uids(b) == u[1:]


@pytest.mark.parametrize("cmd", ["CLOSE", "EXPUNGE"])
def test_keeps_messages_undeleted_by_another_session(srv, user, sessions,
                                                     cmd):
    deliver_n(srv, user[0], 3)
    a, b = sessions(2)
    u = uids(b)
    a.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % u[1])
    b.ok("UID STORE %d -FLAGS.SILENT (\\Deleted)" % u[1])
    r = a.ok(cmd)
    assert not untagged_numbers(r.untagged, b"EXPUNGE"), r.untagged
    b.noop()
    # Nothing was removed: the message lost its \Deleted before.
    assert uids(b) == u
    c = login(srv, *user)
    c.select("INBOX")
    assert uids(c) == u
    c.close()


def test_no_expunge_while_no_command_is_in_progress(srv, user, sessions):
    deliver_n(srv, user[0], 2)
    a, b = sessions(2)
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    deliver(srv, user[0], "while quiet")
    # RFC 9051 §7.5.1: an EXPUNGE response MUST NOT be sent when no
    # command is in progress (IDLE aside); the client could be about to
    # send a command with sequence numbers.
    quiet = a.conn.pending(1.0)
    assert b"EXPUNGE" not in quiet and b"VANISHED" not in quiet, quiet
    lines = [l + b"\r\n" for l in quiet.split(b"\r\n") if l]
    lines += noop_until(a, lambda ls: untagged_numbers(
        lines + ls, b"EXPUNGE"), "* 1 EXPUNGE")
    assert untagged_numbers(lines, b"EXPUNGE") == [1], lines


def test_three_sessions_converge(srv, user, sessions):
    deliver_n(srv, user[0], 4)
    a, b, c = sessions(3)
    base = uids(a)
    a.ok("STORE 1 +FLAGS.SILENT (\\Answered)")
    b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    deliver(srv, user[0], "late")
    c.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
    for s in (a, b, c):
        noop_until(s, lambda ls, s=s: len(uids(s)) == 4 and
                   base[2] not in uids(s), "a converged view")
    states = [uid_flags(s) for s in (a, b, c)]
    # A message is recent in one session only: a took the first four at
    # SELECT, and the late one went to whichever heard of it first.
    recent = [recent_uids(st) for st in states]
    assert recent[0] >= set(base) - {base[2]}, recent
    assert sum(len(r) for r in recent) == len(set().union(*recent)) == 4, \
        recent
    states = [without_recent(st) for st in states]
    assert states[0] == states[1] == states[2], states
    by_uid = dict(states[0])
    assert "\\Answered" in by_uid[base[0]]
    assert "\\Flagged" in by_uid[base[1]]
    assert base[2] not in by_uid
    assert len(by_uid) == 4


def test_selected_mailbox_deleted_by_another_session(srv, user, sessions):
    (b,) = sessions(1)
    a = login(srv, *user)
    b.ok('CREATE "Doomed"')
    a.select("Doomed")
    b.ok('DELETE "Doomed"')
    a.send(b"n1 NOOP\r\n")
    first = a.read_line()
    # The session cannot go on with a mailbox that is gone: either it
    # says BYE (RFC 9051 §7.1.5) and closes, or it answers and leaves
    # the client in a consistent state. Never a silent close or a crash.
    if first.startswith(b"* BYE "):
        assert a.conn.wait_closed() == b""
    else:
        while not first.startswith(b"n1 "):
            first = a.read_line()
        assert first.startswith((b"n1 OK", b"n1 NO")), first
    a.close()
    # The server and the other session carry on.
    b.noop()
    login(srv, *user).logout()


def test_rename_of_selected_inbox_empties_it_for_the_other_session(
        srv, user, sessions):
    deliver_n(srv, user[0], 3)
    (a,) = sessions(1)
    before = uids(a)
    b = login(srv, *user)
    b.ok('RENAME "INBOX" "Kept"')
    # RFC 9051 §6.3.6: the messages move to the new name and INBOX stays,
    # empty; a session with INBOX selected hears them expunged.
    lines = noop_until(a, lambda ls: len(untagged_numbers(
        ls, b"EXPUNGE")) == 3, "three EXPUNGE responses")
    assert apply_expunges(before, lines) == [], lines
    deliver(srv, user[0], "after the rename")
    lines = noop_until(a, lambda ls: exists_after(ls) == 1, "* 1 EXISTS")
    assert len(uids(a)) == 1 and uids(a)[0] > before[-1]
    b.select("Kept")
    assert len(uids(b)) == 3
    b.close()


# --- IDLE --------------------------------------------------------------------


def start_idle(c, tag=b"i1"):
    c.send(tag + b" IDLE\r\n")
    cont = c.conn.readline()
    assert cont.startswith(b"+"), cont


def stop_idle(c, tag=b"i1"):
    c.send(b"DONE\r\n")
    return c.read_reply(tag)


def test_idle_woken_by_smtp_delivery(srv, user, sessions):
    (a,) = sessions(1)
    start_idle(a)
    deliver(srv, user[0], "wake up")
    # RFC 2177: the server sends untagged updates while idling.
    line = a.read_line(timeout=NOTIFY_TIMEOUT)
    while not re.match(rb"^\* \d+ EXISTS\r\n$", line):
        assert not line.startswith(b"i1 "), line
        line = a.read_line(timeout=NOTIFY_TIMEOUT)
    assert line == b"* 1 EXISTS\r\n", line
    r = stop_idle(a)
    assert r.status == "OK", r.tagged
    assert len(uids(a)) == 1


def test_idle_woken_by_other_sessions_store_and_expunge(srv, user,
                                                        sessions):
    deliver_n(srv, user[0], 2)
    a, b = sessions(2)
    before = uids(a)
    start_idle(a)
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    line = a.read_line(timeout=NOTIFY_TIMEOUT)
    assert re.match(rb"^\* 1 FETCH ", line), line
    assert "\\Flagged" in flag_set(parse_fetch(line)[1]["FLAGS"]), line
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    # While idling, expunges are announced at once (IDLE is not FETCH,
    # STORE or SEARCH). A FETCH for the \Deleted flag may come first.
    line = a.read_line(timeout=NOTIFY_TIMEOUT)
    while re.match(rb"^\* 1 FETCH ", line):
        line = a.read_line(timeout=NOTIFY_TIMEOUT)
    assert line == b"* 1 EXPUNGE\r\n", line
    r = stop_idle(a)
    assert r.status == "OK", r.tagged
    assert uids(a) == [before[1]]


def test_idle_sees_nothing_from_other_mailboxes(srv, user, sessions):
    (a,) = sessions(1)
    other = login(srv, *user)
    other.ok('CREATE "Elsewhere"')
    start_idle(a)
    other.ok('APPEND "Elsewhere" {18+}\r\nSubject: x\r\n\r\nbody')
    assert a.conn.pending(1.0) == b""
    assert stop_idle(a).status == "OK"
    other.close()


# --- CONDSTORE / QRESYNC -----------------------------------------------------


def test_qresync_select_reports_what_changed_while_away(srv, user):
    address, password = user
    deliver_n(srv, address, 4)
    a = login(srv, address, password)
    a.ok("ENABLE QRESYNC")
    info = a.select("INBOX")
    v, m = info.uidvalidity, info.highestmodseq
    assert v and m, info.reply.untagged
    u = uids(a)
    assert len(u) == 4
    a.logout()

    b = login(srv, address, password)
    b.select("INBOX")
    b.ok("UID STORE %d +FLAGS (\\Flagged)" % u[1])
    b.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % u[2])
    b.ok("EXPUNGE")
    b.logout()
    deliver(srv, address, "new while away")

    a = login(srv, address, password)
    a.ok("ENABLE QRESYNC")
    r = a.ok("SELECT INBOX (QRESYNC (%d %d))" % (v, m))
    vanished = [l for l in r.untagged if l.startswith(b"* VANISHED")]
    # RFC 7162 §3.2.5: the UIDs expunged since m, as VANISHED (EARLIER).
    assert len(vanished) == 1, r.untagged
    mv = re.match(rb"^\* VANISHED \(EARLIER\) ([0-9:,]+)\r\n$", vanished[0])
    assert mv, vanished
    assert parse_uid_set(mv.group(1).decode()) == {u[2]}, vanished
    fetched = {}
    for l in r.untagged:
        if re.match(rb"^\* \d+ FETCH ", l):
            n, items = parse_fetch(l)
            # FETCH with UID, FLAGS and MODSEQ (RFC 7162 §3.2.5.2).
            assert {"UID", "FLAGS", "MODSEQ"} <= set(items), l
            fetched[int(items["UID"])] = (n, flag_set(items["FLAGS"]),
                                          int(items["MODSEQ"][0]))
    assert u[1] in fetched, r.untagged
    assert "\\Flagged" in fetched[u[1]][1] and fetched[u[1]][2] > m, fetched
    # Sequence numbers are those after the expunge: u[1] is still 2.
    assert fetched[u[1]][0] == 2, fetched
    # Unchanged messages are not sent.
    assert u[0] not in fetched and u[3] not in fetched, fetched
    exists = untagged_numbers(r.untagged, b"EXISTS")
    assert exists == [4], r.untagged
    hm = [int(x) for x in re.findall(rb"\[HIGHESTMODSEQ (\d+)\]",
                                     b"".join(r.untagged))]
    assert hm and hm[0] > m, r.untagged
    a.logout()


def test_qresync_session_gets_vanished_not_expunge(srv, user, sessions):
    deliver_n(srv, user[0], 3)
    (a,) = sessions(1, enable="QRESYNC")
    (b,) = sessions(1)
    u = uids(a)
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    lines = noop_until(a, lambda ls: any(l.startswith(b"* VANISHED")
                                         for l in ls), "* VANISHED")
    # RFC 7162 §3.2.10: after ENABLE QRESYNC, VANISHED replaces EXPUNGE.
    assert not untagged_numbers(lines, b"EXPUNGE"), lines
    v = [l for l in lines if l.startswith(b"* VANISHED")]
    assert v == [b"* VANISHED %d\r\n" % u[1]], v
    assert uids(a) == [u[0], u[2]]


def test_condstore_flag_change_carries_modseq(srv, user, sessions):
    deliver_n(srv, user[0], 1)
    (a,) = sessions(1, enable="CONDSTORE")
    (b,) = sessions(1)
    r = a.ok("FETCH 1 (MODSEQ)")
    m0 = int(fetch_map(r)[1]["MODSEQ"][0])
    b.ok("STORE 1 +FLAGS (\\Answered)")
    lines = noop_until(a, lambda ls: any(re.match(rb"^\* 1 FETCH ", l)
                                         for l in ls), "* 1 FETCH")
    fl = [parse_fetch(l)[1] for l in lines if re.match(rb"^\* 1 FETCH ", l)]
    # RFC 7162 §3.2.4: once CONDSTORE is enabled, every untagged FETCH,
    # also one caused by an external agent, carries UID and MODSEQ.
    assert "MODSEQ" in fl[-1] and int(fl[-1]["MODSEQ"][0]) > m0, fl
    assert "UID" in fl[-1], fl
    assert "\\Answered" in flag_set(fl[-1]["FLAGS"])
    # In IDLE too.
    start_idle(a)
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    line = a.read_line(timeout=NOTIFY_TIMEOUT)
    n, items = parse_fetch(line)
    assert n == 1 and {"UID", "MODSEQ", "FLAGS"} <= set(items), line
    assert stop_idle(a).status == "OK"


def test_qresync_select_with_stale_uidvalidity_sends_no_vanished(srv, user):
    address, password = user
    deliver_n(srv, address, 2)
    a = login(srv, address, password)
    a.ok("ENABLE QRESYNC")
    info = a.select("INBOX")
    a.ok("UNSELECT")
    r = a.ok("SELECT INBOX (QRESYNC (%d 1))" % (info.uidvalidity + 1))
    # RFC 7162 §3.2.5.2: with another UIDVALIDITY, the client must start
    # over; the server sends no VANISHED and no FETCH for it.
    assert not any(l.startswith(b"* VANISHED") or b" FETCH " in l
                   for l in r.untagged), r.untagged
    assert untagged_numbers(r.untagged, b"EXISTS") == [2]
    a.logout()


def test_qresync_parameter_without_enable_is_bad(srv, user, sessions):
    c = login(srv, *user)
    info = c.select("INBOX")
    c.ok("UNSELECT")
    # RFC 7162 §3.2.5: QRESYNC parameter before ENABLE QRESYNC -> BAD.
    r = c.command("SELECT INBOX (QRESYNC (%d 1))" % info.uidvalidity)
    assert r.status == "BAD", r.tagged
    c.logout()


def test_uid_fetch_changedsince_vanished(srv, user, sessions):
    deliver_n(srv, user[0], 4)
    (a,) = sessions(1, enable="QRESYNC")
    (b,) = sessions(1)
    u = uids(a)
    r = a.ok("STATUS INBOX (HIGHESTMODSEQ)")
    m = int(re.search(rb"HIGHESTMODSEQ (\d+)", r.untagged[0]).group(1))
    a.ok("UNSELECT")
    b.ok("UID STORE %d +FLAGS.SILENT (\\Seen)" % u[0])
    b.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % u[3])
    b.ok("UID EXPUNGE %d" % u[3])
    a.select("INBOX")
    r = a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % m)
    # RFC 7162 §3.2.6: VANISHED (EARLIER) for the UIDs of the set
    # expunged since m, then the messages changed since m with MODSEQ.
    v = [l for l in r.untagged if l.startswith(b"* VANISHED (EARLIER) ")]
    assert len(v) == 1 and parse_uid_set(
        v[0].split()[-1].decode()) == {u[3]}, r.untagged
    changed = {int(items["UID"]): items for n, items in
               (parse_fetch(l) for l in r.untagged if b" FETCH " in l)}
    assert set(changed) == {u[0]}, r.untagged
    assert "\\Seen" in flag_set(changed[u[0]]["FLAGS"])
    assert int(changed[u[0]]["MODSEQ"][0]) > m
    # Without VANISHED only the changed messages come (RFC 7162 §3.1.4.1).
    r = a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m)
    assert not any(l.startswith(b"* VANISHED") for l in r.untagged)
    assert [int(parse_fetch(l)[1]["UID"]) for l in r.untagged
            if b" FETCH " in l] == [u[0]], r.untagged


def test_two_idlers_woken_by_one_delivery(srv, user, sessions):
    a, b = sessions(2)
    start_idle(a)
    start_idle(b)
    deliver(srv, user[0], "for both")
    for s in (a, b):
        line = s.read_line(timeout=NOTIFY_TIMEOUT)
        while not line.endswith(b" EXISTS\r\n"):
            line = s.read_line(timeout=NOTIFY_TIMEOUT)
        assert line == b"* 1 EXISTS\r\n"
        assert stop_idle(s).status == "OK"


def test_sequence_numbers_stay_consistent_under_churn(srv, user, sessions):
    """A keeps a model of its mailbox from the untagged responses alone
    (EXISTS appends, EXPUNGE removes by number, in order); after every
    round its FETCH 1:* (UID) must agree with the model, while B expunges
    and new mail arrives."""
    rnd = random.Random(9051)
    deliver_n(srv, user[0], 8)
    a, b = sessions(2)
    model = uids(a)
    assert len(model) == 8

    def apply(lines):
        for l in lines:
            m = re.match(rb"^\* (\d+) (EXPUNGE|EXISTS)\r\n$", l)
            if not m:
                continue
            n = int(m.group(1))
            if m.group(2) == b"EXPUNGE":
                assert 1 <= n <= len(model), (n, model, lines)
                del model[n - 1]
            else:
                assert n >= len(model), (n, model, lines)
                model.extend([None] * (n - len(model)))

    for round_ in range(12):
        live = uids(b)
        victims = rnd.sample(live, min(len(live), rnd.choice((0, 1, 2))))
        for v in victims:
            b.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % v)
        if victims:
            b.ok("UID EXPUNGE %s" % ",".join(map(str, victims)))
        if rnd.random() < 0.5:
            deliver(srv, user[0], "churn-%d" % round_)
        # FETCH, STORE and SEARCH before NOOP: no EXPUNGE among them.
        r = a.ok("FETCH 1:* (UID)")
        assert not untagged_numbers(r.untagged, b"EXPUNGE"), r.untagged
        apply(r.untagged)
        r = a.ok("NOOP")
        apply(r.untagged)
        r = a.ok("FETCH 1:* (UID)")
        apply(r.untagged)
        got = fetch_map(r)
        assert sorted(got) == list(range(1, len(model) + 1)), \
            (round_, model, r.untagged)
        for i, uid in enumerate(model):
            actual = int(got[i + 1]["UID"])
            assert uid is None or uid == actual, (round_, model, r.untagged)
            model[i] = actual
        # The model may trail B by changes not yet seen; it converges.
    # B's view is current (its own changes); A catches up at NOOP.
    def caught_up():
        apply(a.noop().untagged)
        return model == uids(b)
    wait_for(caught_up, timeout=NOTIFY_TIMEOUT, interval=0.1,
             what="A's model to match B")
    assert uids(a) == model


def test_keywords_follow_their_messages_under_churn(srv, user, sessions):
    """The view keeps keywords apart from its messages (by UID): B sets
    and clears keywords on messages in random order and expunges some;
    A, told only by its own untagged FETCH and EXPUNGE responses, must
    end with every message's keywords as a fresh session reads them."""
    rnd = random.Random(7162)
    deliver_n(srv, user[0], 12)
    a, b = sessions(2)
    words = ["$Label1", "$Label2", "Work", "$Junk"]
    for round_ in range(10):
        live = uids(b)
        for uid in rnd.sample(live, min(len(live), 4)):
            kw = " ".join(rnd.sample(words, rnd.randint(0, 2)))
            b.ok("UID STORE %d FLAGS.SILENT (%s)" % (uid, kw))
        if len(live) > 4 and rnd.random() < 0.5:
            victim = rnd.choice(live)
            b.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % victim)
            b.ok("UID EXPUNGE %d" % victim)
        # A's own STORE on a keyword-carrying message, answered from its
        # view.
        mine = rnd.choice(uids(a))
        r = a.ok("UID STORE %d +FLAGS (\\Flagged)" % mine)
        assert any(b"\\Flagged" in l for l in r.untagged), r.untagged
        a.ok("NOOP")
    a.ok("NOOP")
    c = login(srv, *user)
    try:
        c.select("INBOX")
        truth = uid_flags(c)
    finally:
        c.close()
    # a, the first to select, holds \Recent on every message; c none.
    assert recent_uids(truth) == set()
    wait_for(lambda: without_recent(uid_flags(a)) == truth,
             timeout=NOTIFY_TIMEOUT, interval=0.1,
             what="A's flags to match a fresh session's")
    assert recent_uids(uid_flags(a)) == {u for u, _ in truth}
    # Keywords were really there to follow.
    assert any(f - {"\\Flagged", "\\Seen", "\\Recent"} for _, f in truth)


def test_uids_and_uidvalidity_survive_a_restart(postern_factory,
                                                 default_cert, tmp_path):
    srv = start_imap_server(postern_factory, tmp_path, default_cert)
    address, password = new_user(srv)
    deliver_n(srv, address, 3)
    c = login(srv, address, password)
    c.ok("ENABLE CONDSTORE")
    info = c.select("INBOX")
    before = uid_flags(c)
    c.ok("STORE 2 +FLAGS (\\Flagged)")
    c.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    hm = int(re.search(rb"HIGHESTMODSEQ (\d+)", c.ok(
        "STATUS INBOX (HIGHESTMODSEQ)").untagged[0]).group(1))
    c.close()
    restart(srv)
    deliver(srv, address, "after restart")
    c = login(srv, address, password)
    c.ok("ENABLE CONDSTORE")
    again = c.select("INBOX")
    # RFC 9051 §2.3.1.1: same UIDVALIDITY, same UIDs, UIDs never reused;
    # RFC 7162 §3.1.1: MODSEQ never goes back.
    assert again.uidvalidity == info.uidvalidity
    now = uid_flags(c)
    assert [u for u, _ in now[:2]] == [before[0][0], before[1][0]], now
    assert "\\Flagged" in now[1][1]
    assert now[2][0] > before[2][0], (before, now)
    assert again.highestmodseq > hm
    c.logout()


@pytest.mark.parametrize("store", ["+FLAGS (\\Seen)",
                                   "+FLAGS.SILENT (\\Seen)"])
def test_condstore_store_replies_carry_uid_and_modseq(srv, user, sessions,
                                                      store):
    deliver_n(srv, user[0], 2)
    (a,) = sessions(1, enable="CONDSTORE")
    u = uids(a)
    r = a.ok("STORE 2 " + store)
    fl = [parse_fetch(l) for l in r.untagged if b" FETCH " in l]
    # RFC 7162 §3.1.3: the new MODSEQ is reported, even with .SILENT;
    # §3.2.4: after a CONDSTORE enabling command every untagged FETCH
    # includes UID and MODSEQ, whatever caused it.
    assert len(fl) == 1 and fl[0][0] == 2, r.untagged
    items = fl[0][1]
    assert "MODSEQ" in items and "UID" in items, r.untagged
    assert int(items["UID"]) == u[1], r.untagged


def test_condstore_fetch_that_sets_seen_carries_uid_and_modseq(srv, user,
                                                                sessions):
    deliver_n(srv, user[0], 1)
    (a,) = sessions(1, enable="CONDSTORE")
    u = uids(a)
    r = a.ok("FETCH 1 BODY[]")
    items = {}
    for l in r.untagged:
        if b" FETCH " in l:
            items.update(parse_fetch(l)[1])
    # RFC 7162 §3.2.4: a FETCH that implicitly sets \Seen reports the
    # flag change with UID and MODSEQ.
    assert "\\Seen" in flag_set(items.get("FLAGS", [])), r.untagged
    assert int(items.get("UID", 0)) == u[0], r.untagged
    assert "MODSEQ" in items, r.untagged
