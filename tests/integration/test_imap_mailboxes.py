"""IMAP mailboxes as clients see them: LIST ("*" and "%", references, the
special-use attributes of RFC 6154, \\HasChildren/\\HasNoChildren, the
LIST-EXTENDED selection and return options of RFC 5258 and RFC 5819),
LSUB, CREATE (nested, CREATE-SPECIAL-USE, existing), DELETE, RENAME (INBOX
too), SUBSCRIBE/UNSUBSCRIBE, STATUS, SELECT/EXAMINE replies, non-ASCII
names in modified UTF-7 (IMAP4rev1) and UTF-8 (IMAP4rev2, UTF8=ACCEPT),
UNSELECT and CLOSE."""

import re

import pytest

from imap_helpers import (deliver, login, mutf7_encode, new_user,
                          parse_fetch, parse_list, parse_status,
                          start_imap_server, untagged_numbers)

DEFAULT_MAILBOXES = {b"INBOX": None, b"Sent": "\\sent",
                     b"Drafts": "\\drafts", b"Trash": "\\trash",
                     b"Junk": "\\junk", b"Archive": "\\archive"}
SPECIAL_USE = {"\\sent", "\\drafts", "\\trash", "\\junk", "\\archive",
               "\\all", "\\flagged"}


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-mailboxes"),
                             default_cert)


@pytest.fixture
def user(srv):
    return new_user(srv)


@pytest.fixture
def c(srv, user):
    conn = login(srv, *user)
    yield conn
    conn.close()


def listing(c, cmd='LIST "" "*"'):
    """{name bytes: ListEntry} of a LIST (or LSUB) command, which must
    succeed and answer with nothing but LIST (and STATUS) lines."""
    r = c.ok(cmd)
    kind = b"LSUB" if cmd.upper().startswith("LSUB") else b"LIST"
    out = {}
    for l in r.untagged:
        if l.upper().startswith(b"* STATUS "):
            continue
        e = parse_list(l, kind)
        assert e.name not in out, "%r listed twice: %r" % (e.name,
                                                          r.untagged)
        out[e.name] = e
    return out


def status(c, name, items="MESSAGES UIDNEXT UIDVALIDITY UNSEEN"):
    r = c.ok("STATUS %s (%s)" % (quoted(name), items))
    lines = r.lines(b"STATUS")
    assert len(lines) == 1, r.untagged
    got_name, values = parse_status(lines[0])
    return values


def quoted(name):
    if isinstance(name, bytes):
        name = name.decode()
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def subjects(c, count):
    """Subjects of messages 1..count of the selected mailbox, in order."""
    if count == 0:
        return []
    r = c.ok("FETCH 1:%d (BODY.PEEK[HEADER.FIELDS (SUBJECT)])" % count)
    out = {}
    for l in r.untagged:
        if re.match(rb"^\* \d+ FETCH ", l):
            n, items = parse_fetch(l)
            hdr = bytes(items["BODY[HEADER.FIELDS (SUBJECT)]"])
            out[n] = hdr.split(b":", 1)[1].strip().decode()
    return [out[i] for i in range(1, count + 1)]


# --- LIST --------------------------------------------------------------------


def test_list_star_shows_the_default_mailboxes(c):
    got = listing(c)
    assert set(got) == set(DEFAULT_MAILBOXES), sorted(got)
    for name, special in DEFAULT_MAILBOXES.items():
        e = got[name]
        assert e.delim == b"/", e.raw
        # RFC 6154 §2 (and RFC 9051 §7.3.1): the special-use attributes
        # of the server's own mailboxes are in plain LIST replies.
        specials = e.attrs & SPECIAL_USE
        assert specials == ({special} if special else set()), e.raw
        assert not e.has("\\noselect") and not e.has("\\nonexistent"), e.raw
        # When child information is given, it must be right.
        assert not e.has("\\haschildren"), e.raw


def test_list_wire_format(c):
    r = c.ok('LIST "" "Sent"')
    # RFC 9051 §7.3.1: mailbox-list = "(" [mbx-list-flags] ")" SP
    # (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox.
    assert len(r.untagged) == 1, r.untagged
    assert re.match(rb'^\* LIST \((\\\w+ ?)*\) "/" ("Sent"|Sent)\r\n$',
                    r.untagged[0]), r.untagged


def test_list_inbox_is_case_insensitive(c):
    got = listing(c, 'LIST "" "inbox"')
    # RFC 9051 §5.1: INBOX in any case is INBOX, named "INBOX".
    assert list(got) == [b"INBOX"], got


