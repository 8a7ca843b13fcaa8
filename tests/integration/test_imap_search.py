"""IMAP SEARCH as clients see it (RFC 9051 §6.4.4, RFC 3501 §6.4.4): every
search key against a small corpus (four messages by APPEND with chosen
flags, keywords and dates, one by SMTP), NOT, OR and parentheses, sequence
and UID sets, CHARSET (UTF-8, US-ASCII, NO [BADCHARSET] for others), UID
SEARCH, the ESEARCH forms of RFC 4731 and IMAP4rev2 (MIN, MAX, COUNT, ALL,
RETURN ()), SEARCHRES (RFC 5182: RETURN (SAVE), "$" in SEARCH, FETCH, UID
SEARCH, reset by NO, kept by BAD), the MODSEQ key (RFC 7162 §3.1.5) and
syntax errors. Replies are checked as bytes on the wire."""

import re

import pytest

from imap_helpers import (deliver, login, new_user, start_imap_server,
                          wait_for)

# The corpus: APPENDed messages (flags, internal date, raw message).
CORPUS = [
    ("(\\Seen)", "01-Jan-2024 10:00:00 +0000",
     b"From: Alice Adams <alice@a.test>\r\n"
     b"To: bob@b.test\r\n"
     b"Cc: carol@c.test\r\n"
     b"Subject: Quarterly report\r\n"
     b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
     b"\r\n"
     b"The numbers are in. Revenue grew.\r\n"),
    ("(\\Answered \\Flagged)", "15-Feb-2024 12:00:00 +0000",
     b"From: Bob Brown <bob@b.test>\r\n"
     b"To: alice@a.test\r\n"
     b"Bcc: dave@d.test\r\n"
     b"Subject: Lunch tomorrow?\r\n"
     b"Date: Thu, 15 Feb 2024 12:00:00 +0000\r\n"
     b"\r\n"
     b"Pizza or sushi?\r\n"),
    ("(\\Deleted $Important)", "01-Mar-2024 09:30:00 +0000",
     b"From: carol@c.test\r\n"
     b"To: alice@a.test\r\n"
     b"Subject: =?UTF-8?Q?Caf=C3=A9_meeting?=\r\n"
     b"X-Priority: 1\r\n"
     b"Date: Fri, 01 Mar 2024 09:30:00 +0000\r\n"
     b"\r\n"
     b"Bring the slides.\r\n"),
    ("(\\Draft)", "10-Mar-2024 18:00:00 +0000",
     b"From: dave@d.test\r\n"
     b"Subject: Draft reply\r\n"
     b"Date: Sun, 10 Mar 2024 18:00:00 +0000\r\n"
     b"\r\n" + b"long line of text\r\n" * 600),
]
# Message 5 arrives by SMTP (no flags, internal date now, no Date:).


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-search"),
                             default_cert)


def append(c, mailbox, msg, flags=None, date=None):
    """APPEND with a synchronizing literal; returns the Reply."""
    tag = next(c.tags)
    head = b"%s APPEND %s" % (tag, mailbox.encode())
    if flags is not None:
        head += b" " + flags.encode()
    if date is not None:
        head += b' "' + date.encode() + b'"'
    c.send(head + b" {%d}\r\n" % len(msg))
    cont = c.read_line()
    assert cont == b"+ Ready for literal data\r\n", cont
    c.send(msg + b"\r\n")
    return c.read_reply(tag)


def send_literals(c, *parts):
    """One command of text parts and (bytes in a tuple) synchronizing
    literals, waiting for each continuation; returns the Reply."""
    tag = next(c.tags)
    line = tag + b" "
    for p in parts:
        if isinstance(p, tuple):
            c.send(line + b"{%d}\r\n" % len(p[0]))
            cont = c.read_line()
            assert cont.startswith(b"+ "), cont
            line = p[0]
        else:
            line += p
    c.send(line + b"\r\n")
    return c.read_reply(tag)


