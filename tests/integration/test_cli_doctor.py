"""`postern doctor` (issue #18) against a running postern: every check a
line, ✓, ⚠ or ✗ with the fix. A correct setup (its domain's records
published by a private dnsmasq exactly as `postern dns --json` prints
them) passes with exit 0; a wrong one -- STARTTLS on port 465, an expired
certificate for another name, a listener nothing answers on, a listener
said to be implicit TLS where the server greets in plain text -- gets the
✗ line that names the fix, and exit 1. `postern doctor client` probes
every standard port of a postern and of Debian's Dovecot (started
privately) as a mail client would: TLS kind, certificate, login, relay."""

import datetime
import json
import os
import re
import socket
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from dns_helpers import Dnsmasq, needs_dnsmasq, records_to_dnsmasq
from postern_harness import (Cert, add_user, admin_ok, make_cert, postern_bin,
                             render_config)
from runas_helpers import reachable_dir

pytestmark = [needs_dnsmasq]

IP = "192.0.2.10"
OK, WARN, FAIL = "\u2713", "\u26a0", "\u2717"
# A loopback address of its own, so that port 465 is ours alone.
ADDR465 = "127.0.0.93"


def free_port(addr="127.0.0.1"):
    s = socket.socket()
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def expired_cert(directory, name):
    """A self-signed certificate for name that expired yesterday."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    c, k = directory / "expired.pem", directory / "expired.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return Cert(c, k)


def config_text(data, cert, listeners, dns_port):
    sections = [
        ("server", {"hostname": "mail.example.test", "data_dir": str(data),
                    "workers": 1, "user": "root", "log_level": "info"}),
        ("timeouts", {"shutdown_grace": "1s"}),
        ("queue", {"resolver": "127.0.0.1", "resolver_port": dns_port}),
        ("certificate main", {"cert": str(cert.cert_path),
                              "key": str(cert.key_path)}),
    ]
    for name, proto, tls, addr, port in listeners:
        sections.append(("listener %s" % name,
                         {"address": addr, "port": port, "protocol": proto,
                          "tls": tls}))
    return render_config(sections)[0]


def listeners_fixed():
    return [(name, proto, tls, "127.0.0.1", free_port())
            for name, proto, tls in [
                ("smtp", "smtp", "starttls"),
                ("submissions", "submission", "implicit"),
                ("submission", "submission", "starttls"),
                ("imaps", "imap", "implicit"),
                ("imap", "imap", "starttls"),
                ("pop3s", "pop3", "implicit"),
                ("pop3", "pop3", "starttls")]]


def start(factory, directory, cert, listeners):
    """Makes the data directory (example.test, its DKIM key), publishes
    its records on a dnsmasq of its own, starts postern. Returns (server,
    config path, dnsmasq)."""
    data = directory / "data"
    data.mkdir(mode=0o700)
    path = directory / "postern.conf"
    path.write_text(config_text(data, cert, listeners, 53))
    admin_ok(path, "domain", "add", "example.test")
    recs = json.loads(admin_ok(path, "dns", "example.test", "--json",
                               "--ip", IP))["records"]
    dns = Dnsmasq(directory, records_to_dnsmasq(
        [(r["name"], r["type"], r["value"]) for r in recs]))
    text = config_text(data, cert, listeners, dns.port)
    path.write_text(text)
    srv = factory(config_text=text,
                  listeners=[(n, p, t) for n, p, t, _, _ in listeners])
    return srv, path, dns


def run_doctor(path, *args):
    return subprocess.run(
        [postern_bin(), "doctor", "-c", str(path), "--ip", IP, *args],
        capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL)


def doctor(path, *args):
    r = run_doctor(path, *args)
    lines = [l for l in r.stdout.splitlines() if l[:1] in (OK, WARN, FAIL)]
    return r, lines


def line(lines, start):
    found = [l for l in lines if l[2:].startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


def test_doctor_on_a_correct_setup(postern_factory, default_cert, tmp_path):
    listeners = listeners_fixed()
    srv, path, dns = start(postern_factory, tmp_path, default_cert,
                           listeners)
    try:
        r, lines = doctor(path)
        j = json.loads(run_doctor(path, "--json").stdout)
    finally:
        dns.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    assert line(lines, "configuration")[0] == OK
    for name, proto, tls, addr, port in listeners:
        l = line(lines, "listener %s (%s, %s:%d, tls %s)" % (
            name, proto, addr, port, tls))
        assert l[0] == OK, l
        greeting = {"smtp": '"220 ', "submission": '"220 ',
                    "imap": '"* OK', "pop3": '"+OK'}[proto]
        assert ("answers: " + greeting) in l, l
        assert "TLS TLSv1." in l, l
    cert = line(lines, "certificate main")
    assert cert[0] == WARN and "self-signed" in cert
    assert line(lines, "certificate name mail.example.test")[0] == OK
    assert line(lines, "MX example.test.")[0] == OK
    assert line(lines, "SPF example.test.")[0] == OK
    assert line(lines, "queue")[0] == OK and "empty." in line(lines, "queue")
    assert line(lines, "store")[0] == OK
    assert line(lines, "disk ")[0] in (OK, WARN)
    assert FAIL not in r.stdout
    nwarn = sum(1 for l in lines if l[0] == WARN)
    assert r.stdout.endswith("0 problems, %d warning%s\n" % (
        nwarn, "" if nwarn == 1 else "s"))
    assert j["ok"] is True and j["problems"] == 0, [
        c for c in j["checks"] if c["status"] == "fail"]
    assert {c["check"] for c in j["checks"]} >= {"configuration", "queue",
                                                 "store", "MX"}
    # Without an answering resolver, one line says so (not a timeout per
    # record).
    r, lines = doctor(path)
    assert r.returncode == 1
    dnsline = line(lines, "DNS example.test")
    assert dnsline[0] == FAIL and "does not answer" in dnsline


def test_doctor_on_a_wrong_setup(postern_factory, tmp_path):
    cert = expired_cert(tmp_path, "other.test")
    listeners = [
        ("imaps", "imap", "implicit", "127.0.0.1", free_port()),
        # The classic mistake: STARTTLS on the implicit-TLS port.
        ("subs", "submission", "starttls", ADDR465, 465),
        ("pop3", "pop3", "starttls", "127.0.0.1", free_port()),
    ]
    srv, path, dns = start(postern_factory, tmp_path, cert, listeners)
    # The doctor reads a configuration that is not the running one: a
    # listener nobody started, and POP3 said to be implicit TLS where
    # the server greets in plain text.
    dead = free_port()
    text = path.read_text().replace(
        "[listener pop3]\naddress = 127.0.0.1\nport = %d\nprotocol = pop3\n"
        "tls = starttls" % listeners[2][4],
        "[listener pop3]\naddress = 127.0.0.1\nport = %d\nprotocol = pop3\n"
        "tls = implicit" % listeners[2][4])
    text += ("\n[listener dead]\naddress = 127.0.0.1\nport = %d\n"
             "protocol = imap\ntls = starttls\n" % dead)
    wrong = tmp_path / "doctor.conf"
    wrong.write_text(text)
    try:
        r, lines = doctor(wrong)
    finally:
        dns.stop()
    assert r.returncode == 1, r.stdout + r.stderr
    assert line(lines, "listener imaps")[0] == OK
    subs = line(lines, "listener subs (submission, %s:465, tls starttls)"
                % ADDR465)
    assert subs[0] == FAIL
    assert "port 465 is for implicit TLS" in subs
    assert '"220 ' in subs
    assert "set tls = implicit in [listener subs]" in subs
    pop3 = line(lines, "listener pop3")
    assert pop3[0] == FAIL and "greets in plain text (\"+OK" in pop3
    d = line(lines, "listener dead (imap, 127.0.0.1:%d" % dead)
    assert d[0] == FAIL and "cannot connect to 127.0.0.1:%d" % dead in d
    assert "Is postern serve running" in d
    c = line(lines, "certificate main")
    assert c[0] == FAIL and re.search(r"expired \d+ days ago", c)
    assert "Renew it" in c
    n = line(lines, "certificate name mail.example.test")
    assert n[0] == FAIL and "no certificate names the server's hostname" in n
    assert re.search(r"^\d+ problems, \d+ warnings$", r.stdout.splitlines()[-1])


def test_doctor_reports_a_bad_configuration(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[server]\nhostname = mail.example.test\nworkers = x\n")
    r, lines = doctor(path)
    assert r.returncode == 1
    assert lines[0].startswith(FAIL + " configuration")
    assert "workers" in lines[0]


# `postern doctor client ADDRESS --server HOST`: every standard port of a
# postern on a loopback address of its own, as a mail client sees it.
CLIENT_ADDR = "127.0.0.94"
CLIENT_NAMES = ["mail.example.test", "autoconfig.example.test",
                "autodiscover.example.test", "example.test"]
ALICE, ALICE_PW = "alice@example.test", "alice-Secret-1"


@pytest.fixture(scope="module")
def client_server(module_postern_factory, tmp_path_factory):
    d = tmp_path_factory.mktemp("doctorclient")
    # The names a client's discovery reaches it by, too.
    cert = make_cert(d, "ipname", CLIENT_ADDR, [CLIENT_ADDR] + CLIENT_NAMES)
    listeners = [
        ("https", "http", "implicit", 443),
        ("smtp", "smtp", "starttls", 25),
        ("submissions", "submission", "implicit", 465),
        ("submission", "submission", "starttls", 587),
        ("imap", "imap", "starttls", 143),
        ("imaps", "imap", "implicit", 993),
        ("pop3", "pop3", "starttls", 110),
        ("pop3s", "pop3", "implicit", 995),
    ]
    data = d / "data"
    data.mkdir(mode=0o700)
    text = config_text(data, cert, [(n, p, t, CLIENT_ADDR, port)
                                    for n, p, t, port in listeners], 53)
    path = d / "postern.conf"
    path.write_text(text)
    admin_ok(path, "domain", "add", "example.test")
    add_user(path, ALICE, ALICE_PW)
    srv = module_postern_factory(config_text=text, listeners=[
        (n, p, t) for n, p, t, _ in listeners])
    srv.client_cert = cert
    return srv


def doctor_client(password, *args):
    r = subprocess.run([postern_bin(), "doctor", "client", ALICE,
                        "--server", CLIENT_ADDR, *args],
                       capture_output=True, text=True, timeout=120,
                       input=password + "\n")
    return r, [l for l in r.stdout.splitlines() if l[:1] in (OK, WARN, FAIL)]


def test_doctor_client_against_postern(client_server):
    r, lines = doctor_client(ALICE_PW)
    assert r.returncode == 0, r.stdout + r.stderr
    kinds = {25: "STARTTLS", 465: "implicit TLS", 587: "STARTTLS",
             143: "STARTTLS", 993: "implicit TLS", 110: "STARTTLS",
             995: "implicit TLS"}
    for port, kind in kinds.items():
        l = line(lines, "port %d " % port)
        assert l[0] == WARN, l          # self-signed
        assert "| %s (TLSv1." % kind in l, l
        assert "certificate self-signed" in l, l
        if port == 25:
            assert "relay without login refused" in l, l
        else:
            assert "login as %s works" % ALICE in l, l
        if port in (465, 587):
            assert "sending to an outside address is accepted" in l, l
    assert ALICE_PW not in r.stdout + r.stderr


def test_doctor_client_wrong_password(client_server):
    r, lines = doctor_client("not-the-password")
    assert r.returncode == 1
    l = line(lines, "port 993 ")
    assert l[0] == FAIL
    assert "login as %s refused" % ALICE in l
    assert "wrong user name or password" in l
    l = line(lines, "port 995 ")
    assert l[0] == FAIL and "login as %s refused: \"-ERR" % ALICE in l


# The same probe against another server: Debian's Dovecot, started
# privately (its own base_dir, a passwd-file user) on the IMAP and POP3
# ports of a loopback address of its own, as bench/bench.py does.
DOVECOT_ADDR = "127.0.0.95"


@pytest.fixture(scope="module")
def dovecot():
    # Dovecot's own users (dovecot, dovenull) must reach its files.
    with reachable_dir("postern-doctor-dovecot-") as d:
        yield from _dovecot(d)


def _dovecot(d):
    for sub in ("run", "state", "mail"):
        (d / sub).mkdir()
        (d / sub).chmod(0o755)
    os.chown(d / "mail", 65534, 65534)
    d.chmod(0o755)
    cert = make_cert(d, "dc", DOVECOT_ADDR, [DOVECOT_ADDR])
    cert.key_path.chmod(0o644)
    users = d / "users"
    users.write_text("%s:{PLAIN}%s:65534:65534::%s/alice::\n"
                     % (ALICE, ALICE_PW, d / "mail"))
    users.chmod(0o644)
    listeners = "".join(
        "service %s-login {\n"
        "  inet_listener %s {\n    address = %s\n    port = %d\n  }\n"
        "  inet_listener %ss {\n    address = %s\n    port = %d\n"
        "    ssl = yes\n  }\n}\n" % (p, p, DOVECOT_ADDR, plain, p,
                                     DOVECOT_ADDR, tls)
        for p, plain, tls in (("imap", 143, 993), ("pop3", 110, 995)))
    conf = d / "dovecot.conf"
    conf.write_text(
        "base_dir = %s/run\nstate_dir = %s/state\nlog_path = %s/dovecot.log\n"
        "protocols = imap pop3\nlisten = %s\nssl = yes\n"
        "ssl_cert = <%s\nssl_key = <%s\nauth_mechanisms = plain login\n"
        "passdb {\n  driver = passwd-file\n  args = %s\n}\n"
        "userdb {\n  driver = passwd-file\n  args = %s\n}\n"
        "mail_location = maildir:~/Maildir\n%s"
        % (d, d, d, DOVECOT_ADDR, cert.cert_path, cert.key_path, users,
           users, listeners))
    subprocess.run(["dovecot", "-c", str(conf)], check=True, timeout=30)
    yield d
    subprocess.run(["doveadm", "-c", str(conf), "stop"], timeout=30)


def test_doctor_client_against_dovecot(dovecot):
    r = subprocess.run([postern_bin(), "doctor", "client", ALICE,
                        "--server", DOVECOT_ADDR], capture_output=True,
                       text=True, timeout=120, input=ALICE_PW + "\n")
    lines = [l for l in r.stdout.splitlines() if l[:1] in (OK, WARN, FAIL)]
    log = (dovecot / "dovecot.log").read_text() if (
        dovecot / "dovecot.log").exists() else ""
    for port, kind in ((143, "STARTTLS"), (993, "implicit TLS"),
                       (110, "STARTTLS"), (995, "implicit TLS")):
        l = line(lines, "port %d " % port)
        assert l[0] == WARN, (l, log)         # self-signed
        assert "| %s (TLSv1." % kind in l, l
        assert "login as %s works" % ALICE in l, (l, log)
    # No SMTP there: the ports say so, as warnings.
    for port in (25, 465, 587):
        l = line(lines, "port %d " % port)
        assert l[0] == WARN and "no answer from %s:%d" % (
            DOVECOT_ADDR, port) in l
    assert r.returncode == 0, r.stdout
    r = subprocess.run([postern_bin(), "doctor", "client", ALICE,
                        "--server", DOVECOT_ADDR], capture_output=True,
                       text=True, timeout=120, input="wrong-password\n")
    assert r.returncode == 1
    l = [l for l in r.stdout.splitlines() if l[2:].startswith("port 993 ")][0]
    assert l[0] == FAIL and "[AUTHENTICATIONFAILED]" in l, l


# Discovery as clients do it, through a private dnsmasq: Thunderbird
# autoconfig (autoconfig.DOMAIN, then DOMAIN/.well-known), Outlook
# Autodiscover, then SRV and guessed names; the line "discovery" says
# which source was used.
def discover(client_server, tmp_path, names, *args):
    d = tmp_path / ("dns-%d" % len(list(tmp_path.iterdir())))
    d.mkdir()
    dns = Dnsmasq(d, ["host-record=%s,%s" % (n, a) for n, a in names])
    try:
        r = subprocess.run(
            [postern_bin(), "doctor", "client", ALICE, "--resolver",
             "127.0.0.1", "--resolver-port", str(dns.port), *args],
            capture_output=True, text=True, timeout=180,
            input=ALICE_PW + "\n")
    finally:
        dns.stop()
    return r, [l for l in r.stdout.splitlines() if l[:1] in (OK, WARN, FAIL)]


def test_doctor_client_discovers_through_thunderbird_autoconfig(
        client_server, tmp_path):
    r, lines = discover(
        client_server, tmp_path,
        [("autoconfig.example.test", CLIENT_ADDR),
         ("mail.example.test", CLIENT_ADDR)],
        "--ca-file", str(client_server.client_cert.cert_path))
    l = line(lines, "Thunderbird autoconfig "
             "https://autoconfig.example.test/mail/config-v1.1.xml")
    assert l[0] == OK, l
    assert "imap mail.example.test:993 SSL" in l
    assert "smtp mail.example.test:465 SSL" in l
    assert "emailaddress" not in r.stdout       # the address stays out
    l = line(lines, "discovery ")
    assert l[0] == OK and "clients find mail.example.test through " \
        "Thunderbird autoconfig (https://autoconfig.example.test/mail/" \
        "config-v1.1.xml)" in l, l
    # Later sources are not asked once one answered.
    assert not [l for l in lines if "Outlook" in l or "SRV" in l]
    # The CA file makes the certificate trusted: every port is clean.
    for port in (465, 587, 143, 993, 110, 995):
        l = line(lines, "port %d " % port)
        assert l[0] == OK, l
        assert "certificate valid" in l and "login as %s works" % ALICE \
            in l, l
    assert r.returncode == 0, r.stdout


def test_doctor_client_well_known_then_outlook(client_server, tmp_path):
    # No autoconfig.DOMAIN: Thunderbird asks DOMAIN's /.well-known.
    r, lines = discover(
        client_server, tmp_path,
        [("example.test", CLIENT_ADDR), ("mail.example.test", CLIENT_ADDR)],
        "--ca-file", str(client_server.client_cert.cert_path))
    l = line(lines, "Thunderbird autoconfig "
             "https://autoconfig.example.test/mail/config-v1.1.xml")
    assert l[0] == WARN and "does not resolve" in l, l
    l = line(lines, "Thunderbird autoconfig https://example.test/"
             ".well-known/autoconfig/mail/config-v1.1.xml")
    assert l[0] == OK, l
    assert "through Thunderbird autoconfig (https://example.test/" \
        ".well-known/" in line(lines, "discovery ")
    # Only autodiscover.DOMAIN: Outlook's POST answers.
    r, lines = discover(
        client_server, tmp_path,
        [("autodiscover.example.test", CLIENT_ADDR),
         ("mail.example.test", CLIENT_ADDR)],
        "--ca-file", str(client_server.client_cert.cert_path))
    l = line(lines, "Outlook Autodiscover "
             "https://autodiscover.example.test/autodiscover/autodiscover.xml")
    assert l[0] == OK and "imap mail.example.test:993 SSL" in l, l
    assert "smtp mail.example.test:465 SSL" in l, l
    assert "through Outlook Autodiscover" in line(lines, "discovery ")
    assert r.returncode == 0, r.stdout


def test_doctor_client_ignores_an_untrusted_autoconfig(client_server,
                                                       tmp_path):
    # Self-signed and no --ca-file: clients drop the answer, so does the
    # doctor, and falls back to the guessed mail.DOMAIN.
    r, lines = discover(
        client_server, tmp_path,
        [("autoconfig.example.test", CLIENT_ADDR),
         ("mail.example.test", CLIENT_ADDR)])
    l = line(lines, "Thunderbird autoconfig "
             "https://autoconfig.example.test/mail/config-v1.1.xml")
    assert l[0] == WARN and "clients do not trust" in l, l
    l = line(lines, "discovery ")
    assert "through the guessed name mail.example.test" in l, l
    assert "login as %s works" % ALICE in line(lines, "port 993 ")


WRONG_ADDR = "127.0.0.96"


def test_doctor_client_autoconfig_naming_the_wrong_tls_kind(client_server,
                                                            tmp_path):
    """A hand-written autoconfig (another web server) that says SSL on
    143, the classic mistake: the doctor probes what it names and says
    the port speaks STARTTLS."""
    import http.server
    import ssl
    import threading
    xml = (b'<?xml version="1.0"?><clientConfig version="1.1">'
           b'<emailProvider id="example.test"><domain>example.test</domain>'
           b'<incomingServer type="imap"><hostname>mail.%EMAILDOMAIN%'
           b'</hostname><port>143</port><socketType>SSL</socketType>'
           b'<authentication>password-cleartext</authentication>'
           b'<username>%EMAILADDRESS%</username></incomingServer>'
           b'<outgoingServer type="smtp"><hostname>mail.example.test'
           b'</hostname><port>587</port><socketType>STARTTLS</socketType>'
           b'</outgoingServer></emailProvider></clientConfig>')

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(xml)))
            self.end_headers()
            self.wfile.write(xml)

        def log_message(self, *a):
            pass

    httpd = http.server.HTTPServer((WRONG_ADDR, 443), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(client_server.client_cert.cert_path),
                        str(client_server.client_cert.key_path))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        r, lines = discover(
            client_server, tmp_path,
            [("autoconfig.example.test", WRONG_ADDR),
             ("mail.example.test", CLIENT_ADDR)],
            "--ca-file", str(client_server.client_cert.cert_path))
    finally:
        httpd.shutdown()
        httpd.server_close()
    l = line(lines, "Thunderbird autoconfig ")
    assert l[0] == OK and "imap mail.example.test:143 SSL" in l, l
    l = line(lines, "port 143 ")
    assert l[0] == FAIL, l
    assert "STARTTLS (TLSv1." in l and "not the implicit TLS (SSL) that " \
        "Thunderbird autoconfig" in l, l
    l = line(lines, "port 587 ")
    assert l[0] == OK, l
    # 993 is not named by the answer: judged by its number, as before.
    assert line(lines, "port 993 ")[0] == OK
    assert r.returncode == 1


def date_server(cert, offset):
    """An HTTPS server on 127.0.0.1 (certificate for localhost) whose Date
    header is offset seconds off. Returns (httpd, port)."""
    import email.utils
    import http.server
    import ssl
    import threading
    import time

    class H(http.server.BaseHTTPRequestHandler):
        def date_time_string(self, timestamp=None):
            return email.utils.formatdate(time.time() + offset,
                                          usegmt=True)

        def do_GET(self):
            body = b'{"newNonce": "https://localhost/nonce"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, httpd.server_address[1]


def test_doctor_compares_the_clock_with_the_acme_server(tmp_path):
    cert = make_cert(tmp_path / "ca", "localhost", "localhost",
                     ["localhost"])
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    web = [("web", "http", "none", "127.0.0.1", free_port())]
    base = config_text(data, cert, web, free_port())
    path = tmp_path / "postern.conf"
    # Without [acme], no network: the line says it was not compared.
    path.write_text(base)
    r, lines = doctor(path)
    c = line(lines, "clock")
    assert c[0] == OK and "not compared: [acme] is off" in c, c
    for offset, mark, words in [(0, OK, "within"),
                                (600, FAIL, "behind the ACME server"),
                                (-150, WARN, "ahead of the ACME server")]:
        httpd, port = date_server(cert, offset)
        try:
            path.write_text(base + "\n[acme]\nenabled = yes\n"
                            "directory = https://localhost:%d/dir\n"
                            "ca_file = %s\n" % (port, cert.cert_path))
            r, lines = doctor(path)
        finally:
            httpd.shutdown()
            httpd.server_close()
        c = line(lines, "clock")
        assert c[0] == mark and words in c, (offset, c)
        if mark == FAIL:
            assert re.search(r"(599|600|601) s behind", c), c
    # A CA we do not trust (no ca_file): a warning naming why.
    httpd, port = date_server(cert, 0)
    try:
        path.write_text(base + "\n[acme]\nenabled = yes\n"
                        "directory = https://localhost:%d/dir\n" % port)
        r, lines = doctor(path)
    finally:
        httpd.shutdown()
        httpd.server_close()
    c = line(lines, "clock")
    assert c[0] == WARN and "cannot ask the ACME server" in c, c


def test_doctor_judges_the_acme_certificate(tmp_path):
    """With [acme] on and DATA/acme/cert.pem there, that is the certificate
    the listeners serve: judged, and the only one counted for the names;
    the configured one is reported as not served."""
    old = expired_cert(tmp_path, "other.test")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "acme").mkdir(mode=0o700)
    make_cert(data / "acme", "cert", "mail.example.test",
              ["mail.example.test"])
    web = [("web", "http", "none", "127.0.0.1", free_port())]
    path = tmp_path / "postern.conf"
    path.write_text(config_text(data, old, web, free_port()) +
                    "\n[acme]\nenabled = yes\ndirectory = "
                    "https://127.0.0.1:%d/dir\n" % free_port())
    r, lines = doctor(path)
    a = line(lines, "certificate acme (%s, served by the TLS listeners)"
             % (data / "acme" / "cert.pem"))
    assert a[0] == WARN and "self-signed" in a, a
    m = line(lines, "certificate main (")
    assert m[0] == FAIL and "not served while the ACME one exists" in m, m
    assert line(lines, "certificate name mail.example.test")[0] == OK
    # Without the ACME file: the configured certificate alone, as before.
    (data / "acme" / "cert.pem").unlink()
    r, lines = doctor(path)
    assert not [l for l in lines if "certificate acme" in l], lines
    m = line(lines, "certificate main (")
    assert m[0] == FAIL and "not served" not in m, m
    assert line(lines, "certificate name mail.example.test")[0] == FAIL
