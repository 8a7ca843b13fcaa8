"""Limits: connections per client address and in total, idle and TLS
handshake timeouts, and overlong command lines."""

import time

import pytest

GREETING = {"smtp": b"220 mail.example.test ESMTP postern\r\n",
            "imap": b"* OK [CAPABILITY ",
            "pop3": b"+OK postern ready\r\n"}
REFUSAL = {"smtp": b"421 4.7.0 ",
           "imap": b"* BYE [UNAVAILABLE] ",
           "pop3": b"-ERR [SYS/TEMP] "}
# listener name -> protocol family, in DEFAULT_LISTENERS.
FAMILY = {"smtp_plain": "smtp", "smtp": "smtp", "submissions": "smtp",
          "imap": "imap", "imaps": "imap", "pop3": "pop3", "pop3s": "pop3"}


def greet_expect(srv, listener):
    conn, line = srv.greet(listener)
    assert line.startswith(GREETING[FAMILY[listener]]), (listener, line)
    return conn


def greet_with_retry(srv, listener, timeout=5.0):
    """Connects until the server greets (it may take a moment to notice
    that a counted connection closed). Returns the connection."""
    deadline = time.monotonic() + timeout
    while True:
        conn, line = srv.greet(listener)
        if line.startswith(GREETING[FAMILY[listener]]):
            return conn
        conn.close()
        assert line.startswith(REFUSAL[FAMILY[listener]]), line
        assert time.monotonic() < deadline, \
            "still refused %.0fs after a connection closed" % timeout
        time.sleep(0.1)


# --- connections per address ------------------------------------------------


@pytest.mark.parametrize("listener", ["smtp_plain", "submissions", "imap",
                                      "imaps", "pop3", "pop3s"])
def test_third_connection_from_one_address_is_refused(postern_factory,
                                                      listener):
    srv = postern_factory(limits={"max_connections_per_ip": 2},
                          listeners=[("smtp_plain", "smtp", "none"),
                                     ("submissions", "submission",
                                      "implicit"),
                                     ("imap", "imap", "starttls"),
                                     ("imaps", "imap", "implicit"),
                                     ("pop3", "pop3", "starttls"),
                                     ("pop3s", "pop3", "implicit")])
    first = greet_expect(srv, listener)
    second = greet_expect(srv, listener)
    try:
        # On implicit TLS the refusal comes inside TLS: greet() does the
        # handshake first, and it must succeed.
        third, line = srv.greet(listener)
        with third:
            assert line.startswith(REFUSAL[FAMILY[listener]]), \
                "expected %r..., got %r" % (REFUSAL[FAMILY[listener]], line)
            assert line.endswith(b"\r\n"), line
            assert third.wait_closed() == b""
        first.close()
        greet_with_retry(srv, listener).close()
    finally:
        first.close()
        second.close()


def test_connections_per_address_count_across_listeners(postern_factory):
    srv = postern_factory(limits={"max_connections_per_ip": 2})
    a = greet_expect(srv, "smtp_plain")
    b = greet_expect(srv, "imaps")
    try:
        third, line = srv.greet("pop3")
        with third:
            assert line.startswith(REFUSAL["pop3"]), line
            assert third.wait_closed() == b""
        b.close()
        greet_with_retry(srv, "pop3").close()
    finally:
        a.close()
        b.close()


def test_connection_over_the_total_limit_is_refused(postern_factory):
    srv = postern_factory(limits={"max_connections": 2,
                                  "max_connections_per_ip": 20})
    a = greet_expect(srv, "smtp_plain")
    b = greet_expect(srv, "smtp_plain")
    try:
        third, line = srv.greet("smtp_plain")
        with third:
            assert line.startswith(b"421 4."), line
            assert third.wait_closed() == b""
        a.close()
        greet_with_retry(srv, "smtp_plain").close()
    finally:
        a.close()
        b.close()


# --- timeouts -------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick(module_postern_factory):
    """Every timeout at one second."""
    return module_postern_factory(timeouts={"smtp": "1s", "imap": "1s",
                                            "pop3": "1s",
                                            "tls_handshake": "1s"})


@pytest.mark.parametrize("listener", ["smtp_plain", "submissions"])
def test_idle_smtp_session_gets_421_and_is_closed(quick, listener):
    conn, _ = quick.greet(listener)
    with conn:
        line = conn.readline(timeout=8)
        assert line.startswith(b"421 4.4.2 "), line
        assert line.endswith(b"\r\n"), line
        assert conn.wait_closed(timeout=5) == b""