@pytest.fixture(scope="module")
def corpus(srv):
    """A user whose INBOX holds the corpus; returns (user, password,
    [uid of message 1..5])."""
    user, password = new_user(srv)
    c = login(srv, user, password)
    uids = []
    for flags, date, msg in CORPUS:
        r = append(c, "INBOX", msg, flags, date)
        assert r.status == "OK", r.tagged
        m = re.match(r"APPENDUID (\d+) (\d+)$", r.code)
        uids.append(int(m.group(2)))
    c.close()
    deliver(srv, user, subject="delivered", body="hello from smtp\r\n")
    c = login(srv, user, password)
    c.select("INBOX")
    r = c.ok("UID SEARCH ALL")
    uids.append(int(r.untagged[-1].split()[-1]))
    c.close()
    assert uids == sorted(uids) and len(set(uids)) == 5, uids
    return user, password, uids


@pytest.fixture
def c(srv, corpus):
    conn = login(srv, corpus[0], corpus[1])
    info = conn.select("INBOX")
    assert info.exists == 5
    yield conn
    conn.close()


def search_line(nums):
    return b"* SEARCH" + b"".join(b" %d" % n for n in nums) + b"\r\n"


def assert_search(c, keys, nums):
    r = c.command("SEARCH " + keys)
    assert r.status == "OK", (keys, r.tagged)
    assert r.tagged.endswith(b" OK SEARCH completed\r\n"), r.tagged
    assert r.untagged == [search_line(nums)], (keys, r.untagged)


# --- every key ----------------------------------------------------------------

KEY_CASES = [
    ("ALL", [1, 2, 3, 4, 5]),
    ("ANSWERED", [2]),
    ("UNANSWERED", [1, 3, 4, 5]),
    ("DELETED", [3]),
    ("UNDELETED", [1, 2, 4, 5]),
    ("DRAFT", [4]),
    ("UNDRAFT", [1, 2, 3, 5]),
    ("FLAGGED", [2]),
    ("UNFLAGGED", [1, 3, 4, 5]),
    ("SEEN", [1]),
    ("UNSEEN", [2, 3, 4, 5]),
    ("KEYWORD $Important", [3]),
    ("UNKEYWORD $Important", [1, 2, 4, 5]),
    ("KEYWORD $Missing", []),
    # Nothing is \Recent in postern.
    ("RECENT", []),
    ("NEW", []),
    ("OLD", [1, 2, 3, 4, 5]),
    ("FROM alice", [1]),
    ('FROM "Bob Brown"', [2]),
    ("TO alice@a.test", [2, 3]),
    ("CC carol", [1]),
    ("BCC dave", [2]),
    ("SUBJECT lunch", [2]),
    ("SUBJECT QUARTERLY", [1]),
    ("SUBJECT delivered", [5]),
    ("HEADER X-Priority 1", [3]),
    ('HEADER x-priority ""', [3]),
    ('HEADER Cc ""', [1]),
    ("BODY pizza", [2]),
    ("BODY quarterly", []),
    ("TEXT revenue", [1]),
    ("TEXT quarterly", [1]),
    ('TEXT "from smtp"', [5]),
    ("BEFORE 1-Feb-2024", [1]),
    ("BEFORE 15-Feb-2024", [1]),
    ("SINCE 1-Mar-2024", [3, 4, 5]),
    ("SINCE 2-Mar-2024", [4, 5]),
    ("ON 15-Feb-2024", [2]),
    ("ON 14-Feb-2024", []),
    ("SENTBEFORE 15-Feb-2024", [1]),
    ("SENTON 01-Mar-2024", [3]),
    ("SENTSINCE 10-Mar-2024", [4, 5]),
    ("LARGER 5000", [4]),
    ("SMALLER 5000", [1, 2, 3, 5]),
    ("NOT SEEN", [2, 3, 4, 5]),
    ("OR SEEN DRAFT", [1, 4]),
    ("OR (FROM bob FLAGGED) DRAFT", [2, 4]),
    ("(UNSEEN UNDELETED) NOT DRAFT", [2, 5]),
    ("NOT (OR SEEN OR DRAFT DELETED)", [2, 5]),
    ("2:3", [2, 3]),
    ("*", [5]),
    ("1,3:4 UNDELETED", [1, 4]),
    ("OR 1 5", [1, 5]),
    ("NOT 2:4", [1, 5]),
    ("MODSEQ 1", [1, 2, 3, 4, 5]),
]


