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


def append(c, box, msg, literal8=False):
    """APPEND msg to box with a non-synchronizing literal (LITERAL+), or
    a ~{literal8} (RFC 3516 §4.4); returns the Reply."""
    c.send(b"ap APPEND %s %s{%d+}\r\n%s\r\n"
           % (box.encode(), b"~" if literal8 else b"", len(msg), msg))
    r = c.read_reply(b"ap")
    assert r.status == "OK", r.tagged
    return r


# --- esearch: UID ALL never spans a UID that is gone ----------------------


def test_uid_search_and_sort_all_skip_the_expunged_uid(srv, user):
    for i in range(7):
        deliver(srv, user[0], "s%d" % i)
    c = login(srv, *user)
    c.select("INBOX")
    c.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    # RFC 4731 §3.1: ALL names the matching UIDs; 4 is not one of them.
    r = c.ok("UID SEARCH RETURN (ALL) ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") UID ALL 1:3,5:7\r\n'
                          % r.tag], r.untagged
    r = c.ok("UID SORT RETURN (ALL) (ARRIVAL) US-ASCII ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") UID ALL 1:3,5:7\r\n'
                          % r.tag], r.untagged
    # Sequence numbers have no gap.
    r = c.ok("SEARCH RETURN (ALL) ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") ALL 1:6\r\n' % r.tag], \
        r.untagged
    c.logout()


# --- append-binary: no NUL inside a {literal} -----------------------------


