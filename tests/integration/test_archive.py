"""`postern import` and `postern export` (issue #23) as a user sees them:
mbox files with tricky From lines (unquoted in bodies, ">From", ">>From"),
CRLF and LF files, 8-bit headers and Dovecot's Status/X-Status/X-Keywords
headers read into flags and keywords, checked through IMAP (imaplib:
FLAGS, INTERNALDATE, the bytes of BODY[]); import then export gives the
same bytes and flags (mbox and Maildir++); importing twice adds nothing;
a 50 MB message; the size limit, the quota and bad input; hostile
Maildirs (links to elsewhere, odd file names, a FIFO) and mailbox names
stored before the path rule stay inside the export; a Maildir written by
a real tool (mbsync from postern's own IMAP) imports the same messages."""

import hashlib
import imaplib
import json
import os
import re
import sqlite3
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from imap_helpers import new_user, start_imap_server
from postern_harness import Cert, postern_bin

# 2026-12-07 01:57:18 UTC, 2026-12-08 01:00:00 UTC.
T1 = 1796608638
T2 = 1796691600


@pytest.fixture(scope="module")
def ip_cert(tmp_path_factory):
    """A self-signed certificate naming 127.0.0.1, so that mbsync can
    verify the server (as in test_imap_clients.py)."""
    d = tmp_path_factory.mktemp("ipcert")
    cert, key = d / "main.pem", d / "main.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "7",
         "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:mail.example.test"],
        check=True, capture_output=True, timeout=60)
    return Cert(cert, key)


@pytest.fixture(scope="module")
def srv(module_postern_factory, ip_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("archive"), ip_cert)


@pytest.fixture
def user(srv):
    return new_user(srv)


def postern(srv, verb, address, *args, config=None, timeout=300):
    """`postern VERB ADDRESS ARGS... -c CONFIG`; returns the
    CompletedProcess (bytes stdout/stderr decoded as text)."""
    argv = [postern_bin(), verb, address, *map(str, args), "-c",
            str(config or srv.admin_config)]
    return subprocess.run(argv, capture_output=True, text=True,
                          errors="replace", timeout=timeout,
                          stdin=subprocess.DEVNULL)


def ok(srv, verb, address, *args, **kw):
    r = postern(srv, verb, address, *args, "--json", **kw)
    assert r.returncode == 0, "postern %s failed (%s):\n%s%s" % (
        verb, r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


class Mail:
    """An imaplib session of a user on the implicit-TLS listener."""

    def __init__(self, srv, user):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                                   ssl_context=ctx, timeout=60)
        self.m.login(*user)

    def folders(self):
        typ, data = self.m.list()
        assert typ == "OK", data
        names = set()
        for line in data:
            m = re.match(rb'^\(.*?\) (?:"."|NIL|"/") (.*)$', line)
            assert m, line
            name = m.group(1)
            if name.startswith(b'"'):
                name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\",
                                                                 b"\\")
            names.add(name.decode())
        return names

    def messages(self, folder="INBOX"):
        """[(flags set, INTERNALDATE str, body bytes)] by UID. \\Recent is
        left out of the flags: it is this session's view (RFC 3501
        §2.3.2), not a flag an archive carries; self.recent says which
        messages showed it."""
        self.recent = []
        typ, data = self.m.select('"%s"' % folder, readonly=True)
        assert typ == "OK", data
        if int(data[0]) == 0:
            return []
        typ, data = self.m.uid("FETCH", "1:*",
                               "(FLAGS INTERNALDATE BODY.PEEK[])")
        assert typ == "OK", data
        out = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            flags = re.search(rb"FLAGS \(([^)]*)\)", head).group(1)
            date = re.search(rb'INTERNALDATE "([^"]+)"', head).group(1)
            flags = set(flags.decode().split())
            self.recent.append("\\Recent" in flags)
            out.append((flags - {"\\Recent"}, date.decode(), body))
        return out

    def close(self):
        try:
            self.m.logout()
        except Exception:
            pass


@pytest.fixture
def mail(srv):
    sessions = []

    def open_(user):
        s = Mail(srv, user)
        sessions.append(s)
        return s
    yield open_
    for s in sessions:
        s.close()


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# --- mbox --------------------------------------------------------------------

