"""IMAP NOTIFY (RFC 5465) as clients see it: the capability; NOTIFY SET
STATUS and its STATUS responses before the OK; one session changes and
another hears of it, in IDLE and between commands: new mail by SMTP or
APPEND in another folder (untagged STATUS), flag changes and new messages
in the selected mailbox (FETCH, with the items MessageNew asked for),
mailboxes created, renamed and deleted (LIST, OLDNAME, \\NonExistent),
subscriptions (LIST with or without \\Subscribed); the mailbox filters
(SUBTREE, MAILBOXES, INBOXES, SUBSCRIBED); NOTIFY NONE; a selected
mailbox without SELECTED; BAD for bad syntax and the §5 and §6.1 rules,
NO [BADEVENT] for events postern does not report."""

import os
import re
import time

import pytest

from imap_helpers import (deliver, imap_caps, login, new_user, parse_status,
                          quote, start_imap_server)


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-notify"),
                             default_cert)


@pytest.fixture
def user(srv):
    return new_user(srv)


def wait_line(c, pattern, timeout=10.0):
    """Reads response lines until one matches pattern (bytes regex);
    returns (the lines before it, the match)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no line matching %r; got %r"
                                 % (pattern, seen))
        line = c.read_line(timeout=left)
        m = re.match(pattern, line, re.I)
        if m:
            return seen, m
        seen.append(line)


def status_of(line):
    """parse_status with the name as str."""
    name, items = parse_status(line)
    return name.decode(), items


def quiet(c, wait=0.5):
    """Nothing arrives from the server within wait seconds."""
    data = c.conn.pending(wait)
    assert data == b"", data


def append(c, mailbox, body=b"Subject: hi\r\n\r\nhello\r\n", flags=""):
    tag = next(c.tags)
    c.send(tag + b" APPEND " + quote(mailbox).encode() + b" "
           + (("(%s) " % flags).encode() if flags else b"")
           + b"{%d+}\r\n" % len(body) + body + b"\r\n")
    r = c.read_reply(tag)
    assert r.status == "OK", r
    return r


def idle(c):
    c.send(b"i1 IDLE\r\n")
    assert c.read_line().startswith(b"+ ")


def idle_done(c):
    c.send(b"DONE\r\n")
    r = c.read_reply(b"i1")
    assert r.status == "OK", r
    return r


# --- the command --------------------------------------------------------------


def test_capability_names_notify(srv, user):
    c = login(srv, *user)
    assert "NOTIFY" in imap_caps(c.ok("CAPABILITY").untagged[0])
    c.logout()


def test_set_status_sends_status_of_watched_mailboxes_before_ok(srv, user):
    """RFC 5465 §3.1 (the example, with errata 2318's grammar): STATUS
    for every non-selected mailbox a group asks message events of, with
    MESSAGES, UIDNEXT and UIDVALIDITY, before the tagged OK."""
    c = login(srv, *user)
    for name in ("Lists", "Lists/Lemonade", "misc", "other"):
        c.ok("CREATE %s" % name)
    append(c, "Lists/Lemonade")
    append(c, "Lists/Lemonade")
    c.select("INBOX")
    r = c.ok("NOTIFY SET STATUS (selected (MessageNew (uid) "
             "MessageExpunge)) (subtree Lists (MessageNew MessageExpunge)) "
             "(mailboxes misc (MessageNew MessageExpunge))")
    got = {}
    for l in r.lines(b"STATUS"):
        name, items = status_of(l)
        got[name] = items
    assert set(got) == {"Lists", "Lists/Lemonade", "misc"}, r.untagged
    for items in got.values():
        assert {"MESSAGES", "UIDNEXT", "UIDVALIDITY"} <= set(items), got
    assert got["Lists/Lemonade"]["MESSAGES"] == 2
    assert got["Lists/Lemonade"]["UIDNEXT"] == 3
    assert got["misc"]["MESSAGES"] == 0
    c.logout()


def test_set_without_status_sends_no_status(srv, user):
    c = login(srv, *user)
    r = c.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    assert r.lines(b"STATUS") == [], r.untagged
    c.logout()


@pytest.mark.parametrize("args", [
    "",
    "SET",
    "SET STATUS",
    "FOO",
    "NONE extra",
    "SET personal (MessageNew MessageExpunge)",
    "SET (personal)",
    "SET (personal MessageNew)",
    "SET (personal ())",
    "SET (nosuchfilter (MessageNew MessageExpunge))",
    "SET (subtree (MessageNew MessageExpunge))",
    "SET (mailboxes () (MessageNew MessageExpunge))",
    # §5: MessageNew and MessageExpunge together; FlagChange needs both.
    "SET (personal (MessageNew))",
    "SET (personal (MessageExpunge))",
    "SET (personal (FlagChange))",
    "SET (personal (MessageNew FlagChange))",
    # §6.1: one of SELECTED and SELECTED-DELAYED, message events only.
    "SET (selected (MessageNew MessageExpunge)) "
    "(selected-delayed (MessageNew MessageExpunge))",
    "SET (selected (MessageNew MessageExpunge)) "
    "(selected (MessageNew MessageExpunge))",
    "SET (selected (MailboxName))",
    "SET (selected-delayed (SubscriptionChange))",
    "SET (selected (SomeExtension))",
    # A FETCH list belongs to MessageNew only.
    "SET (personal (MessageExpunge (UID) MessageNew))",
])
def test_bad_syntax_is_bad(srv, user, args):
    c = login(srv, *user)
    r = c.command(("NOTIFY " + args).strip())
    assert r.status == "BAD", r.tagged
    c.logout()


@pytest.mark.parametrize("events", [
    "MessageNew MessageExpunge AnnotationChange",
    "MailboxMetadataChange",
    "ServerMetadataChange",
    "SomethingNew",
])
def test_unsupported_event_is_no_badevent(srv, user, events):
    """RFC 5465 §3.1: NO (not BAD) with BADEVENT listing what we send."""
    c = login(srv, *user)
    r = c.command("NOTIFY SET (personal (%s))" % events)
    assert r.status == "NO", r.tagged
    assert r.code_atom == "BADEVENT", r.tagged
    listed = set(re.search(r"BADEVENT \(([^)]*)\)", r.code).group(1).split())
    assert listed == {"MessageNew", "MessageExpunge", "FlagChange",
                      "MailboxName", "SubscriptionChange"}
    c.logout()


def test_unauthenticated_notify_is_refused(srv):
    from imap_helpers import Imap
    with Imap.open(srv, "imaps") as c:
        r = c.command("NOTIFY NONE")
        assert r.status == "BAD", r.tagged


# --- other mailboxes: STATUS ---------------------------------------------------


def test_smtp_delivery_to_inbox_gives_status_in_idle(srv, user):
    watcher = login(srv, *user)
    watcher.ok("CREATE Other")
    watcher.select("Other")
    watcher.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    idle(watcher)
    deliver(srv, user[0], subject="news")
    _, m = wait_line(watcher, rb"^\* STATUS (\S+) \((.*)\)\r\n$")
    name, items = status_of(m.group(0))
    assert name == "INBOX"
    assert items["MESSAGES"] == 1 and items["UIDNEXT"] == 2
    assert items["UNSEEN"] == 1
    idle_done(watcher)
    watcher.logout()


def test_append_in_another_folder_gives_status_between_commands(srv, user):
    """No IDLE and no command running: the client listens all the time
    (RFC 5465 §1), and the STATUS comes at once."""
    watcher = login(srv, *user)
    watcher.ok("CREATE Work")
    watcher.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    writer = login(srv, *user)
    append(writer, "Work")
    _, m = wait_line(watcher, rb"^\* STATUS .*\r\n$")
    name, items = status_of(m.group(0))
    assert name == "Work" and items["MESSAGES"] == 1
    # An expunge there is a new STATUS with fewer messages.
    writer.select("Work")
    writer.ok("STORE 1 +FLAGS (\\Deleted)")
    writer.ok("EXPUNGE")
    _, m = wait_line(watcher, rb"^\* STATUS .*\r\n$")
    name, items = status_of(m.group(0))
    assert name == "Work" and items["MESSAGES"] == 0
    assert items["UIDNEXT"] == 2
    writer.logout()
    watcher.logout()


def test_flag_change_elsewhere_only_with_flagchange(srv, user):
    writer = login(srv, *user)
    writer.ok("CREATE Flags")
    append(writer, "Flags")
    a = login(srv, *user)
    a.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    b = login(srv, *user)
    b.ok("NOTIFY SET (personal (MessageNew MessageExpunge FlagChange))")
    writer.select("Flags")
    writer.ok("STORE 1 +FLAGS (\\Seen)")
    _, m = wait_line(b, rb"^\* STATUS .*\r\n$")
    name, items = status_of(m.group(0))
    # RFC 5465 §5.1: at least UIDVALIDITY and HIGHESTMODSEQ.
    assert name == "Flags" and items["UNSEEN"] == 0
    assert "HIGHESTMODSEQ" in items and "UIDVALIDITY" in items
    quiet(a)
    for c in (writer, a, b):
        c.logout()


def test_notifications_come_before_a_tagged_reply(srv, user):
    """A session busy with its own commands hears of the change at the
    end of the next one."""
    watcher = login(srv, *user)
    watcher.ok("CREATE Busy")
    watcher.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    watcher.send(b"x1 IDLE\r\n")
    assert watcher.read_line().startswith(b"+ ")
    writer = login(srv, *user)
    append(writer, "Busy")
    _, m = wait_line(watcher, rb"^\* STATUS .*\r\n$")
    watcher.send(b"DONE\r\n")
    assert watcher.read_reply(b"x1").status == "OK"
    writer.logout()
    watcher.logout()


@pytest.mark.parametrize("spec,hit,miss", [
    ("(mailboxes misc (MessageNew MessageExpunge))", "misc", "misc2"),
    ("(mailboxes (misc Lists) (MessageNew MessageExpunge))", "Lists",
     "misc2"),
    ("(subtree Lists (MessageNew MessageExpunge))", "Lists/deep", "misc"),
    ("(subtree Lists (MessageNew MessageExpunge))", "Lists", "ListsNot"),
    ("(inboxes (MessageNew MessageExpunge))", "INBOX", "misc"),
    ("(subscribed (MessageNew MessageExpunge))", "Subbed", "misc"),
    # The first group that covers a mailbox decides (NONE stops it).
    ("(mailboxes misc NONE) (personal (MessageNew MessageExpunge))",
     "misc2", "misc"),
])
def test_mailbox_filters(srv, user, spec, hit, miss):
    writer = login(srv, *user)
    for name in ("misc", "misc2", "Lists", "Lists/deep", "ListsNot",
                 "Subbed"):
        writer.ok("CREATE %s" % name)
    writer.ok("SUBSCRIBE Subbed")
    watcher = login(srv, *user)
    watcher.ok("NOTIFY SET " + spec)
    append(writer, miss)
    quiet(watcher)
    append(writer, hit)
    _, m = wait_line(watcher, rb"^\* STATUS .*\r\n$")
    assert status_of(m.group(0))[0] == hit
    quiet(watcher, 0.3)
    writer.logout()
    watcher.logout()


def test_notify_none_stops_notifications(srv, user):
    watcher = login(srv, *user)
    watcher.ok("CREATE Quiet")
    watcher.ok("NOTIFY SET (personal (MessageNew MessageExpunge "
               "MailboxName))")
    writer = login(srv, *user)
    append(writer, "Quiet")
    wait_line(watcher, rb"^\* STATUS .*\r\n$")
    r = watcher.ok("NOTIFY NONE")
    append(writer, "Quiet")
    deliver(srv, user[0])
    writer.ok("CREATE Quiet2")
    quiet(watcher)
    r = watcher.ok("NOOP")
    assert r.untagged == [], r.untagged
    # NOTIFY SET again turns them back on.
    watcher.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    append(writer, "Quiet")
    _, m = wait_line(watcher, rb"^\* STATUS .*\r\n$")
    assert status_of(m.group(0))[1]["MESSAGES"] == 3
    writer.logout()
    watcher.logout()


# --- the selected mailbox ----------------------------------------------------


def test_flag_change_in_selected_mailbox_gives_fetch(srv, user):
    writer = login(srv, *user)
    append(writer, "INBOX")
    watcher = login(srv, *user)
    watcher.select("INBOX")
    watcher.ok("NOTIFY SET (selected (MessageNew MessageExpunge "
               "FlagChange))")
    writer.select("INBOX")
    writer.ok("STORE 1 +FLAGS (\\Flagged)")
    # Between commands, without IDLE (RFC 5465 §5.1: UID and FLAGS).
    _, m = wait_line(watcher, rb"^\* 1 FETCH \((.*)\)\r\n$")
    assert re.search(rb"UID 1\b", m.group(1))
    assert re.search(rb"FLAGS \([^)]*\\Flagged", m.group(1))
    writer.logout()
    watcher.logout()


def test_message_new_sends_exists_then_asked_fetch_items(srv, user):
    watcher = login(srv, *user)
    watcher.select("INBOX")
    watcher.ok("NOTIFY SET (selected (MessageNew (UID FLAGS RFC822.SIZE "
               "INTERNALDATE) MessageExpunge))")
    writer = login(srv, *user)
    body = b"Subject: sized\r\n\r\n0123456789\r\n"
    append(writer, "INBOX", body, flags="\\Answered")
    _, m = wait_line(watcher, rb"^\* 1 EXISTS\r\n$")
    # An IMAP4rev1 session: RECENT with the new size (RFC 3501 §7.3.2),
    # and the message is recent for the watcher, the first to hear of it.
    assert watcher.read_line() == b"* 1 RECENT\r\n"
    line = watcher.read_line()
    assert re.match(rb"^\* 1 FETCH \(UID 1 FLAGS \(\\Answered \\Recent\) "
                    rb"INTERNALDATE \"[^\"]+\" RFC822.SIZE %d\)\r\n$"
                    % len(body), line), line
    # MessageExpunge: EXPUNGE at once too.
    writer.select("INBOX")
    writer.ok("STORE 1 +FLAGS (\\Deleted)")
    writer.ok("EXPUNGE")
    wait_line(watcher, rb"^\* 1 EXPUNGE\r\n$")
    writer.logout()
    watcher.logout()


def test_unsupported_fetch_item_is_no(srv, user):
    c = login(srv, *user)
    r = c.command("NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER]) "
                  "MessageExpunge))")
    assert r.status == "NO", r.tagged
    c.logout()


def test_without_selected_the_selected_mailbox_waits_for_noop(srv, user):
    """RFC 5465 §3.1: no SELECTED means no message events for the
    selected mailbox: nothing between commands, no STATUS for it; the
    base protocol's EXISTS still comes with NOOP."""
    watcher = login(srv, *user)
    watcher.select("INBOX")
    watcher.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    deliver(srv, user[0])
    quiet(watcher, 1.0)
    r = watcher.ok("NOOP")
    assert b"* 1 EXISTS\r\n" in r.untagged, r.untagged
    assert r.lines(b"STATUS") == [], r.untagged
    watcher.logout()


def test_selected_delayed_keeps_expunges_for_noop(srv, user):
    writer = login(srv, *user)
    append(writer, "INBOX")
    append(writer, "INBOX")
    watcher = login(srv, *user)
    watcher.select("INBOX")
    watcher.ok("NOTIFY SET (selected-delayed (MessageNew MessageExpunge "
               "FlagChange))")
    writer.select("INBOX")
    writer.ok("STORE 1 +FLAGS (\\Deleted)")
    wait_line(watcher, rb"^\* 1 FETCH .*\\Deleted.*\r\n$")
    writer.ok("EXPUNGE")
    quiet(watcher, 0.7)
    r = watcher.ok("FETCH 2 (UID)")
    assert not any(b"EXPUNGE" in l for l in r.untagged), r.untagged
    r = watcher.ok("NOOP")
    assert b"* 1 EXPUNGE\r\n" in r.untagged, r.untagged
    writer.logout()
    watcher.logout()


# --- mailbox names and subscriptions: LIST ---------------------------------


def test_mailbox_create_rename_delete_give_list(srv, user):
    watcher = login(srv, *user)
    watcher.ok("NOTIFY SET (personal (MailboxName))")
    writer = login(srv, *user)
    writer.ok("CREATE Projects")
    _, m = wait_line(watcher, rb"^\* LIST \(([^)]*)\) \"/\" (.*)\r\n$")
    assert m.group(2) == b"Projects" or m.group(2) == b'"Projects"'
    assert b"NonExistent" not in m.group(1)
    writer.ok("CREATE Projects/Sub")
    wait_line(watcher, rb"^\* LIST .*Projects/Sub.*\r\n$")
    writer.ok("RENAME Projects Archive2")
    # RFC 5465 §5.4: one LIST per renamed mailbox, with OLDNAME.
    _, m = wait_line(watcher, rb"^\* LIST \([^)]*\) \"/\" \"?Archive2\"? "
                     rb"\(\"OLDNAME\" \(\"?Projects\"?\)\)\r\n$")
    _, m = wait_line(watcher, rb"^\* LIST \([^)]*\) \"/\" "
                     rb"\"?Archive2/Sub\"? "
                     rb"\(\"OLDNAME\" \(\"?Projects/Sub\"?\)\)\r\n$")
    writer.ok("DELETE Archive2/Sub")
    _, m = wait_line(watcher, rb"^\* LIST \(([^)]*)\) \"/\" "
                     rb"\"?Archive2/Sub\"?\r\n$")
    assert b"\\NonExistent" in m.group(1)
    # Message events were not asked for.
    append(writer, "Archive2")
    quiet(watcher)
    writer.logout()
    watcher.logout()


def test_subscribe_and_unsubscribe_give_list(srv, user):
    watcher = login(srv, *user)
    watcher.ok("NOTIFY SET (personal (SubscriptionChange))")
    writer = login(srv, *user)
    writer.ok("CREATE Feeds")
    quiet(watcher)
    writer.ok("SUBSCRIBE Feeds")
    _, m = wait_line(watcher, rb"^\* LIST \(([^)]*)\) \"/\" \"?Feeds\"?\r\n$")
    assert b"\\Subscribed" in m.group(1)
    writer.ok("UNSUBSCRIBE Feeds")
    _, m = wait_line(watcher, rb"^\* LIST \(([^)]*)\) \"/\" \"?Feeds\"?\r\n$")
    assert b"\\Subscribed" not in m.group(1)
    writer.logout()
    watcher.logout()


def test_other_accounts_are_not_seen(srv, user):
    other = new_user(srv)
    watcher = login(srv, *user)
    watcher.ok("NOTIFY SET (personal (MessageNew MessageExpunge "
               "MailboxName SubscriptionChange))")
    w2 = login(srv, *other)
    w2.ok("CREATE Secret")
    w2.ok("SUBSCRIBE Secret")
    append(w2, "Secret")
    deliver(srv, other[0])
    quiet(watcher, 1.0)
    w2.logout()
    watcher.logout()


def test_own_changes_are_left_out(srv, user):
    """RFC 5465 §5: the server SHOULD NOT tell a client of what it did
    itself; another session's change to the same mailbox is told."""
    c = login(srv, *user)
    c.ok("NOTIFY SET (personal (MessageNew MessageExpunge FlagChange "
         "MailboxName SubscriptionChange))")
    for r in (c.ok("CREATE Mine"), append(c, "Mine"),
              c.ok("SUBSCRIBE Mine"), c.ok("RENAME Mine Ours")):
        assert r.lines(b"STATUS") == [] and r.lines(b"LIST") == [], \
            r.untagged
    quiet(c)
    other = login(srv, *user)
    append(other, "Ours")
    _, m = wait_line(c, rb"^\* STATUS .*\r\n$")
    name, items = status_of(m.group(0))
    assert name == "Ours" and items["MESSAGES"] == 2
    other.logout()
    c.logout()


def server_cpu(pid):
    """CPU seconds the server has used (user + system), from proc(5)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_flush_cost_does_not_grow_with_the_mailbox_count(srv, user):
    """R2 (review of NOTIFY): each session under NOTIFY read the account's
    whole mailbox list for every batch of changes, so one user with 3,000
    folders and 10 sessions under NOTIFY made each flag change another of
    its sessions made cost 30,000 rows (200 STOREs: 7.4 s of server CPU
    instead of 0.14 s). A flush now reads the rows its events name."""
    c = login(srv, *user)
    watchers = []
    try:
        for i in range(2000):
            c.send(next(c.tags) + b" CREATE f%05d\r\n" % i)
        c.ok("NOOP", timeout=300)
        append(c, "INBOX")
        c.ok("SELECT INBOX")
        # The session the others hear of: flag changes in another folder
        # would do as well; the selected one is the cheapest to loop.
        pid = srv.proc.pid

        def stores(n):
            before = server_cpu(pid)
            for i in range(n):
                c.ok("STORE 1 %sFLAGS \\Flagged" % "+-"[i % 2])
            return server_cpu(pid) - before

        alone = stores(100)
        for _ in range(10):
            w = login(srv, *user)
            watchers.append(w)
            w.ok("NOTIFY SET (PERSONAL (MessageNew MessageExpunge "
                 "FlagChange))")
        watched = stores(100)
        # Each watcher heard of the changes (untagged STATUS of INBOX).
        for w in watchers:
            r = w.ok("NOOP")
            assert any(line.startswith(b"* STATUS \"INBOX\"")
                       for line in r.untagged), r.untagged
        # Before: about 1.2 s (the 10 watchers read 20,000 rows per STORE);
        # now about what the 100 STOREs cost alone.
        assert watched < 3 * alone + 0.5, (alone, watched)
    finally:
        for w in watchers:
            w.close()
        c.close()
