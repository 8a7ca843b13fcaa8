"""Real IMAP clients from Debian against postern: isync (mbsync) and
offlineimap syncing a mailbox both ways, curl listing and fetching, and
mutt (driven in tmux) reading, flagging and moving a message. What the
clients end up with is compared byte for byte with what the server holds
(read with our own IMAP client), and the other way round.

The tools come from the Debian packages isync, offlineimap3, curl, mutt
and tmux (Makefile PACKAGES); a test is skipped, saying which, only when
its tool is not installed, and that skip fails the run
(tests/skip-allowlist.txt)."""

import hashlib
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from imap_helpers import (deliver, login, new_user, parse_fetch,
                          start_imap_server, wait_for)

TOOL_TIMEOUT = 120


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip("%s is not installed (Debian package: %s)" % (
            tool, {"mbsync": "isync", "offlineimap": "offlineimap3"}.get(
                tool, tool)))


@pytest.fixture(scope="module")
def srv(module_postern_factory, ip_cert, tmp_path_factory):
    s = start_imap_server(module_postern_factory,
                          tmp_path_factory.mktemp("imap-clients"), ip_cert)
    # Our own client verifies against this certificate.
    s.certs = [("main", ip_cert)]
    return s


@pytest.fixture
def user(srv):
    return new_user(srv, prefix="cl")


# --- what the server holds ---------------------------------------------------


def server_messages(srv, user, mailbox="INBOX"):
    """[(uid, flags, body)] of mailbox, by UID, read with our client
    (BODY.PEEK, so nothing changes)."""
    c = login(srv, *user)
    try:
        info = c.select(mailbox, examine=True)
        if not info.exists:
            return []
        r = c.ok("FETCH 1:* (UID FLAGS BODY.PEEK[])")
        out = []
        for l in r.untagged:
            if re.match(rb"^\* \d+ FETCH ", l):
                _, items = parse_fetch(l)
                out.append((int(items["UID"]),
                            {bytes(f).decode() for f in items["FLAGS"]},
                            bytes(items["BODY[]"])))
        assert len(out) == info.exists, r.untagged
        return sorted(out)
    finally:
        c.close()


def server_mailboxes(srv, user):
    c = login(srv, *user)
    try:
        r = c.ok('LIST "" "*"')
        names = set()
        for l in r.untagged:
            m = re.match(rb'^\* LIST \([^)]*\) "/" "?([^"\r]*)"?\r\n$', l)
            assert m, l
            names.add(m.group(1).decode())
        return names
    finally:
        c.close()


def normalize(body, drop_headers=()):
    """Line ends as LF (Maildir clients store LF) and without the
    bookkeeping headers a sync client may add when uploading."""
    body = body.replace(b"\r\n", b"\n")
    if drop_headers:
        head, sep, rest = body.partition(b"\n\n")
        lines = [l for l in head.split(b"\n")
                 if not any(l.lower().startswith(h.lower() + b":")
                            for h in drop_headers)]
        body = b"\n".join(lines) + sep + rest
    return body


# --- Maildir -----------------------------------------------------------------


def maildir_messages(folder):
    """[(flags, bytes)] of a Maildir folder (new/ and cur/), sorted by
    content. Flags are the letters after ':2,'."""
    folder = Path(folder)
    out = []
    for sub in ("new", "cur"):
        d = folder / sub
        if not d.is_dir():
            continue
        for f in d.iterdir():
            flags = f.name.split(":2,", 1)[1] if ":2," in f.name else ""
            out.append((set(flags), f.read_bytes()))
    return sorted(out, key=lambda x: x[1])


def maildir_find(folder, needle):
    """The path of the one message of folder containing needle."""
    found = [f for sub in ("new", "cur")
             for f in (Path(folder) / sub).iterdir()
             if needle in f.read_bytes()]
    assert len(found) == 1, (needle, found)
    return found[0]


