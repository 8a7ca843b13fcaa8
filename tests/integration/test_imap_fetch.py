"""IMAP FETCH and STORE (RFC 9051 §6.4.5, §6.4.6, §7.5.2; RFC 3501 for
the rev1 items; RFC 3516 BINARY; RFC 7162 CONDSTORE and QRESYNC), checked
byte for byte on the wire: every item and macro, sections of a nested
multipart message (HEADER.FIELDS[.NOT], TEXT, MIME, a message/rfc822
part), partial fetches at their boundaries, BINARY of base64 and
quoted-printable parts, \\Seen set by BODY[] and not by BODY.PEEK[] or
EXAMINE, a 20 MB message fetched whole, STORE in every mode with .SILENT,
UNCHANGEDSINCE and MODIFIED, and EXAMINE refusing STORE."""

import base64
import hashlib
import os
import re
import smtplib
import time

import pytest

from imap_helpers import (Atom, flag_set, login, new_user, parse_data,
                          parse_fetch, start_imap_server, wait_for)

BIG_SIZE = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-fetch"),
                             default_cert)


def send(srv, rcpt, msg):
    """Delivers msg (bytes, CRLF lines) over SMTP."""
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=60) as s:
        s.sendmail("sender@other.test", [rcpt], msg)


# --- messages ---------------------------------------------------------------

SIMPLE = (b"From: Alice <alice@other.test>\r\n"
          b"To: Bob <bob@example.test>,\r\n"
          b"  Carol <carol@example.test>\r\n"
          b"Subject: simple one\r\n"
          b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
          b"Message-ID: <simple@other.test>\r\n"
          b"\r\n"
          b"line one\r\n"
          b"line two\r\n")

ATTACHMENT = bytes(range(256)) * 4 + b"\x00\x00end"
ATTACHMENT_B64 = base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")

INNER = (b"From: Dave <dave@other.test>\r\n"
         b"Subject: inner message\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: multipart/alternative; boundary=\"in\"\r\n"
         b"\r\n"
         b"--in\r\n"
         b"Content-Type: text/plain\r\n"
         b"\r\n"
         b"inner plain\r\n"
         b"--in\r\n"
         b"Content-Type: text/html\r\n"
         b"\r\n"
         b"<p>inner html</p>\r\n"
         b"--in--\r\n")

QP_TEXT = (b"caf=C3=A9 au lait =3D good   \r\n"
           b"a soft=\r\n"
           b" break\r\n")
QP_DECODED = "café au lait = good\r\na soft break\r\n".encode()

MULTI = (b"From: Alice <alice@other.test>\r\n"
         b"To: bob@example.test\r\n"
         b"Subject: multi\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
         b"\r\n"
         b"preamble\r\n"
         b"--outer\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n"
         b"\r\n" + QP_TEXT +
         b"--outer\r\n"
         b"Content-Type: application/octet-stream\r\n"
         b"Content-Transfer-Encoding: base64\r\n"
         b"Content-Disposition: attachment; filename=\"a.bin\"\r\n"
         b"\r\n" + ATTACHMENT_B64 +
         b"--outer\r\n"
         b"Content-Type: message/rfc822\r\n"
         b"\r\n" + INNER +
         b"--outer--\r\n")


class Box:
    """A user with messages delivered and a connection with INBOX
    selected; raw[i] is the stored message i + 1 (our trace fields, then
    what the client sent)."""

    def __init__(self, srv, msgs, examine=False):
        self.user, self.password = new_user(srv)
        for m in msgs:
            send(srv, self.user, m)
        self.c = login(srv, self.user, self.password)
        info = self.c.select("INBOX", examine=examine)
        assert info.exists == len(msgs)
        self.raw = []
        for i, m in enumerate(msgs):
            r = self.c.ok("FETCH %d (BODY.PEEK[])" % (i + 1))
            _, items = parse_fetch(r.untagged[0])
            assert items["BODY[]"].endswith(m)
            self.raw.append(items["BODY[]"])

    def fetch(self, cmd):
        """A FETCH that must succeed: {seq: items} of its replies."""
        r = self.c.ok(cmd)
        out = {}
        for line in r.untagged:
            if re.match(rb"^\* \d+ FETCH ", line):
                n, items = parse_fetch(line)
                out.setdefault(n, {}).update(items)
        return out

    def close(self):
        self.c.close()


@pytest.fixture
def simple(srv):
    b = Box(srv, [SIMPLE])
    yield b
    b.close()


@pytest.fixture
def multi(srv):
    b = Box(srv, [SIMPLE, MULTI])
    yield b
    b.close()


def header_of(raw):
    i = raw.index(b"\r\n\r\n") + 4
    return raw[:i], raw[i:]


def fetch_line(box, cmd):
    """The one untagged FETCH line (bytes, literals inlined) of cmd."""
    r = box.c.ok(cmd)
    lines = [l for l in r.untagged if re.match(rb"^\* \d+ FETCH ", l)]
    assert len(lines) == 1, r.untagged
    return lines[0]


# --- simple items and macros -----------------------------------------------


def test_fetch_uid_flags_internaldate_size(simple):
    raw = simple.raw[0]
    line = fetch_line(simple, "FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)")
    assert re.match(
        rb'^\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) INTERNALDATE '
        rb'"[ 0-3]\d-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-'
        rb'\d{4} \d\d:\d\d:\d\d [+-]\d{4}" RFC822\.SIZE %d\)\r\n$'
        % len(raw), line), line


