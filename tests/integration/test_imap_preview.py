"""PREVIEW (RFC 8970): FETCH PREVIEW and PREVIEW (LAZY) give at most 256
characters of the first inline text part (text/plain before text/html),
decoded (transfer encoding, charset), HTML as text (no tags, style sheets,
scripts; entities decoded), white space collapsed; "" for a message
without text; made at delivery and kept, and for a body stored before
previews were kept made on request (NIL under LAZY)."""

import sqlite3

import pytest

from imap_helpers import (imap_caps, login, new_user, parse_fetch,
                          start_again, start_imap_server)


@pytest.fixture(scope="module")
def srv(module_postern_factory, default_cert, tmp_path_factory):
    return start_imap_server(module_postern_factory,
                             tmp_path_factory.mktemp("imap-preview"),
                             default_cert)


@pytest.fixture
def user(srv):
    return new_user(srv)


@pytest.fixture
def c(srv, user):
    conn = login(srv, *user)
    yield conn
    conn.close()


HEAD = b"From: a@other.test\r\nTo: b@example.test\r\nSubject: p\r\n"


def append(c, msg, mailbox="INBOX"):
    tag = next(c.tags)
    c.send(b"%s APPEND %s {%d+}\r\n%s\r\n" % (tag, mailbox.encode(),
                                              len(msg), msg))
    r = c.read_reply(tag)
    assert r.status == "OK", r.tagged


def previews(c, items="(PREVIEW)"):
    r = c.ok("FETCH 1:* " + items)
    out = {}
    for l in r.untagged:
        if b" FETCH " in l:
            n, it = parse_fetch(l)
            out[n] = None if it["PREVIEW"] is None else \
                bytes(it["PREVIEW"]).decode("utf-8")
    return out


def one(c, msg, items="(PREVIEW)"):
    append(c, msg)
    c.select("INBOX")
    return previews(c, items)[1]


def test_capability(c):
    assert "PREVIEW" in imap_caps(c.ok("CAPABILITY").untagged[0])


def test_plain_text_with_white_space_collapsed(c):
    msg = HEAD + b"\r\n\r\n  Hello   world,\r\n\r\n\tthis is  a test.\r\n"
    assert one(c, msg) == "Hello world, this is a test."
    r = c.ok("FETCH 1 (PREVIEW)")
    assert r.untagged == [
        b'* 1 FETCH (PREVIEW "Hello world, this is a test.")\r\n'], \
        r.untagged


def test_at_most_256_characters_not_bytes(c):
    msg = HEAD + (b"Content-Type: text/plain; charset=utf-8\r\n"
                  b"Content-Transfer-Encoding: 8bit\r\n\r\n") + \
        "é".encode() * 300 + b"\r\n"
    p = one(c, msg)
    assert p == "é" * 256, (len(p), p[:10])


def test_plain_part_of_an_alternative_is_preferred(c):
    msg = HEAD + (b"MIME-Version: 1.0\r\n"
                  b'Content-Type: multipart/alternative; boundary="b"\r\n'
                  b"\r\n--b\r\nContent-Type: text/html\r\n\r\n"
                  b"<p>The HTML version</p>\r\n"
                  b"--b\r\nContent-Type: text/plain\r\n\r\n"
                  b"The plain version\r\n--b--\r\n")
    assert one(c, msg) == "The plain version"


def test_html_only_becomes_text(c):
    msg = HEAD + (b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
                  b"<html><head><title>T</title><style>p { color: red }"
                  b"</style></head><body><!-- hidden --><p>Hi &amp; "
                  b"welcome</p><script>alert(1)</script>"
                  b"<br>Bye&#33; &lt;3</body></html>\r\n")
    assert one(c, msg) == "Hi & welcome Bye! <3"


def test_transfer_encoding_and_charset_are_decoded(c):
    msg = HEAD + (b"Content-Type: text/plain; charset=iso-8859-1\r\n"
                  b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                  b"Caf=E9 cr=E8me=\r\n br=FBl=E9e\r\n")
    assert one(c, msg) == "Café crème brûlée"


def test_a_message_without_text_has_an_empty_preview(c):
    msg = HEAD + (b"MIME-Version: 1.0\r\n"
                  b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
                  b"--b\r\nContent-Type: application/pdf\r\n"
                  b"Content-Transfer-Encoding: base64\r\n\r\n"
                  b"JVBERi0xLjQK\r\n--b\r\nContent-Type: text/plain\r\n"
                  b"Content-Disposition: attachment; filename=a.txt\r\n\r\n"
                  b"attached, not shown\r\n--b--\r\n")
    assert one(c, msg) == ""


def test_lazy_and_syntax(c):
    append(c, HEAD + b"\r\nLazy is fine when cached.\r\n")
    c.select("INBOX")
    r = c.ok("FETCH 1 (UID PREVIEW (LAZY))")
    assert r.untagged == [
        b'* 1 FETCH (UID 1 PREVIEW "Lazy is fine when cached.")\r\n'], \
        r.untagged
    assert c.command("FETCH 1 (PREVIEW (EAGER))").status == "BAD"
    assert c.command("FETCH 1 (PREVIEW ())").status == "BAD"


def test_bodies_stored_before_previews_were_kept(srv, user):
    c = login(srv, *user)
    append(c, HEAD + b"\r\nAn old message.\r\n")
    c.close()
    rc = srv.stop()
    assert rc == 0, srv.log_text()
    db = sqlite3.connect(str(srv.mail_data / "store.db"))
    try:
        db.execute("UPDATE structures SET preview = NULL")
        db.commit()
    finally:
        db.close()
    start_again(srv)
    c = login(srv, *user)
    try:
        c.select("INBOX")
        assert previews(c, "(PREVIEW (LAZY))") == {1: None}
        assert previews(c) == {1: "An old message."}
    finally:
        c.close()
