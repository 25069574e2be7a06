"""Exit codes that tell failures apart: 0 pass, 1 violation, 2 bad input, 3 incomplete, 4 internal error."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import mattrace
from mattrace.cli import _common, _traces, main

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    """A sealed run that books a flight."""

    @mattrace.tool(side_effect=True)
    def book_flight(to: str) -> str:
        return "booked"

    with mattrace.record("booking", dir=tmp_path) as rec:
        mattrace.message("user", "book me a flight, yes", to="booker")
        with mattrace.agent("booker"):
            book_flight("OSL")
    assert rec.path is not None
    return rec.path


@pytest.fixture
def crash_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory crash reports go to, private to the test."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def test_an_internal_error_exits_4_with_one_line_naming_the_traceback_file(
        crash_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A handler that raises: exit 4, one line on stderr (no traceback), the traceback in a file."""
    def broken(args: object) -> int:
        raise ValueError("something inside mattrace went wrong")

    monkeypatch.setattr(_traces, "_schema", broken)
    code = main(["schema"])
    out, err = capsys.readouterr()
    assert code == _common.EXIT_INTERNAL == 4
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("mattrace: internal error in test_cli_exit_codes.py:")
    assert "ValueError: something inside mattrace went wrong" in err and "Please report it" in err
    (report,) = crash_dir.glob("mattrace-crash-*.txt")
    assert str(report) in err
    text = report.read_text()
    assert "command: mattrace schema" in text and text.count("Traceback (most recent call last)") == 1
    assert 'raise ValueError("something inside mattrace went wrong")' in text


def test_an_internal_error_in_a_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    """Run as a program: still exit 4 and a single stderr line."""
    code = ("import sys, mattrace.cli, mattrace.cli._traces as t\n"
            "def boom(args): raise RuntimeError('boom')\n"
            "t._schema = boom\n"
            "sys.exit(mattrace.cli.main(['schema']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    (report,) = tmp_path.glob("mattrace-crash-*.txt")
    assert "RuntimeError: boom" in report.read_text()


def test_a_file_that_cannot_be_written_is_bad_input_not_a_crash(
        trace_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An OSError on a path the user gave is exit 2 with the path, not an internal error."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code = main(["ingest", str(trace_file), "--store", str(blocker / "store.duckdb")])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith(f"mattrace: error: {blocker}") and err.count("\n") == 1


def test_check_reports_a_vacuous_pass_and_strict_fails_it(
        trace_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt tool in a contract file: VACUOUS with a did-you-mean (exit 0); --strict exits 1."""
    contracts = tmp_path / "c.toml"
    contracts.write_text('[[contract]]\nuse = "confirmed_before"\ntool = "book_fligth"\n')
    code = main(["check", str(trace_file), "--contracts", str(contracts), "--width", "200"])
    out = capsys.readouterr().out
    assert code == 0
    assert "VACUOUS  confirmed before book_fligth" in out
    assert (f"{contracts}:1: tool 'book_fligth' never appears in the trace; did you mean 'book_flight'?"
            in out)
    assert "1 vacuous pass: the contract never applied" in out
    assert main(["check", str(trace_file), "--contracts", str(contracts), "--strict", "--json"]) == 1
    (data,) = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["verdicts"][0]["status"] == "fail"
    assert data["first_violation"]["reason"].startswith(f"vacuous: {contracts}:1: tool 'book_fligth'")
    assert main(["check", str(trace_file), "--contracts", str(contracts), "--json"]) == 0
    (data,) = json.loads(capsys.readouterr().out)
    assert data["vacuous"] == ["confirmed before book_fligth"]


def test_bad_usage_is_2(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse errors and unreadable inputs keep exit 2."""
    assert main(["check"]) == 2
    assert main(["show", "/nonexistent/trace.jsonl"]) == 2
    capsys.readouterr()


def test_docs_list_every_command_and_every_exit_code() -> None:
    """docs/cli.md names each command and the five exit codes; the README links it."""
    text = (ROOT / "docs" / "cli.md").read_text()
    from mattrace.cli import _LISTED

    for command in _LISTED:
        assert re.search(rf"`mattrace {command}\b", text), command
    for code, meaning in ((0, "pass"), (1, "violation"), (2, "bad input"), (3, "incomplete"), (4, "internal")):
        assert re.search(rf"\|\s*{code}\s*\|[^\n]*{meaning}", text, re.IGNORECASE), code
    assert "docs/cli.md" in (ROOT / "README.md").read_text()


VACUOUS_TEST = """
import pytest
import mattrace
from mattrace.contracts import never, step

@mattrace.tool(side_effect=True)
def book_flight(to: str) -> str:
    return "booked"

@pytest.mark.mattrace(contracts=[never(step.tool("book_fligth") & step.arg("to").eq("XXX")).named("no XXX")])
def test_book(mat):
    with mat.run(config={"model": "m"}):
        mattrace.message("user", "book", to="main")
        book_flight("OSL")
"""


def test_pytest_warns_about_a_vacuous_pass_and_passes_the_test(pytester: pytest.Pytester) -> None:
    """A contract that never applied: the test passes, the summary says which and why."""
    pytester.makepyfile(test_vac=VACUOUS_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "vacuous passes (1 in 1 test(s); the contract never applied*",
        "  no XXX: tool 'book_fligth' never appears in the trace; did you mean 'book_flight'? "
        "(test_vac.py::test_book [[]trial 0])"])


@pytest.mark.parametrize("how", ["option", "ini"])
def test_pytest_strict_fails_a_vacuous_pass(pytester: pytest.Pytester, how: str) -> None:
    """--mattrace-strict (or mattrace_strict = true) makes the vacuous pass fail the test."""
    pytester.makepyfile(test_vac=VACUOUS_TEST)
    if how == "ini":
        pytester.makeini("[pytest]\nmattrace_strict = true\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *(["--mattrace-strict"] if how == "option" else []))
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "FAIL  no XXX  [safety]" in out and "vacuous: tool 'book_fligth' never appears" in out


def test_check_of_several_traces_names_what_none_of_them_knows(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A name missing from every trace checked is listed once, with a suggestion from all the traces."""

    @mattrace.tool(side_effect=True)
    def book_flight(to: str) -> str:
        return "booked"

    paths = []
    for n, books in enumerate((True, False)):
        with mattrace.record(f"run{n}", dir=tmp_path) as rec:
            mattrace.message("user", "hello", to="booker")
            if books:
                with mattrace.agent("booker"):
                    book_flight("OSL")
        paths.append(str(rec.path))
    contracts = tmp_path / "c.toml"
    contracts.write_text('[[contract]]\nuse = "max_calls"\ntool = "book_fligth"\nn = 1\n')
    assert main(["check", *paths, "--contracts", str(contracts), "--width", "200"]) == 0
    out = capsys.readouterr().out
    # the run without a booking cannot suggest anything; the batch can
    assert "tool 'book_fligth' never appears in the trace\n" in out
    assert out.count("unknown name: ") == 1
    assert (f"unknown name: {contracts}:1: tool 'book_fligth' never appears in any of the traces checked; "
            "did you mean 'book_flight'?") in out