def test_fetch_single_item_without_parentheses(simple):
    assert fetch_line(simple, "FETCH 1 UID") == b"* 1 FETCH (UID 1)\r\n"
    # The same item twice is answered once.
    assert fetch_line(simple, "FETCH 1 (UID UID)") == \
        b"* 1 FETCH (UID 1)\r\n"


def test_fetch_envelope_and_structure(simple):
    n, items = parse_fetch(fetch_line(simple,
                                      "FETCH 1 (ENVELOPE BODY BODYSTRUCTURE)"))
    env = items["ENVELOPE"]
    assert env[0] == b"Mon, 7 Feb 1994 21:52:25 -0800"
    assert env[1] == b"simple one"
    assert env[2] == [[b"Alice", None, b"alice", b"other.test"]]
    assert [a[2] for a in env[5]] == [b"bob", b"carol"]
    assert env[9] == b"<simple@other.test>"
    body = items["BODY"]
    assert [bytes(x).upper() if isinstance(x, bytes) else x
            for x in body[:2]] == [b"TEXT", b"PLAIN"]
    bs = items["BODYSTRUCTURE"]
    assert bs[:len(body)] == body


def test_fetch_macros(simple):
    keys = {m: set(simple.fetch("FETCH 1 %s" % m)[1])
            for m in ("ALL", "FAST", "FULL")}
    assert keys["FAST"] == {"FLAGS", "INTERNALDATE", "RFC822.SIZE"}
    assert keys["ALL"] == keys["FAST"] | {"ENVELOPE"}
    assert keys["FULL"] == keys["ALL"] | {"BODY"}


def test_uid_fetch_always_includes_uid(simple):
    line = fetch_line(simple, "UID FETCH 1 (FLAGS)")
    assert line == b"* 1 FETCH (UID 1 FLAGS (\\Recent))\r\n"
    # A UID that does not exist is no error: nothing to answer.
    r = simple.c.ok("UID FETCH 99 (FLAGS)")
    assert r.untagged == []


def test_fetch_bad_requests(simple):
    for cmd in ("FETCH 2 (FLAGS)", "FETCH 1 (NOPE)", "FETCH 1 ()",
                "FETCH 1", "FETCH x (FLAGS)", "FETCH 1 (BODY[BOGUS])",
                "FETCH 1 (BODY[1.2.MIME)", "FETCH 1 (ALL)",
                "FETCH 1 (FLAGS) (VANISHED)",
                "FETCH 1 (FLAGS) (CHANGEDSINCE x)"):
        r = simple.c.command(cmd)
        assert r.status == "BAD", (cmd, r.tagged)
        assert r.untagged == [], (cmd, r.untagged)


# --- whole message, header, text, partial -----------------------------------


def test_fetch_rfc822_items(simple):
    raw = simple.raw[0]
    hdr, text = header_of(raw)
    items = simple.fetch("FETCH 1 (RFC822.HEADER RFC822.TEXT RFC822)")[1]
    assert items["RFC822.HEADER"] == hdr
    assert items["RFC822.TEXT"] == text
    assert items["RFC822"] == raw


def test_fetch_body_sections_of_a_simple_message(simple):
    raw = simple.raw[0]
    hdr, text = header_of(raw)
    items = simple.fetch("FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT] "
                         "BODY.PEEK[1] BODY.PEEK[1.MIME])")[1]
    assert items["BODY[HEADER]"] == hdr
    assert items["BODY[TEXT]"] == text
    # RFC 9051 §6.4.5: a message that is not multipart has part 1, its
    # body.
    assert items["BODY[1]"] == text
    assert items["BODY[1.MIME]"] == hdr


def test_fetch_literal_on_the_wire(simple):
    raw = simple.raw[0]
    simple.c.send(b"w1 FETCH 1 (BODY.PEEK[TEXT])\r\n")
    r = simple.c.read_reply(b"w1")
    assert r.untagged == [b"* 1 FETCH (BODY[TEXT] {20}\r\n"
                          b"line one\r\nline two\r\n)\r\n"]
    assert r.tagged == b"w1 OK FETCH completed\r\n"
    assert raw.endswith(b"line one\r\nline two\r\n")


def test_fetch_partial_boundaries(simple):
    raw = simple.raw[0]
    n = len(raw)
    cases = [(0, 10), (5, 1), (n - 3, 10), (n - 1, 1), (0, n), (0, n + 100),
             (n, 5), (n + 10, 1)]
    for off, count in cases:
        line = fetch_line(simple, "FETCH 1 (BODY.PEEK[]<%d.%d>)" % (off,
                                                                   count))
        want = raw[off:off + count]
        name = b"BODY[]<%d>" % off
        if want:
            assert line == b"* 1 FETCH (%s {%d}\r\n%s)\r\n" % (
                name, len(want), want), (off, count, line)
        else:
            # RFC 9051 §6.4.5: beyond the end, an empty string.
            assert line == b'* 1 FETCH (%s "")\r\n' % name, line
    items = simple.fetch("FETCH 1 (BODY.PEEK[TEXT]<5.6>)")[1]
    assert items["BODY[TEXT]<5>"] == b"one\r\nl"


