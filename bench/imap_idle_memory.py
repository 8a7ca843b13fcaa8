#!/usr/bin/python3
"""Memory per idle IMAP session (issue 22: at most 16 KiB at 10,000 sessions
on 1,000-message mailboxes).

    POSTERN_BIN=build/postern bench/imap_idle_memory.py [--accounts 10]
        [--messages 1000] [--sessions 10000] [--compress] [--no-idle]
        [--condstore] [--malloc-stats]

Starts its own postern ($POSTERN_BIN, else build/postern) in a temporary
directory, makes the accounts and fills each INBOX with --messages small
messages (MULTIAPPEND, 50 a command), restarts the server (so that the
fill leaves nothing in the allocator), reads its memory, opens the
sessions spread over the accounts (source addresses 127.0.0.2... in turn,
100 sessions each, so that no address runs out of ports), each LOGIN,
[COMPRESS DEFLATE,] [ENABLE CONDSTORE,] SELECT INBOX, IDLE, waits for the
server to settle and reads its memory again. Prints one line:

    imap_idle sessions=S accounts=A messages=M compress=no idle=yes
      condstore=no rss_kib_before=B rss_kib_after=C anon_kib_before=D
      anon_kib_after=E rss_bytes_per_session=X anon_bytes_per_session=Y
      [heap_bytes_per_session=Z]

RssAnon is the process's anonymous resident memory (heap, thread stacks):
what sessions cost, without the shared file pages of the binary and the
store's database that VmRSS also counts. With --malloc-stats, gdb calls
mallinfo2() in the server before and after (heap_bytes_per_session: the
growth of the bytes malloc hands out, arenas and mmapped blocks, per
session) and malloc_stats() (the server's log). The sessions then open
far more slowly (minutes for 10,000): leave it out for timings.
"""
import argparse
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import postern_harness  # noqa: E402
from postern_harness import (Postern, add_user, make_cert,  # noqa: E402
                             write_mail_config, admin_ok)

# A server run under heaptrack or valgrind (POSTERN_BIN a wrapper) takes
# longer to start.
postern_harness.READY_TIMEOUT = max(postern_harness.READY_TIMEOUT, 120)

DOMAIN = "example.test"
PER_SOURCE = 100


def status_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                out[key] = int(rest.split()[0])
    return out


def heap_bytes(pid):
    """uordblks + hblkhd of mallinfo2() in the process (every arena), by
    gdb; None when gdb cannot."""
    try:
        out = subprocess.run(
            ["gdb", "-p", str(pid), "-batch", "-nx",
             "-ex", "set $m = (struct mallinfo2)mallinfo2()",
             "-ex", "printf \"HEAP %lu %lu %lu\\n\", $m.uordblks, "
             "$m.hblkhd, $m.arena",
             "-ex", "call (void)malloc_stats()"],
            capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"^HEAP (\d+) (\d+) (\d+)", out, re.M)
    return int(m.group(1)) + int(m.group(2)) if m else None


class Session:
    def __init__(self, port, source):
        self.sock = socket.socket()
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.comp = self.decomp = None

    def send(self, data):
        if self.comp:
            data = self.comp.compress(data) + self.comp.flush(
                zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the server closed a session")
            self.buf += self.decomp.decompress(data) if self.decomp \
                else data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def wait(self, tag):
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line)
                return
            if line.endswith(b"}"):
                raise RuntimeError("unexpected literal: %r" % line)


