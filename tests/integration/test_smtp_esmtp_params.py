"""The DSN parameters of MAIL and RCPT on port 25 as the wire shows them
(RFC 3461 §4): they are relayed to the next hop as given, so they must be
well formed: ENVID and ORCPT's address xtext, NOTIFY "NEVER" or SUCCESS,
FAILURE and DELAY once each, ORCPT with an address type. Found by
fuzz/fuzz_smtp_params.c."""

import pytest

from postern_harness import smtp_cmd, smtp_open, start_mail_server

SENDER_OK = b"250 2.1.0 Sender OK\r\n"
RCPT_OK = b"250 2.1.5 Recipient OK\r\n"


@pytest.fixture(scope="module")
def mx(module_postern_factory, default_cert, tmp_path_factory):
    return start_mail_server(
        module_postern_factory, tmp_path_factory.mktemp("mx"), default_cert,
        [("smtp", "smtp", "starttls")],
        users=[("alice@example.test", "alice-pw-1")])


@pytest.mark.parametrize("params,reply", [
    (b" ENVID=a=b", b"501 5.5.4 Bad ENVID parameter\r\n"),
    (b" ENVID=caf\xc3\xa9", b"501 5.5.4 Bad ENVID parameter\r\n"),
    (b" ENVID=a+2", b"501 5.5.4 Bad ENVID parameter\r\n"),
    (b" ENVID=", b"501 5.5.4 Bad ENVID parameter\r\n"),
    (b" RET=HDRS ENVID=QQ+2B314159", SENDER_OK),
])
def test_envid_must_be_xtext(mx, params, reply):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, b"MAIL FROM:<s@remote.test>" + params).raw == \
            [reply]


@pytest.mark.parametrize("params,reply", [
    (b" NOTIFY=SUCCESS,NEVER", b"501 5.5.4 Bad NOTIFY parameter\r\n"),
    (b" NOTIFY=SUCCESS,,DELAY", b"501 5.5.4 Bad NOTIFY parameter\r\n"),
    (b" NOTIFY=FAILURE,FAILURE", b"501 5.5.4 Bad NOTIFY parameter\r\n"),
    (b" NOTIFY=SOMETIMES", b"501 5.5.4 Bad NOTIFY parameter\r\n"),
    (b" ORCPT=alice@example.test", b"501 5.5.4 Bad ORCPT parameter\r\n"),
    (b" ORCPT=rfc822;a=b@example.test", b"501 5.5.4 Bad ORCPT parameter\r\n"),
    (b" ORCPT=rfc822;", b"501 5.5.4 Bad ORCPT parameter\r\n"),
    (b" NOTIFY=never", RCPT_OK),
    (b" NOTIFY=delay,Success,FAILURE ORCPT=rfc822;Alice+2B1@example.test",
     RCPT_OK),
])
def test_notify_and_orcpt_must_be_well_formed(mx, params, reply):
    conn, _ = smtp_open(mx, "smtp")
    with conn:
        assert smtp_cmd(conn, "MAIL FROM:<s@remote.test>").raw == [SENDER_OK]
        assert smtp_cmd(conn, b"RCPT TO:<alice@example.test>" +
                        params).raw == [reply]

