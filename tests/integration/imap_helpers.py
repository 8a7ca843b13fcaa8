"""Helpers for the IMAP integration tests (test_imap_*.py): a small IMAP
client that keeps every byte the server sends, a parser for response
data (atoms, quoted strings, literals, lists), and servers with accounts.

Only the standard library; the connections are postern_harness.Conn.
Replies are kept as bytes so that tests can check the wire exactly.
"""

import base64
import itertools
import re
import smtplib
import time
from dataclasses import dataclass, field

from postern_harness import (HOSTNAME, ConnectionClosed, Conn, add_user,
                             admin_ok, client_ctx, connect_from,
                             start_mail_server)
from postern_harness import imap_caps as _imap_caps

DOMAIN = "example.test"

# Listeners of every IMAP test server: SMTP for deliveries, IMAP with
# STARTTLS and with implicit TLS.
IMAP_LISTENERS = [("smtp", "smtp", "none"),
                  ("imap", "imap", "starttls"),
                  ("imaps", "imap", "implicit")]

# A reply to one command may take a while on a loaded machine (password
# hashing, group commit); this bounds every wait, it is no assertion.
REPLY_TIMEOUT = 20.0

_user_counter = itertools.count(1)

LITERAL_END_RE = re.compile(rb"~?\{(\d+)\}\r\n$")
TAGGED_RE = re.compile(rb"^(\S+) (OK|NO|BAD)(?: \[([^\]]*)\])?(?: (.*))?\r\n$",
                       re.S | re.I)


def imap_caps(text):
    """Capability atoms of a CAPABILITY response or response code, as
    upper-case str."""
    return [c.decode() for c in _imap_caps(text)]


# --- response data ----------------------------------------------------------


class Atom(bytes):
    """An atom (or number) in response data, as opposed to a string."""


def parse_data(data):
    """Parses IMAP response data (RFC 9051 §9) into Python values: lists
    for parenthesized lists, Atom for atoms and numbers, bytes for quoted
    strings and literals, None for NIL. Brackets stay inside atoms
    ("BODY[]" is one atom; "[...]" response codes are not data). Returns
    the list of top-level values."""
    pos = 0
    n = len(data)
    stack = [[]]
    while pos < n:
        c = data[pos:pos + 1]
        if c == b" ":
            pos += 1
        elif c == b"(":
            stack.append([])
            pos += 1
        elif c == b")":
            assert len(stack) > 1, "unbalanced ) in %r" % data
            done = stack.pop()
            stack[-1].append(done)
            pos += 1
        elif c == b'"':
            out = bytearray()
            pos += 1
            while True:
                assert pos < n, "unterminated quoted string in %r" % data
                ch = data[pos:pos + 1]
                if ch == b"\\":
                    out += data[pos + 1:pos + 2]
                    pos += 2
                elif ch == b'"':
                    pos += 1
                    break
                else:
                    out += ch
                    pos += 1
            stack[-1].append(bytes(out))
        elif c in (b"{", b"~") and re.match(rb"~?\{\d+\}\r\n",
                                             data[pos:pos + 24]):
            m = re.match(rb"~?\{(\d+)\}\r\n", data[pos:])
            size = int(m.group(1))
            start = pos + m.end()
            stack[-1].append(data[start:start + size])
            assert start + size <= n, "short literal in %r" % data
            pos = start + size
        elif c in (b"\r", b"\n"):
            pos += 1
        else:
            m = re.match(rb"[^ ()\r\n\[]*(\[[^\]]*\])?[^ ()\r\n]*",
                         data[pos:])
            tok = m.group(0)
            assert tok, "cannot parse %r at %d" % (data, pos)
            pos += len(tok)
            stack[-1].append(None if tok.upper() == b"NIL" else Atom(tok))
    assert len(stack) == 1, "unbalanced ( in %r" % data
    return stack[0]


