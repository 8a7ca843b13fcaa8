"""Differential test of the Sieve interpreter against Pigeonhole.

Each case of tests/sieve/cases/ (NAME.sieve) runs on its message (a
'# message: FILE' line naming one of tests/sieve/messages/, default
plain.eml) with its envelope ('# from: ADDR', '# to: ADDR') twice: by
`postern sieve test` and by Pigeonhole's `sieve-test` (Debian's
dovecot-sieve, run as nobody with a private configuration that enables
editheader, vacation-seconds, spamtest(plus), virustest, include). Both
print "Performed actions" and "Implicit keep"; the normalised lists must be
equal. A script that does not compile must fail in both; a run that fails
must end in the implicit keep in both. Intentional differences are listed
in tests/sieve/DIFFERENCES.md; a case of one of them names it in a
'# postern-only: REASON' line and is compared with its '# expect:' lines
instead.
"""

import os
import pathlib
import pwd
import re
import shutil
import subprocess
import tempfile

import pytest

from postern_harness import REPO, postern_bin

CASES = REPO / "tests" / "sieve" / "cases"
MESSAGES = REPO / "tests" / "sieve" / "messages"
SIEVE_TEST = "/usr/bin/sieve-test"
DEFAULT_FROM = "sender@example.org"
DEFAULT_TO = "recipient@example.com"
# A fixed "now" for currentdate (2026-12-07 12:00:00 UTC); Pigeonhole has
# no such option, so cases compare currentdate only where the day does
# not matter.
PIGEONHOLE_CONF = """
mail_location = maildir:{home}/mail
plugin {{
  sieve = file:{home}/personal
  sieve_global = {home}/global
  sieve_extensions = +editheader +vacation-seconds +spamtest +spamtestplus +virustest
  sieve_spamtest_status_type = score
  sieve_spamtest_status_header = X-Spam-Score
  sieve_spamtest_max_value = 10
  sieve_virustest_status_type = score
  sieve_virustest_status_header = X-Virus-Score
  sieve_virustest_max_value = 5
}}
"""


def case_files():
    return sorted(p for p in CASES.glob("*.sieve"))


def meta(script_text):
    """The '# key: value' lines at the top of a case."""
    m = {"expect": []}
    for line in script_text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "expect":
            m["expect"].append(value.strip())
        else:
            m[key] = value.strip()
    return m


def normalise(stdout):
    """The action lines of a sieve-test style report, blank lines out,
    flag lists lowercased and sorted (Pigeonhole lowercases system flags
    and orders them its own way; IMAP flags are case-insensitive)."""
    start = stdout.find("Performed actions:")
    if start < 0:
        return ["NO-REPORT"]
    out = []
    for line in stdout[start:].splitlines():
        if not line.strip():
            continue
        m = re.match(r"^(\s*\+ add IMAP flags:)(.*)$", line)
        if m:
            flags = sorted(f.lower() for f in m.group(2).split())
            line = m.group(1) + " " + " ".join(flags)
        out.append(line.rstrip())
    return out


def spam_args(message):
    """postern's inputs for spamtest/virustest: the headers Pigeonhole is
    configured to read."""
    args = []
    text = message.read_text(errors="replace")
    m = re.search(r"^X-Spam-Score:\s*(\d+)", text, re.M | re.I)
    if m:
        # Pigeonhole scales a score of 0..max to RFC 5235's 1..10
        score = int(m.group(1))
        args += ["--spam-score", str(1 + score * 9 // 10),
                 "--spam-percent", str(score * 10)]
    m = re.search(r"^X-Virus-Score:\s*(\d+)", text, re.M | re.I)
    if m:
        args += ["--virus-score", m.group(1)]
    return args


def run_postern(case, message, env_from, env_to, home):
    cmd = [postern_bin(), "sieve", "test", str(case), str(message),
           "--from", env_from, "--to", env_to,
           "--global-dir", str(home / "global")] + spam_args(message)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode == 1 and "Performed actions:" not in p.stdout:
        return ["COMPILE-ERROR"], p
    if p.returncode == 1:
        return ["RUNTIME-ERROR"], p
    assert p.returncode == 0, p.stderr
    return normalise(p.stdout), p


def run_pigeonhole(case, message, env_from, env_to, home):
    cmd = [SIEVE_TEST, "-c", str(home / "dovecot.conf"),
           "-f", env_from, "-r", env_to, str(case), str(message)]
    env = dict(os.environ, HOME=str(home))
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "nobody", "--", "env",
               "HOME=%s" % home] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env=env)
    if "failed to compile" in p.stderr or p.returncode == 89:
        return ["COMPILE-ERROR"], p
    if "resolved with successful implicit keep" in p.stderr:
        return ["RUNTIME-ERROR"], p
    assert p.returncode == 0, p.stderr
    return normalise(p.stdout), p


@pytest.fixture(scope="module")
def home():
    """A directory nobody may read and write: sieve-test's home, mail
    location, personal and global scripts (copies of the cases' include
    scripts), and a copy of the cases and messages."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="sieve-diff-"))
    for sub in ("mail", "personal", "global", "cases", "messages"):
        (d / sub).mkdir()
    for p in (CASES / "include").glob("*.sieve"):
        shutil.copy(p, d / "personal" / p.name)
        shutil.copy(p, d / "cases" / p.name)
    for p in (CASES / "global").glob("*.sieve"):
        shutil.copy(p, d / "global" / p.name)
    for p in CASES.glob("*.sieve"):
        shutil.copy(p, d / "cases" / p.name)
    for p in MESSAGES.glob("*.eml"):
        shutil.copy(p, d / "messages" / p.name)
    (d / "dovecot.conf").write_text(PIGEONHOLE_CONF.format(home=d))
    if os.getuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for root, dirs, files in os.walk(d):
            for name in dirs + files + [""]:
                path = os.path.join(root, name)
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_corpus_is_large_enough():
    assert len(case_files()) >= 200


@pytest.mark.parametrize("case", case_files(), ids=lambda p: p.stem)
def test_same_actions_as_pigeonhole(case, home):
    text = case.read_text()
    m = meta(text)
    message = home / "messages" / m.get("message", "plain.eml")
    assert message.exists(), message
    env_from = m.get("from", DEFAULT_FROM)
    env_to = m.get("to", DEFAULT_TO)
    local = home / "cases" / case.name
    ours, pp = run_postern(local, message, env_from, env_to, home)
    if "postern-only" in m:
        assert [l.strip() for l in ours] == m["expect"], (
            pp.stdout + pp.stderr)
        return
    theirs, ph = run_pigeonhole(local, message, env_from, env_to, home)
    assert ours == theirs, (
        "\n--- postern:\n" + pp.stdout + pp.stderr +
        "\n--- sieve-test:\n" + ph.stdout + ph.stderr)
