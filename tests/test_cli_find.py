"""Finding traces: ``mattrace ls``, ``latest`` for a trace argument, and output that suits a log."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mattrace.cli import _LISTED, main
from tests.test_store_builders import check_line, labelled, write_results, write_trace


@pytest.fixture(autouse=True)
def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _age(path: Path, seconds_ago: int) -> Path:
    """Set the file's modification time, so "newest" does not depend on how fast the test wrote."""
    stamp = 1_800_000_000 - seconds_ago
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose .mattrace/traces holds a planner run (failed, oldest), a booker run, an unsealed
    run in a sub-folder (newest recording) and a replay that is newer still."""
    monkeypatch.chdir(tmp_path)
    traces = tmp_path / ".mattrace" / "traces"
    traces.mkdir(parents=True)
    planner = labelled("planner_flow", seed=0, status="failure", run="run-aaa").model_copy(
        update={"name": "planner_flow"})
    booker = labelled("booker_flow", seed=1, run="run-bbb").model_copy(update={"name": "booker_flow"})
    cut = labelled("booker_retry", seed=2, run="run-bbb").model_copy(update={"name": "booker_retry"})
    _age(write_trace(planner, traces, name="planner"), 300)
    _age(write_trace(booker, traces, name="booker"), 200)
    (traces / "demo-1").mkdir()
    _age(write_trace(cut, traces / "demo-1", name="cut", seal=False), 100)
    replay = booker.model_copy(update={"labels": {**booker.labels, "mattrace.replay_of": booker.trace_id}})
    (traces / "replays").mkdir()
    _age(write_trace(replay, traces / "replays", name="booker-replay"), 10)
    (traces / "notes.jsonl").write_text('{"not": "a trace"}\n')   # a stray file is passed over
    _age(traces / "notes.jsonl", 0)
    results = write_results(tmp_path / "results.jsonl", "run-aaa", [check_line(planner.trace_id, {"c1": "fail",
                                                                                                   "c2": "fail"})])
    assert _run_quiet(["ingest", str(traces / "planner.jsonl"), str(results)]) == 0
    return traces


def _run_quiet(argv: list[str]) -> int:
    return main(argv)


def test_ls_lists_recordings_newest_first_with_outcome_steps_and_the_stores_violations(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, out, _ = _run(capsys, "ls", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [r["name"] for r in rows] == ["booker_retry", "booker_flow", "planner_flow"]   # replay and stray left out
    by_name = {r["name"]: r for r in rows}
    assert by_name["booker_retry"]["outcome"] == "unsealed" and by_name["booker_retry"]["steps"] == 6
    assert by_name["planner_flow"]["outcome"] == "failure" and by_name["planner_flow"]["steps"] == 6
    assert by_name["planner_flow"]["violations"] == 2      # the store checked it
    assert by_name["booker_flow"]["violations"] is None    # never checked: blank, not 0
    assert by_name["booker_flow"]["run"] == "run-bbb"
    code, out, _ = _run(capsys, "ls", "--replays", "--json")
    assert next(r["replay"] for r in json.loads(out)) is True
    code, table, _ = _run(capsys, "ls")
    row = next(line for line in table.splitlines() if "planner_flow" in line)
    assert re.search(r"planner_flow\s+failure\s+6\s+2\s+run-aaa", row), row


def test_ls_filters_by_name_outcome_and_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()

    def names(*argv: str) -> list[str]:
        code, out, _ = _run(capsys, "ls", "--json", *argv)
        assert code == 0
        return [r["name"] for r in json.loads(out)]

    assert names("--name", "booker") == ["booker_retry", "booker_flow"]
    assert names("--name", "*_flow") == ["booker_flow", "planner_flow"]
    assert names("--outcome", "failure", "--outcome", "unsealed") == ["booker_retry", "planner_flow"]
    assert names("--run", "run-aaa") == ["planner_flow"]
    assert names("--run", "latest") == ["booker_retry", "booker_flow"]   # the newest trace's run
    assert names("--limit", "1") == ["booker_retry"]
    code, out, _ = _run(capsys, "ls", "--name", "nothing-like-it")
    assert code == 0 and "no trace files under .mattrace/traces match" in out


def test_ls_reads_headers_and_seals_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A sealed file's steps are not parsed: one whose middle is not even JSON still lists from its seal."""
    path = write_trace(labelled("t", seed=0), tmp_path, name="big")
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"garbage that no step parser accepts\n" * 5000 + lines[-1])
    code, out, _ = _run(capsys, "ls", str(tmp_path), "--json")
    assert code == 0 and [(r["outcome"], r["steps"]) for r in json.loads(out)] == [("success", 6)]


