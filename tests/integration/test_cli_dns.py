"""`postern dns DOMAIN` and `postern dns check DOMAIN` (issue #18): the
zone-file lines a domain needs, made from the configuration (mail host,
listeners and their ports, the DKIM key, made when missing), and the check
of what is published, through the resolver of [queue] -- here a private
dnsmasq on loopback publishing one domain exactly as `postern dns --json`
says (good.test), one with every record wrong (bad.test, its own mail host
mail.bad.test), and one that is right but lax (soft.test: SPF ~all, DMARC
p=none)."""

import json
import re

import dns.rdatatype
import dns.zone
import pytest

from dns_helpers import Dnsmasq, needs_dnsmasq, records_to_dnsmasq
from postern_harness import admin_ok, make_cert, render_config, run_admin

pytestmark = [needs_dnsmasq]

GOOD_IP = "192.0.2.10"
BAD_IP = "192.0.2.20"
# Listeners of the configuration (not started: `postern dns` only reads
# them). No POP3 with STARTTLS: its SRV record must say "not offered".
LISTENERS = [
    ("smtp", "smtp", "starttls", 25),
    ("submissions", "submission", "implicit", 465),
    ("submission", "submission", "starttls", 587),
    ("imaps", "imap", "implicit", 993),
    ("imap", "imap", "starttls", 143),
    ("pop3s", "pop3", "implicit", 995),
]


def write_config(directory, data, cert, hostname, listeners, dns_port=53):
    sections = [
        ("server", {"hostname": hostname, "data_dir": str(data),
                    "user": "root"}),
        ("queue", {"resolver": "127.0.0.1", "resolver_port": dns_port}),
        ("certificate main", {"cert": str(cert.cert_path),
                              "key": str(cert.key_path)}),
    ]
    for name, proto, tls, port in listeners:
        sections.append(("listener %s" % name,
                         {"address": "0.0.0.0", "port": port,
                          "protocol": proto, "tls": tls}))
    text, _ = render_config(sections)
    path = directory / ("%s.conf" % hostname)
    path.write_text(text)
    return path


def dns_json(config, domain, *args):
    return json.loads(admin_ok(config, "dns", domain, "--json", *args))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("dnssite")
    data = d / "data"
    data.mkdir(mode=0o700)
    cert = make_cert(d, "main", "mail.example.test", ["mail.example.test"])
    # The port is only known once dnsmasq runs; the records are made
    # first, with a configuration that points nowhere yet.
    good = write_config(d, data, cert, "mail.example.test", LISTENERS)
    bad = write_config(d, data, cert, "mail.bad.test", LISTENERS)
    for dom in ("good.test", "bad.test", "soft.test"):
        admin_ok(good, "domain", "add", dom)
    first = admin_ok(good, "dns", "good.test", "--ip", GOOD_IP)
    good_recs = dns_json(good, "good.test", "--ip", GOOD_IP)
    soft_recs = dns_json(good, "soft.test", "--ip", GOOD_IP)
    bad_recs = dns_json(bad, "bad.test", "--ip", BAD_IP)
    published = [(r["name"], r["type"], r["value"])
                 for r in good_recs["records"]]
    for r in soft_recs["records"]:
        v = r["value"]
        if r["type"] == "PTR" or r["name"].startswith("mail."):
            continue        # the same host as good.test
        if v == "v=spf1 mx -all":
            v = "v=spf1 mx ~all"
        elif v.startswith("v=DMARC1"):
            v = "v=DMARC1; p=none"
        published.append((r["name"], r["type"], v))
    dkim_bad = next(r for r in bad_recs["records"]
                    if "._domainkey." in r["name"])
    published += [
        ("bad.test.", "MX", "10 mx.elsewhere.test."),
        ("mx.elsewhere.test.", "A", "198.51.100.1"),
        ("mail.bad.test.", "A", "198.51.100.2"),
        ("bad.test.", "TXT", "v=spf1 ip4:198.51.100.1 -all"),
        (dkim_bad["name"], "TXT", "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0B"
         "AQEFAAOCAQ8AMIIBCgKCAQEAwrongkey"),
        ("_dmarc.bad.test.", "TXT", "v=DMARC1; rua=mailto:x@bad.test"),
        ("_smtp._tls.bad.test.", "TXT", "v=TLSRPTv1"),
        ("_imaps._tcp.bad.test.", "SRV", "0 1 1993 mail.bad.test."),
        ("_pop3._tcp.bad.test.", "SRV", "0 1 110 mail.bad.test."),
        ("autoconfig.bad.test.", "CNAME", "mx.elsewhere.test."),
        ("bad.test.", "CAA", '0 issue "pki.goog"'),
        ("20.2.0.192.in-addr.arpa.", "PTR", "host.provider.test."),
    ]
    server = Dnsmasq(d, records_to_dnsmasq(published))
    for path, host in ((good, "mail.example.test"), (bad, "mail.bad.test")):
        write_config(d, data, cert, host, LISTENERS, dns_port=server.port)
    yield dict(dir=d, data=data, cert=cert, good=good, bad=bad, first=first,
               good_recs=good_recs)
    server.stop()