def test_list_percent_and_star_with_hierarchy(c):
    c.ok('CREATE "Work/Projects/Alpha"')
    c.ok('CREATE "Work/Notes"')
    top = listing(c, 'LIST "" "%"')
    assert set(top) == set(DEFAULT_MAILBOXES) | {b"Work"}, sorted(top)
    # "%" does not match the hierarchy separator (RFC 9051 §6.3.9).
    assert set(listing(c, 'LIST "" "Work/%"')) == \
        {b"Work/Projects", b"Work/Notes"}
    assert set(listing(c, 'LIST "" "Work/*"')) == \
        {b"Work/Projects", b"Work/Notes", b"Work/Projects/Alpha"}
    # Reference and pattern are joined (RFC 9051 §6.3.9).
    assert set(listing(c, 'LIST "Work/" "%"')) == \
        {b"Work/Projects", b"Work/Notes"}
    assert set(listing(c, 'LIST "" "*Alpha"')) == {b"Work/Projects/Alpha"}
    assert listing(c, 'LIST "" "Nothing*"') == {}
    # RETURN (CHILDREN): child information is required (RFC 5258 §4).
    got = listing(c, 'LIST "" "*" RETURN (CHILDREN)')
    assert got[b"Work"].has("\\haschildren"), got[b"Work"].raw
    assert got[b"Work/Projects"].has("\\haschildren")
    for leaf in (b"Work/Notes", b"Work/Projects/Alpha", b"INBOX", b"Sent"):
        assert got[leaf].has("\\hasnochildren"), got[leaf].raw
        assert not got[leaf].has("\\haschildren"), got[leaf].raw


def test_list_empty_pattern_gives_the_delimiter(c):
    r = c.ok('LIST "" ""')
    # RFC 9051 §6.3.9: the hierarchy delimiter and the root name.
    assert len(r.untagged) == 1, r.untagged
    e = parse_list(r.untagged[0])
    assert e.delim == b"/" and e.name == b"" and e.has("\\noselect"), e.raw


def test_list_special_use_selection_and_return(c):
    c.ok('CREATE "Plain"')
    # RFC 6154 §3: the SPECIAL-USE selection option lists only
    # special-use mailboxes.
    got = listing(c, 'LIST (SPECIAL-USE) "" "*"')
    assert set(got) == {n for n, s in DEFAULT_MAILBOXES.items() if s}, got
    for name, e in got.items():
        assert DEFAULT_MAILBOXES[name] in e.attrs, e.raw
    got = listing(c, 'LIST "" "*" RETURN (SPECIAL-USE)')
    assert set(got) == set(DEFAULT_MAILBOXES) | {b"Plain"}
    assert got[b"Trash"].has("\\trash") and not \
        (got[b"Plain"].attrs & SPECIAL_USE), (got[b"Trash"].raw,
                                              got[b"Plain"].raw)


def test_list_subscribed_selection_and_lsub(c):
    c.ok('CREATE "Sub/One"')
    c.ok('CREATE "Other"')
    before = set(listing(c, 'LIST (SUBSCRIBED) "" "*"'))
    c.ok('SUBSCRIBE "Sub/One"')
    got = listing(c, 'LIST (SUBSCRIBED) "" "*"')
    # RFC 5258 §3.1: subscribed mailboxes only, each with \Subscribed.
    assert set(got) == before | {b"Sub/One"}, got
    assert all(e.has("\\subscribed") for e in got.values()), got
    assert b"Other" not in got
    lsub = listing(c, 'LSUB "" "*"')
    assert set(lsub) == set(got), (lsub, got)
    ret = listing(c, 'LIST "" "*" RETURN (SUBSCRIBED)')
    assert ret[b"Sub/One"].has("\\subscribed")
    assert not ret[b"Other"].has("\\subscribed")
    c.ok('UNSUBSCRIBE "Sub/One"')
    assert set(listing(c, 'LIST (SUBSCRIBED) "" "*"')) == before
    assert b"Sub/One" not in listing(c, 'LSUB "" "*"')
    # LSUB with "%": a subscribed child makes its parent appear, with
    # \Noselect when the parent itself is not subscribed (RFC 3501
    # §6.3.9).
    c.ok('SUBSCRIBE "Sub/One"')
    lsub = listing(c, 'LSUB "" "%"')
    assert b"Sub" in lsub and lsub[b"Sub"].has("\\noselect"), lsub


def test_subscription_survives_delete(c):
    c.ok('CREATE "Fleeting"')
    c.ok('SUBSCRIBE "Fleeting"')
    c.ok('DELETE "Fleeting"')
    # RFC 9051 §6.3.7 (RFC 3501 §6.3.6): the server MUST NOT remove a
    # name from the subscriptions by itself, even when the mailbox is
    # gone; LIST (SUBSCRIBED) shows it \NonExistent (RFC 5258 §3.1, §5).
    assert b"Fleeting" in listing(c, 'LSUB "" "*"')
    got = listing(c, 'LIST (SUBSCRIBED) "" "*"')
    assert b"Fleeting" in got, sorted(got)
    assert got[b"Fleeting"].attrs >= {"\\subscribed", "\\nonexistent"}, \
        got[b"Fleeting"].raw
    # Created again, it is still subscribed.
    c.ok('CREATE "Fleeting"')
    assert listing(c, 'LIST "" "Fleeting" RETURN (SUBSCRIBED)')[
        b"Fleeting"].has("\\subscribed")


def test_list_subscribed_recursivematch_gives_childinfo(c):
    c.ok('CREATE "Deep/Leaf"')
    c.ok('SUBSCRIBE "Deep/Leaf"')
    r = c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    got = {parse_list(l).name: parse_list(l) for l in r.lines(b"LIST")}
    # RFC 5258 §3.1, §4 (example 5.3): the unsubscribed parent of a
    # subscribed child is returned with CHILDINFO ("SUBSCRIBED") and
    # without \Subscribed.
    assert b"Deep" in got, r.untagged
    deep = got[b"Deep"]
    assert not deep.has("\\subscribed"), deep.raw
    assert re.search(rb'\("CHILDINFO" \("SUBSCRIBED"\)\)\r\n$', deep.raw), \
        deep.raw
    assert b"Deep/Leaf" not in got