def mutf7_encode(text):
    """Modified UTF-7 of RFC 3501 §5.1.3 (RFC 9051 §5.1.3 for rev1
    clients)."""
    out, run = [], []

    def flush():
        if run:
            b = base64.b64encode("".join(run).encode("utf-16-be"))
            out.append("&" + b.decode().rstrip("=").replace("/", ",") + "-")
            run.clear()
    for ch in text:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(text):
    out, i = [], 0
    while i < len(text):
        if text[i] != "&":
            out.append(text[i])
            i += 1
            continue
        j = text.index("-", i)
        if j == i + 1:
            out.append("&")
        else:
            b64 = text[i + 1:j].replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode("utf-16-be"))
        i = j + 1
    return "".join(out)


@dataclass
class ListEntry:
    attrs: set            # lower-cased attribute names, e.g. "\\haschildren"
    delim: bytes          # b"/" or None
    name: bytes           # the mailbox name as sent (quoted/literal undone)
    extra: list = field(default_factory=list)   # extended data (RFC 5258)
    raw: bytes = b""

    def has(self, attr):
        return attr.lower() in self.attrs


def parse_list(line, kind=b"LIST"):
    """One '* LIST (attrs) delim name [ext]' (or LSUB) response."""
    prefix = b"* " + kind + b" "
    assert line.upper().startswith(prefix), line
    vals = parse_data(line[len(prefix):])
    assert len(vals) >= 3 and isinstance(vals[0], list), \
        "malformed %s response %r" % (kind.decode(), line)
    return ListEntry({bytes(a).lower().decode() for a in vals[0]},
                     vals[1], bytes(vals[2]), vals[3:], line)


def parse_status(line):
    """'* STATUS name (K V ...)' -> (name bytes, {K upper str: int})."""
    assert line.upper().startswith(b"* STATUS "), line
    vals = parse_data(line[len(b"* STATUS "):])
    assert len(vals) == 2 and isinstance(vals[1], list), line
    items = vals[1]
    assert len(items) % 2 == 0, line
    return bytes(vals[0]), {bytes(items[i]).upper().decode():
                            int(items[i + 1])
                            for i in range(0, len(items), 2)}


def parse_fetch(line):
    """'* N FETCH (K V ...)' -> (N, {K upper str: value})."""
    m = re.match(rb"^\* (\d+) FETCH (.*)$", line, re.S | re.I)
    assert m, line
    vals = parse_data(m.group(2))
    assert len(vals) == 1 and isinstance(vals[0], list), line
    items = vals[0]
    assert len(items) % 2 == 0, line
    return int(m.group(1)), {bytes(items[i]).upper().decode(): items[i + 1]
                             for i in range(0, len(items), 2)}


def flag_set(value):
    """A FLAGS value (list of atoms) as a set of str."""
    return {bytes(f).decode() for f in value}


def untagged_numbers(lines, word):
    """The N of every '* N WORD' among lines, in order."""
    out = []
    for l in lines:
        m = re.match(rb"^\* (\d+) " + word + rb"\r\n$", l, re.I)
        if m:
            out.append(int(m.group(1)))
    return out


# --- replies ----------------------------------------------------------------


@dataclass
class Reply:
    tag: bytes
    untagged: list        # logical lines (literals inlined), CRLF kept
    tagged: bytes         # the tagged line
    status: str           # "OK", "NO" or "BAD"
    code: str             # response code text without brackets, or ""
    text: bytes

    @property
    def code_atom(self):
        return self.code.split(" ")[0].upper() if self.code else ""

    def lines(self, word):
        """Untagged lines '* WORD ...' (word like b'LIST')."""
        w = word.upper() + b" "
        return [l for l in self.untagged if l[2:2 + len(w)].upper() == w]


class ImapError(AssertionError):
    pass


