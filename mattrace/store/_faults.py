"""Injected faults in the store: the ``faults`` rows, side-effect taint, and containment rates.

Each ``fault`` step of an ingested trace becomes a row of ``faults`` (which fault, its
pattern, the call it hit, schedule and parameters), filled in bulk from the typed steps.

A faulted trace's containment class (docs/store.md) comes from the results file that
checked it when that file says (the pytest plugin judges it with every contract); else the
store judges it the way :func:`mattrace.faults.containment` does: not terminated, a failed
safety verdict, or a side effect that consumed data from a faulted step is *escaped*; a
contained run whose task failed is *degraded*; the rest *contained*. The taint (fault steps,
the steps they affected, and every step reading those along ``reads``) needs the steps, so
it is followed once at ingest, for the new traces that have faults, and stored per trace as
``traces.tainted_side_effect``; the metric queries never scan ``steps``. Its edges are the
context flow, as :func:`mattrace.faults.containment` follows it: the ``reads`` the file
records (``steps.reads``) and those :func:`mattrace.provenance.context_reads` infers from
the text (:func:`inferred_rows`, computed for the faulted traces only).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from mattrace.provenance import context_reads
from mattrace.store._grouping import GroupKeys, run_filter
from mattrace.store._metrics import Rate, _rate
from mattrace.trace import Step

__all__ = ["CLASSES", "CONTAINMENT_KEYS", "ContainmentRow", "containment_sql", "fault_rows_sql", "inferred_rows",
           "INFERRED", "taint_sql", "TRACE_CONTAINMENT"]

CLASSES = ("contained", "degraded", "escaped")
# a fault's own keys are columns of faults; the trace has a target and run_id of its own, hence the f_ aliases
_KEYS = GroupKeys("containment", ("call_target", "fault", "fault_class", "target"), alias="f_")
CONTAINMENT_KEYS: tuple[str, ...] = _KEYS.valid

# The class name as a snake name (Timeout -> timeout, RateLimited -> rate_limited), for fault steps
# recorded without attrs.fault_class (hand-built traces).
_SNAKE = r"lower(regexp_replace({0}, '([a-z0-9])([A-Z])', '\1_\2', 'g'))"


def fault_rows_sql(traces: str) -> str:
    """``INSERT INTO faults`` for the fault steps of the traces that ``traces`` (a subquery) selects."""
    fault = "coalesce(json_extract_string(s.args, '$.fault'), s.target)"
    return f"""
    INSERT INTO faults
    SELECT s.trace_id, t.run_id, s.idx, s.agent, {fault},
           coalesce(json_extract_string(s.attrs, '$.fault_class'), {_SNAKE.format(fault)}),
           coalesce(json_extract_string(s.args, '$.target'), s.target), s.target,
           json_extract(s.args, '$.schedule'), json_extract(s.args, '$.params'),
           TRY_CAST(json_extract_string(s.args, '$.call') AS INTEGER), s.content
    FROM steps s JOIN traces t USING (trace_id)
    WHERE s.kind = 'fault' AND s.trace_id IN {traces}"""


INFERRED: dict[str, Any] = {"trace_id": "VARCHAR", "idx": "INTEGER", "src": "INTEGER"}
"""The columns of the edges :func:`inferred_rows` gives (a temp table :func:`taint_sql` reads)."""


def inferred_rows(lines: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The inferred ``reads`` edges of traces, from their step lines (trace id, the line's JSON),
    each trace's lines in order: one row per edge, ``idx`` reading ``src``."""
    by_trace: dict[str, list[Step]] = {}
    for trace_id, line in lines:
        by_trace.setdefault(trace_id, []).append(Step.model_validate(json.loads(line)["step"]))
    rows: list[dict[str, Any]] = []
    for trace_id, steps in by_trace.items():
        steps.sort(key=lambda s: s.index)
        rows.extend({"trace_id": trace_id, "idx": read.index, "src": src}
                    for read in context_reads(steps) for src in read.inferred)
    return rows


