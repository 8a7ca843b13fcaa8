"""IMAP SORT and THREAD as clients see them (RFC 5256, RFC 5957
SORT=DISPLAY, RFC 5267 ESORT): every sort key, REVERSE, several keys,
ties in mailbox order, the base subject (Re:, [list], Fwd:, (fwd)), the
sent date falling back to the internal date, the first address's
mailbox, display names decoded and casemapped, search criteria, UID forms,
CHARSET errors, ESORT RETURN (MIN MAX COUNT ALL SAVE) as ESEARCH, and
THREAD ORDEREDSUBJECT and REFERENCES with their exact nested output (a
dummy parent, siblings by date), through raw sockets and imaplib."""

import imaplib
import re

import pytest

from imap_helpers import login, new_user, start_imap_server
from postern_harness import client_ctx
from test_imap_search import append

# (internal date, raw message). Sent dates (Date:, in UTC):
#   1 Jan 3, 2 Jan 1, 3 Jan 2, 4 none (internal Jan 4), 5 Jan 6 05:00,
#   6 Jan 7.
CORPUS = [
    ("05-Jan-2024 10:00:00 +0000",
     b"From: Aaron Zed <zed@z.test>\r\n"
     b"To: Fred <bob@b.test>\r\n"
     b"Cc: carol@c.test\r\n"
     b"Subject: Re: Meeting\r\n"
     b"Date: Wed, 03 Jan 2024 10:00:00 +0000\r\n"
     b"Message-ID: <m1@t.test>\r\n"
     b"In-Reply-To: <m0@t.test>\r\n"
     b"\r\n"
     b"I agree.\r\n"),
    ("02-Jan-2024 10:00:00 +0000",
     b"From: Amy Apple <amy@a.test>\r\n"
     b"To: Albert <yan@y.test>\r\n"
     b"Subject: Meeting\r\n"
     b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
     b"Message-ID: <m0@t.test>\r\n"
     b"\r\n"
     b"Shall we meet on Friday? " + b"x" * 300 + b"\r\n"),
    ("01-Jan-2024 10:00:00 +0000",
     b"From: bob@b.test\r\n"
     b"To: =?UTF-8?Q?=C3=89mile?= <emile@e.test>\r\n"
     b"Subject: [list] Fwd: Re: Budget\r\n"
     b"Date: Tue, 02 Jan 2024 10:00:00 +0000\r\n"
     b"Message-ID: <m2@t.test>\r\n"
     b"\r\n"
     b"Numbers attached." + b"y" * 100 + b"\r\n"),
    ("04-Jan-2024 10:00:00 +0000",
     b"From: Carl <carl@c.test>\r\n"
     b"Subject: Budget (fwd)\r\n"
     b"Message-ID: <m3@t.test>\r\n"
     b"References: <m2@t.test>\r\n"
     b"\r\n"
     b"fyi\r\n"),
    ("03-Jan-2024 10:00:00 +0000",
     b"From: <dan@d.test>\r\n"
     b"Subject: Lunch\r\n"
     b"Date: Sat, 06 Jan 2024 10:00:00 +0500\r\n"
     b"Message-ID: <m4@t.test>\r\n"
     b"References: <m0@t.test>\r\n <m1@t.test>\r\n"
     b"\r\n"
     b"Lunch after the meeting?" + b"z" * 1000 + b"\r\n"),
    ("07-Jan-2024 10:00:00 +0000",
     b"From: eve@e.test\r\n"
     b"Subject: Re: Meeting\r\n"
     b"Date: Sun, 07 Jan 2024 10:00:00 +0000\r\n"
     b"Message-ID: <m5@t.test>\r\n"
     b"References: <m0@t.test>\r\n"
     b"\r\n"
     b"Count me in.\r\n"),
]


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-sort"),
                             default_cert)


@pytest.fixture(scope="module")
def corpus(srv):
    """A user whose INBOX holds CORPUS; (user, password, [uid 1..6])."""
    user, password = new_user(srv)
    c = login(srv, user, password)
    uids = []
    for date, msg in CORPUS:
        r = append(c, "INBOX", msg, None, date)
        assert r.status == "OK", r.tagged
        uids.append(int(re.match(r"APPENDUID \d+ (\d+)$", r.code).group(1)))
    c.close()
    return user, password, uids


@pytest.fixture
def c(srv, corpus):
    conn = login(srv, corpus[0], corpus[1])
    assert conn.select("INBOX").exists == 6
    yield conn
    conn.close()


def sort_line(nums):
    return b"* SORT" + b"".join(b" %d" % n for n in nums) + b"\r\n"


