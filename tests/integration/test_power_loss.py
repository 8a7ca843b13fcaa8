"""Power loss under SMTP load (issue 15, "Power loss and a full disk").

The data directory lives on ext4 on a loop device. Several smtplib
clients deliver, and one imaplib client APPENDs, while the file system is
shut down with EXT4_IOC_SHUTDOWN and EXT4_GOING_FLAGS_NOLOGFLUSH (what was
not committed to the journal is lost, as at a power cut); the server gets
SIGKILL, the file system is unmounted and mounted again (journal replay)
and a new server starts on it. Over IMAP: every message that got its 250
is readable, exactly once, and every APPEND answered OK is at the UID its
APPENDUID named; nothing is there twice or from nowhere; UIDVALIDITY stays
and a UID, once seen, names the same message after another restart and
after every later power cut. `postern store check` finds nothing at the
end.

test_smtp_kill.py does the same with SIGKILL alone, where the kernel
still writes everything back; here the last moments never reach the disk.
"""

import imaplib
import os
import random
import re
import smtplib
import threading
import time
import uuid

import pytest

from imap_helpers import restart
from postern_harness import add_user, admin_ok, mail_config_text, run_admin
from scratch_fs import Ext4Loop

ALICE = "alice@example.test"
PASSWORD = "alice-Pw-1"
LISTENERS = [("smtp", "smtp", "none"), ("imap", "imap", "none")]
SENDERS = 4
ROUNDS = int(os.environ.get("POSTERN_POWER_ROUNDS", "3"))
SUBJECT_RE = re.compile(rb"(?:^|\r\n)Subject: power (\w+)\r\n")


@pytest.fixture
def power_fs(tmp_path):
    """ext4 on a loop device; unmounted and detached whatever happens.
    Ask for it before postern_factory so that the servers stop first."""
    with Ext4Loop(tmp_path / "fs", size_mb=96) as fs:
        yield fs


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
                msg = ("From: sender@remote.test\r\nTo: %s\r\n"
                       "Subject: power %s\r\nMessage-ID: <%s@remote.test>"
                       "\r\n\r\nbody of %s\r\n" % (ALICE, tok, tok, tok)
                       ).encode()
                with lock:
                    tried.add(tok)
                s.sendmail("sender@remote.test", [ALICE], msg)
                # sendmail returned: the server said 250 to the data.
                with lock:
                    acked.add(tok)
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass


def append_blast(port, stop, appended, tried, lock):
    """APPENDs messages until stop is set or the server is gone; records
    the UID of each APPENDUID answer (RFC 4315 §3)."""
    try:
        m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        m.login(ALICE, PASSWORD)
        while not stop.is_set():
            tok = uuid.uuid4().hex
            msg = ("From: sender@remote.test\r\nTo: %s\r\n"
                   "Subject: power %s\r\n\r\nbody of %s\r\n" % (
                       ALICE, tok, tok)).encode()
            with lock:
                tried.add(tok)
            typ, data = m.append("INBOX", None, None, msg)
            if typ != "OK":
                return
            uid = re.search(rb"\[APPENDUID \d+ (\d+)\]", data[0])
            assert uid, data
            with lock:
                appended[tok] = int(uid.group(1))
    except (imaplib.IMAP4.error, OSError, EOFError):
        pass


