"""Special-use mailboxes (RFC 6154) of a new account: `postern user add`
creates Sent, Drafts, Trash, Junk and Archive with their attributes, and
a special-use mailbox the user deleted stays deleted at the next login
(postern does not create missing ones lazily: the user's choice wins)."""

import pytest

from imap_helpers import login, new_user, parse_list, start_imap_server


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-special"),
                             default_cert)


def special_use(c):
    r = c.ok('LIST (SPECIAL-USE) "" "*"')
    out = {}
    for line in r.lines(b"LIST"):
        e = parse_list(line)
        out[e.name] = sorted(a for a in e.attrs if a in
                             ("\\sent", "\\drafts", "\\trash", "\\junk",
                              "\\archive"))
    return out


def test_user_add_creates_the_special_use_mailboxes(srv):
    c = login(srv, *new_user(srv))
    try:
        assert special_use(c) == {b"Sent": ["\\sent"],
                                  b"Drafts": ["\\drafts"],
                                  b"Trash": ["\\trash"],
                                  b"Junk": ["\\junk"],
                                  b"Archive": ["\\archive"]}
    finally:
        c.close()


def test_a_deleted_special_use_mailbox_is_not_recreated(srv):
    user = new_user(srv)
    c = login(srv, *user)
    try:
        c.ok("DELETE Junk")
    finally:
        c.close()
    c = login(srv, *user)
    try:
        assert b"Junk" not in special_use(c)
        assert b"Sent" in special_use(c)
    finally:
        c.close()
