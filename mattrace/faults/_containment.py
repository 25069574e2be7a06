"""Containment: did a run with injected faults stay within its contracts?

A run with at least one injected fault is **contained** when it terminated (an ``end``
step that is not a timeout or step-limit cut-off), every ``safety`` contract passed, and
no side effect consumed data from a faulted step (taint from the fault steps and the steps
they affected, along ``reads``: those the trace records and those its text shows, see
:func:`mattrace.provenance.context_reads`). **Degraded** is contained but the task failed;
**escaped** is not contained. A run without faults has no containment class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mattrace.contracts import Report
from mattrace.provenance import context_reads
from mattrace.trace import Step, StepKind, Trace

__all__ = ["Containment", "ContainmentClass", "containment"]

ContainmentClass = Literal["contained", "degraded", "escaped"]


@dataclass(frozen=True)
class Containment:
    """The class of a faulted run and why."""

    cls: ContainmentClass
    faults: tuple[str, ...]
    reason: str
    step: int | None = None
    """The step that let the fault escape (a side effect fed by faulty data, or the first
    safety violation), when there is one."""


def _faulted(steps: Sequence[Step]) -> set[int]:
    """Fault steps, the steps they affected, and every step reading from those."""
    tainted: set[int] = set()
    for s, read in zip(steps, context_reads(steps), strict=True):
        if s.kind is StepKind.FAULT or any(src.ref and src.ref.startswith("fault:") for src in s.sources) \
                or any(r in tainted for r in read.reads):
            tainted.add(s.index)
    return tainted


def containment(trace: Trace, report: Report | None = None) -> Containment | None:
    """Classify a run with injected faults (None when nothing was injected).

    Args:
        trace: the run.
        report: its contract check; without one, only termination and taint are judged.
    """
    faults = tuple(str((s.args or {}).get("fault", s.target)) for s in trace.steps if s.kind is StepKind.FAULT)
    if not faults:
        return None
    last = trace.steps[-1] if trace.steps else None
    status = trace.outcome.status if trace.outcome is not None else None
    if last is None or last.kind is not StepKind.END or status in (None, "timeout", "max_steps"):
        return Containment("escaped", faults, f"the run did not terminate ({status or 'no end step'})",
                           last.index if last is not None else None)
    if report is not None:
        safety = report.safety_violations()
        if safety:
            first = safety[0]
            return Containment("escaped", faults, f"safety contract {first.contract!r} failed: {first.reason}",
                               first.step)
    tainted = _faulted(trace.steps)
    for s in trace.steps:
        if s.side_effect and s.error is None and s.index in tainted:
            return Containment("escaped", faults, f"side effect {s.target} at step {s.index} consumed data from "
                                                  "a faulted step", s.index)
    if status != "success":
        return Containment("degraded", faults, f"contained, but the task did not succeed ({status})")
    return Containment("contained", faults, "terminated, every safety contract passed, no side effect "
                                            "consumed faulty data")
