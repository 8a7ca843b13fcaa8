#!/usr/bin/python3
"""Before/after measurements of one postern binary on the data a bench run
left behind: starts BINARY on DATA/postern/postern.conf, runs the IMAP mix
(bench/imap_load.c) in closed loop (rate 0) and open loop at each rate, and
prints throughput, postern's CPU per command and p50/p99 per command.

  bench/cpu_per_command.py BINARY RATES SECONDS [--data DIR] [--bin-dir DIR]

e.g. `bench/cpu_per_command.py build/bench/postern 0,400,700 15` after a
`bench.py --loads imap` run whose --dir was /tmp/postern-bench. Run two
binaries in turn, twice each, to compare them."""
import argparse
import json
import os
import re
import subprocess
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("rates", help="comma-separated; 0 is the closed loop")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--data", default="/tmp/postern-bench")
    ap.add_argument("--bin-dir", default=str(BENCH.parent / "build/bench"))
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--clients", type=int, default=50)
    a = ap.parse_args()
    root = Path(a.data) / "postern"
    log = root / "cpu_per_command.log"
    p = subprocess.Popen([str(Path(a.binary).resolve()), "serve", "-c", str(root / "postern.conf")],
                         cwd=root, stdout=open(log, "w"),
                         stderr=subprocess.STDOUT)
    try:
        text = ""
        for _ in range(200):
            time.sleep(0.1)
            text = log.read_text()
            if "server.ready" in text:
                break
        m = re.search(r"listener.ready name=imap .*port=(\d+)", text)
        if not m:
            raise SystemExit("postern did not start: see %s" % log)

        def cpu():
            st = Path("/proc/%d/stat" % p.pid).read_text()
            st = st.rsplit(")", 1)[1].split()
            return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        base = [str(Path(a.bin_dir) / "imap_load"), "mix", "-p", m.group(1),
                "-u", "m%03d@example.test", "-n", str(a.users), "-w",
                "bench-password", "-c", str(a.clients)]
        # A warm-up that fills the authentication cache.
        subprocess.run(base + ["-d", "3"], capture_output=True)
        for rate in (float(x) for x in a.rates.split(",")):
            c0, load = cpu(), os.getloadavg()[0]
            argv = base + ["-d", str(a.seconds)]
            if rate:
                argv += ["--rate", str(rate)]
            out = subprocess.run(argv, capture_output=True, text=True)
            r = json.loads(out.stdout.splitlines()[-1])
            used = cpu() - c0
            print("%s rate=%s: %.0f ops/s, postern CPU %.2f ms per command, "
                  "load average %.2f, errors %d" % (
                      a.binary, rate or "closed",
                      r["ops_done"] / r["seconds"],
                      used * 1000 / max(r["ops_done"], 1), load, r["errors"]))
            print("   " + "  ".join(
                "%s %.2f/%.1f" % (k, v["p50_ms"], v["p99_ms"])
                for k, v in r["ops"].items()), flush=True)
    finally:
        p.terminate()
        p.wait()


if __name__ == "__main__":
    main()
