"""Replays are labelled and kept out of the metrics: they repeat a recorded run, they are not new evidence.

A run whose every boundary answer came from a cassette (record mode ``none``, or ``once`` over an
existing cassette, and every ``mattrace replay``) carries the label ``mattrace.replay_of``; the
store leaves such traces out of every metric unless asked (``replays=True``, ``--replays``), and
never counts a run that broke off on a cassette mismatch as a task failure.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mattrace
from mattrace.cli import main
from mattrace.errors import ReplayMismatch
from mattrace.replay import RecordMode
from mattrace.store import Store
from mattrace.testing import end, tool_call, trace, user
from mattrace.trace import OutcomeStatus, Trace
from tests.test_store_builders import check_line, labelled, write_results, write_trace

REPLAY = "mattrace.replay_of"


@mattrace.tool
def lookup(order: int) -> str:
    return f"order {order}: shipped"


def _run(tmp_path: Path, mode: str, order: int = 7) -> Trace:
    with mattrace.record("flow", dir=tmp_path / "t", cassette=tmp_path / "flow.cassette",
                         record_mode=RecordMode(mode)) as rec:
        lookup(order)
    return rec.trace


def test_a_run_answered_from_its_cassette_alone_is_labelled_a_replay(tmp_path: Path) -> None:
    """none and once-over-a-cassette label the run with the recorded trace id; new and all record, so they don't."""
    first = _run(tmp_path, "once")
    assert REPLAY not in first.labels
    for mode in ("none", "once"):
        again = _run(tmp_path, mode)
        assert again.labels[REPLAY] == first.trace_id, mode
        assert again.fingerprint() == first.fingerprint()
    for mode in ("new", "all"):
        assert REPLAY not in _run(tmp_path, mode).labels, mode


def _replay_of(t: Trace, *, broken: bool = False) -> Trace:
    """``t`` as a replay of it is stored; a broken one met a call its cassette did not hold and errored."""
    labels = {**t.labels, REPLAY: t.trace_id}
    if not broken:
        return t.model_copy(update={"trace_id": "r" + t.trace_id[1:], "labels": labels})
    miss = ReplayMismatch("step 1: tool lookup by main is not in the cassette")
    return trace(user("refund order 42?"), tool_call("lookup", {"order": 8}, error=miss),
                 end("error", reason=f"ReplayMismatch: {miss}"), name=t.name, config=t.config, labels=labels)


@pytest.fixture
def store_with_replays(tmp_path: Path) -> Path:
    """Three recorded trials (2 successes), a faithful replay of a failed one and a broken replay."""
    statuses: list[OutcomeStatus] = ["success", "success", "failure"]
    originals = [labelled("T", seed=s, status=status) for s, status in enumerate(statuses)]
    for t in originals:
        write_trace(t, tmp_path / "traces")
    replay = _replay_of(originals[2])
    broken = _replay_of(originals[0], broken=True)
    write_trace(replay, tmp_path / "traces" / "replays")
    write_trace(broken, tmp_path / "traces" / "replays")
    checks = [check_line(t.trace_id, {"c": "pass"}, test="T") for t in originals]
    checks += [check_line(replay.trace_id, {"c": "fail"}, test="T")]
    write_results(tmp_path / "results" / "run-1" / "main.jsonl", "run-1", checks)
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        assert store.ingest([tmp_path / "traces", tmp_path / "results"]).traces_added == 5
    return path


def test_replays_are_left_out_of_every_metric_unless_asked(store_with_replays: Path) -> None:
    """By default the metrics see the three recorded trials; with replays=True the faithful replay too,
    and the run that broke off on a cassette mismatch never counts as a task failure."""
    with Store.open(store_with_replays, read_only=True) as store:
        (row,) = store.metrics(by=())
        assert (row.traces, row.success.hits, row.compliance.total) == (3, 2, 3)
        (both,) = store.metrics(by=(), replays=True)
        assert (both.traces, both.success.hits, both.compliance.total, both.compliance.hits) == (4, 2, 4, 3)
        (contract,) = store.compliance(per="contract")
        assert contract.rate.total == 3
        assert store.compliance(per="contract", replays=True)[0].rate.total == 4
        assert store.replay_counts() == {"replays": 1, "broken": 1}
        assert store.replay_counts(run_id="other") == {"replays": 0, "broken": 0}
        _, rows = store.query("SELECT count(*) FILTER (WHERE replay) FROM trace_metrics")
        assert rows == [(2,)]


def test_metrics_command_says_what_it_left_out_and_includes_it_on_request(
        store_with_replays: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``mattrace metrics`` names the replays it left out; ``--replays`` counts them (the broken one never)."""
    assert main(["metrics", "--store", str(store_with_replays), "--by", "test"]) == 0
    out = capsys.readouterr().out
    assert "1 replayed trace left out" in out and "--replays" in out
    assert "1 trace broke off on a cassette mismatch" in out
    assert main(["metrics", "--store", str(store_with_replays), "--by", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"][0]["traces"] == 3
    assert main(["metrics", "--store", str(store_with_replays), "--by", "test", "--json", "--replays"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"][0]["traces"] == 4


def test_the_runs_listing_leaves_replays_out_unless_asked(store_with_replays: Path) -> None:
    """A run's traces, steps and success rate count what the metrics count: the faithful replay
    only on request, the broken one never; what is left out is counted apart."""
    with Store.open(store_with_replays, read_only=True) as store:
        (run,) = store.runs()
        assert (run.traces, run.success.hits, run.left_out) == (3, 2, 2)
        (both,) = store.runs(replays=True)
        assert (both.traces, both.success.hits, both.left_out) == (4, 2, 1)
        assert both.steps > run.steps


def test_runs_command_says_what_it_left_out(store_with_replays: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--store", str(store_with_replays)]) == 0
    out = capsys.readouterr().out
    assert "2 traces left out" in out and "mattrace runs --replays" in out
    assert main(["runs", "--store", str(store_with_replays), "--json", "--replays"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["traces"], row["left_out"]) == (4, 1)
