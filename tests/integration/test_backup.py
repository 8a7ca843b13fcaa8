"""`postern backup`, `postern backup verify` and `postern restore` (issue
#23, "Never lose a mailbox"): an online backup while the server takes mail
and clients change flags and expunge, restored into a new data directory
on which a new server shows every message acknowledged before the backup
with the same UID, UIDVALIDITY and flags, the same accounts, passwords and
queue; incremental runs copy only new blobs and drop expunged ones; a
tampered backup (a flipped byte, a missing or extra file, a path with
"..") is refused by verify and by restore, naming the file; restore
refuses a data directory that is not empty; the store keeps a body file a
running backup may still copy."""

import fcntl
import hashlib
import json
import os
import random
import re
import smtplib
import stat
import threading
import time
import uuid

import pytest

from imap_helpers import Imap, parse_fetch, flag_set, quote
from postern_harness import (QUEUED_RE, add_user, admin_ok, run_admin,
                             run_postern, smtp_auth_plain, smtp_open,
                             smtp_transaction, write_mail_config)
from runas_helpers import reachable_dir, system_user

LISTENERS = [("smtp", "smtp", "none"),
             ("submission", "submission", "none"),
             ("imap", "imap", "none")]
ALICE, ALICE_PW = "alice@example.test", "alice-Secret-1"
BOB, BOB_PW = "bob@example.test", "bob-Secret-2"
AUTH_OK = b"235 2.7.0 Authentication successful\r\n"


def make_config(directory, cert):
    path, data, text = write_mail_config(
        directory, [("main", cert)], LISTENERS,
        server={"allow_plaintext_auth": "yes"},
        auth={"lockout_failures": 1000}, queue={"concurrency": 0})
    return path, data, text


def start_server(factory, directory, cert, prepare=True):
    path, data, text = make_config(directory, cert)
    if prepare:
        admin_ok(path, "domain", "add", "example.test")
        add_user(path, ALICE, ALICE_PW)
        add_user(path, BOB, BOB_PW)
        admin_ok(path, "dkim", "generate", "example.test")
    srv = factory(config_text=text, listeners=LISTENERS)
    srv.admin_config = path
    srv.mail_data = data
    return srv


def payload(tok, size=None):
    """The body of the message with token tok: lines that name it, so a
    body cut short or mixed with another is seen."""
    rng = random.Random(tok)
    n = size if size is not None else rng.randint(1, 40)
    return "".join("%s line %04d %s\r\n" % (tok, i, "x" * rng.randint(0, 60))
                   for i in range(n)).encode()


def message(tok, rcpt, size=None):
    return (("From: sender@other.test\r\nTo: %s\r\nSubject: m %s\r\n"
             "X-Token: %s\r\n\r\n" % (rcpt, tok, tok)).encode() +
            payload(tok, size))


def deliver_many(srv, rcpt, n, size=None):
    """n messages by SMTP in one connection; returns their tokens."""
    toks = []
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=60) as s:
        for _ in range(n):
            tok = uuid.uuid4().hex
            s.sendmail("sender@other.test", [rcpt], message(tok, rcpt, size))
            toks.append(tok)
    return toks


def imap_login(srv, user=ALICE, password=ALICE_PW):
    c = Imap.open(srv, "imap")
    c.login(user, password)
    return c


def mailbox_state(srv, mailbox="INBOX", user=ALICE, password=ALICE_PW):
    """(UIDVALIDITY, {uid: (flags, token, whole message bytes)})."""
    with imap_login(srv, user, password) as c:
        info = c.select(mailbox)
        out = {}
        if info.exists:
            r = c.ok("UID FETCH 1:* (UID FLAGS BODY.PEEK[])", timeout=120)
            for line in r.untagged:
                if b" FETCH " not in line[:20]:
                    continue
                _, items = parse_fetch(line)
                body = bytes(items["BODY[]"])
                m = re.search(rb"X-Token: (\w+)", body)
                out[int(items["UID"])] = (flag_set(items["FLAGS"]),
                                          m.group(1).decode() if m else None,
                                          body)
        return info.uidvalidity, out


def assert_whole(uid, body, tok):
    """A message is whole: its body is exactly the one sent with tok."""
    assert tok is not None, "UID %d has no X-Token: %r" % (uid, body[:200])
    assert body.endswith(b"\r\n\r\n" + payload(tok)) or \
        body.split(b"\r\n\r\n", 1)[1] == payload(tok), \
        "UID %d (token %s) is not the message sent" % (uid, tok)


