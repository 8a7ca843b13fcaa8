#!/usr/bin/python3
"""Memory per idle IMAP session with and without COMPRESS=DEFLATE, and the
compression of a recorded-style sync, against a running postern.

    bench/imap_compress.py --port 10143 --pid PID --user U --password P [-n 1000]

Opens n plaintext sessions (the server needs allow_plaintext_auth, or use a
loopback listener with it), each LOGIN, [COMPRESS DEFLATE,] SELECT INBOX,
IDLE; reads the server's VmRSS before and after each batch and prints one
line per mode:

    imap_compress mode=plain|deflate sessions=N rss_per_session_kib=X
and one line for a sync of the mailbox (FETCH of every envelope and body):
    imap_compress sync raw_bytes=R wire_bytes=W ratio=X
"""
import argparse
import socket
import time
import zlib


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Session:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.comp = self.decomp = None
        self.wire_in = 0
        self.n = 0
        self.line()                                  # greeting

    def send(self, data):
        if self.comp:
            data = self.comp.compress(data) + self.comp.flush(
                zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.wire_in += len(data)
        self.buf += self.decomp.decompress(data) if self.decomp else data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, text):
        self.n += 1
        tag = b"t%d" % self.n
        self.send(tag + b" " + text.encode() + b"\r\n")
        raw = 0
        while True:
            line = self.line()
            raw += len(line) + 2
            if line.endswith(b"}"):
                size = int(line[line.rindex(b"{") + 1:-1])
                while len(self.buf) < size:
                    self.fill()
                self.buf = self.buf[size:]
                raw += size
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line)
                return raw

    def compress(self):
        self.cmd("COMPRESS DEFLATE")
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)

    def idle(self):
        self.n += 1
        self.send(b"t%d IDLE\r\n" % self.n)
        if not self.line().startswith(b"+"):
            raise RuntimeError("no IDLE continuation")


def open_sessions(a, deflate):
    out = []
    for _ in range(a.n):
        s = Session(a.port)
        s.cmd('LOGIN "%s" "%s"' % (a.user, a.password))
        if deflate:
            s.compress()
        s.cmd("SELECT INBOX")
        s.idle()
        out.append(s)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("-n", type=int, default=1000)
    a = ap.parse_args()
    for mode in ("plain", "deflate"):
        before = rss_kib(a.pid)
        sessions = open_sessions(a, mode == "deflate")
        time.sleep(1)
        after = rss_kib(a.pid)
        print("imap_compress mode=%s sessions=%d rss_per_session_kib=%.1f"
              % (mode, a.n, (after - before) / a.n), flush=True)
        for s in sessions:
            s.sock.close()
        time.sleep(2)
    s = Session(a.port)
    s.cmd('LOGIN "%s" "%s"' % (a.user, a.password))
    s.compress()
    s.wire_in = 0
    raw = s.cmd("SELECT INBOX")
    raw += s.cmd("UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE "
                 "ENVELOPE BODYSTRUCTURE)")
    raw += s.cmd("UID FETCH 1:* (BODY.PEEK[])")
    print("imap_compress sync raw_bytes=%d wire_bytes=%d ratio=%.2f"
          % (raw, s.wire_in, raw / s.wire_in))


if __name__ == "__main__":
    main()