def read_inbox(srv):
    """Over IMAP: (UIDVALIDITY, {uid: token}); checks that each message
    reads back whole."""
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=60)
    try:
        typ, data = m.login(ALICE, PASSWORD)
        assert typ == "OK", data
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK", data
        typ, uv = m.response("UIDVALIDITY")
        uidvalidity = int(uv[0])
        typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        assert typ == "OK", data
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            raw = item[1]
            tok = SUBJECT_RE.search(raw)
            assert tok, "UID %d has no Subject: %r" % (uid, raw[:300])
            tok = tok.group(1).decode()
            assert raw.endswith(b"\r\n\r\nbody of %s\r\n" % tok.encode()), \
                "UID %d (%s) does not read back whole: %r" % (uid, tok, raw)
            assert uid not in out, "UID %d listed twice" % uid
            out[uid] = tok
        m.logout()
        return uidvalidity, out
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def test_power_cut_under_smtp_load_loses_no_acknowledged_message(
        power_fs, postern_factory, default_cert, tmp_path):
    data = power_fs.mnt / "data"
    data.mkdir(mode=0o700)
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    text = mail_config_text(data, [("main", default_cert)], LISTENERS,
                            server={"allow_plaintext_auth": "yes"})
    path = cfg_dir / "postern.conf"
    path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, ALICE, PASSWORD)

    rng = random.Random()
    acked, tried, lock = set(), set(), threading.Lock()
    appended = {}       # token -> UID of its APPENDUID
    uid_owner = {}      # uid -> token, every message ever seen
    uidvalidity = None
    cuts = []
    for round_ in range(ROUNDS):
        srv = postern_factory(config_text=text, listeners=LISTENERS)
        stop = threading.Event()
        threads = [threading.Thread(target=blast, daemon=True,
                                    args=(srv.ports["smtp"], stop, acked,
                                          tried, lock))
                   for _ in range(SENDERS)]
        threads.append(threading.Thread(
            target=append_blast, daemon=True,
            args=(srv.ports["imap"], stop, appended, tried, lock)))
        before = len(acked)
        for t in threads:
            t.start()
        delay = rng.uniform(0.3, 1.5)
        time.sleep(delay)
        with lock:
            in_round = len(acked) - before
        power_fs.power_cut()
        srv.proc.kill()          # SIGKILL
        srv.proc.wait(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a client hangs after the power cut"
        cuts.append((round(delay, 3), in_round))
        assert in_round > 0, \
            "no message was acknowledged in %.2fs (round %d); stderr:\n%s" \
            % (delay, round_, srv.log_text())
        power_fs.remount()

        srv = postern_factory(config_text=text, listeners=LISTENERS)
        uv, inbox = read_inbox(srv)
        if uidvalidity is None:
            uidvalidity = uv
        assert uv == uidvalidity, "UIDVALIDITY changed after a power cut"
        stored = {}
        for uid, tok in inbox.items():
            stored.setdefault(tok, []).append(uid)
        missing = sorted((acked | set(appended)) - set(stored))
        doubled = {t: u for t, u in stored.items() if len(u) > 1}
        strangers = set(stored) - tried
        assert not missing, "%d of %d acknowledged messages are lost " \
            "after power cut %d (cuts after %s s): %s" % (
                len(missing), len(acked), round_, cuts, missing[:5])
        assert not doubled, "stored more than once: %s" % doubled
        assert not strangers, strangers
        for tok, uid in appended.items():
            assert inbox.get(uid) == tok, \
                "APPENDUID said %d for %s; the mailbox has %s there" % (
                    uid, tok, inbox.get(uid))
        for uid, tok in inbox.items():
            assert uid_owner.setdefault(uid, tok) == tok, \
                "UID %d was %s and is now %s" % (uid, uid_owner[uid], tok)
        gone = set(uid_owner) - set(inbox)
        assert not gone, "UIDs seen before are gone: %s" % sorted(gone)[:5]

        # Another restart, a clean one: the same UIDs name the same
        # messages.
        restart(srv)
        assert read_inbox(srv) == (uv, inbox), \
            "UIDs changed across a clean restart after power cut %d" % round_
        assert srv.stop() == 0, srv.log_text()

    print("power cuts after (s, acknowledged in the round): %s; %d "
          "acknowledged by SMTP, %d appended, %d tried, %d stored" % (
              cuts, len(acked), len(appended), len(tried), len(uid_owner)))
    r = run_admin(path, "store", "check")
    assert r.returncode == 0 and \
        r.stdout.strip().splitlines()[-1] == "store check: 0 problems", \
        (r.returncode, r.stdout, r.stderr)
