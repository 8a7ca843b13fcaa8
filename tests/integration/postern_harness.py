"""Helpers for the integration tests: certificates, a running postern,
and line-based talk over plain and TLS sockets.

Only the standard library is used (plus pytest in conftest.py). Fixtures
live in conftest.py; test modules import the helpers from here.
"""

import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Every wait in these tests is bounded; nothing waits forever.
READY_TIMEOUT = 20.0
LINE_TIMEOUT = 5.0
STOP_TIMEOUT = 15.0

LISTENER_READY_RE = re.compile(
    r"event=listener\.ready name=(\S+) .*port=(\d+)")
LOG_LINE_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
    r"level=(error|warn|info|debug|trace) sid=\S+ event=\S+")


def postern_bin():
    """The binary under test: $POSTERN_BIN, else build/postern."""
    return os.environ.get("POSTERN_BIN") or str(REPO / "build" / "postern")


def run_postern(*args, timeout=20, cwd=None):
    """Runs `postern ARGS...` to completion; returns CompletedProcess
    with text stdout and stderr."""
    return subprocess.run([postern_bin(), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


# --- certificates ---------------------------------------------------------


@dataclass
class Cert:
    cert_path: Path
    key_path: Path

    @property
    def pem(self):
        return self.cert_path.read_text()

    @property
    def der(self):
        """DER of the (first) certificate in the PEM file, to compare
        with SSLSocket.getpeercert(binary_form=True)."""
        return ssl.PEM_cert_to_DER_cert(self.pem)


def make_cert(directory, name, cn, sans):
    """Writes a self-signed RSA certificate NAME.pem and key NAME.key in
    directory with the given CN and DNS subjectAltNames."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / f"{name}.pem"
    key = directory / f"{name}.key"
    san = ",".join(f"DNS:{s}" for s in sans)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "7",
         "-subj", f"/CN={cn}", "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True, timeout=60)
    return Cert(cert, key)


def client_ctx(cafile=None, minimum=None, maximum=None):
    """A client SSLContext. With cafile: verifies the server against that
    certificate (use server_hostname=mail.example.test). Without: no
    verification at all (CERT_NONE), so any certificate is accepted."""
    if cafile is not None:
        ctx = ssl.create_default_context(cafile=str(cafile))
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


# --- talking --------------------------------------------------------------


class ConnectionClosed(Exception):
    """The server closed the connection before a full line came."""


@dataclass
class SmtpReply:
    code: int
    lines: list          # text of each line after "NNN-" / "NNN "
    raw: list = field(default_factory=list)  # whole lines, CRLF included

    @property
    def first(self):
        return self.raw[0] if self.raw else b""


class Conn:
    """A line-oriented client connection (plain or TLS).

    Bytes are read into our own buffer; readline() returns one line with
    its CRLF. starttls() refuses to upgrade when the server sent bytes we
    have not read yet (those would be plaintext injected by the server).
    """

    def __init__(self, sock, timeout=LINE_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    @classmethod
    def open(cls, port, host="127.0.0.1", tls_ctx=None, server_hostname=None,
             timeout=LINE_TIMEOUT):
        """Connects; with tls_ctx, does the TLS handshake at once
        (implicit TLS)."""
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls_ctx is not None:
            try:
                sock = tls_ctx.wrap_socket(sock,
                                           server_hostname=server_hostname)
            except BaseException:
                sock.close()
                raise
        return cls(sock, timeout)

    @property
    def is_tls(self):
        return isinstance(self.sock, ssl.SSLSocket)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads more bytes into the buffer. Returns False at EOF."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from server in time; have %r"
                               % self.buf)
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from server in time; have %r"
                               % self.buf) from None
        except (ConnectionResetError, ssl.SSLEOFError,
                ssl.SSLZeroReturnError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self, timeout=None):
        """One line, CRLF included. Raises ConnectionClosed at EOF and
        TimeoutError when no full line comes in time."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            if not self._fill(deadline):
                raise ConnectionClosed("connection closed; partial data %r"
                                       % self.buf)

    def read_smtp_reply(self, timeout=None):
        """A whole (possibly multi-line) SMTP reply."""
        raw, texts, code = [], [], None
        while True:
            line = self.readline(timeout)
            raw.append(line)
            m = re.match(rb"^(\d{3})([ -])(.*)\r\n$", line, re.S)
            assert m, "malformed SMTP reply line %r" % line
            c = int(m.group(1))
            assert code is None or c == code, \
                "code changed inside a multi-line reply: %r" % raw
            code = c
            texts.append(m.group(3))
            if m.group(2) == b" ":
                return SmtpReply(code, texts, raw)

    def read_pop3_multiline(self, timeout=None):
        """The lines after a +OK status line, up to the terminating '.'
        (not included); dot-stuffing is undone."""
        lines = []
        while True:
            line = self.readline(timeout)
            if line == b".\r\n":
                return lines
            if line.startswith(b".."):
                line = line[1:]
            lines.append(line)

    def read_imap_tagged(self, tag, timeout=None):
        """Untagged/continuation lines up to the tagged reply of tag.
        Returns (list of other lines, tagged line)."""
        if isinstance(tag, str):
            tag = tag.encode()
        others = []
        while True:
            line = self.readline(timeout)
            if line.startswith(tag + b" "):
                return others, line
            others.append(line)

    def starttls(self, ctx, server_hostname=None):
        """Upgrades this connection to TLS after the server said go."""
        assert self.buf == b"", \
            "server sent bytes after its STARTTLS go-ahead: %r" % self.buf
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock,
                                    server_hostname=server_hostname)

    def pending(self, wait=0.5):
        """Whatever the server sends within wait seconds (buffered bytes
        included), without requiring a full line; b'' if nothing."""
        deadline = time.monotonic() + wait
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            pass
        data, self.buf = self.buf, b""
        return data

    def wait_closed(self, timeout=None):
        """Waits until the server closes the connection. Returns the bytes
        that came before the close; raises TimeoutError if it stays open."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b""
        return data

    def peer_cert_der(self):
        return self.sock.getpeercert(binary_form=True)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def smtp_ehlo_keywords(reply):
    """The EHLO keywords (upper case, first word of lines 2..n)."""
    return [t.split(b" ")[0].upper() for t in reply.lines[1:]]


def imap_caps(text):
    """Capability atoms of a '* CAPABILITY ...' line or a greeting's
    [CAPABILITY ...] code, upper-cased."""
    m = re.search(rb"CAPABILITY ([^\]\r\n]*)", text)
    assert m, "no CAPABILITY in %r" % text
    return [c.upper() for c in m.group(1).split()]


# --- a running server -----------------------------------------------------

# name, protocol, tls: every protocol on every TLS kind the tests need.
DEFAULT_LISTENERS = [
    ("smtp", "smtp", "starttls"),
    ("smtp_plain", "smtp", "none"),
    ("submission", "submission", "starttls"),
    ("submissions", "submission", "implicit"),
    ("imap", "imap", "starttls"),
    ("imaps", "imap", "implicit"),
    ("pop3", "pop3", "starttls"),
    ("pop3s", "pop3", "implicit"),
]

HOSTNAME = "mail.example.test"


def render_config(sections):
    """INI text from [(section name, {key: value})]; returns (text,
    {section name: line number of its header})."""
    out, lines = [], {}
    for name, keys in sections:
        if out:
            out.append("")
        lines[name] = len(out) + 1
        out.append(f"[{name}]")
        for k, v in keys.items():
            out.append(f"{k} = {v}")
    return "\n".join(out) + "\n", lines


def config_sections(data_dir, certs, listeners=None, server=None,
                    limits=None, timeouts=None):
    """The sections of a test configuration. certs: [(name, Cert)], the
    first being the default; listeners: [(name, protocol, tls[, port])],
    port 0 unless given. Values in server/limits/timeouts override or
    add keys; a value of None removes the key."""
    srv = {"hostname": HOSTNAME, "data_dir": str(data_dir), "workers": 2,
           "log_level": "info"}
    lim = {}
    tmo = {"shutdown_grace": "1s"}
    for base, extra in ((srv, server), (lim, limits), (tmo, timeouts)):
        for k, v in (extra or {}).items():
            if v is None:
                base.pop(k, None)
            else:
                base[k] = v
    sections = [("server", srv)]
    if lim:
        sections.append(("limits", lim))
    if tmo:
        sections.append(("timeouts", tmo))
    for name, cert in certs:
        sections.append((f"certificate {name}",
                         {"cert": str(cert.cert_path),
                          "key": str(cert.key_path)}))
    for name, proto, tls, *port in (DEFAULT_LISTENERS if listeners is None
                                    else listeners):
        sections.append((f"listener {name}",
                         {"address": "127.0.0.1",
                          "port": port[0] if port else 0,
                          "protocol": proto, "tls": tls}))
    return sections


class Postern:
    """One `postern serve` process on a configuration in a temporary
    directory. Ports by listener name come from the listener.ready log
    lines; the whole stderr is kept in .log_text()."""

    def __init__(self, tmp_path, certs, listeners=None, server=None,
                 limits=None, timeouts=None, config_text=None):
        self.tmp = Path(tmp_path)
        self.data_dir = self.tmp / "data"
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self.config_path = self.tmp / "postern.conf"
        self.certs = list(certs)
        self.listeners = DEFAULT_LISTENERS if listeners is None else listeners
        self.settings = dict(server=server, limits=limits, timeouts=timeouts)
        self.write_config(config_text=config_text)
        self.proc = None
        self.ports = {}
        self.ready_lines = {}
        self.returncode = None
        self.term_sent = False
        self._lines = []
        self._cond = threading.Condition()
        self._reader = None

    @property
    def cert(self):
        """The default (first) certificate."""
        return self.certs[0][1]

    @property
    def grace(self):
        t = (self.settings.get("timeouts") or {}).get("shutdown_grace", "1s")
        m = re.fullmatch(r"(\d+)([smhd]?)", str(t))
        mult = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
        return int(m.group(1)) * mult[m.group(2)] if m else 1

    def write_config(self, config_text=None, certs=None, **overrides):
        """(Re)writes the configuration file. overrides replace server,
        limits or timeouts dictionaries (for reload tests)."""
        if certs is not None:
            self.certs = list(certs)
        self.settings.update(overrides)
        if config_text is None:
            config_text, _ = render_config(config_sections(
                self.data_dir, self.certs, self.listeners,
                **self.settings))
        self.config_path.write_text(config_text)
        return config_text

    # -- process --

    def start(self, wait=True):
        self.proc = subprocess.Popen(
            [postern_bin(), "serve", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=open(self.tmp / "stdout.txt", "wb"),
            stderr=subprocess.PIPE, cwd=self.tmp)
        self._reader = threading.Thread(target=self._read_stderr,
                                        daemon=True)
        self._reader.start()
        if wait:
            self.wait_ready()
        return self

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            with self._cond:
                self._lines.append(raw.decode("utf-8", "replace"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def log_text(self):
        with self._cond:
            return "".join(self._lines)

    def log_lines(self):
        with self._cond:
            return list(self._lines)

    def log_mark(self):
        """A position in the log, for wait_log(since=...)."""
        with self._cond:
            return len(self._lines)

    def wait_log(self, pattern, timeout=10.0, since=0):
        """Waits for a stderr line (after position since) matching
        pattern; returns the re.Match. Fails with the log on timeout or
        when the process exits first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines[since:]:
                    m = rx.search(line)
                    if m:
                        return m
                exited = self.proc.poll() is not None and \
                    not self._reader.is_alive()
                left = deadline - time.monotonic()
                if exited or left <= 0:
                    raise AssertionError(
                        "no log line matching %r (%s); postern stderr:\n%s"
                        % (pattern, "postern exited with %s"
                           % self.proc.returncode if exited else
                           "timeout %.0fs" % timeout, "".join(self._lines)))
                self._cond.wait(min(left, 0.2))

    def wait_ready(self):
        self.wait_log(r"event=server\.ready", timeout=READY_TIMEOUT)
        for line in self.log_lines():
            m = LISTENER_READY_RE.search(line)
            if m:
                self.ports[m.group(1)] = int(m.group(2))
                self.ready_lines[m.group(1)] = line
        missing = [n for n, *_ in self.listeners if n not in self.ports]
        assert not missing, "no listener.ready for %s; stderr:\n%s" % (
            missing, self.log_text())

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if sig == signal.SIGTERM:
            self.term_sent = True
        self.proc.send_signal(sig)

    def reload(self, timeout=10.0):
        """SIGHUP; waits for config.reloaded or config.reload_failed and
        returns that log line."""
        mark = self.log_mark()
        self.signal(signal.SIGHUP)
        m = self.wait_log(r"^.*event=config\.(reloaded|reload_failed).*$",
                          timeout=timeout, since=mark)
        return m.group(0)

    def stop(self, timeout=None):
        """SIGTERM; waits for the exit and returns the exit status."""
        if self.proc is None:
            return None
        # Only one SIGTERM: a second one may rightly mean "exit now".
        if self.proc.poll() is None and not self.term_sent:
            self.signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(
                timeout=timeout or self.grace + STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                "postern did not exit after SIGTERM; stderr:\n%s"
                % self.log_text())
        self._reader.join(timeout=5)
        return self.returncode

    # -- clients --

    def connect(self, listener, tls_ctx=None, server_hostname=None,
                timeout=LINE_TIMEOUT):
        """Connects to a listener by name. tls_ctx='auto' on an implicit
        listener means: verify against the default test certificate."""
        if tls_ctx == "auto":
            tls_ctx = client_ctx(self.cert.cert_path)
            server_hostname = server_hostname or HOSTNAME
        return Conn.open(self.ports[listener], tls_ctx=tls_ctx,
                         server_hostname=server_hostname, timeout=timeout)

    def tls_kind(self, listener):
        for name, _, tls, *_ in self.listeners:
            if name == listener:
                return tls
        raise KeyError(listener)

    def greet(self, listener, **kw):
        """Connects (TLS first on implicit listeners, verifying the
        default certificate) and reads the first greeting line. Returns
        (conn, greeting line)."""
        ctx = "auto" if self.tls_kind(listener) == "implicit" else None
        conn = self.connect(listener, tls_ctx=ctx, **kw)
        try:
            return conn, conn.readline()
        except BaseException:
            conn.close()
            raise


# --- protocol upgrades ------------------------------------------------------


def smtp_starttls(conn, ctx, server_hostname=HOSTNAME):
    conn.send(b"STARTTLS\r\n")
    reply = conn.read_smtp_reply()
    assert reply.raw == [b"220 2.0.0 Ready to start TLS\r\n"], reply.raw
    conn.starttls(ctx, server_hostname)


def imap_starttls(conn, ctx, server_hostname=HOSTNAME, tag=b"s1"):
    conn.send(tag + b" STARTTLS\r\n")
    others, tagged = conn.read_imap_tagged(tag)
    assert others == [], others
    assert tagged == tag + b" OK Begin TLS negotiation now\r\n", tagged
    conn.starttls(ctx, server_hostname)


def pop3_starttls(conn, ctx, server_hostname=HOSTNAME):
    conn.send(b"STLS\r\n")
    line = conn.readline()
    assert line.startswith(b"+OK Begin TLS negotiation"), line
    conn.starttls(ctx, server_hostname)


def wait_refused(port, timeout=5.0):
    """True once connecting to port is refused (the listener is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        else:
            s.close()
        time.sleep(0.1)
    return False
