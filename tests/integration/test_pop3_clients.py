"""Real POP3 clients against postern (issue #6): fetchmail and getmail6
download over TLS (the implicit-TLS listener, and for fetchmail also the
STLS listener) into local files, with and without keeping the messages
on the server. What they wrote is compared with what was delivered over
SMTP; what is left on the server is checked over POP3 (STAT) and in the
store itself.

getmail6 (6.18 in Debian 12) has no STLS: its plain POP3 retriever would
send USER before TLS, which postern refuses (RFC 2595 §2.1), so getmail
runs only on the implicit-TLS listener.

The clients come from Debian (fetchmail, getmail6; Makefile PACKAGES); a
test whose client is missing is skipped with the package to install, and
that skip fails the run (tests/skip-allowlist.txt).
"""

import email
import imaplib
import os
import poplib
import pwd
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from postern_harness import HOSTNAME, client_ctx, start_mail_server
from store_peek import StorePeek

ALICE = "alice@example.test"
ALICE_PW = "alice-pw-1"
# A guard against a client that hangs, not a time limit: getmail once took
# over 60 s on a machine with a load average near 100 (CI under ASan).
CLIENT_TIMEOUT = 300

# Bodies with what a POP3 server must dot-stuff (RFC 1939 §3): lines
# starting with ".", a line of a single ".", and "..". Also "From " at
# line start (no mbox escaping may happen on the way), a long line, and
# a last line without trailing text after it.
MESSAGES = [
    b"From: Sender <sender@other.test>\r\n"
    b"To: <alice@example.test>\r\n"
    b"Subject: first message\r\n"
    b"Message-ID: <m1@other.test>\r\n"
    b"\r\n"
    b"Hello Alice,\r\n"
    b".a line starting with a dot\r\n"
    b".\r\n"
    b"..two dots\r\n"
    b"From the start of a line\r\n"
    b"\r\n"
    b"end of one\r\n",
    b"From: Sender <sender@other.test>\r\n"
    b"To: <alice@example.test>\r\n"
    b"Subject: second message\r\n"
    b"Message-ID: <m2@other.test>\r\n"
    b"\r\n" + b"x" * 900 + b"\r\n" + b"\r\n".join(
        b"line %04d" % i for i in range(200)) + b"\r\n",
    b"From: Sender <sender@other.test>\r\n"
    b"To: <alice@example.test>\r\n"
    b"Subject: third message\r\n"
    b"Message-ID: <m3@other.test>\r\n"
    b"\r\n"
    b". \r\n"
    b"third body\r\n",
]


def need(program, package):
    path = shutil.which(program)
    if path is None:
        pytest.skip("%s not installed (Debian package %s; make deps)"
                    % (program, package))
    return path


@pytest.fixture
def mail(postern_factory, default_cert, tmp_path):
    return start_mail_server(
        postern_factory, tmp_path / "server", default_cert,
        [("smtp", "smtp", "none"), ("pop3s", "pop3", "implicit"),
         ("pop3", "pop3", "starttls")],
        users=[(ALICE, ALICE_PW)])


def deliver(srv, body, rcpt=ALICE):
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=15) as s:
        s.sendmail("sender@other.test", [rcpt], body)


def pop_stat(srv):
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"],
                        context=client_ctx(), timeout=15)
    # The client's QUIT may still be in UPDATE: the maildrop is held
    # until then (RFC 1939 §8), so retry the login for a moment.
    for _ in range(50):
        try:
            p.user(ALICE)
            p.pass_(ALICE_PW)
            break
        except poplib.error_proto as e:
            assert e.args[0].startswith(b"-ERR [IN-USE]"), e.args
            p.close()
            time.sleep(0.1)
            p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"],
                                context=client_ctx(), timeout=15)
    else:
        pytest.fail("maildrop still in use after the client quit")
    stat = p.stat()
    p.quit()
    return stat


def split_message(raw):
    """(header text, body) of a message with LF or CRLF line ends; the
    body in LF form."""
    raw = raw.replace(b"\r\n", b"\n")
    head, sep, body = raw.partition(b"\n\n")
    assert sep, "no header/body separator in %r" % raw[:300]
    return head, body


