"""The pytest plugin, run for real by pytester: marker, mat fixture, trials, failures, JUnit, options."""

from __future__ import annotations

import json
import random
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import mattrace

pytest_plugins = ["pytester"]

TOOLS = """
import threading
import pytest
import mattrace
from mattrace.contracts import claims_supported, never, step

@mattrace.tool(side_effect=True)
def send(to: str) -> str:
    return "sent to " + to

NO_EVIL = never(step.tool("send") & step.arg("to").matches("evil")).named("no evil")
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def traces(pytester: pytest.Pytester) -> list[mattrace.Trace]:
    """Every trace the inner session wrote, ordered by test and trial."""
    found = [mattrace.load(p) for p in (pytester.path / ".mattrace" / "traces").rglob("*.jsonl")]
    return sorted(found, key=lambda t: (t.labels["mattrace.test"], int(t.labels["mattrace.trial"])))


def test_plugin_registers_the_mattrace_marker(pytester: pytest.Pytester) -> None:
    """A suite using @pytest.mark.mattrace passes under --strict-markers, so the marker is known."""
    pytester.makepyfile(test_marked="""
        import pytest

        @pytest.mark.mattrace(trials=1)
        def test_marked():
            assert True
    """)
    result = run(pytester, "--strict-markers")
    result.assert_outcomes(passed=1)


def test_plugin_is_listed_by_pytest(pytester: pytest.Pytester) -> None:
    """`pytest --markers` lists the mattrace marker and `--help` the plugin's options."""
    run(pytester, "--markers").stdout.fnmatch_lines(["*@pytest.mark.mattrace(*"])
    run(pytester, "--help").stdout.fnmatch_lines(["*--mattrace-store=DIR*", "*--mattrace-strict*",
                                                  "*--mattrace-concurrency=N*"])


def test_a_safety_violation_fails_with_the_first_violating_step_in_context(pytester: pytest.Pytester) -> None:
    """The failure names the contract, shows the violating step with context, the file and the show command."""
    pytester.makepyfile(test_flow=TOOLS + """
@pytest.mark.mattrace(contracts=[NO_EVIL])
def test_flow(mat):
    with mat.run(config={"model": "m"}):
        mattrace.message("user", "please mail evil@example.com", to="writer")
        send("ok@example.com")
        send("evil@example.com")
""")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    (trace,) = traces(pytester)
    out = result.stdout.str()
    assert "mattrace: 1 contract violation in test_flow.py::test_flow (seed 0)" in out
    assert re.search(r"FAIL\s+no evil\s+\[safety\]\s+first violation at step 2", out)
    assert re.search(r"▶\s+2\s+main\s+tool\s+send", out), "the violating step is marked in the context"
    assert re.search(r"\n\s+1\s+main\s+tool\s+send", out), "a step before it is shown as context"
    path = next((pytester.path / ".mattrace" / "traces").rglob("*.jsonl"))
    result.stdout.fnmatch_lines([f"*see: mattrace show {path} --step 2"])
    assert "\x1b[" not in out, "failure text has no colour codes outside a terminal"
    assert trace.config == {"model": "m", "seed": 0}
    assert trace.labels["mattrace.test"] == "test_flow.py::test_flow" and trace.labels["mattrace.trial"] == "0"


def test_a_parametrized_failure_names_its_parameter_and_brackets_are_text(pytester: pytest.Pytester) -> None:
    """The replay command of a parametrized test reruns that parameter only (rich took ``[paris]`` for a style
    and dropped it), and a contract named with brackets, even a closing tag, is printed as written."""
    pytester.makepyfile(test_trip=TOOLS + """
WEIRD = never(step.tool("send") & step.arg("to").matches("evil")).named("no evil [/bold] [paris]")

@pytest.mark.mattrace(contracts=[WEIRD])
@pytest.mark.parametrize("city", ["paris", "rome"])
def test_trip(mat, city):
    with mat.run():
        send("evil@" + city + ".example")
""")
    result = run(pytester)
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    for line in ("mattrace: 1 contract violation in test_trip.py::test_trip[paris] (seed 0)",
                 "replay: pytest 'test_trip.py::test_trip[paris]' --mattrace-record=none",
                 "replay: pytest 'test_trip.py::test_trip[rome]' --mattrace-record=none",
                 "no evil [/bold] [paris]"):
        assert line in out, line
    assert "MarkupError" not in out


