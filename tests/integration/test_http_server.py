"""The HTTP/1.1 server of the http listeners: HEAD, keep-alive, methods,
security headers, limits (431, 413, 414), the smuggling refusals (CL with
TE, two CLs, obs-fold, bare LF), 100-continue, the request deadline
against a client that trickles its request in, and the redirect of a
plain listener with https_redirect = yes."""

import http.client
import json
import time

import pytest

from http_helpers import RawHttp, request, start_http_server
from postern_harness import client_ctx

TARGET = "/mail/config-v1.1.xml?emailaddress=alice%40example.test"


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_http_server(module_postern_factory,
                             tmp_path_factory.mktemp("http"), default_cert,
                             timeouts={"http_request": "2s"})


def test_head_has_the_headers_of_get_and_no_body(srv):
    with RawHttp(srv.ports["http"]) as c:
        c.send(("GET %s HTTP/1.1\r\nHost: example.test\r\n\r\n"
                % TARGET).encode())
        get = c.read_response()
        c.send(("HEAD %s HTTP/1.1\r\nHost: example.test\r\n"
                "Connection: close\r\n\r\n" % TARGET).encode())
        head = c.read_response(is_head=True)
        assert c.is_closed()
        assert c.buf == b""     # no body after the HEAD response
    assert get.status == head.status == 200
    assert head.header("content-length") == str(len(get.body))
    assert head.header("content-type") == get.header("content-type")
    assert head.header("connection") == "close"


def test_keep_alive_two_requests_on_one_connection(srv):
    with RawHttp(srv.ports["http"]) as c:
        for i in range(2):
            c.send(("GET %s HTTP/1.1\r\nHost: example.test\r\n\r\n"
                    % TARGET).encode())
            r = c.read_response()
            assert r.status == 200
            assert r.header("connection") == "keep-alive"
        # Pipelined: both answered, in order.
        c.send(("GET /nothing HTTP/1.1\r\nHost: example.test\r\n\r\n"
                "GET %s HTTP/1.1\r\nHost: example.test\r\n"
                "Connection: close\r\n\r\n" % TARGET).encode())
        assert c.read_response().status == 404
        last = c.read_response()
        assert last.status == 200
        assert last.header("connection") == "close"
        assert c.is_closed()


def test_http_client_reuses_its_connection(srv):
    conn = http.client.HTTPSConnection("127.0.0.1", srv.ports["https"],
                                       context=client_ctx(), timeout=10)
    conn.request("GET", TARGET, headers={"Host": "example.test"})
    r1 = conn.getresponse()
    r1.read()
    sock = conn.sock
    conn.request("GET", TARGET, headers={"Host": "example.test"})
    r2 = conn.getresponse()
    r2.read()
    assert r1.status == r2.status == 200
    assert conn.sock is sock
    conn.close()


def test_http_10_closes_unless_asked(srv):
    with RawHttp(srv.ports["http"]) as c:
        c.send(("GET %s HTTP/1.0\r\n\r\n" % TARGET).encode())
        r = c.read_response()
        # No Host in HTTP/1.0: the domain comes from the address.
        assert r.status == 200
        assert r.header("connection") == "close"
        assert c.is_closed()


def test_security_headers(srv):
    plain = request(srv.ports["http"], "GET", TARGET)
    tls = request(srv.ports["https"], "GET", TARGET, tls=True)
    for r in (plain, tls):
        assert r.header("x-content-type-options") == "nosniff"
        assert r.header("content-security-policy").startswith(
            "default-src 'none'")
        assert r.header("referrer-policy") == "no-referrer"
        assert r.header("cache-control") == "no-store"
    assert plain.header("strict-transport-security") is None
    assert tls.header("strict-transport-security") == "max-age=31536000"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "TRACE",
                                    "PATCH"])
def test_other_methods_are_405(srv, method):
    r = request(srv.ports["http"], method, "/mail/config-v1.1.xml")
    assert r.status == 405
    assert r.header("allow") == "GET, HEAD, POST"
    assert json.loads(r.body)["error"] == 405


def test_post_to_a_get_path_is_405(srv):
    r = request(srv.ports["http"], "POST", "/mail/config-v1.1.xml",
                body=b"x")
    assert r.status == 405
    assert r.header("allow") == "GET, HEAD"


def refused(srv, data, status):
    """Sends data; expects status with a JSON body and the connection
    closed after it."""
    with RawHttp(srv.ports["http"]) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == status, (data[:80], r.status, r.body)
        assert r.header("connection") == "close"
        assert json.loads(r.body)["error"] == status
        assert c.is_closed()
        return r


def test_smuggling_attempts_are_400(srv):
    body = b"0\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    r = refused(srv, b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\n"
                b"Host: example.test\r\nContent-Length: %d\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" % len(body) + body, 400)
    assert "both Transfer-Encoding and Content-Length" in \
        json.loads(r.body)["message"]
    r = refused(srv, b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\n"
                b"Host: example.test\r\nContent-Length: 5\r\n"
                b"Content-Length: 5\r\n\r\nhello", 400)
    assert "two Content-Length" in json.loads(r.body)["message"]
    refused(srv, b"POST /x HTTP/1.1\r\nHost: example.test\r\n"
            b"Content-Length: 5, 5\r\n\r\nhello", 400)
    refused(srv, b"POST /x HTTP/1.1\r\nHost: example.test\r\n"
            b"Content-Length: +5\r\n\r\nhello", 400)
    # obs-fold, white space before the colon, a bare LF, a bare CR.
    refused(srv, b"GET / HTTP/1.1\r\nHost: example.test\r\nX-A: 1\r\n"
            b" folded\r\n\r\n", 400)
    refused(srv, b"GET / HTTP/1.1\r\nHost : example.test\r\n\r\n", 400)
    refused(srv, b"GET / HTTP/1.1\nHost: example.test\n\n", 400)
    refused(srv, b"GET / HTTP/1.1\r\nHost: example.test\rX: y\r\n\r\n", 400)
    # Two Hosts, or none in HTTP/1.1.
    refused(srv, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)
    refused(srv, b"GET / HTTP/1.1\r\nX: y\r\n\r\n", 400)