def backup(config, directory, *args):
    return run_postern("backup", directory, "-c", config, *args, timeout=300)


def backup_ok(config, directory, *args):
    r = backup(config, directory, "--json", *args)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return json.loads(r.stdout)


def manifest_lines(directory):
    return (directory / "MANIFEST").read_text().splitlines()


def manifest_files(directory):
    out = {}
    for line in manifest_lines(directory):
        if line.startswith("file "):
            _, sha, size, path = line.split(" ", 3)
            out[path] = (sha, int(size))
    return out


def submit(srv, rcpt):
    """alice submits a message to a foreign rcpt: a queue entry."""
    conn, _ = smtp_open(srv, "submission")
    with conn:
        assert smtp_auth_plain(conn, ALICE, ALICE_PW).raw == [AUTH_OK]
        r = smtp_transaction(conn, ALICE, [rcpt],
                             b"From: " + ALICE.encode() +
                             b"\r\nSubject: queued\r\n\r\nout\r\n")
        assert QUEUED_RE.match(r.raw[0]), r.raw


# --- backup under load, restore, serve -----------------------------------


def test_backup_under_load_restores_every_acknowledged_message(
        postern_factory, default_cert, tmp_path):
    srv = start_server(postern_factory, tmp_path / "a", default_cert)
    deliver_many(srv, ALICE, 300)
    # The mailbox the load thread churns: its own messages, so that what
    # INBOX showed at backup start stays what it was.
    with imap_login(srv) as c:
        c.ok("CREATE Churn")
    deliver_many(srv, BOB, 150)
    with imap_login(srv, BOB, BOB_PW) as c:
        c.select("INBOX")
        c.ok("UID MOVE 1:* " + quote("Trash"))
    submit(srv, "far@remote.test")
    with imap_login(srv) as c:
        c.select("INBOX")
        for uid in range(1, 301):
            flags = []
            if uid % 3 == 0:
                flags.append("\\Seen")
            if uid % 5 == 0:
                flags.append("\\Flagged")
            if uid % 7 == 0:
                flags.append("$Label1")
            if flags:
                c.ok("UID STORE %d +FLAGS (%s)" % (uid, " ".join(flags)))
        # Expunged before the backup: not in it.
        c.ok("UID STORE 290:300 +FLAGS (\\Deleted)")
        c.ok("EXPUNGE")
    uidvalidity, before = mailbox_state(srv)
    assert len(before) == 289
    queue_before = json.loads(admin_ok(srv.admin_config, "queue", "list",
                                       "--json"))
    assert len(queue_before) == 1
    users_before = json.loads(admin_ok(srv.admin_config, "user", "list",
                                       "--json"))

    stop = threading.Event()
    errors = []
    sent_during = {}

    def smtp_load():
        try:
            while not stop.is_set():
                for tok in deliver_many(srv, ALICE, 5):
                    sent_during[tok] = True
        except Exception as e:          # reported by the test
            errors.append(repr(e))

    def churn():
        # bob's Trash: flags and expunges of messages that were there
        # when the backup started, so their files are what GC removes.
        try:
            with imap_login(srv, BOB, BOB_PW) as c:
                c.select("Trash")
                uid = 1
                while not stop.is_set() and uid <= 150:
                    c.ok("UID STORE %d:%d +FLAGS (\\Seen)" % (uid, uid + 4))
                    c.ok("UID STORE %d:%d +FLAGS (\\Deleted)"
                         % (uid, uid + 2))
                    c.ok("EXPUNGE")
                    uid += 5
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=smtp_load) for _ in range(2)] + \
        [threading.Thread(target=churn)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    bdir = tmp_path / "backup"
    try:
        summary = backup_ok(srv.admin_config, bdir)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert errors == [], errors
    assert summary["blobs_copied"] == summary["blobs"] > 0
    assert summary["files"] == len(manifest_files(bdir))

    # The backup is private.
    assert stat.S_IMODE(os.stat(bdir).st_mode) == 0o700
    for root, dirs, files in os.walk(bdir):
        for d in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode) \
                == 0o700
        for f in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode) \
                == 0o600, f
    files = manifest_files(bdir)
    assert "auth.secret" in files and "dkim/example.test.pem" in files
    assert manifest_lines(bdir)[0] == "postern-backup 1"

    r = run_postern("backup", "verify", bdir)
    assert r.returncode == 0, r.stderr
    assert "all verified" in r.stdout

    # A new machine: restore into an empty data directory, serve.
    path_b, data_b, text_b = make_config(tmp_path / "b", default_cert)
    r = run_postern("restore", bdir, "-c", path_b, timeout=300)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert stat.S_IMODE(os.stat(data_b).st_mode) == 0o700
    out = admin_ok(path_b, "store", "check")
    assert out.strip().endswith("0 problems"), out
    srv_b = postern_factory(config_text=text_b, listeners=LISTENERS)
    srv_b.admin_config = path_b

    uidvalidity_b, after = mailbox_state(srv_b)
    assert uidvalidity_b == uidvalidity
    for uid, (flags, tok, body) in before.items():
        assert uid in after, "UID %d acknowledged before the backup is " \
            "missing" % uid
        assert after[uid][0] == flags, (uid, flags, after[uid][0])
        assert after[uid][1] == tok
        assert after[uid][2] == body
    toks = [v[1] for v in after.values()]
    assert len(toks) == len(set(toks)), "a message is there twice"
    for uid, (flags, tok, body) in after.items():
        if uid not in before:
            assert tok in sent_during, "UID %d was never sent" % uid
        assert_whole(uid, body, tok)
    # bob's churned mailbox: whatever the snapshot had is whole.
    _, trash = mailbox_state(srv_b, "Trash", BOB, BOB_PW)
    for uid, (flags, tok, body) in trash.items():
        assert_whole(uid, body, tok)
    # Accounts, passwords, the queue, DKIM key.
    assert json.loads(admin_ok(path_b, "user", "list", "--json")) == \
        users_before
    assert json.loads(admin_ok(path_b, "queue", "list", "--json")) == \
        queue_before
    assert (data_b / "dkim" / "example.test.pem").read_bytes() == \
        (srv.mail_data / "dkim" / "example.test.pem").read_bytes()
    with imap_login(srv_b, BOB, BOB_PW):
        pass
    # The restored server takes new mail after the old UIDs.
    deliver_many(srv_b, ALICE, 1)
    _, again = mailbox_state(srv_b)
    assert max(again) > max(after)


