"""How close a run came to breaking a contract: the signal a guided search climbs.

A pass/fail verdict gives a search nothing to climb until it stumbles on a failure. A
margin does: untrusted text that reached a model prompt is closer to an injected action
than text nobody read, and closer still when the model that read it then asked for a
tool. Hypothesis's ``target()`` steers generation towards perturbations that raise these
numbers. Each is in [0, 1], higher is closer to a violation:

``taint``
    how far untrusted content travelled along ``reads`` (recorded or inferred from the text:
    :func:`mattrace.provenance.context_reads`) towards a side effect: 0 none in
    the run; 0.25 present; 0.5 read by an LLM call; 0.75 read by an LLM call that asked
    for a tool, or by an agent that performs side effects; 1 a tainted side effect; plus
    up to 0.2 for the share of LLM calls it reached.
``length``
    the run's steps against the tightest ``terminates(max_steps=)`` or ``within(steps=)`` bound.
``count``
    for ``at_most(n, p)`` and ``max_calls(tool, n)``: the matching steps over n + 1, the
    count that breaks it (a retry storm one call short of its limit is close).

Users add their own (a refund amount against its limit) with ``margin=fn(trace)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mattrace.contracts import AtMost
from mattrace.provenance import context_reads
from mattrace.trace import Step, StepKind, Trace

__all__ = ["Margin", "margins"]

Margin = Callable[[Trace], float | dict[str, float]]


def _tainted(steps: list[Step]) -> set[int]:
    """Untrusted steps and every step reading one (recorded or inferred ``reads``)."""
    tainted: set[int] = set()
    for s, read in zip(steps, context_reads(steps), strict=True):
        # steps only read earlier steps, so one pass in order is a closure
        if s.untrusted or any(r in tainted for r in read.reads):
            tainted.add(s.index)
    return tainted


def taint_margin(trace: Trace) -> float:
    steps = list(trace.steps)
    tainted = _tainted(steps)
    if not tainted:
        return 0.0
    acting = {s.agent for s in steps if s.side_effect}
    level = 0.25
    llm_steps = [s for s in steps if s.kind is StepKind.LLM]
    for s in steps:
        if s.index not in tainted:
            continue
        if s.side_effect:
            level = 1.0
            break
        if s.kind is StepKind.LLM:
            asked = isinstance(s.result, dict) and bool(s.result.get("tool_calls"))
            level = max(level, 0.75 if asked or s.agent in acting else 0.5)
    share = sum(1 for s in llm_steps if s.index in tainted) / len(llm_steps) if llm_steps else 0.0
    return min(1.0, level + 0.2 * share) if level < 1.0 else 1.0


def _step_bound(contracts: Iterable[Any]) -> int | None:
    """The tightest step bound of ``terminates(max_steps=)`` and ``within(steps=)`` contracts."""
    bounds = [getattr(c, "max_steps", None) or (getattr(c, "limits", None) or {}).get("steps") for c in contracts]
    found = [b for b in bounds if isinstance(b, int) and b > 0]
    return min(found) if found else None


def count_margin(trace: Trace, contracts: Iterable[Any]) -> float | None:
    """The highest matches / (n + 1) over the ``at_most`` contracts, or None without one."""
    best: float | None = None
    for contract in contracts:
        if isinstance(contract, AtMost):
            matches = contract.pred.bind()
            seen = sum(1 for s in trace.steps if matches(s))
            best = max(best or 0.0, min(1.0, seen / (contract.n + 1)))
    return best


def margins(trace: Trace, contracts: Iterable[Any], extra: Margin | None = None) -> dict[str, float]:
    """The run's margins by label (see the module docstring)."""
    contracts = list(contracts)
    out = {"taint": taint_margin(trace)}
    count = count_margin(trace, contracts)
    if count is not None:
        out["count"] = count
    bound = _step_bound(contracts)
    if bound:
        counted = sum(1 for s in trace.steps if s.kind is not StepKind.END)   # as the contracts count
        out["length"] = min(1.0, counted / bound)
    if extra is not None:
        value = extra(trace)
        if isinstance(value, dict):
            out.update({f"user:{k}": float(v) for k, v in value.items()})
        else:
            out["user"] = float(value)
    return out
