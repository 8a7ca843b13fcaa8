#!/usr/bin/python3
"""postern migrate throughput (issue 23): a private Dovecot (the one
tests/integration/test_migrate.py starts) filled over IMAP APPEND with N
messages of varied size in 4 folders, then one `postern migrate` from
imaps:// into an empty store. Prints one line: messages/s, MB/s, and the
CPU seconds of postern migrate and of Dovecot's processes during the run,
so that it says which side is the limit.

    /usr/bin/python3 bench/migrate_bench.py --msgs 5000 --postern build/postern
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from postern_harness import admin_ok, add_user, make_cert, write_mail_config  # noqa: E402
from test_migrate import Dovecot, append, q  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    try:
        f = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / CLK
    except (OSError, IndexError):
        return None


def dovecot_pids(master):
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            f = (p / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f[1]) == master or int(p.name) == master:
            out.append(int(p.name))
    return out


class CpuWatch(threading.Thread):
    """Largest CPU time seen per process of the Dovecot master (its
    children come and go with the connections)."""

    def __init__(self, master):
        super().__init__(daemon=True)
        self.master, self.seen, self.stop = master, {}, False
        self.start_cpu = {p: proc_cpu(p) or 0 for p in dovecot_pids(master)}

    def run(self):
        while not self.stop:
            for p in dovecot_pids(self.master):
                c = proc_cpu(p)
                if c is not None:
                    self.seen[p] = max(self.seen.get(p, 0), c)
            time.sleep(0.05)

    def total(self):
        return sum(c - self.start_cpu.get(p, 0) for p, c in self.seen.items())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--msgs", type=int, default=5000)
    ap.add_argument("--postern", default=str(REPO / "build" / "postern"))
    args = ap.parse_args()
    os.environ["POSTERN_BIN"] = args.postern

    user, pw = "bench@source.test", "bench-pw"
    dc = Dovecot({user: pw})
    work = Path(tempfile.mkdtemp(prefix="postern-migrate-bench-"))
    try:
        rnd = random.Random(23)
        c = dc.imap(user)
        folders = ["INBOX", "Archive 2019", "Work/Projects", "Sent Items"]
        for f in folders[1:3]:
            c.create(q(f))
        total_bytes = 0
        for i in range(args.msgs):
            # Sizes like a mailbox's: mostly small, some large.
            size = int(rnd.lognormvariate(8.5, 1.2))
            size = max(300, min(size, 2 << 20))
            body = ("%07d " % i + "x" * 70 + "\r\n") * (size // 80 + 1)
            msg = ("From: a%d@other.test\r\nTo: bench@example.test\r\n"
                   "Subject: bench %d\r\nMessage-ID: <b%d@other.test>\r\n"
                   "\r\n%s" % (i, i, i, body)).encode()
            total_bytes += len(msg)
            append(c, folders[i % len(folders)], msg,
                   "(\\Seen)" if i % 3 else "", 1300000000 + i * 600)
        c.logout()

        cert = make_cert(work / "certs", "main", "mail.example.test",
                         ["mail.example.test"])
        cfg, data, _ = write_mail_config(work, [("main", cert)],
                                         [("imaps", "imap", "implicit")])
        admin_ok(cfg, "domain", "add", "example.test")
        add_user(cfg, "bench@example.test", "target-pw")

        master = int((dc.root / "run" / "master.pid").read_text())
        watch = CpuWatch(master)
        watch.start()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        r = subprocess.run(
            [args.postern, "migrate", "bench@example.test", "--from",
             "imaps://%s@localhost:%d" % (user, dc.ports["imaps"]),
             "-c", str(cfg), "--ca-file", str(dc.cert.cert_path), "--json"],
            input=pw + "\n", capture_output=True, text=True, timeout=3600)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        watch.stop = True
        watch.join()
        if r.returncode != 0:
            sys.exit("migrate failed: %s %s" % (r.stdout, r.stderr))
        out = json.loads(r.stdout)
        copied = out["totals"]["copied"]
        moved = out["totals"]["bytes"]
        ours = (after.ru_utime - before.ru_utime) + \
            (after.ru_stime - before.ru_stime)
        print("migrate msgs=%d bytes=%d wall_s=%.2f msgs_per_s=%.0f "
              "MB_per_s=%.1f postern_cpu_s=%.2f dovecot_cpu_s=%.2f "
              "cores=%d dovecot=%s" % (
                  copied, moved, wall, copied / wall, moved / wall / 1e6,
                  ours, watch.total(), os.cpu_count(),
                  subprocess.run(["dovecot", "--version"],
                                 capture_output=True,
                                 text=True).stdout.split()[0]))
        assert copied == args.msgs, out["totals"]
        assert total_bytes == moved, (total_bytes, moved)
    finally:
        dc.stop()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
