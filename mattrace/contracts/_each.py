"""``each(p).must(q)``: a step-local obligation every ``p`` step must meet.

``q`` is a step predicate (past-time operators give it the history) or a callable
``(step, history)``; a violation names the first ``p`` step that does not meet it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mattrace.contracts._contract import Contract, Monitor, describe_step
from mattrace.contracts._operators import _at, _see
from mattrace.contracts._predicates import Evaluator, NameRef, Pred, _pred, true_on, witness_of
from mattrace.contracts._state import restore_all, snapshot_all
from mattrace.contracts._verdict import Verdict
from mattrace.errors import ContractError
from mattrace.trace import Step

__all__ = ["Each", "EachBuilder", "each"]


Obligation = Pred | Callable[[Step, Sequence[Step]], Any]


class Each(Contract):
    """Every ``p`` step meets the obligation ``q`` (a predicate, or a check on the history)."""

    def __init__(self, pred: Pred, obligation: Obligation, reason: str | None) -> None:
        self.pred = pred
        if not isinstance(obligation, Pred) and not callable(obligation):
            raise ContractError(f"each(...).must(...) takes a step predicate or a callable(step, history), "
                                f"got {obligation!r}")
        self.obligation = obligation
        self.reason = reason

    def obligation_text(self) -> str:
        if isinstance(self.obligation, Pred):
            return self.obligation.text()
        return getattr(self.obligation, "__name__", repr(self.obligation))

    def describe(self) -> str:
        return f"each({self.pred.text()}).must({self.obligation_text()})"

    def names(self) -> tuple[NameRef, ...]:
        return self.pred.names() + (self.obligation.names() if isinstance(self.obligation, Pred) else ())

    def monitor(self) -> Monitor:
        return _EachMonitor(self)


class _EachMonitor(Monitor):
    __slots__ = ("check", "contract", "eager", "fired", "history", "p", "q")

    def __init__(self, contract: Each) -> None:
        super().__init__(contract)
        self.contract = contract
        self.p = contract.pred.bind()
        ob = contract.obligation
        self.q: Evaluator | None = ob.bind() if isinstance(ob, Pred) else None
        self.eager = isinstance(ob, Pred) and ob.stateful
        self.check = None if isinstance(ob, Pred) else ob
        self.history: list[Step] | None = None if self.check is None else []
        self.fired = False
        if self.check is None and not self.eager:   # only `p` steps have an obligation to meet
            self.kinds = true_on(contract.pred)

    def _save(self) -> Any:
        states = snapshot_all(self.p) if self.q is None else snapshot_all(self.p, self.q)
        if states is None:
            return None
        return (states, self.fired, None if self.history is None else len(self.history))

    def _restore(self, state: Any) -> None:
        states, self.fired, size = state
        restore_all((self.p,) if self.q is None else (self.p, self.q), states)
        if self.history is not None:
            del self.history[size:]

    def untriggered(self) -> str | None:
        return None if self.fired else f"no step matched `{self.contract.pred.text()}`, so nothing had to meet it"

    def _step(self, s: Step) -> Verdict | None:
        vp = self.p(s)
        if vp:
            self.fired = True
        witness: tuple[int, ...] = ()
        if self.q is not None:
            if not (vp or self.eager):
                return None
            ok = self.q(s)
            witness = witness_of(self.q)
        else:
            assert self.history is not None and self.check is not None
            ok = True
            if vp:
                try:
                    ok = bool(self.check(s, self.history))
                except Exception as exc:
                    raise ContractError(f"{self.name}: {self.contract.obligation_text()} raised "
                                        f"{type(exc).__name__}: {exc} at step {s.index}") from exc
            self.history.append(s)
        if not vp or ok:
            return None
        c = self.contract
        reason = (c.reason.format(index=s.index, step=describe_step(s)) if c.reason
                  else f"{_at(s)} matches `{c.pred.text()}` but not `{c.obligation_text()}`{_see(witness, s)}")
        return self.failed(s.index, reason, (*witness, s.index))


class EachBuilder:
    """``each(p)``: say what every ``p`` step must satisfy with :meth:`must`."""

    def __init__(self, pred: Pred) -> None:
        self.pred = _pred(pred, "each")

    def must(self, obligation: Obligation, *, reason: str | None = None) -> Contract:
        """Every ``p`` step satisfies ``obligation``.

        ``obligation`` is a step predicate (past-time operators give it the history), or a
        callable ``(step, history) -> bool`` where ``history`` is the read-only sequence of
        the steps before it. ``reason`` may use ``{index}`` and ``{step}``.
        """
        return Each(self.pred, obligation, reason)


def each(p: Pred) -> EachBuilder:
    """A step-local obligation: ``each(step.kind("message")).must(cites_a_source)``."""
    return EachBuilder(p)
