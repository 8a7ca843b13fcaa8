#!/usr/bin/python3
"""Runs Dovecot's imaptest against a private postern (issue #22).

    bench/imaptest.py --imaptest /tmp/imaptest-src/src/imaptest \\
        --tests /tmp/imaptest-src/src/tests [--postern build/postern] \\
        [--only compliance|bench] [--secs 30] [--clients 10] [--mbox FILE]

imaptest is not in Debian and is never vendored here: build it as
tests/IMAPTEST.md says. This script starts `postern serve` on a loopback
port with a fresh data directory and one account, then

  compliance  runs each script of --tests once (imaptest test=FILE) and
              prints one line per script: commands failed/total and
              whether the group was skipped (a capability postern lacks);
  bench       runs imaptest's benchmark mode (the default command mix)
              with --clients clients for --secs seconds on an mbox of a
              few hundred generated messages, and counts the "Error:"
              lines by kind.

Local runs only: `make check` does not call it. Exit status 0 when no
compliance command failed and the benchmark logged no error.
"""

import argparse
import collections
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "tester@example.test", "imaptest-Secret-1"


def start_postern(binary, root):
    data = root / "data"
    data.mkdir(mode=0o700)
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=mail.example.test"],
                   check=True, capture_output=True)
    conf = root / "postern.conf"
    lines = ["[server]", "hostname = mail.example.test",
             "data_dir = %s" % data, "allow_plaintext_auth = yes"]
    if os.geteuid() == 0:
        lines.append("user = root")
    lines += ["", "[limits]", "max_connections = 20000",
              "max_connections_per_ip = 20000", "",
              "[certificate main]", "cert = %s" % cert, "key = %s" % key, "",
              "[listener imap]", "address = 127.0.0.1", "port = 0",
              "protocol = imap", "tls = none"]
    conf.write_text("\n".join(lines) + "\n")
    for argv, stdin in ((["domain", "add", "-c", conf, "example.test"], ""),
                        (["user", "add", "-c", conf, USER], PASSWORD + "\n")):
        subprocess.run([binary, *map(str, argv)], input=stdin, text=True,
                       check=True, capture_output=True)
    log = open(root / "postern.log", "w+")
    proc = subprocess.Popen([binary, "serve", "-c", str(conf)],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = re.search(r"event=listener\.ready name=imap .*port=(\d+)",
                      (root / "postern.log").read_text())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    sys.exit("postern did not start; see %s" % (root / "postern.log"))


def imaptest(args, port, *extra, timeout=300):
    env = dict(os.environ)
    # imaptest links Dovecot's private libdovecot.so.
    env["LD_LIBRARY_PATH"] = "/usr/lib/dovecot"
    argv = [args.imaptest, "host=127.0.0.1", "port=%d" % port,
            "user=" + USER, "pass=" + PASSWORD, *extra]
    try:
        r = subprocess.run(argv, capture_output=True, text=True,
                           errors="replace", env=env, timeout=timeout)
        return r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        return "TIMEOUT after %ds\n%s" % (timeout, e.stdout or "")


def compliance(args, port):
    scripts = sorted(p for p in Path(args.tests).iterdir()
                     if p.is_file() and not p.name.endswith(".mbox"))
    total_failed = 0
    print("%-32s %9s %9s  %s" % ("script", "passed", "failed", "note"))
    for p in scripts:
        out = imaptest(args, port, "test=%s" % p, timeout=120)
        counts = re.findall(r"(\d+)/(\d+) individual commands failed", out)
        failed = sum(int(a) for a, _ in counts)
        cmds = sum(int(b) for _, b in counts)
        skipped = re.search(r"(\d+) skipped due to missing capabilities",
                            out)
        note = ""
        if skipped and int(skipped.group(1)) > 0:
            note = "skipped: capability missing"
        elif not counts:
            note = "did not run: " + out.strip().splitlines()[-1][:60] \
                if out.strip() else "no output"
            failed = 1
        total_failed += failed
        print("%-32s %9s %9d  %s" % (p.name, "%d/%d" % (cmds - failed, cmds),
                                     failed, note))
        if args.verbose and failed:
            print("\n".join("    " + l for l in out.splitlines()
                            if l.strip()))
    return total_failed


def make_mbox(path, n=300):
    rnd = random.Random(7)
    out = []
    for i in range(n):
        frm = "user%d@example.org" % rnd.randint(1, 40)
        body = "\n".join("line %d of message %d %s"
                         % (j, i, "x" * rnd.randint(0, 60))
                         for j in range(rnd.randint(3, 80)))
        refs = "In-Reply-To: <m%d@example.org>\n" % (i - 1) \
            if i % 4 == 1 else ""
        out.append("From %s Mon Dec  7 05:00:00 2026\nFrom: Sender %d <%s>\n"
                   "To: tester@example.test\nCc: cc%d@example.net\n"
                   "Subject: message %d\nDate: Mon, 7 Dec 2026 05:%02d:00 "
                   "+0000\nMessage-ID: <m%d@example.org>\n%s\n%s\n\n"
                   % (frm, i, frm, i % 7, i, i % 60, i, refs, body))
    path.write_text("".join(out))


def bench(args, port, root):
    mbox = Path(args.mbox) if args.mbox else root / "bench.mbox"
    if not args.mbox:
        make_mbox(mbox)
    out = imaptest(args, port, "mbox=%s" % mbox,
                   "clients=%d" % args.clients, "secs=%d" % args.secs,
                   timeout=args.secs + 120)
    kinds = collections.Counter()
    for l in out.splitlines():
        if l.startswith("Error:"):
            text = re.sub(r"^Error: \S+ ", "", l)
            kinds[re.sub(r"\d+", "N", text)[:100]] += 1
    totals = out[out.rfind("Totals:"):] if "Totals:" in out else out[-2000:]
    print("benchmark: %d clients, %d s: %d errors"
          % (args.clients, args.secs, sum(kinds.values())))
    for k, n in kinds.most_common(15):
        print("%8d  %s" % (n, k))
    print(totals.rstrip())
    return sum(kinds.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--imaptest", required=True)
    ap.add_argument("--tests", help="imaptest's src/tests folder")
    ap.add_argument("--postern", default=str(REPO / "build" / "postern"))
    ap.add_argument("--only", choices=("compliance", "bench"))
    ap.add_argument("--secs", type=int, default=30)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--mbox")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print imaptest's output of each failing script")
    args = ap.parse_args()
    if args.only != "bench" and not args.tests:
        ap.error("--tests is needed for the compliance scripts")
    bad = 0
    with tempfile.TemporaryDirectory(prefix="postern-imaptest-") as d:
        root = Path(d)
        proc, port = start_postern(args.postern, root)
        try:
            if args.only != "bench":
                bad += compliance(args, port)
            if args.only != "compliance":
                bad += bench(args, port, root)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