def check_downloaded(files, expected):
    """Every delivered message arrived exactly once, with its Subject,
    its own header fields, postern's trace fields and the exact body."""
    got = {}
    for f in files:
        raw = f.read_bytes()
        head, body = split_message(raw)
        parsed = email.message_from_bytes(head + b"\n\n")
        subject = parsed["Subject"]
        assert subject is not None, "no Subject in %s: %r" % (f, raw[:500])
        assert subject not in got, "%r downloaded twice" % subject
        got[subject] = (head, body)
    want = {}
    for msg in expected:
        head, body = split_message(msg)
        want[email.message_from_bytes(head + b"\n\n")["Subject"]] = \
            (head, body)
    assert sorted(got) == sorted(want)
    for subject, (head, body) in want.items():
        ghead, gbody = got[subject]
        assert gbody == body, "body of %r differs" % subject
        # The sender's own fields arrive unchanged.
        for line in head.split(b"\n"):
            assert line in ghead.split(b"\n"), (subject, line, ghead)
        # postern's Received field came along (RFC 5321 §4.4).
        assert b"by %s (postern) with " % HOSTNAME.encode() in ghead, ghead


FETCHMAIL_RECEIVED_RE = re.compile(
    rb"^Received: [^\n]*\n(?:[ \t][^\n]*\n)*", re.M)


def check_exact(files, stored, client):
    """Each file holds exactly one of the stored messages (as the store
    has it, trace fields included) in local LF form; fetchmail adds only
    its own Received field, which is taken out first."""
    got = []
    for f in files:
        raw = f.read_bytes()
        if client == "fetchmail":
            m = [m for m in FETCHMAIL_RECEIVED_RE.finditer(raw)
                 if b"(fetchmail-" in m.group(0)]
            assert len(m) == 1, raw[:600]
            raw = raw[:m[0].start()] + raw[m[0].end():]
        got.append(raw)
    want = [m.replace(b"\r\n", b"\n") for m in stored]
    assert sorted(got) == sorted(want)


# --- fetchmail -----------------------------------------------------------


class Fetchmail:
    """fetchmail with its own home, rc file and id file, delivering each
    message to a file of its own through a shell MDA."""

    def __init__(self, srv, tmp, listener, keep):
        self.bin = need("fetchmail", "fetchmail")
        self.home = Path(tmp) / "fetchmail"
        self.home.mkdir()
        self.out = self.home / "out"
        self.out.mkdir()
        mda = self.home / "mda.sh"
        # One file per message; a non-zero exit keeps it on the server.
        mda.write_text('#!/bin/sh\nset -e\nf=$(mktemp "%s/msg.XXXXXXXX")\n'
                       'cat > "$f"\n' % self.out)
        mda.chmod(0o700)
        port = srv.ports[listener]
        if srv.tls_kind(listener) == "implicit":
            tls = "ssl sslproto 'tls1.2+'"
        else:
            # sslproto without ssl: STLS is required (fetchmail(1)).
            tls = "sslproto 'tls1.2+'"
        rc = self.home / "fetchmailrc"
        rc.write_text(
            "set no syslog\n"
            "poll %s via 127.0.0.1 service %d protocol pop3 uidl\n"
            "  user '%s' there with password '%s' is '%s' here\n"
            "  %s sslcertck sslcertfile '%s' sslcommonname '%s'\n"
            "  %s\n"
            "  mda '/bin/sh %s'\n"
            % (HOSTNAME, port, ALICE, ALICE_PW, self.user(), tls,
               srv.cert.cert_path, HOSTNAME, "keep" if keep else "nokeep", mda))
        rc.chmod(0o600)
        self.rc = rc

    @staticmethod
    def user():
        return pwd.getpwuid(os.getuid()).pw_name

    def run(self):
        env = dict(os.environ, HOME=str(self.home),
                   FETCHMAILHOME=str(self.home), FETCHMAILUSER=self.user())
        r = subprocess.run(
            [self.bin, "-f", str(self.rc), "--nodetach", "--nosyslog",
             "-v", "--idfile", str(self.home / "fetchids"),
             "--pidfile", str(self.home / "pid")],
            env=env, capture_output=True, text=True,
            timeout=CLIENT_TIMEOUT)
        return r

    def files(self):
        return sorted(self.out.iterdir())