def maildir_set_flags(path, flags):
    """Moves a message to cur/ with the given Maildir flags."""
    base = path.name.split(":2,", 1)[0]
    new = path.parent.parent / "cur" / ("%s:2,%s" % (base,
                                                    "".join(sorted(flags))))
    path.rename(new)
    return new


def maildir_add(folder, body):
    folder = Path(folder)
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    name = "%d.%s.test" % (time.time(), uuid.uuid4().hex)
    (folder / "tmp" / name).write_bytes(body)
    os.rename(folder / "tmp" / name, folder / "new" / name)


FLAG_LETTERS = {"\\Seen": "S", "\\Flagged": "F", "\\Answered": "R"}


def assert_same(srv, user, mailbox, folder, drop_headers=()):
    """The server's mailbox and the Maildir folder hold the same messages
    (content, and \\Seen/\\Flagged/\\Answered as S/F/R)."""
    server = sorted(((normalize(b, drop_headers),
                      {FLAG_LETTERS[f] for f in fl if f in FLAG_LETTERS})
                     for _, fl, b in server_messages(srv, user, mailbox)),
                    key=lambda x: x[0])
    local = sorted(((normalize(b, drop_headers), fl & {"S", "F", "R"})
                    for fl, b in maildir_messages(folder)),
                   key=lambda x: x[0])
    assert [b for b, _ in server] == [b for b, _ in local], \
        (mailbox, server, local)
    assert server == local, (mailbox, server, local)


def imap_store(srv, user, mailbox, needle, cmd):
    """Runs 'UID STORE <uid of the message containing needle> cmd'."""
    for uid, _, body in server_messages(srv, user, mailbox):
        if needle in body:
            c = login(srv, *user)
            c.select(mailbox)
            c.ok("UID STORE %d %s" % (uid, cmd))
            c.close()
            return uid
    raise AssertionError("no message with %r in %s" % (needle, mailbox))


def imap_expunge(srv, user, mailbox, needle):
    uid = imap_store(srv, user, mailbox, needle, "+FLAGS.SILENT (\\Deleted)")
    c = login(srv, *user)
    c.select(mailbox)
    c.ok("UID EXPUNGE %d" % uid)
    c.close()


def run_tool(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=TOOL_TIMEOUT, stdin=subprocess.DEVNULL, **kw)
    return r


# --- mbsync ------------------------------------------------------------------


MBSYNC_DROP = (b"X-TUID",)


def mbsync_config(tmp, srv, cert, user, listener="imaps"):
    mail = tmp / "mbsync-mail"
    mail.mkdir()
    cfg = tmp / "mbsyncrc"
    cfg.write_text(
        "IMAPAccount test\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\n"
        "SSLType %s\nCertificateFile %s\n\n"
        "IMAPStore far\nAccount test\n\n"
        "MaildirStore near\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
        "Channel sync\nFar :far:\nNear :near:\nPatterns *\nCreate Both\n"
        "Expunge Both\nSyncState *\nSync All\n"
        % (srv.ports[listener], user[0], user[1],
           "IMAPS" if listener == "imaps" else "STARTTLS", cert.cert_path,
           mail, mail))
    return cfg, mail


def mbsync(cfg):
    r = run_tool(["mbsync", "-c", str(cfg), "-a"])
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r