TRICKY = (
    b"From MAILER-DAEMON Mon Dec  7 01:57:18 2026\n"
    b"From: sender@other.test\n"
    b"Message-ID: <tricky-1@other.test>\n"
    b"Subject: caf\xc3\xa9 \xff 8-bit header\n"
    b"Status: RO\n"
    b"X-Status: AF\n"
    b"X-Keywords: $Label1 work\n"
    b"\n"
    b"From the desk of nobody (unquoted, no date: text)\n"
    b">From quoted once\n"
    b">>From quoted twice\n"
    b"\n"
    b"From bob@example.test Tue Dec  8 01:00:00 2026\n"
    b"From: bob@example.test\n"
    b"Subject: second\n"
    b"Status: O\n"
    b"\n"
    b"text\n"
    b"From bob Mon Dec  7 01:57:18 2026 (after text, not a separator)\n"
    b"last line\n"
    b"\n"
)


def test_mbox_tricky_from_lines_flags_and_8bit_headers(srv, user, mail,
                                                        tmp_path):
    src = tmp_path / "tricky.mbox"
    src.write_bytes(TRICKY)
    got = ok(srv, "import", user[0], "--mbox", src)
    assert got == {"folders": 1, "imported": 2, "duplicates": 0,
                   "failed": 0, "bytes": got["bytes"], "complete": True}
    m = mail(user)
    msgs = m.messages("INBOX")
    assert len(msgs) == 2
    # Imported mail is new in its mailbox: EXAMINE shows it \Recent (and
    # leaves it so, RFC 3501 §6.3.2).
    assert m.recent == [True, True]
    assert m.messages("INBOX") == msgs and m.recent == [True, True]
    flags, date, body = msgs[0]
    assert flags == {"\\Seen", "\\Answered", "\\Flagged", "$Label1",
                     "work"}
    assert date == "07-Dec-2026 01:57:18 +0000"
    assert body == crlf(
        b"From: sender@other.test\n"
        b"Message-ID: <tricky-1@other.test>\n"
        b"Subject: caf\xc3\xa9 \xff 8-bit header\n"
        b"\n"
        b"From the desk of nobody (unquoted, no date: text)\n"
        b"From quoted once\n"
        b">From quoted twice\n")
    flags, date, body = msgs[1]
    assert flags == set()
    assert date == "08-Dec-2026 01:00:00 +0000"
    assert body == crlf(
        b"From: bob@example.test\nSubject: second\n\ntext\n"
        b"From bob Mon Dec  7 01:57:18 2026 (after text, not a separator)\n"
        b"last line\n")
    assert got["bytes"] == sum(len(m[2]) for m in msgs)


def test_mboxo_unquotes_one_level_only(srv, user, mail, tmp_path):
    src = tmp_path / "o.mbox"
    src.write_bytes(TRICKY)
    ok(srv, "import", user[0], "--mbox", src, "--mboxo")
    body = mail(user).messages("INBOX")[0][2]
    assert b"\r\nFrom quoted once\r\n>>From quoted twice\r\n" in body


# What export writes: the same flags and keywords as Dovecot's headers at
# the end of the header, mboxrd quoting, one blank line after each message.
CANONICAL = (
    b"From sender@other.test Mon Dec  7 01:57:18 2026\n"
    b"Return-Path: <sender@other.test>\n"
    b"From: sender@other.test\n"
    b"Message-ID: <canon-1@other.test>\n"
    b"Subject: one\n"
    b"Status: RO\n"
    b"X-Status: AFTD\n"
    b"X-Keywords: $Forwarded Project-X\n"
    b"\n"
    b">From quoted\n"
    b">>From twice\n"
    b"\n"
    b"\n"
    b"From MAILER-DAEMON Tue Dec  8 01:00:00 2026\n"
    b"Subject: no message id\n"
    b"Status: O\n"
    b"\n"
    b"short\n"
    b"\n"
    b"From MAILER-DAEMON Tue Dec  8 01:00:00 2026\n"
    b"Subject: no message id\n"
    b"Status: O\n"
    b"\n"
    b"short\n"
    b"\n"
)


