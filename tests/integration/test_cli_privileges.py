"""Administration as root (issue 15, finding 14). With `[server] user`
set, every admin command that touches the data directory becomes that
user first (as postqueue and doveadm do): `domain add` before the first
start leaves nothing root-owned behind, so the server then starts and
serves; `dkim generate` writes only new files and never through a link
planted in the data directory.

CI runs as root; a throwaway system user plays the server's user. The
data directories live under a world-traversable folder in /tmp, since the
user must reach them (pytest's own folders are root's, mode 0700)."""

import os
import stat
from pathlib import Path

import pytest

from imap_helpers import IMAP_LISTENERS, deliver, login
from postern_harness import (DOMAIN, add_user, admin_ok, run_admin,
                             write_mail_config)
from runas_helpers import reachable_dir, system_user

ALICE = "alice@" + DOMAIN
ALICE_PW = "pw-Alice-Secret-1"


@pytest.fixture(scope="module")
def run_as():
    with system_user("pstadm") as pw:
        yield pw


@pytest.fixture
def base():
    with reachable_dir() as d:
        yield d


def owners(top):
    """{path: uid} of top and everything under it (links not followed)."""
    out = {top: os.lstat(top).st_uid}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            out[p] = os.lstat(p).st_uid
    return out


def test_admin_before_first_start_leaves_the_data_dir_to_the_user(
        run_as, base, default_cert, postern_factory):
    path, data, text = write_mail_config(
        base / "srv", [("main", default_cert)], IMAP_LISTENERS,
        server={"user": run_as.pw_name}, auth={"lockout_failures": 1000})
    data.rmdir()        # a fresh machine: no data directory yet
    admin_ok(path, "domain", "add", DOMAIN)
    add_user(path, ALICE, ALICE_PW)
    admin_ok(path, "alias", "add", "info@" + DOMAIN, ALICE)
    got = owners(data)
    names = {p.name for p in got}
    assert {"store.db", "blobs", "tmp"} <= names, sorted(names)
    wrong = sorted("%s (uid %d)" % (p.relative_to(data.parent), uid)
                   for p, uid in got.items() if uid != run_as.pw_uid)
    assert not wrong, "%d paths not owned by %s (uid %d), e.g. %s" % (
        len(wrong), run_as.pw_name, run_as.pw_uid, ", ".join(wrong[:6]))
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    # The server, dropping to the same user, opens that store and serves.
    srv = postern_factory(config_text=text, listeners=IMAP_LISTENERS)
    deliver(srv, "info@" + DOMAIN, "after the admin ran as root")
    c = login(srv, ALICE, ALICE_PW)
    try:
        assert c.select("INBOX").exists == 1
    finally:
        c.close()


def test_dkim_generate_never_writes_through_a_planted_link(
        run_as, base, default_cert):
    path, data, text = write_mail_config(
        base / "dkim", [("main", default_cert)], [("smtp", "smtp", "none")],
        server={"user": run_as.pw_name})
    admin_ok(path, "domain", "add", DOMAIN)
    uid, gid = run_as.pw_uid, run_as.pw_gid
    # The server's user owns dkim/ and so can put links where the
    # command writes: the key, the selector and their temporary names.
    dkim = data / "dkim"
    dkim.mkdir(mode=0o700)
    os.chown(dkim, uid, gid)
    victims = {}
    for i, name in enumerate([DOMAIN + ".pem", DOMAIN + ".pem.new",
                              DOMAIN + ".selector",
                              DOMAIN + ".selector.new"]):
        v = base / ("victim%d" % i)
        v.write_text("precious %d\n" % i)
        # Root's world-writable files and the user's own: a privilege
        # drop alone would still write through a link to either.
        if i % 2:
            os.chmod(v, 0o666)
        else:
            os.chmod(v, 0o600)
            os.chown(v, uid, gid)
        os.symlink(v, dkim / name)
        os.lchown(dkim / name, uid, gid)
        st = os.stat(v)
        victims[v] = (v.read_text(), st.st_uid, stat.S_IMODE(st.st_mode))
    r = run_admin(path, "dkim", "generate", DOMAIN, "--selector", "s1",
                  "--ed25519")
    assert r.returncode == 0, (r.stdout, r.stderr)
    for v, before in victims.items():
        st = os.stat(v)
        assert (v.read_text(), st.st_uid, stat.S_IMODE(st.st_mode)) == \
            before, "%s was written through a link" % v
    for name in (DOMAIN + ".pem", DOMAIN + ".selector"):
        st = os.lstat(dkim / name)
        assert stat.S_ISREG(st.st_mode), "%s is still a link" % name
        assert st.st_uid == uid, (name, st.st_uid)
        assert stat.S_IMODE(st.st_mode) & 0o077 == 0, oct(st.st_mode)
    for name in (DOMAIN + ".pem.new", DOMAIN + ".selector.new"):
        assert not os.path.lexists(dkim / name), name
    assert (dkim / (DOMAIN + ".selector")).read_text() == "s1\n"
    shown = admin_ok(path, "dkim", "show", DOMAIN)
    assert "s1._domainkey.%s" % DOMAIN in shown, shown
    assert "k=ed25519" in shown, shown