def test_quality_violations_are_reported_and_fail_only_in_strict_mode(pytester: pytest.Pytester) -> None:
    """A quality contract's violation passes the test but is listed; --mattrace-strict or the ini key fails it."""
    pytester.makepyfile(test_claims=TOOLS + """
@pytest.mark.mattrace(contracts=[claims_supported()])
def test_claims(mat):
    with mat.run():
        mattrace.message("writer", "It costs 30 EUR.", claims=[{"text": "It costs 30 EUR.", "cites": []}])
""")
    lenient = run(pytester)
    lenient.assert_outcomes(passed=1)
    lenient.stdout.fnmatch_lines(["*quality violations (1; they fail tests only with --mattrace-strict):",
                                  "*test_claims.py::test_claims [[]trial 0]: claims supported at step 0: claim*"])
    run(pytester, "--mattrace-strict").assert_outcomes(failed=1)
    pytester.makeini("[pytest]\nmattrace_strict = true\n")
    run(pytester).assert_outcomes(failed=1)


def test_trials_run_the_body_once_per_seed_each_in_its_own_trace(pytester: pytest.Pytester) -> None:
    """trials=3 gives three traces with seeds base..base+2, one per trial, and mat.random follows the seed."""
    pytester.makepyfile(test_trials=TOOLS + """
@pytest.mark.mattrace(trials=3, config={"orchestration": "flat"})
def test_trials(mat):
    with mat.run() as run:
        send(f"user{mat.seed}@example.com")
        run.outcome(output=mat.random.random())
""")
    run(pytester, "--mattrace-seed", "10").assert_outcomes(passed=1)
    found = traces(pytester)
    assert [t.config for t in found] == [{"orchestration": "flat", "seed": s} for s in (10, 11, 12)]
    assert [t.labels["mattrace.trial"] for t in found] == ["0", "1", "2"]
    assert [t.steps[0].args["to"] for t in found] == ["user10@example.com", "user11@example.com",
                                                      "user12@example.com"]
    assert [t.outcome.output for t in found] == [random.Random(s).random() for s in (10, 11, 12)]