def fetchmail_ok(fm, want_rc=0):
    r = fm.run()
    # fetchmail(1): 0 = mail was retrieved, 1 = there was none.
    assert r.returncode == want_rc, "fetchmail exited %d:\n%s%s" % (
        r.returncode, r.stdout, r.stderr)
    return r


@pytest.mark.parametrize("listener", ["pop3s", "pop3"])
def test_fetchmail_downloads_and_deletes(mail, tmp_path, listener):
    for m in MESSAGES:
        deliver(mail, m)
    stored = StorePeek(mail.mail_data).messages(ALICE)
    fm = Fetchmail(mail, tmp_path, listener, keep=False)
    r = fetchmail_ok(fm)
    if listener == "pop3":
        # Login only works after STLS here; fetchmail says it did it.
        assert "STLS" in r.stdout + r.stderr
    check_downloaded(fm.files(), MESSAGES)
    check_exact(fm.files(), stored, "fetchmail")
    assert pop_stat(mail) == (0, 0)
    assert StorePeek(mail.mail_data).count(ALICE) == 0
    # Nothing left: a second run finds no mail.
    fetchmail_ok(fm, want_rc=1)
    assert len(fm.files()) == len(MESSAGES)


@pytest.mark.parametrize("listener", ["pop3s", "pop3"])
def test_fetchmail_keep_fetches_only_new_by_uidl(mail, tmp_path, listener):
    for m in MESSAGES[:2]:
        deliver(mail, m)
    stored = StorePeek(mail.mail_data).messages(ALICE)
    fm = Fetchmail(mail, tmp_path, listener, keep=True)
    fetchmail_ok(fm)
    check_downloaded(fm.files(), MESSAGES[:2])
    check_exact(fm.files(), stored, "fetchmail")
    # Kept: still there, unchanged.
    assert pop_stat(mail)[0] == 2
    assert StorePeek(mail.mail_data).messages(ALICE) == stored
    # The UIDs are remembered: nothing new.
    fetchmail_ok(fm, want_rc=1)
    assert len(fm.files()) == 2
    # One new message: only that one comes.
    deliver(mail, MESSAGES[2])
    before = set(fm.files())
    fetchmail_ok(fm)
    new = [f for f in fm.files() if f not in before]
    check_downloaded(new, MESSAGES[2:])
    check_exact(new, StorePeek(mail.mail_data).messages(ALICE)[2:],
                "fetchmail")
    assert pop_stat(mail)[0] == 3


# --- getmail6 ------------------------------------------------------------


