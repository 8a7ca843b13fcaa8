"""`postern sieve check` and `postern sieve test`: what an administrator
(and later ManageSieve's PUTSCRIPT) sees: exit status, the error line,
the --json form of the action list, includes from the script's folder,
and a hostile script ending in the implicit keep."""

import json

from postern_harness import run_postern

MESSAGE = (
    "From: Alice <alice+lists@example.org>\r\n"
    "To: bob@example.com\r\n"
    "Subject: [acme] release\r\n"
    "Message-ID: <cli-1@example.org>\r\n"
    "\r\n"
    "Hello.\r\n")


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_check_ok(tmp_path):
    s = write(tmp_path, "ok.sieve", 'require "fileinto"; fileinto "A";\n')
    p = run_postern("sieve", "check", s)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "%s: ok\n" % s


def test_check_names_the_line(tmp_path):
    s = write(tmp_path, "bad.sieve",
              'require "fileinto";\nif true {\n  filein "x";\n}\n')
    p = run_postern("sieve", "check", s)
    assert p.returncode == 1
    assert p.stderr == "%s: line 3: unknown command 'filein'\n" % s
    p = run_postern("sieve", "check", s, "--json")
    assert p.returncode == 1
    assert json.loads(p.stdout) == {
        "ok": False, "line": 3, "error": "unknown command 'filein'"}


def test_usage(tmp_path):
    assert run_postern("sieve").returncode == 2
    assert run_postern("sieve", "test", "x").returncode == 2
    assert run_postern("sieve", "frobnicate", "x").returncode == 2
    p = run_postern("sieve", "check", tmp_path / "missing.sieve")
    assert p.returncode == 1
    assert "cannot read" in p.stderr


def test_json_actions(tmp_path):
    s = write(tmp_path, "s.sieve", """
require ["fileinto", "imap4flags", "mailbox", "copy", "variables",
         "subaddress", "vacation", "editheader"];
if address :detail :matches "from" "*" {
    fileinto :create :flags "\\\\Seen" "Lists.${1}";
}
redirect :copy "archive@example.net";
vacation :days 3 :subject "away" "Back on Monday";
addheader "X-Filtered" "yes";
""")
    m = write(tmp_path, "m.eml", MESSAGE)
    p = run_postern("sieve", "test", s, m, "--from", "alice@example.org",
                    "--to", "bob@example.com", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["ok"] is True
    assert r["implicit_keep"] is False
    acts = r["actions"]
    assert [a["type"] for a in acts] == ["fileinto", "redirect", "vacation"]
    assert acts[0]["mailbox"] == "Lists.lists"
    assert acts[0]["flags"] == ["\\Seen"]
    assert acts[0]["create"] is True
    assert acts[1] == {"type": "redirect", "line": 7,
                       "address": "archive@example.net", "copy": True}
    assert acts[2]["seconds"] == 3 * 86400
    assert acts[2]["subject"] == "away"
    assert acts[2]["reason"] == "Back on Monday"
    assert r["edits"] == [{"op": "addheader", "name": "X-Filtered",
                           "value": "yes"}]


def test_include_from_the_script_folder(tmp_path):
    write(tmp_path, "common.sieve", 'require "fileinto"; fileinto "Common";\n')
    s = write(tmp_path, "main.sieve",
              'require "include"; include "common"; '
              'include :optional "absent";\n')
    m = write(tmp_path, "m.eml", MESSAGE)
    p = run_postern("sieve", "test", s, m)
    assert p.returncode == 0, p.stderr
    assert " * store message in folder: Common\n" in p.stdout
    s = write(tmp_path, "main2.sieve", 'require "include"; include "absent";\n')
    p = run_postern("sieve", "check", s)
    assert p.returncode == 1
    assert "included personal script 'absent' not found" in p.stderr


def test_hostile_script_ends_in_implicit_keep(tmp_path):
    tests = ", ".join(['header :matches "subject" "*a*a*a*a*a*a*a*a*zz"']
                      * 3000)
    s = write(tmp_path, "slow.sieve",
              "if anyof(%s) { discard; }\n" % tests)
    m = write(tmp_path, "m.eml", MESSAGE.replace(
        "[acme] release", "a" * 200))
    p = run_postern("sieve", "test", s, m, timeout=60)
    assert p.returncode == 1
    assert "too much CPU" in p.stderr
    assert p.stdout.endswith(
        "Implicit keep:\n\n * store message in folder: INBOX\n\n")
    assert " * discard" not in p.stdout
