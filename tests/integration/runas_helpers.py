"""What tests of "run as root, then become the server's user" share: a
throwaway system user and a folder that user can reach. CI runs as root;
pytest's own temporary folders are root's (mode 0700), so data
directories for another user live under a world-traversable folder in
/tmp."""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


@contextlib.contextmanager
def system_user(prefix="pst"):
    """A new system user (and its group) for the duration; yields its
    passwd entry."""
    assert os.geteuid() == 0, \
        "this test needs root (CI runs as root): it checks what postern " \
        "does when root runs it"
    name = "%s%d" % (prefix, os.getpid() % 1000000)
    subprocess.run(["userdel", name], capture_output=True, timeout=60)
    r = subprocess.run(["useradd", "--system", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell",
                        "/usr/sbin/nologin", "--user-group", name],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True, timeout=60)


@contextlib.contextmanager
def reachable_dir(prefix="postern-runas-"):
    """A new folder under /tmp that every user may traverse (0755)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