class Getmail:
    """getmail with its own getmail directory and a Maildir
    destination."""

    cleanup = None

    def __init__(self, srv, tmp, keep):
        self.bin = need("getmail", "getmail6")
        self.dir = Path(tmp) / "getmail"
        self.dir.mkdir()
        self.maildir = self.dir / "Maildir"
        owner = ""
        if os.geteuid() == 0:
            # getmail refuses to deliver as root; it switches to `user`,
            # who needs a Maildir it can reach (pytest's directories are
            # private to root).
            nobody = pwd.getpwnam("nobody")
            self.maildir = Path(tempfile.mkdtemp(prefix="postern-getmail-"))
            self.cleanup = self.maildir
            owner = "user = nobody\n"
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True)
        if owner:
            for p in (self.maildir, *self.maildir.iterdir()):
                os.chown(p, nobody.pw_uid, nobody.pw_gid)
        rc = self.dir / "getmailrc"
        rc.write_text(
            "[retriever]\n"
            "type = SimplePOP3SSLRetriever\n"
            "server = 127.0.0.1\n"
            "port = %d\n"
            "username = %s\n"
            "password = %s\n"
            "ca_certs = %s\n"
            "ssl_cert_hostname = %s\n"
            "\n"
            "[destination]\n"
            "type = Maildir\n"
            "path = %s/\n"
            "%s"
            "\n"
            "[options]\n"
            "verbose = 2\n"
            "read_all = false\n"
            "delete = %s\n"
            "delivered_to = false\n"
            "received = false\n"
            % (srv.ports["pop3s"], ALICE, ALICE_PW, srv.cert.cert_path,
               HOSTNAME, self.maildir, owner, "false" if keep else "true"))
        rc.chmod(0o600)
        self.rc = rc

    def run(self):
        r = subprocess.run(
            [self.bin, "--getmaildir", str(self.dir), "--rcfile",
             str(self.rc)],
            env=dict(os.environ, HOME=str(self.dir)),
            capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
        assert r.returncode == 0, "getmail exited %d:\n%s%s" % (
            r.returncode, r.stdout, r.stderr)
        return r

    def files(self):
        return sorted(self.maildir.glob("new/*")) + \
            sorted(self.maildir.glob("cur/*"))


@pytest.fixture
def getmail(mail, tmp_path):
    """make(keep) -> a Getmail for the server of the test."""
    made = []

    def make(keep):
        made.append(Getmail(mail, tmp_path, keep))
        return made[-1]
    yield make
    for g in made:
        if g.cleanup is not None:
            shutil.rmtree(g.cleanup, ignore_errors=True)


def test_getmail_downloads_and_deletes(mail, getmail):
    for m in MESSAGES:
        deliver(mail, m)
    stored = StorePeek(mail.mail_data).messages(ALICE)
    gm = getmail(keep=False)
    r = gm.run()
    assert "3 messages (" in r.stdout, r.stdout
    check_downloaded(gm.files(), MESSAGES)
    check_exact(gm.files(), stored, "getmail")
    assert pop_stat(mail) == (0, 0)
    assert StorePeek(mail.mail_data).count(ALICE) == 0


def test_getmail_keep_fetches_only_new_by_uidl(mail, getmail):
    for m in MESSAGES[:2]:
        deliver(mail, m)
    stored = StorePeek(mail.mail_data).messages(ALICE)
    gm = getmail(keep=True)
    gm.run()
    check_downloaded(gm.files(), MESSAGES[:2])
    check_exact(gm.files(), stored, "getmail")
    assert pop_stat(mail)[0] == 2
    assert StorePeek(mail.mail_data).messages(ALICE) == stored
    r = gm.run()
    assert "0 messages (" in r.stdout, r.stdout
    assert len(gm.files()) == 2
    deliver(mail, MESSAGES[2])
    before = set(gm.files())
    r = gm.run()
    assert "1 messages (" in r.stdout, r.stdout
    new = [f for f in gm.files() if f not in before]
    check_downloaded(new, MESSAGES[2:])
    check_exact(new, StorePeek(mail.mail_data).messages(ALICE)[2:],
                "getmail")
    assert pop_stat(mail)[0] == 3


# --- pipelining (RFC 2449 §6.6), raw bytes -----------------------------------


STATUS_RE = re.compile(rb"^(\+OK|-ERR)(?: [^\r\n]*)?\r\n$")


def read_status(conn):
    line = conn.readline(15)
    assert STATUS_RE.match(line), "malformed status line %r" % line
    return line


def read_multi_raw(conn):
    """The lines of a multi-line reply up to and including the final
    ".", as sent (still dot-stuffed)."""
    out = b""
    while True:
        line = conn.readline(15)
        assert line.endswith(b"\r\n"), line
        out += line
        if line == b".\r\n":
            return out


def dot_stuff(data):
    return re.sub(rb"(?m)^\.", b"..", data)


def pop_raw_login(srv):
    conn = srv.connect("pop3s", tls_ctx=client_ctx(), timeout=15)
    assert read_status(conn).startswith(b"+OK")
    conn.send(b"USER %s\r\nPASS %s\r\n" % (ALICE.encode(), ALICE_PW.encode()))
    assert read_status(conn).startswith(b"+OK")
    assert read_status(conn).startswith(b"+OK Logged in")
    return conn


def test_pipelined_transaction_commands_answered_in_order(mail):
    for m in MESSAGES[:2]:
        deliver(mail, m)
    stored = StorePeek(mail.mail_data).messages(ALICE)
    p = poplib.POP3_SSL("127.0.0.1", mail.ports["pop3s"],
                        context=client_ctx(), timeout=15)
    p.user(ALICE)
    p.pass_(ALICE_PW)
    uidl = p.uidl()[1]
    p.quit()
    assert len(uidl) == 2
    for line in uidl:
        # RFC 1939 §7: 1 to 70 characters in 0x21..0x7E.
        assert re.fullmatch(rb"\d+ [\x21-\x7e]{1,70}", line), line
    header = stored[0][:stored[0].index(b"\r\n\r\n") + 4]
    conn = pop_raw_login(mail)
    conn.send(b"STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 0\r\nNOOP\r\n"
              b"LIST 2\r\nUIDL 1\r\nTOP 2 2\r\nQUIT\r\n")
    assert read_status(conn) == b"+OK 2 %d\r\n" % sum(map(len, stored))
    assert read_status(conn).startswith(b"+OK")
    assert read_multi_raw(conn) == b"1 %d\r\n2 %d\r\n.\r\n" % (
        len(stored[0]), len(stored[1]))
    assert read_status(conn).startswith(b"+OK")
    assert read_multi_raw(conn) == b"\r\n".join(uidl) + b"\r\n.\r\n"
    assert read_status(conn).startswith(b"+OK")
    assert read_multi_raw(conn) == dot_stuff(stored[0]) + b".\r\n"
    assert read_status(conn).startswith(b"+OK")
    assert read_multi_raw(conn) == dot_stuff(header) + b".\r\n"
    assert read_status(conn).startswith(b"+OK")
    assert read_status(conn) == b"+OK 2 %d\r\n" % len(stored[1])
    assert read_status(conn) == b"+OK " + uidl[0] + b"\r\n"
    assert read_status(conn).startswith(b"+OK")
    body2 = stored[1][stored[1].index(b"\r\n\r\n") + 4:]
    top2 = stored[1][:stored[1].index(b"\r\n\r\n") + 4] + \
        b"".join(x + b"\r\n" for x in body2.split(b"\r\n")[:2])
    assert read_multi_raw(conn) == dot_stuff(top2) + b".\r\n"
    assert read_status(conn).startswith(b"+OK postern signing off")
    # Nothing more, and the connection ends.
    assert conn.wait_closed(timeout=15) == b""


def test_pipelined_errors_and_deletions_in_one_write(mail):
    for m in MESSAGES[:2]:
        deliver(mail, m)
    stored = StorePeek(mail.mail_data).messages(ALICE)
    conn = pop_raw_login(mail)
    conn.send(b"DELE 1\r\nRETR 1\r\nLIST 1\r\nSTAT\r\nLIST\r\nRSET\r\n"
              b"STAT\r\nLIST 9\r\nTOP 2\r\nRETR 0\r\nBOGUS\r\nDELE 2\r\n"
              b"NOOP\r\nQUIT\r\n")
    assert read_status(conn).startswith(b"+OK")          # DELE 1
    assert read_status(conn).startswith(b"-ERR")         # RETR 1: deleted
    assert read_status(conn).startswith(b"-ERR")         # LIST 1: deleted
    assert read_status(conn) == b"+OK 1 %d\r\n" % len(stored[1])
    assert read_status(conn).startswith(b"+OK")          # LIST
    # RFC 1939 §5: deleted messages are not listed.
    assert read_multi_raw(conn) == b"2 %d\r\n.\r\n" % len(stored[1])
    assert read_status(conn).startswith(b"+OK")          # RSET
    assert read_status(conn) == b"+OK 2 %d\r\n" % sum(map(len, stored))
    assert read_status(conn).startswith(b"-ERR")         # LIST 9
    assert read_status(conn).startswith(b"-ERR")         # TOP 2: no n
    assert read_status(conn).startswith(b"-ERR")         # RETR 0
    assert read_status(conn).startswith(b"-ERR")         # BOGUS
    assert read_status(conn).startswith(b"+OK")          # DELE 2
    assert read_status(conn).startswith(b"+OK")          # NOOP
    assert read_status(conn).startswith(b"+OK")          # QUIT
    assert conn.wait_closed(timeout=15) == b""
    # Only message 2 went, at QUIT.
    assert StorePeek(mail.mail_data).messages(ALICE) == stored[:1]


def test_commands_pipelined_after_stls_are_not_run(mail):
    """RFC 2595 §4 and the STARTTLS command injection problem: bytes
    sent in plaintext after STLS must be thrown away, not run inside
    TLS."""
    conn = mail.connect("pop3", timeout=15)
    assert read_status(conn).startswith(b"+OK")
    conn.send(b"STLS\r\nCAPA\r\nUSER %s\r\n" % ALICE.encode())
    assert read_status(conn).startswith(b"+OK Begin TLS")
    conn.starttls(client_ctx())
    conn.send(b"NOOP\r\n")
    # NOOP is not allowed before login: the first answer must be its
    # -ERR, not a capability list or a +OK for the injected USER.
    line = read_status(conn)
    assert line.startswith(b"-ERR"), line
    conn.send(b"PASS %s\r\n" % ALICE_PW.encode())
    line = read_status(conn)
    assert line.startswith(b"-ERR"), \
        "PASS accepted: the plaintext USER counted after TLS: %r" % line
    conn.close()


def test_pipelined_login_retr_quit_over_stls(mail):
    deliver(mail, MESSAGES[0])
    stored = StorePeek(mail.mail_data).messages(ALICE)
    conn = mail.connect("pop3", timeout=15)
    assert read_status(conn).startswith(b"+OK")
    conn.send(b"STLS\r\n")
    assert read_status(conn).startswith(b"+OK Begin TLS")
    conn.starttls(client_ctx())
    conn.send(b"CAPA\r\nUSER %s\r\nPASS %s\r\nRETR 1\r\nQUIT\r\n"
              % (ALICE.encode(), ALICE_PW.encode()))
    assert read_status(conn).startswith(b"+OK")
    caps = read_multi_raw(conn)
    assert b"PIPELINING\r\n" in caps and b"STLS" not in caps
    assert read_status(conn).startswith(b"+OK")
    assert read_status(conn).startswith(b"+OK Logged in")
    assert read_status(conn) == b"+OK %d octets\r\n" % len(stored[0])
    assert read_multi_raw(conn) == dot_stuff(stored[0]) + b".\r\n"
    assert read_status(conn).startswith(b"+OK postern signing off")
    conn.close()


# --- IMAP and POP3 on the same mailbox -----------------------------------------


@pytest.fixture
def mixed(postern_factory, default_cert, tmp_path):
    srv = start_mail_server(
        postern_factory, tmp_path / "server", default_cert,
        [("smtp", "smtp", "none"), ("pop3s", "pop3", "implicit"),
         ("imaps", "imap", "implicit")],
        users=[(ALICE, ALICE_PW)])
    for i in (1, 2, 3):
        deliver(srv, b"From: <sender@other.test>\r\nSubject: mixed %d\r\n"
                b"\r\nbody of message %d\r\n.dot line %d\r\n" % (i, i, i))
    return srv


def imap_ok(call, what):
    """Runs an imaplib call that must succeed; returns its data."""
    typ, data = call()
    assert typ == "OK", (what, typ, data)
    return data


def imap_login(srv):
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                          ssl_context=client_ctx(), timeout=15)
    imap_ok(lambda: m.login(ALICE, ALICE_PW), "LOGIN")
    imap_ok(lambda: m.select("INBOX"), "SELECT")
    return m


