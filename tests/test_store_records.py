"""The steps table tracks the Step model: every field is read from the file, stored, and comes back.

The store derives its step columns from :class:`mattrace.trace.Step`; these tests fail when
a field is added to ``Step`` until the store is shown to keep it (set it on ``FULL`` below).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from mattrace.store import Store
from mattrace.trace import Outcome, OutcomeStatus, Source, Step, StepError, StepKind, Trace
from mattrace.tracefile import VERSION, TraceWriter
from tests.test_store_builders import labelled, write_trace

# a step with every field away from its default (step 1: it reads step 0)
FULL = Step(index=1, kind=StepKind.TOOL, agent="planner", target="lookup", content="order 42: shipped",
            args={"order": 42}, result={"status": "shipped", "items": [1, 2]},
            error=StepError(type="KeyError", message="42"),
            sources=(Source(kind="retrieval", ref="kb-1", trusted=False),), reads=(0,), side_effect=True,
            attrs={"model": "m-1", "tokens": {"prompt": 3, "completion": 4}, "cost_usd": 0.25},
            t_start=1_000, t_end=2_000)
RENAMED = {"index": "idx"}   # the one Step field stored under another name (a SQL keyword)


def _write(path: Path, steps: list[Step], outcome: Outcome | None) -> Path:
    writer = TraceWriter(path, Trace(trace_id=path.stem, name=path.stem, steps=steps))
    for s in steps:
        writer.write_step(s)
    writer.seal(outcome)
    return path


def _columns(store: Store) -> dict[str, str]:
    return dict(store.query("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_name = 'steps' ORDER BY ordinal_position")[1])


def test_the_full_step_sets_every_field() -> None:
    """FULL leaves no Step field at its default, so a field added to Step fails here until FULL sets it."""
    assert FULL.model_fields_set == set(Step.model_fields)


def test_every_step_field_has_its_column() -> None:
    """Each Step field is stored under its name (index as idx), or a nested one as one column per sub-field."""
    with Store.open(":memory:") as store:
        columns = _columns(store)
    for field in Step.model_fields:
        name = RENAMED.get(field, field)
        assert name in columns or any(c.startswith(f"{field}_") for c in columns), field


def test_every_step_field_survives_ingest(tmp_path: Path) -> None:
    """A step with every field set comes back from its steps row equal, field for field."""
    first = Step(index=0, kind=StepKind.MESSAGE, agent="user", content="where is order 42?")
    path = _write(tmp_path / "full.jsonl", [first, FULL], Outcome(status="success"))
    with Store.open(":memory:") as store:
        assert store.ingest(path).ok
        json_columns = {c for c, t in _columns(store).items() if t == "JSON"}
        names, rows = store.query("SELECT * FROM steps WHERE idx = 1")
    row = dict(zip(names, rows[0], strict=True))

    def stored(field: str) -> Any:
        name = RENAMED.get(field, field)
        if name not in row:   # a nested model, kept one column per field
            return {c[len(field) + 1:]: v for c, v in row.items() if c.startswith(f"{field}_")}
        return json.loads(row[name]) if name in json_columns and row[name] is not None else row[name]

    assert Step.model_validate({field: stored(field) for field in Step.model_fields}) == FULL
    assert (row["untrusted"], row["model"], row["tokens"], row["cost_usd"]) == (True, "m-1", 7, 0.25)


def test_a_step_line_with_its_defaults_left_out_is_stored_with_them(tmp_path: Path) -> None:
    """A file leaves defaults out; the store fills in the typed ones and keeps NULL for absent JSON."""
    path = _write(tmp_path / "bare.jsonl", [Step(index=0, kind=StepKind.END)], None)
    with Store.open(":memory:") as store:
        assert store.ingest(path).ok
        assert store.query("SELECT agent, reads, side_effect, untrusted, sources, attrs FROM steps")[1] == [
            ("main", [], False, False, None, None)]


@pytest.mark.parametrize("status", get_args(OutcomeStatus))
def test_every_outcome_status_of_the_model_is_accepted(tmp_path: Path, status: OutcomeStatus) -> None:
    """Each status Outcome allows is stored as the trace's outcome."""
    path = write_trace(labelled("t", seed=1, status=status), tmp_path)
    with Store.open(":memory:") as store:
        report = store.ingest(path)
        assert report.ok, report.errors
        assert store.query("SELECT outcome_status FROM traces")[1] == [(status,)]


def test_a_header_of_another_format_version_is_refused(tmp_path: Path) -> None:
    """A trace file of a version other than the one this mattrace writes is skipped with its path and line."""
    path = write_trace(labelled("t", seed=1), tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace(f'"version":{VERSION}', f'"version":{VERSION + 1}', 1)
    path.write_text("".join(lines))
    with Store.open(":memory:") as store:
        report = store.ingest(path)
    assert report.traces_added == 0 and len(report.errors) == 1
    assert report.errors[0].startswith(f"{path.resolve()}:1: ")
