#!/usr/bin/python3
"""SORT and THREAD on a large mailbox (issue 22): postern, and with --dovecot
the same messages in a private Dovecot (bench/deps.sh installs it).

Fills one INBOX with N messages (default 100,000) shaped like a mailing
list: threads of 1 to 30 messages with References and In-Reply-To chains,
"Re: " and "[list] " subject prefixes, 500 senders, dates over a year
(some without Date:). postern gets them by SMTP (16 sessions at once);
Dovecot gets the same bytes as Maildir files written directly (its index is
built by the first SELECT, which is timed apart). Then, on one plain IMAP
connection per server, each command is timed RUNS times (wall time from
sending the command to its tagged OK), and one machine-readable line is
printed per command and server:

  sort_thread server=postern msgs=100000 cmd="SORT (SUBJECT) UTF-8 ALL"
      first_s=... median_s=... min_s=... max_s=... reply_bytes=...
      reply_sha256=...

(reply_sha256: the first 12 hex digits of the SHA-256 of the untagged
reply, so that equal answers of the two servers can be seen at once.)

Only the Python standard library; uses bench.py's Postern and Reference.

  /usr/bin/python3 bench/sort_thread.py --postern build/postern [--dovecot]
"""

import argparse
import hashlib
import os
import platform
import random
import shutil
import smtplib
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

USER = "sorter@" + bench.DOMAIN
COMMANDS = [
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (DATE) UTF-8 ALL",
    "SORT (REVERSE ARRIVAL) UTF-8 ALL",
    "SORT (FROM DATE) UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
]


def corpus(n, seed=22):
    """n raw messages (bytes, CRLF), thread-shaped, in arrival order."""
    rnd = random.Random(seed)
    msgs = []
    t0 = 1672531200  # 2023-01-01
    topic = 0
    while len(msgs) < n:
        topic += 1
        size = min(rnd.choice([1, 1, 2, 3, 5, 8, 13, 30]), n - len(msgs))
        ids = []
        base = "Topic %d: %s" % (topic, rnd.choice(
            ["budget", "release", "meeting", "outage", "lunch", "patch"]))
        for k in range(size):
            mid = "t%d.%d@list.test" % (topic, k)
            parent = ids[rnd.randrange(len(ids))] if ids else None
            refs = []
            if parent is not None:
                # The chain up to the parent, as mailers write it.
                refs = ids[:ids.index(parent) + 1][-10:]
            when = t0 + topic * 300 + k * 3600 + rnd.randrange(600)
            subj = base if k == 0 else rnd.choice(
                ["Re: ", "RE: ", "Re: [list] ", "Fwd: Re: "]) + base
            h = ["From: User %d <user%d@senders.test>" % (
                     rnd.randrange(500), rnd.randrange(500)),
                 "To: list@list.test",
                 "Subject: " + subj,
                 "Message-ID: <%s>" % mid]
            if rnd.random() > 0.02:
                h.append(time.strftime("Date: %a, %d %b %Y %H:%M:%S +0000",
                                       time.gmtime(when)))
            if refs:
                h.append("References: " + " ".join("<%s>" % r
                                                   for r in refs))
                h.append("In-Reply-To: <%s>" % refs[-1])
            body = "Message %d of topic %d.\r\n" % (k, topic) + \
                "Some text of the list.\r\n" * rnd.randrange(1, 20)
            msgs.append(("\r\n".join(h) + "\r\n\r\n" + body).encode())
            ids.append(mid)
    return msgs


def fill_postern(port, msgs, sessions=16):
    chunks = [msgs[i::sessions] for i in range(sessions)]

    def send(chunk):
        with smtplib.SMTP("127.0.0.1", port, timeout=600) as s:
            for m in chunk:
                s.sendmail("list@list.test", [USER], m)

    with ThreadPoolExecutor(max_workers=sessions) as ex:
        list(ex.map(send, chunks))


def postern_order(p, msgs):
    """[(message, internal date)] in postern's UID order: the 16 SMTP
    sessions interleave, so that is not the corpus order."""
    by_id = {}
    for m in msgs:
        mid = m.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode()
        by_id[mid] = m
    db = p._db()
    try:
        rows = db.execute(
            "SELECT s.message_id, m.internal_date FROM messages m "
            "JOIN structures s ON s.blob = m.blob "
            "JOIN mailboxes b ON b.id = m.mailbox "
            "JOIN accounts a ON a.id = b.account "
            "WHERE a.address = ? AND b.name = 'INBOX' ORDER BY m.uid",
            (USER,)).fetchall()
    finally:
        db.close()
    return [(by_id[mid], t) for mid, t in rows]