def imap_subjects(m):
    """Subject numbers of INBOX's messages in order, found by SEARCH (one
    SEARCH per known subject, as FETCH may not be there)."""
    count = int(imap_ok(lambda: m.select("INBOX"), "SELECT")[0])
    found = {}
    for i in (1, 2, 3):
        data = imap_ok(lambda: m.search(None, "SUBJECT",
                                             '"mixed %d"' % i), "SEARCH")
        for n in data[0].split():
            found[int(n)] = i
    assert sorted(found) == list(range(1, count + 1)), (found, count)
    return [found[n] for n in sorted(found)]


def pop_session(srv):
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"],
                        context=client_ctx(), timeout=15)
    p.user(ALICE)
    p.pass_(ALICE_PW)
    return p


def check_retr_is_right_or_err(p, n, stored):
    """RETR n in a session that numbered its messages before an IMAP
    expunge: -ERR, or exactly message n as it was at login; never
    another message."""
    try:
        resp, lines, _ = p.retr(n)
    except poplib.error_proto as e:
        assert e.args[0].startswith(b"-ERR"), e.args
        return False
    assert b"\r\n".join(lines) + b"\r\n" == stored, \
        "RETR %d gave another message: %r" % (n, lines[:8])
    return True


def test_imap_expunge_while_pop3_session_is_open(mixed):
    stored = StorePeek(mixed.mail_data).messages(ALICE)
    p = pop_session(mixed)
    uidl = p.uidl()[1]
    assert p.stat()[0] == 3
    m = imap_login(mixed)
    assert imap_subjects(m) == [1, 2, 3]
    imap_ok(lambda: m.store("2", "+FLAGS", "(\\Deleted)"), "STORE")
    # imaplib hands back the untagged EXPUNGE responses.
    assert imap_ok(lambda: m.expunge(), "EXPUNGE") == [b"2"]
    assert imap_subjects(m) == [1, 3]
    # POP3 numbers stay as they were at login (RFC 1939 §5): message 2
    # is the expunged one, message 3 is still "mixed 3".
    check_retr_is_right_or_err(p, 2, stored[1])
    try:
        p.top(2, 0)
    except poplib.error_proto as e:
        assert e.args[0].startswith(b"-ERR"), e.args
    assert check_retr_is_right_or_err(p, 3, stored[2])
    assert check_retr_is_right_or_err(p, 1, stored[0])
    assert p.quit().startswith(b"+OK")
    p = pop_session(mixed)
    assert p.stat() == (2, len(stored[0]) + len(stored[2]))
    # The survivors keep their unique ids (RFC 1939 §7).
    assert [x.split()[1] for x in p.uidl()[1]] == \
        [uidl[0].split()[1], uidl[2].split()[1]]
    assert check_retr_is_right_or_err(p, 2, stored[2])
    p.quit()
    m.logout()


