"""A 50 MB message through POP3 (issue #6): delivered over SMTP, then
RETR (poplib, and raw bytes on the wire) and TOP must give back exactly
the stored bytes, dot-stuffed on the wire (RFC 1939 §3), and the server
must stream it: its resident memory must not grow by anything like the
message size while it sends.

Memory is read from /proc/PID/status. The peak (VmHWM) is reset first by
writing 5 to /proc/PID/clear_refs (Linux 4.0+), so the peak covers
exactly the RETR; where that reset is refused, VmRSS sampled during and
after the RETR is used instead. The client also stops reading for a
while in the middle, so that a server without backpressure would pile
the rest of the message up in its output buffer.

One delivery serves every test of the module (it is the slow part).
"""

import poplib
import re
import select
import smtplib
import socket
import time

import pytest

from postern_harness import (client_ctx, small_asan_quarantine,
                             start_mail_server)
from store_peek import StorePeek, split_trace

ALICE = "alice@example.test"
ALICE_PW = "alice-pw-1"
MB = 1024 * 1024
SIZE = 50 * MB
# Growth of the server's resident memory we accept while it sends the
# message: well under the message size (and under the dot-stuffed size,
# which is larger still).
RSS_SLACK = 25 * MB


def big_message():
    """About SIZE bytes: a header, then lines of varying length, most of
    them starting with "." (so that 64 KiB read boundaries fall right
    before a dot now and then), some of a single "." or "..", some empty,
    each numbered so that a lost or repeated piece cannot go unseen."""
    head = (b"From: Sender <sender@other.test>\r\n"
            b"To: <alice@example.test>\r\n"
            b"Subject: a very large message\r\n"
            b"Message-ID: <big@other.test>\r\n"
            b"\r\n")
    filler = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    lines = []
    total = len(head)
    i = 0
    while total < SIZE:
        k = i % 13
        if k == 0:
            line = b"."
        elif k == 5:
            line = b".."
        elif k == 9:
            line = b""
        elif k == 11:
            line = b"line %d does not start with a dot %s" % (
                i, filler[:i % 50])
        else:
            line = b".%d.%s" % (i, filler[:(i * 7) % 61])
        lines.append(line)
        total += len(line) + 2
        i += 1
    return head + b"\r\n".join(lines) + b"\r\n"


def dot_stuff(data):
    """RFC 1939 §3: a line starting with "." gets one more."""
    return re.sub(rb"(?m)^\.", b"..", data)


def rss(pid, key="VmRSS"):
    """A /proc/PID/status value in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def reset_peak(pid):
    """Resets VmHWM to the current RSS; False where not allowed."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def start_measured_server(factory, directory, cert, listeners, **config):
    """start_mail_server for a server whose memory is measured: ASan's
    quarantine must not count as growth."""
    with small_asan_quarantine():
        return start_mail_server(factory, directory, cert, listeners,
                                 users=[(ALICE, ALICE_PW)], **config)


@pytest.fixture(scope="module")
def big(module_postern_factory, default_cert, tmp_path_factory):
    """(server, original message, stored bytes) after one delivery."""
    srv = start_measured_server(
        module_postern_factory, tmp_path_factory.mktemp("big"),
        default_cert,
        [("smtp", "smtp", "none"), ("pop3s", "pop3", "implicit")],
        limits={"message_size": "64M"})
    msg = big_message()
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=300) as s:
        s.sendmail("sender@other.test", [ALICE], msg)
    stored = StorePeek(srv.mail_data).messages(ALICE)
    assert len(stored) == 1
    return srv, msg, stored[0]


def pop_login(srv):
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"],
                        context=client_ctx(), timeout=120)
    for _ in range(50):
        try:
            p.user(ALICE)
            p.pass_(ALICE_PW)
            return p
        except poplib.error_proto as e:
            # The previous test's session may still be in UPDATE.
            assert e.args[0].startswith(b"-ERR [IN-USE]"), e.args
            p.close()
            time.sleep(0.1)
            p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"],
                                context=client_ctx(), timeout=120)
    pytest.fail("maildrop still in use")


def test_large_message_is_stored_exactly(big):
    srv, msg, stored = big
    assert len(msg) >= SIZE
    _, _, rest = split_trace(stored)
    assert rest == msg


