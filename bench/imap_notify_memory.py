#!/usr/bin/python3
"""Memory of IMAP NOTIFY (RFC 5465) with many sessions watching PERSONAL on
accounts with many folders, and how fast one delivery reaches them.

    POSTERN_BIN=build/postern bench/imap_notify_memory.py [--accounts 10]
        [--folders 100] [--sessions 1000]

Starts its own postern (build/postern, or $POSTERN_BIN) in a temporary
directory, makes the accounts with their folders, opens the sessions
(spread over the accounts; LOGIN, SELECT f000), reads the server's VmRSS,
sends every session NOTIFY SET STATUS (personal (MessageNew MessageExpunge
FlagChange MailboxName SubscriptionChange)), reads VmRSS again, then
delivers one message by SMTP to each account and times until every session
of that account has its untagged STATUS. Prints one line:

    imap_notify accounts=A folders=F sessions=S rss_before_kib=B
      rss_after_kib=C notify_bytes_per_session=X fanout_ms_p50=P
      fanout_ms_max=M cpus=N

notify_bytes_per_session is (C - B) / S: what NOTIFY adds to a session
that already has a folder selected (the STATUS replies of NOTIFY SET STATUS
pass through and are freed before the second reading).
"""
import argparse
import os
import re
import smtplib
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from postern_harness import (Postern, add_user, make_cert,  # noqa: E402
                             write_mail_config, admin_ok)

DOMAIN = "example.test"


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
        self.n = 0
        self.line()

    def line(self, timeout=60):
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send_cmd(self, text):
        self.n += 1
        tag = b"t%d" % self.n
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        return tag

    def wait(self, tag):
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line)
                return

    def cmd(self, text):
        self.wait(self.send_cmd(text))


def settle(pid, seconds=1.0):
    time.sleep(seconds)
    return rss_kib(pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=10)
    ap.add_argument("--folders", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--no-status", action="store_true",
                    help="NOTIFY SET without STATUS")
    a = ap.parse_args()
    os.environ.setdefault("POSTERN_BIN", str(REPO / "build" / "postern"))
    tmp = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    cert = make_cert(tmp / "certs", "main", "127.0.0.1", ["mail.example.test"])
    listeners = [("smtp", "smtp", "none"), ("imap", "imap", "starttls")]
    path, data, text = write_mail_config(
        tmp / "srv", [("main", cert)], listeners,
        server={"allow_plaintext_auth": "yes"},
        limits={"max_connections": a.sessions + 100,
                "max_connections_per_ip": a.sessions + 100},
        auth={"lockout_failures": 1000})
    admin_ok(path, "domain", "add", DOMAIN)
    users = []
    for i in range(a.accounts):
        u = ("bench%d@%s" % (i, DOMAIN), "pw-bench-Secret-%d" % i)
        add_user(path, *u)
        users.append(u)
    srv = Postern(tmp / "srv", [("main", cert)], listeners=listeners,
                  config_text=text)
    srv.start()
    try:
        port = srv.ports["imap"]
        pid = srv.proc.pid
        for u in users:
            s = Session(port)
            s.cmd('LOGIN "%s" "%s"' % u)
            for f in range(a.folders - 6):    # the account has 6 already
                s.cmd("CREATE f%03d" % f)
            s.cmd("SUBSCRIBE f000")
            s.sock.close()
        sessions = []
        for i in range(a.sessions):
            u = users[i % a.accounts]
            s = Session(port)
            s.cmd('LOGIN "%s" "%s"' % u)
            # Not INBOX: the delivery below must be another mailbox's
            # news (the selected one is reported by its view).
            s.cmd("SELECT f000")
            s.user = u
            sessions.append(s)
        before = settle(pid)
        tags = [s.send_cmd("NOTIFY SET%s (personal (MessageNew "
                           % ("" if a.no_status else " STATUS") +
                           "MessageExpunge FlagChange MailboxName "
                           "SubscriptionChange))") for s in sessions]
        for s, t in zip(sessions, tags):
            s.wait(t)
        after = settle(pid)
        fanout = []
        for u in users:
            mine = [s for s in sessions if s.user == u]
            t0 = time.monotonic()
            with smtplib.SMTP("127.0.0.1", srv.ports["smtp"],
                              timeout=60) as smtp:
                smtp.sendmail("x@other.test", [u[0]],
                              b"Subject: x\r\n\r\nbody\r\n")
            for s in mine:
                while not re.match(rb"^\* STATUS \"?INBOX\"? ", s.line()):
                    pass
            fanout.append((time.monotonic() - t0) * 1000)
        for s in sessions:
            s.sock.close()
        print("imap_notify status=%s accounts=%d folders=%d sessions=%d "
              "rss_before_kib=%d rss_after_kib=%d "
              "notify_bytes_per_session=%.0f fanout_ms_p50=%.1f "
              "fanout_ms_max=%.1f cpus=%d"
              % ("no" if a.no_status else "yes", a.accounts, a.folders,
                 a.sessions, before, after,
                 (after - before) * 1024 / a.sessions,
                 statistics.median(fanout), max(fanout), os.cpu_count()))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