# --- the GC pause -----------------------------------------------------------


def test_body_file_of_an_expunged_message_stays_while_a_backup_holds_the_lock(
        postern_factory, default_cert, tmp_path):
    """What keeps a snapshot's blobs: while DATA/gc.lock is held shared
    (as a running backup holds it), an expunged message's body file is
    not unlinked; once it is let go, the next commit removes it."""
    srv = start_server(postern_factory, tmp_path / "a", default_cert)
    deliver_many(srv, ALICE, 2)

    def blob_files():
        return sorted(p for p in (srv.mail_data / "blobs").rglob("*")
                      if p.is_file())

    files = blob_files()
    assert len(files) == 2
    fd = os.open(srv.mail_data / "gc.lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        with imap_login(srv) as c:
            c.select("INBOX")
            c.ok("UID STORE 1 +FLAGS (\\Deleted)")
            c.ok("EXPUNGE")
            c.ok("UID STORE 2 +FLAGS (\\Seen)")     # another commit
        assert blob_files() == files
    finally:
        os.close(fd)
    with imap_login(srv) as c:
        c.select("INBOX")
        c.ok("UID STORE 2 -FLAGS (\\Seen)")
    assert blob_files() == files[1:]


# --- incremental ------------------------------------------------------------


def test_incremental_copies_only_new_blobs_and_drops_expunged(
        postern_factory, default_cert, tmp_path):
    srv = start_server(postern_factory, tmp_path / "a", default_cert)
    deliver_many(srv, ALICE, 20)
    bdir = tmp_path / "backup"
    first = backup_ok(srv.admin_config, bdir)
    assert first["blobs"] == first["blobs_copied"] == 20
    assert first["blobs_kept"] == 0
    files_1 = manifest_files(bdir)

    deliver_many(srv, ALICE, 5)
    with imap_login(srv) as c:
        c.select("INBOX")
        c.ok("UID STORE 1:3 +FLAGS (\\Deleted)")
        c.ok("EXPUNGE")
    second = backup_ok(srv.admin_config, bdir, "--incremental")
    assert second["blobs"] == 22
    assert second["blobs_copied"] == 5
    assert second["blobs_kept"] == 17
    assert second["blobs_removed"] == 3
    files_2 = manifest_files(bdir)
    gone = [p for p in files_1 if p.startswith("blobs/") and
            p not in files_2]
    assert len(gone) == 3
    for p in gone:
        assert not (bdir / p).exists()
    new = [p for p in files_2 if p.startswith("blobs/") and
           p not in files_1]
    assert len(new) == 5
    for p in files_1:
        if p.startswith("blobs/") and p in files_2:
            assert files_1[p] == files_2[p]
    assert not (bdir / "MANIFEST.prev").exists()
    r = run_postern("backup", "verify", bdir)
    assert r.returncode == 0, r.stderr

    # Nothing changed: nothing copied; a spoiled copy is copied again.
    victim = sorted(p for p in files_2 if p.startswith("blobs/"))[0]
    data = bytearray((bdir / victim).read_bytes())
    data[0] ^= 0x01
    (bdir / victim).write_bytes(bytes(data))
    third = backup_ok(srv.admin_config, bdir, "--incremental")
    assert third["blobs_copied"] == 1 and third["blobs_kept"] == 21
    assert run_postern("backup", "verify", bdir).returncode == 0

    # A backup directory is refused for a full backup when not empty,
    # and for an incremental one when another data directory made it.
    r = backup(srv.admin_config, bdir)
    assert r.returncode != 0 and str(bdir) in r.stderr and \
        "not empty" in r.stderr
    other = start_server(postern_factory, tmp_path / "c", default_cert)
    r = backup(other.admin_config, bdir, "--incremental")
    assert r.returncode != 0 and "another data directory" in r.stderr


def test_backup_refuses_a_directory_inside_the_data_directory(
        postern_factory, default_cert, tmp_path):
    srv = start_server(postern_factory, tmp_path / "a", default_cert)
    r = backup(srv.admin_config, srv.mail_data / "bk")
    assert r.returncode != 0 and "outside the data directory" in r.stderr
    assert not (srv.mail_data / "bk").exists()


def test_incremental_leaves_a_directory_that_is_not_a_backup_alone(
        default_cert):
    """As root with a [server] user: --incremental into a directory that
    holds other files and no MANIFEST is refused before its owner or mode
    changes (it is not handed to the server's user)."""
    with system_user("pstbk") as pw, reachable_dir() as base:
        path, _, _ = write_mail_config(
            base / "srv", [("main", default_cert)], LISTENERS,
            server={"user": pw.pw_name})
        sysdir = base / "sysdir"
        sysdir.mkdir()
        (sysdir / "shadow.bak").write_text("secret\n")
        os.chmod(sysdir, 0o755)
        r = backup(path, sysdir, "--incremental")
        assert r.returncode != 0, r.stdout
        st = os.stat(sysdir)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == \
            (0, 0, 0o755), (st.st_uid, st.st_gid, oct(st.st_mode))
        assert str(sysdir) in r.stderr and "not a backup" in r.stderr, \
            r.stderr
        assert os.stat(sysdir / "shadow.bak").st_uid == 0
        # A MANIFEST that is a symbolic link does not make it a backup.
        os.symlink("/etc/hostname", sysdir / "MANIFEST")
        r = backup(path, sysdir, "--incremental")
        assert r.returncode != 0 and "not a backup" in r.stderr, r.stderr
        st = os.stat(sysdir)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o755)


