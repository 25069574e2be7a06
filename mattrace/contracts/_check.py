"""``check``: run every contract's monitor over a trace in one pass."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from mattrace.contracts._contract import Contract, Monitor
from mattrace.contracts._predicates import Pred
from mattrace.contracts._vacuity import TraceNames, vacuity
from mattrace.contracts._verdict import Report, Status, Verdict
from mattrace.errors import ContractError
from mattrace.trace import Step, StepKind, Trace

__all__ = ["Contracts", "check", "check_steps", "contract_list"]

Contracts = Contract | Iterable[Contract]


def contract_list(contracts: Contracts) -> list[Contract]:
    """Normalise one contract or an iterable of them, refusing anything that is not one.

    Every place that takes contracts from a user checks them with this, so the errors read
    alike: :func:`check`, the governance ``guard`` rule and the pytest marker.

    Raises:
        ContractError: an item is a step predicate or not a contract, or two share a name.
    """
    items = [contracts] if isinstance(contracts, Contract | Pred) else list(contracts)
    out = []
    for position, item in enumerate(items):
        if isinstance(item, Pred):
            raise ContractError(f"contract {position}: {item} is a step predicate, not a contract; "
                                f"say what must hold over the run, e.g. always({item}) or never({item})")
        if not isinstance(item, Contract):
            raise ContractError(f"contract {position}: expected a contract (always(...), never(...), "
                                f"a stock contract ...), got {item!r}")
        out.append(item)
    names = [c.name for c in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ContractError(f"two contracts share the name {dupes[0]!r}; give each a distinct .named(...)")
    return out


def check_steps(steps: Sequence[Step] | Iterable[Step], contracts: Contracts, *,
                trace_name: str | None = None, incomplete: str | None = None) -> Report:
    """Check an iterable of steps (in index order) against ``contracts`` in one pass.

    Monitors that settle early stop being fed, so a trace whose contracts all settle at
    step 10 costs ten monitor steps, however long it is (the names the rest of the trace
    mentions are still gathered, for the vacuity check: a few set insertions a step).

    Args:
        incomplete: why ``steps`` may not be the whole run (see :attr:`Trace.incomplete`),
            or None. Contracts that need the end of the run are then ``INCOMPLETE``.
    """
    checked = contract_list(contracts)
    monitors: list[Monitor] = [c.monitor() for c in checked]
    names = TraceNames()
    feeds = _feeds(monitors)
    last: int | None = None
    count = 0
    iterator = iter(steps)
    for s in iterator:
        last = s.index
        count += 1
        names.add(s)
        settled = False
        for judge in feeds[s.kind]:
            if judge(s) is not None:
                settled = True
        if settled:
            active = [m for m in monitors if m._verdict is None]
            feeds = _feeds(active)
            if not active:
                # every verdict is definite; the rest of the trace cannot change any of them,
                # but a pass that names a tool still asks whether the trace mentions it
                if any(m.status is Status.PASS and c.names() for c, m in zip(checked, monitors, strict=True)):
                    for rest in iterator:
                        count += 1
                        names.add(rest)
                elif isinstance(steps, Sequence):
                    count = len(steps)
                break
    verdicts: list[Verdict] = []
    for contract, m in zip(checked, monitors, strict=True):
        m.last = last
        verdict = m.finish(incomplete=incomplete)
        if verdict.status is Status.PASS:
            why = vacuity(contract, m, names)
            if why is not None:
                verdict = replace(verdict, vacuous=why)
        verdicts.append(verdict)
    return Report(tuple(verdicts), trace_name=trace_name, steps=count, incomplete=incomplete)


def _feeds(monitors: list[Monitor]) -> dict[StepKind, list[Callable[[Step], Verdict | None]]]:
    """Per kind of step, the ``_step`` of each unsettled monitor that can react to it (in
    contract order): a step is dispatched once, not offered to every monitor in turn."""
    return {kind: [m._step for m in monitors if m._verdict is None and (m.kinds is None or kind in m.kinds)]
            for kind in StepKind}


def check(trace: Trace | str | os.PathLike[str], contracts: Contracts) -> Report:
    """Check a trace (or a trace file) against contracts; every violation names its first step.

    A pass that held only because the contract never applied carries a ``vacuous`` reason;
    on a trace that does not hold the end of its run (:attr:`Trace.incomplete`: an unsealed
    or torn file, a run still going) contracts that need the end are ``INCOMPLETE``.

    Args:
        trace: a :class:`~mattrace.Trace` or the path of a trace file.
        contracts: one contract or an iterable of them.

    Returns:
        A :class:`Report`: one verdict per contract, ``first_violation`` the earliest.

    Raises:
        ContractError: an argument is not a contract, or a user predicate raised.
        TraceFormatError: the trace file is corrupt.
    """
    if isinstance(trace, str | os.PathLike):
        from mattrace.tracefile import load

        trace = load(Path(trace))
    if not isinstance(trace, Trace):
        raise ContractError(f"check() takes a Trace or a trace file path, got {trace!r}")
    return check_steps(trace.steps, contracts, trace_name=trace.name, incomplete=trace.incomplete)
