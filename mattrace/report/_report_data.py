"""What the HTML report shows, read from the store once, as plain data.

The report is rendered from this, never from the store directly, so rendering is a pure
function (tested without DuckDB) and the store is held open only while it is read.
Trace contents are cut to :data:`TEXT_LIMIT` characters per field: the report is for
finding the step that matters, and ``mattrace show`` opens the whole trace.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mattrace.provenance import Provenance
from mattrace.store import ComplianceRow, ContainmentRow, GovernanceRow, MetricsRow, Store
from mattrace.trace import Source, Step, StepKind

__all__ = ["ReportData", "TEXT_LIMIT", "TraceEntry", "read_report_data"]

TEXT_LIMIT = 240


@dataclass
class TraceEntry:
    """One trace as the report lists and draws it."""

    trace_id: str
    name: str
    test: str | None
    trial: int | None
    config: dict[str, Any]
    status: str | None
    path: str | None
    replayable: bool
    steps: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """Verdicts to distrust: ``{"contract", "kind": "vacuous" | "incomplete", "reason"}``."""

    @property
    def first_violation(self) -> dict[str, Any] | None:
        found = [v for v in self.violations if v.get("step") is not None]
        return min(found, key=lambda v: (v["step"], v["contract"])) if found else (
            self.violations[0] if self.violations else None)


@dataclass
class ReportData:
    """Everything one report shows."""

    title: str
    run_id: str | None
    by: tuple[str, ...]
    metrics: list[MetricsRow]
    containment_by_group: list[ContainmentRow]
    governance_by_group: list[GovernanceRow]
    compliance: list[ComplianceRow]
    containment_by_fault: list[ContainmentRow]
    governance_by_rule: list[GovernanceRow]
    step_counts: list[int]
    traces: list[TraceEntry]


def _short(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT - 1] + "…"


def _json(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _origins(analysis: Provenance, idx: int, kind: str, agent: str, target: str | None, content: str | None,
             args: Any, result: Any, sources: Any) -> list[list[Any]]:
    """Where each argument of a step came from, as the report's script shows it: ``[path, trust, from step or
    None, where, how]``, generated values left out (they point nowhere).

    The provenance analysis runs over the steps as the store keeps them, in order, one analysis per trace;
    a step the trace model cannot rebuild (a store written by a newer version) shows no origins."""
    try:
        rebuilt = Step(index=idx, kind=StepKind(kind), agent=agent, target=target, content=content,
                       args=args if isinstance(args, dict) else None, result=result,
                       sources=tuple(Source.model_validate(s) for s in sources or ()))
    except (ValidationError, ValueError):
        return []
    shown = []
    for value in analysis.observe(rebuilt).values:
        if value.trust == "generated":
            continue
        first = min(value.origins, key=lambda o: (o.trust != "untrusted", o.step))
        shown.append([value.path, value.trust, first.step, first.where, first.how])
    return shown


def _traces(store: Store, run_id: str | None) -> list[TraceEntry]:
    where = "WHERE t.run_id = ?" if run_id else ""
    params = [run_id] if run_id else None
    _, rows = store.query(f"""
        SELECT t.trace_id, t.name, t.test, t.trial, t.config, t.outcome_status, f.path, t.entrypoint IS NOT NULL
        FROM traces t LEFT JOIN (SELECT trace_id, max(path) AS path FROM files WHERE kind = 'trace'
                                 GROUP BY trace_id) f USING (trace_id)
        {where} ORDER BY t.name, t.trial, t.trace_id""", params)
    entries = {r[0]: TraceEntry(r[0], r[1], r[2], r[3], _json(r[4]) or {}, r[5], r[6], bool(r[7])) for r in rows}
    if not entries:
        return []
    scope = f"trace_id IN (SELECT trace_id FROM traces t {where})"
    _, steps = store.query(f"""
        SELECT trace_id, idx, kind, agent, target, content, args, result, error_type, error_message,
               reads, side_effect, untrusted, attrs, sources
        FROM steps WHERE {scope} ORDER BY trace_id, idx""", params)
    analyses: dict[str, Provenance] = {}
    for (trace_id, idx, kind, agent, target, content, args, result, error_type, error_message, reads,
         side_effect, untrusted, attrs, sources) in steps:
        extra = _json(attrs) or {}
        args, result = _json(args), _json(result)
        step = {"k": kind, "a": agent, "t": target, "c": _short(content),
                "in": _short(args), "out": _short(result), "r": list(reads or []),
                "se": bool(side_effect), "u": bool(untrusted)}
        if error_type or error_message:
            step["e"] = _short(f"{error_type}: {error_message}")
        if kind == "fault" and isinstance(extra, dict):
            step["f"] = extra.get("fault_class")
        if kind == "governance" and isinstance(extra, dict):
            step["g"] = extra.get("decision")
        step["o"] = _origins(analyses.setdefault(trace_id, Provenance()), idx, kind, agent, target, content,
                             args, result, _json(sources))
        # the index always: step 0 is a step like any other (0 == False would drop it)
        entries[trace_id].steps.append({"i": idx} | {k: v for k, v in step.items() if v not in (None, [], False)})
    _, violations = store.query(f"""
        SELECT trace_id, contract, step, reason, witness, severity FROM violations WHERE {scope}
        ORDER BY trace_id, step NULLS LAST, contract""", params)
    for trace_id, contract, step, reason, witness, severity in violations:
        entries[trace_id].violations.append({"contract": contract, "step": step, "reason": reason,
                                             "witness": list(witness or []), "severity": severity})
    _, warnings = store.query(f"""
        SELECT trace_id, contract, status, coalesce(vacuous, reason) FROM verdicts
        WHERE {scope} AND ((status = 'pass' AND vacuous IS NOT NULL) OR status = 'incomplete')
        ORDER BY trace_id, contract""", params)
    for trace_id, contract, status, reason in warnings:
        entries[trace_id].warnings.append({"contract": contract, "reason": reason,
                                           "kind": "incomplete" if status == "incomplete" else "vacuous"})
    return list(entries.values())


def read_report_data(store: Store, *, run_id: str | None = None, by: Sequence[str] = ("config",),
                     title: str | None = None) -> ReportData:
    """Read what a report shows (``run_id``: one run; else every run in the store).

    Raises:
        StoreError: an unknown ``by`` item (the message lists the valid ones).
    """
    by = tuple(by)
    _, counts = store.query("SELECT n_steps FROM traces" + (" WHERE run_id = ?" if run_id else ""),
                            [run_id] if run_id else None)
    traces = _traces(store, run_id)
    return ReportData(
        title=title or (f"mattrace report: run {run_id}" if run_id else "mattrace report"),
        run_id=run_id, by=by,
        metrics=store.metrics(by, run_id=run_id),
        containment_by_group=store.containment(by, run_id=run_id),
        governance_by_group=store.governance(by, run_id=run_id),
        compliance=store.compliance((), per="contract", run_id=run_id),
        containment_by_fault=store.containment(("fault",), run_id=run_id),
        governance_by_rule=store.governance(("rule",), run_id=run_id),
        step_counts=[int(c[0] or 0) for c in counts],
        traces=traces)
