"""pytest cassettes on the second day: a changed call fails short and says how to record again,
volatile input can be left out of matching, and replayed runs stay out of the metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mattrace
from mattrace.store import Store

pytest_plugins = ["pytester"]

APP = """
import mattrace

PROMPT = {prompt!r}

@mattrace.tool
def plan(prompt: str) -> str:
    return "planned: " + prompt[-12:]

def trip() -> str:
    with mattrace.agent("planner"):
        return plan(PROMPT)
"""

TEST = """
import pytest
import app

@pytest.mark.mattrace(trials=2{marker})
def test_trip(mat):
    with mat.run() as run:
        run.outcome(output=app.trip())
"""

LONG = "Plan a family trip with two children, a dog and far too much luggage; " * 6


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def _app(pytester: pytest.Pytester, prompt: str) -> None:
    pytester.makepyfile(app=APP.format(prompt=prompt))


def _store(pytester: pytest.Pytester) -> Store:
    return Store.open(pytester.path / ".mattrace" / "mattrace.duckdb", read_only=True)


def _failure(out: str) -> str:
    """The FAILURES section of a pytest run's output."""
    return out.split("= FAILURES =", 1)[1].split("= mattrace =", 1)[0]


def test_a_changed_prompt_fails_short_naming_the_call_and_how_to_record_again(pytester: pytest.Pytester) -> None:
    """The second session replays; a prompt changed at its end is a short failure that names the call and
    where the test's code made it, shows both ends of the prompt, hides mattrace's frames and says how
    to record again; recording with new then replays green."""
    _app(pytester, LONG + "Destination: Paris")
    pytester.makepyfile(test_trip=TEST.format(marker=""))
    run(pytester).assert_outcomes(passed=1)
    _app(pytester, LONG + "Destination: Rome")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    failure = _failure(out)
    assert "CassetteMismatch: mattrace: test_trip.py::test_trip made a call its cassette does not hold " \
           "(trial 0 of 0..1, seed 0; 2 of 2 trials)" in failure
    assert re.search(r"step 0: tool plan by planner, called at app\.py:\d+ \(trip\)", failure)
    assert re.search(r"prompt: expected …[^']*Destination: Paris', got …[^']*Destination: Rome'", failure)
    assert "pytest test_trip.py::test_trip --mattrace-record=new" in failure
    assert "pytest test_trip.py::test_trip --mattrace-record=all" in failure
    assert "mattrace_ignore" in failure
    for internal in ("_cassette.py", "interceptors.py", "boundaries.py", "_trials.py", "_cassettes.py"):
        assert internal not in failure, f"mattrace's frame {internal} is shown"
    assert len(failure.strip().splitlines()) < 40
    assert "FAILED test_trip.py::test_trip - mattrace.pytest_plugin.CassetteMismatch" in out
    full = run(pytester, "--fulltrace")
    assert "_cassette.py" in _failure(full.stdout.str()), "--fulltrace keeps every frame"
    run(pytester, "--mattrace-record=new").assert_outcomes(passed=1)
    run(pytester).assert_outcomes(passed=1)


def test_runs_that_broke_off_on_a_mismatch_are_not_task_failures(pytester: pytest.Pytester) -> None:
    """The broken-off runs are labelled replays with an unrecorded call: no metric counts them, the
    summary says so, and the recorded session's success rate stays what it was."""
    _app(pytester, "Plan a trip to Paris")
    pytester.makepyfile(test_trip=TEST.format(marker=", oracle=lambda run: False"))
    run(pytester).assert_outcomes(passed=1)
    _app(pytester, "Plan a trip to Rome")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert "2 traces broke off on a cassette mismatch and count nowhere" in result.stdout.str()
    with _store(pytester) as store:
        (row,) = store.metrics(by=(), replays=True)
        assert (row.traces, row.success.hits) == (2, 0), "the two recorded trials, both judged failed by the oracle"
        assert store.replay_counts() == {"replays": 0, "broken": 2}


def test_a_mismatch_the_code_swallowed_still_fails_the_test(pytester: pytest.Pytester) -> None:
    """Code under test that catches every exception does not turn a broken replay into a pass."""
    pytester.makepyfile(app=APP.format(prompt="Plan a trip to Paris") + """
def careful_trip() -> str:
    try:
        return trip()
    except Exception:
        return "fallback"
""")
    pytester.makepyfile(test_trip=TEST.format(marker="").replace("app.trip()", "app.careful_trip()"))
    run(pytester).assert_outcomes(passed=1)
    pytester.path.joinpath("app.py").write_text(
        pytester.path.joinpath("app.py").read_text().replace("to Paris", "to Rome"))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "made a call its cassette does not hold" in out
    assert "the code under test caught the error" in out