class Imap:
    """One IMAP connection. Commands get tags a1, a2, ...; every byte the
    server sends is kept in .transcript."""

    def __init__(self, conn, greeting):
        self.conn = conn
        self.greeting = greeting
        self.transcript = [greeting]
        self.tags = (b"a%d" % i for i in itertools.count(1))

    # -- opening --

    @classmethod
    def open(cls, srv, listener="imaps", source=None, timeout=REPLY_TIMEOUT):
        """Connects to listener (TLS at once on an implicit one) and reads
        the greeting."""
        implicit = srv.tls_kind(listener) == "implicit"
        conn = connect_from(srv.ports[listener], source,
                            tls_ctx=client_ctx(srv.cert.cert_path)
                            if implicit else None,
                            server_hostname=HOSTNAME if implicit else None,
                            timeout=timeout)
        try:
            greeting = conn.readline()
        except BaseException:
            conn.close()
            raise
        return cls(conn, greeting)

    def starttls(self, srv):
        tag = next(self.tags)
        self.send(tag + b" STARTTLS\r\n")
        r = self.read_reply(tag)
        assert r.status == "OK" and r.untagged == [], r
        self.conn.starttls(client_ctx(srv.cert.cert_path),
                           server_hostname=HOSTNAME)
        return r

    # -- raw I/O --

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.conn.send(data)

    def read_exact(self, n, timeout=REPLY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self.conn.buf) < n:
            if not self.conn._fill(deadline):
                raise ConnectionClosed("closed inside a literal; have %r"
                                       % self.conn.buf)
        data, self.conn.buf = self.conn.buf[:n], self.conn.buf[n:]
        return data

    def read_line(self, timeout=REPLY_TIMEOUT):
        """One logical response line: literals announced at the end of a
        line are read and the line goes on after them."""
        line = self.conn.readline(timeout)
        while True:
            m = LITERAL_END_RE.search(line)
            if not m:
                break
            line += self.read_exact(int(m.group(1)), timeout)
            line += self.conn.readline(timeout)
        self.transcript.append(line)
        return line

    def read_reply(self, tag, timeout=REPLY_TIMEOUT):
        """Lines up to the tagged reply of tag."""
        if isinstance(tag, str):
            tag = tag.encode()
        untagged = []
        while True:
            line = self.read_line(timeout)
            if line.startswith(tag + b" "):
                m = TAGGED_RE.match(line)
                assert m, "malformed tagged reply %r" % line
                return Reply(tag, untagged, line, m.group(2).upper().decode(),
                             (m.group(3) or b"").decode("utf-8", "replace"),
                             m.group(4) or b"")
            untagged.append(line)

    # -- commands --

    def command(self, cmd, timeout=REPLY_TIMEOUT):
        """Sends 'TAG cmd' (no literals) and returns the Reply."""
        if isinstance(cmd, str):
            cmd = cmd.encode()
        tag = next(self.tags)
        self.send(tag + b" " + cmd + b"\r\n")
        return self.read_reply(tag, timeout)

    def ok(self, cmd, timeout=REPLY_TIMEOUT):
        """command() that must end in a tagged OK; returns the Reply."""
        r = self.command(cmd, timeout)
        if r.status != "OK":
            raise ImapError("%r: expected OK, got %r after %r"
                            % (cmd, r.tagged, r.untagged))
        return r

    def login(self, user, password):
        return self.ok("LOGIN %s %s" % (quote(user), quote(password)))

    def select(self, mailbox="INBOX", examine=False, extra=""):
        r = self.ok("%s %s%s" % ("EXAMINE" if examine else "SELECT",
                                 quote(mailbox), extra))
        return SelectInfo.parse(r)

    def noop(self):
        return self.ok("NOOP")

    def logout(self):
        try:
            r = self.command("LOGOUT")
        finally:
            self.conn.close()
        return r

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def quote(s):
    """An IMAP quoted string for ASCII text without CR/LF."""
    if isinstance(s, bytes):
        s = s.decode()
    assert "\r" not in s and "\n" not in s, s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class SelectInfo:
    reply: Reply
    exists: int = None
    flags: set = None
    permanentflags: set = None
    uidvalidity: int = None
    uidnext: int = None
    highestmodseq: int = None

    @classmethod
    def parse(cls, reply):
        info = cls(reply)
        for l in reply.untagged:
            m = re.match(rb"^\* (\d+) EXISTS\r\n$", l, re.I)
            if m:
                info.exists = int(m.group(1))
            m = re.match(rb"^\* FLAGS \((.*)\)\r\n$", l, re.I)
            if m:
                info.flags = set(m.group(1).decode().split())
            m = re.match(rb"^\* OK \[PERMANENTFLAGS \((.*)\)\]", l, re.I)
            if m:
                info.permanentflags = set(m.group(1).decode().split())
            m = re.match(rb"^\* OK \[UIDVALIDITY (\d+)\]", l, re.I)
            if m:
                info.uidvalidity = int(m.group(1))
            m = re.match(rb"^\* OK \[UIDNEXT (\d+)\]", l, re.I)
            if m:
                info.uidnext = int(m.group(1))
            m = re.match(rb"^\* OK \[HIGHESTMODSEQ (\d+)\]", l, re.I)
            if m:
                info.highestmodseq = int(m.group(1))
        return info


