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
