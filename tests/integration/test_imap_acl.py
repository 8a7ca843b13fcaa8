"""IMAP ACL (RFC 4314) and other users' mailboxes (RFC 2342 "Other Users"
namespace) as clients see them: the ACL commands on one's own mailboxes,
what another user sees with each right and without it, and that a mailbox
the user may not look up is answered exactly as a missing one (RFC 4314
§6). Replies are checked as bytes."""

import pytest

from imap_helpers import (deliver, imap_caps, login, new_user, parse_fetch,
                          parse_list, parse_status, start_imap_server,
                          flag_set, wait_for)

OTHER = "Other Users"


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-acl"),
                             default_cert)


def message(n):
    return (b"From: a@other.test\r\nTo: b@example.test\r\n"
            b"Subject: acl %d\r\n\r\nBody %d.\r\n" % (n, n))


def append(c, mailbox, msg, flags=""):
    tag = next(c.tags)
    c.send(b"%s APPEND \"%s\" %s{%d+}\r\n%s\r\n"
           % (tag, mailbox.encode(), flags.encode(), len(msg), msg))
    return c.read_reply(tag)


def after_tag(r):
    return r.tagged.split(b" ", 1)[1]


def shared(owner, name):
    return "%s/%s/%s" % (OTHER, owner, name)


def test_capabilities_name_acl_and_rights(srv):
    user = new_user(srv)
    with login(srv, *user) as c:
        caps = imap_caps(c.ok("CAPABILITY").untagged[0])
        assert "ACL" in caps and "RIGHTS=TEXK" in caps, caps


def test_owner_has_every_right_and_getacl_lists_the_owner(srv):
    user = new_user(srv)
    with login(srv, *user) as c:
        r = c.ok("MYRIGHTS INBOX")
        assert r.untagged == [b'* MYRIGHTS "INBOX" lrswipkxteacd\r\n'], \
            r.untagged
        r = c.ok("GETACL INBOX")
        assert r.untagged == [b'* ACL "INBOX" "%s" lrswipkxteacd\r\n'
                              % user[0].encode()], r.untagged
        r = c.ok('LISTRIGHTS INBOX "%s"' % user[0])
        assert r.untagged == [b'* LISTRIGHTS "INBOX" "%s" lrswipkxteacd\r\n'
                              % user[0].encode()], r.untagged
        r = c.ok("LISTRIGHTS INBOX anyone")
        assert r.untagged == [b'* LISTRIGHTS "INBOX" "anyone" "" '
                              b'l r s w i p k x t e a\r\n'], r.untagged


def test_setacl_modes_negative_rights_and_deleteacl(srv):
    owner, other = new_user(srv), new_user(srv)
    with login(srv, *owner) as c:
        c.ok('SETACL Sent "%s" lr' % other[0])
        c.ok('SETACL Sent "%s" +si' % other[0])
        c.ok('SETACL Sent "%s" -r' % other[0])
        c.ok("SETACL Sent anyone l")
        c.ok('SETACL Sent "-%s" w' % other[0])
        r = c.ok("GETACL Sent")
        assert r.untagged == [
            b'* ACL "Sent" "%s" lrswipkxteacd "anyone" l "%s" lsi '
            b'"-%s" w\r\n' % (owner[0].encode(), other[0].encode(),
                             other[0].encode())], r.untagged
        # RFC 4314 §2.1.1: "c" is k and x here, "d" is e and t.
        # Reported only when both are held: "k" alone is "k", so that a
        # client copying the ACL back does not widen it to "kx".
        c.ok('SETACL Sent "%s" lk' % other[0])
        r = c.ok("GETACL Sent")
        assert b'"%s" lk ' % other[0].encode() in r.untagged[0], r.untagged
        c.ok('SETACL Sent "%s" lk' % other[0])
        c.ok('SETACL Sent "%s" t' % other[0])
        r = c.ok("GETACL Sent")
        assert b'"%s" t ' % other[0].encode() in r.untagged[0], r.untagged
        c.ok('SETACL Sent "%s" c' % other[0])
        r = c.ok("GETACL Sent")
        assert b'"%s" kxc ' % other[0].encode() in r.untagged[0], r.untagged
        c.ok('SETACL Sent "%s" d' % other[0])
        r = c.ok("GETACL Sent")
        assert b'"%s" tedd' not in r.untagged[0]
        assert b'"%s" ted ' % other[0].encode() in r.untagged[0], r.untagged
        c.ok('DELETEACL Sent "%s"' % other[0])
        c.ok('DELETEACL Sent "-%s"' % other[0])
        # An empty rights string leaves no entry either.
        c.ok('SETACL Sent anyone ""')
        r = c.ok("GETACL Sent")
        assert r.untagged == [b'* ACL "Sent" "%s" lrswipkxteacd\r\n'
                              % owner[0].encode()], r.untagged


