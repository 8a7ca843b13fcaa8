#!/usr/bin/python3
"""Side-by-side benchmark: postern against Postfix + Dovecot (issue 9).

Starts, on loopback high ports and under one scratch directory:
  - postern (its own configuration and data directory, users made with the
    `postern user add` CLI), and
  - a private Postfix instance (`postfix -c DIR start`, its own
    config_directory and queue_directory) delivering by LMTP to a private
    Dovecot (`dovecot -c FILE`, its own base_dir, passwd-file virtual users,
    Maildir),
then drives both with the same loads, interleaving the runs (postern run
k, then the reference's run k) so that a busy machine hurts both alike,
and prints a markdown table (median of the runs, with min and max, and
the ratio postern / reference) which it also writes to bench/RESULTS.md.

Loads (numbers of issue 9):
  1 smtp   Postfix's smtp-source, 20,000 x 4 KiB, 50 parallel sessions,
           recipients spread over 1,000 accounts; the clock stops when the
           last message is in its mailbox (counted in postern's store.db, or
           as files in the Dovecot Maildirs).
  4 pop3   200 mailboxes x 100 messages, downloaded by 20 clients
           (bench/pop3_load.c); MB/s.
  5 login  new TLS connection, AUTHENTICATE PLAIN, LOGOUT on IMAPS
           (bench/imap_load.c login); logins/s and latency.
  2 imap   the IMAP mix of bench/imap_load.c (50 clients): closed loop
           (each client sends its next command when the last is
           answered), or with --imap-rate R open loop (R commands/s
           offered in all, latency counted from when each was due).
  3 idle   IMAP connections in IDLE; memory per connection and time for
           all of them to see a new message.

Only the Python standard library is used. Run as root (Dovecot and Postfix
drop privileges to their own users) or see `--help`.
"""

import argparse
import ctypes
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DOMAIN = "example.test"
PASSWORD = "bench-password"
HOSTNAME = "mail.example.test"

# Accounts: the SMTP load spreads over SMTP_USERS; the POP3 load reads
# POP_USERS other accounts filled with POP_MSGS messages each.
SMTP_USERS = 1000
POP_USERS = 200
POP_MSGS = 100
IMAP_USERS = 50
IMAP_MSGS = 1000


def smtp_user(i):
    return "u%04d@%s" % (i, DOMAIN)


def pop_user(i):
    return "p%03d@%s" % (i, DOMAIN)


def imap_user(i):
    return "m%03d@%s" % (i, DOMAIN)


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


def run(argv, **kw):
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    try:
        return subprocess.run([str(a) for a in argv], **kw)
    except subprocess.CalledProcessError as e:
        raise RuntimeError("%s failed (%s):\n%s%s" % (
            " ".join(map(str, argv)), e.returncode, e.stdout, e.stderr))


def proc_pss_kib(pids):
    """Sum of the proportional set sizes (KiB) of pids (shared pages are
    split between the processes that map them, so a server of many
    processes is not charged its libraries once per process)."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def descendants(pid):
    """pid and every process below it."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


# --- yescrypt hashes, the same kind postern makes --------------------------

_libcrypt = None


def crypt_yescrypt(password):
    """A yescrypt hash of password at libcrypt's default cost (what
    postern's `user add` makes, src/auth/auth_password.c)."""
    global _libcrypt
    if _libcrypt is None:
        _libcrypt = ctypes.CDLL("libcrypt.so.1")
        _libcrypt.crypt_gensalt.restype = ctypes.c_char_p
        _libcrypt.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                            ctypes.c_char_p, ctypes.c_int]
        _libcrypt.crypt_r.restype = ctypes.c_char_p
    setting = _libcrypt.crypt_gensalt(b"$y$", 0, None, 0)
    data = ctypes.create_string_buffer(32768)
    return _libcrypt.crypt_r(password.encode(), setting, data).decode()


# --- postern ----------------------------------------------------------------