def fill_maildir(home, ordered, uid, gid):
    """The messages as Maildir files in postern's order, each with
    postern's internal date as its mtime (Dovecot's received date), so
    that both servers hold the same mailbox and must give the same
    answers (the reply_sha256 values agree)."""
    md = Path(home) / "Maildir"
    for d in ("cur", "new", "tmp"):
        (md / d).mkdir(parents=True, exist_ok=True)
    # Dovecot numbers new files in the order of their names.
    for i, (m, t) in enumerate(ordered):
        name = "%d.M%08dP1.bench,S=%d:2," % (1000000000 + i, i, len(m))
        p = md / "cur" / name
        p.write_bytes(m)
        os.utime(p, (t, t))
    for root, dirs, files in os.walk(Path(home)):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


def dovecot_setup(ref, hashes):
    """Reference.setup without Postfix: only Dovecot is needed here."""
    ref.hashes = hashes
    for d in (ref.root, ref.dc, ref.mail):
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
    if ref.is_root:
        os.chown(ref.mail, ref.mail_uid, ref.mail_gid)
    for k in ("smtp", "imap", "imaps", "pop3", "pop3s"):
        ref.ports[k] = bench.free_port()
    ref.write_dovecot(hashes)


class Client:
    """A minimal plain IMAP client that times commands."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=3600)
        self.f = self.s.makefile("rb")
        self.n = 0
        self.size = 0
        self.f.readline()

    def cmd(self, text):
        self.n += 1
        tag = b"b%d" % self.n
        t = time.monotonic()
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        h = hashlib.sha256()
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("connection closed during %s" % text)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError("%s: %r" % (text, line))
                self.digest = h.hexdigest()[:12]
                return time.monotonic() - t, self.size
            h.update(line)
            self.size = len(line)


def measure(name, port, runs, nmsgs):
    c = Client(port)
    c.cmd('LOGIN "%s" "%s"' % (USER, bench.PASSWORD))
    sel, _ = c.cmd("SELECT INBOX")
    print("sort_thread server=%s msgs=%d cmd=\"SELECT INBOX\" first_s=%.3f"
          % (name, nmsgs, sel), flush=True)
    out = {}
    for cmd in COMMANDS:
        times = []
        size = 0
        for _ in range(runs):
            t, size = c.cmd(cmd)
            times.append(t)
        warm = times[1:] or times
        out[cmd] = statistics.median(warm)
        print("sort_thread server=%s msgs=%d cmd=\"%s\" first_s=%.3f "
              "median_s=%.3f min_s=%.3f max_s=%.3f reply_bytes=%d "
              "reply_sha256=%s machine=\"%s, %d cpus\"" % (
                  name, nmsgs, cmd, times[0], statistics.median(warm),
                  min(warm), max(warm), size, c.digest, platform.machine(),
                  os.cpu_count()), flush=True)
    c.cmd("LOGOUT")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--postern", default=str(bench.REPO / "build" /
                                             "postern"))
    ap.add_argument("--msgs", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/postern-bench-sort")
    ap.add_argument("--dovecot", action="store_true",
                    help="also measure a private Dovecot")
    cfg = ap.parse_args()
    root = Path(cfg.dir)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    root.chmod(0o755)
    bench.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
               "-keyout", root / "key.pem", "-out", root / "cert.pem",
               "-days", "30", "-subj", "/CN=" + bench.HOSTNAME])
    (root / "key.pem").chmod(0o644)
    cert, key = root / "cert.pem", root / "key.pem"
    msgs = corpus(cfg.msgs)
    p = bench.Postern(root, str(Path(cfg.postern).resolve()), cert, key)
    p.setup([USER])
    ref = None
    try:
        p.start()
        t = time.monotonic()
        fill_postern(p.port("smtp"), msgs)
        bench.wait_count(p, [USER], len(msgs), timeout=3600)
        bench.log("postern: %d messages delivered in %.1f s"
                  % (len(msgs), time.monotonic() - t))
        measure("postern", p.port("imap"), cfg.runs, len(msgs))
        if cfg.dovecot:
            hashes = p.hashes()
            ordered = postern_order(p, msgs)
            p.stop()
            ref = bench.Reference(root, cert, key)
            dovecot_setup(ref, hashes)
            fill_maildir(ref.mail / bench.DOMAIN / USER.split("@")[0],
                         ordered, ref.mail_uid, ref.mail_gid)
            ref.daemon(["dovecot", "-c", ref.dc / "dovecot.conf"])
            ref.started = True
            bench.wait_port(ref.ports["imap"])
            measure("dovecot", ref.ports["imap"], cfg.runs, len(msgs))
    finally:
        p.stop()
        if ref is not None and getattr(ref, "started", False):
            ref.daemon(["doveadm", "-c", ref.dc / "dovecot.conf", "stop"])


if __name__ == "__main__":
    main()