def test_setacl_refusals(srv):
    owner = new_user(srv)
    with login(srv, *owner) as c:
        r = c.command("SETACL INBOX anyone lrz")
        assert r.status == "BAD", r.tagged
        r = c.command("SETACL INBOX nobody-here lr")
        assert r.status == "BAD", r.tagged
        r = c.command('SETACL INBOX "ghost@example.test" lr')
        assert r.tagged.endswith(b" NO No such user\r\n"), r.tagged
        r = c.command('SETACL INBOX "%s" lr' % owner[0])
        assert r.status == "NO" and r.code_atom == "CANNOT", r.tagged
        r = c.command("SETACL Nowhere anyone lr")
        assert r.tagged.endswith(b" NO [NONEXISTENT] No such mailbox\r\n"), \
            r.tagged
        r = c.command("GETACL Nowhere")
        assert r.tagged.endswith(b" NO [NONEXISTENT] No such mailbox\r\n")


def test_select_of_another_users_mailbox_follows_the_rights(srv):
    owner, other = new_user(srv), new_user(srv)
    name = shared(owner[0], "Sales")
    with login(srv, *owner) as o, login(srv, *other) as c:
        o.ok("CREATE Sales")
        assert append(o, "Sales", message(1)).status == "OK"
        missing = c.command('SELECT "%s"' % shared(owner[0], "Nothing"))
        assert missing.tagged.endswith(
            b" NO [NONEXISTENT] No such mailbox\r\n"), missing.tagged
        # No rights at all: exactly the reply of a missing mailbox.
        r = c.command('SELECT "%s"' % name)
        assert after_tag(r) == after_tag(missing), r.tagged
        # "r" without "l" is enough to read (RFC 4314 §4 SELECT: r).
        o.ok('SETACL Sales "%s" r' % other[0])
        r = c.ok('EXAMINE "%s"' % name)
        assert b"* 1 EXISTS\r\n" in r.untagged, r.untagged
        # "l" without "r": it exists, but may not be read.
        o.ok('SETACL Sales "%s" l' % other[0])
        r = c.command('SELECT "%s"' % name)
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), \
            r.tagged
        o.ok('SETACL Sales "%s" lr' % other[0])
        r = c.ok('SELECT "%s"' % name)
        assert r.tagged.endswith(b" OK [READ-ONLY] SELECT completed\r\n"), \
            r.tagged
        r = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: acl 1" in r.untagged[0], r.untagged
        # Nothing may be changed with "lr".
        r = c.command("STORE 1 +FLAGS (\\Flagged)")
        assert r.status == "NO", r.tagged
        # One's own name in the namespace is not a way in.
        r = c.command('SELECT "%s"' % shared(other[0], "INBOX"))
        assert after_tag(r) == after_tag(missing), r.tagged


def fetch_flags(c, n=1):
    r = c.ok("FETCH %d (FLAGS)" % n)
    for l in r.untagged:
        if b" FETCH " in l:
            return flag_set(parse_fetch(l)[1]["FLAGS"])
    raise AssertionError(r.untagged)


def test_namespace_names_other_users(srv):
    user = new_user(srv)
    with login(srv, *user) as c:
        r = c.ok("NAMESPACE")
        assert r.untagged == [b'* NAMESPACE (("" "/")) '
                              b'(("Other Users/" "/")) NIL\r\n'], r.untagged