class Postern:
    name = "postern"

    def __init__(self, root, binary, cert, key):
        self.root = Path(root) / "postern"
        self.bin = binary
        self.cert, self.key = cert, key
        self.data = self.root / "data"
        self.conf = self.root / "postern.conf"
        self.proc = None
        self.ports = {}

    def config_text(self):
        listeners = [("smtp", "smtp", "none"), ("imap", "imap", "none"),
                     ("imaps", "imap", "implicit"), ("pop3", "pop3", "none"),
                     ("pop3s", "pop3", "implicit")]
        out = ["[server]", "hostname = %s" % HOSTNAME,
               "data_dir = %s" % self.data,
               # Passwords in the clear on the TLS-off loads, as Dovecot's
               # disable_plaintext_auth = no.
               "allow_plaintext_auth = yes"]
        # serve refuses to run as root without a [server] user; the bench's
        # data directory is root's, as Dovecot's and Postfix's are here.
        if os.geteuid() == 0:
            out.append("user = root")
        out += ["",
               # Every client comes from 127.0.0.1: the per-address limit
               # (default 20) would refuse the 50 SMTP sessions, and the
               # idle load needs its 10,000 connections.
               "[limits]", "max_connections = 20000",
               "max_connections_per_ip = 20000", "",
               "[certificate main]", "cert = %s" % self.cert,
               "key = %s" % self.key]
        for name, proto, tls in listeners:
            out += ["", "[listener %s]" % name, "address = 127.0.0.1",
                    "port = 0", "protocol = %s" % proto, "tls = %s" % tls]
        return "\n".join(out) + "\n"

    def cli(self, *args, stdin=None):
        argv = [self.bin, args[0], args[1], "-c", self.conf, *args[2:]]
        return run(argv, input=stdin if stdin is not None else "")

    def setup(self, users):
        self.root.mkdir(parents=True)
        self.data.mkdir(mode=0o700)
        self.conf.write_text(self.config_text())
        self.cli("domain", "add", DOMAIN)
        t0 = time.monotonic()
        # yescrypt makes each `user add` take ~0.1 s; two at a time.
        with ThreadPoolExecutor(max_workers=2) as ex:
            list(ex.map(lambda u: self.cli("user", "add", u,
                                           stdin=PASSWORD + "\n"), users))
        log("postern: %d users added with the CLI in %.1f s"
            % (len(users), time.monotonic() - t0))
        return time.monotonic() - t0

    def hashes(self):
        """address -> password hash, as postern stored them."""
        db = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(
            str(self.data / "store.db")), uri=True)
        try:
            return dict(db.execute(
                "SELECT address, password_hash FROM accounts"))
        finally:
            db.close()

    def start(self):
        logpath = self.root / "postern.log"
        since = logpath.stat().st_size if logpath.exists() else 0
        self.logf = open(logpath, "ab")
        self.proc = subprocess.Popen(
            [self.bin, "serve", "-c", self.conf], stdin=subprocess.DEVNULL,
            stdout=self.logf, stderr=self.logf, cwd=self.root)
        deadline = time.monotonic() + 30
        rx = re.compile(r"event=listener\.ready name=(\S+) .*port=(\d+)")
        while time.monotonic() < deadline:
            with open(logpath, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
            if "event=server.ready" in text:
                self.ports = {m.group(1): int(m.group(2))
                              for m in rx.finditer(text)}
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("postern did not start:\n" + text[-3000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def port(self, what):
        return self.ports[what]

    def _db(self):
        return sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(
            str(self.data / "store.db")), uri=True, timeout=30)

    def count(self, users):
        """Messages in the INBOXes of users (a list of addresses)."""
        db = self._db()
        try:
            db.execute("CREATE TEMP TABLE want (a TEXT PRIMARY KEY)")
            db.executemany("INSERT INTO want VALUES (?)",
                           [(u,) for u in users])
            return db.execute(
                "SELECT coalesce(sum(b.messages), 0) FROM mailboxes b "
                "JOIN accounts a ON b.account = a.id "
                "JOIN want w ON w.a = a.address "
                "WHERE b.name = 'INBOX'").fetchone()[0]
        finally:
            db.close()

    def pids(self):
        return [self.proc.pid] if self.proc else []

    def describe(self):
        return ("postern %s, Release build, 2 worker threads (workers = 0: "
                "one per core), SQLite store (WAL, synchronous=FULL, message "
                "files fdatasync'd and their directories fsync'd before the "
                "250 reply), auth cache_ttl = 5m (default)"
                % self.version())

    def version(self):
        try:
            return run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]
                       ).stdout.strip() + " (+ working tree)"
        except Exception:
            return "?"


# --- Postfix + Dovecot -------------------------------------------------------