CHILDINFO = rb' \("CHILDINFO" \("SUBSCRIBED"\)\)\r\n$'


def test_recursivematch_childinfo_rfc5258_examples(c):
    """The hierarchy of RFC 5258 §5's examples: Fruit (Apple, Banana,
    Peach: subscribed, then deleted), Tofu, Vegetable (Broccoli, Corn);
    subscribed: Fruit/Banana, Fruit/Peach, Vegetable, Vegetable/Broccoli.
    §3.5: CHILDINFO whether or not the child matches the pattern, but a
    parent that is not selected itself is returned only when one of its
    selected children is not listed too (servers SHOULD suppress
    redundant CHILDINFO)."""
    for name in ("Fruit", "Fruit/Apple", "Fruit/Banana", "Fruit/Peach",
                 "Tofu", "Vegetable", "Vegetable/Broccoli",
                 "Vegetable/Corn"):
        c.ok('CREATE "%s"' % name)
    for name in ("Fruit/Banana", "Fruit/Peach", "Vegetable",
                 "Vegetable/Broccoli"):
        c.ok('SUBSCRIBE "%s"' % name)
    c.ok('DELETE "Fruit/Peach"')

    def childinfo(e):
        return re.search(CHILDINFO, e.raw) is not None

    # Example 8: "%".
    got = listing(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert childinfo(got[b"Fruit"]) and \
        not got[b"Fruit"].has("\\subscribed"), got[b"Fruit"].raw
    assert childinfo(got[b"Vegetable"]) and \
        got[b"Vegetable"].has("\\subscribed"), got[b"Vegetable"].raw
    assert b"Tofu" not in got
    # "*": every selected child of Fruit is listed itself, so Fruit is
    # not; Vegetable is selected itself and keeps its CHILDINFO.
    got = listing(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"')
    assert b"Fruit" not in got, got[b"Fruit"].raw
    assert childinfo(got[b"Vegetable"]), got[b"Vegetable"].raw
    assert not childinfo(got[b"Fruit/Banana"]), got[b"Fruit/Banana"].raw
    assert got[b"Fruit/Peach"].has("\\nonexistent"), got[b"Fruit/Peach"].raw
    # The child needs not match (Note 2).
    got = listing(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Fruit"')
    assert list(got) == [b"Fruit"] and childinfo(got[b"Fruit"]), got
    # Several patterns (imaptest's listext): a child listed by another
    # pattern makes the parent's CHILDINFO redundant; one that is not,
    # does not.
    got = listing(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" '
                     '("Vegetable/Broccoli" "Fruit" "Fruit/%")')
    assert sorted(got) == [b"Fruit/Banana", b"Fruit/Peach",
                           b"Vegetable/Broccoli"], got
    got = listing(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" '
                     '("Fruit" "Fruit/Banana")')
    assert sorted(got) == [b"Fruit", b"Fruit/Banana"], got
    assert childinfo(got[b"Fruit"]), got[b"Fruit"].raw


def test_list_return_status(srv, user, c):
    address, _ = user
    deliver(srv, address, "one")
    deliver(srv, address, "two")
    c.ok('CREATE "Empty"')
    r = c.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))')
    seen_list = set()
    statuses = {}
    for l in r.untagged:
        if l.upper().startswith(b"* LIST "):
            seen_list.add(parse_list(l).name)
        else:
            name, values = parse_status(l)
            # RFC 5819 §2: the STATUS comes after the LIST of its mailbox.
            assert name in seen_list, r.untagged
            statuses[name] = values
    assert statuses[b"INBOX"] == {"MESSAGES": 2, "UNSEEN": 2}, statuses
    assert statuses[b"Empty"] == {"MESSAGES": 0, "UNSEEN": 0}, statuses
    assert set(statuses) == set(seen_list), (statuses, seen_list)


def test_list_return_everything_at_once(srv, user, c):
    address, _ = user
    deliver(srv, address, "x")
    c.ok('CREATE "Box/Child"')
    c.ok('SUBSCRIBE "Box"')
    r = c.ok('LIST "" "*" RETURN (CHILDREN SUBSCRIBED SPECIAL-USE '
             'STATUS (MESSAGES UNSEEN))')
    lists = {parse_list(l).name: parse_list(l) for l in r.lines(b"LIST")}
    stats = dict(parse_status(l) for l in r.lines(b"STATUS"))
    assert lists[b"Box"].attrs >= {"\\haschildren", "\\subscribed"}, \
        lists[b"Box"].raw
    assert lists[b"Box/Child"].has("\\hasnochildren")
    assert not lists[b"Box/Child"].has("\\subscribed")
    assert lists[b"Junk"].has("\\junk")
    assert stats[b"INBOX"] == {"MESSAGES": 1, "UNSEEN": 1}, stats
    assert len(r.untagged) == len(lists) + len(stats), r.untagged


def test_list_extended_syntax_errors_are_bad(c):
    assert c.command('LIST (NO-SUCH-OPTION) "" "*"').status == "BAD"
    # RFC 5258 §3.1: RECURSIVEMATCH alone (or with REMOTE only) is BAD.
    assert c.command('LIST (RECURSIVEMATCH) "" "*"').status == "BAD"
    assert c.command('LIST (REMOTE RECURSIVEMATCH) "" "*"').status == "BAD"
    assert c.command('LIST "" "*" RETURN (NO-SUCH-OPTION)').status == "BAD"
    assert c.command('LIST ""').status == "BAD"


# --- CREATE, DELETE, RENAME --------------------------------------------------


def test_create_nested_creates_parents(c):
    c.ok('CREATE "a/b/c"')
    got = listing(c, 'LIST "" "a*"')
    # RFC 9051 §6.3.4: the server creates the missing superiors.
    assert set(got) == {b"a", b"a/b", b"a/b/c"}, got
    # A trailing separator declares a parent: the name without it.
    c.ok('CREATE "parent/"')
    assert set(listing(c, 'LIST "" "parent*"')) == {b"parent"}
    c.select("a/b/c")


def test_create_special_use(c):
    c.ok('CREATE "Old Mail" (USE (\\Archive))')
    got = listing(c, 'LIST "" "Old Mail" RETURN (SPECIAL-USE)')
    assert got[b"Old Mail"].has("\\archive"), got
    # RFC 6154 §3: a use the server does not support is refused with
    # NO [USEATTR] and nothing is created.
    r = c.command('CREATE "Weird" (USE (\\Frobbed))')
    assert r.status in ("NO", "BAD"), r.tagged
    if r.status == "NO":
        assert r.code_atom == "USEATTR", r.tagged
    assert listing(c, 'LIST "" "Weird"') == {}


def test_create_with_several_use_attributes_is_not_a_syntax_error(c):
    r = c.command('CREATE "Both" (USE (\\Sent \\Archive))')
    # RFC 6154 §6 grammar: USE takes a list of attributes; a server that
    # will not give both answers NO [USEATTR] (§3), not BAD.
    assert r.status in ("OK", "NO"), r.tagged
    if r.status == "NO":
        assert r.code_atom == "USEATTR", r.tagged
        assert listing(c, 'LIST "" "Both"') == {}


def test_create_existing_is_alreadyexists(c):
    c.ok('CREATE "Dup"')
    r = c.command('CREATE "Dup"')
    # RFC 5530 §3: ALREADYEXISTS.
    assert r.status == "NO" and r.code_atom == "ALREADYEXISTS", r.tagged
    for name in ("INBOX", "inbox", "Sent"):
        r = c.command('CREATE "%s"' % name)
        assert r.status == "NO", (name, r.tagged)


def test_names_with_quotes_and_backslashes_round_trip(c):
    name = 'say "hi" \\ bye'
    c.ok("CREATE " + quoted(name))
    r = c.ok('LIST "" "say*"')
    assert len(r.untagged) == 1, r.untagged
    # RFC 9051 §4.3: '"' and '\\' are escaped in a quoted string (or the
    # name is sent as a literal); parse_list undoes either.
    assert parse_list(r.untagged[0]).name == name.encode(), r.untagged
    c.select(name)
    assert status(c, name)["MESSAGES"] == 0


def test_name_too_long_is_refused(c):
    r = c.command("CREATE " + quoted("x" * 2000))
    assert r.status in ("NO", "BAD"), r.tagged
    # As a literal too (the parser takes it; the name check refuses it).
    c.send(b"l1 CREATE {3000}\r\n")
    assert c.conn.readline().startswith(b"+")
    c.send(b"y" * 3000 + b"\r\n")
    r = c.read_reply(b"l1")
    assert r.status in ("NO", "BAD"), r.tagged
    assert set(listing(c)) == set(DEFAULT_MAILBOXES)


def test_8bit_name_in_a_literal_refused_without_utf8(c):
    raw = "Müll".encode("utf-8")
    c.send(b"l1 CREATE {%d}\r\n" % len(raw))
    assert c.conn.readline().startswith(b"+")
    c.send(raw + b"\r\n")
    r = c.read_reply(b"l1")
    # RFC 3501 §5.1.3: without UTF8=ACCEPT names are modified UTF-7, so
    # 8-bit octets are not a valid name.
    assert r.status in ("NO", "BAD"), r.tagged
    assert set(listing(c)) == set(DEFAULT_MAILBOXES)


def test_create_invalid_names(c):
    for bad in ('""', '"/leading"', '"two//slashes"'):
        r = c.command("CREATE " + bad)
        assert r.status in ("NO", "BAD"), (bad, r.tagged)
    got = listing(c)
    assert set(got) == set(DEFAULT_MAILBOXES), got


# Issue 15, finding 17: names that read as paths (a ".." or "." level, a
# leading "~" or "/", an empty level, control characters) are refused with
# NO [CANNOT] and a sentence wherever a mailbox would get the name, so that
# an export to Maildir or a file system can never leave the user's folder.
PATH_LIKE_NAMES = ["..", ".", "../x", "./x", "a/..", "a/../b", "a/./b",
                   "../../../etc/cron.d", "~", "~root/Mail", "/abs",
                   "a//b", "x\x7fy", "x\u0085y"]


def imaplib_login(srv, user):
    import imaplib
    from postern_harness import client_ctx
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                          ssl_context=client_ctx(),
                          timeout=15)
    m.login(*user)
    typ, _ = m.enable("UTF8=ACCEPT")
    assert typ == "OK"
    return m


