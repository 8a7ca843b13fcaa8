"""TLS and running as root (issue 15, finding 13): TLS 1.2 offers only
forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305,
Mozilla's "intermediate" without DHE), checked with `openssl s_client`
on implicit TLS and after STARTTLS; TLS 1.3 works as OpenSSL ships it.
`postern serve` refuses to run as root without `[server] user`, with a
line saying what to set."""

import os
import subprocess

import pytest

from postern_harness import (config_sections, postern_bin, render_config)

LISTENERS = [("imaps", "imap", "implicit"), ("smtp", "smtp", "starttls")]


@pytest.fixture(scope="module")
def srv(module_postern_factory):
    return module_postern_factory(listeners=LISTENERS)


def s_client(srv, listener, *args):
    """openssl s_client to a listener; returns (status, stdout+stderr)."""
    argv = ["openssl", "s_client", "-connect",
            "127.0.0.1:%d" % srv.ports[listener], "-servername",
            "mail.example.test"]
    if listener == "smtp":
        argv += ["-starttls", "smtp"]
    r = subprocess.run(argv + list(args), input=b"", capture_output=True,
                       timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


@pytest.mark.parametrize("listener", ["imaps", "smtp"])
@pytest.mark.parametrize("cipher", [
    "AES128-SHA",                   # RSA key exchange, CBC
    "AES256-GCM-SHA384",            # AEAD, but no forward secrecy
    "ECDHE-RSA-AES128-SHA",         # forward secret, but CBC
    "ECDHE-RSA-AES256-SHA384",      # forward secret, CBC with SHA-384
])
def test_tls12_refuses_suites_without_forward_secrecy_or_aead(srv, listener,
                                                              cipher):
    rc, out = s_client(srv, listener, "-tls1_2", "-cipher", cipher)
    assert rc != 0, out
    assert "Cipher is %s" % cipher not in out, out


@pytest.mark.parametrize("listener", ["imaps", "smtp"])
@pytest.mark.parametrize("cipher", ["ECDHE-RSA-AES128-GCM-SHA256",
                                    "ECDHE-RSA-AES256-GCM-SHA384",
                                    "ECDHE-RSA-CHACHA20-POLY1305"])
def test_tls12_accepts_ecdhe_aead_suites(srv, listener, cipher):
    rc, out = s_client(srv, listener, "-tls1_2", "-cipher", cipher)
    assert rc == 0, out
    assert "Cipher is %s" % cipher in out, out


def test_tls13_still_works(srv):
    rc, out = s_client(srv, "imaps", "-tls1_3")
    assert rc == 0, out
    assert "TLSv1.3" in out, out


# --- root -----------------------------------------------------------------------


def serve_as_root(path):
    """Runs `postern serve -c path` as root: directly when we are root
    (CI), else as root of a user namespace of our own (unshare -r), where
    geteuid() is 0 too. Returns (status, stderr)."""
    argv = [postern_bin(), "serve", "-c", str(path)]
    if os.geteuid() != 0:
        argv = ["unshare", "--map-root-user"] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    return r.returncode, r.stderr


def test_serve_as_root_without_user_is_refused(tmp_path, default_cert):
    data = tmp_path / "data"
    sections = config_sections(data, [("main", default_cert)], LISTENERS,
                               server={"user": None})
    text, lines = render_config(sections)
    assert "user = " not in text
    path = tmp_path / "postern.conf"
    path.write_text(text)
    rc, err = serve_as_root(path)
    assert rc == 2, (rc, err)
    want = ("%s:%d: key 'user': missing from [server]: postern will not "
            "serve as root; set user = postern" % (path, lines["server"]))
    assert err.startswith(want), err
    assert len(err.strip().splitlines()) == 1, err
    assert "listener.ready" not in err
    # Nothing was started or created.
    assert not data.exists()