POSTFIX_MASTER = """\
# service type private unpriv chroot wakeup maxproc command
{smtp_addr} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Reference:
    name = "Postfix+Dovecot"

    def __init__(self, root, cert, key, extra_dovecot=""):
        self.root = Path(root) / "ref"
        self.cert, self.key = cert, key
        self.pf = self.root / "postfix"
        self.dc = self.root / "dovecot"
        self.mail = self.root / "mail"
        self.extra_dovecot = extra_dovecot
        self.ports = {}
        self.is_root = os.getuid() == 0
        self.mail_uid = 65534 if self.is_root else os.getuid()
        self.mail_gid = 65534 if self.is_root else os.getgid()

    def setup(self, hashes):
        self.hashes = hashes
        for d in (self.root, self.pf, self.pf / "etc", self.dc, self.mail):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o755)
        (self.pf / "queue").mkdir(mode=0o755)
        (self.pf / "data").mkdir(mode=0o700)
        if self.is_root:
            os.chown(self.mail, self.mail_uid, self.mail_gid)
            shutil.chown(self.pf / "data", "postfix")
        for k in ("smtp", "imap", "imaps", "pop3", "pop3s"):
            self.ports[k] = free_port()
        self.write_dovecot(hashes)
        self.write_postfix(hashes)

    def write_dovecot(self, hashes):
        users = self.dc / "users"
        # passwd-file: user:password:uid:gid:(gecos):home:(shell):extra
        users.write_text("".join(
            "%s:{CRYPT}%s:%d:%d::%s/%s/%s::\n" % (
                a, h, self.mail_uid, self.mail_gid, self.mail,
                a.split("@")[1], a.split("@")[0])
            for a, h in sorted(hashes.items())))
        users.chmod(0o644)
        unpriv = ""
        if not self.is_root:
            me = os.environ.get("USER") or str(os.getuid())
            unpriv = ("default_login_user = %s\ndefault_internal_user = %s\n"
                      % (me, me))
        conf = f"""\
# A private Dovecot for the bench: everything not set here is Dovecot's
# default (`doveconf -n -c THIS` lists the changes).
base_dir = {self.dc}/run
state_dir = {self.dc}/state
log_path = {self.dc}/dovecot.log
{unpriv}protocols = imap pop3 lmtp
listen = 127.0.0.1
# Plain passwords on the TLS-off loads, as postern's allow_plaintext_auth.
disable_plaintext_auth = no
auth_mechanisms = plain login
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
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
    address = 127.0.0.1
    port = {self.ports['pop3']}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.ports['pop3s']}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{DOMAIN}
}}
{self.extra_dovecot}
"""
        (self.dc / "dovecot.conf").write_text(conf)

    def write_postfix(self, hashes):
        etc = self.pf / "etc"
        (etc / "vmailbox").write_text("".join(
            "%s OK\n" % a for a in sorted(hashes)))
        me = "postfix" if self.is_root else (os.environ.get("USER") or "")
        main = f"""\
