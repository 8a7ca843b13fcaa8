"""Helpers for the integration tests: certificates, a running postern,
and line-based talk over plain and TLS sockets.

Only the standard library is used (plus pytest in conftest.py). Fixtures
live in conftest.py; test modules import the helpers from here.
"""

import contextlib
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


@contextlib.contextmanager
def small_asan_quarantine():
    """Servers started inside get a 1 MB AddressSanitizer quarantine: ASan
    holds freed memory back (256 MB by default), which a test measuring
    the server's memory would count as growth. Without ASan the variable
    is ignored."""
    old = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = ((old + ":") if old else "") + \
        "quarantine_size_mb=1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = old


def runs_under_asan(pid):
    """Whether the process has AddressSanitizer's runtime mapped: its
    allocations carry redzones, so memory bounds measured without it are
    too tight."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


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
    # serve refuses root without a user; our temporary directories are
    # root's alone (CI runs as root), so the test servers stay root.
    if os.geteuid() == 0:
        srv["user"] = "root"
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


# --- mail servers with accounts (SMTP, auth and admin CLI tests) -----------
#
# These servers get their configuration as text (config_text=) so that the
# data directory, the [auth] section and the accounts can be prepared before
# `postern serve` starts; the admin command runs on the same file.

DOMAIN = "example.test"


def mail_config_text(data_dir, certs, listeners, server=None, limits=None,
                     timeouts=None, auth=None, queue=None):
    """Configuration text like config_sections(), plus an [auth] and a
    [queue] section when auth or queue (dicts of keys) are given."""
    sections = config_sections(data_dir, certs, listeners, server=server,
                               limits=limits, timeouts=timeouts)
    if queue:
        sections.insert(1, ("queue", dict(queue)))
    if auth:
        sections.insert(1, ("auth", dict(auth)))
    text, _ = render_config(sections)
    return text


def write_mail_config(directory, certs, listeners, **kw):
    """Writes directory/postern.conf with its own data directory
    (directory/data). Returns (config path, data dir, config text); start
    the server with postern_factory(config_text=text, listeners=...)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "data"
    data.mkdir(mode=0o700, exist_ok=True)
    text = mail_config_text(data, certs, listeners, **kw)
    path = directory / "postern.conf"
    path.write_text(text)
    return path, data, text


def run_admin(config_path, command, *args, stdin_text=None, timeout=30):
    """Runs `postern COMMAND [VERB] -c CONFIG ARGS...` (the -c comes right
    after the verb). stdin is stdin_text, else /dev/null: never a
    terminal, so a password is read as one line of stdin."""
    args = [str(a) for a in args]
    argv = [postern_bin(), command] + args[:1] + ["-c", str(config_path)] + \
        args[1:]
    if stdin_text is None:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, input=stdin_text)


def admin_ok(config_path, command, *args, stdin_text=None):
    """run_admin that must succeed; returns its stdout."""
    r = run_admin(config_path, command, *args, stdin_text=stdin_text)
    assert r.returncode == 0, "postern %s %s failed with %s:\n%s%s" % (
        command, " ".join(map(str, args)), r.returncode, r.stdout, r.stderr)
    return r.stdout


def add_user(config_path, address, password, *keys):
    """`postern user add ADDRESS KEYS...` with the password on stdin."""
    return admin_ok(config_path, "user", "add", address, *keys,
                    stdin_text=password + "\n")


_source_counter = iter(range(10, 250 * 250))


