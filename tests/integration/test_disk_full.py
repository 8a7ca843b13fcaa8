"""A full disk through the protocols (issue 15, "Power loss and a full
disk"). The data directory lives on a small file system of its own (a
tmpfs, and ext4 on a loop device); a filler file takes every free block
while the server runs. Then:

- SMTP (DATA and BDAT) answers 452 4.3.1 (RFC 3463: insufficient system
  storage), a temporary failure, or 250 for a message it did store; never
  451 with another text, never 5xx;
- IMAP APPEND (and CREATE) answers NO without [OVERQUOTA] (that is the
  user's quota, RFC 5530) or [SERVERBUG], with a sentence saying the
  server is out of space;
- everything stored before reads back byte for byte;
- once the filler is gone, SMTP and APPEND work again at once, without a
  restart, and keep working through a second fill.
"""

import imaplib
import os
import random
import re
import smtplib
import uuid

import pytest

from postern_harness import (Conn, add_user, admin_ok, mail_config_text,
                             run_admin, smtp_cmd)
from scratch_fs import Ext4Loop, Tmpfs, fill, free_bytes

ALICE = "alice@example.test"
PASSWORD = "alice-Pw-1"
LISTENERS = [("smtp", "smtp", "none"), ("imap", "imap", "none")]
# Message sizes tried while the disk is full: one line, a few blocks,
# more than a SQLite page cache flush, above the inline copy of 1 MiB.
SIZES = [300, 6000, 70000, 1200000]
# RFC 5530 §3 codes a client may see for "out of space on the server";
# OVERQUOTA means the user's own quota and SERVERBUG a fault of ours.
APPEND_CODES = {None, "LIMIT", "UNAVAILABLE"}
# Bytes set free again after the disk filled up.
RESERVE = 256 * 1024
SPACE_TEXT = re.compile(r"\b(disk|storage|space)\b", re.I)


@pytest.fixture(params=["tmpfs", "ext4"])
def small_fs(request, tmp_path):
    """A file system of about 24 MiB for the data directory."""
    if request.param == "tmpfs":
        fs = Tmpfs(tmp_path / "fs", size_kb=24 * 1024)
    else:
        # -m 0: no blocks kept for root (the server runs as root here).
        fs = Ext4Loop(tmp_path / "fs", size_mb=24, mkfs_args=["-m", "0"])
    with fs:
        yield fs


def message(tag, size):
    head = ("From: sender@remote.test\r\nTo: %s\r\nSubject: full %s\r\n"
            "Message-ID: <%s@remote.test>\r\n\r\n" % (ALICE, tag, tag))
    line = ("%s " % tag) * 7 + "\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return (head + body).encode()


def smtp_try(port, msg):
    """One transaction; returns (code, text) of the reply that ended it
    (DATA's own reply when that already refused)."""
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example",
                     timeout=60)
    try:
        code, text = s.ehlo()
        assert code == 250, (code, text)
        code, text = s.mail("sender@remote.test")
        assert code == 250, (code, text)
        code, text = s.rcpt(ALICE)
        if code != 250:
            return code, text
        try:
            code, text = s.data(msg)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
        return code, text
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def bdat_try(port, msg):
    """One transaction with the message in two BDAT chunks (RFC 3030);
    returns (code, text) of the reply to the last chunk."""
    with Conn.open(port, timeout=60) as c:
        assert c.readline().startswith(b"220 ")
        for line in ("EHLO client.example", "MAIL FROM:<sender@remote.test>",
                     "RCPT TO:<%s>" % ALICE):
            reply = smtp_cmd(c, line)
            assert reply.code == 250, (line, reply.raw)
        half = len(msg) // 2
        c.send(b"BDAT %d\r\n" % half + msg[:half])
        reply = c.read_smtp_reply(60)
        assert reply.code == 250, reply.raw
        c.send(b"BDAT %d LAST\r\n" % (len(msg) - half) + msg[half:])
        reply = c.read_smtp_reply(60)
        return reply.code, b"\n".join(reply.lines)


