"""IMAP COMPRESS=DEFLATE (RFC 4978) as a client sees it: offered only
after login, the tagged OK as the last uncompressed byte, raw DEFLATE both
ways over implicit TLS and STARTTLS, a large body through it byte for
byte, [COMPRESSIONACTIVE] the second time, plaintext pipelined behind the
command thrown away, a corrupt stream or an inflation bomb ending only
that session, and real clients (mbsync, mutt) using it."""

import subprocess
import zlib

import pytest

from imap_helpers import (Imap, deliver, imap_caps, login, new_user,
                          start_imap_server)
from postern_harness import ConnectionClosed

LINE_LENGTH = 4096           # [limits] line_length (the default)


@pytest.fixture(scope="module")
def srv(module_postern_factory, ip_cert, tmp_path_factory):
    s = start_imap_server(module_postern_factory,
                          tmp_path_factory.mktemp("imap-compress"), ip_cert,
                          limits={"line_length": LINE_LENGTH})
    s.certs = [("main", ip_cert)]     # mbsync verifies it for 127.0.0.1
    return s


@pytest.fixture
def user(srv):
    return new_user(srv)


class DeflateSock:
    """The client's half of RFC 4978 over an existing socket: raw DEFLATE
    (no zlib header), a sync flush after each command."""

    def __init__(self, sock):
        self.sock = sock
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)
        self.packed_in = 0

    def sendall(self, data):
        self.sock.sendall(self.comp.compress(data) +
                          self.comp.flush(zlib.Z_SYNC_FLUSH))

    def send_raw(self, data):
        self.sock.sendall(data)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def recv(self, n):
        while True:
            raw = self.sock.recv(n)
            if not raw:
                return b""
            self.packed_in += len(raw)
            out = self.decomp.decompress(raw)
            if out:
                return out

    def close(self):
        self.sock.close()


def compress(c):
    """Sends COMPRESS DEFLATE, checks the tagged OK arrived uncompressed,
    then switches the connection to DEFLATE."""
    r = c.command("COMPRESS DEFLATE")
    assert r.status == "OK", r.tagged
    # Nothing may follow the OK in plaintext: the server compresses
    # "starting immediately after the CRLF" (RFC 4978 §3).
    assert c.conn.buf == b"", c.conn.buf
    c.conn.sock = DeflateSock(c.conn.sock)
    return r


def test_offered_after_login_only(srv, user):
    with Imap.open(srv, "imaps") as c:
        assert "COMPRESS=DEFLATE" not in imap_caps(c.greeting)
        r = c.command("COMPRESS DEFLATE")
        # Before login a client could make us hold a compressor for free.
        assert r.status in ("NO", "BAD"), r.tagged
        c.login(*user)
        caps = imap_caps(c.ok("CAPABILITY").untagged[0])
        assert "COMPRESS=DEFLATE" in caps, caps


@pytest.mark.parametrize("listener", ["imaps", "imap"])
def test_large_body_round_trips_compressed(srv, user, listener):
    body = "".join("line %06d of a long and repetitive message body\r\n" % i
                   for i in range(20000))
    sent = deliver(srv, user[0], "compressed", body=body)
    with Imap.open(srv, listener) as c:
        if listener == "imap":
            c.starttls(srv)
        c.login(*user)
        compress(c)
        assert isinstance(c.conn.sock, DeflateSock)
        sel = c.ok("SELECT INBOX")
        assert any(b"EXISTS" in line for line in sel.untagged), sel.untagged
        r = c.ok("FETCH 1 BODY.PEEK[TEXT]")
        fetched = b"".join(r.untagged)
        assert body.encode() in fetched
        # Well over a megabyte went through in a fraction of its size.
        assert c.conn.sock.packed_in * 10 < len(body), c.conn.sock.packed_in
        caps = imap_caps(c.ok("CAPABILITY").untagged[0])
        assert "COMPRESS=DEFLATE" not in caps, caps
        r = c.command("COMPRESS DEFLATE")
        assert r.status == "NO" and b"[COMPRESSIONACTIVE]" in r.tagged, r
        c.ok("NOOP")
        r = c.command("LOGOUT")
        assert r.status == "OK"
    assert sent


def test_bad_argument(srv, user):
    with login(srv, *user) as c:
        for arg in ("", "GZIP", "(DEFLATE)"):
            r = c.command(("COMPRESS " + arg).strip())
            assert r.status == "BAD", (arg, r.tagged)
        c.ok("NOOP")


def test_plaintext_pipelined_behind_command_is_dropped(srv, user):
    with login(srv, *user) as c:
        c.send(b"a1 COMPRESS DEFLATE\r\nz1 NOOP\r\n")
        r = c.read_reply(b"a1")
        assert r.status == "OK", r.tagged
        c.conn.sock = DeflateSock(c.conn.sock)
        r = c.command("NOOP")
        assert r.status == "OK"
        # z1 was plaintext where DEFLATE was due: never read as a command.
        assert all(not line.startswith(b"z1") for line in c.transcript), \
            c.transcript


def test_corrupt_stream_ends_only_that_session(srv, user):
    with login(srv, *user) as c:
        compress(c)
        c.conn.sock.send_raw(b"\xff\xff\xff\xff not deflate at all\r\n")
        with pytest.raises(ConnectionClosed):
            c.read_line(timeout=10)
    with login(srv, *user) as c:
        c.ok("NOOP")


def test_inflation_bomb_is_bounded_by_the_line_limit(srv, user):
    with login(srv, *user) as c:
        compress(c)
        # 64 MiB of one byte packs into ~64 KiB; the server inflates only
        # as much as its line buffer holds and answers the long line.
        c.send(b"a9 NOOP " + b"x" * (64 << 20) + b"\r\n")
        line = c.read_line(timeout=30)
        assert b"BAD" in line or b"BYE" in line, line
    with login(srv, *user) as c:
        c.ok("NOOP")


def test_mbsync_uses_compression(srv, ip_cert, user, tmp_path):
    """isync's mbsync asks for COMPRESS=DEFLATE whenever it is offered;
    the server's log shows the compressed session."""
    mark = srv.log_mark()
    deliver(srv, user[0], "via mbsync", body="hello mbsync\r\n" * 200)
    mail = tmp_path / "mail"
    mail.mkdir()
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(
        "IMAPAccount a\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\n"
        "SSLType IMAPS\nCertificateFile %s\n\n"
        "IMAPStore remote\nAccount a\n\n"
        "MaildirStore local\nPath %s/\nInbox %s/INBOX\n\n"
        "Channel c\nFar :remote:\nNear :local:\nPatterns INBOX\n"
        "Create Near\nSyncState *\n"
        % (srv.ports["imaps"], user[0], user[1], ip_cert.cert_path, mail,
           mail))
    r = subprocess.run(["mbsync", "-c", str(cfg), "-a"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    msgs = list((mail / "INBOX").glob("*/*"))
    assert len(msgs) == 1 and b"hello mbsync" in msgs[0].read_bytes()
    srv.wait_log(r"net\.deflate out=\d+ sent=\d+", since=mark)
