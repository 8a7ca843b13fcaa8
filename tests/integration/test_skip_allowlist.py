"""The skip policy of conftest.py, proven on planted test files run by a
pytest of their own with conftest.py as a plugin: a skip (or xfail, or
a module that skips itself, as importorskip does) fails the run, naming
the test, unless its reason is on tests/skip-allowlist.txt; an
allow-listed skip passes and is counted in the summary line the Makefile
prints."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def run_planted(tmp_path, source):
    """Runs pytest on a file holding source; returns (returncode,
    output, summary line written to $POSTERN_TEST_SUMMARY)."""
    test = tmp_path / "test_planted.py"
    test.write_text(source)
    summary = tmp_path / "summary.txt"
    env = dict(os.environ, PYTHONPATH=str(HERE),
               POSTERN_TEST_SUMMARY=str(summary))
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-ra", "-p",
         "no:cacheprovider", "-p", "conftest", str(test)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr, summary.read_text()


@pytest.mark.parametrize("body, what", [
    ('def test_x():\n    pytest.skip("swaks is not installed")\n',
     "test_planted.py::test_x: skipped (swaks is not installed)"),
    ('@pytest.mark.skipif(True, reason="no dnsmasq")\n'
     'def test_x():\n    pass\n',
     "test_planted.py::test_x: skipped (no dnsmasq)"),
    ('@pytest.mark.xfail(reason="known bug")\n'
     'def test_x():\n    assert False\n',
     "test_planted.py::test_x: skipped (xfail: known bug)"),
    ('@pytest.mark.xfail(reason="known bug")\n'
     'def test_x():\n    pass\n',
     "test_planted.py::test_x: skipped (xfail: known bug)"),
    ('pytest.importorskip("no_such_module_here")\n'
     'def test_x():\n    pass\n',
     "test_planted.py: skipped (could not import 'no_such_module_here'"),
], ids=["skip", "skipif", "xfail", "xpass", "importorskip"])
def test_a_skip_not_allow_listed_fails_naming_the_test(tmp_path, body,
                                                        what):
    rc, out, summary = run_planted(tmp_path,
                                   "import pytest\n\n" + body)
    assert rc != 0, out
    assert "REFUSED SKIP " in out and what in out, out
    assert "tests/skip-allowlist.txt" in out, out
    assert " passed=0 skipped=0 " in summary, summary


def test_an_allow_listed_skip_passes_and_is_counted(tmp_path):
    rc, out, summary = run_planted(
        tmp_path, "import pytest\n\n"
        "def test_ok():\n    pass\n\n"
        "@pytest.mark.skipif(True, reason='needs root (CI runs as root) "
        "for port 25')\n"
        "def test_root():\n    pass\n")
    assert rc == 0, out
    assert "REFUSED" not in out, out
    assert summary.startswith("test_planted.py passed=1 skipped=1 "
                              "failed=0 errors=0 exit=0 "), summary
    assert "    skipped (allow-listed): needs root (CI runs as root) for " \
        "port 25\n" in summary, summary