class Mailbox:
    """An IMAP session on ALICE's INBOX (imaplib)."""

    def __init__(self, port):
        self.m = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        typ, data = self.m.login(ALICE, PASSWORD)
        assert typ == "OK", data

    def close(self):
        try:
            self.m.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    def append(self, msg):
        """Returns (status, response code or None, text)."""
        typ, data = self.m.append("INBOX", None, None, msg)
        text = data[0].decode() if data and data[0] else ""
        m = re.match(r"\[([A-Z-]+)[^\]]*\]\s*(.*)", text)
        return typ, (m.group(1) if m else None), (m.group(2) if m else text)

    def contents(self):
        """{uid: whole message bytes} of INBOX."""
        typ, data = self.m.select("INBOX")
        assert typ == "OK", data
        typ, data = self.m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        assert typ == "OK", data
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid = re.search(rb"UID (\d+)", item[0])
            assert uid, item[0]
            out[int(uid.group(1))] = item[1]
        return out


def by_tag(contents):
    """{tag: [uid...]} from the Subject lines."""
    tags = {}
    for uid, raw in contents.items():
        m = re.search(rb"\r\nSubject: full (\S+)\r\n", b"\r\n" + raw)
        assert m, raw[:300]
        tags.setdefault(m.group(1).decode(), []).append(uid)
    return tags


def check_smtp_refusal(srv, size, code, reply):
    assert code == 452 and reply.startswith(b"4.3.1 "), \
        "SMTP with a full disk (%d bytes): %d %r; want 452 4.3.1\n%s" % (
            size, code, reply, srv.log_text()[-3000:])


def check_append_refusal(srv, size, typ, rcode, rtext):
    assert typ == "NO" and rcode in APPEND_CODES and \
        SPACE_TEXT.search(rtext), \
        "APPEND or CREATE with a full disk (%d bytes): %s [%s] %s; want NO [LIMIT], " \
        "[UNAVAILABLE] or no code, saying the server is out of space\n%s" \
        % (size, typ, rcode, rtext, srv.log_text()[-3000:])