def refused_with_cannot(typ, data):
    text = b" ".join(d for d in data if isinstance(d, bytes))
    assert typ == "NO", (typ, data)
    assert text.startswith(b"[CANNOT] "), data
    # A sentence, not just a code.
    assert len(text.split()) > 4, data


def test_path_like_names_are_refused_by_create_rename_append(srv, user):
    m = imaplib_login(srv, user)
    try:
        assert m.create('"Keep"')[0] == "OK"
        for name in PATH_LIKE_NAMES:
            q = '"%s"' % name
            refused_with_cannot(*m.create(q))
            refused_with_cannot(*m.rename('"Keep"', q))
            # APPEND never creates a mailbox; to such a name it is no
            # TRYCREATE (a client would CREATE it next) but CANNOT.
            refused_with_cannot(*m.append(q, None, None,
                                          b"Subject: x\r\n\r\nhi\r\n"))
        typ, data = m.list('""', '"*"')
        assert typ == "OK", data
        names = [parse_list(b"* LIST " + d).name for d in data]
        assert b"Keep" in names, names
        for n in names:
            parts = n.split(b"/")
            assert b".." not in parts and b"." not in parts and \
                not n.startswith((b"~", b"/")), names
        # Dots and tildes that are not path parts stay usable.
        for ok in ("...", ".hidden", "a..b", "x~", "Keep/~draft"):
            typ, data = m.create('"%s"' % ok)
            assert typ == "OK", (ok, data)
        assert m.rename('"Keep"', '"Keep..old"')[0] == "OK"
    finally:
        m.logout()