def test_mbox_import_export_same_bytes_and_twice_no_duplicates(
        srv, user, mail, tmp_path):
    src = tmp_path / "canonical.mbox"
    src.write_bytes(CANONICAL)
    got = ok(srv, "import", user[0], "--mbox", src, "--folder", "Old/2026")
    assert got["imported"] == 3 and got["duplicates"] == 0
    # The same message twice in the source is kept twice, and a second
    # run adds nothing.
    again = ok(srv, "import", user[0], "--mbox", src, "--folder",
               "Old/2026")
    assert again["imported"] == 0 and again["duplicates"] == 3
    msgs = mail(user).messages("Old/2026")
    assert len(msgs) == 3
    assert msgs[0][0] == {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
                          "\\Draft", "$Forwarded", "Project-X"}
    out = tmp_path / "out.mbox"
    ok(srv, "export", user[0], "--mbox", out, "--folder", "Old/2026")
    assert out.read_bytes() == CANONICAL
    # The export, imported back, is all duplicates (Status: and the
    # other headers export writes do not make another message).
    back = ok(srv, "import", user[0], "--mbox", out, "--folder", "Old/2026")
    assert back["imported"] == 0 and back["duplicates"] == 3
    # Every folder: a directory with one file per folder.
    outdir = tmp_path / "all"
    got = ok(srv, "export", user[0], "--mbox", outdir)
    assert (outdir / "Old.2026").read_bytes() == CANONICAL
    assert (outdir / "INBOX").read_bytes() == b""
    assert got["messages"] == 3
    # ... which imports into another account as the same folders.
    other = new_user(srv)
    got = ok(srv, "import", other[0], "--mbox", outdir)
    assert got["imported"] == 3
    assert "Old/2026" in mail(other).folders()
    # Folders an import makes are subscribed (clients showing only
    # subscribed folders would hide them).
    typ, data = mail(other).m.lsub('""', "Old*")
    assert typ == "OK" and any(b"Old/2026" in line for line in data), data
    assert mail(other).messages("Old/2026") == msgs


def test_crlf_and_lf_files_store_the_same_message(srv, user, mail,
                                                  tmp_path):
    lf = tmp_path / "lf.mbox"
    lf.write_bytes(CANONICAL)
    cr = tmp_path / "crlf.mbox"
    cr.write_bytes(crlf(CANONICAL))
    ok(srv, "import", user[0], "--mbox", lf, "--folder", "LF")
    ok(srv, "import", user[0], "--mbox", cr, "--folder", "CRLF")
    a = mail(user).messages("LF")
    assert a == mail(user).messages("CRLF")
    assert all(b"\n" not in body.replace(b"\r\n", b"") for _, _, body in a)
    # The CRLF file into the folder the LF file filled: all duplicates.
    got = ok(srv, "import", user[0], "--mbox", cr, "--folder", "LF")
    assert got["imported"] == 0 and got["duplicates"] == 3


def test_same_message_id_and_body_but_another_header_is_imported(
        srv, user, mail, tmp_path):
    """The review's case: a placeholder Message-ID and the same short
    body; the second message differs in its header only and was skipped
    as a duplicate of the first."""
    e1 = tmp_path / "e1.mbox"
    e1.write_bytes(b"From a@x Mon Dec  7 01:57:18 2026\n"
                   b"From: a@x\nSubject: code 1111\nMessage-ID: <>\n\n-\n")
    e2 = tmp_path / "e2.mbox"
    e2.write_bytes(b"From bank@y Mon Dec  7 01:57:18 2026\n"
                   b"From: bank@y\nSubject: your statement\n"
                   b"Message-ID: <>\n\n-\n")
    got = ok(srv, "import", user[0], "--mbox", e1, "--folder", "E")
    assert got["imported"] == 1 and got["duplicates"] == 0
    got = ok(srv, "import", user[0], "--mbox", e2, "--folder", "E")
    assert got["imported"] == 1 and got["duplicates"] == 0
    bodies = [body for _, _, body in mail(user).messages("E")]
    assert bodies == [
        b"From: a@x\r\nSubject: code 1111\r\nMessage-ID: <>\r\n\r\n-\r\n",
        b"From: bank@y\r\nSubject: your statement\r\n"
        b"Message-ID: <>\r\n\r\n-\r\n"]
    # Each again: nothing more.
    for f in (e1, e2):
        got = ok(srv, "import", user[0], "--mbox", f, "--folder", "E")
        assert got["imported"] == 0 and got["duplicates"] == 1
    assert len(mail(user).messages("E")) == 2


