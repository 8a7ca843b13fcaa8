"""ACME against a hostile CA: a private HTTPS server that speaks enough of
RFC 8555 to lead postern's client through an order, then lies. postern
must not answer challenges for a name it did not order, must not write or
serve a certificate whose key is not the CSR's or that names more than it
ordered, and must keep its data directory as it was. A well-behaved run
of the same fake CA is the control."""

import base64
import http.server
import json
import socket
import ssl
import subprocess
import threading
import time
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from postern_harness import DOMAIN, admin_ok, write_mail_config

NAMES = ["mail." + DOMAIN, "autoconfig." + DOMAIN, "autodiscover." + DOMAIN,
         "mta-sts." + DOMAIN]
TOKEN = "T" * 43


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def issue(pub, names, age_days=0):
    """A certificate for pub naming names, signed by a throwaway CA, of 30
    days from age_days ago."""
    ca = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
        days=age_days)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake CA")])
    cert = (x509.CertificateBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(name).public_key(pub).serial_number(
            x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in names]), critical=False)
        .sign(ca, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


class FakeCA:
    """scenario: ok, foreign_name, wrong_key, extra_name, expired."""

    def __init__(self, directory, scenario):
        self.scenario = scenario
        self.port = free_port()
        self.base = "https://127.0.0.1:%d" % self.port
        self.cert = directory / "ca-cert.pem"
        key = directory / "ca-key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=fakeca", "-keyout", str(key), "-out",
             str(self.cert), "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True)
        self.posts = []
        self.finalized = False
        self.csr = None
        ca = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def send(self, code, body=None, ctype="application/json",
                     location=None):
                data = b"" if body is None else (
                    body if isinstance(body, bytes) else
                    json.dumps(body).encode())
                self.send_response(code)
                self.send_header("Replay-Nonce", "n%d" % time.monotonic_ns())
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                if location:
                    self.send_header("Location", ca.base + location)
                self.end_headers()
                self.wfile.write(data)

            def do_HEAD(self):
                self.send(200)

            def do_GET(self):
                if self.path == "/dir":
                    self.send(200, {"newNonce": ca.base + "/nonce",
                                    "newAccount": ca.base + "/acct",
                                    "newOrder": ca.base + "/order"})
                else:
                    self.send(404)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                jws = json.loads(self.rfile.read(n))
                payload = b64d(jws["payload"]) if jws["payload"] else b""
                ca.posts.append(self.path)
                self.send(*ca.answer(self.path, payload))

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port),
                                                     H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(key))
        # The handshake happens in each request's thread (on first read),
        # not in accept(): one stuck client cannot block the others.
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True,
                                            do_handshake_on_connect=False)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def answer(self, path, payload):
        s = self.scenario
        if path == "/acct":
            return 201, {"status": "valid"}, "application/json", "/acct/1"
        if path == "/order":
            authz = ["/authz/0"] if s == "foreign_name" else [
                "/authz/%d" % i for i in range(len(NAMES))]
            return 201, {"status": "pending",
                         "authorizations": [self.base + a for a in authz],
                         "finalize": self.base + "/finalize"}, \
                "application/json", "/order/1"
        if path.startswith("/authz/"):
            i = int(path.rsplit("/", 1)[1])
            if s == "foreign_name":
                return 200, {"status": "pending", "identifier": {
                    "type": "dns", "value": "victim.example.net"},
                    "challenges": [{"type": "http-01", "token": TOKEN,
                                    "url": self.base + "/chal/0"}]}
            return 200, {"status": "valid", "identifier": {
                "type": "dns", "value": NAMES[i]}}
        if path.startswith("/chal/"):
            return 200, {"status": "processing"}
        if path == "/order/1":
            if not self.finalized:
                return 200, {"status": "ready",
                             "finalize": self.base + "/finalize"}
            return 200, {"status": "valid",
                         "certificate": self.base + "/cert"}
        if path == "/finalize":
            self.csr = x509.load_der_x509_csr(b64d(json.loads(payload)["csr"]))
            self.finalized = True
            return 200, {"status": "processing"}
        if path == "/cert":
            pub = self.csr.public_key()
            names = list(NAMES)
            if s == "wrong_key":
                pub = ec.generate_private_key(ec.SECP256R1()).public_key()
            elif s == "extra_name":
                names.append("imap.elsewhere.example")
            age = 31 if s == "expired" else 0
            return 200, issue(pub, names, age), \
                "application/pem-certificate-chain"
        return 404, {"type": "urn:ietf:params:acme:error:malformed"}

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_ca(tmp_path):
    cas = []

    def make(scenario):
        d = tmp_path / ("ca%d" % len(cas))
        d.mkdir()
        cas.append(FakeCA(d, scenario))
        return cas[-1]
    yield make
    for c in cas:
        c.stop()


