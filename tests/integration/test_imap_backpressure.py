"""IMAP keeps its memory bounded by what it sends, not by what a client
pipelines: commands sent without reading the replies are run only as fast
as the replies leave (the session stops reading above 64 KiB of unsent
output), and every reply still arrives, in order."""

import os
import socket
import time

from postern_harness import start_mail_server

ALICE = "alice@example.test"
ALICE_PW = "alice-pw-1"
COMMANDS = 100_000


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_pipelined_commands_from_a_client_that_does_not_read(
        postern_factory, default_cert, tmp_path, monkeypatch):
    # ASan holds freed memory back; keep its quarantine small so that
    # what is measured is what the server keeps.
    monkeypatch.setenv("ASAN_OPTIONS", (os.environ.get("ASAN_OPTIONS", "")
                                        + ":quarantine_size_mb=1").lstrip(":"))
    srv = start_mail_server(
        postern_factory, tmp_path, default_cert,
        [("imap", "imap", "starttls")], users=[(ALICE, ALICE_PW)],
        server={"allow_plaintext_auth": "yes"})
    sock = socket.create_connection(("127.0.0.1", srv.ports["imap"]),
                                    timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    sock.sendall(b"l LOGIN %s %s\r\n" % (ALICE.encode(), ALICE_PW.encode()))
    while not f.readline().startswith(b"l OK"):
        pass
    before = vm_rss_kb(srv.proc.pid)
    # Each CAPABILITY answers about 330 bytes: 33 MB of replies for
    # 1.5 MB of commands.
    sock.sendall(b"".join(b"c%d CAPABILITY\r\n" % i
                          for i in range(COMMANDS)))
    time.sleep(2)
    during = vm_rss_kb(srv.proc.pid)
    assert during - before < 16 * 1024, (before, during)
    # Every reply arrives, in order, once the client reads.
    for i in range(COMMANDS):
        line = f.readline()
        assert line.startswith(b"* CAPABILITY IMAP4rev2"), line
        assert f.readline() == b"c%d OK CAPABILITY completed\r\n" % i
    sock.sendall(b"z LOGOUT\r\n")
    assert f.readline().startswith(b"* BYE")
    sock.close()
