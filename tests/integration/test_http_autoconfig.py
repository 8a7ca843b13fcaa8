"""Client autoconfiguration over HTTP(S): Thunderbird's config-v1.1.xml,
Outlook's Autodiscover (POX and the JSON redirect) and Apple's
.mobileconfig, read with curl, http.client, xml.etree, plistlib and json.
Every answer must name the listeners the server really has (ports, TLS
kind, implicit TLS first), its hostname, and the full address as user
name; addresses from the request come back escaped; an unknown domain is
a 404."""

import gzip
import json
import plistlib
import subprocess
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from http_helpers import ALICE, RawHttp, request, start_http_server
from postern_harness import HOSTNAME

HOSTILE = "\"<b>&'</b>\"x@example.test"
AD_NS = {"a": "http://schemas.microsoft.com/exchange/autodiscover/"
              "responseschema/2006",
         "o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/"
              "responseschema/2006a"}


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_http_server(module_postern_factory,
                             tmp_path_factory.mktemp("http"), default_cert)


def unsigned_profile(der, cert=None):
    """The plist inside a signed profile (PKCS#7 SignedData, DER), read
    by openssl; with cert, the signature must verify against it."""
    argv = ["openssl", "smime", "-verify", "-inform", "DER"]
    argv += (["-CAfile", str(cert.cert_path), "-purpose", "any"]
             if cert is not None else ["-noverify"])
    r = subprocess.run(argv, input=der, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return plistlib.loads(r.stdout)


def tb_servers(root, tag):
    out = []
    for e in root.iter(tag):
        out.append((e.get("type"), e.findtext("hostname"),
                    int(e.findtext("port")), e.findtext("socketType"),
                    e.findtext("authentication"), e.findtext("username")))
    return out


def test_thunderbird_autoconfig_over_https_with_curl(srv, default_cert):
    # The test certificate names mail.example.test: curl connects there
    # (verifying it) and asks as Thunderbird asks autoconfig.DOMAIN.
    out = subprocess.run(
        ["curl", "-sS", "--fail", "--cacert", str(default_cert.cert_path),
         "--resolve", "mail.example.test:%d:127.0.0.1" % srv.ports["https"],
         "-H", "Host: autoconfig.example.test",
         "https://mail.example.test:%d/mail/config-v1.1.xml"
         % srv.ports["https"]],
        capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    root = ET.fromstring(out.stdout)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    prov = root.find("emailProvider")
    assert prov.get("id") == "example.test"
    assert prov.findtext("domain") == "example.test"
    user = "%EMAILADDRESS%"
    assert tb_servers(root, "incomingServer") == [
        ("imap", HOSTNAME, srv.ports["imaps"], "SSL", "password-cleartext",
         user),
        ("imap", HOSTNAME, srv.ports["imap"], "STARTTLS",
         "password-cleartext", user),
        ("pop3", HOSTNAME, srv.ports["pop3s"], "SSL", "password-cleartext",
         user),
    ]
    # Port 25 (smtp) is not for clients: only submission is offered.
    assert tb_servers(root, "outgoingServer") == [
        ("smtp", HOSTNAME, srv.ports["submissions"], "SSL",
         "password-cleartext", user),
        ("smtp", HOSTNAME, srv.ports["submission"], "STARTTLS",
         "password-cleartext", user),
    ]


def test_thunderbird_well_known_path_takes_the_address(srv):
    q = urllib.parse.urlencode({"emailaddress": ALICE})
    r = request(srv.ports["http"], "GET",
                "/.well-known/autoconfig/mail/config-v1.1.xml?" + q,
                host="example.test")
    assert r.status == 200, r.body
    assert r.header("content-type") == "application/xml; charset=utf-8"
    root = ET.fromstring(r.body)
    users = {e.findtext("username") for e in root.iter("incomingServer")}
    assert users == {ALICE}


def test_hostile_address_is_escaped_in_every_answer(srv):
    q = urllib.parse.quote(HOSTILE, safe="")
    r = request(srv.ports["http"], "GET",
                "/mail/config-v1.1.xml?emailaddress=" + q)
    assert r.status == 200, r.body
    assert b"<b>" not in r.body
    root = ET.fromstring(r.body)
    assert {e.findtext("username") for e in root.iter("incomingServer")} \
        == {HOSTILE}

    body = ad_request(HOSTILE.replace("&", "&amp;").replace("<", "&lt;")
                      .replace(">", "&gt;"))
    r = request(srv.ports["https"], "POST", "/autodiscover/autodiscover.xml",
                body=body, tls=True,
                headers=["Content-Type: text/xml"])
    assert r.status == 200, r.body
    assert b"<b>" not in r.body
    root = ET.fromstring(r.body)
    assert {e.text for e in root.iter("{%s}LoginName" % AD_NS["o"])} == \
        {HOSTILE}

    r = request(srv.ports["https"], "GET", "/mobileconfig?email=" + q,
                tls=True)
    assert r.status == 200, r.body
    profile = unsigned_profile(r.body)
    assert profile["PayloadContent"][0]["EmailAddress"] == HOSTILE

    r = request(srv.ports["https"], "GET",
                "/autodiscover/autodiscover.json?Protocol=AutodiscoverV1"
                "&Email=" + q, tls=True)
    assert r.status == 200, r.body
    json.loads(r.body)


def test_unknown_domain_is_404_with_a_sentence(srv):
    for target in ("/mail/config-v1.1.xml?emailaddress=bob%40other.test",
                   "/mobileconfig?email=bob%40other.test",
                   "/autodiscover/autodiscover.json?Email=bob%40other.test"
                   "&Protocol=AutodiscoverV1"):
        r = request(srv.ports["http"], "GET", target)
        assert r.status == 404, (target, r.body)
        doc = json.loads(r.body)
        assert doc["error"] == 404
        assert "does not serve mail for that domain" in doc["message"]
    r = request(srv.ports["http"], "GET", "/mail/config-v1.1.xml",
                host="autoconfig.other.test")
    assert r.status == 404
    r = request(srv.ports["http"], "POST", "/autodiscover/autodiscover.xml",
                body=ad_request("bob@other.test"))
    assert r.status == 404


def test_bad_address_is_400(srv):
    for q in ("no-at-sign", "a%20b%40example.test", "x%40exa_mple.test",
              "%zz", "a%00b%40example.test"):
        r = request(srv.ports["http"], "GET",
                    "/mail/config-v1.1.xml?emailaddress=" + q)
        assert r.status == 400, (q, r.body)
        assert json.loads(r.body)["error"] == 400


def ad_request(address_xml):
    return ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
            "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
            "autodiscover/outlook/requestschema/2006\">\r\n"
            "  <Request>\r\n"
            "    <EMailAddress>%s</EMailAddress>\r\n"
            "    <AcceptableResponseSchema>http://schemas.microsoft.com/"
            "exchange/autodiscover/outlook/responseschema/2006a"
            "</AcceptableResponseSchema>\r\n"
            "  </Request>\r\n</Autodiscover>\r\n"
            % address_xml).encode()


def test_outlook_autodiscover_names_imap_and_smtp(srv):
    r = request(srv.ports["https"], "POST", "/Autodiscover/Autodiscover.xml",
                host="autodiscover.example.test", body=ad_request(ALICE),
                tls=True, headers=["Content-Type: text/xml"])
    assert r.status == 200, r.body
    root = ET.fromstring(r.body)
    assert root.tag == "{%s}Autodiscover" % AD_NS["a"]
    acct = root.find("o:Response/o:Account", AD_NS)
    assert acct.findtext("o:AccountType", namespaces=AD_NS) == "email"
    assert acct.findtext("o:Action", namespaces=AD_NS) == "settings"
    protos = {}
    for p in acct.findall("o:Protocol", AD_NS):
        protos[p.findtext("o:Type", namespaces=AD_NS)] = {
            c.tag.split("}")[1]: c.text for c in p}
    assert set(protos) == {"IMAP", "SMTP"}
    assert protos["IMAP"]["Server"] == HOSTNAME
    assert protos["IMAP"]["Port"] == str(srv.ports["imaps"])
    assert protos["IMAP"]["Encryption"] == "SSL"
    assert protos["IMAP"]["LoginName"] == ALICE
    assert protos["SMTP"]["Port"] == str(srv.ports["submissions"])
    assert protos["SMTP"]["LoginName"] == ALICE
    assert protos["SMTP"]["AuthRequired"] == "on"


def test_autodiscover_without_address_is_400_and_get_is_405(srv):
    r = request(srv.ports["http"], "POST", "/autodiscover/autodiscover.xml",
                body=b"<Autodiscover><Request></Request></Autodiscover>")
    assert r.status == 400
    assert "EMailAddress" in json.loads(r.body)["message"]
    r = request(srv.ports["http"], "GET", "/autodiscover/autodiscover.xml")
    assert r.status == 405
    assert r.header("allow") == "POST"


def test_autodiscover_json_points_at_the_https_listener(srv):
    want = "https://%s:%d/autodiscover/autodiscover.xml" % (
        HOSTNAME, srv.ports["https"])
    for target in (
            "/autodiscover/autodiscover.json?Email=alice%40example.test"
            "&Protocol=AutodiscoverV1",
            "/autodiscover/autodiscover.json/v1.0/alice%40example.test"
            "?Protocol=AutodiscoverV1"):
        r = request(srv.ports["https"], "GET", target, tls=True,
                    host="autodiscover.example.test")
        assert r.status == 200, (target, r.body)
        assert r.header("content-type").startswith("application/json")
        assert json.loads(r.body) == {"Protocol": "AutodiscoverV1",
                                      "Url": want}
    r = request(srv.ports["https"], "GET",
                "/autodiscover/autodiscover.json?Email=alice%40example.test"
                "&Protocol=ActiveSync", tls=True)
    assert r.status == 400


def test_mobileconfig_is_a_signed_profile_without_password(srv,
                                                           default_cert):
    r = request(srv.ports["https"], "GET",
                "/mobileconfig?email=alice%40example.test", tls=True)
    assert r.status == 200, r.body
    assert r.header("content-type") == "application/x-apple-aspen-config"
    assert r.header("content-disposition") == \
        'attachment; filename="example.test.mobileconfig"'
    # Signed with the server's certificate (PKCS#7, content attached).
    assert r.body[:1] == b"\x30"
    p = unsigned_profile(r.body, default_cert)
    assert p["PayloadType"] == "Configuration"
    assert p["PayloadVersion"] == 1
    (acct,) = p["PayloadContent"]
    assert acct["PayloadType"] == "com.apple.mail.managed"
    assert acct["EmailAccountType"] == "EmailTypeIMAP"
    assert acct["EmailAddress"] == ALICE
    assert acct["IncomingMailServerHostName"] == HOSTNAME
    assert acct["IncomingMailServerPortNumber"] == srv.ports["imaps"]
    assert acct["IncomingMailServerUseSSL"] is True
    assert acct["IncomingMailServerUsername"] == ALICE
    assert acct["OutgoingMailServerHostName"] == HOSTNAME
    assert acct["OutgoingMailServerPortNumber"] == srv.ports["submissions"]
    assert acct["OutgoingMailServerUsername"] == ALICE
    assert not any("Password" in k and k != \
                   "OutgoingPasswordSameAsIncomingPassword" for k in acct)
    # The same address gets the same profile (installing it again
    # replaces the account).
    r2 = request(srv.ports["https"], "GET",
                 "/mobileconfig?email=ALICE%40example.test", tls=True)
    assert unsigned_profile(r2.body)["PayloadContent"][0]["PayloadUUID"] == \
        acct["PayloadUUID"]
    r = request(srv.ports["https"], "GET", "/mobileconfig", tls=True)
    assert r.status == 400


def test_gzip_when_accepted(srv):
    target = "/mail/config-v1.1.xml?emailaddress=alice%40example.test"
    plain = request(srv.ports["http"], "GET", target)
    assert plain.header("content-encoding") is None
    assert plain.header("vary") == "Accept-Encoding"
    z = request(srv.ports["http"], "GET", target,
                headers=["Accept-Encoding: br, gzip;q=0.8"])
    assert z.header("content-encoding") == "gzip"
    assert int(z.header("content-length")) == len(z.body) < len(plain.body)
    assert gzip.decompress(z.body) == plain.body
    none = request(srv.ports["http"], "GET", target,
                   headers=["Accept-Encoding: gzip;q=0"])
    assert none.header("content-encoding") is None


def test_access_log_never_holds_the_query(srv):
    mark = srv.log_mark()
    r = request(srv.ports["http"], "GET",
                "/mail/config-v1.1.xml?emailaddress=secret.person%40"
                "example.test")
    assert r.status == 200
    srv.wait_log(r'event=http\.request method=GET '
                 r'path="/mail/config-v1\.1\.xml" status=200 '
                 r'bytes=\d+ ms=\d+', since=mark)
    assert not any("secret.person" in line
                   for line in srv.log_lines()[mark:])
