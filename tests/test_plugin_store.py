"""The plugin's end of session: ingest into the store, the metrics summary, no-store mode and xdist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mattrace.store import Store

pytest_plugins = ["pytester"]

SUITE = """
import pytest
import mattrace
from mattrace.contracts import claims_supported, never, step

@mattrace.tool(side_effect=True)
def send(to: str) -> str:
    return "sent"

NO_EVIL = never(step.tool("send") & step.arg("to").matches("evil")).named("no evil")

def succeeded(run):
    return run.output != "lost"

@pytest.mark.parametrize("model", ["small", "large"])
@pytest.mark.mattrace(contracts=[NO_EVIL], trials=4, oracle=succeeded)
def test_task(mat, model):
    with mat.run(config={"model": model}) as run:
        send("ok@example.com")
        run.outcome(output="lost" if (model == "small" and mat.seed % 2) else "found")

@pytest.mark.mattrace(contracts=[NO_EVIL, claims_supported()], trials=3, config={"model": "large"})
def test_unsafe(mat):
    with mat.run() as run:
        send("evil@example.com" if mat.seed == 1 else "ok@example.com")
        if mat.seed == 2:
            mattrace.message("writer", "It costs 30 EUR.", claims=[{"text": "It costs 30 EUR.", "cites": []}])

def test_plain():
    assert True
"""


def _metrics(store_path: Path) -> list[dict[str, Any]]:
    with Store.open(store_path / "mattrace.duckdb", read_only=True) as store:
        rows = [r.to_json_dict() for r in store.metrics(by=("test", "model"))]
        (traces,), = store.query("select count(*) from traces")[1]
        assert traces == 11
    return rows


def test_the_session_ingests_its_traces_and_prints_metrics_by_config(pytester: pytest.Pytester) -> None:
    """After the run the store holds every trace with its verdicts, and the summary shows the metric table."""
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*= mattrace =*", "run *: traces in *", "ingest: *11 traces added*",
                                 "*mattrace metrics*"])
    rows = {(r["group"]["test"], r["group"]["model"]): r for r in _metrics(pytester.path / ".mattrace")}
    small = rows[("test_suite.py::test_task[small]", "small")]
    assert small["traces"] == 4 and small["success"]["hits"] == 2 and small["success"]["total"] == 4
    assert rows[("test_suite.py::test_task[large]", "large")]["success"]["hits"] == 4
    unsafe = rows[("test_suite.py::test_unsafe", "large")]
    assert unsafe["compliance"]["hits"] == 4 and unsafe["compliance"]["total"] == 6


def test_xdist_gives_the_same_metrics_as_one_process(pytester: pytest.Pytester) -> None:
    """-n 2 (two workers writing their own files, the controller ingesting) equals -n 0."""
    pytester.makepyfile(test_suite=SUITE)
    one = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "0",
                                        "--mattrace-store", "one")
    one.assert_outcomes(passed=3, failed=1)
    two = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "2",
                                        "--mattrace-store", "two")
    two.assert_outcomes(passed=3, failed=1)
    results = sorted(p.name for p in (pytester.path / "two" / "results").rglob("*.jsonl"))
    assert results == ["gw0.jsonl", "gw1.jsonl"], "each worker writes its own results file"
    assert _metrics(pytester.path / "one") == _metrics(pytester.path / "two")
    two.stdout.fnmatch_lines(["*mattrace metrics*", "quality violations (1; *",
                              "  test_suite.py::test_unsafe [[]trial 2]: claims supported at step 1: *"])


def test_no_store_writes_nothing_under_the_store_and_still_summarises(pytester: pytest.Pytester) -> None:
    """--mattrace-no-store leaves no .mattrace directory and still prints the metrics (from memory)."""
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--mattrace-no-store")
    result.assert_outcomes(passed=3, failed=1)
    assert not (pytester.path / ".mattrace").exists()
    result.stdout.fnmatch_lines(["run *: traces in *mattrace-*; store in memory (--mattrace-no-store)",
                                 "*mattrace metrics*"])


def test_a_store_that_cannot_be_opened_does_not_change_test_outcomes(pytester: pytest.Pytester) -> None:
    """If the store cannot be opened, the summary says why and the tests' outcomes stand."""
    pytester.makepyfile(test_suite=SUITE)
    store = pytester.path / ".mattrace"
    store.mkdir()
    (store / "mattrace.duckdb").write_text("not a database")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["mattrace: *mattrace.duckdb: cannot open the store: *"])


def test_the_results_of_a_run_reach_the_store_with_their_run(pytester: pytest.Pytester) -> None:
    """The runs table has this session (run id, workers, traces), and each violation is stored with its step."""
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3, failed=1)
    with Store.open(pytester.path / ".mattrace" / "mattrace.duckdb", read_only=True) as store:
        (run,) = store.runs()
        assert run.source == "pytest" and run.workers == ["main"] and run.traces == 11
        _, rows = store.query("select contract, step, severity from violations order by contract")
        assert rows == [("claims supported", 1, "quality"), ("no evil", 0, "safety")]
        _, seeds = store.query("select seed from traces where test like '%test_unsafe' order by seed")
        assert [s for (s,) in seeds] == [0, 1, 2]
    (trace_file,) = {p.parent.name for p in (pytester.path / ".mattrace" / "traces").rglob("*.jsonl")}
    assert trace_file == run.run_id, "trace files live under their run's directory"


def test_a_faulted_session_prints_its_containment_table(pytester: pytest.Pytester) -> None:
    """A session with injected faults ends with the containment table by fault; one without has none."""
    pytester.makepyfile(test_faulted="""
import pytest
import mattrace
from mattrace.faults import Empty, Timeout, matrix

@mattrace.tool
def lookup(n: int) -> str:
    return "found"

@pytest.mark.mattrace(faults=matrix(Timeout("tool:lookup"), Empty("tool:lookup")))
def test_campaign(mat):
    with mat.run():
        try:
            lookup(1)
        except TimeoutError:
            pass
""")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*fault containment*", "*Empty *1 *1 *0 *0 *100%*", "*Timeout *1 *1 *0 *0 *100%*"])
    pytester.makepyfile(test_faulted="def test_plain(mat):\n    with mat.run():\n        pass\n")
    assert "fault containment" not in pytester.runpytest("-p", "no:cacheprovider").stdout.str()


def test_a_governed_session_prints_its_governance_table(pytester: pytest.Pytester) -> None:
    """A session whose runs were governed ends with the decisions by rule; one without has no such table."""
    pytester.makepyfile(test_governed="""
import pytest
import mattrace
from mattrace.contracts import step
from mattrace.governance import Governor, block

@mattrace.tool(side_effect=True)
def send(to: str) -> str:
    return "sent"

GOV = Governor([block(step.tool("send") & step.arg("to").matches("evil"), "no evil", rule_id="no-evil")])

@pytest.mark.mattrace(governor=GOV)
def test_governed(mat):
    with mat.run():
        send("ok@example.com")
        assert send("evil@example.com")["blocked"] is True
""")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*governance decisions*", "*default *1 *1 *0 *0*", "*no-evil *1 *0 *0 *1*"])
    pytester.makepyfile(test_governed="def test_plain(mat):\n    with mat.run():\n        pass\n")
    assert "governance decisions" not in pytester.runpytest("-p", "no:cacheprovider").stdout.str()