def test_list_shows_what_may_be_looked_up(srv):
    owner, other = new_user(srv), new_user(srv)
    with login(srv, *owner) as o, login(srv, *other) as c:
        for box in ("Sales", "Sales/2026", "Sales/Secret", "Private"):
            o.ok('CREATE "%s"' % box)
        o.ok('SETACL Sales "%s" lr' % other[0])
        o.ok('SETACL Sales/2026 "%s" l' % other[0])
        o.ok('SETACL Private "%s" r' % other[0])    # no "l": not listed
        r = c.ok('LIST "" "%s/*"' % OTHER)
        got = {parse_list(l).name: parse_list(l).attrs
               for l in r.lines(b"LIST")}
        base = "%s/%s" % (OTHER, owner[0])
        assert set(got) == {(base + "/Sales").encode(),
                            (base + "/Sales/2026").encode()}, got
        # Sales/Secret stays unknown: Sales/2026 is its only visible child.
        assert "\\haschildren" in got[(base + "/Sales").encode()]
        assert "\\hasnochildren" in got[(base + "/Sales/2026").encode()]
        r = c.ok('LIST "" "%s/%%"' % OTHER)
        got = {parse_list(l).name: parse_list(l).attrs
               for l in r.lines(b"LIST")}
        assert set(got) == {base.encode()}, got
        assert "\\noselect" in got[base.encode()] or \
            "\\nonexistent" in got[base.encode()], got
        r = c.ok('LIST "" "%"')
        names = [parse_list(l).name for l in r.lines(b"LIST")]
        assert OTHER.encode() in names, names
        # LIST-STATUS: the counts only where "r" is held.
        r = c.ok('LIST "" "%s/*" RETURN (STATUS (MESSAGES))' % OTHER)
        statuses = [parse_status(l)[0] for l in r.lines(b"STATUS")]
        assert statuses == [(base + "/Sales").encode()], r.untagged
        # The owner's own listing is unchanged.
        r = o.ok('LIST "" "*"')
        assert not any(OTHER.encode() in l for l in r.untagged), r.untagged


def test_status_needs_read(srv):
    owner, other = new_user(srv), new_user(srv)
    name = shared(owner[0], "Sales")
    with login(srv, *owner) as o, login(srv, *other) as c:
        o.ok("CREATE Sales")
        assert append(o, "Sales", message(1)).status == "OK"
        o.ok('SETACL Sales "%s" l' % other[0])
        r = c.command('STATUS "%s" (MESSAGES)' % name)
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n")
        o.ok('SETACL Sales "%s" lr' % other[0])
        r = c.ok('STATUS "%s" (MESSAGES UNSEEN)' % name)
        assert r.untagged == [b'* STATUS "%s" (MESSAGES 1 UNSEEN 1)\r\n'
                              % name.encode()], r.untagged


def test_every_command_on_a_hidden_mailbox_is_answered_as_missing(srv):
    """RFC 4314 §6: without "l" (and without the right a command needs)
    the reply is byte for byte the reply about a mailbox that does not
    exist."""
    owner, other = new_user(srv), new_user(srv)
    hidden, missing = shared(owner[0], "Hidden"), shared(owner[0], "Nope")
    with login(srv, *owner) as o, login(srv, *other) as c:
        o.ok("CREATE Hidden")
        assert append(o, "Hidden", message(1)).status == "OK"
        # Rights that give no "l" and none of what is asked below.
        o.ok('SETACL Hidden "%s" p' % other[0])
        c.ok("SELECT INBOX")
        assert append(c, "INBOX", message(2)).status == "OK"
        c.ok("NOOP")
        commands = [
            'SELECT "{}"', 'EXAMINE "{}"', 'STATUS "{}" (MESSAGES)',
            'CREATE "{}/Child"', 'DELETE "{}"', 'RENAME "{}" "{}2"',
            'SUBSCRIBE "{}"', 'GETACL "{}"', 'MYRIGHTS "{}"',
            'LISTRIGHTS "{}" anyone', 'SETACL "{}" anyone lr',
            'DELETEACL "{}" anyone', 'GETQUOTAROOT "{}"',
        ]
        for cmd in commands:
            c.ok("SELECT INBOX")
            want = c.command(cmd.format(missing, missing))
            c.ok("SELECT INBOX")
            got = c.command(cmd.format(hidden, hidden))
            assert got.status == "NO", (cmd, got.tagged)
            assert after_tag(got) == after_tag(want), (cmd, got, want)
            assert got.untagged == want.untagged, (cmd, got, want)
        for cmd in ('COPY 1 "{}"', 'MOVE 1 "{}"', 'UID COPY 1:* "{}"'):
            c.ok("SELECT INBOX")
            want = c.command(cmd.format(missing))
            got = c.command(cmd.format(hidden))
            assert got.status == "NO", (cmd, got.tagged)
            assert after_tag(got) == after_tag(want), (cmd, got, want)
        want = append(c, missing, message(3))
        got = append(c, hidden, message(3))
        assert got.status == "NO" and after_tag(got) == after_tag(want), \
            (got, want)
        r = c.ok('LIST "" "*"')
        assert not any(b"Hidden" in l for l in r.untagged), r.untagged
        # Nothing changed for the owner.
        r = o.ok('STATUS Hidden (MESSAGES)')
        assert r.untagged == [b'* STATUS "Hidden" (MESSAGES 1)\r\n']
        r = o.ok("GETACL Hidden")
        assert r.untagged == [b'* ACL "Hidden" "%s" lrswipkxteacd "%s" p\r\n'
                              % (owner[0].encode(), other[0].encode())]