def test_chunked_alone_is_501(srv):
    r = refused(srv, b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\n"
                b"Host: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\n\r\n", 501)
    assert "Content-Length" in json.loads(r.body)["message"]


def test_oversized_head_is_431_and_long_line_414(srv):
    refused(srv, b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Big: " +
            b"a" * 9000 + b"\r\n\r\n", 431)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(70))
    refused(srv, b"GET / HTTP/1.1\r\nHost: example.test\r\n" + many +
            b"\r\n", 431)
    refused(srv, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n"
            b"Host: example.test\r\n\r\n", 414)


def test_large_body_is_413(srv):
    refused(srv, b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\n"
            b"Host: example.test\r\nContent-Length: 10000000\r\n\r\n", 413)


def test_version_2_is_505(srv):
    refused(srv, b"GET / HTTP/2.0\r\nHost: example.test\r\n\r\n", 505)


def test_expect_100_continue(srv):
    body = b"<Autodiscover><Request><EMailAddress>alice@example.test" \
           b"</EMailAddress></Request></Autodiscover>"
    with RawHttp(srv.ports["http"]) as c:
        c.send(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\n"
               b"Host: example.test\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % len(body))
        cont = c.read_response()
        assert cont.status == 100
        c.send(body)
        r = c.read_response()
        assert r.status == 200
        assert b"alice@example.test" in r.body


def test_byte_at_a_time_request_is_served(srv):
    data = ("GET %s HTTP/1.1\r\nHost: example.test\r\n"
            "Connection: close\r\n\r\n" % TARGET).encode()
    with RawHttp(srv.ports["http"]) as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
        assert c.read_response().status == 200


def test_slowloris_gets_408_and_the_connection_closes(srv):
    """[timeouts] http_request = 2s: a request trickled in a byte at a
    time (each byte keeps the idle timer young) is cut with 408."""
    data = b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Slow: " + \
        b"a" * 200
    with RawHttp(srv.ports["http"]) as c:
        got = None
        for i in range(len(data)):
            try:
                c.send(data[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            if c.is_closed(timeout=0.01) or c.buf:
                break
        while b"\r\n\r\n" not in c.buf and not c.is_closed(timeout=5):
            pass
        assert c.buf.startswith(b"HTTP/1.1 408 "), c.buf
        got = c.read_response()
        assert json.loads(got.body)["error"] == 408
        assert c.is_closed()
    srv.wait_log(r"event=http\.timeout during=request seconds=2")


def test_redirect_listener_sends_https(srv):
    """To [server] hostname (the name the certificate has) and the HTTPS
    listener's port, never to the request's Host."""
    base = "https://mail.example.test:%d" % srv.ports["https"]
    r = request(srv.ports["redirect"], "GET",
                "/mail/config-v1.1.xml?emailaddress=a%40example.test",
                host="autoconfig.example.test:80")
    assert r.status == 301
    assert r.header("location") == \
        base + "/mail/config-v1.1.xml?emailaddress=a%40example.test"
    # ACME HTTP-01 is answered, not redirected: a token of no pending
    # challenge is 404 (test_acme.py serves real ones to Pebble).
    r = request(srv.ports["redirect"], "GET",
                "/.well-known/acme-challenge/abc")
    assert r.status == 404
    assert r.header("location") is None
    r = request(srv.ports["redirect"], "GET", "/x",
                host="evil.test/<script>")
    assert r.status == 301
    assert r.header("location") == base + "/x"


def test_unknown_path_is_404_and_metrics_only_where_configured(srv):
    r = request(srv.ports["http"], "GET", "/etc/passwd")
    assert r.status == 404
    assert json.loads(r.body)["message"]
    assert request(srv.ports["http"], "GET", "/metrics").status == 404
    assert request(srv.ports["https"], "GET", "/healthz",
                   tls=True).status == 404


# --- configuration of http listeners -----------------------------------------


@pytest.mark.parametrize("listener,key,value,want", [
    (("m", "imap", "starttls"), "metrics", "yes",
     "key 'metrics': only a listener with protocol = http has it"),
    (("r", "http", "implicit"), "https_redirect", "yes",
     "key 'https_redirect': only for a plain (tls = none) listener"),
    (("h", "http", "starttls"), None, None,
     "key 'tls': HTTP has no STARTTLS"),
    (("h", "http", "none"), "metrics", "maybe",
     "key 'metrics': 'maybe' is not yes or no"),
])
def test_config_check_refuses_misplaced_http_keys(postern_binary,
                                                  default_cert, tmp_path,
                                                  listener, key, value,
                                                  want):
    from postern_harness import config_sections, render_config, run_postern
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    sections = config_sections(data, [("main", default_cert)], [listener])
    if key is not None:
        for name, keys in sections:
            if name == "listener " + listener[0]:
                keys[key] = value
    text, _ = render_config(sections)
    path = tmp_path / "postern.conf"
    path.write_text(text)
    r = run_postern("config", "check", "-c", path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.startswith(str(path) + ":"), r.stderr
    assert want in r.stderr, r.stderr
