"""Helpers of the HTTP tests: a mail server with http listeners (one of
them with metrics = yes, one with https_redirect = yes), raw HTTP/1.1 over
sockets, and a small parser of the Prometheus text format."""

import re
import select
import socket
import ssl
import time
from pathlib import Path

from postern_harness import (DOMAIN, add_user, admin_ok, client_ctx,
                             write_mail_config)

ALICE = "alice@example.test"
ALICE_PW = "alice-pw-1"

HTTP_LISTENERS = [
    ("smtp", "smtp", "none"),
    ("submission", "submission", "starttls"),
    ("submissions", "submission", "implicit"),
    ("imap", "imap", "starttls"),
    ("imaps", "imap", "implicit"),
    ("pop3s", "pop3", "implicit"),
    ("http", "http", "none"),
    ("https", "http", "implicit"),
    ("metrics", "http", "none"),
    ("redirect", "http", "none"),
]


def start_http_server(factory, directory, cert, listeners=HTTP_LISTENERS,
                      **config):
    """A server with example.test and alice, its metrics listener marked
    metrics = yes and its redirect listener https_redirect = yes."""
    path, data, text = write_mail_config(directory, [("main", cert)],
                                         listeners, **config)
    text = text.replace("[listener metrics]\n",
                        "[listener metrics]\nmetrics = yes\n")
    text = text.replace("[listener redirect]\n",
                        "[listener redirect]\nhttps_redirect = yes\n")
    Path(path).write_text(text)
    admin_ok(path, "domain", "add", DOMAIN)
    add_user(path, ALICE, ALICE_PW)
    srv = factory(config_text=text, listeners=listeners)
    srv.admin_config = path
    srv.mail_data = data
    return srv


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers      # [(lower-case name, value)]
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k == name.lower()]


class RawHttp:
    """One connection; send() bytes, read_response() one response."""

    def __init__(self, port, tls=False, timeout=10.0):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            s = client_ctx().wrap_socket(s,
                                         server_hostname="mail.example.test")
        self.sock = s
        self.buf = b""
        self.timeout = timeout

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buf += chunk

    def read_response(self, is_head=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        headers = []
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
        n = 0
        for k, v in headers:
            if k == "content-length":
                n = int(v)
        if is_head or status == "100":
            n = 0
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return Response(int(status), reason, headers, body, head)

    def is_closed(self, timeout=10.0):
        """True once the server closed (EOF), with nothing more sent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.sock], [], [], 0.2)
            if r:
                try:
                    chunk = self.sock.recv(65536)
                except (ConnectionResetError, ssl.SSLError):
                    return True
                if not chunk:
                    return True
                self.buf += chunk
        return False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def request(port, method, target, host="autoconfig.example.test",
            headers=(), body=b"", tls=False):
    """One request on a new connection (Connection: close); returns the
    Response."""
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + host]
    lines += list(headers)
    if body or method == "POST":
        lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with RawHttp(port, tls=tls) as c:
        c.send(data)
        return c.read_response(is_head=(method == "HEAD"))


SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+]+|NaN|[+-]Inf)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """The Prometheus text format (0.0.4), strictly: every sample belongs
    to a family declared by # TYPE before it. Returns ({(name,
    frozenset(labels)): value}, {family: type})."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "summary", "histogram",
                            "untyped"), line
            assert name not in types, "family declared twice: " + name
            types[name] = kind
            continue
        assert not line.startswith("#"), line
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.groups()
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and types.get(base) == "histogram":
                family = base
        assert family in types, "sample before its # TYPE: " + line
        lab = frozenset(LABEL_RE.findall(labels or ""))
        key = (name, lab)
        assert key not in samples, "sample twice: " + line
        samples[key] = float(value)
    return samples, types


def metric(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]
