"""A client that IDLEs and does not read, while another of its sessions
changes flags in a loop, must not make the server queue FETCH lines
without bound: past 1 MiB of queued output the changes wait, and once the
client reads again one sync sends what changed meanwhile, merged."""

import pytest

from imap_helpers import login, new_user, start_imap_server
from postern_harness import runs_under_asan, small_asan_quarantine
from test_imap_append_spool import status

N_MSGS = 1000
ROUNDS = 600


@pytest.fixture(scope="module", autouse=True)
def asan_quarantine():
    # The memory test must not count ASan's quarantine as growth.
    with small_asan_quarantine():
        yield


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-idle-slow"),
                             default_cert)


def test_idle_client_that_does_not_read_is_not_queued_without_bound(srv):
    user, pw = new_user(srv)
    w = login(srv, user, pw)
    # N_MSGS small messages, pipelined with LITERAL+.
    msg = b"From: a@b\r\nSubject: x\r\n\r\nhello\r\n"
    tags = []
    for _ in range(N_MSGS):
        t = next(w.tags)
        tags.append(t)
        w.send(b"%s APPEND INBOX {%d+}\r\n%s\r\n" % (t, len(msg), msg))
    for t in tags:
        assert w.read_reply(t, timeout=120).status == "OK"
    w.select("INBOX")

    idle = login(srv, user, pw)
    idle.select("INBOX")
    t = next(idle.tags)
    idle.send(t + b" IDLE\r\n")
    assert idle.conn.readline(30).startswith(b"+")
    # From here the idling client reads nothing.
    pid = srv.proc.pid
    before = status(pid)["RssAnon"]
    for i in range(ROUNDS):
        op = b"+" if i % 2 == 0 else b"-"
        r = w.command(b"STORE 1:* %sFLAGS.SILENT (\\Flagged)" % op,
                      timeout=120)
        assert r.status == "OK", r.tagged
    after = status(pid)["RssAnon"]
    grew = after - before
    # Each round is N_MSGS FETCH lines of about 35 bytes to the idler:
    # about 10 MB per 300 rounds, queued in the server before (measured
    # +7.9 MB RssAnon for 300, the kernel's socket buffers holding the
    # rest); now at most 1 MiB is queued (measured +1.5 MB; +1.7 to
    # +2.9 MB under AddressSanitizer, whose allocations carry redzones)
    # and the rest waits in the store. 600 rounds queue about 20 MB
    # without the bound.
    print("RssAnon grew by %d bytes over %d rounds" % (grew, ROUNDS))
    bound = 8 if runs_under_asan(pid) else 4
    assert grew < bound * 1024 * 1024, grew
    # The client reads again: it hears the final state, then ends IDLE.
    idle.send(b"DONE\r\n")
    r = idle.read_reply(t, timeout=120)
    assert r.status == "OK", r.tagged
    r = idle.command(b"FETCH 1:* (FLAGS)")
    assert r.status == "OK"
    flagged = [l for l in r.untagged if b"\\Flagged" in l]
    assert flagged == []
    idle.close()
    w.close()