def test_each_write_right_allows_its_own_changes(srv):
    owner, other = new_user(srv), new_user(srv)
    name = shared(owner[0], "Team")
    with login(srv, *owner) as o, login(srv, *other) as c:
        o.ok("CREATE Team")
        for n in (1, 2):
            assert append(o, "Team", message(n)).status == "OK"

        def grant(rights):
            o.ok('SETACL Team "%s" %s' % (other[0], rights))

        grant("lr")
        r = c.ok('SELECT "%s"' % name)
        assert b"[READ-ONLY]" in r.tagged, r.tagged
        # A body fetch without "s" leaves \Seen alone (RFC 4314 §4).
        c.ok("FETCH 1 BODY[]")
        assert "\\Seen" not in fetch_flags(c)
        r = append(c, name, message(9))
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), r
        grant("lrs")
        r = c.ok('SELECT "%s"' % name)
        assert b"[READ-WRITE]" in r.tagged, r.tagged
        c.ok("FETCH 1 BODY[]")
        assert "\\Seen" in fetch_flags(c)
        c.ok("STORE 2 +FLAGS (\\Seen)")
        for flags in ("\\Flagged", "\\Deleted", "$Label", "\\Seen \\Answered"):
            r = c.command("STORE 2 +FLAGS (%s)" % flags)
            assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), \
                (flags, r.tagged)
        r = c.command("STORE 2 FLAGS (\\Seen)")
        assert r.status == "NO", r.tagged
        r = c.command("EXPUNGE")
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), r
        grant("lrsw")
        c.ok("STORE 2 +FLAGS (\\Flagged $Label)")
        r = c.command("STORE 2 +FLAGS (\\Deleted)")
        assert r.status == "NO", r.tagged
        grant("lrswt")
        c.ok("STORE 2 +FLAGS (\\Deleted)")
        # CLOSE without "e" expunges nothing.
        c.ok("CLOSE")
        r = o.ok("STATUS Team (MESSAGES)")
        assert b"MESSAGES 2" in r.untagged[0], r.untagged
        grant("lrswte")
        c.ok('SELECT "%s"' % name)
        r = c.ok("EXPUNGE")
        assert b"* 2 EXPUNGE\r\n" in r.untagged, r.untagged
        r = c.command("MOVE 1 INBOX")
        assert r.status == "OK", r.tagged
        # "i": APPEND and COPY into it; flags kept only where allowed.
        grant("lri")
        c.ok("SELECT INBOX")
        r = append(c, name, message(5), "(\\Flagged \\Seen) ")
        assert r.status == "OK", r.tagged
        r = o.ok('EXAMINE Team')
        r = o.ok("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert len(r.lines(b"1 FETCH")) == 1
        assert any(b"acl 5" in l and b"\\Flagged" not in l and
                   b"\\Seen" not in l for l in r.untagged), r.untagged
        c.ok("STORE 1 -FLAGS (\\Seen \\Flagged)")
        r = c.ok('COPY 1 "%s"' % name)
        assert b"[COPYUID " in r.tagged, r.tagged
        c.ok("STORE 1 +FLAGS (\\Flagged)")
        r = c.command('COPY 1 "%s"' % name)
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), r
        # "k": children; "x": deleting; "a": administering.
        r = c.command('CREATE "%s/Sub"' % name)
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), r
        grant("lrk")
        c.ok('CREATE "%s/Sub"' % name)
        r = o.ok('LIST "" "Team/*"')
        assert any(b'"Team/Sub"' in l for l in r.untagged), r.untagged
        # The child starts with its parent's ACL.
        r = o.ok("GETACL Team/Sub")
        assert b'"%s" lrk\r\n' % other[0].encode() in r.untagged[0], \
            r.untagged
        r = c.command('DELETE "%s/Sub"' % name)
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), r
        o.ok('SETACL Team/Sub "%s" lrx' % other[0])
        c.ok('DELETE "%s/Sub"' % name)
        r = c.command('CREATE "%s/%s/Top"' % (OTHER, owner[0]))
        assert r.status == "NO", r.tagged
        r = c.command('SETACL "%s" anyone lr' % name)
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), r
        grant("lra")
        c.ok('SETACL "%s" anyone l' % name)
        r = c.ok('GETACL "%s"' % name)
        assert r.untagged[0].startswith(b'* ACL "%s" "%s" lrswipkxteacd'
                                        % (name.encode(), owner[0].encode()))
        r = c.command('SETACL "%s" "%s" r' % (name, owner[0]))
        assert r.status == "NO", r.tagged


