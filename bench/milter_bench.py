#!/usr/bin/env python3
"""A milter's cost to SMTP throughput (issue 16): the same server
configuration without milters and with one milter on the smtp listener,
alternating. The milter is the accept-everything Python peer of the tests
(tests/integration/milter_peer.py: answers 'continue' to every step, no
changes), so the figure is postern's side of the conversation (spool,
thread per step, the round trips) plus that peer's own time.

Prints one JSON line per run: machine, settings, seconds, msgs/s.

    POSTERN_BIN=build/postern /usr/bin/python3 bench/milter_bench.py \\
        --msgs 250 --clients 4 --rounds 2
"""

import argparse
import json
import os
import platform
import shutil
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

from imap_helpers import IMAP_LISTENERS  # noqa: E402
from milter_peer import MilterPeer  # noqa: E402
from postern_harness import (HOSTNAME, Postern, add_user, admin_ok,  # noqa
                             make_cert, write_mail_config)

MSG = (b"From: a@other.test\r\nTo: r@example.test\r\nSubject: x\r\n\r\n" +
       b"x" * 2000 + b"\r\n")


def one_run(base, cert, peer, mode, msgs, clients):
    d = base / mode
    d.mkdir()
    path, _, text = write_mail_config(d, [("main", cert)], IMAP_LISTENERS)
    if mode == "on":
        text = text.replace("[listener smtp]\n",
                            "[listener smtp]\nmilters = peer\n")
        text += "\n[milter peer]\nsocket = %s\n" % peer.socket_spec()
    path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, "r@example.test", "r-Secret-123")
    srv = Postern(d, [("main", cert)], listeners=IMAP_LISTENERS,
                  config_text=text).start()
    port = srv.ports["smtp"]
    peer.reset()

    def worker():
        with smtplib.SMTP("127.0.0.1", port, local_hostname="helo.test",
                          timeout=60) as s:
            for _ in range(msgs):
                s.sendmail("a@other.test", ["r@example.test"], MSG)

    t0 = time.time()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.time() - t0
    seen = len(peer.seen("eom"))
    srv.stop()
    shutil.rmtree(d, ignore_errors=True)
    return seconds, seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--msgs", type=int, default=250, help="per client")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="milter-bench-"))
    cert = make_cert(base, "main", HOSTNAME, [HOSTNAME])
    peer = MilterPeer()
    try:
        for r in range(a.rounds):
            for mode in ("off", "on"):
                seconds, seen = one_run(base, cert, peer, mode, a.msgs,
                                        a.clients)
                n = a.msgs * a.clients
                print(json.dumps({
                    "bench": "milter", "machine": platform.node(),
                    "cpus": os.cpu_count(),
                    "load": round(os.getloadavg()[0], 1), "round": r,
                    "milter": mode, "msgs": n, "clients": a.clients,
                    "milter_eoms": seen, "seconds": round(seconds, 2),
                    "msgs_per_s": round(n / seconds, 1)}), flush=True)
    finally:
        peer.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
