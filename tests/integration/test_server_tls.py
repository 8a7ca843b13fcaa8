"""TLS: protocol versions (1.2 minimum), implicit TLS listeners, and
certificate choice by SNI."""

import os
import socket
import ssl
import struct
import warnings

import pytest

from postern_harness import (HOSTNAME, client_ctx, imap_starttls,
                             make_cert, pop3_starttls, smtp_starttls)

IMPLICIT = ["submissions", "imaps", "pop3s"]
FIRST_LINE = {"submissions": b"220 mail.example.test ESMTP postern\r\n",
              "imaps": b"* OK [CAPABILITY ",
              "pop3s": b"+OK postern ready\r\n"}
VERSION_NAME = {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                ssl.TLSVersion.TLSv1_3: "TLSv1.3"}


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2,
                                     ssl.TLSVersion.TLSv1_3],
                         ids=["TLSv1.2", "TLSv1.3"])
@pytest.mark.parametrize("listener", IMPLICIT)
def test_implicit_tls_handshake_with_each_supported_version(
        postern, listener, version):
    ctx = client_ctx(postern.cert.cert_path, minimum=version,
                     maximum=version)
    with postern.connect(listener, tls_ctx=ctx,
                         server_hostname=HOSTNAME) as conn:
        assert conn.sock.version() == VERSION_NAME[version]
        assert conn.readline().startswith(FIRST_LINE[listener])


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2,
                                     ssl.TLSVersion.TLSv1_3],
                         ids=["TLSv1.2", "TLSv1.3"])
def test_starttls_with_each_supported_version(postern, version):
    ctx = client_ctx(postern.cert.cert_path, minimum=version,
                     maximum=version)
    conn, _ = postern.greet("smtp")
    with conn:
        smtp_starttls(conn, ctx)
        assert conn.sock.version() == VERSION_NAME[version]
        conn.send(b"NOOP\r\n")
        assert conn.readline() == b"250 2.0.0 OK\r\n"


def _tls11_only_ctx():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = client_ctx()
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    # Debian's OpenSSL refuses TLS 1.1 at the default security level; at
    # level 0 the client is willing and the server must say no.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


@pytest.mark.parametrize("listener", IMPLICIT)
def test_tls11_client_fails_the_handshake(postern, listener):
    with pytest.raises((ssl.SSLError, ConnectionResetError,
                        BrokenPipeError)):
        conn = postern.connect(listener, tls_ctx=_tls11_only_ctx())
        conn.close()


def test_tls11_client_fails_the_handshake_after_starttls(postern):
    conn, _ = postern.greet("smtp")
    with conn:
        conn.send(b"STARTTLS\r\n")
        assert conn.readline() == b"220 2.0.0 Ready to start TLS\r\n"
        with pytest.raises((ssl.SSLError, ConnectionResetError,
                            BrokenPipeError)):
            conn.starttls(_tls11_only_ctx())


def _client_hello(version):
    """A minimal ClientHello offering only `version` (no
    supported_versions extension), independent of the local OpenSSL's
    own policy."""
    # ECDHE-RSA-AES128-GCM-SHA256 (the one TLS 1.2 suite postern takes
    # among these), then CBC suites it refuses.
    ciphers = [0xc02f, 0xc014, 0xc013, 0x0035, 0x002f, 0x00ff]
    body = (struct.pack("!H", version) + os.urandom(32) + b"\x00" +
            struct.pack("!H", 2 * len(ciphers)) +
            b"".join(struct.pack("!H", c) for c in ciphers) + b"\x01\x00")
    exts = b""
    # supported_groups (P-256, X25519), ec_point_formats, and
    # signature_algorithms (rsa_pss_rsae_sha256, rsa_pkcs1_sha256).
    for etype, edata in ((0x000a, b"\x00\x04\x00\x17\x00\x1d"),
                         (0x000b, b"\x01\x00"),
                         (0x000d, b"\x00\x04\x08\x04\x04\x01")):
        exts += struct.pack("!HH", etype, len(edata)) + edata
    body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def _raw_reply(port, hello):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(hello)
        data = b""
        try:
            while len(data) < 11:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        return data