# --- servers, accounts, mail ---------------------------------------------


def start_imap_server(factory, directory, cert, users=(), **config):
    """A server with IMAP_LISTENERS and the given users, failed logins
    effectively unlimited unless auth= says otherwise."""
    config.setdefault("auth", {"lockout_failures": 1000})
    return start_mail_server(factory, directory, cert, IMAP_LISTENERS,
                             users=users, **config)


def new_user(srv, *keys, prefix="u"):
    """Adds a fresh account to a running server; returns (address,
    password)."""
    n = next(_user_counter)
    address = "%s%d-%d@%s" % (prefix, n, int(time.time() * 1000) % 100000,
                              DOMAIN)
    password = "pw-%s-Secret-%d" % (prefix, n)
    add_user(srv.admin_config, address, password, *keys)
    return address, password


def login(srv, user, password, listener="imaps", source=None):
    c = Imap.open(srv, listener, source=source)
    assert c.greeting.startswith(b"* OK "), c.greeting
    c.login(user, password)
    return c


def deliver(srv, rcpt, subject="test", body="hello\r\n", extra_headers=""):
    """Delivers one message by SMTP to the plain SMTP listener; returns the
    bytes the client sent (after our trace fields the server adds)."""
    msg = ("From: sender@other.test\r\nTo: %s\r\nSubject: %s\r\n%s\r\n%s"
           % (rcpt, subject, extra_headers, body)).encode()
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=30) as s:
        s.sendmail("sender@other.test", [rcpt], msg)
    return msg


def restart(srv):
    """Stops srv (SIGTERM, must exit 0) and starts it again on the same
    configuration and data; the ports are new."""
    from postern_harness import LISTENER_READY_RE, READY_TIMEOUT
    rc = srv.stop()
    assert rc == 0, "postern exited with %s; stderr:\n%s" % (
        rc, srv.log_text())
    mark = srv.log_mark()
    srv.term_sent = False
    srv.returncode = None
    srv.start(wait=False)
    srv.wait_log(r"event=server\.ready", timeout=READY_TIMEOUT, since=mark)
    for line in srv.log_lines()[mark:]:
        m = LISTENER_READY_RE.search(line)
        if m:
            srv.ports[m.group(1)] = int(m.group(2))
    return srv


def start_again(srv):
    """Starts srv again after srv.stop() (restart() without its stop), for
    tests that change the data directory while the server is down."""
    from postern_harness import LISTENER_READY_RE, READY_TIMEOUT
    srv.term_sent = False
    srv.returncode = None
    mark = srv.log_mark()
    srv.start(wait=False)
    srv.wait_log(r"event=server\.ready", timeout=READY_TIMEOUT, since=mark)
    for line in srv.log_lines()[mark:]:
        m = LISTENER_READY_RE.search(line)
        if m:
            srv.ports[m.group(1)] = int(m.group(2))
    return srv


def wait_for(predicate, timeout=15.0, interval=0.05, what="condition"):
    """Polls predicate() until it returns a true value (returned);
    raises AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


__all__ = ["Atom", "Conn", "DOMAIN", "IMAP_LISTENERS", "Imap", "ImapError",
           "ListEntry", "Reply", "SelectInfo", "admin_ok", "deliver",
           "flag_set", "imap_caps", "login", "mutf7_decode", "mutf7_encode",
           "new_user", "parse_data", "parse_fetch", "parse_list",
           "parse_status", "quote", "restart", "start_imap_server",
           "untagged_numbers",
           "wait_for"]