def test_append_into_shared_counts_against_the_owners_quota(srv):
    from imap_helpers import admin_ok
    owner, other = new_user(srv), new_user(srv)
    admin_ok(srv.admin_config, "user", "set", owner[0], "quota_messages=2")
    admin_ok(srv.admin_config, "user", "set", other[0], "quota_messages=5")
    name = shared(owner[0], "Drop")
    with login(srv, *owner) as o, login(srv, *other) as c:
        o.ok("CREATE Drop")
        o.ok('SETACL Drop "%s" li' % other[0])
        assert append(c, name, message(1)).status == "OK"
        assert append(c, name, message(2)).status == "OK"
        r = append(c, name, message(3))
        assert r.status == "NO" and r.code_atom == "OVERQUOTA", r.tagged
        r = o.ok('GETQUOTA ""')
        assert b"MESSAGE 2 2" in r.untagged[0], r.untagged
        r = c.ok('GETQUOTA ""')
        assert b"MESSAGE 0 5" in r.untagged[0], r.untagged


def test_rights_withdrawn_while_selected_stop_the_next_command(srv):
    """Several sessions: the owner changes the ACL while two sessions of
    the other user have the mailbox selected (one idling). A right taken
    away is refused at the next command; without "r" the mailbox is
    closed and nothing more of it is shown."""
    owner, other = new_user(srv), new_user(srv)
    name = shared(owner[0], "Desk")
    with login(srv, *owner) as o, login(srv, *other) as a, \
            login(srv, *other) as b:
        o.ok("CREATE Desk")
        assert append(o, "Desk", message(1)).status == "OK"
        o.ok('SETACL Desk "%s" lrsw' % other[0])
        a.ok('SELECT "%s"' % name)
        b.ok('SELECT "%s"' % name)
        a.ok("STORE 1 +FLAGS (\\Flagged)")
        # "w" goes: the next STORE of a keyword is refused, \Seen is not.
        o.ok('SETACL Desk "%s" -w' % other[0])
        r = a.command("STORE 1 +FLAGS ($Later)")
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), r
        a.ok("STORE 1 +FLAGS (\\Seen)")
        # b idles; a new message shows while "r" holds...
        tag = next(b.tags)
        b.send(tag + b" IDLE\r\n")
        assert b.read_line().startswith(b"+ ")
        assert append(o, "Desk", message(2)).status == "OK"
        seen = [b.read_line()]
        while seen[-1] != b"* 2 EXISTS\r\n":
            assert len(seen) < 5, seen      # a's flag changes, then this
            seen.append(b.read_line())
        # IMAP4rev1: RECENT follows EXISTS (RFC 3501 §7.3.2); neither a
        # nor b, not being the owner, takes \Recent from the owner, so
        # both messages are still recent to all (R3 of the review).
        assert b.read_line() == b"* 2 RECENT\r\n"
        # ...and nothing once it is gone.
        o.ok('SETACL Desk "%s" l' % other[0])
        assert append(o, "Desk", message(3)).status == "OK"
        o.ok("SELECT Desk")
        o.ok("STORE 1 +FLAGS (\\Answered)")
        b.send(b"DONE\r\n")
        r = b.read_reply(tag)
        assert r.status == "OK" and r.untagged == [], r
        for c in (a, b):
            r = c.command("FETCH 1:* (FLAGS)")
            assert r.untagged == [b"* OK [CLOSED] Access to the mailbox "
                                  b"was withdrawn\r\n"], r.untagged
            assert r.status == "BAD", r.tagged
            r = c.command("UID STORE 1 +FLAGS (\\Deleted)")
            assert r.status == "BAD", r.tagged
            r = c.command('SELECT "%s"' % name)
            assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n")
        # The owner's mailbox is as the owner left it; \Recent is the
        # owner's, the first of its sessions to select it.
        r = o.ok("FETCH 1 (FLAGS)")
        assert flag_set(parse_fetch(r.lines(b"1 FETCH")[0])[1]["FLAGS"]) \
            == {"\\Flagged", "\\Seen", "\\Answered", "\\Recent"}, \
            r.untagged