def taint_sql(traces: str, inferred: str | None = None) -> str:
    """The first side effect (that did not fail) fed by faulty data, per trace of ``traces`` (those with faults).

    Tainted: a fault step, a step with a ``fault:`` source (the step a fault affected), and
    every step that reads a tainted one, along ``steps.reads`` and the edges of the table
    ``inferred`` (columns :data:`INFERRED`); ``reads`` point backwards, so this is the closure
    :func:`mattrace.faults.containment` computes in one forward pass. Columns: ``trace_id``,
    ``step``.
    """
    more = f" UNION ALL SELECT trace_id, idx, src FROM {inferred} WHERE trace_id IN {traces}" if inferred else ""
    return f"""
    WITH RECURSIVE s AS (
        SELECT trace_id, idx, kind, reads, side_effect, error_type, sources FROM steps WHERE trace_id IN {traces}),
    edges AS (SELECT trace_id, idx, unnest(reads) AS src FROM s{more}),
    tainted(trace_id, idx) AS (
        SELECT trace_id, idx FROM s
        WHERE kind = 'fault' OR coalesce(contains(sources::VARCHAR, '"ref":"fault:'), false)
        UNION
        SELECT e.trace_id, e.idx FROM edges e JOIN tainted t ON e.trace_id = t.trace_id AND e.src = t.idx)
    SELECT trace_id, min(idx) AS step FROM tainted JOIN s USING (trace_id, idx)
    WHERE s.side_effect AND s.error_type IS NULL GROUP BY trace_id"""


# One row per trace with at least one fault step: its metric columns, the faults it had, and its
# containment class, reason and step, with where the class came from ('results' or 'store').
TRACE_CONTAINMENT = """
    WITH f AS (SELECT trace_id, list(DISTINCT fault ORDER BY fault) AS faults, count(*) AS fault_steps
               FROM faults GROUP BY trace_id),
    v AS (SELECT trace_id, min_by(contract, coalesce(step, 2147483647)) AS contract,
                 min_by(reason, coalesce(step, 2147483647)) AS reason, min(step) AS step
          FROM violations WHERE severity = 'safety' GROUP BY trace_id),
    j AS (
        SELECT m.*, f.faults, f.fault_steps, t.tainted_side_effect, c.containment AS checked,
               c.containment_reason AS checked_reason, c.containment_step AS checked_step,
               v.contract AS safety_contract, v.reason AS safety_reason, v.step AS safety_step,
               CASE WHEN NOT coalesce(m.terminated, false) THEN 'not terminated' WHEN m.safety_failed > 0 THEN 'safety'
                    WHEN t.tainted_side_effect IS NOT NULL THEN 'taint'
                    WHEN NOT m.success THEN 'degraded' ELSE 'contained' END AS judged
        FROM trace_metrics m JOIN f USING (trace_id) JOIN traces t USING (trace_id)
        LEFT JOIN checks c USING (trace_id) LEFT JOIN v USING (trace_id))
    SELECT * EXCLUDE (checked, checked_reason, checked_step, safety_contract, safety_reason, safety_step, judged),
        coalesce(checked, CASE WHEN judged IN ('degraded', 'contained') THEN judged ELSE 'escaped' END)
            AS containment,
        CASE WHEN checked IS NOT NULL THEN checked_reason
             WHEN judged = 'not terminated' AND NOT sealed
                 THEN 'the run did not terminate (its trace file is not sealed)'
             WHEN judged = 'not terminated'
                 THEN 'the run did not terminate (' || coalesce(outcome_status, 'no end step') || ')'
             WHEN judged = 'safety' AND safety_contract IS NOT NULL
                 THEN 'safety contract ''' || safety_contract || ''' failed: ' || coalesce(safety_reason, '')
             WHEN judged = 'safety' THEN 'a safety contract failed'
             WHEN judged = 'taint'
                 THEN 'the side effect at step ' || tainted_side_effect || ' consumed data from a faulted step'
             WHEN judged = 'degraded'
                 THEN 'contained, but the task did not succeed (' || coalesce(outcome_status, 'no outcome') || ')'
             ELSE 'terminated, every safety contract passed, no side effect consumed faulty data' END
            AS containment_reason,
        CASE WHEN checked IS NOT NULL THEN checked_step
             WHEN judged = 'not terminated' AND n_steps > 0 THEN n_steps - 1
             WHEN judged = 'safety' THEN safety_step
             WHEN judged = 'taint' THEN tainted_side_effect END AS containment_step,
        CASE WHEN checked IS NOT NULL THEN 'results' ELSE 'store' END AS containment_source
    FROM j"""


