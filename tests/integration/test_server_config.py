"""The configuration file: `config check`, refusals of `serve` on a bad
file (exit 2, one line `FILE:LINE: key 'KEY': ...`), and what `serve`
reports for each listener."""

import re
import socket
import subprocess

import pytest

from postern_harness import (LOG_LINE_RE, config_sections, make_cert,
                             postern_bin, render_config, run_postern)


def write_config(tmp_path, sections, name="postern.conf"):
    text, _ = render_config(sections)
    path = tmp_path / name
    path.write_text(text)
    return path, text


def base_sections(tmp_path, cert, listeners=None, **kw):
    data = tmp_path / "data"
    data.mkdir(mode=0o700, exist_ok=True)
    return config_sections(data, [("main", cert)], listeners, **kw)


def set_key(sections, section, key, value):
    """Sets section.key = value (adding the key, or the section, when
    missing); returns the sections."""
    for name, keys in sections:
        if name == section:
            keys[key] = value
            return sections
    sections.append((section, {key: value}))
    return sections


def line_of(text, line):
    """1-based number of the line of text that equals line."""
    found = [i + 1 for i, l in enumerate(text.splitlines()) if l == line]
    assert len(found) == 1, (line, text)
    return found[0]


def serve_expecting_exit(path, timeout=5.0):
    """Runs `postern serve -c path`, which must exit by itself within
    timeout. Returns (status, stderr)."""
    proc = subprocess.Popen([postern_bin(), "serve", "-c", str(path)],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail("serve kept running on a configuration it should "
                    "refuse; stderr:\n%s" % err)
    return proc.returncode, err


def assert_one_error_line(err, prefix_re):
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, "expected one line on stderr, got:\n%s" % err
    assert re.match(prefix_re, lines[0]), \
        "%r does not match %r" % (lines[0], prefix_re)


# --- good files ---------------------------------------------------------------


def test_config_check_accepts_a_complete_file(postern_binary, default_cert,
                                              tmp_path):
    sections = base_sections(
        tmp_path, default_cert,
        listeners=[("smtp", "smtp", "starttls"),
                   ("submission", "submission", "starttls"),
                   ("submissions", "submission", "implicit"),
                   ("imap", "imap", "starttls"),
                   ("imaps", "imap", "implicit"),
                   ("pop3", "pop3", "starttls"),
                   ("pop3s", "pop3", "implicit"),
                   ("http", "http", "none")],
        server={"log_level": "debug", "workers": 1},
        limits={"max_connections": 1000, "max_connections_per_ip": 20,
                "line_length": 4096},
        timeouts={"smtp": "300", "imap": "30m", "pop3": "10m",
                  "tls_handshake": "30s", "shutdown_grace": "1h"})
    second = make_cert(tmp_path, "second", "mail.other.test",
                       ["mail.other.test"])
    sections.insert(4, ("certificate second",
                        {"cert": str(second.cert_path),
                         "key": str(second.key_path)}))
    path, text = write_config(tmp_path, sections)
    r = run_postern("config", "check", "-c", path)
    assert r.returncode == 0, "config check refused:\n%s\n%s" % (
        r.stderr, text)


@pytest.mark.parametrize("level", ["error", "warn", "info", "debug",
                                   "trace"])
def test_config_check_accepts_every_log_level(postern_binary, default_cert,
                                              tmp_path, level):
    path, _ = write_config(tmp_path, base_sections(
        tmp_path, default_cert, server={"log_level": level}))
    r = run_postern("config", "check", "-c", path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("value", ["45", "45s", "5m", "2h", "1d"])
def test_config_check_accepts_duration_suffixes(postern_binary, default_cert,
                                                tmp_path, value):
    path, _ = write_config(tmp_path, base_sections(
        tmp_path, default_cert,
        timeouts={"smtp": value, "imap": value, "pop3": value}))
    r = run_postern("config", "check", "-c", path)
    assert r.returncode == 0, r.stderr


# --- bad files ----------------------------------------------------------------

# (section, key, bad value): each must be refused naming that key and the
# line it is on.
BAD_VALUES = [
    ("listener smtp", "port", "70000"),
    ("listener smtp", "port", "smtp"),
    ("listener smtp", "protocol", "gopher"),
    ("listener smtp", "tls", "maybe"),
    ("listener smtp", "address", "999.1.1.1"),
    ("server", "data_dir", "relative/data"),
    ("server", "log_level", "verbose"),
    ("server", "workers", "many"),
    ("server", "no_such_key", "1"),
    ("limits", "max_connections", "lots"),
    ("limits", "max_connections_per_ip", "-3"),
    ("limits", "line_length", "long"),
    ("timeouts", "smtp", "5x"),
    ("timeouts", "imap", "soon"),
    ("timeouts", "shutdown_grace", "1w"),
]


def _bad_file(tmp_path, cert, section, key, value):
    sections = set_key(base_sections(tmp_path, cert), section, key, value)
    path, text = write_config(tmp_path, sections)
    return path, line_of(text, "%s = %s" % (key, value))


@pytest.mark.parametrize("section,key,value", BAD_VALUES,
                         ids=["%s.%s=%s" % b for b in BAD_VALUES])
def test_config_check_names_file_line_and_key_of_a_bad_value(
        postern_binary, default_cert, tmp_path, section, key, value):
    path, line = _bad_file(tmp_path, default_cert, section, key, value)
    r = run_postern("config", "check", "-c", path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert_one_error_line(r.stderr, re.escape("%s:%d: key '%s': "
                                              % (path, line, key)) + r"\S")


@pytest.mark.parametrize("section,key,value",
                         [("listener smtp", "port", "70000"),
                          ("server", "data_dir", "relative/data"),
                          ("timeouts", "smtp", "5x")])
def test_serve_refuses_a_bad_value_with_status_2(
        postern_binary, default_cert, tmp_path, section, key, value):
    path, line = _bad_file(tmp_path, default_cert, section, key, value)
    rc, err = serve_expecting_exit(path)
    assert rc == 2, (rc, err)
    assert_one_error_line(err, re.escape("%s:%d: key '%s': "
                                         % (path, line, key)) + r"\S")


def test_port_70000_on_line_9_is_reported_as_line_9(postern_binary,
                                                    tmp_path):
    data = tmp_path / "data"
    text = ("[server]\n"
            "hostname = mail.example.test\n"
            "data_dir = %s\n"
            "\n"
            "[listener smtp]\n"
            "address = 127.0.0.1\n"
            "protocol = smtp\n"
            "tls = none\n"
            "port = 70000\n" % data)
    path = tmp_path / "nine.conf"
    path.write_text(text)
    for args in (("config", "check", "-c", path), ("serve", "-c", path)):
        r = run_postern(*args, timeout=10)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert "%s:9: key 'port':" % path in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_config_check_requires_data_dir(postern_binary, default_cert,
                                        tmp_path):
    sections = base_sections(tmp_path, default_cert,
                             server={"data_dir": None})
    path, _ = write_config(tmp_path, sections)
    r = run_postern("config", "check", "-c", path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert_one_error_line(r.stderr, re.escape(str(path)) +
                          r":\d+: key 'data_dir': \S")


def test_config_check_names_the_line_of_a_syntax_error(postern_binary,
                                                       default_cert,
                                                       tmp_path):
    text, _ = render_config(base_sections(tmp_path, default_cert))
    lines = text.splitlines()
    lines.insert(2, "this line is not ini")
    path = tmp_path / "syntax.conf"
    path.write_text("\n".join(lines) + "\n")
    r = run_postern("config", "check", "-c", path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert_one_error_line(r.stderr, re.escape("%s:3: " % path))


def test_config_check_refuses_tls_listeners_without_a_certificate(
        postern_binary, tmp_path):
    data = tmp_path / "data"
    path, _ = write_config(tmp_path, config_sections(
        data, [], [("imaps", "imap", "implicit")]))
    r = run_postern("config", "check", "-c", path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert_one_error_line(r.stderr, re.escape(str(path)) + r":\d+: ")


def test_config_check_refuses_two_listeners_on_one_port(postern_binary,
                                                        default_cert,
                                                        tmp_path):
    listeners = [("one", "smtp", "none"), ("two", "pop3", "none")]
    sections = base_sections(tmp_path, default_cert, listeners)
    for name, keys in sections:
        if name.startswith("listener "):
            keys["port"] = 24025
    path, _ = write_config(tmp_path, sections)
    r = run_postern("config", "check", "-c", path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert_one_error_line(r.stderr, re.escape(str(path)) +
                          r":\d+: key 'port': \S")


def test_config_check_of_a_missing_file_fails(postern_binary, tmp_path):
    path = tmp_path / "absent.conf"
    r = run_postern("config", "check", "-c", path)
    assert r.returncode != 0
    assert str(path) in r.stderr, r.stderr


# --- serve refusing what it cannot do -------------------------------------


def test_serve_fails_on_a_missing_certificate_file(postern_binary,
                                                   default_cert, tmp_path):
    sections = base_sections(tmp_path, default_cert)
    missing = tmp_path / "missing.pem"
    set_key(sections, "certificate main", "cert", str(missing))
    path, _ = write_config(tmp_path, sections)
    rc, err = serve_expecting_exit(path)
    assert rc != 0, err
    assert "event=server.ready" not in err, err
    assert str(missing) in err, err


def test_serve_fails_on_a_key_that_does_not_match_the_certificate(
        postern_binary, default_cert, tmp_path):
    other = make_cert(tmp_path, "other", "x.test", ["x.test"])
    sections = base_sections(tmp_path, default_cert)
    set_key(sections, "certificate main", "key", str(other.key_path))
    path, _ = write_config(tmp_path, sections)
    rc, err = serve_expecting_exit(path)
    assert rc != 0, err
    assert "event=server.ready" not in err, err


def test_serve_fails_when_a_port_is_taken(postern_binary, default_cert,
                                          tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        sections = base_sections(tmp_path, default_cert,
                                 [("smtp", "smtp", "none")])
        set_key(sections, "listener smtp", "port", port)
        path, _ = write_config(tmp_path, sections)
        rc, err = serve_expecting_exit(path)
    assert rc != 0, err
    assert "event=server.ready" not in err, err


# --- what serve reports ---------------------------------------------------

LISTENERS = [("relay", "smtp", "starttls"),
             ("sub", "submission", "implicit"),
             ("plain", "smtp", "none"),
             ("imap", "imap", "starttls"),
             ("imaps", "imap", "implicit"),
             ("pop3", "pop3", "starttls"),
             ("pop3s", "pop3", "implicit")]


def test_serve_logs_one_ready_line_per_listener_then_server_ready(
        postern_factory):
    srv = postern_factory(listeners=LISTENERS)
    lines = srv.log_lines()
    ready_at = [i for i, l in enumerate(lines)
                if "event=server.ready" in l]
    assert len(ready_at) == 1, lines
    for name, proto, tls in LISTENERS:
        at = [i for i, l in enumerate(lines)
              if re.search(r"event=listener\.ready name=%s " % name, l)]
        assert len(at) == 1, (name, lines)
        assert at[0] < ready_at[0], "listener.ready after server.ready"
        line = lines[at[0]]
        assert LOG_LINE_RE.match(line), line
        assert " level=info " in line, line
        assert " address=127.0.0.1 " in line, line
        assert re.search(r" protocol=%s( |$)" % proto, line), line
        assert re.search(r" tls=%s( |$)" % tls, line), line
        port = srv.ports[name]
        assert 0 < port < 65536
        # The port is really ours.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_each_listener_gets_its_own_port(postern_factory):
    srv = postern_factory(listeners=LISTENERS)
    ports = [srv.ports[n] for n, _, _ in LISTENERS]
    assert len(set(ports)) == len(ports), srv.ports


def test_fixed_port_from_the_file_is_used(postern_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = postern_factory(listeners=[("smtp", "smtp", "none", port)])
    assert srv.ports["smtp"] == port
    conn, greeting = srv.greet("smtp")
    with conn:
        assert greeting == b"220 mail.example.test ESMTP postern\r\n"
