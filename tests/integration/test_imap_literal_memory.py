"""What one command's literals may make the server hold in memory after
login ([limits] imap_literal_spool, 1 MiB by default): a command whose
literals are not spooled (SEARCH, SELECT, NOTIFY, ID...) is refused with
BAD [TOOBIG] once its literals pass it, before the continuation of a {n}
and by reading and dropping a {n+} (RFC 7888 §4), so the connection goes
on; APPEND keeps at most that much of its literals in memory and spools
the rest, however the client cuts them. Before, every command could hold
imap_literal_max (50 MB) per connection: 1,000 connections of one user,
50 GB."""

import os

import pytest

from imap_helpers import login, new_user, start_imap_server, wait_for
from postern_harness import small_asan_quarantine

MiB = 1024 * 1024
BIG = 24 * MiB


@pytest.fixture(scope="module", autouse=True)
def asan_quarantine():
    # The memory tests must not count ASan's quarantine as growth.
    with small_asan_quarantine():
        yield


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-litmem"),
                             default_cert)


@pytest.fixture
def c(srv):
    conn = login(srv, *new_user(srv))
    yield conn
    conn.close()


def vm_hwm(pid):
    """The server's peak resident memory (VmHWM): it never goes down, so
    no sampling can miss a literal held for a moment."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def hwm_reset(pid):
    # proc(5): 5 in clear_refs sets the peak back to the current size.
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")
    return vm_hwm(pid)


def send_bytes(c, n):
    chunk = b"z" * MiB
    while n > 0:
        c.send(chunk[:min(n, len(chunk))])
        n -= min(n, len(chunk))


def test_sync_literal_of_search_refused_before_continuation(c):
    tag = next(c.tags)
    c.send(tag + b" SEARCH TEXT {%d}\r\n" % BIG)
    r = c.read_reply(tag, timeout=20)
    assert (r.status, r.code) == ("BAD", "TOOBIG"), r.tagged
    # No "+" came: the client never sends the bytes.
    assert not any(line.startswith(b"+") for line in r.untagged), r.untagged
    c.ok("SELECT INBOX")
    c.ok("SEARCH TEXT hello")


@pytest.mark.parametrize("command", [b"SEARCH TEXT", b"SELECT", b"ID (\"x\"",
                                     b"NOTIFY SET (MAILBOXES"])
def test_literal_plus_of_other_commands_not_held(srv, c, command):
    pid = srv.proc.pid
    c.noop()
    before = hwm_reset(pid)
    tag = next(c.tags)
    c.send(tag + b" " + command + b" {%d+}\r\n" % BIG)
    send_bytes(c, BIG)
    tail = b")" if command.count(b"(") else b""
    if command.startswith(b"NOTIFY"):
        tail = b" (MessageNew MessageExpunge))"
    c.send(tail + b"\r\n")
    r = c.read_reply(tag, timeout=60)
    assert (r.status, r.code) == ("BAD", "TOOBIG"), r.tagged
    grew = vm_hwm(pid) - before
    # Held, the literal alone took 24 MiB.
    assert grew < BIG // 4, grew
    c.noop()


def test_small_literals_still_taken(c):
    c.ok("SELECT INBOX")
    tag = next(c.tags)
    c.send(tag + b" SEARCH TEXT {11+}\r\nhello world\r\n")
    r = c.read_reply(tag)
    assert r.status == "OK", r.tagged
    # A literal of 512 KiB is within the bound.
    tag = next(c.tags)
    c.send(tag + b" SEARCH TEXT {%d+}\r\n" % (512 * 1024) + b"a" * (512 * 1024)
           + b"\r\n")
    r = c.read_reply(tag, timeout=20)
    assert r.status == "OK", r.tagged


def message(size, i):
    head = b"Subject: part %d\r\n\r\n" % i
    line = b"%08d abcdefghijklmnopqrstuvwxyz0123456789\r\n" % i
    body = line * ((size - len(head)) // len(line) + 1)
    return (head + body)[:size - 2] + b"\r\n"


def spool_sizes(srv):
    """The sizes of the server's open files in the data directory's
    tmp/ (the APPEND spool)."""
    d = "/proc/%d/fd" % srv.proc.pid
    tmp = str(srv.mail_data / "tmp")
    out = []
    for fd in os.listdir(d):
        try:
            if os.readlink(os.path.join(d, fd)).startswith(tmp + "/"):
                out.append(os.stat(os.path.join(d, fd)).st_size)
        except OSError:
            continue
    return out


def test_multiappend_of_literals_under_the_spool_size_not_held(srv, c):
    # Each literal is one byte under imap_literal_spool, so none was
    # spooled: 20 of them were 20 MiB (more with doubling buffers) in
    # memory for one command, 64 (the literals of a command) 64 MiB.
    pid = srv.proc.pid
    n, size = 20, MiB - 1
    msgs = [message(size, i) for i in range(n)]
    c.noop()
    before = hwm_reset(pid)
    tag = next(c.tags)
    c.send(tag + b" APPEND INBOX")
    for m in msgs:
        c.send(b" {%d+}\r\n" % size + m)
    # All but the first went to the spool once the server has read them
    # (the first is within the bound in memory).
    wait_for(lambda: sum(spool_sizes(srv)) >= (n - 1) * size, timeout=60,
             what="the literals spooled")
    grew = vm_hwm(pid) - before
    assert grew < 6 * MiB, grew
    c.send(b"\r\n")
    r = c.read_reply(tag, timeout=120)
    assert r.status == "OK", r.tagged
    r = c.ok("STATUS INBOX (MESSAGES)")
    assert b"MESSAGES %d" % n in b"".join(r.untagged), r.untagged
    c.ok("SELECT INBOX")
    for i in (1, 2, n):
        r = c.ok("FETCH %d BODY.PEEK[]" % i)
        assert msgs[i - 1] in b"".join(r.untagged), i
