#!/usr/bin/env python3
"""DKIM verification's cost to SMTP throughput (issue 16, Speed): the same
server configuration with [dkim] verify = no and = yes, alternating, on
messages of 2 KB signed by dkimpy (rsa-sha256 2048 bits, relaxed/relaxed;
--ed25519 for ed25519-sha256), the key on a private dnsmasq. SPF is off in
both (loopback is skipped by default), so the difference is DKIM's: the
spool of the held body, the body hash, one signature check a message, and
the key's TXT question while the server's cache does not hold it (the key
is published with a TTL of 300 s; --no-cache-ttl publishes it with 0).

Prints one JSON line per run: machine, settings, seconds, msgs/s.

    POSTERN_BIN=build/postern /usr/bin/python3 bench/dkim_bench.py \\
        --msgs 250 --clients 4 --rounds 3
"""

import argparse
import base64
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

import dkim
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

from dns_helpers import Dnsmasq, records_to_dnsmasq  # noqa: E402
from imap_helpers import IMAP_LISTENERS  # noqa: E402
from postern_harness import (HOSTNAME, Postern, add_user, admin_ok,  # noqa
                             make_cert, write_mail_config)

MSG = (b"From: a@a.test\r\nTo: r@example.test\r\nSubject: x\r\n"
       b"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
       b"Message-ID: <bench@a.test>\r\n\r\n" +
       b"".join(b"x" * 78 + b"\r\n" for _ in range(25)))


def signed(ed):
    if ed:
        k = nacl.signing.SigningKey.generate()
        rec = "v=DKIM1; k=ed25519; p=" + base64.b64encode(
            bytes(k.verify_key)).decode()
        sig = dkim.sign(MSG, b"s1", b"a.test", base64.b64encode(bytes(k)),
                        canonicalize=(b"relaxed", b"relaxed"),
                        signature_algorithm=b"ed25519-sha256")
    else:
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = k.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
        rec = "v=DKIM1; k=rsa; p=" + base64.b64encode(
            k.public_key().public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
        sig = dkim.sign(MSG, b"s1", b"a.test", pem,
                        canonicalize=(b"relaxed", b"relaxed"))
    return sig + MSG, rec


def one_run(base, cert, dns_port, mode, msgs, clients, msg):
    d = base / mode
    d.mkdir()
    path, _, text = write_mail_config(
        d, [("main", cert)], IMAP_LISTENERS,
        queue={"resolver": "127.0.0.1", "resolver_port": dns_port})
    text += "\n[dkim]\nverify = %s\n" % ("yes" if mode == "on" else "no")
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
                s.sendmail("a@a.test", ["r@example.test"], msg)

    t0 = time.time()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.time() - t0
    log = srv.log_text()
    checked = log.count("event=smtp.dkim results=pass ")
    srv.stop()
    shutil.rmtree(d, ignore_errors=True)
    return seconds, checked


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--msgs", type=int, default=250, help="per client")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ed25519", action="store_true")
    ap.add_argument("--no-cache-ttl", action="store_true",
                    help="publish the key with TTL 0 (nothing cached)")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dkim-bench-"))
    cert = make_cert(base, "main", HOSTNAME, [HOSTNAME])
    msg, rec = signed(a.ed25519)
    # A TTL as published keys have (dnsmasq's default is 0): with
    # --no-cache-ttl every message asks for the key again.
    dns = Dnsmasq(base, records_to_dnsmasq(
        [("s1._domainkey.a.test", "TXT", rec)]) +
        ([] if a.no_cache_ttl else ["local-ttl=300"]))
    try:
        for r in range(a.rounds):
            for mode in ("off", "on"):
                seconds, checked = one_run(base, cert, dns.port, mode,
                                           a.msgs, a.clients, msg)
                n = a.msgs * a.clients
                print(json.dumps({
                    "bench": "dkim", "machine": platform.node(),
                    "cpus": os.cpu_count(),
                    "load": round(os.getloadavg()[0], 1), "round": r,
                    "alg": "ed25519" if a.ed25519 else "rsa2048",
                    "dkim": mode, "key_ttl": 0 if a.no_cache_ttl else 300,
                    "msgs": n, "clients": a.clients,
                    "dkim_pass": checked, "seconds": round(seconds, 2),
                    "msgs_per_s": round(n / seconds, 1)}), flush=True)
    finally:
        dns.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