def test_a_50_mb_message_goes_through_streamed(srv, user, tmp_path):
    line = b"0123456789" * 7 + b"abcdef\n"
    body = line * (50 * 1000 * 1000 // len(line))
    msg = (b"From: big@other.test\nMessage-ID: <big@other.test>\n"
           b"Subject: 50 MB\n\n") + body
    # The header ends before the body; Status goes before its blank line.
    text = (b"From MAILER-DAEMON Mon Dec  7 01:57:18 2026\n"
            b"From: big@other.test\nMessage-ID: <big@other.test>\n"
            b"Subject: 50 MB\nStatus: O\n\n" + body + b"\n")
    src = tmp_path / "big.mbox"
    src.write_bytes(text)
    got = ok(srv, "import", user[0], "--mbox", src)
    assert got["imported"] == 1
    assert got["bytes"] == len(crlf(msg))
    out = tmp_path / "big-out.mbox"
    ok(srv, "export", user[0], "--mbox", out, "--folder", "INBOX")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == \
        hashlib.sha256(text).hexdigest()


def test_size_limit_skips_and_quota_stops(srv, user, mail, tmp_path):
    # The admin command reads [limits] message_size from its own
    # configuration: a copy with a small limit on the same data.
    conf = tmp_path / "small.conf"
    conf.write_text(Path(srv.admin_config).read_text() +
                    "\n[limits]\nmessage_size = 2k\n")
    entries = []
    for i in range(6):
        size = 5000 if i == 2 else 200
        entries.append(b"From MAILER-DAEMON Mon Dec  7 01:57:18 2026\n"
                       b"Message-ID: <q%d@x>\nSubject: %d\n\n" % (i, i) +
                       b"x" * size + b"\n\n")
    src = tmp_path / "q.mbox"
    src.write_bytes(b"".join(entries))
    r = postern(srv, "import", user[0], "--mbox", src, "--json",
                config=conf)
    assert r.returncode == 1, r.stderr
    assert "q.mbox:13 (offset 554): larger" in r.stderr, r.stderr
    assert "larger than the size limit" in r.stderr
    got = json.loads(r.stdout)
    assert got["imported"] == 5 and got["failed"] == 1
    # Quota: a second account with room for two messages.
    small = new_user(srv, "quota=700")
    r = postern(srv, "import", small[0], "--mbox", src, "--json")
    assert r.returncode == 1
    assert "over its quota: import stopped" in r.stderr, r.stderr
    got = json.loads(r.stdout)
    assert got["complete"] is False
    n = len(mail(small).messages())
    assert 1 <= n < 6 and got["imported"] == n


def test_bad_input_names_the_file_and_line(srv, user, tmp_path):
    src = tmp_path / "not-mbox.txt"
    src.write_bytes(b"\nSubject: hello\n\nno From line\n")
    r = postern(srv, "import", user[0], "--mbox", src)
    assert r.returncode == 1
    assert "not-mbox.txt:2 (offset 1): not an mbox file" in r.stderr, \
        r.stderr
    # A huge line without any separator: refused at once, no hang.
    src.write_bytes(b"x" * (20 << 20))
    r = postern(srv, "import", user[0], "--mbox", src)
    assert r.returncode == 1 and "not an mbox file" in r.stderr
    r = postern(srv, "import", user[0], "--maildir", tmp_path)
    assert r.returncode == 1 and "not a Maildir" in r.stderr
    r = postern(srv, "import", "nobody@example.test", "--mbox", src)
    assert r.returncode == 1


# --- Maildir -----------------------------------------------------------------


def write_maildir(root, folders):
    """folders: {dir name ('' for INBOX): (keywords list, [(file name,
    bytes, mtime)])}."""
    for d, (keywords, files) in folders.items():
        base = root / d if d else root
        for sub in ("cur", "new", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        if keywords:
            (base / "dovecot-keywords").write_text(
                "".join("%d %s\n" % (i, k) for i, k in enumerate(keywords)))
        for name, data, mtime in files:
            sub = "new" if ":2," not in name else "cur"
            p = base / sub / name
            p.write_bytes(data)
            os.utime(p, (mtime, mtime))


def read_maildir(root):
    """{folder dir: sorted [(bytes, flag letters, keyword names, mtime)]}:
    what must survive, whatever the unique names."""
    out = {}
    dirs = [""] + sorted(p.name for p in root.iterdir()
                         if p.name.startswith(".") and p.is_dir())
    for d in dirs:
        base = root / d if d else root
        kw = {}
        kf = base / "dovecot-keywords"
        if kf.exists():
            for line in kf.read_text().splitlines():
                n, name = line.split(" ", 1)
                kw[chr(ord("a") + int(n))] = name
        msgs = []
        for sub in ("cur", "new"):
            for p in (base / sub).iterdir():
                info = p.name.split(":2,", 1)[1] if ":2," in p.name else ""
                letters = "".join(c for c in info if c.isupper())
                names = sorted(kw[c] for c in info if c.islower())
                msgs.append((p.read_bytes(), letters, tuple(names),
                             int(p.stat().st_mtime)))
        out[d] = sorted(msgs)
    return out


def msg(n, extra=b""):
    return (b"From: a@other.test\nTo: b@example.test\n"
            b"Message-ID: <m%d@other.test>\nSubject: message %d\n%s\n"
            b"body %d\n>From line\nFrom line\n" % (n, n, extra, n))


MAILDIR = {
    "": (["$Label1", "work"], [
        ("%d.M1P1.host,S=10:2,RSa" % T1, msg(1), T1),
        ("%d.M2P1.host:2,FPb" % T2, msg(2), T2),
        ("%d.M3P1.host" % (T2 + 1), msg(3), T2 + 1),       # new/, unseen
    ]),
    ".Work": (["Project-X"], [
        ("%d.M4P1.host:2,STa" % T1, msg(4), T1),
    ]),
    ".Work.Sub": ([], [
        ("%d.M5P1.host:2,D" % T1, msg(5, b"X-8bit: \xe2\x82\xac\n"), T1),
    ]),
    ".a\\2eb": ([], [
        ("%d.M6P1.host:2,S" % T2, msg(6), T2),
    ]),
    ".B&AOQ-r": ([], [
        ("%d.M7P1.host:2,S" % T2, msg(7), T2),
    ]),
}


def test_maildir_import_export_round_trip(srv, user, mail, tmp_path):
    src = tmp_path / "Maildir"
    write_maildir(src, MAILDIR)
    got = ok(srv, "import", user[0], "--maildir", src)
    assert got == {"folders": 5, "imported": 7, "duplicates": 0,
                   "failed": 0, "bytes": got["bytes"], "complete": True}
    again = ok(srv, "import", user[0], "--maildir", src)
    assert again["imported"] == 0 and again["duplicates"] == 7
    m = mail(user)
    assert {"Work", "Work/Sub", "a.b", "B\u00e4r"} <= m.folders() or \
        {"Work", "Work/Sub", "a.b", "B&AOQ-r"} <= m.folders()
    inbox = m.messages("INBOX")
    assert [(f, d) for f, d, _ in inbox] == [
        ({"\\Seen", "\\Answered", "$Label1"}, "07-Dec-2026 01:57:18 +0000"),
        ({"\\Flagged", "$Forwarded", "work"}, "08-Dec-2026 01:00:00 +0000"),
        (set(), "08-Dec-2026 01:00:01 +0000"),
    ]
    assert inbox[0][2] == crlf(msg(1))
    assert m.messages("Work")[0][0] == {"\\Seen", "\\Deleted", "Project-X"}
    assert m.messages("Work/Sub")[0][0] == {"\\Draft"}
    out = tmp_path / "export"
    got = ok(srv, "export", user[0], "--maildir", out)
    assert got["messages"] == 7 and got["failed"] == 0
    want = read_maildir(src)
    # new/ messages come back in cur/ with an empty flag list; the
    # account's other folders (Sent, ...) come back empty.
    have = {k: v for k, v in read_maildir(out).items() if v}
    assert have == want
    # The export, imported back, is all duplicates.
    back = ok(srv, "import", user[0], "--maildir", out)
    assert back["imported"] == 0 and back["duplicates"] == 7
    names = sorted(p.name for p in (out / "cur").iterdir())
    assert re.match(r"^%d\.U1V\d+\.[^/:,]+,S=%d,W=%d:2,RSa$"
                    % (T1, len(msg(1)), len(crlf(msg(1)))), names[0]), names
    # Export, import, export: the same files.
    other = new_user(srv)
    ok(srv, "import", other[0], "--maildir", out)
    out2 = tmp_path / "export2"
    ok(srv, "export", other[0], "--maildir", out2)
    assert read_maildir(out2) == read_maildir(out)


def test_hostile_maildir_is_read_without_following_links(srv, user, mail,
                                                        tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"Subject: secret\n\nnot for import\n")
    outside = tmp_path / "outside"
    write_maildir(outside, {"": ([], [("1.x.y:2,S", msg(99), T1)])})
    src = tmp_path / "Maildir"
    write_maildir(src, {"": ([], [("%d.ok.host:2,S" % T1, msg(1), T1)])})
    os.symlink(secret, src / "cur" / ("%d.link.host:2,S" % T1))
    os.symlink(outside, src / ".Linked")
    os.symlink(outside / "cur", src / "new" / "dir-link")
    os.mkfifo(src / "cur" / ("%d.fifo.host:2," % T1))
    odd = ("%d.odd\x01\x1b[31m\xff.host:2,S" % T1).encode("utf-8",
                                                          "surrogateescape")
    with open(os.path.join(bytes(src / "cur"), odd), "wb") as f:
        f.write(msg(2))
    (src / "dovecot-keywords").symlink_to(secret)
    r = postern(srv, "import", user[0], "--maildir", src, "--json",
                timeout=60)
    got = json.loads(r.stdout)
    assert got["imported"] == 2, (r.stdout, r.stderr)
    assert "links are not followed" in r.stderr, r.stderr
    assert "/.Linked: a link (links are not followed): skipped" in r.stderr
    assert "/new/dir-link: a link (links are not followed)" in r.stderr
    assert ".fifo.host:2,: not a regular file: skipped" in r.stderr
    assert "\\x01\\x1b[31m" in r.stderr or "\\x01" not in r.stderr
    assert r.returncode == 1    # the skipped files count as failed
    bodies = b"".join(b for _, _, b in mail(user).messages())
    assert b"not for import" not in bodies and b"body 99" not in bodies
    assert "Linked" not in mail(user).folders()
    # cur/ itself a link: not read either.
    src2 = tmp_path / "Maildir2"
    (src2 / "new").mkdir(parents=True)
    os.symlink(outside / "cur", src2 / "cur")
    r = postern(srv, "import", user[0], "--maildir", src2, "--folder",
                "Two", timeout=60)
    assert r.returncode == 1
    assert "Maildir2/cur: not a directory (links are not followed)" in \
        r.stderr, r.stderr
    assert mail(user).messages("Two") == []


def test_export_of_names_from_before_the_path_rule_stays_inside(
        srv, user, tmp_path):
    # Such names can only come from an older store: put them in the way
    # an older postern would have.
    db = sqlite3.connect(str(Path(srv.mail_data) / "store.db"), timeout=30)
    try:
        acct = db.execute("SELECT id FROM accounts WHERE address = ?",
                          (user[0],)).fetchone()[0]
        for i, name in enumerate(("../../escape", "..", "a//b", "~root")):
            db.execute("INSERT INTO mailboxes (account, name, uidvalidity)"
                       " VALUES (?, ?, ?)", (acct, name, 4000 + i))
        db.commit()
    finally:
        db.close()
    out = tmp_path / "deep" / "export"
    out.parent.mkdir()
    r = postern(srv, "export", user[0], "--maildir", out)
    assert r.returncode == 1
    assert "mailbox 'a//b': its name cannot be a Maildir folder" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == \
        ["export"]
    names = {p.name for p in out.iterdir()}
    assert {".\\2e\\2e.\\2e\\2e.escape", ".\\2e\\2e", ".\\7eroot"} <= names
    r = postern(srv, "export", user[0], "--mbox", tmp_path / "mb")
    assert r.returncode == 1
    assert {"\\2e\\2e.\\2e\\2e.escape", "\\2e\\2e", "\\7eroot"} <= \
        {p.name for p in (tmp_path / "mb").iterdir()}


def test_export_writes_only_new_files(srv, user, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep").write_text("mine")
    r = postern(srv, "export", user[0], "--maildir", busy)
    assert r.returncode == 1 and "not empty" in r.stderr
    assert (busy / "keep").read_text() == "mine"
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    r = postern(srv, "export", user[0], "--maildir", link)
    assert r.returncode == 1
    assert list(target.iterdir()) == []
    f = tmp_path / "exists.mbox"
    f.write_text("mine")
    r = postern(srv, "export", user[0], "--mbox", f, "--folder", "INBOX")
    assert r.returncode == 1 and f.read_text() == "mine"
    flink = tmp_path / "flink.mbox"
    flink.symlink_to(tmp_path / "nowhere")
    r = postern(srv, "export", user[0], "--mbox", flink, "--folder", "INBOX")
    assert r.returncode == 1 and not (tmp_path / "nowhere").exists()


def without_tuid(body):
    """mbsync marks messages with an X-TUID: header of its own."""
    return re.sub(rb"(?m)^X-TUID: [^\r\n]*\r\n", b"", body)


def test_maildir_written_by_mbsync_imports(srv, ip_cert, user, mail,
                                           tmp_path):
    """isync (mbsync) copies the account over IMAP into a Maildir++ of its
    own making; importing that into another account gives the same
    messages, flags and dates."""
    src = tmp_path / "Maildir"
    write_maildir(src, {k: MAILDIR[k] for k in ("", ".Work", ".Work.Sub")})
    ok(srv, "import", user[0], "--maildir", src)
    local = tmp_path / "mbsync"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        "IMAPAccount a\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\n"
        "SSLType IMAPS\nCertificateFile %s\n\n"
        "IMAPStore remote\nAccount a\n\n"
        "MaildirStore local\nInbox %s/\nSubFolders Maildir++\n\n"
        "Channel c\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\n"
        "Sync Pull\nSyncState *\nCopyArrivalDate yes\n"
        % (srv.ports["imaps"], user[0], user[1], ip_cert.cert_path,
           local))
    r = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (local / ".Work.Sub" / "cur").is_dir()
    other = new_user(srv)
    got = ok(srv, "import", other[0], "--maildir", local)
    assert got["imported"] == 5, got
    a, b = mail(user), mail(other)
    system = {"\\Seen", "\\Flagged", "\\Answered"}
    for folder in ("INBOX", "Work", "Work/Sub"):
        want = sorted((f & system, d, body) for f, d, body in
                      a.messages(folder))
        have = sorted((f & system, d, without_tuid(body)) for f, d, body in
                      b.messages(folder))
        assert have == want, folder


def test_progress_on_a_terminal_only(srv, user, tmp_path):
    import pty
    src = tmp_path / "p.mbox"
    src.write_bytes(CANONICAL)
    master, slave = pty.openpty()
    try:
        r = subprocess.run([postern_bin(), "import", user[0], "--mbox",
                            str(src), "-c", str(srv.admin_config)],
                           stdout=subprocess.PIPE, stderr=slave,
                           stdin=subprocess.DEVNULL, timeout=60)
        os.close(slave)
        slave = None
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert r.returncode == 0
    assert b"\rimported 3 messages, 0.0 MB" in seen, seen
    assert r.stdout.startswith(b"imported 3 messages (")
    # Not a terminal: no progress lines.
    other = new_user(srv)
    r = postern(srv, "import", other[0], "--mbox", src)
    assert r.returncode == 0 and r.stderr == ""