def test_mbsync_syncs_both_ways(srv, ip_cert, user, tmp_path):
    need("mbsync")
    for i in (1, 2, 3):
        deliver(srv, user[0], "mbsync-%d" % i, body="body of %d\r\n" % i)
    cfg, mail = mbsync_config(tmp_path, srv, ip_cert, user)
    mbsync(cfg)
    # Pull: every mailbox, every message, the same bytes.
    for box in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert (mail / box / "cur").is_dir(), box
    assert len(maildir_messages(mail / "INBOX")) == 3
    assert_same(srv, user, "INBOX", mail / "INBOX", MBSYNC_DROP)

    # Changes on both sides.
    maildir_set_flags(maildir_find(mail / "INBOX", b"mbsync-1"), "SF")
    local_new = (b"From: me@example.test\nSubject: made locally\n\n"
                 b"written in the Maildir\n")
    maildir_add(mail / "Local" / "Projects", local_new)
    imap_store(srv, user, "INBOX", b"mbsync-2", "+FLAGS (\\Answered)")
    imap_expunge(srv, user, "INBOX", b"mbsync-3")
    deliver(srv, user[0], "mbsync-4")
    mbsync(cfg)

    # Push: the new folder and message, the flags.
    assert "Local/Projects" in server_mailboxes(srv, user)
    pushed = server_messages(srv, user, "Local/Projects")
    assert len(pushed) == 1
    assert normalize(pushed[0][2], MBSYNC_DROP) == local_new
    # Uploaded with CRLF line ends (RFC 9051 §6.3.12, RFC 5322).
    assert b"\r\n" in pushed[0][2] and b"\n" not in \
        pushed[0][2].replace(b"\r\n", b"")
    flags = {b.split(b"Subject: ")[1].split(b"\r\n")[0]: fl
             for _, fl, b in server_messages(srv, user, "INBOX")}
    assert {"\\Seen", "\\Flagged"} <= flags[b"mbsync-1"], flags
    assert set(flags) == {b"mbsync-1", b"mbsync-2", b"mbsync-4"}, flags
    # Pull: the expunge, the new message and the \Answered flag.
    assert_same(srv, user, "INBOX", mail / "INBOX", MBSYNC_DROP)
    assert_same(srv, user, "Local/Projects", mail / "Local" / "Projects",
                MBSYNC_DROP)
    # A third run changes nothing.
    before = maildir_messages(mail / "INBOX")
    mbsync(cfg)
    assert maildir_messages(mail / "INBOX") == before
    assert_same(srv, user, "INBOX", mail / "INBOX", MBSYNC_DROP)


def test_mbsync_over_starttls(srv, ip_cert, user, tmp_path):
    need("mbsync")
    deliver(srv, user[0], "over starttls", body="plain port, TLS after\r\n")
    cfg, mail = mbsync_config(tmp_path, srv, ip_cert, user, "imap")
    mbsync(cfg)
    assert len(maildir_messages(mail / "INBOX")) == 1
    assert_same(srv, user, "INBOX", mail / "INBOX", MBSYNC_DROP)


# --- offlineimap -------------------------------------------------------------


OFFLINEIMAP_DROP = (b"X-OfflineIMAP",)


def offlineimap_config(tmp, srv, cert, user):
    local = tmp / "oi-mail"
    local.mkdir()
    fingerprint = hashlib.sha256(cert.der).hexdigest()
    cfg = tmp / "offlineimaprc"
    cfg.write_text(
        "[general]\naccounts = T\nmetadata = %s/oi-meta\nui = basic\n\n"
        "[Account T]\nlocalrepository = L\nremoterepository = R\n\n"
        "[Repository L]\ntype = Maildir\nlocalfolders = %s\nsep = /\n\n"
        "[Repository R]\ntype = IMAP\nremotehost = 127.0.0.1\n"
        "remoteport = %d\nssl = yes\ncert_fingerprint = %s\n"
        "remoteuser = %s\nremotepass = %s\n"
        % (tmp, local, srv.ports["imaps"], fingerprint, user[0], user[1]))
    return cfg, local


def offlineimap(cfg):
    r = run_tool(["offlineimap", "-c", str(cfg), "-o", "-u", "basic"])
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "ERROR" not in out, (r.returncode, out)
    return r


