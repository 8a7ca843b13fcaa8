"""IMAP QUOTA (RFC 9208) as clients see it: the capabilities, GETQUOTAROOT
and GETQUOTA with STORAGE (in KiB) and MESSAGE from the limits an
administrator sets with `postern user set ADDRESS quota=... quota_messages=...`
and the account's usage, no quota root for an account without limits,
SETQUOTA refused with a reply saying how a quota is set, STATUS DELETED and
DELETED-STORAGE (RFC 9208 §4.1.4, §4.1.5), and APPEND and COPY past the
message limit answered NO [OVERQUOTA]. Replies are checked as bytes."""

import pytest

from imap_helpers import (admin_ok, imap_caps, login, new_user, parse_status,
                          start_imap_server)


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-quota"),
                             default_cert)


def message(n, pad=0):
    return (b"From: a@other.test\r\nTo: b@example.test\r\n"
            b"Subject: quota %d\r\n\r\nBody %d.\r\n" % (n, n)) + b"x" * pad


def append(c, mailbox, msg, flags=""):
    tag = next(c.tags)
    c.send(b"%s APPEND %s %s{%d+}\r\n%s\r\n"
           % (tag, mailbox.encode(), flags.encode(), len(msg), msg))
    return c.read_reply(tag)


def test_capabilities_name_quota_and_both_resources(srv):
    user = new_user(srv)
    c = login(srv, *user)
    try:
        caps = imap_caps(c.ok("CAPABILITY").untagged[0])
        for cap in ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"):
            assert cap in caps, caps
        # No SETQUOTA for users: QUOTASET is not offered.
        assert "QUOTASET" not in caps
    finally:
        c.close()


def test_account_without_limits_has_no_quota_root(srv):
    user = new_user(srv)
    c = login(srv, *user)
    try:
        r = c.ok("GETQUOTAROOT INBOX")
        assert r.untagged == [b"* QUOTAROOT \"INBOX\"\r\n"], r.untagged
        r = c.command('GETQUOTA ""')
        assert r.status == "NO" and r.code_atom == "NONEXISTENT", r.tagged
    finally:
        c.close()


def test_getquotaroot_and_getquota_report_limits_and_usage(srv):
    user = new_user(srv)
    admin_ok(srv.admin_config, "user", "set", user[0], "quota=2048000",
             "quota_messages=10")
    c = login(srv, *user)
    try:
        m1, m2 = message(1, 3000), message(2, 100)
        assert append(c, "INBOX", m1).status == "OK"
        assert append(c, "Sent", m2).status == "OK"
        kib = (len(m1) + len(m2) + 1023) // 1024
        quota = b'* QUOTA "" (STORAGE %d 2000 MESSAGE 2 10)\r\n' % kib
        # RFC 9208 §4.3.2 example shape: QUOTAROOT then QUOTA.
        r = c.ok("GETQUOTAROOT INBOX")
        assert r.untagged == [b'* QUOTAROOT "INBOX" ""\r\n', quota], \
            r.untagged
        r = c.ok("GETQUOTAROOT Sent")
        assert r.untagged == [b'* QUOTAROOT "Sent" ""\r\n', quota], \
            r.untagged
        r = c.ok('GETQUOTA ""')
        assert r.untagged == [quota], r.untagged
        r = c.command('GETQUOTA "other"')
        assert r.status == "NO" and r.code_atom == "NONEXISTENT", r.tagged
        r = c.command("GETQUOTAROOT Nonexistent")
        assert r.status == "NO" and r.code_atom == "NONEXISTENT", r.tagged
    finally:
        c.close()


def test_only_the_limits_that_are_set_are_listed(srv):
    user = new_user(srv)
    admin_ok(srv.admin_config, "user", "set", user[0], "quota_messages=5")
    c = login(srv, *user)
    try:
        r = c.ok('GETQUOTA ""')
        assert r.untagged == [b'* QUOTA "" (MESSAGE 0 5)\r\n'], r.untagged
        admin_ok(srv.admin_config, "user", "set", user[0],
                 "quota_messages=0", "quota=10240")
        r = c.ok('GETQUOTA ""')
        assert r.untagged == [b'* QUOTA "" (STORAGE 0 10)\r\n'], r.untagged
    finally:
        c.close()


def test_setquota_is_refused_and_says_how(srv):
    user = new_user(srv)
    c = login(srv, *user)
    try:
        r = c.command('SETQUOTA "" (STORAGE 512)')
        assert r.status == "NO", r.tagged
        assert b"postern user set" in r.text, r.tagged
        r = c.command("GETQUOTA")
        assert r.status == "BAD", r.tagged
    finally:
        c.close()


def test_status_deleted_and_deleted_storage(srv):
    user = new_user(srv)
    c = login(srv, *user)
    try:
        m1, m2, m3 = message(1, 2000), message(2, 500), message(3)
        assert append(c, "INBOX", m1, "(\\Deleted) ").status == "OK"
        assert append(c, "INBOX", m2, "(\\Deleted \\Seen) ").status == "OK"
        assert append(c, "INBOX", m3).status == "OK"
        r = c.ok("STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)")
        name, items = parse_status(r.untagged[0])
        assert name == b"INBOX"
        assert items == {"MESSAGES": 3, "DELETED": 2,
                         "DELETED-STORAGE": (len(m1) + len(m2) + 1023)
                         // 1024}, items
        r = c.ok("STATUS Trash (DELETED-STORAGE)")
        assert r.untagged == [b'* STATUS "Trash" (DELETED-STORAGE 0)\r\n'], \
            r.untagged
    finally:
        c.close()


def test_append_and_copy_past_the_message_limit_are_overquota(srv):
    user = new_user(srv)
    admin_ok(srv.admin_config, "user", "set", user[0], "quota_messages=2")
    c = login(srv, *user)
    try:
        assert append(c, "INBOX", message(1)).status == "OK"
        assert append(c, "INBOX", message(2)).status == "OK"
        r = append(c, "INBOX", message(3))
        assert r.status == "NO" and r.code_atom == "OVERQUOTA", r.tagged
        c.select("INBOX")
        r = c.command("COPY 1 Archive")
        assert r.status == "NO" and r.code_atom == "OVERQUOTA", r.tagged
        r = c.ok('GETQUOTA ""')
        assert r.untagged == [b'* QUOTA "" (MESSAGE 2 2)\r\n'], r.untagged
    finally:
        c.close()


def test_imaplib_getquotaroot(srv):
    import imaplib
    from postern_harness import client_ctx
    user = new_user(srv)
    admin_ok(srv.admin_config, "user", "set", user[0], "quota=1048576")
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                          ssl_context=client_ctx(), timeout=15)
    try:
        m.login(*user)
        typ, data = m.getquotaroot("INBOX")
        assert typ == "OK", data
        assert data == [[b'"INBOX" ""'], [b'"" (STORAGE 0 1024)']], data
        typ, data = m.setquota('""', "(STORAGE 10)")
        assert typ == "NO", data
    finally:
        m.logout()
