"""What Dovecot's imaptest found against postern (issue #22; how to run it:
tests/IMAPTEST.md). Each test replays, with a plain client, the exchange
an imaptest compliance script or its benchmark mode tripped over, and
checks the bytes on the wire."""

import pytest

from imap_helpers import deliver, login, new_user, start_imap_server


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-imaptest"),
                             default_cert)


@pytest.fixture
def user(srv):
    return new_user(srv)


def two_sessions_one_expunged(srv, user, n=3):
    """Sessions a and b on INBOX with n messages; b expunged message 2,
    which a has not heard of yet."""
    for i in range(n):
        deliver(srv, user[0], "m%d" % i)
    a = login(srv, *user)
    a.select("INBOX")
    b = login(srv, *user)
    b.select("INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    return a, b


# --- benchmark mode: NO to STORE/FETCH of a message expunged meanwhile ----
#
# imaptest's benchmark counts a tagged NO to STORE or FETCH as an error
# unless its text is one it knows for "expunged meanwhile" (it does not
# look at [EXPUNGEISSUED] there): against postern it logged over a
# thousand "STORE failed"/"DELETE failed"/"FETCH failed" errors in 30 s.
# The code stays RFC 9051 §7.1 EXPUNGEISSUED; the words are the ones
# such tools (and people) recognise.


def test_store_on_expunged_message_says_they_have_been_deleted(srv, user):
    a, b = two_sessions_one_expunged(srv, user)
    r = a.command("STORE 1:3 +FLAGS.SILENT (\\Flagged)")
    assert r.tagged.endswith(
        b" NO [EXPUNGEISSUED] Some of the messages have been deleted by "
        b"another session; the others were changed\r\n"), r.tagged
    a.logout()
    b.logout()


def test_fetch_of_expunged_body_says_it_no_longer_exists(srv, user):
    a, b = two_sessions_one_expunged(srv, user)
    r = a.command("FETCH 2 (BODY.PEEK[])")
    assert r.untagged == [], r.untagged
    assert r.tagged.endswith(
        b" NO [EXPUNGEISSUED] Some of the requested messages no longer "
        b"exist\r\n"), r.tagged
    a.logout()
    b.logout()