def test_concurrent_trials_overlap_and_equal_a_sequential_run(pytester: pytest.Pytester,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With concurrency=4 the four trials really run at once, and their traces match a sequential run's."""
    pytester.makepyfile(test_conc=TOOLS + """
import os
BARRIER = threading.Barrier(int(os.environ["PARTIES"]), timeout=5)

@pytest.mark.mattrace(trials=4, concurrency=int(os.environ["CONCURRENCY"]))
def test_conc(mat):
    with mat.run() as run:
        with mattrace.agent(f"agent{mat.trial}"):
            send(f"first{mat.seed}@example.com")
            BARRIER.wait()
            mattrace.message(None, f"trial {mat.trial} done", to="user")
            send(f"second{mat.seed}@example.com")
""")
    monkeypatch.setenv("PARTIES", "4")
    monkeypatch.setenv("CONCURRENCY", "4")
    run(pytester).assert_outcomes(passed=1)
    concurrent = traces(pytester)
    for t in concurrent:
        assert {s.agent for s in t.steps[:-1]} == {f"agent{t.labels['mattrace.trial']}"}, "no trial leaks into another"
    shutil.rmtree(pytester.path / ".mattrace")
    monkeypatch.setenv("PARTIES", "1")
    monkeypatch.setenv("CONCURRENCY", "1")
    run(pytester).assert_outcomes(passed=1)
    sequential = traces(pytester)
    assert [t.fingerprint() for t in concurrent] == [t.fingerprint() for t in sequential]


def test_the_oracle_decides_success_unless_the_test_says_so(pytester: pytest.Pytester) -> None:
    """oracle(run) sets each run's outcome from its output; run.outcome(success=...) overrides it."""
    pytester.makepyfile(test_oracle=TOOLS + """
@pytest.mark.mattrace(trials=3, oracle=lambda run: run.output == "refunded")
def test_oracle(mat):
    with mat.run() as run:
        run.outcome(output="refunded" if mat.seed != 1 else "ignored")
        if mat.seed == 2:
            run.outcome(success=False, reason="customer unhappy")
""")
    result = run(pytester, "--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    found = traces(pytester)
    assert [(t.outcome.status, t.outcome.output) for t in found] == [
        ("success", "refunded"), ("failure", "ignored"), ("failure", "refunded")]
    assert found[2].outcome.reason == "customer unhappy"
    props = dict(_properties(pytester.path / "junit.xml", "test_oracle"))
    assert props["mattrace.trials"] == "1/3 succeeded"
    assert props["mattrace.pass^k"] == "pass^1 0.33, pass^3 0.00"


def test_an_oracle_that_returns_no_bool_is_an_error(pytester: pytest.Pytester) -> None:
    """An oracle returning None fails the test with a message saying what it must return."""
    pytester.makepyfile(test_bad_oracle="""
import pytest

@pytest.mark.mattrace(oracle=lambda run: None)
def test_bad_oracle(mat):
    with mat.run():
        pass
""")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*returned None; it must return True (task succeeded) or False*"])


def _properties(path: Path, test: str) -> list[tuple[str, str]]:
    root = ET.parse(path).getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == test)
    return [(p.get("name", ""), p.get("value", "")) for p in case.iter("property")]


def test_junit_xml_records_verdicts_and_the_first_violation(pytester: pytest.Pytester) -> None:
    """Each contract's verdicts over the trials and the first violation are JUnit user properties."""
    pytester.makepyfile(test_junit=TOOLS + """
@pytest.mark.mattrace(contracts=[NO_EVIL, claims_supported()], trials=2)
def test_junit(mat):
    with mat.run():
        send("evil@example.com" if mat.trial == 1 else "ok@example.com")
""")
    run(pytester, "--junitxml=junit.xml").assert_outcomes(failed=1)
    props = dict(_properties(pytester.path / "junit.xml", "test_junit"))
    assert props["mattrace.contract[no evil]"] == "fail 1/2 (safety)"
    assert props["mattrace.contract[claims supported]"] == "pass 2/2"
    assert props["mattrace.first_violation"].startswith("no evil at step 0 of ")
    assert "(trial 1 of 0..1, seed 1)" in props["mattrace.first_violation"]


def test_contracts_from_a_file_next_to_the_test(pytester: pytest.Pytester) -> None:
    """contracts='rules.toml' is read relative to the test file, and its rules judge the run."""
    sub = pytester.mkdir("suite")
    (sub / "rules.toml").write_text('[[contract]]\nuse = "never"\nname = "no send"\nstep = { tool = "send" }\n')
    (sub / "test_file.py").write_text(TOOLS + """
@pytest.mark.mattrace(contracts="rules.toml")
def test_file(mat):
    with mat.run():
        send("a@example.com")
""")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAIL*no send*first violation at step 0*"])


def test_a_broken_contract_file_fails_collection_with_file_and_line(pytester: pytest.Pytester) -> None:
    """A contract file error is a collection error of that test module, naming the file and line."""
    (pytester.path / "rules.toml").write_text('[[contract]]\nuse = "never"\nstep = { tool = "send" }\n\n'
                                              '[[contract]]\nuse = "never"\nstep = { tol = "send" }\n')
    pytester.makepyfile(test_broken="""
import pytest

@pytest.mark.mattrace(contracts="rules.toml")
def test_broken(mat):
    pass
""")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting test_broken.py*",
                                 "*test_broken.py::test_broken: @pytest.mark.mattrace: "
                                 "*rules.toml:7: unknown key 'tol'*did you mean 'tool'?"])