def test_fetch_header_fields(simple):
    items = simple.fetch(
        "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT to)] "
        "BODY.PEEK[HEADER.FIELDS.NOT (To Subject Date Message-ID "
        "Received Return-Path)])")[1]
    assert items["BODY[HEADER.FIELDS (SUBJECT TO)]"] == (
        b"To: Bob <bob@example.test>,\r\n"
        b"  Carol <carol@example.test>\r\n"
        b"Subject: simple one\r\n\r\n")
    assert items["BODY[HEADER.FIELDS.NOT (TO SUBJECT DATE MESSAGE-ID "
                 "RECEIVED RETURN-PATH)]"] == (
        b"From: Alice <alice@other.test>\r\n\r\n")
    # The reply names the section as asked, field names included.
    line = fetch_line(simple, 'FETCH 1 (BODY.PEEK[HEADER.FIELDS '
                              '("X-None" Subject)]<2.5>)')
    assert line == (b"* 1 FETCH (BODY[HEADER.FIELDS (X-None Subject)]<2> "
                    b"{5}\r\nbject)\r\n")
    # No field matches: the blank line alone.
    line = fetch_line(simple, "FETCH 1 (BODY.PEEK[HEADER.FIELDS (X-NONE)])")
    assert line == b"* 1 FETCH (BODY[HEADER.FIELDS (X-NONE)] {2}\r\n\r\n)\r\n"


def test_fetch_modseq_item(simple):
    line = fetch_line(simple, "FETCH 1 (MODSEQ)")
    m = re.match(rb"^\* 1 FETCH \((?:UID 1 )?MODSEQ \((\d+)\)\)\r\n$", line)
    assert m and int(m.group(1)) > 0, line
    # MODSEQ enabled CONDSTORE: every FETCH reply carries it now.
    line = fetch_line(simple, "FETCH 1 (UID)")
    assert line == b"* 1 FETCH (UID 1 MODSEQ (%s))\r\n" % m.group(1), line


# --- a nested multipart message ----------------------------------------------


def parts_of(raw):
    """The byte slices of MULTI inside raw, found by their text."""
    base = raw.index(MULTI)

    def between(start_marker, end_marker, start=0):
        s = raw.index(start_marker, base + start) + len(start_marker)
        e = raw.index(end_marker, s)
        return s, e
    # Part 1: after its blank line up to the CRLF before "--outer".
    p1_hdr = raw.index(b"Content-Type: text/plain; charset=utf-8", base)
    p1_body = raw.index(b"\r\n\r\n", p1_hdr) + 4
    p1_end = raw.index(b"\r\n--outer", p1_body)
    p2_hdr = raw.index(b"Content-Type: application/octet-stream", base)
    p2_body = raw.index(b"\r\n\r\n", p2_hdr) + 4
    p2_end = raw.index(b"\r\n--outer", p2_body)
    p3_hdr = raw.index(b"Content-Type: message/rfc822", base)
    p3_body = raw.index(b"\r\n\r\n", p3_hdr) + 4
    p3_end = raw.index(b"\r\n--outer--", p3_body)
    return {"1": (p1_hdr, p1_body, p1_end), "2": (p2_hdr, p2_body, p2_end),
            "3": (p3_hdr, p3_body, p3_end)}


def test_fetch_multipart_parts_and_mime_headers(multi):
    raw = multi.raw[1]
    p = parts_of(raw)
    items = multi.fetch("FETCH 2 (BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[3] "
                        "BODY.PEEK[1.MIME] BODY.PEEK[2.MIME] "
                        "BODY.PEEK[3.MIME])")[2]
    for n in "123":
        h, b, e = p[n]
        assert items["BODY[%s]" % n] == raw[b:e], n
        assert items["BODY[%s.MIME]" % n] == raw[h:b], n
    assert items["BODY[1]"] == QP_TEXT[:-2]
    assert items["BODY[3]"] == INNER[:-2]


def test_fetch_nested_message_part(multi):
    inner = INNER[:-2]         # the CRLF before the boundary is not in it
    ihdr, itext = header_of(inner)
    items = multi.fetch(
        "FETCH 2 (BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] BODY.PEEK[3.1] "
        "BODY.PEEK[3.2] BODY.PEEK[3.1.MIME] "
        "BODY.PEEK[3.HEADER.FIELDS (Subject)] "
        "BODY.PEEK[3.HEADER.FIELDS.NOT (Subject)])")[2]
    assert items["BODY[3.HEADER]"] == ihdr
    assert items["BODY[3.TEXT]"] == itext
    assert items["BODY[3.1]"] == b"inner plain"
    assert items["BODY[3.2]"] == b"<p>inner html</p>"
    assert items["BODY[3.1.MIME]"] == b"Content-Type: text/plain\r\n\r\n"
    assert items["BODY[3.HEADER.FIELDS (SUBJECT)]"] == \
        b"Subject: inner message\r\n\r\n"
    assert items["BODY[3.HEADER.FIELDS.NOT (SUBJECT)]"] == (
        b"From: Dave <dave@other.test>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/alternative; boundary=\"in\"\r\n\r\n")


def test_fetch_missing_parts_are_nil(multi):
    line = fetch_line(multi, "FETCH 2 (BODY.PEEK[9] BODY.PEEK[1.HEADER] "
                             "BODY.PEEK[3.1.5] BINARY.PEEK[7])")
    assert line == (b"* 2 FETCH (BODY[9] NIL BODY[1.HEADER] NIL "
                    b"BODY[3.1.5] NIL BINARY[7] NIL)\r\n")


