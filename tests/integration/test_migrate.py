"""postern migrate (issue 23) against a real source: Debian's Dovecot,
started privately (its own configuration in a temporary directory, a
passwd-file of users, loopback high ports), filled over IMAP APPEND with
nested, non-ASCII and special-use folders, flags, keywords and internal
dates. Each migration is compared message by message over IMAP on both
servers (bytes, flags, keywords, INTERNALDATE); a second run copies only
what changed and never duplicates; POP3 as a POP3-only source; a wrong
password; an accounts file for three accounts."""

import imaplib
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from imap_helpers import DOMAIN, new_user, start_imap_server
from postern_harness import make_cert, postern_bin

KEEP = ("\\Recent",)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("port %d did not open" % port)


class Dovecot:
    """A private Dovecot: IMAP, IMAPS, POP3S on loopback high ports."""

    def __init__(self, users):
        self.root = Path(tempfile.mkdtemp(prefix="postern-dovecot-"))
        # Dovecot's mail processes run as nobody: the path must be
        # searchable and the mail directory theirs.
        os.chmod(self.root, 0o755)
        self.mail = self.root / "mail"
        self.mail.mkdir()
        self.uid = 65534 if os.getuid() == 0 else os.getuid()
        self.gid = 65534 if os.getuid() == 0 else os.getgid()
        os.chown(self.mail, self.uid, self.gid)
        self.cert = make_cert(self.root / "certs", "dovecot", "localhost",
                              ["localhost"])
        self.ports = {k: free_port() for k in ("imap", "imaps", "pop3s")}
        self.users = dict(users)
        self.write_users()
        me = "" if os.getuid() == 0 else (
            "default_login_user = %s\ndefault_internal_user = %s\n"
            % ((os.environ.get("USER") or str(os.getuid())),) * 2)
        conf = f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
{me}protocols = imap pop3
listen = 127.0.0.1
disable_plaintext_auth = no
auth_mechanisms = plain login
ssl = yes
ssl_cert = <{self.cert.cert_path}
ssl_key = <{self.cert.key_path}
passdb {{
  driver = passwd-file
  args = {self.root}/users
}}
userdb {{
  driver = passwd-file
  args = {self.root}/users
}}
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
namespace inbox {{
  inbox = yes
  separator = /
  mailbox "Sent Items" {{
    special_use = \\Sent
    auto = create
  }}
  mailbox Deleted {{
    special_use = \\Trash
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.ports['imap']}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ports['imaps']}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.ports['pop3s']}
    ssl = yes
  }}
}}
"""
        (self.root / "dovecot.conf").write_text(conf)
        # The daemon must not hold our pipes open: its output goes to a
        # file.
        with open(self.root / "start.log", "wb") as log:
            r = subprocess.run(["dovecot", "-c",
                                str(self.root / "dovecot.conf")],
                               stdin=subprocess.DEVNULL, stdout=log,
                               stderr=log)
        assert r.returncode == 0, (self.root / "start.log").read_text()
        for p in self.ports.values():
            wait_port(p)

    def write_users(self):
        (self.root / "users").write_text("".join(
            "%s:{PLAIN}%s:%d:%d::%s/%s::\n" % (u, p, self.uid, self.gid,
                                              self.mail, u)
            for u, p in self.users.items()))

    def add_user(self, user, password):
        assert self.users[user] == password, user

    def imap(self, user):
        c = imaplib.IMAP4("127.0.0.1", self.ports["imap"])
        c.login(user, self.users[user])
        return c

    def stop(self):
        subprocess.run(["doveadm", "-c", str(self.root / "dovecot.conf"),
                        "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.root, ignore_errors=True)


# Every source account, made before Dovecot starts: its passwd-file is
# read again only when its modification time changes, which a second
# write within the same second may not do.
SOURCE_USERS = {
    "alice@source.test": "alice-source-pw",
    "bob@source.test": "right-pw",
    "carol@source.test": "pw-carol",
    "dave@source.test": "pw-dave",
    "erin@source.test": "pw-erin",
    "frank@source.test": "pw-frank",
    "multi0@source.test": "pw multi 0",
    "multi1@source.test": "pw multi 1",
    "multi2@source.test": "pw multi 2",
}


@pytest.fixture(scope="module")
def dovecot():
    d = Dovecot(SOURCE_USERS)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("migrate"),
                             default_cert)


def postern_imap(srv, user, password):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"], ssl_context=ctx)
    c.login(user, password)
    return c


def migrate(srv, dovecot, address, url, password, *extra, stdin=None):
    argv = [postern_bin(), "migrate", address, "--from", url,
            "-c", str(srv.admin_config), "--ca-file",
            str(dovecot.cert.cert_path), "--json"] + list(extra)
    return subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          input=(password + "\n") if stdin is None else stdin)


def migrate_ok(srv, dovecot, address, url, password, *extra):
    r = migrate(srv, dovecot, address, url, password, *extra)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def mutf7(name):
    """IMAP modified UTF-7 of a str (RFC 3501 §5.1.3)."""
    out, buf = [], []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            import base64
            out.append("&" + base64.b64encode(b).decode().rstrip("=")
                       .replace("/", ",") + "-")
            buf.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def q(name):
    return '"' + mutf7(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def message(n, size=0, subject=None):
    body = ("line %d of the body\r\n" % n) * (1 + size // 20)
    return ("From: sender%d@other.test\r\nTo: someone@%s\r\n"
            "Subject: %s\r\nMessage-ID: <m%d.%d@other.test>\r\n"
            "Date: Tue, 3 Mar 2015 10:%02d:00 +0100\r\n\r\n%s"
            % (n, DOMAIN, subject or "message %d" % n, n, time.time_ns(),
               n % 60, body)).encode()


def append(c, folder, msg, flags, date):
    typ, data = c.append(q(folder), flags, imaplib.Time2Internaldate(date),
                         msg)
    assert typ == "OK", data


def fetch_all(c, folder):
    """{bytes: (flags, internal date as unix time)} of a folder, and its
    message count."""
    typ, data = c.select(q(folder), readonly=True)
    assert typ == "OK", (folder, data)
    typ, data = c.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK", data
    out, n = {}, 0
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item
        flags = set(f.decode() for f in imaplib.ParseFlags(meta)) - set(KEEP)
        date = time.mktime(imaplib.Internaldate2tuple(meta))
        out[body] = (flags, date)
        n += 1
    return out, n


SOURCE_FOLDERS = {
    # source name -> our name
    "INBOX": "INBOX",
    "Work": "Work",
    "Work/Projects": "Work/Projects",
    "Entwürfe": "Entwürfe",
    "Sent Items": "Sent",
}


def fill(dovecot, user):
    c = dovecot.imap(user)
    for name in ("Work", "Work/Projects", "Entwürfe"):
        typ, data = c.create(q(name))
        assert typ == "OK", data
    n = 0
    flagsets = ["", "(\\Seen)", "(\\Seen \\Flagged $Label1)",
                "(\\Answered Work)", "(\\Draft)", "($Important \\Seen)"]
    for folder in SOURCE_FOLDERS:
        for i in range(4):
            n += 1
            append(c, folder, message(n, size=(n * 737) % 5000),
                   flagsets[n % len(flagsets)],
                   1300000000 + n * 86400 * 31)
    c.logout()


def assert_same(dovecot, user, srv, address, password, extra_here=0):
    src = dovecot.imap(user)
    dst = postern_imap(srv, address, password)
    try:
        for theirs, ours in SOURCE_FOLDERS.items():
            a, na = fetch_all(src, theirs)
            b, nb = fetch_all(dst, ours)
            assert nb == na + (extra_here if ours == "INBOX" else 0), \
                (theirs, na, nb)
            for body, (flags, date) in a.items():
                assert body in b, (theirs, body[:80])
                assert b[body] == (flags, date), (theirs, body[:80])
    finally:
        src.logout()
        dst.logout()


def folder(out, name):
    return next(f for f in out["folders"] if f["source"] == name)


def test_imap_migration_copies_everything_then_only_changes(dovecot, srv):
    user, pw = "alice@source.test", "alice-source-pw"
    dovecot.add_user(user, pw)
    fill(dovecot, user)
    address, password = new_user(srv)
    url = "imaps://%s@localhost:%d" % (user, dovecot.ports["imaps"])

    out = migrate_ok(srv, dovecot, address, url, pw)
    assert out["ok"] is True and out["qresync"] is True
    assert out["totals"]["copied"] == 20
    assert out["totals"]["failed"] == 0
    assert folder(out, "Sent Items")["target"] == "Sent"
    assert folder(out, "Entwürfe")["target"] == "Entwürfe"
    assert out["totals"]["bytes"] > 0
    assert_same(dovecot, user, srv, address, password)

    # Both sides change: new messages and flag changes at the source, a
    # message delivered here meanwhile.
    c = dovecot.imap(user)
    append(c, "INBOX", message(101), "(\\Seen)", 1400000000)
    append(c, "INBOX", message(102), "", 1400003600)
    append(c, "Work/Projects", message(103), "(Work)", 1400007200)
    c.select(q("Work"))
    typ, data = c.uid("SEARCH", "ALL")
    uids = data[0].split()
    c.uid("STORE", uids[0], "+FLAGS", "(\\Flagged NewKeyword)")
    c.uid("STORE", uids[1], "-FLAGS", "(\\Seen \\Flagged $Label1)")
    c.logout()
    d = postern_imap(srv, address, password)
    d.append("INBOX", "", imaplib.Time2Internaldate(1500000000),
             message(200, subject="delivered here"))
    d.logout()

    out = migrate_ok(srv, dovecot, address, url, pw)
    assert out["totals"]["copied"] == 3, out
    assert out["totals"]["flags_updated"] >= 1, out
    assert folder(out, "Work")["copied"] == 0
    assert folder(out, "INBOX")["copied"] == 2
    assert folder(out, "Work/Projects")["copied"] == 1
    assert_same(dovecot, user, srv, address, password, extra_here=1)

    # Nothing changed: nothing copied, QRESYNC says so without a listing.
    out = migrate_ok(srv, dovecot, address, url, pw)
    assert out["totals"]["copied"] == 0
    assert out["totals"]["flags_updated"] == 0
    assert all(f["unchanged"] for f in out["folders"]), out

    # A message deleted at the source is reported, and deleted here only
    # when asked.
    c = dovecot.imap(user)
    c.select(q("Work/Projects"))
    typ, data = c.uid("SEARCH", "ALL")
    c.uid("STORE", data[0].split()[0], "+FLAGS", "(\\Deleted)")
    c.expunge()
    c.logout()
    out = migrate_ok(srv, dovecot, address, url, pw)
    f = folder(out, "Work/Projects")
    assert (f["deleted_at_source"], f["deleted_here"]) == (1, 0)
    d = postern_imap(srv, address, password)
    assert fetch_all(d, "Work/Projects")[1] == 5
    d.logout()
    out = migrate_ok(srv, dovecot, address, url, pw, "--delete")
    f = folder(out, "Work/Projects")
    assert (f["deleted_at_source"], f["deleted_here"]) == (1, 1)
    assert_same(dovecot, user, srv, address, password, extra_here=1)


def test_wrong_password_is_a_clear_error(dovecot, srv):
    user = "bob@source.test"
    dovecot.add_user(user, "right-pw")
    address, _ = new_user(srv)
    url = "imaps://%s@localhost:%d" % (user, dovecot.ports["imaps"])
    r = subprocess.run([postern_bin(), "migrate", address, "--from", url,
                        "-c", str(srv.admin_config), "--ca-file",
                        str(dovecot.cert.cert_path)],
                       capture_output=True, text=True, timeout=120,
                       input="wrong-pw\n")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "refused the login of %s" % user in r.stderr
    assert "wrong-pw" not in r.stdout + r.stderr


def test_untrusted_certificate_is_refused(dovecot, srv):
    user = "carol@source.test"
    dovecot.add_user(user, "pw-carol")
    address, _ = new_user(srv)
    url = "imaps://%s@localhost:%d" % (user, dovecot.ports["imaps"])
    r = subprocess.run([postern_bin(), "migrate", address, "--from", url,
                        "-c", str(srv.admin_config)],
                       capture_output=True, text=True, timeout=120,
                       input="pw-carol\n")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "certificate is not trusted" in r.stderr


def test_plain_imap_without_starttls_needs_insecure(dovecot, srv):
    user = "dave@source.test"
    dovecot.add_user(user, "pw-dave")
    c = dovecot.imap(user)
    append(c, "INBOX", message(7), "(\\Seen)", 1300000000)
    c.logout()
    address, password = new_user(srv)
    # Dovecot offers STARTTLS on its plain port: it is used, verified.
    url = "imap://%s@localhost:%d" % (user, dovecot.ports["imap"])
    out = migrate_ok(srv, dovecot, address, url, "pw-dave")
    assert out["totals"]["copied"] == 1


def test_pop3_source(dovecot, srv):
    user = "erin@source.test"
    dovecot.add_user(user, "pw-erin")
    c = dovecot.imap(user)
    msgs = [message(300 + i, size=i * 1000) for i in range(5)]
    # A line starting with a dot comes back unstuffed.
    msgs.append(b"Subject: dots\r\nDate: Wed, 4 Mar 2015 11:00:00 +0000"
                b"\r\n\r\n.leading dot\r\n..two\r\n")
    for i, m in enumerate(msgs):
        append(c, "INBOX", m, "", 1300000000 + i)
    c.logout()
    address, password = new_user(srv)
    url = "pop3s://%s@localhost:%d" % (user, dovecot.ports["pop3s"])
    out = migrate_ok(srv, dovecot, address, url, "pw-erin")
    assert out["totals"]["copied"] == 6, out
    d = postern_imap(srv, address, password)
    got, n = fetch_all(d, "INBOX")
    d.logout()
    assert n == 6
    assert set(got) == set(msgs)
    # The internal date is the Date: field.
    assert got[msgs[-1]][1] == time.mktime(imaplib.Internaldate2tuple(
        b'INTERNALDATE "04-Mar-2015 11:00:00 +0000"'))
    # Again: nothing new, nothing duplicated; then one new message.
    out = migrate_ok(srv, dovecot, address, url, "pw-erin")
    assert out["totals"]["copied"] == 0
    c = dovecot.imap(user)
    append(c, "INBOX", message(399), "", 1300000000)
    c.logout()
    out = migrate_ok(srv, dovecot, address, url, "pw-erin")
    assert out["totals"]["copied"] == 1
    d = postern_imap(srv, address, password)
    assert fetch_all(d, "INBOX")[1] == 7
    d.logout()


def test_accounts_file_runs_three_accounts(dovecot, srv, tmp_path):
    lines, targets = [], []
    for i in range(3):
        user, pw = "multi%d@source.test" % i, "pw multi %d" % i
        dovecot.add_user(user, pw)
        c = dovecot.imap(user)
        for k in range(i + 2):
            append(c, "INBOX", message(500 + 10 * i + k), "(\\Seen)",
                   1300000000 + k)
        c.logout()
        address, password = new_user(srv)
        targets.append((address, password, i + 2))
        lines.append("%s imaps://%s@localhost:%d %s" % (
            address, user, dovecot.ports["imaps"], pw))
    path = tmp_path / "accounts"
    path.write_text("# target source password\n\n" + "\n".join(lines) + "\n")
    os.chmod(path, 0o644)
    argv = [postern_bin(), "migrate", "--accounts", str(path), "--jobs", "2",
            "-c", str(srv.admin_config), "--ca-file",
            str(dovecot.cert.cert_path), "--json"]
    # Passwords in a file others may read: refused, naming the line.
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert "%s:3:" % path in r.stderr and "chmod 600" in r.stderr
    os.chmod(path, 0o600)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert [a["address"] for a in out["accounts"]] == \
        [t[0] for t in targets]
    for a, (address, password, n) in zip(out["accounts"], targets):
        assert a["ok"] and a["totals"]["copied"] == n, a
        d = postern_imap(srv, address, password)
        assert fetch_all(d, "INBOX")[1] == n
        d.logout()
    # A bad line is named.
    bad = tmp_path / "bad"
    bad.write_text(lines[0] + "\nnot-an-address\n")
    os.chmod(bad, 0o600)
    r = subprocess.run(argv[:3] + [str(bad)] + argv[4:],
                       capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert "%s:2:" % bad in r.stderr


def test_uidvalidity_change_matches_again_without_duplicates(dovecot, srv):
    user = "frank@source.test"
    c = dovecot.imap(user)
    for i in range(4):
        append(c, "INBOX", message(700 + i), "(\\Seen)" if i % 2 else "",
               1300000000 + i * 3600)
    c.logout()
    address, password = new_user(srv)
    url = "imaps://%s@localhost:%d" % (user, dovecot.ports["imaps"])
    out = migrate_ok(srv, dovecot, address, url, "pw-frank")
    assert folder(out, "INBOX")["copied"] == 4
    # The source renumbers its INBOX (a restore, a server change) and
    # gets one new message.
    r = subprocess.run(["doveadm", "-c", str(dovecot.root / "dovecot.conf"),
                        "mailbox", "update", "-u", user, "--uid-validity",
                        "4242", "INBOX"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    c = dovecot.imap(user)
    typ, data = c.select("INBOX")
    assert c.response("UIDVALIDITY")[1] == [b"4242"]
    append(c, "INBOX", message(799), "", 1300100000)
    c.logout()
    out = migrate_ok(srv, dovecot, address, url, "pw-frank")
    f = folder(out, "INBOX")
    assert (f["rematched"], f["copied"]) == (4, 1), f
    d = postern_imap(srv, address, password)
    got, n = fetch_all(d, "INBOX")
    d.logout()
    assert n == 5
    # And the run after copies nothing: the map is keyed on the new one.
    out = migrate_ok(srv, dovecot, address, url, "pw-frank")
    f = folder(out, "INBOX")
    assert (f["rematched"], f["copied"]) == (0, 0), f


# --- Hostile sources: a fake server on loopback speaking just enough IMAP
# or POP3 (security review of postern migrate).

class FakeSource:
    """A one-connection-at-a-time server thread; `talk(conn)` speaks the
    protocol over a file of the socket. What it read is kept in `seen`."""

    def __init__(self, talk):
        import threading
        self.talk = talk
        self.seen = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                f = conn.makefile("rwb", buffering=0)
                try:
                    self.talk(f, self)
                except (OSError, ValueError):
                    pass

    def readline(self, f):
        line = f.readline()
        if not line:
            raise OSError("closed")
        self.seen.append(line)
        return line

    def close(self):
        self.sock.close()


def fetch_body(uid, body, seq=1):
    return (b"* %d FETCH (UID %d FLAGS () INTERNALDATE "
            b"\"01-Jan-2020 00:00:00 +0000\" BODY[] {%d}\r\n"
            % (seq, uid, len(body)) + body + b")\r\n")


def migrate_fake(srv, address, url, password="pw", *extra, timeout=120):
    argv = [postern_bin(), "migrate", address, "--from", url,
            "-c", str(srv.admin_config), "--json"] + list(extra)
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, input=password + "\n")


def test_preauth_without_tls_is_refused(srv):
    # H2: a PREAUTH greeting on imap:// would skip STARTTLS: anyone on the
    # path could feed (or, with --delete, remove) mail.
    def talk(f, fake):
        f.write(b"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n")
        while True:
            line = fake.readline(f)
            tag = line.split(b" ", 1)[0]
            if b"LOGOUT" in line.upper():
                f.write(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return
            if b" LIST " in line.upper():
                f.write(b'* LIST () "/" INBOX\r\n')
            elif b"SELECT" in line.upper():
                f.write(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n")
            elif b"FETCH" in line.upper() and b"BODY" in line.upper():
                f.write(fetch_body(1, b"Subject: injected\r\n\r\nhi\r\n"))
            elif b"FETCH" in line.upper():
                f.write(b"* 1 FETCH (UID 1 FLAGS ())\r\n")
            f.write(tag + b" OK done\r\n")

    fake = FakeSource(talk)
    try:
        address, _ = new_user(srv)
        r = migrate_fake(srv, address,
                         "imap://bob@127.0.0.1:%d" % fake.port)
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "logged us in before TLS (PREAUTH)" in r.stdout, r.stdout
        assert not any(b"FETCH" in l.upper() for l in fake.seen), fake.seen
        # --insecure: the user said the path is trusted.
        r = migrate_fake(srv, address,
                         "imap://bob@127.0.0.1:%d" % fake.port, "pw",
                         "--insecure")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    finally:
        fake.close()


def imap_talk(list_reply=None, listing=None, bodies=None):
    """A plain IMAP source (no STARTTLS: --insecure) with one INBOX of
    one message; the replies to LIST, the UID listing and the body FETCH
    can be replaced (a callable writing to f)."""
    def talk(f, fake):
        f.write(b"* OK [CAPABILITY IMAP4rev1] fake\r\n")
        while True:
            line = fake.readline(f)
            tag, rest = line.split(b" ", 1)
            up = rest.upper()
            if up.startswith(b"LOGOUT"):
                f.write(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return
            if up.startswith(b"CAPABILITY"):
                f.write(b"* CAPABILITY IMAP4rev1\r\n")
            elif up.startswith(b"LIST"):
                if list_reply:
                    list_reply(f)
                else:
                    f.write(b'* LIST () "/" INBOX\r\n')
            elif up.startswith(b"SELECT"):
                f.write(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n")
            elif b"BODY" in up:
                if bodies:
                    bodies(f)
                else:
                    f.write(fetch_body(1, b"Subject: a\r\n\r\nhi\r\n"))
            elif up.startswith(b"UID FETCH"):
                if listing:
                    listing(f)
                else:
                    f.write(b"* 1 FETCH (UID 1 FLAGS ())\r\n")
            f.write(tag + b" OK done\r\n")
    return talk


def test_fetch_of_unrequested_or_repeated_uid_is_dropped(srv):
    # M3: the body FETCH for UID 1 answered with UID 1, UID 1 again and
    # UID 99 (never asked for) copied 3 messages.
    def bodies(f):
        f.write(fetch_body(1, b"Subject: one\r\n\r\nfirst\r\n"))
        f.write(fetch_body(1, b"Subject: one again\r\n\r\nsecond\r\n"))
        f.write(fetch_body(99, b"Subject: injected\r\n\r\nx\r\n", seq=2))

    fake = FakeSource(imap_talk(bodies=bodies))
    try:
        address, password = new_user(srv)
        r = migrate_fake(srv, address, "imap://bob@127.0.0.1:%d" % fake.port,
                         "pw", "--insecure")
        out = json.loads(r.stdout)
        assert out["totals"]["copied"] == 1, r.stdout
        assert out["totals"]["mismatches"] == 2, r.stdout
        c = postern_imap(srv, address, password)
        c.select("INBOX")
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
        bodies_here = [d[1] for d in data if isinstance(d, tuple)]
        assert bodies_here == [b"Subject: one\r\n\r\nfirst\r\n"], data
        c.logout()
    finally:
        fake.close()


def test_too_many_folders_is_a_clear_error(srv):
    # M1: a LIST without end grew the CLI's memory without limit.
    def list_reply(f):
        chunk = b"".join(b'* LIST () "/" "f%d"\r\n' % i
                         for i in range(10000))
        for _ in range(11):
            f.write(chunk)

    fake = FakeSource(imap_talk(list_reply=list_reply))
    try:
        address, _ = new_user(srv)
        r = migrate_fake(srv, address, "imap://bob@127.0.0.1:%d" % fake.port,
                         "pw", "--insecure")
        assert r.returncode == 1, (r.returncode, r.stdout[:2000], r.stderr)
        assert "MIGRATE_FOLDERS_MAX" in r.stdout, r.stdout[:2000]
    finally:
        fake.close()


def test_listing_beyond_exists_is_a_clear_error(srv):
    # M1: the UID FETCH 1:* listing of a folder of 1 message (EXISTS 1)
    # may not list more than EXISTS plus a slack.
    def listing(f):
        f.write(b"".join(b"* %d FETCH (UID %d FLAGS ())\r\n" % (i, i)
                         for i in range(1, 5000)))

    fake = FakeSource(imap_talk(listing=listing))
    try:
        address, _ = new_user(srv)
        r = migrate_fake(srv, address, "imap://bob@127.0.0.1:%d" % fake.port,
                         "pw", "--insecure")
        assert r.returncode == 1, (r.returncode, r.stdout[:2000], r.stderr)
        assert "EXISTS allows" in r.stdout, r.stdout[:2000]
    finally:
        fake.close()


def test_endless_pop3_uidl_is_a_clear_error(srv):
    # M1: a POP3 source streaming UIDL lines grew RSS to 1.6 GB.
    def talk(f, fake):
        f.write(b"+OK fake\r\n")
        while True:
            line = fake.readline(f).upper()
            if line.startswith(b"QUIT"):
                f.write(b"+OK bye\r\n")
                return
            if line.startswith(b"CAPA"):
                f.write(b"-ERR no\r\n")
            elif line.startswith(b"UIDL"):
                f.write(b"+OK\r\n")
                n = 1
                while n <= 1000001:
                    f.write(b"".join(b"%d id%d\r\n" % (i, i)
                                     for i in range(n, n + 50000)))
                    n += 50000
                f.write(b".\r\n")
            else:
                f.write(b"+OK\r\n")

    fake = FakeSource(talk)
    try:
        address, _ = new_user(srv)
        r = migrate_fake(srv, address, "pop3://bob@127.0.0.1:%d" % fake.port,
                         "pw", "--insecure")
        assert r.returncode == 1, (r.returncode, r.stdout[:2000], r.stderr)
        assert "MIGRATE_POP3_MESSAGES_MAX" in r.stdout, r.stdout[:2000]
    finally:
        fake.close()


def test_password_in_url_is_refused(srv, tmp_path):
    # L1: imaps://bob:Secr3tPw@host sent "bob:Secr3tPw" as the user name
    # and echoed it in --json.
    address, _ = new_user(srv)
    r = migrate_fake(srv, address, "imaps://bob:Secr3tPw@127.0.0.1:1")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "put no password in the URL" in r.stderr, r.stderr
    assert "Secr3tPw" not in r.stdout + r.stderr
    # The same in an accounts file, naming the line.
    path = tmp_path / "accounts"
    path.write_text("%s imaps://bob:Secr3tPw@127.0.0.1:1 pw\n" % address)
    os.chmod(path, 0o600)
    r = subprocess.run([postern_bin(), "migrate", "--accounts", str(path),
                        "-c", str(srv.admin_config), "--json"],
                       capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "%s:1:" % path in r.stderr and "no password in the URL" in \
        r.stderr, r.stderr
    assert "Secr3tPw" not in r.stdout + r.stderr


def test_repeated_address_in_accounts_is_refused(srv, tmp_path):
    # L3: two workers copying into one account made duplicates.
    address, _ = new_user(srv)
    path = tmp_path / "accounts"
    path.write_text("%s imaps://a@127.0.0.1:1\n# x\n%s imaps://b@127.0.0.1:1\n"
                    % (address, address.upper()))
    r = subprocess.run([postern_bin(), "migrate", "--accounts", str(path),
                        "--jobs", "2", "-c", str(srv.admin_config)],
                       capture_output=True, text=True, timeout=60,
                       input="pw\n")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "%s:3:" % path in r.stderr and "%s:1" % path in r.stderr, \
        r.stderr


def test_trickling_source_times_out(srv):
    # L2: --timeout bounded each read only: a source sending a byte now
    # and then held a job forever. Now the answer as a whole must come
    # within --timeout (plus a second per 16 KiB of it).
    import threading
    stop = threading.Event()

    def talk(f, fake):
        f.write(b"* OK ")
        while not stop.wait(0.3):
            f.write(b"x")

    fake = FakeSource(talk)
    try:
        address, _ = new_user(srv)
        r = migrate_fake(srv, address, "imap://bob@127.0.0.1:%d" % fake.port,
                         "pw", "--insecure", "--timeout", "2", timeout=300)
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "timed out" in r.stdout, r.stdout
    finally:
        stop.set()
        fake.close()