def test_a_misspelt_marker_argument_fails_collection(pytester: pytest.Pytester) -> None:
    """trails=3 is a collection error that suggests trials."""
    pytester.makepyfile(test_typo="""
import pytest

@pytest.mark.mattrace(trails=3)
def test_typo(mat):
    pass
""")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown argument 'trails' (did you mean 'trials'?)*"])


def test_explicit_check_fails_inside_the_body(pytester: pytest.Pytester) -> None:
    """mat.check() raises ContractFailure at once; code after it does not run."""
    pytester.makepyfile(test_check=TOOLS + """
REACHED = []

@pytest.mark.mattrace(contracts=[NO_EVIL])
def test_check(mat):
    with mat.run():
        send("evil@example.com")
    mat.check()
    REACHED.append(1)

def test_after():
    assert REACHED == []
""")
    result = run(pytester)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*ContractFailure: mattrace: 1 contract violation in test_check.py::test_check*"])


def test_a_trial_that_raises_fails_the_test_and_says_which(pytester: pytest.Pytester) -> None:
    """An assertion failing in one trial fails the test, with a note naming the trial and seed."""
    pytester.makepyfile(test_raise="""
import pytest

@pytest.mark.mattrace(trials=3)
def test_raise(mat):
    with mat.run():
        assert mat.seed != 2, "seed two breaks"
""")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*seed two breaks*", "*mattrace: trial 2 of 0..2 (seed 2) raised this; "
                                 "1 of 3 trials raised*"])
    assert [t.outcome.status for t in traces(pytester)] == ["success", "success", "error"]


def test_results_file_lists_each_checked_trace(pytester: pytest.Pytester) -> None:
    """The session's results file has a header and one check line per trace with its verdicts."""
    pytester.makepyfile(test_res=TOOLS + """
@pytest.mark.mattrace(contracts=[NO_EVIL], trials=2)
def test_res(mat):
    with mat.run():
        send("ok@example.com")
""")
    run(pytester).assert_outcomes(passed=1)
    (results,) = (pytester.path / ".mattrace" / "results").rglob("*.jsonl")
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["format"] == "mattrace-results"
    checks = [line for line in lines if line["type"] == "check"]
    assert sorted((c["trial"], c["seed"]) for c in checks) == [(0, 0), (1, 1)]
    assert {t.trace_id for t in traces(pytester)} == {c["trace_id"] for c in checks}
    assert all(c["verdicts"][0]["status"] == "pass" for c in checks)
    assert lines[-1]["type"] == "end"


def test_suites_without_mattrace_get_no_store_and_no_summary(pytester: pytest.Pytester) -> None:
    """A suite that never uses the plugin writes nothing and prints no mattrace section."""
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1\n")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert "=== mattrace ===" not in result.stdout.str() and "--mattrace" not in result.stdout.str()
    assert not (pytester.path / ".mattrace").exists()


def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    """--mattrace-seed x and a zero concurrency are refused with the option named."""
    result = run(pytester, "--mattrace-seed", "x")
    result.stderr.fnmatch_lines(["*--mattrace-seed expects a whole number, got 'x'*"])
    pytester.makeini("[pytest]\nmattrace_concurrency = 0\n")
    run(pytester).stderr.fnmatch_lines(["*ini mattrace_concurrency must be >= 1, got 0*"])