def zone_of(text):
    return dns.zone.from_text(text, origin=".", relativize=False,
                              check_origin=False)


def test_dns_prints_valid_zone_lines_with_listener_ports(site):
    text = admin_ok(site["good"], "dns", "good.test", "--ip", GOOD_IP)
    zone = zone_of(text)
    got = {}
    for name, node in zone.nodes.items():
        for rds in node.rdatasets:
            for rd in rds:
                got.setdefault((name.to_text(),
                                dns.rdatatype.to_text(rds.rdtype)),
                               []).append(rd.to_text())
    assert got[("good.test.", "MX")] == ["10 mail.example.test."]
    assert got[("mail.example.test.", "A")] == [GOOD_IP]
    assert sorted(got[("good.test.", "TXT")]) == ['"v=spf1 mx -all"']
    assert got[("_dmarc.good.test.", "TXT")] == [
        '"v=DMARC1; p=quarantine; rua=mailto:postmaster@good.test"']
    assert re.fullmatch(r'"v=STSv1; id=[0-9a-zA-Z]{1,32}"',
                        got[("_mta-sts.good.test.", "TXT")][0])
    assert got[("_smtp._tls.good.test.", "TXT")] == [
        '"v=TLSRPTv1; rua=mailto:postmaster@good.test"']
    srv = {n.split(".")[0] + "." + n.split(".")[1]: v[0]
           for (n, t), v in got.items() if t == "SRV"}
    assert srv == {
        "_submissions._tcp": "0 1 465 mail.example.test.",
        "_submission._tcp": "0 1 587 mail.example.test.",
        "_imaps._tcp": "0 1 993 mail.example.test.",
        "_imap._tcp": "0 1 143 mail.example.test.",
        "_pop3s._tcp": "0 1 995 mail.example.test.",
        "_pop3._tcp": "0 0 0 .",
    }
    for n in ("autoconfig", "autodiscover", "mta-sts"):
        assert got[("%s.good.test." % n, "CNAME")] == ["mail.example.test."]
    assert got[("good.test.", "CAA")] == ['0 issue "letsencrypt.org"']
    dkim = [(n, v) for (n, t), v in got.items() if "._domainkey." in n]
    assert len(dkim) == 1 and dkim[0][0].endswith("._domainkey.good.test.")
    # The PTR is the hosting provider's: a comment naming the address.
    assert re.search(r"^; PTR: .*%s.*mail\.example\.test\." %
                     re.escape(GOOD_IP), text, re.M)


def test_dns_makes_the_dkim_key_when_missing_and_reuses_it(site):
    assert "a DKIM key was made for good.test" in site["first"]
    shown = admin_ok(site["good"], "dkim", "show", "good.test")
    p_shown = re.sub(r'"\s*"', "", shown).split("p=")[1].split('"')[0]
    rec = next(r for r in site["good_recs"]["records"]
               if "._domainkey." in r["name"])
    assert rec["value"].endswith("p=" + p_shown)
    assert site["good_recs"]["dkim_created"] is False
    again = admin_ok(site["good"], "dns", "good.test")
    assert "DKIM key was made" not in again


def test_dns_removed_listener_srv_says_not_offered(site, tmp_path):
    listeners = [l for l in LISTENERS if l[0] != "imap"]
    path = write_config(tmp_path, site["data"], site["cert"],
                        "mail.example.test", listeners)
    zone = zone_of(admin_ok(path, "dns", "good.test", "--ip", GOOD_IP))
    rds = zone.find_rdataset("_imap._tcp.good.test.", "SRV")
    assert [rd.to_text() for rd in rds] == ["0 0 0 ."]
    rds = zone.find_rdataset("_imaps._tcp.good.test.", "SRV")
    assert [rd.to_text() for rd in rds] == ["0 1 993 mail.example.test."]