SORT_CASES = [
    ("(ARRIVAL)", [3, 2, 5, 4, 1, 6]),
    # Message 4 has no Date: its internal date stands in (§2.2).
    ("(DATE)", [2, 3, 1, 4, 5, 6]),
    ("(REVERSE DATE)", [6, 5, 4, 1, 3, 2]),
    # Base subjects: Meeting (1, 2, 6), Budget (3, 4), Lunch (5); equal
    # keys keep mailbox order.
    ("(SUBJECT)", [3, 4, 5, 1, 2, 6]),
    ("(SUBJECT DATE)", [3, 4, 5, 2, 1, 6]),
    ("(REVERSE SUBJECT)", [1, 2, 6, 5, 3, 4]),
    ("(REVERSE SUBJECT REVERSE DATE)", [6, 1, 2, 5, 4, 3]),
    # The first From's local part: zed amy bob carl dan eve.
    ("(FROM)", [2, 3, 4, 5, 6, 1]),
    # RFC 5957: display names, else the address.
    ("(DISPLAYFROM)", [1, 2, 3, 4, 5, 6]),
    ("(TO)", [4, 5, 6, 1, 3, 2]),
    # "=?UTF-8?Q?=C3=89mile?=" sorts as "EMILE" (i;unicode-casemap).
    ("(DISPLAYTO)", [4, 5, 6, 2, 3, 1]),
    ("(CC)", [2, 3, 4, 5, 6, 1]),
    ("(REVERSE CC ARRIVAL)", [1, 3, 2, 5, 4, 6]),
]


@pytest.mark.parametrize("keys,nums", SORT_CASES)
def test_sort_keys(c, keys, nums):
    r = c.command("SORT %s UTF-8 ALL" % keys)
    assert r.tagged.endswith(b" OK SORT completed\r\n"), r.tagged
    assert r.untagged == [sort_line(nums)], (keys, r.untagged)


def test_sort_size_and_ties(c):
    sizes = [len(m) for _, m in CORPUS]
    want = sorted(range(1, 7), key=lambda i: (sizes[i - 1], i))
    r = c.ok("SORT (SIZE) US-ASCII ALL")
    assert r.untagged == [sort_line(want)]
    r = c.ok("SORT (REVERSE SIZE) utf-8 ALL")
    assert r.untagged == [sort_line(want[::-1])]


def test_sort_with_search_criteria(c):
    # Internal date on or after Jan 3: 1, 4, 5, 6.
    r = c.ok("SORT (DATE) UTF-8 SINCE 03-Jan-2024")
    assert r.untagged == [sort_line([1, 4, 5, 6])]
    r = c.ok("SORT (SUBJECT) UTF-8 NOT SUBJECT budget")
    assert r.untagged == [sort_line([5, 1, 2, 6])]
    r = c.ok("SORT (DATE) UTF-8 2:4 OR FROM amy FROM carl")
    assert r.untagged == [sort_line([2, 4])]
    r = c.ok("SORT (DATE) UTF-8 SUBJECT nothing-matches")
    assert r.untagged == [b"* SORT\r\n"]


def test_uid_sort(c, corpus):
    uids = corpus[2]
    r = c.ok("UID SORT (DATE) UTF-8 ALL")
    assert r.tagged.endswith(b" OK UID SORT completed\r\n")
    assert r.untagged == [sort_line([uids[i - 1] for i in
                                     [2, 3, 1, 4, 5, 6]])]
    r = c.ok("UID SORT (REVERSE ARRIVAL) UTF-8 UID %d:%d"
             % (uids[0], uids[2]))
    assert r.untagged == [sort_line([uids[0], uids[1], uids[2]])]


def test_sort_charset_and_syntax_errors(c):
    r = c.command("SORT (DATE) ISO-8859-1 ALL")
    assert r.status == "NO" and r.code == "BADCHARSET (UTF-8 US-ASCII)", \
        r.tagged
    for bad in ["SORT () UTF-8 ALL", "SORT (BOGUS) UTF-8 ALL",
                "SORT (REVERSE) UTF-8 ALL", "SORT (DATE REVERSE) UTF-8 ALL",
                "SORT (REVERSE REVERSE DATE) UTF-8 ALL",
                "SORT DATE UTF-8 ALL", "SORT (DATE) UTF-8",
                "SORT (DATE)", "SORT (DATE) UTF-8 BOGUSKEY",
                "SORT RETURN (BOGUS) (DATE) UTF-8 ALL",
                "UID SORT"]:
        r = c.command(bad)
        assert r.status == "BAD", (bad, r.tagged)
        assert r.untagged == [], (bad, r.untagged)