def test_fetch_binary_base64_part(multi):
    multi.c.send(b"b1 FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])\r\n")
    r = multi.c.read_reply(b"b1")
    assert r.status == "OK", r.tagged
    line = r.untagged[0]
    # RFC 3516 §4.2: decoded data holding NUL goes as a literal8.
    head = b"* 2 FETCH (BINARY[2] ~{%d}\r\n" % len(ATTACHMENT)
    assert line.startswith(head), line[:60]
    assert line[len(head):len(head) + len(ATTACHMENT)] == ATTACHMENT
    assert line[len(head) + len(ATTACHMENT):] == \
        b" BINARY.SIZE[2] %d)\r\n" % len(ATTACHMENT)
    # A partial counts in decoded bytes.
    items = multi.fetch("FETCH 2 (BINARY.PEEK[2]<250.10>)")[2]
    assert items["BINARY[2]<250>"] == ATTACHMENT[250:260]


def test_fetch_binary_quoted_printable_part(multi):
    line = fetch_line(multi, "FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1])")
    want = QP_DECODED[:-2]
    # No NUL: an ordinary literal.
    assert line == b"* 2 FETCH (BINARY[1] {%d}\r\n%s BINARY.SIZE[1] %d)\r\n" \
        % (len(want), want, len(want)), line


def test_fetch_binary_of_a_whole_message_and_7bit_part(multi):
    raw = multi.raw[1]
    items = multi.fetch("FETCH 2 (BINARY.PEEK[] BINARY.PEEK[3.1] "
                        "BINARY.SIZE[])")[2]
    assert items["BINARY[]"] == raw
    assert items["BINARY[3.1]"] == b"inner plain"
    assert int(items["BINARY.SIZE[]"]) == len(raw)


