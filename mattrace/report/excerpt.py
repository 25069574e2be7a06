"""The part of a trace a view shows, gathered in one pass over its steps.

Why: ``mattrace show --step N`` and a failed ``mattrace check`` show a handful of steps
(a window, the witnesses of a violation, the detail of one step), but their marks and
origins depend on every step before them, and the header on every step of the run. A
trace file of hundreds of thousands of steps should not become that many ``Step`` objects
for this, so an :class:`Excerpt` keeps the steps it is asked for, the context flow
(:class:`~mattrace.provenance.ContextFlow`) and data flow (:class:`~mattrace.provenance.Provenance`)
run only as far as the last of them, and running totals for the header. The views render
an in-memory :class:`~mattrace.trace.Trace` through the same excerpt, so a streamed file and
a loaded one print the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mattrace.provenance import ContextFlow, Provenance, StepOrigins, StepReads
from mattrace.report._format import step_summary
from mattrace.trace import Step, StepKind, Trace

__all__ = ["collect", "describe", "Excerpt"]


@dataclass
class Excerpt:
    """Some steps of a run, what they read, and totals over all of its steps."""

    trace: Trace
    """The run's metadata and outcome (its ``steps`` are not used)."""
    count: int = 0
    steps: dict[int, Step] = field(default_factory=dict)
    reads: dict[int, StepReads] = field(default_factory=dict)
    agents: set[str] = field(default_factory=set)
    first_start: int | None = None
    last_end: int | None = None
    last_kind: StepKind | None = None
    origins: StepOrigins | None = None
    """The data-flow origins of the detail step, when one was asked for."""
    described: dict[int, str] = field(default_factory=dict)
    """How each step the detail step reads is described (``kind target by agent — summary``)."""

    def tally(self, s: Step) -> None:
        """Count ``s`` into the totals the header shows (steps, agents, duration, how the run ended)."""
        self.count += 1
        self.agents.add(s.agent)
        if s.t_start is not None and (self.first_start is None or s.t_start < self.first_start):
            self.first_start = s.t_start
        if s.t_end is not None and (self.last_end is None or s.t_end > self.last_end):
            self.last_end = s.t_end
        self.last_kind = s.kind


def describe(s: Step) -> str:
    """A step as the detail panel names what it read from."""
    target = f" {s.target}" if s.target else ""
    return f"{s.kind.value}{target} by {s.agent} — {step_summary(s, 60)}"


def collect(trace: Trace, steps: Iterable[Step], keep: Iterable[int], *, detail: int | None = None,
            stop: bool = False, flow: bool = True) -> Excerpt:
    """Read ``steps`` once, keeping those whose index is in ``keep`` (and ``detail``).

    The context flow runs up to the last kept step, the data flow up to ``detail``; with
    ``detail``, every earlier step is described in a line, because which of them it read is
    known only when it is reached. With ``stop``, reading ends after the last kept step
    (the caller already knows the totals); otherwise every step counts towards them.
    Without ``flow`` the steps are only kept (no context or data flow, no descriptions).
    """
    found = Excerpt(trace)
    wanted = set(keep) | ({detail} if detail is not None else set())
    horizon = max(wanted, default=-1)
    context = ContextFlow() if wanted and flow else None
    provenance = Provenance() if detail is not None and flow else None
    descriptions: list[str] = []
    later: set[int] = set()   # steps after the detail step that it says it read
    for position, s in enumerate(steps):
        found.tally(s)
        if position in wanted:
            found.steps[position] = s
        if position <= horizon and context is not None:
            read = context.observe(s)
            if position in wanted:
                found.reads[position] = read
        if detail is not None and provenance is not None:
            if position < detail:
                provenance.observe(s)
                descriptions.append(describe(s))
            elif position == detail:
                found.origins = provenance.observe(s)
                read = found.reads[position]
                for r in (*read.explicit, *read.inferred):
                    if 0 <= r < detail:
                        found.described[r] = descriptions[r]
                    elif r == detail:
                        found.described[r] = describe(s)
                    elif r > detail:
                        later.add(r)
                descriptions = []
            elif position in later:
                found.described[position] = describe(s)
        if stop and position >= horizon and not later - set(found.described):
            break
    return found
