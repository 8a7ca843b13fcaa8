"""MTA-STS (RFC 8461): https://mta-sts.DOMAIN/.well-known/mta-sts.txt for
every domain served, read with curl and parsed as RFC 8461 §3.2 says
(CRLF-separated key: value pairs); only over HTTPS, 404 for a domain the
server does not serve; the mode and max_age from [mta-sts]; the id that
`postern dns` prints for _mta-sts changes when the policy does, and a
reload serves the new policy."""

import json
import re
import subprocess

import pytest

from http_helpers import request, start_http_server
from postern_harness import HOSTNAME, admin_ok

PATH = "/.well-known/mta-sts.txt"


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_http_server(module_postern_factory,
                             tmp_path_factory.mktemp("http"), default_cert)


def curl_policy(srv, cert, host):
    """The policy as a sender fetches it: HTTPS, certificate verified,
    no redirect followed (RFC 8461 §3.3). Returns (status, content type,
    body bytes)."""
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(cert.cert_path),
         "--resolve", "%s:%d:127.0.0.1" % (HOSTNAME, srv.ports["https"]),
         "-H", "Host: " + host, "-o", "-",
         "-w", "\n%{http_code} %{content_type}",
         "https://%s:%d%s" % (HOSTNAME, srv.ports["https"], PATH)],
        capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    body, _, tail = out.stdout.rpartition(b"\n")
    code, _, ctype = tail.decode().partition(" ")
    return int(code), ctype, body


def parse_policy(body):
    """RFC 8461 §3.2: sts-policy-field *( CRLF sts-policy-field ); returns
    [(key, value)] in order; every line must end in CRLF."""
    text = body.decode("ascii")
    assert text.endswith("\r\n")
    lines = text[:-2].split("\r\n")
    out = []
    for line in lines:
        assert "\n" not in line and "\r" not in line, repr(line)
        k, sep, v = line.partition(": ")
        assert sep and re.fullmatch(r"[a-z_]+", k), repr(line)
        out.append((k, v))
    return out


def dns_mtasts_id(config):
    recs = json.loads(admin_ok(config, "dns", "example.test", "--json"))
    txt = [r["value"] for r in recs["records"]
           if r["name"] == "_mta-sts.example.test."]
    assert len(txt) == 1
    m = re.fullmatch(r"v=STSv1; id=([0-9a-zA-Z]{1,32})", txt[0])
    assert m, txt[0]
    return m.group(1)


def test_policy_over_https_with_curl(srv, default_cert):
    code, ctype, body = curl_policy(srv, default_cert,
                                    "mta-sts.example.test")
    assert code == 200, body
    assert ctype.split(";")[0] == "text/plain"
    assert body == (b"version: STSv1\r\nmode: testing\r\n"
                    b"mx: mail.example.test\r\nmax_age: 604800\r\n")
    fields = parse_policy(body)
    assert fields[0] == ("version", "STSv1")
    assert dict(fields)["mode"] == "testing"
    assert [v for k, v in fields if k == "mx"] == [HOSTNAME]
    assert int(dict(fields)["max_age"]) == 604800


def test_host_in_any_case_with_port(srv):
    r = request(srv.ports["https"], "GET", PATH, tls=True,
                host="MTA-STS.Example.Test:%d" % srv.ports["https"])
    assert r.status == 200
    assert parse_policy(r.body)[0] == ("version", "STSv1")
    h = request(srv.ports["https"], "HEAD", PATH, tls=True,
                host="mta-sts.example.test")
    assert h.status == 200 and h.body == b""
    assert int(h.header("content-length")) == len(r.body)


def test_unknown_domain_and_other_hosts_are_404(srv, default_cert):
    code, _, body = curl_policy(srv, default_cert, "mta-sts.other.test")
    assert code == 404
    assert "MTA-STS" in json.loads(body)["message"]
    # Only mta-sts.DOMAIN names a policy (RFC 8461 §3.3).
    for host in ("example.test", HOSTNAME, "autoconfig.example.test",
                 "mta-sts.", "mta-sts.-x.test", "mta-sts.exa_mple.test"):
        r = request(srv.ports["https"], "GET", PATH, tls=True, host=host)
        assert r.status == 404, host


def test_not_served_over_plain_http(srv):
    r = request(srv.ports["http"], "GET", PATH, host="mta-sts.example.test")
    assert r.status == 404
    assert b"STSv1" not in r.body
    # Port 80 beside 443 redirects; a sender never follows it (§3.3).
    r = request(srv.ports["redirect"], "GET", PATH,
                host="mta-sts.example.test")
    assert r.status == 301
    assert b"STSv1" not in r.body


def test_policy_answers_get_and_head_only(srv):
    r = request(srv.ports["https"], "POST", PATH, tls=True,
                host="mta-sts.example.test", body=b"x")
    assert r.status == 405


def test_mode_max_age_and_dns_id_follow_the_configuration(
        postern_factory, default_cert, tmp_path):
    srv = start_http_server(postern_factory, tmp_path / "s", default_cert)
    first_id = dns_mtasts_id(srv.admin_config)
    assert dns_mtasts_id(srv.admin_config) == first_id    # stable
    text = srv.config_path.read_text()

    policies = [request(srv.ports["https"], "GET", PATH, tls=True,
                        host="mta-sts.example.test").body]
    ids = [first_id]
    for section in ("[mta-sts]\nmode = enforce\n",
                    "[mta-sts]\nmode = enforce\nmax_age = 1d\n",
                    "[mta-sts]\nmode = none\nmax_age = 1d\n"):
        new = text + "\n" + section
        srv.config_path.write_text(new)
        srv.admin_config.write_text(new)
        assert "config.reloaded" in srv.reload()
        r = request(srv.ports["https"], "GET", PATH, tls=True,
                    host="mta-sts.example.test")
        assert r.status == 200
        policies.append(r.body)
        ids.append(dns_mtasts_id(srv.admin_config))
    got = [dict(parse_policy(p)) for p in policies]
    assert [(g["mode"], g["max_age"]) for g in got] == [
        ("testing", "604800"), ("enforce", "604800"), ("enforce", "86400"),
        ("none", "86400")]
    # Every policy change is a new id (RFC 8461 §3.1).
    assert len(set(ids)) == 4, ids

    # A bad mode or max_age is refused with its line; the old policy stays.
    for bad in ("[mta-sts]\nmode = strict\n", "[mta-sts]\nmax_age = 10\n",
                "[mta-sts]\nmx = other.test\n"):
        srv.config_path.write_text(text + "\n" + bad)
        assert "config.reload_failed" in srv.reload()
    r = request(srv.ports["https"], "GET", PATH, tls=True,
                host="mta-sts.example.test")
    assert dict(parse_policy(r.body))["mode"] == "none"


def test_config_check_names_the_bad_key(tmp_path, default_cert):
    from postern_harness import run_postern, write_mail_config
    path, _, text = write_mail_config(tmp_path, [("main", default_cert)],
                                      [("https", "http", "implicit")])
    path.write_text(text + "\n[mta-sts]\nmode = strict\n")
    r = run_postern("config", "check", "-c", str(path))
    assert r.returncode == 2
    assert "key 'mode': 'strict' is not testing, enforce or none" in \
        r.stderr + r.stdout
