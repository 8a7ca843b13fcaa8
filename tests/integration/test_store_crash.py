"""Crash test of the store (issue 3): deliver a stream of messages, kill -9
the process at random moments, reopen, and check that every acknowledged
message is there exactly once and whole, that UIDs are never reused, that
UIDVALIDITY never changes and that store_check finds nothing.

The work is done by tests/tools/store_stress (built next to postern, or
named by POSTERN_STORE_STRESS): "deliver" prints "ACK <uid> <msgid>" only
after store_delivery_commit returned; "check" reopens the store (which
recovers) and lists what is there.
"""
import os
import random
import select
import signal
import subprocess
import time

import pytest

CYCLES = int(os.environ.get("POSTERN_CRASH_CYCLES", "25"))


def stress_tool():
    candidates = [os.environ.get("POSTERN_STORE_STRESS")]
    if os.environ.get("POSTERN_BIN"):
        candidates.append(os.path.join(
            os.path.dirname(os.environ["POSTERN_BIN"]), "store_stress"))
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    for build in ("build", "build-asan"):
        candidates.append(os.path.join(root, build, "store_stress"))
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    return None


TOOL = stress_tool()
pytestmark = pytest.mark.skipif(TOOL is None,
                                reason="store_stress is not built")


def parse_acks(text, acked):
    for line in text.splitlines():
        parts = line.split()
        # A kill can cut the last line short; a cut line was never a
        # complete acknowledgement.
        if len(parts) == 3 and parts[0] == "ACK" and line.endswith("@stress"):
            acked[parts[2]] = int(parts[1])


def run_cycle(data, acked, run_for):
    """Starts a delivering process, kills it after run_for seconds, and
    returns the UIDVALIDITY it announced."""
    proc = subprocess.Popen([TOOL, data, "deliver", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    deadline = time.monotonic() + run_for
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [],
                                    max(0.0, deadline - time.monotonic()))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
    proc.send_signal(signal.SIGKILL)
    rest, err = proc.communicate(timeout=30)
    out += rest
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
    text = out.decode()
    parse_acks(text, acked)
    for line in text.splitlines():
        if line.startswith("READY "):
            return int(line.split()[1])
    return None


def check(data):
    res = subprocess.run([TOOL, data, "check"], capture_output=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    report = {"msgs": {}, "bad": []}
    for line in res.stdout.decode().splitlines():
        parts = line.split()
        if parts[0] == "CHECK":
            report["problems"] = int(parts[1])
        elif parts[0] == "UIDVALIDITY":
            report["uidvalidity"] = int(parts[1])
        elif parts[0] == "UIDNEXT":
            report["uidnext"] = int(parts[1])
        elif parts[0] == "MESSAGES":
            report["count"] = int(parts[1])
        elif parts[0] == "MSG":
            uid = int(parts[1])
            assert uid not in report["msgs"], "UID %d listed twice" % uid
            report["msgs"][uid] = parts[2]
        elif parts[0] == "BAD":
            report["bad"].append(line)
    return report


def test_store_acknowledged_mail_survives_kill_9(tmp_path):
    data = str(tmp_path / "data")
    rng = random.Random(int(os.environ.get("POSTERN_CRASH_SEED",
                                           str(time.time_ns()))))
    acked = {}          # msgid -> uid, every ACK ever read
    uid_owner = {}      # uid -> msgid, every message ever seen
    uidvalidity = None
    uidnext = 1
    for cycle in range(CYCLES):
        # Mostly mid-stream kills; now and then one during open and
        # recovery itself.
        run_for = rng.choice([0.02, 0.1]) if cycle % 5 == 4 else \
            rng.uniform(0.2, 1.5)
        announced = run_cycle(data, acked, run_for)
        report = check(data)
        assert report["problems"] == 0, "store_check after cycle %d" % cycle
        assert report["bad"] == [], report["bad"]
        if "uidvalidity" not in report:
            continue    # killed before the account existed
        if uidvalidity is None:
            uidvalidity = report["uidvalidity"]
        assert report["uidvalidity"] == uidvalidity
        if announced is not None:
            assert announced == uidvalidity
        # UIDNEXT never goes back; counters match the rows.
        assert report["uidnext"] >= uidnext
        uidnext = report["uidnext"]
        assert report["count"] == len(report["msgs"])
        by_msgid = {}
        for uid, msgid in report["msgs"].items():
            assert uid < uidnext
            assert msgid not in by_msgid, "%s stored twice" % msgid
            by_msgid[msgid] = uid
            # A UID, once given, always names the same message.
            assert uid_owner.setdefault(uid, msgid) == msgid, \
                "UID %d reused" % uid
        for msgid, uid in acked.items():
            assert by_msgid.get(msgid) == uid, \
                "acknowledged %s (UID %d) lost after cycle %d" % (
                    msgid, uid, cycle)
        # Nothing is ever expunged here: every message seen stays.
        assert set(uid_owner) == set(report["msgs"])
    assert len(acked) > CYCLES, "too few deliveries to mean anything"