def test_store_database_files_are_private(postern_factory, default_cert,
                                          tmp_path):
    """store.db (password hashes) and its -wal/-shm are 0600, also when an
    older postern left them 0644."""
    srv = start_server(postern_factory, tmp_path / "a", default_cert)
    deliver_many(srv, ALICE, 1)
    names = ["store.db", "store.db-wal", "store.db-shm"]

    def modes():
        return {n: oct(stat.S_IMODE(os.stat(srv.mail_data / n).st_mode))
                for n in names if (srv.mail_data / n).exists()}
    got = modes()
    assert "store.db" in got and "store.db-wal" in got, got
    assert set(got.values()) == {"0o600"}, got
    srv.stop()
    for n in names:
        if (srv.mail_data / n).exists():
            os.chmod(srv.mail_data / n, 0o644)
    srv = start_server(postern_factory, tmp_path / "a", default_cert,
                       prepare=False)
    deliver_many(srv, ALICE, 1)
    got = modes()
    assert set(got.values()) == {"0o600"}, got


# --- tampering -----------------------------------------------------------------


@pytest.fixture
def good_backup(postern_factory, default_cert, tmp_path):
    srv = start_server(postern_factory, tmp_path / "a", default_cert)
    deliver_many(srv, ALICE, 4)
    bdir = tmp_path / "backup"
    backup_ok(srv.admin_config, bdir)
    assert run_postern("backup", "verify", bdir).returncode == 0
    path_b, data_b, _ = make_config(tmp_path / "b", default_cert)
    return bdir, path_b, data_b


