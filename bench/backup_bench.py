#!/usr/bin/python3
"""Backup throughput and the pause the server sees (issue 23).

Starts postern on loopback (its own scratch directory, one account),
delivers --messages messages of about --size bytes by SMTP over several
connections, then:
  - measures SMTP delivery latency (one message every --probe-ms on one
    connection, MAIL FROM to the 250 after the data) for --quiet seconds
    with nothing else running;
  - runs `postern backup DIR --json` while the probe goes on, and again
    with --incremental (nothing new: every blob kept, each one re-read and
    hashed), and `postern backup verify`;
  - prints one JSON line: machine, settings, seconds and messages/s and
    MB/s of each run, and the probe's latency (median, p99, max, in ms)
    before and during the full backup.

    bench/backup_bench.py [--messages 5000] [--size 4096] [--bin build/postern]

Only the Python standard library. Runs as any user (as root the server
stays root: user = root).
"""

import argparse
import json
import os
import platform
import re
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(binary, *args, stdin=None, timeout=3600):
    r = subprocess.run([binary, *map(str, args)], capture_output=True,
                       text=True, input=stdin, timeout=timeout)
    if r.returncode != 0:
        sys.exit("bench: postern %s failed: %s%s" % (" ".join(map(str, args)),
                                                    r.stdout, r.stderr))
    return r.stdout


def body(size, tok):
    line = ("%s " % tok + "y" * 70 + "\r\n").encode()
    head = ("From: s@other.test\r\nTo: u@example.test\r\nSubject: %s\r\n"
            "\r\n" % tok).encode()
    return head + line * max(1, (size - len(head)) // len(line))


def deliver(port, n, size):
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as s:
        for _ in range(n):
            tok = uuid.uuid4().hex
            s.sendmail("s@other.test", ["u@example.test"], body(size, tok))


class Probe(threading.Thread):
    """One delivery every interval seconds; latencies by phase."""

    def __init__(self, port, interval):
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.phase = "before"
        self.lat = {}
        self.stop = threading.Event()

    def run(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=120) as s:
            while not self.stop.is_set():
                msg = body(2048, uuid.uuid4().hex)
                phase = self.phase      # where it started
                t = time.monotonic()
                s.sendmail("s@other.test", ["u@example.test"], msg)
                self.lat.setdefault(phase, []).append(
                    (time.monotonic() - t) * 1000)
                time.sleep(self.interval)


def summary(ms):
    ms = sorted(ms)
    if not ms:
        return None
    return {"n": len(ms), "median": round(statistics.median(ms), 1),
            "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
            "max": round(ms[-1], 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--bin", default=str(REPO / "build" / "postern"))
    ap.add_argument("--probe-ms", type=float, default=20)
    ap.add_argument("--quiet", type=float, default=5)
    ap.add_argument("--backup-dir", help="where the backup goes (default: "
                    "beside the data directory, on its file system)")
    ap.add_argument("--dir", help="scratch directory (default: a new one "
                    "under /tmp, removed at the end)")
    a = ap.parse_args()
    scratch = Path(a.dir or tempfile.mkdtemp(prefix="postern-bk-"))
    data = scratch / "data"
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    conf = scratch / "postern.conf"
    user = "user = root\n" if os.geteuid() == 0 else ""
    conf.write_text("[server]\nhostname = mail.example.test\ndata_dir = %s\n"
                    "workers = 2\nlog_level = info\n%s\n"
                    "[listener smtp]\naddress = 127.0.0.1\nport = 0\n"
                    "protocol = smtp\ntls = none\n" % (data, user))
    run(a.bin, "domain", "add", "example.test", "-c", conf)
    run(a.bin, "user", "add", "u@example.test", "-c", conf, stdin="pw-x1\n")
    srv = subprocess.Popen([a.bin, "serve", "-c", conf],
                           stderr=subprocess.PIPE, text=True)
    port = None
    for line in srv.stderr:
        m = re.search(r"event=listener\.ready .*port=(\d+)", line)
        if m:
            port = int(m.group(1))
        if "event=server.ready" in line:
            break
    threading.Thread(target=lambda: [None for _ in srv.stderr],
                     daemon=True).start()
    try:
        t = time.monotonic()
        per, conns = a.messages // 8, 8
        with ThreadPoolExecutor(conns) as ex:
            list(ex.map(lambda i: deliver(port, per + (a.messages % conns
                                                       if i == 0 else 0),
                                          a.size), range(conns)))
        load_s = time.monotonic() - t
        probe = Probe(port, a.probe_ms / 1000)
        probe.start()
        time.sleep(a.quiet)
        bdir = Path(a.backup_dir) if a.backup_dir else scratch / "backup"
        probe.phase = "full"
        t = time.monotonic()
        full = json.loads(run(a.bin, "backup", bdir, "--json", "-c", conf))
        full_s = time.monotonic() - t
        probe.phase = "between"
        time.sleep(1)
        probe.phase = "incremental"
        t = time.monotonic()
        incr = json.loads(run(a.bin, "backup", bdir, "--incremental",
                              "--json", "-c", conf))
        incr_s = time.monotonic() - t
        probe.phase = "after"
        time.sleep(1)
        probe.stop.set()
        probe.join()
        t = time.monotonic()
        run(a.bin, "backup", "verify", bdir)
        verify_s = time.monotonic() - t
        mb = full["bytes"] / 1e6
        print(json.dumps({
            "bench": "backup", "machine": platform.node(),
            "cpus": os.cpu_count(), "kernel": platform.release(),
            "messages": a.messages, "size": a.size,
            "load_msgs_per_s": round(a.messages / load_s),
            "full": {"blobs": full["blobs"], "files": full["files"],
                     "mb": round(mb, 1), "seconds": round(full_s, 2),
                     "msgs_per_s": round(full["blobs"] / full_s),
                     "mb_per_s": round(mb / full_s, 1)},
            "incremental": {"copied": incr["blobs_copied"],
                            "kept": incr["blobs_kept"],
                            "seconds": round(incr_s, 2)},
            "verify_seconds": round(verify_s, 2),
            "smtp_latency_ms": {k: summary(v)
                                for k, v in probe.lat.items()},
        }))
    finally:
        srv.terminate()
        srv.wait(timeout=30)
        if not a.dir:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