def test_offlineimap_syncs_both_ways(srv, ip_cert, user, tmp_path):
    need("offlineimap")
    for i in (1, 2, 3):
        deliver(srv, user[0], "oi-%d" % i, body="offline body %d\r\n" % i)
    cfg, local = offlineimap_config(tmp_path, srv, ip_cert, user)
    offlineimap(cfg)
    assert len(maildir_messages(local / "INBOX")) == 3
    assert_same(srv, user, "INBOX", local / "INBOX", OFFLINEIMAP_DROP)
    for box in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert (local / box / "cur").is_dir(), box

    maildir_set_flags(maildir_find(local / "INBOX", b"oi-1"), "S")
    local_new = (b"From: me@example.test\nSubject: oi local\n\n"
                 b"from the laptop\n")
    maildir_add(local / "INBOX", local_new)
    imap_store(srv, user, "INBOX", b"oi-2", "+FLAGS (\\Flagged)")
    imap_expunge(srv, user, "INBOX", b"oi-3")
    offlineimap(cfg)

    msgs = server_messages(srv, user, "INBOX")
    subjects = {}
    for _, fl, b in msgs:
        subjects[re.search(rb"Subject: ([^\r\n]*)", b).group(1)] = fl
    assert set(subjects) == {b"oi-1", b"oi-2", b"oi local"}, subjects
    assert "\\Seen" in subjects[b"oi-1"]
    assert [normalize(b, OFFLINEIMAP_DROP) for _, _, b in msgs
            if b"oi local" in b] == [local_new]
    assert_same(srv, user, "INBOX", local / "INBOX", OFFLINEIMAP_DROP)
    offlineimap(cfg)
    assert_same(srv, user, "INBOX", local / "INBOX", OFFLINEIMAP_DROP)


# --- curl --------------------------------------------------------------------


def curl(srv, user, url, *extra):
    need("curl")
    r = subprocess.run(["curl", "-sS", "--max-time", "60", "-u",
                        "%s:%s" % user, *extra, url],
                       capture_output=True, timeout=TOOL_TIMEOUT)
    assert r.returncode == 0, (r.returncode, r.stderr)
    return r.stdout


def test_curl_lists_mailboxes(srv, ip_cert, user):
    out = curl(srv, user, "imaps://127.0.0.1:%d/" % srv.ports["imaps"],
               "--cacert", str(ip_cert.cert_path))
    names = set(re.findall(rb'^\* LIST \([^)]*\) "/" "?([^"\r\n]*)"?\r?$',
                           out, re.M))
    assert names == {b"INBOX", b"Sent", b"Drafts", b"Trash", b"Junk",
                     b"Archive"}, out


def test_curl_over_starttls_and_insecure(srv, user):
    out = curl(srv, user, "imap://127.0.0.1:%d/" % srv.ports["imap"],
               "--ssl-reqd", "--insecure")
    assert re.search(rb'^\* LIST \([^)]*\) "/" "?INBOX"?\r?$', out, re.M), out
    out = curl(srv, user, "imaps://127.0.0.1:%d/" % srv.ports["imaps"],
               "--insecure")
    assert b"INBOX" in out


def test_curl_fetches_a_message(srv, ip_cert, user):
    deliver(srv, user[0], "curl one", body="first\r\n")
    sent = deliver(srv, user[0], "curl two",
                   body="line one\r\n.dot line\r\nlast line\r\n")
    msgs = server_messages(srv, user)
    assert len(msgs) == 2
    uid, _, body = msgs[1]
    assert body.endswith(sent), body
    base = "imaps://127.0.0.1:%d/INBOX" % srv.ports["imaps"]
    out = curl(srv, user, "%s;UID=%d" % (base, uid),
               "--cacert", str(ip_cert.cert_path))
    assert out == body
    out = curl(srv, user, "%s;MAILINDEX=1" % base,
               "--cacert", str(ip_cert.cert_path))
    assert out == msgs[0][2]
    # curl's FETCH BODY[] (not PEEK) marks the message \Seen.
    assert "\\Seen" in server_messages(srv, user)[1][1]


# --- mutt in tmux ------------------------------------------------------------


