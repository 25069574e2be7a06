"""Incomplete traces: a cut-off recording never passes what needs the end of the run."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import mattrace
from mattrace.cli import main
from mattrace.contracts import Status, check, eventually, never, responds, step, terminates, within
from mattrace.errors import TornTailWarning
from mattrace.recording.recorder import Recorder
from mattrace.store import Store
from mattrace.tracefile import read_trace_file

pytest_plugins = ["pytester"]

CONTRACTS = [
    terminates(max_steps=50),
    within(steps=50).named("short"),
    eventually(step.message(agent="writer")).named("writer answers"),
    eventually(step.tool("lookup")).named("looked up"),
    responds(step.message(agent="user"), step.message(agent="writer")).named("user answered"),
    never(step.tool("lookup") & step.arg("order").eq(13)).named("no order 13"),
    never(step.tool("lookup") & step.arg("order").eq(42)).named("no order 42"),
]


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A sealed run: the user asks, order 42 is looked up (a violation), the writer answers."""

    @mattrace.tool
    def lookup(order: int) -> str:
        return "shipped"

    with mattrace.record("run", dir=tmp_path) as rec:
        mattrace.message("user", "where is order 42?", to="writer")   # 0
        lookup(42)                                                     # 1
        mattrace.message("writer", "it shipped", to="user")            # 2
    assert rec.path is not None
    return rec.path


def _cut(path: Path, keep: int) -> Path:
    """The file with its header and ``keep`` step lines, then half of the next line (a crash)."""
    lines = path.read_bytes().splitlines(keepends=True)
    torn = path.with_name("torn.jsonl")
    torn.write_bytes(b"".join(lines[:1 + keep]) + lines[1 + keep][:30])
    return torn


def _statuses(report: mattrace.Report) -> dict[str, Status]:
    return {v.contract: v.status for v in report.verdicts}


def test_a_torn_trace_leaves_what_needs_the_end_undecided(recorded: Path) -> None:
    """Liveness and run budgets are INCOMPLETE; settled verdicts stand; a violation still fails."""
    torn = _cut(recorded, 2)   # the user's question and the lookup; the writer's answer is lost
    with pytest.warns(TornTailWarning):
        report = check(torn, CONTRACTS)
    assert _statuses(report) == {
        "terminates": Status.INCOMPLETE, "short": Status.INCOMPLETE, "writer answers": Status.INCOMPLETE,
        "looked up": Status.PASS,            # settled at step 1: the lost steps cannot undo it
        "user answered": Status.INCOMPLETE,  # the answer may be in what was lost
        "no order 13": Status.PASS,          # safety: no violation in any step recorded
        "no order 42": Status.FAIL,          # safety: violated at step 1, whatever came after
    }
    assert not report.ok and not report.complete and report.incomplete is not None
    assert "not sealed" in report.incomplete and "torn" in report.incomplete
    assert report.verdicts[0].reason is not None and "needs the end of the run" in report.verdicts[0].reason


def test_the_same_run_sealed_is_decided(recorded: Path) -> None:
    """The sealed file: every verdict is PASS or FAIL and the report is complete."""
    report = check(recorded, CONTRACTS)
    assert report.complete and report.incomplete is None
    assert set(_statuses(report).values()) == {Status.PASS, Status.FAIL}


def test_a_file_that_lost_only_its_seal_still_holds_the_run(recorded: Path) -> None:
    """The end step was written; only the seal is missing: the run's end is there to judge."""
    lines = recorded.read_bytes().splitlines(keepends=True)
    unsealed = recorded.with_name("unsealed.jsonl")
    unsealed.write_bytes(b"".join(lines[:-1]))
    result = read_trace_file(unsealed)
    assert not result.sealed and result.trace.incomplete is None
    assert check(result.trace, CONTRACTS).complete


def test_an_abandoned_or_running_recorder_gives_an_incomplete_trace(tmp_path: Path) -> None:
    """A run still going, or abandoned before its end step, is not a whole run."""
    rec = Recorder("live", dir=tmp_path)
    rec.append(mattrace.StepKind.MESSAGE, agent="user", content="hi", target="writer")
    assert rec.trace.incomplete == "run 'live' has not ended yet"
    assert check(rec.trace, [terminates()]).verdicts[0].status is Status.INCOMPLETE
    rec.abandon()
    assert rec.trace.incomplete == "run 'live' was abandoned before its end step"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornTailWarning)
        assert mattrace.load(rec.path).incomplete is not None
    closed = Recorder("done", dir=tmp_path)
    closed.close()
    assert closed.trace.incomplete is None