def test_delete(c):
    c.ok('CREATE "Gone"')
    c.ok('DELETE "Gone"')
    assert listing(c, 'LIST "" "Gone"') == {}
    r = c.command('DELETE "Gone"')
    # RFC 5530: NONEXISTENT.
    assert r.status == "NO" and r.code_atom == "NONEXISTENT", r.tagged
    r = c.command('SELECT "Gone"')
    assert r.status == "NO", r.tagged


def test_delete_inbox_is_refused(c):
    for name in ("INBOX", "Inbox"):
        r = c.command('DELETE "%s"' % name)
        # RFC 9051 §6.3.5: it is an error to attempt to delete INBOX.
        assert r.status == "NO", r.tagged
    assert b"INBOX" in listing(c)
    c.select("INBOX")


def test_delete_parent_keeps_children(c):
    c.ok('CREATE "P/Kid"')
    c.ok('DELETE "P"')
    # RFC 9051 §6.3.5: deleting a mailbox with inferiors leaves them.
    assert b"P/Kid" in listing(c, 'LIST "" "P/*"')
    c.select("P/Kid")
    assert c.command('SELECT "P"').status == "NO"


def test_list_percent_shows_a_missing_parent_as_noselect(c):
    c.ok('CREATE "Q/Kid"')
    c.ok('DELETE "Q"')
    got = listing(c, 'LIST "" "%"')
    # RFC 9051 §6.3.9 (RFC 3501 §6.3.8): levels of hierarchy matched by
    # a trailing "%" are returned even when they are not mailboxes, with
    # \Noselect (\NonExistent implies it in RFC 9051); a client could
    # not find Q/Kid by browsing otherwise.
    assert b"Q" in got, sorted(got)
    assert got[b"Q"].has("\\noselect") or got[b"Q"].has("\\nonexistent"), \
        got[b"Q"].raw


def test_delete_recreate_gets_new_uidvalidity(c):
    c.ok('CREATE "Again"')
    v1 = status(c, "Again")["UIDVALIDITY"]
    c.ok('DELETE "Again"')
    c.ok('CREATE "Again"')
    v2 = status(c, "Again")["UIDVALIDITY"]
    # RFC 9051 §2.3.1.1: a new mailbox under an old name must not reuse
    # the UIDVALIDITY.
    assert v2 != v1, (v1, v2)


def test_rename_moves_children(c):
    c.ok('CREATE "Work/Notes"')
    c.ok('RENAME "Work" "Job"')
    got = set(listing(c))
    # RFC 9051 §6.3.6: inferiors are renamed too.
    assert {b"Job", b"Job/Notes"} <= got and not {b"Work", b"Work/Notes"} \
        & got, got


def test_rename_into_a_new_hierarchy_creates_parents(c):
    c.ok('CREATE "Loose"')
    c.ok('RENAME "Loose" "Tidy/Box/Loose"')
    got = listing(c)
    # RFC 9051 §6.3.6: superiors of the new name are created.
    assert {b"Tidy", b"Tidy/Box", b"Tidy/Box/Loose"} <= set(got), got
    assert b"Loose" not in got


def test_inbox_can_have_children(c):
    c.ok('CREATE "inbox/Receipts"')
    got = listing(c, 'LIST "" "*" RETURN (CHILDREN)')
    # RFC 9051 §5.1: "INBOX" in any case, also as the first level.
    assert b"INBOX/Receipts" in got, sorted(got)
    assert got[b"INBOX"].has("\\haschildren"), got[b"INBOX"].raw
    c.select("INBOX/Receipts")


