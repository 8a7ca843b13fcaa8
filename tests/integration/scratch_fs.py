"""Small file systems of their own for the power-loss and disk-full tests:
an ext4 file system on a loop device (that can be shut down as a power
cut would) and a size-limited tmpfs. Both need root (mount, losetup); CI
runs as root, so without root a test fails with a sentence saying so
rather than skip.

    with Ext4Loop(tmp_path / "img", size_mb=64) as fs:
        data = fs.mnt / "data"
        ...
        fs.power_cut()       # EXT4_IOC_SHUTDOWN, log not flushed
        fs.remount()         # umount, mount: the journal is replayed

Every mount and loop device is undone on exit, whatever happened.
"""

import errno
import fcntl
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest

# linux/fs.h (ext4.h before 4.x): _IOR('X', 125, __u32), and the flag that
# drops the journal's pending transactions, as a power cut would.
EXT4_IOC_SHUTDOWN = 0x8004587D
EXT4_GOING_FLAGS_NOLOGFLUSH = 2


def require_root(what):
    """Fails the test (no skip: CI is root) when we are not root."""
    if os.geteuid() != 0:
        pytest.fail("%s needs root to be mounted; run the integration "
                    "tests as root, as CI does" % what, pytrace=False)


def _run(argv, timeout=60):
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=timeout)
    return r


def _must(argv, timeout=60):
    r = _run(argv, timeout)
    if r.returncode != 0:
        pytest.fail("%s failed with %d: %s%s" % (
            " ".join(map(str, argv)), r.returncode, r.stdout, r.stderr),
            pytrace=False)
    return r.stdout


def is_mounted(path):
    path = os.path.realpath(str(path))
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


def umount(path, attempts=20):
    """Unmounts path, retrying while busy (a killed process's files are
    closed a moment after its death); at last detaches it lazily so that
    nothing stays mounted. Returns True if the plain umount worked."""
    for _ in range(attempts):
        if not is_mounted(path):
            return True
        if _run(["umount", str(path)]).returncode == 0:
            return True
        time.sleep(0.25)
    _run(["umount", "-l", str(path)])
    return False


class Ext4Loop:
    """ext4 in an image file on a loop device, mounted at DIR/mnt."""

    def __init__(self, directory, size_mb=64, mkfs_args=()):
        self.dir = Path(directory)
        self.image = self.dir / "ext4.img"
        self.mnt = self.dir / "mnt"
        self.size_mb = size_mb
        self.mkfs_args = list(mkfs_args)
        self.dev = None

    def __enter__(self):
        require_root("an ext4 file system on a loop device")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.mnt.mkdir(exist_ok=True)
        with open(self.image, "wb") as f:
            f.truncate(self.size_mb * 1024 * 1024)
        try:
            _must(["mkfs.ext4", "-q", "-F", *self.mkfs_args,
                   str(self.image)])
            self.dev = _must(["losetup", "--find", "--show",
                              str(self.image)]).strip()
            self.mount()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def mount(self):
        _must(["mount", "-t", "ext4", self.dev, str(self.mnt)])

    def power_cut(self):
        """Shuts the file system down at once without flushing its
        journal: every later write fails, and what was not committed to
        the journal is gone, as after a power cut."""
        fd = os.open(str(self.mnt), os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN,
                        struct.pack("I", EXT4_GOING_FLAGS_NOLOGFLUSH))
        finally:
            os.close(fd)

    def sync(self):
        os.sync()

    def remount(self):
        """Unmounts (the processes using it must be gone) and mounts again;
        ext4 replays its journal."""
        assert umount(self.mnt), "%s stays busy after its users died" % \
            self.mnt
        self.mount()

    def __exit__(self, *exc):
        umount(self.mnt)
        if self.dev is not None:
            # A device still busy (a lazy unmount) is freed when the last
            # user goes.
            _run(["losetup", "--detach", self.dev])
            self.dev = None
        try:
            self.image.unlink()
        except FileNotFoundError:
            pass


class Tmpfs:
    """A tmpfs of size_kb KiB mounted at DIR/mnt."""

    def __init__(self, directory, size_kb):
        self.dir = Path(directory)
        self.mnt = self.dir / "mnt"
        self.size_kb = size_kb

    def __enter__(self):
        require_root("a tmpfs of its own")
        self.mnt.mkdir(parents=True, exist_ok=True)
        _must(["mount", "-t", "tmpfs", "-o",
               "size=%dk,mode=0755" % self.size_kb, "tmpfs",
               str(self.mnt)])
        return self

    def sync(self):
        os.sync()

    def __exit__(self, *exc):
        umount(self.mnt)


def fill(path, chunk=1 << 16):
    """Writes a file at path until the file system is full: big writes,
    then smaller ones down to a single byte, so that not even one block is
    left. Returns the bytes written."""
    total = 0
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = chunk
        while size >= 1:
            try:
                n = os.write(fd, b"\xa5" * size)
                total += n
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                size //= 2
        try:
            os.fsync(fd)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    finally:
        os.close(fd)
    return total


def free_bytes(path):
    st = os.statvfs(str(path))
    return st.f_bavail * st.f_frsize
