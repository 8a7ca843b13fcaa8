"""OAuth bearer tokens (issue 15, finding 10): a JWKS file without both
oauth_issuer and oauth_audience is refused at start (serve and config
check name the file, line and key); the email claim names the user only
with email_verified true; SIGHUP reads the JWKS file again (key
rotation). Tokens are RS256, signed here with the openssl command, and
sent with XOAUTH2 and OAUTHBEARER over SMTP submission (RFC 7628)."""

import base64
import json
import subprocess
import time

import pytest

from postern_harness import (next_source_address, run_postern, smtp_cmd,
                             smtp_open, start_mail_server, write_mail_config)

ISSUER, AUDIENCE = "https://id.example.test", "mail"
USER = "alice@example.test"
AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
LISTENERS = [("submissions", "submission", "implicit")]


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """An RSA key made with openssl, with its JWK."""

    def __init__(self, directory, kid):
        self.kid = kid
        self.path = directory / ("%s.pem" % kid)
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA",
                        "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                        str(self.path)], check=True, capture_output=True,
                       timeout=60)
        out = subprocess.run(["openssl", "rsa", "-in", str(self.path),
                              "-noout", "-modulus"], check=True,
                             capture_output=True, text=True, timeout=60)
        n = bytes.fromhex(out.stdout.strip().split("=", 1)[1])
        self.jwk = {"kty": "RSA", "kid": kid, "alg": "RS256",
                    "n": b64url(n), "e": b64url(b"\x01\x00\x01")}

    def token(self, **claims):
        header = b64url(json.dumps({"alg": "RS256", "kid": self.kid}))
        body = {"iss": ISSUER, "aud": AUDIENCE,
                "exp": int(time.time()) + 600}
        body.update(claims)
        signing = header + "." + b64url(json.dumps(body))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign",
                              str(self.path)], input=signing.encode(),
                             check=True, capture_output=True,
                             timeout=60).stdout
        return signing + "." + b64url(sig)


def write_jwks(path, *keys):
    path.write_text(json.dumps({"keys": [k.jwk for k in keys]}))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return Key(d, "k1"), Key(d, "k2")


@pytest.fixture
def srv(postern_factory, default_cert, tmp_path, keys):
    jwks = tmp_path / "jwks.json"
    write_jwks(jwks, keys[0])
    s = start_mail_server(
        postern_factory, tmp_path / "srv", default_cert, LISTENERS,
        users=[(USER, "alice-Secret-1")],
        auth={"oauth_issuer": ISSUER, "oauth_audience": AUDIENCE,
              "oauth_jwks": str(jwks)})
    s.jwks = jwks
    return s


def xoauth2(srv, token, user=USER):
    """AUTH XOAUTH2 on a connection of its own; returns the final reply
    line (an error challenge is acknowledged with an empty line)."""
    conn, _ = smtp_open(srv, "submissions", source=next_source_address())
    with conn:
        ir = base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (
            user, token)).encode()).decode()
        r = smtp_cmd(conn, "AUTH XOAUTH2 " + ir, timeout=15)
        if r.code == 334:
            r = smtp_cmd(conn, "", timeout=15)
        return r.raw[0]


def oauthbearer(srv, token, user=USER):
    conn, _ = smtp_open(srv, "submissions", source=next_source_address())
    with conn:
        ir = base64.b64encode(("n,a=%s,\x01auth=Bearer %s\x01\x01" % (
            user, token)).encode()).decode()
        r = smtp_cmd(conn, "AUTH OAUTHBEARER " + ir, timeout=15)
        if r.code == 334:
            r = smtp_cmd(conn, "AQ==", timeout=15)
        return r.raw[0]


# --- issuer and audience are required ------------------------------------------


@pytest.mark.parametrize("present,missing", [
    ((), "oauth_issuer and oauth_audience"),
    (("oauth_issuer",), "oauth_audience"),
    (("oauth_audience",), "oauth_issuer")])
def test_jwks_without_issuer_or_audience_is_refused_at_start(
        tmp_path, default_cert, present, missing):
    auth = {"oauth_jwks": str(tmp_path / "jwks.json")}
    for key in present:
        auth[key] = ISSUER if key == "oauth_issuer" else AUDIENCE
    path, _, text = write_mail_config(tmp_path, [("main", default_cert)],
                                      LISTENERS, auth=auth)
    line = text.splitlines().index("oauth_jwks = %s" % auth["oauth_jwks"]) \
        + 1
    want = "%s:%d: key 'oauth_jwks': needs %s in [auth]" % (path, line,
                                                            missing)
    r = run_postern("config", "check", "-c", path)
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert want in r.stderr, r.stderr
    r = run_postern("serve", "-c", path, timeout=30)
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert want in r.stderr, r.stderr
    assert "listener.ready" not in r.stderr


# --- email_verified ------------------------------------------------------------


def test_email_claim_names_the_user_only_when_verified(srv, keys):
    k1 = keys[0]
    assert xoauth2(srv, k1.token(email=USER)).startswith(b"535 ")
    assert xoauth2(srv, k1.token(email=USER, email_verified=False,
                                 sub=USER)).startswith(b"535 ")
    assert oauthbearer(srv, k1.token(email=USER)).startswith(b"535 ")
    assert xoauth2(srv, k1.token(email=USER, email_verified=True)) == \
        AUTH_OK
    assert oauthbearer(srv, k1.token(email=USER, email_verified=True)) == \
        AUTH_OK
    # Without an email claim, sub is the address.
    assert xoauth2(srv, k1.token(sub=USER)) == AUTH_OK
    # Another audience or issuer is not ours.
    assert xoauth2(srv, k1.token(sub=USER, aud="other-app")).startswith(
        b"535 ")
    assert xoauth2(srv, k1.token(sub=USER, iss="https://evil.test")
                   ).startswith(b"535 ")


# --- SIGHUP reads the JWKS again -------------------------------------------------


def test_sighup_reloads_the_jwks(srv, keys):
    k1, k2 = keys
    assert xoauth2(srv, k1.token(sub=USER)) == AUTH_OK
    assert xoauth2(srv, k2.token(sub=USER)).startswith(b"535 ")
    # The issuer rotates its key.
    write_jwks(srv.jwks, k2)
    line = srv.reload()
    assert "event=config.reloaded" in line, line
    assert xoauth2(srv, k2.token(sub=USER)) == AUTH_OK
    assert xoauth2(srv, k1.token(sub=USER)).startswith(b"535 ")
    # A broken JWKS file keeps the keys in force.
    srv.jwks.write_text("{not json")
    line = srv.reload()
    assert "event=config.reload_failed" in line, line
    assert str(srv.jwks) in line, line
    assert xoauth2(srv, k2.token(sub=USER)) == AUTH_OK