@pytest.mark.parametrize("keys,nums", KEY_CASES,
                         ids=[k for k, _ in KEY_CASES])
def test_search_key(c, keys, nums):
    r = c.command("SEARCH " + keys)
    assert r.status == "OK", r.tagged
    line = search_line(nums)
    if keys.startswith("MODSEQ"):
        # RFC 7162 §3.1.5: the highest MODSEQ of the messages found.
        assert re.match(rb"^\* SEARCH 1 2 3 4 5 \(MODSEQ \d+\)\r\n$",
                        r.untagged[-1]), r.untagged
    else:
        assert r.untagged == [line], r.untagged


def test_search_uid_key_and_uid_search(c, corpus):
    uids = corpus[2]
    assert_search(c, "UID %d:%d" % (uids[1], uids[2]), [2, 3])
    assert_search(c, "UID %d,%d" % (uids[0], uids[4]), [1, 5])
    assert_search(c, "NOT UID %d:*" % uids[1], [1])
    r = c.ok("UID SEARCH UNSEEN")
    assert r.untagged == [search_line(uids[1:])], r.untagged
    assert r.tagged.endswith(b" OK UID SEARCH completed\r\n"), r.tagged
    # UID SEARCH with a sequence set still means sequence numbers.
    r = c.ok("UID SEARCH 1:2")
    assert r.untagged == [search_line(uids[:2])], r.untagged
    r = c.ok("UID SEARCH UID %d" % (uids[4] + 100))
    assert r.untagged == [b"* SEARCH\r\n"], r.untagged


def test_search_charset(c):
    r = send_literals(c, b"SEARCH CHARSET UTF-8 SUBJECT ",
                      (b"caf\xc3\xa9",))
    assert r.status == "OK", r.tagged
    assert r.untagged == [search_line([3])], r.untagged
    assert_search(c, "CHARSET US-ASCII SUBJECT meeting", [3])
    assert_search(c, "charset utf-8 FROM alice", [1])
    r = c.command("SEARCH CHARSET KOI8-R SUBJECT x")
    assert r.tagged.endswith(b" NO [BADCHARSET (UTF-8 US-ASCII)] "
                             b"Supported charsets are UTF-8 and "
                             b"US-ASCII\r\n"), r.tagged
    assert r.untagged == []
    # Bytes that are not UTF-8 cannot be what the client meant.
    r = send_literals(c, b"SEARCH CHARSET UTF-8 BODY ", (b"caf\xe9",))
    assert r.status == "NO" and r.code.startswith("BADCHARSET"), r.tagged


def test_search_utf8_quoted_after_enable(c):
    # RFC 9051 / RFC 6855: with UTF-8 enabled, quoted strings may hold it.
    c.ok("ENABLE UTF8=ACCEPT")
    r = c.ok('SEARCH SUBJECT "CAF\xc3\xa9"'.encode("latin-1"))
    assert r.untagged == [search_line([3])], r.untagged


@pytest.mark.parametrize("keys,text", [
    ("", b"SEARCH needs at least one key"),
    ("FOO", b"Unknown search key"),
    ("FROM", b"Search key needs an argument"),
    ("OR SEEN", b"OR needs two search keys"),
    ("BEFORE yesterday", b"Expected a date such as 1-Feb-2024"),
    ("LARGER big", b"Expected a number"),
    ("1:x", b"Invalid sequence set in SEARCH"),
    ("HEADER Bad:Name x", b"HEADER needs a field name"),
    ("KEYWORD \\Recent", b"Expected a keyword"),
    ("RETURN (FIRST) ALL", b"Unknown search result option"),
    ("RETURN ALL", b"RETURN needs a list of result options"),
])
def test_search_syntax_errors_are_bad(c, keys, text):
    r = c.command(("SEARCH " + keys).rstrip())
    assert r.tagged == r.tag + b" BAD " + text + b"\r\n", r.tagged
    assert r.untagged == []


def test_search_limits(c):
    r = c.command("SEARCH " + "NOT " * 17 + "SEEN")
    assert r.tagged.endswith(b" NO [LIMIT] Search keys are nested too "
                             b"deeply\r\n"), r.tagged
    r = c.command("SEARCH " + " ".join(["SEEN"] * 513))
    assert r.tagged.endswith(b" NO [LIMIT] Too many search keys\r\n"), \
        r.tagged
    assert_search(c, "NOT " * 16 + "SEEN", [1])
    assert_search(c, "NOT " * 15 + "SEEN", [2, 3, 4, 5])


