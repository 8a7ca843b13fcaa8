#!/usr/bin/env python3
"""What a Prometheus scrape of /metrics costs (issue 18): size of the page
and the time to answer it over plain HTTP on loopback, N scrapes in a row
on an idle server with one domain and one user; also the server's RSS.

    POSTERN_BIN=build/postern /usr/bin/python3 bench/metrics_scrape.py --n 1000
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

from http_helpers import request, start_http_server  # noqa: E402
from postern_harness import HOSTNAME, Postern, make_cert  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        cert = make_cert(base / "cert", "main", HOSTNAME, [HOSTNAME])
        servers = []

        def factory(config_text, listeners):
            d = base / "srv"
            d.mkdir(exist_ok=True)
            s = Postern(d, [("main", cert)], listeners=listeners,
                        config_text=config_text).start()
            servers.append(s)
            return s

        srv = start_http_server(factory, base / "cfg", cert)
        try:
            port = srv.ports["metrics"]
            times = []
            size = 0
            for _ in range(args.n):
                t = time.perf_counter()
                r = request(port, "GET", "/metrics", host="127.0.0.1")
                times.append(time.perf_counter() - t)
                assert r.status == 200
                size = len(r.body)
            times.sort()
            rss = 0
            for line in open("/proc/%d/status" % srv.proc.pid):
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
            print(json.dumps({
                "scrapes": args.n, "bytes": size,
                "median_ms": round(statistics.median(times) * 1000, 3),
                "p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 3),
                "rss_kb": rss}))
        finally:
            for s in servers:
                s.stop()


if __name__ == "__main__":
    main()