def test_rename_errors(c):
    c.ok('CREATE "A1"')
    c.ok('CREATE "B1"')
    r = c.command('RENAME "A1" "B1"')
    assert r.status == "NO" and r.code_atom == "ALREADYEXISTS", r.tagged
    r = c.command('RENAME "NotThere" "C1"')
    assert r.status == "NO" and r.code_atom == "NONEXISTENT", r.tagged
    assert {b"A1", b"B1"} <= set(listing(c))


def test_rename_inbox_moves_messages_and_keeps_inbox(srv, user, c):
    address, _ = user
    deliver(srv, address, "first")
    deliver(srv, address, "second")
    c.ok('RENAME "INBOX" "Saved Inbox"')
    # RFC 9051 §6.3.6: renaming INBOX moves its messages to the new name
    # and leaves INBOX empty; INBOX itself stays.
    assert status(c, "Saved Inbox")["MESSAGES"] == 2
    assert status(c, "INBOX")["MESSAGES"] == 0
    assert {b"INBOX", b"Saved Inbox"} <= set(listing(c))
    info = c.select("Saved Inbox")
    assert info.exists == 2
    assert subjects(c, 2) == ["first", "second"]
    # New mail still arrives in INBOX.
    deliver(srv, address, "third")
    assert status(c, "INBOX")["MESSAGES"] == 1


# --- STATUS ------------------------------------------------------------------


def test_status_items(srv, user, c):
    address, _ = user
    before = status(c, "INBOX", "MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE "
                    "HIGHESTMODSEQ DELETED")
    assert set(before) == {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN",
                           "SIZE", "HIGHESTMODSEQ", "DELETED"}, before
    assert before["MESSAGES"] == 0 and before["UNSEEN"] == 0
    assert before["SIZE"] == 0 and before["DELETED"] == 0
    assert before["UIDVALIDITY"] > 0 and before["UIDNEXT"] > 0
    deliver(srv, address, "s1", body="a" * 100 + "\r\n")
    deliver(srv, address, "s2", body="b" * 300 + "\r\n")
    after = status(c, "INBOX", "MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE "
                   "HIGHESTMODSEQ DELETED")
    assert after["MESSAGES"] == 2 and after["UNSEEN"] == 2, after
    assert after["UIDVALIDITY"] == before["UIDVALIDITY"]
    assert after["UIDNEXT"] >= before["UIDNEXT"] + 2, (before, after)
    assert after["HIGHESTMODSEQ"] > before["HIGHESTMODSEQ"], (before, after)
    # SIZE (RFC 9051 §6.3.11) is the total of the RFC822.SIZEs.
    c.select("INBOX")
    r = c.ok("FETCH 1:2 (RFC822.SIZE UID)")
    sizes = [int(parse_fetch(l)[1]["RFC822.SIZE"]) for l in r.untagged
             if b" FETCH " in l]
    assert len(sizes) == 2, r.untagged
    assert after["SIZE"] == sum(sizes), (after, sizes)
    uids = sorted(int(parse_fetch(l)[1]["UID"]) for l in r.untagged
                  if b" FETCH " in l)
    assert after["UIDNEXT"] > uids[-1]
    # DELETED and UNSEEN follow the flags.
    c.ok("STORE 1 +FLAGS (\\Deleted \\Seen)")
    c.ok("UNSELECT")
    again = status(c, "INBOX", "MESSAGES UNSEEN DELETED HIGHESTMODSEQ")
    assert again["DELETED"] == 1 and again["UNSEEN"] == 1, again
    assert again["MESSAGES"] == 2
    assert again["HIGHESTMODSEQ"] > after["HIGHESTMODSEQ"]


def test_status_errors(c):
    r = c.command('STATUS "Nowhere" (MESSAGES)')
    assert r.status == "NO" and r.code_atom == "NONEXISTENT", r.tagged
    assert r.lines(b"STATUS") == []
    assert c.command('STATUS "INBOX" (BOGUS)').status == "BAD"
    assert c.command('STATUS "INBOX"').status == "BAD"


def test_status_wire_format(c):
    r = c.ok('STATUS "INBOX" (MESSAGES UIDNEXT)')
    assert re.match(rb'^\* STATUS ("INBOX"|INBOX) \(MESSAGES 0 UIDNEXT \d+\)'
                    rb'\r\n$', r.untagged[0]), r.untagged


# --- SELECT, EXAMINE, UNSELECT, CLOSE ----------------------------------------