def test_further_failing_trials_are_summarised_in_a_line_each(pytester: pytest.Pytester) -> None:
    """The first failing trial is shown in full; later ones get one line per violation with its command."""
    pytester.makepyfile(test_many=TOOLS + """
@pytest.mark.mattrace(contracts=[NO_EVIL], trials=3)
def test_many(mat):
    with mat.run():
        send("ok@example.com")
        send("evil@example.com" if mat.trial else "fine@example.com")
""")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    # pytest repeats the whole message in its short summary when the CI variable is set; count the report only.
    report = out.split("short test summary info")[0]
    assert report.count("first violation at step 1") == 1
    assert "mattrace: 1 contract violation in test_many.py::test_many (trial 1 of 0..2, seed 1)" in out
    result.stdout.fnmatch_lines(["mattrace: also failed in trial 2 of 0..2, seed 2:",
                                 "  no evil ?safety? at step 1; see: mattrace show *.jsonl --step 1"])
    assert not any(line != line.rstrip() for line in out.splitlines() if "▶" in line)


REPLAYED = TOOLS + """
import os

@mattrace.tool
def fetch(n: int) -> str:
    if os.environ.get("OFFLINE"):
        raise AssertionError("the live service was called during a replay")
    with open("calls.log", "a") as log:
        log.write(f"{n}\\n")
    return "evil@example.com" if n == 2 else f"user{n}@example.com"

@pytest.mark.mattrace(contracts=[NO_EVIL], trials=3)
def test_replayed(mat):
    with mat.run():
        send(fetch(mat.seed))
"""


