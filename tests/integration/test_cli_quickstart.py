"""`postern quickstart DOMAIN --config PATH --data-dir DIR`: a working
configuration, a private data directory, a self-signed certificate, the
settings to type into a mail client, DOMAIN as one of ours, and the exact
commands that add its first account and postmaster. serve runs on the
configuration with its listeners moved to port 0 (the standard ports may
be taken)."""

import configparser
import os
import re
import shlex
import stat
import subprocess

import pytest

from imap_helpers import deliver, login
from postern_harness import Cert, admin_ok, run_postern, smtp_cmd, smtp_open
from runas_helpers import reachable_dir, system_user

DOMAIN = "example.test"
SERVER = "mail.example.test"
STARTTLS_PORTS = [587, 143, 110]
IMPLICIT_PORTS = [465, 993, 995]


@pytest.fixture(scope="module")
def quickstart(postern_binary):
    # Where a `postern` user (`make run` makes one) can reach the data
    # directory: quickstart fills it as that user.
    with reachable_dir("postern-quickstart-") as tmp:
        config = tmp / "postern.conf"
        data = tmp / "postern-data"
        r = run_postern("quickstart", DOMAIN, "--config", config,
                        "--data-dir", data, timeout=60)
        yield r, config, data


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


# --- the domain is ours at once (issue 15, finding 15) ------------------------

QS_LISTENERS = [("smtp", "smtp", "starttls"),
                ("submission", "submission", "starttls"),
                ("submissions", "submission", "implicit"),
                ("imap", "imap", "starttls"), ("imaps", "imap", "implicit"),
                ("pop3", "pop3", "starttls"), ("pop3s", "pop3", "implicit")]
PASSWORD = "pw-You-Secret-1"


@pytest.fixture(scope="module")
def run_as():
    """The server's user, as `make run` makes `postern` (root in CI)."""
    with system_user("pstqs") as pw:
        yield pw


def quickstart_as(run_as, tmp, *extra):
    r = run_postern("quickstart", DOMAIN, "--config", tmp / "postern.conf",
                    "--data-dir", tmp / "data", "--user", run_as.pw_name,
                    *extra, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def printed_command(out, verb):
    """The `... user add` / `... alias add` command quickstart printed,
    as argv."""
    lines = [l.strip() for l in out.splitlines()
             if re.search(r"\s%s add \S+@%s " % (verb, re.escape(DOMAIN)),
                          l)]
    assert len(lines) == 1, "no single '%s add' command in:\n%s" % (verb,
                                                                      out)
    return shlex.split(lines[0])


def serve(postern_factory, tmp):
    text = (tmp / "postern.conf").read_text()
    text = re.sub(r"(?m)^address = .*$", "address = 127.0.0.1", text)
    text = re.sub(r"(?m)^port = \d+$", "port = 0", text)
    cert = Cert(tmp / "data" / "tls" / "cert.pem",
                tmp / "data" / "tls" / "key.pem")
    return postern_factory(config_text=text, listeners=QS_LISTENERS,
                           certs=[("default", cert)])


def rcpt_reply(srv, rcpt):
    conn, _ = smtp_open(srv, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").first.startswith(
            b"250")
        return smtp_cmd(conn, "RCPT TO:<%s>" % rcpt).raw[0]


def inbox_count(srv, user):
    c = login(srv, user, PASSWORD)
    try:
        return c.select("INBOX").exists
    finally:
        c.close()


def test_quickstart_domain_takes_mail_once_the_printed_user_exists(
        run_as, postern_factory):
    with reachable_dir("postern-quickstart-") as tmp:
        out = quickstart_as(run_as, tmp)
        add = printed_command(out, "user")
        alias = printed_command(out, "alias")
        you = add[3]
        assert add[1:4] == ["user", "add", you] and \
            add[4:] == ["-c", str(tmp / "postern.conf")], add
        assert alias[1:5] == ["alias", "add", "postmaster@" + DOMAIN, you], \
            alias
        srv = serve(postern_factory, tmp)
        # The domain is ours before any account: no relay refusal, an
        # unknown user (RFC 5321 §3.6.2 relaying is for other domains).
        reply = rcpt_reply(srv, "someone@" + DOMAIN)
        assert reply.startswith(b"550 5.1.1 "), reply
        # The commands work as printed, with the server running.
        r = subprocess.run(add, input=PASSWORD + "\n", capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
        deliver(srv, you, "first")
        assert inbox_count(srv, you) == 1
        r = subprocess.run(alias, capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (r.stdout, r.stderr)
        deliver(srv, "postmaster@" + DOMAIN, "to the postmaster")
        assert inbox_count(srv, you) == 2
        srv.stop()


def test_quickstart_again_gives_postmaster_to_the_first_account(
        run_as, postern_factory):
    with reachable_dir("postern-quickstart-") as tmp:
        out = quickstart_as(run_as, tmp)
        add = printed_command(out, "user")
        you = add[3]
        r = subprocess.run(add, input=PASSWORD + "\n", capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
        out = quickstart_as(run_as, tmp, "--force")
        assert re.search(r"postmaster@%s\s+goes to %s" % (
            re.escape(DOMAIN), re.escape(you)), out), out
        printed_command(out, "user")    # still says how to add one more
        aliases = admin_ok(tmp / "postern.conf", "alias", "list")
        assert "postmaster@%s -> %s" % (DOMAIN, you) in aliases.splitlines(), \
            aliases
        srv = serve(postern_factory, tmp)
        deliver(srv, "Postmaster@" + DOMAIN.upper(), "to the postmaster")
        assert inbox_count(srv, you) == 1
        srv.stop()