def refused(bdir, path_b, data_b, *words):
    r = run_postern("backup", "verify", bdir)
    assert r.returncode != 0, r.stdout
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    r = run_postern("restore", bdir, "-c", path_b)
    assert r.returncode != 0, r.stdout
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    # Nothing of the bad backup is left in the data directory.
    assert list(data_b.iterdir()) == []


def first_blob(bdir):
    return sorted(p for p in manifest_files(bdir) if p.startswith("blobs/"))[0]


def test_tampered_blob_byte_is_refused(good_backup):
    bdir, path_b, data_b = good_backup
    blob = first_blob(bdir)
    data = bytearray((bdir / blob).read_bytes())
    data[len(data) // 2] ^= 0x20
    (bdir / blob).write_bytes(bytes(data))
    refused(bdir, path_b, data_b, blob, "SHA-256")


def test_deleted_blob_is_refused(good_backup):
    bdir, path_b, data_b = good_backup
    blob = first_blob(bdir)
    (bdir / blob).unlink()
    refused(bdir, path_b, data_b, blob, "missing")


def test_extra_file_is_refused(good_backup):
    bdir, path_b, data_b = good_backup
    (bdir / "blobs" / "00" / "999").write_bytes(b"stray\n")
    refused(bdir, path_b, data_b, "blobs/00/999", "not listed")


def test_symlink_in_backup_is_refused(good_backup, tmp_path):
    bdir, path_b, data_b = good_backup
    blob = first_blob(bdir)
    target = tmp_path / "elsewhere"
    target.write_bytes((bdir / blob).read_bytes())
    (bdir / blob).unlink()
    os.symlink(target, bdir / blob)
    refused(bdir, path_b, data_b, blob, "symbolic link")


@pytest.mark.parametrize("bad", ["../escape", "blobs/../../x", "/etc/passwd",
                                 "dkim/../../x", "tls/.hidden"])
def test_manifest_path_outside_the_backup_is_refused(good_backup, bad):
    bdir, path_b, data_b = good_backup
    lines = manifest_lines(bdir)
    for i, line in enumerate(lines):
        if line.startswith("file ") and " auth.secret" in line:
            lines[i] = line.rsplit(" ", 1)[0] + " " + bad
    (bdir / "MANIFEST").write_text("\n".join(lines) + "\n")
    refused(bdir, path_b, data_b, "MANIFEST:", "path is not one")
    assert not (data_b.parent / "escape").exists()


def test_overlong_manifest_line_is_refused(good_backup):
    bdir, path_b, data_b = good_backup
    lines = manifest_lines(bdir)
    lines.insert(5, "file " + "0" * 64 + " 1 tls/" + "a" * 2000)
    (bdir / "MANIFEST").write_text("\n".join(lines) + "\n")
    refused(bdir, path_b, data_b, "MANIFEST:6", "too long")


def test_cut_manifest_is_refused(good_backup):
    """A MANIFEST without its end line (as a copy cut short would be)."""
    bdir, path_b, data_b = good_backup
    lines = manifest_lines(bdir)
    (bdir / "MANIFEST").write_text("\n".join(lines[:-1]) + "\n")
    refused(bdir, path_b, data_b, "MANIFEST", "cut short")


def test_restore_refuses_a_data_directory_that_is_not_empty(good_backup):
    bdir, path_b, data_b = good_backup
    (data_b / "keep.txt").write_text("mine\n")
    r = run_postern("restore", bdir, "-c", path_b)
    assert r.returncode != 0
    assert str(data_b) in r.stderr and "not empty" in r.stderr and \
        "keep.txt" in r.stderr
    assert sorted(p.name for p in data_b.iterdir()) == ["keep.txt"]
    assert (data_b / "keep.txt").read_text() == "mine\n"


def test_restore_then_restore_again_is_refused(good_backup):
    bdir, path_b, data_b = good_backup
    r = run_postern("restore", bdir, "-c", path_b, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files"] == len(manifest_files(bdir))
    r = run_postern("restore", bdir, "-c", path_b)
    assert r.returncode != 0 and "not empty" in r.stderr
