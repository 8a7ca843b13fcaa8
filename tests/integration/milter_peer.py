"""A small milter written against the raw protocol (Sendmail milter v6,
libmilter's mfdef.h), for tests and the milter bench: it listens on
loopback, answers each command as its script says and records what it
was sent. The script is a dict the test changes between messages:

    {"mail": b"r"}                 reply 'r' (reject) to MAIL
    {"rcpt": {"bad@x": b"r"}}      per recipient address
    {"eom": [(b"h", b"X-A\\0v\\0"), (b"c", b"")]}   packets at EOM
    {"sleep": ("mail", 3.0)}       sleep before answering that step
    {"sleep_when": ("mail", b"slow@", 10.0)}   only when the data has it
    {"protocol": 0x...}            SMFIP_ flags in our OPTNEG reply
    {"raw": ("mail", b"...")}      send these bytes instead of a reply
    {"trickle": ("mail", b"...", 0.5)}   the same, a byte at a time

Replies are (cmd, data) or a cmd byte alone."""

import socket
import struct
import threading
import time

STEPS = {b"C": "connect", b"H": "helo", b"M": "mail", b"R": "rcpt",
         b"T": "data", b"L": "header", b"N": "eoh", b"B": "body",
         b"E": "eom"}

# ADDHDRS CHGBODY CHGHDRS QUARANTINE DELRCPT
ACTIONS = 0x01 | 0x02 | 0x10 | 0x20 | 0x08


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


class MilterPeer:
    def __init__(self):
        self.script = {}
        self.events = []      # (step, data) of every command seen
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def socket_spec(self):
        return "inet:127.0.0.1:%d" % self.port

    def reset(self, **script):
        with self.lock:
            self.script = dict(script)
            self.events = []

    def seen(self, step):
        with self.lock:
            return [d for s, d in self.events if s == step]

    def stop(self):
        self.stopping = True
        self.sock.close()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _reply(self, c, step, data, default=b"c"):
        with self.lock:
            script = self.script
        sleep = script.get("sleep")
        if sleep and sleep[0] == step:
            time.sleep(sleep[1])
        sleep = script.get("sleep_when")
        if sleep and sleep[0] == step and sleep[1] in data:
            time.sleep(sleep[2])
        trickle = script.get("trickle")
        if trickle and trickle[0] == step:
            for i in range(len(trickle[1])):
                c.sendall(trickle[1][i:i + 1])
                time.sleep(trickle[2])
            return
        raw = script.get("raw")
        if raw and raw[0] == step:
            c.sendall(raw[1])
            return
        r = script.get(step, default)
        if isinstance(r, dict):        # per recipient
            addr = data.split(b"\0")[0].strip(b"<>").decode()
            r = r.get(addr, default)
        if r is None:                  # no reply (NR_ steps)
            return
        if isinstance(r, list):
            for cmd, d in r:
                c.sendall(packet(cmd, d))
            return
        if isinstance(r, tuple):
            c.sendall(packet(r[0], r[1]))
            return
        c.sendall(packet(r))

    def _serve(self, c):
        try:
            while True:
                n = struct.unpack(">I", recv_exact(c, 4))[0]
                body = recv_exact(c, n)
                cmd, data = body[:1], body[1:]
                if cmd == b"O":
                    with self.lock:
                        proto = self.script.get("protocol", 0)
                    c.sendall(packet(b"O", struct.pack(">III", 6, ACTIONS,
                                                       proto)))
                    continue
                if cmd == b"D":
                    with self.lock:
                        self.events.append(("macro", data))
                    continue
                if cmd == b"A":
                    with self.lock:
                        self.events.append(("abort", data))
                    continue
                if cmd == b"Q":
                    return
                step = STEPS.get(cmd)
                with self.lock:
                    self.events.append((step, data))
                    proto = self.script.get("protocol", 0)
                if step == "header" and proto & 0x80:
                    continue
                if step == "body" and proto & 0x80000:
                    continue
                self._reply(c, step, data)
        except (ConnectionError, OSError):
            pass
        finally:
            c.close()