class Tmux:
    """One tmux server of our own (-L socket) running one program."""

    def __init__(self, name, cwd):
        self.sock = "imaptest-%s-%d" % (name, os.getpid())
        self.cwd = cwd

    def tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null",
                               *args], capture_output=True, text=True,
                              timeout=30, check=check, cwd=self.cwd)

    def start(self, command, env):
        full_env = dict(os.environ, TERM="xterm-256color", **env)
        subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null",
                        "new-session", "-d", "-s", "t", "-x", "160", "-y",
                        "45", command], check=True, timeout=30,
                       env=full_env, cwd=self.cwd)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t", check=False).stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def wait_screen(self, pattern, timeout=30.0):
        last = []

        def seen():
            last[:] = [self.screen()]
            return re.search(pattern, last[0])
        try:
            return wait_for(seen, timeout=timeout, interval=0.2,
                            what="screen showing %r" % pattern)
        except AssertionError:
            raise AssertionError("screen never showed %r; it shows:\n%s"
                                 % (pattern, last[0] if last else ""))

    def stop(self):
        self.tmux("kill-server", check=False)


def test_mutt_reads_flags_and_moves(srv, ip_cert, user, tmp_path):
    need("mutt")
    need("tmux")
    deliver(srv, user[0], "mutt-one", body="the first body line\r\n")
    deliver(srv, user[0], "mutt-two", body="the second message\r\n")
    muttrc = tmp_path / "muttrc"
    muttrc.write_text("\n".join([
        'set folder="imaps://%s@127.0.0.1:%d/"' % (
            user[0].replace("@", "%40"), srv.ports["imaps"]),
        'set spoolfile="+INBOX"',
        'set imap_user="%s"' % user[0],
        'set imap_pass="%s"' % user[1],
        'set certificate_file="%s"' % ip_cert.cert_path,
        "set ssl_force_tls=yes",
        "set ssl_starttls=no",
        'set header_cache=""',
        'set message_cachedir=""',
        'set record=""',
        "set copy=no",
        "set move=no",
        "set delete=yes",
        "set confirmappend=no",
        "set confirmcreate=no",
        "set quit=yes",
        "set mark_old=no",
        "set wait_key=no",
        "set sort=date",
        "set mail_check=60",
        "set imap_passive=yes",
        'set index_format="%4C %Z %s"',
        ""]))
    t = Tmux("mutt", tmp_path)
    try:
        t.start("mutt -n -F %s" % muttrc, {"HOME": str(tmp_path)})
        t.wait_screen(r"mutt-two")
        t.wait_screen(r"mutt-one")
        # Read mutt-one: the pager shows its body.
        t.keys("/", "mutt-one", "Enter")
        t.keys("Enter")
        t.wait_screen(r"the first body line")
        t.keys("q")
        t.wait_screen(r"mutt-two")
        # Flag it (F toggles \Flagged), then save mutt-two to Archive.
        t.keys("/", "mutt-one", "Enter")
        t.keys("F")
        t.keys("/", "mutt-two", "Enter")
        t.keys("s")
        t.wait_screen(r"Save to mailbox")
        t.keys("C-u", "=Archive", "Enter")
        # Sync (expunges the saved, now deleted, mutt-two), then quit.
        t.keys("$")
        t.wait_screen(r"1 kept, 1 deleted")
        t.keys("q")

        def done():
            inbox = server_messages(srv, user, "INBOX")
            return len(inbox) == 1 and inbox
        inbox = wait_for(done, timeout=30, what="mutt's changes on the "
                         "server")
    finally:
        t.stop()
    (_, flags, body), = inbox
    assert b"Subject: mutt-one" in body
    assert {"\\Seen", "\\Flagged"} <= flags, flags
    archive = server_messages(srv, user, "Archive")
    assert len(archive) == 1, archive
    assert b"Subject: mutt-two" in archive[0][2]
    assert archive[0][2].endswith(b"the second message\r\n")