def test_check_exits_3_on_an_incomplete_trace_and_1_when_a_contract_failed(
        recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`mattrace check`: undecided contracts exit 3 with INCOMPLETE lines; a violation wins with 1."""
    contracts = tmp_path / "c.toml"
    contracts.write_text('[[contract]]\nuse = "terminates"\n\n[[contract]]\nuse = "never"\n'
                         'step = { tool = "lookup", args = { order = 13 } }\n')
    torn = _cut(recorded, 2)
    code = main(["check", str(torn), "--contracts", str(contracts), "--width", "120"])
    out, err = capsys.readouterr()
    assert code == 3, out
    assert "1 of 2 contracts undecided" in out and "INCOMPLETE  terminates" in out
    assert "mattrace: warning:" in err and "Traceback" not in err
    code = main(["check", str(torn), "--contracts", str(contracts), "--json"])
    (data,) = json.loads(capsys.readouterr().out)
    assert code == 3 and data["complete"] is False and data["verdicts"][0]["status"] == "incomplete"
    failing = tmp_path / "f.toml"
    failing.write_text('[[contract]]\nuse = "terminates"\n\n[[contract]]\nuse = "never"\n'
                       'step = { tool = "lookup", args = { order = 42 } }\n')
    assert main(["check", str(torn), "--contracts", str(failing)]) == 1
    assert main(["check", str(recorded), "--contracts", str(contracts)]) == 0


def test_verify_exits_3_on_an_unsealed_file_and_1_on_an_altered_one(
        recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unsealed file is incomplete (3); an edited one is a violation (1), and wins."""
    torn = _cut(recorded, 2)
    assert main(["verify", str(torn)]) == 3
    altered = recorded.with_name("altered.jsonl")
    altered.write_bytes(recorded.read_bytes().replace(b"order 42", b"order 43"))
    assert main(["verify", str(torn), str(altered)]) == 1
    assert main(["verify", str(recorded)]) == 0
    capsys.readouterr()


def test_the_store_marks_incomplete_verdicts(recorded: Path, tmp_path: Path) -> None:
    """`mattrace ingest --contracts` stores INCOMPLETE verdicts with their reason, counted per trace."""
    contracts = tmp_path / "c.toml"
    contracts.write_text('[[contract]]\nuse = "terminates"\n')
    torn = _cut(recorded, 2)
    database = tmp_path / "s.duckdb"
    assert main(["ingest", str(torn), "--contracts", str(contracts), "--store", str(database)]) == 0
    with Store.open(database, read_only=True) as store:
        (row,) = store.query("SELECT status, reason FROM verdicts")[1]
        assert row[0] == "incomplete" and "not sealed" in row[1]
        assert store.query("SELECT incomplete, compliant, sealed FROM trace_metrics")[1] == [(1, False, False)]


INCOMPLETE_TEST = """
import pytest
import mattrace
from mattrace.contracts import never, step, terminates

@pytest.mark.mattrace(contracts=[terminates(), never(step.tool("lookup"))])
def test_cut_off(mat):
    with mat.run(config={"model": "m"}) as run:
        mattrace.message("user", "hi", to="writer")
        run.recorder.abandon()      # the run's end step is never written
"""


def test_pytest_fails_a_test_whose_trace_is_incomplete(pytester: pytest.Pytester) -> None:
    """A run without its end cannot pass terminates(): the test fails and says why."""
    pytester.makepyfile(test_cut=INCOMPLETE_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "mattrace: 1 incomplete trace (1 contract undecided" in out
    assert "INCOMPLETE  terminates" in out and "abandoned before its end step" in out


def test_the_store_and_the_report_flag_vacuous_and_incomplete_verdicts(recorded: Path, tmp_path: Path) -> None:
    """The verdicts table keeps the vacuous reason; the HTML report's trace list warns of both."""
    from mattrace.report.html import write_report

    contracts = tmp_path / "c.toml"
    contracts.write_text('[[contract]]\nuse = "terminates"\n\n[[contract]]\nuse = "never"\nname = "no lookop"\n'
                         'step = { tool = "lookop" }\n')
    database = tmp_path / "s.duckdb"
    assert main(["ingest", str(_cut(recorded, 2)), "--contracts", str(contracts), "--store", str(database)]) == 0
    with Store.open(database, read_only=True) as store:
        rows = store.query("SELECT contract, status, vacuous FROM verdicts ORDER BY contract")[1]
        assert rows == [("no lookop", "pass", f"{contracts}:4: tool 'lookop' never appears in the trace; "
                                              "did you mean 'lookup'?"), ("terminates", "incomplete", None)]
        assert store.query("SELECT vacuous, incomplete FROM trace_metrics")[1] == [(1, 1)]
        html = write_report(store, tmp_path / "report.html").read_text()
    listing = html.split('id="traces"')[1]
    assert '<span class="warn-incomplete"' in listing and ">1 incomplete</span>" in listing
    assert '<span class="warn-vacuous" title="no lookop: ' in listing and ">1 vacuous</span>" in listing


def test_a_version_3_store_gains_the_vacuous_and_reason_columns(recorded: Path, tmp_path: Path) -> None:
    """Migrating a store from before vacuity keeps its verdicts, with neither column filled."""
    import duckdb

    from mattrace.store import SCHEMA_VERSION

    contracts = tmp_path / "c.toml"
    contracts.write_text('[[contract]]\nuse = "terminates"\n')
    path = tmp_path / "old.duckdb"
    assert main(["ingest", str(recorded), "--contracts", str(contracts), "--store", str(path)]) == 0
    con = duckdb.connect(str(path))   # take it back to version 3
    for column in ("vacuous", "reason"):
        con.execute(f"ALTER TABLE verdicts DROP COLUMN {column}")
    con.execute("UPDATE meta SET value = '3'")
    con.close()
    with Store.open(path) as store:
        assert SCHEMA_VERSION == 4 and store.query("SELECT value FROM meta")[1] == [("4",)]
        assert store.query("SELECT contract, status, vacuous, reason FROM verdicts")[1] == [
            ("terminates", "pass", None, None)]
        assert store.query("SELECT vacuous, incomplete FROM trace_metrics")[1] == [(0, 0)]