# A private Postfix for the bench: everything not set here is Postfix's
# default (`postconf -n -c THIS_DIR` lists the changes).
compatibility_level = 3.6
queue_directory = {self.pf}/queue
data_directory = {self.pf}/data
mail_owner = {me}
myhostname = mx.{DOMAIN}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {self.pf}/maillog
maillog_file_prefixes = {self.pf}
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = texthash:{etc}/vmailbox
virtual_transport = lmtp:unix:{self.dc}/run/lmtp
alias_maps =
alias_database =
"""
        (etc / "main.cf").write_text(main)
        (etc / "master.cf").write_text(POSTFIX_MASTER.format(
            smtp_addr="127.0.0.1:%d" % self.ports["smtp"]))

    def daemon(self, argv):
        """Runs a command that leaves a daemon behind: the daemon must not
        hold our pipes open."""
        with open(self.root / "start.log", "ab") as f:
            r = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL,
                               stdout=f, stderr=f)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d); see %s" % (
                " ".join(map(str, argv)), r.returncode,
                self.root / "start.log"))

    def start(self):
        self.daemon(["dovecot", "-c", self.dc / "dovecot.conf"])
        self.daemon(["postfix", "-c", self.pf / "etc", "start"])
        for k in ("smtp", "imap", "imaps", "pop3", "pop3s"):
            wait_port(self.ports[k])

    def stop(self):
        self.daemon(["postfix", "-c", self.pf / "etc", "stop"])
        self.daemon(["doveadm", "-c", self.dc / "dovecot.conf", "stop"])
        pid = self.dovecot_pid()
        deadline = time.monotonic() + 15
        while pid and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)

    def reconfigure_dovecot(self, extra):
        """Restarts Dovecot with extra settings (Postfix stays up)."""
        self.daemon(["doveadm", "-c", self.dc / "dovecot.conf", "stop"])
        pid = self.dovecot_pid()
        deadline = time.monotonic() + 15
        while pid and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
        self.extra_dovecot = extra
        self.write_dovecot(self.hashes)
        self.daemon(["dovecot", "-c", self.dc / "dovecot.conf"])
        for k in ("imap", "imaps", "pop3", "pop3s"):
            wait_port(self.ports[k])

    def dovecot_pid(self):
        try:
            return int((self.dc / "run" / "master.pid").read_text())
        except (OSError, ValueError):
            return None

    def pids(self):
        pid = self.dovecot_pid()
        return descendants(pid) if pid else []

    def port(self, what):
        return self.ports[what]

    def count(self, users):
        n = 0
        for a in users:
            local, dom = a.split("@")
            md = self.mail / dom / local / "Maildir"
            for sub in ("new", "cur"):
                try:
                    n += len(os.listdir(md / sub))
                except FileNotFoundError:
                    pass
        return n

    def describe(self):
        pf = run(["postconf", "-d", "-h", "mail_version"]).stdout.strip()
        dv = run(["dovecot", "--version"]).stdout.strip()
        return ("Postfix %s (private instance, Debian package) delivering "
                "with lmtp:unix to Dovecot %s (private instance, "
                "passwd-file users with the same yescrypt hashes, Maildir)"
                % (pf, dv))


# --- loads ----------------------------------------------------------------


def wait_count(server, users, target, timeout, poll=0.2):
    deadline = time.monotonic() + timeout
    while True:
        n = server.count(users)
        if n >= target:
            return n
        if time.monotonic() > deadline:
            raise RuntimeError("%s: %d of %d messages in the mailboxes after "
                               "%.0f s" % (server.name, n, target, timeout))
        time.sleep(poll)


def smtp_send(port, rcpts, per_rcpt, sessions, size):
    """Sends per_rcpt messages of size payload bytes to each address of
    rcpts, sessions smtp-source sessions at a time (one smtp-source
    process per recipient, one connection reused for its messages)."""
    errors = []

    def one(rcpt):
        r = subprocess.run(
            ["smtp-source", "-d", "-s", "1", "-m", str(per_rcpt), "-l",
             str(size), "-M", "client.example", "-f",
             "sender@client.example", "-t", rcpt, "127.0.0.1:%d" % port],
            capture_output=True, text=True)
        if r.returncode != 0:
            errors.append("%s: %s" % (rcpt, r.stderr.strip()[-300:]))

    with ThreadPoolExecutor(max_workers=sessions) as ex:
        list(ex.map(one, rcpts))
    if errors:
        raise RuntimeError("smtp-source failed %d times, e.g. %s"
                           % (len(errors), errors[0]))


def load_smtp(server, cfg):
    users = [smtp_user(i) for i in range(cfg.smtp_users)]
    per = cfg.smtp_messages // len(users)
    before = server.count(users)
    t0 = time.monotonic()
    smtp_send(server.port("smtp"), users, per, cfg.smtp_sessions, 4096)
    t_sent = time.monotonic() - t0
    wait_count(server, users, before + per * len(users), timeout=1800)
    dt = time.monotonic() - t0
    return {"msgs/s": per * len(users) / dt, "s": dt, "sent_s": t_sent}


def fill_pop(server, cfg):
    users = [pop_user(i) for i in range(cfg.pop_users)]
    if server.count(users) >= cfg.pop_users * cfg.pop_msgs:
        return
    smtp_send(server.port("smtp"), users, cfg.pop_msgs, cfg.smtp_sessions,
              4096)
    wait_count(server, users, cfg.pop_users * cfg.pop_msgs, timeout=1800)


def run_client(argv, timeout=1800):
    r = run(argv, timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("%s printed no JSON:\n%s%s"
                           % (argv[0], r.stdout, r.stderr))


def load_pop3(server, cfg):
    res = run_client([BENCH_BIN / "pop3_load", "-p",
                      server.port("pop3"), "-u", "p%03d@" + DOMAIN,
                      "-n", cfg.pop_users, "-w", PASSWORD, "-c",
                      cfg.pop_clients])
    if res["messages"] != cfg.pop_users * cfg.pop_msgs or res["errors"]:
        raise RuntimeError("%s: pop3_load: %r" % (server.name, res))
    return {"MB/s": res["bytes"] / res["seconds"] / 1e6, "s": res["seconds"],
            "bytes": res["bytes"]}


def load_login(server, cfg):
    res = run_client([BENCH_BIN / "imap_load", "login", "-p",
                      server.port("imaps"), "--tls", "-u",
                      "u%04d@" + DOMAIN, "-n", cfg.smtp_users, "-w",
                      PASSWORD, "-c", cfg.login_clients, "-d",
                      cfg.login_seconds])
    if res["errors"]:
        raise RuntimeError("%s: imap_load login: %r" % (server.name, res))
    lat = res["ops"]["login"]
    return {"logins/s": res["ops_done"] / res["seconds"],
            "p50 ms": lat["p50_ms"], "p99 ms": lat["p99_ms"]}


def fill_imap(server, cfg):
    users = [imap_user(i) for i in range(cfg.imap_users)]
    if server.count(users) >= cfg.imap_users * cfg.imap_msgs:
        return
    smtp_send(server.port("smtp"), users, cfg.imap_msgs, cfg.smtp_sessions,
              4096)
    wait_count(server, users, cfg.imap_users * cfg.imap_msgs, timeout=3600)


def imap_label(rate, cfg):
    if rate > 0:
        return "imap open loop (%g ops/s offered, %d clients)" % (
            rate, cfg.imap_clients)
    return "imap closed loop (%d clients)" % cfg.imap_clients


def imap_load_at(rate):
    return lambda server, cfg: load_imap(server, cfg, rate)


def load_imap(server, cfg, rate=0):
    argv = [BENCH_BIN / "imap_load", "mix", "-p", server.port("imap"), "-u",
            "m%03d@" + DOMAIN, "-n", cfg.imap_users, "-w", PASSWORD, "-c",
            cfg.imap_clients, "-d", cfg.imap_seconds]
    if rate > 0:
        argv += ["--rate", rate]
    res = run_client(argv)
    if res["errors"]:
        raise RuntimeError("%s: imap_load mix: %r" % (server.name, res))
    # ops/s: commands answered per second once every client is logged in
    # (the logins are "setup s"); open loop: what was carried of the rate
    # offered.
    out = {"ops/s": res["ops_done"] / res["seconds"],
           "setup s": res["setup_seconds"]}
    for op, lat in res["ops"].items():
        out[op + " mean ms"] = lat["mean_ms"]
        out[op + " p50 ms"] = lat["p50_ms"]
        out[op + " p99 ms"] = lat["p99_ms"]
    return out


def load_idle(server, cfg, n=None):
    """cfg.idle_connections (or n) connections of one account in IDLE (10 per
    client address, Dovecot's default per user and address); server
    memory (PSS) before and after, and the time until all of them see
    one APPENDed message."""
    n = n or cfg.idle_connections
    if isinstance(server, Postern):
        # A fresh process, so that the growth is not hidden by memory the
        # allocator kept from an earlier run (Dovecot's imap processes
        # are new for every connection anyway).
        server.stop()
        server.start()
        time.sleep(1)
    before = proc_pss_kib(server.pids())
    p = subprocess.Popen(
        [str(BENCH_BIN / "imap_load"), "idle", "-p", str(server.port("imap")),
         "-u", "m%03d@" + DOMAIN, "-w", PASSWORD, "-c", str(n), "-s",
         str((n + 9) // 10)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    ready = p.stdout.readline()
    m = re.match(r"READY (\d+)", ready)
    if not m or int(m.group(1)) != n:
        p.kill()
        raise RuntimeError("%s: imap_load idle: %r" % (server.name, ready))
    time.sleep(2)
    after = proc_pss_kib(server.pids())
    p.stdin.write("GO\n")
    p.stdin.flush()
    out, _ = p.communicate(timeout=300)
    res = json.loads(out.strip().splitlines()[-1])
    if res["woken"] != n:
        raise RuntimeError("%s: imap_load idle: %r" % (server.name, res))
    return {"KiB/conn": (after - before) / n,
            "wake all s": res["wake_all_seconds"],
            "setup s": res["setup_seconds"]}


BENCH_BIN = BENCH


# --- reporting ------------------------------------------------------------


def stats(values):
    return statistics.median(values), min(values), max(values)


def fmt(v):
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def machine():
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    disk = run(["df", "-hT", "/tmp"]).stdout.splitlines()[-1].split()
    dev = disk[0].split("/")[-1]
    rot = Path("/sys/block/%s/queue/rotational" % re.sub(r"\d+$", "", dev))
    kind = "virtual disk, rotational=%s" % (
        rot.read_text().strip() if rot.exists() else "?")
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_mib": mem,
            "kernel": platform.release(), "disk": "%s %s, %s" % (
                disk[0], disk[1], kind),
            "os": Path("/etc/debian_version").read_text().strip()}


def loadavg():
    return Path("/proc/loadavg").read_text().split()[:3]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--postern", default=str(REPO / "build/bench/postern"))
    ap.add_argument("--bin-dir", default=str(BENCH),
                    help="where pop3_load and imap_load are")
    ap.add_argument("--dir", default="/tmp/postern-bench",
                    help="scratch directory (emptied first)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--loads", default="smtp,pop3,login,imap,idle")
    ap.add_argument("--smtp-messages", type=int, default=20000)
    ap.add_argument("--smtp-users", type=int, default=SMTP_USERS)
    ap.add_argument("--smtp-sessions", type=int, default=50)
    ap.add_argument("--pop-users", type=int, default=POP_USERS)
    ap.add_argument("--pop-msgs", type=int, default=POP_MSGS)
    ap.add_argument("--pop-clients", type=int, default=20)
    ap.add_argument("--login-clients", type=int, default=20)
    ap.add_argument("--login-seconds", type=float, default=15)
    ap.add_argument("--imap-users", type=int, default=IMAP_USERS)
    ap.add_argument("--imap-msgs", type=int, default=IMAP_MSGS)
    ap.add_argument("--imap-clients", type=int, default=50)
    ap.add_argument("--imap-seconds", type=float, default=20)
    ap.add_argument("--imap-rate", default="0",
                    help="IMAP mix rates, comma-separated: 0 is the closed "
                    "loop, R > 0 an open loop of R commands/s offered in "
                    "all (Poisson arrivals per client; latency from when "
                    "each command was due). E.g. 0,400,700 runs all "
                    "three")
    ap.add_argument("--idle-connections", type=int, default=1000)
    ap.add_argument("--keep-inotify", action="store_true",
                    help="leave fs.inotify.max_user_instances as it is "
                    "(by default, as root, it is raised for the idle load "
                    "and put back afterwards: with Linux's default of 128 "
                    "Dovecot's imap processes beyond the 128th fall back "
                    "to polling every 30 s)")
    ap.add_argument("--idle-postern-only", type=int, default=10000,
                    help="then the idle load on postern alone with this "
                    "many connections (Dovecot's default process_limit "
                    "of 1024 imap processes cannot hold them); 0: skip")
    ap.add_argument("--results", default=str(BENCH / "RESULTS.md"))
    cfg = ap.parse_args()
    try:
        cfg.imap_rates = [float(r) for r in cfg.imap_rate.split(",")]
    except ValueError:
        ap.error("--imap-rate takes numbers, comma-separated")
    if not cfg.imap_rates or any(r < 0 for r in cfg.imap_rates):
        ap.error("--imap-rate takes rates >= 0")
    global BENCH_BIN
    BENCH_BIN = Path(cfg.bin_dir).resolve()
    cfg.postern = str(Path(cfg.postern).resolve())
    loads = cfg.loads.split(",")

    root = Path(cfg.dir)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    root.chmod(0o755)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", root / "key.pem", "-out", root / "cert.pem", "-days",
         "30", "-subj", "/CN=" + HOSTNAME, "-addext",
         "subjectAltName=DNS:" + HOSTNAME])
    (root / "key.pem").chmod(0o644)
    cert, key = root / "cert.pem", root / "key.pem"

    servers = [Postern(root, cfg.postern, cert, key),
               Reference(root, cert, key)]
    users = [smtp_user(i) for i in range(cfg.smtp_users)]
    if "pop3" in loads:
        users += [pop_user(i) for i in range(cfg.pop_users)]
    if "imap" in loads or "idle" in loads or "idle-big" in loads:
        users += [imap_user(i) for i in range(cfg.imap_users)]
    setup_s = servers[0].setup(users)
    servers[1].setup(servers[0].hashes())

    state = {"results": {}, "started": time.strftime("%Y-%m-%d %H:%M UTC",
                                                      time.gmtime()),
             "loads_seen": [loadavg()], "setup_s": setup_s,
             "users": len(users)}
    cached = "auth_cache_size = 10M\n"
    # name, function, preparation, warm-up run, Dovecot's extra settings
    # (and the row label, if not the name)
    imap_plan = [("imap", imap_load_at(rate), fill_imap if i == 0 else None,
                  i == 0, None, imap_label(rate, cfg))
                 for i, rate in enumerate(cfg.imap_rates)]
    plan = [("smtp", load_smtp, None, False, None),
            ("pop3", load_pop3, fill_pop, True, None),
            ("login", load_login, None, True, None),
            *imap_plan,
            ("idle", load_idle, fill_imap, False, None),
            ("idle-big", lambda s, c: load_idle(s, c, c.idle_postern_only),
             None, False, None),
            ("pop3", load_pop3, fill_pop, True, cached),
            ("login", load_login, None, True, cached)]
    inotify = Path("/proc/sys/fs/inotify/max_user_instances")
    inotify_was = None
    try:
        if ("idle" in loads and not cfg.keep_inotify and os.getuid() == 0
                and inotify.exists()):
            inotify_was = int(inotify.read_text())
            want = max(inotify_was, cfg.idle_connections + 1024)
            if want != inotify_was:
                inotify.write_text("%d\n" % want)
                state["inotify"] = (inotify_was, want)
                log("fs.inotify.max_user_instances %d -> %d for the idle "
                    "load" % (inotify_was, want))
        for s in servers:
            s.start()
        for name, fn, prep, warm, extra, *named in plan:
            if name == "idle-big":
                if not ("idle" in loads or name in loads) or \
                        not cfg.idle_postern_only:
                    continue
            elif name not in loads:
                continue
            label = named[0] if named else name
            targets = servers
            if name == "idle-big":
                label = "idle, %d connections" % cfg.idle_postern_only
                targets = servers[:1]
            if extra is not None:
                label = name + " (Dovecot auth_cache_size=10M)"
                servers[1].reconfigure_dovecot(extra)
            try:
                run_load(cfg, targets, state, label, fn, prep, warm)
            except Exception as e:
                log("%s failed: %s" % (label, e))
                state.setdefault("failed", []).append("%s: %s" % (label, e))
            report(cfg, servers, state)
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as e:
                log("stopping %s: %s" % (s.name, e))
        if state.get("inotify"):
            inotify.write_text("%d\n" % inotify_was)
    report(cfg, servers, state, final=True)


def run_load(cfg, servers, state, label, fn, prep, warm):
    if prep:
        for s in servers:
            log("%s: preparing %s" % (s.name, label))
            t0 = time.monotonic()
            prep(s, cfg)
            log("%s: prepared in %.0f s" % (s.name, time.monotonic() - t0))
    if warm:
        for s in servers:   # not counted
            log("%s: %s warm-up" % (s.name, label))
            fn(s, cfg)
    for k in range(cfg.runs):
        for s in servers:
            state["loads_seen"].append(loadavg())
            r = fn(s, cfg)
            log("%s: %s run %d: %s" % (s.name, label, k + 1, ", ".join(
                "%s=%s" % (m, fmt(v)) for m, v in r.items())))
            for m, v in r.items():
                state["results"].setdefault(label, {}).setdefault(
                    m, {}).setdefault(s.name, []).append(v)


HIGHER_IS_BETTER = {"msgs/s", "MB/s", "logins/s", "ops/s"}

SETTINGS = """\
## Settings

Both servers on 127.0.0.1, high ports, one scratch directory (default
/tmp/postern-bench), same self-signed RSA-2048 certificate, same accounts
with the same yescrypt password hashes (libcrypt's default cost, made by
`postern user add`; Dovecot reads them from a passwd-file as {CRYPT}), same
messages (smtp-source's 4 KiB payload plus its headers).

- **postern**: Release build (`-O3`), configuration of
  `postern.conf` as written by bench.py: `allow_plaintext_auth = yes` (for
  the TLS-off loads, like Dovecot's `disable_plaintext_auth = no`),
  `max_connections = max_connections_per_ip = 20000` (every client is
  127.0.0.1; the default of 20 per address would refuse the 50 SMTP
  sessions); everything else default: workers = one per core, auth
  `cache_ttl = 5m`, SQLite store in WAL mode with `synchronous=FULL`, each
  message file fdatasync'd and its directory fsync'd before the reply.
- **Postfix** (private instance: `postfix -c DIR start`, own
  config_directory and queue_directory): `virtual_mailbox_domains`,
  `virtual_mailbox_maps` (texthash, the same accounts),
  `virtual_transport = lmtp:unix:` Dovecot's LMTP socket, `mynetworks =
  127.0.0.0/8`, `maillog_file`; master.cf has Debian's services without
  chroot. Everything else default: queue files fsync'd before the 250
  reply, `default_process_limit = 100`, `lmtp_destination_concurrency_limit
  = 20`, `in_flow_delay = 1s`.
- **Dovecot** (private instance: `dovecot -c FILE`, own base_dir):
  passwd-file passdb and userdb, `mail_location = maildir:~/Maildir`,
  `disable_plaintext_auth = no`, `ssl = yes` with the same certificate.
  Everything else default: `mail_fsync = optimized` (mail files fsync'd
  before LMTP's 250), `auth_cache_size = 0` (no authentication cache;
  rows marked "auth_cache_size=10M" rerun the load with a cache),
  one auth process (it checks yescrypt hashes itself, one at a time),
  imap-login and pop3-login with `service_count = 1` (one process per
  connection), `service imap process_limit = 1024`,
  `mail_max_userip_connections = 10`.

Loads: 1 smtp: `smtp-source -d -s 1 -m N -l 4096` per recipient, 50 at a
time, each account getting the same number of messages; the clock runs
from the first connection until the last message is counted in its
mailbox (postern: store.db; Dovecot: files in Maildir new/ and cur/,
polled every 0.2 s). The mailboxes grow from run to run (20, 40, 60
messages). 4 pop3: bench/pop3_load.c, 20 threads, each taking the next
mailbox: USER, PASS, STAT, RETR of every message, QUIT; MB/s of message
bytes over the wall time, logins included. 5 login: bench/imap_load.c
login, 20 threads, each a new TLS connection to the implicit-TLS IMAP
port (full handshake, no resumption), `AUTHENTICATE PLAIN` with an
initial response, `LOGOUT`, for a fixed time, accounts in turn. 2 imap:
bench/imap_load.c mix (see its header: 50 threads, each on its own
account of 1,000 messages with a second connection in IDLE; nine
commands a round, all counted as operations; the clock starts once every
client is logged in, "setup s" is how long the logins took). "closed
loop": each client sends its next command as soon as the last is answered,
so latency includes queueing behind the other clients' commands and the
load is whatever the server carries. "open loop (R ops/s offered)": R
commands per second in all, each client's commands due at Poisson arrivals
of rate R / clients; latency counts from when a command was due (a client
that fell behind sends at once), so both servers see the same offered load
and the figures compare service plus queueing at that load. 3 idle:
bench/imap_load.c idle: connections of one account (10 per client address)
in IDLE; memory is the growth of the server's PSS (all Dovecot processes
summed), per connection.
A warm-up run, not counted, precedes the pop3, login and imap runs.
"""


def config_appendix(servers):
    """The exact configuration of the three servers, as they ran."""
    post, ref = servers
    out = ["## Exact configuration", "", "postern.conf:", "", "```"]
    out += post.conf.read_text().rstrip().splitlines()
    out += ["```", "", "`postconf -n` of the Postfix instance (master.cf: "
            "Debian's services, chroot off):", "", "```"]
    out += run(["postconf", "-c", ref.pf / "etc", "-n"],
               check=False).stdout.rstrip().splitlines()
    out += ["```", "", "`doveconf -n` of the Dovecot instance (as of the "
            "last run):", "", "```"]
    out += run(["doveconf", "-c", ref.dc / "dovecot.conf", "-n"],
               check=False).stdout.rstrip().splitlines()
    out += ["```", ""]
    return out


def report(cfg, servers, state, final=False):
    results = state["results"]
    a, b = servers[0].name, servers[1].name
    lines = ["| load | metric | %s median (min–max) | %s median (min–max) "
             "| %s / %s |" % (a, b, a, b),
             "|---|---|---|---|---|"]
    for load, metrics in results.items():
        for m, per in metrics.items():
            if m in ("bytes",) or a not in per:
                continue
            ma, la, ha = stats(per[a])
            if b not in per:
                lines.append("| %s | %s | %s (%s–%s) | not run | |" % (
                    load, m, fmt(ma), fmt(la), fmt(ha)))
                continue
            mb, lb, hb = stats(per[b])
            ratio = ma / mb if mb else float("nan")
            lines.append("| %s | %s | %s (%s–%s) | %s (%s–%s) | %.2f%s |" % (
                load, m, fmt(ma), fmt(la), fmt(ha), fmt(mb), fmt(lb),
                fmt(hb), ratio, "" if m in HIGHER_IS_BETTER
                else " (lower is better)"))
    table = "\n".join(lines)
    if final:
        print(table)
    mach = machine()
    busy = max(float(x[0]) for x in state["loads_seen"])
    out = ["# Benchmark results: postern vs Postfix + Dovecot", "",
           "Generated by `make bench` (bench/bench.py), started %s; %d runs "
           "per figure (median, min–max); the runs of the two servers "
           "alternate.%s" % (state["started"], cfg.runs,
                             "" if final else " (in progress)"), "",
           table, ""]
    if state.get("failed"):
        out += ["Loads that failed:", ""]
        out += ["- " + f for f in state["failed"]]
        out += [""]
    out += ["## Machine", "",
            "- %d CPUs (%s), %d MiB RAM, kernel %s, Debian %s" % (
                mach["nproc"], mach["cpu"], mach["ram_mib"], mach["kernel"],
                mach["os"]),
            "- disk: %s" % mach["disk"],
            "- highest 1-minute load average seen before a run: %.2f%s" % (
                busy, " (the machine was shared with other jobs)"
                if busy > 1.5 else ""), "",
            "## Servers", "",
            "- fs.inotify.max_user_instances: %s" % (
                "raised from %d to %d for the run (Dovecot's IDLE needs "
                "one inotify instance per imap process)" % state["inotify"]
                if state.get("inotify") else "as found (%s)" % Path(
                    "/proc/sys/fs/inotify/max_user_instances"
                ).read_text().strip()),
            "- " + servers[0].describe(),
            "- " + servers[1].describe(),
            "- postern user setup: %.0f s for the %d accounts with "
            "`postern user add` (yescrypt, two at a time)" % (
                state["setup_s"], state["users"]), "",
            "Run: `%s`" % " ".join(sys.argv), "", SETTINGS]
    if final:
        out += config_appendix(servers)
    Path(cfg.results).write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