def test_esort_return_options(c, corpus):
    uids = corpus[2]
    r = c.ok("SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") MIN 2 MAX 6 COUNT 6\r\n'
                          % r.tag]
    # ALL in sort order 2 3 1 4 5 6: ascending runs become ranges.
    r = c.ok("SORT RETURN (ALL) (DATE) UTF-8 ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") ALL 2:3,1,4:6\r\n' % r.tag]
    r = c.ok("SORT RETURN () (ARRIVAL) UTF-8 ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") ALL 3,2,5,4,1,6\r\n'
                          % r.tag]
    r = c.ok("UID SORT RETURN (MAX COUNT) (REVERSE DATE) UTF-8 ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") UID MAX %d COUNT 6\r\n'
                          % (r.tag, uids[1])]
    r = c.ok("SORT RETURN (MIN COUNT ALL) (DATE) UTF-8 SUBJECT nothing")
    assert r.untagged == [b'* ESEARCH (TAG "%s") COUNT 0\r\n' % r.tag]


def test_sort_modseq_key_enables_condstore(c):
    # RFC 7162 §3.1.5: HIGHESTMODSEQ at once, then the highest MODSEQ of
    # the messages named (all six: nothing changed since they came).
    r = c.ok("SORT (DATE) UTF-8 MODSEQ 1")
    assert len(r.untagged) == 2, r.untagged
    m = re.match(rb"\* OK \[HIGHESTMODSEQ (\d+)\] ", r.untagged[0])
    assert m, r.untagged
    assert r.untagged[1] == (b"* SORT 2 3 1 4 5 6 (MODSEQ %s)\r\n"
                             % m.group(1))
    r = c.ok("SORT RETURN (COUNT) (DATE) UTF-8 MODSEQ 1")
    assert r.untagged == [b'* ESEARCH (TAG "%s") COUNT 6 MODSEQ %s\r\n'
                          % (r.tag, m.group(1))]
    r = c.ok("SORT (DATE) UTF-8 MODSEQ 1 SUBJECT nothing-matches")
    assert r.untagged == [b"* SORT\r\n"]


def test_esort_save_feeds_searchres(c):
    r = c.ok("SORT RETURN (SAVE) (DATE) UTF-8 SINCE 03-Jan-2024")
    assert r.untagged == []
    r = c.ok("SEARCH $")
    assert r.untagged == [b"* SEARCH 1 4 5 6\r\n"]
    # With MIN alone only the first in sort order is saved.
    r = c.ok("SORT RETURN (SAVE MIN) (REVERSE DATE) UTF-8 ALL")
    assert r.untagged == [b'* ESEARCH (TAG "%s") MIN 6\r\n' % r.tag]
    r = c.ok("SEARCH $")
    assert r.untagged == [b"* SEARCH 6\r\n"]
    # A NO (bad charset) empties "$" (RFC 5182 §2.1).
    r = c.command("SORT RETURN (SAVE) (DATE) KOI8-R ALL")
    assert r.status == "NO"
    r = c.ok("SEARCH $")
    assert r.untagged == [b"* SEARCH\r\n"]


def test_thread_orderedsubject(c):
    r = c.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert r.tagged.endswith(b" OK THREAD completed\r\n")
    assert r.untagged == [b"* THREAD (2 (1)(6))(3 4)(5)\r\n"]


def test_thread_references(c):
    # 2 <- 1 <- 5 by In-Reply-To and References, 2 <- 6, 3 <- 4.
    r = c.ok("THREAD REFERENCES UTF-8 ALL")
    assert r.untagged == [b"* THREAD (2 (1 5)(6))(3 4)\r\n"]
    # Without message 2 its id is a dummy parent of 1 and 6: nested
    # lists without a number, sorted by its first child's date.
    r = c.ok("THREAD REFERENCES UTF-8 NOT FROM amy")
    assert r.untagged == [b"* THREAD (3 4)((1 5)(6))\r\n"]
    r = c.ok("THREAD REFERENCES US-ASCII SUBJECT nothing-matches")
    assert r.untagged == [b"* THREAD\r\n"]


def test_uid_thread(c, corpus):
    u = dict(enumerate(corpus[2], 1))
    r = c.ok("UID THREAD REFERENCES UTF-8 ALL")
    assert r.untagged == [b"* THREAD (%d (%d %d)(%d))(%d %d)\r\n"
                          % (u[2], u[1], u[5], u[6], u[3], u[4])]
    r = c.ok("UID THREAD ORDEREDSUBJECT UTF-8 UID %d:%d" % (u[1], u[3]))
    assert r.untagged == [b"* THREAD (%d %d)(%d)\r\n" % (u[2], u[1], u[3])]


def test_thread_errors(c):
    r = c.command("THREAD REFERENCES ISO-8859-1 ALL")
    assert r.status == "NO" and r.code == "BADCHARSET (UTF-8 US-ASCII)"
    for bad in ["THREAD", "THREAD JWZ UTF-8 ALL", "THREAD REFERENCES",
                "THREAD REFERENCES UTF-8", "THREAD (REFERENCES) UTF-8 ALL"]:
        r = c.command(bad)
        assert r.status == "BAD", (bad, r.tagged)


