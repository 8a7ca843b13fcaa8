"""`postern quickstart DOMAIN --config PATH --data-dir DIR`: a working
configuration, a private data directory, a self-signed certificate, and
the settings to type into a mail client. serve is never started on this
configuration (it uses the standard ports)."""

import configparser
import os
import re
import stat
import subprocess

import pytest

from postern_harness import run_postern

DOMAIN = "example.test"
SERVER = "mail.example.test"
STARTTLS_PORTS = [587, 143, 110]
IMPLICIT_PORTS = [465, 993, 995]


@pytest.fixture(scope="module")
def quickstart(postern_binary, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quickstart")
    config = tmp / "postern.conf"
    data = tmp / "postern-data"
    r = run_postern("quickstart", DOMAIN, "--config", config,
                    "--data-dir", data, timeout=60)
    return r, config, data


def read_config(path):
    cp = configparser.ConfigParser(interpolation=None, strict=False,
                                   comment_prefixes=("#", ";"),
                                   inline_comment_prefixes=(";",))
    cp.read_string(path.read_text())
    return cp


def cert_sections(path):
    cp = read_config(path)
    return [cp[s] for s in cp.sections() if s.startswith("certificate ")]


def test_quickstart_succeeds(quickstart):
    r, config, data = quickstart
    assert r.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (r.stdout,
                                                            r.stderr)


def test_quickstart_config_passes_config_check(quickstart):
    r, config, data = quickstart
    assert config.is_file(), r.stderr
    check = run_postern("config", "check", "-c", config)
    assert check.returncode == 0, "%s\n---\n%s" % (check.stderr,
                                                   config.read_text())


def test_quickstart_config_uses_the_given_data_dir(quickstart):
    r, config, data = quickstart
    cp = read_config(config)
    assert cp["server"]["data_dir"].strip() == str(data), config.read_text()


def test_quickstart_creates_a_private_data_dir(quickstart):
    r, config, data = quickstart
    assert data.is_dir(), r.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700, \
        oct(data.stat().st_mode)


def test_quickstart_certificate_names_the_mail_host(quickstart):
    r, config, data = quickstart
    certs = cert_sections(config)
    assert certs, "no [certificate NAME] section:\n%s" % config.read_text()
    cert = certs[0]["cert"].strip()
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout",
                          "-ext", "subjectAltName"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "DNS:%s" % SERVER in out.stdout, out.stdout


def test_quickstart_key_matches_certificate_and_is_private(quickstart):
    r, config, data = quickstart
    section = cert_sections(config)[0]
    cert, key = section["cert"].strip(), section["key"].strip()
    pub_cert = subprocess.run(["openssl", "x509", "-in", cert, "-noout",
                               "-pubkey"], capture_output=True, text=True,
                              timeout=30)
    pub_key = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"],
                             capture_output=True, text=True, timeout=30)
    assert pub_cert.returncode == 0 and pub_key.returncode == 0, \
        pub_cert.stderr + pub_key.stderr
    assert pub_cert.stdout == pub_key.stdout, "key does not match cert"
    mode = stat.S_IMODE(os.stat(key).st_mode)
    assert mode & 0o077 == 0, "private key readable by others: %o" % mode


def tls_kind_near(text, port):
    """The words just after (and just before, skipping 'port') each
    mention of port, lower-cased: where a client-settings text says which
    TLS a port uses."""
    words = []
    for m in re.finditer(r"(\S+)?\s*(?:port\s+)?\b%d\b[:,]?\s*(\S+)?" % port,
                         text, re.I):
        words += [w.strip("()[],;:").lower() for w in m.groups() if w]
    return words


def test_quickstart_prints_the_client_settings(quickstart):
    r, config, data = quickstart
    out = r.stdout
    assert SERVER in out, out
    for port in STARTTLS_PORTS + IMPLICIT_PORTS:
        assert re.search(r"\b%d\b" % port, out), \
            "port %d not mentioned:\n%s" % (port, out)
        near = tls_kind_near(out, port)
        if port in STARTTLS_PORTS:
            assert "starttls" in near, \
                "port %d not said to use STARTTLS: %r" % (port, near)
        else:
            assert "starttls" not in near, \
                "port %d said to use STARTTLS: %r" % (port, near)
            assert any(re.search(r"ssl|tls|implicit", w) for w in near), \
                "port %d not said to use implicit TLS: %r" % (port, near)