def test_latest_stands_for_the_newest_recording_in_every_trace_command(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, out, _ = _run(capsys, "show", "latest", "--json")
    assert code == 0 and json.loads(out)["name"] == "booker_retry"   # the replay is newer but left out
    code, out, _ = _run(capsys, "verify", "latest")
    assert code == 3 and "cut.jsonl" in out                          # unsealed: incomplete
    code, out, _ = _run(capsys, "diff", "latest", str(project / "booker.jsonl"), "--json")
    assert code == 1 and json.loads(out)["identical"] is False
    code, out, _ = _run(capsys, "check", "latest", "--contracts", "tests.nonexistent_module:X")
    assert code == 2
    code, _, err = _run(capsys, "replay", "latest")
    assert code == 2 and "cut.jsonl" in err                          # it tried the newest recording


def test_latest_without_traces_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["show", "latest"], ["verify", "latest"], ["replay", "latest"], ["diff", "latest", "latest"],
                 ["export", "latest", "--otlp", "http://127.0.0.1:9/v1/traces"]):
        code, _, err = _run(capsys, *argv)
        assert code == 2, argv
        assert ".mattrace/traces" in err and "no trace file" in err and "Traceback" not in err


def test_help_prints_single_percent_signs(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse %-formats help strings, not descriptions: an escaped %% in a description printed as is."""
    for command in _LISTED:
        code, out, _ = _run(capsys, command, "--help")
        assert code == 0 and "%%" not in out, command
    _, out, _ = _run(capsys, "metrics", "--help")
    assert "95% interval" in out


def test_report_writes_where_the_demo_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write_trace(labelled("t", seed=0), tmp_path / "traces")
    assert main(["ingest", str(tmp_path / "traces")]) == 0
    code, _, _ = _run(capsys, "report")
    assert code == 0 and (tmp_path / ".mattrace" / "report.html").is_file()
    assert not (tmp_path / "mattrace-report.html").exists()


def test_show_in_a_log_keeps_names_whole_and_honours_columns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Written to a file (no terminal, no COLUMNS) the step table is wide: names and short results stay whole."""
    import mattrace

    @mattrace.tool
    def find_trips(city: str) -> dict[str, object]:
        return {"city": city, "flights": ["TP123 08:05", "TP456 19:40"], "hotels": ["Riverside", "Old Town"]}

    with mattrace.record("names", dir=tmp_path) as rec:
        mattrace.message("user", "Plan three nights in Lisbon next week, near the river please", to="planner_agent")
        with mattrace.agent("planner_agent"):
            find_trips("Lisbon")
            mattrace.message(None, "fly to Lisbon on Monday, three nights near the river", to="booker_agent")
        with mattrace.agent("booker_agent"):
            find_trips("Porto")
        rec.set_outcome(success=True)
    [path] = tmp_path.glob("*.jsonl")
    code, out, _ = _run(capsys, "show", str(path))
    assert code == 0
    assert re.search(r"planner_agent\s+│\s+tool\s+│\s+find_trips", out), out
    assert '"hotels":["Riverside","Old Town"]}' in out and "…" not in out
    monkeypatch.setenv("COLUMNS", "80")
    _, narrow, _ = _run(capsys, "show", str(path))
    assert max(len(line) for line in narrow.splitlines()) <= 80