@pytest.mark.parametrize("version,name", [(0x0301, "TLS 1.0"),
                                          (0x0302, "TLS 1.1")])
def test_old_tls_client_hello_gets_an_alert_not_a_server_hello(
        postern, version, name):
    data = _raw_reply(postern.ports["imaps"], _client_hello(version))
    is_server_hello = len(data) >= 6 and data[0] == 0x16 and data[5] == 0x02
    assert not is_server_hello, \
        "server accepted a %s ClientHello: %r" % (name, data[:16])
    assert data == b"" or data[0] == 0x15, \
        "expected a TLS alert or a close, got %r" % data[:16]


def test_tls12_client_hello_gets_a_server_hello(postern):
    """The raw ClientHello above is well-formed: offered as TLS 1.2, the
    server answers it."""
    data = _raw_reply(postern.ports["imaps"], _client_hello(0x0303))
    assert len(data) >= 11 and data[0] == 0x16 and data[5] == 0x02, data[:16]
    assert data[9:11] == b"\x03\x03", data[:16]


@pytest.mark.parametrize("listener", IMPLICIT)
def test_implicit_tls_listener_says_nothing_before_the_handshake(
        postern, listener):
    with postern.connect(listener) as conn:
        assert conn.pending(0.7) == b""


@pytest.mark.parametrize("listener", IMPLICIT)
def test_implicit_tls_listener_gives_plaintext_clients_no_plaintext(
        postern, listener):
    with postern.connect(listener) as conn:
        conn.send(b"EHLO client.example\r\nCAPA\r\na1 CAPABILITY\r\n")
        data = conn.pending(1.5)
        for plain in (b"220", b"250", b"+OK", b"-ERR", b"* ", b"a1 "):
            assert not data.startswith(plain), data
        assert data == b"" or data[0] == 0x15, data[:32]


# --- SNI --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sni_certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("sni")
    a = make_cert(d, "a", "mail.a.test", ["mail.a.test"])
    b = make_cert(d, "b", "other.b.test", ["mail.b.test"])
    return a, b


@pytest.fixture(scope="module")
def sni_server(module_postern_factory, sni_certs):
    a, b = sni_certs
    return module_postern_factory(certs=[("a", a), ("b", b)])


@pytest.mark.parametrize("sni,want", [("mail.b.test", "b"),
                                      ("mail.a.test", "a"),
                                      (None, "a"),
                                      ("unknown.example", "a")])
@pytest.mark.parametrize("listener", IMPLICIT)
def test_sni_picks_the_certificate_on_implicit_tls(sni_server, sni_certs,
                                                   listener, sni, want):
    a, b = sni_certs
    with sni_server.connect(listener, tls_ctx=client_ctx(),
                            server_hostname=sni) as conn:
        got = conn.peer_cert_der()
        assert got == {"a": a, "b": b}[want].der, \
            "SNI %r: expected certificate %s, got %s" % (
                sni, want, "a" if got == a.der else
                "b" if got == b.der else "another")
        assert conn.readline().startswith(FIRST_LINE[listener])


@pytest.mark.parametrize("sni,want", [("mail.b.test", "b"), (None, "a")])
@pytest.mark.parametrize("listener", ["smtp", "imap", "pop3"])
def test_sni_picks_the_certificate_after_starttls(sni_server, sni_certs,
                                                  listener, sni, want):
    a, b = sni_certs
    upgrade = {"smtp": smtp_starttls, "imap": imap_starttls,
               "pop3": pop3_starttls}[listener]
    conn, _ = sni_server.greet(listener)
    with conn:
        upgrade(conn, client_ctx(), server_hostname=sni)
        assert conn.peer_cert_der() == {"a": a, "b": b}[want].der


def test_sni_certificate_verifies_for_its_name(sni_server, sni_certs):
    a, b = sni_certs
    ctx = client_ctx(b.cert_path)
    with sni_server.connect("imaps", tls_ctx=ctx,
                            server_hostname="mail.b.test") as conn:
        assert conn.readline().startswith(b"* OK ")