def fill(port, user, password, messages):
    s = Session(port, "127.0.0.1")
    s.line()
    s.send(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
    s.wait(b"a")
    done = 0
    n = 0
    while done < messages:
        k = min(50, messages - done)
        parts = [b"f%d APPEND INBOX" % n]
        for i in range(k):
            body = (b"From: sender%d@other.test\r\nTo: %s\r\n"
                    b"Subject: message %d\r\nMessage-ID: <m%d.%d@other.test>"
                    b"\r\n\r\n%s\r\n" % (i, user.encode(), done + i, n, i,
                                         b"x" * 200))
            parts.append(b" {%d+}\r\n" % len(body) + body)
        s.send(b"".join(parts) + b"\r\n")
        s.wait(b"f%d" % n)
        done += k
        n += 1
    s.sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=10)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--compress", action="store_true",
                    help="COMPRESS DEFLATE after LOGIN (RFC 4978)")
    ap.add_argument("--condstore", action="store_true",
                    help="ENABLE CONDSTORE before SELECT (RFC 7162)")
    ap.add_argument("--no-idle", action="store_true",
                    help="stay selected without IDLE")
    ap.add_argument("--malloc-stats", action="store_true",
                    help="mallinfo2() and malloc_stats() by gdb")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.sessions + 1024
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    os.environ.setdefault("POSTERN_BIN", str(REPO / "build" / "postern"))
    tmp = Path(tempfile.mkdtemp(prefix="idle-bench-"))
    cert = make_cert(tmp / "certs", "main", "127.0.0.1", ["mail.example.test"])
    listeners = [("imap", "imap", "starttls")]
    path, data, text = write_mail_config(
        tmp / "srv", [("main", cert)], listeners,
        server={"allow_plaintext_auth": "yes",
                "workers": None},
        limits={"max_connections": a.sessions + 100,
                "max_connections_per_ip": a.sessions + 100},
        auth={"lockout_failures": 1000})
    admin_ok(path, "domain", "add", DOMAIN)
    users = []
    for i in range(a.accounts):
        u = ("idle%d@%s" % (i, DOMAIN), "pw-idle-Secret-%d" % i)
        add_user(path, *u)
        users.append(u)
    srv = Postern(tmp / "srv", [("main", cert)], listeners=listeners,
                  config_text=text)
    srv.start()
    try:
        for u in users:
            fill(srv.ports["imap"], u[0], u[1], a.messages)
    finally:
        srv.stop()
    # A new harness object: the old one's log already has server.ready.
    srv = Postern(tmp / "srv", [("main", cert)], listeners=listeners,
                  config_text=text)
    srv.start()
    sessions = []
    try:
        port = srv.ports["imap"]
        pid = srv.proc.pid
        time.sleep(1)
        before = status_kib(pid)
        heap_before = heap_bytes(pid) if a.malloc_stats else None
        t0 = time.monotonic()
        for i in range(a.sessions):
            u = users[i % a.accounts]
            src = i // PER_SOURCE
            s = Session(port, "127.0.%d.%d" % (src // 250, 2 + src % 250))
            s.line()
            s.send(b'l LOGIN "%s" "%s"\r\n' % (u[0].encode(),
                                               u[1].encode()))
            s.wait(b"l")
            if a.compress:
                s.send(b"z COMPRESS DEFLATE\r\n")
                s.wait(b"z")
                s.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
                s.decomp = zlib.decompressobj(-15)
            cmds = b""
            if a.condstore:
                cmds += b"e ENABLE CONDSTORE\r\n"
            cmds += b"s SELECT INBOX\r\n"
            s.send(cmds)
            s.wait(b"s")
            if not a.no_idle:
                s.send(b"i IDLE\r\n")
                if not s.line().startswith(b"+"):
                    raise RuntimeError("no IDLE continuation")
            sessions.append(s)
            if len(sessions) % 1000 == 0:
                sys.stderr.write("imap_idle: %d sessions, %.1f s\n"
                                 % (len(sessions), time.monotonic() - t0))
        setup = time.monotonic() - t0
        time.sleep(3)
        after = status_kib(pid)
        heap_after = heap_bytes(pid) if a.malloc_stats else None
        n = len(sessions)
        line = ("imap_idle sessions=%d accounts=%d messages=%d "
                "compress=%s idle=%s condstore=%s rss_kib_before=%d "
                "rss_kib_after=%d anon_kib_before=%d anon_kib_after=%d "
                "rss_bytes_per_session=%.0f anon_bytes_per_session=%.0f"
                % (n, a.accounts, a.messages,
                   "yes" if a.compress else "no",
                   "no" if a.no_idle else "yes",
                   "yes" if a.condstore else "no",
                   before["VmRSS"], after["VmRSS"], before["RssAnon"],
                   after["RssAnon"],
                   (after["VmRSS"] - before["VmRSS"]) * 1024 / n,
                   (after["RssAnon"] - before["RssAnon"]) * 1024 / n))
        if heap_before is not None and heap_after is not None:
            line += " heap_bytes_per_session=%.0f" % (
                (heap_after - heap_before) / n)
        line += " setup_s=%.1f" % setup
        print(line, flush=True)
        if a.malloc_stats:
            sys.stderr.write("".join(
                l + "\n" for l in srv.log_lines()
                if re.match(r"^(Arena|system bytes|in use bytes|Total"
                            r"|max mmap)", l.strip())))
    finally:
        for s in sessions:
            s.sock.close()
        srv.stop()
        if not a.keep:
            subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