def test_search_needs_a_selected_mailbox(srv, corpus):
    c = login(srv, corpus[0], corpus[1])
    r = c.command("SEARCH ALL")
    assert r.status == "BAD", r.tagged
    c.close()


# --- ESEARCH (RFC 4731, RFC 9051) ------------------------------------------


def test_esearch_result_options(c, corpus):
    uids = corpus[2]
    r = c.ok("SEARCH RETURN (MIN MAX COUNT ALL) UNDELETED")
    assert r.untagged == [b'* ESEARCH (TAG "%s") MIN 1 MAX 5 COUNT 4 '
                          b'ALL 1:2,4:5\r\n' % r.tag], r.untagged
    r = c.ok("SEARCH RETURN () SEEN")
    assert r.untagged == [b'* ESEARCH (TAG "%s") ALL 1\r\n' % r.tag]
    r = c.ok("SEARCH RETURN (COUNT) KEYWORD nothing")
    assert r.untagged == [b'* ESEARCH (TAG "%s") COUNT 0\r\n' % r.tag]
    # RFC 4731 §3.1: MIN, MAX and ALL are left out when nothing matched.
    r = c.ok("SEARCH RETURN (MIN MAX ALL) KEYWORD nothing")
    assert r.untagged == [b'* ESEARCH (TAG "%s")\r\n' % r.tag]
    r = c.ok("SEARCH RETURN (MAX) UNSEEN")
    assert r.untagged == [b'* ESEARCH (TAG "%s") MAX 5\r\n' % r.tag]
    r = c.ok("UID SEARCH RETURN (ALL COUNT) OR SEEN FLAGGED")
    # Messages 1 and 2 are neighbours in the mailbox: one range of UIDs.
    assert r.untagged == [b'* ESEARCH (TAG "%s") UID COUNT 2 ALL %d:%d\r\n'
                          % (r.tag, uids[0], uids[1])], r.untagged
    r = c.ok("UID SEARCH RETURN (ALL) OR SEEN DRAFT")
    assert r.untagged == [b'* ESEARCH (TAG "%s") UID ALL %d,%d\r\n'
                          % (r.tag, uids[0], uids[3])], r.untagged
    r = c.ok("UID SEARCH RETURN (MIN) CHARSET UTF-8 DRAFT")
    assert r.untagged == [b'* ESEARCH (TAG "%s") UID MIN %d\r\n'
                          % (r.tag, uids[3])], r.untagged


def test_esearch_is_the_answer_under_imap4rev2(c):
    r = c.ok("ENABLE IMAP4rev2")
    r = c.ok("SEARCH UNSEEN")
    assert r.untagged == [b'* ESEARCH (TAG "%s") ALL 2:5\r\n' % r.tag], \
        r.untagged
    r = c.ok("SEARCH KEYWORD nothing")
    assert r.untagged == [b'* ESEARCH (TAG "%s")\r\n' % r.tag], r.untagged
    r = c.ok("SEARCH RETURN (COUNT) ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") COUNT 5\r\n' % r.tag]


def test_esearch_modseq(c):
    r = c.ok("SEARCH RETURN (COUNT) MODSEQ 1")
    # MODSEQ enables CONDSTORE: a HIGHESTMODSEQ first (RFC 7162 §3.1).
    assert re.match(rb"^\* OK \[HIGHESTMODSEQ \d+\]", r.untagged[0]), \
        r.untagged
    m = re.match(rb'^\* ESEARCH \(TAG "%s"\) COUNT 5 MODSEQ (\d+)\r\n$'
                 % r.tag, r.untagged[-1])
    assert m, r.untagged
    top = int(m.group(1))
    r = c.ok("SEARCH MODSEQ %d" % top)
    assert re.match(rb"^\* SEARCH \d+ \(MODSEQ %d\)\r\n$" % top,
                    r.untagged[-1]), r.untagged
    r = c.ok("SEARCH MODSEQ %d" % (top + 1))
    assert r.untagged == [b"* SEARCH\r\n"], r.untagged
    r = c.ok('SEARCH MODSEQ "/flags/\\\\Seen" all 1 SEEN')
    assert re.match(rb"^\* SEARCH 1 \(MODSEQ \d+\)\r\n$", r.untagged[-1])