SYSTEM_FLAGS = {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"}


def test_select_replies(srv, user, c):
    address, _ = user
    for i in range(3):
        deliver(srv, address, "m%d" % i)
    st = status(c, "INBOX")
    info = c.select("INBOX")
    r = info.reply
    # RFC 9051 §6.3.2 (and RFC 3501 §6.3.1): FLAGS, EXISTS, UIDVALIDITY,
    # UIDNEXT, PERMANENTFLAGS; tagged OK [READ-WRITE].
    assert info.exists == 3, r.untagged
    assert SYSTEM_FLAGS <= info.flags, info.flags
    assert info.permanentflags is not None, r.untagged
    assert SYSTEM_FLAGS <= info.permanentflags, info.permanentflags
    assert "\\*" in info.permanentflags, info.permanentflags
    assert info.uidvalidity == st["UIDVALIDITY"], (info, st)
    assert info.uidnext == st["UIDNEXT"], (info, st)
    assert re.match(rb"^a\d+ OK \[READ-WRITE\]", r.tagged), r.tagged
    # An IMAP4rev1 client (nothing ENABLEd) gets RECENT (RFC 3501
    # §6.3.1: REQUIRED untagged response).
    assert any(re.match(rb"^\* \d+ RECENT\r\n$", l) for l in r.untagged), \
        r.untagged


def test_select_after_enable_imap4rev2(srv, user, c):
    address, _ = user
    deliver(srv, address, "x")
    c.ok("ENABLE IMAP4rev2")
    info = c.select("INBOX")
    # RFC 9051 removes RECENT (Appendix E).
    assert not any(b"RECENT" in l for l in info.reply.untagged), \
        info.reply.untagged
    assert info.exists == 1 and info.uidvalidity and info.uidnext
    # RFC 9051 §6.3.2: LIST is among the required untagged responses.
    lists = info.reply.lines(b"LIST")
    assert len(lists) == 1 and parse_list(lists[0]).name == b"INBOX", \
        info.reply.untagged
    # RFC 9051 §6.3.2: selecting while selected closes the first one
    # with an untagged OK [CLOSED] before the new mailbox's data.
    r = c.ok('EXAMINE "Sent"')
    closed = [i for i, l in enumerate(r.untagged)
              if re.match(rb"^\* OK \[CLOSED\]", l)]
    assert closed, r.untagged
    exists = [i for i, l in enumerate(r.untagged) if b" EXISTS" in l]
    assert closed[0] < exists[0], r.untagged


def test_select_with_condstore_gives_highestmodseq(c):
    c.ok("ENABLE CONDSTORE")
    info = c.select("INBOX")
    # RFC 7162 §3.1.2.1.
    assert info.highestmodseq is not None and info.highestmodseq > 0, \
        info.reply.untagged
    st = status(c, "INBOX", "HIGHESTMODSEQ")
    assert st["HIGHESTMODSEQ"] == info.highestmodseq


def test_examine_is_read_only(srv, user, c):
    address, _ = user
    deliver(srv, address, "ro")
    info = c.select("INBOX", examine=True)
    assert re.match(rb"^a\d+ OK \[READ-ONLY\]", info.reply.tagged), \
        info.reply.tagged
    assert info.exists == 1
    # RFC 9051 §6.3.3: nothing can change; STORE is refused and FETCH
    # BODY[] does not set \Seen.
    assert c.command("STORE 1 +FLAGS (\\Flagged)").status == "NO"
    c.ok("FETCH 1 BODY[]")
    r = c.ok("FETCH 1 FLAGS")
    _, items = parse_fetch(r.untagged[-1])
    assert "\\Seen" not in {bytes(f).decode() for f in items["FLAGS"]}
    c.ok("CLOSE")
    assert status(c, "INBOX")["UNSEEN"] == 1


def test_select_nonexistent_leaves_selected_state(c):
    c.ok("ENABLE QRESYNC")
    c.select("INBOX")
    r = c.command('SELECT "Nope"')
    assert r.status == "NO" and r.code_atom == "NONEXISTENT", r.tagged
    # RFC 7162 §3.2.11: the previous mailbox is closed, failed or not.
    assert any(re.match(rb"^\* OK \[CLOSED\]", l) for l in r.untagged), \
        r.untagged
    # RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected.
    assert c.command("FETCH 1 FLAGS").status in ("NO", "BAD")
    assert c.command("UNSELECT").status in ("NO", "BAD")


def test_close_expunges_silently_unselect_does_not(srv, user, c):
    address, _ = user
    for s in ("keep-1", "drop", "keep-2"):
        deliver(srv, address, s)
    c.select("INBOX")
    r = c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    # UNSELECT (RFC 3691, RFC 9051 §6.4.2): no expunge.
    r = c.ok("UNSELECT")
    assert r.untagged == [], r.untagged
    assert c.command("FETCH 1 FLAGS").status in ("NO", "BAD")
    info = c.select("INBOX")
    assert info.exists == 3
    # CLOSE on EXAMINE removes nothing (RFC 9051 §6.4.1).
    c.select("INBOX", examine=True)
    r = c.ok("CLOSE")
    assert r.untagged == [], r.untagged
    assert status(c, "INBOX")["MESSAGES"] == 3
    # CLOSE after SELECT expunges \Deleted messages without EXPUNGE
    # responses (RFC 9051 §6.4.1).
    c.select("INBOX")
    r = c.ok("CLOSE")
    assert not any(b"EXPUNGE" in l or b"VANISHED" in l
                   for l in r.untagged), r.untagged
    assert c.command("NOOP").status == "OK"
    assert c.command("FETCH 1 FLAGS").status in ("NO", "BAD")
    assert status(c, "INBOX")["MESSAGES"] == 2
    info = c.select("INBOX")
    assert info.exists == 2
    assert subjects(c, 2) == ["keep-1", "keep-2"]


def test_logout_does_not_expunge(srv, user, c):
    address, password = user
    deliver(srv, address, "stays")
    c.select("INBOX")
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    r = c.logout()
    assert r.status == "OK" and not untagged_numbers(r.untagged,
                                                     b"EXPUNGE"), r.untagged
    # RFC 9051 §6.1.3: LOGOUT does not expunge (unlike CLOSE).
    other = login(srv, address, password)
    assert status(other, "INBOX", "MESSAGES DELETED") == \
        {"MESSAGES": 1, "DELETED": 1}
    other.close()


# --- names beyond ASCII ------------------------------------------------------


def test_mutf7_names_for_imap4rev1_clients(srv, user, c):
    name = "Äpfel & Birnen/日本"
    wire = mutf7_encode(name)
    assert wire == "&AMQ-pfel &- Birnen/&ZeVnLA-"
    c.ok("CREATE %s" % quoted(wire))
    got = listing(c, 'LIST "" "*"')
    # RFC 3501 §5.1.3: rev1 clients see modified UTF-7.
    assert wire.encode() in got and b"&AMQ-pfel &- Birnen" in got, sorted(got)
    c.select(wire)
    r = c.ok("STATUS %s (MESSAGES)" % quoted(wire))
    assert parse_status(r.untagged[0])[0] == wire.encode(), r.untagged
    # A UTF-8 client sees the same mailbox in UTF-8 (RFC 6855 §3,
    # RFC 9051 §5.1).
    other = login(srv, *user)
    other.ok("ENABLE UTF8=ACCEPT")
    got = listing(other, 'LIST "" "*"')
    assert name.encode() in got, sorted(got)
    other.select(name)
    other.close()


def test_invalid_mutf7_is_refused(c):
    # RFC 3501 §5.1.3: a shift must end with "-"; "&AGE-" encodes "a",
    # which must be itself (printable ASCII is never encoded).
    for bad in ("&Jjo", "x&ZeVnLA", "&AGE-"):
        r = c.command("CREATE %s" % quoted(bad))
        assert r.status in ("NO", "BAD"), (bad, r.tagged)
    assert set(listing(c)) == set(DEFAULT_MAILBOXES)


def test_nul_in_a_name_is_refused_not_cut_short(c):
    # Issue 15, finding 17. RFC 9051 §4.3: a literal holds no NUL; nor may
    # modified UTF-7 smuggle one in (U+0000 would end the name early, so
    # "x&AAA-y" became a mailbox "x").
    for bad in ("x&AAA-y", "&AAA-", "a&AAA-/../b"):
        r = c.command("CREATE %s" % quoted(bad))
        assert r.status in ("NO", "BAD"), (bad, r.tagged)
    c.send(b"n1 CREATE {3}\r\n")
    assert c.conn.readline().startswith(b"+")
    c.send(b"z\0w\r\n")
    r = c.read_reply(b"n1")
    assert r.status in ("NO", "BAD"), r.tagged
    assert set(listing(c)) == set(DEFAULT_MAILBOXES)


def test_raw_8bit_name_refused_without_utf8(c):
    # RFC 3501 §9: quoted strings are 7-bit; UTF-8 needs ENABLE.
    c.send("x1 CREATE \"Ärger\"\r\n".encode("utf-8"))
    r = c.read_reply(b"x1")
    assert r.status in ("NO", "BAD"), r.tagged
    assert set(listing(c)) == set(DEFAULT_MAILBOXES)


@pytest.mark.parametrize("enable", ["IMAP4rev2", "UTF8=ACCEPT"])
def test_utf8_names_after_enable(srv, user, c, enable):
    c.ok("ENABLE " + enable)
    name = "Ärger & Co/Ελληνικά"
    c.send(b"x1 CREATE " + quoted(name).encode("utf-8") + b"\r\n")
    assert c.read_reply(b"x1").status == "OK"
    got = listing(c)
    # UTF-8 on the wire, "&" as itself (no modified UTF-7 any more).
    assert name.encode() in got and "Ärger & Co".encode() in got, sorted(got)
    c.send(b"x2 SELECT " + quoted(name).encode("utf-8") + b"\r\n")
    assert c.read_reply(b"x2").status == "OK"
    # A rev1 client sees modified UTF-7 of the same names.
    other = login(srv, *user)
    got = listing(other)
    assert mutf7_encode(name).encode() in got, sorted(got)
    assert b"&AMQ-rger &- Co" in got, sorted(got)
    other.close()


def test_utf8_client_ampersand_is_literal(srv, user, c):
    c.ok("ENABLE UTF8=ACCEPT")
    c.ok('CREATE "R&D"')
    assert b"R&D" in listing(c)
    other = login(srv, *user)
    # The rev1 client sees "R&-D" (RFC 3501 §5.1.3: "&" is "&-").
    assert b"R&-D" in listing(other)
    other.close()


def test_list_pattern_with_many_wildcards_is_answered(postern_factory,
                                                      default_cert,
                                                      tmp_path):
    """Matching "*" and "%" must not backtrack exponentially: a pattern
    like "*a*a*a...b" against a long name of "a"s would otherwise keep a
    worker thread (and every session on it) busy for hours. The correct
    answer (no match) takes microseconds; REPLY_TIMEOUT is the bound."""
    srv = start_imap_server(postern_factory, tmp_path, default_cert)
    user = new_user(srv)
    c = login(srv, *user)
    c.ok('CREATE "%s"' % ("a" * 200))
    r = c.ok('LIST "" "%sb"' % ("*a" * 24))
    assert r.untagged == [], r.untagged
    r = c.ok('LIST "" "%sa"' % ("%a" * 24))
    assert len(r.untagged) == 1, r.untagged
    c.close()