def containment_sql(by: tuple[str, ...] | list[str], *, run_id: str | None = None,
                    names: tuple[str, ...] | None = None, replays: bool = False) -> str:
    """Containment per group of ``by``: faulted traces, contained (incl. degraded), degraded, escaped, rates.

    A trace counts once in each group it falls in: a run with a Timeout and a Poisoned fault
    counts once under each class, and once (not twice) when grouped by config alone.
    ``names`` renames the group columns (default ``g0``, ``g1``, …); ``replays`` counts traces
    replayed from cassettes too.

    Raises:
        StoreError: an item of ``by`` is not one of :data:`CONTAINMENT_KEYS`.
    """
    g = _KEYS.grouping(by, names)
    return f"""
    WITH t AS (
        SELECT DISTINCT {g.select}trace_id, run_id, containment, containment_source
        FROM trace_containment JOIN (SELECT trace_id, {_KEYS.own_columns()} FROM faults) USING (trace_id)
        {run_filter(run_id, replays=replays)}),
    agg AS (
        SELECT {g.columns}count(DISTINCT run_id) AS runs, count(*) AS faulted,
               count(*) FILTER (WHERE containment IN ('contained', 'degraded')) AS contained,
               count(*) FILTER (WHERE containment = 'degraded') AS degraded,
               count(*) FILTER (WHERE containment = 'escaped') AS escaped,
               count(*) FILTER (WHERE containment_source = 'store') AS derived
        FROM t {g.group_by})
    SELECT {g.labelled}runs, faulted, contained, degraded, escaped, derived,
           contained / faulted AS containment_rate,
           wilson_low(contained, faulted) AS containment_low, wilson_high(contained, faulted) AS containment_high,
           degraded / faulted AS degradation_rate,
           wilson_low(degraded, faulted) AS degradation_low, wilson_high(degraded, faulted) AS degradation_high
    FROM agg {g.order_by}"""


@dataclass(frozen=True)
class ContainmentRow:
    """Containment of the faulted traces in one group (docs/store.md defines each class).

    ``faulted`` counts traces with an injected fault (a "faulted run" of the system under
    test); ``runs`` the store's runs (pytest sessions, ingests) they belong to. ``contained``
    includes ``degraded`` (contained, but the task failed), so ``contained + escaped ==
    faulted`` and ``containment`` is contained / faulted. ``derived`` counts the traces the
    store classified itself because no results file gave their class.
    """

    group: dict[str, Any]
    runs: int
    faulted: int
    contained: int
    degraded: int
    escaped: int
    derived: int
    containment: Rate
    degradation: Rate

    @classmethod
    def from_row(cls, group: dict[str, Any], r: dict[str, Any]) -> ContainmentRow:
        """Build from one row of :func:`containment_sql` (a dict by column name)."""
        return cls(group=group, runs=int(r["runs"]), faulted=int(r["faulted"]), contained=int(r["contained"]),
                   degraded=int(r["degraded"]), escaped=int(r["escaped"]), derived=int(r["derived"]),
                   containment=_rate(r["contained"], r["faulted"], r["containment_rate"], r["containment_low"],
                                     r["containment_high"]),
                   degradation=_rate(r["degraded"], r["faulted"], r["degradation_rate"], r["degradation_low"],
                                     r["degradation_high"]))

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form for ``mattrace metrics --containment --json``."""
        return asdict(self)
