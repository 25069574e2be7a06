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

__all__ = ["Checker", "Contracts", "check", "check_steps", "contract_list"]

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


class Checker:
    """Every contract's monitor over one run, fed a step at a time by a caller that owns the loop.

    Why: a trace file read with :func:`mattrace.tracefile.open_trace` is never a list, and
    whether it holds the end of its run is known only once it has been read to its end; so
    the caller feeds each step with :meth:`add` and gives that answer to :meth:`report`.
    :func:`check_steps` is this, over an iterable. Monitors that settle stop being fed; the
    names every step mentions are still gathered (:attr:`names`), for the vacuity check and
    :func:`~mattrace.contracts.unknown_names`.
    """

    def __init__(self, contracts: Contracts, *, trace_name: str | None = None) -> None:
        self.contracts = contract_list(contracts)
        self.monitors: list[Monitor] = [c.monitor() for c in self.contracts]
        self.names = TraceNames()
        self.trace_name = trace_name
        self.count = 0
        self._active = list(self.monitors)
        self._feeds = _feeds(self._active)
        self._last: int | None = None

    @property
    def settled(self) -> bool:
        """Whether every verdict is definite (later steps can change none of them)."""
        return not self._active

    def add(self, s: Step) -> None:
        """Feed the next step (in index order)."""
        self._last = s.index
        self.count += 1
        self.names.add(s)
        settled = False
        for judge in self._feeds[s.kind]:   # only the monitors that can react to this kind of step
            if judge(s) is not None:
                settled = True
        if settled:
            self._active = [m for m in self._active if m._verdict is None]
            self._feeds = _feeds(self._active)

    def needs_names(self) -> bool:
        """Whether a settled check still asks which names the rest of the run mentions."""
        return any(m.status is Status.PASS and c.names() for c, m in zip(self.contracts, self.monitors, strict=True))

    def report(self, incomplete: str | None = None, *, count: int | None = None) -> Report:
        """The verdicts of the steps fed so far, as a whole run (``incomplete``: why it may not be)."""
        verdicts: list[Verdict] = []
        for contract, m in zip(self.contracts, self.monitors, strict=True):
            m.last = self._last
            verdict = m.finish(incomplete=incomplete)
            if verdict.status is Status.PASS:
                why = vacuity(contract, m, self.names)
                if why is not None:
                    verdict = replace(verdict, vacuous=why)
            verdicts.append(verdict)
        return Report(tuple(verdicts), trace_name=self.trace_name, steps=self.count if count is None else count,
                      incomplete=incomplete)


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
    checker = Checker(contracts, trace_name=trace_name)
    count: int | None = None
    iterator = iter(steps)
    for s in iterator:
        checker.add(s)
        if checker.settled:
            # every verdict is definite; the rest of the trace cannot change any of them,
            # but a pass that names a tool still asks whether the trace mentions it
            if checker.needs_names():
                for rest in iterator:
                    checker.count += 1
                    checker.names.add(rest)
            elif isinstance(steps, Sequence):
                count = len(steps)
            break
    return checker.report(incomplete, count=count)


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
        return _check_file(Path(trace), contracts)
    if not isinstance(trace, Trace):
        raise ContractError(f"check() takes a Trace or a trace file path, got {trace!r}")
    return check_steps(trace.steps, contracts, trace_name=trace.name, incomplete=trace.incomplete)


def _check_file(path: Path, contracts: Contracts) -> Report:
    """:func:`check` of a trace file, streamed: each step is checked and dropped, so memory stays flat.

    A file that is not sealed warns as :func:`mattrace.load` does, and its verdicts that need
    the end of the run are ``INCOMPLETE``.
    """
    import warnings

    from mattrace.tracefile import open_trace

    with open_trace(path) as stream:
        try:
            checker = Checker(contracts, trace_name=stream.trace.name)
        except ContractError:
            for _ in stream:   # a corrupt file is reported before a bad contract, as when it was loaded first
                pass
            raise
        for s in stream:
            checker.add(s)
    for warning in stream.result.warnings:
        warnings.warn(warning, stacklevel=3)
    return checker.report(stream.trace.incomplete)