def test_fetch_binary_unknown_encoding(srv):
    msg = (b"Subject: uu\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: application/x\r\n"
           b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--b--\r\n")
    box = Box(srv, [msg])
    try:
        r = box.c.command("FETCH 1 (BINARY.PEEK[1])")
        assert r.status == "NO" and r.code == "UNKNOWN-CTE", r.tagged
        # BODY[] still reads it as it is.
        items = box.fetch("FETCH 1 (BODY.PEEK[1])")[1]
        assert items["BODY[1]"] == b"begin"
    finally:
        box.close()


# --- \Seen -----------------------------------------------------------------


def test_body_peek_does_not_set_seen_and_body_does(simple):
    assert fetch_line(simple, "FETCH 1 (BODY.PEEK[TEXT] FLAGS)").endswith(
        b"FLAGS (\\Recent))\r\n")
    line = fetch_line(simple, "FETCH 1 (BODY[TEXT])")
    # The FLAGS this FETCH changed come with it (RFC 9051 §6.4.5).
    assert line == (b"* 1 FETCH (BODY[TEXT] {20}\r\nline one\r\nline two"
                    b"\r\n FLAGS (\\Seen \\Recent))\r\n"), line
    assert fetch_line(simple, "FETCH 1 (FLAGS)") == \
        b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n"
    # Already seen: no FLAGS added.
    line = fetch_line(simple, "FETCH 1 (BODY[]<0.4>)")
    assert line == b"* 1 FETCH (BODY[]<0> {4}\r\n%s)\r\n" % \
        simple.raw[0][:4]


@pytest.mark.parametrize("item", ["RFC822", "RFC822.TEXT", "BINARY[1]",
                                  "BODY[HEADER]"])
def test_items_that_set_seen(srv, item):
    box = Box(srv, [SIMPLE])
    try:
        items = box.fetch("FETCH 1 (%s)" % item)[1]
        assert flag_set(items["FLAGS"]) == {"\\Seen", "\\Recent"}, items
    finally:
        box.close()


@pytest.mark.parametrize("item", ["RFC822.HEADER", "BODY.PEEK[]",
                                  "BINARY.PEEK[1]", "BINARY.SIZE[1]",
                                  "BODYSTRUCTURE"])
def test_items_that_leave_seen_alone(srv, item):
    box = Box(srv, [SIMPLE])
    try:
        items = box.fetch("FETCH 1 (%s)" % item)[1]
        assert "FLAGS" not in items
        assert box.fetch("FETCH 1 FLAGS")[1]["FLAGS"] == [b"\\Recent"]
    finally:
        box.close()


def test_examine_fetch_body_does_not_set_seen(srv):
    box = Box(srv, [SIMPLE], examine=True)
    try:
        items = box.fetch("FETCH 1 (BODY[])")[1]
        assert "FLAGS" not in items
        assert items["BODY[]"] == box.raw[0]
        assert box.fetch("FETCH 1 FLAGS")[1]["FLAGS"] == [b"\\Recent"]
    finally:
        box.close()


def test_seen_is_set_for_many_messages_at_once(srv):
    box = Box(srv, [SIMPLE, MULTI, SIMPLE])
    try:
        box.c.ok("STORE 2 +FLAGS (\\Seen)")
        out = box.fetch("FETCH 1:3 (BODY[]<0.1>)")
        assert flag_set(out[1]["FLAGS"]) == {"\\Seen", "\\Recent"}
        assert "FLAGS" not in out[2]
        assert flag_set(out[3]["FLAGS"]) == {"\\Seen", "\\Recent"}
        # Another session sees the change.
        c2 = login(srv, box.user, box.password)
        c2.select("INBOX")
        r = c2.ok("FETCH 1:3 FLAGS")
        assert all(b"\\Seen" in l for l in r.untagged), r.untagged
        c2.close()
    finally:
        box.close()


# --- CONDSTORE and QRESYNC ---------------------------------------------------


def modseq_of(items):
    return int(items["MODSEQ"][0])


def test_fetch_changedsince(srv):
    box = Box(srv, [SIMPLE, SIMPLE, SIMPLE])
    try:
        out = box.fetch("FETCH 1:3 (MODSEQ)")
        top = max(modseq_of(v) for v in out.values())
        box.c.ok("STORE 2 +FLAGS (\\Flagged)")
        out = box.fetch("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % top)
        # RFC 7162 §3.1.4.1: only what changed, with its MODSEQ.
        assert list(out) == [2], out
        assert flag_set(out[2]["FLAGS"]) == {"\\Flagged", "\\Recent"}
        assert modseq_of(out[2]) > top
        out = box.fetch("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")
        assert sorted(out) == [1, 2, 3]
        assert all("UID" in v and "MODSEQ" in v for v in out.values())
    finally:
        box.close()


def test_changedsince_enables_condstore(srv):
    box = Box(srv, [SIMPLE])
    try:
        line = fetch_line(box, "FETCH 1 (FLAGS) (CHANGEDSINCE 0)")
        assert re.match(rb"^\* 1 FETCH \((?:UID 1 )?FLAGS \(\\Recent\) "
                        rb"MODSEQ \(\d+\)\)\r\n$",
                        line), line
        assert b"MODSEQ" in fetch_line(box, "FETCH 1 (UID)")
    finally:
        box.close()


def test_condstore_turned_on_late_gives_the_stores_modseqs(srv):
    """A session keeps no MODSEQs until it uses CONDSTORE (they cost 8
    bytes a message to every idle session); once it does, they are the
    store's, and a change it has not heard of yet comes with its new
    MODSEQ (RFC 7162 §3.1)."""
    box = Box(srv, [SIMPLE, SIMPLE, SIMPLE])
    ref = login(srv, box.user, box.password)
    late = login(srv, box.user, box.password)
    try:
        ref.ok("ENABLE CONDSTORE")
        ref.select("INBOX")
        ref.ok("STORE 1 +FLAGS (\\Answered)")
        before = {n: modseq_of(v) for n, v in
                  (parse_fetch(l) for l in ref.ok("FETCH 1:3 (MODSEQ)")
                   .untagged if re.match(rb"^\* \d+ FETCH ", l))}
        assert before[1] > before[2], before
        # box.c selected before any of this, without CONDSTORE.
        out = box.fetch("FETCH 1:3 (MODSEQ)")
        assert {n: modseq_of(v) for n, v in out.items()} == before
        late.select("INBOX")
        r = ref.ok("STORE 2 +FLAGS (\\Flagged)")
        changed = modseq_of(parse_fetch(r.untagged[-1])[1])
        assert changed > before[1]
        seen = []

        def told():
            r = late.ok("FETCH 1:3 (MODSEQ)") if not seen else \
                late.ok("NOOP")
            for l in r.untagged:
                if re.match(rb"^\* \d+ FETCH ", l):
                    seen.append(parse_fetch(l))
            return any(n == 2 and "FLAGS" in v and
                       "\\Flagged" in flag_set(v["FLAGS"]) for n, v in seen)

        wait_for(told, what="the late CONDSTORE session hears of STORE")
        last = {}
        for n, v in seen:
            last[n] = modseq_of(v)
        assert last == {1: before[1], 2: changed, 3: before[3]}, seen
    finally:
        ref.close()
        late.close()
        box.close()


def test_uid_fetch_vanished_earlier(srv):
    user, password = new_user(srv)
    for _ in range(5):
        send(srv, user, SIMPLE)
    c = login(srv, user, password)
    try:
        c.ok("ENABLE QRESYNC")
        c.select("INBOX")
        r = c.ok("FETCH 1:5 (MODSEQ)")
        top = max(modseq_of(parse_fetch(l)[1]) for l in r.untagged)
        c.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")
        r = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % top)
        # RFC 7162 §3.2.6: VANISHED (EARLIER) first, then what changed.
        assert r.untagged[0] == b"* VANISHED (EARLIER) 2,4\r\n", r.untagged
        assert all(b"FETCH" in l for l in r.untagged[1:]), r.untagged
        # Only UIDs within the set asked for.
        r = c.ok("UID FETCH 3:5 (FLAGS) (CHANGEDSINCE %d VANISHED)" % top)
        assert r.untagged == [b"* VANISHED (EARLIER) 4\r\n"], r.untagged
        # VANISHED needs UID FETCH and CHANGEDSINCE.
        assert c.command("FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)"
                         ).status == "BAD"
        assert c.command("UID FETCH 1 (FLAGS) (VANISHED)").status == "BAD"
    finally:
        c.close()


def test_vanished_needs_qresync_enabled(simple):
    r = simple.c.command("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert r.status == "BAD", r.tagged


# --- STORE -----------------------------------------------------------------


def store_lines(box, cmd):
    r = box.c.ok(cmd)
    return r.untagged


def test_store_every_mode(srv):
    box = Box(srv, [SIMPLE, SIMPLE])
    try:
        assert store_lines(box, "STORE 1 FLAGS (\\Flagged \\Answered)") == [
            b"* 1 FETCH (FLAGS (\\Answered \\Flagged \\Recent))\r\n"]
        # RFC 9051 §7.3.5: a new keyword is announced by FLAGS first.
        assert store_lines(box, "STORE 1 +FLAGS (\\Seen $Label1)") == [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
            b"\\Recent $Label1)\r\n",
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
            b"\\Draft $Label1 \\*)] Flags permitted\r\n",
            b"* 1 FETCH (FLAGS (\\Answered \\Flagged \\Seen \\Recent "
            b"$Label1))\r\n"]
        assert store_lines(box, "STORE 1 -FLAGS (\\Answered $label1)") == [
            b"* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\n"]
        # Flags may come without parentheses.
        assert store_lines(box, "STORE 1:2 +FLAGS \\Draft Foo") == [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
            b"\\Recent $Label1 Foo)\r\n",
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
            b"\\Draft $Label1 Foo \\*)] Flags permitted\r\n",
            b"* 1 FETCH (FLAGS (\\Flagged \\Seen \\Draft \\Recent Foo))\r\n",
            b"* 2 FETCH (FLAGS (\\Draft \\Recent Foo))\r\n"]
        # \Recent is the session's, not the store's: FLAGS () keeps it.
        assert store_lines(box, "STORE 1:* FLAGS ()") == [
            b"* 1 FETCH (FLAGS (\\Recent))\r\n",
            b"* 2 FETCH (FLAGS (\\Recent))\r\n"]
        # UID STORE replies carry the UID.
        assert store_lines(box, "UID STORE 2 +FLAGS (\\Deleted)") == [
            b"* 2 FETCH (FLAGS (\\Deleted \\Recent) UID 2)\r\n"]
        # What the store keeps is what another session reads (without
        # \Recent: this session took it).
        c2 = login(srv, box.user, box.password)
        c2.select("INBOX")
        r = c2.ok("FETCH 1:2 FLAGS")
        assert r.untagged == [b"* 1 FETCH (FLAGS ())\r\n",
                              b"* 2 FETCH (FLAGS (\\Deleted))\r\n"]
        c2.close()
    finally:
        box.close()


def test_store_shows_changes_by_other_sessions(srv):
    box = Box(srv, [SIMPLE, SIMPLE, SIMPLE])

    def other(cmd):
        c2 = login(srv, box.user, box.password)
        c2.select("INBOX")
        c2.ok(cmd)
        c2.close()
    try:
        other("STORE 1 +FLAGS.SILENT (\\Flagged)")
        # The reply shows the flags as stored, the other session's
        # \Flagged too, once.
        assert store_lines(box, "STORE 1 +FLAGS (\\Seen)") == [
            b"* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\n"]
        # .SILENT hides this change, not the other session's.
        other("STORE 2 +FLAGS.SILENT (\\Flagged)")
        assert store_lines(box, "STORE 2 +FLAGS.SILENT (\\Seen)") == [
            b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Seen \\Recent))\r\n"]
        # And so does a FETCH that sets \Seen.
        other("STORE 3 +FLAGS.SILENT (\\Answered)")
        line = fetch_line(box, "FETCH 3 (BODY[]<0.2>)")
        assert line == b"* 3 FETCH (BODY[]<0> {2}\r\n%s FLAGS " \
            b"(\\Answered \\Seen \\Recent))\r\n" % box.raw[2][:2], line
    finally:
        box.close()


def test_store_silent(srv):
    box = Box(srv, [SIMPLE])
    try:
        assert store_lines(box, "STORE 1 +FLAGS.SILENT (\\Flagged)") == []
        assert store_lines(box, "UID STORE 1 -FLAGS.SILENT (\\Flagged)") == []
        assert store_lines(box, "STORE 1 FLAGS.SILENT (\\Seen)") == []
        assert fetch_line(box, "FETCH 1 FLAGS") == \
            b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n"
    finally:
        box.close()


def test_store_bad_and_no(srv):
    box = Box(srv, [SIMPLE])
    try:
        for cmd in ("STORE 2 FLAGS (\\Seen)", "STORE 1 FLAGZ (\\Seen)",
                    "STORE 1 +FLAGS (\\Recent)", "STORE 1 +FLAGS (\\Bogus)",
                    "STORE 1 +FLAGS", "STORE 1 (UNCHANGEDSINCE x) FLAGS ()",
                    "STORE 1 (FOO 1) FLAGS ()", "STORE 1 +FLAGS (\"q\")"):
            r = box.c.command(cmd)
            assert r.status == "BAD", (cmd, r.tagged)
    finally:
        box.close()


def test_examine_refuses_store(srv):
    box = Box(srv, [SIMPLE], examine=True)
    try:
        r = box.c.command("STORE 1 +FLAGS (\\Seen)")
        assert r.status == "NO" and r.code == "READ-ONLY", r.tagged
        assert r.untagged == []
        assert box.fetch("FETCH 1 FLAGS")[1]["FLAGS"] == [b"\\Recent"]
    finally:
        box.close()


def test_store_unchangedsince_and_modified(srv):
    box = Box(srv, [SIMPLE, SIMPLE, SIMPLE])
    try:
        out = box.fetch("FETCH 1:3 (MODSEQ)")
        m = {n: modseq_of(v) for n, v in out.items()}
        box.c.ok("STORE 2 +FLAGS (\\Answered)")
        new2 = modseq_of(box.fetch("FETCH 2 (MODSEQ)")[2])
        assert new2 > max(m.values())
        since = max(m.values())
        r = box.c.ok("STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)"
                     % since)
        # RFC 7162 §3.1.3: message 2 changed after the value: refused and
        # named in MODIFIED; the others changed, with their new MODSEQ.
        assert r.code == "MODIFIED 2", r.tagged
        assert len(r.untagged) == 2, r.untagged
        got = {}
        for l in r.untagged:
            n, items = parse_fetch(l)
            got[n] = items
            assert flag_set(items["FLAGS"]) == {"\\Flagged", "\\Recent"}
            assert modseq_of(items) > new2
        assert sorted(got) == [1, 3]
        assert flag_set(box.fetch("FETCH 2 FLAGS")[2]["FLAGS"]) == \
            {"\\Answered", "\\Recent"}
        # UID STORE names UIDs; .SILENT with CONDSTORE still sends
        # MODSEQ.
        top = modseq_of(box.fetch("FETCH 1 (MODSEQ)")[1])
        r = box.c.ok("UID STORE 1,2 (UNCHANGEDSINCE %d) +FLAGS.SILENT "
                     "(\\Deleted)" % new2)
        assert r.code == "MODIFIED 1", r.tagged
        assert len(r.untagged) == 1
        assert re.match(rb"^\* 2 FETCH \(UID 2 MODSEQ \((\d+)\)\)\r\n$",
                        r.untagged[0]), r.untagged
        assert top > 0
        # UNCHANGEDSINCE 0 fails every message.
        r = box.c.ok("STORE 1:3 (UNCHANGEDSINCE 0) FLAGS ()")
        assert r.code == "MODIFIED 1:3", r.tagged
        assert r.untagged == []
    finally:
        box.close()


def test_store_with_condstore_reports_modseq(srv):
    box = Box(srv, [SIMPLE])
    try:
        box.c.ok("ENABLE CONDSTORE")
        lines = store_lines(box, "STORE 1 +FLAGS (\\Flagged)")
        assert re.match(rb"^\* 1 FETCH \(FLAGS \(\\Flagged \\Recent\) "
                        rb"(?:UID 1 )?MODSEQ \(\d+\)"
                        rb"\)\r\n$", lines[0]), lines
        lines = store_lines(box, "STORE 1 +FLAGS.SILENT (\\Seen)")
        assert re.match(rb"^\* 1 FETCH \((?:UID 1 )?MODSEQ \(\d+\)\)\r\n$", lines[0]), \
            lines
    finally:
        box.close()


# --- large messages ------------------------------------------------------------


def big_message(size, seed):
    """A message of about size bytes of base64 lines (deterministic)."""
    head = b"Subject: big %d\r\n\r\n" % seed
    line_count = size // 78
    block = hashlib.sha256(b"%d" % seed).digest() * 100
    body = base64.encodebytes(block * (line_count * 57 // len(block) + 1))
    body = body.replace(b"\n", b"\r\n")[:line_count * 78]
    return head + body


def read_fetch_literal(c, tag, prefix):
    """Reads the reply to a FETCH of one literal without keeping it:
    returns (sha256, size) of the literal and the tagged line."""
    head = c.conn.readline(60)
    m = re.match(rb"^\* \d+ FETCH \(.*" + re.escape(prefix) +
                 rb" \{(\d+)\}\r\n$", head)
    assert m, head
    size = int(m.group(1))
    h = hashlib.sha256()
    left = size
    while left > 0:
        chunk = c.read_exact(min(left, 1 << 20), timeout=60)
        h.update(chunk)
        left -= len(chunk)
    rest = c.conn.readline(60)
    return h.hexdigest(), size, rest


def rss_kib(srv):
    with open("/proc/%d/status" % srv.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_fetch_20mb_message_whole(srv):
    user, password = new_user(srv)
    msg = big_message(BIG_SIZE, 1)
    send(srv, user, msg)
    c = login(srv, user, password)
    try:
        c.select("INBOX")
        r = c.ok("FETCH 1 (RFC822.SIZE)")
        size = int(parse_fetch(r.untagged[0])[1]["RFC822.SIZE"])
        assert size > BIG_SIZE
        # A client that does not read: the server keeps about
        # NET_DRAIN_LOW queued (and the socket buffers hold some), not
        # the message.
        before = rss_kib(srv)
        c.send(b"g1 FETCH 1 (BODY.PEEK[])\r\n")
        time.sleep(1.0)
        assert rss_kib(srv) - before < 8 * 1024
        digest, n, rest = read_fetch_literal(c, b"g1", b"BODY[]")
        assert n == size
        assert rest == b")\r\n"
        assert c.conn.readline(60) == b"g1 OK FETCH completed\r\n"
        # The stored message is our trace fields, then the bytes sent.
        c.send(b"g2 FETCH 1 (BODY.PEEK[]<%d.%d>)\r\n" % (size - len(msg),
                                                          len(msg)))
        digest, n, rest = read_fetch_literal(c, b"g2", b"BODY[]<%d>"
                                             % (size - len(msg)))
        assert n == len(msg)
        assert digest == hashlib.sha256(msg).hexdigest()
        assert c.conn.readline(60) == b"g2 OK FETCH completed\r\n"
        # A slice from the middle.
        items = parse_fetch(c.ok("FETCH 1 (BODY.PEEK[TEXT]<10000000.100>)")
                            .untagged[0])[1]
        body = msg[msg.index(b"\r\n\r\n") + 4:]
        assert items["BODY[TEXT]<10000000>"] == body[10000000:10000100]
    finally:
        c.close()


def test_fetch_many_large_messages_streams_them_all(srv):
    user, password = new_user(srv)
    msgs = [big_message(2 * 1024 * 1024, i) for i in range(4)]
    for m in msgs:
        send(srv, user, m)
    c = login(srv, user, password)
    try:
        c.select("INBOX")
        # A slow reader: the server must wait for room, not buffer it all.
        c.send(b"m1 FETCH 1:4 (UID BODY.PEEK[TEXT])\r\n")
        for i, m in enumerate(msgs):
            digest, n, rest = read_fetch_literal(c, b"m1", b"BODY[TEXT]")
            body = m[m.index(b"\r\n\r\n") + 4:]
            assert (digest, n) == (hashlib.sha256(body).hexdigest(),
                                   len(body)), i
            assert rest == b")\r\n"
        assert c.conn.readline(60) == b"m1 OK FETCH completed\r\n"
        # And BINARY decodes them in bounded pieces too.
        c.send(b"m2 FETCH 2 (BINARY.PEEK[1])\r\n")
        digest, n, rest = read_fetch_literal(c, b"m2", b"BINARY[1]")
        body = msgs[1][msgs[1].index(b"\r\n\r\n") + 4:]
        assert n == len(body)   # no Content-Transfer-Encoding: as it is
        assert c.conn.readline(60) == b"m2 OK FETCH completed\r\n"
    finally:
        c.close()


# --- odds and ends ---------------------------------------------------------------


def test_fetch_digest_parts_default_to_messages(srv):
    # RFC 2046 §5.1.5: a digest's parts are message/rfc822 by default.
    msg = (b"Subject: digest\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
           b"--d\r\n\r\nSubject: first\r\nFrom: x@y.test\r\n\r\nbody one\r\n"
           b"--d\r\n\r\nSubject: second\r\n\r\nbody two\r\n"
           b"--d--\r\n")
    box = Box(srv, [msg])
    try:
        items = box.fetch("FETCH 1 (BODY.PEEK[1.HEADER] BODY.PEEK[2.TEXT] "
                          "BODY.PEEK[1.HEADER.FIELDS (FROM)])")[1]
        assert items["BODY[1.HEADER]"] == \
            b"Subject: first\r\nFrom: x@y.test\r\n\r\n"
        assert items["BODY[2.TEXT]"] == b"body two"
        assert items["BODY[1.HEADER.FIELDS (FROM)]"] == \
            b"From: x@y.test\r\n\r\n"
    finally:
        box.close()


def test_fetch_of_a_message_expunged_by_another_session(srv):
    box = Box(srv, [SIMPLE, MULTI])
    try:
        c2 = login(srv, box.user, box.password)
        c2.select("INBOX")
        c2.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        c2.ok("EXPUNGE")
        c2.close()
        # RFC 9051 §7.5.1: no EXPUNGE while answering FETCH; the message
        # keeps its number and what the session knows of it.
        r = box.c.ok("FETCH 1 (UID FLAGS)")
        assert r.untagged == [b"* 1 FETCH (UID 1 FLAGS (\\Recent))\r\n"]
        # Its body is gone: the others are answered, then RFC 9051 §7.1
        # EXPUNGEISSUED.
        r = box.c.command("FETCH 1:2 (UID BODY.PEEK[]<0.6>)")
        assert r.status == "NO" and r.code == "EXPUNGEISSUED", r.tagged
        assert r.untagged == [b"* 2 FETCH (UID 2 BODY[]<0> {6}\r\n%s)\r\n"
                              % box.raw[1][:6]]
        r = box.c.ok("NOOP")
        assert r.untagged == [b"* 1 EXPUNGE\r\n"]
    finally:
        box.close()


def test_commands_pipelined_behind_a_streamed_fetch(srv):
    user, password = new_user(srv)
    msg = big_message(3 * 1024 * 1024, 7)
    send(srv, user, msg)
    c = login(srv, user, password)
    try:
        c.select("INBOX")
        c.send(b"p1 FETCH 1 (BODY.PEEK[TEXT])\r\np2 STORE 1 +FLAGS "
               b"(\\Flagged)\r\np3 FETCH 1 (FLAGS)\r\n")
        digest, n, rest = read_fetch_literal(c, b"p1", b"BODY[TEXT]")
        body = msg[msg.index(b"\r\n\r\n") + 4:]
        assert digest == hashlib.sha256(body).hexdigest()
        assert c.conn.readline(60) == b"p1 OK FETCH completed\r\n"
        assert c.read_reply(b"p2").untagged == [
            b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n"]
        assert c.read_reply(b"p3").untagged == [
            b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n"]
    finally:
        c.close()


def test_fetch_flags_of_many_messages(srv):
    box = Box(srv, [SIMPLE] * 30)
    try:
        box.c.ok("STORE %s +FLAGS.SILENT (\\Answered)"
                 % ",".join(str(i) for i in range(2, 31, 2)))
        r = box.c.ok("FETCH 1:* (UID FLAGS)")
        assert r.untagged == [
            b"* %d FETCH (UID %d FLAGS (%s))\r\n"
            % (i, i, b"\\Answered \\Recent" if i % 2 == 0 else b"\\Recent")
            for i in range(1, 31)]
        r = box.c.ok("UID FETCH 5,7:9,29:* (FLAGS)")
        assert [parse_fetch(l)[0] for l in r.untagged] == \
            [5, 7, 8, 9, 29, 30]
    finally:
        box.close()
