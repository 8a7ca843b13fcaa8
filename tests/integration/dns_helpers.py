"""A private DNS server for the tests of `postern dns check` and `postern
doctor`: dnsmasq on 127.0.0.1 and a free UDP port, authoritative for
.test, publishing the records given as dnsmasq lines (every other name
under .test is NXDOMAIN). Records come from `postern dns --json` through
zone_to_dnsmasq()."""

import shutil
import socket
import subprocess
import time

import pytest

# dnsmasq is in the Makefile's PACKAGES: a missing one fails the run.
needs_dnsmasq = pytest.mark.skipif(
    shutil.which("dnsmasq") is None,
    reason="needs dnsmasq (Debian package dnsmasq-base)")


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _txt(value):
    """A TXT value as dnsmasq strings of at most 255 bytes."""
    parts = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    return ",".join('"%s"' % p for p in parts)


def _caa(value):
    """'0 issue "letsencrypt.org"' as dnsmasq's dns-rr hex."""
    flags, tag, v = value.split(" ", 2)
    v = v.strip('"').encode()
    data = bytes([int(flags), len(tag)]) + tag.encode() + v
    return data.hex()


def record_to_dnsmasq(name, rtype, value, hosts):
    """One record as a dnsmasq line; address records are gathered in
    hosts (name -> [addresses]) for host-record lines (which also make the
    PTR records)."""
    name = name.rstrip(".")
    if rtype == "MX":
        pref, target = value.split()
        return "mx-host=%s,%s,%s" % (name, target.rstrip("."), pref)
    if rtype in ("A", "AAAA"):
        hosts.setdefault(name, []).append(value)
        return None
    if rtype == "TXT":
        return "txt-record=%s,%s" % (name, _txt(value))
    if rtype == "SRV":
        prio, weight, port, target = value.split()
        if target == ".":
            return "srv-host=%s" % name
        return "srv-host=%s,%s,%s,%s,%s" % (name, target.rstrip("."), port,
                                            prio, weight)
    if rtype == "CNAME":
        return "cname=%s,%s" % (name, value.rstrip("."))
    if rtype == "CAA":
        return "dns-rr=%s,257,%s" % (name, _caa(value))
    if rtype == "PTR":
        return "ptr-record=%s,%s" % (name, value.rstrip("."))
    raise AssertionError("unexpected record type %s" % rtype)


def records_to_dnsmasq(records):
    """[(name, type, value)] -> dnsmasq lines."""
    lines, hosts = [], {}
    for name, rtype, value in records:
        line = record_to_dnsmasq(name, rtype, value, hosts)
        if line:
            lines.append(line)
    for name, addrs in hosts.items():
        lines.append("host-record=%s,%s" % (name, ",".join(addrs)))
    return lines


class Dnsmasq:
    def __init__(self, directory, lines):
        # dnsmasq binds the port for TCP too; a port free for UDP may be
        # taken for TCP (or by another test run) by the time it starts:
        # then another port.
        for attempt in range(5):
            self.port = free_udp_port()
            conf = directory / "dnsmasq.conf"
            conf.write_text("\n".join([
                "port=%d" % self.port, "listen-address=127.0.0.1",
                "bind-interfaces", "no-resolv", "no-hosts", "local=/test/",
                "local=/arpa/", *lines, ""]))
            self.log_path = directory / "dnsmasq.log"
            self.log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(
                ["dnsmasq", "--keep-in-foreground", "--conf-file=%s" % conf,
                 "--pid-file=", "--log-facility=-", "--log-queries"],
                stdout=self.log, stderr=subprocess.STDOUT)
            time.sleep(0.5)
            if self.proc.poll() is None:
                return
            self.log.close()
            text = self.log_path.read_text()
            if "Address already in use" not in text:
                break
        raise AssertionError(self.log_path.read_text())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()