def test_imap_deleted_flag_hides_message_from_new_pop3_session(mixed):
    stored = StorePeek(mixed.mail_data).messages(ALICE)
    m = imap_login(mixed)
    imap_ok(lambda: m.store("1", "+FLAGS", "(\\Deleted)"), "STORE")
    p = pop_session(mixed)
    # Marked \Deleted but not expunged: on its way out, not offered.
    assert p.stat() == (2, len(stored[1]) + len(stored[2]))
    assert check_retr_is_right_or_err(p, 1, stored[1])
    p.quit()
    m.logout()


def test_imap_move_while_pop3_session_is_open(mixed):
    stored = StorePeek(mixed.mail_data).messages(ALICE)
    p = pop_session(mixed)
    m = imap_login(mixed)
    imap_ok(lambda: m.create("Moved"), "CREATE")
    imap_ok(lambda: m.uid("MOVE", "2", "Moved"), "MOVE")
    assert m.response("EXPUNGE")[1] == [b"2"]
    check_retr_is_right_or_err(p, 2, stored[1])
    assert check_retr_is_right_or_err(p, 3, stored[2])
    # Deleting the one already moved away: the client's wish holds, and
    # the copy in the other mailbox must not be touched.
    try:
        p.dele(2)
    except poplib.error_proto as e:
        assert e.args[0].startswith(b"-ERR"), e.args
    assert p.quit().startswith(b"+OK")
    assert StorePeek(mixed.mail_data).messages(ALICE, "Moved") == \
        [stored[1]]
    assert StorePeek(mixed.mail_data).messages(ALICE) == \
        [stored[0], stored[2]]
    m.logout()


def test_pop3_dele_quit_is_seen_by_imap(mixed):
    stored = StorePeek(mixed.mail_data).messages(ALICE)
    m = imap_login(mixed)
    assert imap_subjects(m) == [1, 2, 3]
    p = pop_session(mixed)
    assert p.dele(2).startswith(b"+OK")
    # Not before QUIT (RFC 1939 §6).
    m.noop()
    assert imap_subjects(m) == [1, 2, 3]
    assert p.quit().startswith(b"+OK postern signing off (1 messages")
    # The selected IMAP session hears of it (RFC 9051 §7.5.1)...
    imap_ok(lambda: m.noop(), "NOOP")
    assert m.response("EXPUNGE")[1] == [b"2"]
    # ...and a new one sees it gone.
    m2 = imap_login(mixed)
    assert imap_subjects(m2) == [1, 3]
    data = imap_ok(lambda: m2.status("INBOX", "(MESSAGES)"), "STATUS")
    assert b"(MESSAGES 2)" in data[0], data
    m2.logout()
    m.logout()
    assert StorePeek(mixed.mail_data).messages(ALICE) == \
        [stored[0], stored[2]]