def next_source_address():
    """A loopback address in a /24 of its own (127.1.10.2, 127.1.11.2, ...
    then 127.2.x.2) for a test whose failed logins must not slow down or
    lock out the others: the server counts failures per client network,
    a /24 for IPv4. Every 127.x.y.z is local on Linux."""
    n = next(_source_counter)
    return "127.%d.%d.2" % (1 + n // 250, n % 250)


def connect_from(port, source=None, tls_ctx=None, server_hostname=None,
                 timeout=LINE_TIMEOUT, host="127.0.0.1"):
    """Like Conn.open, from the local address source (e.g. 127.0.0.2)."""
    sock = socket.create_connection(
        (host, port), timeout=timeout,
        source_address=(source, 0) if source else None)
    if tls_ctx is not None:
        try:
            sock = tls_ctx.wrap_socket(sock, server_hostname=server_hostname)
        except BaseException:
            sock.close()
            raise
    return Conn(sock, timeout)


def smtp_open(srv, listener, source=None, ehlo="client.example",
              starttls=False):
    """Connects to an SMTP listener (TLS first on implicit ones, else
    plain), reads the 220 greeting, optionally does STARTTLS and sends
    EHLO. Returns (conn, EHLO reply or None)."""
    implicit = srv.tls_kind(listener) == "implicit"
    ctx = client_ctx(srv.cert.cert_path)
    conn = connect_from(srv.ports[listener], source,
                        tls_ctx=ctx if implicit else None,
                        server_hostname=HOSTNAME if implicit else None)
    try:
        greeting = conn.readline()
        assert greeting.startswith(b"220 "), greeting
        if starttls:
            if ehlo:
                smtp_cmd(conn, "EHLO " + ehlo)
            smtp_starttls(conn, ctx)
        reply = smtp_cmd(conn, "EHLO " + ehlo) if ehlo else None
    except BaseException:
        conn.close()
        raise
    return conn, reply


def smtp_cmd(conn, line, timeout=None):
    """Sends one command line and reads its reply."""
    if isinstance(line, str):
        line = line.encode()
    conn.send(line + b"\r\n")
    return conn.read_smtp_reply(timeout)


def smtp_auth_plain(conn, user, password, timeout=15):
    """AUTH PLAIN with an initial response; returns the final reply."""
    import base64
    token = base64.b64encode(b"\0" + user.encode() + b"\0" +
                             password.encode()).decode()
    return smtp_cmd(conn, "AUTH PLAIN " + token, timeout=timeout)


class ScramSha256Client:
    """The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without
    channel binding: first() -> client-first-message; final(server_first)
    -> client-final-message; verify(server_final) checks the server's
    signature."""

    def __init__(self, user, password, nonce=None):
        import base64
        import os as _os
        self.user = user
        self.password = password
        self.nonce = nonce or base64.b64encode(_os.urandom(18)).decode()
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.gs2 = "n,,"
        self.first_bare = "n=%s,r=%s" % (name, self.nonce)
        self.server_signature = None

    def first(self):
        return self.gs2 + self.first_bare

    def final(self, server_first):
        import base64
        import hashlib
        import hmac
        if isinstance(server_first, bytes):
            server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(self.nonce), \
            "server nonce %r does not extend ours %r" % (attrs["r"],
                                                        self.nonce)
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt,
                                     iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=%s,r=%s" % (
            base64.b64encode(self.gs2.encode()).decode(), attrs["r"])
        auth_message = ",".join([self.first_bare, server_first,
                                 without_proof]).encode()
        client_sig = hmac.new(stored_key, auth_message,
                              hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message,
                                         hashlib.sha256).digest()
        return without_proof + ",p=" + base64.b64encode(proof).decode()

    def verify(self, server_final):
        import base64
        if isinstance(server_final, bytes):
            server_final = server_final.decode()
        assert server_final.startswith("v="), server_final
        return base64.b64decode(server_final[2:]) == self.server_signature


def start_mail_server(factory, directory, cert, listeners, domains=(DOMAIN,),
                      users=(), aliases=(), catchalls=(), **config):
    """Prepares a data directory with the admin command (domains; users as
    (address, password, KEY=VALUE...); aliases as (address, target);
    catchalls as (domain, target)), then starts `postern serve` on it with
    factory (postern_factory or module_postern_factory). The returned
    Postern also has .admin_config (the configuration file for the admin
    command) and .mail_data (the data directory)."""
    path, data, text = write_mail_config(directory, [("main", cert)],
                                         listeners, **config)
    for d in domains:
        admin_ok(path, "domain", "add", d)
    for address, password, *keys in users:
        add_user(path, address, password, *keys)
    for address, target in aliases:
        admin_ok(path, "alias", "add", address, target)
    for domain, target in catchalls:
        admin_ok(path, "domain", "catchall", domain, target)
    srv = factory(config_text=text, listeners=listeners)
    srv.admin_config = path
    srv.mail_data = data
    return srv


QUEUED_RE = re.compile(rb"^250 2\.0\.0 OK: queued as (\S+)\r\n$")


def smtp_send_data(conn, data, timeout=15):
    """After a 354: sends data (already dot-stuffed, ending with CRLF) and
    the final '.', and returns the reply."""
    conn.send(data + b".\r\n")
    return conn.read_smtp_reply(timeout)


def smtp_transaction(conn, mail_from, rcpts, data, mail_params=""):
    """MAIL, RCPT..., DATA and data (dot-stuffed by the caller), one
    command at a time, each of which must succeed. Returns the reply to
    the final dot (an SmtpReply)."""
    r = smtp_cmd(conn, "MAIL FROM:<%s>%s" % (mail_from, mail_params))
    assert r.raw == [b"250 2.1.0 Sender OK\r\n"], r.raw
    for rcpt in rcpts:
        r = smtp_cmd(conn, "RCPT TO:<%s>" % rcpt)
        assert r.raw == [b"250 2.1.5 Recipient OK\r\n"], (rcpt, r.raw)
    r = smtp_cmd(conn, "DATA")
    assert r.raw == [b"354 End data with <CR><LF>.<CR><LF>\r\n"], r.raw
    return smtp_send_data(conn, data)