def test_dns_without_public_address_says_fill_in(site):
    out = admin_ok(site["good"], "dns", "good.test")
    assert re.search(r"^; FILL IN: mail\.example\.test\. IN A .*--ip",
                     out, re.M)
    assert not re.search(r"^mail\.example\.test\. .*IN A", out, re.M)
    j = dns_json(site["good"], "good.test")
    a = [r for r in j["records"] if r["type"] == "A"]
    assert a == [dict(a[0], value=None)]


def test_dns_refuses_a_foreign_domain(site):
    r = run_admin(site["good"], "dns", "other.test")
    assert r.returncode == 1
    assert "other.test is not one of our domains" in r.stderr


def check_lines(config, domain, ip):
    r = run_admin(config, "dns", "check", domain, "--ip", ip)
    lines = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^(\S) (\S+) (\S+) \| published: (.*?) \| "
                     r"expected: (.*?) \| (.*)$", line)
        if m:
            lines[(m.group(2), m.group(3))] = (m.group(1), m.group(4),
                                               m.group(6))
    return r, lines


def test_dns_check_good_domain_all_right(site):
    r, lines = check_lines(site["good"], "good.test", GOOD_IP)
    assert r.returncode == 0, r.stdout + r.stderr
    marks = {k: v[0] for k, v in lines.items()}
    assert marks[("MX", "good.test.")] == "\u2713"
    assert marks[("A", "mail.example.test.")] == "\u2713"
    assert marks[("SPF", "good.test.")] == "\u2713"
    assert marks[("DMARC", "_dmarc.good.test.")] == "\u2713"
    assert marks[("MTA-STS", "_mta-sts.good.test.")] == "\u2713"
    assert marks[("TLS-RPT", "_smtp._tls.good.test.")] == "\u2713"
    assert marks[("SRV", "_imaps._tcp.good.test.")] == "\u2713"
    assert marks[("SRV", "_pop3._tcp.good.test.")] == "\u2713"
    assert marks[("CNAME", "autoconfig.good.test.")] == "\u2713"
    assert marks[("CAA", "good.test.")] == "\u2713"
    assert marks[("PTR", "10.2.0.192.in-addr.arpa.")] == "\u2713"
    dkim = [v for k, v in lines.items() if k[0] == "DKIM"]
    assert len(dkim) == 1 and dkim[0][0] == "\u2713"
    assert "\u2717" not in r.stdout and "\u26a0" not in r.stdout
    assert r.stdout.endswith("0 problems, 0 warnings\n")
    assert lines[("SPF", "good.test.")][1] == "v=spf1 mx -all"


def test_dns_check_lax_domain_warns_but_passes(site):
    r, lines = check_lines(site["good"], "soft.test", GOOD_IP)
    assert r.returncode == 0, r.stdout + r.stderr
    spf = lines[("SPF", "soft.test.")]
    assert spf[0] == "\u26a0" and spf[1] == "v=spf1 mx ~all"
    assert "soft-fail" in spf[2]
    dmarc = lines[("DMARC", "_dmarc.soft.test.")]
    assert dmarc[0] == "\u26a0" and "p=none only monitors" in dmarc[2]
    assert "\u2717" not in r.stdout


def test_dns_check_bad_domain_every_line_wrong(site):
    r, lines = check_lines(site["bad"], "bad.test", BAD_IP)
    assert r.returncode == 1
    fail, warn = "\u2717", "\u26a0"
    expect = {
        ("MX", "bad.test."): (fail, "10 mx.elsewhere.test.",
                              "does not name this server"),
        ("A", "mail.bad.test."): (fail, "198.51.100.2", "another address"),
        ("SPF", "bad.test."): (fail, "v=spf1 ip4:198.51.100.1 -all",
                               "does not name this server"),
        ("DMARC", "_dmarc.bad.test."): (fail, None, "no policy"),
        ("MTA-STS", "_mta-sts.bad.test."): (warn, "none", "not published"),
        ("TLS-RPT", "_smtp._tls.bad.test."): (fail, "v=TLSRPTv1", "rua="),
        ("SRV", "_imaps._tcp.bad.test."): (fail, "0 1 1993 mail.bad.test.",
                                           "another host or port"),
        ("SRV", "_pop3._tcp.bad.test."): (fail, "0 1 110 mail.bad.test.",
                                          "not offer"),
        ("SRV", "_imap._tcp.bad.test."): (warn, "none", "not published"),
        ("CNAME", "autoconfig.bad.test."): (fail, "mx.elsewhere.test.",
                                            "another host"),
        ("CAA", "bad.test."): (fail, '0 issue "pki.goog"',
                               "letsencrypt.org may not issue"),
        ("PTR", "20.2.0.192.in-addr.arpa."): (fail, "host.provider.test.",
                                              "names another host"),
    }
    for key, (mark, published, text) in expect.items():
        assert key in lines, (key, r.stdout)
        got = lines[key]
        assert got[0] == mark, (key, got)
        if published is not None:
            assert got[1] == published, (key, got)
        assert text in got[2], (key, got)
    dkim = [v for k, v in lines.items() if k[0] == "DKIM"]
    assert dkim[0][0] == fail and "a different public key" in dkim[0][2]