def test_full_disk_gives_temporary_failures_and_service_returns(
        small_fs, postern_factory, default_cert):
    data = small_fs.mnt / "data"
    data.mkdir(mode=0o700)
    cfg_dir = small_fs.dir / "cfg"
    cfg_dir.mkdir()
    text = mail_config_text(data, [("main", default_cert)], LISTENERS,
                            server={"allow_plaintext_auth": "yes"},
                            limits={"message_size": 4 * 1024 * 1024})
    path = cfg_dir / "postern.conf"
    path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, ALICE, PASSWORD)
    srv = postern_factory(config_text=text, listeners=LISTENERS)
    smtp_port, imap_port = srv.ports["smtp"], srv.ports["imap"]

    rng = random.Random()
    stored = {}         # tag -> bytes as the server gave them back
    appended = {}       # tag -> bytes sent by APPEND (exact)
    box = Mailbox(imap_port)
    try:
        for size in SIZES[:3]:
            tag = uuid.uuid4().hex[:12]
            code, reply = smtp_try(smtp_port, message(tag, size))
            assert code == 250, (code, reply)
            tag = uuid.uuid4().hex[:12]
            msg = message(tag, size)
            typ, code, reply = box.append(msg)
            assert typ == "OK", (typ, code, reply)
            appended[tag] = msg
        contents = box.contents()
        for tag, uids in by_tag(contents).items():
            stored[tag] = contents[uids[0]]

        for cycle in range(2):
            filler = small_fs.mnt / ("filler%d" % cycle)
            reserve = small_fs.mnt / "reserve"
            with open(reserve, "wb") as f:
                f.write(b"\x5a" * RESERVE)
                os.fsync(f.fileno())
            fill(filler)
            assert free_bytes(small_fs.mnt) < 4096, free_bytes(small_fs.mnt)
            smtp_ok, append_ok = [], []
            refusals = 0
            # Not one block free: every new message is refused (or, a
            # message the server did store is there, below).
            for size in SIZES:
                tag = uuid.uuid4().hex[:12]
                code, reply = smtp_try(smtp_port, message(tag, size))
                if code == 250:
                    smtp_ok.append(tag)
                else:
                    check_smtp_refusal(srv, size, code, reply)
                    refusals += 1
                tag = uuid.uuid4().hex[:12]
                msg = message(tag, size)
                typ, rcode, rtext = box.append(msg)
                if typ == "OK":
                    append_ok.append(tag)
                    appended[tag] = msg
                else:
                    check_append_refusal(srv, size, typ, rcode, rtext)
                    refusals += 1
            assert refusals > 0, "nothing was refused with a full disk"
            tag = uuid.uuid4().hex[:12]
            code, reply = bdat_try(smtp_port, message(tag, SIZES[1]))
            if code == 250:
                smtp_ok.append(tag)
            else:
                check_smtp_refusal(srv, SIZES[1], code, reply)
            # A new mailbox needs room too: created, or refused the
            # same way.
            typ, data = box.m.create("Full%d" % cycle)
            text = data[0].decode() if data and data[0] else ""
            if typ != "OK":
                m = re.match(r"\[([A-Z-]+)[^\]]*\]\s*(.*)", text)
                check_append_refusal(srv, 0, typ, m and m.group(1),
                                     m.group(2) if m else text)

            # A little space: small messages until the disk is full
            # again. Where it runs out differs from one message to the
            # next (the body file, its directory entry, the WAL), and
            # every place must answer the same way.
            reserve.unlink()
            small_fs.sync()
            in_a_row = 0
            for i in range(400):
                size = rng.randrange(2000, 12000)
                tag = uuid.uuid4().hex[:12]
                if i % 2 == 0:
                    code, reply = smtp_try(smtp_port, message(tag, size))
                    if code == 250:
                        smtp_ok.append(tag)
                        in_a_row = 0
                        continue
                    check_smtp_refusal(srv, size, code, reply)
                else:
                    msg = message(tag, size)
                    typ, rcode, rtext = box.append(msg)
                    if typ == "OK":
                        append_ok.append(tag)
                        appended[tag] = msg
                        in_a_row = 0
                        continue
                    check_append_refusal(srv, size, typ, rcode, rtext)
                in_a_row += 1
                if in_a_row == 6:
                    break
            assert in_a_row == 6, "the disk never filled up again"

            # Reading still works with the disk full, and nothing stored
            # before changed.
            contents = box.contents()
            now = by_tag(contents)
            for tag, raw in stored.items():
                assert now.get(tag) is not None and len(now[tag]) == 1, \
                    "%s: %s" % (tag, now.get(tag))
                assert contents[now[tag][0]] == raw, "%s changed" % tag

            filler.unlink()
            small_fs.sync()

            # Full service again, same server process.
            tag = uuid.uuid4().hex[:12]
            code, reply = bdat_try(smtp_port, message(tag, SIZES[2]))
            assert code == 250, "BDAT after space came back: %d %r" % (
                code, reply)
            smtp_ok.append(tag)
            for size in SIZES:
                tag = uuid.uuid4().hex[:12]
                code, reply = smtp_try(smtp_port, message(tag, size))
                assert code == 250, \
                    "SMTP after space came back (%d bytes): %d %r\n%s" % (
                        size, code, reply, srv.log_text()[-3000:])
                smtp_ok.append(tag)
                tag = uuid.uuid4().hex[:12]
                msg = message(tag, size)
                typ, rcode, rtext = box.append(msg)
                assert typ == "OK", "APPEND after space came back (%d " \
                    "bytes): %s [%s] %s" % (size, typ, rcode, rtext)
                append_ok.append(tag)
                appended[tag] = msg

            contents = box.contents()
            now = by_tag(contents)
            for tag in smtp_ok + append_ok + list(stored):
                assert len(now.get(tag, [])) == 1, \
                    "%s stored %d times" % (tag, len(now.get(tag, [])))
            for tag, msg in appended.items():
                assert contents[now[tag][0]] == msg, "%s changed" % tag
            for tag, raw in stored.items():
                assert contents[now[tag][0]] == raw, "%s changed" % tag
            for tag in smtp_ok:
                stored[tag] = contents[now[tag][0]]
            assert set(now) == set(stored) | set(appended), \
                "strangers: %s" % (set(now) - set(stored) - set(appended))
    finally:
        box.close()
    assert srv.is_running(), srv.log_text()
    # Where the disk ran out, for the record (shown with -s).
    log = srv.log_text()
    print("%s: full disk met at %s" % (small_fs.__class__.__name__, {
        k: log.count("event=" + k) for k in (
            "store.delivery_write", "store.delivery_new", "store.place",
            "store.sync", "store.sqlite")}))
    r = run_admin(path, "store", "check")
    assert r.returncode == 0 and \
        r.stdout.strip().splitlines()[-1] == "store check: 0 problems", \
        (r.returncode, r.stdout, r.stderr)