DATED = """
import datetime
import mattrace

@mattrace.tool
def plan(prompt: str, meta: dict) -> str:
    return "planned"

def trip() -> str:
    with open("today.txt") as fh:
        today = fh.read().strip()
    return plan(f"Today is {today}. Plan a trip to Paris.", {"request_id": today + "-req", "user": "ana"})
"""


def test_volatile_input_is_left_out_of_matching_per_test_or_in_the_ini(pytester: pytest.Pytester) -> None:
    """A date in the prompt and an id in the arguments: ignore= on the marker (a pattern and a path),
    or the ini keys for the whole suite, let the next day replay; without them it is a mismatch."""
    pytester.makepyfile(app=DATED)
    pytester.makepyfile(test_plain=TEST.format(marker=""),
                        test_marked=TEST.format(marker=', ignore=[r"re:\\d{4}-\\d{2}-\\d{2}", "meta.request_id"]'))
    pytester.path.joinpath("today.txt").write_text("2024-01-01")
    run(pytester).assert_outcomes(passed=2)
    pytester.path.joinpath("today.txt").write_text("2024-01-02")
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_plain.py::test_trip - *CassetteMismatch*"])
    pytester.makeini("[pytest]\nmattrace_ignore =\n    re:\\d{4}-\\d{2}-\\d{2}\n    meta.request_id\n")
    run(pytester).assert_outcomes(passed=2)
    pytester.path.joinpath("today.txt").write_text("2024-01-03")
    pytester.makeini("[pytest]\nmattrace_match_on = kind target agent\n")
    run(pytester).assert_outcomes(passed=2)


def test_matching_mistakes_fail_early(pytester: pytest.Pytester) -> None:
    """A bad match_on on a marker fails its module's collection; a bad ini key is a usage error."""
    pytester.makepyfile(app=DATED, test_bad=TEST.format(marker=', match_on=["target", "args"]'))
    result = run(pytester)
    result.stdout.fnmatch_lines(["*test_bad.py::test_trip: @pytest.mark.mattrace: match_on must include 'kind'*"])
    pytester.makepyfile(test_bad=TEST.format(marker=""))
    pytester.makeini("[pytest]\nmattrace_ignore =\n    re:(\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*mattrace_ignore: 're:(' is not a regex*"])


def test_no_cassette_in_mode_none_says_how_to_record_one(pytester: pytest.Pytester) -> None:
    """--mattrace-record=none without cassettes fails short, with the command that records them."""
    _app(pytester, "Plan a trip")
    pytester.makepyfile(test_trip=TEST.format(marker=""))
    result = run(pytester, "--mattrace-record=none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_trip.py::test_trip has no cassette to replay from (record mode none*",
                                 "*pytest test_trip.py::test_trip --mattrace-record=once*"])


def test_replayed_sessions_are_labelled_and_left_out_of_the_metrics(pytester: pytest.Pytester) -> None:
    """Sessions that replay (mode none, or once over existing cassettes) label their traces as replays of
    the recorded ones and leave them out of the metrics; replays=True counts them."""
    _app(pytester, "Plan a trip")
    pytester.makepyfile(test_trip=TEST.format(marker=""))
    first = run(pytester)
    first.assert_outcomes(passed=1)
    assert "left out" not in first.stdout.str()
    for args in (("--mattrace-record=none",), ()):
        again = run(pytester, *args)
        again.assert_outcomes(passed=1)
        assert "2 replayed traces left out (answered from cassettes, they repeat recorded runs); " \
               "mattrace metrics --replays counts them" in again.stdout.str()
    found = [mattrace.load(p) for p in (pytester.path / ".mattrace" / "traces").rglob("*.jsonl")]
    recorded = {t.trace_id for t in found if "mattrace.replay_of" not in t.labels}
    assert len(recorded) == 2 and len(found) == 6
    assert {t.labels["mattrace.replay_of"] for t in found if t.trace_id not in recorded} == recorded
    with _store(pytester) as store:
        assert store.metrics(by=())[0].traces == 2
        assert store.metrics(by=(), replays=True)[0].traces == 6


def test_the_default_mode_is_documented_with_its_reasons() -> None:
    """docs/pytest.md and docs/replay.md say why the default stays once, against pytest-recording's none."""
    root = Path(__file__).resolve().parent.parent
    for page in ("pytest.md", "replay.md"):
        text = (root / "docs" / page).read_text(encoding="utf-8")
        assert "pytest-recording" in text and "default" in text, page