def test_deleting_an_account_drops_the_rights_it_had(srv):
    from imap_helpers import admin_ok, add_user
    owner = new_user(srv)
    other = new_user(srv)
    name = shared(owner[0], "Kept")
    with login(srv, *owner) as o:
        o.ok("CREATE Kept")
        o.ok('SETACL Kept "%s" lr' % other[0])
        admin_ok(srv.admin_config, "user", "del", other[0])
        r = o.ok("GETACL Kept")
        assert r.untagged == [b'* ACL "Kept" "%s" lrswipkxteacd\r\n'
                              % owner[0].encode()], r.untagged
    # The same address made again gets nothing.
    add_user(srv.admin_config, other[0], other[1])
    with login(srv, *other) as c:
        r = c.command('SELECT "%s"' % name)
        assert r.tagged.endswith(b" NO [NONEXISTENT] No such mailbox\r\n")


def test_subscribing_to_another_users_mailbox(srv):
    owner, other = new_user(srv), new_user(srv)
    name = shared(owner[0], "News")
    with login(srv, *owner) as o, login(srv, *other) as c:
        o.ok("CREATE News")
        r = c.command('SUBSCRIBE "%s"' % name)
        assert r.tagged.endswith(b" NO [NONEXISTENT] No such mailbox\r\n")
        o.ok('SETACL News "%s" lr' % other[0])
        c.ok('SUBSCRIBE "%s"' % name)
        r = c.ok('LSUB "" "%s/*"' % OTHER)
        assert r.untagged == [b'* LSUB (\\HasNoChildren) "/" "%s"\r\n'
                              % name.encode()], r.untagged
        r = c.ok('LIST (SUBSCRIBED) "" "%s/*"' % OTHER)
        e = parse_list(r.lines(b"LIST")[0])
        assert e.name == name.encode() and e.has("\\Subscribed"), r.untagged
        assert len(r.lines(b"LIST")) == 1, r.untagged
        # The owner's subscriptions are the owner's.
        r = o.ok('LSUB "" "*"')
        assert not any(b"News" in l for l in r.untagged), r.untagged
        o.ok('DELETEACL News "%s"' % other[0])
        r = c.ok('LIST (SUBSCRIBED) "" "%s/*"' % OTHER)
        assert r.lines(b"LIST") == [b'* LIST (\\NonExistent \\Subscribed) '
                                    b'"/" "%s"\r\n' % name.encode()], \
            r.untagged
        c.ok('UNSUBSCRIBE "%s"' % name)
        r = c.ok('LSUB "" "*"')
        assert not any(b"News" in l for l in r.untagged), r.untagged