def test_dns_check_json(site):
    r = run_admin(site["bad"], "dns", "check", "bad.test", "--ip", BAD_IP,
                  "--json")
    assert r.returncode == 1
    j = json.loads(r.stdout)
    assert j["ok"] is False
    mx = next(x for x in j["records"] if x["check"] == "MX")
    assert mx["status"] == "fail"
    assert mx["published"] == "10 mx.elsewhere.test."
    assert mx["expected"] == "10 mail.bad.test."
    r = run_admin(site["good"], "dns", "check", "good.test", "--ip",
                  GOOD_IP, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True


def test_dns_check_warns_of_an_mta_sts_id_the_policy_left_behind(site):
    """The policy changed ([mta-sts] mode = enforce) after the record
    was published: the id no longer matches (RFC 8461 §3.1)."""
    conf = site["dir"] / "enforce.conf"
    conf.write_text(site["good"].read_text() + "\n[mta-sts]\nmode = enforce\n")
    r, lines = check_lines(conf, "good.test", GOOD_IP)
    mark, published, text = lines[("MTA-STS", "_mta-sts.good.test.")]
    assert mark == "\u26a0", (mark, text)
    assert "another id" in text
    new_id = [x["value"] for x in dns_json(conf, "good.test", "--ip",
                                            GOOD_IP)["records"]
              if x["name"] == "_mta-sts.good.test."][0]
    assert new_id not in published and new_id.split("id=")[1] in r.stdout
    assert r.returncode == 0        # recommended, not required


def test_dns_caa_follows_the_acme_ca(site, tmp_path):
    """CAA names [acme] caa; with another CA's directory and no caa the
    issuer domain is unknown: a FILL IN comment, and check does not
    compare."""
    other = tmp_path / "other.conf"
    other.write_text(site["bad"].read_text() +
                     "\n[acme]\ndirectory = https://ca.example.test/dir\n")
    out = admin_ok(other, "dns", "bad.test", "--ip", BAD_IP)
    assert re.search(r'^; FILL IN: bad\.test\. IN CAA 0 issue "<your CA',
                     out, re.M), out
    assert "[acme] caa" in out
    assert not re.search(r"^bad\.test\. .*IN CAA", out, re.M), out
    caa = [r for r in dns_json(other, "bad.test", "--ip", BAD_IP)["records"]
           if r["type"] == "CAA"]
    assert len(caa) == 1 and caa[0]["value"] is None
    r, lines = check_lines(other, "bad.test", BAD_IP)
    assert lines[("CAA", "bad.test.")][0] == "\u2713"
    assert "not compared" in lines[("CAA", "bad.test.")][2]
    # The operator names the CA's domain: printed, and compared.
    named = tmp_path / "named.conf"
    named.write_text(other.read_text() + "caa = pki.goog\n")
    out = admin_ok(named, "dns", "bad.test", "--ip", BAD_IP)
    zone = zone_of(out)
    rds = zone.find_rdataset("bad.test.", "CAA")
    assert [rd.to_text() for rd in rds] == ['0 issue "pki.goog"']
    r, lines = check_lines(named, "bad.test", BAD_IP)
    got = lines[("CAA", "bad.test.")]
    assert got[:2] == ("\u2713", '0 issue "pki.goog"'), got
    assert got[2].startswith("pki.goog may issue."), got
    bad = tmp_path / "bad.conf"
    bad.write_text(other.read_text() + "caa = \"x y\"\n")
    r = run_admin(bad, "config", "check")
    assert r.returncode != 0 and "key 'caa'" in (r.stdout + r.stderr)