def test_a_failing_test_replays_from_its_cassettes_alone(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorded once, the failing test fails the same way under --mattrace-record=none with the service gone."""
    pytester.makepyfile(test_replayed=REPLAYED)
    first = run(pytester)
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*replay: pytest test_replayed.py::test_replayed --mattrace-record=none"])
    assert (pytester.path / "calls.log").read_text().split() == ["0", "1", "2"]
    recorded = [t.fingerprint() for t in traces(pytester)]
    shutil.rmtree(pytester.path / ".mattrace" / "traces")
    monkeypatch.setenv("OFFLINE", "1")
    again = run(pytester, "--mattrace-record=none")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*FAIL*no evil*first violation at step 1*"])
    assert [t.fingerprint() for t in traces(pytester)] == recorded
    assert (pytester.path / "calls.log").read_text().split() == ["0", "1", "2"], "nothing ran live"


def test_record_modes_once_all_and_none_without_cassettes(pytester: pytest.Pytester) -> None:
    """once replays what exists, all records afresh, none without cassettes fails naming the mode."""
    pytester.makepyfile(test_replayed=REPLAYED.replace("[NO_EVIL]", "[]"))
    run(pytester).assert_outcomes(passed=1)
    run(pytester).assert_outcomes(passed=1)
    assert (pytester.path / "calls.log").read_text().split() == ["0", "1", "2"], "once: the second run replayed"
    run(pytester, "--mattrace-record=all").assert_outcomes(passed=1)
    assert len((pytester.path / "calls.log").read_text().split()) == 6, "all: recorded again"
    shutil.rmtree(pytester.path / ".mattrace" / "cassettes")
    missing = run(pytester, "--mattrace-record=none")
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(["*test_replayed.py::test_replayed has no cassette to replay from (record mode none*"])


def test_marker_faults_are_injected_and_classified(pytester: pytest.Pytester) -> None:
    """faults= on the marker injects into each run; the results file says whether the run contained them."""
    pytester.makepyfile(test_faulted=TOOLS + """
from mattrace.faults import Timeout

@mattrace.tool
def lookup(n: int) -> str:
    return "found"

@pytest.mark.mattrace(contracts=[NO_EVIL], faults=[Timeout("tool:lookup", on_call=1)], trials=2)
def test_faulted(mat):
    with mat.run():
        try:
            lookup(1)
        except TimeoutError:
            send("ok@example.com")
""")
    run(pytester).assert_outcomes(passed=1)
    found = traces(pytester)
    assert all([s.kind.value for s in t.steps][:2] == ["fault", "tool"] for t in found)
    (results,) = (pytester.path / ".mattrace" / "results").rglob("*.jsonl")
    checks = [json.loads(line) for line in results.read_text().splitlines() if '"check"' in line]
    assert [c["containment"]["class"] for c in checks] == ["contained", "contained"]
    assert checks[0]["containment"]["faults"] == ["Timeout"]


def test_a_fault_matrix_runs_the_test_once_per_fault_with_readable_ids(pytester: pytest.Pytester) -> None:
    """faults=matrix(...) parametrizes the test: a baseline and one item per fault, named after it."""
    pytester.makepyfile(test_campaign=TOOLS + """
from mattrace.faults import Empty, Timeout, matrix

@mattrace.tool
def lookup(n: int) -> str:
    return "found"

@pytest.mark.mattrace(faults=matrix(Timeout("tool:lookup"), Empty("tool:lookup"), baseline=True))
def test_campaign(mat):
    with mat.run() as run:
        try:
            found = lookup(1)
        except TimeoutError:
            found = None
        assert found != "", "an empty answer is not handled"
""")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_campaign?no-fault? PASSED*", "*test_campaign?Timeout-tool:lookup? PASSED*",
                                 "*test_campaign?Empty-tool:lookup? FAILED*"])


def test_a_suite_wide_fault_plan_and_mat_faults(pytester: pytest.Pytester) -> None:
    """--mattrace-faults FILE injects into every run; mat.faults() adds more; a bad plan is a usage error."""
    (pytester.path / "plan.toml").write_text('[[fault]]\ntype = "Empty"\ntarget = "tool:lookup"\n')
    pytester.makepyfile(test_suite_plan=TOOLS + """
from mattrace.faults import Timeout

@mattrace.tool
def lookup(n: int) -> str:
    return "found"

@mattrace.tool
def other() -> str:
    return "other"

def test_plan(mat):
    mat.faults(Timeout("tool:other"))
    with mat.run():
        assert lookup(1) == ""
        with pytest.raises(TimeoutError):
            other()
""")
    run(pytester, "--mattrace-faults", "plan.toml").assert_outcomes(passed=1)
    (pytester.path / "bad.toml").write_text('[[fault]]\ntype = "Emty"\n')
    bad = run(pytester, "--mattrace-faults", "bad.toml")
    bad.stderr.fnmatch_lines(["*--mattrace-faults: *bad.toml:2: unknown fault type 'Emty' (did you mean 'Empty'?)*"])


def test_trial_progress_draws_a_transient_bar_only_for_a_watched_terminal(pytestconfig: pytest.Config) -> None:
    """On a terminal the bar shows the test and its trials; in a log, or for one trial, nothing is drawn."""
    import io

    from rich.console import Console

    from mattrace.pytest_plugin._progress import trial_progress

    out = io.StringIO()
    with trial_progress(pytestconfig, "test_campaign[Timeout-tool:*]", 3,
                        console=Console(file=out, force_terminal=True, width=100)) as progress:
        for _ in range(3):
            progress.advance()
    assert "test_campaign[Timeout-tool:*]" in out.getvalue() and "trials" in out.getvalue()
    quiet = io.StringIO()
    with trial_progress(pytestconfig, "test_one", 1, console=Console(file=quiet, force_terminal=True)) as progress:
        progress.advance()
    assert quiet.getvalue() == ""
    from types import SimpleNamespace

    from _mattrace_pytest import INTERACTIVE, note_terminal
    from mattrace.pytest_plugin._progress import _console

    def config_writing_to(isatty: bool, markup: bool) -> Any:
        writer = SimpleNamespace(hasmarkup=markup, _file=SimpleNamespace(isatty=lambda: isatty))
        config = SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=lambda name: SimpleNamespace(_tw=writer)),
                                 stash=pytest.Stash())
        note_terminal(config)  # type: ignore[arg-type]
        return config

    logged = config_writing_to(isatty=False, markup=False)
    assert not logged.stash[INTERACTIVE] and _console(logged) is None, "a CI log gets no bar"
    assert _console(config_writing_to(isatty=True, markup=True)) is not None
    worker = config_writing_to(isatty=True, markup=True)
    worker.workerinput = {}
    assert _console(worker) is None, "xdist workers draw nothing"