def test_mutt_threads_and_subscribed_folders(srv, ip_cert, user, tmp_path):
    """mutt with sort=threads shows a thread as a tree built from the
    References and In-Reply-To fields it fetches, and with
    imap_check_subscribed=yes it asks for the subscriptions and lists the
    subscribed folders (in its sidebar) and not the others."""
    need("mutt")
    need("tmux")
    date = "Date: Mon, 7 Dec 2026 10:0%d:00 +0000\r\n"
    deliver(srv, user[0], "root topic", body="root\r\n", extra_headers=(
        date % 1 + "Message-ID: <root.mutt@other.test>\r\n"))
    deliver(srv, user[0], "lonely one", body="alone\r\n", extra_headers=(
        date % 2 + "Message-ID: <lonely.mutt@other.test>\r\n"))
    deliver(srv, user[0], "first reply", body="r1\r\n", extra_headers=(
        date % 3 + "Message-ID: <r1.mutt@other.test>\r\n"
        "In-Reply-To: <root.mutt@other.test>\r\n"
        "References: <root.mutt@other.test>\r\n"))
    # Only References: mutt threads it under first reply all the same.
    deliver(srv, user[0], "second level", body="r2\r\n", extra_headers=(
        date % 4 + "Message-ID: <r2.mutt@other.test>\r\n"
        "References: <root.mutt@other.test> <r1.mutt@other.test>\r\n"))
    c = login(srv, *user)
    for name in ("Projects", "Hidden"):
        c.ok('CREATE "%s"' % name)
    c.ok('SUBSCRIBE "Projects"')
    c.close()
    muttrc = tmp_path / "muttrc"
    muttrc.write_text("\n".join([
        'set folder="imaps://%s@127.0.0.1:%d/"' % (
            user[0].replace("@", "%40"), srv.ports["imaps"]),
        'set spoolfile="+INBOX"',
        'set imap_user="%s"' % user[0],
        'set imap_pass="%s"' % user[1],
        'set certificate_file="%s"' % ip_cert.cert_path,
        "set ssl_force_tls=yes",
        "set ssl_starttls=no",
        'set header_cache=""',
        'set message_cachedir=""',
        'set record=""',
        "set quit=yes",
        "set wait_key=no",
        "set sort=threads",
        "set sort_aux=date",
        "set imap_check_subscribed=yes",
        "set ascii_chars=yes",
        "set sidebar_visible=yes",
        "set sidebar_width=24",
        "set mail_check=60",
        "set imap_passive=yes",
        'set index_format="%4C |%s"',
        ""]))
    t = Tmux("mutt-threads", tmp_path)
    try:
        t.start("mutt -n -F %s" % muttrc, {"HOME": str(tmp_path)})
        screen = t.wait_screen(r"second level") and t.screen()
        t.wait_screen(r"Projects")
        screen = t.screen()
        t.keys("q")
    finally:
        t.stop()
    rows = {}
    for line in screen.splitlines():
        m = re.search(r"\s(\d+) \|(.*?)\s*$", line)
        if m:
            rows[m.group(2).lstrip("`|-> ")] = (int(m.group(1)),
                                                m.group(2))
    assert set(rows) == {"root topic", "first reply", "second level",
                         "lonely one"}, screen
    # The thread is one tree: root, its reply one level in, the reply to
    # the reply a level further; the thread of the lonely message comes
    # after it (threads sorted by their first date, here the root's).
    assert rows["root topic"][1] == "root topic", screen
    assert rows["first reply"][1].startswith("`->"), screen
    assert re.match(r"^\s+`->second level$", rows["second level"][1]), screen
    assert [rows[s][0] for s in ("root topic", "first reply",
                                 "second level", "lonely one")] == \
        [1, 2, 3, 4], screen
    # The sidebar: subscribed folders only.
    assert "Projects" in screen and "Hidden" not in screen, screen