def test_copying_an_acl_back_does_not_widen_it(srv):
    """A client that reads the ACL and writes the same strings back (an
    RFC 2086 client's "copy the ACL" operation) must not give anyone a
    right they did not have: "c" and "d" are reported only when all their
    members are held (RFC 4314 §2.1.1)."""
    owner, other = new_user(srv), new_user(srv)
    with login(srv, *owner) as o:
        o.ok("CREATE Proj")
        o.ok("CREATE Copy")
        o.ok('SETACL Proj "%s" lrke' % other[0])
        r = o.ok("GETACL Proj")
        words = r.untagged[0].rstrip(b"\r\n").split(b" ")
        rights = words[words.index(b'"%s"' % other[0].encode()) + 1]
        assert rights == b"lrke", r.untagged
        o.ok('SETACL Copy "%s" %s' % (other[0], rights.decode()))
        r = o.ok("GETACL Copy")
        assert b'"%s" lrke\r\n' % other[0].encode() in r.untagged[0], \
            r.untagged
    with login(srv, *other) as c:
        r = c.ok('MYRIGHTS "%s"' % shared(owner[0], "Copy"))
        assert r.untagged == [b'* MYRIGHTS "%s" lrke\r\n'
                              % shared(owner[0], "Copy").encode()], r.untagged
        r = c.command('DELETE "%s"' % shared(owner[0], "Copy"))
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), r


def test_refused_delete_keeps_the_selected_mailbox(srv):
    """DELETE of the selected mailbox refused for lack of "x" leaves it
    selected; a DELETE that succeeds leaves nothing selected."""
    owner, other = new_user(srv), new_user(srv)
    name = shared(owner[0], "Keep")
    with login(srv, *owner) as o, login(srv, *other) as c:
        o.ok("CREATE Keep")
        assert append(o, "Keep", message(1)).status == "OK"
        o.ok('SETACL Keep "%s" lrs' % other[0])
        c.ok('SELECT "%s"' % name)
        r = c.command('DELETE "%s"' % name)
        assert r.tagged.endswith(b" NO [NOPERM] Permission denied\r\n"), r
        r = c.ok("FETCH 1 (FLAGS)")
        assert r.lines(b"1 FETCH"), r.untagged
        # The mailbox is still there for its owner.
        o.ok("STATUS Keep (MESSAGES)")
        # Now with "x": gone, and nothing selected.
        o.ok('SETACL Keep "%s" lrsx' % other[0])
        c.ok('DELETE "%s"' % name)
        r = c.command("FETCH 1 (FLAGS)")
        assert r.status == "BAD", r.tagged
        # One's own mailbox, selected and deleted: likewise closed.
        c.ok("CREATE Mine")
        c.ok("SELECT Mine")
        c.ok("DELETE Mine")
        r = c.command("FETCH 1 (FLAGS)")
        assert r.status == "BAD", r.tagged
        # A refused DELETE of one's own selected INBOX keeps it.
        c.ok("SELECT INBOX")
        r = c.command("DELETE INBOX")
        assert r.status == "NO", r.tagged
        c.ok("UID SEARCH ALL")


def test_another_user_cannot_give_a_special_use(srv):
    """With "k" on a shared folder, a user could make in it a \\Sent (or
    \\Drafts, \\Junk) that the owner's client then files into, in a folder
    the user reads. Only the owner gives a mailbox a special use."""
    owner, other = new_user(srv), new_user(srv)
    with login(srv, *owner) as o, login(srv, *other) as c:
        o.ok("CREATE Team")
        o.ok('SETACL Team "%s" lrk' % other[0])
        for use in ("\\Sent", "\\Drafts", "\\Junk"):
            r = c.command('CREATE "%s/Out" (USE (%s))'
                          % (shared(owner[0], "Team"), use))
            assert r.tagged.endswith(b" NO [USEATTR] Only the owner gives "
                                     b"a mailbox a special use\r\n"), r
        r = o.ok('LIST (SPECIAL-USE) "" "*"')
        names = [parse_list(l).name for l in r.lines(b"LIST")]
        assert b"Team/Out" not in names and b'"Team/Out"' not in names, \
            r.untagged
        # Without USE the child is made, with no special use.
        c.ok('CREATE "%s/Out"' % shared(owner[0], "Team"))
        r = o.ok('LIST "" "Team/Out" RETURN (SPECIAL-USE)')
        assert r.lines(b"LIST") == [b'* LIST (\\HasNoChildren) "/" '
                                    b'"Team/Out"\r\n'], r.untagged
        # The owner still may.
        o.ok("CREATE Team/Sent2 (USE (\\Sent))")
