"""The pytest entry module: every session loads it, so it must not import mattrace until a test uses it."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

PLAIN_TESTS = """
def test_one():
    assert 1 + 1 == 2

def test_two():
    assert "a" in "abc"
"""

SPY = """
import json, pathlib, sys

def pytest_sessionfinish(session):
    loaded = sorted(m for m in sys.modules if m == "mattrace" or m.startswith("mattrace."))
    pathlib.Path("loaded.json").write_text(json.dumps(loaded))
"""


def _loaded(pytester: pytest.Pytester) -> list[str]:
    import json

    return list(json.loads((pytester.path / "loaded.json").read_text()))


@pytest.mark.slow
def test_importing_the_entry_module_does_not_import_mattrace() -> None:
    """``python -X importtime -c 'import _mattrace_pytest'`` lists no mattrace module."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import _mattrace_pytest"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert "_mattrace_pytest" in imported
    assert not [m for m in imported if m.split(".")[0] == "mattrace"]


@pytest.mark.slow
def test_a_session_that_never_uses_mattrace_never_imports_it(pytester: pytest.Pytester) -> None:
    """With the plugin installed, a suite without the marker or the mat fixture runs without importing mattrace,
    and writes nothing under .mattrace."""
    pytester.makeconftest(SPY)
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert _loaded(pytester) == []
    assert not (pytester.path / ".mattrace").exists()


@pytest.mark.slow
def test_the_plugin_loads_when_a_test_uses_the_marker(pytester: pytest.Pytester) -> None:
    """The same session with one marked test loads mattrace, records the run and prints the summary."""
    pytester.makeconftest(SPY)
    pytester.makepyfile(test_plain=PLAIN_TESTS, test_marked="""
import mattrace, pytest

@pytest.mark.mattrace(contracts=[])
def test_marked(mat):
    with mat.run():
        mattrace.message("planner", "hello")
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert "mattrace.pytest_plugin" in _loaded(pytester)
    assert list((pytester.path / ".mattrace" / "traces").rglob("*.jsonl"))
    result.stdout.fnmatch_lines(["*mattrace*"])


@pytest.mark.slow
def test_a_bad_option_is_a_usage_error_even_when_no_test_uses_mattrace(pytester: pytest.Pytester) -> None:
    """A mistyped option fails the session at start-up, without importing mattrace for it."""
    pytester.makeconftest(SPY)
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--mattrace-concurrency", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mattrace-concurrency must be >= 1, got 0*"])


@pytest.mark.slow
def test_naming_the_plugin_package_with_autoload_off_still_runs_the_plugin(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """``-p mattrace.pytest_plugin`` (the old spelling) with autoloading off loads the hooks, so a contract
    violation still fails its test instead of passing unchecked."""
    pytester.makepyfile(test_marked="""
import mattrace, pytest
from mattrace.contracts import never, step

@pytest.mark.mattrace(contracts=[never(step.agent("intruder")).named("no intruder")])
def test_marked(mat):
    with mat.run():
        mattrace.message("intruder", "hello")
""")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "mattrace.pytest_plugin")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no intruder*"])
