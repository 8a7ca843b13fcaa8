"""ACME (RFC 8555): postern gets, serves and renews its certificate from a
private Pebble (Debian's `pebble`), whose validation asks a private
pebble-challtestsrv for every name's address (127.0.0.1). postern's http
and https listeners sit on the ports Pebble validates HTTP-01 and
TLS-ALPN-01 on. What a client sees is checked: the certificate served on
IMAPS and HTTPS, its issuer and names."""

import json
import os
import socket
import ssl
import stat
import subprocess
import time
import urllib.request

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from postern_harness import DOMAIN, admin_ok, write_mail_config

NAMES = ["mail." + DOMAIN, "autoconfig." + DOMAIN, "autodiscover." + DOMAIN,
         "mta-sts." + DOMAIN]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pebble:
    """A private Pebble and its DNS (pebble-challtestsrv), stopped by PID."""

    def __init__(self, directory, validity=None):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.mgmt_port = free_port()
        self.dns_port = free_port()
        self.dns_mgmt_port = free_port()
        self.http_port = free_port()
        self.tls_port = free_port()
        self.cert = self.dir / "pebble-cert.pem"
        key = self.dir / "pebble-key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=pebble", "-keyout", str(key), "-out",
             str(self.cert), "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True)
        conf = {"pebble": {
            "listenAddress": "127.0.0.1:%d" % self.port,
            "managementListenAddress": "127.0.0.1:%d" % self.mgmt_port,
            "certificate": str(self.cert), "privateKey": str(key),
            "httpPort": self.http_port, "tlsPort": self.tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }}
        if validity is not None:
            conf["pebble"]["certificateValidityPeriod"] = validity
        self.config = self.dir / "pebble.json"
        self.config.write_text(json.dumps(conf))
        self.procs = []
        self.log = open(self.dir / "pebble.log", "wb")

    @property
    def directory(self):
        return "https://127.0.0.1:%d/dir" % self.port

    def start(self):
        self.procs.append(subprocess.Popen(
            ["pebble-challtestsrv", "-dns01", "127.0.0.1:%d" % self.dns_port,
             "-management", "127.0.0.1:%d" % self.dns_mgmt_port,
             "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=self.log, stderr=subprocess.STDOUT))
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_AUTHZREUSE="0")
        self.procs.append(subprocess.Popen(
            ["pebble", "-config", str(self.config), "-dnsserver",
             "127.0.0.1:%d" % self.dns_port],
            stdout=self.log, stderr=subprocess.STDOUT, env=env))
        ctx = ssl.create_default_context(cafile=str(self.cert))
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(self.directory, context=ctx,
                                            timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("pebble did not start: %s" % (
                        (self.dir / "pebble.log").read_text()))
                time.sleep(0.2)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.set_address("127.0.0.1")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return self

    def set_address(self, ip):
        """Every name now resolves (for Pebble's validation) to ip."""
        req = urllib.request.Request(
            "http://127.0.0.1:%d/set-default-ipv4" % self.dns_mgmt_port,
            data=json.dumps({"ip": ip}).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def roots(self):
        """The PEM of Pebble's issuing root (changes at each start)."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        with urllib.request.urlopen(
                "https://127.0.0.1:%d/roots/0" % self.mgmt_port,
                context=ctx, timeout=5) as r:
            return r.read().decode()

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.log.close()


@pytest.fixture
def pebble_factory(tmp_path):
    started = []

    def make(validity=None):
        p = Pebble(tmp_path / ("pebble%d" % len(started)), validity)
        started.append(p)
        return p.start()
    yield make
    for p in started:
        p.stop()


def acme_server(factory, tmp_path, cert, pebble, challenge="http-01",
                name="srv"):
    """postern with one domain, [acme] on against pebble, its http and
    https listeners on Pebble's validation ports."""
    listeners = [("http", "http", "none", pebble.http_port),
                 ("https", "http", "implicit", pebble.tls_port),
                 ("imaps", "imap", "implicit")]
    path, data, text = write_mail_config(tmp_path / name, [("main", cert)],
                                         listeners)
    admin_ok(path, "domain", "add", DOMAIN)
    text += (
        "\n[acme]\nenabled = yes\ndirectory = %s\ncontact = postmaster@%s\n"
        "ca_file = %s\nchallenge = %s\nretry_first = 1s\nretry_max = 2s\n"
        % (pebble.directory, DOMAIN, pebble.cert, challenge))
    srv = factory(config_text=text, listeners=listeners)
    srv.mail_data = data
    srv.acme_text = text
    return srv


def served_cert(port, server_name):
    """The leaf certificate a TLS client gets on port for SNI
    server_name (None: no SNI)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=server_name) as t:
            return x509.load_der_x509_certificate(t.getpeercert(True))


def sans(cert):
    ext = cert.extensions.get_extension_for_oid(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    return sorted(ext.value.get_values_for_type(x509.DNSName))


def issuer_cn(cert):
    return cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def verified_handshake(port, name, root_pem):
    """A full verification (chain to Pebble's root, host name) as a
    client configured with that root does it."""
    ctx = ssl.create_default_context(cadata=root_pem)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            return t.version()


def wait_certificate(srv, since=0, timeout=60):
    return srv.wait_log(r"acme\.certificate names=4", timeout=timeout,
                        since=since)


def test_http01_certificate_served_everywhere(postern_factory,
                                              pebble_factory, tmp_path,
                                              default_cert):
    pebble = pebble_factory()
    srv = acme_server(postern_factory, tmp_path, default_cert, pebble)
    before = served_cert(srv.ports["imaps"], "mail." + DOMAIN)
    assert "Pebble" not in issuer_cn(before)
    srv.wait_log(r"acme\.challenge name=\S+ type=http-01", timeout=30)
    wait_certificate(srv)
    root = pebble.roots()
    for listener in ("imaps", "https"):
        for name in NAMES + [None]:
            c = served_cert(srv.ports[listener], name)
            assert issuer_cn(c).startswith("Pebble Intermediate CA"), \
                (listener, name, c.issuer)
            assert sans(c) == sorted(NAMES)
        for name in NAMES:
            assert verified_handshake(srv.ports[listener], name, root)
    # An unknown token is not answered, and the challenges are gone.
    r = urllib.request.Request(
        "http://127.0.0.1:%d/.well-known/acme-challenge/nope" %
        pebble.http_port)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(r, timeout=5)
    assert e.value.code == 404
    # Keys and account in the data directory, readable by postern alone.
    acme_dir = srv.mail_data / "acme"
    assert stat.S_IMODE(acme_dir.stat().st_mode) == 0o700
    for f in ("account.key", "cert.key"):
        assert stat.S_IMODE((acme_dir / f).stat().st_mode) == 0o600, f
    assert (acme_dir / "cert.pem").exists()


def test_tls_alpn01_certificate(postern_factory, pebble_factory, tmp_path,
                                default_cert):
    pebble = pebble_factory()
    srv = acme_server(postern_factory, tmp_path, default_cert, pebble,
                      challenge="tls-alpn-01")
    srv.wait_log(r"acme\.challenge name=\S+ type=tls-alpn-01", timeout=30)
    wait_certificate(srv)
    assert "type=http-01" not in srv.log_text()
    for name in NAMES:
        c = served_cert(srv.ports["https"], name)
        assert issuer_cn(c).startswith("Pebble Intermediate CA")
        assert sans(c) == sorted(NAMES)
    # A client offering acme-tls/1 for a name without a challenge gets
    # the usual certificate and no ALPN answer.
    ctx = ssl.create_default_context(cadata=pebble.roots())
    ctx.set_alpn_protocols(["acme-tls/1"])
    with socket.create_connection(("127.0.0.1", srv.ports["https"]),
                                  timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=NAMES[0]) as t:
            assert t.selected_alpn_protocol() is None


def test_renewal_failed_challenge_keeps_old_certificate(
        postern_factory, pebble_factory, tmp_path, default_cert):
    # Certificates of 30 s: renewal is due after 20 s (2/3).
    pebble = pebble_factory(validity=30)
    srv = acme_server(postern_factory, tmp_path, default_cert, pebble)
    wait_certificate(srv)
    first = served_cert(srv.ports["imaps"], NAMES[0])
    assert issuer_cn(first).startswith("Pebble Intermediate CA")
    # Pebble's validation now finds nobody at our names: the renewal
    # fails, and the first certificate keeps serving.
    pebble.set_address("127.0.0.2")
    mark = srv.log_mark()
    srv.wait_log(r"acme\.order .*reason=renewal", timeout=40, since=mark)
    srv.wait_log(r"acme\.failed error=\"http-01 challenge for \S+ failed"
                 r".*result=\"old certificate kept\"", timeout=40,
                 since=mark)
    for listener in ("imaps", "https"):
        now = served_cert(srv.ports[listener], NAMES[0])
        assert now.serial_number == first.serial_number
    # Backoff: it tries again by itself, and once the names are ours
    # again, the renewal goes through and is served at once.
    pebble.set_address("127.0.0.1")
    mark2 = srv.log_mark()
    wait_certificate(srv, since=mark2, timeout=60)
    second = served_cert(srv.ports["imaps"], NAMES[0])
    assert second.serial_number != first.serial_number
    assert issuer_cn(second).startswith("Pebble Intermediate CA")
    assert sans(second) == sorted(NAMES)
    failures = [l for l in srv.log_lines()[mark:] if "acme.failed" in l]
    assert failures
    # After a restart the saved certificate is served from the start
    # (unless its renewal came due in between, which the log then says).
    srv.stop()
    saved = x509.load_pem_x509_certificate(
        (srv.mail_data / "acme" / "cert.pem").read_bytes())
    srv2 = postern_factory(config_text=srv.acme_text,
                           listeners=srv.listeners)
    srv2.wait_log(r"acme\.cert_loaded .*names=4")
    now = served_cert(srv2.ports["imaps"], NAMES[0])
    assert issuer_cn(now).startswith("Pebble Intermediate CA")
    if now.serial_number != saved.serial_number:
        assert "acme.certificate" in srv2.log_text()
