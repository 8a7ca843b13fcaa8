"""Durability (issue #5, "250 only after it is durable"): messages are
delivered with smtplib from several clients while the server gets SIGKILL
at a random moment; after a restart on the same data directory every
message that got its 250 is in the store exactly once, nothing is there
twice, and `store check` finds no problem."""

import random
import smtplib
import threading
import time
import uuid

from postern_harness import (add_user, admin_ok, run_admin,
                             write_mail_config)
from store_peek import StorePeek

ALICE = "alice@example.test"
SENDERS = 3


def blast(port, stop, acked, tried, lock):
    """Delivers messages until stop is set or the server is gone."""
    while not stop.is_set():
        try:
            s = smtplib.SMTP("127.0.0.1", port,
                             local_hostname="client.example", timeout=10)
        except OSError:
            return
        try:
            while not stop.is_set():
                tok = uuid.uuid4().hex
                msg = ("Subject: kill %s\r\nMessage-ID: <%s@remote.test>"
                       "\r\n\r\nbody of %s\r\n" % (tok, tok, tok)).encode()
                with lock:
                    tried.append(tok)
                s.sendmail("sender@remote.test", [ALICE], msg)
                # sendmail returned: the server said 250 to the data.
                with lock:
                    acked.append(tok)
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass


def stored_tokens(peek):
    counts = {}
    for m in peek.messages(ALICE):
        for line in m.split(b"\r\n"):
            if line.startswith(b"Subject: kill "):
                tok = line[len(b"Subject: kill "):].decode()
                counts[tok] = counts.get(tok, 0) + 1
                break
    return counts


def test_sigkill_during_deliveries_loses_no_acknowledged_message(
        postern_factory, default_cert, tmp_path):
    listeners = [("smtp", "smtp", "none")]
    path, data, text = write_mail_config(
        tmp_path / "kill", [("main", default_cert)], listeners)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, ALICE, "alice-Pw-1")
    peek = StorePeek(data)
    rng = random.Random()
    acked, tried, lock = [], [], threading.Lock()
    kills = []

    for round_ in range(2):
        srv = postern_factory(config_text=text, listeners=listeners)
        stop = threading.Event()
        threads = [threading.Thread(target=blast, daemon=True,
                                    args=(srv.ports["smtp"], stop, acked,
                                          tried, lock))
                   for _ in range(SENDERS)]
        before = len(acked)
        for t in threads:
            t.start()
        delay = rng.uniform(0.4, 1.5)
        kills.append(round(delay, 3))
        time.sleep(delay)
        srv.proc.kill()          # SIGKILL
        srv.proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=15)
            assert not t.is_alive(), "a client hangs after the kill"
        assert len(acked) > before, \
            "no message was acknowledged in %.2fs (round %d); stderr:\n%s" \
            % (delay, round_, srv.log_text())

    # Restart on the same data and look.
    srv = postern_factory(config_text=text, listeners=listeners)
    counts = stored_tokens(peek)
    missing = [t for t in acked if counts.get(t, 0) == 0]
    doubled = {t: n for t, n in counts.items() if n > 1}
    strangers = set(counts) - set(tried)
    assert not missing, "%d of %d acknowledged messages are lost " \
        "(kills after %s s)" % (len(missing), len(acked), kills)
    assert not doubled, "stored more than once: %s" % doubled
    assert not strangers, strangers
    # Messages in flight at the kill may or may not be there, once.
    print("kills after %s s: %d acknowledged, %d tried, %d stored" % (
        kills, len(acked), len(tried), len(counts)))

    # The restarted server works and the store is consistent.
    s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"],
                     local_hostname="client.example", timeout=10)
    try:
        s.sendmail("sender@remote.test", [ALICE],
                   b"Subject: kill after\r\n\r\nstill here\r\n")
    finally:
        s.quit()
    r = run_admin(path, "store", "check")
    assert r.returncode == 0 and \
        r.stdout.strip().splitlines()[-1] == "store check: 0 problems", \
        (r.returncode, r.stdout, r.stderr)