@pytest.mark.parametrize("listener", ["imap", "imaps"])
def test_idle_imap_session_gets_bye_and_is_closed(quick, listener):
    conn, _ = quick.greet(listener)
    with conn:
        line = conn.readline(timeout=8)
        assert line.startswith(b"* BYE "), line
        assert conn.wait_closed(timeout=5) == b""


@pytest.mark.parametrize("listener", ["pop3", "pop3s"])
def test_idle_pop3_session_is_closed(quick, listener):
    conn, _ = quick.greet(listener)
    with conn:
        data = conn.wait_closed(timeout=8)
        assert data == b"" or (data.startswith(b"-ERR ") and
                               data.endswith(b"\r\n") and
                               data.count(b"\r\n") == 1), data


def test_active_smtp_session_is_not_timed_out(quick):
    conn, _ = quick.greet("smtp_plain")
    with conn:
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            conn.send(b"NOOP\r\n")
            assert conn.readline() == b"250 2.0.0 OK\r\n"
            time.sleep(0.25)


def test_client_silent_before_the_tls_handshake_is_closed(quick):
    with quick.connect("imaps") as conn:
        data = conn.wait_closed(timeout=8)
        assert not data.startswith(b"* "), data


def test_client_silent_after_starttls_is_closed(quick):
    conn, _ = quick.greet("smtp")
    with conn:
        conn.send(b"STARTTLS\r\n")
        assert conn.readline() == b"220 2.0.0 Ready to start TLS\r\n"
        data = conn.wait_closed(timeout=8)
        assert not data.startswith(b"250"), data


# --- overlong lines ------------------------------------------------------------


@pytest.fixture(scope="module")
def short_lines(module_postern_factory):
    return module_postern_factory(limits={"line_length": 512})


def test_smtp_line_under_the_limit_is_a_command(short_lines):
    conn, _ = short_lines.greet("smtp_plain")
    with conn:
        conn.send(b"X" * 400 + b"\r\n")
        line = conn.readline()
        assert line.startswith(b"500 5.5.2 "), line


@pytest.mark.parametrize("size", [2000, 200000])
def test_smtp_overlong_line_gets_one_500_and_the_session_goes_on(
        short_lines, size):
    conn, _ = short_lines.greet("smtp_plain")
    with conn:
        conn.send(b"NOOP " + b"x" * size + b"\r\nNOOP\r\n")
        line = conn.readline()
        assert line.startswith(b"500 5.5.2 "), line
        assert conn.readline() == b"250 2.0.0 OK\r\n"
        assert conn.pending(0.3) == b""


def test_smtp_overlong_line_inside_tls(short_lines):
    conn, _ = short_lines.greet("submissions")
    with conn:
        conn.send(b"NOOP " + b"x" * 2000 + b"\r\nNOOP\r\n")
        line = conn.readline()
        assert line.startswith(b"500 5.5.2 "), line
        assert conn.readline() == b"250 2.0.0 OK\r\n"


@pytest.mark.parametrize("listener", ["imap", "imaps"])
def test_imap_overlong_line_gets_bad_and_the_session_goes_on(short_lines,
                                                             listener):
    conn, _ = short_lines.greet(listener)
    with conn:
        conn.send(b"a1 NOOP " + b"x" * 2000 + b"\r\na2 NOOP\r\n")
        line = conn.readline()
        # RFC 9051 §7.1.3: the tag was read, so the BAD is tagged
        # (RFC 5530 TOOBIG).
        assert line.startswith(b"a1 BAD [TOOBIG] "), line
        others, tagged = conn.read_imap_tagged(b"a2")
        assert others == [], others
        assert tagged.startswith(b"a2 OK"), tagged


def test_pop3_overlong_line_gets_err_and_the_session_goes_on(short_lines):
    conn, _ = short_lines.greet("pop3")
    with conn:
        conn.send(b"CAPA " + b"x" * 2000 + b"\r\nCAPA\r\n")
        line = conn.readline()
        assert line.startswith(b"-ERR"), line
        line = conn.readline()
        assert line.startswith(b"+OK"), line
        caps = [c.split()[0].upper() for c in conn.read_pop3_multiline()]
        assert b"STLS" in caps, caps