def test_body_of_a_part_with_nul_shows_0x80_and_binary_keeps_it(srv, user):
    c = login(srv, *user)
    c.ok("CREATE bin")
    body = b"\x00-\xe4\r\n\r\n"
    append(c, "bin", b"From: user@domain.org\r\nMime-Version: 1.0\r\n"
           b"Content-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n" + body, literal8=True)
    c.select("bin")
    # RFC 9051 §4.3: a literal is CHAR8 (no NUL); BODY[] is not BINARY.
    r = c.ok("FETCH 1 (BODY.PEEK[1])")
    assert r.untagged == [b"* 1 FETCH (BODY[1] {7}\r\n\x80-\xe4\r\n\r\n)"
                          b"\r\n"], r.untagged
    r = c.ok("FETCH 1 (BODY.PEEK[TEXT]<0.3>)")
    assert r.untagged == [b"* 1 FETCH (BODY[TEXT]<0> {3}\r\n\x80-\xe4)"
                          b"\r\n"], r.untagged
    # RFC 3516 §4.2: BINARY sends the octets as they are, in a literal8.
    r = c.ok("FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert r.untagged == [b"* 1 FETCH (BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\n"
                          + body + b")\r\n"], r.untagged
    c.logout()


# --- fetch-body-message-rfc822-mime: a digest inside a forwarded message --

FORWARDED_DIGEST = (
    b"From: user@domain.org\r\nMime-Version: 1.0\r\n"
    b"Content-Type: message/rfc822\r\n\r\n"
    b"From: sub@domain.org\r\nSubject: submsg\r\n"
    b"Content-Type: multipart/digest; boundary=\"foo\"\r\n\r\n"
    b"prologue\r\n\r\n--foo\r\n\r\n"
    b"From: m1@example.com\r\nSubject: m1\r\n\r\nm1 body\r\n\r\n"
    b"--foo\r\nX-Mime: m2 header\r\n\r\n"
    b"From: m2@example.com\r\nSubject: m2\r\n\r\nm2 body\r\n\r\n"
    b"--foo--\r\n\r\nepilogue\r\n")


def test_header_and_text_of_a_digest_part_inside_message_rfc822(srv, user):
    c = login(srv, *user)
    c.ok("CREATE fwd")
    append(c, "fwd", FORWARDED_DIGEST)
    c.select("fwd")
    # RFC 2046 §5.1.5: a digest part without Content-Type is a
    # message/rfc822, so RFC 9051 §6.4.5 HEADER and TEXT apply to 1.1.
    r = c.ok("FETCH 1 (BODY.PEEK[1.1.HEADER] BODY.PEEK[1.2.TEXT])")
    assert r.untagged == [
        b"* 1 FETCH (BODY[1.1.HEADER] {37}\r\n"
        b"From: m1@example.com\r\nSubject: m1\r\n\r\n"
        b" BODY[1.2.TEXT] {9}\r\nm2 body\r\n)\r\n"], r.untagged
    c.logout()


# --- nil: NIL in a STORE is the keyword NIL -------------------------------


def test_store_nil_is_a_keyword_named_nil(srv, user):
    deliver(srv, user[0], "n1")
    c = login(srv, *user)
    c.select("INBOX")
    # RFC 9051 §9: flag-keyword = atom, and NIL is an atom; the keyword
    # is announced by FLAGS before the FETCH that shows it (§7.3.5). The
    # message is \Recent for this IMAP4rev1 session, the first to select.
    r = c.ok("STORE 1 +FLAGS NIL")
    assert r.untagged[-1] == b"* 1 FETCH (FLAGS (\\Recent NIL))\r\n", \
        r.untagged
    assert any(l.startswith(b"* FLAGS (") and b" NIL)" in l
               for l in r.untagged[:-1]), r.untagged
    r = c.ok("FETCH 1 FLAGS")
    assert r.untagged == [b"* 1 FETCH (FLAGS (\\Recent NIL))\r\n"], \
        r.untagged
    r = c.ok("STORE 1 -FLAGS (NIL)")
    assert r.untagged == [b"* 1 FETCH (FLAGS (\\Recent))\r\n"], r.untagged
    c.logout()


# --- atoms: a LIST pattern that is not modified UTF-7 lists nothing -------


def test_list_pattern_that_is_not_mutf7_lists_nothing(srv, user):
    c = login(srv, *user)
    # Every character is an ATOM-CHAR (RFC 9051 §9), so the command is
    # well formed; "&'" is no modified UTF-7 (RFC 3501 §5.1.3), so no
    # mailbox can match.
    r = c.ok("LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*")
    assert r.untagged == [], r.untagged
    r = c.ok('LIST "" ("x&-%" INBOX "&Jjo!")')
    assert r.untagged == [b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'], \
        r.untagged
    c.logout()


# --- atoms: SELECT of a name that is not modified UTF-7 is a failed SELECT -


def test_select_of_a_name_that_is_not_mutf7_fails_with_no(srv, user):
    c = login(srv, *user)
    c.select("INBOX")
    # Well-formed (every character an ATOM-CHAR), but "&'" is no
    # modified UTF-7: NO, and the failed SELECT leaves no mailbox
    # selected (RFC 9051 §6.3.2).
    r = c.command("SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}")
    assert r.untagged == [b"* OK [CLOSED] Previous mailbox closed\r\n"], \
        r.untagged
    assert r.tagged.endswith(b" NO [NONEXISTENT] No mailbox has that "
                             b"name: it is not valid modified UTF-7\r\n"), \
        r.tagged
    assert c.command("FETCH 1 FLAGS").status == "BAD"
    # A name that is not an astring is still BAD.
    assert c.command("EXAMINE a%b").status == "BAD"
    r = c.command("EXAMINE &Jjo!")
    assert r.status == "NO" and r.untagged == [], (r.untagged, r.tagged)
    c.logout()


# --- esearch-condstore: HIGHESTMODSEQ when FETCH or STORE enables CONDSTORE


def test_first_condstore_enabling_fetch_or_store_says_highestmodseq(srv,
                                                                     user):
    deliver(srv, user[0], "c1")
    c = login(srv, *user)
    c.select("INBOX")
    # RFC 7162 §3.1: the mailbox selected before CONDSTORE was enabled
    # learns its HIGHESTMODSEQ with the first enabling command, once.
    r = c.ok("FETCH 1 (MODSEQ)")
    assert len(r.untagged) == 2, r.untagged
    assert r.untagged[0].startswith(b"* OK [HIGHESTMODSEQ "), r.untagged
    assert r.untagged[1].startswith(b"* 1 FETCH (UID 1 MODSEQ ("), \
        r.untagged
    r = c.ok("FETCH 1 (MODSEQ)")
    assert len(r.untagged) == 1, r.untagged
    c.logout()
    c = login(srv, *user)
    c.select("INBOX")
    r = c.ok("STORE 1 (UNCHANGEDSINCE 1000000) +FLAGS.SILENT (\\Seen)")
    assert [l for l in r.untagged if b"HIGHESTMODSEQ" in l] and \
        r.untagged[0].startswith(b"* OK [HIGHESTMODSEQ "), r.untagged
    c.logout()