# --- SEARCHRES (RFC 5182) ---------------------------------------------------


def test_searchres_save_then_use_dollar(c, corpus):
    uids = corpus[2]
    r = c.ok("SEARCH RETURN (SAVE) OR FLAGGED DRAFT")
    # SAVE alone: no ESEARCH response (RFC 5182 §2.4).
    assert r.untagged == [], r.untagged
    r = c.ok("FETCH $ (UID FLAGS)")
    got = sorted(int(re.match(rb"^\* (\d+) FETCH", l).group(1))
                 for l in r.untagged)
    assert got == [2, 4], r.untagged
    assert_search(c, "$", [2, 4])
    assert_search(c, "$ DRAFT", [4])
    assert_search(c, "NOT $", [1, 3, 5])
    assert_search(c, "OR $ SEEN", [1, 2, 4])
    r = c.ok("UID SEARCH UID $")
    assert r.untagged == [search_line([uids[1], uids[3]])], r.untagged
    # SAVE with other options answers ESEARCH too.
    r = c.ok("SEARCH RETURN (SAVE COUNT) SEEN")
    assert r.untagged == [b'* ESEARCH (TAG "%s") COUNT 1\r\n' % r.tag]
    assert_search(c, "$", [1])
    # SAVE with MIN and MAX only keeps those two (RFC 5182 §2.4).
    r = c.ok("SEARCH RETURN (SAVE MIN MAX) UNSEEN")
    assert r.untagged == [b'* ESEARCH (TAG "%s") MIN 2 MAX 5\r\n' % r.tag]
    assert_search(c, "$", [2, 5])
    r = c.ok("SEARCH RETURN (SAVE MIN) ALL")
    assert_search(c, "$", [1])
    # A search may use "$" and replace it.
    c.ok("SEARCH RETURN (SAVE) UNSEEN")
    c.ok("SEARCH RETURN (SAVE) $ FLAGGED")
    assert_search(c, "$", [2])


def test_searchres_bad_keeps_no_empties(c):
    c.ok("SEARCH RETURN (SAVE) SEEN")
    r = c.command("SEARCH RETURN (SAVE) NOSUCHKEY")
    assert r.status == "BAD"
    assert_search(c, "$", [1])
    r = c.command("SEARCH RETURN (SAVE) CHARSET KOI8-R SEEN")
    assert r.status == "NO"
    assert_search(c, "$", [])
    # Before any SAVE, "$" is empty.
    c.ok("SELECT INBOX")
    assert_search(c, "$", [])


def test_search_sees_other_sessions_flag_changes(srv, corpus, c):
    other = login(srv, corpus[0], corpus[1])
    other.select("INBOX")
    other.ok("STORE 5 +FLAGS (\\Seen)")
    try:
        # The store answers from its own data: the change counts at once,
        # and the session hears of it after the results (RFC 9051 §7.5.1
        # allows the FETCH FLAGS).
        r = c.ok("SEARCH SEEN")
        assert r.untagged[0] == search_line([1, 5]), r.untagged
    finally:
        other.ok("STORE 5 -FLAGS (\\Seen)")
        other.close()


def test_search_ignores_messages_the_session_has_not_seen(srv, corpus):
    user, password, _ = corpus
    c = login(srv, user, password)
    c.select("INBOX")
    deliver(srv, user, subject="late arrival")
    try:
        r = c.ok("SEARCH SUBJECT late")
        # The new message has no sequence number until EXISTS, which
        # comes after the SEARCH response.
        assert r.untagged[0] == b"* SEARCH\r\n", r.untagged
        if b"* 6 EXISTS\r\n" not in r.untagged:
            # The store's notice travels through the event loop.
            wait_for(lambda: b"* 6 EXISTS\r\n" in c.ok("NOOP").untagged,
                     what="EXISTS")
        assert_search(c, "SUBJECT late", [6])
        r = c.ok("STORE 6 +FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")
    finally:
        c.close()