def test_large_retr_with_poplib_gives_the_exact_bytes(big):
    srv, msg, stored = big
    p = pop_login(srv)
    assert p.stat() == (1, len(stored))
    assert p.list(1) == b"+OK 1 %d" % len(stored)
    resp, lines, octets = p.retr(1)
    assert resp == b"+OK %d octets" % len(stored)
    # poplib undoes the dot-stuffing and counts the unstuffed octets.
    assert b"\r\n".join(lines) + b"\r\n" == stored
    assert octets == len(stored)
    assert p.noop() == b"+OK"
    p.quit()


def read_exactly(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        assert chunk, "connection closed after %d of %d bytes" % (len(buf),
                                                                 n)
        buf += chunk
    return bytes(buf)


def test_large_retr_on_the_wire_is_dot_stuffed_and_streamed(big):
    srv, msg, stored = big
    pid = srv.proc.pid
    wire = b"+OK %d octets\r\n" % len(stored) + dot_stuff(stored) + b".\r\n"
    sock = client_ctx().wrap_socket(socket.create_connection(
        ("127.0.0.1", srv.ports["pop3s"]), timeout=120))
    f = sock.makefile("rb")
    assert f.readline().startswith(b"+OK")
    sock.sendall(b"USER %s\r\n" % ALICE.encode())
    assert f.readline().startswith(b"+OK")
    sock.sendall(b"PASS %s\r\n" % ALICE_PW.encode())
    assert f.readline().startswith(b"+OK Logged in, 1 messages")
    f.close()
    before = rss(pid)
    has_peak = reset_peak(pid)
    # Pipelined (RFC 2449 §6.6): what follows RETR waits for its end.
    sock.sendall(b"RETR 1\r\nNOOP\r\nTOP 1 0\r\nQUIT\r\n")
    got = read_exactly(sock, 8 * MB)
    # Stop reading: a server that does not wait for the client queues
    # the rest in memory now. (The pause only gives it the chance; no
    # assertion depends on how long anything took.)
    time.sleep(1.0)
    during = rss(pid)
    got += read_exactly(sock, len(wire) - len(got))
    after = rss(pid)
    peak = rss(pid, "VmHWM") if has_peak else max(during, after)
    assert got == wire
    header = stored[:stored.index(b"\r\n\r\n") + 4]
    rest = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    sock.close()
    assert rest.startswith(b"+OK\r\n+OK Top of message follows\r\n" +
                           dot_stuff(header) + b".\r\n"
                           b"+OK postern signing off"), rest[:2000]
    growth = max(peak, during, after) - before
    print("rss MB: before %.1f during %.1f after %.1f peak %.1f" % (
        before / MB, during / MB, after / MB, peak / MB))
    assert growth < RSS_SLACK, (
        "server RSS grew by %.1f MB sending a %.1f MB message (before "
        "%.1f MB, during %.1f MB, after %.1f MB, peak %.1f MB%s)" % (
            growth / MB, len(stored) / MB, before / MB, during / MB,
            after / MB, peak / MB, "" if has_peak else " sampled"))


def test_large_top(big):
    srv, msg, stored = big
    head_end = stored.index(b"\r\n\r\n") + 4
    header = stored[:head_end]
    body_lines = stored[head_end:].split(b"\r\n")
    p = pop_login(srv)
    for n in (0, 1, 13, 200000):
        resp, lines, _ = p.top(1, n)
        assert resp == b"+OK Top of message follows"
        want = header + b"".join(x + b"\r\n" for x in body_lines[:n])
        assert b"".join(x + b"\r\n" for x in lines) == want, n
    # Two lines of the body start with "." and ".." (stuffed on the
    # wire, unstuffed by poplib).
    assert p.top(1, 1)[1][-1] == b"."
    assert p.top(1, 6)[1][-1] == b".."
    p.quit()


def test_large_dele_quit_removes_it(big):
    srv, msg, stored = big
    p = pop_login(srv)
    assert p.dele(1).startswith(b"+OK")
    assert p.quit().startswith(b"+OK postern signing off (1 messages "
                               b"deleted)")
    p = pop_login(srv)
    assert p.stat() == (0, 0)
    p.quit()
    assert StorePeek(srv.mail_data).count(ALICE) == 0


# --- pipelined commands from a client that does not read ---------------------

LIST_MESSAGES = 100
LIST_COMMANDS = 150000    # about 0.9 MB in, 130 MB of LIST replies out


def pipelined_peak_growth(sock, pid, payload, before, has_peak):
    """Sends payload without reading any reply, as far as the server
    takes it, and returns (bytes sent, largest RSS growth seen). Stops
    when the growth passes RSS_SLACK, when everything is sent and the
    server had a while to work through it, or when the server has taken
    nothing for a while (it stopped reading: backpressure)."""
    def growth():
        return (rss(pid, "VmHWM") if has_peak else rss(pid)) - before

    sock.setblocking(False)
    sent = 0
    worst = 0
    stalled = None
    deadline = time.monotonic() + 60
    while sent < len(payload) and time.monotonic() < deadline:
        _, w, _ = select.select([], [sock], [], 0.5)
        now = time.monotonic()
        if w:
            try:
                sent += sock.send(payload[sent:sent + 65536])
                stalled = None
            except BlockingIOError:
                pass
        elif stalled is None:
            stalled = now
        elif now - stalled > 3:
            break
        worst = max(worst, growth())
        if worst >= RSS_SLACK:
            return sent, worst
    # Time to work through what it took; no assertion depends on it.
    end = time.monotonic() + 5
    while time.monotonic() < end and worst < RSS_SLACK:
        time.sleep(0.2)
        worst = max(worst, growth())
    return sent, worst


def finish_pipeline(sock, payload, sent):
    """Sends the rest of payload and QUIT while reading; returns every
    byte the server sent until it closed."""
    payload = payload + b"QUIT\r\n"
    got = bytearray()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        want_w = [sock] if sent < len(payload) else []
        r, w, _ = select.select([sock], want_w, [], 5)
        if w:
            try:
                sent += sock.send(payload[sent:sent + 65536])
            except BlockingIOError:
                pass
        if r:
            try:
                chunk = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                return bytes(got)
            got += chunk
    raise AssertionError("server did not finish in time; %d bytes read"
                         % len(got))


def test_pipelined_commands_from_a_client_that_does_not_read(
        postern_factory, default_cert, tmp_path):
    srv = start_measured_server(
        postern_factory, tmp_path / "srv", default_cert,
        [("smtp", "smtp", "none"), ("pop3", "pop3", "starttls")],
        server={"allow_plaintext_auth": "yes"})
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=60) as s:
        for i in range(LIST_MESSAGES):
            s.sendmail("sender@other.test", [ALICE],
                       b"Subject: %d\r\n\r\nbody\r\n" % i)
    sock = socket.create_connection(("127.0.0.1", srv.ports["pop3"]),
                                    timeout=30)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"+OK")
    sock.sendall(b"USER %s\r\nPASS %s\r\nLIST\r\n"
                 % (ALICE.encode(), ALICE_PW.encode()))
    assert f.readline().startswith(b"+OK")
    assert f.readline() == b"+OK Logged in, %d messages\r\n" % LIST_MESSAGES
    first = [f.readline()]
    while first[-1] != b".\r\n":
        first.append(f.readline())
    f.close()
    one_reply = b"".join(first)
    assert len(first) == LIST_MESSAGES + 2, first
    pid = srv.proc.pid
    before = rss(pid)
    has_peak = reset_peak(pid)
    payload = b"LIST\r\n" * LIST_COMMANDS
    sent, growth = pipelined_peak_growth(sock, pid, payload, before,
                                         has_peak)
    got = finish_pipeline(sock, payload, sent)
    sock.close()
    # Every command answered, in order, whatever the pace.
    assert got.startswith(one_reply)
    assert got.count(b"\r\n.\r\n") == LIST_COMMANDS
    assert got == one_reply * LIST_COMMANDS + got[len(one_reply) *
                                                  LIST_COMMANDS:]
    assert got[len(one_reply) * LIST_COMMANDS:].startswith(
        b"+OK postern signing off")
    assert growth < RSS_SLACK, (
        "server RSS grew by %.1f MB while a client sent %d pipelined LIST "
        "commands (%.1f MB of replies) without reading" % (
            growth / MB, LIST_COMMANDS,
            len(one_reply) * LIST_COMMANDS / MB))