def test_capabilities_and_not_selected(srv, corpus):
    c = login(srv, corpus[0], corpus[1])
    r = c.ok("CAPABILITY")
    caps = r.untagged[0].split()
    for cap in [b"SORT", b"SORT=DISPLAY", b"ESORT", b"THREAD=ORDEREDSUBJECT",
                b"THREAD=REFERENCES"]:
        assert cap in caps, caps
    for cmd in ["SORT (DATE) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL"]:
        r = c.command(cmd)
        assert r.status == "BAD", r.tagged
    c.close()


def test_imaplib_sort_and_thread(srv, corpus):
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                          ssl_context=client_ctx(), timeout=30)
    m.login(corpus[0], corpus[1])
    m.select("INBOX")
    typ, data = m.sort("(REVERSE DATE)", "UTF-8", "ALL")
    assert typ == "OK" and data == [b"6 5 4 1 3 2"], data
    typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK" and data == [b"(2 (1 5)(6))(3 4)"], data
    typ, data = m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
    uids = corpus[2]
    assert data == [" ".join(str(uids[i - 1])
                             for i in [3, 4, 5, 1, 2, 6]).encode()]
    assert m.logout()[0] == "BYE"


# --- mutt's threaded view ------------------------------------------------------


@pytest.fixture(scope="module")
def ip_srv(module_postern_factory, ip_cert, tmp_path_factory):
    s = start_imap_server(module_postern_factory,
                          tmp_path_factory.mktemp("imap-sort-mutt"), ip_cert)
    s.certs = [("main", ip_cert)]
    return s


def thread_shape(text, subjects):
    """[(depth, subject)] in display order from THREAD output (no dummies
    expected)."""
    out, depth, stack = [], 0, []
    for tok in re.findall(rb"\(|\)|\d+", text):
        if tok == b"(":
            stack.append(depth)
        elif tok == b")":
            depth = stack.pop()
        else:
            out.append((depth, subjects[int(tok)]))
            depth += 1
    return out


def test_mutt_threaded_view_matches_thread_references(ip_srv, ip_cert,
                                                      tmp_path):
    """mutt (sort=threads) builds its tree from the headers it fetches;
    it must show the same threads as our THREAD REFERENCES answers."""
    from test_imap_clients import Tmux, need
    need("mutt")
    need("tmux")
    user = new_user(ip_srv, prefix="mt")
    c = login(ip_srv, *user)
    for date, msg in CORPUS:
        assert append(c, "INBOX", msg, None, date).status == "OK"
    c.select("INBOX")
    r = c.ok("THREAD REFERENCES UTF-8 ALL")
    c.close()
    subjects = {i: re.search(rb"Subject: (.*?)\r\n", m).group(1).decode()
                for i, (_, m) in enumerate(CORPUS, 1)}
    want = thread_shape(r.untagged[0], subjects)
    assert want == [(0, "Meeting"), (1, "Re: Meeting"), (2, "Lunch"),
                    (1, "Re: Meeting"), (0, "[list] Fwd: Re: Budget"),
                    (1, "Budget (fwd)")], want
    muttrc = tmp_path / "muttrc"
    muttrc.write_text("\n".join([
        'set folder="imaps://%s@127.0.0.1:%d/"' % (
            user[0].replace("@", "%40"), ip_srv.ports["imaps"]),
        'set spoolfile="+INBOX"',
        'set imap_user="%s"' % user[0],
        'set imap_pass="%s"' % user[1],
        'set certificate_file="%s"' % ip_cert.cert_path,
        "set ssl_force_tls=yes",
        "set ssl_starttls=no",
        'set header_cache=""',
        'set message_cachedir=""',
        "set sort=threads",
        "set sort_aux=date",
        "set ascii_chars=yes",
        "set hide_thread_subject=no",
        "set strict_threads=yes",
        "set wait_key=no",
        "set quit=yes",
        "set imap_passive=yes",
        'set index_format="|%4C|%s"',
        ""]))
    t = Tmux("mutt-sort", tmp_path)
    try:
        t.start("mutt -n -F %s" % muttrc, {"HOME": str(tmp_path)})
        screen = t.wait_screen(r"\|   6\|")
        screen = t.screen()
        t.keys("q")
    finally:
        t.stop()
    shown = []
    for line in screen.splitlines():
        m = re.match(r"^\s*\|\s*\d+\|(.*?)\s*$", line)
        if not m:
            continue
        text = m.group(1)
        # ascii_chars tree: "|->", "`->" one level, "| `->" two, ...
        tree = re.match(r"^([ |`+*-]*->)(.*)$", text)
        if tree is None:
            shown.append((0, text))
        else:
            shown.append(((len(tree.group(1)) - 1) // 2, tree.group(2)))
    assert shown == want, (shown, screen)
