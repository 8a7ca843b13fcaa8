#!/usr/bin/env python3
"""SPF's cost to SMTP throughput (issue 16, Speed): the same server
configuration with [spf] check = no and with SPF checked for every message
(skip_networks empty, so loopback clients are checked), alternating, on a
private dnsmasq. Each check asks 6 questions: the sender's TXT, MX, the MX
host's A, an a: name, an include's TXT, and the HELO name's TXT.

Prints one JSON line per run: machine, settings, seconds, msgs/s.

    POSTERN_BIN=build/postern /usr/bin/python3 bench/spf_bench.py \\
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

from dns_helpers import Dnsmasq  # noqa: E402
from imap_helpers import IMAP_LISTENERS  # noqa: E402
from postern_harness import (HOSTNAME, Postern, add_user, admin_ok,  # noqa
                             make_cert, write_mail_config)

DNS_LINES = [
    'txt-record=pass.test,"v=spf1 mx a:a.test include:inc.test -all"',
    'txt-record=inc.test,"v=spf1 ip4:127.0.0.1 -all"',
    "mx-host=pass.test,mail.pass.test,10",
    "host-record=mail.pass.test,127.0.0.7",
    "host-record=a.test,127.0.0.8",
]
MSG = (b"From: a@pass.test\r\nTo: r@example.test\r\nSubject: x\r\n\r\n" +
       b"x" * 2000 + b"\r\n")


def one_run(base, cert, dns_port, mode, msgs, clients):
    d = base / mode
    d.mkdir()
    spf = {"check": "no"} if mode == "off" else {"skip_networks": ""}
    path, _, text = write_mail_config(
        d, [("main", cert)], IMAP_LISTENERS,
        queue={"resolver": "127.0.0.1", "resolver_port": dns_port})
    text += "\n[spf]\n" + "".join("%s = %s\n" % kv for kv in spf.items())
    path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, "r@example.test", "r-Secret-123")
    srv = Postern(d, [("main", cert)], listeners=IMAP_LISTENERS,
                  config_text=text).start()
    port = srv.ports["smtp"]

    def worker():
        with smtplib.SMTP("127.0.0.1", port, local_hostname="helo.test",
                          timeout=60) as s:
            for _ in range(msgs):
                s.sendmail("a@pass.test", ["r@example.test"], MSG)

    t0 = time.time()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.time() - t0
    checked = srv.log_text().count("event=smtp.spf ")
    srv.stop()
    shutil.rmtree(d, ignore_errors=True)
    return seconds, checked


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--msgs", type=int, default=250, help="per client")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="spf-bench-"))
    cert = make_cert(base, "main", HOSTNAME, [HOSTNAME])
    dns = Dnsmasq(base, DNS_LINES)
    try:
        for r in range(a.rounds):
            for mode in ("off", "on"):
                seconds, checked = one_run(base, cert, dns.port, mode,
                                           a.msgs, a.clients)
                n = a.msgs * a.clients
                print(json.dumps({
                    "bench": "spf", "machine": platform.node(),
                    "cpus": os.cpu_count(),
                    "load": round(os.getloadavg()[0], 1), "round": r,
                    "spf": mode, "msgs": n, "clients": a.clients,
                    "spf_checks": checked, "seconds": round(seconds, 2),
                    "msgs_per_s": round(n / seconds, 1)}), flush=True)
    finally:
        dns.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