def start(factory, tmp_path, cert, ca):
    http_port = free_port()
    listeners = [("http", "http", "none", http_port),
                 ("imaps", "imap", "implicit")]
    path, data, text = write_mail_config(tmp_path / "srv", [("main", cert)],
                                         listeners)
    admin_ok(path, "domain", "add", DOMAIN)
    text += ("\n[acme]\nenabled = yes\ndirectory = %s/dir\n"
             "ca_file = %s\nchallenge = http-01\nretry_first = 30s\n"
             "retry_max = 60s\n" % (ca.base, ca.cert))
    srv = factory(config_text=text, listeners=listeners)
    srv.mail_data = data
    srv.http_port = http_port
    return srv


def served_issuer(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=NAMES[0]) as t:
            c = x509.load_der_x509_certificate(t.getpeercert(True))
    return c.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_control_fake_ca_certificate_is_served(postern_factory, fake_ca,
                                               tmp_path, default_cert):
    ca = fake_ca("ok")
    srv = start(postern_factory, tmp_path, default_cert, ca)
    srv.wait_log(r"acme\.certificate names=4", timeout=30)
    assert served_issuer(srv.ports["imaps"]) == "Fake CA"
    assert (srv.mail_data / "acme" / "cert.pem").exists()


def test_authorization_for_a_name_not_ordered(postern_factory, fake_ca,
                                              tmp_path, default_cert):
    ca = fake_ca("foreign_name")
    srv = start(postern_factory, tmp_path, default_cert, ca)
    m = srv.wait_log(r"acme\.failed error=\"[^\"]*\"", timeout=30)
    assert "not ordered" in m.group(0)
    # No challenge was answered for the CA's name: never announced, the
    # token not served.
    assert not any(p.startswith("/chal/") for p in ca.posts), ca.posts
    assert "victim.example.net" not in "".join(
        l for l in srv.log_lines() if "acme.challenge" in l)
    with socket.create_connection(("127.0.0.1", srv.http_port), 5) as s:
        s.sendall(b"GET /.well-known/acme-challenge/" + TOKEN.encode() +
                  b" HTTP/1.1\r\nHost: victim.example.net\r\n"
                  b"Connection: close\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 404"), reply[:100]


@pytest.mark.parametrize("scenario,why", [
    ("wrong_key", "not for the key"),
    ("extra_name", "imap.elsewhere.example, which was not ordered"),
    ("expired", "expired or due for renewal")])
def test_bad_certificate_is_neither_written_nor_served(
        postern_factory, fake_ca, tmp_path, default_cert, scenario, why):
    ca = fake_ca(scenario)
    srv = start(postern_factory, tmp_path, default_cert, ca)
    m = srv.wait_log(r"acme\.failed error=\"[^\"]*\"", timeout=30)
    assert why in m.group(0)
    assert "/cert" in ca.posts
    acme_dir = srv.mail_data / "acme"
    assert not (acme_dir / "cert.pem").exists()
    assert not (acme_dir / "cert.key").exists()
    assert served_issuer(srv.ports["imaps"]) != "Fake CA"
