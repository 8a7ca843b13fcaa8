"""Reading delivered mail straight from a server's data directory, read
only, until IMAP can fetch it: the SQLite database DATA/store.db and the
message files DATA/blobs/xx/<blob id> (src/store/store_sqlite.h). Every
test that looks into the store goes through this module, so that it can
be replaced by IMAP FETCH later.

Also the parsing of the trace fields postern puts in front of a message
(Return-Path, Received; RFC 5321 §4.4) and of the fields submission adds
(Date, Message-ID; RFC 6409 §8).
"""

import re
import sqlite3
import urllib.parse
from pathlib import Path


class StorePeek:
    """Read-only view of one data directory."""

    def __init__(self, data_dir):
        self.data_dir = Path(data_dir)
        self.db_path = self.data_dir / "store.db"

    def _db(self):
        assert self.db_path.is_file(), \
            "no database at %s; the data directory holds: %s" % (
                self.db_path, sorted(p.name for p in self.data_dir.iterdir()))
        uri = "file:%s?mode=ro" % urllib.parse.quote(str(self.db_path))
        db = sqlite3.connect(uri, uri=True, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def _query(self, sql, args=()):
        db = self._db()
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    # -- messages ------------------------------------------------------------

    def blob_path(self, blob):
        """DATA/blobs/xx/<id>, xx = (id >> 8) & 0xff in hex."""
        path = self.data_dir / "blobs" / ("%02x" % ((blob >> 8) & 0xff)) / \
            str(blob)
        if path.is_file():
            return path
        found = sorted((self.data_dir / "blobs").glob("*/%d" % blob))
        assert found, "no file for blob %d under %s" % (blob,
                                                       self.data_dir)
        return found[0]

    def blob_bytes(self, blob):
        return self.blob_path(blob).read_bytes()

    def message_rows(self, address, mailbox="INBOX"):
        """Rows (uid, blob, size, flags) of address's mailbox, by UID."""
        return self._query(
            "SELECT m.uid, m.blob, m.size, m.flags FROM messages m "
            "JOIN mailboxes b ON m.mailbox = b.id "
            "JOIN accounts a ON b.account = a.id "
            "WHERE a.address = ? AND b.name = ? ORDER BY m.uid",
            (address.lower(), mailbox))

    def messages(self, address, mailbox="INBOX"):
        """The stored bytes of every message of address's mailbox, by
        UID."""
        return [self.blob_bytes(r["blob"])
                for r in self.message_rows(address, mailbox)]

    def count(self, address, mailbox="INBOX"):
        return len(self.message_rows(address, mailbox))

    def total_messages(self):
        """Messages in every mailbox of every account."""
        return self._query("SELECT count(*) FROM messages")[0][0]

    def find(self, address, needle, mailbox="INBOX"):
        """The stored messages of address that contain needle (bytes)."""
        return [m for m in self.messages(address, mailbox) if needle in m]

    # -- the outbound queue ------------------------------------------------

    def queue_tables(self):
        return [r[0] for r in self._query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND "
            "(name LIKE '%queue%' OR name LIKE '%outbound%')")]

    def queue_rows(self):
        """Every row of the outbound queue table(s) as dicts (with a
        '_table' key)."""
        rows = []
        for t in self.queue_tables():
            for r in self._query('SELECT * FROM "%s"' % t.replace('"', '""')):
                d = dict(r)
                d["_table"] = t
                rows.append(d)
        return rows

    def queue_rows_for(self, rcpt):
        """Queue rows in which some text column equals or contains the
        recipient address."""
        out = []
        for r in self.queue_rows():
            for k, v in r.items():
                if isinstance(v, bytes):
                    v = v.decode("utf-8", "replace")
                if k != "_table" and isinstance(v, str) and rcpt in v:
                    out.append(r)
                    break
        return out


# --- the trace fields --------------------------------------------------------

RECEIVED_RE = re.compile(
    rb"^Received: from (?P<helo>\S+) \(\[(?P<peer>[^\]]+)\]\)\r\n"
    rb"\tby (?P<by>\S+) \(postern\) with (?P<with>[A-Z0-9]+) id (?P<id>\S+)"
    rb"(?:\r\n\t\(using (?P<tls>\S+) with cipher (?P<cipher>[^)]+)\))?"
    rb"(?:\r\n\tfor <(?P<for>[^>]*)>)?"
    rb";\r\n\t(?P<date>[^\r\n]+)\r\n$")


def split_trace(stored):
    """Splits a stored message into (Return-Path line, Received field,
    the rest). The Return-Path must be the first line and our Received
    field the next one (RFC 5321 §4.4)."""
    assert stored.startswith(b"Return-Path: <"), \
        "stored message does not start with Return-Path: %r" % stored[:200]
    eol = stored.index(b"\r\n") + 2
    rp, rest = stored[:eol], stored[eol:]
    assert rest.startswith(b"Received: "), \
        "no Received field after Return-Path: %r" % stored[:300]
    # The field goes on while lines start with white space.
    end = 0
    while True:
        nl = rest.index(b"\r\n", end) + 2
        end = nl
        if rest[nl:nl + 1] not in (b" ", b"\t"):
            break
    return rp, rest[:end], rest[end:]


def parse_received(field):
    """The parts of our Received field as a dict of str (None when
    absent); fails when the field does not have our form."""
    m = RECEIVED_RE.match(field)
    assert m, "Received field not in the expected form: %r" % field
    return {k: (v.decode() if v is not None else None)
            for k, v in m.groupdict().items()}


ADDED_DATE_RE = re.compile(rb"Date: ([^\r\n]+)\r\n")
ADDED_MSGID_RE = re.compile(rb"Message-ID: <([^>\r\n]+)>\r\n")
